# App Engine's Python deferred samples (examples/appengine: Flask, Django,
# plain WSGI), each run end to end as shipped but for shortened countdowns:
# gunicorn behind nginx with the module; the app defers through the
# module's enqueue endpoint; deferred-worker's push library POSTs the tasks
# back to the app (/_ah/queue/deferred via wrap_wsgi_app, /custom/path via
# the sample's own route). Count 10 at once, 20 and 30 after the
# countdowns, and the custom handler's "Executing deferred task.".
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQApp;
use Test::More;

DQApp::require_python();
my %need = (flask => 'flask', django => 'django', wsgi => 'redis');

my $r = DQTest::Redis->start(dir => tmpdir());

for my $sample (split /,/, ($ENV{DQ_SAMPLES} || "flask,django,wsgi")) {
    DQTest::need_tool(system($DQApp::PY, '-c', "import $need{$sample}, redis") == 0,
                      "python3-$need{$sample} and python3-redis");
    my $dir = tmpdir();
    mkdir "$dir/app";
    # the sample as shipped, the countdowns shortened as run.sh does
    my $src = DQTest::slurp("$DQTest::ROOT/examples/appengine/$sample/main.py");
    is(scalar(() = $src =~ /deferred\.defer\(do_something_later, my_key, 10(?:, _countdown=60|, _url="\/custom\/path", _countdown=120)?\)/g),
       3, "$sample: the three defers of the guide, verbatim");
    $src =~ s/_countdown=60\)/_countdown=1)/;
    $src =~ s/_countdown=120\)/_countdown=2)/;
    open my $fh, '>', "$dir/app/main.py" or die;
    print {$fh} $src;
    close $fh;

    my $s = DQApp->start(dir => $dir, redis => $r, app_dir => "$dir/app",
                         env => { GAE_VERSION => "v-$sample" });
    is($s->get("/counter/get"), "0", "$sample: count 0 through nginx");
    is($s->get('/counter/increment'), 'Deferred counter increment.',
       "$sample: /counter/increment answers as the sample does");
    # nginx writes an access log line when the request is finalized, which
    # may come just after the app has its answer: wait for the third
    my $posts = sub {
        scalar(() = DQTest::slurp($s->nginx->dir . '/logs/access.log')
            =~ m{"POST /_ngx_deferred/enqueue HTTP/1\.1" 201 }g)
    };
    wait_for(sub { $posts->() >= 3 }, 5, 0.05);
    is($posts->(), 3, "$sample: three tasks enqueued through the module (201)");
    ok(wait_for(sub { ($s->get('/counter/get') // '') eq '10' }, 10, 0.05), "$sample: count 10");
    ok(wait_for(sub { ($s->get('/counter/get') // '') eq '20' }, 10, 0.05), "$sample: count 20 after the countdown");
    ok(wait_for(sub { ($s->get('/counter/get') // '') eq '30' }, 10, 0.05), "$sample: count 30 after the second");
    ok(wait_for(sub { $s->app_log =~ /Executing deferred task\./ }, 5),
       "$sample: the /custom/path handler printed its line");
    # the app writes its access line after the answer: wait for the three
    my $pushes = sub {
        scalar(() = $s->app_log =~ m{"POST /(?:_ah/queue/deferred|custom/path) HTTP/1\.1" 200 }g)
    };
    wait_for(sub { $pushes->() >= 3 }, 5, 0.05);
    my $log = $s->app_log;
    is(scalar(() = $log =~ m{"POST /_ah/queue/deferred HTTP/1\.1" 200 }g), 2,
       "$sample: two pushes to /_ah/queue/deferred, answered 200");
    is(scalar(() = $log =~ m{"POST /custom/path HTTP/1\.1" 200 }g), 1,
       "$sample: one push to /custom/path, answered 200");
    my $stats = { @{ $r->cmd('HGETALL', 'dq2:{default}:stats') } };
    is($s->stop, 0, "$sample: the worker exits 0");
    log_clean_ok("$dir/worker.log", "$sample: worker log");
    log_clean_ok($s->nginx->error_log, "$sample: nginx error log");
}

done_testing();
