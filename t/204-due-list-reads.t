# What the due list's readers answer (issue #12 follow-up, helper DL),
# against a real redis-server (t/06's harness):
#  3. status' oldest due age is the age of the oldest listed run that still
#     has an id: a run's marker left alone at the head (an older build's
#     removes by id, or a purge that ended on a run's last id) is not read
#     as a task waiting since then (review RR1, finding 4);
#  4. an enqueue that finds a plain id stored and not on eta, the list
#     longer than the 1,000 elements it reads, answers 0 (not waiting)
#     for a task that runs or is dead, and the call's now only for one that
#     is listed further;
#  m. a claim merged from eta and the list cuts the list after what it
#     took (a guard for the second read of the list such a claim makes,
#     passes before and after).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;

my $r = DQTest::Redis->start(dir => DQTest::tmpdir());
my $new = DQScripts->new($r);
my $env = DQScripts::env2();
my $q;
sub k { DQTest::dq_key($q, $_[0]) }
sub enq { $new->enqueue_plain($q, @_) }

# ---- 3. markers alone at the head
$q = 's1';
$new->cycle($q)->('c0', 1);
my $now = DQScripts::now_ms($r);
$r->cmd('RPUSH', k('due'), map { '@' . ($now - 600_000 + $_) } 1 .. 40);
enq(qw(a1 a2));
my $st = $new->v2($q, 'status', 0);
is($st->[2], 2, '3: 2 due');
cmp_ok($st->[5], '<', 60_000,
       '3: the oldest due age is a1\'s run\'s (not a marker alone)')
    or diag("oldest_due_age_ms $st->[5]");
# the oldest listed run that has an id: the age of its marker
$r->cmd('DEL', k('due'));
$r->cmd('RPUSH', k('due'), '@' . ($now - 900_000), '@' . ($now - 5000), 'b1');
$r->cmd('HSET', k('tasks'), 'b1', $env);
$r->cmd('HSET', k('stats'), 'due_n', 1);
$st = $new->v2($q, 'status', 0);
cmp_ok($st->[5], '>=', 5000, '3: b1 waits since its run\'s marker');
cmp_ok($st->[5], '<', 60_000, '3: ... not since the marker alone before');
# only markers: none listed, none due from the list
$r->cmd('DEL', k('due'));
$r->cmd('RPUSH', k('due'), '@' . ($now - 900_000));
$r->cmd('HSET', k('stats'), 'due_n', 0);
$st = $new->v2($q, 'status', 0);
is($st->[5], -1, '3: markers alone: no oldest due age');

# ---- 4. resends past the list's first 1,000 elements
$q = 'r1';
$new->cycle($q)->('c0', 1);
enq(map { "L$_" } 1 .. 1500);                      # L1200 listed past 1,000
$r->cmd('HSET', k('tasks'), map { ($_, $env) } qw(run1 dead1));
$r->cmd('ZADD', k('leases'), DQScripts::now_ms($r) + 30000, 'run1|cX|1');
$r->cmd('ZADD', k('dead'), DQScripts::now_ms($r), 'dead1');
my $rep = $new->v2($q, 'enqueue', 60000, 3, 0,
                   (map { ($_, $env) } qw(run1 dead1 L1200)), ('') x 3);
# running: its lease set is not read (O(leases) an enqueue, review RDL
# finding 3): answered the call's now, as a listed task further is
is_deeply([@$rep[1 .. 6]], [1, $rep->[0], 1, 0, 1, $rep->[0]],
          '4: dead answers 0; running and listed further the call\'s now');
is($r->cmd('HGET', k('stats'), 'due_n'), 1500, '4: nothing listed again');

# ---- a claim that takes eta's older tasks and only part of the listed
# ids it read cuts the list after the ones it took (claim reads the list
# again for the cut: a guard for a change of that; passes as it is)
$q = 'm1';
my $cl = $new->cycle($q);
$cl->('c0', 1);
enq(qw(a1 a2 a3));
my $t1 = substr($r->cmd('LINDEX', k('due'), 0), 1);
$r->cmd('ZADD', k('eta'), $t1 - 10, 'e0', $t1, 'e1', $t1 + 1, 'e2');
select(undef, undef, undef, 0.01);
$rep = $cl->('c1', 3);
is_deeply([map { $_->{id} } DQScripts::claimed($rep)], [qw(e0 e1 a1)],
          'm: the older first, eta\'s on a tie');
is_deeply($r->cmd('LRANGE', k('due'), 0, -1), ["\@$t1", 'a2', 'a3'],
          'm: a1 cut, its run\'s marker kept before a2');
is($r->cmd('HGET', k('stats'), 'due_n'), 2, 'm: the count follows');
$rep = $cl->('c2', 3);
is_deeply([map { $_->{id} } DQScripts::claimed($rep)], [qw(a2 a3 e2)],
          'm: then the rest in ETA order');
is($r->cmd('EXISTS', k('due')), 0, 'm: the list gone');

done_testing();
