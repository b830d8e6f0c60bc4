# Redis Cluster operations under load (issue 15, "must be shown").
#
# A local 3-master / 3-replica cluster (t/lib/DQCluster.pm: appendonly
# yes, appendfsync always on every node), nginx enqueueing through
# `deferred_redis cluster:... replicas=1` (a 201 only once a replica has
# the task: WAIT 1, docs/OPERATIONS.md), two worker masters
# (`redis "cluster:..."`) running the tasks. HTTP POSTs of named tasks go
# on, spread over four queues (one in each master's slots, and the busy
# queue "hot*" taking half of them), while:
#   (a) `redis-cli --cluster reshard` moves the busy queue's slot (with
#       999 others of the same master) to another master;
#   (b) `CLUSTER FAILOVER` on a replica promotes it (its master alive: the
#       replica catches up first, so nothing written is lost by Redis);
#   (c) the master now serving the busy queue killed -9: the cluster
#       promotes its replica; the killed node, started again on its own
#       AOF, rejoins as a replica.
# Each phase: every task nginx answered 201 for must run (lost = 0: with
# WAIT 1 a 201'd task is on the replica too) and, in (a) and (b), none
# twice (a moved slot or a promoted replica loses no write, so an ack is
# never lost: a run twice would be a redirect or a TRYAGAIN handled as a
# failure; in (c) a claim or ack only the dead master saw is lost with it
# and the task runs again: counted, not asserted); failed requests (not
# 201) are counted and printed, by status and message.
# Whether the module and the worker follow the cluster at all is probed
# first (a task for each queue through nginx; a task on each master run by
# the workers); the counts are asserted in TODO blocks while a part does
# not. Written before Redis Cluster support landed, it failed then (as
# TODO): nginx -t refused the cluster: address ("host not found") and the
# workers ran none of the tasks stored on each master.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQNginx;
use DQCluster;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir);
my $addr = $c->address;
my $K = 1000;                                 # slots the reshard moves

# the busy queue, in the first K slots of its master; one queue more on
# each master
my $hot = $c->queue_in_first($K, 'hot');
my $from = $c->owner($hot);
my @queues = ($hot);
my %have = ($from->port => 0);
for my $i (1 .. 200) {
    my $p = $c->owner("q$i")->port;
    next if exists $have{$p} && $have{$p} == 1;
    $have{$p} = ($have{$p} // 0) + 1;
    push @queues, "q$i";
    last if @queues == 4;
}
my $to = (grep { $_->port != $from->port } $c->masters)[0];
ok(@queues == 4, "queues @queues; $hot (slot " . $c->slot("{$hot}")
   . ") on " . $from->port);

my $rec = "$dir/runs.rec";
my $qconf = join '', map { "queue $_ { retry_limit 20; min_backoff 100ms; max_backoff 500ms; }\n" } @queues;
my @w;
for my $name (qw(w1 w2)) {
    push @w, DQWorker::start_master(undef, $dir, name => $name, wait => 0, conf => <<"EOF");
redis "$addr";
library "$lib";
processes 1;
threads 2;
lease 3s;
$qconf
EOF
}

my $n = eval {
    mkdir "$dir/nginx";
    DQNginx->start(dir => "$dir/nginx", vars => { CL => $addr }, http => q{
        deferred_redis %%CL%% replicas=1 replicas_timeout=2s connect_timeout=500ms;
        server {
            listen 127.0.0.1:%%PORT%%;
            keepalive_requests 100000;
            deferred_endpoint on;
        }
    });
};
diag("nginx did not start with $addr: $@") unless $n;

my %acked;        # task id => phase
my %sent;         # phase => [acked, failed]
my %why;          # phase => {failure (status body) => count}
my $seq = 0;

sub post_batch {
    my ($phase, $k) = @_;
    return (0, 0) unless $n;
    my @names = map { "$phase-" . ++$seq } 1 .. $k;
    my @res = $n->many([ map {
        my $q = $_ % 2 ? $hot : $queues[1 + $_ % 3];
        DQNginx::build_request('POST', '/_ah/queue/deferred',
            json => qq({"func":"ops.run","queue":"$q","name":"$names[$_]","args":["$rec"]}))
    } 0 .. $#names ], conns => $k, timeout => 10);
    my ($ok, $bad) = (0, 0);
    for my $x (@res) {
        my ($id) = ($x->{body} // '') =~ /"id":"([^"]+)"/;
        if ($x->{status} == 201 && $id) { $acked{$id} = $phase; $ok++; next }
        $bad++;
        my $why = $x->{status} . ' ' . (($x->{body} // $x->{error} // '') =~ s/\s+/ /gr);
        $why{$phase}{ substr($why, 0, 100) }++;
    }
    $sent{$phase}[0] += $ok;
    $sent{$phase}[1] += $bad;
    return ($ok, $bad);
}

# runs per task id (ops.run: "R <id> ...")
sub ran { DQWorker::count_by_id($rec) }

# ---- probes: does the module follow the cluster? does the worker?
# (the module asks for the slot map when it starts: 503 until it has it)
my $module_ok = DQTest::wait_for(sub { (post_batch('probe', 8))[0] == 8 }, 10, 0.2);
diag('probe: nginx acknowledged ' . ($sent{probe}[0] // 0) . ' of '
     . (($sent{probe}[0] // 0) + ($sent{probe}[1] // 0)) . ' tasks over the four queues');
# a task on each queue stored on its own master (works without cluster
# support in deferred-cli), run by the workers?
my @direct;
for my $q (@queues) {
    my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->owner($q)->address,
        'defer', '-q', $q, 'ops.run', $rec);
    my ($id) = $out =~ /(\S+)/;
    push @direct, $id if $rc == 0 && $id;
    diag("deferred-cli defer -q $q at its master: exit $rc $err") if $rc;
}
my $worker_ok = @direct == @queues && DQTest::wait_for(sub { my $r = ran(); !grep { !$r->{$_} } @direct }, 15, 0.1);
diag('probe: the workers ran ' . scalar(grep { ran()->{$_} } @direct) . ' of '
     . scalar(@direct) . ' tasks stored on each master');
my $todo = !$module_ok ? 'Redis Cluster in the module (issue 15 item 1, wip/M) not on main yet'
         : !$worker_ok ? 'Redis Cluster in the worker (issue 15 item 1, wip/W) not on main yet'
         : undef;

# load for $before s, then $start->() and load while $busy->() is true (at
# most 30 s), then $after s more; returns how long the operation took and
# the requests acknowledged / failed while it ran
sub load {
    my ($phase, $before, $start, $busy, $after) = @_;
    my $t0 = time;
    post_batch($phase, 10) while time - $t0 < $before && $n;
    sleep $before unless $n;
    my ($ok0, $bad0) = @{ $sent{$phase} || [0, 0] };
    $start->();
    my $t1 = time;
    while ($busy->() && time - $t1 < 30) {
        my ($ok, $bad) = post_batch($phase, 10);
        sleep 0.05 if !$n || ($bad && !$ok);
    }
    my $t2 = time;
    my ($ok1, $bad1) = @{ $sent{$phase} || [0, 0] };
    post_batch($phase, 10) while time - $t2 < $after && $n;
    return ($t2 - $t1, $ok1 - $ok0, $bad1 - $bad0);
}

# ---- (a) the busy queue's slot moves to another master under load
my $slot = $c->slot("{$hot}");
my ($rpid, $rst);
my ($took, $ok_during, $bad_during) = load('reshard', 1,
    sub { $rpid = DQTest::spawn(name => 'reshard', log => "$dir/reshard.log",
                                cmd => [$c->reshard_cmd($from, $to, $K)]) },
    sub { !defined($rst = DQTest::reaped($rpid)) }, 1);
is($rst, 0, sprintf('reshard of %d slots from %d to %d done in %.2f s under load',
                    $K, $from->port, $to->port, $took))
    or diag(DQTest::slurp("$dir/reshard.log"));
diag("reshard: $ok_during requests acknowledged, $bad_during failed while it ran");
ok(!$n || $ok_during + $bad_during > 0, 'requests were sent while the slots moved');
ok($c->wait_ok(30), 'the cluster is ok, every node agrees on the slots');
is($c->owner($hot)->port, $to->port, "slot $slot ($hot) is served by " . $to->port . ' now');

# ---- (b) a replica of the master now serving the busy queue is promoted
my $old = $c->owner($hot);
my $rep = $c->replica_of($old);
ok($rep, 'a replica of ' . $old->port . ': ' . ($rep ? $rep->port : 'none'));
if ($rep) {
    # a manual failover that cannot finish in Redis' 5 s (a replica slow
    # to catch up on a loaded machine) is aborted: asked again, as an
    # operator would, every 6 s
    my $asked;
    my $ask = sub { $asked = time;
                    my $r = $rep->cmd('CLUSTER', 'FAILOVER');
                    diag("CLUSTER FAILOVER: $r->{err}") if ref $r eq 'HASH' };
    ($took, $ok_during, $bad_during) = load('failover', 1, $ask,
        sub { my $busy = (DQCluster::_role($rep)->[0] // '') ne 'master';
              if ($busy && time - $asked > 6) { diag('CLUSTER FAILOVER again'); $ask->() }
              $busy }, 1.5);
    diag(sprintf('failover: %.2f s; %d requests acknowledged, %d failed meanwhile',
                 $took, $ok_during, $bad_during));
    # (a manual failover takes ~0.1 s: a batch or none falls inside it;
    # the load runs right up to it and right after it either way)
}
ok($rep && (DQCluster::_role($rep)->[0] // '') eq 'master' && $c->wait_ok(30),
   'CLUSTER FAILOVER: ' . ($rep ? $rep->port : '?') . " is a master, the cluster ok");
is($c->owner($hot)->port, $rep ? $rep->port : 0, "the cluster names it for ${hot}'s slot");

# ---- (c) the master serving the busy queue killed -9: its replica (the
# old master) is promoted by the cluster itself; the killed node started
# again rejoins as its replica (until then WAIT 1 cannot be met there:
# 503s for that master's queues, counted)
my $dead = $c->owner($hot);
my $heir = $c->replica_of($dead);
ok($heir, 'the master of ' . $hot . "'s slot, " . $dead->port . ', has a replica: '
   . ($heir ? $heir->port : 'none'));
if ($heir) {
    my $revived;
    ($took, $ok_during, $bad_during) = load('kill9', 1,
        sub { $c->kill_node($dead) },
        sub {
            return 1 if (DQCluster::_role($heir)->[0] // '') ne 'master';
            $c->revive($dead) unless $revived++;
            my $r = DQCluster::_role($dead);
            return !(($r->[0] // '') eq 'slave' && ($r->[3] // '') eq 'connected');
        }, 1.5);
    diag(sprintf('kill -9: %.2f s until the replica was promoted and the killed node '
                 . 'was its replica again; %d requests acknowledged, %d failed meanwhile',
                 $took, $ok_during, $bad_during));
}
ok($heir && (DQCluster::_role($heir)->[0] // '') eq 'master' && $c->wait_ok(30),
   'automatic failover: ' . ($heir ? $heir->port : '?') . ' is a master, the cluster ok');
is($c->owner($hot)->port, $heir ? $heir->port : 0, "the cluster names it for ${hot}'s slot");

# ---- every acknowledged task runs, once
my @all = keys %acked;
DQTest::wait_for(sub { my $r = ran(); !grep { !$r->{$_} } @all }, $todo ? 5 : 30, 0.1);
my $runs = ran();
for my $phase (qw(probe reshard failover kill9)) {
    my @mine = grep { $acked{$_} eq $phase } @all;
    my $lost = grep { !$runs->{$_} } @mine;
    my $twice = grep { ($runs->{$_} // 0) > 1 } @mine;
    my ($ok, $bad) = @{ $sent{$phase} || [0, 0] };
    diag(sprintf('%s: %d acknowledged, %d lost, %d ran twice, %d failed requests',
                 $phase, scalar(@mine), $lost, $twice, $bad));
    diag("  $why{$phase}{$_} x $_") for sort keys %{ $why{$phase} || {} };
    TODO: {
        local $TODO = $todo;
        ok(@mine > 0, "$phase: tasks acknowledged (" . scalar(@mine) . ')');
        is($lost, 0, "$phase: no acknowledged task lost");
        # a claim or an ack that reached only the killed master is lost
        # with it: the task runs again (docs/OPERATIONS.md, at least once)
        is($twice, 0, "$phase: no task ran twice") unless $phase eq 'kill9';
    }
}

for my $w (@w) {
    ok(!defined DQTest::reaped($w->{pid}), "$w->{name}: the worker master is still running");
    is(DQTest::stop_pid($w->{pid}), 0, "$w->{name} stops cleanly");
    DQTest::log_clean_ok($w->{log}, "$w->{name}'s log");
}
if ($n) {
    $n->stop;
    DQTest::log_clean_ok($n->error_log);
}
done_testing();
