#!/usr/bin/perl
# Which script calls the worker makes for the same work on one Redis, on a
# 1-master cluster and on a 3-master cluster (docs/SCALING.md, "1 master
# vs 3 masters"): N tasks of bench.noop over six queues (two per master on
# the 3-master cluster), filled on each queue's own node, drained by one
# worker master with two children given the matching address, while
# MONITOR on every master counts the EVALSHA calls by their number of keys
# (lib/dq_cmd.c: claim, and claim with acks riding it, 9 keys; an ack
# alone 8; enqueue 6). The 3-master cluster is t/lib/DQCluster.pm's (3
# replicas; cluster3_aof: appendonly yes, appendfsync always on every
# node); the others have no persistence. MONITOR slows Redis: compare the
# counts, not the time.
# Counted over the drain and the worker's stop (its last acks and
# give-backs; release_claim has 7 keys, not counted).
#
#   perl bench/cluster_calls.pl [--n 30000]
#        [standalone|cluster1|cluster3|cluster3_aof]...
# Prints one line per mode: mode done= claims= acks= tasks_per_call=
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use DQTest;
use DQCluster;
use IO::Select;
use IO::Socket::INET;
use Getopt::Long;
use Time::HiRes qw(time sleep);

my $n = 30000;
GetOptions('n=i' => \$n) or die "usage\n";
my @modes = @ARGV ? @ARGV : qw(standalone cluster1 cluster3 cluster3_aof);
my $build = $ENV{DQ_BUILD} // DQTest::root() . "/build";    # never build/san

for my $mode (@modes) {
    my $dir = DQTest::tmpdir();
    my (@q, %owner, $addr, @mon, @stop);
    if ($mode =~ /^cluster3/) {
        my $c = DQCluster->start(dir => $dir, plain => $mode ne 'cluster3_aof');
        my %k;
        for my $i (1 .. 500) {
            my $o = $c->owner("cq$i");
            next if ($k{ $o->port } // 0) >= 2;
            $k{ $o->port }++;
            push @q, "cq$i";
            $owner{"cq$i"} = $o;
            last if @q == 6;
        }
        ($addr, @mon, @stop) = ($c->address, $c->masters, $c->nodes);
    } else {
        my @args = $mode eq 'cluster1'
            ? ('--cluster-enabled', 'yes', '--cluster-config-file', "$dir/nodes.conf") : ();
        my $r = DQTest::Redis->start(dir => $dir, args => \@args);
        if ($mode eq 'cluster1') {
            $r->cmd('CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
            DQTest::wait_for(sub { ($r->cmd('CLUSTER', 'INFO') // '') =~ /cluster_state:ok/ }, 10)
                or die "the 1-node cluster never became ok\n";
        }
        @q = map { "cq$_" } 1 .. 6;
        %owner = map { $_ => $r } @q;
        $addr = ($mode eq 'cluster1' ? 'cluster:' : '') . $r->address;
        @mon = @stop = ($r);
    }
    my $per = int($n / @q);
    for my $q (@q) {
        system("$build/bench/dq-bench-enqueue", '-a', $owner{$q}->address, '-q', $q,
               '-n', $per, '-b', 1000, '-t', 60) == 0 or die "filling $q failed\n";
    }
    my @socks = map {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $_->port)
            or die "monitor: $!";
        print {$s} "MONITOR\r\n";
        $s;
    } @mon;
    my $sel = IO::Select->new(@socks);
    my %buf;
    my $w = DQTest::spawn(name => 'worker', log => "$dir/worker.log",
        cmd => ["$build/worker/deferred-worker", '-r', $addr, '--processes', 2,
                '-l', "$build/bench/libdq_bench_tasks.so", map { ('-q', $_) } @q]);
    my $done = 0;
    my ($t0, $tq) = (time, 0);
    while (time - $t0 < 120) {
        for my $s ($sel->can_read(0.1)) {
            my $got = sysread($s, my $b, 1 << 20);
            $buf{$s} .= $b if $got;
        }
        next if time - $tq < 0.5;     # ask for the counters twice a second
        $tq = time;
        $done = 0;
        $done += $owner{$_}->cmd('HGET', "dq2:{$_}:stats", 'done') // 0 for @q;
        last if $done >= $per * @q;
    }
    DQTest::stop_pid($w);
    # the rest of the MONITOR streams (they lag behind a busy Redis): until
    # quiet for 1 s
    while (my @r = $sel->can_read(1)) {
        for my $s (@r) {
            my $got = sysread($s, my $b, 1 << 20);
            if ($got) { $buf{$s} .= $b } else { $sel->remove($s) }
        }
    }
    my %calls;
    for my $s (@socks) {
        $calls{$1}++ while ($buf{$s} // '') =~ /"EVALSHA" "\w+" "(\d+)"/gi;
    }
    my ($cl, $ack) = ($calls{9} // 0, $calls{8} // 0);
    printf "%s done=%d claims=%d acks=%d tasks_per_call=%.2f\n", $mode, $done, $cl, $ack,
           $cl + $ack ? $done / ($cl + $ack) : 0;
    close $_ for @socks;
    $_->stop for @stop;
}
