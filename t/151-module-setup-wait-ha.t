# As t/150, for the Sentinel and Cluster forms of deferred_redis: the
# first requests after nginx starts come while each nginx worker is still
# asking where Redis is (the sentinels frozen with SIGSTOP: their answer
# waits) or asking a cluster for its first slot map (every master frozen:
# CLUSTER SLOTS waits, then each master's own connection setup). Status,
# metrics, ready, admin pause, a single POST and a batch over three queues
# at once, the frozen processes thawed 0.5 s after the requests were
# sent: 200/201, every task stored exactly once.
# Before the fix the operator locations answered 503 at once (metrics:
# 200 with deferred_redis_up 0).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQSentinel;
use DQCluster;
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep);

DQNginx::require_nginx();

my $conf = q{
    deferred_redis %%ADDR%% connect_timeout=10s;
    deferred_timeout 10s;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /s/status  { deferred_status; }
        location = /s/metrics { deferred_metrics; }
        location = /s/admin   { deferred_admin; }
        location = /ready     { deferred_ready; }
        location = /ep        { deferred_endpoint on; }
    }
};

my @queues = ('hq1', 'hq2', 'hq3');
my @reqs = (
    [ status  => 200, DQNginx::build_request('GET', '/s/status') ],
    [ metrics => 200, DQNginx::build_request('GET', '/s/metrics') ],
    [ ready   => 200, DQNginx::build_request('GET', '/ready') ],
    [ admin   => 200, DQNginx::build_request('POST', '/s/admin?action=pause&queue=hp',
                          body => '', headers => { 'X-Deferred-Admin' => 1 }) ],
    [ single  => 201, DQNginx::build_request('POST', '/ep',
                          json => '{"func":"noop","queue":"hs","name":"one"}') ],
    [ batch   => 201, DQNginx::build_request('POST', '/ep', json => '['
                          . join(',', map { qq({"func":"noop","queue":"$_","name":"b"}) } @queues)
                          . ']') ],
);

# nginx started with @frozen stopped; the requests at once; @frozen
# thawed 0.5 s after they were sent
sub burst_ok {
    my ($form, $addr, $frozen, $stored) = @_;
    kill 'STOP', @$frozen;
    my $n = DQNginx->start(workers => 1, vars => { ADDR => $addr }, http => $conf);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) { sleep 0.5; kill 'CONT', @$frozen; POSIX::_exit(0); }
    my @res = $n->many([ map { $_->[2] } @reqs ], conns => scalar @reqs, timeout => 30);
    waitpid $pid, 0;
    for my $i (0 .. $#reqs) {
        is($res[$i]{status}, $reqs[$i][1], "$form, setup in progress: $reqs[$i][0] $reqs[$i][1]")
            or diag "$res[$i]{status} $res[$i]{body}";
    }
    like($res[1]{body}, qr/^deferred_redis_up 1$/m, "$form: metrics: Redis up");
    like($res[2]{body}, qr/"ready":true/, "$form: ready: true");
    is($stored->('hs'), 1, "$form: the single task stored once");
    is($stored->($_), 1, "$form: the batch's task of $_ stored once") for @queues;
    is($n->stop, 0, "$form: nginx exited with status 0");
    log_clean_ok($n->error_log, "$form: nginx error log");
}

# --- Sentinel: the sentinels frozen while nginx asks them
{
    my $s = DQSentinel->start(master => 'dqm');
    my @spids = map { $s->sentinel_pid($_) } 0 .. 2;
    burst_ok('sentinel', $s->address, \@spids,
             sub { DQNginx::stored($s->primary, $_[0]) });
}

# --- Cluster: every master frozen while nginx asks for the map
{
    my $c = DQCluster->start(plain => 1);
    my @m = $c->masters;
    my $addr = $c->address;
    burst_ok('cluster', $addr, [ map { $_->pid } @m ],
             sub { DQNginx::stored($c->owner($_[0]), $_[0]) });
}

done_testing;
