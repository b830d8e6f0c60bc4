# examples/run_lib.sh — what examples/run.sh and examples/appengine/run.sh
# share (sourced, bash): process bookkeeping and the Redis and nginx they
# start. Every process started goes into PIDS; stop_all (on Ctrl-C,
# SIGTERM or exit) stops them by pid, newest first.

die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

PIDS=()
stopping=0
stop_all() {
    [ "$stopping" -eq 1 ] && return
    stopping=1
    trap - INT TERM EXIT
    echo
    echo "==> stopping"
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
    done
    for i in "${PIDS[@]}"; do wait "$i" 2>/dev/null || true; done
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

# start_redis: a private redis-server on 127.0.0.1:$REDIS_PORT, data in
# $RUN/redis, log in $RUN/logs
start_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$RUN/redis" --daemonize no \
        >"$RUN/logs/redis.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do port_busy "$REDIS_PORT" && break; sleep 0.05; done
    port_busy "$REDIS_PORT" || die "redis-server did not start, see $RUN/logs/redis.log"
}

# start_nginx: $NGINX with $RUN/nginx.conf in the foreground (-t first),
# ready when 127.0.0.1:$PORT accepts
start_nginx() {
    "$NGINX" -t -q -p "$RUN/" -c "$RUN/nginx.conf" -e "$RUN/logs/error.log" ||
        die "nginx -t failed, see $RUN/logs/error.log"
    "$NGINX" -p "$RUN/" -c "$RUN/nginx.conf" -e "$RUN/logs/error.log" \
        -g 'daemon off;' &
    PIDS+=($!)
    for _ in $(seq 100); do port_busy "$PORT" && break; sleep 0.05; done
    port_busy "$PORT" || die "nginx did not start, see $RUN/logs/error.log"
}

# wait_all: in the foreground until one of them exits or we are told to stop
wait_all() {
    local status
    set +e
    wait -n "${PIDS[@]}"
    status=$?
    [ "$stopping" -eq 0 ] && echo "run.sh: a process exited (status $status); stopping the rest" >&2
    exit "$status"
}
