# deferred-worker leases: kill -9 of a worker holding leases loses nothing
# (a new worker runs the tasks once the leases expire); a worker stalled
# past its lease (SIGSTOP) cannot ack a task another worker re-claimed
# (fencing token): "lease lost", and the task is done exactly once.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my @lease = qw(--lease 1s --log_level debug);

# ---- kill -9 while leased
my $a = DQWorker::start_worker($r, $dir, name => 'a', args => \@lease);
my $rec = "$dir/killed";
my %ids = map { scalar(DQWorker::defer($r, 'sleep_ms', 1500, $rec)) => 1 } 1 .. 5;
DQTest::wait_for(sub { DQWorker::stats($r)->{running} == 5 }, 10);
is(DQWorker::stats($r)->{running}, 5, 'worker a holds the five leases');
kill 'KILL', $a->{pid};
DQWorker::stop_worker($a);
my $killed_at = time;
ok(!-e $rec, 'nothing finished before the kill');

my $b = DQWorker::start_worker($r, $dir, name => 'b', args => \@lease);
my @rec = DQWorker::wait_records($rec, 5, 15);
is(scalar @rec, 5, 'worker b ran all five');
is_deeply({ map { $_->{id} => 1 } @rec }, \%ids, 'the same five tasks, none lost');
ok(!grep({ $_->{retries} < 1 || $_->{execs} > $_->{retries} } @rec),
   'each counts the lost attempt (retry count >= 1; the execution count '
   . 'only counts runs known to have reached the function)');
diag(sprintf "all five done %.2f s after the kill (lease <= 1 s, then 5 runs of 1.5 s on 4 threads)",
             time - $killed_at);
DQTest::wait_for(sub { DQWorker::stats($r)->{done} == 5 }, 5);
is(DQWorker::stats($r)->{done}, 5, 'five done');
is(DQWorker::stop_worker($b), 0, 'worker b exits 0');
log_clean_ok($b->{log}, 'worker b log');

# ---- a lost lease counts as a failed attempt: with retry limit 0, the
# task is dead when it is claimed again, without running
my $c = DQWorker::start_worker($r, $dir, name => 'c', args => \@lease);
my $lid = DQWorker::defer($r, qw(--retry-limit 0 sleep_ms 1500), "$dir/limit0");
DQTest::wait_for(sub { DQWorker::stats($r)->{running} == 1 }, 10);
kill 'KILL', $c->{pid};
DQWorker::stop_worker($c);
my $d = DQWorker::start_worker($r, $dir, name => 'd', args => \@lease);
DQTest::wait_for(sub { exists DQWorker::dead($r)->{$lid} }, 10);
like(DQWorker::dead($r)->{$lid} // '', qr/^retry limit reached after 1 failed attempts: the last lease expired/,
     'lease expired past the retry limit: dead at the next claim');
sleep 0.3;
ok(!-e "$dir/limit0", 'and not run again');
is(DQWorker::stop_worker($d), 0, 'worker d exits 0');
log_clean_ok($d->{log}, 'worker d log');

# ---- fencing: stall a worker past its lease
my $s = DQWorker::start_worker($r, $dir, name => 'stalled', args => \@lease);
my $frec = "$dir/fenced";
my $fid = DQWorker::defer($r, 'sleep_ms', 1200, $frec);
DQTest::wait_for(sub { DQWorker::log_text($s) =~ /claimed 1 of/ }, 10);
kill 'STOP', $s->{pid};
sleep 1.3;                                  # its lease (1 s) expires
my $o = DQWorker::start_worker($r, $dir, name => 'other', args => \@lease);
my @f = DQWorker::wait_records($frec, 1, 10);
is(scalar @f, 1, 'the other worker ran it');
is($f[0]{retries}, 1, 'as the second attempt (the expired lease counted)');
DQTest::wait_for(sub { DQWorker::stats($r)->{done} == 6 }, 5);
is(DQWorker::stats($r)->{done}, 6, 'the other worker acked it');

kill 'CONT', $s->{pid};
DQTest::wait_for(sub { DQWorker::log_text($s) =~ /lease lost: ack of task \Q$fid\E/ }, 10);
like(DQWorker::log_text($s), qr/\[warn\].*lease lost: ack of task \Q$fid\E/,
     'the stalled worker\'s ack is refused: "lease lost"');
sleep 0.2;
is(DQWorker::stats($r)->{done}, 6, 'done exactly once');
is(scalar DQWorker::records($frec), 2, 'both ran it (at least once), one ack counted');
ok(!exists DQWorker::dead($r)->{$fid}, 'not dead');
ok(DQWorker::alive($s), 'the stalled worker keeps running');
is(DQWorker::stop_worker($s), 0, 'stalled worker exits 0');
is(DQWorker::stop_worker($o), 0, 'other worker exits 0');
log_clean_ok($s->{log}, 'stalled worker log');
log_clean_ok($o->{log}, 'other worker log');
done_testing();
