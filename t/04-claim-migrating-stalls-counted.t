# Review RS: a call a MIGRATING slot kept from part of its work is counted (stats
# migrating_stalls): here a due cold bucket already on the target (as
# t/158). Before, nothing counted it: a migration left open for good
# kept the bucket back with no sign but its age. From t/158:
# every declared key is still on the source, while a cold bucket due for
# promotion was already moved to the target (a reshard moves keys one by
# one). Before the fix the promotion's HGETALL of that bucket (not a
# declared key) stopped the script after the acks and the expired leases
# were written: the worker was answered an error and its acks sent again
# came back fenced. Now the due buckets are read before the first write,
# and a bucket not on the node is left for later: the cycle acks, claims,
# and says to look again in a second (not 0: no busy loop). The bucket back
# on the node, the next cycle promotes it.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'pq';
my $A = $c->owner($q); my $B = $c->other($q);
my $s = DQScripts->new($A);
my $k = sub { DQTest::dq_key($q, $_[0]) };
sub cycle { my ($cid, $n, @acks) = @_;
  return $s->v2($q, 'claim', $n, 30000, 0, 0, 1, 0, $cid, 0, 0, 0, 60000,
                DQScripts::acks(@acks)) }
$s->enqueue2($q, 60000, $_, DQScripts::env2()) for qw(t1 t2 t3);
my $r0 = cycle('c0', 2);
my ($t0) = DQScripts::claimed($r0);
my ($id, $first) = ($t0->{id}, $t0->{first});
# a cold task whose window will be due for promotion: 25-35 s ahead now,
# then the queue clock moves 20 s on
my $tm = $A->cmd('TIME');
my $now = $tm->[0] * 1000 + int($tm->[1] / 1000);
my $eta = $now - $now % 10000 + 40000;
$s->enqueue2($q, 60000, 'cold1', DQScripts::env2(), eta => $eta);
my ($bucket) = grep { /cold:/ } @{ $A->cmd('KEYS', "*{$q}*") };
ok($bucket, "bucket $bucket");
$A->cmd('HSET', $k->('stats'), 'clock', $eta - 20000);
# every declared key exists on A
$A->cmd('HSET', $k->('errors'), 'zz', 'x');
$A->cmd('HSET', $k->('bucket'), 'zz', 'x');
$A->cmd('HSET', $k->('conf'), 'zz', 'x');
$A->cmd('ZADD', $k->('names'), 9e15, 'zz');
$A->cmd('RPUSH', $k->('wake'), 'x');
my $slot = $c->slot($k->('tasks'));
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $c->id($A));
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $c->id($B));
# the bucket moved first
my $mv = $A->cmd('MIGRATE', '127.0.0.1', $B->{port}, $bucket, 0, 5000);
is($mv, 'OK', 'the bucket moved to the target');
my $rep = eval { cycle('c1', 1, $id, 'c0', $first, 0, '') };
is($@, '', 'the cycle: no error');
my $acked = !$A->cmd('HEXISTS', $k->('tasks'), $id);
ok(!($@ && $acked), 'not: the cycle answered an error after its ack was written')
    or diag("$id acked (tasks entry gone) yet the cycle answered an error");
is_deeply($rep && $rep->[3], [1], 'the cycle acked t1');
is($rep && $rep->[4], 't3', 'the cycle claimed t3');
my $next = $rep ? $rep->[1] : -1;
ok($next >= 1 && $next <= 1000, "look again within a second, not at once ($next)");
is($A->cmd('HGET', $k->('stats'), 'cold'), 1, 'the cold task still counted');
is($A->cmd('HGET', $k->('stats'), 'migrating_stalls'), 1,
   'the call kept from the bucket counted (stats migrating_stalls)');
is($A->cmd('ZCARD', $k->('cold')), 1, 'its bucket still in the index');
# the reshard given up: the slot stable on the source again, the bucket
# copied back (read on B with ASKING: B was importing the slot)
$B->cmd('ASKING');
my $kv = $B->cmd('HGETALL', $bucket);
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
is(ref $kv eq 'ARRAY' && scalar @$kv, 2, 'the bucket read on the target');
$A->cmd('HSET', $bucket, @$kv);
my $r2 = eval { cycle('c2', 0) };
is($@, '', 'next cycle: no error');
ok($A->cmd('HEXISTS', $k->('tasks'), 'cold1')
   && defined $A->cmd('ZSCORE', $k->('eta'), 'cold1'), 'cold1 promoted');
is($A->cmd('HGET', $k->('stats'), 'cold'), 0, 'the tier is empty');
is($A->cmd('EXISTS', $bucket), 0, 'its bucket deleted');
is($A->cmd('HGET', $k->('stats'), 'migrating_stalls'), 1,
   'not counted on the stable slot');
done_testing;
