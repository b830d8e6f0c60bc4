# Review RF8 finding 1: a graceful stop (SIGTERM: a deploy, a reload) of a
# worker whose task finishes while its queue's slot is MIGRATING, the slot
# settling 1.3 s (T230_SETTLE) after the task finished, well inside
# `grace`; another worker (b, idle) serves the same queue. The stop made
# every TRYAGAIN "not run" at once (dq_conn_stop_retries), the ack's too,
# so the ack waited the redo back-off (1 s, 2 s ...), b's claim took the
# expired lease back and the task ran twice (4 of 4 runs of the review's
# t/905). Now a call that settles leases keeps its 50 ms step after a stop
# (the child stays for it, at most `grace`): the ack lands within ~50 ms
# of the slot settling. Asserts the task ran once, the ack landed, and the
# stopping worker then exits. T230_STOP=0: the same without the SIGTERM.
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
my $q = 'rq1';
my $stop = $ENV{T230_STOP} // 1;
my $conf = "log_level debug;\nlibrary \"$lib\";\nthreads 1;\n"
         . "concurrency 1;\nlease 500ms;\ngrace 20s;\n"
         . "queue $q { retry_limit 20; min_backoff 100ms; "
         . "max_backoff 200ms; }\n";
my $a = DQWorker::cluster_master($c, $dir, name => "a", conf => $conf);
my $src = $c->owner($q);
my ($dst) = grep { $_->port != $src->port } @m;
my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$q}");
my $rec = "$dir/t.rec";
my $id = DQWorker::defer($src, "-q", $q, "ops.span", $rec, 1500);
DQWorker::wait_lines($rec, 'S', 1, 20);
my $b = DQWorker::cluster_master($c, $dir, name => "b", conf => $conf);
$c->freeze($slot, $src, $dst);
kill 'TERM', $a->{pid} if $stop;
DQWorker::wait_lines($rec, 'E', 1, 20);
my $tE = time;
sleep($ENV{T230_SETTLE} // 1.3);
$c->settle($slot, $dst);
my $t1 = time;
diag(sprintf("slot settled %.2f s after the task finished", $t1 - $tE));
ok(DQTest::wait_for(sub {
       ($dst->cmd('HGET', DQWorker::key($q, 'stats'), 'done') // 0) >= 1
   }, 15, 0.002), 'the task is done');
diag(sprintf("done=1 %.0f ms after the slot settled", 1000 * (time - $t1)));
sleep 1;
my %runs = %{ DQWorker::count_by_id($rec, 'S') };
my %st = @{ $dst->cmd('HGETALL', DQWorker::key($q, 'stats')) || [] };
diag(join ' ', map { "$_=" . ($st{$_} // 0) } qw(done acked_late reclaimed));
diag("a: $_") for grep { /lease lost|not delivered|refused|undelivered/ }
    split /\n/, DQTest::slurp($a->{log});
is($runs{$id} // 0, 1, 'the task ran once');
if ($stop) {
    ok(DQTest::wait_for(sub { !DQWorker::alive($a) }, 10),
       'the stopping worker exits once its ack landed');
}
DQWorker::stop_worker($a);
DQWorker::stop_worker($b);
done_testing();
