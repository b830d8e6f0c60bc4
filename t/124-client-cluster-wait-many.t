# Review R4 findings 2, 3: (1) dq_client_set_wait WAITs on every master the client has a
# connection to, not the ones this call wrote to; (2) dq_defer_many with a
# node killed -9 reports DQ_EREDIS for the task another node stored.
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
my (%on, @q);
for my $i (1 .. 300) {
    my $p = $c->owner("rq$i")->port;
    next if $on{$p};
    $on{$p} = "rq$i"; push @q, "rq$i";
    last if @q == 3;
}
my ($qa, $qb, $qc) = @q;
my $addr = $c->address;
$c->wait_replicas_online(30) or die 'replicas never online';
sub waiting {
    my ($q) = @_;
    my (undef, $out) = DQTest::capture($cli, '-r', $addr, 'stats', $q);
    return $out =~ /^waiting (\d+)/m ? $1 : "?($out)";
}
sub run_probe {
    my ($mode, $between) = @_;
    my $pid = open2(my $out, my $in, $probe, $mode, $addr, $qa, $qb);
    my @lines;
    while (my $l = <$out>) { push @lines, $l; last if $l =~ /^READY/ }
    $between->();
    print $in "go\n"; close $in;
    push @lines, <$out>;
    waitpid $pid, 0;
    diag join '', @lines;
    return join '', @lines;
}

# (1) WAIT: warm-up enqueue to qb (its master B), then B's replica dies;
# the next enqueue goes to qa on master A whose replica is fine.
my $B = $c->owner($qb);
my $rb = $c->replica_of($B);
my $before;
my $o = run_probe('wait', sub { $before = waiting($qa); $c->kill_node($rb); sleep 0.2 });
like($o, qr/^warm queue $qb rc 0/m, 'warm-up to qb stored and replicated');
my $after = waiting($qa);
is($after, $before + 1, "the task for $qa is stored on A");
like($o, qr/^main queue $qa rc 0/m,
     "dq_defer to $qa (master A, replica up) succeeds: only A was written to")
    or diag "A's replica is up; the failure names B";

# (2) dq_defer_many [qa, qb] with qb's master B killed -9 after warm-up
$c->revive($rb);
$c->wait_ok(30);
$o = run_probe('many', sub { $before = waiting($qa); $c->kill_node($B); sleep 0.2 });
$after = waiting($qa);
is($after, $before + 1, "the batch's task for $qa IS stored on A");
like($o, qr/status0 0 /, "... and its status says so (DQ_OK)");
done_testing;
