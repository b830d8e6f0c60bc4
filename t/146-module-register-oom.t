# The module's SADD dq:queues is throttled to once per queue, connection and
# second. An enqueue refused (-OOM: its pipelined SADD refused too) must not
# count as registered: the next enqueue, stored once memory is back, lists
# the queue (before: left out of dq:queues, and so out of deferred-cli
# queues, status, metrics and migrate --all, until an enqueue a second later).
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQNginx;
use Time::HiRes qw(sleep);
DQNginx::require_nginx();
my $dir = DQTest::tmpdir();
my $p = DQTest::Redis->start(dir => do { mkdir "$dir/p"; "$dir/p" });
mkdir "$dir/n";
my $n = DQNginx->start(dir => "$dir/n", vars => { A => "127.0.0.1:" . $p->port }, http => q{
    deferred_redis %%A%%;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
}, workers => 1);
my $body = qq({"func":"ops.run","queue":"g","args":["x"]});
$p->cmd('CONFIG', 'SET', 'maxmemory', '1');
my $r = $n->request('POST', '/_ah/queue/deferred', json => $body);
is($r->{status}, 503, 'refused under OOM');
$p->cmd('CONFIG', 'SET', 'maxmemory', '0');
$r = $n->request('POST', '/_ah/queue/deferred', json => $body);
is($r->{status}, 201, 'stored once memory is back');
sleep 0.3;
my $hlen = $p->cmd('HLEN', DQTest::dq_key('g', 'tasks'));
my $mem = $p->cmd('SISMEMBER', 'dq:queues', 'g');
is($hlen, 1, 'one task stored in g');
is($mem, 1, 'queue g is listed in dq:queues');
$n->stop;
done_testing;
