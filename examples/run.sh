#!/usr/bin/env bash
# examples/run.sh — run the Counter example for real, on loopback:
# a private redis-server, Debian's nginx with ngx_http_deferred_module and
# examples/counter/nginx.conf.in, and deferred-worker with the counter task
# library. `./build.sh run` builds everything and then runs this.
#
#   PORT=8080         nginx's port on 127.0.0.1 (Redis takes a free port)
#   COUNTDOWN1=60     the sample's countdowns, in seconds
#   COUNTDOWN2=120
#   RUN_DIR=build/run where config, logs, Redis data and counts go
#
# Stays in the foreground (the worker logs to this terminal); Ctrl-C or
# SIGTERM stops everything it started, by pid.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${PORT:-8080}
COUNTDOWN1=${COUNTDOWN1:-60}
COUNTDOWN2=${COUNTDOWN2:-120}
RUN=${RUN_DIR:-$ROOT/build/run}
NGINX=${NGINX_BIN:-/usr/sbin/nginx}
MODULE=$ROOT/build/ngx_http_deferred_module.so
WORKER=$ROOT/build/worker/deferred-worker
LIB=$ROOT/build/examples/counter/libcounter.so

. "$ROOT/examples/run_lib.sh"

for f in "$MODULE" "$WORKER" "$LIB"; do
    [ -e "$f" ] || die "$f is missing: run ./build.sh build (or ./build.sh run)"
done
command -v redis-server >/dev/null || die "redis-server not found"
[ -x "$NGINX" ] || die "$NGINX not found"
case $PORT in ''|*[!0-9]*) die "PORT must be a number, not '$PORT'" ;; esac

port_busy "$PORT" && die "127.0.0.1:$PORT is in use; pick another with PORT=..."

REDIS_PORT=${REDIS_PORT:-16379}
while port_busy "$REDIS_PORT"; do REDIS_PORT=$((REDIS_PORT + 1)); done

rm -rf "$RUN"
mkdir -p "$RUN/logs" "$RUN/tmp" "$RUN/data" "$RUN/redis"
RUN=$(cd "$RUN" && pwd)

USER_LINE=
[ "$(id -u)" -eq 0 ] && USER_LINE='user root;'
sed -e "s|@PREFIX@|$RUN|g" -e "s|@MODULE@|$MODULE|g" \
    -e "s|@USER@|$USER_LINE|g" -e "s|@PORT@|$PORT|g" \
    -e "s|@REDIS@|127.0.0.1:$REDIS_PORT|g" -e "s|@DATA@|$RUN/data|g" \
    -e "s|@COUNTDOWN1@|$COUNTDOWN1|g" -e "s|@COUNTDOWN2@|$COUNTDOWN2|g" \
    "$ROOT/examples/counter/nginx.conf.in" > "$RUN/nginx.conf"

start_redis
start_nginx

DQ_COUNTER_DIR=$RUN/data "$WORKER" -r "127.0.0.1:$REDIS_PORT" -l "$LIB" &
PIDS+=($!)

cat <<EOF
==> running: Redis 127.0.0.1:$REDIS_PORT, nginx http://127.0.0.1:$PORT, deferred-worker
    (config and logs in $RUN; the worker logs below)

    curl http://127.0.0.1:$PORT/counter/increment   # defers do_something_later 3 times
    curl http://127.0.0.1:$PORT/counter/get         # 10 now, 20 after ${COUNTDOWN1}s, 30 after ${COUNTDOWN2}s
    curl -H 'Content-Type: application/json' \\
         -d '{"func":"counter.do_something_later","args":["my_key",5]}' \\
         http://127.0.0.1:$PORT/_ah/queue/deferred   # a deferred POST

    http://127.0.0.1:$PORT/deferred/                 # the dashboard (also /metrics, /ready)

    Ctrl-C stops everything.
EOF

wait_all
