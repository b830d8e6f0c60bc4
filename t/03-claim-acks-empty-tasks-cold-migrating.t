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
my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
my $cycle = $s->cycle($q);
$s->enqueue2($q, 60000, 'X', DQScripts::env2());
my ($cx) = DQScripts::claimed($cycle->('c0', 1));
is($cx->{id}, 'X', 'X claimed');
is_deeply($A->cmd('HKEYS', $k->('tasks')), ['X'], 'tasks holds X alone');
# every other declared key exists on A (eta and leases kept by others)
DQScripts::keys_exist($A, $q, qw(eta leases errors bucket conf names wake due));
# a bucket of the window now (due for promotion), on A
my $bucket = DQScripts::cold_due($A, $q, 'C');
my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
    $cycle->('c1', 5, 'X', 'c0', $cx->{first}, 0, '') });
is($err, '', 'the cycle answers (not stopped for the promotion after its acks)');
DQScripts::stall_ok($rep, $err, '', 'the ack of X');
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
