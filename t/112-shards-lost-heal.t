# Review RW finding 1: a queue grown 1 -> 4 whose shard 0 copy of `shards`
# is lost (the CLI killed between its writes, shard 0's written last; an
# AOF missing its last second; a failover): shards 1..3 say 4, shard 0
# says nothing. A worker already running knew N = 1 and claimed shard 0
# with its file's whole max_concurrent, beside workers that split it by 4,
# until its probe of shard 1: once per TTL (30 s) since 56f7902.
# Now (a) a queue with a whole-queue limit is probed every tick (5 s), and
# (b) the worker that finds the higher count writes it back into shard
# 0's conf (configure.lua: N only grows), so every worker and producer
# reads 4 with its next read of shard 0. Before the fix: found after
# ~25 s, and shard 0 never healed.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $r = DQTest::Redis->start;
my $dir = DQTest::tmpdir();
my $A = DQWorker::start_master($r, $dir, name => 'A', conf => <<"EOF");
library "$lib";
processes 1;
queue lq { max_concurrent 4; }
EOF
sleep 6;    # the start's probe and the first ticks: N = 1 known
# what `deferred-cli queue lq --shards 4` writes, less shard 0's copy
$r->cmd('HSET', "dq2:{lq#$_}:conf", 'shards', 4) for 1 .. 3;
my $t0 = time;
ok(DQTest::wait_for(sub { DQWorker::log_text($A) =~ /serving 4/ }, 40, 0.2),
   'the running worker finds the 4 shards');
my $took = time - $t0;
diag sprintf('found %.1f s after shard 0 lost its copy', $took);
cmp_ok($took, '<=', 12, 'a queue with a max_concurrent: within a tick '
       . '(5 s, + the load of a shared machine), not once per 30 s');
ok(DQTest::wait_for(sub { ($r->cmd('HGET', 'dq2:{lq}:conf', 'shards') // '')
                          eq '4' }, 6, 0.2),
   'the count written back into shard 0\'s conf');
like(DQWorker::log_text($A), qr/wrote 4 back into shard 0/, '... logged');
# a worker started now reads 4 from shard 0 itself (no warning of a lost
# copy), and the monotonic rule still refuses a lower count
my $B = DQWorker::start_master($r, $dir, name => 'B', conf => <<"EOF");
library "$lib";
processes 1;
queue lq { max_concurrent 4; }
EOF
ok(DQTest::wait_for(sub { DQWorker::log_text($B) =~ /serving 4/ }, 15, 0.2),
   'a worker started after serves 4');
unlike(DQWorker::log_text($B), qr/more than shard 0's/,
       '... from shard 0\'s healed count');
my ($rc, $out, $err) = DQWorker::cli($r, 'queue', 'lq', '--shards', '2');
isnt($rc, 0, 'the healed count cannot be lowered');
my $rec = "$dir/lq.rec";
($rc, $out, $err) = DQWorker::cli($r, 'defer', '-q', 'lq', '--count', '8',
                                  'ops.span', $rec, 0);
is($rc, 0, '8 tasks') or diag $err;
is(scalar DQWorker::wait_lines($rec, 'E', 8, 20), 8, 'all 8 ran');
DQWorker::stop_worker($_) for $A, $B;
done_testing;
