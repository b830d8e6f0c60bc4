# Review RS: acks with a tombstone window of 0 (deferred_worker
# `tombstone 0`: a name is free at once) remove each acked task's name
# from `names` one ZREM at a time, in the loop over the acks, before the
# acks' other writes. A ZREM that empties `names` deletes it; on a
# MIGRATING slot (every declared key on the source) Redis 7.0 then stops
# the script at the next ZREM ("non local key"), after the leases were
# removed and before `tasks` was: the tasks are in neither eta nor the
# lease set, their values left in `tasks` for good (sent again, the acks
# come back fenced: the value is there, the task not in eta). Here b's
# name is missing from `names` (as for a name left in contract v1's names
# set, or removed by hand). Wanted: the acks applied whole, answered.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
sub scenario {
    my ($q, $via) = @_;
    my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
    my $cycle = $s->cycle($q, tomb => 0);
    $s->enqueue2($q, 0, 'a', DQScripts::env2('na'), name => 'na');
    $s->enqueue2($q, 0, 'b', DQScripts::env2('nb'), name => 'nb');
    $s->enqueue2($q, 0, 'w', DQScripts::env2());      # keeps eta
    my @t = DQScripts::claimed($cycle->('c0', 2));
    is_deeply([map { $_->{id} } @t], ['a', 'b'], "$q: a and b claimed");
    $A->cmd('ZREM', $k->('names'), 'nb');
    is_deeply($A->cmd('ZRANGE', $k->('names'), 0, -1), ['na'],
              "$q: names holds na alone");
    # every other declared key exists on A
    DQScripts::keys_exist($A, $q, qw(errors bucket conf wake cold leases due));
    my @acks = ('a', 'c0', $t[0]{first}, 0, 'na', 'b', 'c0', $t[1]{first}, 0, 'nb');
    my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
        $via eq 'claim' ? $cycle->('c1', 0, @acks)
                        : $s->v2($q, 'ack', 0, DQScripts::acks(@acks)) });
    is($err, '', "$q, $via: the acks answer (no 'non local key' after their writes)");
    is_deeply($via eq 'claim' ? $rep && $rep->[3] : $rep, [1, 1], "$q: both acked");
    my $left = $A->cmd('HMGET', $k->('tasks'), 'a', 'b');
    is_deeply($left, [undef, undef], "$q: a and b gone from tasks (no value left in no set)");
    is($A->cmd('HGET', $k->('stats'), 'done'), 2, "$q: counted done");
}
scenario('pw', 'claim');
scenario('px', 'ack');
done_testing;
