# A real sentinel that names a primary whose connect() fails at once
# (255.255.255.255: the kernel refuses it before any packet, as it does
# an unreachable network or exhausted descriptors). The module's setup
# cannot even start: requests waiting for it (operator and enqueue) get
# 503 at once, not at deferred_timeout (review RM, finding 2: the
# synchronous failure only backed off and woke nobody).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQSentinel;
use Test::More;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
DQTest::need_tool(DQTest::in_path('redis-sentinel'), 'redis-sentinel');
my $dir = tmpdir();
my $s = DQSentinel::spawn_sentinel("$dir/s1", 'dqm', 6379, 1, '255.255.255.255');
my $n = DQNginx->start(workers => 1, vars => { SP => $s->{port} }, http => q{
    deferred_redis sentinel:dqm@127.0.0.1:%%SP%% connect_timeout=1s;
    deferred_timeout 8s;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /ready { deferred_ready; }
        location = /st    { deferred_status; }
        location = /ep    { deferred_endpoint on; }
    }
});
ok(DQTest::wait_for(sub { slurp($n->error_log) =~ /255\.255\.255\.255/ }, 10),
   'the sentinel names 255.255.255.255 (logged)');
sleep 1;     # past the first back-off: each request asks the sentinel again
for my $p ('/ready', '/st', '/ready') {
    my $t = time;
    my $res = $n->request('GET', $p, timeout => 12);
    my $dt = time - $t;
    is($res->{status}, 503, "$p: 503");
    # deferred_timeout is 8 s: anything near it means the request waited
    # for a setup that had already failed
    cmp_ok($dt, '<', 4, sprintf("$p: answered after %.2f s, not at deferred_timeout", $dt));
}
my $t = time;
my $res = $n->request('POST', '/ep', json => '{"func":"noop","queue":"q"}', timeout => 12);
is($res->{status}, 503, 'enqueue: 503');
cmp_ok(time - $t, '<', 4, 'enqueue: not held to deferred_timeout');
is($n->stop, 0, 'nginx stopped');
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
