# Review RDL finding 6 (wip/7DL: [0 4] for ever). unlist's move back reads
# `tasks` (its value check). On a MIGRATING slot whose `tasks` already
# moved, wip/7DL's unlist (tasks not a declared key) answered {0 moved,
# N left} on every call and wrote due_until = 1: deferred-cli unlist
# looped 100,000 calls and then blamed a worker; a stopping worker's
# hand-back spent its 64 calls. `tasks` is declared now: the call is
# refused with TRYAGAIN before it runs.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $q = 'um0';
my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
$s->cycle($q)->('c0', 1);
$s->enqueue_plain($q, qw(h1 h2 h3));
DQScripts::keys_exist($A, $q, qw(eta wake));
my $slot = $c->migrating($c->slot($k->('tasks')), $A, $B);
is($A->cmd('MIGRATE', '127.0.0.1', $B->{port}, $k->('tasks'), 0, 5000), 'OK',
   'tasks moved to the target (the list, eta, stats still on the source)');
my $until = $A->cmd('HGET', $k->('stats'), 'due_until');
my @reps;
for (1 .. 5) {
    my $rep = eval { $s->v2($q, 'unlist') };
    push @reps, $rep ? "[@$rep]" : "error: $@";
}
diag("unlist replies while tasks is on the target: @reps");
is(scalar(grep { /TRYAGAIN/ } @reps), 5,
   'unlist: refused with TRYAGAIN every call (not {0, N} for ever)');
is($A->cmd('HGET', $k->('stats'), 'due_until'), $until,
   'the refused calls ran nothing (due_until not rewritten to 1)');
is($A->cmd('LLEN', $k->('due')), 4, 'the list untouched (3 ids, a marker)');
$c->stable($slot, $A, $B);
done_testing();
