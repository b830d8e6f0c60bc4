package DQMigrating;
# Scenarios on a MIGRATING slot shared by more than one test (the pieces
# they are built of: DQCluster migrating/stable, DQScripts cycle,
# keys_exist, cold_soon).
#
#   DQMigrating::cold_bucket_moved($cluster, $queue, stalls => 1)
#       a cycle (acks + claim) on a MIGRATING slot whose every declared
#       key is still on the source, while a cold bucket due for promotion
#       was already moved to the target (t/158; stalls => 1 also checks
#       that the call kept from the bucket is counted in stats
#       migrating_stalls, and only there: t/04).
use strict;
use warnings;
use Test::More;
use DQTest;
use DQScripts;

sub cold_bucket_moved {
    my ($c, $q, %o) = @_;
    my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
    my $cycle = $s->cycle($q);
    $s->enqueue2($q, 60000, $_, DQScripts::env2()) for qw(t1 t2 t3);
    my ($t0) = DQScripts::claimed($cycle->('c0', 2));
    my ($id, $first) = ($t0->{id}, $t0->{first});
    # a cold task whose window will be due for promotion: 25-35 s ahead
    # now, then the queue clock moves 20 s on
    my $bucket = $s->cold_soon($q, 'cold1');
    ok($bucket, "bucket $bucket");
    # every declared key exists on A
    DQScripts::keys_exist($A, $q, qw(errors bucket conf names wake due));
    my $slot = $c->migrating($c->slot($k->('tasks')), $A, $B);
    # the bucket moved first
    my $mv = $A->cmd('MIGRATE', '127.0.0.1', $B->{port}, $bucket, 0, 5000);
    is($mv, 'OK', 'the bucket moved to the target');
    my $rep = eval { $cycle->('c1', 1, $id, 'c0', $first, 0, '') };
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
       'the call kept from the bucket counted (stats migrating_stalls)')
        if $o{stalls};
    is($A->cmd('ZCARD', $k->('cold')), 1, 'its bucket still in the index');
    # the reshard given up: the slot stable on the source again, the bucket
    # copied back (read on B with ASKING: B was importing the slot)
    $B->cmd('ASKING');
    my $kv = $B->cmd('HGETALL', $bucket);
    $c->stable($slot, $A, $B);
    is(ref $kv eq 'ARRAY' && scalar @$kv, 2, 'the bucket read on the target');
    $A->cmd('HSET', $bucket, @$kv);
    eval { $cycle->('c2', 0) };
    is($@, '', 'next cycle: no error');
    ok($A->cmd('HEXISTS', $k->('tasks'), 'cold1')
       && defined $A->cmd('ZSCORE', $k->('eta'), 'cold1'), 'cold1 promoted');
    is($A->cmd('HGET', $k->('stats'), 'cold'), 0, 'the tier is empty');
    is($A->cmd('EXISTS', $bucket), 0, 'its bucket deleted');
    is($A->cmd('HGET', $k->('stats'), 'migrating_stalls'), 1,
       'not counted on the stable slot')
        if $o{stalls};
}

1;
