# A client naming many queues: the module keeps each queue's key strings
# and when it last registered the queue in dq:queues, for at most 64
# queues per Redis per worker (least recently used goes first). Tasks of
# 200 queues, sent round-robin twice (every entry evicted and made again),
# each land in their own queue; every queue is listed in dq:queues; 8,000
# more distinct queues do not grow the worker (an unbounded table would
# hold ~6 MB for them); a queue taken out of dq:queues comes back with the
# first enqueue a second later.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use Time::HiRes qw(sleep);

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, workers => 1, http => q{
    deferred_redis %%REDIS%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 100000;
        deferred_endpoint on;
    }
});

my $post = sub {
    my ($q) = @_;
    DQNginx::build_request('POST', '/_ah/queue/deferred',
                           json => qq({"func":"noop","queue":"$q","args":["$q"]}));
};
my $statuses = sub {
    my %s;
    $s{$_->{status}}++ for @_;
    return join ',', map { "$_ x $s{$_}" } sort keys %s;
};

my @qs = map { "q$_" } 0 .. 199;
my @res = $n->many([ map { $post->($_) } @qs, @qs ], conns => 20, timeout => 60);
is($statuses->(@res), '201 x 400', '400 enqueues to 200 queues, round-robin twice: all 201');
my @wrong = grep { (DQNginx::stored($r, $_) // 0) != 2 } @qs;
is(scalar @wrong, 0, 'each queue holds its own 2 tasks')
    or diag "wrong: @wrong[0 .. ($#wrong > 9 ? 9 : $#wrong)]";
my %listed = map { $_ => 1 } @{ $r->cmd('SMEMBERS', 'dq:queues') };
is(scalar(grep { $listed{$_} } @qs), 200, 'all 200 queues in dq:queues');

my ($pid) = $n->worker_pids;
my $rss = sub {
    my ($kb) = DQTest::slurp("/proc/$pid/status") =~ /^VmRSS:\s+(\d+)/m;
    return $kb // 0;
};
my @warm = map { "w$_" } 0 .. 999;
$n->many([ map { $post->($_) } @warm ], conns => 20, timeout => 60);
my $before = $rss->();
my @many = map { "m$_" } 0 .. 7999;
@res = $n->many([ map { $post->($_) } @many ], conns => 20, timeout => 120);
is($statuses->(@res), '201 x 8000', '8,000 more distinct queues: all 201');
my $grown = $rss->() - $before;
cmp_ok($grown, '<', 2048, "the worker grew by $grown KiB (bounded table)");
is(DQNginx::stored($r, 'm7999'), 1, 'the last one stored');

# dq:queues is informational and re-registered at most once a second
$r->cmd('SREM', 'dq:queues', 'q5');
sleep 1.2;
is($n->request('POST', '/_ah/queue/deferred', json => '{"func":"noop","queue":"q5"}')->{status},
   201, 'enqueue to q5 after it left dq:queues');
ok(DQTest::wait_for(sub { $r->cmd('SISMEMBER', 'dq:queues', 'q5') }, 5, 0.05),
   'q5 is listed again');

$n->stop;
DQTest::log_clean_ok($n->error_log);
done_testing;
