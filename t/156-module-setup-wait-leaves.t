# A client that leaves while its operator request waits for the module's
# Redis setup (Redis frozen across nginx start): the wait ends at once
# (499) and the action is not run for nobody when Redis thaws (review RM,
# finding 1: the admin pause ran 1.9 s later and was logged 200).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
kill 'STOP', $r->pid;
my $n = DQNginx->start(redis => $r, workers => 1, http => q{
    deferred_redis %%REDIS%% connect_timeout=20s;
    deferred_timeout 10s;
    log_format rm '$msec $status $request_time $request';
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%DIR%%/logs/rm.log rm;
        location = /s/admin { deferred_admin; }
        location = /enq { deferred_enqueue noop queue=eq; deferred_return 200 "stored\n"; }
    }
});
my $t0 = time;
for my $req (DQNginx::build_request('POST', '/s/admin?action=pause&queue=pq', body => '', headers => { 'X-Deferred-Admin' => 1 }),
             DQNginx::build_request('GET', '/enq')) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $n->port) or die;
    print {$s} $req;
    sleep 0.2;
    close $s;
}
sleep 1.5;
kill 'CONT', $r->pid;
sleep 1;
my $log = slurp($n->dir . '/logs/rm.log');
diag "access log (t0 $t0):\n$log";
unlike($log, qr/ 200 \S+ POST \/s\/admin/, 'the admin request of a client that left was not run');
is($r->cmd('HGET', DQTest::dq_key('pq', 'conf'), 'paused'), undef, 'the pause did not reach Redis');
$n->stop;
done_testing;
