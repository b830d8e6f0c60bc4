# bench/wl/deep.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_deep, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 7b. a deep queue: DEEP_N delayed tasks spread over a day (the cold tier
#     holds them), then what it costs: memory per task, enqueue, the
#     promotion of a window's buckets (dq-bench-promote: 10,000 tasks on
#     another queue, its clock moved 40 s ahead), and a stream of due tasks
#     through the worker while the deep queue exists (lateness, EVALSHA
#     usec per call: claims and acks)
DEEP_N=${BENCH_DEEP_N:-1000000}
PROMOTE=$BUILD/bench/dq-bench-promote
wl_deep() {
    local why m0 m1 r0 r1 pr0 out stamps=$STAMP_DIR/stamps-deep.txt
    if why=$(worker_missing); then na deep.bytes_per_task "$why"; return; fi
    flush
    rcli MEMORY PURGE >/dev/null 2>&1 || true
    m0=$(rinfo memory used_memory)
    r0=$(redis_cpu_s)
    log "deep: $DEEP_N tasks with ETAs from now + 2 min over a day"
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$DEEP_N" -b 1000 -e 120000:86400000 -t 600 \
        >/dev/null 2>>"$TMP/enqueue.log" || { na deep.bytes_per_task "enqueue failed"; return; }
    r1=$(redis_cpu_s)
    m1=$(rinfo memory used_memory)
    log "deep: used_memory $m0 -> $m1; $(rcli DBSIZE) keys; cold $(rcli HGET "$STATS_KEY" cold)"
    figure deep.bytes_per_task "$(awk -v a="$m0" -v b="$m1" -v n="$DEEP_N" 'BEGIN { printf "%.0f", (b - a) / n }')" B/task
    figure deep.enqueue_redis_cpu_us_per_task "$(awk -v a="$r0" -v b="$r1" -v n="$DEEP_N" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')" us/task
    if [ -x "$PROMOTE" ]; then
        "$ENQ" -a "127.0.0.1:$REDIS_PORT" -q deepp -n 10000 -b 1000 -e 45000:10000 \
            >/dev/null 2>>"$TMP/enqueue.log" || log "deep: filling deepp failed"
        r0=$(redis_cpu_s)
        out=$("$PROMOTE" -p "$REDIS_PORT" -q deepp -A 40000 2>>"$TMP/enqueue.log") || true
        r1=$(redis_cpu_s)
        log "deep: promotion: $out"
        if [ "$(kv "$out" promoted)" = 10000 ]; then
            figure deep.promote_redis_cpu_us_per_task "$(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%.2f", (b - a) * 1e6 / 10000 }')" us/task
            figure deep.promote_max_call_ms "$(kv "$out" max_call_ms)" ms
        else
            na deep.promote_redis_cpu_us_per_task "promoted $(kv "$out" promoted) of 10000"
        fi
    else
        na deep.promote_redis_cpu_us_per_task "dq-bench-promote not built"
    fi
    : >"$stamps"
    rcli CONFIG RESETSTAT >/dev/null
    redis_window_begin
    pr0=$(rcli HGET "$STATS_KEY" promoted)
    start_worker "$WORKER_PROCS" "$TASKS_SO"
    sleep 1
    log "deep: $LATENESS_N tasks with ETAs over ${LATENESS_SPREAD_MS} ms beside the deep queue"
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$LATENESS_N" -b 1000 -f bench.stamp -s "$stamps" \
        -e "1000:$LATENESS_SPREAD_MS" -t 30 >/dev/null 2>>"$TMP/enqueue.log" ||
        { na deep.lateness_p99_ms "enqueue failed"; stop_spawned "$WORKER_PID"; flush; return; }
    out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$LATENESS_N" -i 50 \
          -t $((LATENESS_SPREAD_MS / 1000 + 20))) ||
        log "deep: not all tasks ran ($out)"
    stop_spawned "$WORKER_PID"
    redis_window_end deep
    # promotion out of the deep queue's cold tier during the window (its
    # first window starts 2 min after the enqueue began: none expected)
    log "deep: promoted during the window: $(( $(rcli HGET "$STATS_KEY" promoted) + 0 - ${pr0:-0} )) tasks"
    figure deep.evalsha_us_per_call "$(rcli INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')" us/call
    out=$(python3 "$BENCH/results.py" lateness "$stamps")
    log "deep: lateness $out"
    figure deep.lateness_p50_ms "$(kv "$out" p50_ms)" ms
    figure deep.lateness_p99_ms "$(kv "$out" p99_ms)" ms
    figure deep.lateness_max_ms "$(kv "$out" max_ms)" ms
    flush
}
