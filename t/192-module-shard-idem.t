# Review R3 finding 2 (regression test; R3-shard-idem.t): a sharded
# queue's unnamed task with its own "id" or an Idempotency-Key, retried,
# must land on the same shard (FNV-1a(id) mod N): stored once, run once.
# Failed on main at 549a658 (round robin per request); passes since wip/S.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use DQNginx;
use Test::More;
use Time::HiRes qw(sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start;
sub cli { DQWorker::cli($r, @_) }
cli('queue', 'web', '--shards', '4');
my $n = DQNginx->start(redis => $r, workers => 1, http => q{
    deferred_redis %%REDIS%%;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
});
my $wr = "$dir/web.rec";
$n->request('POST', '/_ah/queue/deferred', json => qq({"func":"record","queue":"web","args":["$wr","warm"]}));
sleep 0.3;
my @st;
push @st, $n->request('POST', '/_ah/queue/deferred', json => qq({"func":"record","queue":"web","id":"order-1234","args":["$wr","order"]}))->{status} for 1 .. 3;
push @st, $n->request('POST', '/_ah/queue/deferred', headers => { 'Idempotency-Key' => 'key-77' },
                      json => qq({"func":"record","queue":"web","args":["$wr","idem"]}))->{status} for 1 .. 3;
diag("answers: @st");
my $w = DQWorker::start_worker($r, $dir, name => 'w1', args => ['-q', 'web']);
DQWorker::wait_records($wr, 20, 6);
my %runs; $runs{ $_->{id} }++ for DQWorker::records($wr);
diag(join ' ', map { "$_=$runs{$_}" } sort keys %runs);
is(scalar(grep { $_ > 1 } values %runs), 0, 'no id ran twice');
is(scalar(keys %runs), 3, 'warm + order-1234 + the Idempotency-Key task: 3 tasks');
DQWorker::stop_worker($w);
$n->stop;
done_testing;
