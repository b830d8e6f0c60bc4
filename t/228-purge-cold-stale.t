# Review RR8: deferred-cli purge over a cold tier whose index names a
# bucket that holds no task (a bucket key gone while its index member
# stays: a hand DEL, which OPERATIONS.md warns about, or an evicting
# maxmemory-policy, which the worker only warns about). The bulk remove's
# plan reads up to max - #ids index members; a member without a bucket
# adds 0 tasks, so taken = plan.n < max and "more" is 0 although buckets
# are left: the purge ends early, exit 0 (the class of review RV8 finding
# 1, left for the cold tier by b11f564). A real redis-server and
# deferred-cli: 1500 buckets of one task each (windows 10 s apart, as
# delayed tasks of a trickle producer), the 10th bucket key deleted.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;
use DQWorker;

my $r = DQTest::Redis->start(dir => DQTest::tmpdir());
my $q = 'pc';
my $k = sub { DQTest::dq_key($q, $_[0]) };
my $tm = $r->cmd('TIME');
my $now = $tm->[0] * 1000;
my $ws0 = $now - $now % 10000 + 3600_000;        # an hour ahead
my $env = DQScripts::env2();
for my $i (0 .. 1499) {
    my $ws = $ws0 + $i * 10000;
    $r->cmd('HSET', $k->('cold') . ":$ws", "c$i", sprintf('%04d', 5) . $env);
    $r->cmd('ZADD', $k->('cold'), $ws, $ws);
}
$r->cmd('HSET', $k->('stats'), 'cold', 1500);
$r->cmd('DEL', $k->('cold') . ':' . ($ws0 + 9 * 10000));   # one bucket gone
my ($rc, $out, $err) = DQWorker::cli($r, 'purge', $q, '--state', 'delayed', '--yes');
note("purge: rc $rc: $out $err");
is($rc, 0, 'purge exits 0');
my $left = $r->cmd('ZCARD', $k->('cold'));
is($left, 0, 'purge --state delayed left no cold bucket') or diag("buckets left: $left");

{   # held: a due list of 7,000 markers and then one id: the purge ends
    # (each call cuts the markers it read), takes the id; count = deleted
    my $q = 'pm';
    my $k = sub { DQTest::dq_key($q, $_[0]) };
    my $new = DQScripts->new($r);
    $new->cycle($q)->('c0', 1);                 # a claim: the list on
    $new->enqueue_plain($q, 'm0');
    my $m = $r->cmd('LINDEX', $k->('due'), 0);
    $r->cmd('DEL', $k->('due'));
    for my $i (1 .. 7) { $r->cmd('RPUSH', $k->('due'), ($m) x 1000) }
    $r->cmd('RPUSH', $k->('due'), 'm0');
    my $d0 = $r->cmd('HGET', $k->('stats'), 'deleted') // 0;
    my ($rc, $out, $err) = DQWorker::cli($r, 'purge', $q, '--state', 'waiting', '--yes');
    note("purge: rc $rc: $out $err");
    like($out, qr/^purged 1 /, 'markers: purged 1');
    is($r->cmd('EXISTS', $k->('due')), 0, 'markers: the list gone');
    is(($r->cmd('HGET', $k->('stats'), 'deleted') // 0) - $d0, 1, 'markers: deleted + 1');
}
done_testing();
