# bench/wl/mix90.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_mix90, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 7c. a 90/10 mix through the worker: N tasks, every tenth delayed by an
#     hour (cold), the rest due now; the worker drains the due ones
wl_mix90() {
    local why i due out r0 r1 rc0 rc1 t0 rates=() rcpu=() ecpu=()
    if why=$(worker_missing); then na mix90.tasks_per_s "$why"; return; fi
    due=$((N - N / 10))
    for i in $(seq 1 "$REPEAT"); do
        flush
        r0=$(redis_cpu_s)
        "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 1000 -d 10:3600000 -t 60 \
            >/dev/null 2>>"$TMP/enqueue.log" || { log "mix90: enqueue failed"; continue; }
        r1=$(redis_cpu_s)
        rc0=$r1
        t0=$EPOCHREALTIME
        start_worker "$WORKER_PROCS" "$TASKS_SO"
        out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$due" -i 5 -t 120) ||
            { log "mix90: worker did not finish ($out)"; stop_spawned "$WORKER_PID"; continue; }
        rc1=$(redis_cpu_s)
        stop_spawned "$WORKER_PID"
        log "mix90 run $i: cold $(rcli HGET "$STATS_KEY" cold), done $(rcli HGET "$STATS_KEY" done)"
        rates+=("$(awk -v n="$due" -v a="$t0" -v b="$(kv "$out" done_s)" 'BEGIN { printf "%.0f", n / (b - a) }')")
        rcpu+=("$(awk -v a="$rc0" -v b="$rc1" -v n="$due" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')")
        ecpu+=("$(awk -v a="$r0" -v b="$r1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')")
    done
    if [ ${#rates[@]} -eq 0 ]; then na mix90.tasks_per_s "no run finished"; return; fi
    figure mix90.tasks_per_s "$(median "${rates[@]}")" tasks/s ceiling.redis_eval_zadd_hset_p16
    figure mix90.redis_cpu_us_per_task "$(median "${rcpu[@]}")" us/task
    figure mix90.enqueue_redis_cpu_us_per_task "$(median "${ecpu[@]}")" us/task
    flush
}
