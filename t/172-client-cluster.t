# The C client and deferred-cli on a real Redis Cluster (issue 15, item 1):
# a local 3-master / 3-replica cluster (t/lib/DQCluster.pm), the address
# cluster:HOST:PORT,... with a replica as the first seed.
#  - queues on each of the 3 masters: the C client's batch, single, named,
#    stats, pause calls (t/unit/test_client_cluster.c spread), each task on
#    its queue's master;
#  - every deferred-cli subcommand through the cluster, the global keys
#    (dq:queues, dq:workers, dq:worker:*) on their own slots' nodes;
#    migrate of a queue's contract v1 keys (dq:{q}:*, the same slot as
#    dq2:{q}:*);
#  - a slot migrated by hand (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE,
#    SETSLOT NODE) while the client enqueues in a loop: ASK and MOVED both
#    answered (errorstats of the source node), every call that returned OK
#    stored exactly once on the new master.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQCluster;
use DQScripts;
use Time::HiRes qw(time sleep);

my $bin = DQTest::need_built(DQTest::build_dir() . '/t/test_client_cluster',
                             'unit test test_client_cluster');
my $cli = DQTest::bin('deferred-cli');
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir);
my @masters = $c->masters;
is(scalar @masters, 3, '3 masters');
my %is_master = map { $_->port => 1 } @masters;
my ($replica) = grep { !$is_master{ $_->port } } $c->nodes;
my $addr = 'cluster:' . join(',', map { $_->address } $replica, $masters[0]);

# one queue per master
my (%on, @q);
for my $i (1 .. 200) {
    my $p = $c->owner("cq$i")->port;
    next if $on{$p};
    $on{$p} = "cq$i";
    push @q, "cq$i";
    last if @q == 3;
}
is(scalar @q, 3, "queues @q on the 3 masters");
sub node_of { $c->owner($_[0]) }
sub global_owner {       # the master serving a global key's slot
    my ($key) = @_;
    my $n = $masters[0];
    my $slot = $n->cmd('CLUSTER', 'KEYSLOT', $key);
    for my $r (@{ $n->cmd('CLUSTER', 'SLOTS') }) {
        return (grep { $_->port == $r->[2][1] } $c->nodes)[0]
            if $slot >= $r->[0] && $slot <= $r->[1];
    }
}
sub cli { return DQTest::capture($cli, '-r', $addr, @_) }

# ---- a plain address of one node: a clear error, not a crash
{
    my $other = $c->other($q[0]);
    my ($rc, $out, $err) = DQTest::capture($cli, '-r', $other->address,
                                           'defer', '-q', $q[0], 'ops.run');
    is($rc, 1, 'a plain node address, queue on another node: exit 1');
    like($err, qr/MOVED \d+ \S+ \(\S+ is a Redis Cluster node: give the address as cluster:/,
         '... saying to give a cluster: address') or diag $err;
}

# ---- the C client: 3 queues, 3 masters
{
    my ($rc, $out, $err) = DQTest::capture($bin, 'spread', $addr, @q);
    is($rc, 0, 'test_client_cluster spread: every assertion holds') or diag "$out$err";
    for my $q (@q) {
        is(node_of($q)->cmd('ZCARD', DQTest::dq_key($q, 'eta')), 4,
           "$q: its 4 tasks on its own master (" . node_of($q)->port . ')');
    }
    my $qn = global_owner('dq:queues');
    is_deeply([sort @{ $qn->cmd('SMEMBERS', 'dq:queues') }], [sort @q],
              'dq:queues on the master of its own slot names the 3 queues');
}

# ---- deferred-cli: every subcommand through the cluster
{
    my ($rc, $out, $err) = cli('defer', '-q', $q[1], '--count', 5, 'ops.run', 'x');
    is($rc, 0, 'defer --count 5') or diag $err;
    ($rc, $out, $err) = cli('defer', '-q', $q[2], '--id', 'task-1', 'ops.run', 'x');
    is($rc, 0, 'defer --id') or diag $err;
    ($rc, $out, $err) = cli('defer', '-q', $q[2], '-n', 'nm', 'ops.run');
    is($rc, 0, 'defer -n') or diag $err;
    ($rc, $out, $err) = cli('defer', '-q', $q[2], '-n', 'nm', 'ops.run');
    is($rc, 3, 'the same name again: exit 3 (duplicate)');

    ($rc, $out, $err) = cli('stats', $q[1]);
    is($rc, 0, 'stats') or diag $err;
    like($out, qr/^waiting 9$/m, "stats $q[1]: 9 waiting (4 + 5)") or diag $out;

    ($rc, $out, $err) = cli('--json', 'queues');
    is($rc, 0, 'queues') or diag $err;
    like($out, qr/"$_"/, "queues lists $_") for @q;

    ($rc, $out, $err) = cli('list', $q[2]);
    is($rc, 0, 'list') or diag $err;
    like($out, qr/task-1/, 'list shows task-1');
    ($rc, $out, $err) = cli('show', $q[2], 'task-1');
    is($rc, 0, 'show') or diag $err;
    like($out, qr/ops\.run/, 'show decodes it');
    ($rc, $out, $err) = cli('delete', $q[2], 'task-1');
    is($rc, 0, 'delete') or diag $err;
    ($rc, $out, $err) = cli('show', $q[2], 'task-1');
    is($rc, 5, 'show after delete: exit 5 (not found)');

    for my $x (['pause', 1], ['resume', 0]) {
        ($rc, $out, $err) = cli($x->[0], @q);
        is($rc, 0, "$x->[0] of the 3 queues") or diag $err;
    }
    ($rc, $out, $err) = cli('purge', $q[0], '--state', 'all', '--yes');
    is($rc, 0, 'purge') or diag $err;
    is(node_of($q[0])->cmd('ZCARD', DQTest::dq_key($q[0], 'eta')), 0,
       "purge emptied $q[0] on its master");
    ($rc, $out, $err) = cli('forget', $q[0]);
    is($rc, 5, 'forget of a queue with settings stored: exit 5 (kept)') or diag $err;
    ($rc, $out, $err) = cli('defer', '-q', 'fq', 'ops.run');
    is($rc, 0, 'defer to a new queue fq') or diag $err;
    ($rc, $out, $err) = cli('purge', 'fq', '--state', 'all', '--tombstone', 0, '--yes');
    is($rc, 0, 'purge it, no tombstone') or diag $err;
    ($rc, $out, $err) = cli('forget', 'fq');
    is($rc, 0, 'forget fq (empty)') or diag $err;
    ok(!grep({ $_ eq 'fq' } @{ global_owner('dq:queues')->cmd('SMEMBERS', 'dq:queues') }),
       'fq gone from dq:queues');
    ($rc, $out, $err) = cli('error', $q[1], 'nope');
    is($rc, 5, 'error of an unknown task: exit 5');

    my $cf = "$dir/queues.conf";
    open my $fh, '>', $cf or die;
    print $fh "queue $q[1] { rate 5/s; }\n";
    close $fh;
    ($rc, $out, $err) = cli('config', 'apply', $cf);
    is($rc, 0, 'config apply') or diag $err;
    ($rc, $out, $err) = cli('config', 'show', $q[1]);
    is($rc, 0, 'config show') or diag $err;
    like($out, qr/^\Q$q[1]\E\s+applied\S*\s+\S+\s+5\s/m, 'config show: the rate')
        or diag $out;
    ($rc, $out, $err) = cli('config', 'clear', $q[1]);
    is($rc, 0, 'config clear') or diag $err;

    # a worker's heartbeat as worker/live.c writes it: the registry and the
    # worker's hash live on different slots
    my $now = int(time * 1000);
    my $wid = 'hostx:4242';
    global_owner('dq:workers')->cmd('ZADD', 'dq:workers', $now + 60000, $wid);
    global_owner("dq:worker:$wid")->cmd('HSET', "dq:worker:$wid", host => 'hostx',
        pid => 4242, child => 0, queues => $q[1], running => 0, done => 7,
        failed => 0, started_ms => $now, beat_ms => $now);
    ($rc, $out, $err) = cli('--json', 'workers');
    is($rc, 0, 'workers') or diag $err;
    like($out, qr/"id":\s*"\Q$wid\E".*"done":\s*7/s, 'workers: the registered worker and its hash')
        or diag $out;

    # contract v1 keys of one queue (dq:{q}:*), a dead task among them
    my $vq = $q[2];
    my $S = DQScripts->new(node_of($vq));
    my $env = DQScripts::env1('v1a', $vq, undef, 'ops.run', []);
    $S->v1($vq, 'enqueue', 60000, 1, 'v1a', $env, '', -1, -1, 0);
    $env = DQScripts::env1('v1d', $vq, undef, 'ops.run', []);
    $S->v1($vq, 'enqueue', 60000, 1, 'v1d', $env, '', -1, -1, 0);
    my $got = $S->v1($vq, 'claim', 1, 60000, 0, 0, 1, 0, 'c1', 0, 0, 0);
    my $cid = $got->[3];
    $S->v1($vq, 'bury', $cid, 'c1', 'fatal: boom', 0, 0, 60000, '', '1');
    ($rc, $out, $err) = cli('migrate', $vq);
    is($rc, 0, 'migrate (v1 -> v2)') or diag $err;
    like($out, qr/moved 2 tasks/, 'migrate: its 2 tasks moved') or diag $out;
    ($rc, $out, $err) = cli('migrate', '--all');
    is($rc, 0, 'migrate --all (every queue of dq:queues)') or diag $err;
    ($rc, $out, $err) = cli('stats', $vq);
    like($out, qr/^dead 1$/m, "$vq: the v1 dead task is dead in v2") or diag "$out$err";
    unlike($err, qr/v1/, 'no v1 data left') or diag $err;
    ($rc, $out, $err) = cli('dead', $vq);
    is($rc, 0, 'dead') or diag $err;
    like($out, qr/^\Q$cid\E fatal: boom/m, 'dead: the task and its error') or diag $out;
    ($rc, $out, $err) = cli('error', $vq, $cid);
    is($rc, 0, 'error') or diag $err;
    ($rc, $out, $err) = cli('retry', $vq, '--all');
    is($rc, 0, 'retry --all') or diag $err;
    ($rc, $out, $err) = cli('requeue-all', $vq);
    is($rc, 0, 'requeue-all (nothing left dead)') or diag $err;
    ($rc, $out, $err) = cli('stats', $vq);
    like($out, qr/^dead 0$/m, "$vq: nothing dead after retry") or diag $out;

    ($rc, $out, $err) = DQTest::capture($cli, '-r', $addr, '--db', 2, 'stats', $q[1]);
    isnt($rc, 0, '--db 2 on a cluster: refused');
    like($err, qr/only database 0/, '... saying why') or diag $err;
}

# ---- a slot migrated while the client enqueues: ASK and MOVED
{
    my $mq = 'migq';
    my $src = node_of($mq);
    my ($dst) = grep { $_->port != $src->port } @masters;
    my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$mq}");
    my $src_id = $src->cmd('CLUSTER', 'MYID');
    my $dst_id = $dst->cmd('CLUSTER', 'MYID');
    $src->cmd('CONFIG', 'RESETSTAT');
    my $stop = "$dir/stop";
    my $log = "$dir/loop.out";
    my $pid = DQTest::spawn(cmd => [$bin, 'loop', $addr, $mq, $stop], log => $log,
                            name => 'loop');
    DQTest::wait_for(sub { (() = DQTest::slurp($log) =~ /^ok /mg) >= 20 }, 10)
        or diag DQTest::slurp($log);
    is($dst->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $src_id), 'OK', 'SETSLOT IMPORTING');
    is($src->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $dst_id), 'OK', 'SETSLOT MIGRATING');
    sleep 0.3;
    my $moved = 0;
    for (1 .. 50) {
        my $keys = $src->cmd('CLUSTER', 'GETKEYSINSLOT', $slot, 1000);
        last unless @$keys;
        my $r = $src->cmd('MIGRATE', '127.0.0.1', $dst->port, '', 0, 5000, 'KEYS', @$keys);
        $moved += @$keys;
    }
    ok($moved > 0, "MIGRATE moved the slot's $moved keys");
    sleep 0.4;      # the ASK window: the keys on dst, the slot still src's
    for my $n (@masters) {
        $n->cmd('CLUSTER', 'SETSLOT', $slot, 'NODE', $dst_id);
    }
    sleep 1.0;      # stale maps: MOVED
    open my $t, '>', $stop or die;
    close $t;
    my $status;
    DQTest::wait_for(sub { defined($status = DQTest::reaped($pid)) }, 20);
    is($status, 0, 'the enqueue loop ended cleanly');
    my $out = DQTest::slurp($log);
    my @ok = $out =~ /^ok (\S+)$/mg;
    my @fail = $out =~ /^fail (.*)$/mg;
    my @stats = $out =~ /^stats \d+$/mg;
    my @sfail = $out =~ /^statsfail (.*)$/mg;
    diag(sprintf "loop: %d enqueued, %d failed (%s), stats %d ok / %d failed",
         scalar @ok, scalar @fail, $fail[0] // '-', scalar @stats, scalar @sfail);
    my $es = $src->cmd('INFO', 'errorstats');
    my ($ask) = $es =~ /errorstat_ASK:count=(\d+)/;
    my ($mv) = $es =~ /errorstat_MOVED:count=(\d+)/;
    diag("source node errorstats: ASK " . ($ask // 0) . ", MOVED " . ($mv // 0)
         . ", dst ASKING calls: " . (($dst->cmd('INFO', 'commandstats') =~ /cmdstat_asking:calls=(\d+)/)[0] // 0));
    ok(($ask // 0) > 0, 'the client was sent ASK (and followed it)');
    ok(($mv // 0) > 0, 'the client was sent MOVED (and followed it)');
    ok(@ok > 40, 'tasks stored before, during and after the migration');
    my $eta = DQTest::dq_key($mq, 'eta');
    is($src->cmd('CLUSTER', 'COUNTKEYSINSLOT', $slot), 0,
       'nothing of the queue left on the old master');
    my $n = $dst->cmd('ZCARD', $eta);
    my %seen;
    my @missing = grep { !defined $dst->cmd('ZSCORE', $eta, $_) } @ok;
    is(scalar @missing, 0, 'every task whose call returned OK is on the new master')
        or diag "missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]";
    is(scalar(grep { $seen{$_}++ } @ok), 0, 'no id returned twice');
    ok($n >= @ok && $n <= @ok + @fail,
       "stored exactly once: $n in the queue for " . scalar(@ok) . ' OK calls and '
       . scalar(@fail) . ' failed ones');
    is(scalar(@sfail), 0, 'every stats call answered (single-key: ASK serves it)')
        or diag $sfail[0];
    my ($rc, $sout) = cli('stats', $mq);
    like($sout, qr/^waiting $n$/m, 'deferred-cli stats reads the moved queue');
}

done_testing();
