# deferred-worker at volume: two workers on one queue, 10,000 tasks, every
# task runs exactly once (counted per id), nothing dead, no crash.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $N = $ENV{DQ_MANY} || 10000;
my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my @args = qw(--threads 4 --concurrency 32 --claim-size 32);
my @w = map { DQWorker::start_worker($r, $dir, name => "w$_", args => \@args) } 1, 2;

my $rec = "$dir/many";
my $t0 = time;
my ($rc, $out, $err) = DQWorker::cli($r, 'defer', '--count', $N, 'record', $rec, 'x');
is($rc, 0, "$N tasks deferred") or diag($err);
my $t1 = time;
my @ids = split /\n/, $out;
is(scalar @ids, $N, "$N ids");

DQTest::wait_for(sub { DQWorker::stats($r)->{done} >= $N }, 120, 0.05);
my $t2 = time;
my @rec = DQWorker::records($rec);
my %count;
$count{ $_->{id} }++ for @rec;
is(scalar @rec, $N, "$N runs recorded");
is(scalar(grep { ($count{$_} // 0) == 1 } @ids), $N, 'every task ran exactly once');
is(DQWorker::stats($r)->{done}, $N, "$N acked");
is(DQWorker::stats($r)->{dead}, 0, 'none dead');
diag(sprintf "enqueue %d tasks: %.2f s; all run and acked %.2f s after the first enqueue (%.0f tasks/s, %s build)",
     $N, $t1 - $t0, $t2 - $t0, $N / ($t2 - $t0), DQTest::build_dir() =~ /san/ ? 'sanitizer' : 'normal');

for my $w (@w) {
    ok(DQWorker::alive($w), "$w->{name} alive");
}
for my $w (@w) {
    is(DQWorker::stop_worker($w), 0, "$w->{name} exits 0");
    log_clean_ok($w->{log}, "$w->{name} log");
}
done_testing();
