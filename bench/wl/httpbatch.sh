# bench/wl/httpbatch.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_httpbatch, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 2. batches of 100 and 1,000 tasks per POST (JSON; and 1,000 as msgpack,
#    to show what the JSON decoding costs)
wl_httpbatch() {
    local v b fmt name ctype i out vals reqs errs e
    for v in 100:json 1000:json 1000:msgpack; do
        b=${v%%:*}; fmt=${v#*:}
        name=http_batch$b; [ "$fmt" = json ] || name=${name}_$fmt
        ctype=application/json; [ "$fmt" = json ] || ctype=application/x-msgpack
        if [ "$HAVE_MODULE" != 1 ]; then
            na "$name.tasks_per_s" "${MODULE_FAIL:-nginx module not built}"
            continue
        fi
        reqs=$(( (N * 5 + b - 1) / b ))   # bounded: 5 N tasks per run
        log "$name: up to $reqs POSTs of $b tasks ($ctype), ${HTTP_SECONDS}s max"
        vals=(); local rcpu=() ncpu=() r0 r1 n0 n1 tasks
        for i in $(seq 1 "$REPEAT"); do
            flush
            r0=$(redis_cpu_s); n0=$(nginx_cpu_ns)
            out=$(wrk_run "$name" /_ah/queue/deferred "$TMP/body$b.$fmt" "$ctype" \
                  "$reqs" "$HTTP_SECONDS")
            r1=$(redis_cpu_s); n1=$(nginx_cpu_ns)
            [ -n "$out" ] || continue
            tasks=$(rcli HGET "$STATS_KEY" enqueued)
            rcpu+=("$(awk -v a="$r0" -v b="$r1" -v n="$tasks" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')")
            ncpu+=("$(awk -v a="$n0" -v b="$n1" -v n="$tasks" 'BEGIN { printf "%.2f", (b - a) / 1000 / n }')")
            errs=0
            for e in connect read write status timeout; do errs=$((errs + $(kv "$out" $e))); done
            [ "$errs" -eq 0 ] || log "$name: $errs errors"
            vals+=("$(awk -v r="$(kv "$out" requests)" -v d="$(kv "$out" duration_us)" -v b="$b" \
                      'BEGIN { printf "%.0f", r * b / (d / 1e6) }')")
        done
        if [ ${#vals[@]} -gt 0 ]; then
            figure "$name.tasks_per_s" "$(median "${vals[@]}")" tasks/s ceiling.redis_zadd_p16
            figure "$name.redis_cpu_us_per_task" "$(median "${rcpu[@]}")" us/task
            figure "$name.nginx_cpu_us_per_task" "$(median "${ncpu[@]}")" us/task
        else
            na "$name.tasks_per_s" "wrk failed"
        fi
    done
    flush
}
