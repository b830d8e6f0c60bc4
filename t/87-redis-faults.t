# Error replies that mean "not run" keep the result (issue 10, item 7).
#
# Real faults, each while tasks finish and their acks are on the way:
#   busy      a script runs past busy-reply-threshold: every command
#             is answered -BUSY until it ends
#   readonly  a switchover: the master's writes held until its replica has
#             them, the replica promoted (REPLICAOF NO ONE) and the
#             worker's master demoted (REPLICAOF), then fail-back;
#             meanwhile every write is answered -READONLY
#   oom       CONFIG SET maxmemory 1 (noeviction): claims answered -OOM
#             (retried), acks run anyway (allow-oom scripts)
# Each ack answered so must be kept and sent again once Redis takes it;
# a claim answered so is retried: every task runs exactly once, is done,
# nothing is left leased or dead.
# Before the fix these acks were logged and dropped, and the tasks ran
# again after their lease.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $N = 24;

sub conf {
    return <<"EOF";
library "$lib";
processes 1;
threads 4;
concurrency 4;
claim_size 4;
lease 8s;
queue f { retry_limit 5; min_backoff 100ms; }
EOF
}

sub raw {
    my ($r) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $r->port,
                                  Proto => 'tcp', Timeout => 5) or die "connect: $!";
    return $s;
}

sub resp {
    my $req = '*' . scalar(@_) . "\r\n";
    $req .= '$' . length($_) . "\r\n$_\r\n" for @_;
    return $req;
}

sub scenario {
    my ($case, $r, $fault, $heal, $expect, $resend) = @_;
    my $rec = "$dir/$case.rec";
    my $w = DQWorker::start_master($r, $dir, name => $case, wait => 1, conf => conf());
    my %ids;
    $ids{ DQWorker::defer($r, '-q', 'f', 'ops.span', $rec, 150) } = 1 for 1 .. $N;
    DQWorker::wait_lines($rec, 'S', 4, 20);
    $fault->();
    sleep 2.5;                     # tasks finish; their acks meet the fault
    $heal->();
    my @E = DQWorker::wait_lines($rec, 'E', $N, 40);
    DQTest::wait_for(sub { ($r->cmd('HGET', 'dq2:{f}:stats', 'done') // 0) == $N }, 20);
    my %runs;
    $runs{ $_->[0] }++ for DQWorker::lines($rec, 'S');
    my $charged = grep { ($_->[4] // 0) > 0 } DQWorker::lines($rec, 'E');
    diag(sprintf('%s: %d tasks, fault 2.5 s: %d lost, %d ran twice, %d runs charged',
                 $case, $N, scalar(grep { !$runs{$_} } keys %ids),
                 scalar(grep { ($runs{$_} // 0) > 1 } keys %ids), $charged));
    is($charged, 0, "$case: no attempt charged");
    is(scalar(grep { $runs{$_} } keys %ids), $N, "$case: every task ran");
    is(scalar(grep { ($runs{$_} // 0) > 1 } keys %ids), 0, "$case: none ran twice");
    is($r->cmd('HGET', 'dq2:{f}:stats', 'done'), $N, "$case: all acked");
    is(DQWorker::zcard($r, 'f', 'leases'), 0, "$case: no lease left");
    is(scalar(keys %{ DQWorker::dead($r, 'f') }), 0, "$case: nothing dead");
    my $log = DQTest::slurp($w->{log});
    like($log, qr/answered: $expect/, "$case: the $expect reply was seen and treated as not delivered");
    if ($resend) {
        like($log, qr/undelivered results again/, "$case: the kept results were sent again");
    }
    unlike($log, qr/ack failed for task/, "$case: no result dropped");
    is(DQTest::stop_pid($w->{pid}), 0, "$case: the worker stops cleanly");
    $r->cmd('FLUSHALL');
}

# ---- BUSY
{
    my $r = DQTest::Redis->start;
    $r->cmd(qw(CONFIG SET busy-reply-threshold 100));
    my $s;
    scenario('busy', $r, sub {
        $s = raw($r);
        print {$s} resp('EVAL', 'local function us() local t = redis.call("TIME") return t[1] * 1000000 + t[2] end '
                     . 'local s = us() while us() - s < 2000000 do end return 1', '0');
    }, sub { my $l = <$s>; close $s; }, 'BUSY', 1);
    $r->stop;
}

# ---- READONLY: failover to the replica and back
{
    my $p = DQTest::Redis->start;
    my $q = DQTest::Redis->start(args => ['--replicaof', '127.0.0.1', $p->port]);
    DQTest::wait_for(sub { ($q->cmd('INFO', 'replication') // '') =~ /master_link_status:up/ }, 10);
    scenario('readonly', $p, sub {
        # a switchover as Sentinel or an operator does it: writes to the
        # old master held (CLIENT PAUSE WRITE) until the replica has every
        # one of them, then the roles swap. Promoting first would let the
        # old master take acks the new one never gets (asynchronous
        # replication: those tasks run again, at-least-once) -- that is
        # data loss in Redis, not what this test is about.
        $p->cmd('CLIENT', 'PAUSE', '5000', 'WRITE');
        my $off = sub { ($_[0]->cmd('INFO', 'replication') // '') =~ /$_[1]:(\d+)/ ? $1 : -1 };
        DQTest::wait_for(sub { $off->($q, 'slave_repl_offset')
                               >= $off->($p, 'master_repl_offset') }, 5);
        $q->cmd('REPLICAOF', 'NO', 'ONE');
        $p->cmd('REPLICAOF', '127.0.0.1', $q->port);
        $p->cmd('CLIENT', 'UNPAUSE');
    }, sub {
        DQTest::wait_for(sub { ($p->cmd('INFO', 'replication') // '') =~ /master_link_status:up/ }, 10);
        $p->cmd('REPLICAOF', 'NO', 'ONE');
        $q->cmd('REPLICAOF', '127.0.0.1', $p->port);
    }, 'READONLY', 1);
    $q->stop;
    $p->stop;
}

# ---- OOM
{
    my $r = DQTest::Redis->start;
    scenario('oom', $r, sub { $r->cmd(qw(CONFIG SET maxmemory 1)) },
             sub { $r->cmd(qw(CONFIG SET maxmemory 0)) }, 'OOM', 0);
    $r->stop;
}

done_testing();
