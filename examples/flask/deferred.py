"""A tiny stand-in for google.appengine.ext.deferred, for apps behind nginx.

defer() POSTs the call as JSON to ngx_http_deferred_module's endpoint
(DEFERRED_URL, default http://127.0.0.1:8080/_ah/queue/deferred); the task
runs later in deferred-worker, in the C function registered under that
name. Functions are named, not pickled: defer("counter.do_something_later",
key, 10, _countdown=60).

Standard library only. Errors mirror App Engine's taskqueue exceptions.
"""
import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request

DEFERRED_URL = os.environ.get(
    "DEFERRED_URL", "http://127.0.0.1:8080/_ah/queue/deferred")
DEFERRED_SECRET = os.environ.get("DEFERRED_SECRET")   # deferred_secret
TIMEOUT = float(os.environ.get("DEFERRED_TIMEOUT", "5"))


class Error(Exception):
    """The task was not stored; the message says why."""


class TaskAlreadyExistsError(Error):
    pass


class TombstonedTaskError(Error):
    pass


class TransientError(Error):
    """Redis was unavailable (503): retrying later is safe with a _name."""


def defer(func, *args, _countdown=None, _eta=None, _name=None, _queue=None,
          _url=None, _headers=None, _retry_options=None, **kwargs):
    """Defer func(*args, **kwargs); returns the stored task as a dict
    (id, queue, name, url, eta, eta_ms)."""
    task = {"func": func, "args": list(args)}
    if kwargs:
        task["kwargs"] = kwargs
    for key, value in (("countdown", _countdown), ("eta", _eta),
                       ("name", _name), ("queue", _queue), ("url", _url),
                       ("headers", _headers),
                       ("retry_options", _retry_options)):
        if value is not None:
            task[key] = value
    body = json.dumps(task).encode()
    headers = {"Content-Type": "application/json"}
    if DEFERRED_SECRET:
        headers["X-Deferred-Signature"] = hmac.new(
            DEFERRED_SECRET.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(DEFERRED_URL, data=body, headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        try:
            detail = json.load(e)
        except ValueError:
            detail = {}
        error = detail.get("error", "")
        if error == "TaskAlreadyExists":
            raise TaskAlreadyExistsError(_name) from None
        if error == "TombstonedTask":
            raise TombstonedTaskError(_name) from None
        if e.code == 503:
            raise TransientError(detail.get("message", "unavailable")) from None
        raise Error("%d %s: %s %s" % (e.code, error, detail.get("field", ""),
                                      detail.get("message", ""))) from None
