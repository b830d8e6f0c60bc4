# The hand-back's logs tell the truth (review RDL finding 8; wip/7DL:
# "not handed back" for an unlist that ran later, and no line at all for
# a stop with the command connection down):
#  1. a worker stopped with SIGTERM while Redis is frozen (SIGSTOP): the
#     unlist is out on the connection and times out; the log says it may
#     not have been handed back, and once Redis resumes it runs (the list
#     is gone: the log did not claim otherwise);
#  2. a worker stopped while its command connection is down (Redis
#     killed): the skipped hand-back is logged.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use DQTest;
use DQScripts;
use DQWorker;

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $new = DQScripts->new($r);
my $q;
sub k { DQTest::dq_key($q, $_[0]) }
sub worker {
    my ($name) = @_;
    $r->cmd('SADD', 'dq:queues', $q);
    $r->cmd('HSET', k('conf'), 'paused', '1');      # keeps the list on
    my $w = DQWorker::start_master($r, $dir, name => $name, conf => <<"EOF2");
library "$lib";
processes 1;
threads 2;
lease 20s;
grace 30s;
queue $q { retry_limit 5; }
EOF2
    ok(DQTest::wait_for(sub { $r->cmd('HGET', k('stats'), 'due_until') }, 15),
       "$name: the list on");
    $new->enqueue_plain($q, map { "a$_" } 1 .. 100);
    is($r->cmd('HGET', k('stats'), 'due_n'), 100, "$name: 100 listed");
    return $w;
}

# ---- 1. Redis frozen
$q = 'fz';
my $w = worker('wf');
kill 'STOP', $r->pid;
my $t0 = time;
my $rc = DQTest::stop_pid($w->{pid}, 'TERM', 60);
my $el = time - $t0;
kill 'CONT', $r->pid;
diag(sprintf 'SIGTERM with Redis frozen: exit %s after %.1f s', $rc // '?', $el);
my $log = DQTest::slurp($w->{log});
like($log, qr/queue fz: the due list may not have been handed back on stop/,
     '1: logged "may not have been handed back"');
unlike($log, qr/queue fz: the due list not handed back/,
       '1: not "not handed back"');
ok(DQTest::wait_for(sub { !$r->cmd('EXISTS', k('due')) }, 5),
   '1: the unlist ran once Redis resumed (the list gone)');
is($r->cmd('ZCARD', k('eta')), 100, '1: its 100 tasks on eta');

# ---- 2. the command connection down
$q = 'dn';
$w = worker('wd');
kill 'KILL', $r->pid;
sleep 0.5;
$rc = DQTest::stop_pid($w->{pid}, 'TERM', 60);
$log = DQTest::slurp($w->{log});
like($log, qr/the due list not handed back on stop: the command connection is down/,
     '2: the skipped hand-back is logged');
done_testing();
