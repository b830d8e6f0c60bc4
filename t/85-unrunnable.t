# "Cannot run here" is not a failure. Producers deployed before workers:
# tasks wait for a function no worker has yet; a worker whose task library
# fails to load claims them, cannot run them and releases them for another
# worker with a back-off of its own (no attempt charged, logged once per
# function, counted in stats "unrunnable"), never burying one; then a
# worker with the library runs every task, none dead, none charged.
# (Before: the first worker buried the whole backlog in seconds.)
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $rec = "$dir/rec";
my %ids = map { scalar(DQWorker::defer($r, 'record', $rec, $_)) => 1 } 1 .. 20;

my $broken = "$dir/libbroken.so";
open(my $fh, '>', $broken) or die; print $fh "not a library\n"; close $fh;
my $w1 = DQWorker::start_worker($r, $dir, name => 'nolib', libs => [$broken],
                                args => [qw(--log_level debug)]);
DQTest::wait_for(sub { ($r->cmd('HGET', 'dq2:{default}:stats', 'unrunnable') // 0) >= 20 }, 10);
ok((DQWorker::stats($r)->{unrunnable} // 0) >= 20,
   'the worker without the library released all 20 (stats "unrunnable")');
sleep 2.5;                                 # it sees them again, and again
is(scalar keys %{ DQWorker::dead($r) }, 0, 'none dead');
is($r->cmd('HGET', 'dq2:{default}:stats', 'dead'), undef, 'nothing ever buried');
my @lines = grep { /is not registered here/ } split /\n/, DQWorker::log_text($w1);
is(scalar @lines, 1, 'logged once for the function');
like($lines[0] // '', qr/\[warn\].*function "record" .*task libraries that failed to load: \Q$broken\E/,
     'naming the library that failed to load');
my $n = $r->cmd('HGET', 'dq2:{default}:stats', 'unrunnable');
ok($n < 20 * 4, "with a back-off: $n releases in 2.5 s for 20 tasks");
my ($rc, $out) = DQWorker::cli($r, 'stats', 'default');
my ($fn_n) = $out =~ /^unrunnable_fn record (\d+) \d+$/m;
is($fn_n, $n, 'deferred-cli stats counts them per function ("unrunnable_fn record N LAST_MS")')
    or diag $out;
is(DQWorker::stop_worker($w1), 0, 'the worker without the library exits 0');
ok(!-e $rec, 'nothing ran there');

my $w2 = DQWorker::start_worker($r, $dir, name => 'lib');
my @rec = DQWorker::wait_records($rec, 20, 40);
is(scalar @rec, 20, 'the worker with the library ran all 20');
is_deeply({ map { $_->{id} => 1 } @rec }, \%ids, 'every task, once');
is(scalar(grep { $_->{retries} != 0 || $_->{execs} != 0 } @rec), 0,
   'no attempt charged, no run counted before');
DQTest::wait_for(sub { DQWorker::stats($r)->{done} == 20 }, 10);
is(DQWorker::stats($r)->{done}, 20, 'all acked');
is(scalar keys %{ DQWorker::dead($r) }, 0, 'none dead');
is(DQWorker::stop_worker($w2), 0, 'the worker with the library exits 0');
# unrunnable_limit: a task whose function was missing here that long, and
# which is that old, is buried with a clear error instead of waiting forever
my %late = map { scalar(DQWorker::defer($r, 'record', $rec, "late$_")) => 1 } 1 .. 3;
my $w3 = DQWorker::start_worker($r, $dir, name => 'limit', libs => [$broken],
                                args => [qw(--unrunnable_limit 1500ms)]);
ok(DQTest::wait_for(sub { scalar(keys %{ DQWorker::dead($r) }) == 3 }, 15),
   'with unrunnable_limit 1.5 s the three tasks are buried after a while');
my $dead = DQWorker::dead($r);
is_deeply([sort keys %$dead], [sort keys %late], 'those three');
like((values %$dead)[0] // '', qr/^no worker has function "record"/, 'with the reason');
is(DQWorker::stop_worker($w3), 0, 'that worker exits 0');
log_clean_ok($w1->{log}, 'worker without the library: log');
log_clean_ok($w2->{log}, 'worker with the library: log');
done_testing();
