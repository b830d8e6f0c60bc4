# A task the module accepts is one the worker can decode: bytes.
# deferred_max_body bounds the request body; each task's envelope is
# bounded on its own by deferred_max_envelope (default 1m, the worker's
# default max_envelope). Before it, deferred_max_body 4m let a task with a
# 2 MiB arg get 201, and the worker (max_envelope 1m) buried it at once
# (review6-RH2, 1b). Raised on both sides, the same task runs.
use strict; use warnings;
use lib 't/lib';
use DQTest; use DQNginx; use DQWorker; use Test::More;
DQNginx::require_nginx();
my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => q{
    deferred_redis %%REDIS%%;
    client_max_body_size 8m;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on;
             deferred_max_body 4m;
             location /big/ { deferred_endpoint on;
                              deferred_max_envelope 4m; } }
});
my $tasks = DQTest::dq_key('default', 'tasks');
my $big = '"' . ('x' x (2 * 1024 * 1024)) . '"';

# the default deferred_max_envelope (1m): 413, the limit named, nothing
# stored, a log line
my $res = $n->request('POST', '/_ah/queue/deferred',
                      json => "{\"func\":\"noop\",\"args\":[$big]}");
is($res->{status}, 413, 'a task with a 2 MiB arg under deferred_max_body 4m: 413');
like($res->{body}, qr/over the limit of 1048576/, '... naming the limit');
like($res->{body}, qr/"field":"request","message":"request: task envelope /,
     '... and the task, as other errors of one task do ("request")');
like(DQTest::slurp($n->error_log), qr/413 rejected task: request: task envelope/,
     '... logged');
is($r->cmd('HLEN', $tasks), 0, '... nothing stored');

# in a batch: the task named, the small task beside it not stored
$res = $n->request('POST', '/_ah/queue/deferred',
                   json => "[{\"func\":\"noop\"},{\"func\":\"noop\",\"args\":[$big]}]");
is($res->{status}, 413, 'the same task as tasks[1] of a batch: 413');
like($res->{body}, qr/"field":"tasks\[1\]","message":"tasks\[1\]: task envelope /,
     '... naming tasks[1]');
is($r->cmd('HLEN', $tasks), 0, '... nothing of the batch stored');
like(DQTest::slurp($n->error_log), qr/413 rejected task: tasks\[1\]: .*1048576/,
     '... and logged');

# raised in the module and in the worker: stored and run
$res = $n->request('POST', '/big/x',
                   json => "{\"func\":\"noop\",\"args\":[$big]}");
is($res->{status}, 201, 'deferred_max_envelope 4m: 201');
is($r->cmd('HLEN', $tasks), 1, '... stored');
my $w = DQWorker::start_worker($r, $dir, libs => [ DQWorker::example_lib() ],
                               args => [ '--max_envelope', '4m' ]);
ok(DQTest::wait_for(sub { $r->cmd('HLEN', $tasks) == 0 }, 20),
   '... and a worker with max_envelope 4m runs it');
is(scalar(keys %{ DQWorker::dead($r) }), 0, '... nothing buried');
DQWorker::stop_worker($w);
$n->stop;

# the directive's range is checked by nginx -t
for my $bad ('63', '513m') {
    my $m = eval { DQNginx->start(redis => $r, http => qq{
        deferred_redis %%REDIS%%;
        server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on;
                 deferred_max_envelope $bad; }
    }) };
    ok(!$m, "deferred_max_envelope $bad refused at start");
    like($@ // '', qr/"deferred_max_envelope" must be 64 to 536870912 bytes/,
         '... saying why');
    $m->stop if $m;
}
$r->stop;
DQTest::log_clean_ok($n->error_log);
done_testing;
