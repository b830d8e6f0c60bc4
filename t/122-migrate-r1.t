# Contract v1 -> v2 migration against review R1 of issue #12 (findings 1,
# 2, 3, 4, 6, 7): each a v1 queue written by the v1 scripts (t/data/lua-v1)
# and worked by the v2 scripts one call at a time (t/lib/DQScripts.pm).
#  1 a task requeued on v1 (error kept, state reset) runs on v2: its ack
#    deletes the error (claim reports history);
#  2 a live name never lands in v2 apart from its task (names paged
#    separately from tasks; over 1000 v1 leases): no "+inf" without a task;
#  3 names and keyed ids are deduplicated across v1 and v2 (enqueue and
#    migrate);
#  4 migrate copies v1's conf once: a v2 resume stays;
#  6 a v1 lease live across a forward clock step is not taken back;
#  7 migrate does not raise v2's clock past live v2 leases.
# DQ_T_LUA=DIR runs it against other v2 scripts (an older lib/lua).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;

my $r = DQTest::Redis->start(dir => tmpdir());
my $s = DQScripts->new($r);
sub k1 { "dq:{$_[0]}:$_[1]" }
sub k2 { DQTest::dq_key(@_) }
sub rnow { my $t = $r->cmd('TIME'); $t->[0] * 1000 + int($t->[1] / 1000) }

# v1 enqueue: { now, status, eta }
sub enq1 {
    my ($q, $id, %o) = @_;
    return $s->v1($q, 'enqueue', 3600000, 1, $id,
                  DQScripts::env1($id, $q, $o{name}), $o{name} // '',
                  $o{eta} // -1, -1, $o{keyed} ? 600000 : 0)->[1];
}
# v1 claim: ids
sub claim1 {
    my ($q, $cid, $lease, $n) = @_;
    my $rep = $s->v1($q, 'claim', $n // 10, $lease, 0, 0, 1, 0, $cid, 0, 0, 0);
    my @t = @$rep[3 .. $#$rep];
    my @ids;
    while (@t) { my @x = splice(@t, 0, 7); push @ids, $x[0] }
    return @ids;
}
sub enq2 {
    my ($q, $id, %o) = @_;
    return scalar $s->enqueue2($q, 3600000, $id, DQScripts::env2($o{name}),
                               name => $o{name},
                               keyed => $o{keyed} ? 600000 : 0);
}
# v2 claim: tasks { id, retries, first, runs, failed, cid }
sub claim2 {
    my ($q, $cid, $lease, $n) = @_;
    my $rep = $s->v2($q, 'claim', $n // 10, $lease // 30000, 0, 0, 1, 0,
                     $cid, 0, 0, 0, 0, 0);
    return map { { %$_, cid => $cid } } DQScripts::claimed($rep);
}
# v2 ack as the worker does: history from the claim reply
sub ack2 {
    my ($q, $t, $name) = @_;
    my $h = ($t->{retries} > 0 || $t->{runs} > 0 || $t->{failed} > 0) ? 1 : 0;
    return $s->v2($q, 'ack', 60000, DQScripts::acks($t->{id}, $t->{cid},
                  $t->{first}, $h, $name // ''))->[0];
}
sub migrate_all {
    my ($q) = @_;
    my ($cur, $moved, $left, $steps) = ('0', 0, 0, 0);
    do {
        my $rep = $s->v2($q, 'migrate', $cur, 1000);
        ($cur, $left) = ($rep->[0], $rep->[2]);
        $moved += $rep->[1];
    } while ($cur ne '0' && ++$steps < 100);
    return ($moved, $left);
}
sub inf_names { scalar @{ $r->cmd('ZRANGEBYSCORE', k2($_[0], 'names'), '+inf', '+inf') } }

# ---- 1: requeued on v1, then migrated: the ack deletes its error
{
    my $q = 'f1';
    is(enq1($q, 'r1'), 0, '1: v1 enqueue');
    claim1($q, 'c-r1', 60000);
    is($s->v1($q, 'bury', 'r1', 'c-r1', 'fatal', 0, 0, 60000, '', '1'), 1,
       '1: v1 bury');
    is($s->v1($q, 'requeue', 'r1'), 1, '1: v1 requeue (error kept, state reset)');
    migrate_all($q);
    my @t = claim2($q, 'c2r1');
    is(scalar @t, 1, '1: claimed on v2');
    is(ack2($q, $t[0]), 1, '1: acked with the history the claim reported');
    is($r->cmd('HLEN', k2($q, 'errors')), 0, '1: its error went with it');
    is($r->cmd('HLEN', k2($q, 'tasks')), 0, '1: no task left');
}

# ---- 2a: names paged apart from their tasks (a step of max 1)
{
    my $q = 'f2a';
    my $now = rnow();
    enq1($q, 'a1', name => 'Z', eta => $now - 5000);
    enq1($q, 'b1', name => 'A', eta => $now - 1000);
    $s->v2($q, 'migrate', '0', 1);                   # one step: a1 only
    is_deeply([claim1($q, 'cv1', 60000)], ['b1'], '2a: a v1 worker claims b1');
    is($s->v1($q, 'ack', 3600000, 1, 'b1', 'cv1', 'A')->[0], 1,
       '2a: and acks it on v1 (A tombstoned there)');
    migrate_all($q);
    my $sc = $r->cmd('ZSCORE', k2($q, 'names'), 'A');
    ok(defined $sc && $sc ne 'inf', "2a: v2 has A as a tombstone (@{[ $sc // 'none' ]})");
    is(inf_names($q), 1, '2a: one live name in v2 (Z, with a1)');
    is($r->cmd('ZSCORE', k2($q, 'names'), 'Z'), 'inf', '2a: Z live');
    is_deeply($r->cmd('KEYS', "dq:{$q}:*"), [], '2a: v1 is empty');
}

# ---- 2b: a named task under the 1001st v1 lease
{
    my $q = 'f2b';
    my @a = map { ("t$_", DQScripts::env1("t$_", $q), '', -1, -1, 0) } 1 .. 1000;
    $s->v1($q, 'enqueue', 3600000, 1000, @a);
    is(scalar(claim1($q, 'early', 600000, 1000)), 1000, '2b: 1000 v1 leases');
    enq1($q, 'named', name => 'NM');
    is_deeply([claim1($q, 'late', 900000, 1)], ['named'], '2b: the 1001st: a named task');
    migrate_all($q);
    is($s->v1($q, 'ack', 3600000, 1, 'named', 'late', 'NM')->[0], 1,
       '2b: its v1 worker acks it (NM tombstoned on v1)');
    $s->v1($q, 'ack', 3600000, 1000,
           map { ("t$_", 'early', '') } 1 .. 1000);
    migrate_all($q);
    my $sc = $r->cmd('ZSCORE', k2($q, 'names'), 'NM');
    ok(defined $sc && $sc ne 'inf', "2b: NM is a tombstone in v2 (@{[ $sc // 'none' ]})");
    is(inf_names($q), 0, '2b: no live name in v2');
    is_deeply($r->cmd('KEYS', "dq:{$q}:*"), [], '2b: v1 is empty');
}

# ---- 3: dedup across v1 and v2
{
    my $q = 'f3';
    enq1($q, 'n1', name => 'N');
    is(enq2($q, 'n2', name => 'N'), 2, '3: v2 enqueue of a name a v1 task holds: duplicate');
    enq1($q, 'k1', keyed => 1);
    is(enq2($q, 'k1', keyed => 1), 1, '3: v2 enqueue of a keyed id v1 holds: existed');
    is(enq2($q, 'm2', name => 'M'), 0, '3: v2 enqueue of name M');
    is(enq1($q, 'm1', name => 'M'), 0, '3: a v1 producer enqueues M too (v1 cannot know)');
    migrate_all($q);
    ok(defined $r->cmd('ZSCORE', k2($q, 'dead'), 'm1'), '3: m1 buried in v2, not live');
    like($r->cmd('HGET', k2($q, 'errors'), 'm1') // '', qr/name M is taken/,
         '3: with an error saying why');
    is($r->cmd('ZSCORE', k2($q, 'names'), 'M'), 'inf', "3: M still m2's");
    my %ids = map { $_->{id} => $_ } claim2($q, 'c3', 30000, 10);
    is_deeply([sort keys %ids], [qw(k1 m2 n1)], '3: live on v2: k1, m2, n1 (each once)');
    is(ack2($q, $ids{k1}), 1, '3: k1 ran on v2 and acked');
    # the v1 producer retries k1 (same client id) after the migration
    is(enq1($q, 'k1', keyed => 1), 0, '3: a v1 producer enqueues k1 again on v1');
    migrate_all($q);
    is($r->cmd('HEXISTS', k2($q, 'tasks'), 'k1'), 0, '3: k1 not live again in v2');
    is($r->cmd('HGET', k2($q, 'stats'), 'v1_duplicates'), 1, '3: counted v1_duplicates');
    is_deeply($r->cmd('KEYS', "dq:{$q}:*"), [], '3: v1 is empty');
}

# ---- 4: the v1 conf is copied once
{
    my $q = 'f4';
    enq1($q, 'l1');
    claim1($q, 'v1w', 600000);                       # a v1 worker runs l1
    $s->v1($q, 'pause', 1);                          # paused on v1 before the deploy
    migrate_all($q);
    is($r->cmd('HGET', k2($q, 'conf'), 'paused'), '1', '4: v2 paused as v1 was');
    $s->v2($q, 'pause', 0);
    migrate_all($q);
    is($r->cmd('HGET', k2($q, 'conf'), 'paused'), undef,
       '4: resumed on v2, a later migrate does not pause it again');
}

# ---- 6: a forward clock step does not hand a live v1 lease to v2
for my $how ('v2 clock', 'v1 record') {
    my $q = $how eq 'v2 clock' ? 'f6a' : 'f6b';
    enq1($q, 'x1');
    claim1($q, 'v1w', 30000);
    my $now = rnow();
    my $m = $r->cmd('ZRANGE', k1($q, 'leases'), 0, -1)->[0];
    $r->cmd('ZADD', k1($q, 'leases'), $now - 35000, $m);   # crossed by the step
    if ($how eq 'v2 clock') {
        $r->cmd('HSET', k1($q, 'stats'), 'clock', $now - 60000);
        $r->cmd('HSET', k2($q, 'stats'), 'clock', $now - 60000);
    } else {
        $r->cmd('HSET', k1($q, 'stats'), 'clock', $now, 'gap_from', $now - 60000,
                'gap_to', $now - 1000);
    }
    migrate_all($q);
    is($r->cmd('ZCARD', k1($q, 'leases')), 1, "6 ($how): the v1 lease stays");
    is($r->cmd('HEXISTS', k2($q, 'tasks'), 'x1'), 0, "6 ($how): x1 not taken back");
}

# ---- 7: migrate does not expire live v2 leases
{
    my $q = 'f7';
    enq2($q, 't1');
    is(scalar(claim2($q, 'c7', 30000)), 1, '7: a v2 lease of 30 s');
    enq1($q, 'v');
    $r->cmd('HSET', k1($q, 'stats'), 'clock', rnow() + 50000);
    migrate_all($q);
    claim2($q, 'c7b', 30000);
    is($r->cmd('HGET', k2($q, 'stats'), 'reclaimed') // 0, 0, '7: nothing reclaimed');
    is($r->cmd('ZCARD', k2($q, 'leases')), 2, "7: t1's lease held (and v's taken)");
}

done_testing();
