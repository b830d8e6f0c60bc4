# Review RDL finding 1 (wip/7DL: no task claimed in 8 s), seen from a real
# worker. A queue with deletes in its history (stats "deleted"), 40 due
# tasks on eta (one-task enqueues: never listed) older than 20 listed
# ones; a worker of 4 threads claims at most 4 a call: all from eta (the
# claims wip/7DL's suspect check failed). All 60 tasks must be claimed
# (run or buried).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;
use DQWorker;

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $s = DQScripts->new($r);
my $q = 'stuck';
sub k { DQTest::dq_key($q, $_[0]) }
my $rec = "$dir/rec";
my $env = DQNginx::mp([2, \'ops.run', [\$rec], undef, undef]);
$r->cmd('SADD', 'dq:queues', $q);
$s->cycle($q)->('c0', 0);
$r->cmd('HSET', k('stats'), 'due_until', DQScripts::now_ms($r) + 59000);
my $now = DQScripts::now_ms($r);
$s->enqueue2($q, 60000, "e$_", $env, eta => $now - 10000 + $_) for 1 .. 40;
$s->v2($q, 'enqueue', 60000, 20, 0, (map { ("l$_", $env) } 1 .. 20), ('') x 20);
is($r->cmd('HGET', k('stats'), 'due_n'), 20, '20 listed');
$r->cmd('HSET', k('stats'), 'deleted', 7);   # deletes in its history
my $w = DQWorker::start_master($r, $dir, name => 'w', conf => <<"EOF2");
library "$lib";
processes 1;
threads 4;
concurrency 4;
claim_size 4;
lease 20s;
queue $q { retry_limit 5; }
EOF2
my $ok = wait_for(sub { $r->cmd("ZCARD", k("eta")) == 0 && !$r->cmd("EXISTS", k("due")) }, 8);
ok($ok, "every task claimed within 8 s")
    or diag("eta " . $r->cmd("ZCARD", k("eta")) . ", listed " . ($r->cmd("HGET", k("stats"), "due_n") // 0));
DQTest::stop_pid($w->{pid}, 'TERM', 20);
my @e = grep { /claim|Wrong number/i } split /\n/, DQTest::slurp($w->{log});
diag(scalar(@e) . " log lines about claims; first: " . ($e[0] // ''));
diag("errors: " . join(" ", @{ $r->cmd("HGETALL", k("errors")) }[0..3]));
diag(join "\n", (grep { !/connected/ } split /\n/, DQTest::slurp($w->{log}))[0..8]);
diag('stats: ' . join ' ', @{ $r->cmd('HGETALL', k('stats')) });
done_testing();
