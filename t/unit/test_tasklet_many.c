/*
 * 10,000 tasklets alive at once on one loop, once per coroutine backend:
 * every one suspends on a shared gate future and then on its own sleep,
 * their results are summed by a ReducingFuture, and the stacks they used
 * are mapped once and then pooled.
 */
#include <stdio.h>
#include <stdlib.h>

#include <deferred/tasklet.h>

#include "tap.h"

#define N 10000

static dq_future_t *gate;

static void
t_worker(dq_future_t *self, void *arg)
{
    dq_future_t *s;
    int          rc;

    if ((rc = dq_future_wait(gate)) != DQ_OK) {
        dq_future_propagate(self, gate);
        return;
    }
    s = dq_sleep(0.001 * (double) ((intptr_t) arg % 20));
    rc = dq_future_wait(s);
    dq_future_unref(s);
    if (rc != DQ_OK) {
        dq_future_set_exception(self, rc, "sleep failed");
        return;
    }
    dq_future_set_int(self, (intptr_t) arg);
}

static void
run(dq_coro_backend_t backend)
{
    dq_tasklet_opts_t  opts = { 0, 0, backend };
    dq_tasklet_stats_t st;
    dq_future_t       *rf, *f;
    int64_t            sum = 0;
    intptr_t           i;
    int                started = 0;

    dq_tasklet_init(NULL, &opts);
    gate = dq_future_new("gate");
    rf = dq_reducing_future_new(dq_reducer_sum, NULL, 100);
    for (i = 0; i < N; i++) {
        f = dq_tasklet(t_worker, (void *) i);
        if (f == NULL) {
            break;
        }
        started++;
        dq_multi_add_dependent(rf, f);
        dq_future_unref(f);
    }
    dq_multi_complete(rf);
    dq_tasklet_stats(&st);
    is_int(started, N, "[%s] started %d tasklets", st.backend, N);
    is_int(st.tasklets_live, N, "all %d alive and suspended at once", N);
    diag("[%s] %llu stacks of %zu bytes mapped", st.backend,
         (unsigned long long) st.stacks_mapped, st.stack_size);
    dq_future_set_result(gate, DQ_VALUE_NONE);
    is_int(dq_future_wait(rf), DQ_OK, "all of them completed");
    dq_future_get_int(rf, &sum);
    is_int(sum, (int64_t) N * (N - 1) / 2, "the sum of their results");
    dq_tasklet_stats(&st);
    is_int(st.tasklets_live, 0, "none left alive");
    ok(st.stacks_mapped <= 256, "ended tasklets' stacks beyond the pool "
       "are unmapped (%llu left)", (unsigned long long) st.stacks_mapped);
    dq_future_unref(rf);
    dq_future_unref(gate);
    dq_tasklet_shutdown();
}

int
main(void)
{
    run(DQ_CORO_DEFAULT);
#if defined(__x86_64__)
    run(DQ_CORO_UCONTEXT);
#endif
    uv_loop_close(uv_default_loop());
    return done_testing();
}
