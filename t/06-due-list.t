# Issue #12, the due list (dq2:{q}:due, lib/lua/prelude.lua dq_due_read):
# plain tasks enqueued due now go to a list by one RPUSH instead of a ZADD
# into the ETA set, while a worker that reads the list claims the queue.
# Driven script by script (DQScripts: lib/lua as Redis runs them) against
# a real redis-server, an "old" worker and producer being main's scripts
# before the list (38667f0, DQScripts::PRELIST, read from git history):
# - deploy producers before workers: a new enqueue with no new claim (or
#   only old ones) writes the ETA set, and old claims take every task;
# - a new claim turns the list on (stats due_until); due-now tasks go to
#   it, are claimed once each with their run's ETA, next_ms 0 while some
#   are left; a backlog in both the list and the ETA set is taken oldest
#   ETA first, neither starves;
# - the flag lapses (no new claim for 60 s): the next enqueue moves the
#   list back to the ETA set at each run's ETA; deferred-cli unlist does
#   it all at once (rollback), and old claims then take every task;
# - remove by id, purge, status counts, the CLI's views, an enqueue of an
#   id already listed, forget;
# - a deep list (2,500 tasks in one call, 3 markers) drained by claims of
#   32, each id once;
# - a call of one task, and one left by the fast path at a cold task: not
#   listed;
# - end to end: a deferred-worker claiming, deferred-cli defer --count 300
#   (paused: all listed), each task run once with its run's ETA.
# Fails on 38667f0 (DQ_T_LUA=git:38667f0): nothing writes the list.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;
use DQWorker ();
use Time::HiRes qw(sleep);

my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $new = DQScripts->new($r);
my $old = DQScripts->at_rev($r, DQScripts::PRELIST);
my $env = DQScripts::env2();
my $q = 'dl';
sub k { DQTest::dq_key($q, $_[0]) }

# n due-now tasks in one enqueue call ($s: new or old scripts)
sub enq {
    my ($s, @ids) = @_;
    return $s->v2($q, 'enqueue', 60000, scalar(@ids), 0,
                  (map { ($_, $env) } @ids), ('') x @ids);
}
# an enqueue of one task at an absolute ETA (ms)
sub enq_at {
    my ($s, $id, $eta) = @_;
    return $s->v2($q, 'enqueue', 60000, 1, 0, $id, $env, $eta);
}
my $ncl = $new->cycle($q);
my $ocl = $old->cycle($q);
my $cid = 0;
# ids (and etas) of one claim of $n
sub take {
    my ($cl, $n) = @_;
    my $rep = $cl->('c' . ++$cid, $n);
    my @t = DQScripts::claimed($rep);
    return ($rep, [map { $_->{id} } @t], [map { $_->{eta} } @t]);
}
sub list { $r->cmd('LRANGE', k('due'), 0, -1) }
sub stat_of { $r->cmd('HGET', k('stats'), $_[0]) }
sub status {
    # { now, waiting, due, running, dead, oldest, conf, stats, dead list }
    return $new->v2($q, 'status', 0);
}
sub reset_q { $r->cmd('DEL', map { k($_) } qw(tasks eta leases stats due wake)) }

# ---- deploy producers before workers
my $rep = enq($new, qw(a1 a2 a3));
is($r->cmd('ZCARD', k('eta')), 3, 'no worker yet: a new enqueue writes eta');
is($r->cmd('EXISTS', k('due')), 0, '... and no due list');
my ($c, $ids) = take($ocl, 10);
is_deeply($ids, [qw(a1 a2 a3)], 'an old claim takes them');
is(stat_of('due_until'), undef, 'an old claim does not turn the list on');
enq($new, qw(a4 a5));
is($r->cmd('EXISTS', k('due')), 0, 'old workers only: still eta');
($c, $ids) = take($ocl, 10);
is_deeply($ids, [qw(a4 a5)], '... and old claims take every task');

# ---- a new worker turns the list on
($c) = take($ncl, 1);
my $now = $c->[0];
my $until = stat_of('due_until');
ok(defined $until && $until >= $now + 59000 && $until <= $now + 60000,
   'a new claim: due_until = its now + 60 s') or diag("until $until now $now");
$rep = enq($new, qw(b1 b2 b3 b4 b5));
my $m = $rep->[0];
is_deeply(list(), ['@' . $m, qw(b1 b2 b3 b4 b5)],
          'due now: one marker (the call\'s now) and the ids, in order');
is($r->cmd('ZCARD', k('eta')), 0, 'nothing in eta');
is(stat_of('due_n'), 5, 'counted: due_n 5');
my $st = status();
is($st->[1], 5, 'status: 5 waiting');
is($st->[2], 5, 'status: 5 due');
ok($st->[5] >= 0, 'status: the oldest due age from the list head');
my $etas;
($c, $ids, $etas) = take($ncl, 3);
is_deeply($ids, [qw(b1 b2 b3)], 'claimed FIFO');
is_deeply($etas, [($m) x 3], 'each one\'s eta: the marker');
is($c->[1], 0, 'next_ms 0: listed tasks left');
is_deeply(list(), ['@' . $m, qw(b4 b5)], 'a marker kept before the rest');
is(stat_of('due_n'), 2, 'due_n 2');
is($r->cmd('ZCARD', k('leases')), 5 + 3, 'three leases more');
($c, $ids) = take($ncl, 10);
is_deeply($ids, [qw(b4 b5)], 'the rest');
is($r->cmd('EXISTS', k('due')), 0, 'the list emptied is gone');
is(stat_of('due_n'), undef, 'due_n gone with it');
is($c->[1] > 0 || $c->[1] == -1 ? 1 : 0, 1, 'next_ms: nothing due');

# ---- a backlog in both: merged by ETA, neither starves
reset_q();
take($ncl, 1);                                   # the list on
my $t1 = enq($new, qw(l1 l2))->[0];
enq_at($new, 'e0', $t1 - 1000);                  # older than the list's
enq_at($new, 'e1', $t1 + 1);                     # between the two runs
sleep 0.02;
my $t2 = enq($new, qw(l3 l4))->[0];
ok($t2 > $t1 + 1, 'two runs of the list, ETAs apart');
enq_at($new, 'e2', $t2 + 5);
sleep 0.01;
my @order;
my @eta_of;
for (1 .. 5) {
    ($c, $ids, $etas) = take($ncl, 2);
    push @order, @$ids;
    push @eta_of, @$etas;
    last unless @$ids;
}
is_deeply(\@order, [qw(e0 l1 l2 e1 l3 l4 e2)],
          'claims of 2: oldest ETA first across the list and eta');
is_deeply(\@eta_of, [$t1 - 1000, $t1, $t1, $t1 + 1, $t2, $t2, $t2 + 5],
          'each task\'s eta as stored (the list\'s: its marker)');

# ---- the flag lapses: the next enqueue moves the list back
reset_q();
take($ncl, 1);
my $tb = enq($new, qw(f1 f2))->[0];
sleep 0.01;
my $tc = enq($new, qw(f3 f4))->[0];
is(scalar @{ list() }, 6, 'two runs listed');
$r->cmd('HSET', k('stats'), 'due_until', $tc - 1);   # 60 s without a new claim
enq($new, 'g1');
is($r->cmd('EXISTS', k('due')), 0, 'lapsed: the enqueue emptied the list');
is($r->cmd('ZSCORE', k('eta'), 'f1'), $tb, 'f1 in eta at its run\'s ETA');
is($r->cmd('ZSCORE', k('eta'), 'f2'), $tb, 'f2 too');
is($r->cmd('ZSCORE', k('eta'), 'f3'), $tc, 'f3 at its own run\'s ETA');
is($r->cmd('ZSCORE', k('eta'), 'f4'), $tc, 'f4 too');
ok(defined $r->cmd('ZSCORE', k('eta'), 'g1'), 'the new task in eta');
is(stat_of('due_n'), undef, 'due_n gone');
($c, $ids) = take($ocl, 10);
is_deeply($ids, [qw(f1 f2 f3 f4 g1)], 'an old claim takes them all, in ETA order');

# ---- an id enqueued again while listed; remove by id; purge; forget
reset_q();
take($ncl, 1);
my $th = enq($new, qw(h1 h2 h3 h4))->[0];
$rep = enq($new, 'h2', 'h9');
is_deeply([@$rep[1, 2]], [1, $th], 'h2 again: status 1, its listed ETA');
# a call with a task stored before is not the fast path: eta
is_deeply(list(), ['@' . $th, qw(h1 h2 h3 h4)], 'h2 listed once');
is($r->cmd('ZSCORE', k('eta'), 'h9'), $rep->[0], 'h9 (the slow path) in eta');
$r->cmd('SADD', 'dq:queues', $q);
my ($rc, $out, $err) = DQWorker::cli($r, 'show', $q, 'h3');
is($rc, 0, 'deferred-cli show of a listed task') or diag($err);
like($out, qr/waiting|due/, '... says it waits');
($rc, $out, $err) = DQWorker::cli($r, '--json', 'queues');
my ($row) = $out =~ /(\{[^{}]*"queue"\s*:\s*"dl"[^{}]*)/;
$row //= '';
like($row, qr/"waiting"\s*:\s*5/, 'deferred-cli queues: 5 waiting')
    or diag($out);
like($row, qr/"due"\s*:\s*5/, '... 5 due');
($rc, $out) = DQWorker::cli($r, 'list', $q, '--state', 'due');
like($out, qr/h1.*h2.*h3.*h4.*h9/s, 'deferred-cli list --state due: the listed ids');
($rc, $out, $err) = DQWorker::cli($r, 'delete', $q, 'h1');
is($rc, 0, 'deferred-cli delete of a listed task');
like($out, qr/\(waiting\)/, '... it was waiting');
is_deeply(list(), ['@' . $th, qw(h2 h3 h4)], 'out of the list, its marker kept');
is(stat_of('due_n'), 3, 'due_n 3');
is($r->cmd('HEXISTS', k('tasks'), 'h1'), 0, 'its envelope gone');
($rc) = DQWorker::cli($r, 'delete', $q, 'h1');
is($rc, 5, 'deleted again: not found');
$st = status();
is($st->[1], 4, 'status: 4 waiting');
is($new->v2($q, 'forget'), 0, 'forget refused while tasks are listed');
is_deeply($new->v2($q, 'remove', 'due', '', 2, 0), [2, 1],
          'remove due, 2: from the list head (more may be left: it took max)');
is_deeply(list(), ['@' . $th, qw(h4)], 'h2, h3 gone');
is_deeply($new->v2($q, 'remove', 'waiting', '', 10, 0), [2, 0],
          'remove waiting: the rest (none left)');
is($r->cmd('EXISTS', k('due')), 0, 'the list gone');
is($r->cmd('HLEN', k('tasks')), 0, 'no envelope left');
is($new->v2($q, 'remove', 'id', 'h9', 1, 0), 0, 'h9: not found any more');
$st = status();
is($st->[1], 0, 'status: 0 waiting');
# the last listed task removed by id: its marker goes with it (review
# RR2, finding 2); a marker alone, as an older build left one, claims skip
$th = enq($new, qw(i1 i2))->[0];
is($new->v2($q, 'remove', 'id', 'i1', 1, 0), 1, 'remove i1 by id');
is($new->v2($q, 'remove', 'id', 'i2', 1, 0), 1, 'remove i2 by id');
is_deeply(list(), [], 'its run\'s marker went with the last id');
$r->cmd('RPUSH', k('due'), '@' . $th);
($c, $ids) = take($ncl, 5);
is_deeply($ids, [], 'a claim takes nothing from it');
ok($c->[1] != 0, '... and does not say due work is left');
$r->cmd('DEL', map { k($_) } qw(leases conf names dead errors));
is($new->v2($q, 'forget'), 1, 'forget: a marker alone does not hold the queue');
is($r->cmd('EXISTS', k('due')), 0, '... and goes with it');

# ---- many markers alone at the head (runs whose ids were all removed by
# id) before listed ids: claims get through them (each drops what it read)
reset_q();
take($ncl, 1);
$r->cmd('RPUSH', k('due'), ('@1') x 300, '@5', 'z1', 'z2');
$r->cmd('HSET', k('tasks'), 'z1', $env, 'z2', $env);
$r->cmd('HSET', k('stats'), 'due_n', 2);
{
    my @got;
    my $calls = 0;
    while (@got < 2 && $calls < 20) {
        ($c, $ids) = take($ncl, 5);
        push @got, @$ids;
        $calls++;
    }
    is("@got", 'z1 z2', "z1, z2 claimed behind 300 markers ($calls claims)");
    ok($calls <= 12, '... in a bounded number of claims');
}

# ---- a call of one task: the ETA set (listing one costs more than it saves)
$rep = enq($new, 'j1');
is($r->cmd('ZSCORE', k('eta'), 'j1'), $rep->[0], 'one task a call: eta, the list on');
is($r->cmd('EXISTS', k('due')), 0, '... nothing listed');

# ---- a call whose due-now tasks come before one that goes cold: the fast
# path is left at the cold task, so nothing it had planned is listed (the
# general loop stores the call: due-now ones on eta)
reset_q();
take($ncl, 1);
{
    my $now = $r->cmd('TIME')->[0] * 1000;
    $rep = $new->v2($q, 'enqueue', 60000, 3, 0, 'k1', $env, 'k2', $env,
                    'k3', $env, '', '', $now + 3600000);
    my @in = (scalar(grep { $_ eq 'k1' || $_ eq 'k2' } @{ list() }),
              scalar(grep { defined $r->cmd('ZSCORE', k('eta'), $_) } qw(k1 k2)));
    is("@in", '0 2', 'k1, k2: in eta only, not listed as well');
    is(stat_of('due_n'), undef, 'due_n not counted');
    is(stat_of('cold'), 1, 'k3 cold');
}

# ---- a deep list: 2,500 in one call, claims of 32, each id once
reset_q();
take($ncl, 1);
my @deep = map { "d$_" } 1 .. 2500;
enq($new, @deep);
my $l = list();
is(scalar(grep { /^@/ } @$l), 3, '2,500 ids: one marker per 1,000');
is(stat_of('due_n'), 2500, 'due_n 2500');
my %seen;
my $calls = 0;
while (1) {
    ($c, $ids) = take($ncl, 32);
    last unless @$ids;
    $seen{$_}++ for @$ids;
    $calls++;
    last if $calls > 200;
}
is(scalar(keys %seen), 2500, 'every id claimed');
is(scalar(grep { $_ != 1 } values %seen), 0, 'each once');
is($calls, 79, '79 claims of 32');
is($r->cmd('EXISTS', k('due')), 0, 'the list gone');

# ---- rollback: deferred-cli unlist, then old claims only
reset_q();
$r->cmd('SADD', 'dq:queues', $q);
take($ncl, 1);
enq($new, map { "u$_" } 1 .. 1500);
enq($new, map { "v$_" } 1 .. 20);
($rc, $out, $err) = DQWorker::cli($r, 'unlist', $q);
is($rc, 0, 'deferred-cli unlist') or diag($err);
like($out, qr/moved 1520 tasks/, '... moved 1520 tasks');
is($r->cmd('EXISTS', k('due')), 0, 'the list gone');
is(stat_of('due_until'), undef, 'the list off');
is($r->cmd('ZCARD', k('eta')), 1520, 'all in eta');
enq($new, 'w1');
is($r->cmd('EXISTS', k('due')), 0, 'a new enqueue after it: eta');
%seen = ();
for (1 .. 10) {
    ($c, $ids) = take($ocl, 1000);
    last unless @$ids;
    $seen{$_}++ for @$ids;
}
is(scalar(keys %seen), 1521, 'old claims take every task');
is(scalar(grep { $_ != 1 } values %seen), 0, 'each once');

# ---- end to end: a worker claims the queue, deferred-cli defers 300 due
# tasks (one dq_defer_many call) while it is paused: they wait in the list;
# resumed, each runs once, its recorded ETA its run's marker
{
    my $eq = 'dle';
    my $ek = sub { DQTest::dq_key($eq, $_[0]) };
    my $w = DQWorker::start_worker($r, $dir, name => 'w',
                                   args => ['-q', $eq, '--concurrency', '8']);
    ok(DQTest::wait_for(sub { defined $r->cmd('HGET', $ek->('stats'), 'due_until') }, 20),
       'end to end: the worker turned the list on');
    DQWorker::cli($r, 'pause', $eq);
    my $rec = "$dir/e2e.rec";
    my ($rc, $out, $err) = DQWorker::cli($r, 'defer', '-q', $eq, '--count', 300,
                                         'record', $rec);
    is($rc, 0, '300 deferred') or diag($err);
    my @ids = split /\n/, $out;
    my @l = grep { !/^@/ } @{ $r->cmd('LRANGE', $ek->('due'), 0, -1) };
    is(scalar(@l) . ' ' . $r->cmd('ZCARD', $ek->('eta')), '300 0',
       'paused: all 300 listed, none in eta');
    my ($marker) = @{ $r->cmd('LRANGE', $ek->('due'), 0, 0) };
    $marker =~ s/^@//;
    DQWorker::cli($r, 'resume', $eq);
    my @got = DQWorker::wait_records($rec, 300, 30);
    my %once;
    $once{ $_->{id} }++ for @got;
    is(scalar(grep { ($once{$_} // 0) == 1 } @ids), 300, 'each ran once');
    is(scalar(grep { $_->{eta} != $marker } @got), 0,
       'each one\'s ETA as recorded: the marker of its run');
    is($r->cmd('EXISTS', $ek->('due')), 0, 'the list drained and gone');
    is(DQWorker::stop_worker($w), 0, 'the worker exits 0');
}

done_testing();
