"""wrap_wsgi_app: App Engine's WSGI wrapper, for the deferred handler.

    app.wsgi_app = wrap_wsgi_app(app.wsgi_app, use_deferred=True)  # Flask
    application = wrap_wsgi_app(get_wsgi_application(), use_deferred=True)

Requests whose path is exactly /_ah/queue/deferred go to
deferred.Handler (POST only: anything else gets 405 with Allow: POST);
everything else reaches the app unchanged.
"""
import http
import logging
import traceback

from . import deferred

__all__ = ["wrap_wsgi_app"]

DEFERRED_PATH = "/_ah/queue/deferred"


def _status(s):
    return "%d %s" % (s.value, s.phrase)


def wrap_wsgi_app(app, *args, use_deferred=False, **kwargs):
    if not use_deferred:
        return app

    def wrapped(environ, start_response):
        if environ.get("PATH_INFO") != DEFERRED_PATH:
            return app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            start_response(_status(http.HTTPStatus.METHOD_NOT_ALLOWED),
                           [("Allow", "POST"),
                            ("Content-Type", "text/plain")])
            return [b"Method Not Allowed"]
        try:
            body, status, headers = deferred.Handler().post(environ)
        except Exception:
            logging.error("deferred task raised:\n%s",
                          traceback.format_exc())
            start_response(_status(http.HTTPStatus.INTERNAL_SERVER_ERROR),
                           [("Content-Type", "text/plain")])
            return [b"Internal Server Error"]
        start_response(_status(status), list(headers))
        return [body.encode() if isinstance(body, str) else body]

    return wrapped
