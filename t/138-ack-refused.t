# An ack answered with an error reply that is not one of the "not run"
# faults (here WRONGTYPE: the lease set is briefly not a sorted set) is
# kept and sent again after a back-off, never dropped: only the script's
# per-task statuses settle a result. Before, the ack was dropped ("ack
# failed ... runs again when its lease expires") and the task that had
# finished OK ran a second time. (R2 review of contract v2, item 3.)
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQWorker; use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1, 1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start();
my $rec = "$dir/ar.rec";
my $leases = DQTest::dq_key('default', 'leases');

my $a = DQWorker::defer($r, 'ops.span', $rec, 800);
my $w = DQWorker::start_worker($r, $dir, name => 'ar', libs => [$lib],
    args => [qw(--concurrency 1 --claim-size 1 --threads 1 --lease 4s)]);
ok(scalar(DQWorker::wait_lines($rec, 'S', 1, 10)), 'A started');
is($r->cmd('RENAME', $leases, "$leases.bak"), 'OK', 'lease set moved away');
is($r->cmd('SET', $leases, 'not a zset'), 'OK', 'and replaced by a string');
ok(scalar(DQWorker::wait_lines($rec, 'E', 1, 5)), 'A finished OK');
ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~ /WRONGTYPE/ }, 5),
   'its ack was answered WRONGTYPE');
sleep 1.5;
$r->cmd('DEL', $leases);
is($r->cmd('RENAME', "$leases.bak", $leases), 'OK', 'lease set back');
ok(DQTest::wait_for(sub { (DQWorker::stats($r)->{done} // 0) >= 1 }, 10),
   'A counted done');
sleep 5;                             # past A's lease: a dropped ack shows
my @E = DQWorker::lines($rec, 'E');
is(scalar(@E), 1, 'A (finished OK, its ack refused) ran exactly once');
my $log = DQWorker::log_text($w);
like($log, qr/ack of 1 tasks refused: .*WRONGTYPE.*sent again in \d+ ms/,
     'the refusal was logged with the resend');
unlike($log, qr/ack failed for task/, 'no ack was dropped');
DQWorker::stop_worker($w);
DQTest::log_clean_ok($w->{log});
done_testing();
