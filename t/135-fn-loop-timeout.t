# A DQ_FN_LOOP function is held to its queue's `timeout` too. It runs on
# the loop thread, where no timer can interrupt it, so the worker judges
# it when it returns: a 1 s call under "timeout 200ms" is failed as timed
# out (charged, retried with back-off, the pool's error text) and the
# function moves to the pool, never acked as done. (Found by the R2
# review of contract v2: such a call was acked OK.)
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQWorker; use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1, 1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start();
my $rec = "$dir/l.rec";
my $w = DQWorker::start_master($r, $dir, name => 'lt', conf => <<"EOF2");
library "$lib";
processes 1;
threads 2;
queue default { timeout 200ms; retry_limit 3; min_backoff 100ms; max_backoff 100ms; }
EOF2
my $id = DQWorker::defer($r, 'ops.loop', $rec, 1000000);   # 1 s busy
my @L = DQWorker::wait_lines($rec, 'L', 1, 10);
is($L[0][1], 1, 'the first run was on the loop thread') if @L;
ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~ /task failed: .*id=\Q$id\E.*timed out after \d+ ms \(timeout 200 ms\)/ }, 10),
   'the call that ran past its timeout failed as "timed out"')
   or diag(DQWorker::log_text($w));
my $s = DQWorker::stats($r);
is($s->{done} // 0, 0, 'not counted done');
@L = DQWorker::wait_lines($rec, 'L', 2, 10);
is($L[1][1] // '', 0, 'the retry ran on the pool (the function was demoted)')
   if @L >= 2;
ok(@L >= 2, 'it was retried');
like(DQWorker::log_text($w), qr/DQ_FN_LOOP.*runs on the pool/,
     'the demotion was logged');
DQTest::stop_pid($w->{pid});
done_testing();
