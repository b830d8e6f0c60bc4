# App Engine's deferred sample for Django, on nginx + ngx_deferred. As the
# guide has it but for the imports and the Counter's storage (a Redis
# INCRBY: counter_model.py). One file: settings, views, URLs, the app.
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse
from django.urls import path
from ngx_deferred import deferred, wrap_wsgi_app

from counter_model import Counter

my_key = os.environ.get("GAE_VERSION", "Missing")

settings.configure(
    DEBUG=False,
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "sample-only-not-secret"),
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    MIDDLEWARE=[],
)


def do_something_later(key, amount):
    Counter.increment(key, amount)


def increment_counter(request):
    # Use default URL and queue name, no task name, execute ASAP.
    deferred.defer(do_something_later, my_key, 10)

    # Use default URL and queue name, no task name, execute after 1 minute.
    deferred.defer(do_something_later, my_key, 10, _countdown=60)

    # Providing non-default task queue arguments
    deferred.defer(do_something_later, my_key, 10, _url="/custom/path", _countdown=120)

    return HttpResponse("Deferred counter increment.")


def view_counter(request):
    counter = Counter.get_or_insert(my_key, count=0)
    return HttpResponse(str(counter.count))


def custom_deferred(request):
    print("Executing deferred task.")
    # request.environ contains the WSGI `environ` dictionary (See PEP 0333)
    response, status, headers = deferred.Handler().post(request.environ)
    # the handler's headers carry X-Deferred-Result (ok, permanent,
    # singular): the worker needs them (push_require_ack)
    return HttpResponse(response, status=status.value, headers=dict(headers))


urlpatterns = (
    path("counter/get", view_counter, name="view_counter"),
    path("counter/increment", increment_counter, name="increment_counter"),
    path("custom/path", custom_deferred, name="custom_deferred"),
)

app = wrap_wsgi_app(get_wsgi_application(), use_deferred=True)
