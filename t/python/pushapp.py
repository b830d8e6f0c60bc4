"""The app of t/58-push-results.t and t/53-python-client.t: task functions
that succeed, fail permanently, fail singularly, raise, and a custom URL
that answers 500; every attempt appended as a JSON line to
$APP_LOG_DIR/attempts.log with the X-AppEngine-* values the task saw in
os.environ (App Engine's legacy context)."""
import http
import json
import os
import time

from ngx_deferred import deferred, wrap_wsgi_app

LOG = os.path.join(os.environ.get("APP_LOG_DIR", "."), "attempts.log")


def record(kind, tag, **kw):
    env = os.environ
    row = {"kind": kind, "tag": tag, "t": time.time(), "pid": os.getpid(),
           "queue": env.get("HTTP_X_APPENGINE_QUEUENAME"),
           "name": env.get("HTTP_X_APPENGINE_TASKNAME"),
           "retry": env.get("HTTP_X_APPENGINE_TASKRETRYCOUNT"),
           "execs": env.get("HTTP_X_APPENGINE_TASKEXECUTIONCOUNT"),
           "eta": env.get("HTTP_X_APPENGINE_TASKETA")}
    row.update(kw)
    with open(LOG, "a") as f:
        f.write(json.dumps(row) + "\n")


def ok(tag, *args, **kwargs):
    record("ok", tag, args=list(args), kwargs=kwargs)


def permanent(tag):
    record("permanent", tag)
    raise deferred.PermanentTaskFailure("no way: " + tag)


def singular(tag):
    record("singular", tag)
    if int(os.environ["HTTP_X_APPENGINE_TASKRETRYCOUNT"]) < 1:
        raise deferred.SingularTaskFailure()


def flaky(tag, fails):
    record("flaky", tag)
    if int(os.environ["HTTP_X_APPENGINE_TASKEXECUTIONCOUNT"]) < fails:
        raise RuntimeError("flaky failure")


class Greeter(object):
    def __init__(self, who):
        self.who = who

    def greet(self, tag):
        record("method", tag, who=self.who)


def inner(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/status500":
        retry = int(environ.get("HTTP_X_APPENGINE_TASKRETRYCOUNT", "0"))
        record("status500", "s500", retry_seen=retry)
        if retry < 2:
            start_response("500 Internal Server Error",
                           [("Content-Type", "text/plain")])
            return [b"not yet"]
        body, status, headers = deferred.Handler().post(environ)
        start_response("%d %s" % (status.value, status.phrase), headers)
        return [body.encode()]
    if path == "/headers":
        body, status, headers = deferred.Handler().post(environ)
        record("headers", "h", trace=environ.get("HTTP_X_TRACE"),
               ctype=environ.get("CONTENT_TYPE"),
               status=status.value)
        start_response("%d %s" % (status.value, status.phrase), headers)
        return [body.encode()]
    if path == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slow"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such page"]


app = wrap_wsgi_app(inner, use_deferred=True)
