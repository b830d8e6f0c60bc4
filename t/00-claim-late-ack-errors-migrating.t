# Review RY, finding 1: a cycle on a MIGRATING slot (every declared key on
# the source) whose late ack empties `errors` (the late-acked task's
# "lease expired" was its only field: Redis deletes the hash), then takes
# back another expired lease (step 1), whose HMGET of `errors` reads a key
# this call deleted: Redis 7.0 stops the script there ("non local key"),
# the acks applied, and the caller gets an error for a cycle whose acks
# went through. Wanted: the step skipped (a stall: no claim, look again in
# a second), the ack answered, the expired lease still held (taken back
# by a later call on the stable slot).
use strict; use warnings; use lib 't/lib';
use Test::More; use Time::HiRes qw(sleep); use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'pq';
my $A = $c->owner($q); my $B = $c->other($q);
my $s = DQScripts->new($A);
my $k = sub { DQTest::dq_key($q, $_[0]) };
sub cycle { my ($cid, $n, $lease, $rd, @acks) = @_;
  return $s->v2($q, 'claim', $n, $lease, $rd, 0, 1, 0, $cid, 0, 0, 0, 60000,
                DQScripts::acks(@acks)) }
$s->enqueue2($q, 60000, 'X', DQScripts::env2());
my ($cx) = DQScripts::claimed(cycle('c0', 1, 200, 0));
is($cx->{id}, 'X', 'X claimed (lease 200 ms)');
$s->enqueue2($q, 60000, 'Y', DQScripts::env2());
my ($cy) = DQScripts::claimed(cycle('c1', 1, 1500, 0));
is($cy->{id}, 'Y', 'Y claimed (lease 1.5 s)');
sleep 0.4;
cycle('c2', 0, 30000, 600000);           # X's lease taken back, Y's held
is_deeply($A->cmd('HKEYS', $k->('errors')), ['X'],
          "errors holds X's \"lease expired\" alone");
sleep 1.3;                                # Y's lease expired now
# every other declared key exists on A
$A->cmd('HSET', $k->('bucket'), 'zz', 'x');
$A->cmd('HSET', $k->('conf'), 'zz', 'x');
$A->cmd('ZADD', $k->('names'), 9e15, 'zz');
$A->cmd('RPUSH', $k->('wake'), 'x');
$A->cmd('ZADD', $k->('cold'), 9e15, 'x');
$A->cmd('ZADD', $k->('eta'), 9e15, 'zz');   # eta not emptied by the ack
my $slot = $c->slot($k->('tasks'));
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $c->id($A));
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $c->id($B));
my $rep = eval { cycle('c3', 5, 30000, 0, 'X', 'c0', $cx->{first}, 1, '') };
my $err = $@;
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
is($err, '', 'the cycle answers (no "non local key" after its acks)');
SKIP: {
    skip 'the cycle failed', 3 if $err;
    is_deeply($rep->[3], [1], 'the late ack of X is acked');
    is(scalar DQScripts::claimed($rep), 0, 'a stall: nothing claimed');
    cmp_ok($rep->[1], '>=', 1000, 'look again in a second or more');
}
ok(!$A->cmd('HEXISTS', $k->('tasks'), 'X'), 'X is gone from tasks');
my $inL = grep { /^Y\|/ } @{ $A->cmd('ZRANGE', $k->('leases'), 0, -1) };
ok($inL, "Y's expired lease is still held (not half taken back)");
# on the stable slot the next call takes Y back (reclaim delay 0) and
# claims it
my @got;
for (1 .. 3) {
    push @got, map { $_->{id} } DQScripts::claimed(cycle('c9' . $_, 5, 30000, 0));
    last if @got;
    sleep 0.2;
}
is_deeply(\@got, ['Y'], 'Y claimed again later');
done_testing;
