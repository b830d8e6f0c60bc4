# bench/wl/memory.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_memory, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 7. Redis memory per delayed task
wl_memory() {
    local m0 m1
    if [ ! -x "$ENQ" ]; then na memory.bytes_per_task "C client (client/client.c) not built"; return; fi
    flush
    rcli MEMORY PURGE >/dev/null 2>&1 || true
    m0=$(rinfo memory used_memory)
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 1000 -c 86400000 -t 60 >/dev/null \
        2>>"$TMP/enqueue.log" || { na memory.bytes_per_task "enqueue failed"; return; }
    m1=$(rinfo memory used_memory)
    log "memory: used_memory $m0 -> $m1 for $N tasks delayed 1 day; $(rcli DBSIZE) keys"
    figure memory.bytes_per_task "$(awk -v a="$m0" -v b="$m1" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / n }')" B/task
    flush
}
