# bench/wl/idle.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_idle, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 8. idle cost: 4 worker processes on an empty queue
wl_idle() {
    local why c0 c1 r0 r1 w0=0 w1=0 p pids
    if why=$(worker_missing); then
        na idle.redis_cmds_per_s "$why"; na idle.worker_cpu_pct "$why"; return
    fi
    flush
    start_worker "$IDLE_WORKERS" "$TASKS_SO"
    sleep 2
    pids=$(worker_pids)
    rcli CONFIG RESETSTAT >/dev/null
    c0=$(rinfo stats total_commands_processed); r0=$(redis_cpu_s)
    for p in $pids; do w0=$((w0 + $(cpu_ns "$p"))); done
    sleep "$IDLE_SECONDS"
    c1=$(rinfo stats total_commands_processed); r1=$(redis_cpu_s)
    for p in $pids; do w1=$((w1 + $(cpu_ns "$p"))); done
    log "idle: commandstats: $(rcli INFO commandstats | tr -d '\r' | grep '^cmdstat' | sed 's/,usec_per_call.*//' | tr '\n' ' ')"
    stop_spawned "$WORKER_PID"
    # the INFO calls of this measurement are not the worker's: 2 INFO (c0, r0)
    figure idle.redis_cmds_per_s "$(awk -v a="$c0" -v b="$c1" -v s="$IDLE_SECONDS" \
        'BEGIN { v = (b - a - 2) / s; if (v < 0) v = 0; printf "%.1f", v }')" cmds/s
    figure idle.worker_cpu_pct "$(awk -v a="$w0" -v b="$w1" -v s="$IDLE_SECONDS" \
        'BEGIN { printf "%.3f", (b - a) / 1e9 / s * 100 }')" "%cpu(all $IDLE_WORKERS+1)"
    figure idle.redis_cpu_pct "$(awk -v a="$r0" -v b="$r1" -v s="$IDLE_SECONDS" \
        'BEGIN { printf "%.3f", (b - a) / s * 100 }')" %cpu
}
