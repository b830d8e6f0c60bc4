# Review RZ: dq_cold_due (cold.lua) reads a due bucket with redis.pcall
# (not on this node: look again in a second); a bucket of the wrong type
# reads the same way: the cold tier stops at it (the loop breaks at the
# first unreadable bucket) and every later bucket waits too, silently.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'pq';
my $A = $c->owner($q);
my $s = DQScripts->new($A);
my $k = sub { DQTest::dq_key($q, $_[0]) };
$s->enqueue2($q, 60000, 't0', DQScripts::env2());
my $now = int($A->cmd('TIME')->[0]) * 1000;
$A->cmd('ZADD', $k->('cold'), $now - 1000, 'b1');
$A->cmd('SET', $k->('cold') . ':b1', 'oops');
my $rep = eval { $s->cycle($q)->('c1', 5) };
diag('error: ' . ($@ || 'none') . '; reply: ' . ($rep ? join(',', map { ref $_ ? '[..]' : ($_ // 'nil') } @$rep) : '-'));
isnt($@, '', 'a WRONGTYPE cold bucket is an error, not a silent retry');
done_testing;
