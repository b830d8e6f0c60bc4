# Many worker hosts (issue 15, item 4): three "hosts", each a network
# namespace of its own with a veth link to Redis (t/lib/DQHosts.pm) and one
# worker master (2 children) inside; the queues are shared.
#   - Redis CPU per task with 1 host and with 3 (printed for
#     docs/SCALING.md), commands per host (MONITOR, by source address)
#   - max_concurrent 3 holds across the fleet (12 free slots)
#   - rate 20/s (bucket 5) holds across the fleet: no 1 s window holds
#     more than bucket + rate starts
#   - a whole host killed (SIGKILL to every process in its namespace)
#     while its task runs on an otherwise quiet queue: the task runs on
#     another host within a lease (+ a bound), nothing lost
#   - the same while every host is busy (12 tasks of 1.5 s, 12 slots):
#     every task it held starts again elsewhere within a lease (+ a
#     bound), none lost
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQHosts;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time sleep);

DQHosts::need_netns();
my $lib = DQWorker::ops_lib(1, 1);
my $dir = DQTest::tmpdir();
my @h = DQHosts::create(3);
my $r = DQTest::Redis->start(args => ['--appendonly', 'yes', '--appendfsync', 'always',
                                      DQHosts::bind_args(@h)]);
my $lease_ms = 2000;
my $N = 1000;

sub conf {
    my ($h) = @_;
    return "redis " . $h->gw . ":" . $r->port . ";\n" . <<"EOF";
library "$lib";
processes 2;
threads 2;
concurrency 2;      # no prefetch: a task taken back starts when claimed
lease ${lease_ms}ms;
queue plain { retry_limit 20; }
queue conc { max_concurrent 3; }
queue rated { rate 20/s; bucket_size 5; }
queue quiet { retry_limit 5; min_backoff 100ms; max_backoff 100ms; }
queue busy { retry_limit 5; min_backoff 100ms; max_backoff 100ms; }
EOF
}

my @m;    # the master of each host
sub start_host {
    my ($i) = @_;
    $m[$i] = DQWorker::start_master(undef, $dir, name => "host$i-" . time, wait => 2, fast => 1,
                                    prefix => $h[$i]->prefix, conf => conf($h[$i]));
    return $m[$i];
}
sub host_of_pid {
    my ($pid) = @_;
    for my $i (0 .. $#h) { return $i if grep { $_ == $pid } $h[$i]->pids }
    return undef;
}
sub cpu {
    my $i = $r->cmd('INFO', 'cpu');
    my ($s) = $i =~ /used_cpu_sys:([\d.]+)/;
    my ($u) = $i =~ /used_cpu_user:([\d.]+)/;
    return $s + $u;
}
sub defer_count {
    my ($q, $n, @args) = @_;
    my ($rc, $out, $err) = DQWorker::cli($r, 'defer', '-q', $q, '--count', $n, @args);
    die "defer: $err" if $rc;
    return split ' ', $out;
}

# ---- Redis CPU per task: 1 host, then 3 hosts
my %cpu;
for my $hosts (1, 3) {
    start_host($_) for ($hosts == 1 ? (0) : (1, 2));
    sleep 0.5;
    my $rec = "$dir/plain$hosts.rec";
    my $c0 = cpu();
    defer_count('plain', $N, 'ops.run', $rec);
    my @R = DQWorker::wait_lines($rec, 'R', $N, 60);
    my $c1 = cpu();
    is(scalar(@R), $N, "$hosts host(s): all $N tasks ran");
    $cpu{$hosts} = ($c1 - $c0) / $N * 1e6;
    my %by; $by{ host_of_pid($_->[2]) // '?' }++ for @R;
    diag(sprintf("%d host(s): Redis CPU %.0f us per task (enqueue + claim + ack), runs per host: %s",
                 $hosts, $cpu{$hosts}, join(' ', map { "$_=$by{$_}" } sort keys %by)));
    if ($hosts == 3) {
        ok(scalar(grep { $_ ne '?' && $by{$_} } keys %by) >= 2, 'the shared queue was served by several hosts');
    }
}
# commands per host (each host's link has its own source address), in a
# run of its own: MONITOR costs Redis CPU
{
    my $mon = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $r->port) or die;
    print {$mon} "MONITOR\r\n";
    my $ok = <$mon>;
    my $rec = "$dir/mon.rec";
    defer_count('plain', 100, 'ops.run', $rec);
    DQWorker::wait_lines($rec, 'R', 100, 60);
    sleep 0.2;
    $r->cmd('PING');                      # the last line MONITOR sends
    my ($buf, %cmds) = ('');
    my $sel = IO::Select->new($mon);
    while ($sel->can_read(1)) {
        my $n = sysread($mon, my $chunk, 1 << 20) or last;
        $buf .= $chunk;
        last if $buf =~ /\[\d+ 127\.0\.0\.1:\d+\] "PING"/;
    }
    close $mon;
    for (split /\n/, $buf) {
        my ($ip, $cmd) = /\[\d+ ([\d.]+):\d+\] "(\w+)"/ or next;
        $cmds{$ip}{uc $cmd}++;
    }
    for my $x (@h) {
        my $c = $cmds{ $x->ip } || {};
        diag(sprintf("100 tasks, host %s (%s): %s", $x->name, $x->ip,
                     join(' ', map { "$_=$c->{$_}" } sort keys %$c) || 'no commands'));
    }
    ok((grep { $cmds{ $_->ip } } @h) == 3, 'every host talked to Redis over its own link');
}
{
    my $c0 = cpu();
    sleep 2;
    diag(sprintf("idle, 3 hosts (6 children): Redis CPU %.1f ms per second", (cpu() - $c0) / 2 * 1000));
}

# ---- max_concurrent 3 across the fleet
{
    my $rec = "$dir/conc.rec";
    defer_count('conc', 30, 'ops.span', $rec, 200);
    my @E = DQWorker::wait_lines($rec, 'E', 30, 60);
    my @S = DQWorker::lines($rec, 'S');
    is(scalar(@E), 30, 'max_concurrent: all 30 ran');
    my $max = DQWorker::spans_at_once($rec);
    my %hosts; $hosts{ host_of_pid($_->[2]) // '?' }++ for @S;
    diag("max_concurrent 3: at most $max running at once, over hosts "
         . join(' ', map { "$_=$hosts{$_}" } sort keys %hosts));
    ok($max <= 3, "max_concurrent 3 held across 3 hosts (max seen $max)");
}

# ---- rate 20/s, bucket 5, across the fleet
{
    my $rec = "$dir/rated.rec";
    defer_count('rated', 100, 'ops.span', $rec, 0);
    my @S = DQWorker::wait_lines($rec, 'S', 100, 60);
    is(scalar(@S), 100, 'rate: all 100 ran');
    my @t = sort { $a <=> $b } map { $_->[1] } @S;
    my ($j, $max) = (0, 0);
    for my $i (0 .. $#t) {
        $j++ while $t[$i] - $t[$j] >= 1000;
        $max = $i - $j + 1 if $i - $j + 1 > $max;
    }
    my %hosts; $hosts{ host_of_pid($_->[2]) // '?' }++ for @S;
    my $span = ($t[-1] - $t[0]) / 1000;
    diag(sprintf("rate 20/s: %.1f tasks/s over %.1f s (first 5 are the bucket), at most %d in any 1 s; hosts %s",
                 95 / ($span || 1), $span, $max, join(' ', map { "$_=$hosts{$_}" } sort keys %hosts)));
    ok($max <= 25, "rate held across 3 hosts: at most bucket + rate = 25 starts in any 1 s (saw $max)");
}

# ---- a whole host killed: quiet, then busy
sub kill_host {
    my ($i) = @_;
    my @p = $h[$i]->kill_all;
    DQTest::stop_pid($m[$i]{pid}, 'KILL');
    $m[$i]{killed} = 1;
    ok(!$h[$i]->pids, "host $i: every process gone (" . scalar(@p) . " killed)");
}
{
    my $rec = "$dir/quiet.rec";
    my ($id) = defer_count('quiet', 1, 'ops.span', $rec, 3000);
    my @S = DQWorker::wait_lines($rec, 'S', 1, 20);
    my $holder = host_of_pid($S[0][2]);
    ok(defined $holder, "quiet: the task runs on host " . ($holder // '?'));
    kill_host($holder);
    my $t0 = time;
    @S = DQWorker::wait_lines($rec, 'S', 2, 20);
    my $back = time - $t0;
    my $where = @S > 1 ? host_of_pid($S[1][2]) : undef;
    ok(@S > 1 && defined $where && $where != $holder, "quiet: it started again on another host ($where)");
    diag(sprintf("quiet: back %.2f s after the kill (lease %.1f s)", $back, $lease_ms / 1000));
    ok($back <= $lease_ms / 1000 + 3, "quiet: within a lease (+3 s)");
    my @E = DQWorker::wait_lines($rec, 'E', 1, 20);
    is(scalar(@E), 1, 'quiet: it finished, nothing lost');
    start_host($holder);
}
{
    my $rec = "$dir/busy.rec";
    # as many 1.5 s tasks as the fleet has slots (3 x 2 children x 2):
    # every host busy, no backlog for a task taken back to wait behind
    my @ids = defer_count('busy', 12, 'ops.span', $rec, 1500);
    DQTest::wait_for(sub { DQWorker::lines($rec, 'S') >= 12 }, 10, 0.02);
    # a host that has tasks running now
    my %ended = map { $_->[0] => 1 } DQWorker::lines($rec, 'E');
    my %running;
    for (DQWorker::lines($rec, 'S')) {
        my $x = host_of_pid($_->[2]);
        push @{ $running{$x} }, $_->[0] if defined $x && !$ended{ $_->[0] };
    }
    my ($victim) = sort { @{ $running{$b} } <=> @{ $running{$a} } } keys %running;
    my @held = @{ $running{$victim} };
    kill_host($victim);
    my $t0 = time * 1000;
    my @E = DQWorker::wait_lines($rec, 'E', 12, 60);
    my %done = map { $_->[0] => 1 } @E;
    is(scalar(grep { !$done{$_} } @ids), 0, 'busy: all 12 finished: none lost (' . scalar(@held)
       . " were running on the killed host $victim)");
    my $worst = 0;
    for my $id (@held) {
        my ($again) = grep { $_->[0] eq $id && $_->[1] >= $t0 } DQWorker::lines($rec, 'S');
        my $d = $again ? ($again->[1] - $t0) / 1000 : 999;
        $worst = $d if $d > $worst;
    }
    diag(sprintf("busy: the killed host's %d running tasks back within %.2f s (lease %.1f s)",
                 scalar(@held), $worst, $lease_ms / 1000));
    ok($worst <= $lease_ms / 1000 + 3, 'busy: its tasks came back within a lease (+3 s)');
}
is(DQTest::stop_pid($_->{pid}), 0, "$_->{name} stops cleanly") for grep { !$_->{killed} } @m;
done_testing();
