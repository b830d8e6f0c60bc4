# review 9Z: an id sent as fresh (-n) that is stored already was counted in
# stats fresh_collisions only on the fast path (m == 0, none cold). In a
# call with a named task (m > 0) the same collision overwrites the envelope
# and answers status 0 without a count or a log line: CONTRACT.md's "never
# silently" did not hold there (tests 3 and 4 failed before the fix). A
# cold id itself is not seen (its bucket is not read): CONTRACT.md says so.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;

my $r = DQTest::Redis->start(dir => DQTest::tmpdir());
my $s = DQScripts->new($r);
my $env = DQScripts::env2();
my $q = 'r9z';
sub k { DQTest::dq_key($q, $_[0]) }
sub enq { $s->v2($q, 'enqueue', @_) }

ok(ref enq(60000, 1, 0, 'X', $env), 'X stored (plain)');
# fast path: -1, m = 0
enq(60000, -1, 0, 'X', $env);
is($r->cmd('HGET', k('stats'), 'fresh_collisions') // 0, 1,
   'fast path: the collision counted');
# slow path: -2, m = 1 (a named task beside X)
enq(60000, -2, 1, 'X', $env, 'Y', $env, 2, 'nmY', 0);

is($r->cmd('HGET', k('stats'), 'fresh_collisions') // 0, 2,
   'slow path (a named task in the call): the collision counted too');
# slow path: a task going cold (ETA far out) beside X
enq(60000, -2, 0, 'X', $env, 'Z', $env, '', '+' . 86400000 * 3);

is($r->cmd('HGET', k('stats'), 'fresh_collisions') // 0, 3,
   'slow path (a task going cold in the call): the collision counted too');
done_testing();
