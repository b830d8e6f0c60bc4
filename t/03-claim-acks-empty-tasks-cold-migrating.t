# Review RS: a cycle on a MIGRATING slot (every declared key on the
# source) whose acks empty `tasks` (the acked task was its only one) while
# a cold bucket is due for promotion (which writes `tasks` again: a write
# of a key this call deleted, which Redis 7.0 refuses there). The guard
# before the acks (dq_touch_new: a touch of a missing key) stopped the
# whole call with an error, nothing written: the worker filed its claim
# as lost, its acks unanswered (sent again alone after a back-off), at
# every cycle with acks while the slot migrated. Wanted: the acks applied
# and answered, the promotion skipped (a stall: nothing claimed, look
# again in >= 1 s), the bucket kept; on the stable slot it is promoted.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'py';
my $A = $c->owner($q); my $B = $c->other($q);
my $s = DQScripts->new($A);
my $k = sub { DQTest::dq_key($q, $_[0]) };
my $cycle = sub { my ($cid, $n, @acks) = @_;
  return $s->v2($q, 'claim', $n, 30000, 0, 0, 1, 0, $cid, 0, 0, 0,
                60000, DQScripts::acks(@acks)) };
$s->enqueue2($q, 60000, 'X', DQScripts::env2());
my ($cx) = DQScripts::claimed($cycle->('c0', 1));
is($cx->{id}, 'X', 'X claimed');
is_deeply($A->cmd('HKEYS', $k->('tasks')), ['X'], 'tasks holds X alone');
# every other declared key exists on A (eta and leases kept by others)
$A->cmd('ZADD', $k->('eta'), 9e15, 'zz');
$A->cmd('ZADD', $k->('leases'), 9e15, 'zz');
$A->cmd('HSET', $k->('errors'), 'zz', 'x');
$A->cmd('HSET', $k->('bucket'), 'zz', 'x');
$A->cmd('HSET', $k->('conf'), 'zz', 'x');
$A->cmd('ZADD', $k->('names'), 9e15, 'zz');
$A->cmd('RPUSH', $k->('wake'), 'x');
# a bucket of the window now (due for promotion), on A
my $tm = $A->cmd('TIME');
my $now = $tm->[0] * 1000 + int($tm->[1] / 1000);
my $ws = $now - $now % 10000;
my $bucket = $k->('cold') . ":$ws";
$A->cmd('HSET', $bucket, 'C', '0000' . DQScripts::env2());
$A->cmd('ZADD', $k->('cold'), $ws, $ws);
$A->cmd('HINCRBY', $k->('stats'), 'cold', 1);
my $slot = $c->slot($k->('tasks'));
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $c->id($A));
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $c->id($B));
my $rep = eval { $cycle->('c1', 5, 'X', 'c0', $cx->{first}, 0, '') };
my $err = $@;
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
is($err, '', 'the cycle answers (not stopped for the promotion after its acks)');
SKIP: {
    skip 'the cycle failed', 3 if $err;
    is_deeply($rep->[3], [1], 'the ack of X is acked');
    is(scalar DQScripts::claimed($rep), 0, 'a stall: nothing claimed');
    cmp_ok($rep->[1], '>=', 1000, 'look again in a second or more');
}
is($A->cmd('HGET', $k->('stats'), 'migrating_stalls'), 1,
   'the stall counted (stats migrating_stalls)');
ok(!$A->cmd('HEXISTS', $k->('tasks'), 'X'), 'X is gone from tasks');
is($A->cmd('EXISTS', $k->('tasks')), 0, 'tasks not written again (C not half promoted)');
is($A->cmd('EXISTS', $bucket), 1, "C's bucket kept");
is($A->cmd('HGET', $k->('stats'), 'done'), 1, 'X counted done');
# on the stable slot the promotion goes on
my ($got) = DQScripts::claimed($cycle->('c2', 5));
is($got && $got->{id}, 'C', 'C promoted and claimed on the stable slot');
is($A->cmd('HGET', $k->('stats'), 'cold'), 0, 'the tier is empty');
done_testing;
