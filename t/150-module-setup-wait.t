# The first requests after nginx starts, while each nginx worker's Redis
# connection is still in its setup (connect, INFO, SCRIPT LOAD): they wait
# for it (bounded by deferred_timeout), then run. Redis is frozen
# (SIGSTOP) across the nginx start, so the setup cannot finish before the
# requests arrive; it is thawed 0.5 s after they were sent.
#   - status, metrics, ready, admin pause, a single POST to the endpoint,
#     a batch POST, a deferred_enqueue location and the
#     /_ah/queue/deferred server endpoint, all at once: 200/201, metrics
#     with deferred_redis_up 1, every task stored exactly once; the same
#     right after a reload (the new worker process's own setup);
#   - Redis frozen for the whole deferred_timeout (connect_timeout longer
#     than it, so the setup is still in progress): 503 at the timeout for
#     every one of them, nothing stored; once thawed all of them work.
# Before the fix the operator locations answered 503 "Redis is not
# reachable" at once (metrics: 200 with deferred_redis_up 0).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $conf = q{
    deferred_redis %%REDIS%% connect_timeout=%%CT%%;
    deferred_timeout %%DT%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
        location = /s/status  { deferred_status; }
        location = /s/metrics { deferred_metrics; }
        location = /s/admin   { deferred_admin; }
        location = /ready     { deferred_ready; }
        location = /ep        { deferred_endpoint on; }
        location = /enq {
            deferred_enqueue noop queue=eq args=$arg_a;
            deferred_return 200 "stored\n";
        }
    }
};

my $n;
my $EP = '/_ah/queue/deferred';
my @reqs = (
    [ 'status',   DQNginx::build_request('GET', '/s/status') ],
    [ 'metrics',  DQNginx::build_request('GET', '/s/metrics') ],
    [ 'ready',    DQNginx::build_request('GET', '/ready') ],
    [ 'admin',    DQNginx::build_request('POST', '/s/admin?action=pause&queue=pq',
                                         body => '', headers => { 'X-Deferred-Admin' => 1 }) ],
    [ 'single',   DQNginx::build_request('POST', '/ep', json => '{"func":"noop","queue":"sq","name":"one"}') ],
    [ 'batch',    DQNginx::build_request('POST', '/ep', json =>
                      '[{"func":"noop","queue":"bq","name":"b1"},{"func":"noop","queue":"bq","name":"b2"}]') ],
    [ 'enqueue',  DQNginx::build_request('GET', '/enq?a=1') ],
    [ 'endpoint', DQNginx::build_request('POST', $EP, json => '{"func":"noop","queue":"aq","name":"a1"}') ],
);
my %want = (status => 200, metrics => 200, ready => 200, admin => 200,
            single => 201, batch => 201, enqueue => 200, endpoint => 201);

# the requests at once, Redis thawed $thaw s after they were sent (never
# if undef)
sub burst {
    my ($thaw) = @_;
    my $pid;
    if (defined $thaw) {
        $pid = fork // die "fork: $!";
        if ($pid == 0) { sleep $thaw; kill 'CONT', $r->pid; POSIX::_exit(0); }
    }
    my @res = $n->many([ map { $_->[1] } @reqs ], conns => scalar @reqs,
                           timeout => 20);
    waitpid $pid, 0 if $pid;
    my %got = map { ($reqs[$_][0] => $res[$_]) } 0 .. $#reqs;
    return \%got;
}

# every request waited for the setup and ran; each task stored once
sub all_ran {
    my ($got, $what) = @_;
    for my $k (map { $_->[0] } @reqs) {
        is($got->{$k}{status}, $want{$k}, "$what: $k $want{$k}")
            or diag "$k: $got->{$k}{status} $got->{$k}{body}";
    }
    like($got->{metrics}{body}, qr/^deferred_redis_up 1$/m, "$what: metrics: Redis up");
    like($got->{ready}{body}, qr/"ready":true/, "$what: ready: true");
    is(DQNginx::stored($r, 'sq'), 1, "$what: the single task stored once");
    is(DQNginx::stored($r, 'bq'), 2, "$what: the batch stored once");
    is(DQNginx::stored($r, 'eq'), 1, "$what: the deferred_enqueue task stored once");
    is(DQNginx::stored($r, 'aq'), 1, "$what: the /_ah/queue/deferred task stored once");
    is($r->cmd('HGET', DQTest::dq_key('pq', 'conf'), 'paused'), '1',
       "$what: the admin pause reached Redis");
}

# --- setup in progress when the requests come: they wait, then run
kill 'STOP', $r->pid;
$n = DQNginx->start(redis => $r, workers => 1,
                    vars => { CT => '10s', DT => '10s' }, http => $conf);
all_ran(burst(0.5), 'setup in progress');

# --- the same after a reload: the new worker process's own setup
$r->cmd('FLUSHALL');
kill 'STOP', $r->pid;
ok($n->reload, 'reloaded with Redis frozen');
all_ran(burst(0.5), 'after a reload');
is($n->stop, 0, 'nginx exited with status 0');
log_clean_ok($n->error_log, 'nginx error log');

# --- Redis frozen for the whole deferred_timeout, the setup still in
# progress (connect_timeout longer): 503 at the timeout, nothing stored
$r->cmd('FLUSHALL');
kill 'STOP', $r->pid;
$n = DQNginx->start(redis => $r, workers => 1,
                        vars => { CT => '30s', DT => '1s' }, http => $conf);
my $got = burst(undef);
for my $k (map { $_->[0] } @reqs) {
    my $w = $k eq 'metrics' ? 200 : 503;
    is($got->{$k}{status}, $w, "setup never done: $k $w at deferred_timeout")
        or diag "$k: $got->{$k}{status} $got->{$k}{body}";
}
like($got->{metrics}{body}, qr/^deferred_redis_up 0$/m, 'metrics: Redis down');
like($got->{status}{body}, qr/RedisUnavailable/, 'status: RedisUnavailable');
like($got->{ready}{body}, qr/^\{"ready":false,"error":"RedisUnavailable"/,
     'ready: its own shape at the timeout (review RM finding 3)');
kill 'CONT', $r->pid;
ok(DQTest::wait_for(sub { $n->request('GET', '/ready')->{status} == 200 }, 15, 0.1),
   'Redis thawed: ready 200');
is_deeply($r->cmd('KEYS', '*'), [], 'nothing stored by the requests that got 503');
$got = burst(undef);
for my $k (map { $_->[0] } @reqs) {
    is($got->{$k}{status}, $want{$k}, "after the thaw: $k $want{$k}")
        or diag "$k: $got->{$k}{status} $got->{$k}{body}";
}
is($n->stop, 0, 'nginx exited with status 0');
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
