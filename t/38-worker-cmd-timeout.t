# deferred-worker and a Redis that stops answering (DEBUG SLEEP 12 while an
# ack is on its way): the command times out after 10 s, the connection is
# dropped and made again, the ack is sent again, and the task is done once.
# (Takes ~12 s: the command timeout is 10 s.)
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir, args => [qw(--enable-debug-command local)]);
my $w = DQWorker::start_worker($r, $dir);
my $id = DQWorker::defer($r, 'sleep_ms', 300, "$dir/rec");
DQTest::wait_for(sub { DQWorker::stats($r)->{running} == 1 }, 10);
my $t0 = time;
my $res = $r->cmd(qw(DEBUG SLEEP 12));     # blocks this client too
is($res, 'OK', 'Redis slept 12 s');
like(DQWorker::log_text($w), qr/\[warn\].*redis \(commands\): command \w+ timed out after 10000 ms; reconnecting/,
     'the unanswered command timed out');
DQTest::wait_for(sub { DQWorker::stats($r)->{done} == 1 }, 10);
is(DQWorker::stats($r)->{done}, 1, 'acked after the reconnect');
is(scalar DQWorker::records("$dir/rec"), 1, 'ran once');
is(DQWorker::stats($r)->{running}, 0, 'no lease left');
# the first ack landed when Redis woke up; the resent one is refused and
# said to be a repeat, not a lease taken by another worker
unlike(DQWorker::log_text($w), qr/lease lost: .*claimed again/, 'no false "claimed again"');
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
log_clean_ok($w->{log}, 'worker log');
done_testing();
