# `nginx -s reload` (three times) while clients keep enqueueing over
# keep-alive connections: no request fails, every task is stored exactly
# once, the old workers finish their requests in flight and exit cleanly
# (their Redis connections closed: no "open socket left" alert), the new
# ones connect to Redis.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => q{
    deferred_redis %%REDIS%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
        location = /enqueue {
            deferred_enqueue noop name=$arg_n;
            deferred_return 200 "ok\n";
        }
    }
});
my @first = $n->worker_pids;

my $reloader = fork // die "fork: $!";
if ($reloader == 0) {
    for (1 .. 3) {
        sleep 0.4;
        system($DQNginx::NGINX, '-p', $n->dir . '/', '-c', $n->dir . '/nginx.conf',
               '-e', $n->dir . '/logs/signal.log', '-s', 'reload') == 0
            or POSIX::_exit(1);
    }
    sleep 0.4;
    POSIX::_exit(0);
}

my ($i, @res, @names) = (0);
my $t0 = time;
while (1) {
    my $done = waitpid($reloader, POSIX::WNOHANG()) == $reloader;
    my $st = $?;
    my @reqs;
    for (1 .. 200) {
        $i++;
        push @names, "r$i";
        push @reqs, $i % 2
            ? DQNginx::build_request('POST', '/_ah/queue/deferred',
                                     json => qq({"func":"noop","name":"r$i"}))
            : DQNginx::build_request('GET', "/enqueue?n=r$i");
    }
    push @res, $n->many(\@reqs, conns => 20, timeout => 30, retry_closed => 1);
    if ($done) {
        is($st, 0, 'nginx -s reload ran three times');
        last;
    }
    last if time - $t0 > 30;
}

my @bad = grep { $_->{status} != 201 && $_->{status} != 200 } @res;
is(scalar @bad, 0, scalar(@res) . ' requests during reloads, none failed')
    or diag explain [ @bad[0 .. ($#bad < 4 ? $#bad : 4)] ];
ok(@res >= 1000, 'at least 1000 requests sent across the reloads');
is(DQNginx::stored($r), scalar @res, 'every task stored');
is($r->cmd('ZCARD', 'dq2:{default}:names'), scalar @res, '... exactly once (names)');

ok(DQTest::wait_for(sub {
    my %now = map { $_ => 1 } $n->worker_pids;
    !grep { $now{$_} } @first;
}, 10), 'the first workers have exited');

my $log = DQTest::slurp($n->error_log);
my @reloads = $log =~ /signal 1 \(SIGHUP\) received/g;
is(scalar @reloads, 3, 'the master got three reloads');
my @connected = $log =~ /deferred: redis \S+: connected/g;
ok(@connected >= 8, scalar(@connected) . ' worker connections to Redis (2 per generation)');
unlike($log, qr/open socket .* left in connection/, 'old workers closed their Redis connections');

is($n->stop, 0, 'nginx stops cleanly (exit status 0)');
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
