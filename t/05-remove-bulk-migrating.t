# Review RS: deferred-cli purge (remove.lua, "waiting" etc.) dropped the
# tasks one at a time, each drop touching eta, dead, tasks, errors (and
# names). A drop that emptied one of them (here `errors`: the first task
# alone had an error) deleted it, and on a MIGRATING slot (every declared
# key on the source) Redis 7.0 stopped the script at the next drop's touch
# of it ("non local key"): some tasks removed, the rest not, "deleted" not
# counted, the operator answered an error. Wanted: the batch whole.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'pz';
my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
$s->enqueue2($q, 0, $_, DQScripts::env2()) for qw(a b c);
$A->cmd('HSET', $k->('errors'), 'a', 'boom');     # a failed once
# every other declared key exists on A
DQScripts::keys_exist($A, $q, qw(leases dead names conf wake cold due));
my @keys = map { $k->($_) } qw(tasks eta leases dead errors names stats conf wake cold due);
my $src = DQScripts::_load("lib/lua", 'remove', 'prelude', 'cold');
$src = DQScripts::_load($ENV{DQ_T_LUA}, 'remove', 'prelude', 'cold') if $ENV{DQ_T_LUA};
my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
    $s->_eval($src, \@keys, 'waiting', '', 3, 0) });
is($err, '', "remove waiting: answered (no 'non local key' mid-batch)");
is_deeply($rep, [3, 1], 'three removed (max: more may be left)');
is_deeply($A->cmd('ZRANGE', $k->('eta'), 0, -1), [], 'eta empty');
is_deeply($A->cmd('HMGET', $k->('tasks'), qw(a b c)), [undef, undef, undef],
          'a, b, c gone from tasks');
is($A->cmd('HGET', $k->('stats'), 'deleted'), 3, 'counted deleted');
done_testing;
