# bench/wl/push.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_push, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 9. push delivery (push/libdq_push.so): PUSH_N tasks deferred by the
#    Python package, POSTed by ONE worker child to a minimal app
#    (t/python/barrier.py: stdlib asyncio, answers 200 at once), whose own
#    requests/s under wrk (the same body, 50 connections) is the ceiling
PUSH_SO=$BUILD/push/libdq_push.so
PUSH_N=${BENCH_PUSH_N:-20000}
wl_push() {
    local why= i rates=() w=() app_port app_pid out body t0 cpu p
    [ -f "$PUSH_SO" ] || why="push library not built"
    [ -z "$why" ] && [ "$HAVE_MODULE" != 1 ] && why="nginx module not built"
    [ -z "$why" ] && { [ -x "$WORKER_BIN" ] || why="deferred-worker not built"; }
    if [ -n "$why" ]; then
        na push.app_ceiling_rps "$why"; na push.tasks_per_s "$why"
        na push.cpu_us_per_push "$why"; return
    fi
    app_port=$(free_port)
    spawn "$TMP/pushapp.log" /usr/bin/python3 "$ROOT/t/python/barrier.py" \
        "$app_port" 0 "$TMP/pushapp.json"
    app_pid=$SPAWNED
    wait_port "$app_port" || { na push.tasks_per_s "the app did not start"; return; }
    # the ceiling: the app's own requests/s for a push-sized POST
    body=$TMP/push-body.bin
    /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1])
from ngx_deferred import deferred
open(sys.argv[2], "wb").write(deferred.serialize(len, [1, 2, 3]))' \
        "$ROOT/clients/python" "$body"
    BENCH_BODY=$body BENCH_CTYPE=application/octet-stream BENCH_THREADS=$WRK_THREADS \
        wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${HTTP_SECONDS}s" --timeout 5s \
        -s "$BENCH/post.lua" "http://127.0.0.1:$app_port/_ah/queue/deferred" \
        >"$TMP/wrk-pushapp.log" 2>&1
    out=$(grep '^wrk_result' "$TMP/wrk-pushapp.log" | tail -1)
    figure push.app_ceiling_rps "$(awk -v r="$(kv "$out" requests)" -v d="$(kv "$out" duration_us)" \
        'BEGIN { if (d > 0) printf "%.0f", r / (d / 1e6) }')" req/s
    {
        echo "redis 127.0.0.1:$REDIS_PORT;"
        echo "library $PUSH_SO;"
        echo "processes 1;"
        echo "tasklet_concurrency 256;"
        echo "push_secret bench-secret-0123456789;"
        echo "queue default { push_target http://127.0.0.1:$app_port; push_deadline 60s; }"
    } >"$TMP/push-worker.conf"
    for i in $(seq 1 "$REPEAT"); do
        flush
        NGX_DEFERRED_URL="http://127.0.0.1:$NGINX_PORT/_ah/queue/deferred" \
            /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1])
from ngx_deferred import deferred
for k in range(0, int(sys.argv[2]), 1000):
    with deferred.batch():
        for j in range(1000):
            deferred.defer(len, [1, 2, 3])' "$ROOT/clients/python" "$PUSH_N" \
            2>>"$TMP/enqueue.log" || { log "push: enqueue failed"; continue; }
        t0=$EPOCHREALTIME
        spawn "$TMP/push-worker.log" "$WORKER_BIN" -c "$TMP/push-worker.conf"
        WORKER_PID=$SPAWNED
        out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$PUSH_N" -i 5 -t 120 \
              -x dead -x retried) ||
            { log "push: the worker did not finish ($out)"; stop_spawned "$WORKER_PID"; continue; }
        cpu=0
        for p in $(worker_pids); do cpu=$((cpu + $(cpu_ns "$p"))); done
        stop_spawned "$WORKER_PID"
        rates+=("$(awk -v n="$PUSH_N" -v a="$t0" -v b="$(kv "$out" done_s)" \
                   'BEGIN { printf "%.0f", n / (b - a) }')")
        w+=("$(awk -v c="$cpu" -v n="$PUSH_N" 'BEGIN { printf "%.2f", c / 1000 / n }')")
        log "push: $PUSH_N pushes at ${rates[-1]}/s, worker ${w[-1]} us/push"
    done
    stop_spawned "$app_pid"
    if [ ${#rates[@]} -eq 0 ]; then
        na push.tasks_per_s "no run finished"; na push.cpu_us_per_push "no run finished"
        return
    fi
    figure push.tasks_per_s "$(median "${rates[@]}")" tasks/s push.app_ceiling_rps
    figure push.cpu_us_per_push "$(median "${w[@]}")" us/push
    flush
}
