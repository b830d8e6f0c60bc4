package DQSentinel;
# Redis Sentinel for tests: a primary and two replicas (all with
# appendonly yes + appendfsync always, docs/RELIABILITY.md; two, so that
# a WAIT 1 still has a replica after one failover) and three
# redis-sentinel processes (quorum 2, down-after 1 s) on free loopback
# ports, each in its own directory under the test's tmpdir. Every process
# is spawned through DQTest (stopped by pid at exit).
#
#   my $s = DQSentinel->start(master => 'dqm');
#   $s->address                 sentinel:dqm@127.0.0.1:P1,127.0.0.1:P2,...
#   $s->primary                 the DQTest::Redis the sentinels name now
#   DQSentinel::cmd($r, ...)    $r->cmd, undef on any failure (a promotion
#                               kills every client connection: the next
#                               call connects again)
#   DQSentinel::spawn_sentinel($dir, $name, $port, $quorum)   one more
#   $s->sentinel($i)            a DQTest::Redis-like handle on sentinel $i
#                               (->cmd only)
#   $s->kill_primary            kill -9 of the named primary; returns it
#   $s->wait_failover($old, $s) the sentinels name another server, which
#                               says master (ROLE); true on time
#   $s->rejoin($old)            start a killed server again on its port
#                               (its AOF back); the sentinels make it a
#                               replica; waits for its link
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use Time::HiRes qw(time sleep);

our @DURABLE = ('--appendonly', 'yes', '--appendfsync', 'always');

sub start {
    my ($class, %o) = @_;
    DQTest::need_tool(DQTest::in_path('redis-sentinel'),
                      'redis-sentinel (Debian package redis-sentinel)');
    my $dir = $o{dir} || DQTest::tmpdir();
    my $name = $o{master} || 'dqm';
    mkdir "$dir/$_" for qw(a b c);
    my $a = DQTest::Redis->start(dir => "$dir/a", args => [@DURABLE]);
    my @r = map {
        DQTest::Redis->start(dir => "$dir/$_",
                             args => [@DURABLE, '--replicaof', '127.0.0.1', $a->port])
    } qw(b c);
    my $self = bless { dir => $dir, name => $name, servers => [$a, @r],
                       sentinels => [] }, $class;
    for (@r) {
        link_up($_) or die "a replica never synced:\n" . DQTest::slurp($_->{log});
    }
    for my $i (1 .. ($o{sentinels} || 3)) {
        push @{ $self->{sentinels} },
             spawn_sentinel("$dir/s$i", $name, $a->port, 2);
    }
    # every sentinel knows the replica and the other sentinels
    my $n = @{ $self->{sentinels} } - 1;
    DQTest::wait_for(sub {
        for my $i (0 .. $#{ $self->{sentinels} }) {
            my $s = $self->sentinel($i);
            my $r = eval { $s->cmd('SENTINEL', 'replicas', $name) };
            my $o = eval { $s->cmd('SENTINEL', 'sentinels', $name) };
            return 0 unless ref $r eq 'ARRAY' && @$r == 2
                         && ref $o eq 'ARRAY' && @$o == $n;
        }
        1;
    }, 30) or die "the sentinels did not find each other and the replica";
    return $self;
}

# spawn_sentinel($dir, $name, $port, $quorum): one redis-sentinel
# watching 127.0.0.1:$port as $name; { port, pid, dir }
sub spawn_sentinel {
    my ($sd, $name, $mport, $quorum, $mhost) = @_;
    $mhost //= '127.0.0.1';     # another address: what it names, unchecked
    my $port = DQTest::free_port();
    mkdir $sd;
    open my $fh, '>', "$sd/sentinel.conf" or die "$sd: $!";
    print {$fh} <<"CONF";
port $port
bind 127.0.0.1
protected-mode no
daemonize no
dir $sd
sentinel monitor $name $mhost $mport $quorum
sentinel down-after-milliseconds $name 1000
sentinel failover-timeout $name 3000
sentinel parallel-syncs $name 1
CONF
    close $fh;
    my $pid = DQTest::spawn(name => "sentinel", log => "$sd/sentinel.log",
                            cmd => ['redis-sentinel', "$sd/sentinel.conf"]);
    DQTest::wait_port($port, 10) or die "sentinel did not start:\n"
                                        . DQTest::slurp("$sd/sentinel.log");
    return { port => $port, pid => $pid, dir => $sd };
}

sub cmd {
    my ($r, @args) = @_;
    my $v = eval { $r->cmd(@args) };
    delete $r->{sock} unless defined $v && !(ref $v eq 'HASH');
    return $v;
}

sub link_up {
    my ($r) = @_;
    return DQTest::wait_for(sub {
        (cmd($r, 'INFO', 'replication') // '') =~ /master_link_status:up/
    }, 20);
}

sub name { $_[0]{name} }

sub address {
    my ($self) = @_;
    return "sentinel:$self->{name}@"
           . join(',', map { "127.0.0.1:$_->{port}" } @{ $self->{sentinels} });
}

# a handle on sentinel $i for ->cmd (DQTest::Redis's RESP client)
sub sentinel {
    my ($self, $i) = @_;
    return bless { port => $self->{sentinels}[$i]{port} }, 'DQTest::Redis';
}

sub sentinel_pid { $_[0]{sentinels}[$_[1]]{pid} }

# the port the first sentinel that answers names
sub named_port {
    my ($self) = @_;
    for my $i (0 .. $#{ $self->{sentinels} }) {
        my $a = cmd($self->sentinel($i), 'SENTINEL', 'get-master-addr-by-name',
                    $self->{name});
        return $a->[1] if ref $a eq 'ARRAY';
    }
    return undef;
}

sub _by_port {
    my ($self, $port) = @_;
    return (grep { $_->port == ($port // -1) } @{ $self->{servers} })[0];
}

sub primary { my ($self) = @_; return $self->_by_port($self->named_port) }

sub kill_primary {
    my ($self) = @_;
    my $p = $self->primary or die "no primary named";
    DQTest::stop_pid($p->pid, 'KILL');
    $p->{pid} = undef;
    delete $p->{sock};
    return $p;
}

# every sentinel names a server other than $old, and it says master
sub wait_failover {
    my ($self, $old, $secs) = @_;
    return DQTest::wait_for(sub {
        for my $i (0 .. $#{ $self->{sentinels} }) {
            my $a = cmd($self->sentinel($i), 'SENTINEL', 'get-master-addr-by-name',
                        $self->{name});
            return 0 unless ref $a eq 'ARRAY' && $a->[1] != $old->port;
        }
        my $n = $self->primary or return 0;
        my $role = cmd($n, 'ROLE');
        ref $role eq 'ARRAY' && $role->[0] eq 'master';
    }, $secs // 30, 0.05);
}

sub rejoin {
    my ($self, $old) = @_;
    $old->{args} = [@DURABLE];       # as a primary; the sentinels demote it
    $old->_launch;
    # it is a replica, synced, and the primary sees every replica online
    my $want = @{ $self->{servers} } - 1;
    return DQTest::wait_for(sub {
        my $role = cmd($old, 'ROLE');
        my $p = $self->primary or return 0;
        my $info = cmd($p, 'INFO', 'replication') // '';
        my $online = () = $info =~ /^slave\d+:.*state=online/mg;
        ref $role eq 'ARRAY' && $role->[0] eq 'slave'
            && (cmd($old, 'INFO', 'replication') // '') =~ /master_link_status:up/
            && $online == $want;
    }, 30);
}

1;
