# A client of the deferred POST endpoint that leaves while its request
# waits for a connection attempt (Redis frozen across nginx start, so the
# connection's setup waits on its connect_timeout): the request ends at
# once, logged 499, and its task is not stored when Redis thaws (its
# group had not been sent: the request's cleanup took it off the list).
# A deferred_enqueue location, which already watched its client, is the
# control. Before the fix the endpoint's request stayed until Redis came
# back, stored its task for nobody and was logged 201.
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
    log_format el '$msec $status $request_time $request';
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%DIR%%/logs/el.log el;
        location = /ep  { deferred_endpoint on; }
        location = /enq { deferred_enqueue noop queue=eq name=left; deferred_return 200 "stored\n"; }
    }
});
my @reqs = (
    [ 'POST /ep',  'ep',  DQNginx::build_request('POST', '/ep',
                              json => '{"func":"noop","queue":"ep","name":"left"}') ],
    [ 'GET /enq',  'eq',  DQNginx::build_request('GET', '/enq') ],
);
my $t0 = time;
for my $q (@reqs) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $n->port) or die;
    print {$s} $q->[2];
    sleep 0.2;
    close $s;
}
sleep 1;
kill 'CONT', $r->pid;
sleep 1;
my $log = DQTest::slurp($n->dir . '/logs/el.log');
diag "access log (t0 $t0):\n$log";
for my $q (@reqs) {
    my ($what, $queue) = @$q;
    like($log, qr/^\S+ 499 \S+ \Q$what\E /m,
         "$what: a client that left while its request waited: 499");
    unlike($log, qr/^\S+ 20[01] \S+ \Q$what\E /m, "$what: not answered as stored");
    is($r->cmd('HLEN', DQTest::dq_key($queue, 'tasks')), 0,
       "$what: nothing stored for it when Redis thawed");
    is($r->cmd('ZCARD', DQTest::dq_key($queue, 'names')), 0,
       "$what: its name not taken");
}
# the endpoint still serves once Redis is back
my $ok = $n->request('POST', '/ep', json => '{"func":"noop","queue":"ep","name":"left"}');
is($ok->{status}, 201, 'the same task posted again afterwards: 201') or diag $ok->{body};
is($r->cmd('HLEN', DQTest::dq_key('ep', 'tasks')), 1, 'and stored once');
is($n->stop, 0, 'nginx exited with status 0');
log_clean_ok($n->error_log, 'nginx error log');
$r->stop;
done_testing;
