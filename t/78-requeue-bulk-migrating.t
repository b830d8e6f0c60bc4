# Review RS (left over): deferred-cli requeue --all (requeue.lua, bulk)
# on a Redis Cluster slot that is MIGRATING (every declared key still on
# the source). A dead task whose envelope is already gone is dropped from
# `dead` and its error from `errors`, one task at a time: the first such
# drop emptied `errors` (it held that task's error alone), which deleted
# it, and Redis 7.0 stopped the script at the next such drop's touch of
# it ("non local key"). The tasks requeued before had been written back
# to eta, but their `requeued` count and the wake token were lost and the
# operator was answered an error. Wanted: the batch whole (as remove.lua,
# t/05: one variadic call per key for the batch).
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'rqm';
my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
$s->enqueue2($q, 0, $_, DQScripts::env2()) for qw(a b c d);
# all four dead, oldest first; a and c have lost their envelopes, a alone
# has an error recorded
my $i = 0;
for my $id (qw(a b c d)) {
    $A->cmd('ZREM', $k->('eta'), $id);
    $A->cmd('ZADD', $k->('dead'), ++$i, $id);
}
$A->cmd('HDEL', $k->('tasks'), qw(a c));
$A->cmd('HSET', $k->('errors'), 'a', 'boom');
# every other declared key exists on A
DQScripts::keys_exist($A, $q, qw(eta names wake));
my $wake0 = $A->cmd('LLEN', $k->('wake'));
my @keys = map { $k->($_) } qw(tasks eta dead names stats wake errors);
my $src = DQScripts::_load("lib/lua", 'requeue', 'prelude', 'cold');
$src = DQScripts::_load($ENV{DQ_T_LUA}, 'requeue', 'prelude', 'cold') if $ENV{DQ_T_LUA};
my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
    $s->_eval($src, \@keys, '', '', 0, 1000) });
is($err, '', "requeue --all: answered (no 'non local key' mid-batch)");
is_deeply($rep, [-1, 2, 0], 'the end reached, two requeued, no conflict');
is_deeply($A->cmd('ZRANGE', $k->('dead'), 0, -1), [], 'dead empty');
ok(defined $A->cmd('ZSCORE', $k->('eta'), 'b') && defined $A->cmd('ZSCORE', $k->('eta'), 'd'),
   'b and d due again');
is($A->cmd('HGET', $k->('stats'), 'requeued'), 2, 'counted requeued');
is($A->cmd('LLEN', $k->('wake')), $wake0 + 1, 'a worker woken');
is($A->cmd('EXISTS', $k->('errors')), 0, "a's error gone with it");
done_testing;
