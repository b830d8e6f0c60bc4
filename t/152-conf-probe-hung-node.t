# Review R4 finding 10: a sharded queue with a limit in the worker's file
# (max_concurrent) is not claimed before its shard count is read: shard
# 0's conf and the probe of shard N's conf (N known: 1 at the start;
# HGET {q#1}:conf shards, to catch a lost shard-0 count). The probe's
# slot may be on a master that has nothing to do with the other shards.
# That master hung (SIGSTOP; its replica told not to fail over, so it
# stays hung) when the worker starts: the probe was sent with no deadline
# and none of the queue's shards was ever claimed, those on healthy
# masters included. Now the conf read and the probe have
# DQ_CMD_TIMEOUT_MS (10 s), and a probe lost or not sent counts as
# "nothing more". Failed on main at e4e63bc (none of the tasks of shards
# 0 and 2 ran in 40 s).
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQWorker; use DQCluster;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my %master = map { $_->port => $_ } $c->masters;
# shards 0 and 2 on masters other than shard 1's (the first probe's)
my ($q, $X) = $c->queue_shard1_apart;
ok($q, "queue $q: shards 0 and 2 away from shard 1's master " . $X->port);
my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'queue', $q, '--shards', 3);
is($rc, 0, "$q: 3 shards") or diag $err;
my $rec = "$dir/p.rec";
($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'defer', '-q', $q,
                                    '--count', 6, 'ops.span', $rec, 100);
is($rc, 0, '6 tasks over the 3 shards') or diag $err;
my $healthy = $c->owner($q)->cmd('HLEN', "dq2:{$q}:tasks")
            + $c->owner("$q#2")->cmd('HLEN', "dq2:{$q#2}:tasks");
ok($healthy > 0, "$healthy of them on shards 0 and 2");

# X hangs for good: no failover, the rest of the cluster serves on
$_->cmd('CONFIG', 'SET', 'cluster-require-full-coverage', 'no') for $c->nodes;
for my $n ($c->nodes) {
    $n->cmd('CONFIG', 'SET', 'cluster-replica-no-failover', 'yes') unless $master{ $n->port };
}
kill 'STOP', $X->pid;
my $seeds = 'cluster:' . join(',', map { $_->address } grep { $_->port != $X->port } values %master);
my $t0 = time;
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 0, conf =>
    "redis $seeds;\nlibrary \"$lib\";\nprocesses 1;\nthreads 4;\nconcurrency 4;\nlease 30s;\n"
  . "queue $q { max_concurrent 3; }\n");
my $ran = DQTest::wait_for(sub { scalar(DQWorker::lines($rec, 'E')) >= $healthy }, 40, 0.25);
ok($ran, sprintf("the $healthy tasks on healthy masters ran (%.1f s after the start; "
                 . "the probe's master hung)", time - $t0))
    or diag(join "\n", grep { /probe|conf|shard|$q/ } split /\n/, DQTest::slurp($w->{log}));
like(DQTest::slurp($w->{log}), qr/queue $q: .*shard 1.*no answer/, 'the lost probe is logged');
kill 'CONT', $X->pid;
DQTest::stop_pid($w->{pid});
DQTest::log_clean_ok($w->{log}, 'the worker log (sanitizers)');
done_testing();
