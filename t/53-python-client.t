# The Python package's two edges against the real stack: the app refuses
# pushes that the worker did not sign (403: missing task name, unsigned,
# wrong secret, stale, body or URI changed), directly and through nginx;
# and the client side of defer(): App Engine's taskqueue errors, refused
# options, etas, batches in one request, the cross-compatible pickle, and
# the safe retry of a named task across a Redis outage (503).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQApp;
use JSON::PP;
use Test::More;

DQApp::require_python();
my ($s, $r, $dir) = DQApp::start_pushapp();
my $pub = $s->nginx->port;
my $app = $s->app_port;

sub py {
    my ($code) = @_;
    my ($rc, $out) = $s->python("import json, os, time, datetime, pushapp\n"
        . "from ngx_deferred import deferred, taskqueue, signing\n$code");
    is($rc, 0, 'python ran') or diag $out;
    my ($json) = $out =~ /^(\{.*\})\s*$/m;
    return $json ? decode_json($json) : {};
}

sub attempts { $s->attempts(@_) }

# ------------------------------------------------ the receiving side: 403
my $res = py(qq{
import urllib.request, urllib.error
secret = os.environ["NGX_DEFERRED_SECRET"]
body = deferred.serialize(pushapp.ok, "sig")
def post(port, path, headers, data=body, method="POST"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=data, headers=headers, method=method)
    try:
        r = urllib.request.urlopen(req, timeout=10)
        if r.status != 200:
            return r.status
        return "%d %s" % (r.status, r.headers.get("X-Deferred-Result", "-"))
    except urllib.error.HTTPError as e:
        return e.code
P = "/_ah/queue/deferred"
T = {"X-AppEngine-TaskName": "t1", "X-AppEngine-QueueName": "default",
     "X-Deferred-Payload-MAC": signing.payload_mac(secret, body)}
NOMAC = {k: v for k, v in T.items() if k != "X-Deferred-Payload-MAC"}
def signed(sec=secret, path=P, data=body, now=None, t=T, task="t1"):
    return dict(t, **{"X-Deferred-Signature":
                      signing.sign_push(sec, task, "POST", path, data, now=now)})
out = {}
for port, where in (($app, "app"), ($pub, "nginx")):
    out[where + " no task name"] = post(port, P, {})
    out[where + " unsigned"] = post(port, P, T)
    out[where + " wrong secret"] = post(port, P, signed(sec="not-the-secret"))
    out[where + " stale"] = post(port, P, signed(now=time.time() - 1000))
    out[where + " other body"] = post(port, P, signed(data=b"x"))
    out[where + " other uri"] = post(port, P, signed(path="/custom/path"))
    out[where + " garbage header"] = post(port, P, dict(T, **{"X-Deferred-Signature": "v1=zz"}))
    out[where + " valid"] = post(port, P, signed())
    # signed by the worker, but the payload was not written by defer():
    # never unpickled, dead at once (permanent), not retried
    out[where + " no payload mac"] = post(port, P, signed(t=NOMAC))
    out[where + " other payload mac"] = post(port, P, signed(t=dict(T, **{
        "X-Deferred-Payload-MAC": signing.payload_mac(secret, b"x")})))
    out[where + " rotated"] = post(port, P, dict(T, **{"X-Deferred-Signature":
        signing.sign_push(["old-secret", secret], "t1", "POST", P, body)}))
    # an enqueue's signature (no "push" context) is not a push signature
    out[where + " enqueue signature"] = post(port, P, dict(T, **{"X-Deferred-Signature":
        signing.sign(secret, "POST", P, body)}))
    out[where + " other task name"] = post(port, P, signed(task="t2"))
out["GET"] = post($app, P, {}, data=None, method="GET")
print(json.dumps(out))
});
for my $where (qw(app nginx)) {
    for my $case ('no task name', 'unsigned', 'wrong secret', 'stale',
                  'other body', 'other uri', 'garbage header', 'enqueue signature',
                  'other task name') {
        is($res->{"$where $case"}, 403, "$where: $case push refused with 403");
    }
    if ($where eq 'nginx') {
        # the public server never passes /_ah/queue/ on (pushes go straight to the app)
        is($res->{"nginx $_"}, 403, "nginx: even a valid push ($_) gets 403 from the public server")
            for 'valid', 'no payload mac', 'other payload mac', 'rotated';
        next;
    }
    is($res->{"$where valid"}, '200 ok', "$where: a push signed with the secret runs (200)");
    for my $case ('no payload mac', 'other payload mac') {
        is($res->{"$where $case"}, '200 permanent', "$where: $case: refused as permanent (dead), not run");
    }
    is($res->{"$where rotated"}, '200 ok', "$where: one of several v1= values matching is enough");
}
is($res->{GET}, 405, 'GET /_ah/queue/deferred: 405');
is(scalar attempts('sig'), 2, 'only the two valid pushes straight to the app ran the task');
like($s->app_log, qr/Detected an attempted XSRF attack/, 'refusals are logged');
like($s->app_log, qr/Refusing a task payload \(never unpickled\)/, 'payload refusals are logged');

# ------------------- NGX_DEFERRED_ALLOW_UNSIGNED, and a body too large
$res = py(q{
import io, logging
logged = io.StringIO()
logging.basicConfig(stream=logged)
body = deferred.serialize(pushapp.ok, "unsigned")
def push(env, data=body, length=None):
    e = {"REQUEST_METHOD": "POST", "PATH_INFO": "/_ah/queue/deferred",
         "HTTP_X_APPENGINE_TASKNAME": "u1", "wsgi.input": io.BytesIO(data),
         "CONTENT_LENGTH": str(len(data) if length is None else length)}
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return int(deferred.Handler().post(e)[1])
    finally:
        os.environ.clear()
        os.environ.update(saved)
secret = os.environ.pop("NGX_DEFERRED_SECRET")
out = {"on": push({"NGX_DEFERRED_ALLOW_UNSIGNED": "false"}),
       "zero": push({"NGX_DEFERRED_ALLOW_UNSIGNED": "0"}),
       "with secret": push({"NGX_DEFERRED_ALLOW_UNSIGNED": "1", "NGX_DEFERRED_SECRET": secret}),
       "true": push({"NGX_DEFERRED_ALLOW_UNSIGNED": "true"}),
       "huge": push({"NGX_DEFERRED_SECRET": secret}, data=b"", length=2 * 1024 * 1024)}
out["warned"] = "UNVERIFIED push" in logged.getvalue()
print(json.dumps(out))
});
is($res->{on}, 403, 'NGX_DEFERRED_ALLOW_UNSIGNED=false does not turn unsigned pushes on');
is($res->{zero}, 403, 'NGX_DEFERRED_ALLOW_UNSIGNED=0 neither');
is($res->{'with secret'}, 403, 'NGX_DEFERRED_ALLOW_UNSIGNED=1 with a secret set: refused');
is($res->{true}, 200, 'NGX_DEFERRED_ALLOW_UNSIGNED=true without a secret: runs (development)');
is($res->{huge}, 413, 'a Content-Length over the payload limit: 413 before reading the body');
ok($res->{warned}, '... an unverified push is logged as a warning');

# ------------------------------------------------------------ client errors
$res = py(q{
out = {}
def err(f):
    try:
        f()
        return "no error"
    except Exception as e:
        return type(e).__name__
out["transactional"] = err(lambda: deferred.defer(pushapp.ok, "x", _transactional=True))
out["target"] = err(lambda: deferred.defer(pushapp.ok, "x", _target="v2"))
out["countdown+eta"] = err(lambda: deferred.defer(pushapp.ok, "x", _countdown=1, _eta=time.time()))
out["eta 31 days"] = err(lambda: deferred.defer(pushapp.ok, "x", _eta=time.time() + 31 * 86400))
out["enqueue url"] = err(lambda: deferred.defer(pushapp.ok, "x", _url="/_ngx_deferred/enqueue"))
out["lambda"] = err(lambda: deferred.defer(lambda: 1))
for u in ("//_ngx_deferred/enqueue", "/%5Fngx_deferred/enqueue",
          "/_ngx_deferred/./enqueue", "/a/../_ngx_deferred/enqueue", "/a/..", "/a/."):
    out["url " + u] = err(lambda: deferred.defer(pushapp.ok, "x", _url=u))
for k, v in (("_eta", float("nan")), ("_eta", float("inf")),
             ("_countdown", float("nan")), ("_countdown", float("inf"))):
    out["%s %s" % (k, v)] = err(lambda: deferred.defer(pushapp.ok, "x", **{k: v}))
# bytes, not only counts: 3 tasks of 400 KB go in 2 requests (1 MiB limit)
seen = []
real = taskqueue._post
def counting(body, timeout):
    seen.append(len(body))
    return real(body, timeout)
taskqueue._post = counting
with deferred.batch():
    for i in range(3):
        deferred.defer(pushapp.ok, "big", "y" * 400000)
taskqueue._post = real
out["big requests"] = len(seen)
out["big max"] = max(seen)
out["bad queue"] = err(lambda: deferred.defer(pushapp.ok, "x", _queue="no such/queue"))
deferred.defer(pushapp.ok, "named", _name="once", _countdown=3600)
out["same name"] = err(lambda: deferred.defer(pushapp.ok, "x", _name="once"))
deferred.defer(pushapp.ok, "tomb", _name="tomb")
for _ in range(200):
    # whole lines only: the app may be writing the last one right now
    if any(l.endswith("\n") and json.loads(l)["tag"] == "tomb"
           for l in open(pushapp.LOG)):
        break
    time.sleep(0.05)
time.sleep(0.3)
out["tombstoned"] = err(lambda: deferred.defer(pushapp.ok, "x", _name="tomb"))
t = deferred.defer(pushapp.ok, "naive", _eta=datetime.datetime.utcnow() + datetime.timedelta(seconds=1))
out["naive eta - now"] = t.eta_posix - time.time()
t = deferred.defer(pushapp.ok, "aware", _eta=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1))
out["aware eta - now"] = t.eta_posix - time.time()
os.environ["DEFERRED_USE_CROSS_COMPATIBLE_PICKLE_PROTOCOL"] = "1"
out["protocol 0"] = deferred.serialize(pushapp.ok, "p0")[:1].decode("latin-1")
deferred.defer(pushapp.ok, "p0")
del os.environ["DEFERRED_USE_CROSS_COMPATIBLE_PICKLE_PROTOCOL"]
out["highest"] = deferred.serialize(pushapp.ok, "p")[:2].hex()
with deferred.batch():
    for i in range(25):
        deferred.defer(pushapp.ok, "batch", i)
print(json.dumps(out))
});
is($res->{transactional}, 'BadTransactionStateError', '_transactional=True refused');
is($res->{target}, 'InvalidTaskError', '_target refused');
is($res->{'countdown+eta'}, 'InvalidTaskError', '_countdown with _eta refused');
is($res->{'eta 31 days'}, 'InvalidTaskError', 'an eta more than 30 days ahead refused');
is($res->{'enqueue url'}, 'InvalidUrlError', 'a _url under the enqueue prefix refused');
is($res->{lambda}, 'ValueError', 'a lambda refused with a clear error');
for my $u ('//_ngx_deferred/enqueue', '/%5Fngx_deferred/enqueue', '/_ngx_deferred/./enqueue',
           '/a/../_ngx_deferred/enqueue', '/a/..', '/a/.') {
    is($res->{"url $u"}, 'InvalidUrlError', "_url $u refused (//, %, . or .. segments)");
}
for my $k ('_eta nan', '_eta inf', '_countdown nan', '_countdown inf') {
    is($res->{$k}, 'InvalidTaskError', "$k refused");
}
is($res->{'big requests'}, 2, 'a batch is split by bytes: 3 tasks of 400 KB in 2 requests');
cmp_ok($res->{'big max'}, '<', 1024 * 1024, '... each under the module\'s 1 MiB body limit');
is($res->{'bad queue'}, 'InvalidQueueNameError', 'a bad queue name: InvalidQueueNameError (the module\'s 400)');
is($res->{'same name'}, 'TaskAlreadyExistsError', 'a live name: TaskAlreadyExistsError');
is($res->{tombstoned}, 'TombstonedTaskError', 'a name that ran: TombstonedTaskError');
ok(abs($res->{'naive eta - now'} - 1) < 1, 'a naive _eta datetime is read as UTC');
ok(abs($res->{'aware eta - now'} - 1) < 1, 'an aware _eta datetime');
is($res->{'protocol 0'}, '(', 'DEFERRED_USE_CROSS_COMPATIBLE_PICKLE_PROTOCOL: protocol 0');
is($res->{highest}, '8005', 'otherwise pickle.HIGHEST_PROTOCOL (5)');
ok(wait_for(sub { scalar attempts('p0') }, 10), 'a protocol-0 task runs');
ok(wait_for(sub { attempts('batch') == 25 }, 10), 'deferred.batch(): 25 tasks ran');
ok(wait_for(sub { attempts('big') == 3 }, 10), '... and the 3 large tasks ran');
ok(wait_for(sub { attempts('naive') && attempts('aware') }, 10), 'the eta tasks ran');

# ------------------------------------------ the enqueue endpoint's secret
$res = py(q{
out = {}
for label, secret in (("unsigned", ""), ("wrong", "not-the-secret-at-all-0000")):
    os.environ["NGX_DEFERRED_SECRET"] = secret
    try:
        deferred.defer(pushapp.ok, "never-stored")
        out[label] = "stored"
    except taskqueue.Error as e:
        out[label] = type(e).__name__
print(json.dumps(out))
});
is($res->{unsigned}, 'PermissionDeniedError', 'an unsigned enqueue: 403, PermissionDeniedError');
is($res->{wrong}, 'PermissionDeniedError', 'an enqueue signed with another secret: PermissionDeniedError');
like(slurp($s->nginx->dir . '/logs/access.log'), qr{"POST /_ngx_deferred/enqueue HTTP/1\.1" 403 },
     'the module refused them (deferred_secret)');

# ------------------------------------------- a resend of a stored request
$res = py(q{
from ngx_deferred import _msgpack
p = deferred.serialize(pushapp.ok, "dup")
req = taskqueue.Task(payload=p, headers=deferred.payload_headers(p))._request("default")
req["id"] = "dupkey0123456789abcdef"
body = _msgpack.packb(req)
a = taskqueue._post(body, 5)
b = taskqueue._post(body, 5)
print(json.dumps({"a": a[1].get("status"), "b": b[1].get("status"), "id": b[1].get("id")}))
});
is($res->{a}, 'created', 'a request: created');
is($res->{b}, 'existed', 'the same request again (same id, signed anew): existed, nothing stored');
ok(wait_for(sub { attempts('dup') }, 10), 'the task ran');
sleep 1;
is(scalar attempts('dup'), 1, '... once');

# ------------------------------------- 503: resent under the same ids
$r->stop;
$res = py(q{
out = {}
try:
    deferred.defer(pushapp.ok, "x")
    out["unnamed"] = "stored"
except taskqueue.TransientError as e:
    out["unnamed"] = "TransientError"
print(json.dumps(out))
});
is($res->{unnamed}, 'TransientError', 'Redis down: TransientError once the resends are used up');
my @keys = slurp($s->nginx->dir . '/logs/access.log') =~ m{"POST /_ngx_deferred/enqueue HTTP/1\.1" 503 }g;
is(scalar @keys, 4, '... after the first request and 3 resends (NGX_DEFERRED_RETRIES)');

my $bg = DQTest::spawn(name => 'defer-503', log => "$dir/resent.log",
    env => { %{ $s->env }, NGX_DEFERRED_RETRIES => 12 },
    cmd => [$DQApp::PY, '-c', 'import pushapp; from ngx_deferred import deferred; '
            . 't = deferred.defer(pushapp.ok, "named503", _name="survives-503"); '
            . 'print("named stored", t.was_enqueued, flush=True); '
            . 'u = deferred.defer(pushapp.ok, "unnamed503"); '
            . 'print("unnamed stored", u.was_enqueued, u.id)']);
ok(wait_for(sub { my @n = slurp($s->nginx->dir . '/logs/access.log') =~ m{ 503 }g; @n >= 7 }, 10),
   'a task is resent while Redis is down');
$r->restart;
ok(wait_for(sub { slurp("$dir/resent.log") =~ /unnamed stored True/ }, 40),
   '... and stored once Redis is back, named and unnamed')
    or diag slurp("$dir/resent.log");
ok(wait_for(sub { attempts('named503') && attempts('unnamed503') }, 10), '... and they ran');
my ($uid) = slurp("$dir/resent.log") =~ /unnamed stored True (\S+)/;
like($uid, qr/^[A-Za-z0-9_-]{22}$/, 'the unnamed task\'s id is the client\'s key');
sleep 1;
is(scalar attempts('unnamed503'), 1, '... run once');

is($s->stop, 0, "the worker exits 0");
log_clean_ok("$dir/worker.log", 'worker log');
done_testing();
