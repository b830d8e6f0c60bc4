# The worker on a Redis Cluster after SCRIPT FLUSH on every master: each
# node connection turns NOSCRIPT into EVAL (redis_uv.c), now on a command
# whose RESP the cluster layer formatted once and lends to the node
# (dq_conn_send_fmt, review R4 finding 8: the arguments were copied by
# the cluster layer, formatted again by the node, copied by hiredis). A
# queue on every master; tasks before and after the flush each run once;
# the sanitizer build checks the borrowed bytes. (Not a failure on main:
# it guards the new path.)
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQWorker; use DQCluster;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my @m = $c->masters;
my %qof;
for my $i (1 .. 500) {
    my $q = "nq$i";
    $qof{ $c->owner($q)->port } //= $q;
    last if keys %qof == 3;
}
my @queues = map { $qof{ $_->port } } @m;
is(scalar(grep { defined } @queues), 3, "a queue on each master: @queues");
my $rec = "$dir/n.rec";
sub defer_all { my ($k) = @_;
    for my $q (@queues) {
        my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'defer',
                                               '-q', $q, '--count', $k, 'ops.span', $rec, 1);
        die $err if $rc;
    }
}
my $qs = join('', map { "queue $_;\n" } @queues);
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 0, conf =>
    "redis " . $c->address . ";\nlibrary \"$lib\";\nprocesses 1;\nthreads 4;\nconcurrency 4;\n$qs");
defer_all(5);
ok(DQTest::wait_for(sub { scalar(DQWorker::lines($rec, 'E')) >= 15 }, 30), '15 tasks ran');
$_->cmd('SCRIPT', 'FLUSH') for @m;
defer_all(5);
ok(DQTest::wait_for(sub { scalar(DQWorker::lines($rec, 'E')) >= 30 }, 30),
   '15 more after SCRIPT FLUSH on every master');
sleep 0.5;
my %n; $n{ $_->[0] }++ for DQWorker::lines($rec, 'E');
is(scalar(keys %n), 30, '30 distinct tasks');
is(scalar(grep { $n{$_} != 1 } keys %n), 0, 'each ran once');
like(DQTest::slurp($w->{log}), qr/NOSCRIPT for "\w+", sending it as EVAL/,
     'NOSCRIPT met and sent as EVAL');
DQTest::stop_pid($w->{pid});
DQTest::log_clean_ok($w->{log}, 'the worker log (sanitizers)');
done_testing();
