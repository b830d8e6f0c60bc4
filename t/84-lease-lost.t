# A tasklet task whose lease is lost (taken back while it runs: its holder
# was too slow to heartbeat, or Redis lost the lease) is canceled at its
# next wait and dropped without a report: it is another worker's now.
# (Before: the heartbeat only logged it, the tasklet ran to its end and its
# side effects happened twice.)
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQTest::require_built(bin('examples/tasklet/libdq_tasklet_example.so'),
                                'tasklet example library');

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $w = DQWorker::start_worker($r, $dir, libs => [$lib],
                               args => [qw(--lease 900ms --log_level debug)]);
my $id = DQWorker::defer($r, qw(example.sleep_tasklet 3000 t:lost));
DQTest::wait_for(sub { DQWorker::stats($r)->{running} == 1 }, 10);
my $m = $r->cmd('ZRANGE', 'dq2:{default}:leases', 0, -1)->[0];
like($m, qr/^\Q$id\E\|/, 'the task is leased');
# another worker's reclaim, as Redis sees it: the lease gone, the task
# waiting again (far in the future here, so nobody runs it)
$r->cmd('ZREM', 'dq2:{default}:leases', $m);
$r->cmd('ZADD', 'dq2:{default}:eta', '9999999999999', $id);
ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~ /tasklet task \Q$id\E .*was canceled/ }, 5),
   'the heartbeat sees the lost lease and cancels the tasklet');
sleep 3.2;
is($r->cmd('GET', 't:lost'), undef, 'the canceled tasklet did not finish its work');
is(DQWorker::stats($r)->{done} // 0, 0, 'nothing acked');
ok(defined $r->cmd('ZSCORE', 'dq2:{default}:eta', $id), 'the task still waits for its new holder');
is($r->cmd('HGET', 'dq2:{default}:errors', $id), undef, 'no error written by the old holder');
ok(DQWorker::alive($w), 'the worker keeps running');
my $ok = DQWorker::defer($r, qw(example.sleep_tasklet 10 t:ok));
ok(DQTest::wait_for(sub { ($r->cmd('GET', 't:ok') // 0) == 1 }, 5), 'and runs other tasklet tasks');
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
log_clean_ok($w->{log}, 'worker log');
done_testing();
