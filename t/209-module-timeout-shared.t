# deferred_timeout with one timer per deadline (issue #12, the nginx
# side): the requests sent to Redis in one event loop iteration with the
# same deferred_timeout share one nginx timer (ngx_http_deferred_batch.c),
# which must keep each request's own contract exactly: 503
# RedisUnavailable "Redis did not answer in time" and one "no reply within
# deferred_timeout" line per request, at its own deadline.
#
# A proxy between nginx (one worker) and Redis holds every EVALSHA reply
# 6 s while armed. Two locations share that Redis: /t1 with
# deferred_timeout 1s, /t2 with 2s (so at 1 s the connection is kept:
# the longest timeout using it has not passed).
#   1. 12 requests to /t1 and 6 to /t2 at once, and 6 more to /t1 whose
#      clients leave after 0.4 s: each /t1 request 503 at ~1 s with its
#      own log line (12 lines, none for the 6 that left: they left the
#      shared timer), each /t2 request 503 at ~2 s, never before;
#   2. two requests to /t1 0.5 s apart: each times out at its own
#      deadline (the second does not join the first's timer);
#   3. afterwards (disarmed) a request is stored: 201; under valgrind
#      (when installed) no invalid access, no leak.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQProxy;
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $arm = "$dir/arm";

my $p = DQProxy::hold_evalsha($r->port, $arm, delay => 6);

# under valgrind when it is there: a request that leaves the shared timer
# (its client gone, its reply in) must leave no pointer behind
my $vg = -x '/usr/bin/valgrind' ? "$dir/valgrind.log" : undef;
my $n = DQNginx->start(redis => $r, workers => $vg ? 0 : 1,
                       wrapper => $vg ? DQNginx::valgrind($vg) : undef,
                       http => qq{
    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 1000;
        deferred_redis 127.0.0.1:$p->{port};
        location = /t1 { deferred_endpoint on; deferred_timeout 1s; }
        location = /t2 { deferred_endpoint on; deferred_timeout 2s; }
    }
});

sub post { DQNginx::build_request('POST', $_[0], json => $_[1]) }

sub log_lines {
    my ($re) = @_;
    return scalar grep { /$re/ } split /\n/, DQTest::slurp($n->error_log);
}

# requests sent at once from a child after $delay; "status elapsed
# message" lines back in a file, elapsed from $t0
sub send_at {
    my ($file, $t0, $delay, @reqs) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    sleep($delay) if $delay;
    my $sent = time;
    my @res = $n->many(\@reqs, conns => scalar @reqs, timeout => 15);
    open my $fh, '>', $file or POSIX::_exit(1);
    for my $x (@res) {
        my ($m) = ($x->{body} // '') =~ /"message":"([^"]*)"/;
        printf {$fh} "%d %.3f %.3f %s\n", $x->{status} // 0,
               time - $t0, time - $sent, $m // '-';
    }
    close $fh;
    POSIX::_exit(0);
}

# (a dropped connection is made again within its back-off)
sub stored_again {
    for (1 .. 20) {
        return 1 if $n->request('POST', '/t1',
                                json => '{"func":"noop"}')->{status} == 201;
        sleep 0.25;
    }
    return 0;
}

sub answers {
    my ($file) = @_;
    return map { [ split / /, $_, 4 ] } split /\n/, DQTest::slurp($file);
}

is($n->request('POST', '/t1', json => '{"func":"noop"}')->{status}, 201,
   'warm-up: stored');

# 1. one deadline, many requests; some leave before it

my $before = log_lines(qr/no reply within deferred_timeout/);
open my $fh, '>', $arm or die; print {$fh} "hold"; close $fh;

my $t0 = time;
my @kids = (
    send_at("$dir/a", $t0, 0,
            map { post('/t1', qq({"func":"noop","args":["a$_"]})) } 1 .. 12),
    send_at("$dir/b", $t0, 0,
            map { post('/t2', qq({"func":"noop","args":["b$_"]})) } 1 .. 6),
);
my @leave = map {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $n->port) or die "connect: $!";
    print {$s} post('/t1', qq({"func":"noop","args":["c$_"]}));
    $s;
} 1 .. 6;
sleep 0.4;
close $_ for @leave;
waitpid($_, 0) for @kids;

my @a = answers("$dir/a");
my @b = answers("$dir/b");
is(scalar @a, 12, '/t1: 12 answers');
is((grep { $_->[0] == 503 } @a), 12, '/t1: each 503');
is((grep { $_->[3] eq 'Redis did not answer in time' } @a), 12,
   '/t1: each "Redis did not answer in time"');
my ($amin, $amax) = (sort { $a <=> $b } map { $_->[2] } @a)[0, -1];
diag(sprintf('/t1 answered %.2f-%.2f s after sent', $amin, $amax));
ok($amin >= 0.95, sprintf('/t1: none before its 1 s deadline (first %.2f s)',
                          $amin));
is(scalar @b, 6, '/t2: 6 answers');
is((grep { $_->[0] == 503 } @b), 6, '/t2: each 503');
my ($bmin) = sort { $a <=> $b } map { $_->[2] } @b;
diag(sprintf('/t2 answered from %.2f s after sent', $bmin));
ok($bmin >= 1.95, sprintf('/t2: none before its 2 s deadline (first %.2f s)',
                          $bmin));
ok($amax < $bmin, '/t1 all answered before the first /t2');

my $t1 = log_lines(qr{no reply within deferred_timeout.*request: "POST /t1 });
is($t1, 12, 'one "no reply within deferred_timeout" line per /t1 request '
            . 'that waited (none for the 6 that left)');
ok(log_lines(qr{no reply within deferred_timeout.*request: "POST /t2 }) >= 1,
   '/t2: its deadline logged too');
is(log_lines(qr{no reply within deferred_timeout}) - $before - $t1,
   log_lines(qr{no reply within deferred_timeout.*request: "POST /t2 }),
   'no other timeout lines');

# 2. two deadlines 0.5 s apart, the same timeout

unlink $arm;
ok(stored_again(), 'reconnected: a request is stored (201)');
open $fh, '>', $arm or die; print {$fh} "hold"; close $fh;

$t0 = time;
@kids = (
    send_at("$dir/r1", $t0, 0, post('/t1', '{"func":"noop","args":["r1"]}')),
    send_at("$dir/r2", $t0, 0.5, post('/t1', '{"func":"noop","args":["r2"]}')),
);
waitpid($_, 0) for @kids;
my ($r1) = answers("$dir/r1");
my ($r2) = answers("$dir/r2");
diag(sprintf('r1 answered at %.2f s, r2 at %.2f s (sent at 0.5 s)',
             $r1->[1], $r2->[1]));
is($r1->[0], 503, 'r1: 503');
is($r2->[0], 503, 'r2: 503');
is($r2->[3], 'Redis did not answer in time', 'r2: timed out');
ok($r2->[2] >= 0.95, sprintf('r2: at its own deadline, %.2f s after it was '
                             . 'sent (not with r1 at %.2f s)',
                             $r2->[2], $r1->[1]));

# 3. afterwards

unlink $arm;
ok(stored_again(), 'disarmed: a request is stored again (201)');

is($n->stop, 0, 'nginx exited with status 0');
DQProxy::stop($p);
DQNginx::valgrind_ok($vg) if $vg;
log_clean_ok($n->error_log, 'nginx error log');
done_testing();
