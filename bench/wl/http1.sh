# bench/wl/http1.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_http1, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 1. one task per POST
wl_http1() {
    local i out vals=() p50s=() p99s=() errs=0 e
    if [ "$HAVE_MODULE" != 1 ]; then
        local why=${MODULE_FAIL:-"nginx module not built"}
        na http1.tasks_per_s "$why"; na http1.p50_ms "$why"; na http1.p99_ms "$why"
        na http1.errors "$why"
        return
    fi
    log "http1: one task per POST (wrk ${WRK_THREADS}t ${WRK_CONNS}c ${HTTP_SECONDS}s)"
    local rcpu=() ncpu=() r0 r1 n0 n1 tasks
    for i in $(seq 1 "$REPEAT"); do
        flush
        rcli CONFIG RESETSTAT >/dev/null
        r0=$(redis_cpu_s); n0=$(nginx_cpu_ns)
        out=$(wrk_run http1 /_ah/queue/deferred "$TMP/body1.json" application/json 0 "$HTTP_SECONDS")
        r1=$(redis_cpu_s); n1=$(nginx_cpu_ns)
        [ -n "$out" ] || continue
        tasks=$(rcli HGET "$STATS_KEY" enqueued)
        rcpu+=("$(awk -v a="$r0" -v b="$r1" -v n="$tasks" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')")
        ncpu+=("$(awk -v a="$n0" -v b="$n1" -v n="$tasks" 'BEGIN { printf "%.2f", (b - a) / 1000 / n }')")
        log "http1 run $i: redis commandstats: $(rcli INFO commandstats | tr -d '\r' | grep '^cmdstat' | sed 's/,rejected_calls.*//;s/cmdstat_//' | tr '\n' ' ')"
        vals+=("$(awk -v r="$(kv "$out" requests)" -v d="$(kv "$out" duration_us)" \
                  'BEGIN { printf "%.0f", r / (d / 1e6) }')")
        p50s+=("$(kv "$out" p50_us)"); p99s+=("$(kv "$out" p99_us)")
        for e in connect read write status timeout; do errs=$((errs + $(kv "$out" $e))); done
        # every 2xx stored a task: the count in Redis must match the requests
        log "http1 run $i: $(kv "$out" requests) requests, $(rcli HGET "$STATS_KEY" enqueued) tasks counted in Redis"
    done
    [ ${#vals[@]} -gt 0 ] || { na http1.tasks_per_s "wrk failed"; return; }
    figure http1.tasks_per_s "$(median "${vals[@]}")" tasks/s ceiling.nginx_return_202
    figure http1.p50_ms "$(awk -v v="$(median "${p50s[@]}")" 'BEGIN { printf "%.2f", v / 1000 }')" ms
    figure http1.p99_ms "$(awk -v v="$(median "${p99s[@]}")" 'BEGIN { printf "%.2f", v / 1000 }')" ms
    figure http1.errors "$errs" errors
    figure http1.redis_cpu_us_per_task "$(median "${rcpu[@]}")" us/task
    figure http1.nginx_cpu_us_per_task "$(median "${ncpu[@]}")" us/task
    flush
}
