# bench/wl/client.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_client, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 3. the C client: one dq_defer per task, and dq_defer_many in batches
wl_client() {
    local mode b label i out vals ccpu rcpu r0 r1 ceil
    if [ ! -x "$ENQ" ]; then
        for label in client_single client_many; do
            na "$label.tasks_per_s" "C client (client/client.c) not built"
        done
        return
    fi
    for mode in single:0 many:1000; do
        label=client_${mode%%:*}; b=${mode#*:}
        if [ "$b" = 0 ]; then
            log "$label: $N x dq_defer, one call per task (10 s max)"
            ceil=ceiling.redis_eval_zadd_hset
        else
            log "$label: $N tasks by dq_defer_many, batches of $b"
            ceil=ceiling.redis_eval_zadd_hset_p16
        fi
        vals=(); ccpu=(); rcpu=()
        for i in $(seq 1 "$REPEAT"); do
            flush
            due_list_on
            r0=$(redis_cpu_s)
            out=$("$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b "$b" -t 10 2>>"$TMP/enqueue.log") || true
            r1=$(redis_cpu_s)
            [ -n "$(kv "$out" tasks_per_s)" ] || continue
            vals+=("$(kv "$out" tasks_per_s)"); ccpu+=("$(kv "$out" cpu_us_per_task)")
            rcpu+=("$(awk -v a="$r0" -v b="$r1" -v n="$(kv "$out" tasks)" \
                      'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')")
        done
        if [ ${#vals[@]} -gt 0 ]; then
            figure "$label.tasks_per_s" "$(median "${vals[@]}")" tasks/s "$ceil"
            figure "$label.client_cpu_us_per_task" "$(median "${ccpu[@]}")" us/task
            figure "$label.redis_cpu_us_per_task" "$(median "${rcpu[@]}")" us/task
        else
            na "$label.tasks_per_s" "dq-bench-enqueue failed: $(tail -1 "$TMP/enqueue.log")"
        fi
    done
    flush
}
