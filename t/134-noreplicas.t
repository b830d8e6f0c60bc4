# A cycle (claim + the acks riding it) or an ack alone answered
# -NOREPLICAS (min-replicas-to-write not met: a replica lagging past
# min-replicas-max-lag for a moment). Redis did not run the script, so
# the acks must be kept and sent again once Redis takes writes, never
# dropped: a task that finished OK must not run a second time when its
# lease expires. (Found by the R2 review of contract v2.)
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQWorker; use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1, 1);
DQTest::require_built($lib, 'the ops task library');
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start();
my $rec = "$dir/nr.rec";

# A runs 0.8 s; B waits behind it (one slot), so A's ack rides B's claim
my $a = DQWorker::defer($r, 'ops.span', $rec, 800);
my $b = DQWorker::defer($r, 'ops.span', $rec, 10);
ok(defined $a && defined $b, 'two tasks deferred');
my $w = DQWorker::start_worker($r, $dir, name => 'nr', libs => [$lib],
    args => [qw(--concurrency 1 --claim-size 1 --threads 1 --lease 2s)]);
ok(scalar(DQWorker::wait_lines($rec, 'S', 1, 10)), 'A started');
is($r->cmd('CONFIG', 'SET', 'min-replicas-to-write', '1'), 'OK',
   'writes refused: NOREPLICAS');
ok(scalar(DQWorker::wait_lines($rec, 'E', 1, 5)), 'A finished OK');
ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~ /NOREPLICAS/ }, 5),
   'the worker met NOREPLICAS');
sleep 2.5;                           # past A's lease: a dropped ack shows
is($r->cmd('CONFIG', 'SET', 'min-replicas-to-write', '0'), 'OK',
   'writes accepted again');
ok(DQTest::wait_for(sub { (DQWorker::stats($r)->{done} // 0) >= 2 }, 15),
   'both tasks done') or diag(explain(DQWorker::stats($r)));
sleep 0.5;
my @E = DQWorker::wait_lines($rec, 'E', 3, 1);
my %n; $n{$_->[0]}++ for @E;
is($n{$a} // 0, 1, 'A (finished OK, its ack refused) ran exactly once');
is($n{$b} // 0, 1, 'B ran exactly once');
my $log = DQWorker::log_text($w);
unlike($log, qr/ack failed for task/, 'no ack was dropped');
DQWorker::stop_worker($w);
DQTest::log_clean_ok($w->{log}) if $w->{log};
done_testing();
