# R5 review: the worker's claim on a MIGRATING slot whose script leases
# tasks and then errors ("ERR Script attempted to access a non local
# key": the eta zset emptied by the claim's own ZREM, read again): the
# worker takes the error reply as "nothing leased" (claim.c
# dq__claim_reply: no lost claim filed, no release_claim), so the tasks
# sit leased to nobody for the lease, then are taken back CHARGED
# ("lease expired", retries 1) and run late. Failed so before the fix
# (retries 1 on each task). Now the claim runs to its end (claim.lua reads
# eta's next entry before its ZREM), and a claim error reply that may
# follow writes is filed as a lost claim and released (claim.c
# dq__claim_refused): each task runs once, retries 0, with either fix
# alone (checked: the dispatch fix alone passes, the tasks then wait for
# the migration's end).
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQWorker; use DQCluster;
my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my $q = 'mq';
my ($A, $B) = ($c->owner($q), $c->other($q));
my $k = sub { DQTest::dq_key($q, $_[0]) };
my $rec = "$dir/m.rec";
my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'defer',
                                       '-q', $q, '--count', 3, 'ops.span', $rec, 100);
die $err if $rc;
# one lease held by an earlier claim, and the optional keys present (a
# busy queue: errors, names, bucket, conf, a wake token, a cold tier), so
# Redis runs the claim on the MIGRATING source instead of answering ASK
$A->cmd('ZADD', $k->('leases'), 9e15, 'zz|c0|1');
$A->cmd('HSET', $k->($_), 'zz', 'x') for qw(errors conf bucket names);
$A->cmd('RPUSH', $k->('wake'), ('x') x 50);
$A->cmd('ZADD', $k->('cold'), 9e15, 'x');
$A->cmd('RPUSH', $k->('due'), '@0');      # a due list's marker alone
my $slot = $c->slot($k->('tasks'));
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $c->id($A));
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $c->id($B));
my $conf = "redis " . $c->address . ";\nlibrary \"$lib\";\nprocesses 1;\nthreads 4;\n"
         . "concurrency 4;\nlease 8s;\nqueue $q { }\n";
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 0, conf => $conf);
# the claim ran (tasks started) or answered its error (the lib fix alone,
# or the dispatch fix alone: then the tasks wait for the migration's end)
ok(DQTest::wait_for(sub { DQWorker::lines($rec, 'S') >= 3
                          || DQTest::slurp($w->{log}) =~ /non local key/ }, 20),
   'the claim on the MIGRATING slot answered');
$A->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');  # the migration called off
$B->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
my @s0 = DQWorker::wait_lines($rec, 'S', 3, 20);
ok(@s0 >= 3, 'the 3 tasks started');
DQTest::wait_for(sub { !grep { !/^zz\|/ } @{ $A->cmd('ZRANGE', $k->('leases'), 0, -1) } }, 10);
my @held = grep { !/^zz\|/ } @{ $A->cmd('ZRANGE', $k->('leases'), 0, -1) };
ok(@held == 0, 'no task left leased') or diag "@held";
my @e = DQWorker::wait_lines($rec, 'E', 3, 20);
is(scalar(@e), 3, 'each task ran once');
is_deeply([map { $_->[4] } @e], [0, 0, 0],
          'no task charged (retries 0: not taken back from an expired lease)');
DQTest::stop_pid($w->{pid});
done_testing();
