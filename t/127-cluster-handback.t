# The worker master's hand-back of a dead child's tasks (worker/held.c,
# through the blocking C client) on a Redis Cluster: t/86-crash-before-ack
# with `redis cluster:SEED` (t/lib/DQCluster.pm). A child is killed -9
# after its task finished OK but while its ack is held back (CLIENT PAUSE
# WRITE on the queue's master, not the seed): the master must ack it on
# that node, so the task does not run a second time and its name is
# tombstoned there.
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
my $c = DQCluster->start(dir => $dir);
my $q = 'hbq';
my $home = $c->owner($q);
my $seed = $c->other($q);
my $addr = 'cluster:' . $seed->address;
my $rec = "$dir/c.rec";
my $w = DQWorker::start_master($seed, $dir, name => 'hb', wait => 0, conf => <<"EOF");
redis "$addr";
library "$lib";
processes 1;
threads 1;
lease 20s;
queue $q { retry_limit 5; min_backoff 100ms; }
EOF
my ($kid);
DQTest::wait_for(sub { ($kid) = DQWorker::live_children($w); $kid }, 10);
ok($kid, "a child serves $q (on " . $home->port . '), the seed is ' . $seed->port);
# deferred through the queue's own node (the blocking client on a cluster:
# t/172): this test is about the hand-back
my ($rc, $out, $err) = DQTest::capture(DQTest::bin('deferred-cli'), '-r', $home->address,
                                       'defer', '-q', $q, '-n', 'once-only', 'ops.span',
                                       $rec, 800);
is($rc, 0, 'a named task deferred') or diag $err;
DQWorker::kill_with_ack_held($w, $home, $rec, $kid);     # on the queue's master
like(DQTest::slurp($w->{log}),
     qr/child 1 \(pid $kid\) killed by signal 9 \(Killed\), holding 1 leased tasks: 0 released at once \(never started\), 1 acked/,
     'the master acked the task the child finished (through the cluster)')
    or diag DQTest::slurp($w->{log});
sleep 2;
my @S = DQWorker::lines($rec, 'S');
is(scalar(@S), 1, 'the task did not run again');
is($home->cmd('ZCARD', DQTest::dq_key($q, 'leases')), 0, 'no lease left');
ok(defined $home->cmd('ZSCORE', DQTest::dq_key($q, 'names'), 'once-only'),
   "its name is tombstoned on $q\'s master");
is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
done_testing();
