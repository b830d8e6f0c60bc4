# deferred-cli as an operator uses it, against a real Redis with a
# password and a non-zero database, a queue holding tasks in every state
# (due, delayed, running, dead; paused), and a real worker: every
# command's table, --json and exit code; retrying dead tasks makes them run.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(args => ['--requirepass', 'sekret']);
$r->cmd('AUTH', 'sekret');
$r->cmd('SELECT', '3');
my @conn = ('--password', 'sekret', '--db', '3');

sub cli {
    my ($rc, $out, $err) = DQWorker::cli($r, @conn, @_);
    return ($rc, $out, $err);
}
sub js { my ($rc, $out, $err) = cli('--json', @_); return ($rc, eval { decode_json($out) }, $err) }
sub defer {
    my ($rc, $out, $err) = cli('defer', @_);
    die "defer @_: exit $rc: $err" if $rc;
    return (split ' ', $out)[0];
}
sub key { DQTest::dq_key(@_) }

# connection options
my ($rc, $out, $err) = DQWorker::cli($r, 'queues');
is($rc, 1, 'no password: exit 1');
like($err, qr/NOAUTH|Authentication/i, '... and says Redis wants authentication');
($rc, $out, $err) = DQWorker::cli($r, '--password', 'wrong', 'queues');
is($rc, 1, 'wrong password: exit 1');
($rc, $out, $err) = cli('queues');
is($rc, 0, 'queues with --password and --db: exit 0') or diag $err;

my $w = DQWorker::start_worker($r, $dir, name => 'w',
    args => ['--redis_password', 'sekret', '--redis_db', '3', '-q', 'ops',
             '--concurrency', '4', '--grace', '3s']);

# dead: two fail once with retry limit 0 (a re-run succeeds), one permanent
my $fa = "$dir/a.rec"; my $fc = "$dir/c.rec";
my $ida = defer(qw(-q ops --retry-limit 0 fail_then_ok), $fa, 1);
my $idc = defer(qw(-q ops --retry-limit 0 fail_then_ok), $fc, 1);
my $idb = defer(qw(-q ops permanent), 'boom B');
# running: sleeps a minute
my $ids = defer(qw(-q ops -n sleeper sleep_ms 60000));
ok(DQTest::wait_for(sub { $r->cmd('ZCARD', key('ops', 'dead')) == 3
                          && $r->cmd('ZCARD', key('ops', 'leases')) == 1 }, 20),
   'three dead, one running') or diag DQTest::slurp($w->{log});

($rc, $out, $err) = cli(qw(pause ops));
is($rc, 0, 'pause: exit 0');
is($out, "paused ops\n", 'pause says so');
is($r->cmd('HGET', key('ops', 'conf'), 'paused'), '1', 'paused in Redis');

# due (the queue is paused) and delayed
my $id1 = defer(qw(-q ops -k n=1 typed), '/x', 7, 'hello');
my $id2 = defer(qw(-q ops noop));
my $idd = defer(qw(-q ops -n later --countdown 600000 noop));
sleep 0.05;

# queues
($rc, $out, $err) = cli('queues');
is($rc, 0, 'queues: exit 0');
like($out, qr/^QUEUE\s+WAITING\s+DUE\s+DELAYED\s+RUNNING\s+DEAD\s+PAUSED\s+RATE\s+OLDEST_DUE_MS/m,
     'queues: a table with its header');
like($out, qr/^ops\s+3\s+2\s+1\s+1\s+3\s+yes\s/m, 'ops: 3 waiting, 2 due, 1 delayed, 1 running, 3 dead, paused')
    or diag $out;
my $q;
($rc, $q) = js('queues');
my ($ops) = grep { $_->{queue} eq 'ops' } @$q;
is_deeply([@$ops{qw(waiting due delayed running dead)}], [3, 2, 1, 1, 3], 'queues --json: the counts');
ok($ops->{paused}, 'queues --json: paused');
ok(defined $ops->{oldest_due_age_ms} && $ops->{oldest_due_age_ms} >= 0, 'oldest due age in ms');
is($ops->{counters}{enqueued}, 7, 'counters: 7 enqueued');

# list
my %want = (due => [$id1, $id2], delayed => [$idd], running => [$ids],
            dead => [$ida, $idc, $idb], waiting => [$id1, $id2, $idd]);
for my $st (sort keys %want) {
    my ($rc2, $l) = js('list', 'ops', '--state', $st);
    is($rc2, 0, "list --state $st: exit 0");
    is_deeply([sort map { $_->{id} } @$l], [sort @{ $want{$st} }], "list --state $st: the right tasks");
}
($rc, $out) = cli(qw(list ops --state dead));
like($out, qr/^ID\s+FUNCTION\s+NAME\s+DIED\s+RUNS\s+RETRIES\s+LAST_ERROR/m, 'list: table header');
like($out, qr/^\Q$idb\E\s+permanent\s+-\s+\d{4}-\d\d-\d\dT\S+Z\s+1\s+\d+\s+boom B$/m, 'list: a dead row with its error')
    or diag $out;
my ($l1) = (js(qw(list ops --state waiting --limit 1)))[1];
is(scalar @$l1, 1, '--limit 1: one task');
($rc, $out, $err) = cli(qw(list ops --state sleeping));
is($rc, 2, 'list --state sleeping: exit 2');
($rc, $out, $err) = cli(qw(list no/such));
is($rc, 2, 'invalid queue name: exit 2');
like($err, qr/invalid queue name/, '... says why');

# show
my $s;
($rc, $s) = js('show', 'ops', $id1);
is($rc, 0, 'show: exit 0');
is($s->{state}, 'due', 'show: state due');
is($s->{function}, 'typed', 'show: function');
is_deeply($s->{args}, ['/x', 7, 'hello'], 'show: decoded args');
is_deeply($s->{kwargs}, { n => 1 }, 'show: decoded kwargs');
($rc, $s) = js('show', 'ops', $idd);
is($s->{state}, 'delayed', 'show: a delayed task');
is($s->{name}, 'later', 'show: its name');
ok($s->{eta_ms} > time * 1000 + 500000, 'show: its ETA ten minutes ahead');
($rc, $s) = js('show', 'ops', $ida);
is($s->{state}, 'dead', 'show: a dead task');
is($s->{runs}, 1, 'show: attempts (runs 1)');
like($s->{last_error}, qr/failing on purpose/, 'show: last error');
($rc, $out) = cli('show', 'ops', $ids);
like($out, qr/^state\s+running$/m, 'show (table): running');
like($out, qr/^lease_until_ms\s+\d+  \(\d{4}-/m, 'show: lease deadline with its time');
($rc, $out, $err) = cli('show', 'ops', 'nope');
is($rc, 5, 'show of an unknown id: exit 5');

# delete, purge
($rc, $out) = cli('delete', 'ops', $idd);
is($rc, 0, 'delete: exit 0');
like($out, qr/deleted \Q$idd\E \(waiting\)/, 'delete says what it was');
($rc) = cli('delete', 'ops', $idd);
is($rc, 5, 'delete again: exit 5');
ok(!$r->cmd('HEXISTS', key('ops', 'tasks'), $idd), 'its envelope is gone');
($rc, $out, $err) = cli(qw(purge ops --state due));
is($rc, 2, 'purge without --yes: exit 2');
like($err, qr/--yes/, '... asks for --yes');
is($r->cmd('ZCARD', key('ops', 'eta')) + ($r->cmd('HGET', key('ops', 'stats'), 'due_n') // 0),
   2, '... and deleted nothing (eta and the due list)');
($rc, $out, $err) = cli(qw(purge ops --state running --yes));
is($rc, 2, 'purge --state running: refused (exit 2)');
my $p;
($rc, $p) = js(qw(purge ops --state due --yes));
is($rc, 0, 'purge --state due --yes: exit 0');
is($p->{deleted}, 2, 'purged 2 due tasks');
is($r->cmd('ZCARD', key('ops', 'eta')), 0, 'nothing waits any more');

# retry: one by id, by error match, all; each re-run really runs
($rc, $out) = cli('resume', 'ops');
is($out, "resumed ops\n", 'resume');
($rc, $out) = cli('retry', 'ops', $ida);
is($rc, 0, 'retry ID: exit 0');
ok(DQTest::wait_for(sub { my @l = split /\n/, slurp($fa); @l == 2 }, 10),
   'the retried task ran again');
ok(DQTest::wait_for(sub { !defined $r->cmd('ZSCORE', key('ops', 'dead'), $ida)
                          && !$r->cmd('HEXISTS', key('ops', 'tasks'), $ida) }, 10),
   '... and succeeded (gone from dead and tasks)');
($rc) = cli('retry', 'ops', $ida);
is($rc, 5, 'retry of a task that is not dead: exit 5');
my $rt;
($rc, $rt) = js(qw(retry ops --match boom));
is($rt->{requeued}, 1, 'retry --match boom: requeued 1 of 2');
ok(DQTest::wait_for(sub { ($r->cmd('HGET', key('ops', 'tasks'), $idb) // '') =~ /^S1:/
                          && defined $r->cmd('ZSCORE', key('ops', 'dead'), $idb) }, 10),
   'the permanent one ran and died again');
($rc, $out) = cli(qw(retry ops --all));
like($out, qr/^requeued 2 dead tasks in ops \(0 left dead/m, 'retry --all requeues the rest');
ok(DQTest::wait_for(sub { my @l = split /\n/, slurp($fc); @l == 2 }, 10),
   'the other fail_then_ok ran again');
($rc, $out) = cli(qw(retry ops));
is($rc, 2, 'retry without ID/--all/--match: exit 2');

# workers: the live child, from its heartbeat
my $wk;
# (a heartbeat every 10 s: wait for one written after the tasks above,
# the permanent task's last run included: a beat from while it ran says
# running 2, seen under load)
ok(DQTest::wait_for(sub { ($rc, $wk) = js('workers');
                          $wk && @$wk == 1 && $wk->[0]{failed} >= 3
                          && $wk->[0]{running} == 1 }, 25, 0.2),
   'workers --json: one live worker child, its heartbeat current');
is($wk->[0]{pid}, $w->{pid}, 'workers: its pid (master_process off: the child is the process)');
is($wk->[0]{queues}, 'ops', 'workers: the queues it serves');
ok($wk->[0]{done} >= 0 && $wk->[0]{failed} >= 3, 'workers: its failed count (>= 3)')
    or diag explain $wk;
is($wk->[0]{running}, 1, 'workers: one task running (the sleeper)');
($rc, $out) = cli('workers');
like($out, qr/^WORKER\s+HOST\s+PID\s+QUEUES\s+RUNNING\s+DONE\s+FAILED\s+STARTED\s+LAST_BEAT_MS_AGO\n\S+:$w->{pid}\s+\S+\s+$w->{pid}\s+ops\s+1\s/m,
     'workers: table');

# errors: unknown command, unreachable Redis
($rc, $out, $err) = cli('frobnicate');
is($rc, 2, 'unknown command: exit 2');
($rc, $out, $err) = DQWorker::cli(bless({ port => 1 }, 'DQTest::Redis'), 'queues');
is($rc, 1, 'Redis unreachable: exit 1');
like($err, qr/redis/i, '... says so');

# delete a running task: its lease goes, the worker's result is fenced
($rc, $out) = cli('delete', 'ops', $ids);
is($rc, 0, 'delete of the running task: exit 0');
like($out, qr/deleted \Q$ids\E \(running\)/, '... it says it was running');
is($r->cmd('ZCARD', key('ops', 'leases')), 0, 'its lease is gone');
is($r->cmd('ZSCORE', key('ops', 'names'), 'sleeper') > time * 1000, 1,
   'its name stays taken (tombstoned)');

kill 'TERM', $w->{pid};
ok(DQTest::wait_for(sub { ($rc, $wk) = js('workers'); $wk && !@$wk }, 2),
   'a stopping worker leaves the list at once (while its task still runs)');
ok(DQWorker::alive($w), '... it was still in its grace period then');
DQWorker::stop_worker($w);
log_clean_ok($w->{log}, 'worker log');
done_testing;
