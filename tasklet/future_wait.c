/*
 * Waiting on futures: wait, wait_any, wait_all — inside a tasklet by
 * suspending it, outside by running the loop — and deadlock detection.
 *
 * Inside a tasklet: an immediate callback is put on each future waited on;
 * the first to fire queues the tasklet's own embedded run-queue node (so a
 * wake-up never allocates and never happens twice), the rest are removed
 * when the tasklet runs again.
 *
 * Outside: uv_run(UV_RUN_ONCE) until done. When the loop reports that
 * nothing is alive (no active handle or request; the run queue's idle
 * handle is active whenever it holds work) and the futures are still not
 * done, nothing can ever complete them: they are failed with DQ_EDEADLOCK
 * and a message listing every pending future and where it was created.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasklet_int.h"

#define DQ__WAIT_ANY 0
#define DQ__WAIT_ALL 1

static void
dq__resume_cb(dq_future_t *f, void *arg)
{
    dq__coro_t *c = arg;

    (void) f;
    dq__coro_resume(dq__rt, c);
}

static void
dq__wake_cb(dq_future_t *f, void *arg)
{
    dq__coro_t *c = arg;

    (void) f;
    if (c->wake != 1) {
        return;
    }
    c->wake = 2;
    c->resume.cb = dq__resume_cb;
    c->resume.f = NULL;
    c->resume.arg = c;
    c->resume.immediate = 2;
    dq__rq_push_node(dq__rt, &c->resume);
}

void
dq__tasklet_wake(dq__coro_t *c)
{
    dq__wake_cb(NULL, c);
}

/* Index of the future that satisfies the wait, or -1 to keep waiting. */
static long
dq__wait_ready(dq_future_t *const *fs, size_t n, int mode)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (mode == DQ__WAIT_ANY && fs[i]->state == DQ_FUTURE_DONE) {
            return (long) i;
        }
        if (mode == DQ__WAIT_ALL && fs[i]->state != DQ_FUTURE_DONE) {
            return -1;
        }
    }
    return mode == DQ__WAIT_ALL ? 0 : -1;
}

static int
dq__wait_tasklet(dq__rt_t *rt, dq_future_t *const *fs, size_t n, int mode)
{
    dq__coro_t *c = rt->current;
    size_t      i;
    long        idx;
    int         rc;

    while ((idx = dq__wait_ready(fs, n, mode)) < 0) {
        if (c->home && c->home->canceled) {
            return c->home->canceled;   /* its tree was canceled */
        }
        c->wake = 1;
        c->waiting_on = NULL;
        for (i = 0; i < n; i++) {
            if (fs[i]->state == DQ_FUTURE_DONE) {
                continue;
            }
            rc = dq_future_add_immediate_callback(fs[i], dq__wake_cb, c);
            if (rc != DQ_OK) {
                c->wake = 0;
                while (i-- > 0) {
                    (void) dq__future_remove_cb(fs[i], dq__wake_cb, c);
                    if (fs[i]->waiter == c) {
                        fs[i]->waiter = NULL;
                    }
                }
                c->waiting_on = NULL;
                return rc;
            }
            fs[i]->waiter = c;
            if (c->waiting_on == NULL) {
                c->waiting_on = fs[i];
            }
            if (mode == DQ__WAIT_ALL) {
                break;     /* one at a time, in order */
            }
        }
        dq__coro_yield(rt);
        c->wake = 0;
        c->waiting_on = NULL;
        for (i = 0; i < n; i++) {
            if (fs[i]->state != DQ_FUTURE_DONE) {
                (void) dq__future_remove_cb(fs[i], dq__wake_cb, c);
            }
            if (fs[i]->waiter == c) {
                fs[i]->waiter = NULL;   /* c may end and be reused */
            }
        }
    }
    return (int) idx;
}

/*
 * Nothing alive can complete fs: fail the futures that suspended tasklets
 * wait on (the leaves of the wait graph: the tasklets then resume and
 * handle or propagate the error) or, if no tasklet is involved, fs
 * themselves — all with DQ_EDEADLOCK and a message listing every pending
 * future. Each call completes at least one future, so the caller's loop
 * makes progress.
 */
static void
dq__deadlock(dq__rt_t *rt, dq_future_t *const *fs, size_t n)
{
    dq_future_t  *f, **leaves = NULL;
    char         *text = NULL;
    size_t        len = 0, i, nleaves = 0, count = 0;
    FILE         *mem;

    for (f = rt->pending; f; f = f->pnext) {
        count++;
        if (f->waiter && f->waiter->state == DQ__CORO_SUSPENDED
            && f->waiter->waiting_on == f)
        {
            nleaves++;
        }
    }
    mem = open_memstream(&text, &len);
    if (mem) {
        fprintf(mem, "deadlock: nothing left on the loop can complete ");
        for (i = 0; i < n; i++) {
            if (fs[i]->state != DQ_FUTURE_DONE) {
                fprintf(mem, "%s created at %s:%d in %s(); ", fs[i]->what,
                        fs[i]->site.file, fs[i]->site.line,
                        fs[i]->site.func);
            }
        }
        fprintf(mem, "%zu pending futures:\n", count);
        (void) dq_future_dump(mem);
        fclose(mem);
    }
    if (nleaves) {
        leaves = calloc(nleaves, sizeof(*leaves));
    }
    if (leaves) {
        nleaves = 0;
        for (f = rt->pending; f; f = f->pnext) {
            if (f->waiter && f->waiter->state == DQ__CORO_SUSPENDED
                && f->waiter->waiting_on == f)
            {
                leaves[nleaves++] = dq_future_ref(f);
            }
        }
    } else {
        nleaves = 0;
    }
    for (i = 0; i < nleaves; i++) {
        (void) dq__future_fail(leaves[i], DQ_EDEADLOCK, 0,
                               text ? strdup(text) : NULL, __FILE__,
                               __LINE__, "dq_future_wait");
        dq_future_unref(leaves[i]);
    }
    free(leaves);
    for (i = 0; nleaves == 0 && i < n; i++) {
        f = fs[i];
        if (f->state != DQ_FUTURE_DONE) {
            dq_future_ref(f);
            (void) dq__future_fail(f, DQ_EDEADLOCK, 0,
                                   text ? strdup(text) : NULL, __FILE__,
                                   __LINE__, "dq_future_wait");
            dq_future_unref(f);
        }
    }
    free(text);
}

static int
dq__wait_plain(dq__rt_t *rt, dq_future_t *const *fs, size_t n, int mode)
{
    long idx;
    int  alive;

    if (rt->dispatching) {
        return DQ_ENOTASKLET;   /* would re-enter uv_run from a callback */
    }
    while ((idx = dq__wait_ready(fs, n, mode)) < 0) {
        alive = uv_run(rt->loop, UV_RUN_ONCE);
        if (!alive && rt->rq_head == NULL
            && dq__wait_ready(fs, n, mode) < 0)
        {
            dq__deadlock(rt, fs, n);
        }
    }
    return (int) idx;
}

static int
dq__wait(dq_future_t *const *fs, size_t n, int mode)
{
    dq__rt_t *rt = dq__rt_get();

    if (rt == NULL) {
        return DQ_ENOTASKLET;   /* no runtime on this thread */
    }
    if (n == 0) {
        return DQ_EINVAL;
    }
    return rt->current != &rt->main ? dq__wait_tasklet(rt, fs, n, mode)
                                    : dq__wait_plain(rt, fs, n, mode);
}

int
dq_future_wait(dq_future_t *f)
{
    int rc = dq__wait(&f, 1, DQ__WAIT_ANY);

    if (rc < 0 && rc != DQ_EDEADLOCK) {
        return rc;
    }
    return dq_future_check_success(f);
}

int
dq_future_wait_any(dq_future_t *const *fs, size_t n)
{
    return dq__wait(fs, n, DQ__WAIT_ANY);
}

int
dq_future_wait_all(dq_future_t *const *fs, size_t n)
{
    size_t i;
    int    rc = dq__wait(fs, n, DQ__WAIT_ALL);

    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < n; i++) {
        if ((rc = dq_future_check_success(fs[i])) != DQ_OK) {
            return rc;
        }
    }
    return DQ_OK;
}
