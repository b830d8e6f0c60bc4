# A child of the previous configuration dies after a reload that moved
# the worker to another Redis (review F4): the master must hand back what
# it held on the Redis that child used, not on the new one.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $ra = DQTest::Redis->start();
my $rb = DQTest::Redis->start();
my $rec = "$dir/c.rec";
my $body = <<"EOF2";
library "$lib";
processes 1;
threads 1;
lease 30s;
grace 20s;
queue c { retry_limit 5; min_backoff 100ms; }
EOF2
my $w = DQWorker::start_master($ra, $dir, name => 'rl', wait => 1, conf => $body);
sleep 0.3;
my ($kid) = DQWorker::live_children($w);
DQWorker::defer($ra, '-q', 'c', 'ops.span', $rec, 4000);
my @S = DQWorker::wait_lines($rec, 'S', 1, 10);
is(scalar(@S), 1, 'the task started on Redis A');
open my $fh, '>', $w->{conf} or die;
print {$fh} "redis " . $rb->address . ";\n$body";
close $fh;
kill 'HUP', $w->{pid};
DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /started child 2/ }, 10);
sleep 0.3;
kill 'KILL', $kid;
DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /pid $kid\) killed by signal 9/ }, 10);
like(DQTest::slurp($w->{log}), qr/pid $kid\) killed by signal 9 \(Killed\).*1 started and failed/,
     'the master failed the running task (on the Redis the child used)');
DQTest::wait_for(sub { DQWorker::zcard($ra, 'c', 'leases') == 0 }, 5);
is(DQWorker::zcard($ra, 'c', 'leases'), 0, 'no lease left on Redis A (not 30 s later)');
is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
done_testing();
