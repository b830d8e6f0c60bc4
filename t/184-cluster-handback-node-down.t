# The master's hand-back of a SIGKILLed child on a cluster with ONE master
# down (killed -9, not failed over yet; review R1 finding 4): held.c gave
# up at the first failed call ("say why once, leave the rest": no new
# client after it), so the leases on the HEALTHY masters were left to
# expire too (charged, run a lease later; a finished-OK entry would have
# run twice). Now each entry after a failure gets a fresh client (another
# master answers it) within the reap's 2 s budget; only the failed
# queue's own entries are left to their lease.
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
my ($qa, $qb);
for my $i (1 .. 300) { my $n = "qa$i"; if ($c->owner($n)->port != $m[0]->port) { $qa = $n; last } }
for my $i (1 .. 300) { my $n = "qb$i"; if ($c->owner($n)->port != $c->owner($qa)->port) { $qb = $n; last } }
my ($A, $B) = ($c->owner($qa), $c->owner($qb));
my $conf = "redis " . $c->address . ";\nlibrary \"$lib\";\nprocesses 1;\nthreads 2;\n"
         . "concurrency 10;\nlease 60s;\n" . join('', map { "queue $_ { }\n" } $qa, $qb);
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 0, conf => $conf);
ok(DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /commands\): cluster map from/ }, 20), 'map');
my $rec = "$dir/h.rec";
sub defer_n {
    my ($q, $n, $ms) = @_;
    return DQWorker::defer($c, '-q', $q, '--count', $n, 'ops.span', $rec, $ms);
}
# qa's 2 tasks hold both threads; qb's 6 are leased, never started
defer_n($qa, 2, 30000);
DQWorker::wait_lines($rec, 'S', 2, 20);
defer_n($qb, 6, 30000);
ok(DQTest::wait_for(sub { $B->cmd('ZCARD', "dq2:{$qb}:leases") == 6 }, 20),
   "6 tasks of $qb (on the healthy " . $B->port . ") leased, not started");
$c->kill_node($A);
diag("killed " . $A->port . " (${qa}'s master); then the child");
my $line = DQWorker::kill_child($w);
ok(defined $line, 'reaped');
diag('master: ' . ($line // '-'));
like($line, qr/: 6 released at once/,
     "the healthy master's 6 leases released at once, uncharged");
like($line, qr/2 left to their lease expiry \(/, "  the dead master's 2 left, saying why");
DQTest::stop_pid($w->{pid});
DQTest::log_clean_ok($w->{log}, 'the worker log (sanitizers)');
done_testing();
