# A client that leaves while its request waits for the module's Redis
# setup (Redis frozen across nginx start): the wait ends at once (499) and
# nothing is done for nobody when Redis thaws:
#   - an operator request: the admin pause is not run (review RM,
#     finding 1: it ran 1.9 s later and was logged 200);
#   - the deferred POST endpoint: its named task is not stored (its group
#     was not sent: the request's cleanup took it off the list), and the
#     same task posted again later is stored once. Before the fix (the
#     endpoint did not watch its client) it was logged 201, the task
#     stored for nobody and the repost refused 409;
#   - a deferred_enqueue location, which already watched its client.
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
        location = /enq { deferred_enqueue noop queue=eq name=left; deferred_return 200 "stored\n"; }
        location = /ep  { deferred_endpoint on; }
    }
});
my $t0 = time;
for my $req (DQNginx::build_request('POST', '/s/admin?action=pause&queue=pq', body => '', headers => { 'X-Deferred-Admin' => 1 }),
             DQNginx::build_request('GET', '/enq'),
             DQNginx::build_request('POST', '/ep', json => '{"func":"noop","queue":"ep","name":"left"}')) {
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
for my $q ([ 'GET /enq', 'eq' ], [ 'POST /ep', 'ep' ]) {
    my ($what, $queue) = @$q;
    like($log, qr/^\S+ 499 \S+ \Q$what\E /m,
         "$what: a client that left while its request waited: 499");
    unlike($log, qr/^\S+ 20[01] \S+ \Q$what\E /m, "$what: not answered as stored");
    is($r->cmd('HLEN', DQTest::dq_key($queue, 'tasks')), 0,
       "$what: nothing stored for it when Redis thawed");
    is($r->cmd('ZCARD', DQTest::dq_key($queue, 'names')), 0, "$what: its name not taken");
}
my $again = $n->request('POST', '/ep', json => '{"func":"noop","queue":"ep","name":"left"}');
is($again->{status}, 201, 'POST /ep: the same task posted again afterwards: 201') or diag $again->{body};
is($r->cmd('HLEN', DQTest::dq_key('ep', 'tasks')), 1, 'POST /ep: and stored once');
$n->stop;
done_testing;
