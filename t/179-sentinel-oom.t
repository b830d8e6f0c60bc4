# With a sentinel: address, an -OOM reply (the primary is healthy, just
# full) fails only its request: nginx keeps the connection (before: dropped
# it and asked the sentinels again, so requests right after memory was freed
# got 503 during the back-off; a plain address answered 201).
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQNginx; use DQSentinel;
use Time::HiRes qw(time sleep);
DQNginx::require_nginx();
my $dir = DQTest::tmpdir();
my $p = DQTest::Redis->start(dir => do { mkdir "$dir/p"; "$dir/p" });
my $s = DQSentinel::spawn_sentinel("$dir/s1", 'dqm', $p->port, 1);
my $addr = "sentinel:dqm\@127.0.0.1:$s->{port}";
mkdir "$dir/n";
my $n = DQNginx->start(dir => "$dir/n", vars => { A => $addr }, http => q{
    deferred_redis %%A%% connect_timeout=500ms;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
});
my $body = qq({"func":"ops.run","queue":"f","args":["x"]});
my $r = $n->request('POST', '/_ah/queue/deferred', json => $body);
is($r->{status}, 201, 'stored before OOM') or diag explain $r;
$p->cmd('CONFIG', 'SET', 'maxmemory', '1');
$r = $n->request('POST', '/_ah/queue/deferred', json => $body);
is($r->{status}, 503, 'under OOM: 503');
$p->cmd('CONFIG', 'SET', 'maxmemory', '0');
my @st = map { my $x = $n->request('POST', '/_ah/queue/deferred', json => $body); $x->{status} } 1 .. 5;
is("@st", "201 201 201 201 201", 'right after memory is freed: all stored');
my $log = DQTest::slurp($n->error_log);
unlike($log, qr/OOM.*asking the sentinels again/, 'OOM does not drop the connection');
is($p->cmd('HLEN', DQTest::dq_key('f', 'tasks')), 6, 'six tasks stored');
$n->stop;
done_testing;
