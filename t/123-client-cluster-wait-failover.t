# Review R4 finding 1: after a CLUSTER FAILOVER of the master a client enqueued to,
# dq_client_set_wait's WAIT still goes to the old master's open connection
# (now a replica): "WAIT cannot be used with replica instances", every
# enqueue after it fails "stored, but WAIT ... failed" although it was
# stored and replicated on the new master.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQCluster;
use IPC::Open2;

my $probe = DQTest::build_dir() . '/t/client_r4_probe';
my $cli = DQTest::bin('deferred-cli');
my $c = DQCluster->start(plain => 1);
my @m = $c->masters;
$c->wait_replicas_online(30) or die 'replicas never online';
my $qa = 'fq1';
my $A = $c->owner($qa);
my $ra = $c->replica_of($A);
my $addr = $c->address;
sub waiting {
    my (undef, $out) = DQTest::capture($cli, '-r', $addr, 'stats', $qa);
    return $out =~ /^waiting (\d+)/m ? $1 : "?($out)";
}
my $pid = open2(my $out, my $in, $probe, 'waitloop', $addr, $qa, $qa);
my $l = <$out>; diag $l; like($l, qr/^warm queue $qa rc 0 /, 'warm enqueue with WAIT 1 ok');
$l = <$out>;                    # READY
ok($c->failover($ra, 30), 'CLUSTER FAILOVER: the replica of A is master');
$c->wait_replicas_online(30, $ra)
    or diag 'the new master has no online replica';
my $before = waiting();
my @after;
for (1 .. 3) {
    print $in "go\n"; $in->flush;
    my $x = <$out>; diag $x; push @after, $x;
}
close $in; waitpid $pid, 0;
is(waiting(), $before + 3, '3 more tasks stored (on the new master)');
is(scalar(grep { /rc 0 / } @after), 3, 'and the 3 enqueues after the failover said so (DQ_OK)');
done_testing;
