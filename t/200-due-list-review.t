# Review RR2 of issue #12's due list (docs/CONTRACT.md "The due list"),
# each finding attacked the way operations meet it, script by script
# against a real redis-server (t/06's harness: DQScripts runs lib/lua as
# Redis does; DQScripts::PRELIST an "old" worker's scripts):
#  2. markers left by removes by id hide the ids behind them from every
#     claim and the workers spin (next_ms 0): a claim must cut through
#     marker-only stretches, and a remove by id leaves no marker alone;
#  1. an idempotent resend of keyed tasks (stored, not in eta) must not
#     scan the list (no LPOS); a plain id's look is bounded;
#  6. a remove by id of an id not stored scans no list (no LREM);
#  4. a due_until far ahead (Redis' clock stepped back) is pulled back by
#     the next claim, and enqueue does not trust it;
#  7. an unlist interrupted after its first call: later enqueues drain
#     the rest;
#  5. a listed id whose value went (an old tool's delete) is dropped by
#     the claim, not leased and buried, counted as deleted once (the old
#     delete counts it: the claim does not again, review RDL finding 7);
#  8. an acks-only claim (max_n 0) does not turn the list back on;
#  3. every new worker gone, old ones left, a quiet queue: the listed
#     tasks wait; deferred-cli queues and stats say so and name unlist.
# Each failed before its fix (commit messages of wip/6FRL).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;
use DQWorker ();

my $r = DQTest::Redis->start(dir => DQTest::tmpdir());
my $new = DQScripts->new($r);
my $old = DQScripts->at_rev($r, DQScripts::PRELIST);
my $env = DQScripts::env2();
my $q;
sub k { DQTest::dq_key($q, $_[0]) }
sub enq { $new->enqueue_plain($q, @_) }
sub stat_of { $r->cmd('HGET', k('stats'), $_[0]) }
sub calls {
    my ($cmd) = @_;
    my ($n) = $r->cmd('INFO', 'commandstats') =~ /cmdstat_$cmd:calls=(\d+)/;
    return $n // 0;
}
sub reset_q {
    $r->cmd('DEL', map { k($_) } qw(tasks eta leases stats due wake names
                                     dead errors));
}
my $cid = 0;

# ---- 2. markers: removes by id, then ids behind them
$q = 'f2';
my $cl = $new->cycle($q);
$cl->('c0', 1);                                    # the list on
my $W = 8;
my $N = 6 * ($W + 2) + 5;                          # past dq_due_read's rounds
enq("m${_}a", "m${_}b") for 1 .. $N;               # 2 a call: listed
for my $i (1 .. $N) {
    $new->v2($q, 'remove', 'id', "m$i$_", 1, 0) for qw(a b);
}
is(stat_of('due_n'), 0, '2: every listed id removed');
cmp_ok($r->cmd('LLEN', k('due')), '<=', 1,
       '2: a remove by id leaves no marker without ids');
# the markers as an older build left them (one a run, no ids)
$r->cmd('RPUSH', k('due'), map { '@' . (1000 + $_) } 1 .. $N);
enq('z1', 'z2');
is(stat_of('due_n'), 2, '2: z1 z2 listed behind the markers');
my ($got, $spins) = (0, 0);
for my $i (1 .. 10) {
    my $rep = $cl->('c' . ++$cid, $W);
    $got += scalar DQScripts::claimed($rep);
    $spins++ if $rep->[1] == 0 && $got == 2;
}
is($got, 2, '2: a claim makes progress through markers: z1, z2 claimed');
is($spins, 0, '2: no next_ms 0 once nothing is left');
is($r->cmd('EXISTS', k('due')), 0, '2: the markers are gone with the list');

# ---- 1. resends: keyed ids stored and not in eta look at no list
$q = 'f1';
reset_q();
$new->cycle($q)->('c0', 1);
enq(map { "L$_" } 1 .. 3000);                      # a backlog in the list
my @ids = map { "K$_" } 1 .. 50;                   # running: value, no eta
$r->cmd('HSET', k('tasks'), map { ($_, $env) } @ids);
$r->cmd('CONFIG', 'RESETSTAT');
my $rep = $new->v2($q, 'enqueue', 60000, 50, 50, (map { ($_, $env) } @ids),
                   ('') x 50, map { ($_, '', -1) } 1 .. 50);
is(scalar(grep { $rep->[2 * $_ - 1] == 1 } 1 .. 50), 50,
   '1: the keyed resend answers 1 (stored) for each');
is(calls('lpos') + calls('lrange'), 0, '1: keyed ids: no look at the list');
# a plain resend of listed ids: one bounded read per call, the run's ETA
# for an id near the head, the call's now past the bound
my $head = $r->cmd('LINDEX', k('due'), 0);
$r->cmd('CONFIG', 'RESETSTAT');
$rep = $new->v2($q, 'enqueue', 60000, 3, 0, (map { ($_, $env) } qw(L1 L2 L2999)),
                ('') x 3);
is_deeply([@$rep[1 .. 6]], [1, substr($head, 1), 1, substr($head, 1), 1, $rep->[0]],
          '1: plain resend: the run ETA near the head, now past the bound');
cmp_ok(calls('lpos') + calls('lrange'), '<=', 1, '1: one bounded read a call');

# ---- 6. remove by id of an id not stored: no LREM
$r->cmd('CONFIG', 'RESETSTAT');
$new->v2($q, 'remove', 'id', "nope$_", 1, 0) for 1 .. 5;
is(calls('lrem') + calls('lpos'), 0, '6: remove of an absent id scans no list');
is($new->v2($q, 'remove', 'id', 'L5', 1, 0), 1, '6: a listed one is found');
is(stat_of('due_n'), 2999, '6: ... and counted');

# ---- 4. due_until far ahead (a claim on a clock 1 h ahead)
$q = 'f4';
reset_q();
my $now = DQScripts::now_ms($r);
$r->cmd('HSET', k('stats'), 'clock', $now + 3600_000,
        'due_until', $now + 3660_000);
enq('p1', 'p2');
is($r->cmd('LLEN', k('due')), 0, '4: enqueue trusts no due_until past now + 60 s');
$new->cycle($q)->('c' . ++$cid, 1);
$now = DQScripts::now_ms($r);
cmp_ok(stat_of('due_until') - $now, '<=', 60000,
       '4: a claim pulls due_until back within 60 s');
# with the list on and ids listed, a far due_until is a lapse: moved back
enq('p3', 'p4');
is($r->cmd('LLEN', k('due')), 3, '4: listed again once a claim renewed it');
$r->cmd('HSET', k('stats'), 'due_until', $now + 3660_000);
enq('p5', 'p6');
is($r->cmd('EXISTS', k('due')), 0, '4: ... and moved back when it is far ahead');
is($r->cmd('ZSCORE', k('eta'), 'p3') > 0, 1, '4: p3 in eta');

# ---- 7. unlist interrupted after its first call
$q = 'f7';
reset_q();
$new->cycle($q)->('c0', 1);
enq(map { "u$_" } 1 .. 1000);
enq(map { "v$_" } 1 .. 500);
$rep = $new->v2($q, 'unlist');
is_deeply($rep, [1000, 501], '7: unlist call 1: 1000 moved, 501 elements left');
enq('p1', 'p2');
is(stat_of('due_n'), undef, '7: the next enqueue drains the rest');
is($r->cmd('EXISTS', k('due')), 0, '7: the list gone');
is(stat_of('due_until'), undef, '7: ... and due_until with it');
my $ocl = $old->cycle($q);
$got = 0;
$got += scalar(DQScripts::claimed($ocl->("o$_", 1000))) for 1 .. 3;
is($got, 1502, '7: old workers take every task');

# ---- 8. an acks-only claim after unlist
$q = 'f8';
reset_q();
$cl = $new->cycle($q);
$cl->('c0', 1);
enq(map { "b$_" } 1 .. 5);
$rep = $new->v2($q, 'unlist');
is_deeply($rep, [5, 0], '8: unlisted');
$cl->('c' . ++$cid, 0);                            # acks only
enq('b9', 'b10');
is($r->cmd('EXISTS', k('due')), 0, '8: an acks-only claim leaves the list off');
$cl->('c' . ++$cid, 1);
enq('b11', 'b12');
is($r->cmd('LLEN', k('due')), 3, '8: a claim that wants tasks turns it on');

# ---- 5. a listed id whose value an old delete took
$q = 'f5';
reset_q();
$cl = $new->cycle($q);
$cl->('c0', 1);
enq(qw(d1 d2 d3));
$r->cmd('HDEL', k('tasks'), 'd2');                 # 38667f0's remove:
$r->cmd('HINCRBY', k('stats'), 'deleted', 1);      # it counts the delete
my @t = DQScripts::claimed($cl->('c' . ++$cid, 10));
is_deeply([map { $_->{id} } @t], [qw(d1 d3)], '5: the claim skips d2');
is($r->cmd('ZCARD', k('leases')), 2, '5: d2 not leased');
is(stat_of('deleted'), 1, '5: counted as deleted once (the old delete)');
is(stat_of('due_n'), undef, '5: the count follows');

# ---- 3. the new workers gone, the queue quiet: the CLI warns
$q = 'f3';
reset_q();
$new->cycle($q)->('c0', 1);
enq(map { "w$_" } 1 .. 10);
$r->cmd('SADD', 'dq:queues', $q);
my ($rc, $out, $err) = DQWorker::cli($r, 'queues');
is($rc, 0, '3: queues');
unlike($err, qr/warning/, '3: the list on: no warning');
$r->cmd('HSET', k('stats'), 'due_until', DQScripts::now_ms($r) - 1);
($rc, $out, $err) = DQWorker::cli($r, 'queues');
like($err, qr/warning: queue f3: 10 tasks in the due list.*deferred-cli unlist f3/,
     '3: queues warns of a lapsed list with tasks');
($rc, $out, $err) = DQWorker::cli($r, 'stats', $q);
is($rc, 0, '3: stats');
like($err, qr/warning: queue f3: 10 tasks in the due list/, '3: stats warns too');
($rc, $out, $err) = DQWorker::cli($r, 'unlist', $q);
is($rc, 0, '3: unlist') or diag($err);
($rc, $out, $err) = DQWorker::cli($r, 'stats', $q);
unlike($err, qr/warning/, '3: after unlist: no warning');

done_testing();
