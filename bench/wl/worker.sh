# bench/wl/worker.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_worker, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 4. worker throughput on N queued no-op tasks: with the worker's default
#    settings, and with large claim batches (what batching buys)
wl_worker() {
    local why i f rates w r rc rm variant prefix opts saved=$WORKER_OPTS
    if why=$(worker_missing); then
        for f in tasks_per_s cpu_us_per_task redis_cpu_us_per_task rss_child_mib rss_master_mib; do
            na "worker.$f" "$why"
        done
        return
    fi
    for variant in default tuned; do
        if [ "$variant" = default ]; then prefix=worker; opts=$saved
        else prefix=worker_b256; opts="$saved $WORKER_TUNED"; fi
        WORKER_OPTS=$opts
        rates=(); w=(); r=(); rc=(); rm=()
        log "$prefix: $N queued bench.noop tasks, $WORKER_PROCS children, options: ${opts:-defaults}"
        for i in $(seq 1 "$REPEAT"); do
            drain_run bench.noop "$TASKS_SO" || continue
            rates+=("$RUN_RATE"); w+=("$RUN_WCPU_US"); r+=("$RUN_RCPU_US")
            rc+=("$RUN_RSS_CHILD"); rm+=("$RUN_RSS_MASTER")
        done
        WORKER_OPTS=$saved
        if [ ${#rates[@]} -eq 0 ]; then
            na "$prefix.tasks_per_s" "$RUN_FAIL"
            continue
        fi
        figure "$prefix.tasks_per_s" "$(median "${rates[@]}")" tasks/s ceiling.redis_eval_zadd_hset_p16
        figure "$prefix.cpu_us_per_task" "$(median "${w[@]}")" us/task
        figure "$prefix.redis_cpu_us_per_task" "$(median "${r[@]}")" us/task
        [ "$variant" = default ] || continue
        figure worker.rss_child_mib "$(printf '%s\n' "${rc[@]}" | sort -g | tail -1)" MiB
        if [ "${rm[0]}" = n/a ]; then
            na worker.rss_master_mib "deferred-worker ran as one process (no master/children)"
        else
            figure worker.rss_master_mib "$(printf '%s\n' "${rm[@]}" | sort -g | tail -1)" MiB
        fi
        figure worker.processes "$RUN_PROCS" children
    done
    flush
}
