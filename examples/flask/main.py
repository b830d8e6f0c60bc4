"""App Engine's Flask deferred sample, for nginx + ngx_deferred.

The original (Python 3 bundled services):

    deferred.defer(do_something_later, my_key, 10)
    deferred.defer(do_something_later, my_key, 10, _countdown=60)
    deferred.defer(do_something_later, my_key, 10, _url="/custom/path",
                   _countdown=120)

Here the task function is C (examples/counter, "counter.do_something_later")
run by deferred-worker; this app defers it by name through nginx. The
"/custom/path" handler that logs "Executing deferred task." is the C
library's URL handler, run by the worker, so it is not a Flask route here.
The count is the file the task publishes (DQ_COUNTER_DIR/<key>).
"""
import os

from flask import Flask

import deferred

my_key = os.environ.get("COUNTER_KEY", "my_key")
COUNTER_DIR = os.environ.get("DQ_COUNTER_DIR", ".")
COUNTDOWN1 = float(os.environ.get("COUNTDOWN1", "60"))
COUNTDOWN2 = float(os.environ.get("COUNTDOWN2", "120"))

app = Flask(__name__)


@app.route("/counter/increment")
def increment_counter():
    # Use default URL and queue name, no task name, execute ASAP.
    deferred.defer("counter.do_something_later", my_key, 10)

    # Use default URL and queue name, no task name, execute after 1 minute.
    deferred.defer("counter.do_something_later", my_key, 10,
                   _countdown=COUNTDOWN1)

    # Use a custom URL, executed after 2 minutes.
    deferred.defer("counter.do_something_later", my_key, 10,
                   _url="/custom/path", _countdown=COUNTDOWN2)

    return "Deferred counter increment."


@app.route("/counter/get")
def view_counter():
    try:
        with open(os.path.join(COUNTER_DIR, my_key)) as f:
            return f.read()
    except FileNotFoundError:
        return "0"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("APP_PORT", "5000")))
