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

__all__ = ["sign", "verify", "WINDOW"]

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
