# deferred-cli purge removes every task of the state, whatever entries that
# hold no task sit among them (review RV8, finding 1). A bulk remove
# answers { removed, more } (lib/lua/remove.lua) and purge calls again
# while more is 1; before, it looped while a call removed 1000 tasks, so
# one stale entry in a batch of 1000 ended the purge early (exit 0, tasks
# left that still ran). A real redis-server and deferred-cli:
#   A. waiting: 1500 listed tasks and one a pre-list build deleted by id
#      (stays listed): 500 were left;
#   B. dead: 1500 dead tasks and one dead entry without a value (what a
#      "missing envelope" bury leaves): 501 were left;
#   C. a due list of one-task runs (a marker before every id): one call
#      reads at most DQ_DUE_ROUNDS rounds, fewer than 1000 ids, with more
#      listed behind them: 516 were left (this one before a2744a3 too).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;
use DQWorker;

my $root = DQTest::root();
my $r = DQTest::Redis->start(dir => DQTest::tmpdir());
my $new = DQScripts->new($r);
# the build before the due list, from the git history (A only: without
# that history A fails under CI, as DQScripts->at_rev does, else skips)
my $why = DQScripts::rev_missing(DQScripts::PRELIST);
my $old = $why ? undef : DQScripts->new($r);
$old->{v2dir} = 'git:' . DQScripts::PRELIST if $old;
fail("A: $why") if $why && DQScripts::history_required();

SKIP: {   # A. waiting: the mixed-fleet stale listed id (t/222 A), 1500 tasks
    skip "A $why", 2 unless $old;
    my $q = 'pw';
    my $k = sub { DQTest::dq_key($q, $_[0]) };
    $new->cycle($q)->('c0', 1);                 # a claim: the list on
    $new->enqueue_plain($q, map { "a$_" } 1 .. 500);
    $new->enqueue_plain($q, map { "b$_" } 1 .. 500);
    $new->enqueue_plain($q, map { "c$_" } 1 .. 500);
    is($old->v2($q, 'remove', 'id', 'a7', 1, 60000), 1,
       'A: a pre-list build deletes a7 by id (stays listed)');
    my ($rc, $out, $err) = DQWorker::cli($r, 'purge', $q, '--state', 'waiting', '--yes');
    note("purge: $out $err");
    my $left = $r->cmd('HLEN', $k->('tasks'));
    is($left, 0, 'A: purge --state waiting left no task') or diag("tasks left: $left");
}

{   # B. dead: one valueless dead entry (what a "missing envelope" bury
    # leaves: bury.lua writes the value only `if v`) among 1500 dead
    my $q = 'pd';
    my $k = sub { DQTest::dq_key($q, $_[0]) };
    $r->cmd('ZADD', $k->('dead'), 1, 'ghost');
    for my $i (1 .. 1500) {
        $r->cmd('ZADD', $k->('dead'), 2 + $i, "d$i");
        $r->cmd('HSET', $k->('tasks'), "d$i", 'x');
    }
    my ($rc, $out, $err) = DQWorker::cli($r, 'purge', $q, '--state', 'dead', '--yes');
    note("purge: $out $err");
    is($r->cmd('ZCARD', $k->('dead')), 0, 'B: purge --state dead left no dead task')
        or diag('dead left: ' . $r->cmd('ZCARD', $k->('dead')));
}
{   # C. a list of one-task runs (a marker before every id, as calls of
    # two tasks of which one is named leave it): one remove reads at most
    # DQ_DUE_ROUNDS rounds of it, fewer than max ids, more listed behind
    my $q = 'pl';
    my $k = sub { DQTest::dq_key($q, $_[0]) };
    $new->cycle($q)->('c0', 1);
    $new->enqueue_plain($q, 'l0a', 'l0b');
    my $m = $r->cmd('LINDEX', $k->('due'), 0);
    for my $i (1 .. 1500) {
        $r->cmd('HSET', $k->('tasks'), "l$i", DQScripts::env2());
        $r->cmd('RPUSH', $k->('due'), $m, "l$i");
    }
    $r->cmd('HINCRBY', $k->('stats'), 'due_n', 1500);
    is($r->cmd('LLEN', $k->('due')), 3003, 'C: 1502 ids listed, 1500 in runs of 1');
    my ($rc, $out, $err) = DQWorker::cli($r, 'purge', $q, '--state', 'waiting', '--yes');
    note("purge: $out $err");
    like($out, qr/^purged 1502 /, 'C: purge says 1502');
    is($r->cmd('HLEN', $k->('tasks')), 0, 'C: purge --state waiting left no task');
    is($r->cmd('EXISTS', $k->('due')), 0, 'C: the list gone');
}
done_testing();
