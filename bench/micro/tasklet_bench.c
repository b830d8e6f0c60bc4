/*
 * Microbenchmark of the tasklet machinery (run by hand; the figures go to
 * docs/TASKLETS.md with the machine and date):
 *
 *   make build/bench/micro/tasklet_bench && build/bench/micro/tasklet_bench
 *
 *   switch    one coroutine switch (half of a resume + yield pair)
 *   immed     a future without the loop: new, add_immediate_callback,
 *             set_result (runs the callback), unref
 *   future    a future round trip on the loop: new, add_callback,
 *             set_result, the callback run from the loop's idle phase, unref
 *             (includes one uv_run(UV_RUN_NOWAIT): an epoll_wait(0) call)
 *   await     a tasklet awaiting a future the loop side completes: wait
 *             (suspend), set_result, resume through the run queue
 *   tasklet   start + end of a tasklet that returns at once (pooled stack)
 *
 * Every figure is measured with both switch backends (asm-x86_64 and
 * ucontext) and is the best of 5 runs, in ns per operation. The bench
 * reaches into tasklet/tasklet_int.h for the raw resume/yield pair.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <deferred/tasklet.h>

#include "tasklet_int.h"

static double
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}

/* ------------------------------------------------------------- switch */

static long        yields_left;
static dq__coro_t *yielder;

static void
t_yielder(dq_future_t *self, void *arg)
{
    (void) self;
    (void) arg;
    yielder = dq__rt->current;
    while (yields_left-- > 0) {
        dq__coro_yield(dq__rt);
    }
}

static double
bench_switch(long n)
{
    dq_future_t *f;
    double       t0, t1;

    yields_left = n;
    f = dq_tasklet(t_yielder, NULL);
    t0 = now_ns();
    while (!dq_future_done(f)) {
        dq__coro_resume(dq__rt, yielder);
    }
    t1 = now_ns();
    dq_future_unref(f);
    return (t1 - t0) / (2.0 * (double) n);
}

/* ------------------------------------------------------------- future */

static long fired;

static void
on_done(dq_future_t *f, void *arg)
{
    (void) f;
    (void) arg;
    fired++;
}

static double
bench_future(long n)
{
    uv_loop_t *loop = dq_tasklet_loop();
    double     t0, t1;
    long       i;

    fired = 0;
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        dq_future_t *f = dq_future_new("bench");

        dq_future_add_callback(f, on_done, NULL);
        dq_future_set_int(f, i);
        dq_future_unref(f);
        uv_run(loop, UV_RUN_NOWAIT);
    }
    t1 = now_ns();
    if (fired != n) {
        fprintf(stderr, "future: %ld callbacks for %ld futures\n", fired, n);
        exit(1);
    }
    return (t1 - t0) / (double) n;
}

static double
bench_immediate(long n)
{
    double t0, t1;
    long   i;

    fired = 0;
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        dq_future_t *f = dq_future_new("bench");

        dq_future_add_immediate_callback(f, on_done, NULL);
        dq_future_set_int(f, i);
        dq_future_unref(f);
    }
    t1 = now_ns();
    if (fired != n) {
        fprintf(stderr, "immediate: %ld callbacks for %ld futures\n", fired,
                n);
        exit(1);
    }
    return (t1 - t0) / (double) n;
}

/* -------------------------------------------------------------- await */

static dq_future_t *slot;
static long         awaits_left;

static void
t_awaiter(dq_future_t *self, void *arg)
{
    (void) arg;
    while (awaits_left > 0) {
        dq_future_t *f = dq_future_new("await");

        slot = f;
        dq_future_wait(f);
        dq_future_unref(f);
        awaits_left--;
    }
    slot = NULL;
    dq_future_set_int(self, 0);
}

static double
bench_await(long n)
{
    uv_loop_t   *loop = dq_tasklet_loop();
    dq_future_t *t;
    double       t0, t1;

    awaits_left = n;
    t0 = now_ns();
    t = dq_tasklet(t_awaiter, NULL);
    while (slot) {
        dq_future_set_int(slot, 1);     /* wakes the tasklet (queued) */
        uv_run(loop, UV_RUN_NOWAIT);    /* resumes it: it waits again */
    }
    t1 = now_ns();
    dq_future_unref(t);
    return (t1 - t0) / (double) n;
}

/* ------------------------------------------------------------ tasklet */

static void
t_empty(dq_future_t *self, void *arg)
{
    (void) self;
    (void) arg;
}

static double
bench_tasklet(long n)
{
    double t0, t1;
    long   i;

    t0 = now_ns();
    for (i = 0; i < n; i++) {
        dq_future_unref(dq_tasklet(t_empty, NULL));
    }
    t1 = now_ns();
    return (t1 - t0) / (double) n;
}

/* ------------------------------------------------------------------ */

static double
best(double (*fn)(long), long n)
{
    double b = 1e18, x;
    int    i;

    for (i = 0; i < 5; i++) {
        x = fn(n);
        if (x < b) {
            b = x;
        }
    }
    return b;
}

int
main(int argc, char **argv)
{
    dq_coro_backend_t backends[2] = { DQ_CORO_ASM, DQ_CORO_UCONTEXT };
    long              n = argc > 1 ? atol(argv[1]) : 1000000;
    int               b;

    printf("%-12s %8s %8s %8s %8s %8s   (ns/op, best of 5, n=%ld)\n",
           "backend", "switch", "immed", "future", "await", "tasklet", n);
    for (b = 0; b < 2; b++) {
        dq_tasklet_opts_t  opts = { 0, 0, backends[b] };
        dq_tasklet_stats_t st;

        if (dq_tasklet_init(NULL, &opts) != DQ_OK) {
            continue;
        }
        dq_tasklet_stats(&st);
        printf("%-12s %8.1f %8.1f %8.1f %8.1f %8.1f\n", st.backend,
               best(bench_switch, n), best(bench_immediate, n),
               best(bench_future, n), best(bench_await, n),
               best(bench_tasklet, n));
        dq_tasklet_shutdown();
    }
    uv_loop_close(uv_default_loop());
    return 0;
}
