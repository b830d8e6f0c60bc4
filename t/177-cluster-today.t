# Redis Cluster as today's code meets it (issue 15, item 1: not built
# yet). A local 3-master / 3-replica cluster (t/lib/DQCluster.pm); every
# part is given ONE node's address, as a user would try first. Queue qa
# lives on that node, queue qb on another.
# What should hold once Cluster is supported is asserted in TODO blocks
# (prove reports them as "todo", they do not fail the suite); what happens
# today is printed. With a cluster: address naming that one node, each
# part follows the map: deferred-cli (and it says to give cluster: when a
# plain node address meets MOVED), the worker (one wake BLPOP per slot),
# nginx (t/196 has the rest). A worker given the plain node address still
# runs only the local queue (printed).
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

# two queue names on different masters
my ($qa, $qb, $home);
for my $i (1 .. 50) {
    my ($x, $y) = ("qa$i", "qb$i");
    next if $c->owner($x)->port == $c->owner($y)->port;
    ($qa, $qb, $home) = ($x, $y, $c->owner($x));
    last;
}
ok($home, "queue $qa on node " . $home->port . ", queue $qb on node " . $c->owner($qb)->port);

# ---- deferred-cli given the node of qa
my ($rc, $out, $err) = DQWorker::cli($home, 'defer', '-q', $qa, 'ops.run', "$dir/a.rec");
is($rc, 0, "deferred-cli: a task for $qa (on the node given) is stored") or diag $err;
($rc, $out, $err) = DQWorker::cli($home, 'defer', '-q', $qb, 'ops.run', "$dir/b.rec");
is($rc, 1, "deferred-cli given one node's plain address, a queue on another: exit 1");
like($err, qr/MOVED \d+ \S+ \(\S+ is a Redis Cluster node: give the address as cluster:/,
     '... saying to give a cluster: address') or diag $err;
# the cluster: form follows MOVED (t/172-client-cluster.t: every subcommand)
($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', 'cluster:' . $home->address,
                                    'defer', '-q', $qb, 'ops.run', "$dir/b0.rec");
is($rc, 0, "deferred-cli: a task for $qb stored through any node (cluster:)") or diag $err;
is($c->owner($qb)->cmd('ZCARD', DQTest::dq_key($qb, 'eta')), 1, "... on ${qb}'s own node");
# a task for qb stored on its own node, for the worker below
($rc, $out, $err) = DQWorker::cli($c->owner($qb), 'defer', '-q', $qb, 'ops.run', "$dir/b.rec");
is($rc, 0, "deferred-cli given qb's own node stores its task") or diag $err;

# ---- a worker given the node of qa, serving qa and qb: first as one
# server (what a user tries first: its commands for qb get -MOVED), then
# as a cluster (redis cluster:HOST:PORT): both queues served
my $w = DQWorker::start_master($home, $dir, name => 'w', wait => 0, conf => <<"EOF");
library "$lib";
processes 1;
queue $qa { retry_limit 3; }
queue $qb { retry_limit 3; }
EOF
my $a_ran = DQTest::wait_for(sub { -s "$dir/a.rec" }, 10);
my $b_ran = DQTest::wait_for(sub { -s "$dir/b.rec" }, 3);
my $log = DQTest::slurp($w->{log});
my @seen = map { $log =~ /$_/ ? $_ : () } qw(MOVED CROSSSLOT ASK);
diag("one node's address as one server: the worker ran the task of $qa: "
     . ($a_ran ? 'yes' : 'no') . ", of $qb: " . ($b_ran ? 'yes' : 'no')
     . "; its log names: @seen");
ok(!defined DQTest::reaped($w->{pid}), 'the worker master is still running');
ok($a_ran, "the worker runs ${qa}'s task (on the node given)");
like($log, qr/is a Redis Cluster node: give the address as cluster:HOST:PORT/,
     'its log says to give a cluster: address');
is(DQTest::stop_pid($w->{pid}), 0, 'the worker stops cleanly');
DQTest::log_clean_ok($w->{log}, 'the worker log');

my $cw = DQWorker::start_master($home, $dir, name => 'cw', wait => 0, conf => <<"EOF");
redis cluster:@{[ $home->address ]};
library "$lib";
processes 1;
queue $qa { retry_limit 3; }
queue $qb { retry_limit 3; }
EOF
$b_ran = DQTest::wait_for(sub { -s "$dir/b.rec" }, 10);
($rc, $out, $err) = DQWorker::cli($home, 'defer', '-q', $qa, 'ops.run', "$dir/a2.rec");
is($rc, 0, "another task for $qa") or diag $err;
($rc, $out, $err) = DQWorker::cli($c->owner($qb), 'defer', '-q', $qb, 'ops.run', "$dir/b2.rec");
is($rc, 0, "another task for $qb (on its node)") or diag $err;
ok($b_ran, "redis cluster:ONE-NODE: the worker runs ${qb}'s task (another node)");
ok(DQTest::wait_for(sub { -s "$dir/a2.rec" && -s "$dir/b2.rec" }, 10),
   'and the tasks enqueued while it waits (its wake-ups: one BLPOP per slot)');
$log = DQTest::slurp($cw->{log});
unlike($log, qr/CROSSSLOT/, 'no CROSSSLOT in its log');
is(DQTest::stop_pid($cw->{pid}), 0, 'the cluster worker stops cleanly');
DQTest::log_clean_ok($cw->{log}, 'the cluster worker log');

# ---- nginx given the node of qa as its one cluster seed: it asks that
# node for the slot map and sends each queue's enqueue to its own master
# (before the module's cluster support: 503 for qb, MOVED not followed)
my $n = DQNginx->start(dir => do { mkdir "$dir/nginx"; "$dir/nginx" },
                       vars => { SEED => 'cluster:' . $home->address }, http => q{
    deferred_redis %%SEED%%;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
});
my %st;
for my $q ($qa, $qb) {
    my $res = $n->request('POST', '/_ah/queue/deferred',
                          json => qq({"func":"ops.run","queue":"$q","args":["$dir/n.rec"]}));
    $st{$q} = $res->{status};
    my ($id) = ($res->{body} // '') =~ /"id":"([^"]+)"/;
    ok($id && $c->owner($q)->cmd('HEXISTS', "dq2:{$q}:tasks", $id),
       "nginx: the task for $q is on its own master");
}
is($st{$qa}, 201, "nginx: a task for $qa (on the node given) is stored");
is($st{$qb}, 201, "nginx: a task for $qb (another master) is stored through the one seed");
$n->stop;
DQTest::log_clean_ok($n->error_log);
done_testing();
