# The in-flight cap of t/28 holds only a partial call (review RH,
# finding 1; ngx_http_deferred_merge.c, merge_fit): the groups of a queue
# that fill a call (1,000 tasks, 4 MB, or one group over the cap, or the
# next group does not fit) go at once even while the queue's call is out;
# only what would make a partial call waits for the reply.
#
#   1. (review RH's repro) every Redis reply comes 50 ms late (a link
#      delay, in order); 20 concurrent requests, each a batch of 1,000
#      tasks of one queue, deferred_timeout 1s: every batch 201 and stored
#      exactly once. With one call at a time (a round trip each, 20 in a
#      row) 5-8 of the 20 got 503 at 1 s, some of them stored.
#   2. one call held 1.5 s by the proxy; while it is held, a 1,000-task
#      batch, then a 2,500-task batch (one group over the cap), then 8
#      one-task requests: 0.9 s into the hold the two batches are stored in
#      Redis and the 8 are not (they wait, t/28's merge); afterwards every
#      request 201, the 8 in one call (4 script calls in all).
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
my $eta = dq_key('default', 'eta');

# every reply 50 ms late ("late" exists), or, armed, the first reply after an
# EVALSHA held 1.5 s (then disarmed)
my $p = DQProxy::hold_evalsha($r->port, $arm, delay => 1.5, once => 1,
    other => sub { -e "$dir/late" ? { delay => 0.05 } : 1 });

# /e answers within 1 s (part 1), /slow within 10 s (part 2)
my $locations = join '', map { qq{
        location = /$_->[0] {
            deferred_redis 127.0.0.1:$p->{port};
            deferred_endpoint on;
            deferred_timeout $_->[1];
            deferred_max_batch 10000;
            deferred_max_body 4m;
            client_max_body_size 4m;
            client_body_buffer_size 4m;
        }} } ['e', '1s'], ['slow', '10s'];

my $n = DQNginx->start(redis => $r, workers => 1, http => qq{
    server {
        listen 127.0.0.1:%%PORT%%;$locations
    }
});

sub batch {
    my ($tag, $t) = @_;
    return '[' . join(',', map { qq({"func":"noop","args":["$tag",$_]}) }
                           1 .. $t) . ']';
}

sub calls {
    my $info = $r->cmd('INFO', 'commandstats');
    my $c = 0;
    $c += $1 while $info =~ /cmdstat_eval(?:sha)?:calls=(\d+)/g;
    return $c;
}

sub touch { open my $fh, '>', $_[0] or die "$_[0]: $!"; close $fh; }

is($n->request('POST', '/e', json => '{"func":"noop","args":["w"]}')
       ->{status}, 201, 'warm-up request stored');

# 1. review RH's repro: 20 full calls behind a 50 ms link

touch("$dir/late");
my $before = $r->cmd('ZCARD', $eta);
my $t0 = time;
my @res = $n->many([ map { DQNginx::build_request('POST', '/e',
                                                  json => batch("b$_", 1000)) }
                     1 .. 20 ], conns => 20, timeout => 30);
my $took = time - $t0;
unlink "$dir/late";
my %st;
$st{$_->{status} // 0}++ for @res;
diag(sprintf('50 ms link, 20 x 1,000 tasks: %s, all answered in %.2f s',
             join(', ', map { "$_: $st{$_}" } sort keys %st), $took));
is($st{201} // 0, 20,
   '50 ms link: 20 batches of 1,000 all 201 within deferred_timeout 1s');
is($r->cmd('ZCARD', $eta) - $before, 20000,
   '50 ms link: 20,000 tasks stored, each once');

# 2. full calls go past a held call; the partial one waits

$before = $r->cmd('ZCARD', $eta);
$r->cmd('CONFIG', 'RESETSTAT');
touch($arm);

my @kids;
sub later {
    my ($i, $delay, @bodies) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        sleep $delay;
        my @res = $n->many([ map { DQNginx::build_request('POST', '/slow',
                                                          json => $_) }
                             @bodies ], conns => scalar @bodies,
                           timeout => 30);
        open my $fh, '>', "$dir/out.$i" or POSIX::_exit(1);
        printf {$fh} "%s\n", $_->{status} // 0 for @res;
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}

later(0, 0, '{"func":"noop","args":["A"]}');

# the proxy disarms when it starts holding A's reply
$t0 = time;
sleep 0.01 while -e $arm && time - $t0 < 5;
ok(!-e $arm, "A's reply held");
$t0 = time;
later(1, 0, batch('full', 1000));
later(2, 0.15, batch('over', 2500));
later(3, 0.3, map { qq({"func":"noop","args":["small",$_]}) } 1 .. 8);

sleep(0.9 - (time - $t0));
my $held = $r->cmd('ZCARD', $eta) - $before;
diag(sprintf('%.2f s into the hold: %d tasks stored', time - $t0, $held));
is($held, 1 + 1000 + 2500,
   'held call: the 1,000 and 2,500-task batches stored while it is out, '
   . 'the 8 one-task requests not');

waitpid($_, 0) for @kids;
my @all = map { split /\n/, DQTest::slurp("$dir/out.$_") } 0 .. 3;
is(scalar @all, 11, 'held call: 11 answers');
is(scalar(grep { $_ != 201 } @all), 0, 'held call: every request 201');
is($r->cmd('ZCARD', $eta) - $before, 1 + 1000 + 2500 + 8,
   'held call: every task stored once');
my $c = calls();
diag("held call: $c script calls");
is($c, 4, 'held call: A, the two batches, then the 8 together');

$n->stop;
DQProxy::stop($p);
done_testing();
