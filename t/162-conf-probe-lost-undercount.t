# Review RF finding 1 (written by reviewer RF, shard-0 filter added):
# double fault: shard 0's `shards` field lost (a failover / AOF that lost
# the write: HDEL here) AND the master of shard 1's slot hung (SIGSTOP,
# no failover). The worker reads N = 1 from shard 0; the probe of shard 1
# times out. It used to count that as "no more shards": shard 0 claimed
# with the file's whole max_concurrent (3 instead of 1) and shard 2 (on a
# healthy master) was never probed nor served. Now a lost probe splits the
# file's limits by a bound (DQ_MAX_SHARDS) and the next heartbeat probes
# shard 2, whose conf says 3: shards 0 and 2 are served, 1 each.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQWorker; use DQCluster;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my %master = map { $_->port => $_ } $c->masters;
my ($q, $X) = $c->queue_shard1_apart;
my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'queue', $q, '--shards', 3);
is($rc, 0, "$q: 3 shards") or diag $err;
my $rec = "$dir/p.rec";
($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'defer', '-q', $q,
                                    '--count', 12, 'ops.span', $rec, 1500);
is($rc, 0, '12 tasks over the 3 shards') or diag $err;
my ($O0, $O2) = ($c->owner($q), $c->owner("$q#2"));
my $s0 = $O0->cmd('HLEN', "dq2:{$q}:tasks");
my $s2 = $O2->cmd('HLEN', "dq2:{$q#2}:tasks");
my %on0 = map { ($_ => 1) } @{ $O0->cmd('HKEYS', "dq2:{$q}:tasks") };
diag("shard 0: $s0 tasks, shard 2: $s2 tasks");
# the lost write: shard 0's count gone (every other shard's conf says 3)
diag("shard 0 conf shards before: " . ($O0->cmd("HGET", "dq2:{$q}:conf", "shards") // "nil"));
$O0->cmd('HDEL', "dq2:{$q}:conf", 'shards');
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
DQTest::wait_for(sub { scalar(DQWorker::lines($rec, 'E')) >= $s0 + $s2 }, 35, 0.5);
my $left2 = $O2->cmd('HLEN', "dq2:{$q#2}:tasks");
my $at_once = DQWorker::at_once([map { $_->[1] } grep { $on0{ $_->[0] } } DQWorker::lines($rec, 'S')],
                                [map { $_->[1] } grep { $on0{ $_->[0] } } DQWorker::lines($rec, 'E')]);
my $all = DQWorker::spans_at_once($rec);
diag(sprintf("after %.1f s: %d ran, shard 2 still holds %d, shard-0 spans at once: %d",
             time - $t0, scalar(DQWorker::lines($rec, 'E')), $left2, $at_once));
is($left2, 0, "shard 2's tasks (healthy master) ran") or
    diag(join "\n", grep { /probe|shard|$q/ } split /\n/, DQTest::slurp($w->{log}));
ok($at_once <= 1, "at most max_concurrent/N = 1 of shard 0 at once (got $at_once)");
ok($all <= 3, "at most the file's max_concurrent 3 of the queue at once (got $all)");
kill 'CONT', $X->pid;
DQTest::stop_pid($w->{pid});
done_testing();
