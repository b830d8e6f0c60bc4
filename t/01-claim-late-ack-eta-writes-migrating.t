# Review RS: a cycle on a MIGRATING slot (every declared key on the
# source) whose late ack takes `eta`'s only task (X: its lease expired,
# it waits in eta; the ack deletes eta), then WRITES eta in the same call:
#  - reclaim: another lease (Y) expired: step 1's ZADD of eta;
#  - cold:    a cold bucket due for promotion: its ZADD of eta, after its
#             HSET of `tasks` (the task in `tasks`, in no set).
# Redis 7.0 stops the script at that write ("non local key"), the acks
# applied: the caller gets an error for a cycle whose acks went through
# (sent again, they come back fenced). Wanted: a stall (nothing claimed,
# nothing taken back or promoted, look again in >= 1 s), the ack
# answered, nothing half written; on the stable slot the work goes on.
use strict; use warnings; use lib 't/lib';
use Test::More; use Time::HiRes qw(sleep); use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
sub scenario {
    my ($q, $which) = @_;
    my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
    my $cycle = $s->cycle($q, per_call => 1);
    # X's lease taken back, Y's held
    my ($cx, $cy) = $s->two_leases($cycle, $q, $which eq 'cold' ? 30000 : 1500);
    is($cx->{id}, 'X', "$q: X claimed (lease 200 ms)");
    is($cy->{id}, 'Y', "$q: Y claimed");
    is_deeply($A->cmd('ZRANGE', $k->('eta'), 0, -1), ['X'],
              "$q: eta holds X alone");
    sleep 1.3 if $which eq 'reclaim';           # Y's lease expired now
    # every other declared key exists on A; errors kept by another field
    DQScripts::keys_exist($A, $q, qw(errors bucket conf names wake due));
    my $bucket;
    if ($which eq 'cold') {
        # a bucket of the window now (due for promotion), on A
        $bucket = DQScripts::cold_due($A, $q, 'C');
    } else {
        DQScripts::keys_exist($A, $q, 'cold');
    }
    my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
        $cycle->('c3', 5, 30000, 0, 'X', 'c0', $cx->{first}, 1, '') });
    my $eta = $A->cmd('ZRANGE', $k->('eta'), 0, -1, 'WITHSCORES');
    my $tasks = $A->cmd('HKEYS', $k->('tasks'));
    is($err, '', "$q, $which: the cycle answers (no 'non local key' after its acks)");
    DQScripts::stall_ok($rep, $err, "$q: ", 'the late ack of X');
    is($A->cmd('HGET', $k->('stats'), 'migrating_stalls'), 1,
       "$q: the stall counted (stats migrating_stalls)");
    ok(!$A->cmd('HEXISTS', $k->('tasks'), 'X'), "$q: X is gone from tasks");
    is_deeply($eta, [], "$q: eta not written again on the MIGRATING slot");
    my $inL = grep { /^Y\|/ } @{ $A->cmd('ZRANGE', $k->('leases'), 0, -1) };
    ok($inL, "$q: Y's lease is still held (not half taken back)");
    if ($which eq 'cold') {
        ok(!grep({ $_ eq 'C' } @$tasks),
           "$q: C not in tasks (no promotion half written: in tasks, not in eta)");
        is($A->cmd('EXISTS', $bucket), 1, "$q: C's bucket kept");
        is($A->cmd('ZCARD', $k->('cold')), 1, "$q: the index keeps it");
    }
    # on the stable slot the work goes on
    my @got;
    for (1 .. 3) {
        push @got, map { $_->{id} } DQScripts::claimed($cycle->('c9' . $_, 5, 30000, 0));
        last if @got;
        sleep 0.2;
    }
    is_deeply(\@got, [$which eq 'cold' ? 'C' : 'Y'],
              "$q: " . ($which eq 'cold' ? 'C promoted and claimed'
                                         : 'Y taken back and claimed') . ' later');
    if ($which eq 'cold') {
        is($A->cmd('HGET', $k->('stats'), 'cold'), 0, "$q: the tier is empty");
        is($A->cmd('EXISTS', $bucket), 0, "$q: the bucket deleted");
    }
}
scenario('pu', 'reclaim');
scenario('pv', 'cold');
done_testing;
