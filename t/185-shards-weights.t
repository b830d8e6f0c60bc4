# A sharded queue's weight is shared by its due shards (worker/child.c):
# a worker saturated by two queues of equal weight, one of 4 shards, one
# unsharded, gives each about half its slots (not 4/5 to the sharded one,
# as 5 queues of weight 1 would), and a 3:1 weight still holds when the
# heavy queue is the sharded one.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $N = 300;
sub cli { DQWorker::cli($r, @_) }

sub share {
    my ($name, $conf, $want_lo, $want_hi, $what) = @_;
    my ($a, $b) = ("${name}a", "${name}b");
    my ($rc, $out, $err) = cli('queue', $a, '--shards', '4');
    is($rc, 0, "$a: 4 shards") or diag $err;
    for my $q ($a, $b) {
        ($rc, $out, $err) = cli('defer', '-q', $q, '--count', $N, 'sleep_ms', 2, "$dir/$q");
        is($rc, 0, "$N tasks on $q") or diag $err;
    }
    open my $fh, '>', "$dir/$name.conf" or die;
    print $fh $conf;
    close $fh;
    my $w = DQWorker::start_worker($r, $dir, name => $name,
        args => ['-c', "$dir/$name.conf", qw(--threads 2 --concurrency 8 --claim-size 8)]);
    DQTest::wait_for(sub { DQWorker::records("$dir/$a") + DQWorker::records("$dir/$b") >= $N }, 30, 0.001);
    my $x = () = DQWorker::records("$dir/$a");
    my $y = () = DQWorker::records("$dir/$b");
    diag("after ~$N runs: $a (4 shards) $x, $b (1 shard) $y");
    my $f = $x / (($x + $y) || 1);
    ok($f >= $want_lo && $f <= $want_hi, sprintf("%s: the sharded queue's share %.2f in [%.2f, %.2f]",
                                                 $what, $f, $want_lo, $want_hi));
    DQTest::wait_for(sub { (DQWorker::stats($r, $a)->{done} // 0) == $N
                           && (DQWorker::stats($r, $b)->{done} // 0) == $N }, 60);
    is(DQWorker::stats($r, $a)->{done}, $N, "$a all done (over its shards)");
    is(DQWorker::stop_worker($w), 0, 'worker exits 0');
    DQTest::log_clean_ok($w->{log}, 'worker log');
}

# equal weights: half each (5 queues of weight 1 would give 0.8)
share('eq', "queue eqa;\nqueue eqb;\n", 0.35, 0.65, 'equal weights');
# 3:1 with the sharded queue the heavy one: about 0.75
share('hv', "queue hva { weight 3; }\nqueue hvb { weight 1; }\n", 0.62, 0.88, 'weight 3:1');
done_testing();
