# 10,000-task batches in JSON and msgpack are all-or-nothing (issue 11,
# item 7: enqueue.lua's unpack of every ZADD pair failed above ~8,000
# values after the envelopes were written; the client got 503, the names
# stayed taken for ever) and enqueues can be retried safely with a
# client-supplied "id" or an Idempotency-Key header (issue 10, item 10).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => q{
    deferred_redis %%REDIS%%;
    client_max_body_size 8m;
    deferred_max_body 4m;
    deferred_max_batch 10000;
    deferred_timeout 20s;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
    }
});
my $EP = '/_ah/queue/deferred';

# --- 10,000 named tasks, JSON then msgpack
my $json = '[' . join(',', map { qq({"func":"noop","queue":"bj","name":"j$_","args":[$_]}) } 1 .. 10000) . ']';
my $res = $n->request('POST', $EP, json => $json);
is($res->{status}, 201, '10,000 tasks as JSON: 201');
is(DQNginx::stored($r, 'bj'), 10000, '10,000 stored');
is($r->cmd('ZCARD', 'dq2:{bj}:eta'), 10000, '10,000 scheduled');
my @ids = $res->{body} =~ /"id":"([^"]+)"/g;
is(scalar @ids, 10000, '10,000 ids answered');

# (func and name only, in the default queue: under the 65,536 elements
# today's main accepts, so that this one reaches the script there too)
my $mp = DQNginx::mp([ map { { func => 'noop', name => "m$_" } } 1 .. 10000 ]);
$res = $n->request('POST', $EP, msgpack => $mp);
is($res->{status}, 201, '10,000 tasks as msgpack: 201');
is(DQNginx::stored($r), 10000, '10,000 stored');
is($r->cmd('ZCARD', 'dq2:{default}:names'), 10000, '10,000 names live');
is($r->cmd('ZCARD', 'dq2:{default}:eta'), 10000,
   '10,000 scheduled (main: 0, stored but never to run, the client told 503)');

# a bad task at the end: nothing of the batch
$json = '[' . join(',', map { qq({"func":"noop","queue":"bx","name":"x$_"}) } 1 .. 9999)
      . ',{"func":"noop","queue":"bx","name":"bad/name"}]';
$res = $n->request('POST', $EP, json => $json);
is($res->{status}, 400, '10,000 with the last one invalid: 400');
is(DQNginx::stored($r, 'bx'), 0, 'nothing stored');
is($r->cmd('ZCARD', 'dq2:{bx}:names'), 0, 'no name taken');

# the same batch again: every name taken, nothing stored twice
$res = $n->request('POST', $EP, msgpack => $mp);
is($res->{status}, 409, 'the msgpack batch again: 409, every name taken');
is(DQNginx::stored($r), 10000, 'still 10,000');

# --- 10,000 tasks in 10,000 queues: grouped by a table, not a scan per
# task (issue 11 item 8: the cost grew with tasks x queues)
$json = '[' . join(',', map { qq({"func":"noop","queue":"mq$_"}) } 1 .. 10000) . ']';
$res = $n->request('POST', $EP, json => $json);
is($res->{status}, 201, '10,000 tasks in 10,000 queues: 201');
is(DQNginx::stored($r, 'mq1') + DQNginx::stored($r, 'mq5000') + DQNginx::stored($r, 'mq10000'),
   3, 'one task in each queue');
my @q = $res->{body} =~ /"queue":"(mq\d+)"/g;
is_deeply([@q[0, 4999, 9999]], ['mq1', 'mq5000', 'mq10000'], 'answers in request order');

# --- idempotent enqueue: "id" in the body
$res = $n->request('POST', $EP, json => '{"func":"noop","queue":"i1","id":"order-1234"}');
is($res->{status}, 201, 'client id: 201');
like($res->{body}, qr/"id":"order-1234".*"status":"created"/, 'the id is the client\'s, created');
$res = $n->request('POST', $EP, json => '{"func":"noop","queue":"i1","id":"order-1234"}');
is($res->{status}, 201, 'the same id again: 201');
like($res->{body}, qr/"status":"existed"/, 'existed');
is(DQNginx::stored($r, 'i1'), 1, 'stored once');
$res = $n->request('POST', $EP, json => '{"func":"noop","queue":"i1","id":"bad id!"}');
is($res->{status}, 400, 'an invalid id: 400');
like($res->{body}, qr/"field":"id"/, 'names the field');

# --- Idempotency-Key header
$res = $n->request('POST', $EP, json => '{"func":"noop","queue":"i2"}',
                   headers => { 'Idempotency-Key' => 'b2f7c1d0-9a1e-4c55-8f0e-3d2a6b7c8d9e' });
like($res->{body}, qr/"id":"b2f7c1d0-9a1e-4c55-8f0e-3d2a6b7c8d9e"/, 'Idempotency-Key: the task id');
$res = $n->request('POST', $EP, json => '{"func":"noop","queue":"i2"}',
                   headers => { 'Idempotency-Key' => 'b2f7c1d0-9a1e-4c55-8f0e-3d2a6b7c8d9e' });
like($res->{body}, qr/"status":"existed"/, 'retried with the same key: existed');
is(DQNginx::stored($r, 'i2'), 1, 'stored once');
$res = $n->request('POST', $EP, json => '[{"func":"noop","queue":"i3"},{"func":"noop","queue":"i3"}]',
                   headers => { 'Idempotency-Key' => 'batch-7' });
like($res->{body}, qr/"id":"batch-7-0".*"id":"batch-7-1"/, 'batch: key-0, key-1');
$res = $n->request('POST', $EP, json => '[{"func":"noop","queue":"i3"},{"func":"noop","queue":"i3"}]',
                   headers => { 'Idempotency-Key' => 'batch-7' });
is(() = $res->{body} =~ /"status":"existed"/g, 2, 'batch retried: both existed');
is(DQNginx::stored($r, 'i3'), 2, 'two stored, once each');
$res = $n->request('POST', $EP, json => '{"func":"noop"}', headers => { 'Idempotency-Key' => 'no spaces' });
is($res->{status}, 400, 'a bad Idempotency-Key: 400');
$res = $n->request('POST', $EP, json => '[{"func":"noop"},{"func":"noop"}]',
                   headers => { 'Idempotency-Key' => 'k' x 59 });
is($res->{status}, 400, 'an Idempotency-Key too long for a batch: 400');
like($res->{body}, qr/1 to 58 characters of \[A-Za-z0-9_-\] on a batch/, '... the limit it says is the real one');
$res = $n->request('POST', $EP, json => '{"func":"noop","queue":"i6"}', headers => { 'Idempotency-Key' => 'k' x 64 });
is($res->{status}, 201, '... a 64-character key on one task: 201');

# ids are per queue and a batch stores one task per id: a collision inside
# one batch is refused whole, naming both (before the fix: 201, the second
# task "existed" and was dropped)
$res = $n->request('POST', $EP, json => '[{"func":"noop","queue":"i4","args":[1]},{"func":"noop","queue":"i4","args":[2]},{"func":"noop","queue":"i4","id":"k-0"}]',
                   headers => { 'Idempotency-Key' => 'k' });
is($res->{status}, 400, 'an explicit id equal to an Idempotency-Key id of the batch: 400');
like($res->{body}, qr/tasks\[0\] and tasks\[2\]: the same id \\"k-0\\"/, '... naming both');
$res = $n->request('POST', $EP, json => '[{"func":"noop","queue":"i4","id":"x","args":[1]},{"func":"noop","queue":"i5"},{"func":"noop","queue":"i4","id":"x","args":[2]}]');
is($res->{status}, 400, 'two equal explicit ids with different bodies: 400');
like($res->{body}, qr/tasks\[0\] and tasks\[2\]/, '... naming both');
is(DQNginx::stored($r, 'i4') + DQNginx::stored($r, 'i5'), 0, 'nothing stored');
$res = $n->request('POST', $EP, json => '[{"func":"noop","queue":"i4","id":"x"},{"func":"noop","queue":"i5","id":"x"}]');
is($res->{status}, 201, 'the same id in two queues: 201 (ids are per queue)');

# --- the C client (deferred-cli defer --id): the same rule
my $cli = DQTest::build_dir() . '/client/deferred-cli';
SKIP: {
    DQTest::skip_unless(-x $cli, 'deferred-cli not built', 5);
    my $addr = $r->address;
    my $o1 = `$cli -r $addr defer -q c1 --id job-42 noop`;
    is($? >> 8, 0, 'deferred-cli defer --id: exit 0');
    like($o1, qr/^job-42 \d+$/, "the id is the caller's: $o1");
    my $o2 = `$cli -r $addr defer -q c1 --id job-42 noop`;
    is($? >> 8, 0, 'the same id again: exit 0 (existed)');
    is(DQNginx::stored($r, 'c1'), 1, 'stored once');
    `$cli -r $addr defer -q c1 --id this-id-is-longer-than-22 noop 2>/dev/null`;
    is($? >> 8, 2, 'an id over 22 characters through the C client: exit 2');
}

$n->stop;
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
