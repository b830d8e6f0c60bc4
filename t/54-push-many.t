# 1,000 pushes in flight from ONE worker child at once: the app
# (t/python/barrier.py) holds every request until 1,000 are open at the
# same time, then answers them all. A client that cannot keep 1,000 in
# flight (a thread per request, a small pool) never gets an answer and the
# test fails; the push library, on the child's libuv loop, completes all.
# The 1,000 tasks are deferred by the Python package in one batch.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQApp;
use JSON::PP;
use Test::More;

DQApp::require_python();
my $N = 1000;
my ($soft) = `sh -c 'ulimit -n'` =~ /(\d+)/;
plan skip_all => "open file limit $soft is below what 1,000 sockets need"
    if defined $soft && $soft < 2 * $N + 200;

my $dir = $ENV{DQ_KEEP} || tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $s = DQApp->start(
    dir => $dir, redis => $r,
    app_cmd => [$DQApp::PY, "$DQTest::ROOT/t/python/barrier.py", '%PORT%', $N,
                "$dir/barrier.json"],
    worker_conf => "tasklet_concurrency $N;\nclaim_size $N;\n"
        . "queue default { push_target http://127.0.0.1:\@APP_PORT\@; push_deadline 90s; }\n");

my ($rc, $out) = $s->python(qq{
import pushapp
from ngx_deferred import deferred
with deferred.batch() as tasks:
    for i in range($N):
        deferred.defer(pushapp.ok, "many", i)
print("enqueued", sum(t.was_enqueued for t in tasks))
});
like($out, qr/enqueued $N/, "$N tasks enqueued in one batch") or diag $out;

sub state {
    return -e "$dir/barrier.json" ? decode_json(slurp("$dir/barrier.json")) : {};
}
ok(wait_for(sub { (state()->{max_open} // 0) >= $N }, 60, 0.1),
   "the app saw $N pushes open at once") or diag explain state();
ok(wait_for(sub { ($r->cmd('HGET', 'dq2:{default}:stats', 'done') // 0) == $N }, 60, 0.1),
   "all $N tasks done (acked)")
    or diag explain { @{ $r->cmd('HGETALL', 'dq2:{default}:stats') } };
my $st = state();
cmp_ok($st->{connections}, '<=', $N + 50, "at most about one connection per push in flight ($st->{connections})");

# keep-alive: 1,000 more pushes reuse the connections already open
($rc, $out) = $s->python(qq{
import pushapp
from ngx_deferred import deferred
with deferred.batch() as tasks:
    for i in range($N):
        deferred.defer(pushapp.ok, "more", i)
print("enqueued", sum(t.was_enqueued for t in tasks))
});
like($out, qr/enqueued $N/, "$N more tasks enqueued") or diag $out;
ok(wait_for(sub { ($r->cmd('HGET', 'dq2:{default}:stats', 'done') // 0) == 2 * $N }, 60, 0.1),
   "all done");
ok(wait_for(sub { (state()->{requests} // 0) == 2 * $N }, 5, 0.1), 'the app answered them');
$st = state();
cmp_ok($st->{connections}, '<=', $N + 50,
       "... over the connections kept alive ($st->{connections} in all for " . 2 * $N . " pushes)");
my $log = DQWorker::log_text($s->worker);
unlike($log, qr/task failed/, 'no push failed');
like($log, qr/started: /, 'one worker child');
is($s->stop, 0, "the worker exits 0");
log_clean_ok("$dir/worker.log", 'worker log');
done_testing();
