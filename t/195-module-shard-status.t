# Review R3 finding 6: the status page of sharded queues, bounded.
# (a) a sharded queue's dead tasks: merged by the time they died, the 20
# newest kept (on main every shard's 20 were appended: 30 listed here, in
# shard order). (b) one status script per shard per scrape, capped: 20
# queues of 64 shards would cost 1,260 extra calls per scrape; at most
# 1,000 are made, the queues left over are shown with shard 0's numbers
# only and counted in "queues_not_summed" (metrics:
# deferred_queues_not_summed). On main: 1,280 EVALSHAs for one scrape.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use DQNginx;
use JSON::PP;
use Test::More;

my $dir = tmpdir();
my $r = DQTest::Redis->start;
sub cli { DQWorker::cli($r, @_) }
my $n = DQNginx->start_status($r, workers => 1, timeout => '10s',
                              locations => 'deferred_endpoint on;');
sub status { JSON::PP::decode_json($n->request('GET', '/deferred/status')->{body}) }
sub evalshas { my ($c) = $r->cmd('INFO', 'commandstats') =~ /cmdstat_evalsha:calls=(\d+)/; $c // 0 }

# (a) 30 dead tasks over 3 shards
cli('queue', 'dd', '--shards', '3');
cli('defer', '-q', 'dd', '--retry-limit', '0', '--count', '30', 'always_fail', "$dir/fail.rec");
my $w = DQWorker::start_worker($r, $dir, name => 'w1', args => ['-q', 'dd']);
ok(DQTest::wait_for(sub { (DQWorker::stats($r, 'dd')->{dead} // 0) == 30 }, 30), '30 dead');
DQWorker::stop_worker($w);
my %died;
for my $i (0 .. 2) {
    my $z = $r->cmd('ZRANGE', $i ? "dq2:{dd#$i}:dead" : 'dq2:{dd}:dead', 0, -1, 'WITHSCORES');
    my %h = @$z; @died{ keys %h } = values %h;
}
is(scalar(keys %died), 30, '30 in the shards\' dead sets');
my ($q) = grep { $_->{queue} eq 'dd' } @{ status()->{queues} };
is($q->{dead}, 30, 'status: dead 30');
my @l = @{ $q->{dead_tasks} };
is(scalar(@l), 20, 'status: the 20 newest dead tasks listed (got ' . scalar(@l) . ')');
is_deeply([map { $_->{died_ms} } @l], [sort { $b <=> $a } map { $_->{died_ms} } @l], 'newest first');
my %listed = map { $_->{id} => 1 } @l;
my ($oldest_listed) = sort { $a <=> $b } map { $died{ $_->{id} } // 0 } @l;
my ($newest_left) = sort { $b <=> $a } map { $died{$_} } grep { !$listed{$_} } keys %died;
ok(defined $oldest_listed && (!defined $newest_left || $oldest_listed >= $newest_left),
   'none left out died later than one listed');

# (b) 20 queues of 64 shards
for my $i (1 .. 20) {
    my ($rc) = cli('queue', "wide$i", '--shards', '64');
    $rc == 0 or diag("queue wide$i: $rc");
    $n->request('POST', '/_ah/queue/deferred', json => qq({"func":"noop","queue":"wide$i"}));
}
my $before = evalshas();
my $st = status();
my $calls = evalshas() - $before;
my @wide = grep { $_->{queue} =~ /^wide/ } @{ $st->{queues} };
is(scalar(@wide), 20, '20 wide queues shown');
ok($calls <= 21 + 1000, "one scrape: $calls status calls (at most 1,000 for shards >= 1 plus one per queue)");
my $summed = grep { $_->{shard_stats} } @wide;
is($st->{queues_not_summed}, 20 - $summed, "queues_not_summed says how many are shard 0's only ($summed summed)");
ok($summed >= 15, "as many summed as fit ($summed)");
my $m = $n->request('GET', '/deferred/metrics')->{body};
like($m, qr/^deferred_queues_not_summed ${\ (20 - $summed)}$/m, 'metrics: deferred_queues_not_summed');
# a queue shown with shard 0's numbers has no counter series: a counter
# that is the sum in one scrape and shard 0's in another (the cap's
# share moves as queues come) reads as a reset, and rate() then counts
# the whole sum again (review R6)
my @part = map { $_->{queue} } grep { !$_->{shard_stats} } @wide;
my @whole = map { $_->{queue} } grep { $_->{shard_stats} } @wide;
is(scalar(grep { $m =~ /^deferred_tasks_enqueued_total\{queue="\Q$_\E"\}/m } @part), 0,
   'metrics: no counter series for the queues not summed (' . scalar(@part) . ')');
is(scalar(grep { $m =~ /^deferred_(?:tasks_acked_late|clock_jumps)_total\{queue="\Q$_\E"\}|^deferred_task_lateness_seconds_count\{queue="\Q$_\E"\}/m } @part), 0,
   'metrics: nor event counters or lateness for them');
is(scalar(grep { $m =~ /^deferred_tasks_enqueued_total\{queue="\Q$_\E"\} 1$/m } @whole), scalar(@whole),
   'metrics: the summed queues have theirs');
ok(scalar(grep { $m =~ /^deferred_tasks\{queue="\Q$_\E",state="due"\}/m } @part) == @part,
   'metrics: the gauges of the queues not summed are still there (shard 0\'s)');
$n->stop;
done_testing;
