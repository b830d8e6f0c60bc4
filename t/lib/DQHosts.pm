package DQHosts;
# Worker "hosts" for tests: each host is a network namespace of its own
# with a veth pair to the test's (root) namespace, so its processes reach
# Redis over a real link, by an address of their own, and can be killed as
# a whole (every pid `ip netns pids` lists), as a power cut does.
#
#   DQHosts::need_netns()       skips the test unless it can create
#                               namespaces (root, CAP_NET_ADMIN, `ip`);
#                               under CI=true / DQ_STRICT that is a failure
#   my @h = DQHosts::create(3)  three hosts
#   $h->gw                      the root-side address of its link (bind
#                               Redis there: DQHosts::bind_args(@h))
#   $h->ip                      its own address inside the namespace
#   $h->prefix                  ['ip', 'netns', 'exec', NAME]: run in it
#   $h->pids                    every process in the namespace
#   $h->kill_all                SIGKILL to all of them at once
#
# Names: namespace dq<pid>h<i>, veth dq<pid>h<i>a (root side) and
# dq<pid>h<i>b (inside); addresses 10.<pid/256%256>.<pid%256>.<4i+1>/30
# (root side) and .<4i+2> (inside): nothing outside namespaces this test
# created. Every namespace and veth made is deleted by name in an END
# block, whatever the test's outcome (deleting a namespace deletes its
# veth end and with it the pair).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use Test::More;

my @made;       # namespace names, veth names

sub _run { return system(@_) == 0 }

sub can_netns {
    return (0, 'not root') if $> != 0;
    return (0, '`ip` (iproute2) not found') unless DQTest::in_path('ip');
    my $probe = "dq$$" . 'probe';
    my $ok = _run("ip netns add $probe 2>/dev/null");
    _run("ip netns del $probe 2>/dev/null") if $ok;
    return (0, 'cannot create a network namespace (no CAP_NET_ADMIN?)') unless $ok;
    return (1, '');
}

sub need_netns {
    my ($ok, $why) = can_netns();
    return 1 if $ok;
    # a failure under CI=true / DQ_STRICT (CI runs as root), as need_tool
    die "network namespaces not available: $why (a failure under "
        . "DQ_STRICT=1 / CI=true)\n" if DQTest::strict();
    plan skip_all => "network namespaces: $why";
}

sub create {
    my ($n) = @_;
    # a test stopped by a signal (prove's timeout, ^C) still runs END and
    # deletes what it made
    $SIG{$_} = sub { exit 128 + 15 } for grep { !$SIG{$_} } qw(INT TERM HUP);
    my ($a, $b) = (($$ >> 8) % 256, $$ % 256);
    my @h;
    for my $i (0 .. $n - 1) {
        my $ns = "dq$$" . "h$i";
        my ($va, $vb) = ("${ns}a", "${ns}b");
        my ($gw, $ip) = ("10.$a.$b." . (4 * $i + 1), "10.$a.$b." . (4 * $i + 2));
        push @made, [$ns, $va];
        for my $cmd ("ip netns add $ns",
                     "ip link add $va type veth peer name $vb",
                     "ip link set $vb netns $ns",
                     "ip addr add $gw/30 dev $va",
                     "ip link set $va up",
                     "ip netns exec $ns ip addr add $ip/30 dev $vb",
                     "ip netns exec $ns ip link set $vb up",
                     "ip netns exec $ns ip link set lo up") {
            _run($cmd) or die "DQHosts: '$cmd' failed\n";
        }
        push @h, bless { ns => $ns, gw => $gw, ip => $ip, i => $i }, __PACKAGE__;
    }
    return @h;
}

sub name   { $_[0]{ns} }
sub gw     { $_[0]{gw} }
sub ip     { $_[0]{ip} }
sub prefix { ['ip', 'netns', 'exec', $_[0]{ns}] }

# --bind for a DQTest::Redis reachable from the test and every host
sub bind_args { return ('--bind', '127.0.0.1', map { $_->gw } @_) }

sub pids {
    my ($self) = @_;
    my $out = `ip netns pids $self->{ns} 2>/dev/null` // '';
    return grep { /^\d+$/ } split /\s+/, $out;
}

# SIGKILL every process in the namespace until none is left (a master
# killed in the same instant may have forked a child after the first
# listing; a killed process stays listed until the kernel has torn it
# down): at most 5 s. Returns every pid it killed.
sub kill_all {
    my ($self) = @_;
    my (%all, @p);
    for (1 .. 100) {
        @p = $self->pids;
        last unless @p;
        $all{$_} = 1 for @p;
        kill 'KILL', @p;
        select(undef, undef, undef, 0.05);
    }
    return keys %all;
}

END {
    my $status = $?;
    for my $m (reverse @made) {
        my ($ns, $va) = @$m;
        if (-e "/run/netns/$ns") {
            my $out = `ip netns pids $ns 2>/dev/null` // '';
            my @p = grep { /^\d+$/ } split /\s+/, $out;
            kill 'KILL', @p if @p;
            system("ip netns del $ns 2>/dev/null");
        }
        system("ip link del $va 2>/dev/null") if -e "/sys/class/net/$va";
    }
    $? = $status;
}

1;
