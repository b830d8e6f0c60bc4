# Sharded hot queues (issue 15 item 3; docs/SCALING.md): a queue declared
# with 4 shards on one Redis.
#   - `deferred-cli queue q --shards N` stores N; a decrease is refused with
#     nothing written
#   - tasks enqueued through the CLI (the C client: dq_defer_many) spread
#     over the 4 shards (the per-shard breakdown of `stats`, printed), and
#     every task runs exactly once; a named task lands on its name's shard
#     and a second enqueue of the name is refused (dedup holds)
#   - a queue grown 1 -> 4 while tasks wait in it and a worker serves it:
#     none stranded (old tasks stay in shard 0, new ones spread, the worker
#     picks the new shards up)
#   - producers before workers: tasks enqueued before any worker starts
#     land on every shard and all run once a worker starts
#   - whole-queue limits: --max-concurrent 3 on 3 shards (1 each) and
#     --rate 20 on 4 shards (5/s each) hold for the whole queue, counted
#     from the task records as t/176 does
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use DQNginx;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

my $dir = tmpdir();
my $r = DQTest::Redis->start;
sub cli { DQWorker::cli($r, @_) }
sub key { DQTest::dq_key(@_) }
sub shard_key { my ($q, $i, $k) = @_; $i ? "dq2:{$q#$i}:$k" : key($q, $k) }

# ids of a record file: id -> runs
sub runs_by_id {
    my %n;
    $n{ $_->{id} }++ for DQWorker::records($_[0]);
    return \%n;
}
# the per-shard breakdown of `stats Q`: [ { waiting, done, enqueued... } ]
sub shard_stats {
    my ($q) = @_;
    my ($rc, $out) = cli('stats', $q);
    my @s;
    for (split /\n/, $out) {
        my ($i, %f) = /^shard (\d+) (.*)$/ ? ($1, split / /, $2) : next;
        $s[$i] = \%f;
    }
    return \@s, $out;
}

# ---- shards set, decrease refused
{
    my ($rc, $out, $err) = cli('queue', 'hot', '--shards', '4');
    is($rc, 0, 'queue hot --shards 4: exit 0') or diag $err;
    like($out, qr/^queue hot shards 4 /m, 'it says 4 shards');
    is($r->cmd('HGET', key('hot', 'conf'), 'shards'), '4', 'N lives in the queue\'s own conf');
    ($rc, $out, $err) = cli('queue', 'hot', '--shards', '2');
    isnt($rc, 0, 'a decrease 4 -> 2 is refused');
    like($err, qr/can only grow/, '... with a clear error') or diag $err;
    is($r->cmd('HGET', key('hot', 'conf'), 'shards'), '4', '... and N stays 4');
    ($rc, $out, $err) = cli('queue', 'hot', '--shards', '65');
    is($rc, 2, '65 shards: a usage error (at most 64)');
    ($rc, $out, $err) = cli('queue', 'bad#1', '--shards', '2');
    is($rc, 2, "a user's queue name may not contain '#'");
}

# ---- producers before workers: enqueue first, then start the worker
my $rec = "$dir/hot.rec";
{
    my ($rc, $out, $err) = cli('defer', '-q', 'hot', '--count', '400', 'record', $rec);
    is($rc, 0, '400 unnamed tasks through the CLI (dq_defer_many), no worker yet') or diag $err;
    my ($s, $text) = shard_stats('hot');
    diag("before any worker:\n$text");
    is(scalar(@$s), 4, 'stats shows 4 shards');
    my @w = map { $_->{waiting} // 0 } @$s;
    is(scalar(grep { $_ == 100 } @w), 4, "round robin: 100 waiting in each shard (@w)");
    like($text, qr/^waiting 400$/m, 'stats sums the shards: 400 waiting');
}
# named tasks: by the name's shard; dedup holds
my %named;
{
    for my $i (1 .. 24) {
        my ($rc, $out, $err) = cli('defer', '-q', 'hot', '-n', "job-$i", 'record', $rec, "job-$i");
        is($rc, 0, "named job-$i enqueued") or diag $err;
        ($named{"job-$i"}) = $out =~ /^(\S+)/;
    }
    my $dup = 0;
    for my $i (1 .. 24) {
        my ($rc) = cli('defer', '-q', 'hot', '-n', "job-$i", 'record', $rec, "again");
        $dup++ if $rc == 3;
    }
    is($dup, 24, 'every second enqueue of a live name is refused (exit 3): dedup holds across shards');
    my %where;
    for my $n (keys %named) {
        for my $i (0 .. 3) {
            $where{$i}++ if $r->cmd('ZSCORE', shard_key('hot', $i, 'names'), $n);
        }
    }
    diag('named tasks per shard: ' . join(' ', map { "$_=" . ($where{$_} // 0) } 0 .. 3));
    ok((grep { $where{$_} } 0 .. 3) >= 3, 'named tasks spread by their names\' hash');
}
my $w = DQWorker::start_worker($r, $dir, name => 'w1',
                               args => ['-q', 'hot', '-q', 'grow', '-q', 'ops', '--threads', '4']);
{
    my @R = DQWorker::wait_records($rec, 424, 60);
    is(scalar(@R), 424, 'the worker started after the producers ran all 424');
    my $n = runs_by_id($rec);
    is(scalar(keys %$n), 424, '... 424 different tasks');
    is(scalar(grep { $_ != 1 } values %$n), 0, '... each exactly once');
    sleep 0.3;
    my ($s, $text) = shard_stats('hot');
    diag("after the run:\n$text");
    is(scalar(grep { ($_->{done} // 0) > 0 } @$s), 4, 'every shard ran some');
    like($text, qr/^done 424$/m, 'stats: done 424 for the whole queue');
    my ($qrc, $qout) = cli('--json', 'queues');
    my ($row) = grep { $_->{queue} eq 'hot' } @{ JSON::PP::decode_json($qout) };
    is($row->{counters}{done}, 424, 'queues: one row for hot, done summed over its shards');
    ok(!grep({ $_->{queue} =~ /#/ } @{ JSON::PP::decode_json($qout) }), 'queues lists no shard as a queue');
    like(DQWorker::log_text($w), qr/queue hot: serving 4 shards/, 'the worker log says it serves 4 shards');
}

# ---- a queue grown 1 -> 4 while tasks wait and the worker serves it
{
    my $g = "$dir/grow.rec";
    my ($rc, $out, $err) = cli('defer', '-q', 'grow', '--countdown', '1500', '--count', '100', 'record', $g);
    is($rc, 0, '100 tasks wait (1.5 s) in the unsharded queue grow') or diag $err;
    ($rc, $out, $err) = cli('queue', 'grow', '--shards', '4');
    is($rc, 0, 'grow: 1 -> 4 shards while they wait') or diag $err;
    sleep 2.2;                       # every producer's cache has expired
    ($rc, $out, $err) = cli('defer', '-q', 'grow', '--count', '100', 'record', $g);
    is($rc, 0, '100 more after the change');
    my @R = DQWorker::wait_records($g, 200, 60);
    is(scalar(@R), 200, 'all 200 ran: none stranded by the change');
    my $n = runs_by_id($g);
    is(scalar(grep { $_ != 1 } values %$n), 0, '... each once');
    my ($s, $text) = shard_stats('grow');
    diag("grown 1 -> 4:\n$text");
    is($s->[0]{enqueued}, 125, 'shard 0 kept the 100 old tasks (and got a quarter of the new)');
    ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~ /queue grow: serving 4 shards \(was 1\)/ }, 10),
       'the running worker picked the new shards up (its log)');
}

# ---- operators' commands see every shard: dead, list, show, error, retry,
# requeue-all, delete, purge, pause
{
    my ($rc, $out, $err) = cli('queue', 'ops', '--shards', '3');
    is($rc, 0, 'ops: 3 shards');
    sleep 5.5;                      # the running worker reads N (heartbeat)
    my $f = "$dir/fail.rec";
    ($rc, $out, $err) = cli('defer', '-q', 'ops', '--retry-limit', '0', '--count', '9', 'always_fail', $f);
    is($rc, 0, '9 tasks that fail, no retry') or diag $err;
    ok(DQTest::wait_for(sub { (DQWorker::stats($r, 'ops')->{dead} // 0) == 9 }, 30), 'all 9 dead (stats sums the shards)');
    my $d = DQWorker::dead($r, 'ops');
    is(scalar(keys %$d), 9, 'dead ops: the 9, from every shard');
    is(scalar(grep { /always fails$/ } values %$d), 9, '... each with its last error');
    ($rc, $out) = cli('--json', 'list', 'ops', '--state', 'dead');
    is(scalar(@{ JSON::PP::decode_json($out) }), 9, 'list --state dead: 9 rows');
    my ($far) = grep { $r->cmd('ZSCORE', shard_key('ops', 2, 'dead'), $_) } keys %$d;
    ok($far, "a dead task in shard 2: $far");
    ($rc, $out, $err) = cli('show', 'ops', $far);
    is($rc, 0, 'show finds it in its shard') or diag $err;
    like($out, qr/^state\s+"?dead/m, '... dead');
    ($rc, $out) = cli('error', 'ops', $far);
    like($out, qr/always fails$/, 'error finds its last error');
    ($rc, $out, $err) = cli('retry', 'ops', $far);
    is($rc, 0, 'retry (requeue) of a task in shard 2') or diag $err;
    ok(DQTest::wait_for(sub { defined $r->cmd('ZSCORE', shard_key('ops', 2, 'dead'), $far)
                              && DQWorker::records($f) >= 10 }, 20), '... it ran again and died again');
    ($rc, $out, $err) = cli('requeue-all', 'ops');
    like($out, qr/^9 requeued/, 'requeue-all: 9 requeued over the shards') or diag "$out$err";
    ok(DQTest::wait_for(sub { (DQWorker::stats($r, 'ops')->{dead} // 0) == 9 && DQWorker::records($f) >= 19 }, 30),
       '... all ran again');
    my ($one) = grep { $r->cmd('ZSCORE', shard_key('ops', 1, 'dead'), $_) } keys %$d;
    ($rc, $out, $err) = cli('delete', 'ops', $one);
    like($out, qr/^deleted \S+ \(dead\)/, "delete of a task in shard 1") or diag $err;
    ($rc, $out, $err) = cli('purge', 'ops', '--yes');
    like($out, qr/^purged 8 /, 'purge: the other 8, every shard') or diag "$out$err";
    is(DQWorker::stats($r, 'ops')->{dead}, 0, 'nothing dead left');
    ($rc) = cli('pause', 'ops');
    is(join(',', map { $r->cmd('HGET', shard_key('ops', $_, 'conf'), 'paused') // 0 } 0 .. 2), '1,1,1',
       'pause: every shard paused');
    ($rc) = cli('resume', 'ops');
    is(join(',', map { $r->cmd('HGET', shard_key('ops', $_, 'conf'), 'paused') // 0 } 0 .. 2), '0,0,0',
       'resume: every shard');
}

# ---- whole-queue limits split across shards
{
    my ($rc, $out, $err) = cli('queue', 'conc', '--shards', '3', '--max-concurrent', '2');
    isnt($rc, 0, 'max_concurrent 2 on 3 shards: refused (a share of 0 would mean unlimited)');
    like($err, qr/cannot be split/, '... with a clear error') or diag $err;
    ($rc, $out, $err) = cli('queue', 'conc', '--shards', '3', '--max-concurrent', '3');
    is($rc, 0, 'conc: 3 shards, max_concurrent 3 for the whole queue') or diag $err;
    is(join(',', map { $r->cmd('HGET', shard_key('conc', $_, 'conf'), 'max_concurrent') } 0 .. 2),
       '1,1,1', 'each shard holds 1: the shares sum to 3');
    ($rc, $out, $err) = cli('queue', 'conc', '--max-concurrent', '5');
    is(join(',', map { $r->cmd('HGET', shard_key('conc', $_, 'conf'), 'max_concurrent') } 0 .. 2),
       '2,2,1', 'max_concurrent 5 over 3 shards: 2,2,1 (sum exactly 5)');
    # config apply of a whole-queue file: split over the 3 shards too
    my $cf = "$dir/conc.conf";
    open my $cfh, '>', $cf or die;
    print {$cfh} "queue conc { rate 30/s; max_concurrent 7; retry_limit 2; }\n";
    close $cfh;
    ($rc, $out, $err) = cli('config', 'apply', $cf);
    is($rc, 0, 'config apply to a 3-shard queue') or diag $err;
    is(join(',', map { $r->cmd('HGET', shard_key('conc', $_, 'conf'), 'max_concurrent') } 0 .. 2),
       '3,2,2', '... max_concurrent 7 over 3 shards: 3,2,2');
    is(join(',', map { $r->cmd('HGET', shard_key('conc', $_, 'conf'), 'rate') } 0 .. 2),
       '10,10,10', '... rate 30 over 3 shards: 10 each');
    is(join(',', map { $r->cmd('HGET', shard_key('conc', $_, 'conf'), 'retry_limit') } 0 .. 2),
       '2,2,2', '... the other settings copied to every shard');
    ($rc, $out) = cli('--json', 'config', 'show', 'conc');
    my $show = JSON::PP::decode_json($out)->[0];
    is($show->{max_concurrent}, 7, 'config show: the whole queue\'s max_concurrent (7)');
    is($show->{shards}, 3, 'config show: 3 shards');
    ($rc, $out, $err) = cli('queue', 'conc', '--max-concurrent', '3');
    like($out, qr/max_concurrent 3$/m, 'queue conc shows the whole-queue figure (3)');

    ($rc, $out, $err) = cli('queue', 'rated', '--shards', '4', '--rate', '20');
    is($rc, 0, 'rated: 4 shards, rate 20/s for the whole queue') or diag $err;
    is($r->cmd('HGET', shard_key('rated', 3, 'conf'), 'rate'), '5', 'each shard: 5/s');
    my $w2 = DQWorker::start_worker($r, $dir, name => 'w2',
                                    args => ['-q', 'conc', '-q', 'rated', '--threads', '8']);
    my $c = "$dir/conc.rec";
    ($rc) = cli('defer', '-q', 'conc', '--count', '24', 'sleep_ms', 200, $c);
    my @R = DQWorker::wait_records($c, 24, 60);
    is(scalar(@R), 24, 'max_concurrent: all 24 ran');
    my $max = DQWorker::max_at_once(200, @R);
    diag("max_concurrent 3 over 3 shards, 8 free slots: at most $max at once");
    ok($max <= 3, "max_concurrent 3 held for the whole queue (saw $max)");

    my $rr = "$dir/rated.rec";
    ($rc) = cli('defer', '-q', 'rated', '--count', '80', 'record', $rr);
    @R = DQWorker::wait_records($rr, 80, 60);
    is(scalar(@R), 80, 'rate: all 80 ran');
    my @t = sort { $a <=> $b } map { $_->{ms} } @R;
    my ($j, $mx) = (0, 0);
    for my $i (0 .. $#t) {
        $j++ while $t[$i] - $t[$j] >= 1000;
        $mx = $i - $j + 1 if $i - $j + 1 > $mx;
    }
    # each shard's bucket is max(1, 5) = 5: the burst is 4 x 5 = 20
    diag(sprintf("rate 20/s over 4 shards: 80 tasks in %.1f s, at most %d in any 1 s",
                 ($t[-1] - $t[0]) / 1000, $mx));
    ok($mx <= 40, "rate held for the whole queue: at most bucket + rate = 40 starts in any 1 s (saw $mx)");
    ok($t[-1] - $t[0] >= 2500, 'and 80 tasks took at least (80 - 20) / 20 s = 3 s, less a little (' . ($t[-1] - $t[0]) . ' ms)');
    DQWorker::stop_worker($w2);
    DQTest::log_clean_ok($w2->{log});

    # nothing applied: a worker's own file's limit is split the same way
    ($rc, $out, $err) = cli('queue', 'fl', '--shards', '2');
    my $conf = "$dir/fl.conf";
    open my $fh, '>', $conf or die;
    print {$fh} "redis " . $r->address . ";\nlibrary " . DQWorker::example_lib()
        . ";\nmaster_process off;\nthreads 8;\nconcurrency 8;\nqueue fl { max_concurrent 2; }\n";
    close $fh;
    my $w4 = { log => "$dir/w4.log" };
    $w4->{pid} = DQTest::spawn(name => 'w4', log => $w4->{log},
                               cmd => [DQWorker::worker_bin(), '-c', $conf]);
    ok(DQTest::wait_for(sub { DQTest::slurp($w4->{log}) =~ /queue fl: serving 2 shards/ }, 20),
       'w4 (file: max_concurrent 2) serves fl\'s 2 shards');
    my $fl = "$dir/fl.rec";
    ($rc) = cli('defer', '-q', 'fl', '--count', '12', 'sleep_ms', 200, $fl);
    @R = DQWorker::wait_records($fl, 12, 60);
    is(scalar(@R), 12, 'file limit: all 12 ran');
    $max = DQWorker::max_at_once(200, @R);
    ok($max <= 2, "a file's max_concurrent 2 over 2 shards: at most 2 at once (saw $max)");
    DQTest::stop_pid($w4->{pid}, 'TERM', 20);
    DQTest::log_clean_ok($w4->{log});
}

DQWorker::stop_worker($w);
DQTest::log_clean_ok($w->{log});

# ---- a task id the client chose: its shard is its id's, so a retry of
# the enqueue finds the stored task (idempotent) whatever the round robin
{
    my ($rc, $out, $err) = cli('queue', 'idem', '--shards', '4');
    for my $round (1, 2) {
        for my $i (1 .. 8) {
            ($rc, $out, $err) = cli('defer', '-q', 'idem', '--id', "key-$i", 'record', "$dir/idem.rec");
            is($rc, 0, "id key-$i, enqueue $round") or diag $err;
        }
    }
    is(DQWorker::stats($r, 'idem')->{waiting}, 8, 'each id stored once over the 4 shards (8 waiting, not 16)');
    # one client, the same id 4 times in a row (its round robin would
    # spread unnamed tasks over the 4 shards)
    ($rc, $out, $err) = cli('queue', 'idem2', '--shards', '4');
    ($rc, $out, $err) = cli('defer', '-q', 'idem2', '--id', 'same', '--count', '4', 'record', "$dir/idem.rec");
    is($rc, 0, 'one id 4 times from one client') or diag $err;
    is(DQWorker::stats($r, 'idem2')->{waiting}, 1, '... stored once');
}

# ---- nginx: enqueue through the module into a sharded queue
SKIP: {
    skip 'nginx module not built', 1 unless -e DQNginx::module_path();
    require DQNginx;
    my ($rc, $out, $err) = cli('queue', 'web', '--shards', '4');
    is($rc, 0, 'web: 4 shards, set before nginx starts') or diag $err;
    my $n = DQNginx->start_status($r, workers => 2, ops => 1,
                                  locations => 'deferred_endpoint on;');
    my $wr = "$dir/web.rec";
    # a few unnamed ones first (each nginx worker's first request naming
    # web waits one round trip for its shard count)
    my @warm = $n->many([ map { DQNginx::build_request('POST', '/_ah/queue/deferred',
        json => qq({"func":"record","queue":"web","args":["$wr","warm"]})) } 1 .. 8 ], conns => 8);
    is(scalar(grep { $_->{status} == 201 } @warm), 8, '8 unnamed enqueues: 201');
    my @reqs = map { DQNginx::build_request('POST', '/_ah/queue/deferred',
        json => qq({"func":"record","queue":"web","args":["$wr",$_]})) } 1 .. 200;
    push @reqs, map { DQNginx::build_request('POST', '/_ah/queue/deferred',
        json => qq({"func":"record","queue":"web","name":"web-$_","args":["$wr","web-$_"]})) } 1 .. 20;
    my @res = $n->many(\@reqs, conns => 20, timeout => 60);
    is(scalar(grep { $_->{status} == 201 } @res), 220, '220 enqueues through nginx: 201 each');
    # a batch: one request, 40 unnamed tasks (one shard: stored together)
    my $batch = '[' . join(',', map { qq({"func":"record","queue":"web","args":["$wr","b$_"]}) } 1 .. 40) . ']';
    my $b = $n->request('POST', '/_ah/queue/deferred', json => $batch);
    is($b->{status}, 201, 'a batch of 40: 201') or diag $b->{body};
    # the first requests naming idem in each nginx worker process: held
    # until its shard count is read (one round trip), then each to its
    # id's shard
    my $before = DQWorker::stats($r, 'idem')->{waiting};
    my @keyed = $n->many([ map { DQNginx::build_request('POST', '/_ah/queue/deferred',
        json => qq({"func":"record","queue":"idem","id":"web-key-$_","args":["$dir/idem.rec"]})) } (1 .. 8, 1 .. 8) ], conns => 1);
    is(scalar(grep { $_->{status} == 201 } @keyed), 16, '8 client ids through nginx, each twice: 201')
        or diag(join "\n", map { "$_->{status} " . ($_->{body} // $_->{error} // '') } grep { $_->{status} != 201 } @keyed);
    is(DQWorker::stats($r, 'idem')->{waiting} - $before, 8, '... each stored once (8 more waiting in idem, not 16)');
    my @dup = $n->many([ map { DQNginx::build_request('POST', '/_ah/queue/deferred',
        json => qq({"func":"record","queue":"web","name":"web-$_","args":["$wr","again"]})) } 1 .. 20 ], conns => 4);
    is(scalar(grep { $_->{status} == 409 } @dup), 20, 'the 20 names again: 409 each (dedup holds through nginx)');
    my ($s, $text) = shard_stats('web');
    diag("enqueued through nginx, no worker yet:\n$text");
    my @e = map { $_->{enqueued} // 0 } @$s;
    is(scalar(grep { $_ >= 30 } @e), 4, "spread over the 4 shards (@e)");
    # the status page and the metrics: one queue (sums), per-shard rows
    my $st = $n->request('GET', '/deferred/status');
    is($st->{status}, 200, 'deferred_status: 200');
    my ($web) = grep { $_->{queue} eq 'web' } @{ JSON::PP::decode_json($st->{body})->{queues} };
    is($web->{shards}, 4, 'status: web has 4 shards');
    is($web->{waiting}, 268, 'status: waiting is the sum over the shards (268)');
    is($web->{counters}{enqueued}, 268, 'status: enqueued, summed');
    is(scalar(@{ $web->{shard_stats} || [] }), 4, 'status: a row per shard');
    my $sum = 0;
    $sum += $_->{waiting} for @{ $web->{shard_stats} || [] };
    is($sum, 268, 'status: the rows add up');
    is(join(' ', map { $_->{waiting} } @{ $web->{shard_stats} || [] }), "@e",
       'status rows = deferred-cli stats rows');
    my $m = $n->request('GET', '/deferred/metrics');
    like($m->{body}, qr/^deferred_queue_shards\{queue="web"\} 4$/m, 'metrics: deferred_queue_shards 4');
    like($m->{body}, qr/^deferred_tasks\{queue="web",state="due"\} 268$/m, 'metrics: deferred_tasks summed');
    like($m->{body}, qr/^deferred_shard_tasks\{queue="web",shard="3",state="due"\} $e[3]$/m, 'metrics: per-shard rows');
    SKIP: {
        DQTest::skip_unless(DQTest::in_path('promtool'),
                            'promtool not installed (Debian package prometheus)', 1);
        open my $mf, '>', "$dir/metrics.txt" or die;
        print {$mf} $m->{body};
        close $mf;
        my $pout = `promtool check metrics < $dir/metrics.txt 2>&1`;
        is($?, 0, 'promtool check metrics accepts the sharded series') or diag $pout;
    }
    # the admin location: pause and resume reach every shard, delete finds
    # the task's shard
    my %ah = (headers => { 'X-Deferred-Admin' => '1' });
    my $a = $n->request('POST', '/deferred/admin?action=pause&queue=web', %ah);
    is($a->{status}, 200, 'admin pause: 200');
    is(join(',', map { $r->cmd('HGET', shard_key('web', $_, 'conf'), 'paused') // 0 } 0 .. 3), '1,1,1,1',
       'admin pause: every shard paused');
    $a = $n->request('POST', '/deferred/admin?action=resume&queue=web', %ah);
    is(join(',', map { $r->cmd('HGET', shard_key('web', $_, 'conf'), 'paused') // 0 } 0 .. 3), '0,0,0,0',
       'admin resume: every shard');
    my ($gone) = @{ $r->cmd('ZRANGE', shard_key('web', 2, 'eta'), 0, 0) };
    $a = $n->request('POST', "/deferred/admin?action=delete&queue=web&id=$gone", %ah);
    is($a->{status}, 200, "admin delete of a task in shard 2: 200") or diag $a->{body};
    like($a->{body} // '', qr/"done":true/, '... done');
    my $w3 = DQWorker::start_worker($r, $dir, name => 'w3', args => ['-q', 'web']);
    my @R = DQWorker::wait_records($wr, 267, 60);
    is(scalar(@R), 267, 'a worker started after nginx ran all 267 (268 less the one deleted)');
    my $ids = runs_by_id($wr);
    is(scalar(grep { $_ != 1 } values %$ids), 0, '... each exactly once');
    DQWorker::stop_worker($w3);
    DQTest::log_clean_ok($w3->{log});
    $n->stop;
    DQTest::log_clean_ok($n->error_log);
}
done_testing;
