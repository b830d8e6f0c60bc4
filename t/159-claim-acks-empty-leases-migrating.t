# Review RP, finding 4: a cycle (acks + claim) on a MIGRATING slot whose
# every declared key is still on the source, and whose acks free the last
# lease. The acks delete the lease set; before the fix step 1 then read it
# (ZRANGE leases 0 0) and Redis 7.0 stopped the script there, the acks
# kept: the worker was answered an error, and its acks sent again came
# back fenced (TRYAGAIN here: the set is a declared key now missing). Now
# the set is read with redis.pcall: the cycle acks, claims nothing (it
# could not write the set again) and says to look again in a second (no
# busy loop, no wake token passed on). The slot stable, the next task is
# claimed; on a stable slot a cycle whose acks empty the lease set claims
# in the same call.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'pq';
my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
my $cycle_f = $s->cycle($q);
sub cycle { $cycle_f->(@_) }
$s->enqueue2($q, 60000, $_, DQScripts::env2()) for qw(t1 t2 t3);
my $r0 = cycle('c0', 1);
my ($t0) = DQScripts::claimed($r0);
my ($id, $first) = ($t0->{id}, $t0->{first});
is($id, 't1', 't1 claimed');
# every declared key exists on A
DQScripts::keys_exist($A, $q, qw(errors bucket conf names wake cold due));
my $slot = $c->migrating($c->slot($k->('tasks')), $A, $B);
my $wake0 = $A->cmd('LLEN', $k->('wake'));
my $rep = eval { cycle('c1', 1, $id, 'c0', $first, 0, '') };
is($@, '', 'the cycle: no error');
is_deeply($rep && $rep->[3], [1], 'the cycle acked t1');
ok(!$A->cmd('HEXISTS', $k->('tasks'), $id), 't1 is gone');
is($A->cmd('HGET', $k->('stats'), 'done'), 1, 'done counts 1');
is($rep && scalar @$rep, 4, 'nothing claimed');
is($rep && $rep->[1], 1000, 'look again in a second');
is($A->cmd('LLEN', $k->('wake')), $wake0, 'no wake token passed on');
is_deeply($A->cmd('ZRANGE', $k->('eta'), 0, -1), ['t2', 't3'],
          't2 and t3 still wait');
$c->stable($slot, $A, $B);
my $r2 = cycle('c3', 1);
is($r2->[4], 't2', 'the slot stable: t2 claimed');
# stable: a cycle whose acks empty the lease set claims in the same call
my $r3 = cycle('c4', 1, 't2', 'c3',
                (DQScripts::claimed($r2))[0]{first}, 0, '');
is_deeply($r3->[3], [1], 'stable: t2 acked');
is($r3->[4], 't3', 'stable: t3 claimed in the same call');
is($A->cmd('ZCARD', $k->('leases')), 1, 'one lease held');
done_testing;
