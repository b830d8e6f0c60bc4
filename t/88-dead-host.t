# A dead host's leases come back on a quiet queue (issue 10, item 2).
#
# Two worker masters stand for two hosts. One task is enqueued and
# nothing else: the host whose child runs it is killed whole (kill -9 of
# the master and every child at once, as a power cut does), and the other
# host, idle in BLPOP since before the task existed, must take the task
# back within its lease plus a small bound, with no new traffic. Then the
# same with the holder SIGSTOPped (a zombie host): the task runs on the
# other host; when the zombie wakes, its late result is refused and
# nothing is left leased or dead.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start;
my $lease_ms = 2000;

sub conf {
    return <<"EOF";
library "$lib";
processes 2;
threads 2;
lease ${lease_ms}ms;
queue quiet { retry_limit 5; min_backoff 100ms; max_backoff 100ms; }
EOF
}

sub host_of {
    my ($pid, @hosts) = @_;
    for my $h (@hosts) {
        return $h if grep { $_ == $pid } DQWorker::children($h);
    }
    return undef;
}

sub whole_host {
    my ($h) = @_;
    return ($h->{pid}, DQWorker::live_children($h));
}

for my $case ('kill', 'stop') {
    my $rec = "$dir/$case.rec";
    my $a = DQWorker::start_master($r, $dir, name => "$case-a", wait => 2, conf => conf());
    my $b = DQWorker::start_master($r, $dir, name => "$case-b", wait => 2, conf => conf());
    sleep 0.5;    # every child has claimed once and sleeps in BLPOP

    my $id = DQWorker::defer($r, '-q', 'quiet', 'ops.span', $rec, 4000);
    my @S = DQWorker::wait_lines($rec, 'S', 1, 20);
    is(scalar(@S), 1, "$case: the task started");
    my $holder = host_of($S[0][2], $a, $b);
    ok($holder, "$case: its child belongs to one of the two hosts") or next;
    my $other = $holder == $a ? $b : $a;
    my @pids = whole_host($holder);
    my $t0 = time;
    if ($case eq 'kill') {
        kill 'KILL', @pids;          # the whole host at once
        DQTest::reaped($holder->{pid}) // sleep 0.1;
    } else {
        kill 'STOP', @pids;
    }

    # no enqueue from here on
    my @S2 = DQWorker::wait_lines($rec, 'S', 2, ($lease_ms / 1000) + 15);
    is(scalar(@S2), 2, "$case: the task started again with no new traffic");
    my $again = @S2 > 1 ? $S2[1] : undef;
    if ($again) {
        my $delay = $again->[1] / 1000 - $t0;
        ok(host_of($again->[2], $other) == $other, "$case: ... on the other host");
        cmp_ok($delay, '<', $lease_ms / 1000 + 5,
               "$case: ... within the lease plus a small bound");
        diag(sprintf("%s: taken back %.2f s after the fault (lease %.1f s)",
                     $case, $delay, $lease_ms / 1000));
    }
    my @E = DQWorker::wait_lines($rec, 'E', 1, 15);
    ok(scalar(@E) >= 1, "$case: the second run finished");
    if ($case eq 'stop') {
        kill 'CONT', @pids;        # the zombie wakes up, finishes, reports
        DQWorker::wait_lines($rec, 'E', 2, 15);
        DQTest::wait_for(sub { DQTest::slurp($holder->{log}) =~ /lease lost/ }, 15);
        like(DQTest::slurp($holder->{log}), qr/lease lost/,
             'stop: the zombie\'s late result is refused (lease lost)');
    }
    DQTest::wait_for(sub { ($r->cmd('HGET', 'dq2:{quiet}:stats', 'done') // 0) >= 1
                           && DQWorker::zcard($r, 'quiet', 'leases') == 0 }, 15);
    is(DQWorker::zcard($r, 'quiet', 'leases'), 0, "$case: no lease left");
    is(DQWorker::zcard($r, 'quiet', 'eta'), 0, "$case: nothing waiting");
    is(scalar(keys %{ DQWorker::dead($r, 'quiet') }), 0, "$case: nothing dead");
    is(DQTest::stop_pid($other->{pid}), 0, "$case: the other host stops cleanly");
    DQTest::stop_pid($holder->{pid}, 'KILL') if $case eq 'stop';
    $r->cmd('FLUSHALL');
}

done_testing();
