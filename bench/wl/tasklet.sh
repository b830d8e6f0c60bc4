# bench/wl/tasklet.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_tasklet, run by run.sh when the workload is selected.
# shellcheck shell=bash

# 5. tasklet tasks that each do one async Redis command
TASKLET_SO=$BUILD/bench/libdq_bench_tasklets.so
wl_tasklet() {
    local why i rates=() w=()
    if why=$(worker_missing); then
        na tasklet.tasks_per_s "$why"; na tasklet.cpu_us_per_task "$why"; return
    fi
    if [ ! -f "$TASKLET_SO" ]; then
        why="tasklet API (include/deferred/tasklet.h) not built"
        na tasklet.tasks_per_s "$why"; na tasklet.cpu_us_per_task "$why"; return
    fi
    for i in $(seq 1 "$REPEAT"); do
        drain_run bench.tasklet_incr "$TASKLET_SO" || continue
        # each task did its one Redis command (the counter survives the
        # drain: drain_run flushes before filling, not after)
        local incr
        incr=$(rcli GET bench:tasklet)
        [ "$incr" = "$N" ] || log "tasklet: bench:tasklet is $incr, expected $N"
        rates+=("$RUN_RATE"); w+=("$RUN_WCPU_US")
    done
    if [ ${#rates[@]} -eq 0 ]; then
        na tasklet.tasks_per_s "$RUN_FAIL"; na tasklet.cpu_us_per_task "$RUN_FAIL"; return
    fi
    figure tasklet.tasks_per_s "$(median "${rates[@]}")" tasks/s ceiling.redis_eval_zadd_hset_p16
    figure tasklet.cpu_us_per_task "$(median "${w[@]}")" us/task
    flush
}
