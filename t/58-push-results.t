# Push delivery's outcomes, with a real app under gunicorn
# (t/python/pushapp.py) and tasks deferred by the Python package through
# nginx: App Engine's headers and os.environ context; PermanentTaskFailure
# dead at once; SingularTaskFailure retried quietly; an exception (500)
# retried with the backoff; a custom URL answering 500 retried; a push to
# a dead app retried until the app is back; an unpicklable payload dead,
# not dropped.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQApp;
use JSON::PP;
use Test::More;

DQApp::require_python();
my ($s, $r, $dir) = DQApp::start_pushapp(worker_conf => <<'EOF');
queue default {
    push_target http://127.0.0.1:@APP_PORT@; push_deadline 20s;
    min_backoff 100ms; max_backoff 1s;
}
queue deadline { push_target http://127.0.0.1:@APP_PORT@; push_deadline 500ms; retry_limit 0; }
queue timeout { push_target http://127.0.0.1:@APP_PORT@; timeout 500ms; retry_limit 0; }
queue noack { push_target http://127.0.0.1:@APP_PORT@; push_require_ack off; retry_limit 0; }
EOF

sub attempts { $s->attempts(@_) }

sub defer_py {
    my ($code) = @_;
    my ($rc, $out) = $s->python("import pushapp\nfrom ngx_deferred import deferred, taskqueue\n$code");
    is($rc, 0, 'deferred') or diag $out;
    return $out;
}

sub dead_error {
    my ($id) = @_;
    return $r->cmd('HGET', 'dq2:{default}:errors', $id);
}

# ---------------------------------------------------------------- success
my $out = defer_py(q{
t = deferred.defer(pushapp.ok, "plain", 1, x=2, _name="task-ok-1",
                   _headers={"X-Trace": "abc"})
print(t.id)
});
ok(wait_for(sub { scalar attempts('plain') }, 10), 'the task ran in the app');
my ($a) = attempts('plain');
is_deeply([$a->{args}, $a->{kwargs}], [[1], {x => 2}], 'args and kwargs arrived');
is($a->{queue}, 'default', 'X-AppEngine-QueueName in os.environ');
is($a->{name}, 'task-ok-1', 'X-AppEngine-TaskName is the task name');
is($a->{retry}, '0', 'X-AppEngine-TaskRetryCount 0');
is($a->{execs}, '0', 'X-AppEngine-TaskExecutionCount 0');
like($a->{eta}, qr/^\d{10}\.\d{6}$/, 'X-AppEngine-TaskETA: float epoch seconds');
ok(abs($a->{eta} - $a->{t}) < 30, 'the ETA is about now');

defer_py(q{deferred.defer(pushapp.ok, "hdr", _url="/headers", _headers={"X-Trace": "abc"})});
ok(wait_for(sub { scalar attempts('h') }, 10), 'a custom URL got its push');
my ($h) = attempts('h');
is($h->{trace}, 'abc', "the task's own header reached the app");
is($h->{ctype}, 'application/octet-stream', 'Content-Type application/octet-stream');
is($h->{status}, 200, 'Handler().post() returned 200');

defer_py(q{deferred.defer(pushapp.Greeter("Ada").greet, "method")});
ok(wait_for(sub { scalar attempts('method') }, 10), 'a bound method ran');
is((attempts('method'))[0]{who}, 'Ada', 'on its pickled object');

# a task cannot forge the queue's headers
defer_py(q{deferred.defer(pushapp.ok, "forged", _headers={"X-AppEngine-QueueName": "forged",
    "X-AppEngine-TaskRetryCount": "99", "X-Deferred-Signature": "t=1,v1=00"})});
ok(wait_for(sub { scalar attempts('forged') }, 10), 'a task carrying X-AppEngine-* and signature headers ran');
my ($fg) = attempts('forged');
is_deeply([$fg->{queue}, $fg->{retry}], ['default', '0'],
          "... with the queue's own values: the task's copies were dropped");

# ---------------------------------------------------- PermanentTaskFailure
$out = defer_py(q{print(deferred.defer(pushapp.permanent, "perm").id)});
my ($perm_id) = $out =~ /(\S+)\s*$/;
ok(wait_for(sub { $r->cmd('ZSCORE', 'dq2:{default}:dead', $perm_id) }, 10),
   'PermanentTaskFailure: the task is in the dead set');
is(scalar attempts('perm'), 1, '... after one attempt (dead at once)');
like(dead_error($perm_id), qr/PermanentTaskFailure/, '... its error says PermanentTaskFailure');

# ----------------------------------------------------- SingularTaskFailure
$out = defer_py(q{print(deferred.defer(pushapp.singular, "sing").id)});
my ($sing_id) = $out =~ /(\S+)\s*$/;
ok(wait_for(sub { scalar(attempts('sing')) >= 2 }, 10), 'SingularTaskFailure: retried');
ok(wait_for(sub { !$r->cmd('HEXISTS', 'dq2:{default}:tasks', $sing_id) }, 10),
   '... and done at the second attempt');
unlike(DQWorker::log_text($s->worker), qr/task failed:[^\n]*id=$sing_id/,
       '... quietly: no "task failed" line for it');
like(slurp("$dir/app.log"), qr{"POST /_ah/queue/deferred HTTP/1.1" 408 },
     'the app answered 408 (App Engine\'s status for it)');

# ------------------------------------------- an exception: 500, backoff
$out = defer_py(q{
print(deferred.defer(pushapp.flaky, "flaky", 2,
      _retry_options=deferred.TaskRetryOptions(min_backoff_seconds=0.4,
                                               task_retry_limit=5)).id)});
my ($flaky_id) = $out =~ /(\S+)\s*$/;
ok(wait_for(sub { scalar(attempts('flaky')) >= 3 }, 15), 'an exception: retried twice, then done');
my @f = attempts('flaky');
is_deeply([map { $_->{execs} } @f], [0, 1, 2], 'execution counts 0, 1, 2');
is_deeply([map { $_->{retry} } @f], [0, 1, 2], 'retry counts 0, 1, 2');
cmp_ok($f[1]{t} - $f[0]{t}, '>=', 0.35, 'first retry after the min backoff (0.4 s)');
cmp_ok($f[2]{t} - $f[1]{t}, '>=', 0.75, 'second after twice that (0.8 s)');
like(DQWorker::log_text($s->worker), qr/task failed:[^\n]*id=$flaky_id[^\n]*HTTP 500/,
     'the worker logged the 500 as a failed attempt');

# -------------------------------------------- a custom URL answering 500
defer_py(q{deferred.defer(pushapp.ok, "after500", _url="/status500")});
ok(wait_for(sub { scalar attempts('after500') }, 15), 'a URL answering 500 twice: the task ran at the third push');
is_deeply([map { $_->{retry_seen} } attempts('s500')], [0, 1, 2], 'three pushes');

# ----------------------------------------------------- the app is down
$s->app_stop;
$out = defer_py(q{
print(deferred.defer(pushapp.ok, "revived", _retry_options=
      deferred.TaskRetryOptions(task_retry_limit=100)).id)});
my ($rev_id) = $out =~ /(\S+)\s*$/;
ok(wait_for(sub { () = DQWorker::log_text($s->worker) =~ /id=$rev_id[^\n]*(?:Couldn't connect|Connection refused)/g; }, 10),
   'a push to a dead app: a failed attempt (connection refused)');
ok(wait_for(sub { my @n = DQWorker::log_text($s->worker) =~ /task failed:[^\n]*id=$rev_id/g; @n >= 2 }, 10),
   '... retried');
$s->app_start;
ok(wait_for(sub { scalar attempts('revived') }, 20), 'the app is back: the task ran');
ok(wait_for(sub { !$r->cmd('HEXISTS', 'dq2:{default}:tasks', $rev_id) }, 10), '... and is done');

# ------------------------------------------------ a payload that cannot load
$out = defer_py(q{
p = b"\x80\x04not a pickle"
t = taskqueue.Task(payload=p, url="/_ah/queue/deferred", headers=deferred.payload_headers(p))
print(taskqueue.Queue().add(t).id)});
my ($bad_id) = $out =~ /(\S+)\s*$/;
ok(wait_for(sub { $r->cmd('ZSCORE', 'dq2:{default}:dead', $bad_id) }, 10),
   'an undecodable payload: dead (kept, inspectable), not silently dropped');
like(dead_error($bad_id), qr/cannot unpickle/, '... with the reason');

# ------------------ a 2xx from a route that is not the deferred handler
# /slow?0 answers 200 at once and runs nothing: with push_require_ack (on
# by default) that is a failed attempt, not a done task.
$out = defer_py(q{print(deferred.defer(pushapp.ok, "never", _url="/slow?0", _queue="deadline").id)});
my ($noack_id) = $out =~ /(\S+)\s*$/;
ok(wait_for(sub { $r->cmd('ZSCORE', 'dq2:{deadline}:dead', $noack_id) }, 10),
   'a 2xx without X-Deferred-Result: ok is a failed attempt (retry_limit 0: dead)');
like($r->cmd('HGET', 'dq2:{deadline}:errors', $noack_id) // '', qr/not the deferred handler \(push_require_ack\)/,
     '... saying it was not the deferred handler');
$out = defer_py(q{print(deferred.defer(pushapp.ok, "never", _url="/slow?0", _queue="noack").id)});
my ($off_id) = $out =~ /(\S+)\s*$/;
ok(wait_for(sub { DQWorker::log_text($s->worker) =~ /\Q$off_id\E/
                  && !$r->cmd('HEXISTS', 'dq2:{noack}:tasks', $off_id) }, 10),
   'push_require_ack off: any 2xx is done');
ok(!$r->cmd('ZSCORE', 'dq2:{noack}:dead', $off_id), '... not dead');

# ------------------- a pickle not written by defer() is never unpickled
# The attack: anyone who can enqueue (or write Redis) sends a pickle that
# runs a command when loaded. Without the app's payload MAC it is dead at
# once and the command never runs.
my $pwned = "$dir/pwned";
$out = defer_py(qq{
import os, pickle
class Evil:
    def __reduce__(self):
        return (os.system, ("touch $pwned",))
t = taskqueue.Task(payload=pickle.dumps(Evil()), url="/_ah/queue/deferred")
print(taskqueue.Queue().add(t).id)});
my ($evil_id) = $out =~ /(\S+)\s*$/;
ok(wait_for(sub { $r->cmd('ZSCORE', 'dq2:{default}:dead', $evil_id) }, 10),
   'a payload without the payload MAC: dead at once');
like(dead_error($evil_id), qr/never unpickled: no X-Deferred-Payload-MAC/, '... with the reason');
ok(!-e $pwned, '... and the pickle was never loaded (the command did not run)');

# the reviewer's form: deferred-cli writes the pickle (protocol 0, text)
# straight into Redis, past every enqueue location
my $pwned2 = "$dir/pwned-cli";
my ($prc, $pickle) = $s->python(qq{import os, pickle
class Evil:
    def __reduce__(self):
        return (os.system, ("touch $pwned2",))
import sys; sys.stdout.write(pickle.dumps(Evil(), 0).decode())});
my ($crc, $cout) = DQTest::capture(bin('deferred-cli'), '-r', $r->address, 'defer',
    '-q', 'default', '-u', '/_ah/queue/deferred', 'main.harmless', $pickle);
is($crc, 0, 'deferred-cli defer stored the pickle straight into Redis') or diag $cout;
my ($cli_id) = $cout =~ /([A-Za-z0-9_-]{16,})/;
ok(wait_for(sub { $cli_id && $r->cmd('ZSCORE', 'dq2:{default}:dead', $cli_id) }, 10),
   '... dead at once (no payload MAC)') or diag $cout;
like(dead_error($cli_id), qr/never unpickled/, '... refused before unpickling');
ok(!-e $pwned2, '... and the command never ran');

# ------------------------------------------------ a task that is not a push
$out = defer_py(q{
from ngx_deferred import _msgpack
status, detail = taskqueue._post(_msgpack.packb({"func": "c.function", "args": [1, 2], "id": "c-style-task-000000000"}), 5)
print(status, detail.get("id"))
});
like($out, qr/^201 /m, 'a C-style task (two arguments) enqueued into the push queue');
my ($c_id) = $out =~ /^201 (\S+)/m;
ok(wait_for(sub { $r->cmd('ZSCORE', 'dq2:{default}:dead', $c_id) }, 10), '... is dead at once');
like(dead_error($c_id), qr/carries its body as its one argument/, '... saying why');

my $stats = { @{ $r->cmd('HGETALL', 'dq2:{default}:stats') } };
is($stats->{dead}, 5, 'five dead tasks in all (permanent, undecodable, two without payload MAC, not a push)');

# --------------------------------------- push_deadline and the queue timeout
for my $q (qw(deadline timeout)) {
    $out = defer_py(qq{print(deferred.defer(pushapp.ok, "never", _queue="$q", _url="/slow?3").id)});
    my ($id) = $out =~ /(\S+)\s*$/;
    ok(wait_for(sub { $r->cmd('ZSCORE', "dq2:{$q}:dead", $id) }, 10),
       "queue $q: a push the app answers after 3 s fails at 0.5 s (retry_limit 0: dead)");
    like($r->cmd('HGET', "dq2:{$q}:errors", $id),
         $q eq 'deadline' ? qr/Timeout was reached/ : qr/timed out|canceled/,
         "... $q: the reason");
}

is($s->stop, 0, 'the worker exits 0 (the push library lets it stop)');
log_clean_ok("$dir/worker.log", 'worker log');
done_testing();
