# A child SIGKILLed while a claim on a SHARD is in flight (review R1,
# finding 2): Redis ran the claim on hot#1 (2 shards), its reply is held
# back by a proxy, the child dies. The master's table must name the
# claim under the shard ("hot#1"), so its release_claim gives the shard's
# leases back at once, uncharged; under the queue's name ("hot") it looked
# in shard 0, gave nothing back, and the tasks waited for their lease
# (15 s here) and were charged an attempt.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQProxy;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start;
my ($rc, $out, $err) = DQWorker::cli($r, 'queue', 'hot', '--shards', '2');
is($rc, 0, 'hot: 2 shards') or diag $err;
my $rec = "$dir/g.rec";
($rc, $out, $err) = DQWorker::cli($r, 'defer', '-q', 'hot', '--count', 12,
                                  'ops.span', $rec, 0);
die $err if $rc;
my $in1 = $r->cmd('HLEN', DQTest::dq_key('hot#1', 'tasks'));
ok($in1 > 0, "tasks in shard hot#1: $in1 of 12");
my $mark = "$dir/held";
my $proxy = DQProxy::start($r->port,
    request => sub {
        my ($buf, $st) = @_;
        if (!-e $mark && $buf =~ /EVALSHA/ && index($buf, '{hot#1}:tasks') >= 0) {
            $st->{hold} = 1;
            open(my $f, '>', $mark) or die; close $f;
        }
    },
    reply => sub { my ($buf, $st) = @_; $st->{hold} ? { delay => 120 } : 1 });
my $lease = 15;
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 0, conf =>
    "redis 127.0.0.1:$proxy->{port};\nlibrary \"$lib\";\nprocesses 1;\n"
  . "threads 2;\nlease ${lease}s;\nqueue hot { }\n");
ok(DQTest::wait_for(sub { -e $mark }, 20),
   'a claim on shard hot#1 sent, its reply held back');
ok(DQTest::wait_for(sub { DQWorker::zcard($r, 'hot#1', 'leases') > 0 }, 5),
   '  Redis ran it: hot#1 has leases');
my $line = DQWorker::kill_child($w);
ok(defined $line, 'the child reaped');
diag('master: ' . ($line // '-'));
ok(DQTest::wait_for(sub { DQWorker::zcard($r, 'hot#1', 'leases') == 0 }, 5),
   "the shard's leases given back by the master within 5 s (lease ${lease} s)")
    or diag('hot#1 leases: ' . DQWorker::zcard($r, 'hot#1', 'leases'));
like($line, qr/released at once/, '  uncharged (released at once)');
DQWorker::wait_lines($rec, 'E', 12, 20);
my @E = DQWorker::lines($rec, 'E');
is(scalar(@E), 12, 'all 12 ran');
DQTest::stop_pid($w->{pid});
DQProxy::stop($proxy);
DQTest::log_clean_ok($w->{log}, 'the worker log (sanitizers)');
done_testing();
