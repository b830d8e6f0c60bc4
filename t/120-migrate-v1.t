# Contract v1 -> v2: a queue written and worked by the v1 scripts
# (t/data/lua-v1, as Redis ran them, on the v1 keys "dq:{q}:*") with
# waiting, delayed, named, keyed, state-carrying (a failed run) and dead
# tasks, a lease of a v1 worker that died (expired) and one of a v1 worker
# still running (live); then `deferred-cli migrate`, and a v2 worker runs
# everything: none lost, none run twice, counters kept, the live v1
# worker's ack still counts, the state carried (runs/retries), the dead
# task requeued from v2, names and keyed ids still deduplicated; running
# migrate again moves nothing; once the v1 worker is done every v1 key is
# gone.
# DQ_T_NO_MIGRATE=1 skips the migration (to watch the v2 worker miss the
# v1 queue: every "ran" check fails).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQNginx ();
use DQScripts;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $Q = 'mq';
# the v1 scripts (t/data/lua-v1) with their KEYS lists: t/lib/DQScripts.pm
my $S = DQScripts->new($r);
sub v1 { my ($s, @a) = @_; return $S->v1($Q, $s, @a) }
my $rec = "$dir/rec";
sub env1 {
    my ($id, $name) = @_;
    return DQScripts::env1($id, $Q, $name, 'record', [$rec, $id]);
}
# v1 enqueue: ARGV tomb, n, then id, env, name, eta, countdown, key window
sub enq1 {
    my ($id, %o) = @_;
    my $rep = v1('enqueue', 60000, 1, $id, env1($id, $o{name}), $o{name} // '',
                 -1, $o{countdown} // -1, $o{keyed} ? 60000 : 0);
    is($rep->[1], 0, "v1: $id enqueued");
}
# v1 claim: { now, next, cid, (id env eta retries first runs failed)* }
sub claim1 {
    my ($cid, $lease, $n) = @_;
    my $rep = v1('claim', $n, $lease, 0, 0, 1, 0, $cid, 0, 0, 0);
    my @t = @$rep[3 .. $#$rep];
    my @ids;
    while (@t) { my @x = splice(@t, 0, 7); push @ids, $x[0] }
    return @ids;
}

# ---- a v1 queue
enq1('s1');                                  # will carry state (a failed run)
enq1('dead1');                               # will be dead
enq1('x1');                                  # a dead v1 worker's lease
enq1('l1');                                  # a live v1 worker's lease
my @got = claim1('c-s1', 60000, 1);
is_deeply(\@got, ['s1'], 'v1: s1 claimed');
is(v1('retry', 's1', 'c-s1', 0, 'boom once', '1'), 1, 'v1: s1 failed once, retried');
@got = claim1('c-dead', 60000, 1);
is_deeply(\@got, ['dead1'], 'v1: dead1 claimed');
is(v1('bury', 'dead1', 'c-dead', 'fatal', 0, 0, 60000, '', '1'), 1, 'v1: dead1 buried');
@got = claim1('c-x1', 300, 1);
is_deeply(\@got, ['x1'], 'v1: x1 claimed with a 300 ms lease (its worker dies)');
@got = claim1('c-l1', 600000, 1);
is_deeply(\@got, ['l1'], 'v1: l1 claimed by a live v1 worker (lease 10 min)');
enq1('w1');
enq1('w2');
enq1('n1', name => 'nm1');
enq1('k1', keyed => 1);
enq1('d1', countdown => 2500);
my $t_delayed = time + 2.5;
sleep 0.4;                                   # x1's lease expires
my %before = @{ $r->cmd('HGETALL', "dq:{$Q}:stats") };
is($before{enqueued}, 9, 'v1 counted 9 enqueued');

my $st = DQWorker::stats($r, $Q);
is($st->{v1_left}, 9, 'stats: the 9 tasks still in contract v1 (v1_left)');
# ---- migrate
unless ($ENV{DQ_T_NO_MIGRATE}) {
    my ($rc, $out, $err) = DQWorker::cli($r, 'migrate', $Q);
    is($rc, 0, 'migrate: exit 0') or diag($err);
    like($out, qr/^queue mq: moved 8 tasks from contract v1 \(1 left in v1/m,
         'migrate: 8 moved, l1 left (leased by the live v1 worker)') or diag($out);
}
is($r->cmd('ZCARD', "dq:{$Q}:leases"), 1, 'v1: only the live lease is left');
is($r->cmd('HLEN', "dq:{$Q}:tasks"), 1, 'v1: only its task');
is($r->cmd('HGET', dq_key($Q, 'stats'), 'enqueued'), 9, 'v2: the enqueued counter kept');
is($r->cmd('HGET', dq_key($Q, 'stats'), 'reclaimed'), 1, "v2: x1's expired lease counted");
like($r->cmd('HGET', dq_key($Q, 'tasks'), 's1') // '', qr/^S1:1:\d+:\d+:/,
     "v2: s1's state became its value's prefix (1 run, 1 retry)");
is($r->cmd('HGET', dq_key($Q, 'errors'), 'dead1'), 'fatal', "v2: dead1's error kept");
ok(defined $r->cmd('ZSCORE', dq_key($Q, 'dead'), 'dead1'), 'v2: dead1 is dead');
is(DQWorker::stats($r, $Q)->{v1_left}, 1, 'stats: v1_left 1 (l1)');
my ($rc, $out) = DQWorker::cli($r, 'migrate', $Q);
like($out, qr/^queue mq: moved 0 tasks/m, 'migrate again: nothing more to move');
is($r->cmd('HGET', dq_key($Q, 'stats'), 'enqueued'), 9, 'and the counters are not added twice');

# names and keyed ids dedup on v2 (before the worker runs them)
($rc) = DQWorker::cli($r, qw(defer -q mq -n nm1 record), $rec, 'dup');
is($rc, 3, "v2 enqueue of n1's name: duplicate");
($rc, $out) = DQWorker::cli($r, qw(defer -q mq --id k1 record), $rec, 'dup');
is($rc, 0, 'v2 enqueue of the keyed id k1: accepted ...');
is($r->cmd('HGET', dq_key($Q, 'stats'), 'enqueued'), 9, '... as existing (nothing stored)');

# ---- a v2 worker runs them
my $w = DQWorker::start_worker($r, $dir, args => ['-q', $Q]);
my @r = DQWorker::wait_records($rec, 7, 15);
my %ran;
$ran{ $_->{tag} }++ for @r;
is_deeply([sort keys %ran], [qw(d1 k1 n1 s1 w1 w2 x1)],
          'the waiting, delayed, named, keyed, state-carrying and expired-lease tasks ran')
    or diag explain \%ran;
ok(!grep({ $_ != 1 } values %ran), 'each once');
my %by = map { $_->{tag} => $_ } @r;
is($by{s1}{execs}, 1, 's1: runs carried (1 earlier run)');
is($by{s1}{retries}, 1, 's1: retries carried (1)');
is($by{x1}{retries}, 1, "x1: the dead v1 worker's expired lease counted as a failed attempt");
is($by{x1}{execs}, 0, 'x1: not as a run');
cmp_ok($by{d1}{ms} / 1000, '>=', $t_delayed - 0.05, 'd1 ran at its ETA, not before');
ok(!$ran{l1}, "l1 (the live v1 worker's) not run by v2");

# the dead one, requeued from v2
($rc) = DQWorker::cli($r, 'retry', $Q, 'dead1');
is($rc, 0, 'retry dead1 (v2)');
@r = DQWorker::wait_records($rec, 8, 10);
is(scalar(grep { $_->{tag} eq 'dead1' } @r), 1, 'dead1 ran once');

# the live v1 worker finishes l1 and acks it on v1; migrate once more
is(v1('ack', 60000, 1, 'l1', 'c-l1', '')->[0], 1, "v1: the v1 worker's ack of l1 is accepted");
($rc, $out) = DQWorker::cli($r, 'migrate', '--all');
like($out, qr/^queue mq: moved 0 tasks from contract v1$/m, 'migrate --all: nothing left in v1');
is_deeply($r->cmd('KEYS', "dq:{$Q}:*"), [], 'every v1 key of the queue is gone');
ok(!exists DQWorker::stats($r, $Q)->{v1_left}, 'stats: no v1_left line any more');
DQTest::wait_for(sub { ($r->cmd('HGET', dq_key($Q, 'stats'), 'done') // 0) >= 9 }, 10);
is($r->cmd('HGET', dq_key($Q, 'stats'), 'done'), 9,
   'done = 8 run by v2 + 1 acked by the v1 worker: none lost, none twice');
is($r->cmd('HLEN', dq_key($Q, 'tasks')), 0, 'v2: no task left');
is(scalar(DQWorker::records($rec)), 8, 'no task ran twice');
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
DQTest::log_clean_ok($w->{log});
done_testing();
