# R5 review: a claim script that leased tasks and then errored on a
# MIGRATING slot (Redis 7: a script reading a key it deleted itself, here
# the eta zset emptied by ZREM, gets "ERR Script attempted to access a
# non local key"): the leases it wrote stayed, the reply was an error.
# claim.lua now reads eta's next entry before the ZREM: the claim runs to
# its end and its reply names every task it leased (failed before: the
# error reply with c1's two leases left behind).
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'mq';
my $A = $c->owner($q); my $B = $c->other($q);
my $s = DQScripts->new($A);
sub enq { my ($id, $name) = @_;
  $s->enqueue2($q, 3600000, $id, DQScripts::env2($name), name => $name) }
sub claim { my ($cid, $n) = @_;
  my $src = $s->{src}{'2claim'};
  return $s->v2($q, 'claim', $n, 30000, 0, 0, 1, 0, $cid, 0, 0, 0, 0, 0) }
enq('t1', 'n1'); enq('t2'); enq('t3');
my @r = eval { claim('c0', 1) }; ok(!$@, 'first claim (leases exist)') or diag $@;
# every declared key (and the undeclared cold index) exists, so the claim
# is run on the MIGRATING source rather than answered ASK
my $k = sub { DQTest::dq_key($q, $_[0]) };
$A->cmd('HSET', $k->('errors'), 'zz', 'x');
$A->cmd('HSET', $k->('conf'), 'zz', 'x');
$A->cmd('HSET', $k->('bucket'), 'zz', 'x');
$A->cmd('HSET', $k->('names'), 'zz', 'x');
$A->cmd('RPUSH', $k->('wake'), 'x');
$A->cmd('ZADD', $k->('cold'), 9e15, 'x');
$A->cmd('RPUSH', $k->('due'), '@0');      # a due list's marker alone
for my $kind (qw(tasks eta leases stats wake errors conf bucket names cold due)) {
  diag("$kind exists: " . $A->cmd('EXISTS', $k->($kind)));
}
my $slot = $c->slot($k->('tasks'));
is($B->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $c->id($A)), 'OK', 'importing');
is($A->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $c->id($B)), 'OK', 'migrating');
my $rep = eval { claim('c1', 10) };
ok(!$@, 'the claim on the MIGRATING slot ran to its end') or diag $@;
my $l = $A->cmd('ZRANGE', $k->('leases'), 0, -1);
diag("leases: @$l");
my @c1 = grep { /\|c1\|/ } @$l;
my $n = ref $rep ? scalar(DQScripts::claimed($rep)) : 0;
is(scalar(@c1), 2, 'claim c1 holds the two due tasks');
is($n, scalar(@c1), 'its reply names every task it leased');
# the cold tier's index is read by the claim: declared in its KEYS, so a
# queue without a cold tier on a MIGRATING slot is answered ASK before the
# script runs (DQScripts follows it: TRYAGAIN on the importing node) (failed before: run, then "non local key" at the cold read,
# after the claim's acks and expired-lease pass had written)
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
enq('t4');
$A->cmd('DEL', $k->('cold'));
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $c->id($A));
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $c->id($B));
my $r2 = eval { claim("c2", 10) }; diag("c2: " . ($@ || "ok: " . scalar(@$r2)));
like($@, qr/\b(ASK|TRYAGAIN)\b/,
     'no cold index: the claim answered ASK (TRYAGAIN on the importing node), not run');
ok(!grep({ /\|c2\|/ } @{ $A->cmd('ZRANGE', $k->('leases'), 0, -1) }),
   'nothing leased by it');
done_testing();
