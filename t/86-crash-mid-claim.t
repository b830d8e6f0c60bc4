# A child killed while its claim call is in flight (issue 10, item 3): the
# claim leases the task after the child is gone, and nobody would know the
# lease until it expired (then charged as a failed attempt). The master
# knows the claim id of every claim call a child has in flight (held.c)
# and gives its leases back with release_claim, uncharged, at once.
#
# How the claim is held in flight: the task is due in 1.5 s, so the idle
# child claims at that moment; Redis is put to sleep (DEBUG SLEEP 2.5)
# just before, and the child is killed with -9 while its claim waits. When
# Redis wakes it runs the claim (its bytes arrived first), then the
# master's release_claim.
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
my $r = DQTest::Redis->start(args => [qw(--enable-debug-command local)]);
my $rec = "$dir/c.rec";
my $w = DQWorker::start_master($r, $dir, name => 'mid', wait => 1, conf => <<"EOF");
library "$lib";
processes 1;
threads 1;
lease 20s;
queue c { retry_limit 5; min_backoff 100ms; }
EOF
sleep 0.3;
my ($kid) = DQWorker::live_children($w);
my $id = DQWorker::defer($r, '-q', 'c', '--countdown', 1500, 'ops.run', $rec);
my $t0 = time;
sleep 1.1;
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $r->port,
                              Proto => 'tcp') or die "connect: $!";
print {$s} "*3\r\n\$5\r\nDEBUG\r\n\$5\r\nSLEEP\r\n\$3\r\n2.5\r\n";
sleep(2.3 - (time - $t0)) if time - $t0 < 2.3;   # the claim is due at 1.5 s
kill 'KILL', $kid;
my $sleep_reply = <$s>;
close $s;

my @R = DQWorker::wait_lines($rec, 'R', 1, 15);
my $took = time - $t0;
is(scalar(@R), 1, 'the task ran');
diag(sprintf('ran %.1f s after the enqueue (due at 1.5 s, Redis asleep until 3.6 s, lease 20 s)', $took));
cmp_ok($took, '<', 15, 'long before its 20 s lease would have expired');
is($R[0][4], 0, 'no attempt charged (retry count 0)') if @R;
like(DQTest::slurp($w->{log}), qr/child 1 \(pid $kid\) killed by signal 9 \(Killed\), holding [1-9]\d* leased tasks: [1-9]\d* released at once/,
     'the master gave back the lease of the claim in flight');
DQTest::wait_for(sub { DQWorker::zcard($r, 'c', 'leases') == 0 }, 10);
is(DQWorker::zcard($r, 'c', 'leases'), 0, 'no lease left');
is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
done_testing();
