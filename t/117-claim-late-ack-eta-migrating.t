# Review RZ: a cycle on a MIGRATING slot (every declared key on the source)
# whose late ack empties the ETA set (the late-acked task was eta's only
# member: Redis deletes the set), then takes back another expired lease
# (step 1): ZREM leases, HSET tasks, then ZADD eta -- a write of a key
# this call deleted: Redis 7.0 stops the script there, its writes kept.
# The expired task is then in neither eta nor leases: stranded.
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
is_deeply($A->cmd('ZRANGE', $k->('eta'), 0, -1), ['X'], 'X waits in eta (late-ackable)');
sleep 1.3;                                # Y's lease expired now
# every declared key exists on A
$A->cmd('HSET', $k->('errors'), 'zz', 'x');
$A->cmd('HSET', $k->('bucket'), 'zz', 'x');
$A->cmd('HSET', $k->('conf'), 'zz', 'x');
$A->cmd('ZADD', $k->('names'), 9e15, 'zz');
$A->cmd('RPUSH', $k->('wake'), 'x');
$A->cmd('ZADD', $k->('cold'), 9e15, 'x');
my $slot = $c->slot($k->('tasks'));
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $c->id($A));
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $c->id($B));
my $rep = eval { cycle('c3', 0, 30000, 0, 'X', 'c0', $cx->{first}, 0, '') };
diag("cycle: " . ($@ || 'ok'));
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
my $inT = $A->cmd('HEXISTS', $k->('tasks'), 'Y');
my $inE = defined $A->cmd('ZSCORE', $k->('eta'), 'Y');
my $inL = grep { /^Y\|/ } @{ $A->cmd('ZRANGE', $k->('leases'), 0, -1) };
diag("Y: tasks=$inT eta=" . ($inE ? 1 : 0) . " leases=$inL");
ok(!$inT || $inE || $inL, 'Y (in tasks) is in eta or leases: not stranded');
# a later claim on the stable slot still finds Y?
my @got;
for (1 .. 3) { push @got, map { $_->{id} } DQScripts::claimed(cycle('c9' . $_, 5, 30000, 0)); sleep 0.2 }
diag("claimed later: @got");
done_testing;
