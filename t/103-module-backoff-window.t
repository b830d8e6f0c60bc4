# Requests that come within BACKOFF_MIN (100 ms) of a failed connection
# attempt, while Redis is back: they wait for the next attempt (bounded
# by deferred_timeout) and are stored, not refused. Redis sits behind a
# gate: a port nothing listens on (connections refused) until the test
# opens a proxy on it to the real Redis, at once (DQProxy port =>).
#   - plain, Sentinel (the sentinel names the gate), Cluster before the
#     first map (the seed is the gate) and Cluster with a map whose node
#     is the gate (cluster-announce-port): one request gets 503 while the
#     gate is shut (an attempt failed just now), the gate opens, and a
#     burst of 50 enqueues with status, ready and admin comes at once:
#     every one 200/201, each task stored exactly once;
#   - Redis down for good (plain; Sentinel and Cluster one after the
#     other): every request still gets 503 "Redis is not
#     reachable" from a failed attempt, long before deferred_timeout
#     (10 s), one after the other and in a burst of 50;
#   - a young outage (a fresh nginx): a client that leaves while its
#     request waits ends its wait (499).
# Before the fix the requests within 100 ms of the failed attempt got 503
# at once (t/43's 18 of 50 in a CI run).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQProxy;
use DQSentinel;
use DQCluster;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();

my $conf = q{
    deferred_redis %%ADDR%% connect_timeout=5s;
    deferred_timeout 10s;
    log_format bw '$msec $status $request_time $request';
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%DIR%%/logs/bw.log bw;
        location = /s/status  { deferred_status; }
        location = /s/admin   { deferred_admin; }
        location = /ready     { deferred_ready; }
        location = /ep        { deferred_endpoint on; }
        location = /enq {
            deferred_enqueue noop queue=left;
            deferred_return 200 "stored\n";
        }
    }
};

my $BURST = 50;

sub burst_reqs {
    my ($q) = @_;
    return (
        (map { [ 201, DQNginx::build_request('POST', '/ep',
                          json => qq({"func":"noop","queue":"$q","name":"t$_"})) ] } 1 .. $BURST),
        [ 200, DQNginx::build_request('GET', '/s/status') ],
        [ 200, DQNginx::build_request('GET', '/ready') ],
        [ 200, DQNginx::build_request('POST', "/s/admin?action=pause&queue=p$q",
                  body => '', headers => { 'X-Deferred-Admin' => 1 }) ],
    );
}

sub one {
    my ($n) = @_;
    return $n->request('POST', '/ep', json => '{"func":"noop","queue":"one"}');
}

# the gate shut: a request gets 503 (an attempt just failed); the gate
# opens; the burst at once: all stored
sub window_ok {
    my ($form, $addr, $gate_port, $target_port, $stored, $pause) = @_;
    my $n = DQNginx->start(workers => 1, vars => { ADDR => $addr }, http => $conf);
    my $a = one($n);
    is($a->{status}, 503, "$form: gate shut: 503") or diag $a->{body};
    my $p = DQProxy::start($target_port, port => $gate_port);
    my @reqs = burst_reqs("w$form");
    my $t0 = time;
    my @res = $n->many([ map { $_->[1] } @reqs ], conns => scalar @reqs, timeout => 30);
    my $took = time - $t0;
    my @bad = grep { $res[$_]{status} != $reqs[$_][0] } 0 .. $#reqs;
    is(scalar @bad, 0, "$form: gate open: all " . scalar(@reqs)
       . " requests of the burst answered as if Redis had been up")
        or diag join "\n", map { "$_: $res[$_]{status} $res[$_]{body}" } @bad[0 .. ($#bad > 4 ? 4 : $#bad)];
    diag sprintf "%s: the burst took %.3f s, %d refused", $form, $took, scalar @bad;
    is($stored->("w$form"), $BURST, "$form: each task stored once");
    is($pause->("pw$form"), '1', "$form: the admin pause reached Redis");
    is($n->stop, 0, "$form: nginx exited with status 0");
    log_clean_ok($n->error_log, "$form: nginx error log");
    DQProxy::stop($p);
}

my $dir = tmpdir();

# --- plain
{
    my $r = DQTest::Redis->start(dir => $dir);
    my $gate = free_port();
    window_ok('plain', "127.0.0.1:$gate", $gate, $r->port,
              sub { DQNginx::stored($r, $_[0]) },
              sub { $r->cmd('HGET', DQTest::dq_key($_[0], 'conf'), 'paused') });
}

# --- Sentinel: the sentinel names the gate (it monitors it)
{
    DQTest::need_tool(DQTest::in_path('redis-sentinel'),
                      'redis-sentinel (Debian package redis-sentinel)');
    mkdir "$dir/s";
    my $r = DQTest::Redis->start(dir => "$dir/s");
    my $gate = free_port();
    my $s = DQSentinel::spawn_sentinel("$dir/s/s1", 'dqw', $gate, 1);
    window_ok('sentinel', "sentinel:dqw\@127.0.0.1:$s->{port}", $gate, $r->port,
              sub { DQNginx::stored($r, $_[0]) },
              sub { $r->cmd('HGET', DQTest::dq_key($_[0], 'conf'), 'paused') });
}

# a one-master cluster serving every slot
sub lone_cluster {
    my ($d) = @_;
    mkdir $d;
    my $c = DQCluster::lone_node($d);
    $c->cmd('CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
    DQTest::wait_for(sub { ($c->cmd('CLUSTER', 'INFO') // '') =~ /cluster_state:ok/ }, 10)
        or die "the one-node cluster never became ok";
    return $c;
}

# --- Cluster, no map yet: the seed is the gate
{
    my $c = lone_cluster("$dir/c1");
    my $gate = free_port();
    window_ok('cluster-map', "cluster:127.0.0.1:$gate", $gate, $c->port,
              sub { DQNginx::stored($c, $_[0]) },
              sub { $c->cmd('HGET', DQTest::dq_key($_[0], 'conf'), 'paused') });
}

# --- Cluster with a map whose node is the gate
{
    my $c = lone_cluster("$dir/c2");
    my $gate = free_port();
    $c->cmd('CONFIG', 'SET', 'cluster-announce-port', $gate);
    DQTest::wait_for(sub {
        my $s = $c->cmd('CLUSTER', 'SLOTS');
        ref $s eq 'ARRAY' && @$s && $s->[0][2][1] == $gate;
    }, 10) or BAIL_OUT('cluster-announce-port did not show in CLUSTER SLOTS');
    window_ok('cluster-node', 'cluster:' . $c->address, $gate, $c->port,
              sub { DQNginx::stored($c, $_[0]) },
              sub { $c->cmd('HGET', DQTest::dq_key($_[0], 'conf'), 'paused') });
}

# --- Sentinel and Cluster, Redis down for good: each 503 from a failed
# attempt (the sentinel names a shut port; the only seed is one), never
# at deferred_timeout
for my $form (qw(sentinel cluster)) {
    my $gate = free_port();
    my $addr = "cluster:127.0.0.1:$gate";
    if ($form eq 'sentinel') {
        my $s = DQSentinel::spawn_sentinel("$dir/s/d1", 'dqd', $gate, 1);
        $addr = "sentinel:dqd\@127.0.0.1:$s->{port}";
    }
    my $n = DQNginx->start(workers => 1, vars => { ADDR => $addr }, http => $conf);
    my ($worst, $bad) = (0, 0);
    for (1 .. 10) {
        my $t0 = time;
        my $a = one($n);
        my $dt = time - $t0;
        $worst = $dt if $dt > $worst;
        $bad++ unless $a->{status} == 503 && $a->{body} =~ /not reachable/;
    }
    is($bad, 0, "$form down for good: 10 requests one after the other: each 503 \"Redis is not reachable\"");
    cmp_ok($worst, '<', 5, "$form down for good: each answered long before deferred_timeout (10 s)");
    diag sprintf '%s down for good: the slowest of 10 took %.3f s', $form, $worst;
    is($n->stop, 0, "$form down for good: nginx exited with status 0");
    log_clean_ok($n->error_log, "$form down for good: nginx error log");
}

# --- Redis down for good: 503 from a failed attempt, never at the timeout
{
    my $gate = free_port();
    my $n = DQNginx->start(workers => 1, vars => { ADDR => "127.0.0.1:$gate" },
                           http => $conf);
    my ($worst, $bad) = (0, 0);
    for (1 .. 20) {
        my $t0 = time;
        my $a = one($n);
        my $dt = time - $t0;
        $worst = $dt if $dt > $worst;
        $bad++ unless $a->{status} == 503 && $a->{body} =~ /not reachable/;
    }
    is($bad, 0, 'down for good: 20 requests one after the other: each 503 "Redis is not reachable"');
    cmp_ok($worst, '<', 5, 'down for good: each answered long before deferred_timeout (10 s)');
    diag sprintf 'down for good: the slowest of 20 took %.3f s', $worst;
    my @reqs = burst_reqs('dg');
    my $t0 = time;
    my @res = $n->many([ map { $_->[1] } @reqs ], conns => scalar @reqs, timeout => 30);
    my $took = time - $t0;
    my @bad = grep { $res[$_]{status} != 503 } 0 .. $#reqs;
    is(scalar @bad, 0, 'down for good: a burst of ' . scalar(@reqs) . ': every one 503')
        or diag join "\n", map { "$_: $res[$_]{status} $res[$_]{body}" } @bad[0 .. ($#bad > 4 ? 4 : $#bad)];
    cmp_ok($took, '<', 5, 'down for good: the burst answered long before deferred_timeout');
    diag sprintf 'down for good: the burst took %.3f s', $took;

    is($n->stop, 0, 'down for good: nginx exited with status 0');
    log_clean_ok($n->error_log, 'down for good: nginx error log');
}

# --- a client that leaves while it waits for the next attempt: 499 (its
# request right after another one's failed attempt, while the outage is
# young: a fresh nginx each try, up to 5, as a loaded machine may take
# 100 ms between the two): a deferred_enqueue location, an operator
# request and the deferred POST endpoint (before the fix of t/156 it
# answered 503 when the attempt failed, to a client gone)
{
    my $gate = free_port();
    for my $req (DQNginx::build_request('GET', '/enq'),
                 DQNginx::build_request('GET', '/s/status'),
                 DQNginx::build_request('POST', '/ep',
                     json => '{"func":"noop","queue":"left"}')) {
        my ($method, $path) = $req =~ /^(\S+) (\S+)/;
        my ($left, $log) = (0, '');
        for (1 .. 5) {
            my $n = DQNginx->start(workers => 1, vars => { ADDR => "127.0.0.1:$gate" },
                                   http => $conf);
            one($n);
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $n->port) or die;
            print {$s} $req;
            sleep 0.02;     # a close that came with the request is not seen
            close $s;
            sleep 0.5;
            $log = slurp($n->dir . '/logs/bw.log');
            $left = () = $log =~ /^\S+ 499 \S+ \Q$method $path\E /mg;
            is($n->stop, 0, "young outage: nginx exited with status 0");
            last if $left;
        }
        ok($left, "young outage: a client that left while its request waited: 499 ($path)")
            or diag join "", grep { /GET|POST/ } split /^/m, $log;
    }
}

done_testing;
