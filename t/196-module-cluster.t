# The nginx module on a Redis Cluster (issue 15, item 1, module part).
#
# A local 3-master / 3-replica cluster (t/lib/DQCluster.pm); nginx is
# given `deferred_redis cluster:REPLICA,MASTER replicas=1` (a replica
# seed answers CLUSTER SLOTS too; WAIT 1 on each task's own master).
#   - one queue on each master: 201, the task on its queue's master;
#     a batch over the three queues; the status page lists the queues of
#     every master (their keys live on three nodes, dq:queues on a
#     fourth slot), admin pause/resume reach each queue's master,
#     metrics and readiness answer;
#   - a redirect loop (two masters naming each other for a slot): 503
#     after 5 redirects, logged;
#   - a reload (the old workers exit, the new ones ask again);
#   - one master stuck (SIGSTOP): its queue 503 after deferred_timeout,
#     the other masters' queues 201 meanwhile, ready 503 (every master is
#     asked);
#   - db=1 with a cluster: refused by nginx -t;
#   - a map naming its nodes by host name (cluster-preferred-endpoint-type
#     hostname): refused with a clear line, 503 (never resolved);
#   - no seed answering: 503, logged;
#   - a password (requirepass on every node): AUTH to the seed and to
#     every master (201 on each); no password: 503;
#   - a slot moved by hand under load (CLUSTER SETSLOT IMPORTING /
#     MIGRATING, MIGRATE of its keys, SETSLOT NODE): the module follows
#     ASK (ASKING + the command on the importing node) and MOVED (re-sent
#     at once, the map asked again);
#   - a master killed -9 under load, its replica promoted (failover by
#     the cluster itself), the killed one restarted (it comes back as the
#     new master's replica, so WAIT 1 can succeed again): the module
#     follows the new map.
# While the load runs, every request names its task uniquely: every 2xx
# answer's task must be on its queue's master (now) exactly once, no
# request may answer 409 (a re-sent enqueue that had run), non-2xx
# answers are counted and printed.
# Before the module's cluster support nginx -t refused the address.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQNginx;
use DQCluster;
use POSIX ();
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir);
my @m = $c->masters;
is(scalar @m, 3, 'three masters');
my $first = ($c->nodes)[0];

# one queue per master
my %qof;
for my $i (1 .. 500) {
    my $q = "cq$i";
    $qof{ $c->owner($q)->port } //= $q;
    last if keys %qof == 3;
}
my @queues = map { $qof{ $_->port } } @m;
is(scalar(grep { defined } @queues), 3, "a queue on each master: @queues");

# replicas=1 below: each master's replica must be in sync first
sub replicated {
    for my $x (@_) {
        my $i = eval { $x->cmd('INFO', 'replication') } // '';
        return 0 unless $i =~ /slave0:.*state=online/;
    }
    return 1;
}
ok(DQTest::wait_for(sub { replicated(@m) }, 30, 0.2), 'every master has its replica online');

my %is_master = map { $_->port => 1 } @m;
my ($replica) = grep { !$is_master{ $_->port } } $c->nodes;
my $seeds = 'cluster:' . $replica->address . ',' . $m[0]->address;

mkdir "$dir/nginx";
my $n = DQNginx->start(dir => "$dir/nginx", vars => { SEEDS => $seeds }, http => q{
    deferred_redis %%SEEDS%% replicas=1 replicas_timeout=2s connect_timeout=500ms;
    deferred_timeout 5s;
    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 100000;
        deferred_endpoint on;
        location = /status  { deferred_status; }
        location = /metrics { deferred_metrics; }
        location = /ready   { deferred_ready; }
        location = /admin   { deferred_admin; }
        location = /short   { deferred_timeout 1s; deferred_endpoint on; }
        location = /ready1s { deferred_timeout 1s; deferred_ready; }
    }
});

sub on_owner {
    my ($q, $id) = @_;
    my $o = $c->owner($q) or return 0;
    return $o->cmd('HEXISTS', "dq2:{$q}:tasks", $id);
}

# ---- one task per queue, a batch over all three
for my $q (@queues) {
    my $res = $n->request('POST', '/_ah/queue/deferred',
                          json => qq({"func":"ops.run","queue":"$q","args":["x"]}));
    my ($id) = ($res->{body} // '') =~ /"id":"([^"]+)"/;
    is($res->{status}, 201, "a task for $q (master " . $c->owner($q)->port . "): 201");
    ok($id && on_owner($q, $id), "... stored on that master");
}
my $batch = '[' . join(',', map { qq({"func":"ops.run","queue":"$_","args":["b"]}) } @queues) . ']';
my $res = $n->request('POST', '/_ah/queue/deferred', json => $batch);
is($res->{status}, 201, 'a batch over the three queues: 201');
my @ids = ($res->{body} // '') =~ /"id":"([^"]+)"/g;
is(scalar @ids, 3, 'three ids back');
is(scalar(grep { on_owner($queues[$_], $ids[$_]) } 0 .. 2), 3,
   'each batch task on its own queue\'s master');

$res = $n->request('GET', '/status');
is($res->{status}, 200, 'status: 200');
for my $q (@queues) {
    like($res->{body}, qr/"queue":"$q"/, "status lists $q");
}
# admin actions go to the queue's own master
for my $q (@queues) {
    $res = $n->request('POST', "/admin?action=pause&queue=$q", body => '',
                       headers => { 'X-Deferred-Admin' => '1' });
    is($res->{status}, 200, "admin: pause $q: 200");
    is($c->owner($q)->cmd('HGET', "dq2:{$q}:conf", 'paused'), '1', "... paused on its master");
    $res = $n->request('POST', "/admin?action=resume&queue=$q", body => '',
                       headers => { 'X-Deferred-Admin' => '1' });
    is($res->{status}, 200, "admin: resume $q: 200");
}
$res = $n->request('GET', '/metrics');
like($res->{body} // '', qr/deferred_redis_up 1/, 'metrics: redis up');
is($n->request('GET', '/ready')->{status}, 200, 'ready: 200');

# ---- a redirect loop (master A says a fresh slot is B's, B still
# thinks it is A's): the command fails after 5 redirects, 503, logged
{
    my ($a, $b) = @m[0, 1];
    my ($lq) = grep { $c->owner($_)->port == $a->port } map { "lq$_" } 1 .. 500;
    my $ls = $a->cmd('CLUSTER', 'KEYSLOT', "{$lq}");
    is($a->cmd('CLUSTER', 'SETSLOT', $ls, 'NODE', $b->cmd('CLUSTER', 'MYID')), 'OK',
       "slot $ls: A names B, B still names A");
    $res = $n->request('POST', '/_ah/queue/deferred',
                       json => qq({"func":"ops.run","queue":"$lq","args":["l"]}));
    is($res->{status}, 503, 'a redirect loop: 503');
    like(DQTest::slurp($n->error_log), qr/more than 5 redirects for one command, the last: MOVED $ls /,
         '... after 5 redirects, logged');
    $a->cmd('CLUSTER', 'SETSLOT', $ls, 'NODE', $a->cmd('CLUSTER', 'MYID'));
    ok(DQTest::wait_for(sub {
        $n->request('POST', '/_ah/queue/deferred',
                    json => qq({"func":"ops.run","queue":"$lq","args":["l"]}))->{status} == 201
    }, 10, 0.2), '... and 201 again once A takes its slot back');
}

# ---- a reload: the old workers (a connection per master, the map's
# timer) exit, the new ones ask for the map again
{
    my %before = map { $_ => 1 } $n->worker_pids;
    ok($n->reload, 'reload: new workers');
    ok(DQTest::wait_for(sub { !grep { $before{$_} } $n->worker_pids }, 20, 0.1),
       '... the old workers exited');
    my @r = $n->many([ map {
        DQNginx::build_request('POST', '/_ah/queue/deferred',
                               json => qq({"func":"ops.run","queue":"$_","args":["r"]}))
    } @queues ], conns => 3);
    is(scalar(grep { $_->{status} == 201 } @r), 3, '... and a task per master: 201');
}

# ---- one master stuck (SIGSTOP, for less than the cluster's node
# timeout): its queue answers 503 after deferred_timeout, the others 201
{
    my $stuck = $c->owner($queues[1]);
    kill 'STOP', $stuck->pid;
    my @r = $n->many([ (map {
        DQNginx::build_request('POST', '/short',
                               json => qq({"func":"ops.run","queue":"$_","args":["s"]}))
    } @queues), DQNginx::build_request('GET', '/ready1s') ], conns => 4, timeout => 10);
    kill 'CONT', $stuck->pid;
    is($r[3]{status}, 503, 'ready: 503 while one master (not slot 0\'s) does not answer');
    is($r[1]{status}, 503, "a stuck master: $queues[1] 503 after deferred_timeout");
    is($r[0]{status}, 201, "... $queues[0] on another master: 201");
    is($r[2]{status}, 201, "... $queues[2] on another master: 201");
    # (a worker that had no connection to it yet sees its connect time
    # out: connect_timeout is shorter)
    like(DQTest::slurp($n->error_log),
         qr/no reply within deferred_timeout|127\.0\.0\.1:${\ $stuck->port}: connect timed out/,
         '... the timeout logged');
}

# ---- db=1 on a cluster: a configuration error
{
    my $conf = DQTest::slurp($n->{conf_file});
    (my $bad = $conf) =~ s/replicas=1 /replicas=1 db=1 /;
    open my $fh, '>', "$dir/nginx/bad.conf" or die $!;
    print {$fh} $bad;
    close $fh;
    my ($ok, $out) = $n->test_conf("$dir/nginx/bad.conf");
    ok(!$ok, 'db=1 with a cluster: nginx -t fails');
    like($out, qr/a Redis Cluster has only database 0/, '... and says why');
}

# ---- the load: a child posts batches of 10 uniquely named tasks over
# the three queues until told to stop; one line per answer
my $seq = 0;
sub start_load {
    my ($tag) = @_;
    my $out = "$dir/load-$tag";
    my $stop = "$dir/stop-$tag";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $fh, '>', $out or POSIX::_exit(1);
        $fh->autoflush(1);
        my $k = 0;
        while (!-e $stop) {
            my @t = map { my $q = $queues[$k % 3]; ["$tag-" . $k++, $q] } 1 .. 10;
            my @r = $n->many([ map {
                DQNginx::build_request('POST', '/_ah/queue/deferred',
                    json => qq({"func":"ops.run","queue":"$_->[1]","name":"$_->[0]","args":["l"]}))
            } @t ], conns => 10, timeout => 15);
            for my $i (0 .. $#t) {
                my ($id) = ($r[$i]{body} // '') =~ /"id":"([^"]+)"/;
                printf {$fh} "%s %s %s %s %.3f\n", $r[$i]{status} // 0, $id // '-',
                       $t[$i][1], $t[$i][0], time;
            }
            sleep 0.02;
        }
        close $fh;
        POSIX::_exit(0);
    }
    return { pid => $pid, out => $out, stop => $stop, tag => $tag };
}

sub stop_load {
    my ($l) = @_;
    open my $fh, '>', $l->{stop} or die $!;
    close $fh;
    waitpid $l->{pid}, 0;
    my @a;
    open $fh, '<', $l->{out} or die "$l->{out}: $!";
    while (<$fh>) {
        my ($st, $id, $q, $name, $t) = split;
        push @a, { status => $st, id => $id, queue => $q, name => $name, t => $t };
    }
    return @a;
}

sub answered_since {
    my ($l, $q, $t0) = @_;
    open my $fh, '<', $l->{out} or return 0;
    my $k = 0;
    while (<$fh>) {
        my ($st, $id, $qq, $name, $t) = split;
        $k++ if $st =~ /^2/ && $qq eq $q && $t >= $t0;
    }
    return $k;
}

# every 2xx answer's task on its queue's master; counts printed
sub check_round {
    my ($what, @a) = @_;
    my (%by, $missing, $conflict);
    $by{ $_->{status} }++ for @a;
    my @ok = grep { $_->{status} =~ /^2/ } @a;
    $missing = grep { !on_owner($_->{queue}, $_->{id}) } @ok;
    $conflict = $by{409} // 0;
    my %seen;
    my $twice = grep { $seen{ $_->{name} }++ } @ok;
    ok(@ok > 0, "$what: enqueues acknowledged (" . scalar(@ok) . ')');
    is($missing, 0, "$what: every 2xx task is on its queue's master");
    is($twice, 0, "$what: no name acknowledged twice");
    is($conflict, 0, "$what: no 409 (nothing re-sent after it ran)");
    diag("$what: answers " . join(', ', map { "$_: $by{$_}" } sort keys %by)
         . '; ' . scalar(@ok) . ' acknowledged, ' . (@a - @ok) . " failed, $missing missing");
}

# ---- a slot moved under load: ASK, then MOVED
{
    my $q = $queues[0];
    my $src = $c->owner($q);
    my ($dst) = grep { $_->port != $src->port } @m;
    my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$q}");
    my $srcid = $src->cmd('CLUSTER', 'MYID');
    my $dstid = $dst->cmd('CLUSTER', 'MYID');
    my $l = start_load('mv');
    sleep 1;
    is($dst->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $srcid), 'OK', "slot $slot importing on " . $dst->port);
    is($src->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $dstid), 'OK', "slot $slot migrating on " . $src->port);
    sleep 0.5;
    my $moved_keys = 0;
    for (1 .. 100) {
        my $keys = $src->cmd('CLUSTER', 'GETKEYSINSLOT', $slot, 2);
        last unless ref $keys && @$keys;
        my $r = $src->cmd('MIGRATE', '127.0.0.1', $dst->port, '', 0, 5000, 'KEYS', @$keys);
        die "MIGRATE: $r->{err}" if ref $r eq 'HASH';
        $moved_keys += @$keys;
        sleep 0.1;
    }
    ok($moved_keys > 0, "$moved_keys keys of $q migrated under load");
    sleep 0.3;
    for my $x ($dst, $src, grep { $_->port != $src->port && $_->port != $dst->port } @m) {
        $x->cmd('CLUSTER', 'SETSLOT', $slot, 'NODE', $dstid);
    }
    my $t_moved = time;
    ok(DQTest::wait_for(sub { answered_since($l, $q, $t_moved) >= 20 }, 20, 0.1),
       "$q acknowledged again after the move");
    my @a = stop_load($l);
    check_round('slot move', @a);
    is($c->owner($q)->port, $dst->port, "$q now on " . $dst->port);
    my $el = DQTest::slurp($n->error_log);
    like($el, qr/ASK $slot: to 127\.0\.0\.1:${\ $dst->port}/, 'ASK followed (logged)');
    like($el, qr/MOVED $slot: to 127\.0\.0\.1:${\ $dst->port}/, 'MOVED followed (logged)');
}

# ---- a master killed under load, its replica promoted
{
    my $q = $queues[2];
    my $victim = $c->owner($q);
    if ($victim->port == $first->port) {
        ($q) = grep { $c->owner($_)->port != $first->port } @queues;
        $victim = $c->owner($q);
    }
    my $l = start_load('fo');
    sleep 1;
    kill 'KILL', $victim->pid;
    my $t_kill = time;
    ok(DQTest::wait_for(sub {
        my $o = eval { $c->owner($q) };
        $o && $o->port != $victim->port;
    }, 30, 0.2), "a replica took over the slots of $q");
    # the new master has no replica (WAIT 1 fails: 503 "not replicated
    # in time", the task stored) until the killed one is back as its
    # replica
    $victim->_launch;
    my $new = $c->owner($q);
    ok(DQTest::wait_for(sub { replicated($new) }, 30, 0.2),
       'the killed master is back, a replica of the new one');
    my $t_new = time;
    ok(DQTest::wait_for(sub { answered_since($l, $q, $t_new) >= 20 }, 30, 0.1),
       "$q acknowledged again through the new master");
    my @a = stop_load($l);
    check_round('failover', @a);
    my @late = grep { $_->{status} =~ /^2/ && $_->{queue} eq $q && $_->{t} > $t_kill } @a;
    diag(sprintf("failover: first 201 for %s %.2f s after the kill",
                 $q, @late ? $late[0]{t} - $t_kill : -1));
}

$n->stop;
DQTest::log_clean_ok($n->error_log);

# ---- a map naming its nodes by host name: refused, never resolved (a
# lookup would block the nginx worker); 503 and a clear line
for my $x ($c->nodes) {
    next unless $x->pid;
    $x->cmd('CONFIG', 'SET', 'cluster-announce-hostname', 'localhost');
    $x->cmd('CONFIG', 'SET', 'cluster-preferred-endpoint-type', 'hostname');
}
mkdir "$dir/nginx2";
my $n2 = DQNginx->start(dir => "$dir/nginx2", vars => { SEEDS => 'cluster:' . $first->address }, http => q{
    deferred_redis %%SEEDS%%;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
});
# (the seed names itself by its new host name at once, the others once
# gossip brought theirs: a queue of the seed's own)
my ($far) = grep { $c->owner($_)->port == $first->port } map { "hq$_" } 1 .. 500;
$res = $n2->request('POST', '/_ah/queue/deferred',
                    json => qq({"func":"ops.run","queue":"$far","args":["h"]}));
is($res->{status}, 503, "a map naming host names: 503 for $far");
like(DQTest::slurp($n2->error_log), qr/cluster node "localhost:\d+" is not a numeric address/,
     '... and the node refused with a clear line');
$n2->stop;

# ---- no seed answers: 503 at once, a clear line
my $deadport = DQTest::free_port();
mkdir "$dir/nginx3";
my $n3 = DQNginx->start(dir => "$dir/nginx3", vars => { SEEDS => "cluster:127.0.0.1:$deadport" }, http => q{
    deferred_redis %%SEEDS%% connect_timeout=300ms;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
        location = /status { deferred_status; }
    }
});
sleep 0.5;
my $t0 = time;
$res = $n3->request('POST', '/_ah/queue/deferred',
                    json => qq({"func":"ops.run","queue":"$queues[0]","args":["d"]}));
is($res->{status}, 503, 'no seed answers: 503');
diag(sprintf('no seed: the 503 came after %.2f s', time - $t0));
is($n3->request('GET', '/status')->{status}, 503, '... status 503');
like(DQTest::slurp($n3->error_log), qr/no cluster node answered CLUSTER SLOTS/,
     '... logged');
$n3->stop;

# ---- a cluster with a password: AUTH on every node (the map's question
# too); without it, 503 (NOAUTH: nothing runs unauthenticated)
for my $x ($c->nodes) {
    next unless $x->pid;
    $x->cmd('CONFIG', 'SET', 'cluster-preferred-endpoint-type', 'ip');
    $x->cmd('CONFIG', 'SET', 'masterauth', 'pw9');
    $x->cmd('CONFIG', 'SET', 'requirepass', 'pw9');
}
mkdir "$dir/nginx4";
my $n4 = DQNginx->start(dir => "$dir/nginx4", vars => { SEEDS => 'cluster:' . $first->address }, http => q{
    deferred_redis %%SEEDS%% password=pw9;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
        location = /nopw { deferred_redis %%SEEDS%%; deferred_endpoint on; }
    }
});
my %pq;
for my $i (1 .. 500) {
    $pq{ $c->owner("pq$i")->port } //= "pq$i";
    last if keys %pq == 3;
}
is(scalar(keys %pq), 3, 'a queue on each of the three masters now');
for my $q (values %pq) {
    $res = $n4->request('POST', '/_ah/queue/deferred',
                        json => qq({"func":"ops.run","queue":"$q","args":["p"]}));
    is($res->{status}, 201, "password=: 201 for $q (master " . $c->owner($q)->port . ')');
}
is($n4->request('POST', '/nopw', json => qq({"func":"ops.run","queue":"$queues[0]"}))->{status},
   503, 'no password: 503');
like(DQTest::slurp($n4->error_log), qr/CLUSTER SLOTS on [\d.]+:\d+: refused: NOAUTH/,
     '... the map refused, logged');
$n4->stop;
done_testing();
