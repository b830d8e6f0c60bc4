# A claim whose reply was lost (Redis stalled past the command timeout: the
# claim ran when Redis woke, the worker had given up on it) is given back
# without charge, and a give-back that fails (here Redis refuses its keys:
# NOPERM; in production -LOADING after a restart, a dropped connection) is
# tried again until it succeeds. Before: the claim id was forgotten with the
# first failed give-back, the task waited for its lease to expire and was
# charged an attempt it never made.
# (Takes ~15 s: the command timeout is 10 s.)
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir, args => [qw(--enable-debug-command local)]);
my $w = DQWorker::start_worker($r, $dir, args => [qw(--lease 8s)]);
# due in 1.5 s: the worker's claim goes out while Redis sleeps
my $t_enq = time;
my $id = DQWorker::defer($r, '--countdown', 1500, 'sleep_ms', 10, "$dir/rec");
sleep 0.3;
# the give-back (release_claim names the queue's "unrunnable" hash) will be
# refused; claims and everything else still work
is($r->cmd('ACL', 'SETUSER', 'default', 'resetkeys', '~dq2:{default}:[^u]*',
           '~dq:queues'), 'OK', 'ACL: the unrunnable key refused');
is($r->cmd(qw(DEBUG SLEEP 12)), 'OK', 'Redis slept 12 s');
ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~ /giving back claim \S+ \(queue default\) failed: .*NOPERM/ }, 10),
   'the give-back of the lost claim failed')
    or diag DQWorker::log_text($w);
is($r->cmd('ZCARD', 'dq2:{default}:leases'), 1, 'the task is leased under the lost claim');
sleep 1.5;                                     # a few claims meanwhile
is($r->cmd('ACL', 'SETUSER', 'default', 'allkeys'), 'OK', 'ACL: all keys again');
my @rec = DQWorker::wait_records("$dir/rec", 1, 20);
is(scalar(@rec), 1, 'the task ran once');
diag(sprintf('the task ran %.1f s after the enqueue (Redis slept 12 s, lease 8 s)', time - $t_enq));
is($rec[0]{retries}, 0, 'no attempt charged (before: 1, after its lease expired)');
like(DQWorker::log_text($w), qr/gave back 1 tasks of claim \S+ \(queue default\) whose reply was lost/,
     'the second give-back succeeded');
my $s = DQWorker::stats($r);
is($s->{reclaimed} // 0, 0, 'no lease expired');
is($s->{done}, 1, 'done');
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
done_testing();
