# Review R3 finding 1, the cases wip/S left: a named or keyed task on a
# sharded queue never goes by a guessed shard count. (a) every entry of the
# 64-entry shard-count table has its HGET in flight (one batch naming 65
# queues): the task waits for an answer, then goes to FNV-1a(name) mod N;
# on main it went to shard 0 (a second copy of the name could be stored).
# (b) the HGET of the count fails (NOPERM here; a lost reply is the same
# path): a named or keyed task gets 503, logged, nothing stored; an unnamed
# one is stored (any shard will do); once the count reads again the name
# goes to its shard. On main (b) stored the name in shard 0 with 201.
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
sub shard_of_name { my ($q, $nm) = @_;
    my @in = grep { defined $r->cmd('ZSCORE', $_ ? "dq2:{$q#$_}:names" : DQTest::dq_key($q, 'names'), $nm) } 0 .. 3;
    return "@in" }
sub stored_all { my ($q) = @_; my $s = 0;
    $s += $r->cmd('HLEN', $_ ? "dq2:{$q#$_}:tasks" : "dq2:{$q}:tasks") for 0 .. 3; $s }
my @names = grep { DQTest::shard_of($_, 4) != 0 } map { "job-$_" } 1 .. 50;
for my $q (qw(web cold)) {
    my ($rc) = cli('queue', $q, '--shards', '4');
    is($rc, 0, "$q: 4 shards before nginx starts");
}
my $n = DQNginx->start(redis => $r, workers => 1, http => q{
    deferred_redis %%REDIS%%;
    deferred_max_batch 200;
    deferred_timeout 5s;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
});
my $EP = '/_ah/queue/deferred';

# (a) warm the connection (one entry, answered), then 64 other queues and
# web's named task in one request: web's lookup finds every entry reading
is($n->request('POST', $EP, json => '{"func":"noop","queue":"q0"}')->{status}, 201, 'warm-up: 201');
sleep 0.3;
my $json = '[' . join(',', (map { qq({"func":"noop","queue":"q$_"}) } 1 .. 64),
                      qq({"func":"noop","queue":"web","name":"$names[0]"})) . ']';
my $res = $n->request('POST', $EP, json => $json);
is($res->{status}, 201, '65 queues in one batch: 201');
is(shard_of_name('web', $names[0]), DQTest::shard_of($names[0], 4),
   "$names[0] stored in its shard " . DQTest::shard_of($names[0], 4) . ' only (got: ' . shard_of_name('web', $names[0]) . ')');
is($n->request('POST', $EP, json => qq({"func":"noop","queue":"web","name":"$names[0]"}))->{status},
   409, 'the same name again: 409');

# (b) the shard count cannot be read: HGET refused to nginx's user
$r->cmd('ACL', 'SETUSER', 'default', '-hget');
$res = $n->request('POST', $EP, json => qq({"func":"noop","queue":"cold","name":"$names[1]"}));
is($res->{status}, 503, "named task, count unreadable: 503 (got $res->{status})");
is(shard_of_name('cold', $names[1]), '', 'nothing stored');
$res = $n->request('POST', $EP, json => '{"func":"noop","queue":"cold","id":"order-1"}');
is($res->{status}, 503, "task with a client id, count unreadable: 503 (got $res->{status})");
$res = $n->request('POST', $EP, headers => { 'Idempotency-Key' => 'key-1' },
                   json => '{"func":"noop","queue":"cold"}');
is($res->{status}, 503, "Idempotency-Key, count unreadable: 503 (got $res->{status})");
$res = $n->request('POST', $EP, json => qq([{"func":"noop","queue":"cold"},{"func":"noop","queue":"cold","name":"$names[2]"}]));
is($res->{status}, 503, "unnamed then named in one request: 503, all or nothing (got $res->{status})");
is(stored_all('cold'), 0, 'nothing of them stored');
$res = $n->request('POST', $EP, json => '{"func":"noop","queue":"cold"}');
is($res->{status}, 201, 'an unnamed task: 201 (any shard will do)');
ok(DQTest::wait_for(sub { DQTest::slurp($n->error_log) =~ /shard count of queue "cold" could not be read/ }, 5),
   'the failed read logged');

# the count reads again: the name goes to its shard
$r->cmd('ACL', 'SETUSER', 'default', '+hget');
DQTest::wait_for(sub {
    $n->request('POST', $EP, json => qq({"func":"noop","queue":"cold","name":"$names[1]"}))->{status} == 201 }, 10, 0.2);
is(shard_of_name('cold', $names[1]), DQTest::shard_of($names[1], 4), "$names[1] then stored in its shard only");
$n->stop;
done_testing;
