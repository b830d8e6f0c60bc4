package DQCluster;
# A local Redis Cluster for tests: 3 masters and 3 replicas
# (`redis-server --cluster-enabled yes`, `redis-cli --cluster create
# --cluster-replicas 1`) on free loopback ports whose cluster-bus ports
# (port + 10000) are free too, each in its own directory; spawned through
# DQTest (stopped by pid at exit).
#
#   my $c = DQCluster->start;
#   $c->nodes                  the six DQTest::Redis objects
#   $c->owner($queue)          the master serving the queue's slot (every
#                              key of a queue carries the hash tag {queue})
#   $c->other($queue)          a master that does NOT serve it
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use IO::Socket::INET;

sub _port_pair {
    for (1 .. 200) {
        my $p = DQTest::free_port();
        next if $p > 55000;
        my $bus = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                        LocalPort => $p + 10000, ReuseAddr => 1)
            or next;
        close $bus;
        return $p;
    }
    die "DQCluster: no free port pair (port, port + 10000)";
}

sub start {
    my ($class, %o) = @_;
    DQTest::need_tool(DQTest::in_path('redis-cli'), 'redis-cli (redis-tools)');
    my $dir = $o{dir} || DQTest::tmpdir();
    my @n;
    for my $i (1 .. 6) {
        my $d = "$dir/n$i";
        mkdir $d;
        push @n, DQTest::Redis->start(dir => $d, port => _port_pair(),
                                      args => ['--cluster-enabled', 'yes',
                                               '--cluster-config-file', "$d/nodes.conf",
                                               '--cluster-node-timeout', '2000',
                                               '--appendonly', 'yes',
                                               '--appendfsync', 'always']);
    }
    my ($rc, $out, $err) = DQTest::capture('redis-cli', '--cluster', 'create',
        (map { '127.0.0.1:' . $_->port } @n), '--cluster-replicas', '1',
        '--cluster-yes');
    die "redis-cli --cluster create failed ($rc):\n$out$err" if $rc;
    my $self = bless { dir => $dir, nodes => \@n }, $class;
    DQTest::wait_for(sub {
        for my $x (@n) {
            my $i = eval { $x->cmd('CLUSTER', 'INFO') } // '';
            delete $x->{sock} unless $i;
            return 0 unless $i =~ /cluster_state:ok/ && $i =~ /cluster_known_nodes:6/;
        }
        1;
    }, 30) or die "the cluster never became ok";
    return $self;
}

sub nodes { @{ $_[0]{nodes} } }

sub _slot_owner_port {
    my ($self, $queue) = @_;
    my $n = $self->{nodes}[0];
    my $slot = $n->cmd('CLUSTER', 'KEYSLOT', "{$queue}");
    for my $r (@{ $n->cmd('CLUSTER', 'SLOTS') }) {
        return $r->[2][1] if $slot >= $r->[0] && $slot <= $r->[1];
    }
    return undef;
}

sub owner {
    my ($self, $queue) = @_;
    my $p = $self->_slot_owner_port($queue);
    return (grep { $_->port == $p } $self->nodes)[0];
}

sub masters {
    my ($self) = @_;
    my %m = map { $_->[2][1] => 1 } @{ $self->{nodes}[0]->cmd('CLUSTER', 'SLOTS') };
    return grep { $m{ $_->port } } $self->nodes;
}

sub other {
    my ($self, $queue) = @_;
    my $p = $self->_slot_owner_port($queue);
    return (grep { $_->port != $p } $self->masters)[0];
}

1;
