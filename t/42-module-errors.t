# Every error of the deferred POST endpoint and of deferred_enqueue
# locations: status, JSON body naming the field, the error-log line at the
# right level, and Redis left clean (no key written by a refused request).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQWorker;
use Test::More;

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => q{
    deferred_redis %%REDIS%%;
    deferred_max_body 2k;
    deferred_max_batch 5;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
        location = /limited {
            deferred_endpoint on;
            deferred_queues default mail;
        }
        location = /enqueue {
            deferred_enqueue noop queue=$arg_q name=$arg_n
                             countdown=$arg_c args=$arg_a int:$arg_i;
            deferred_return 200 "stored $deferred_task_id\n";
        }
        location = /enqueue2 {
            deferred_enqueue noop;
            deferred_enqueue noop queue=$arg_q name=$arg_n;
            deferred_return 200 "stored\n";
        }
    }
});

my $EP = '/_ah/queue/deferred';

sub err_ok {
    my ($res, $status, $error, $field, $what) = @_;
    is($res->{status}, $status, "$what: $status");
    like($res->{headers}{'content-type'} // '', qr{^application/json},
         "$what: JSON body");
    like($res->{body}, qr/"error":"\Q$error\E"/, "$what: error $error")
        or diag $res->{body};
    like($res->{body}, qr/"field":"\Q$field\E"/, "$what: field $field")
        if defined $field;
}

my $res;

# --- before the body is read
$res = $n->request('GET', $EP);
err_ok($res, 405, 'MethodNotAllowed', undef, 'GET');
is($res->{headers}{allow}, 'POST', 'GET: Allow: POST');

err_ok($n->request('POST', $EP, body => '{"func":"f"}', type => 'text/plain'),
       415, 'UnsupportedMediaType', undef, 'text/plain');
err_ok($n->request('POST', $EP, body => '{"func":"f"}'),
       415, 'UnsupportedMediaType', undef, 'no Content-Type');
err_ok($n->request('POST', $EP, json => '{"func":"f","args":["' . ('x' x 3000) . '"]}'),
       413, 'RequestTooLarge', undef, 'body over deferred_max_body');

# chunked: the size is known only once read
{
    my $body = '{"func":"f","args":["' . ('x' x 3000) . '"]}';
    my $raw = "POST $EP HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            . "Transfer-Encoding: chunked\r\n\r\n"
            . sprintf("%x\r\n%s\r\n0\r\n\r\n", length $body, $body);
    ($res) = $n->many([$raw], conns => 1);
    # refused while reading (ngx_http_deferred_body_filter): nginx's own
    # 413 page, as for client_max_body_size (t/94-module-stream.t)
    is($res->{status}, 413, 'chunked body over the limit: 413');
}

# --- malformed bodies
err_ok($n->request('POST', $EP, json => '{"func":'),
       400, 'MalformedBody', undef, 'truncated JSON');
err_ok($n->request('POST', $EP, msgpack => "\x81\xa4func"),
       400, 'MalformedBody', undef, 'truncated msgpack');
err_ok($n->request('POST', $EP, msgpack => "\xdd\xff\xff\xff\xff"),
       400, 'MalformedBody', undef, 'msgpack array header claiming 4G items');
err_ok($n->request('POST', $EP, json => '"just a string"'),
       400, 'InvalidTask', 'request', 'neither a map nor an array');
err_ok($n->request('POST', $EP, json => '{"args":[1]}'),
       400, 'InvalidTask', 'func', 'no func');
err_ok($n->request('POST', $EP, json => '{"func":"bad func"}'),
       400, 'InvalidTask', 'func', 'bad func name');
err_ok($n->request('POST', $EP, json => '{"func":"f","countdwn":5}'),
       400, 'InvalidTask', 'countdwn', 'unknown field (typo)');
err_ok($n->request('POST', $EP, json => '{"func":"f","queue":"no such!"}'),
       400, 'InvalidTask', 'queue', 'bad queue name');
err_ok($n->request('POST', $EP, json => '{"func":"f","name":"a/b"}'),
       400, 'InvalidTask', 'name', 'bad task name');
err_ok($n->request('POST', $EP, json => '{"func":"f","countdown":5,"eta":1790000000}'),
       400, 'InvalidTask', 'eta', 'countdown and eta');
err_ok($n->request('POST', $EP, json => '{"func":"f","eta":"2026-11-21T10:00:00"}'),
       400, 'InvalidTask', 'eta', 'naive eta');
err_ok($n->request('POST', $EP, json => '{"func":"f","countdown":-1}'),
       400, 'InvalidTask', 'countdown', 'negative countdown');
err_ok($n->request('POST', $EP, json => '[{"func":"f"},{"func":"f","url":"nope"}]'),
       400, 'InvalidTask', 'tasks[1].url', 'bad url in a batch: names the task');
err_ok($n->request('POST', $EP, json => '[]'),
       400, 'InvalidTask', 'tasks', 'empty batch');
err_ok($n->request('POST', $EP, json => '[' . join(',', ('{"func":"f"}') x 6) . ']'),
       413, 'RequestTooLarge', 'tasks', 'batch over deferred_max_batch');
err_ok($n->request('POST', '/limited', json => '{"func":"f","queue":"other"}'),
       400, 'InvalidTask', 'queue', 'queue not in deferred_queues');
err_ok($n->request('POST', '/limited', json => '[{"func":"f"},{"func":"f","queue":"other"}]'),
       400, 'InvalidTask', 'tasks[1].queue', 'batch: queue not in deferred_queues');

# --- deferred_enqueue with bad values from the request
$res = $n->request('GET', '/enqueue?q=bad.queue&a=x&i=1');
err_ok($res, 400, 'InvalidTask', 'queue', 'enqueue: bad queue from $arg_q');
unlike($res->{body}, qr/stored/, 'enqueue: the content is not sent on error');
err_ok($n->request('GET', '/enqueue?c=soon&a=x&i=1'),
       400, 'InvalidTask', 'countdown', 'enqueue: bad countdown');
err_ok($n->request('GET', '/enqueue?a=x&i=ten'),
       400, 'InvalidTask', 'args', 'enqueue: int: argument not an integer');
err_ok($n->request('GET', '/enqueue?n=no/slash&a=x&i=1'),
       400, 'InvalidTask', 'name', 'enqueue: bad task name');
# two deferred_enqueue: the error names the task
$res = $n->request('GET', '/enqueue2?q=bad.queue');
err_ok($res, 400, 'InvalidTask', 'tasks[1].queue', 'enqueue x2: bad queue');
like($res->{body}, qr/tasks\[1\]\.queue: must be 1 to \d+ characters of \[A-Za-z0-9_-\]/,
     'enqueue x2: bad queue: the message');
err_ok($n->request('GET', '/enqueue2?n=no/slash'),
       400, 'InvalidTask', 'tasks[1].name', 'enqueue x2: bad task name');

is_deeply([DQNginx::redis_keys($r)], [], 'Redis is untouched by refused requests');

# --- duplicates and tombstones (TaskAlreadyExists / TombstonedTask)
$res = $n->request('POST', $EP, json => '{"func":"noop","name":"once","countdown":3600}');
is($res->{status}, 201, 'named task stored: 201');
$res = $n->request('POST', $EP, json => '{"func":"noop","name":"once"}');
err_ok($res, 409, 'TaskAlreadyExists', undef, 'same name while waiting');
$res = $n->request('GET', '/enqueue?n=once&a=x&i=1');
err_ok($res, 409, 'TaskAlreadyExists', undef, 'enqueue location, same name');
unlike($res->{body}, qr/stored/, 'enqueue location: no content on 409');
is(DQNginx::stored($r), 1, 'one task stored, not three');

# a task that ran leaves a tombstone
my $w = DQWorker::start_worker($r, $dir, name => 'worker');
$res = $n->request('POST', $EP, json => '{"func":"noop","name":"ran"}');
is($res->{status}, 201, 'task "ran" stored');
ok(DQTest::wait_for(sub { DQNginx::stored($r) == 1 }, 10), 'and run by the worker');
$res = $n->request('POST', $EP, json => '{"func":"noop","name":"ran"}');
err_ok($res, 409, 'TombstonedTask', undef, 'same name after it ran');
is(DQNginx::stored($r), 1, 'nothing stored by the 409');
is(DQWorker::stop_worker($w), 0, 'worker stops cleanly (exit status 0)');

# --- log levels: client errors at info, never error or above
my $log = DQTest::slurp($n->error_log);
like($log, qr/\[info\].*deferred: 400 rejected task: countdwn: unknown field/,
     '400 logged at info with the reason');
like($log, qr/\[info\].*deferred: 415 UnsupportedMediaType/, '415 logged at info');
like($log, qr/\[info\].*task name "once" in queue "default": TaskAlreadyExists/,
     '409 logged at info');
unlike($log, qr/\[(error|crit|alert|emerg)\]/, 'no client error logged as [error]');

is($n->stop, 0, 'nginx stops cleanly (exit status 0)');
log_clean_ok($n->error_log, 'nginx error log');
log_clean_ok($w->{log}, 'worker log');
done_testing;
