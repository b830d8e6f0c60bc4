/*
 * libdq_bench_tasklets.so — the tasklet task of the benchmarks.
 *
 *   bench.tasklet_incr   a DQ_FN_TASKLET function that does one async Redis
 *                        command on the worker's own connection (INCR
 *                        bench:tasklet) and waits for it: the coroutine is
 *                        suspended while the reply is on its way, so a child
 *                        runs up to tasklet_concurrency of these at once.
 *                        The counter lets bench/run.sh check that every task
 *                        really did its command.
 */
#include <deferred/task.h>
#include <deferred/tasklet.h>

static dq_task_result_t
bench_tasklet_incr(dq_task_t *task, void *udata)
{
    dq_future_t *f;
    int          rc;

    (void) udata;
    f = dq_redis_command("INCR bench:tasklet");
    if (f == NULL) {
        dq_task_set_error(task, "bench.tasklet_incr: out of memory");
        return DQ_TASK_FAIL;
    }
    rc = dq_future_wait(f);
    if (rc != DQ_OK)
        dq_task_set_error(task, "bench.tasklet_incr: INCR: %s",
                          dq_tasklet_strerror(rc));
    dq_future_unref(f);
    return rc == DQ_OK ? DQ_TASK_OK : DQ_TASK_FAIL;
}

static const dq_function_t bench_tasklet_functions[] = {
    { "bench.tasklet_incr", bench_tasklet_incr, DQ_FN_TASKLET, NULL },
    { NULL, NULL, 0, NULL }
};

DQ_LIBRARY("bench-tasklets", bench_tasklet_functions, NULL, NULL, NULL);
