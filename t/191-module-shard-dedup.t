# Review R3 finding 1 (regression test; R3-shard-dedup.t): a named task
# sent through nginx while the worker process does not know the queue's
# shard count (first enqueue; its entry evicted from the 64-entry table by
# 70 other queues) must still go to FNV-1a(name) mod N: the same name again
# is 409 and it runs once. Failed on main at 549a658 (201, 201, two runs);
# passes since wip/S (held until N is read); the cases wip/S left (every
# entry reading, the read failing) are t/194-module-shard-unknown.t.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use DQNginx;
use Test::More;

DQNginx::require_nginx();   # skip before the first check when the module is not built
use Time::HiRes qw(sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start;
sub cli { DQWorker::cli($r, @_) }
my ($name) = grep { DQTest::shard_of($_, 4) != 0 } map { "job-$_" } 1 .. 50;
my ($name2) = grep { DQTest::shard_of($_, 4) != 0 && $_ ne $name } map { "job-$_" } 1 .. 50;
my ($rc, $out, $err) = cli('queue', 'web', '--shards', '4');
is($rc, 0, 'web: 4 shards before nginx starts');
my $n = DQNginx->start(redis => $r, workers => 1, http => q{
    deferred_redis %%REDIS%%;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
});
my $wr = "$dir/web.rec";
sub post { my ($nm, $q) = @_; $q //= 'web';
    $n->request('POST', '/_ah/queue/deferred',
        json => qq({"func":"record","queue":"$q","name":"$nm","args":["$wr","$nm"]}))->{status} }

# (a) cold start: the first enqueue of the queue in this worker process
is(post($name), 201, "$name (shard " . DQTest::shard_of($name, 4) . "): 201");
sleep 0.3;
my $second = post($name);
is($second, 409, "$name again 0.3 s later: 409 expected (got $second)");

# (b) the 64-entry shard-count table: 70 other queues evict web's entry
is(post($name2), 201, "$name2 (shard " . DQTest::shard_of($name2, 4) . "), web's N known: 201");
post("x", "other$_") for 1 .. 70;
sleep 0.3;
my $third = post($name2);
is($third, 409, "$name2 again after 70 other queues: 409 expected (got $third)");

my @where = map { my $i = $_; scalar(grep { $r->cmd('ZSCORE', $i ? "dq2:{web#$i}:names" : DQTest::dq_key('web', 'names'), $_) } ($name, $name2)) } 0 .. 3;
diag("live names per shard 0..3: @where");
my $w = DQWorker::start_worker($r, $dir, name => 'w1', args => ['-q', 'web']);
DQWorker::wait_records($wr, 10, 8);
my %runs; $runs{ $_->{args}[1] // $_->{arg} // '' }++ for DQWorker::records($wr);
my @R = DQWorker::records($wr);
diag("records: " . scalar(@R));
is(scalar(@R), 2, 'each name run once (2 records expected)');
DQWorker::stop_worker($w);
$n->stop;
done_testing;
