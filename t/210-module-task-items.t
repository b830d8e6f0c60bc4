# A task the module accepts is one the worker can decode: elements.
# deferred_max_batch 5000 raises the whole body's element bound to 80,000
# (max_batch * 16); ONE task's args, kwargs and headers stay bounded by
# what the worker's decoder takes (DQ_DEFAULT_MAX_ITEMS, 65,536, plus the
# envelope's own fields). Before the fix a task of 70,000 args got 201 and
# the worker buried it at once ("undecodable envelope": review6-RH2, 1).
use strict; use warnings;
use lib 't/lib';
use DQTest; use DQNginx; use DQWorker; use Test::More;
DQNginx::require_nginx();
my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => q{
    deferred_redis %%REDIS%%;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on;
             deferred_max_batch 5000; }
});
my $tasks = DQTest::dq_key('default', 'tasks');
my $url = '/_ah/queue/deferred';

# one task of 70,000 args: refused whole, nothing stored, a log line
my $body = '{"func":"noop","args":[' . join(',', (0) x 70000) . ']}';
my $res = $n->request('POST', $url, json => $body);
is($res->{status}, 413, 'one task of 70000 args: 413');
like($res->{body}, qr/more than 65536 elements/, '... naming the limit');
like($res->{body}, qr/"field":"request","message":"request: task of 70000 /,
     '... and the task, as other errors of one task do ("request")');
is($r->cmd('HLEN', $tasks), 0, '... nothing stored');

# in a batch: the error names the task; the batch's other tasks are not
# stored either
$body = '[{"func":"noop"},{"func":"noop","kwargs":{'
      . join(',', map { "\"k$_\":0" } 1 .. 33000) . '}}]';
$res = $n->request('POST', $url, json => $body);
is($res->{status}, 413, 'a batch whose task 1 holds 66000 elements: 413');
like($res->{body}, qr/"field":"tasks\[1\]","message":"tasks\[1\]: task of /,
     '... naming tasks[1]');
is($r->cmd('HLEN', $tasks), 0, '... nothing of the batch stored');
like(DQTest::slurp($n->error_log), qr/413 rejected task: tasks\[1\]/,
     '... and logged');

# at the limit: 65,536 elements in args and kwargs together (with
# retry_options, the envelope's most fields) is stored and runs
$body = '{"func":"noop","retry_options":{"task_retry_limit":1,'
      . '"task_age_limit":60,"min_backoff_seconds":1,"max_backoff_seconds":2,'
      . '"max_doublings":1},"kwargs":{"a":0},"args":['
      . join(',', (0) x 65534) . ']}';
$res = $n->request('POST', $url, json => $body);
is($res->{status}, 201, 'a task of 65536 elements: 201');
is($r->cmd('HLEN', $tasks), 1, '... stored');
my $w = DQWorker::start_worker($r, $dir, libs => [ DQWorker::example_lib() ]);
ok(DQTest::wait_for(sub { $r->cmd('HLEN', $tasks) == 0 }, 20),
   '... and the worker runs it');
is(scalar(keys %{ DQWorker::dead($r) }), 0, '... nothing buried');
DQWorker::stop_worker($w);
unlike(DQWorker::log_text($w), qr/undecodable/, 'the worker decoded it');
$n->stop; $r->stop;
DQTest::log_clean_ok($n->error_log);
done_testing;
