# A child killed after its task finished OK but before its ack landed
# (review F2): the master must ack it (it holds the name for the
# tombstone), not release it, so the task does not run a second time.
#
# How the ack is held back: CLIENT PAUSE WRITE while the task (ops.span,
# 800 ms) runs; its ack (a write script) waits in Redis; the child is
# killed -9 while it waits (Redis drops the paused command with the
# client). The pause ends ~0.5 s later and the master's ack goes through.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start();
my $rec = "$dir/c.rec";
my $w = DQWorker::start_master($r, $dir, name => 'ack', wait => 1, conf => <<"EOF2");
library "$lib";
processes 1;
threads 1;
lease 20s;
queue c { retry_limit 5; min_backoff 100ms; }
EOF2
sleep 0.3;
my ($kid) = DQWorker::live_children($w);
my $id = DQWorker::defer($r, '-q', 'c', '-n', 'once-only', 'ops.span',
                         $rec, 800);
DQWorker::kill_with_ack_held($w, $r, $rec, $kid);
like(DQTest::slurp($w->{log}), qr/child 1 \(pid $kid\) killed by signal 9 \(Killed\), holding 1 leased tasks: 0 released at once \(never started\), 1 acked/,
     'the master acked the task the child finished');
sleep 2;
my @S = DQWorker::lines($rec, 'S');
is(scalar(@S), 1, 'the task did not run again');
is(DQWorker::zcard($r, 'c', 'leases'), 0, 'no lease left');
ok(defined $r->cmd('ZSCORE', DQWorker::key('c', 'names'), 'once-only'),
   'its name is tombstoned');
is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
done_testing();
