# The due list's stale entries (issue #12 follow-up, helpers DL and FDL):
# an older build's delete by id (38667f0's remove.lua: HDEL of the value
# and stats "deleted" + 1, no look at a list it does not know) leaves the
# id listed without a value. Attacked script by script against a real
# redis-server (t/06's harness, as t/200):
#  1. the same plain id enqueued again (an idempotent resend: the value is
#     stored again, the id listed a second time): one claim that reads
#     both entries leases it once; two claims that take one entry each
#     lease it twice: the documented mixed-fleet bound (docs/CONTRACT.md
#     "The due list"; review RDL: the check across claims, wip/7DL's
#     "suspect" path, was dropped), asserted exactly so that a change to
#     it is noticed;
#  2. the move back to eta (unlist, an enqueue that finds the list lapsed)
#     must not put a listed id without a value on eta (a claim would lease
#     it and the worker bury it as "missing envelope": a dead task that
#     never existed for the user): dropped, not counted again (the old
#     delete counted it: review RDL finding 7).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;

my $r = DQTest::Redis->start(dir => DQTest::tmpdir());
my $new = DQScripts->new($r);
my $q;
sub k { DQTest::dq_key($q, $_[0]) }
sub enq { $new->enqueue_plain($q, @_) }
sub stat_of { $r->cmd('HGET', k('stats'), $_[0]) }
sub old_delete {                                   # 38667f0's remove
    $r->cmd('HDEL', k('tasks'), $_[0]);
    $r->cmd('HINCRBY', k('stats'), 'deleted', 1);
}
sub ids_of { [map { $_->{id} } DQScripts::claimed($_[0])] }
sub leased_ids {
    [sort map { (split /\|/)[0] } @{ $r->cmd('ZRANGE', k('leases'), 0, -1) }]
}
my $cid = 0;
# queue $q with the list on, $a and $b listed, $a deleted by an older
# build, then $a and $c
# enqueued again: $a listed twice. The claim function.
sub stale_resend {
    my ($a, $b, $c) = @_;
    my $cl = $new->cycle($q);
    $cl->('c0', 1);
    enq($a, $b);
    old_delete($a);
    enq($a, $c);
    return $cl;
}

# ---- 2. unlist: a listed id without a value is not moved to eta
$q = 'b1';
$new->cycle($q)->('c0', 1);                        # the list on
enq(qw(a1 a2 a3));
old_delete('a2');
my $rep = $new->v2($q, 'unlist');
is($rep->[1], 0, '2: unlist: the list emptied');
is($r->cmd('ZSCORE', k('eta'), 'a2'), undef, '2: a2 (no value) not on eta');
is($r->cmd('ZCARD', k('eta')), 2, '2: a1, a3 on eta');
is(stat_of('deleted'), 1, '2: a2 counted as deleted once (by the old delete)');
is(stat_of('due_n'), undef, '2: the count went with the list');

# ---- 2. the lapse: an enqueue moves the list back, the same check
$q = 'b2';
$new->cycle($q)->('c0', 1);
enq(qw(a1 a2 a3));
old_delete('a3');
$r->cmd('HSET', k('stats'), 'due_until', DQScripts::now_ms($r) - 1);
enq(qw(a4 a5));                                    # lapsed: moves back
is($r->cmd('EXISTS', k('due')), 0, '2: lapse: the list moved back');
is($r->cmd('ZSCORE', k('eta'), 'a3'), undef, '2: lapse: a3 not on eta');
is($r->cmd('ZCARD', k('eta')), 4, '2: lapse: a1 a2 a4 a5 on eta');
is(stat_of('deleted'), 1, '2: lapse: a3 counted once');

# ---- 1. the bound: two claims, the first takes the first entry, the
# second the second entry while x1 runs: x1 leased twice (two leases, one
# each claim; at-least-once holds, the fence does not)
$q = 'c1';
my $cl = stale_resend(qw(x1 x2 x3));
my @got = (@{ ids_of($cl->('c' . ++$cid, 1)) },    # the stale entry
           @{ ids_of($cl->('c' . ++$cid, 10)) });  # x2, x1 again?, x3
is("@got", 'x1 x2 x1 x3', '1: bound: x1 leased by each of two claims')
    or diag("claimed: @got");
is_deeply(leased_ids(), [qw(x1 x1 x2 x3)], '1: bound: two leases of x1');
is($r->cmd('EXISTS', k('due')), 0, '1: the list emptied');
is(stat_of('due_n'), undef, '1: its count with it');

# ---- 1. one claim that reads both entries
$q = 'c2';
$cl = stale_resend(qw(y1 y2 y3));
@got = @{ ids_of($cl->('c' . ++$cid, 10)) };
is_deeply([sort @got], [qw(y1 y2 y3)], '1: one claim: y1 leased once')
    or diag("claimed: @got");
is_deeply(leased_ids(), [qw(y1 y2 y3)], '1: one claim: one lease each');

# ---- 1. one claim reads both entries and leaves ids listed: the reply
# and the leases hold w1 once, due_n stays exact (the extra entry cut)
$q = 'c5';
$cl = stale_resend(qw(w1 w2 w3));
enq(qw(w4 w5 w6));
# a lease held first: the claim below adds to a lease set that exists
$new->enqueue2($q, 60000, 'p0', DQScripts::env2(),
               eta => DQScripts::now_ms($r) - 60000);
is("@{ ids_of($cl->('c' . ++$cid, 1)) }", 'p0', '1: p0 leased first');
@got = @{ ids_of($cl->('c' . ++$cid, 4)) };
is("@got", 'w1 w2 w3', '1: one claim of 4: w1 w2 w3 (w1 once)');
is_deeply(leased_ids(), [qw(p0 w1 w2 w3)], '1: one claim of 4: one lease each');
is(stat_of('due_n'), 3, '1: due_n 3: w4 w5 w6 left');
is(scalar(grep { !/^@/ } @{ $r->cmd('LRANGE', k('due'), 0, -1) }), 3,
   '1: three ids listed');

# ---- 1. the common claim pays nothing for it: a claim of listed tasks
# reads no lease set, looks up no id (the within-one-read check is a Lua
# table)
$q = 'c4';
$cl = $new->cycle($q);
$cl->('c0', 1);
enq(map { "n$_" } 1 .. 20);
$r->cmd('CONFIG', 'RESETSTAT');
is(scalar @{ ids_of($cl->('c' . ++$cid, 20)) }, 20, '1: 20 listed claimed');
my ($zr) = $r->cmd('INFO', 'commandstats') =~ /cmdstat_zrange:calls=(\d+)/;
my ($zm) = $r->cmd('INFO', 'commandstats') =~ /cmdstat_zmscore:calls=(\d+)/;
is(($zm // 0), 0, '1: no ZMSCORE on the common path');
cmp_ok(($zr // 0), '<=', 3,
       '1: no read of the lease set beyond the usual (3: as before the fix)');

done_testing();
