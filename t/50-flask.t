# examples/flask: App Engine's Flask deferred sample behind nginx. The app
# defers the C function counter.do_something_later by name with JSON POSTs
# to the module's /_ah/queue/deferred (the three calls of the sample, with
# the countdowns shortened); deferred-worker runs them: 10, 20, 30, and the
# /custom/path handler's log line. Skipped when Flask is not installed.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQWorker;
use Test::More;

DQNginx::require_nginx();
DQTest::need_tool(system('python3 -c "import flask" 2>/dev/null') == 0,
                  'python3-flask');
my $lib = DQTest::require_built(bin('examples/counter/libcounter.so'),
                                'counter library');

my $dir = tmpdir();
mkdir "$dir/data";
my $r = DQTest::Redis->start(dir => $dir);
my $app_port = free_port();

my $conf = DQTest::slurp("$DQTest::ROOT/examples/flask/nginx.conf.in");
$conf =~ s/\@PREFIX\@/%%DIR%%/g;
$conf =~ s/\@APP_PORT\@/$app_port/g;
$conf =~ s/\@(\w+)\@/%%$1%%/g;
my $n = DQNginx->start(redis => $r, conf => $conf);

my $app = spawn(name => 'flask', log => "$dir/flask.log",
                dir => "$DQTest::ROOT/examples/flask",
                env => { APP_PORT => $app_port, DQ_COUNTER_DIR => "$dir/data",
                         DEFERRED_URL => 'http://127.0.0.1:' . $n->port . '/_ah/queue/deferred',
                         COUNTDOWN1 => 1, COUNTDOWN2 => 2, PYTHONUNBUFFERED => 1 },
                cmd => ['python3', 'main.py']);
ok(DQTest::wait_port($app_port, 20), 'the Flask app is up') or diag slurp("$dir/flask.log");

$ENV{DQ_COUNTER_DIR} = "$dir/data";
my $w = DQWorker::start_worker($r, $dir, name => 'worker', libs => [$lib]);

is($n->request('GET', '/counter/get')->{body}, '0', 'count 0 through nginx -> Flask');
my $res = $n->request('GET', '/counter/increment');
is($res->{status}, 200, '/counter/increment through nginx -> Flask: 200');
is($res->{body}, 'Deferred counter increment.', "the sample's answer");
my @posts = slurp($n->dir . '/logs/access.log') =~ m{"POST /_ah/queue/deferred HTTP/1\.1" 201 }g;
is(scalar @posts, 3, 'Flask deferred three tasks through the module (3 POSTs, 201)');

ok(DQTest::wait_for(sub { $n->request('GET', '/counter/get')->{body} eq '10' }, 10, 0.05), 'count 10');
ok(DQTest::wait_for(sub { $n->request('GET', '/counter/get')->{body} eq '20' }, 10, 0.05), 'count 20');
ok(DQTest::wait_for(sub { $n->request('GET', '/counter/get')->{body} eq '30' }, 10, 0.05), 'count 30');
like(DQWorker::log_text($w), qr/Executing deferred task\./, 'the /custom/path handler ran');

# the endpoint is for local apps only: allow 127.0.0.1 works, and the
# location keeps nginx's access rules (checked from the config text)
like($conf, qr/allow 127\.0\.0\.1;\s*deny all;/, 'the endpoint is guarded by allow/deny');

is(DQWorker::stop_worker($w), 0, 'worker stops cleanly (exit status 0)');
stop_pid($app);
is($n->stop, 0, 'nginx stops cleanly (exit status 0)');
log_clean_ok($n->error_log, 'nginx error log');
log_clean_ok($w->{log}, 'worker log');
done_testing;
