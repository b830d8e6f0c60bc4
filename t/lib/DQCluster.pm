package DQCluster;
# A local Redis Cluster for tests: 3 masters and 3 replicas
# (`redis-server --cluster-enabled yes`, `redis-cli --cluster create
# --cluster-replicas 1`) on free loopback ports whose cluster-bus ports
# (port + 10000) are free too, each in its own directory; spawned through
# DQTest (stopped by pid at exit).
#
#   my $c = DQCluster->start;  (plain => 1: no AOF; else appendonly yes,
#                              appendfsync always on every node)
#   $c->nodes                  the six DQTest::Redis objects
#   $c->owner($queue)          the master serving the queue's slot (every
#                              key of a queue carries the hash tag {queue})
#   $c->other($queue)          a master that does NOT serve it
#   $c->address                "cluster:HOST:PORT,..." of every master (the
#                              seeds the module, worker and client take)
#   $c->slot($key)             CLUSTER KEYSLOT
#   $c->id($node)              the node's cluster id (CLUSTER MYID)
#   $c->migrating($slot, $from, $to)
#                              the slot IMPORTING on $to from $from, then
#                              MIGRATING on $from to $to (the order
#                              `redis-cli --cluster reshard` sets them in);
#                              returns $slot
#   $c->stable($slot, @nodes)  CLUSTER SETSLOT $slot STABLE on each node
#   $c->while_migrating($slot, $from, $to, $code)
#                              $code run (in an eval) while the slot is
#                              MIGRATING, the slot stable after it:
#                              ($code's result, its error or '')
#   $c->freeze($slot, $from, $to)
#                              migrating(), then every key of the slot
#                              MIGRATEd to $to: a reshard stopped before
#                              its SETSLOT NODE (every script on the slot's
#                              queues answers ASK, then TRYAGAIN)
#   $c->settle($slot, $to)     CLUSTER SETSLOT $slot NODE $to on $to, then
#                              on every other master: the slot is $to's
#   $c->tryagains              TRYAGAIN answers the masters gave so far
#                              (INFO errorstats, summed)
#   $c->replica_of($master)    a node replicating that master
#   $c->wait_ok($timeout)      every live node answers cluster_state:ok and all
#                              agree on who serves every slot
#   $c->queue_in_first($k, $prefix)
#                              a queue name ($prefix followed by a number)
#                              whose slot is among the first $k slots of
#                              its master: `redis-cli --cluster reshard
#                              --cluster-slots $k` takes a master's lowest
#                              slots first, so it moves that queue
#   $c->reshard_cmd($from, $to, $k)
#                              the redis-cli command moving $k slots from
#                              master $from to master $to (spawn it to run
#                              it beside load)
#   $c->kill_node($node), $c->revive($node)
#                              kill -9 a node; start it again on its own
#                              directory (AOF, nodes.conf): it rejoins
#   $c->failover($replica, $timeout)
#                              CLUSTER FAILOVER on the replica (its master
#                              alive: the replica catches up first), then
#                              waits for it to be a master and wait_ok
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
        # the pair is free when picked, but a test running beside this
        # one may bind either port before redis-server does (seen once
        # in CI: "Failed listening on port N (cluster), aborting"): a new
        # pair then, a few times. Decided by the try's own end: its
        # redis-server exited, and its own log lines say a bind failed
        # (not the message: a PING can be answered on the client port
        # before the bus port fails; review RV8 finding 3)
        for my $try (1 .. 5) {
            my $r = eval {
                DQTest::Redis->start(dir => $d, port => _port_pair(),
                                     args => ['--cluster-enabled', 'yes',
                                              '--cluster-config-file', "$d/nodes.conf",
                                              '--cluster-node-timeout', '2000',
                                              $o{plain} ? ()
                                              : ('--appendonly', 'yes',
                                                 '--appendfsync', 'always')])
            };
            if ($r) { push @n, $r; last }
            my $e = $@;
            die $e if $try == 5 || !ref $e || !defined $e->{exited}
                      || $e->{log} !~ /bind: Address already in use/;
            unlink "$d/nodes.conf";
        }
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

# a node that answers (one may have been killed)
sub _any {
    my ($self) = @_;
    for my $n ($self->nodes) {
        next unless $n->{pid};
        my $p = eval { $n->cmd('PING') };
        return $n if defined $p && !ref $p;
        delete $n->{sock};
    }
    die "DQCluster: no node answers";
}

sub _slot_owner_port {
    my ($self, $queue) = @_;
    my $n = $self->_any;
    my $slot = $n->cmd('CLUSTER', 'KEYSLOT', "{$queue}");
    for my $r (@{ $n->cmd('CLUSTER', 'SLOTS') }) {
        return $r->[2][1] if $slot >= $r->[0] && $slot <= $r->[1];
    }
    return undef;
}

# the master the cluster names for a queue's slot; undef while no node
# names one (during a failover the node asked may list the slot nowhere)
sub owner {
    my ($self, $queue) = @_;
    my $p = $self->_slot_owner_port($queue);
    return undef unless defined $p;
    return (grep { $_->port == $p } $self->nodes)[0];
}

# owner's port, 0 while no node names one (for wait loops)
sub owner_port {
    my ($self, $queue) = @_;
    my $o = $self->owner($queue);
    return $o ? $o->port : 0;
}

sub masters {
    my ($self) = @_;
    my %m = map { $_->[2][1] => 1 } @{ $self->_any->cmd('CLUSTER', 'SLOTS') };
    return grep { $m{ $_->port } } $self->nodes;
}

sub address {
    my ($self) = @_;
    return 'cluster:' . join(',', map { $_->address } $self->masters);
}

sub slot {
    my ($self, $key) = @_;
    for my $n ($self->nodes) {
        my $s = eval { $n->cmd('CLUSTER', 'KEYSLOT', $key) };
        return $s if defined $s && !ref $s;
    }
    die "DQCluster: no node answers CLUSTER KEYSLOT";
}

sub id {
    my ($self, $node) = @_;
    return $node->cmd('CLUSTER', 'MYID');
}

sub migrating {
    my ($self, $slot, $from, $to) = @_;
    $to->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $self->id($from));
    $from->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $self->id($to));
    return $slot;
}

sub freeze {
    my ($self, $slot, $from, $to) = @_;
    $self->migrating($slot, $from, $to);
    for my $round (1 .. 1000) {
        my $keys = $from->cmd('CLUSTER', 'GETKEYSINSLOT', $slot, 100);
        return $slot unless ref $keys eq 'ARRAY' && @$keys;
        my $rep = $from->cmd('MIGRATE', '127.0.0.1', $to->port, '', 0, 5000,
                             'KEYS', @$keys);
        # an error reply (BUSYKEY, IOERR ...) would repeat for ever
        die "freeze: MIGRATE of slot $slot: $rep->{err}\n"
            if ref $rep eq 'HASH' && $rep->{err};
    }
    die "freeze: slot $slot still has keys after 1000 MIGRATE rounds\n";
}

sub settle {
    my ($self, $slot, $to) = @_;
    $_->cmd('CLUSTER', 'SETSLOT', $slot, 'NODE', $self->id($to))
        for $to, grep { $_->port != $to->port } $self->masters;
}

sub tryagains {
    my ($self) = @_;
    my $e = 0;
    for my $x ($self->masters) {
        my ($k) = ($x->cmd('INFO', 'errorstats') // '')
            =~ /errorstat_TRYAGAIN:count=(\d+)/;
        $e += $k // 0;
    }
    return $e;
}

sub stable {
    my ($self, $slot, @nodes) = @_;
    $_->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE') for @nodes;
}

sub while_migrating {
    my ($self, $slot, $from, $to, $code) = @_;
    $self->migrating($slot, $from, $to);
    my $r = eval { $code->() };
    my $err = $@;
    $self->stable($slot, $from, $to);
    return ($r, $err);
}

sub _role {
    my ($node) = @_;
    my $r = eval { $node->cmd('ROLE') };
    return ref $r eq 'ARRAY' ? $r : [];
}

sub replica_of {
    my ($self, $master) = @_;
    for my $n ($self->nodes) {
        my $r = _role($n);
        return $n if ($r->[0] // '') eq 'slave' && ($r->[2] // 0) == $master->port;
    }
    return undef;
}

# every slot's owner as "start-end:port" strings, sorted, as one node sees it
sub _slot_view {
    my ($n) = @_;
    my $r = eval { $n->cmd('CLUSTER', 'SLOTS') };
    return undef unless ref $r eq 'ARRAY';
    return join ' ', sort map { "$_->[0]-$_->[1]:$_->[2][1]" } @$r;
}

sub wait_ok {
    my ($self, $timeout) = @_;
    return DQTest::wait_for(sub {
        my %views;
        for my $x ($self->nodes) {
            next unless $x->{pid};        # killed
            my $i = eval { $x->cmd('CLUSTER', 'INFO') } // '';
            delete $x->{sock} unless $i;
            return 0 unless !ref $i && $i =~ /cluster_state:ok/;
            my $v = _slot_view($x) // return 0;
            $views{$v} = 1;
        }
        return keys %views == 1;
    }, $timeout // 30, 0.1);
}

# Every given master (default: all) has its replica linked and online.
sub wait_replicas_online {
    my ($self, $timeout, @m) = @_;
    @m = $self->masters unless @m;
    return DQTest::wait_for(sub {
        for my $x (@m) {
            return 0 unless $x->cmd('INFO', 'replication') =~ /connected_slaves:1.*state=online/s;
        }
        1 }, $timeout // 30);
}

sub queue_in_first {
    my ($self, $k, $prefix) = @_;
    my (%first, @ranges);    # master port => its lowest slot
    for my $r (@{ $self->_any->cmd('CLUSTER', 'SLOTS') }) {
        my $p = $r->[2][1];
        push @ranges, [$r->[0], $r->[1], $p];
        $first{$p} = $r->[0] if !defined $first{$p} || $r->[0] < $first{$p};
    }
    for my $i (1 .. 20000) {
        my $q = "$prefix$i";
        my $s = $self->slot("{$q}");
        my ($r) = grep { $s >= $_->[0] && $s <= $_->[1] } @ranges;
        # its master's first range holds slots first .. first + k - 1
        return $q if $r && $s - $first{ $r->[2] } < $k && $r->[0] == $first{ $r->[2] };
    }
    die "DQCluster: no queue name in the first $k slots of a master";
}

# A queue name ("p1", "p2", ...) whose shard 1 is on a master holding
# neither shard 0 nor shard 2, and that master: (name, node).
sub queue_shard1_apart {
    my ($self) = @_;
    for my $i (1 .. 2000) {
        my $n = "p$i";
        my $x = $self->owner("$n#1")->port;
        next if $self->owner($n)->port == $x || $self->owner("$n#2")->port == $x;
        return ($n, $self->owner("$n#1"));
    }
    die "DQCluster: no queue with shard 1 apart from shards 0 and 2";
}

sub reshard_cmd {
    my ($self, $from, $to, $k) = @_;
    return ('redis-cli', '--cluster', 'reshard', $to->address,
            '--cluster-from', $self->id($from), '--cluster-to', $self->id($to),
            '--cluster-slots', $k, '--cluster-yes');
}

sub failover {
    my ($self, $replica, $timeout) = @_;
    $timeout //= 30;
    my $r = $replica->cmd('CLUSTER', 'FAILOVER');
    die "CLUSTER FAILOVER: $r->{err}" if ref $r eq 'HASH';
    DQTest::wait_for(sub { (_role($replica)->[0] // '') eq 'master' }, $timeout, 0.05)
        or return 0;
    return $self->wait_ok($timeout);
}

# kill -9 a node (its data stays in its directory), and start it again
# (same port, directory, AOF and nodes.conf: it rejoins the cluster)
sub kill_node {
    my ($self, $node) = @_;
    delete $node->{sock};
    DQTest::stop_pid($node->{pid}, 'KILL');
    $node->{pid} = undef;
}

sub revive {
    my ($self, $node) = @_;
    $node->_launch;
}

# a cluster-enabled node that never joined (its CLUSTER SLOTS names no
# master, like a node after CLUSTER RESET), in $dir/lone
sub lone_node {
    my ($dir) = @_;
    mkdir "$dir/lone";
    return DQTest::Redis->start(dir => "$dir/lone", port => _port_pair(),
                                args => ['--cluster-enabled', 'yes',
                                         '--cluster-config-file', "$dir/lone/nodes.conf"]);
}

sub other {
    my ($self, $queue) = @_;
    my $p = $self->_slot_owner_port($queue);
    return (grep { $_->port != $p } $self->masters)[0];
}

1;
