# bench/wl/http1.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_http1, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 1. one task per POST. http1: the due list off (no worker claims here: the
# figure recorded since the start), each run right after a return 202 run
# of the same length (http1.adjacent_ratio: the median of the pairs'
# ratios, which the machine's drift between workloads does not move); http1_listed: one more run with the due
# list on (BENCH_DUE_LIST, default 1; 0 skips it), as whenever workers of
# this version claim the queue: due-now plain ids of calls of >= 2 tasks go
# to the list, not the ETA set
wl_http1() {
    local i out vals=() p50s=() p99s=() errs=0 e
    if [ "$HAVE_MODULE" != 1 ]; then
        local why=${MODULE_FAIL:-"nginx module not built"}
        na http1.tasks_per_s "$why"; na http1.p50_ms "$why"; na http1.p99_ms "$why"
        na http1.errors "$why"
        return
    fi
    log "http1: one task per POST (wrk ${WRK_THREADS}t ${WRK_CONNS}c ${HTTP_SECONDS}s), each run right after a return 202 run"
    local rcpu=() ncpu=() tpc=() adj=() pairs=() r0 r1 n0 n1 tasks c
    for i in $(seq 1 "$REPEAT"); do
        # the ceiling again, right before: the machine's speed drifts
        # over the minutes between the ceilings workload and this one
        # (the pair's ratio is a second figure; the target's ratio stays
        # against ceiling.nginx_return_202)
        c=$(wrk_run ceiling /ceiling "$TMP/body1.json" application/json 0 "$HTTP_SECONDS")
        c=$(awk -v r="$(kv "$c" requests)" -v d="$(kv "$c" duration_us)" \
            'BEGIN { if (d > 0) printf "%.0f", r / (d / 1e6) }')
        out=$(http1_run "http1 run $i") || continue
        vals+=("$(kv "$out" tasks_per_s)")
        if [ -n "$c" ] && [ "$c" -gt 0 ]; then
            adj+=("$c")
            pairs+=("$(awk -v a="$(kv "$out" tasks_per_s)" -v b="$c" 'BEGIN { printf "%.3f", a / b }')")
            log "http1 run $i: return 202 just before $c req/s, ratio ${pairs[-1]}"
        fi
        rcpu+=("$(kv "$out" rcpu)"); ncpu+=("$(kv "$out" ncpu)"); tpc+=("$(kv "$out" tpc)")
        p50s+=("$(kv "$out" p50_us)"); p99s+=("$(kv "$out" p99_us)")
        for e in connect read write status timeout; do errs=$((errs + $(kv "$out" $e))); done
    done
    [ ${#vals[@]} -gt 0 ] || { na http1.tasks_per_s "wrk failed"; return; }
    figure http1.tasks_per_s "$(median "${vals[@]}")" tasks/s ceiling.nginx_return_202
    figure http1.p50_ms "$(awk -v v="$(median "${p50s[@]}")" 'BEGIN { printf "%.2f", v / 1000 }')" ms
    figure http1.p99_ms "$(awk -v v="$(median "${p99s[@]}")" 'BEGIN { printf "%.2f", v / 1000 }')" ms
    figure http1.errors "$errs" errors
    figure http1.redis_cpu_us_per_task "$(median "${rcpu[@]}")" us/task
    figure http1.nginx_cpu_us_per_task "$(median "${ncpu[@]}")" us/task
    figure http1.tasks_per_call "$(median "${tpc[@]}")" tasks
    if [ ${#pairs[@]} -gt 0 ]; then
        figure http1.adjacent_return_202 "$(median "${adj[@]}")" req/s
        figure http1.adjacent_ratio "$(median "${pairs[@]}")" ratio
    fi
    if [ "${BENCH_DUE_LIST:-1}" = 1 ]; then
        if out=$(http1_run "http1 due list on" due_list_on); then
            local lerrs=0 listed
            for e in connect read write status timeout; do lerrs=$((lerrs + $(kv "$out" $e))); done
            # the share of the run's tasks that went to the list: due_until
            # is written once, 59 s ahead, so a run longer than that (or a
            # clock step) measures the ETA set for the rest (review RH3)
            listed=$(rcli HGET "$STATS_KEY" due_n)
            figure http1_listed.tasks_per_s "$(kv "$out" tasks_per_s)" tasks/s ceiling.nginx_return_202
            figure http1_listed.errors "$lerrs" errors
            figure http1_listed.redis_cpu_us_per_task "$(kv "$out" rcpu)" us/task
            figure http1_listed.tasks_per_call "$(kv "$out" tpc)" tasks
            figure http1_listed.listed_share "$(awk -v l="${listed:-0}" -v n="$(rcli HGET "$STATS_KEY" enqueued)" \
                'BEGIN { printf "%.3f", (n > 0 ? l / n : 0) }')" share
        fi
    fi
    flush
}

# http1_run LABEL [SETUP]: one wrk run of one-task POSTs into an empty
# Redis (SETUP run after the flush); prints the wrk_result line plus
# tasks_per_s, rcpu and ncpu (us per task), tpc (tasks per merged call)
http1_run() {
    local label=$1 setup=${2:-} out r0 r1 n0 n1 tasks calls
    flush
    rcli CONFIG RESETSTAT >/dev/null
    [ -z "$setup" ] || "$setup"
    r0=$(redis_cpu_s); n0=$(nginx_cpu_ns)
    out=$(wrk_run http1 /_ah/queue/deferred "$TMP/body1.json" application/json 0 "$HTTP_SECONDS")
    r1=$(redis_cpu_s); n1=$(nginx_cpu_ns)
    [ -n "$out" ] || return 1
    tasks=$(rcli HGET "$STATS_KEY" enqueued)
    calls=$(rcli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p')
    log "$label: redis commandstats: $(rcli INFO commandstats | tr -d '\r' | grep '^cmdstat' | sed 's/,rejected_calls.*//;s/cmdstat_//' | tr '\n' ' ')"
    # every 2xx stored a task: the count in Redis must match the requests
    log "$label: $(kv "$out" requests) requests, $tasks tasks counted in Redis"
    echo "$out $(awk -v r="$(kv "$out" requests)" -v d="$(kv "$out" duration_us)" \
                     -v a="$r0" -v b="$r1" -v c="$n0" -v e="$n1" -v n="$tasks" -v k="${calls:-0}" \
        'BEGIN { printf "tasks_per_s=%.0f rcpu=%.2f ncpu=%.2f tpc=%.1f", r / (d / 1e6),
                 (b - a) * 1e6 / n, (e - c) / 1000 / n, (k > 0 ? n / k : 0) }')"
}
