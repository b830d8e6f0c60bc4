# deferred-worker with several queues: when both are due and the worker is
# saturated, its slots are shared by queue weight (3:1 here), and both
# queues are served to the end.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $N = 300;
for my $q (qw(heavy light)) {
    my ($rc, $out, $err) = DQWorker::cli($r, 'defer', '-q', $q, '--count', $N,
                                         'sleep_ms', 2, "$dir/$q");
    is($rc, 0, "$N tasks on $q") or diag($err);
}
open my $fh, '>', "$dir/w.conf" or die;
print $fh "queue heavy { weight 3; }\nqueue light { weight 1; }\n";
close $fh;
my $w = DQWorker::start_worker($r, $dir,
    args => ['-c', "$dir/w.conf", qw(--threads 2 --concurrency 8 --claim-size 8)]);

# the first half of the work: how was it shared?
DQTest::wait_for(sub { DQWorker::records("$dir/heavy") + DQWorker::records("$dir/light") >= $N }, 30, 0.001);
my $h = () = DQWorker::records("$dir/heavy");
my $l = () = DQWorker::records("$dir/light");
diag("after ~$N runs: heavy $h, light $l");
cmp_ok($h, '>', 2 * $l, 'the weight-3 queue got well over twice the weight-1 share');
cmp_ok($l, '>', 0, 'the weight-1 queue was not starved');

DQTest::wait_for(sub { DQWorker::stats($r, 'light')->{done} == $N
                       && DQWorker::stats($r, 'heavy')->{done} == $N }, 60);
is(DQWorker::stats($r, 'heavy')->{done}, $N, 'heavy all done');
is(DQWorker::stats($r, 'light')->{done}, $N, 'light all done');
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
log_clean_ok($w->{log}, 'worker log');
done_testing();
