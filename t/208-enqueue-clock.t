# enqueue keeps the queue's clock and gap records exactly as dq_now does
# (issue #12, H3: lib/lua/prelude.lua dq_now_field reads only "clock" and
# "due_until" and takes dq_now's whole path only when the clock moves back
# or forward by more than a second). A real redis-server, the scripts of
# lib/lua (DQ_T_LUA=DIR runs an older lib/lua: these cases pass on the
# scripts before the change too, the point of the test is that they still
# do):
#   1. no clock yet: written, no gap record;
#   2. moved forward 0.5 s: written, no gap record;
#   3. moved forward 5 s: the gap recorded (gap_from/gap_to);
#   4. both gap slots open and longer: a 3-s gap is not recorded, the
#      clock moves;
#   5. up to 60 s ahead (a failover to a replica whose clock lags): kept,
#      the task's ETA is that clock;
#   6. over 60 s ahead: set back to now, the gap records cleared;
#   7. due_until is read on both paths: two due-now tasks are listed with
#      the clock current and with it 5 s behind.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;

my $r = DQTest::Redis->start(dir => DQTest::tmpdir());
my $s = DQScripts->new($r);
my $env = DQScripts::env2();
my $q = 'clk';
my $stats = dq_key($q, 'stats');
my $eta = dq_key($q, 'eta');
my $due = dq_key($q, 'due');
my $n = 0;

sub enq {
    my @ids = map { 'c' . ++$n } 1 .. ($_[0] // 1);
    my $rep = $s->v2($q, 'enqueue', 60000, scalar @ids, 0,
                     (map { ($_, $env) } @ids), ('') x @ids);
    return ($rep, @ids);
}
sub st { $r->cmd('HGET', $stats, $_[0]) }
sub gaps { join ',', map { st($_) // '-' } qw(gap_from gap_to gap2_from gap2_to) }

# 1
enq();
my $now = DQScripts::now_ms($r);
cmp_ok(abs(st('clock') - $now), '<=', 50, 'no clock: written now');
is(gaps(), '-,-,-,-', 'no clock: no gap record');

# 2
my $old = DQScripts::now_ms($r) - 500;
$r->cmd('HSET', $stats, 'clock', $old);
enq();
cmp_ok(st('clock'), '>=', $old + 500, '0.5 s forward: the clock moved');
is(gaps(), '-,-,-,-', '0.5 s forward: no gap record');

# 3
$old = DQScripts::now_ms($r) - 5000;
$r->cmd('HSET', $stats, 'clock', $old);
enq();
is(st('gap_from'), $old, '5 s forward: gap_from is the old clock');
is(st('gap_to'), st('clock'), '5 s forward: gap_to is the new clock');
cmp_ok(st('clock'), '>=', $old + 5000, '5 s forward: the clock moved');

# 4
$now = DQScripts::now_ms($r);
$r->cmd('HSET', $stats, 'gap_from', $now - 20000, 'gap_to', $now - 10000,
        'gap2_from', $now - 30000, 'gap2_to', $now - 15000,
        'clock', $now - 3000);
my $before = gaps();
enq();
is(gaps(), $before, 'two open, longer gaps: a 3-s gap is not recorded');
cmp_ok(st('clock'), '>=', $now, 'two open, longer gaps: the clock moved');

# 5
$r->cmd('HDEL', $stats, qw(gap_from gap_to gap2_from gap2_to));
my $ahead = DQScripts::now_ms($r) + 30000;
$r->cmd('HSET', $stats, 'clock', $ahead);
my ($rep, $id) = enq();
is(st('clock'), $ahead, '30 s ahead: the clock is kept');
is($rep->[0], $ahead, '30 s ahead: the reply\'s now is that clock');
is($r->cmd('ZSCORE', $eta, $id), $ahead, '30 s ahead: the task is due at it');

# 6
$r->cmd('HSET', $stats, 'clock', DQScripts::now_ms($r) + 120000,
        'gap_from', 1, 'gap_to', 2, 'gap2_from', 3, 'gap2_to', 4);
enq();
$now = DQScripts::now_ms($r);
cmp_ok(abs(st('clock') - $now), '<=', 50, '120 s ahead: set back to now');
is(gaps(), '-,-,-,-', '120 s ahead: the gap records cleared');

# 7
for my $back (0, 5000) {
    $r->cmd('DEL', $due);
    $now = DQScripts::now_ms($r);
    $r->cmd('HSET', $stats, 'due_until', $now + 30000);
    $r->cmd('HSET', $stats, 'clock', $now - $back) if $back;
    my (undef, @ids) = enq(2);
    my $list = $r->cmd('LRANGE', $due, 0, -1);
    is_deeply([grep { !/^@/ } @$list], \@ids,
              "due_until read with the clock ${back} ms behind: listed");
    is($r->cmd('ZSCORE', $eta, $ids[0]), undef,
       "due_until read with the clock ${back} ms behind: not on eta");
}

done_testing();
