# bench/wl/capacity.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_capacity, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 10. the capacity model's inputs (docs/SCALING.md, "Capacity model"): each
#     phase alone on a flushed Redis, at the worker's and the clients'
#     defaults: Redis CPU (used_cpu delta) per task, the scripts' own time
#     (INFO commandstats EVALSHA usec) and calls per task, network bytes
#     (in + out, INFO stats) per task; claim and ack alone over the scripts
#     (bench/contract_cpu.pl, batch 32 = the worker's claim size); memory
#     per delayed task in the hot and the cold tier; then the model:
#     tasks/s per Redis core and masters for 1M tasks/s at 50 % CPU.
#     --only capacity (not in the default set); ./build.sh capacity
CAP_HEADROOM=${BENCH_CAP_HEADROOM:-0.5}   # the CPU share a master may use
CAP_C0= CAP_NI0= CAP_NO0=
# cap_begin [keep]: a phase starts (Redis flushed unless "keep": the
# counters from now)
cap_begin() {
    [ "${1:-}" = keep ] || flush
    rcli CONFIG RESETSTAT >/dev/null
    CAP_C0=$(redis_cpu_s)
    CAP_NI0=$(rinfo stats total_net_input_bytes)
    CAP_NO0=$(rinfo stats total_net_output_bytes)
}
# cap_end NAME TASKS: the phase's figures (TASKS: the tasks it handled)
cap_end() {
    local name=$1 n=$2 c1 ni1 no1 cs calls usec
    c1=$(redis_cpu_s)
    ni1=$(rinfo stats total_net_input_bytes)
    no1=$(rinfo stats total_net_output_bytes)
    cs=$(rcli INFO commandstats | tr -d '\r')
    calls=$(sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' <<<"$cs")
    usec=$(sed -n 's/^cmdstat_evalsha:calls=[0-9]*,usec=\([0-9]*\),.*/\1/p' <<<"$cs")
    log "capacity $name: $n tasks; commandstats: $(grep '^cmdstat' <<<"$cs" | sed 's/,usec_per_call.*//;s/cmdstat_//' | tr '\n' ' ')"
    if [ -z "$n" ] || [ "$n" -le 0 ]; then na "capacity.$name.redis_cpu_us_per_task" "no task"; return; fi
    figure "capacity.$name.redis_cpu_us_per_task" \
        "$(awk -v a="$CAP_C0" -v b="$c1" -v n="$n" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')" us/task
    figure "capacity.$name.script_us_per_task" \
        "$(awk -v u="${usec:-0}" -v n="$n" 'BEGIN { printf "%.2f", u / n }')" us/task
    figure "capacity.$name.evalsha_per_task" \
        "$(awk -v c="${calls:-0}" -v n="$n" 'BEGIN { printf "%.4f", c / n }')" calls/task
    figure "capacity.$name.net_bytes_per_task" \
        "$(awk -v a="$CAP_NI0" -v b="$ni1" -v c="$CAP_NO0" -v d="$no1" -v n="$n" \
           'BEGIN { printf "%.0f", (b - a + d - c) / n }')" B/task
}

# cap_drain NAME: the queued tasks through the worker (its defaults), the
# phase's figures
cap_drain() {
    local out
    cap_begin keep
    start_worker "$WORKER_PROCS" "$TASKS_SO"
    out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$N" -i 20 -t 180 \
          -x dead -x retried) || log "capacity: $1: the worker did not finish ($out)"
    cap_end "$1" "$(rcli HGET "$STATS_KEY" done)"
    stop_spawned "$WORKER_PID"
}

wl_capacity() {
    local why out reqs m0 m1 spread
    if why=$(worker_missing); then na capacity.per_core_tasks_per_s "$why"; return; fi

    log "capacity: enqueue_one: $N x dq_defer (one call per task)"
    cap_begin
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 0 -t 120 >/dev/null 2>>"$TMP/enqueue.log" ||
        log "capacity: enqueue_one did not store every task"
    cap_end enqueue_one "$(rcli HGET "$STATS_KEY" enqueued)"

    log "capacity: enqueue_many: $N tasks by dq_defer_many, calls of 100"
    cap_begin
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 100 -t 120 >/dev/null 2>>"$TMP/enqueue.log" ||
        log "capacity: enqueue_many did not store every task"
    cap_end enqueue_many "$(rcli HGET "$STATS_KEY" enqueued)"

    if [ "$HAVE_MODULE" = 1 ]; then
        log "capacity: http1: $N POSTs of one task (wrk ${WRK_THREADS}t ${WRK_CONNS}c)"
        cap_begin
        wrk_run cap_http1 /_ah/queue/deferred "$TMP/body1.json" application/json "$N" "$HTTP_SECONDS" >/dev/null
        cap_end http1 "$(rcli HGET "$STATS_KEY" enqueued)"
        reqs=$(( (N + 99) / 100 ))
        log "capacity: http100: $reqs POSTs of 100 tasks"
        cap_begin
        wrk_run cap_http100 /_ah/queue/deferred "$TMP/body100.json" application/json "$reqs" "$HTTP_SECONDS" >/dev/null
        cap_end http100 "$(rcli HGET "$STATS_KEY" enqueued)"
    else
        na capacity.http1.redis_cpu_us_per_task "${MODULE_FAIL:-nginx module not built}"
        na capacity.http100.redis_cpu_us_per_task "${MODULE_FAIL:-nginx module not built}"
    fi

    # the worker's part: claims with acks riding them (dq_cmd_cycle), acks
    # alone, wake-ups; the queue filled before the phase starts
    log "capacity: drain: $N queued no-op tasks through the worker ($WORKER_PROCS processes, defaults)"
    flush
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 1000 -t 120 >/dev/null 2>>"$TMP/enqueue.log" ||
        log "capacity: filling the queue failed"
    cap_drain drain

    # the same enqueue + drain with the durability docs/OPERATIONS.md
    # documents (appendonly yes, appendfsync always): what the fsyncs cost
    log "capacity: enqueue_many + drain again with appendonly yes, appendfsync always"
    rcli CONFIG SET appendonly yes >/dev/null
    rcli CONFIG SET appendfsync always >/dev/null
    local i
    for i in $(seq 1 100); do
        [ "$(rinfo persistence aof_rewrite_in_progress)" = 0 ] &&
            [ "$(rinfo persistence aof_rewrite_scheduled)" = 0 ] && break
        sleep 0.1
    done
    cap_begin
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 100 -t 120 >/dev/null 2>>"$TMP/enqueue.log" ||
        log "capacity: enqueue_many_aof did not store every task"
    cap_end enqueue_many_aof "$(rcli HGET "$STATS_KEY" enqueued)"
    cap_drain drain_aof
    rcli CONFIG SET appendonly no >/dev/null
    rcli CONFIG SET appendfsync everysec >/dev/null

    # claim and ack alone (the worker sends them as one call)
    log "capacity: claim and ack alone over the scripts (contract_cpu.pl, batch 32)"
    out=$(perl "$BENCH/contract_cpu.pl" --n "$N" --batch 32 --mode v2 --split 2>>"$TMP/enqueue.log" |
          sed -n 's/^split //p')
    figure capacity.claim.script_us_per_task "$(kv "$out" claim_us_per_task)" us/task
    figure capacity.ack.script_us_per_task "$(kv "$out" ack_us_per_task)" us/task
    out=$(perl "$BENCH/contract_cpu.pl" --n "$N" --batch 32 --mode cycle 2>>"$TMP/enqueue.log")
    figure capacity.cycle_scripts.redis_cpu_us_per_task "$(kv "$out" us_per_task)" us/task

    # memory: N tasks due in 10 s (hot sets), N tasks spread at the density
    # of a million a day from 2 min ahead (the cold tier's buckets)
    flush
    rcli MEMORY PURGE >/dev/null 2>&1 || true
    m0=$(rinfo memory used_memory)
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 1000 -c 10000 -t 120 >/dev/null 2>>"$TMP/enqueue.log"
    m1=$(rinfo memory used_memory)
    figure capacity.memory_hot.bytes_per_task "$(awk -v a="$m0" -v b="$m1" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / n }')" B/task
    flush
    rcli MEMORY PURGE >/dev/null 2>&1 || true
    m0=$(rinfo memory used_memory)
    spread=$(( 864 * N / 10 ))
    [ "$spread" -gt 0 ] || spread=86400
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 1000 -e "120000:$spread" -t 120 >/dev/null 2>>"$TMP/enqueue.log"
    m1=$(rinfo memory used_memory)
    log "capacity: cold: $N tasks over $spread ms: $(rcli DBSIZE) keys, cold $(rcli HGET "$STATS_KEY" cold)"
    figure capacity.memory_cold.bytes_per_task "$(awk -v a="$m0" -v b="$m1" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / n }')" B/task
    flush

    # the model: a task = one enqueue (batched: dq_defer_many or HTTP
    # batches) + its share of the worker's drain, on one Redis core
    local e=${FIG[capacity.enqueue_many.redis_cpu_us_per_task]:-} d=${FIG[capacity.drain.redis_cpu_us_per_task]:-}
    local e1=${FIG[capacity.enqueue_one.redis_cpu_us_per_task]:-}
    if [ -n "$e" ] && [ -n "$d" ] && [ "$e" != n/a ] && [ "$d" != n/a ]; then
        figure capacity.task_batched.redis_cpu_us_per_task "$(awk -v a="$e" -v b="$d" 'BEGIN { printf "%.2f", a + b }')" us/task
        figure capacity.per_core_tasks_per_s "$(awk -v a="$e" -v b="$d" 'BEGIN { printf "%.0f", 1e6 / (a + b) }')" tasks/s
        figure capacity.masters_for_1M "$(awk -v a="$e" -v b="$d" -v h="$CAP_HEADROOM" \
            'BEGIN { x = 1e6 * (a + b) / 1e6 / h; printf "%d", (x == int(x)) ? x : int(x) + 1 }')" masters
    fi
    if [ -n "$e1" ] && [ -n "$d" ] && [ "$e1" != n/a ] && [ "$d" != n/a ]; then
        figure capacity.task_single.redis_cpu_us_per_task "$(awk -v a="$e1" -v b="$d" 'BEGIN { printf "%.2f", a + b }')" us/task
        figure capacity.masters_for_1M_single "$(awk -v a="$e1" -v b="$d" -v h="$CAP_HEADROOM" \
            'BEGIN { x = 1e6 * (a + b) / 1e6 / h; printf "%d", (x == int(x)) ? x : int(x) + 1 }')" masters
    fi
}
