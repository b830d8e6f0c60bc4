# Acks that ride a claim on a Redis Cluster slot that migrates (review
# RFLO of the TRYAGAIN changes): a claim refused unrun with TRYAGAIN used to
# end at once and leave its acks to the redo back-off (>= 1 s); the slot
# settled meanwhile, a claim took the finished task's expired lease back
# (lease 500 ms) and the task ran twice. The acks of a claim refused so
# are now sent again at once, alone, in the cluster layer's retry for
# results, which sends them as soon as the slot settles (review RF8: the
# claim itself is sent once again, t/229). 2 children, concurrency 1, 5 tasks of 400 ms, every key of the
# slot moved and the slot MIGRATING for 0.6 s.
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
my $lease = $ENV{RF_LEASE} || "500ms"; $ENV{RF_PROCS} ||= 2;
my $hold = $ENV{RF_HOLD} || 0.6;
my $span = $ENV{RF_SPAN} || 400;
my $conf = "log_level debug;\n" . "redis cluster:" . $m[0]->address . ";\nlibrary \"$lib\";\nprocesses $ENV{RF_PROCS};\nthreads 1;\nconcurrency 1;\nlease $lease;\n"
         . "queue $q { retry_limit 20; min_backoff 100ms; max_backoff 200ms; }\n";
my $w = DQWorker::start_master(undef, $dir, name => "w", wait => 0, conf => $conf);
DQTest::wait_for(sub { (() = DQTest::slurp($w->{log}) =~ /cluster map from/g) >= 2 }, 20);
my $src = $c->owner($q);
my ($dst) = grep { $_->port != $src->port } @m;
my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$q}");
my $rec = "$dir/t.rec";
my @ids = map { scalar DQWorker::defer($src, "-q", $q, "ops.span", $rec, $span) } 1 .. ($ENV{RF_N} || 5);
DQWorker::wait_lines($rec, 'S', 1, 20);
my $t0 = time;
$c->freeze($slot, $src, $dst);
sleep $hold;
$c->settle($slot, $dst);
diag(sprintf("MIGRATING for %.2f s", time - $t0));
DQWorker::wait_lines($rec, 'E', scalar @ids, 20);
sleep 4;
my %n = %{ DQWorker::count_by_id($rec, 'S') };
my $log = DQTest::slurp($w->{log});
diag("runs: " . join(' ', map { $n{$_} // 0 } @ids));
diag("log: $_") for grep { /lease lost|not run|not delivered|undelivered|finished|reclaim/ } split /\n/, $log;
is(scalar(grep { ($n{$_} // 0) > 1 } @ids), 0, 'no task run twice');
done_testing();
