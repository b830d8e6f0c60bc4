/*
 * libdq_bench_tasks.so — the task functions the benchmarks run.
 *
 *   bench.noop          does nothing: the worker-throughput workload
 *                       measures the worker and Redis, not the task.
 *   bench.noop_loop     the same, flagged DQ_FN_LOOP (runs on the worker's
 *                       loop thread, no hand-off to its pool).
 *   bench.stamp(path)   the ETA-lateness recorder: reads the host's
 *                       CLOCK_REALTIME first thing, then appends one line
 *                       "<eta_ms> <start_us> <us>\n" to the file `path`
 *                       (O_APPEND: one write(2) per line, so lines from
 *                       several threads and processes never interleave);
 *                       <us> is how long the previous line of this thread
 *                       took to open, write and close (its pool thread is
 *                       held that long: a disk stall shows there).
 *
 * One clock: the ETA is absolute UTC ms; the enqueuer took it from this
 * host's CLOCK_REALTIME, and Redis TIME (which decides when a task is due)
 * reads the same clock on the same host. So start - eta is the lateness as
 * the scheduler sees it, with no cross-host skew.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <deferred/task.h>

static dq_task_result_t
bench_noop(dq_task_t *task, void *udata)
{
    (void) task;
    (void) udata;
    return DQ_TASK_OK;
}

static dq_task_result_t
bench_stamp(dq_task_t *task, void *udata)
{
    static __thread long long  prev_us;
    struct timespec ts, te;
    const char     *p;
    size_t          len;
    char            path[512], line[64];
    int             fd, n;

    (void) udata;
    clock_gettime(CLOCK_REALTIME, &ts);

    if (dq_task_arg_str(task, 0, &p, &len) != DQ_OK)
        return DQ_TASK_PERMANENT;
    if (len == 0 || len >= sizeof(path)) {
        dq_task_set_error(task, "bench.stamp: bad path length %zu", len);
        return DQ_TASK_PERMANENT;
    }
    memcpy(path, p, len);
    path[len] = '\0';

    n = snprintf(line, sizeof(line), "%lld %lld %lld\n",
                 (long long) dq_task_eta_ms(task),
                 (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000,
                 prev_us);

    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        dq_task_set_error(task, "bench.stamp: open %s: %m", path);
        return DQ_TASK_FAIL;
    }
    if (write(fd, line, n) != n) {
        dq_task_set_error(task, "bench.stamp: write %s: %m", path);
        close(fd);
        return DQ_TASK_FAIL;
    }
    close(fd);
    clock_gettime(CLOCK_REALTIME, &te);
    prev_us = (long long) (te.tv_sec - ts.tv_sec) * 1000000
              + (te.tv_nsec - ts.tv_nsec) / 1000;
    return DQ_TASK_OK;
}

static const dq_function_t bench_functions[] = {
    { "bench.noop", bench_noop, 0, NULL },
    { "bench.noop_loop", bench_noop, DQ_FN_LOOP, NULL },
    { "bench.stamp", bench_stamp, 0, NULL },
    { NULL, NULL, 0, NULL }
};

DQ_LIBRARY("bench", bench_functions, NULL, NULL, NULL);
