# Queue limits hold across workers (enforced in Redis by the claim
# script): a queue with rate 50/s served by 3 workers runs 50 tasks/s
# (measured over 10 s, within 10%); a queue with max_concurrent 2 served
# by 3 workers never has more than 2 tasks running at once.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start;

my $conf = <<"EOF2";
library "$lib";
processes 1;
threads 4;
concurrency 4;
queue rated {
    rate 50/s;
    bucket_size 50;     # one second's worth (App Engine: 5 for 5/s)
}
queue conc {
    max_concurrent 2;
}
EOF2
my @w = map { DQWorker::start_master($r, $dir, name => "w$_", wait => 1, conf => $conf) } 1 .. 3;

# ---- max_concurrent 2 across 3 workers
DQWorker::cli($r, 'defer', '-q', 'conc', '--count', 30, 'ops.span', "$dir/c.rec", 100);
my @E = DQWorker::wait_lines("$dir/c.rec", 'E', 30, 30);
my @S = DQWorker::lines("$dir/c.rec", 'S');
is(scalar(@E), 30, 'all 30 concurrency-limited tasks ran');
my $max = DQWorker::spans_at_once("$dir/c.rec");
ok($max <= 2, "never more than 2 running at once (max seen $max)");
is($max, 2, 'the limit of 2 was reached (it is what held them back)');
my %pids; $pids{ $_->[2] }++ for @S;
note('concurrency-limited tasks per child: ' . join(' ', map { "$_=$pids{$_}" } sort keys %pids));

# ---- rate 50/s across 3 workers, measured over 10 s
DQWorker::cli($r, 'defer', '-q', 'rated', '--count', 700, 'ops.span', "$dir/r.rec", 0);
@S = DQWorker::wait_lines("$dir/r.rec", 'S', 650, 30);
my @t = sort { $a <=> $b } map { $_->[1] } @S;
my $from = $t[0] + 1000;                  # past the initial burst (bucket 50)
my $to = $from + 10000;
my $n = grep { $_ >= $from && $_ < $to } @t;
my $rate = $n / 10;
diag(sprintf('measured rate over 10 s: %.1f tasks/s (configured 50/s, 3 workers)', $rate));
ok($rate >= 45 && $rate <= 55, "rate within 10% of 50/s ($rate)");
my %by; $by{ $_->[2] }++ for @S;
my $served = grep { $by{$_} > 0 } keys %by;
note('rate-limited tasks per child: ' . join(' ', map { "$_=$by{$_}" } sort keys %by));
ok($served >= 2, "the rate was shared by $served workers, not one");

for my $w (@w) {
    is(DQTest::stop_pid($w->{pid}), 0, "$w->{name} exits 0");
    DQTest::log_clean_ok($w->{log});
}
done_testing();
