# deferred-worker retries: fail twice then succeed -> three runs with
# backoff gaps that follow min/max backoff; retry-quietly logs no error;
# permanent failure -> dead at once with its message; the retry limit
# sends a task to dead. Also: URL handlers and headers reach the function.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $w = DQWorker::start_worker($r, $dir);

# ---- fails twice, then succeeds; backoff 300 ms doubling, capped at 500 ms
my $f = "$dir/fail2";
my $id = DQWorker::defer($r, qw(--min-backoff 300 --max-backoff 500),
                         'fail_then_ok', $f, 2);
my @rec = DQWorker::wait_records($f, 3, 10);
is(scalar @rec, 3, 'fail_then_ok(2) ran three times');
DQTest::wait_for(sub { DQWorker::stats($r)->{done} >= 1 }, 5);
is_deeply([ map { $_->{retries} } @rec ], [0, 1, 2], 'retry counts 0, 1, 2');
is_deeply([ map { $_->{execs} } @rec ], [0, 1, 2], 'execution counts 0, 1, 2');
my $g1 = $rec[1]{ms} - $rec[0]{ms};
my $g2 = $rec[2]{ms} - $rec[1]{ms};
diag("backoff gaps: $g1 ms, $g2 ms (expected 300, then 600 capped to 500)");
cmp_ok($g1, '>=', 300, 'first gap >= min backoff');
cmp_ok($g1, '<', 1300, 'first gap loosely bounded');
cmp_ok($g2, '>=', 500, 'second gap doubled, capped at max backoff');
cmp_ok($g2, '<', 1500, 'second gap loosely bounded');
my @errs = grep { /\[error\].*task failed: queue=default id=\Q$id\E .*attempt=\d+ error="failing on purpose/ }
           split /\n/, DQWorker::log_text($w);
is(scalar @errs, 2, 'two structured error lines for the two failures');
ok(!exists DQWorker::dead($r)->{$id}, 'not dead');

# ---- retry quietly: runs again, no error line
my $q = "$dir/quiet";
my $qid = DQWorker::defer($r, qw(--min-backoff 50 --max-backoff 50),
                          'quiet_then_ok', $q, 2);
@rec = DQWorker::wait_records($q, 3, 10);
is(scalar @rec, 3, 'quiet_then_ok(2) ran three times');
DQTest::wait_for(sub { DQWorker::stats($r)->{done} >= 2 }, 5);
ok(!grep({ /\[error\].*\Q$qid\E/ } split /\n/, DQWorker::log_text($w)),
   'retry-quietly logs no error line');

# ---- permanent failure: dead at once with its message
my $pid_ = DQWorker::defer($r, 'permanent', 'the input is wrong');
DQTest::wait_for(sub { exists DQWorker::dead($r)->{$pid_} }, 10);
is(DQWorker::dead($r)->{$pid_}, 'the input is wrong',
   'permanent failure: dead with its message');
is(DQWorker::stats($r)->{retried}, 4, 'no retry counted for it');

# ---- retry limit: 1 run + 2 retries, then dead
my $a = "$dir/always";
my $aid = DQWorker::defer($r, qw(--retry-limit 2 --min-backoff 50 --max-backoff 50),
                          'always_fail', $a);
DQTest::wait_for(sub { exists DQWorker::dead($r)->{$aid} }, 10);
like(DQWorker::dead($r)->{$aid}, qr/^retry limit reached after 3 failed attempts: always fails/,
     'retry limit: dead with the reason and the last error');
sleep 0.3;
is(scalar DQWorker::records($a), 3, 'it ran 1 + retry_limit times');

# ---- age limit with a retry limit: dead once BOTH are reached (App Engine)
my $ag = "$dir/aged";
my $agid = DQWorker::defer($r, qw(--retry-limit 2 --age-limit 600 --min-backoff 200 --max-backoff 200),
                           'always_fail', $ag);
DQTest::wait_for(sub { exists DQWorker::dead($r)->{$agid} }, 10);
like(DQWorker::dead($r)->{$agid} // '', qr/^retry limit of 2 and age limit of 600 ms reached \(first run \d+ ms ago\) after \d+ failed attempts: always fails/,
     'retry + age limit: dead with the reason');
my @ar = DQWorker::records($ag);
cmp_ok(scalar @ar, '>', 3, 'more runs than the retry limit alone allows (' . scalar(@ar) . ')');
cmp_ok($ar[-1]{ms} - $ar[0]{ms}, '>=', 600, 'the last run is past the age limit');
cmp_ok($ar[-2]{ms} - $ar[0]{ms}, '<', 600, 'the one before it was not');

# ---- handler by URL, headers
my $h = "$dir/handler";
my $hid = DQWorker::defer($r, qw(-u /example/handler -H), 'X-Example: hello',
                          'echo_meta', $h);
@rec = DQWorker::wait_records($h, 1, 10);
is($rec[0]{tag}, 'hello', 'the function read its header');
like(DQWorker::log_text($w), qr/task \Q$hid\E: example handler: running echo_meta/,
     'the URL handler ran it');

is(DQWorker::stop_worker($w), 0, 'worker exits 0');
log_clean_ok($w->{log}, 'worker log');
done_testing();
