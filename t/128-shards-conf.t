# Review R4 findings 5-9 on sharded queues' settings (one Redis, the real
# deferred-cli and worker):
#   7  configure.lua's "shards only grow" guard took anything tonumber
#      took ("4.0", " 8", "0x8", "65"), which every reader
#      (dq_shards_parse) reads as 1; `clear` of shards bypassed it
#   9  the C client's unnamed round robin was one counter for all queues:
#      a producer alternating two 2-shard queues filled one shard of each
#   5  a paused queue grown (queue Q --shards N) ran the tasks that landed
#      in its new shards: they lacked `paused`
#   6  queue Q --shards N (or a second --max-concurrent) wrote rate 0 =
#      unlimited over an absent rate: the worker file's rate was lost
#   8  a worker file's max_concurrent below N gave every shard 1: 4 shards
#      ran 4 at once where the file said 2
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use Test::More;
use Time::HiRes qw(sleep time);

my $dir = tmpdir();
my $r = DQTest::Redis->start;
sub cli { DQWorker::cli($r, @_) }
my $probe = DQTest::build_dir() . '/t/client_r4_probe';
my $lib = DQWorker::example_lib();
my ($rc, $out, $err);

# --- 7: the shards field's values
sub cfg { (DQTest::capture($probe, 'cfg', $r->address, @_))[1] }
for my $v ('4.0', ' 8', '0x8', '65', '0', '04', '1e1') {
    like(cfg('cg', 'set', $v), qr/rc -?\d+ reply ERR configure: shards must be/,
         "configure: shards \"$v\" refused");
}
is($r->cmd('HGET', 'dq2:{cg}:conf', 'shards'), undef, '... nothing written');
like(cfg('cg', 'set', '64'), qr/reply ok/, 'shards 64 (DQ_MAX_SHARDS) taken');
like(cfg('cg', 'set', '8'), qr/shards can only grow/, 'then 8 refused');
my ($sha) = cfg('cg', 'sha') =~ /^sha (\w+)/m;
my $cl = $r->cmd('EVALSHA', $sha, 2, 'dq2:{cg}:conf', 'dq2:{cg}:wake', 'clear', 'shards');
like(ref $cl ? $cl->{err} // '' : "reply $cl", qr/shards cannot be cleared/,
     'configure clear shards refused');
is($r->cmd('HGET', 'dq2:{cg}:conf', 'shards'), '64', '... N still 64');
$r->cmd('HSET', 'dq2:{cg2}:conf', 'shards', '4.0');   # as readers see: 1
like(cfg('cg2', 'set', '2'), qr/reply ok/,
     'a stored "4.0" is read as readers read it (1): 2 is growth');

# --- 9: per-queue round robin
is((cli('queue', 'h1', '--shards', '2'))[0], 0, 'h1: 2 shards');
is((cli('queue', 'h2', '--shards', '2'))[0], 0, 'h2: 2 shards');
($rc, $out) = DQTest::capture($probe, 'alt', $r->address, 'h1', 'h2');
is($rc, 0, '20 unnamed dq_defer alternating h1, h2') or diag $out;
for my $q (qw(h1 h2)) {
    my @w = map { $r->cmd('ZCARD', $_ ? "dq2:{$q#$_}:eta" : "dq2:{$q}:eta") } 0, 1;
    is("$w[0] $w[1]", '5 5', "$q: its 10 unnamed tasks alternate over both shards");
}

# a worker file serving rl (rate 2/s), mc (max_concurrent 2), pq
my $conf = "$dir/w.conf";
open my $f, '>', $conf or die;
print $f "redis " . $r->address . ";\nlibrary $lib;\nprocesses 1;\nthreads 8;\n"
    . "concurrency 8;\nqueue rl { rate 2/s; }\nqueue mc { max_concurrent 2; }\n"
    . "queue pq { }\n";
close $f;

# --- 5: pause, then grow
is((cli('queue', 'pq', '--shards', '2'))[0], 0, 'pq: 2 shards');
is((cli('pause', 'pq'))[0], 0, 'pq paused');
($rc, $out, $err) = cli('queue', 'pq', '--shards', '4');
is($rc, 0, 'pq grown 2 -> 4 while paused') or diag $err;
for my $i ('', '#1', '#2', '#3') {
    is($r->cmd('HGET', "dq2:{pq$i}:conf", 'paused'), '1', "pq$i: paused");
}

# --- 6: the file's rate survives --max-concurrent then --shards
($rc, $out, $err) = cli('queue', 'rl', '--max-concurrent', '4');
is($rc, 0, 'queue rl --max-concurrent 4 (rate: the worker file\'s 2/s)') or diag $err;
($rc, $out, $err) = cli('queue', 'rl', '--shards', '2');
is($rc, 0, 'queue rl --shards 2') or diag $err;
for my $s ('rl', 'rl#1') {
    is($r->cmd('HGET', "dq2:{$s}:conf", 'rate'), undef, "$s: no rate written (the file's stands)");
}
is($r->cmd('HGET', 'dq2:{rl}:conf', 'max_concurrent') + $r->cmd('HGET', 'dq2:{rl#1}:conf', 'max_concurrent'),
   4, 'max_concurrent 4 split over the 2 shards');
($rc, $out) = cli('queue', 'rl');
like($out, qr/rate\s+\(worker files\)/, 'queue rl shows the rate as the worker files\'') or diag $out;

# --- 8: the file's max_concurrent 2 over 4 shards
($rc, $out, $err) = cli('queue', 'mc', '--shards', '4');
is($rc, 0, 'queue mc --shards 4 (max_concurrent 2 from the worker file)') or diag $err;

my $pid = DQTest::spawn(name => 'w', log => "$dir/w.log",
                        cmd => [DQWorker::worker_bin(), '-c', $conf]);
DQTest::wait_for(sub { DQTest::slurp("$dir/w.log") =~ /redis \(wake\): connected/ }, 20);
my $prec = "$dir/p.rec";
($rc, $out, $err) = cli('defer', '-q', 'pq', '--count', '20', 'record', $prec);
is($rc, 0, '20 tasks into the paused, grown pq') or diag $err;
my $rrec = "$dir/rl.rec";
($rc, $out, $err) = cli('defer', '-q', 'rl', '--count', '40', 'record', $rrec);
is($rc, 0, '40 tasks into rl') or diag $err;
my $t0 = time;
my $mrec = "$dir/mc.rec";
($rc) = cli('defer', '-q', 'mc', '--count', '12', 'sleep_ms', 200, $mrec);
# the CLI's round robin puts 3 in each shard; shards 0 and 1 get a share
# of 1 each, shards 2 and 3 none (they wait, logged)
my @R = DQWorker::wait_records($mrec, 6, 60);
is(scalar(@R), 6, 'mc: the 6 tasks of the shards with a share ran');
my $max = DQWorker::max_at_once(200, @R);
ok($max <= 2, "mc: the file's max_concurrent 2 held for the whole queue (saw $max at once)");
my $log = DQTest::slurp("$dir/w.log");
ok($log =~ /queue mc#2: no claims from this shard.*max_concurrent/
   && $log =~ /queue mc#3: no claims from this shard/,
   'mc: the shards left without a share are logged')
    or diag join '', grep { /mc/ } split /^/, $log;
sleep 0.5;
is(scalar(DQWorker::records($mrec)), 6, '... and their 6 tasks wait');
($rc, $out, $err) = cli('queue', 'mc', '--max-concurrent', '4');
is($rc, 0, 'queue mc --max-concurrent 4 (applied: 1 per shard)') or diag $err;
@R = DQWorker::wait_records($mrec, 12, 60);
is(scalar(@R), 12, 'mc: then the other 6 ran');
sleep 1 while time - $t0 < 3;
my $n = scalar(DQWorker::records($rrec));
# the file's 2/s (bucket auto = 2): about 2 + 2 * elapsed
my $el = time - $t0;
cmp_ok($n, '<=', 4 + 2 * $el, sprintf("rl: rate 2/s held for the whole queue (%d ran in %.1f s)", $n, $el));
is(scalar(DQWorker::records($prec)), 0, 'pq: paused, grown: none of its 20 ran');
DQTest::stop_pid($pid, 'TERM', 20);
done_testing;
