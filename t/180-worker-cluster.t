# The worker on a Redis Cluster (issue 15, item 1): `redis cluster:SEED`
# on a local 3-master / 3-replica cluster (t/lib/DQCluster.pm), 5 queues
# spread over the 3 masters, 2 children.
#   - idle: commands per second per child, summed over the masters
#     (INFO commandstats; printed for docs/SCALING.md)
#   - every queue's tasks run, each once (counted by the task records)
#   - a child SIGKILLed while running tasks: the master hands them back
#     through the cluster (worker/held.c)
#   - a queue's slot moved to another master by hand (CLUSTER SETSLOT
#     IMPORTING/MIGRATING, MIGRATE key by key, SETSLOT NODE) while its
#     tasks run: none lost, none run twice
#   - CLUSTER FAILOVER on the replica of a queue's master while its tasks
#     run: none lost, none run twice
#   - a master killed (SIGKILL) while its queue's tasks run, its replica
#     taking over: the worker follows; none lost (enqueued before the
#     kill and replicated: WAIT), the runs counted and printed (an ack the
#     replica had not received yet means a second run: at least once)
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQCluster;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();

# a database other than 0 is refused when the configuration is read
{
    open my $fh, '>', "$dir/db.conf" or die;
    print {$fh} "redis \"cluster:127.0.0.1:7000,127.0.0.1:7001\";\nredis_db 1;\nqueue a;\n";
    close $fh;
    my ($rc, $out, $err) = DQTest::capture(DQWorker::worker_bin(), '-t', '-c', "$dir/db.conf");
    isnt($rc, 0, 'redis_db 1 with a cluster address: refused');
    like($err, qr/"redis_db 1" with a cluster address: a Redis Cluster has database 0 only/,
         '  saying why') or diag $err;
}
my $c = DQCluster->start(dir => $dir);
my @m = $c->masters;
is(scalar @m, 3, '3 masters');

# 5 queues, every master serving at least one
my (@q, %on);
for my $i (1 .. 200) {
    my $name = "cq$i";
    my $p = $c->owner($name)->port;
    next if ($on{$p} // 0) >= 2;
    push @q, $name;
    $on{$p}++;
    last if @q == 5 && keys %on == 3;
    pop @q, $on{$p}-- if @q == 5;
}
is(scalar keys %on, 3, "queues @q on all 3 masters");

sub owner { $c->owner($_[0]) }
# n tasks of ops.span(rec, ms) on queue q, through its master
sub defer_n {
    my ($q, $n, $rec, $ms) = @_;
    return DQWorker::defer(owner($q), '-q', $q, '--count', $n,
                           'ops.span', $rec, $ms);
}
# ids wanted -> (lost, run twice or more)
sub tally {
    my ($rec, @ids) = @_;
    my %n = %{ DQWorker::count_by_id($rec, 'E') };
    my $lost = grep { !$n{$_} } @ids;
    my $twice = grep { ($n{$_} // 0) > 1 } @ids;
    return ($lost, $twice);
}
sub wait_done {
    my ($rec, $n, $t) = @_;
    return DQWorker::wait_lines($rec, 'E', $n, $t // 60);
}
sub node_id { $_[0]->cmd('CLUSTER', 'MYID') }
# calls per command summed over the masters (REPLCONF, the replicas'
# own traffic, left out)
sub cmdstats {
    my %n;
    for my $x (@_) {
        my $i = $x->cmd('INFO', 'commandstats');
        $n{$1} += $2 while $i =~ /^cmdstat_(\w+(?:\|\w+)?):calls=(\d+)/mg;
    }
    delete $n{replconf};
    return \%n;
}
sub conf {
    my ($seed, $extra) = @_;
    return "redis cluster:" . join(',', map { $_->address } @$seed) . ";\n"
         . "library \"$lib\";\nprocesses 2;\nthreads 4;\n$extra"
         . join('', map { "queue $_ { retry_limit 20; min_backoff 100ms; max_backoff 200ms; }\n" } @q);
}

# ---- idle: commands per second per child (the default lease, 30 s)
# and connections: each child one per master it has queues on, plus one
# per wake slot (the seed's connection closed once unused)
sub clients {
    my $n = 0;
    for my $x (@_) {
        my $l = $x->cmd('CLIENT', 'LIST');
        $n += () = $l =~ /^(?!.*flags=[SM])/mg;      # not replication links
    }
    return $n;
}
{
    my @ms = $c->masters;
    my $c0 = clients(@ms);
    my $w = DQWorker::start_master(undef, $dir, name => 'idle', wait => 0,
                                   conf => conf([$m[0]], ''));
    DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /cluster map from/ }, 10);
    sleep 4;
    my %slots = map { $m[0]->cmd('CLUSTER', 'KEYSLOT', "{$_}") => 1 } @q;
    my $conns = clients(@ms) - $c0;
    diag("connections of 2 idle children on the masters: $conns (" . scalar(@ms)
         . " masters, " . scalar(keys %slots) . " wake slots)");
    is($conns, 2 * (@ms + keys %slots), '  one per master and one per wake slot, per child');
    my $secs = $ENV{DQ_IDLE_S} || 10;
    my $n0 = cmdstats(@ms);
    sleep $secs;
    my $n1 = cmdstats(@ms);
    $n1->{info} -= @ms;                 # ours, the first look's
    my %d = map { $_ => $n1->{$_} - ($n0->{$_} // 0) } keys %$n1;
    my $n = 0;
    $n += $_ for values %d;
    diag(sprintf("idle, 2 children, 5 queues on 3 masters: %d commands in %d s: "
                 . "%.2f commands/s per child (%s)", $n, $secs, $n / $secs / 2,
                 join(', ', map { "$_ $d{$_}" } grep { $d{$_} } sort keys %d)));
    ok($n / $secs / 2 < 5, 'idle cost stays small (under 5 commands/s per child)');
    is(DQTest::stop_pid($w->{pid}), 0, 'the idle worker stops cleanly');
}

# ---- the worker serving the 5 queues; seeds: nobody listening, then a
# replica and a master
my ($replica) = grep { my $x = $_; !grep { $_->port == $x->port } @m } $c->nodes;
my $dead = bless { port => DQTest::free_port() }, 'DQTest::Redis';
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 0,
                               conf => conf([$dead, $replica, $m[1]], "lease 5s;\n"));
ok(DQTest::wait_for(sub { (() = DQTest::slurp($w->{log}) =~ /cluster map from/g) >= 2 }, 20),
   'the children have the slot map (the first seed refused: the next asked)');
like(DQTest::slurp($w->{log}), qr/127\.0\.0\.1:${\ $dead->port}\): cannot connect/,
     '  the dead seed logged');

# every queue, every task once
my $rec = "$dir/all.rec";
my @ids = map { defer_n($_, 100, $rec, 0) } @q;
wait_done($rec, scalar @ids);
my ($lost, $twice) = tally($rec, @ids);
is($lost, 0, scalar(@ids) . ' tasks on 5 queues / 3 masters: none lost');
is($twice, 0, '  none run twice');

# ---- a child killed while it runs tasks: the master hands them back at
# once (worker/held.c, through the blocking client on the cluster), not
# at lease expiry
{
    my $q = $q[3];
    my $rec = "$dir/crash.rec";
    my @ids = defer_n($q, 6, $rec, 1500);
    DQWorker::wait_lines($rec, 'S', 2, 20);
    my ($pid) = map { $_->[2] } DQWorker::lines($rec, 'S');
    kill 'KILL', $pid;
    ok(DQTest::wait_for(sub {
        DQTest::slurp($w->{log}) =~ /task failed: queue=$q id=\S+ error="child killed by signal 9/
    }, 10), "a child killed: the master failed its running task of $q through the cluster");
    wait_done($rec, scalar @ids);
    my ($lost, $twice) = tally($rec, @ids);
    is($lost, 0, '  none lost');
}

# CLUSTER SLOTS calls on these masters so far (INFO commandstats; the
# masters found before: DQCluster's masters asks CLUSTER SLOTS itself)
sub slots_asked {
    my $n = 0;
    for my $m (@_) {
        my $info = $m->cmd('INFO', 'commandstats') // '';
        $n += $1 if $info =~ /^cmdstat_cluster\|slots:calls=(\d+)/m;
    }
    return $n;
}

# ---- a queue's slot moved while its tasks run
{
    my $q = $q[0];
    my $src = owner($q);
    my ($dst) = grep { $_->port != $src->port } $c->masters;
    my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$q}");
    my $rec = "$dir/reshard.rec";
    my @ids = defer_n($q, 300, $rec, 5);
    DQWorker::wait_lines($rec, 'E', 20, 20);
    my ($sid, $did) = (node_id($src), node_id($dst));
    $dst->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $sid);
    $src->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $did);
    my $moved = 0;
    while (1) {
        my $keys = $src->cmd('CLUSTER', 'GETKEYSINSLOT', $slot, 1);
        last unless @$keys;
        $src->cmd('MIGRATE', '127.0.0.1', $dst->port, '', 0, 5000, 'KEYS', @$keys);
        $moved++;
        sleep 0.1;                      # tasks keep running in between
    }
    # every key on the new node, the slot still MIGRATING/IMPORTING: the
    # old node answers ASK to every command; the worker sends ASKING and
    # the command to the new node, which runs a script only if every key
    # it names exists there (else TRYAGAIN: not run, said again later).
    # An ASK must never come back to the worker as a failure.
    is($src->cmd('CLUSTER', 'COUNTKEYSINSLOT', $slot), 0,
       'the old node holds none of the keys: ASK for each command');
    my $mark = length DQTest::slurp($w->{log});
    my @ms = $c->masters;
    my $maps = slots_asked(@ms);
    sleep 1.5;
    # a TRYAGAIN is tried again after a back-off on the same connection:
    # the cluster connection is not marked lost for it, so no map refresh
    # and no re-read of every queue's conf follows (before: one CLUSTER
    # SLOTS a second while the reshard lasted)
    is(slots_asked(@ms) - $maps, 0, '  TRYAGAIN: no CLUSTER SLOTS asked (the connection not lost)');
    ok(DQTest::wait_for(sub {
        substr(DQTest::slurp($w->{log}), $mark)
            =~ /claim on queue $q failed: not run: EVALSHA answered: TRYAGAIN/
    }, 15), '  its claims reached the new node (TRYAGAIN there: not all keys yet, tried again, then given up)');
    my $window = substr(DQTest::slurp($w->{log}), $mark);
    unlike($window, qr/(?:failed|refused)[^\n]*\bASK \d+/, '  ASK followed (no command failed with ASK)');
    $_->cmd('CLUSTER', 'SETSLOT', $slot, 'NODE', $did) for ($dst, $src, $c->masters);
    my $during = () = DQWorker::lines($rec, 'E');
    diag("slot $slot of $q: $moved keys moved one by one; $during of 300 tasks done by then");
    ok(DQTest::wait_for(sub { $c->owner_port($q) == $dst->port }, 10), "$q now on " . $dst->port);
    push @ids, defer_n($q, 50, $rec, 0);
    wait_done($rec, scalar @ids);
    my ($lost, $twice) = tally($rec, @ids);
    is($lost, 0, "slot moved under load: none of " . scalar(@ids) . " lost");
    is($twice, 0, '  none run twice');
    my $log = DQTest::slurp($w->{log});
    my @seen = map { $log =~ /$_/ ? $_ : () } ('moved to', 'TRYAGAIN', 'ASK');
    diag("worker log names: @seen");
}

# ---- redirects that never end (a slot MIGRATING to a node that does not
# import it: ASK there, MOVED back): each command gives up after 5, logged;
# the queue works again once the slot is stable
{
    my $q = $q[4];
    my $src = owner($q);
    my ($dst) = grep { $_->port != $src->port } $c->masters;
    my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$q}");
    # the queue's keys gone from the node (an empty queue: ASK for every key)
    my $keys = $src->cmd('CLUSTER', 'GETKEYSINSLOT', $slot, 100);
    $src->cmd('DEL', @$keys) if @$keys;
    $src->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', node_id($dst));
    ok(DQTest::wait_for(sub {
        DQTest::slurp($w->{log}) =~ /after 5 redirects for slot $slot; giving up/
    }, 40), "a redirect loop on slot $slot: given up after 5, logged");
    $src->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE');
    my $rec = "$dir/loop.rec";
    my @ids = defer_n($q, 10, $rec, 0);
    wait_done($rec, scalar @ids);
    my ($lost, $twice) = tally($rec, @ids);
    is($lost + $twice, 0, '  the slot stable again: its tasks run, each once');
}

# ---- CLUSTER FAILOVER on a replica while its master's queue runs
{
    my $q = $q[1];
    my $old = owner($q);
    my $rec = "$dir/failover.rec";
    my @ids = defer_n($q, 300, $rec, 5);
    DQWorker::wait_lines($rec, 'E', 20, 20);
    my $oid = node_id($old);
    my ($rep) = grep {
        my $i = eval { $_->cmd('INFO', 'replication') } // '';
        $i =~ /role:slave/ && $i =~ /master_port:${\ $old->port }\b/
    } $c->nodes;
    ok($rep, 'the replica of ' . $old->port . ': ' . ($rep ? $rep->port : 'none'));
    $rep->cmd('CLUSTER', 'FAILOVER');
    ok(DQTest::wait_for(sub { $c->owner_port($q) == $rep->port }, 20),
       "$q now on the promoted replica " . $rep->port);
    push @ids, defer_n($q, 50, $rec, 0);
    wait_done($rec, scalar @ids);
    my ($lost, $twice) = tally($rec, @ids);
    is($lost, 0, "CLUSTER FAILOVER under load: none of " . scalar(@ids) . " lost");
    is($twice, 0, '  none run twice');
    # the demoted master unblocks its BLPOPs (-UNBLOCKED): not a failure,
    # a wake wait to send again at once (to the new master)
    unlike(DQTest::slurp($w->{log}), qr/BLPOP on the wake lists failed: UNBLOCKED/,
           '  a BLPOP the demoted master unblocked is sent again, not failed');
}

# ---- a master killed; its replica takes over
{
    # not the node DQCluster asks for the map
    my ($q) = grep { owner($_)->port != ($c->nodes)[0]->port } @q[2 .. 4];
    my $old = owner($q);
    my $rec = "$dir/kill.rec";
    my @ids = defer_n($q, 300, $rec, 5);
    is($old->cmd('WAIT', 1, 5000), 1, 'the enqueues reached the replica');
    DQWorker::wait_lines($rec, 'E', 20, 20);
    my ($rep) = grep {
        my $i = eval { $_->cmd('INFO', 'replication') } // '';
        $i =~ /role:slave/ && $i =~ /master_port:${\ $old->port }\b/
    } $c->nodes;
    my $t0 = time;
    kill 'KILL', $old->pid;
    DQTest::reaped($old->pid);
    ok(DQTest::wait_for(sub {
        my $r = eval { owner($q) };
        $r && $r->port == $rep->port;
    }, 30), "$q now on the promoted replica " . $rep->port);
    my $took = time - $t0;
    push @ids, defer_n($q, 50, $rec, 0);
    my @E = wait_done($rec, scalar @ids, 90);
    my ($lost, $twice) = tally($rec, @ids);
    my ($last) = sort { $b <=> $a } map { $_->[1] } @E;
    diag(sprintf("master killed: replica promoted %.1f s later; %d tasks, %d lost, "
                 . "%d run twice; the last ran %.1f s after the kill",
                 $took, scalar @ids, $lost, $twice, $last / 1000 - $t0));
    is($lost, 0, "master killed under load: none of " . scalar(@ids) . " lost");
    # the other queues still work
    my $rec2 = "$dir/after.rec";
    my @more = map { defer_n($_, 10, $rec2, 0) } grep { $_ ne $q } @q;
    wait_done($rec2, scalar @more);
    ($lost, $twice) = tally($rec2, @more);
    is($lost + $twice, 0, 'after it, every other queue still served, each task once');
}

ok(!defined DQTest::reaped($w->{pid}), 'the worker master still runs');
is(DQTest::stop_pid($w->{pid}), 0, 'the worker stops cleanly');
DQTest::log_clean_ok($w->{log}, 'the worker log');
my $log = DQTest::slurp($w->{log});
unlike($log, qr/CROSSSLOT/, 'no CROSSSLOT ever');
done_testing();
