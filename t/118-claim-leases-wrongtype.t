# Review RZ: claim reads the lease set with redis.pcall (FR, c3a5bdd) to
# survive a MIGRATING slot, but the pcall also swallows WRONGTYPE: a lease
# key of the wrong type (corruption, a hand edit, a key-name clash) makes
# every claim answer "nothing, look again in 1 s" with no error, forever:
# the queue's due tasks are never claimed, and nothing is logged.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'pq';
my $A = $c->owner($q);
my $s = DQScripts->new($A);
my $k = sub { DQTest::dq_key($q, $_[0]) };
$s->enqueue2($q, 60000, 't1', DQScripts::env2());
$A->cmd('SET', $k->('leases'), 'oops');
my $rep = eval { $s->cycle($q)->('c1', 5) };
diag('error: ' . ($@ || 'none') . '; reply: ' . ($rep ? join(',', map { ref $_ ? '[..]' : $_ } @$rep) : '-'));
isnt($@, '', 'a WRONGTYPE lease set is an error, not a silent stall');
done_testing;
