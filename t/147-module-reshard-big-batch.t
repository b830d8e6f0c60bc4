# Review R4 finding 2 (after R4-reshard-big-batch.t): the first request of
# a sharded queue in an nginx worker process is held until the queue's
# shard count is read, then split by shard (ngx_http_deferred_shards_split).
# A batch of more than 1,000 tasks there got 503 "out of memory" (a fixed
# stack array of DQ_DEFAULT_MAX_BATCH shard indexes) though deferred_max_batch
# allows 10,000. Failed on main at e4e63bc (503); the largest batch the
# config allows must be stored whole, each named task on its own shard.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use DQNginx;
use Test::More;

DQNginx::require_nginx();   # skip before the first check when the module is not built

my $r = DQTest::Redis->start;
sub cli { DQWorker::cli($r, @_) }
my ($rc) = cli('queue', 'big', '--shards', '4');
is($rc, 0, 'big: 4 shards');
my $n = DQNginx->start(redis => $r, workers => 1, http => q{
    deferred_redis %%REDIS%%;
    deferred_max_batch 10000;
    client_max_body_size 4m;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
});
my $K = 10000;
sub batch { my ($k, $tag) = @_;
    '[' . join(',', map { qq({"func":"f","queue":"big","name":"$tag-$_"}) } 1 .. $k) . ']' }
sub names { my ($i) = @_;
    $r->cmd('ZCARD', $i ? "dq2:{big#$i}:names" : DQTest::dq_key('big', 'names')) }

# first request of 'big' in this worker process: held, then resharded
my $res = $n->request('POST', '/_ah/queue/deferred', json => batch($K, 'a'));
is($res->{status}, 201, "$K named tasks, N not known yet: 201")
    or diag("$res->{status} $res->{body}");
my @want = (0) x 4;
$want[DQTest::shard_of("a-$_", 4)]++ for 1 .. $K;
my @got = map { names($_) } 0 .. 3;
is("@got", "@want", "each name on its own shard (names per shard: @want)");

# N known now: the same size through batch_prepare directly
$res = $n->request('POST', '/_ah/queue/deferred', json => batch($K, 'b'));
is($res->{status}, 201, "$K named tasks, N known: 201");
my $sum = 0; $sum += names($_) for 0 .. 3;
is($sum, 2 * $K, "$sum names stored in all");
unlike(DQTest::slurp($n->error_log), qr/out of memory/, 'no "out of memory" in the log');
$n->stop;
done_testing;
