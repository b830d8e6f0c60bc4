# Review RP, finding 2: enqueue on a MIGRATING slot where every declared
# key exists on the source (the queue still has contract v1's names key, so
# no ASK/TRYAGAIN before the script runs), in a call that mixes a due-now
# task with a cold one. A cold bucket is not a declared key: Redis 7.0
# stops the script at the first touch of one that is not on this node.
# Before the fix that stop came after the hot task's HSET/ZADD: the
# producer was answered an error (the module: 503) while a task of the
# call was stored, and a retry stored it again under a new id (run twice).
# Now the call either succeeds or writes nothing. Two shapes: a window
# whose bucket is not on the node, and a nearly full open bucket that is
# (its seal renames it to a new name and opens it again). Then, the slot
# stable again, the same call stores each task once.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'mq';
my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
# every declared key of enqueue exists on A
$s->enqueue2($q, 60000, 'seed', DQScripts::env2());
DQScripts::keys_exist($A, $q, qw(names wake due));
$A->cmd('ZADD', "dq:{$q}:names", 9e15, 'v1left');    # v1 data left
my $now = DQScripts::now_ms($A);
my $far = $now - $now % 10000 + 3600000;
$s->enqueue2($q, 60000, 'coldseed', DQScripts::env2(), eta => $far);
is($A->cmd('EXISTS', $k->('cold')), 1, 'the cold index exists');
# a second window whose open bucket holds 127 tasks (one short of full)
my $full = $far + 600000;
my $env = DQScripts::env2();
$A->cmd('HSET', $k->('cold') . ":$full",
        map { ("f$_", "0000$env") } 1 .. 127);
$A->cmd('ZADD', $k->('cold'), $full, $full);
is($A->cmd('HLEN', $k->('cold') . ":$full"), 127, 'a bucket one short');

my $src = DQScripts::_load($s->{v2dir}, 'enqueue', 'prelude', 'cold');
my @keys = ((map { $k->($_) } qw(tasks eta names stats wake)),
            "dq:{$q}:names", $k->('cold'), $k->('due'));
sub call { my ($hot, $cold, $at) = @_;
    return $A->cmd('EVAL', $src, 8, @keys, 60000, 2, 0,
                   $hot, $env, $cold, $env, '', $at) }
# what a call may write (the clock in stats is the one write before the
# bucket reads, and is not a task)
sub state {
    my @b = sort grep { /:cold:/ } @{ $A->cmd('KEYS', "*{$q}*") };
    return join ' ', $A->cmd('HLEN', $k->('tasks')),
        $A->cmd('ZCARD', $k->('eta')), $A->cmd('ZCARD', $k->('names')),
        $A->cmd('LLEN', $k->('wake')),
        $A->cmd('HGET', $k->('stats'), 'enqueued') // 0,
        $A->cmd('HGET', $k->('stats'), 'cold') // 0,
        @{ $A->cmd('ZRANGE', $k->('cold'), 0, -1) },
        map { "$_=" . $A->cmd('HLEN', $_) } @b;
}
my $slot = $c->migrating($c->slot($k->('tasks')), $A, $B);
my @cases = (['hot1', 'cold1', $far + 1200000, 'a bucket not on the node'],
             ['hot2', 'cold2', $full + 5, 'a bucket the call seals']);
for my $t (@cases) {
    my ($hot, $cold, $at, $what) = @$t;
    my $before = state();
    my $rep = call($hot, $cold, $at);
    my $err = ref $rep eq 'HASH';
    diag("$what: " . ($err ? "error $rep->{err}" : "@$rep"));
    if ($err) {
        is(state(), $before, "$what: an error, and nothing written");
        ok(!$A->cmd('HEXISTS', $k->('tasks'), $hot), "$what: $hot not stored");
    } else {
        ok($A->cmd('HEXISTS', $k->('tasks'), $hot), "$what: stored");
        pass("$what: answered");
    }
}
$c->stable($slot, $A, $B);
# the producer's retry, the slot stable: each task stored once
for my $t (@cases) {
    my ($hot, $cold, $at, $what) = @$t;
    my $rep = call($hot, $cold, $at);
    is(ref $rep, 'ARRAY', "$what, stable: stored");
    ok($A->cmd('HEXISTS', $k->('tasks'), $hot)
       && defined $A->cmd('ZSCORE', $k->('eta'), $hot), "$what: $hot hot");
    my $in = grep { $A->cmd('HEXISTS', $_, $cold) }
             grep { /:cold:/ } @{ $A->cmd('KEYS', "*{$q}*") };
    is($in, 1, "$what: $cold in one bucket");
}
is($A->cmd('HGET', $k->('stats'), 'enqueued'), 6, 'enqueued counts 6');
my @sealed = grep { /:cold:$full\./ } @{ $A->cmd('KEYS', "*{$q}*") };
is(scalar @sealed, 1, 'the full bucket was sealed');
done_testing;
