# The cold tier with a real worker: tasks enqueued 40-52 s ahead go cold
# (lib/lua/cold.lua), Redis is killed (-9) and restarted from its AOF
# (appendfsync always) again and again while the worker promotes their
# buckets; then every task runs exactly once, at its ETA (the bound of
# t/30-worker-eta.t's hot tasks), none is lost or doubled at any restart,
# and a cold task that dies is requeued and runs again. ~50 s.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir,
    args => [qw(--appendonly yes --appendfsync always)]);
my $w = DQWorker::start_worker($r, $dir);
my $q = 'default';

sub rnow { my $t = $r->cmd('TIME'); return $t->[0] * 1000 + int($t->[1] / 1000) }

# tasks stored: hot ones plus every cold bucket's (nothing runs before
# t0 + 40 s, so this must stay N + 1 through every restart)
sub stored {
    my $n = $r->cmd('HLEN', DQWorker::key($q, 'tasks'));
    my $idx = DQWorker::key($q, 'tasks');
    $idx =~ s/tasks$/cold/;
    for my $m (@{ $r->cmd('ZRANGE', $idx, 0, -1) }) {
        $n += $r->cmd('HLEN', "$idx:$m");
    }
    return $n;
}

my $N = 100;
my $t0 = rnow();
my $rec = "$dir/cold";
my %eta;
for my $i (1 .. $N) {
    my $e = $t0 + 40000 + int(($i - 1) * 12000 / $N);
    my $id = DQWorker::defer($r, '--eta', $e, 'record', $rec, $i);
    $eta{$id} = $e;
}
my $frec = "$dir/fail";
my $fid = DQWorker::defer($r, '--eta', $t0 + 41000, '--retry-limit', 0,
                          'fail_then_ok', $frec, 1);
# (a very slow enqueue may see the first window promoted already: 20 s
# before it starts)
my $sk = DQWorker::key($q, 'stats');
my ($st, $pr) = map { $_ // 0 } @{ $r->cmd('HMGET', $sk, 'cold', 'promoted') };
is($st + $pr, $N + 1, "all $N + 1 tasks went cold (stats cold $st, promoted $pr)");
is(DQWorker::zcard($r, $q, 'eta'), $pr, 'none in the eta set but promoted ones');
is(DQWorker::stats($r)->{waiting}, $N + 1, 'deferred-cli stats: all waiting');
my (undef, $lst) = DQWorker::cli($r, 'list', $q, '--limit', 1000);
my ($lc) = $lst =~ /and (\d+) delayed in the cold tier/;
my @hot = grep { /^\S{22}\s/ } split /\n/, $lst;
is(($lc // 0) + @hot, $N + 1,
   'deferred-cli list: the hot ones listed, the cold ones counted');
my ($first) = sort { $eta{$a} <=> $eta{$b} } keys %eta;
my (undef, $shw) = DQWorker::cli($r, 'show', $q, $first);
like($shw, qr/^state\s+delayed$/m, 'deferred-cli show finds a cold task');
like($shw, qr/^eta_ms\s+$eta{$first}\b/m, '... with its ETA');
diag(sprintf 'enqueued in %.1f s', (rnow() - $t0) / 1000);

# kill -9 and restart from the AOF every 1-2.5 s until t0 + 29 s: the
# buckets of both windows are promoted in between (at window start - 20 s)
my ($kills, $bad) = (0, 0);
srand($$);
while (rnow() < $t0 + 29000) {
    sleep(1 + rand(1.5));
    DQTest::stop_pid($r->pid, 'KILL', 5);
    $r->_launch;
    $kills++;
    my $n = stored();
    if ($n != $N + 1) { $bad++; diag("after restart $kills: $n tasks stored") }
}
is($bad, 0, "after each of $kills restarts from the AOF: all "
            . ($N + 1) . ' tasks stored once (hot + cold)');
my $promoted = $r->cmd('HGET', DQWorker::key($q, 'stats'), 'promoted') // 0;
diag("promoted before the ETAs: $promoted");

my @rec = DQWorker::wait_records($rec, $N, 40);
is(scalar @rec, $N, "all $N ran");
my (%seen, @late);
for my $x (@rec) {
    $seen{ $x->{id} }++;
    push @late, $x->{ms} - $eta{ $x->{id} };
}
is(scalar(grep { $seen{$_} != 1 } keys %seen), 0, 'each exactly once');
is(scalar(grep { !exists $eta{$_} } keys %seen), 0, 'only ours');
@late = sort { $a <=> $b } @late;
diag(sprintf 'lateness ms: min %d p50 %d max %d', $late[0],
     $late[$#late / 2], $late[-1]);
is(scalar(grep { $_ < 0 } @late), 0, 'none ran before its ETA');
is(scalar(grep { $_ >= 1000 } @late), 0, 'every one within 1 s of its ETA')
    or diag('late: ' . join(' ', map { "$_->{id}:" . ($_->{ms} - $eta{ $_->{id} }) }
                                grep { $_->{ms} - $eta{ $_->{id} } >= 1000 } @rec));
is(scalar(grep { $rec[$_]{eta} != $eta{ $rec[$_]{id} } } 0 .. $#rec), 0,
   'each saw its exact ETA');

ok(DQTest::wait_for(sub { exists DQWorker::dead($r)->{$fid} }, 20),
   'the failing cold task died (retry limit 0)');
my ($rc, $out, $err) = DQWorker::cli($r, 'retry', $q, $fid);
is($rc, 0, 'requeued') or diag($err);
ok(DQTest::wait_for(sub { scalar(DQWorker::records($frec)) == 2 }, 10),
   'and ran again');
is($r->cmd('HGET', DQWorker::key($q, 'stats'), 'cold'), 0, 'cold 0');
my $idx = DQWorker::key($q, 'cold');
is($r->cmd('EXISTS', $idx), 0, 'no cold bucket left');

ok(DQWorker::alive($w), 'worker alive');
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
log_clean_ok($w->{log}, 'worker log');
done_testing();
