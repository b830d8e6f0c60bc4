"""google.appengine.ext.deferred for apps behind ngx_http_deferred_module.

    from ngx_deferred import deferred
    deferred.defer(do_something_later, key, 10, _countdown=60)

defer() pickles (callable, args, kwargs) the way App Engine does and
enqueues it through the module's endpoint (taskqueue.py); the worker's
push library POSTs it back to the app at /_ah/queue/deferred (or the
task's _url), where Handler runs it. See docs/APPENGINE.md.

What differs from App Engine, on purpose:
- _transactional=True and _target are refused (BadTransactionStateError,
  InvalidTaskError) instead of being ignored or sent on.
- a naive _eta datetime is read as UTC (App Engine: local time).
- a payload too large for one task raises TaskTooLargeError (App Engine
  stores it in a datastore entity that leaks when retries run out).
- PermanentTaskFailure (and a payload that cannot be unpickled) answers
  200 with X-Deferred-Result: permanent: the worker moves the task to the
  dead set, where it stays inspectable, instead of dropping it.
- pushes must carry a valid X-Deferred-Signature (NGX_DEFERRED_SECRET),
  the job App Engine's stripping of X-AppEngine-* headers does there.
- a payload is unpickled only with a valid X-Deferred-Payload-MAC (the
  HMAC of the pickle defer() adds with NGX_DEFERRED_SECRET): a pickle
  written into Redis or through an unsigned enqueue is dead, never loaded.
- success answers X-Deferred-Result: ok (the worker's push_require_ack).
"""
import contextlib
import http
import logging
import os
import pickle
import re
import threading
import types

from . import signing
from . import taskqueue
from .taskqueue import TaskRetryOptions  # noqa: F401 (re-exported)

__all__ = ["defer", "run", "serialize", "Handler", "Error",
           "PermanentTaskFailure", "SingularTaskFailure", "TaskRetryOptions",
           "invoke_member", "set_log_level", "batch", "taskqueue",
           "payload_headers"]

_DEFAULT_URL = taskqueue.DEFAULT_URL
_DEFAULT_QUEUE = "default"
_TASKQUEUE_HEADERS = {"Content-Type": "application/octet-stream"}
MAX_PAYLOAD = 1000 * 1024   # one task: the module's deferred_max_envelope 1m
_log_level = logging.INFO
_local = threading.local()


class Error(Exception):
    """Base class for exceptions in this module."""


class PermanentTaskFailure(Error):
    """The task must not be retried: it goes to the dead set at once."""


class SingularTaskFailure(Error):
    """This attempt failed; retry without logging an error."""


def set_log_level(log_level):
    """Level at which Handler logs the X-AppEngine-* headers of a push."""
    global _log_level
    _log_level = log_level


def invoke_member(obj, membername, *args, **kwargs):
    """Call obj.membername(*args, **kwargs): how bound methods travel."""
    return getattr(obj, membername)(*args, **kwargs)


def _curry_callable(obj, *args, **kwargs):
    if isinstance(obj, types.MethodType):
        return (invoke_member, (obj.__self__, obj.__func__.__name__) + args,
                kwargs)
    if isinstance(obj, types.BuiltinMethodType):
        owner = obj.__self__
        if owner is None or isinstance(owner, types.ModuleType):
            return obj, args, kwargs
        return invoke_member, (owner, obj.__name__) + args, kwargs
    if callable(obj):
        qual = getattr(obj, "__qualname__", None) or getattr(
            type(obj), "__qualname__", "")
        if "<locals>" in qual or "<lambda>" in qual:
            raise ValueError(
                "cannot defer %s: lambdas and nested functions or classes "
                "are pickled by module and name, and cannot be found again "
                "when the task runs; defer a top-level function" % qual)
        return obj, args, kwargs
    raise ValueError("obj must be callable, not %r" % type(obj).__name__)


def _protocol():
    if os.environ.get("DEFERRED_USE_CROSS_COMPATIBLE_PICKLE_PROTOCOL"):
        return 0
    return pickle.HIGHEST_PROTOCOL


def serialize(obj, *args, **kwargs):
    """The pickle App Engine would send for defer(obj, *args, **kwargs)."""
    return pickle.dumps(_curry_callable(obj, *args, **kwargs), _protocol())


def run(data):
    """Unpickle (func, args, kwargs) and call it. Anything that cannot be
    unpickled raises PermanentTaskFailure."""
    try:
        func, args, kwds = pickle.loads(data)
    except Exception as e:
        raise PermanentTaskFailure("cannot unpickle the task: %s: %s"
                                   % (type(e).__name__, e))
    return func(*args, **kwds)


def _func_name(obj):
    """A readable name for the dead set and logs ([A-Za-z0-9_.:-])."""
    if isinstance(obj, types.MethodType):
        name = "%s.%s" % (getattr(obj.__self__, "__module__", ""),
                          obj.__qualname__)
    else:
        name = "%s.%s" % (getattr(obj, "__module__", None) or "",
                          getattr(obj, "__qualname__", None)
                          or type(obj).__qualname__)
    name = re.sub(r"[^A-Za-z0-9_.:-]", "_", name.strip("."))[:200]
    return name or "python"


def defer(obj, *args, **kwargs):
    """Defer obj(*args, **kwargs) (App Engine's deferred.defer).

    Options: _countdown, _eta (datetime or epoch seconds), _name, _queue,
    _url, _headers, _retry_options (TaskRetryOptions). Refused:
    _transactional=True, _target. Returns the taskqueue.Task (with .id).
    """
    opts = {}
    for k in ("_countdown", "_eta", "_name", "_queue", "_url", "_headers",
              "_retry_options", "_transactional", "_target"):
        if k in kwargs:
            opts[k] = kwargs.pop(k)
    if opts.get("_transactional"):
        raise taskqueue.BadTransactionStateError(
            "_transactional=True is not supported: there is no datastore "
            "transaction to join. Write the task to an outbox in your own "
            "transaction and defer it after commit (docs/APPENGINE.md)")
    if opts.get("_target") is not None:
        raise taskqueue.InvalidTaskError(
            "_target is not supported: the worker's queue setting "
            "push_target decides where a queue's tasks are pushed")
    payload = serialize(obj, *args, **kwargs)
    if len(payload) > MAX_PAYLOAD:
        raise taskqueue.TaskTooLargeError(
            "the pickled task is %d bytes, over %d: pass a key to data "
            "stored elsewhere instead" % (len(payload), MAX_PAYLOAD))
    headers = dict(_TASKQUEUE_HEADERS)
    headers.update(opts.get("_headers") or {})
    headers.update(payload_headers(payload))
    task = taskqueue.Task(payload=payload, name=opts.get("_name"),
                          url=opts.get("_url") or _DEFAULT_URL,
                          countdown=opts.get("_countdown"),
                          eta=opts.get("_eta"), headers=headers,
                          retry_options=opts.get("_retry_options"),
                          func=_func_name(obj))
    queue = opts.get("_queue") or _DEFAULT_QUEUE
    pending = getattr(_local, "batch", None)
    if pending is not None:
        task.queue_name = queue
        pending.append(task)
        return task
    return taskqueue.Queue(queue).add(task)


@contextlib.contextmanager
def batch():
    """Collect the defer() calls of the block and enqueue them at its end,
    MAX_TASKS_PER_ADD per request (each queue's tasks stored atomically).
    Nothing is sent if the block raises."""
    if getattr(_local, "batch", None) is not None:
        yield _local.batch
        return
    _local.batch = tasks = []
    try:
        yield tasks
    except BaseException:
        _local.batch = None
        raise
    _local.batch = None
    if tasks:
        taskqueue.Queue(_DEFAULT_QUEUE).add(tasks)


def _secrets():
    s = os.environ.get("NGX_DEFERRED_SECRET", "")
    return [x for x in s.split(",") if x]


def payload_headers(payload):
    """The task header that lets Handler trust payload: an HMAC of it with
    the first NGX_DEFERRED_SECRET (none without a secret: the unsigned
    development mode)."""
    secrets = _secrets()
    if not secrets:
        return {}
    return {signing.PAYLOAD_MAC_HEADER:
            signing.payload_mac(secrets[:1], payload)}


def _request_uri(environ):
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri:
        return uri
    from urllib.parse import quote
    uri = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
    if environ.get("QUERY_STRING"):
        uri += "?" + environ["QUERY_STRING"]
    return uri


def _read_body(environ):
    try:
        n = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        n = 0
    return environ["wsgi.input"].read(n) if n > 0 else b""


_TEXT = [("Content-Type", "text/plain")]


class Handler(object):
    """Runs a pushed task (App Engine's deferred.Handler).

    post(environ) and run_from_request(environ) return
    (body, http.HTTPStatus, headers):
      success                 200 "Success"
      SingularTaskFailure     408 "SingularTaskFailure"   (quiet retry)
      PermanentTaskFailure    200 "PermanentTaskFailure"  (dead at once)
      not a verified push     403 "Forbidden"
    any other exception propagates (the framework answers 500: retried).
    """

    def secrets(self):
        return _secrets()

    def _forbidden(self, why):
        logging.error("Detected an attempted XSRF attack: %s; refusing the "
                      "push (403)", why)
        return ("Forbidden", http.HTTPStatus.FORBIDDEN, list(_TEXT))

    def run_from_request(self, environ):
        if "HTTP_X_APPENGINE_TASKNAME" not in environ:
            return self._forbidden("the header X-AppEngine-TaskName was "
                                   "not set")
        try:
            n = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            n = 0
        if n > MAX_PAYLOAD + 64 * 1024:
            logging.error("Refusing a push of %d bytes (over %d) unread "
                          "(413)", n, MAX_PAYLOAD + 64 * 1024)
            return ("Request Entity Too Large",
                    http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE, list(_TEXT))
        data = _read_body(environ)
        unsigned = os.environ.get("NGX_DEFERRED_ALLOW_UNSIGNED", "")
        if unsigned and unsigned.lower() not in ("1", "yes", "true"):
            return self._forbidden("NGX_DEFERRED_ALLOW_UNSIGNED=%r is not "
                                   "1, yes or true" % unsigned)
        if unsigned and self.secrets():
            return self._forbidden("NGX_DEFERRED_ALLOW_UNSIGNED is set "
                                   "together with NGX_DEFERRED_SECRET: "
                                   "refusing to guess; unset one")
        if unsigned:
            logging.warning("NGX_DEFERRED_ALLOW_UNSIGNED: running an "
                            "UNVERIFIED push (payload not authenticated; "
                            "local development only)")
        else:
            why = signing.verify_push(
                self.secrets(), environ.get("HTTP_X_DEFERRED_SIGNATURE"),
                environ.get("HTTP_X_APPENGINE_TASKNAME"),
                environ.get("REQUEST_METHOD", "POST"),
                _request_uri(environ), data)
            if why is not None:
                return self._forbidden(why)
            # before pickle.loads: only a payload defer() wrote is run
            why = signing.verify_payload(
                self.secrets(), environ.get("HTTP_X_DEFERRED_PAYLOAD_MAC"),
                data)
            if why is not None:
                logging.error("Refusing a task payload (never unpickled): "
                              "%s", why)
                raise PermanentTaskFailure("refused, never unpickled: %s"
                                           % why)
        headers = {k: v for k, v in environ.items()
                   if k.startswith("HTTP_X_APPENGINE_")}
        for k, v in sorted(headers.items()):
            logging.log(_log_level, "%s: %s", k[5:].replace("_", "-"), v)
        # App Engine's legacy context: task code reads os.environ
        saved = {k: os.environ.get(k) for k in headers}
        os.environ.update(headers)
        try:
            run(data)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return ("Success", http.HTTPStatus.OK,
                _TEXT + [("X-Deferred-Result", "ok")])

    def post(self, environ):
        try:
            return self.run_from_request(environ)
        except SingularTaskFailure:
            logging.debug("Failure executing task, task retry forced")
            return ("SingularTaskFailure", http.HTTPStatus.REQUEST_TIMEOUT,
                    _TEXT + [("X-Deferred-Result", "singular")])
        except PermanentTaskFailure as e:
            logging.exception("Permanent failure attempting to execute task")
            return ("PermanentTaskFailure", http.HTTPStatus.OK,
                    _TEXT + [("X-Deferred-Result", "permanent"),
                             ("X-Deferred-Error", _header_safe(e))])


def _header_safe(e):
    s = "%s: %s" % (type(e).__name__, e)
    return re.sub(r"[^\x20-\x7e]", "?", s)[:500]
