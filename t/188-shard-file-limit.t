# A sharded queue's max_concurrent from the worker's file (review R1
# finding 3), producers before workers: 8 shards, max_concurrent 8 in the
# file, 160 tasks of 2 s waiting when the worker starts. The file's limit
# is split over the shards (1 each); shard 0 used to claim with the whole
# limit before the shard count was read (it came with the first
# heartbeat's reply; claims start on connect): 15-20 ran at once. Now
# the count is read on connect and a limited queue is not claimed before.
# Counted from the task records (start/end times), as t/176 does.
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
my ($rc, $out, $err) = DQWorker::cli($r, 'queue', 'hot', '--shards', '8');
is($rc, 0, 'hot: 8 shards') or diag $err;
my $rec = "$dir/s.rec";
($rc, $out, $err) = DQWorker::cli($r, 'defer', '-q', 'hot', '--count', 160,
                                  'ops.span', $rec, 2000);
die $err if $rc;
my $M = 8;
my $w = DQWorker::start_master($r, $dir, name => 'w', conf =>
    "library \"$lib\";\nprocesses 1;\nthreads 64;\nconcurrency 64;\nlease 30s;\n"
  . "queue hot { max_concurrent $M; }\n");
DQWorker::wait_lines($rec, 'E', 16, 20);
DQTest::stop_pid($w->{pid});
my $max = DQWorker::spans_at_once($rec);
my $ended = () = DQWorker::lines($rec, 'E');
diag('started: ' . scalar(DQWorker::lines($rec, 'S'))
     . "; most running at once: $max (max_concurrent $M)");
ok($ended >= 16, 'tasks ran (at least two rounds)');
ok($max <= $M, "at most $M at once");
DQTest::log_clean_ok($w->{log}, 'the worker log (sanitizers)');
done_testing();
