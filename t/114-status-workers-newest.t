# Review RW finding 5: stale members stay in dq:workers until a child's
# trim (once per TTL per child; children killed -9 in a crash loop leave
# theirs); the module's status read the whole zset oldest first and kept
# the first 1000, so with 1000 stale members the live workers were the ones
# cut: status listed no worker, deferred_workers said 0. Now it asks
# ZREVRANGEBYSCORE +inf -inf LIMIT 0 1000: the freshest first, bounded.
# deferred-cli workers reads the members scored from Redis now on: stale
# ones never reach it.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQWorker;
use JSON::PP;
use Test::More;

my $dir = tmpdir();
my $r = DQTest::Redis->start;
my $n = DQNginx->start_status($r);
my $w = DQWorker::start_worker($r, $dir, name => 'w', args => ['-q', 'ops']);
ok(DQTest::wait_for(sub { $r->cmd('ZCARD', 'dq:workers') == 1 }, 20),
   'the worker is in the live list');
# after its first beat (which trims): 1500 members of crashed children,
# scored in the past, their hashes long expired
$r->cmd('ZADD', 'dq:workers', map { ($_, "crashed:abcdefgh:$_") } 1 .. 1500);
my $res = $n->request('GET', '/deferred/status');
is($res->{status}, 200, 'status: 200');
my $s = eval { decode_json($res->{body}) } || {};
is(scalar @{ $s->{workers} || [] }, 1, 'status: the live worker listed')
    or diag substr($res->{body}, 0, 300);
like($s->{workers}[0]{id} // '', qr/:$w->{pid}$/, '... it is ours');
$res = $n->request('GET', '/deferred/metrics');
like($res->{body}, qr/^deferred_workers 1$/m, 'metrics: deferred_workers 1');
my ($rc, $out, $err) = DQWorker::cli($r, '--json', 'workers');
my $l = eval { decode_json($out) } || [];
is(scalar @$l, 1, 'deferred-cli workers: the live one only') or diag $err;
DQWorker::stop_worker($w);
done_testing;
