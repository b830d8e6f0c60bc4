# Review R3 finding 5, the bound docs/MODULE.md ("What a 201 promises")
# now states: with deferred_redis ... replicas=1 a 201'd task survives a
# master killed -9 whose AOF lost its last writes *if the master is not
# restarted before its replica takes over*. R3's repro (R3-aof-restart.t,
# not kept: it shows Redis' behaviour, timing-dependent) restarted the
# node at once: it stayed master and its replica resynced from it, the
# task gone from both (reproduced on 58ee9c2). Here the node comes back
# only after its replica was promoted (restart delay > cluster-node-timeout):
# it rejoins as a replica, and the task is on the new master and, after
# the resync, on the old one.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQNginx;
use DQCluster;

DQNginx::require_nginx();
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir);
ok($c->wait_replicas_online(30), 'replicas online');
my $A = ($c->masters)[0];
my ($q) = grep { $c->owner($_)->port == $A->port } map { "aq$_" } 1 .. 3000;
my $rep = $c->replica_of($A);
mkdir "$dir/nginx";
my $n = DQNginx->start(dir => "$dir/nginx", vars => { SEEDS => $c->address }, http => q{
    deferred_redis %%SEEDS%% replicas=1 replicas_timeout=2s connect_timeout=500ms;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
});
my $res = $n->request('POST', '/_ah/queue/deferred', json => qq({"func":"f","queue":"$q","args":["one"]}));
is($res->{status}, 201, 'a task: 201 (acknowledged by the replica)');
my ($id) = $res->{body} =~ /"id":"([^"]+)"/;

# the host crashes; its AOF lost the last write (the enqueue's MULTI/EXEC)
$c->kill_node($A);
my ($aof) = sort { -M $a <=> -M $b } glob("$A->{dir}/appendonlydir/*.incr.aof");
my $text = DQTest::slurp($aof);
my $cut = rindex($text, "*1\r\n\$5\r\nMULTI\r\n");
ok($cut > 0 && index($text, $id, $cut) > $cut, "the AOF's last MULTI holds the task ($cut of " . length($text) . ' bytes)');
ok(truncate($aof, $cut), 'cut off');

# restarted only after the replica took over
ok(DQTest::wait_for(sub { delete $rep->{sock}; (eval { $rep->cmd('ROLE') } // [''])->[0] eq 'master' }, 30, 0.1),
   'the replica promoted (node timeout 2 s)');
$c->revive($A);
ok(DQTest::wait_for(sub { delete $A->{sock}; (eval { $A->cmd('INFO', 'replication') } // '') =~ /role:slave.*master_link_status:up/s }, 30, 0.2),
   'the old master rejoined as a replica, in sync');
my $owner = $c->owner($q);
is($owner->port, $rep->port, "the queue's master is the promoted replica");
is($owner->cmd('HEXISTS', "dq2:{$q}:tasks", $id), 1, "the 201'd task is on the queue's master");
$A->cmd('READONLY');
is($A->cmd('HEXISTS', "dq2:{$q}:tasks", $id), 1, 'and on the restarted node (resynced from it)');
$n->stop;
done_testing;
