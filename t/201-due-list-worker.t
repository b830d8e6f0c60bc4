# Review RR2 of the due list, findings 2 and 5, with a real
# deferred-worker: a list that starts with 450 markers alone (as removes
# by id of a build before the fix left them) and then z1, z2 listed, and
# x1 listed whose value an old delete took (38667f0's remove deletes the
# value and leaves the id). The worker runs z1 and z2 (before the fix
# they were never claimed: no claim read past 6 (want + 2) markers, and
# the worker re-claimed at once, tens of thousands of EVALSHA in 10 s),
# drops x1 without burying it (before: dead, "missing envelope"), then
# sleeps: a few script calls in 3 idle seconds, not a spin.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;
use DQWorker;
use Time::HiRes qw(sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $s = DQScripts->new($r);
my $q = 'dw';
sub k { DQTest::dq_key($q, $_[0]) }
$r->cmd('SADD', 'dq:queues', $q);
$s->cycle($q)->('c0', 1);                          # a new worker was here
my $now = DQScripts::now_ms($r);
$r->cmd('RPUSH', k('due'), map { '@' . ($now - 1000 + $_) } 1 .. 450);
my $rec = "$dir/w.rec";
my ($rc, $out, $err) = DQWorker::cli($r, 'defer', '-q', $q, '--count', '3',
                                     'ops.run', $rec);
is($rc, 0, '3 tasks deferred in one call') or diag($err);
my @l = @{ $r->cmd('LRANGE', k('due'), 450, -1) };
is(scalar(@l), 4, '450 markers, then a run of 3 listed');
my $x1 = $l[2];
$r->cmd('HDEL', k('tasks'), $x1);                  # the old delete,
$r->cmd('HINCRBY', k('stats'), 'deleted', 1);      # which counts it
my $w = DQWorker::start_master($r, $dir, name => 'w', conf => <<"EOF2");
library "$lib";
processes 1;
threads 4;
lease 20s;
queue $q { retry_limit 5; min_backoff 100ms; }
EOF2
is(scalar DQWorker::wait_lines($rec, 'R', 2, 15), 2, 'the other two ran');
is($r->cmd('EXISTS', k('due')), 0, 'the list gone, markers with it');
is($r->cmd('ZCARD', k('dead')), 0, 'x1 not buried')
    or diag(explain $r->cmd('HGETALL', k('errors')));
is($r->cmd('HGET', k('stats'), 'deleted'), 1, 'x1 counted as deleted once (by the old delete)');
sleep 0.5;
$r->cmd('CONFIG', 'RESETSTAT');
sleep 3;
my ($calls) = $r->cmd('INFO', 'commandstats') =~ /cmdstat_evalsha:calls=(\d+)/;
diag('EVALSHA calls in 3 idle s: ' . ($calls // 0));
cmp_ok($calls // 0, '<', 100, 'the idle worker sleeps (no spin)');
is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
done_testing();
