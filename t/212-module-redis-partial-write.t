# The module's adapter when a write to Redis does not finish (issue #12, H3's
# posted write, ngx_http_deferred_redis.c; review RH3 found that t/207's
# 3.4 MB call through a proxy was taken whole by one write(): loopback
# buffers are large). Redis frozen
# (SIGSTOP) while four 5,000-task batches (~3.4 MB each) and 40 one-task
# POSTs are sent: the writes cannot finish, so the posted write hands the
# rest to epoll; Redis thawed 2 s later. Every request 201, every task
# stored once; with strace, the worker's Redis fd got a short write / EAGAIN
# and an epoll_ctl MOD for it. DQ_T212_VALGRIND=1: nginx in one process under
# valgrind, no invalid access, no leak.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep);

DQNginx::require_nginx();
my $vgrun = $ENV{DQ_T212_VALGRIND};
my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $vg = "$dir/valgrind.log";
my $n = DQNginx->start(redis => $r, workers => ($vgrun ? 0 : 1),
    ($vgrun ? (wrapper => DQNginx::valgrind($vg)) : ()), http => q{
    deferred_redis %%REDIS%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 100000;
        location = /_ah/queue/deferred {
            deferred_endpoint on;
            deferred_max_batch 5000;
            deferred_max_body 8m;
            deferred_timeout 30s;
            client_max_body_size 8m;
            client_body_buffer_size 8m;
        }
    }
});
sub post_json { DQNginx::build_request('POST', '/_ah/queue/deferred', json => $_[0]) }
ok(DQTest::wait_for(sub { ($n->request('POST', '/_ah/queue/deferred',
    json => '{"func":"noop","args":["w"]}')->{status} // 0) == 201 }, 30, 0.3), 'warm');

my ($worker) = $vgrun ? ($n->pid) : $n->worker_pids;
my $strace = `sh -c 'command -v strace' 2>/dev/null`; chomp $strace;
my $spid;
if ($strace && !$vgrun) {
    $spid = fork // die;
    if ($spid == 0) {
        open STDERR, '>', "$dir/strace.err";
        { exec $strace, '-e', 'trace=write,writev,epoll_ctl', '-s', '0', '-o', "$dir/strace", '-p', $worker };
        POSIX::_exit(127);
    }
    for (1 .. 50) { last if -s "$dir/strace.err" && DQTest::slurp("$dir/strace.err") =~ /attached/; sleep 0.1 }
}

my $pad = 'x' x 640;
my @big = map { my $k = $_; '[' . join(',', map { qq({"func":"noop","args":["b${k}_$_","$pad"]}) } 1 .. 5000) . ']' } 1 .. 4;
kill 'STOP', $r->pid;
my $kid = fork // die;
if ($kid == 0) { sleep 2.5; kill 'CONT', $r->pid; POSIX::_exit(0) }
my @res = $n->many([ (map { post_json($_) } @big),
                     map { post_json(qq({"func":"noop","args":["m$_"]})) } 1 .. 40 ],
                   conns => 12, timeout => 90);
waitpid $kid, 0;
my %st; $st{$_->{status} // 0}++ for @res;
diag(join ' ', map { "$_=$st{$_}" } sort keys %st);
is($st{201} // 0, 44, 'all 44 requests 201');
is($r->cmd('HLEN', 'dq2:{default}:tasks'), 1 + 20040, 'all 20,040 tasks stored once (+ warm-up)');

if ($spid) {
    kill 'INT', $spid; waitpid $spid, 0;
    my $t = DQTest::slurp("$dir/strace");
    my @short = grep { /^write\((\d+), "".*, (\d+)\)\s+= (-?\d+)/ && ($3 < $2) } split /\n/, $t;
    my @mod = grep { /EPOLL_CTL_MOD/ } split /\n/, $t;
    diag("short or failed writes: " . scalar(@short) . "; epoll_ctl MOD: " . scalar(@mod));
    diag($_) for @short[0 .. ($#short < 3 ? $#short : 3)], @mod[0 .. ($#mod < 3 ? $#mod : 3)];
    ok(@short && @mod, 'the partial write went on from epoll');
}
$n->stop;
my $log = DQTest::slurp($n->error_log);
unlike($log, qr/\[(?:alert|crit|emerg)\]|exited on signal/, 'no alert, no crash')
    or diag(join "\n", grep { /alert|crit|emerg|signal/ } split /\n/, $log);
DQNginx::valgrind_ok($vg) if $vgrun;
done_testing();
