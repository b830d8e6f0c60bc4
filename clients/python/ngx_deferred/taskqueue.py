"""google.appengine.api.taskqueue's errors, TaskRetryOptions, Task and
Queue, over ngx_http_deferred_module's endpoint.

Tasks are POSTed (msgpack) to NGX_DEFERRED_URL, default
http://127.0.0.1:8081/_ngx_deferred/enqueue, a location with
`deferred_endpoint on` (docs/APPENGINE.md: URL layout). With
NGX_DEFERRED_SECRET set, requests carry X-Deferred-Signature.

Retrying a 5xx (503: Redis unavailable or slow; 500/502/504 from a
proxy or a restart) or a lost answer: none of them proves the task was not stored. Every unnamed task carries an "id"
in the body (a random key fixed before the first attempt, `<key>-<i>` for task
i of a batch; in the body, not an Idempotency-Key header, so the
signature covers it): the module answers a resend of a stored id with
201 "existed", storing nothing. So every
request is resent (RETRIES times, backoff from 0.1 s), then
TransientError.
"""
import datetime
import json
import math
import os
import secrets as _secrets_mod
import time
import urllib.error
import urllib.parse
import urllib.request

from . import _msgpack
from . import signing

__all__ = [
    "Error", "TransientError", "InvalidTaskError", "TaskAlreadyExistsError",
    "TombstonedTaskError", "TaskTooLargeError", "InvalidQueueNameError",
    "InvalidTaskNameError", "InvalidUrlError", "PermissionDeniedError",
    "BadTransactionStateError", "TaskRetryOptions", "Task", "Queue",
    "MAX_TASKS_PER_ADD", "DEFAULT_URL", "ENQUEUE_PREFIX",
]

DEFAULT_URL = "/_ah/queue/deferred"
ENQUEUE_PREFIX = "/_ngx_deferred/"      # never a task's URL
MAX_TASKS_PER_ADD = 1000                # the module's deferred_max_batch
# the module's deferred_max_body (1m) less room for the msgpack framing
# and the ids added at send time: a batch request is closed before this
MAX_BATCH_BYTES = 1024 * 1024 - 16 * 1024
MAX_ETA_DAYS = 30
RETRIES = 3           # NGX_DEFERRED_RETRIES overrides


class Error(Exception):
    """Base class of the task queue errors."""


class TransientError(Error):
    """The queue was unavailable (503); retrying later may work."""


class InvalidTaskError(Error):
    pass


class TaskAlreadyExistsError(Error):
    pass


class TombstonedTaskError(Error):
    pass


class TaskTooLargeError(Error):
    pass


class InvalidQueueNameError(Error):
    pass


class InvalidTaskNameError(Error):
    pass


class InvalidUrlError(Error):
    pass


class PermissionDeniedError(Error):
    pass


class BadTransactionStateError(Error):
    """_transactional=True: there is no datastore transaction to join."""


class TaskRetryOptions(object):
    """App Engine's retry parameters of one task (queue settings apply
    where a value is None)."""

    def __init__(self, min_backoff_seconds=None, max_backoff_seconds=None,
                 task_age_limit=None, max_doublings=None,
                 task_retry_limit=None):
        self.min_backoff_seconds = min_backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.task_age_limit = task_age_limit
        self.max_doublings = max_doublings
        self.task_retry_limit = task_retry_limit
        if (min_backoff_seconds is not None and max_backoff_seconds is not None
                and min_backoff_seconds > max_backoff_seconds):
            raise InvalidTaskError(
                "min_backoff_seconds is above max_backoff_seconds")

    def to_dict(self):
        return {k: v for k, v in vars(self).items() if v is not None}


def _endpoint():
    return os.environ.get("NGX_DEFERRED_URL",
                          "http://127.0.0.1:8081" + ENQUEUE_PREFIX + "enqueue")


def _secrets():
    s = os.environ.get("NGX_DEFERRED_SECRET", "")
    return [x for x in s.split(",") if x]


def _eta_posix(eta):
    """eta (datetime, aware or naive = UTC, or epoch seconds) -> float."""
    if isinstance(eta, datetime.datetime):
        if eta.tzinfo is None:
            eta = eta.replace(tzinfo=datetime.timezone.utc)
        return eta.timestamp()
    if isinstance(eta, (int, float)) and not isinstance(eta, bool):
        if not math.isfinite(eta):
            raise InvalidTaskError("eta must be finite, not %r" % eta)
        return float(eta)
    raise InvalidTaskError("eta must be a datetime or epoch seconds, not %r"
                           % type(eta).__name__)


class Task(object):
    """One task to enqueue (App Engine's taskqueue.Task, push form)."""

    def __init__(self, payload=b"", name=None, url=None, countdown=None,
                 eta=None, headers=None, retry_options=None,
                 func="python", queue_name=None):
        if countdown is not None and eta is not None:
            raise InvalidTaskError("may not use a countdown and an eta "
                                   "together")
        if countdown is not None and (
                isinstance(countdown, bool)
                or not isinstance(countdown, (int, float))
                or not math.isfinite(countdown)):
            raise InvalidTaskError("countdown must be a finite number of "
                                   "seconds, not %r" % (countdown,))
        if isinstance(payload, str):
            payload = payload.encode()
        self.payload = bytes(payload)
        self.name = name
        self.url = url or DEFAULT_URL
        if not self.url.startswith("/"):
            raise InvalidUrlError("url must be a path starting with /: %r"
                                  % self.url)
        path = self.url.split("?", 1)[0]    # as lib's dq_url_valid
        if ("//" in path or "%" in path or "/./" in path
                or "/../" in path or path.endswith(("/.", "/.."))):
            raise InvalidUrlError("url %r has //, %%, or a . or .. "
                                  "segment: it would not reach the app as "
                                  "written" % self.url)
        if self.url.startswith(ENQUEUE_PREFIX):
            raise InvalidUrlError("url %r is under the module's enqueue "
                                  "prefix %s: a push there would enqueue "
                                  "itself again" % (self.url, ENQUEUE_PREFIX))
        self.headers = dict(headers or {})
        self.retry_options = retry_options
        self.func = func
        self.queue_name = queue_name
        self.countdown = countdown
        self.eta_posix = None
        if eta is not None:
            self.eta_posix = _eta_posix(eta)
        when = (self.eta_posix if self.eta_posix is not None
                else time.time() + (countdown or 0))
        if when > time.time() + MAX_ETA_DAYS * 86400:
            raise InvalidTaskError("eta more than %d days in the future"
                                   % MAX_ETA_DAYS)
        if countdown is not None and countdown < 0:
            raise InvalidTaskError("countdown must be >= 0")
        self.id = None
        self.was_enqueued = False

    @property
    def eta(self):
        if self.eta_posix is None:
            return None
        return datetime.datetime.fromtimestamp(self.eta_posix,
                                               datetime.timezone.utc)

    def _request(self, queue_name):
        r = {"func": self.func, "args": [self.payload],
             "queue": queue_name, "url": self.url}
        if self.name is not None:
            r["name"] = self.name
        if self.countdown is not None:
            r["countdown"] = self.countdown
        if self.eta_posix is not None:
            r["eta"] = self.eta_posix
        if self.headers:
            r["headers"] = {str(k): str(v) for k, v in self.headers.items()}
        if self.retry_options is not None:
            ro = (self.retry_options.to_dict()
                  if isinstance(self.retry_options, TaskRetryOptions)
                  else dict(self.retry_options))
            if ro:
                r["retry_options"] = ro
        return r

    def add(self, queue_name="default"):
        return Queue(queue_name).add(self)


def _error(status, detail, name):
    kind = detail.get("error", "")
    msg = "%s %s" % (detail.get("field", ""), detail.get("message", ""))
    msg = msg.strip() or kind or ("HTTP %d" % status)
    if kind == "TaskAlreadyExists":
        return TaskAlreadyExistsError(name or msg)
    if kind == "TombstonedTask":
        return TombstonedTaskError(name or msg)
    if status >= 500:
        return TransientError(msg)
    if status == 413:
        return TaskTooLargeError(msg)
    if status == 403:
        return PermissionDeniedError(msg)
    field = detail.get("field", "")
    if field.endswith("queue"):
        return InvalidQueueNameError(msg)
    if field.endswith("name"):
        return InvalidTaskNameError(msg)
    if field.endswith("url"):
        return InvalidUrlError(msg)
    return InvalidTaskError("%d %s: %s" % (status, kind, msg))


def _post(body, timeout):
    url = _endpoint()
    headers = {"Content-Type": "application/x-msgpack"}
    secrets = _secrets()
    if secrets:
        parts = urllib.parse.urlsplit(url)
        target = (parts.path or "/") + ("?" + parts.query if parts.query
                                        else "")
        headers["X-Deferred-Signature"] = signing.sign(
            secrets[:1], "POST", target, body)
    req = urllib.request.Request(url, data=body, headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        try:
            detail = json.load(e)
        except ValueError:
            detail = {}
        return e.code, detail
    except (urllib.error.URLError, OSError) as e:
        return 503, {"error": "Unreachable",
                     "message": "%s: %s" % (url, getattr(e, "reason", e))}


def _chunks(tasks, queue_name):
    """tasks in requests of at most MAX_TASKS_PER_ADD tasks and
    MAX_BATCH_BYTES packed (a task alone over it is sent alone: the module
    answers 413, TaskTooLargeError)."""
    chunk, size = [], 0
    for t in tasks:
        n = len(_msgpack.packb(t._request(t.queue_name or queue_name))) + 48
        if chunk and (len(chunk) >= MAX_TASKS_PER_ADD
                      or size + n > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(t)
        size += n
    if chunk:
        yield chunk


class Queue(object):
    """A push queue, by name (App Engine's taskqueue.Queue)."""

    def __init__(self, name="default"):
        self.name = name

    def add(self, task, transactional=False):
        """Enqueue one Task or a list of them (one request per
        MAX_TASKS_PER_ADD). Returns the task(s), with .id and .eta set.
        Raises the first error of a batch (tasks before it were stored)."""
        if transactional:
            raise BadTransactionStateError(
                "transactional enqueue is not supported: there is no "
                "datastore transaction here (see the outbox pattern in "
                "docs/APPENGINE.md)")
        single = isinstance(task, Task)
        tasks = [task] if single else list(task)
        for chunk in _chunks(tasks, self.name):
            self._add_chunk(chunk)
        return tasks[0] if single else tasks

    def _add_chunk(self, tasks):
        reqs = [t._request(t.queue_name or self.name) for t in tasks]
        # the ids make a resend store nothing twice (signed with the body);
        # a named task has its name for that (and keeps its tombstone)
        key = _secrets_mod.token_urlsafe(16)[:22]
        for i, r in enumerate(reqs):
            if "name" not in r:
                r["id"] = key if len(reqs) == 1 else "%s-%d" % (key, i)
        body = _msgpack.packb(reqs[0] if len(reqs) == 1 else reqs)
        timeout = float(os.environ.get("NGX_DEFERRED_TIMEOUT", "5"))
        retries = int(os.environ.get("NGX_DEFERRED_RETRIES", RETRIES))
        resent = False
        delay = 0.1
        while True:
            status, detail = _post(body, timeout)
            if status >= 500 and retries > 0:
                retries -= 1
                resent = True
                time.sleep(delay)
                delay *= 2
                continue
            break
        if status in (201, 207) or (status == 409
                                     and isinstance(detail, list)):
            rows = detail if isinstance(detail, list) else [detail]
            first = None
            for t, row in zip(tasks, rows):
                st = row.get("status", "created")
                if st in ("created", "existed"):
                    t.id, t.was_enqueued = row.get("id"), True
                    if row.get("eta_ms") is not None:
                        t.eta_posix = row["eta_ms"] / 1000.0
                elif resent and st == "TaskAlreadyExists":
                    t.was_enqueued = True   # our first attempt landed
                elif first is None:
                    first = _error(409, {"error": st}, t.name)
            if first is not None:
                raise first
            return
        if status == 409 and resent and detail.get(
                "error") == "TaskAlreadyExists":
            for t in tasks:
                t.was_enqueued = True
            return
        raise _error(status, detail, tasks[0].name if tasks else None)
