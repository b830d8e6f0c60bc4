# Redis trouble while nginx serves: a request waiting on Redis gets 503
# with Retry-After within deferred_timeout (never a hang, a 500 or a crash),
# the nginx workers stay the same processes, and once Redis is back the
# enqueues succeed again without a reload. Also: SCRIPT FLUSH under a live
# connection (NOSCRIPT -> EVAL), and requests in flight when Redis dies.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => q{
    deferred_redis %%REDIS%% connect_timeout=500ms;
    deferred_timeout 1s;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
        location = /enqueue {
            deferred_enqueue noop args=$arg_a;
            deferred_return 200 "stored $deferred_task_id\n";
        }
    }
});
my @workers = $n->worker_pids;
is(scalar @workers, 2, 'two nginx workers');

my $EP = '/_ah/queue/deferred';
my $post = sub { $n->request('POST', $EP, json => '{"func":"noop"}') };

is($post->()->{status}, 201, 'Redis up: 201');
is($n->request('GET', '/enqueue?a=1')->{status}, 200, 'Redis up: enqueue location 200');

# --- NOSCRIPT: scripts flushed under a live connection
$r->cmd('SCRIPT', 'FLUSH');
is($post->()->{status}, 201, 'after SCRIPT FLUSH: still 201 (EVAL fallback)');
is($post->()->{status}, 201, 'and again');
like(DQTest::slurp($n->error_log), qr/NOSCRIPT, retrying with EVAL/,
     'the NOSCRIPT fallback is logged');

# --- Redis frozen (SIGSTOP): requests wait, then 503 at deferred_timeout
kill 'STOP', $r->pid;
my $t0 = time;
my @res = $n->many([ map { DQNginx::build_request('POST', $EP, json => '{"func":"noop"}') } 1 .. 20 ],
                   conns => 20, timeout => 10);
my $dt = time - $t0;
is(scalar(grep { $_->{status} == 503 } @res), 20, 'Redis frozen: all 20 requests get 503')
    or diag join ' ', map { $_->{status} } @res;
ok($dt >= 0.9 && $dt < 4, sprintf('... after deferred_timeout, not a hang (%.2fs)', $dt));
is($res[0]{headers}{'retry-after'}, '1', '503 carries Retry-After');
like($res[0]{body}, qr/"error":"RedisUnavailable"/, '503 body names the error');

$res[0] = $n->request('GET', '/enqueue?a=2');
is($res[0]{status}, 503, 'Redis frozen: enqueue location 503, not its content');
unlike($res[0]{body}, qr/stored/, '... content not sent');
kill 'CONT', $r->pid;

ok(DQTest::wait_for(sub { $post->()->{status} == 201 }, 10, 0.1),
   'Redis thawed: 201 again without reload');

# --- requests in flight when Redis dies
kill 'STOP', $r->pid;
my @reqs = map { DQNginx::build_request('POST', $EP, json => '{"func":"noop"}') } 1 .. 10;
my $pid = fork // die;
if ($pid == 0) { sleep 0.3; kill 'KILL', $r->pid; POSIX::_exit(0); }
$t0 = time;
@res = $n->many(\@reqs, conns => 10, timeout => 10);
$dt = time - $t0;
waitpid $pid, 0;
is(scalar(grep { $_->{status} == 503 } @res), 10, 'Redis killed mid-request: all 503')
    or diag join ' ', map { $_->{status} } @res;
ok($dt < 1.5, sprintf('... as soon as the connection dropped (%.2fs)', $dt));

# --- Redis down: 503 at once
$r->stop;
$t0 = time;
my $res = $post->();
is($res->{status}, 503, 'Redis down: 503');
ok(time - $t0 < 1.5, 'Redis down: answered within the timeout');
is($n->request('GET', '/enqueue?a=3')->{status}, 503, 'Redis down: enqueue location 503');
sleep 0.5;
is($post->()->{status}, 503, 'still 503 while down');

# --- Redis back (fresh, same port): no reload needed
$r->restart;
ok(DQTest::wait_for(sub { $post->()->{status} == 201 }, 10, 0.1),
   'Redis back: 201 without an nginx reload');
is($n->request('GET', '/enqueue?a=4')->{status}, 200, 'Redis back: enqueue location 200');
# at once, 50 requests over both worker processes: all stored. The other
# worker process may have tried (and failed) within its 100 ms minimum
# between attempts just before Redis listened: its requests wait for its
# next attempt instead of 503 (a clean-clone CI run once saw 18 of 50 get
# 503 here; t/103 runs that window on purpose)
my @ok = $n->many([ map { DQNginx::build_request('POST', $EP, json => '{"func":"noop"}') } 1 .. 50 ],
                  conns => 10);
is(scalar(grep { $_->{status} == 201 } @ok), 50, 'then 50 of 50 stored')
    or diag join ' ', map { $_->{status} } @ok;
is(DQNginx::stored($r), 52, 'Redis holds exactly the tasks answered 201/200');

is_deeply([$n->worker_pids], \@workers, 'the same nginx workers all along (none crashed)');
my $log = DQTest::slurp($n->error_log);
like($log, qr/\[error\].*deferred: redis .*(connection lost|timed out|connect failed)/,
     'Redis trouble logged at error');
like($log, qr/\[notice\].*deferred: redis .*: connected/, 'reconnection logged');
unlike($log, qr/ 500 | \[alert\]|signal \d+|exited on signal/, 'no 500, no worker crash');

is($n->stop, 0, 'nginx stops cleanly (exit status 0)');
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
