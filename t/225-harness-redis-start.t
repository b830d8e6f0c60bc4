# Review RV8 finding 3: the test harness's start of a redis-server
# (DQTest::Redis, t/lib/DQTest.pm) and DQCluster's retry of a node whose
# port pair another test bound first. redis-server binds its client port
# before the cluster bus port and aborts only after that: the wait used to
# connect in that window and die 10 s later with "never answered PING",
# which DQCluster did not take for a port race (4 of 8 tries in
# /tmp/rv8-busrace.pl); and a port answered by another test's server
# passed as ours.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQCluster;
use IO::Socket::INET;

sub held_pair {
    while (1) {
        my $p = DQTest::free_port();
        next if $p > 55000;
        my $bus = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                        LocalPort => $p + 10000, ReuseAddr => 1)
            or next;
        return ($p, $bus);
    }
}

my @cl = ('--cluster-enabled', 'yes', '--cluster-node-timeout', '2000');

# 1. the bus port taken: the start fails as soon as redis-server exits, and
# says why with this try's log
{
    my ($p, $bus) = held_pair();
    my $d = DQTest::tmpdir();
    my $r = eval { DQTest::Redis->start(dir => $d, port => $p,
        args => [@cl, '--cluster-config-file', "$d/nodes.conf"]) };
    my $e = $@;
    ok(!$r, 'bus port taken: no server');
    ok(ref $e && defined $e->{exited}, 'it exited, and the start says so')
        or diag("error: $e");
    like(ref $e ? $e->{log} : '', qr/\(cluster\), aborting/,
         "the error carries that try's log");
    # the same dir again, the bus port free: this try's log only
    close $bus;
    $r = eval { DQTest::Redis->start(dir => $d, port => $p,
        args => [@cl, '--cluster-config-file', "$d/nodes2.conf"]) };
    ok($r, 'the same dir and port, the bus port free: started') or diag($@);
    $r->stop if $r;
}

# 2. another server on the client port is not taken for ours
{
    my $a = DQTest::Redis->start;
    my $r = eval { DQTest::Redis->start(port => $a->port) };
    ok(!$r, "a port another server answers: no server of ours")
        or diag('pid ' . $r->pid . ' taken on port ' . $a->port);
    my $e = $@;
    ok(ref $e && defined $e->{exited}
       && $e->{log} =~ /bind: Address already in use/,
       'it exited on the bind') or diag("error: $e");
    is($a->cmd('PING'), 'PONG', 'the other server is untouched');
    $a->stop;
}

# 3. DQCluster: the first pair it picks has its bus port taken; the node
# is started on another pair and the cluster comes up
{
    my ($p, $bus) = held_pair();
    my $first = 1;
    my $real = \&DQCluster::_port_pair;
    no warnings 'redefine';
    local *DQCluster::_port_pair = sub {
        return $p if $first-- > 0;
        return $real->();
    };
    my $dir = DQTest::tmpdir();
    my $c = eval { DQCluster->start(dir => $dir, plain => 1) };
    ok($c, 'cluster started') or diag("error: $@");
    isnt(($c ? ($c->nodes)[0]->port : $p), $p, 'node 1 on another pair');
    like(DQTest::slurp("$dir/n1/redis.log"), qr/\(cluster\), aborting/,
         "node 1's first try failed on the bus port");
    close $bus;
}
done_testing();
