# One call per cycle (issue 12): a child's finished tasks ride its next
# claim as one dq_cmd_cycle. The two ways such a call goes wrong:
#
# 1. Its reply is lost (a proxy drops it and closes the connection): the
#    cycle ran in Redis (acked A, leased B under a fresh claim id) but the
#    child never learns it. The ack must be said again (Redis refuses it:
#    already landed, not counted twice) and the claim given back
#    (release_claim): B runs once, uncharged, long before its lease.
# 2. The child is killed (SIGKILL) after sending a cycle and before its
#    reply (Redis asleep meanwhile): the master's table has A "finished
#    OK" and the claim "in flight"; when Redis wakes it runs the cycle, then
#    the master's ack of A (refused: settled) and release_claim (B back,
#    uncharged).
#
# Concurrency 1 and claim size 1 make the cycle deterministic: A is the
# only task held; its completion frees the one slot, and the next claim
# carries A's ack.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQProxy;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();

# ------------------------------------------------ 1. the reply is lost
{
    my $r = DQTest::Redis->start();
    my $rec = "$dir/lost.rec";
    my $mark = "$dir/dropped";
    my $a = DQWorker::defer($r, 'ops.span', $rec, 300);
    my $b = DQWorker::defer($r, 'ops.run', $rec);
    my $c = DQWorker::defer($r, 'ops.run', $rec);
    my $proxy = DQProxy::start($r->port,
        request => sub {
            my ($buf, $st) = @_;
            # the call that carries A's ack: the cycle after A finished
            # (once: the ack sent again after it carries A's id too)
            $st->{cycle} = 1 if !-e $mark && $buf =~ /EVALSHA/
                                && index($buf, $a) >= 0;
        },
        reply => sub {
            my ($buf, $st) = @_;
            return 1 unless $st->{cycle} && !-e $mark;
            open(my $f, '>', $mark) or die; close $f;
            return 0;                  # dropped, connection closed
        });
    # start_worker wants something with ->address: the proxy's
    my $via = bless { a => "127.0.0.1:$proxy->{port}" }, 'DQ130Addr';
    my $w = DQWorker::start_worker($via, $dir,
        name => 'lost', libs => [$lib],
        args => [qw(--concurrency 1 --claim-size 1 --threads 1 --lease 20s)]);
    my $t0 = time;
    my @R = DQWorker::wait_lines($rec, 'R', 2, 15);
    my $took = time - $t0;
    ok(-e $mark, 'the reply of the cycle carrying the ack was dropped');
    my @E = DQWorker::lines($rec, 'E');
    is(scalar(@E), 1, 'A ran once');
    is(scalar(@R), 2, 'B and C ran');
    is(join(' ', sort map { $_->[0] } @R), join(' ', sort $b, $c),
       'each of them once');
    my ($rb) = grep { $_->[0] eq $b } @R;
    is($rb->[4], 0, 'B (leased by the lost cycle) was not charged')
        if $rb;
    cmp_ok($took, '<', 10, 'long before its 20 s lease');
    my $log = DQWorker::log_text($w);
    like($log, qr/ack of 1 tasks not delivered/,
         'the ack of the lost cycle was kept');
    like($log, qr/lease lost: ack of task \Q$a\E .*sent again and refused/,
         'sent again and refused: it had landed');
    like($log, qr/gave back 1 tasks of claim \S+ \(queue default\) whose reply was lost/,
         'the claim of the lost cycle was given back');
    DQTest::wait_for(sub { (DQWorker::stats($r)->{done} // 0) >= 3 }, 5);
    my $s = DQWorker::stats($r);
    is($s->{done}, 3, 'done 3: the ack was not counted twice');
    is($s->{reclaimed} // 0, 0, 'no lease expired');
    is(DQWorker::zcard($r, 'default', 'leases'), 0, 'no lease left');
    is($r->cmd('HLEN', DQWorker::key('default', 'tasks')), 0,
       'no task left');
    diag(DQWorker::log_text($w)) if $ENV{DQ130_DEBUG};
    is(DQWorker::stop_worker($w), 0, 'worker exits 0');
    DQProxy::stop($proxy);
}

# ------------------------- 2. the child dies with the cycle in flight
{
    my $r = DQTest::Redis->start(args => [qw(--enable-debug-command local)]);
    my $rec = "$dir/kill.rec";
    my $a = DQWorker::defer($r, '-q', 'c', 'ops.span', $rec, 600);
    my $b = DQWorker::defer($r, '-q', 'c', 'ops.run', $rec);
    my $w = DQWorker::start_master($r, $dir, name => 'kill', wait => 1,
                                   conf => <<"EOF");
library "$lib";
processes 1;
threads 1;
concurrency 1;
claim_size 1;
lease 20s;
queue c { retry_limit 5; min_backoff 100ms; }
EOF
    my ($kid) = DQWorker::live_children($w);
    ok(scalar(DQWorker::wait_lines($rec, 'S', 1, 10)), 'A started');
    my $t0 = time;
    # Redis asleep before A ends: its cycle (ack A, claim B) waits
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $r->port, Proto => 'tcp')
        or die "connect: $!";
    print {$s} "*3\r\n\$5\r\nDEBUG\r\n\$5\r\nSLEEP\r\n\$3\r\n1.2\r\n";
    ok(DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /task finished: queue=c id=\Q$a\E .*result=ok/ }, 5, 0.005),
       'A finished (its ack rides the next claim)');
    sleep 0.1;                         # the cycle is on the wire
    cmp_ok(time - $t0, '<', 1.0, 'while Redis sleeps');
    kill 'KILL', $kid;
    my $sleep_reply = <$s>;
    close $s;

    my @R = DQWorker::wait_lines($rec, 'R', 1, 15);
    is(scalar(@R), 1, 'B ran');
    is($R[0][0], $b, 'B it is') if @R;
    is($R[0][4], 0, 'B was not charged (the claim in flight was given back)')
        if @R;
    cmp_ok(time - $t0, '<', 15, 'long before its 20 s lease');
    is(scalar(DQWorker::lines($rec, 'E')), 1, 'A ran once');
    like(DQTest::slurp($w->{log}),
         qr/child 1 \(pid $kid\) killed by signal 9 \(Killed\), holding 2 leased tasks: 1 released at once \(never started\), 0 acked \(finished OK\), 0 buried \(failed for good\), 0 started and failed \(charged, retried after backoff\), 1 already settled/,
         'the master: the claim in flight given back, the ack already settled');
    DQTest::wait_for(sub { (DQWorker::stats($r, 'c')->{done} // 0) >= 2 }, 5);
    my $st = DQWorker::stats($r, 'c');
    is($st->{done}, 2, 'done 2: A counted once');
    is($st->{reclaimed} // 0, 0, 'no lease expired');
    DQTest::wait_for(sub { DQWorker::zcard($r, 'c', 'leases') == 0 }, 10);
    is(DQWorker::zcard($r, 'c', 'leases'), 0, 'no lease left');
    is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
}
done_testing();

package DQ130Addr;
sub address { $_[0]{a} }
