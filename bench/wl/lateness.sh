# bench/wl/lateness.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_lateness, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 6. ETA lateness: start - ETA of 2,000 tasks spread over 10 s
wl_lateness() {
    local why out stamps=$STAMP_DIR/stamps.txt
    if why=$(worker_missing); then
        na lateness.p50_ms "$why"; na lateness.p99_ms "$why"; na lateness.max_ms "$why"
        return
    fi
    flush
    : >"$stamps"
    start_worker "$WORKER_PROCS" "$TASKS_SO"
    sleep 1   # the worker is up and asleep on an empty queue
    redis_window_begin
    log "lateness: $LATENESS_N tasks with ETAs over ${LATENESS_SPREAD_MS} ms, worker idle before"
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$LATENESS_N" -b 1000 -f bench.stamp -s "$stamps" \
        -e "1000:$LATENESS_SPREAD_MS" -t 30 >/dev/null 2>>"$TMP/enqueue.log" ||
        { na lateness.p50_ms "enqueue failed"; stop_spawned "$WORKER_PID"; return; }
    out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$LATENESS_N" -i 50 \
          -t $((LATENESS_SPREAD_MS / 1000 + 20))) ||
        log "lateness: not all tasks ran ($out)"
    stop_spawned "$WORKER_PID"
    redis_window_end lateness
    out=$(python3 "$BENCH/results.py" lateness "$stamps")
    log "lateness: $out"
    figure lateness.p50_ms "$(kv "$out" p50_ms)" ms
    figure lateness.p99_ms "$(kv "$out" p99_ms)" ms
    figure lateness.max_ms "$(kv "$out" max_ms)" ms
    figure lateness.ran "$(kv "$out" n)" tasks
    flush
}
