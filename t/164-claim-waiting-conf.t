# Issue 12 (P1 item 3): a cycle call whose acks free a lease slot while
# conf "waiting" is set (a claim was held back by max_concurrent) and whose
# own claim is then held back by max_concurrent again. claim.lua used to
# HDEL "waiting" (deleting conf when that was its only field), lease the
# task the freed slot allowed, then HSET "waiting" into the conf it had
# deleted: on a MIGRATING slot Redis 7.0 stops a script that writes a key
# missing there ("Script attempted to access a non local key"), after the
# acks and the leases were written; the worker got an error reply and the
# leases were lost until they expired (failed before the fix: the cycle
# answered that error, t3 stayed leased by c1, conf was gone). Now
# "waiting" is set, or kept, before the leases are written and deleted
# only when it is not set again.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'wq';
my $A = $c->owner($q); my $B = $c->other($q);
my $s = DQScripts->new($A);
my $k = sub { DQTest::dq_key($q, $_[0]) };
sub enq { my ($id) = @_; $s->enqueue2($q, 3600000, $id, DQScripts::env2()) }
# max_n, lease, reclaim, rate, bucket, max_concurrent, claim id, backoff
# (3), tombstone, n_acks, acks
sub cycle { my ($cid, $n, $conc, @acks) = @_;
  return $s->v2($q, 'claim', $n, 30000, 0, 0, 1, $conc, $cid, 0, 0, 0, 0,
                DQScripts::acks(@acks)) }
enq($_) for qw(t1 t2 t3 t4);
my $r0 = cycle('c0', 2, 0);
my %first = map { $_->{id} => $_->{first} } DQScripts::claimed($r0);
is(join(' ', sort keys %first), 't1 t2', 'c0 leased t1 and t2');
# a claim was held back by max_concurrent: conf holds "waiting" only
$A->cmd('DEL', $k->('conf'));
$A->cmd('HSET', $k->('conf'), 'waiting', '1');
# every other declared key exists, so the script runs on the MIGRATING
# source (a missing declared key is answered ASK before it runs)
$A->cmd('HSET', $k->('errors'), 'zz', 'x');
$A->cmd('HSET', $k->('bucket'), 'zz', 'x');
$A->cmd('ZADD', $k->('names'), 9e15, 'zz');
$A->cmd('RPUSH', $k->('wake'), 'x');
$A->cmd('ZADD', $k->('cold'), 9e15, 'x');
$A->cmd('RPUSH', $k->('due'), '@0');      # a due list's marker alone
my $slot = $c->slot($k->('tasks'));
is($B->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $c->id($A)), 'OK',
   'importing');
is($A->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $c->id($B)), 'OK',
   'migrating');
# c1 acks t1 (one slot of 2 free) and wants 2: it takes t3 and is held
# back (t4 due) by max_concurrent 2
my $rep = eval { cycle('c1', 2, 2, 't1', 'c0', $first{t1}, 0, '') };
ok(!$@, 'the cycle call ran to its end on the MIGRATING slot') or diag $@;
my @c1 = ref $rep eq 'ARRAY' ? DQScripts::claimed($rep) : ();
my $n = @c1;
my @l = grep { /\|c1\|/ } @{ $A->cmd('ZRANGE', $k->('leases'), 0, -1) };
is(scalar(@l), 1, 'c1 leased one task');
is($n, scalar(@l), 'and its reply names it');
is(ref $rep eq 'ARRAY' ? $rep->[4] : '', 't3', 'the task is t3');
is(ref $rep eq 'ARRAY' ? "@{ $rep->[3] }" : '', '1', 'the ack of t1 counted');
is($A->cmd('HGET', $k->('conf'), 'waiting'), '1',
   'conf "waiting" is set: the next freed slot wakes a sleeper');
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');

# the same without a cluster: the freed slot is taken and nothing is held
# back: "waiting" is deleted (and conf with it when it was its only field)
my $r3 = cycle('c2', 2, 2, 't2', 'c0', $first{t2}, 0, '', 't3', 'c1',
               $c1[0]{first}, 0, '');
is("@{ $r3->[3] }", '1 1', 'c2 acked t2 and t3');
is($r3->[4], 't4', 'and took t4');
my $f4 = (DQScripts::claimed($r3))[0]{first};
is($A->cmd('EXISTS', $k->('conf')), 0,
   'nothing held back: "waiting" gone, and conf with it');
# a count of acks that is not a whole number ("1.5" acks and 6 values of
# 4 per ack) is refused before any write (the length check alone passes
# it: 12 + 4 * 1.5 = 18 arguments; the loop acked one task and ignored
# the rest; failed before, with 9 values of the 5 per ack of then)
enq('t5');
my @half = ('+inf', "t4|c2|$f4", 't4', '0', '+inf', 'x');
my $bad = eval { $s->v2($q, 'claim', 1, 30000, 0, 0, 1, 0, 'c3', 0, 0, 0, 0,
                        '1.5', @half) };
like($@, qr/claim: bad arguments/, 'claim: n_acks 1.5 refused');
is($A->cmd('ZCARD', $k->('leases')), 1, 'nothing acked or leased by it');
is($A->cmd('HEXISTS', $k->('tasks'), 't4'), 1, 't4 is still there');
$bad = eval { $s->v2($q, 'ack', 0, '1.5', @half) };
like($@, qr/ack: bad arguments/, 'ack: n 1.5 refused');
# malformed acks: a score other than +inf, a flag that is not 0/1 (alone
# or before a name): refused, nothing acked
for my $a (['1', "t4|c2|$f4", 't4', '0'],
           ['+inf', "t4|c2|$f4", 't4', 'x'],
           ['+inf', "t4|c2|$f4", 't4', '2name']) {
  $bad = eval { $s->v2($q, 'ack', 0, 1, @$a) };
  like($@, qr/ack: bad arguments/, "ack: malformed (@$a) refused");
}
is($A->cmd('HEXISTS', $k->('tasks'), 't4'), 1, 't4 is still there');
is($A->cmd('HEXISTS', $k->('tasks'), 't4'), 1, 't4 is still there');
done_testing();
