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
my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
my $cycle_f = $s->cycle($q, per_call => 1);
sub cycle { $cycle_f->(@_) }
# X's lease taken back, Y's held
my ($cx, $cy) = $s->two_leases($cycle_f, $q, 1500);
is($cx->{id}, 'X', 'X claimed (lease 200 ms)');
is($cy->{id}, 'Y', 'Y claimed (lease 1.5 s)');
is_deeply($A->cmd('ZRANGE', $k->('eta'), 0, -1), ['X'], 'X waits in eta (late-ackable)');
sleep 1.3;                                # Y's lease expired now
# every declared key exists on A
DQScripts::keys_exist($A, $q, qw(errors bucket conf names wake cold due));
my $slot = $c->migrating($c->slot($k->('tasks')), $A, $B);
my $rep = eval { cycle('c3', 0, 30000, 0, 'X', 'c0', $cx->{first}, 0, '') };
diag("cycle: " . ($@ || 'ok'));
$c->stable($slot, $A, $B);
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
