# examples/appengine/run.sh (what `./build.sh run flask|django|wsgi` execs):
# it runs the plain WSGI sample under gunicorn behind nginx with the
# worker pushing back, COUNTDOWN1/2 shorten the countdowns, it prints what
# to curl, the count reaches 30, and SIGTERM stops everything it started.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQApp;
use HTTP::Tiny;
use IO::Socket::INET;
use Test::More;

DQApp::require_python();
DQTest::need_tool(system($DQApp::PY, '-c', 'import redis') == 0, 'python3-redis');
for (qw(build/worker/deferred-worker build/push/libdq_push.so build/ngx_http_deferred_module.so)) {
    DQTest::require_built("$DQTest::ROOT/$_", $_);
}

my $dir = tmpdir();
my $port = free_port();
my $out = "$dir/run.out";
my $pid = spawn(name => 'run.sh', log => $out,
                env => { PORT => $port, RUN_DIR => "$dir/run",
                         COUNTDOWN1 => 1, COUNTDOWN2 => 2,
                         REDIS_PORT => free_port(), APP_PORT => free_port(),
                         ENQUEUE_PORT => free_port(), PATH => "/usr/bin:$ENV{PATH}" },
                cmd => ["$DQTest::ROOT/examples/appengine/run.sh", 'wsgi']);

ok(wait_for(sub { slurp($out) =~ /Ctrl-C stops everything/ }, 30),
   'run.sh started and printed its instructions') or diag slurp($out);
my $text = slurp($out);
like($text, qr{curl http://127\.0\.0\.1:$port/counter/increment}, 'it says what to curl, on PORT');
my ($app_port) = $text =~ /gunicorn 127\.0\.0\.1:(\d+)/;
my ($redis_port) = $text =~ /Redis 127\.0\.0\.1:(\d+)/;
like(slurp("$dir/run/app/main.py"), qr/_countdown=1\).*_countdown=2\)/s,
     'the sample runs with the countdowns of COUNTDOWN1/2');

my $http = HTTP::Tiny->new(timeout => 10);
my $get = sub { my $r = $http->get("http://127.0.0.1:$port$_[0]"); $r->{success} ? $r->{content} : '' };
wait_for(sub { slurp($out) =~ /redis \(wake\): connected/ }, 10);
is($get->('/counter/increment'), 'Deferred counter increment.', '/counter/increment answers');
ok(wait_for(sub { $get->('/counter/get') eq '30' }, 20, 0.1), '/counter/get reaches 30');
like(slurp($out), qr/Executing deferred task\./, 'the custom handler ran (on the terminal)');

is(DQTest::stop_pid($pid, 'TERM', 40) >> 8, 143, 'SIGTERM: run.sh exits 143');
my $up = sub {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $_[0], Timeout => 1);
    return $s ? 1 : 0;
};
ok(wait_for(sub { !$up->($port) }, 5), 'nginx stopped');
ok(wait_for(sub { !$up->($app_port) }, 10), 'gunicorn stopped');
ok(wait_for(sub { !$up->($redis_port) }, 5), 'Redis stopped');
like(slurp($out), qr/master exits/, 'the worker stopped');
log_clean_ok("$dir/run/logs/error.log", 'nginx error log');
done_testing;
