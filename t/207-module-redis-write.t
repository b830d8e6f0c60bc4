# How the module writes a command to Redis (issue #12, H3;
# ngx_http_deferred_redis.c, the adapter's add_write): a command on a
# connected context is written from a posted event in the same loop
# iteration, with no epoll_ctl to add the write event and none to remove
# it; only a write that does not finish waits for epoll.
#
#   1. 200 one-task POSTs one after another on one keep-alive connection
#      (200 merged calls, one worker): every one 201 and stored, and the
#      worker makes fewer than 20 epoll_ctl calls in all (strace -c, when
#      strace can attach; before: 2 per call, 400). Counted, not timed.
#   A write that does not finish (Redis frozen under ~14 MB of calls) goes
#   on from epoll: t/212-module-redis-partial-write.t.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQProxy;
use Test::More;
use Time::HiRes qw(sleep);

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $p = DQProxy::start($r->port);

my $n = DQNginx->start(redis => $r, workers => 1, http => qq{
    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 100000;
        location = /_ah/queue/deferred {
            deferred_redis 127.0.0.1:$p->{port};
            deferred_endpoint on;
            deferred_max_batch 5000;
            deferred_max_body 8m;
            deferred_timeout 20s;
            client_max_body_size 8m;
            client_body_buffer_size 8m;
        }
    }
});

my $eta = dq_key('default', 'eta');

sub post_json { DQNginx::build_request('POST', '/_ah/queue/deferred',
                                       json => $_[0]) }

is($n->request('POST', '/_ah/queue/deferred',
               json => '{"func":"noop","args":["warm"]}')->{status},
   201, 'warm-up request stored');

# 1. one call per request, sequential: the system calls of the worker

my ($worker) = $n->worker_pids;
my $strace = `sh -c 'command -v strace' 2>/dev/null`;
chomp $strace;

# strace -c on the worker: trace_start(tag), then trace_stop(tag) returns
# { syscall => calls }, or a reason to skip (a string)
my %trace;
sub trace_start {
    my ($tag) = @_;
    return unless $strace && $worker;
    my $out = "$dir/strace.$tag";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', "$out.err";
        exec $strace, '-c', '-e', 'trace=epoll_ctl,write,writev',
             '-o', $out, '-p', $worker;
        exit 127;
    }
    for (1 .. 50) {     # attached once strace names the process
        last if -s "$out.err" && DQTest::slurp("$out.err") =~ /attached/;
        sleep 0.1;
    }
    $trace{$tag} = [$pid, $out];
}
sub trace_stop {
    my ($tag) = @_;
    return 'strace not installed' unless $trace{$tag};
    my ($pid, $out) = @{ $trace{$tag} };
    kill 'INT', $pid;
    waitpid($pid, 0);
    my $st = -s $out ? DQTest::slurp($out) : '';
    return 'strace could not attach: ' . DQTest::slurp("$out.err")
        unless $st =~ /total/;
    my %n;
    $n{$2} = $1 while $st =~ /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/mg;
    return \%n;
}

trace_start('seq');
my $before = $r->cmd('ZCARD', $eta);
my @res = $n->many([ map { post_json(qq({"func":"noop","args":["s$_"]})) }
                     1 .. 200 ], conns => 1, timeout => 60);
is(scalar(grep { ($_->{status} // 0) == 201 } @res), 200,
   'sequential: 200 requests answered 201');
is($r->cmd('ZCARD', $eta) - $before, 200, 'sequential: 200 tasks stored');

SKIP: {
    my $t = trace_stop('seq');
    skip $t, 1 unless ref $t;
    my $ctl = $t->{epoll_ctl} // 0;
    diag("sequential: epoll_ctl $ctl, write " . ($t->{write} // 0)
         . " for 200 merged calls");
    ok($ctl < 20, "sequential: no epoll_ctl per merged call ($ctl for 200)");
}

my $log = DQTest::slurp($n->error_log);
unlike($log, qr/\[(?:alert|crit|emerg)\]/, 'no alert in the error log');

$n->stop;
DQProxy::stop($p);
done_testing();
