# Review RY, finding 1: a cycle on a MIGRATING slot (every declared key on
# the source) whose late ack empties `errors` (the late-acked task's
# "lease expired" was its only field: Redis deletes the hash) or `tasks`
# (the expired lease's task is gone: removed by hand here), then takes
# back another expired lease (step 1), whose HMGET of it reads a key
# this call deleted: Redis 7.0 stops the script there ("non local key"),
# the acks applied, and the caller gets an error for a cycle whose acks
# went through. Wanted: the step skipped (a stall: no claim, look again in
# a second), the ack answered, the expired lease still held (taken back
# by a later call on the stable slot). The same when the late ack empties
# `eta` (its only task): the claim's ZRANGEBYSCORE of it, or the last
# look at its head, read a key this call deleted.
use strict; use warnings; use lib 't/lib';
use Test::More; use Time::HiRes qw(sleep); use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
sub scenario {
    my ($q, $which) = @_;
    my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
    my $cycle = $s->cycle($q, per_call => 1);
    # X's lease taken back, Y's held
    my ($cx, $cy) = $s->two_leases($cycle, $q, $which eq 'eta-claim' ? 30000 : 1500);
    is($cx->{id}, 'X', "$q: X claimed (lease 200 ms)");
    is($cy->{id}, 'Y', "$q: Y claimed (lease 1.5 s)");
    is_deeply($A->cmd('HKEYS', $k->('errors')), ['X'],
              "$q: errors holds X's \"lease expired\" alone");
    if ($which eq 'tasks') {
        # Y's task gone, its lease still held; errors kept by another field
        $A->cmd('HDEL', $k->('tasks'), 'Y');
        $A->cmd('HSET', $k->('errors'), 'zz', 'x');
    }
    sleep 1.3;                                # Y's lease expired now
    # every other declared key exists on A
    DQScripts::keys_exist($A, $q, qw(bucket conf names wake cold due));
    # eta not emptied by the ack, but in the eta-* cases (X is its only
    # task: the ack deletes it, read then by the claim or the last look)
    DQScripts::keys_exist($A, $q, 'eta') if $which !~ /^eta/;
    my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
        $cycle->('c3', 5, 30000, 0, 'X', 'c0', $cx->{first}, 1, '') });
    is($err, '', "$q, $which emptied: the cycle answers (no 'non local key' after its acks)");
    DQScripts::stall_ok($rep, $err, "$q: ", 'the late ack of X');
    ok(!$A->cmd('HEXISTS', $k->('tasks'), 'X'), "$q: X is gone from tasks");
    my $inL = grep { /^Y\|/ } @{ $A->cmd('ZRANGE', $k->('leases'), 0, -1) };
    ok($inL, "$q: Y's lease is still held (an expired one not half taken back)");
    # on the stable slot the next call takes Y back (reclaim delay 0) and
    # claims it (a task without a value: its lease goes, nothing to run)
    if ($which eq 'eta-claim') {
        return;            # Y's 30 s lease is held: nothing to take back
    }
    if ($which eq 'tasks') {
        $cycle->('c90', 0, 30000, 0);
        ok(!grep({ /^Y\|/ } @{ $A->cmd('ZRANGE', $k->('leases'), 0, -1) }),
           "$q: Y's lease taken back on the stable slot");
        return;
    }
    my @got;
    for (1 .. 3) {
        push @got, map { $_->{id} } DQScripts::claimed($cycle->('c9' . $_, 5, 30000, 0));
        last if @got;
        sleep 0.2;
    }
    is_deeply(\@got, ['Y'], "$q: Y claimed again later");
}
scenario('pq', 'errors');
scenario('pr', 'tasks');
scenario('ps', 'eta-expired');    # errors and eta emptied, Y's lease expired
scenario('pt', 'eta-claim');      # eta emptied, no lease expired: the claim
done_testing;
