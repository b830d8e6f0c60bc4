#!/usr/bin/env bash
# examples/appengine/run.sh — run one of App Engine's Python deferred
# samples for real, on loopback: a private redis-server, Debian's nginx
# with ngx_http_deferred_module (examples/appengine/nginx.conf.in), the app
# under gunicorn, and deferred-worker with the push library pushing the
# tasks back to the app. `./build.sh run flask|django|wsgi` builds
# everything and then runs this.
#
#   run.sh flask|django|wsgi
#   PORT=8080         nginx's port on 127.0.0.1 (the others take free ports)
#   COUNTDOWN1=60     the sample's countdowns, in seconds: the sample runs
#   COUNTDOWN2=120    from a copy with `_countdown=60` / `=120` replaced
#   RUN_DIR=build/run-SAMPLE   config, logs, Redis data
#
# Stays in the foreground; Ctrl-C or SIGTERM stops everything it started,
# by pid.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SAMPLE=${1:-}
case $SAMPLE in
    flask|django|wsgi) ;;
    *) echo "usage: run.sh flask|django|wsgi" >&2; exit 2 ;;
esac
PORT=${PORT:-8080}
COUNTDOWN1=${COUNTDOWN1:-60}
COUNTDOWN2=${COUNTDOWN2:-120}
RUN=${RUN_DIR:-$ROOT/build/run-$SAMPLE}
NGINX=${NGINX_BIN:-/usr/sbin/nginx}
MODULE=$ROOT/build/ngx_http_deferred_module.so
WORKER=${WORKER_BIN:-$ROOT/build/worker/deferred-worker}
PUSH_LIB=${PUSH_LIB:-$ROOT/build/push/libdq_push.so}
SECRET=${NGX_DEFERRED_SECRET:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}

. "$ROOT/examples/run_lib.sh"

for f in "$MODULE" "$WORKER" "$PUSH_LIB"; do
    [ -e "$f" ] || die "$f is missing: run ./build.sh build (or ./build.sh run $SAMPLE)"
done
command -v redis-server >/dev/null || die "redis-server not found"
command -v gunicorn >/dev/null || die "gunicorn not found (apt-get install gunicorn)"
[ -x "$NGINX" ] || die "$NGINX not found"
case $PORT$COUNTDOWN1$COUNTDOWN2 in *[!0-9]*) die "PORT and COUNTDOWN1/2 must be numbers" ;; esac

free_port() {
    local p=$1
    while port_busy "$p"; do p=$((p + 1)); done
    echo "$p"
}
port_busy "$PORT" && die "127.0.0.1:$PORT is in use; pick another with PORT=..."
REDIS_PORT=$(free_port "${REDIS_PORT:-16379}")
APP_PORT=$(free_port "${APP_PORT:-18000}")
ENQUEUE_PORT=$(free_port "${ENQUEUE_PORT:-18100}")

rm -rf "$RUN"
mkdir -p "$RUN/logs" "$RUN/tmp" "$RUN/redis" "$RUN/app"
RUN=$(cd "$RUN" && pwd)

# the sample as shipped, countdowns replaced when asked
sed -e "s/_countdown=60)/_countdown=$COUNTDOWN1)/" \
    -e "s/_countdown=120)/_countdown=$COUNTDOWN2)/" \
    "$ROOT/examples/appengine/$SAMPLE/main.py" > "$RUN/app/main.py"

USER_LINE=
[ "$(id -u)" -eq 0 ] && USER_LINE='user root;'
sed -e "s|@PREFIX@|$RUN|g" -e "s|@MODULE@|$MODULE|g" \
    -e "s|@USER@|$USER_LINE|g" -e "s|@PORT@|$PORT|g" \
    -e "s|@ENQUEUE_PORT@|$ENQUEUE_PORT|g" -e "s|@APP_PORT@|$APP_PORT|g" \
    -e "s|@REDIS@|127.0.0.1:$REDIS_PORT|g" -e "s|@SECRET@|$SECRET|g" \
    "$ROOT/examples/appengine/nginx.conf.in" > "$RUN/nginx.conf"
sed -e "s|@REDIS@|127.0.0.1:$REDIS_PORT|g" -e "s|@PUSH_LIB@|$PUSH_LIB|g" \
    -e "s|@SECRET@|$SECRET|g" -e "s|@APP_PORT@|$APP_PORT|g" \
    "$ROOT/examples/appengine/deferred-worker.conf.in" > "$RUN/deferred-worker.conf"

start_redis
start_nginx

# the app: the package from this tree (no install needed), the Counter
# model beside the samples
PYTHONPATH="$ROOT/clients/python:$ROOT/examples/appengine${PYTHONPATH:+:$PYTHONPATH}" \
NGX_DEFERRED_URL="http://127.0.0.1:$ENQUEUE_PORT/_ngx_deferred/enqueue" \
NGX_DEFERRED_SECRET=$SECRET \
COUNTER_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
PYTHONUNBUFFERED=1 \
    gunicorn --bind "127.0.0.1:$APP_PORT" --workers 2 --threads 4 \
    --chdir "$RUN/app" --access-logfile - main:app &
PIDS+=($!)

"$WORKER" -c "$RUN/deferred-worker.conf" &
PIDS+=($!)

for _ in $(seq 200); do port_busy "$APP_PORT" && break; sleep 0.05; done
port_busy "$APP_PORT" || die "the app did not come up on 127.0.0.1:$APP_PORT"

cat <<EOT
==> running the $SAMPLE sample: nginx http://127.0.0.1:$PORT -> gunicorn 127.0.0.1:$APP_PORT,
    enqueue endpoint http://127.0.0.1:$ENQUEUE_PORT/_ngx_deferred/enqueue, Redis 127.0.0.1:$REDIS_PORT,
    deferred-worker pushing to the app (config and logs in $RUN)

    curl http://127.0.0.1:$PORT/counter/increment   # defers do_something_later 3 times
    curl http://127.0.0.1:$PORT/counter/get         # 10 now, 20 after ${COUNTDOWN1}s, 30 after ${COUNTDOWN2}s

    Ctrl-C stops everything.
EOT

wait_all
