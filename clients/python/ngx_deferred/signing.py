"""X-Deferred-Signature: the project's request signature (interface 2).

    X-Deferred-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
        METHOD "\\n" URI "\\n" t "\\n" body)>

Several v1= values may appear (key rotation); a verifier accepts the
header when any v1 matches any of its secrets and t is within the window
(default 300 s either way). The worker's push library signs every push
with its `push_secret`; the app verifies with the same secret(s).
"""
import hashlib
import hmac
import time

__all__ = ["sign", "verify", "sign_push", "verify_push", "payload_mac", "verify_payload", "WINDOW",
           "PAYLOAD_MAC_HEADER"]

WINDOW = 300


def _mac(secret, method, uri, t, body):
    if isinstance(secret, str):
        secret = secret.encode()
    msg = b"\n".join([method.encode(), uri.encode("latin-1"),
                      str(t).encode(), b""]) + body
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def sign(secrets, method, uri, body, now=None):
    """The header value for body, signed with every secret given."""
    if isinstance(secrets, (str, bytes)):
        secrets = [secrets]
    t = int(now if now is not None else time.time())
    return "t=%d,%s" % (t, ",".join(
        "v1=" + _mac(s, method, uri, t, body) for s in secrets))


def _push_method(task_name, method):
    # the worker signs a push with "push\n<task name>\n" before the method:
    # never a valid enqueue signature, and bound to X-AppEngine-TaskName
    return "push\n%s\n%s" % (task_name, method)


def sign_push(secrets, task_name, method, uri, body, now=None):
    """The X-Deferred-Signature the worker puts on a push of task_name."""
    return sign(secrets, _push_method(task_name, method), uri, body, now)


def verify_push(secrets, header, task_name, method, uri, body, now=None,
                window=WINDOW):
    """verify() for a push: the signed string starts "push\n<task>\n"."""
    if not task_name or "\n" in task_name:
        return "no usable X-AppEngine-TaskName"
    return verify(secrets, header, _push_method(task_name, method), uri,
                  body, now, window)


def verify(secrets, header, method, uri, body, now=None, window=WINDOW):
    """None if the header is valid for this request, else why not."""
    if not secrets:
        return "no secret configured (NGX_DEFERRED_SECRET)"
    if not header:
        return "no X-Deferred-Signature header"
    t, macs = None, []
    for part in header.split(","):
        k, sep, v = part.strip().partition("=")
        if not sep:
            return "malformed X-Deferred-Signature"
        if k == "t":
            try:
                t = int(v)
            except ValueError:
                return "malformed timestamp"
        elif k == "v1":
            macs.append(v.lower())
    if t is None or not macs:
        return "X-Deferred-Signature needs t= and v1="
    now = time.time() if now is None else now
    if abs(now - t) > window:
        return "signature timestamp outside the %d s window" % window
    for s in secrets:
        want = _mac(s, method, uri, t, body)
        for m in macs:
            if hmac.compare_digest(want, m):
                return None
    return "signature does not match"


# The end-to-end MAC over a deferred payload (the pickle): defer() adds it
# as a task header with the app's secret, the worker forwards the task's
# headers, and Handler checks it before pickle.loads. The push signature
# only proves the worker sent the push; this proves the app wrote the
# payload, so a task written straight into Redis (or through an enqueue
# location without deferred_secret) is never unpickled. The context
# prefix keeps it from being valid as any other signature.
PAYLOAD_MAC_HEADER = "X-Deferred-Payload-MAC"
_PAYLOAD_CONTEXT = b"ngx-deferred-payload\n"


def _payload_mac(secret, body):
    if isinstance(secret, str):
        secret = secret.encode()
    return hmac.new(secret, _PAYLOAD_CONTEXT + body,
                    hashlib.sha256).hexdigest()


def payload_mac(secrets, body):
    """The X-Deferred-Payload-MAC value for body: v1=<hex>[,v1=<hex>]."""
    if isinstance(secrets, (str, bytes)):
        secrets = [secrets]
    return ",".join("v1=" + _payload_mac(s, body) for s in secrets)


def verify_payload(secrets, header, body):
    """None if header is a valid payload MAC of body, else why not."""
    if not secrets:
        return "no secret configured (NGX_DEFERRED_SECRET)"
    if not header:
        return "no %s header: the payload was not written by defer()" \
            % PAYLOAD_MAC_HEADER
    macs = []
    for part in header.split(","):
        k, sep, v = part.strip().partition("=")
        if k != "v1" or not sep:
            return "malformed %s" % PAYLOAD_MAC_HEADER
        macs.append(v.lower())
    for s in secrets:
        want = _payload_mac(s, body)
        for m in macs:
            if hmac.compare_digest(want, m):
                return None
    return "%s does not match the payload" % PAYLOAD_MAC_HEADER
