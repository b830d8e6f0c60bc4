# deferred-worker: a countdown task runs at its ETA (not early, promptly),
# the worker sleeps until the earliest ETA and is woken early by an earlier
# enqueue; task names are refused while waiting (duplicate) and after the
# run (tombstone), other names pass.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $w = DQWorker::start_worker($r, $dir, args => [qw(--log_level debug)]);
sleep 0.3;    # idle: the first claim found nothing

# A far task first: the worker's deadline becomes 60 s away ...
DQWorker::defer($r, qw(--countdown 60000 record), "$dir/far");
sleep 0.2;
# ... then earlier ones, which must wake it (no polling interval).
my $rec = "$dir/eta";
my %eta;
for my $cd (2000, 2250, 2500) {
    my ($id, $eta) = DQWorker::defer($r, '--countdown', $cd, 'record', $rec, $cd);
    $eta{$id} = $eta;
}
my @rec = DQWorker::wait_records($rec, 3, 10);
is(scalar @rec, 3, 'the three countdown tasks ran');
for my $x (@rec) {
    my $late = $x->{ms} - $eta{ $x->{id} };
    diag("countdown $x->{tag} ms: ran $late ms after its ETA");
    cmp_ok($x->{eta}, '==', $eta{ $x->{id} }, "task sees its ETA ($x->{tag})");
    cmp_ok($late, '>=', 0, "not early ($x->{tag})");
    cmp_ok($late, '<', 1000, "promptly after the ETA ($x->{tag})");
}
ok(!-e "$dir/far", 'the far task has not run');

# ---- names
my ($rc, $out, $err) = DQWorker::cli($r, qw(defer -n job1 --countdown 60000 record), "$dir/names");
is($rc, 0, 'named task accepted') or diag($err);
($rc, $out, $err) = DQWorker::cli($r, qw(defer -n job1 record), "$dir/names");
is($rc, 3, 'same name while it waits: duplicate');
like($err, qr/duplicate/i, 'the error says duplicate');
($rc) = DQWorker::cli($r, qw(defer -n job2 record), "$dir/names", 'job2');
is($rc, 0, 'another name passes');
my @n = DQWorker::wait_records("$dir/names", 1, 10);
is(scalar @n, 1, 'job2 ran');
DQTest::wait_for(sub { DQWorker::stats($r)->{done} >= 4 }, 5);
($rc, $out, $err) = DQWorker::cli($r, qw(defer -n job2 record), "$dir/names");
is($rc, 4, 'same name after it ran: tombstoned');
like($err, qr/tombstone/i, 'the error says tombstoned');
($rc) = DQWorker::cli($r, qw(defer -n job3 record), "$dir/names", 'job3');
is($rc, 0, 'a new name still passes');
is(scalar(DQWorker::wait_records("$dir/names", 2, 10)), 2, 'job3 ran too');

ok(DQWorker::alive($w), 'worker alive');
my $st = DQWorker::stop_worker($w);
is($st, 0, 'SIGTERM: worker exits 0');
like(DQWorker::log_text($w), qr/woken for queue default/, 'woken by the wake list');
log_clean_ok($w->{log}, 'worker log');
done_testing();
