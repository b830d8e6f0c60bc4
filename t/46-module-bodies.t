# What the deferred POST endpoint stores: JSON and msgpack bodies, single
# tasks (201 + the task as JSON) and batches (one script call per queue;
# 201 / 207 / 409 with per-task status), the custom-URL endpoint, a body
# nginx spooled to a temp file, the deferred_secret HMAC check (403), and
# the envelope the worker will run (checked by running it: the example
# library's `record` function writes what it got).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQWorker;
use Test::More;
use Time::HiRes qw(time);

DQNginx::require_nginx();

my $SECRET = 'correct horse battery staple';
my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => qq{
    deferred_redis %%REDIS%%;
    client_body_buffer_size 1k;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
        location = /custom/path { deferred_endpoint on; }
        location = /signed {
            deferred_endpoint on;
            deferred_secret "$SECRET";
        }
        location = /signed-hdr {
            deferred_endpoint on;
            deferred_secret "$SECRET" header=X-Hub-Signature-256;
        }
        location = /vars {
            deferred_endpoint on;
            add_header X-Ids \$deferred_task_id;
            add_header X-Etas \$deferred_task_eta;
        }
    }
});
my $EP = '/_ah/queue/deferred';

my $task = sub { my ($id) = @_; $r->cmd('HGET', 'dq2:{default}:tasks', $id) };
my $eta = sub { my ($id, $q) = @_; $r->cmd('ZSCORE', 'dq2:{' . ($q // 'default') . '}:eta', $id) };

# --- one task, JSON
# (10 s: inside the cold tier's horizon, so the task is in tasks/eta)
my $t0 = time * 1000;
my $res = $n->request('POST', $EP, json => '{"func":"noop","args":["a",1],"countdown":10,"queue":"default"}');
is($res->{status}, 201, 'JSON task: 201 Created');
like($res->{headers}{'content-type'}, qr{^application/json}, 'answer is JSON');
my ($id) = $res->{body} =~ /"id":"([A-Za-z0-9_-]{22})"/;
ok($id, "the task id is returned ($id)");
my ($eta_ms) = $res->{body} =~ /"eta_ms":(\d+)/;
ok($eta_ms >= $t0 + 9000 && $eta_ms <= $t0 + 12000, 'eta_ms is now + countdown');
like($res->{body}, qr/"eta":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/, 'eta as RFC 3339');
# the reply's numbers and time, digit for digit (zero padding included)
for my $case (['2030-01-02T03:04:05.006Z', 1893553445006], ['2026-11-21T10:00:00.120Z', 1795255200120],
              ['2100-12-31T23:59:59.999Z', 4133980799999]) {
    my ($text, $ms) = @$case;
    my $x = $n->request('POST', $EP, json => qq({"func":"noop","eta":"$text"}));
    like($x->{body}, qr/"eta_ms":$ms,"eta":"\Q$text\E"/, "eta $text: eta_ms $ms and the same text back")
        or diag $x->{body};
}
like($res->{body}, qr/"queue":"default"/, 'queue returned');
like($res->{body}, qr{"url":"/_ah/queue/deferred"}, 'default URL');
ok(defined $task->($id), 'stored under that id');
is($eta->($id), $eta_ms, 'scheduled at that ETA');

# --- one task, msgpack
$res = $n->request('POST', $EP, msgpack => DQNginx::mp({ func => 'noop', args => [\'x', 7, 1.5, undef, [1, 2], { k => 'v' }],
                                                          kwargs => { amount => 10 }, name => 'mp-1' }));
is($res->{status}, 201, 'msgpack task: 201');
like($res->{body}, qr/"name":"mp-1"/, 'name returned');
($id) = $res->{body} =~ /"id":"([^"]+)"/;
ok(defined $task->($id), 'msgpack task stored');
$res = $n->request('POST', $EP, msgpack => DQNginx::mp({ func => 'noop' }),
                   type => 'application/msgpack');
is($res->{status}, 201, 'application/msgpack accepted too');
$res = $n->request('POST', $EP, json => '{"func":"noop"}', type => 'application/json; charset=utf-8');
is($res->{status}, 201, 'Content-Type parameters ignored');

# --- custom URL endpoint: tasks carry the URL they were posted to
$res = $n->request('POST', '/custom/path', json => '{"func":"noop"}');
is($res->{status}, 201, 'custom-URL endpoint: 201');
like($res->{body}, qr{"url":"/custom/path"}, 'the task carries /custom/path');
$res = $n->request('POST', '/custom/path', json => '{"func":"noop","url":"/other"}');
like($res->{body}, qr{"url":"/other"}, 'an explicit url wins');

# --- batches
my $before = DQNginx::stored($r);
$res = $n->request('POST', $EP, json => '[{"func":"noop","name":"b1"},{"func":"noop","queue":"mail"},'
                                      . '{"func":"noop","name":"b2","eta":"2030-01-01T00:00:00Z"}]');
is($res->{status}, 201, 'batch of 3 over two queues: 201');
my @ids = $res->{body} =~ /"id":"([^"]+)"/g;
is(scalar @ids, 3, 'three ids, in order');
like($res->{body}, qr/^\[.*"queue":"default".*"queue":"mail".*"queue":"default".*\]$/s, 'per-task queues, in order');
is($eta->($ids[2]), 1893456000000, 'eta from RFC 3339 honoured');
ok(defined $r->cmd('HGET', 'dq2:{mail}:tasks', $ids[1]), 'the mail task is in its own queue');
is(DQNginx::stored($r), $before + 2, 'two in default');

$res = $n->request('POST', $EP, json => '[{"func":"noop","name":"b1"},{"func":"noop","name":"b3"}]');
is($res->{status}, 207, 'batch with one duplicate: 207');
like($res->{body}, qr/"name":"b1","url":"[^"]+","status":"TaskAlreadyExists"/, 'the duplicate named');
like($res->{body}, qr/"name":"b3","url":"[^"]+","status":"created"/, 'the other created');
$res = $n->request('POST', $EP, json => '[{"func":"noop","name":"b1"},{"func":"noop","name":"b2"}]');
is($res->{status}, 409, 'batch of duplicates only: 409');

# a msgpack batch of 200 tasks
$before = DQNginx::stored($r);
$res = $n->request('POST', $EP, msgpack => DQNginx::mp([ map { { func => 'noop', args => [$_] } } 1 .. 200 ]));
is($res->{status}, 201, 'msgpack batch of 200: 201');
is(scalar(() = $res->{body} =~ /"status":"created"/g), 200, '200 created');
is(DQNginx::stored($r), $before + 200, '200 stored');

# --- a body nginx wrote to a temp file (client_body_buffer_size 1k)
my $big = '{"func":"noop","args":["' . ('y' x 50000) . '"]}';
$res = $n->request('POST', $EP, json => $big);
is($res->{status}, 201, '50 KB body (spooled to a temp file): 201');
($id) = $res->{body} =~ /"id":"([^"]+)"/;
ok(index($task->($id), 'y' x 50000) >= 0, 'the whole argument stored');
like(DQTest::slurp($n->error_log), qr/client request body is buffered to a temporary file/,
     '... it did go through a temp file');

# --- variables
$res = $n->request('POST', '/vars', json => '[{"func":"noop"},{"func":"noop","countdown":1}]');
@ids = $res->{body} =~ /"id":"([^"]+)"/g;
is($res->{headers}{'x-ids'}, join(',', @ids), '$deferred_task_id lists the ids');
my @etas = $res->{body} =~ /"eta_ms":(\d+)/g;
is($res->{headers}{'x-etas'}, join(',', @etas), '$deferred_task_eta lists the ETAs');

# --- deferred_secret (the header of lib/dq_sign.h; replay, windows and
# rotation in t/93-module-sign.t)
my $body = '{"func":"noop","name":"signed-1"}';
my $signed = sub {
    my ($secret, $uri, $b, $t) = @_;
    $t //= time;
    $t = int $t;
    return "t=$t,v1=" . DQNginx::hmac_sha256_hex($secret, "POST\n$uri\n$t\n$b");
};
my $sig = $signed->($SECRET, '/signed', $body);
$before = DQNginx::stored($r);
$res = $n->request('POST', '/signed', json => $body);
is($res->{status}, 403, 'secret: unsigned POST 403');
like($res->{body}, qr/"error":"Forbidden"/, '403 body');
$res = $n->request('POST', '/signed', json => $body,
                   headers => { 'X-Deferred-Signature' => $signed->('wrong secret 0123', '/signed', $body) });
is($res->{status}, 403, 'secret: wrong key 403');
$res = $n->request('POST', '/signed', json => $body . ' ',
                   headers => { 'X-Deferred-Signature' => $sig });
is($res->{status}, 403, 'secret: body changed 403');
is(DQNginx::stored($r), $before, 'nothing stored by a 403');
$res = $n->request('POST', '/signed', json => $body, headers => { 'X-Deferred-Signature' => $sig });
is($res->{status}, 201, 'secret: signed POST 201');
$res = $n->request('POST', '/signed-hdr', json => '{"func":"noop"}',
                   headers => { 'X-Hub-Signature-256' => (uc $signed->($SECRET, '/signed-hdr', '{"func":"noop"}')) =~ s/^T=(\d+),V1=/t=$1,v1=/r });
is($res->{status}, 201, 'secret: custom header, upper-case hex');
like(DQTest::slurp($n->error_log), qr/\[warn\].*deferred: 403 X-Deferred-Signature from 127\.0\.0\.1: missing/,
     '403 logged at warn, with the reason');

# --- the worker runs what nginx stored, with the arguments as sent
my $rec = "$dir/rec";
my $w = DQWorker::start_worker($r, $dir, name => 'worker', args => ['-q', 'runq']);
$res = $n->request('POST', $EP, json => qq({"func":"record","queue":"runq","args":["$rec",42]}));
is($res->{status}, 201, 'record task stored');
$res = $n->request('POST', $EP, msgpack => DQNginx::mp({ func => 'record', queue => 'runq', args => [$rec, \'tag']}));
is($res->{status}, 201, 'msgpack record task stored');
my @recs = DQWorker::wait_records($rec, 2, 10);
is(scalar @recs, 2, 'the worker ran both');
is_deeply([sort map { $_->{tag} } @recs], [42, 'tag'], 'with the arguments nginx stored');
is(DQWorker::stop_worker($w), 0, 'worker stops cleanly (exit status 0)');

is($n->stop, 0, 'nginx stops cleanly (exit status 0)');
log_clean_ok($n->error_log, 'nginx error log');
log_clean_ok($w->{log}, 'worker log');
done_testing;
