"""ngx_deferred: App Engine's deferred library for apps behind nginx.

    from ngx_deferred import deferred, wrap_wsgi_app, taskqueue
"""
from . import taskqueue
from . import deferred
from .wsgi import wrap_wsgi_app

__all__ = ["deferred", "taskqueue", "wrap_wsgi_app"]
__version__ = "0.1.0"
