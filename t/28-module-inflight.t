# At most one merged enqueue call of a queue out on a connection (issue
# #12, ngx_http_deferred_merge.c): the requests that come while the
# queue's call is out wait in the merger and go together in ONE call when
# its reply is in, not one call per event-loop iteration.
#
# A proxy between nginx (one worker) and Redis holds the first EVALSHA
# reply after it is armed for 1.5 s. Request A goes alone, then 5 waves of
# 8 requests, 0.15 s apart, come while A's reply is held:
#   1. slow reply: every request 201, every task stored once, and 2 script
#      calls in all (A's, then the 40 together); before the cap each wave
#      went in calls of its own (6+ calls);
#   2. a batch of 5,000 tasks waiting behind a held call: stored whole;
#   3. a lone request afterwards still goes at once (201);
#   4. Redis gone while the 40 wait (the proxy stopped 1.2 s into A's held
#      reply): A gets 503 (its task is stored: the reply was lost, not the
#      call), each of the 40 is answered exactly once, 503, well before
#      deferred_timeout, and none of them is stored (they were never sent;
#      before the cap they were sent behind A's, stored, and answered 503).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQProxy;
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep time);

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $arm = "$dir/arm";

# armed: the first reply after an EVALSHA on a connection is held 1.5 s;
# disarmed by that
my $p = DQProxy::hold_evalsha($r->port, $arm, delay => 1.5, once => 1);

my $n = DQNginx->start(redis => $r, workers => 1, http => qq{
    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 1000;
        location = /_ah/queue/deferred {
            deferred_redis 127.0.0.1:$p->{port};
            deferred_endpoint on;
            deferred_max_batch 5000;
            deferred_max_body 1m;
            deferred_timeout 10s;
            client_max_body_size 1m;
            client_body_buffer_size 1m;
        }
    }
});

my $eta = dq_key('default', 'eta');
my $tasks = dq_key('default', 'tasks');

sub post_json { DQNginx::build_request('POST', '/_ah/queue/deferred',
                                       json => $_[0]) }

sub calls {
    my $info = $r->cmd('INFO', 'commandstats');
    my $c = 0;
    $c += $1 while $info =~ /cmdstat_eval(?:sha)?:calls=(\d+)/g;
    return $c;
}

# A, then the waves, each in a child of its own; the answers come back as
# "status id" lines in a file per child
sub burst {
    my ($tag, $during) = @_;
    my @kids;
    my $go = sub {
        my ($i, $delay, @bodies) = @_;
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            sleep $delay;
            my @res = $n->many([ map { post_json($_) } @bodies ],
                               conns => scalar @bodies, timeout => 30);
            open my $fh, '>', "$dir/$tag.$i" or POSIX::_exit(1);
            for my $x (@res) {
                my ($id) = ($x->{body} // '') =~ /"id":"([^"]+)"/;
                printf {$fh} "%s %s\n", $x->{status} // 0, $id // '-';
            }
            close $fh;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    };
    $go->(0, 0, qq({"func":"noop","args":["$tag-A"]}));
    for my $w (1 .. 5) {
        $go->($w, 0.3 + 0.15 * $w,
              map { qq({"func":"noop","args":["$tag-$w-$_"]}) } 1 .. 8);
    }
    $during->() if $during;
    waitpid($_, 0) for @kids;
    my @out;
    for my $i (0 .. 5) {
        my @l = split /\n/, DQTest::slurp("$dir/$tag.$i");
        push @out, [ map { [split / /] } @l ];
    }
    return @out;     # [0]: A's answer, [1..5]: the waves'
}

# warm-up: the connection set up, the script loaded
is($n->request('POST', '/_ah/queue/deferred',
               json => '{"func":"noop","args":["warm"]}')->{status},
   201, 'warm-up request stored');

# 1. a slow reply: the waves merge behind it

$r->cmd('CONFIG', 'RESETSTAT');
my $before = $r->cmd('ZCARD', $eta);
open my $fh, '>', $arm or die; print {$fh} "slow"; close $fh;
my @out = burst('slow');
my @all = map { @$_ } @out;
my $bad = grep { $_->[0] != 201 } @all;
is(scalar @all, 41, 'slow reply: 41 answers');
is($bad, 0, 'slow reply: every request 201');
my $missing = grep { $_->[1] eq '-' || !defined $r->cmd('ZSCORE', $eta, $_->[1]) } @all;
is($missing, 0, 'slow reply: every answered id is stored');
is($r->cmd('ZCARD', $eta) - $before, 41, 'slow reply: 41 tasks stored, none twice');
my $c = calls();
diag("slow reply: $c script calls for A + 40 requests in 5 waves");
ok($c <= 2, "slow reply: the 40 waiting requests went in one call ($c calls in all, at most 2)");

# 3. a 5,000-task batch waiting behind a held call

$before = $r->cmd('ZCARD', $eta);
open $fh, '>', $arm or die; print {$fh} "slow"; close $fh;
my $kid = fork // die;
if ($kid == 0) {
    $n->request('POST', '/_ah/queue/deferred',
                json => '{"func":"noop","args":["held"]}');
    POSIX::_exit(0);
}
sleep 0.3;
my $big = '[' . join(',', map { qq({"func":"noop","args":[$_]}) } 1 .. 5000) . ']';
my $res = $n->request('POST', '/_ah/queue/deferred', json => $big);
waitpid($kid, 0);
is($res->{status}, 201, 'big batch behind a held call: 201');
my @ids = ($res->{body} // '') =~ /"id":"([^"]+)"/g;
is(scalar @ids, 5000, 'big batch: 5,000 ids');
is($r->cmd('ZCARD', $eta) - $before, 5001, 'big batch: stored whole (+ the held one)');

# 4. alone: straight through
is($n->request('POST', '/_ah/queue/deferred',
               json => '{"func":"noop","args":["alone"]}')->{status},
   201, 'a lone request afterwards: 201');

# 4. Redis gone while they wait behind A's held reply

$before = $r->cmd('ZCARD', $eta);
open $fh, '>', $arm or die; print {$fh} "slow"; close $fh;
my $lost;
@out = burst('gone', sub {
    sleep 1.2;
    DQProxy::stop($p);
    $lost = time;
});
my $took = time - $lost;
my $a = $out[0][0];
my @rest = map { @{ $out[$_] } } 1 .. 5;
is($a->[0], 503, 'Redis gone: A gets 503');
is(scalar @rest, 40, 'Redis gone: the 40 waiting ones all answered');
my %st;
$st{$_->[0]}++ for @rest;
diag('Redis gone: the waiting ones got '
     . join(', ', map { "$_: $st{$_}" } sort keys %st)
     . sprintf(', the last %.1f s after the loss', $took));
is($st{503} // 0, 40, 'Redis gone: each waiting one answered 503');
ok($took < 5, sprintf('Redis gone: answered %.1f s after the loss, '
                      . 'not at deferred_timeout (10 s)', $took));
is($r->cmd('ZCARD', $eta) - $before, 1,
   "Redis gone: only A's task stored (its reply was lost), none of the "
   . '40 (never sent)');

$n->stop;
done_testing();
