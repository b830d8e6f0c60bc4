# The quiet-queue gap (review RR2, finding 3), its graceful half: a worker
# that reads the due list stops (SIGTERM, then SIGQUIT) and hands the list
# back: stats due_until past, every listed id back on the ETA set, so the
# workers that remain find them even when they are older builds that
# never read the list (a rollback of the workers alone) and no producer
# enqueues again. The "old worker" is 38667f0's claim (DQScripts::PRELIST,
# as in t/06): it reads eta only. Before the fix the tasks stayed listed
# and the old claim found none of them.
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
my $new = DQScripts->new($r);
my $old = DQScripts->at_rev($r, DQScripts::PRELIST);
my $q;
sub k { DQTest::dq_key($q, $_[0]) }
sub enq { $new->enqueue_plain($q, @_) }

for my $sig (qw(TERM QUIT)) {
    $q = "st$sig";
    $r->cmd('SADD', 'dq:queues', $q);
    # paused: the worker claims (and so keeps the list on) but runs nothing
    $r->cmd('HSET', k('conf'), 'paused', '1');
    my $w = DQWorker::start_master($r, $dir, name => "w$sig", conf => <<"EOF2");
library "$lib";
processes 1;
threads 2;
lease 20s;
queue $q { retry_limit 5; }
EOF2
    ok(wait_for(sub { $r->cmd('HGET', k('stats'), 'due_until') }, 15),
       "$sig: the new worker turned the list on");
    enq(map { "a$_" } 1 .. 1000);
    enq(map { "b$_" } 1 .. 1000);
    enq(map { "c$_" } 1 .. 500);
    is($r->cmd('HGET', k('stats'), 'due_n'), 2500, "$sig: 2500 tasks listed");
    is(DQTest::stop_pid($w->{pid}, $sig), 0, "$sig: the worker exits 0");
    is($r->cmd('EXISTS', k('due')), 0, "$sig: the list handed back");
    my $du = $r->cmd('HGET', k('stats'), 'due_until');
    ok(!defined $du || $du <= DQScripts::now_ms($r),
       "$sig: due_until past or gone: producers write eta");
    is($r->cmd('ZCARD', k('eta')), 2500, "$sig: every task on eta");
    # only old workers remain, the queue quiet: they find every task
    $r->cmd('HDEL', k('conf'), 'paused');
    my $ocl = $old->cycle($q);
    my %got;
    for my $i (1 .. 4) {
        $got{$_->{id}}++ for DQScripts::claimed($ocl->("o$sig$i", 1000));
    }
    is(scalar(keys %got), 2500, "$sig: the old workers claim all 2500");
    is(scalar(grep { $_ > 1 } values %got), 0, "$sig: each once");
    enq('d1', 'd2');
    is($r->cmd('EXISTS', k('due')), 0, "$sig: later enqueues write eta");
}

done_testing();
