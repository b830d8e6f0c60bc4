# Review R4 finding 4: a queue's N lived in ONE field of shard 0's conf, written
# last and never waited for; its tasks live on other masters. Shard 0's
# master killed -9 before its replica got the `shards` write, the replica
# promoted: N reads 1 again, the tasks producers put in q#1..q#3 (stored
# and acknowledged on their own, healthy masters) are invisible to stats
# and to every worker: stranded until someone re-grows N by hand.
# Now every shard's conf holds N and readers (the C client, the CLI, the
# worker) take the most they see. Shard 0's own tasks, written while its
# replica was stalled and lost with its master, are plain asynchronous
# replication (dq_client_set_wait is the opt-in): not this test's point.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQCluster;
use Time::HiRes qw(sleep);

my $cli = DQTest::bin('deferred-cli');
my $c = DQCluster->start(plain => 1);
my @m = $c->masters;
$c->wait_replicas_online(30) or die 'replicas never online';
my $addr = $c->address;
sub cli { DQTest::capture($cli, '-r', $addr, @_) }

# the write of N is waited for: a master whose replica does not
# acknowledge it fails the command, saying so (it used to say OK)
{
    my $M = $c->owner('wq1');
    my $rm = $c->replica_of($M);
    kill 'STOP', $rm->{pid};
    my ($rc, $out, $err) = cli('queue', 'wq1', '--shards', '2');
    kill 'CONT', $rm->{pid};
    isnt($rc, 0, 'queue wq1 --shards 2, its master\'s replica stalled: fails');
    like($err, qr/shard count stored on \S+, but none of its 1 replicas acknowledged it within 1000 ms/,
         '... saying N is stored but not replicated') or diag $err;
    $c->wait_replicas_online(30) or die 'replicas never online again';
    ($rc, $out, $err) = cli('queue', 'wq1', '--shards', '2');
    is($rc, 0, '... and passes once the replica is back') or diag $err;
}
# a queue whose shards 1..3 are not all on shard 0's master
my $q;
for my $i (1 .. 200) {
    my $p = $c->owner("lq$i")->port;
    my $others = grep { $c->_slot_owner_port("lq$i#$_") != $p } 1 .. 3;
    if ($others >= 2) { $q = "lq$i"; last }
}
my $A = $c->owner($q);
my $ra = $c->replica_of($A);
diag "queue $q: shard 0 on " . $A->port . ", replica " . $ra->port;
kill 'STOP', $ra->{pid};                  # the replica stalls and
$A->cmd('CLIENT', 'KILL', 'TYPE', 'replica');   # its link drops: what A
                                          # writes now, only A has
my ($rc, $out, $err) = cli('queue', $q, '--shards', '4');
is($rc, 0, "queue $q --shards 4") or diag $err;
my $dir = tmpdir();
my $rec = "$dir/lq.rec";
($rc, $out, $err) = cli('defer', '-q', $q, '--count', '40', 'record', $rec);
is($rc, 0, '40 tasks acknowledged to the producer') or diag $err;
my $in_shards = 0;
for my $i (1 .. 3) {
    my $n = $c->owner("$q#$i") or next;
    next if $n->port == $A->port;
    $in_shards += $n->cmd('ZCARD', "dq2:{$q#$i}:eta");
}
diag "tasks in shards on other masters: $in_shards";
$c->kill_node($A);                        # kill -9 shard 0's master
kill 'CONT', $ra->{pid};
sleep 0.3;
my $t = $ra->cmd('CLUSTER', 'FAILOVER', 'TAKEOVER');
diag "FAILOVER TAKEOVER: " . (ref $t ? $t->{err} : $t);
DQTest::wait_for(sub { (eval { $ra->cmd('ROLE') } // [])->[0] eq 'master' }, 20);
$c->wait_ok(30);
($rc, $out, $err) = cli('queue', $q);
diag "after: $out$err";
like($out, qr/shards 4/, 'N is still 4 after the failover');
my $exist = 0;
for my $i (0 .. 3) {
    my $n = $c->owner($i ? "$q#$i" : $q) or next;
    $exist += $n->cmd('ZCARD', $i ? "dq2:{$q#$i}:eta" : "dq2:{$q}:eta");
}
($rc, $out, $err) = cli('stats', $q);
my ($w) = $out =~ /^waiting (\d+)/m;
is($w, $exist, "stats $q sees every task stored in its 4 shards ($exist)")
    or diag "stats sees $w; $in_shards sit in shards on the other masters";
cmp_ok($w, '>=', $in_shards, "... those on the other masters included ($in_shards)");

# a worker started now serves the 4 shards and runs those tasks
my $pid = DQTest::spawn(name => 'w', log => "$dir/w.log",
                        cmd => [DQWorker::worker_bin(), '-r', $addr,
                                qw(--master_process off),
                                '-l', DQWorker::example_lib(), '-q', $q]);
my @R = DQWorker::wait_records($rec, $exist, 60);
is(scalar(@R), $exist, "the worker ran all $exist");
like(DQTest::slurp("$dir/w.log"), qr/queue $q: shard 1's conf says 4 shards, more than shard 0's \(1\): serving 4/,
     '... saying shard 0 lost its count') or diag DQTest::slurp("$dir/w.log");
like(DQTest::slurp("$dir/w.log"), qr/queue $q: serving 4 shards/,
     '... serving 4 shards');
DQTest::stop_pid($pid, 'TERM', 20);
done_testing;
