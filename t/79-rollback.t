# Fencing survives Redis losing data. A redis-server with appendfsync always
# is killed and restarted from its AOF truncated to an earlier offset (what
# appendfsync everysec loses in a crash, or an asynchronous failover): a
# claim that worker A made is gone from Redis, but A still holds the task
# (queued behind a long one). Worker B claims it again. A's graceful stop
# releases the task with its old claim: refused ("lease lost"), because a
# claim id is random and never issued twice; B's run is acked, the task
# runs once and is not released, charged or run again. Then the same with
# a zombie that retries: A's run times out (its queue's timeout) after the
# rollback, A fails it under its lost claim: refused, B's ack wins.
# (With a counter as the fencing token the rolled-back counter issued B the
# same token as A: A's release or retry was accepted, B's ack refused and
# the task ran again.)
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

# A redis-server that fsyncs every write to its AOF: (redis, dir, AOF file)
sub aof_redis {
    my $d = tmpdir();
    my $rs = DQTest::Redis->start(dir => $d, args => [
        qw(--appendonly yes --appendfsync always --auto-aof-rewrite-percentage 0
           --appenddirname aof)]);
    my $f;
    DQTest::wait_for(sub { ($f) = glob("$d/aof/*.incr.aof"); $f }, 10);
    return ($rs, $d, $f);
}

# kill -9, the AOF cut back to $offset bytes, started again
sub crash_to {
    my ($rs, $f, $offset) = @_;
    DQTest::stop_pid($rs->pid, 'KILL', 10);
    truncate($f, $offset) or die "truncate: $!";
    $rs->_launch;
    DQTest::wait_for(sub { !ref $rs->cmd('PING') }, 10);   # not -LOADING
}

my ($r, $dir, $incr) = aof_redis();
ok($incr && -e $incr, 'the AOF has an incr file') or do { done_testing(); exit 1 };

my $a = DQWorker::start_worker($r, $dir, name => 'a', args =>
    [qw(--threads 1 --concurrency 2 --lease 10s --log_level debug)]);
my $rec = "$dir/rec";
my $long = DQWorker::defer($r, 'sleep_ms', 5000, "$dir/long");
DQTest::wait_for(sub { DQWorker::stats($r)->{running} == 1 }, 10);
my $tid = DQWorker::defer($r, '--countdown', 1500, 'sleep_ms', 1500, $rec);
sleep 0.3;
my $offset = -s $incr;                  # before A's claim of the task
DQTest::wait_for(sub { DQWorker::stats($r)->{running} == 2 }, 10);
is(DQWorker::stats($r)->{running}, 2, 'A holds the long task and the task (queued behind it)');

# the crash: Redis loses A's claim
crash_to($r, $incr, $offset);
is($r->cmd('ZCARD', 'dq2:{default}:leases'), 1, 'after the rollback only the long task is leased')
    or diag explain $r->cmd('ZRANGE', 'dq2:{default}:leases', 0, -1, 'WITHSCORES');
ok(defined $r->cmd('ZSCORE', 'dq2:{default}:eta', $tid), 'the task is waiting again');

my $b = DQWorker::start_worker($r, $dir, name => 'b', args =>
    [qw(--lease 10s --log_level debug)]);
DQTest::wait_for(sub { DQWorker::log_text($b) =~ /claimed 1 of/ }, 10);
like(DQWorker::log_text($b), qr/claimed 1 of/, 'B claims the task again');

# A stops: the task it never started is released under A's old claim
kill 'TERM', $a->{pid};
DQTest::wait_for(sub { DQWorker::log_text($a) =~ /lease lost: release of task \Q$tid\E/ }, 10);
like(DQWorker::log_text($a), qr/\[warn\].*lease lost: release of task \Q$tid\E/,
     "the zombie's release is refused");
my @rec = DQWorker::wait_records($rec, 1, 10);
is(scalar @rec, 1, 'B ran the task');
DQTest::wait_for(sub { !defined $r->cmd('HGET', 'dq2:{default}:tasks', $tid) }, 10);
ok(!defined $r->cmd('HGET', 'dq2:{default}:tasks', $tid), "B's ack won: the task is done");
unlike(DQWorker::log_text($b), qr/lease lost/, 'B lost no lease');
is($rec[0]{retries}, 0, 'no attempt charged to the task');
sleep 2;
is(scalar DQWorker::records($rec), 1, 'the task ran once, not again');
is(DQWorker::stop_worker($a), 0, 'A exits 0 (after the long task)');
is(DQWorker::stop_worker($b), 0, 'B exits 0');
ok(-e "$dir/long", 'the long task finished');
log_clean_ok($a->{log}, 'worker A log');
log_clean_ok($b->{log}, 'worker B log');

# ---- the zombie's retry (A2 has one slot, busy with its zombie run: only
# B2 can claim the task again)
my ($r2, $dir2, $incr2) = aof_redis();
my $conf = "$dir2/a.conf";
open(my $cf, '>', $conf) or die;
print $cf "queue default {\n    timeout 1500ms;\n    min_backoff 100ms;\n}\n";
close $cf;
my $a2 = DQWorker::start_worker($r2, $dir2, name => 'a2', args =>
    ['-c', $conf, qw(--threads 1 --concurrency 1 --lease 10s --log_level debug)]);
my $rec2 = "$dir2/rec";
my $t2 = DQWorker::defer($r2, '--countdown', 1000, 'sleep_ms', 2500, $rec2);
sleep 0.3;
my $offset2 = -s $incr2;
DQTest::wait_for(sub { DQWorker::stats($r2)->{running} == 1 }, 10);
crash_to($r2, $incr2, $offset2);
ok(defined $r2->cmd('ZSCORE', 'dq2:{default}:eta', $t2), 'rolled back: the task waits again');
my $b2 = DQWorker::start_worker($r2, $dir2, name => 'b2', args =>
    [qw(--lease 10s --log_level debug)]);
DQTest::wait_for(sub { DQWorker::log_text($a2) =~ /timed-out task \Q$t2\E .*lease already lost/ }, 10);
like(DQWorker::log_text($a2), qr/timed-out task \Q$t2\E \(queue default\): lease already lost/,
     "the zombie's retry (its run timed out) is refused");
DQTest::wait_for(sub { !defined $r2->cmd('HGET', 'dq2:{default}:tasks', $t2) }, 10);
ok(!defined $r2->cmd('HGET', 'dq2:{default}:tasks', $t2), "B's ack won: the task is done");
unlike(DQWorker::log_text($b2), qr/lease lost/, 'B lost no lease');
is($r2->cmd('HGET', 'dq2:{default}:stats', 'retried'), undef, 'no retry landed');
sleep 1;
ok(scalar(DQWorker::records($rec2)) <= 2, 'not run a third time (A may have finished its zombie run too)');
DQWorker::stop_worker($a2);                 # its child is replaced after a timeout
is(DQWorker::stop_worker($b2), 0, 'B exits 0');
log_clean_ok($b2->{log}, 'worker B log');
done_testing();
