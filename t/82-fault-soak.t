# Fault soak (issue 10): HTTP enqueues through nginx + the module while,
# in turn, a worker child is killed with -9, a child is SIGSTOPped past its
# lease and resumed (a zombie), a whole worker master is killed with -9
# with its children (and a new one started), Redis is killed with -9 and
# restarted from its AOF (appendonly yes, appendfsync always), and nginx
# is reloaded. Afterwards every acknowledged (201) task has run, none is
# dead, nothing is left leased or waiting; duplicates (a task run twice,
# allowed: at-least-once) and failed requests are counted and printed.
#
# Short form here (DQ_SOAK_S seconds of faults, default 30); the long form
# is `./build.sh soak [SECONDS]`. Uses the normal (non-sanitizer) build for
# the worker when present (DQWorker::fast_bin): the load, not ASan, is the
# point.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQNginx;
use POSIX ();
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
my $S = $ENV{DQ_SOAK_S} || 30;
my $lib = DQWorker::ops_lib(1, 1);
my $dir = DQTest::tmpdir();
my $rec = "$dir/soak.rec";
my $acks = "$dir/acks";

my $r = DQTest::Redis->start(dir => $dir,
    args => ['--appendonly', 'yes', '--appendfsync', 'always']);
my $n = DQNginx->start(redis => $r, http => q{
    deferred_redis %%REDIS%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
    }
});

my $conf = <<"EOF";
library "$lib";
processes 2;
threads 4;
lease 2s;
queue soak { retry_limit 50; min_backoff 100ms; max_backoff 1s; }
EOF
my $wn = 0;
my @masters = map { DQWorker::start_master($r, $dir, name => 'm' . ++$wn, wait => 2,
                                        fast => 1, conf => $conf) } 1 .. 2;

# ---- the load: one request per connection, as fast as one process goes
# with a short pause; every answer recorded ("A id" or "F status")
my $load = fork // die "fork: $!";
if ($load == 0) {
    my $stop = 0;
    $SIG{TERM} = sub { $stop = 1 };
    my $i = 0;
    open my $fh, '>>', $acks or POSIX::_exit(1);
    $fh->autoflush(1);
    while (!$stop) {
        $i++;
        my $res = eval { $n->request('POST', '/_ah/queue/deferred',
            json => qq({"func":"ops.span","queue":"soak","args":["$rec",20]})) };
        my $st = $res ? $res->{status} : 0;
        my ($id) = $st == 201 ? ($res->{body} // '') =~ /"id":"([^"]+)"/ : ();
        print {$fh} $id ? "A $id\n" : "F $st\n";
        sleep 0.004;
    }
    POSIX::_exit(0);
}

# ---- the faults, one a second in turn
my %count;
my @stopped;                        # [pid, resume_at]
my $t0 = time;
my $k = 0;
while (time - $t0 < $S) {
    sleep 1;
    for (grep { $_->[1] <= time } @stopped) { kill 'CONT', $_->[0] }
    @stopped = grep { $_->[1] > time } @stopped;
    my $fault = (qw(child zombie master redis nginx))[$k++ % 5];
    if ($fault eq 'child') {
        my @c = map { DQWorker::live_children($_) } @masters;
        kill 'KILL', $c[ int rand @c ] if @c;
    } elsif ($fault eq 'zombie') {
        my @c = map { DQWorker::live_children($_) } @masters;
        if (@c) {
            my $p = $c[ int rand @c ];
            kill 'STOP', $p;
            push @stopped, [$p, time + 3];      # past its 2 s lease
        }
    } elsif ($fault eq 'master') {
        my $m = shift @masters;
        my @pids = ($m->{pid}, DQWorker::live_children($m));
        kill 'KILL', @pids;                     # the whole host at once
        DQTest::stop_pid($m->{pid}, 'KILL', 5);
        push @masters, DQWorker::start_master($r, $dir, name => 'm' . ++$wn, wait => 2,
                                           fast => 1, conf => $conf);
    } elsif ($fault eq 'redis') {
        DQTest::stop_pid($r->pid, 'KILL', 5);   # no shutdown, no final fsync
        $r->{pid} = undef;
        $r->_launch;                            # from the AOF
    } else {
        $n->reload;
    }
    $count{$fault}++;
}
kill 'CONT', $_->[0] for @stopped;
kill 'TERM', $load;
waitpid($load, 0);
my $load_s = time - $t0;

# ---- every acknowledged task runs
my (%acked, $failed, %fail_by);
for (split /\n/, DQTest::slurp($acks)) {
    my ($k2, $v) = split / /;
    if ($k2 eq 'A') { $acked{$v} = 1 } else { $failed++; $fail_by{$v}++ }
}
$failed //= 0;
my %ends;
DQTest::wait_for(sub {
    %ends = ();
    $ends{ $_->[0] }++ for DQWorker::lines($rec, 'E');
    !grep { !$ends{$_} } keys %acked;
}, 90, 0.2);
DQTest::wait_for(sub { DQWorker::zcard($r, 'soak', 'leases') == 0
                       && DQWorker::zcard($r, 'soak', 'eta') == 0 }, 30, 0.2);
my @lost = grep { !$ends{$_} } keys %acked;
my $dups = grep { $_ > 1 } values %ends;
my @E = DQWorker::lines($rec, 'E');
my $charged = grep { ($_->[4] // 0) > 0 } @E;
# an attempt charged to a run that never started: retries beyond the
# earlier starts of that task (a zombie's prefetched tasks whose leases
# expired are the only expected case: nobody can tell they never started)
my (%starts, %maxr);
$starts{ $_->[0] }++ for DQWorker::lines($rec, 'S');
for (@E) { $maxr{ $_->[0] } = $_->[4] if ($_->[4] // 0) > ($maxr{ $_->[0] } // 0) }
my $unstarted = grep { $maxr{$_} > ($starts{$_} // 0) - 1 } keys %maxr;
my $extra = grep { !$acked{$_} } keys %ends;
my $dead = DQWorker::dead($r, "soak");
if ($ENV{DQ_SOAK_KEEP}) { system("cp", "-r", $dir, $ENV{DQ_SOAK_KEEP}) }

diag(sprintf('fault soak: %.0f s of faults (%s), %d requests (%.0f/s), %d acknowledged (201), '
             . '%d failed (%s); %d runs: %d lost, %d run twice or more, %d runs with an attempt '
             . 'charged (%d tasks charged more than their earlier starts), %d stored though '
             . 'not acknowledged (ran), %d dead',
             $load_s, join(' ', map { "$_ x$count{$_}" } sort keys %count),
             scalar(keys %acked) + $failed, (scalar(keys %acked) + $failed) / $load_s,
             scalar(keys %acked), $failed,
             join(' ', map { "$_=$fail_by{$_}" } sort keys %fail_by) || 'none',
             scalar(@E), scalar(@lost), $dups, $charged, $unstarted, $extra,
             scalar(keys %$dead)));
ok(scalar(keys %acked) > 100, 'the load was acknowledged throughout');
is(scalar(@lost), 0, 'every acknowledged task ran') or diag("lost: @lost[0 .. ($#lost > 9 ? 9 : $#lost)]");
is(scalar(keys %$dead), 0, 'no task is dead');
is(DQWorker::zcard($r, 'soak', 'leases'), 0, 'no lease left');
is(DQWorker::zcard($r, 'soak', 'eta'), 0, 'nothing left waiting');
ok($count{$_}, "fault $_ happened") for qw(child zombie master redis nginx);

for my $m (@masters) {
    is(DQTest::stop_pid($m->{pid}, 'TERM', 20), 0, "master $m->{name} stops cleanly");
}
$n->stop;
done_testing();
