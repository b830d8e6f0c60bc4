# A queue's slot served by no master for a moment (review R1 finding 1):
# CLUSTER DELSLOTS on every master, then ADDSLOTS on its owner, while 4
# tasks of the queue run. Their acks, not delivered meanwhile ("no master
# for the slot": dq_ccl_send refused them), must go out once the slot is
# served again; they used to wait for an "up" that never came (the
# connection was not marked lost), so the leases expired and all 4 ran a
# second time.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQCluster;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my @m = $c->masters;
my $qa = 'qa1';
my $lease = 12;
my $conf = "redis " . $c->address . ";\nlibrary \"$lib\";\nprocesses 1;\nthreads 4;\n"
         . "concurrency 4;\nlease ${lease}s;\n"
         . "queue $qa { retry_limit 20; min_backoff 100ms; max_backoff 200ms; }\n";
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 0, conf => $conf);
ok(DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /commands\): cluster map from/ }, 20),
   'the worker has its map');
my $rec = "$dir/u.rec";
my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'defer',
                                       '-q', $qa, '--count', 4, 'ops.span', $rec, 1500);
die $err if $rc;
my @ids = split ' ', $out;
DQWorker::wait_lines($rec, 'S', 4, 20);
my $own = $c->owner($qa);
my $slot = $own->cmd('CLUSTER', 'KEYSLOT', "{$qa}");
$_->cmd('CLUSTER', 'DELSLOTS', $slot) for @m;
diag("slot $slot of $qa unassigned on every master while its 4 tasks run");
ok(DQTest::wait_for(sub { scalar(DQWorker::lines($rec, 'E')) >= 4 }, 10), 'the 4 tasks ended');
sleep 0.5;                               # their acks tried, not delivered
$own->cmd('CLUSTER', 'ADDSLOTS', $slot);
ok($c->wait_ok(20), 'the slot served again, cluster ok');
my $t0 = time;
ok(DQTest::wait_for(sub { $own->cmd('ZCARD', "dq2:{$qa}:leases") == 0 }, 6),
   "the acks delivered once the slot is served (leases 0 within 6 s, lease ${lease} s)")
    or diag(join "\n", grep { /not delivered|again|lease lost|redis not/ }
                       split /\n/, DQTest::slurp($w->{log}));
diag(sprintf("leases 0 after %.1f s", time - $t0));
my %n; $n{ $_->[0] }++ for DQWorker::lines($rec, 'E');
is(scalar(grep { ($n{$_} // 0) != 1 } @ids), 0, 'each task ran once');
DQTest::stop_pid($w->{pid});
DQTest::log_clean_ok($w->{log}, 'the worker log (sanitizers)');
done_testing();
