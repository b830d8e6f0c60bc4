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
#  - scripts flushed (NOSCRIPT -> EVAL per node); a sharded queue's shards
#    on several masters; DEFERRED_REDIS; requirepass on every node;
#  - a slot migrated by hand (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE,
#    SETSLOT NODE) while the client enqueues in a loop: ASK, TRYAGAIN and
#    MOVED all answered (the nodes' errorstats), commands after ASKING
#    served, every call that returned OK stored exactly once on the new
#    master, a batch's task for another node never failed;
#  - redirects that never end: the call fails after 5, saying so;
#  - a connection killed, then CLUSTER FAILOVER under the loop: nothing
#    OK'd lost.
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

# test_client_cluster loop on one queue, in the background
sub loop_start {
    my ($q, $tag, @q2) = @_;
    my %l = (stop => "$dir/stop-$tag", log => "$dir/loop-$tag.out");
    $l{pid} = DQTest::spawn(cmd => [$bin, 'loop', $addr, $q, $l{stop}, @q2],
                            log => $l{log}, name => "loop-$tag");
    $l{oks} = sub { scalar(() = DQTest::slurp($l{log}) =~ /^ok /mg) };
    DQTest::wait_for(sub { $l{oks}->() >= 20 }, 10) or diag DQTest::slurp($l{log});
    return \%l;
}
# stop it: its output, the ids of the calls that returned OK, the failures
sub loop_stop {
    my ($l) = @_;
    open my $t, '>', $l->{stop} or die;
    close $t;
    my $status;
    DQTest::wait_for(sub { defined($status = DQTest::reaped($l->{pid})) }, 20);
    is($status, 0, 'the enqueue loop ended cleanly');
    my $out = DQTest::slurp($l->{log});
    return ($out, [$out =~ /^ok (\S+)$/mg], [$out =~ /^fail (.*)$/mg],
            [$out =~ /^ok2 (\S+)$/mg], [$out =~ /^fail2 (.*)$/mg]);
}
# every OK'd task on node, the queue holding no more than OK + failed
sub stored_once {
    my ($node, $q, $ok, $fail) = @_;
    my $eta = DQTest::dq_key($q, 'eta');
    my @missing = grep { !defined $node->cmd('ZSCORE', $eta, $_) } @$ok;
    is(scalar @missing, 0, 'every task whose call returned OK is on the new master')
        or diag "missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]";
    my %seen;
    is(scalar(grep { $seen{$_}++ } @$ok), 0, 'no id returned twice');
    my $n = $node->cmd('ZCARD', $eta);
    ok($n >= @$ok && $n <= @$ok + @$fail,
       "stored exactly once: $n in the queue for " . scalar(@$ok) . ' OK calls and '
       . scalar(@$fail) . ' failed ones');
    return $n;
}

# ---- a plain address of one node: a clear error, not a crash
{
    my $other = $c->other($q[0]);
    my ($rc, $out, $err) = DQTest::capture($cli, '-r', $other->address,
                                           'defer', '-q', $q[0], 'ops.run');
    is($rc, 1, 'a plain node address, queue on another node: exit 1');
    like($err, qr/MOVED \d+ \S+ \(\S+ is a Redis Cluster node: give the address as cluster:/,
         '... saying to give a cluster: address') or diag $err;
}

# ---- seeds: a dead one skipped; none answering, or not a cluster: clear
{
    my $dead = '127.0.0.1:' . DQTest::free_port();
    my ($rc, $out, $err) = DQTest::capture($cli, '-r', "cluster:$dead," . $masters[1]->address,
                                           'stats', $q[0]);
    is($rc, 0, 'a dead first seed: the next one gives the map') or diag $err;
    ($rc, $out, $err) = DQTest::capture($cli, '-r', "cluster:$dead", 'stats', $q[0]);
    is($rc, 1, 'no seed answering: exit 1');
    like($err, qr/redis cluster: no node gave the slot map \(1 seeds asked; the last: .*\Q$dead\E/,
         '... saying so') or diag $err;
    my $plain = DQTest::Redis->start(dir => do { mkdir "$dir/plain"; "$dir/plain" });
    ($rc, $out, $err) = DQTest::capture($cli, '-r', 'cluster:' . $plain->address, 'stats', $q[0]);
    is($rc, 1, 'a seed that is not a cluster node: exit 1');
    like($err, qr/CLUSTER SLOTS: .*cluster support disabled/, '... saying so') or diag $err;
    $plain->stop;
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
    # deferred-worker pause|resume: the blocking client too
    ($rc, $out, $err) = DQTest::capture(DQTest::bin('deferred-worker'), '-r', $addr,
                                        'pause', @q);
    is($rc, 0, 'deferred-worker -r cluster:... pause of the 3 queues') or diag $err;
    is(scalar(grep { (node_of($_)->cmd('HGET', DQTest::dq_key($_, 'conf'), 'paused') // '')
                     eq '1' } @q), 3, '... each paused on its own master');
    ($rc, $out, $err) = DQTest::capture(DQTest::bin('deferred-worker'), '-r', $addr,
                                        'resume', @q);
    is($rc, 0, 'deferred-worker resume') or diag $err;
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

# ---- scripts flushed on every master: NOSCRIPT -> EVAL on each node
{
    my %evals;
    for my $m (@masters) {
        $m->cmd('SCRIPT', 'FLUSH');
        $m->cmd('CONFIG', 'RESETSTAT');
    }
    for my $q (@q) {
        my ($rc, $out, $err) = cli('defer', '-q', $q, 'ops.run');
        is($rc, 0, "defer to $q after SCRIPT FLUSH") or diag $err;
    }
    for my $m (@masters) {
        my ($n) = $m->cmd('INFO', 'commandstats') =~ /cmdstat_eval:calls=(\d+)/;
        ok(($n // 0) >= 1, 'master ' . $m->port . ': the script sent as EVAL there');
    }
}

# ---- a sharded queue (docs/SCALING.md): its shards {hq#i} on several
# masters, one enqueue call spreading over them, stats summing them
{
    my ($rc, $out, $err) = cli('queue', 'hq', '--shards', 4);
    is($rc, 0, 'queue hq --shards 4 through the cluster') or diag $err;
    ($rc, $out, $err) = cli('defer', '-q', 'hq', '--count', 40, 'ops.run');
    is($rc, 0, 'defer --count 40 to the sharded queue') or diag $err;
    my (%nodes, $sum);
    for my $i (0 .. 3) {
        my $sq = $i ? "hq#$i" : 'hq';
        my $n = node_of($sq);
        my $k = $i ? "dq2:{hq#$i}:eta" : DQTest::dq_key('hq', 'eta');
        $sum += $n->cmd('ZCARD', $k);
        $nodes{ $n->port } = 1;
    }
    is($sum, 40, 'the 40 tasks are in the 4 shards, each on its slot\'s master');
    diag('the 4 shards of hq on ' . scalar(keys %nodes) . ' masters');
    ($rc, $out, $err) = cli('stats', 'hq');
    like($out, qr/^waiting 40$/m, 'stats hq sums its shards') or diag "$out$err";
}

# ---- $DEFERRED_REDIS; a password on every node (AUTH on each connection)
{
    local $ENV{DEFERRED_REDIS} = $addr;
    my ($rc, $out, $err) = DQTest::capture($cli, 'stats', $q[1]);
    is($rc, 0, 'DEFERRED_REDIS=cluster:...') or diag $err;
    for my $n ($c->nodes) {         # the test's connections stay logged in
        $n->cmd('CONFIG', 'SET', 'masterauth', 'pw7');
        $n->cmd('CONFIG', 'SET', 'requirepass', 'pw7');
    }
    for my $q (@q) {
        ($rc, $out, $err) = DQTest::capture($cli, '--password', 'pw7', 'defer', '-q', $q,
                                            'ops.run');
        is($rc, 0, "with --password: a task for $q") or diag $err;
    }
    ($rc, $out, $err) = DQTest::capture($cli, '--password', 'pw7', '--json', 'queues');
    is($rc, 0, '... and queues') or diag $err;
    ($rc, $out, $err) = DQTest::capture($cli, 'stats', $q[1]);
    is($rc, 1, 'without the password: exit 1');
    like($err, qr/NOAUTH|Authentication required/i, '... saying so') or diag $err;
    for my $n ($c->nodes) {
        $n->cmd('CONFIG', 'SET', 'requirepass', '');
        $n->cmd('CONFIG', 'SET', 'masterauth', '');
    }
}

# ---- a slot migrated while the client enqueues: ASK and MOVED
{
    my $mq = 'migq';
    my $src = node_of($mq);
    my ($dst) = grep { $_->port != $src->port } @masters;
    my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$mq}");
    my $src_id = $src->cmd('CLUSTER', 'MYID');
    my $dst_id = $dst->cmd('CLUSTER', 'MYID');
    # a queue on dst, enqueued behind migq in the same pipeline
    my ($dq) = grep { node_of($_)->port == $dst->port } map { "dq$_" } 1 .. 200;
    $_->cmd('CONFIG', 'RESETSTAT') for $src, $dst;
    my $loop = loop_start($mq, 'migrate', $dq);
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
    # the ASK window: the keys on dst, the slot still src's. An enqueue
    # (a script with keys not created yet) is answered TRYAGAIN there and
    # retried for ~1 s, then fails ("not run"); the single-key stats
    # commands that come next are served through ASK. The window stays
    # open until the destination has served a command after ASKING (more
    # ASKING calls than TRYAGAIN answers), at least 1.6 s: a fixed 1.6 s
    # closed it before the first stats call on a slow CI machine
    my $t_ask = time;
    DQTest::wait_for(sub {
        my ($t) = $dst->cmd('INFO', 'errorstats') =~ /errorstat_TRYAGAIN:count=(\d+)/;
        my ($a) = $dst->cmd('INFO', 'commandstats') =~ /cmdstat_asking:calls=(\d+)/;
        time - $t_ask >= 1.6 && ($a // 0) > ($t // 0);
    }, 15, 0.1);
    for my $n (@masters) {
        $n->cmd('CLUSTER', 'SETSLOT', $slot, 'NODE', $dst_id);
    }
    sleep 1.0;      # stale maps: MOVED
    my ($out, $okr, $failr, $ok2, $fail2) = loop_stop($loop);
    my @ok = @$okr;
    my @fail = @$failr;
    diag(sprintf "loop, $dq behind $mq: %d enqueued, %d failed (%s)",
         scalar @$ok2, scalar @$fail2, $fail2->[0] // '-');
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
    my ($try) = $dst->cmd('INFO', 'errorstats') =~ /errorstat_TRYAGAIN:count=(\d+)/;
    my ($asking) = $dst->cmd('INFO', 'commandstats') =~ /cmdstat_asking:calls=(\d+)/;
    diag('destination errorstats: TRYAGAIN ' . ($try // 0));
    ok(($try // 0) > 0, 'the enqueue script was sent TRYAGAIN (keys split) and retried');
    ok(($asking // 0) > ($try // 0), 'commands sent after ASKING were served by the '
       . 'destination (' . ($asking // 0) . ' ASKING, ' . ($try // 0) . ' TRYAGAIN)');
    ok(@ok > 40, 'tasks stored before, during and after the migration');
    ok(@$ok2 > 20, "tasks of $dq stored in the same calls");
    is(scalar @$fail2, 0, "none of ${dq}'s tasks failed (only ${mq}'s call was "
       . 'refused, each task has its own status)');
    is($src->cmd('CLUSTER', 'COUNTKEYSINSLOT', $slot), 0,
       'nothing of the queue left on the old master');
    my $n = stored_once($dst, $mq, \@ok, \@fail);
    stored_once($dst, $dq, $ok2, $fail2);
    is(scalar(@sfail), 0, 'every stats call answered (single-key: ASK serves it)')
        or diag $sfail[0];
    my ($rc, $sout) = cli('stats', $mq);
    like($sout, qr/^waiting $n$/m, 'deferred-cli stats reads the moved queue')
        or diag $sout;
}

# ---- redirects that never end (a slot MIGRATING on its master, the target
# not IMPORTING it: ASK there, MOVED back): the call fails after 5,
# saying so, nothing stored
{
    my $lq = 'loopq';
    my $src = node_of($lq);
    my ($dst) = grep { $_->port != $src->port } @masters;
    my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$lq}");
    is($src->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $dst->cmd('CLUSTER', 'MYID')),
       'OK', "slot $slot MIGRATING on its master, not IMPORTING on the target");
    my ($rc, $out, $err) = cli('defer', '-q', $lq, 'ops.run');
    is($rc, 1, 'defer: exit 1');
    like($err, qr/slot $slot still redirected after 5 redirects \(the last: (ASK|MOVED) $slot /,
         '... after 5 redirects, saying so') or diag $err;
    note($err);
    is($src->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE'), 'OK',
       'slot stable again');
    is($src->cmd('CLUSTER', 'COUNTKEYSINSLOT', $slot) + $dst->cmd('CLUSTER', 'COUNTKEYSINSLOT', $slot),
       0, 'nothing stored');
    ($rc, $out, $err) = cli('defer', '-q', $lq, 'ops.run');
    is($rc, 0, 'the next defer works') or diag $err;
}

# ---- a queue's keys split between two nodes (one key MIGRATEd, the slot
# MIGRATING/IMPORTING): its enqueue script is answered TRYAGAIN, retried
# ~1 s, then refused; in the same dq_defer_many a task for a queue on
# another node is stored and says so (each call its own status)
{
    my $sq = 'splitq';
    my $src = node_of($sq);
    my ($dst) = grep { $_->port != $src->port } @masters;
    my ($oq) = grep { node_of($_)->port == $dst->port } map { "oq$_" } 1 .. 200;
    my ($rc, $out, $err) = cli('defer', '-q', $sq, '--count', 3, 'ops.run');
    is($rc, 0, "3 tasks in $sq") or diag $err;
    my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$sq}");
    $dst->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $src->cmd('CLUSTER', 'MYID'));
    $src->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $dst->cmd('CLUSTER', 'MYID'));
    my $eta = DQTest::dq_key($sq, 'eta');
    is($src->cmd('MIGRATE', '127.0.0.1', $dst->port, $eta, 0, 5000), 'OK',
       "${sq}'s eta set moved, its other keys not");
    my $t0 = time;
    ($rc, $out, $err) = DQTest::capture($bin, 'batch', $addr, $sq, $oq);
    my $took = time - $t0;
    like($out, qr/^rc 0$/m, 'dq_defer_many made its calls') or diag "$out$err";
    like($out, qr/^status1 -6$/m, "the task for $sq: DQ_EREDIS") or diag $out;
    like($out, qr/^status2 0$/m, "the task for $oq (another node): stored, DQ_OK") or diag $out;
    like($out, qr/^err enqueue: TRYAGAIN/m, 'errstr: the TRYAGAIN reply') or diag $out;
    ok($took >= 0.9, sprintf('TRYAGAIN retried before giving up (%.1f s)', $took));
    for my $k (@{ $src->cmd('CLUSTER', 'GETKEYSINSLOT', $slot, 1000) }) {
        $src->cmd('MIGRATE', '127.0.0.1', $dst->port, $k, 0, 5000);
    }
    $_->cmd('CLUSTER', 'SETSLOT', $slot, 'NODE', $dst->cmd('CLUSTER', 'MYID')) for @masters;
    is($dst->cmd('ZCARD', $eta), 3, "$sq: its 3 tasks, the refused one not among them");
    is($dst->cmd('ZCARD', DQTest::dq_key($oq, 'eta')), 1, "$oq: its task");
}

# ---- a connection killed, then the queue's master replaced by its replica
# (CLUSTER FAILOVER) while the client enqueues: lost replies are errors,
# MOVED from the demoted master is followed, nothing OK is lost
{
    my $fq = 'foq';
    my $old = node_of($fq);
    my ($rep) = grep {
        my $i = $_->cmd('INFO', 'replication');
        $i =~ /role:slave/ && $i =~ /master_port:(\d+)/ && $1 == $old->port
    } $c->nodes;
    ok($rep, "$fq on " . $old->port . ', its replica ' . $rep->port);
    my $loop = loop_start($fq, 'failover');
    my $oks = $loop->{oks};
    my $killed = $old->cmd('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    ok($killed >= 1, "CLIENT KILL: $killed connection(s) of the client closed");
    my $n0 = $oks->();
    DQTest::wait_for(sub { $oks->() >= $n0 + 20 }, 10);
    ok($oks->() >= $n0 + 20, 'the client connected again by itself');
    is($rep->cmd('CLUSTER', 'FAILOVER'), 'OK', 'CLUSTER FAILOVER on the replica');
    ok(DQTest::wait_for(sub { $rep->cmd('ROLE')->[0] eq 'master' }, 15),
       'the replica is the master now');
    my $n1 = $oks->();
    DQTest::wait_for(sub { $oks->() >= $n1 + 50 }, 10);
    my ($out, $ok, $fail) = loop_stop($loop);
    diag(sprintf "loop: %d enqueued, %d failed (%s)", scalar @$ok, scalar @$fail,
         join(' | ', @$fail[0 .. ($#$fail < 2 ? $#$fail : 2)]));
    ok(@$ok > $n1 + 40, 'tasks stored after the failover');
    stored_once($rep, $fq, $ok, $fail);
    ok(@$fail <= 5, 'a few calls failed at most (the killed connection)');
}

done_testing();
