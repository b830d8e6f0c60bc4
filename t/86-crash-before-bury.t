# A child killed after it decided to bury a task (permanent failure) but
# before its bury landed (review F8): the master must bury it, not fail
# it (charged, retried: the function would run again for nothing).
#
# sleep_ms(800, 5) sleeps, then fails for good (its second argument is not
# a path). The bury (a write script) is held back by CLIENT PAUSE WRITE
# and the child killed -9 while it waits.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::example_lib();
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start();
my $w = DQWorker::start_master($r, $dir, name => 'bury', wait => 1, conf => <<"EOF2");
library "$lib";
processes 1;
threads 1;
lease 20s;
queue c { retry_limit 5; min_backoff 100ms; }
EOF2
sleep 0.3;
my ($kid) = DQWorker::live_children($w);
my $id = DQWorker::defer($r, '-q', 'c', 'sleep_ms', 800, 5);
DQTest::wait_for(sub { DQWorker::zcard($r, 'c', 'leases') == 1 }, 10);
$r->cmd('CLIENT', 'PAUSE', 1500, 'WRITE');
DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /task dead: queue=c/ }, 5);
like(DQTest::slurp($w->{log}), qr/child 1: task dead: queue=c/,
     'the child decided to bury it (its bury now paused in Redis)');
sleep 0.2;
kill 'KILL', $kid;
DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /pid $kid\) killed by signal 9/ }, 10);
like(DQTest::slurp($w->{log}), qr/child 1 \(pid $kid\) killed by signal 9 \(Killed\), holding 1 leased tasks: 0 released at once \(never started\), 0 acked \(finished OK\), 1 buried/,
     'the master buried the task');
sleep 1;
is(DQWorker::zcard($r, 'c', 'dead'), 1, 'the task is in the dead set');
is(DQWorker::zcard($r, 'c', 'leases'), 0, 'no lease left');
unlike(DQTest::slurp($w->{log}), qr/task (started|finished).*attempt=2/,
       'it did not run again');
is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
done_testing();
