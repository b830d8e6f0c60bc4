/*
 * deferred-worker — a child's thread pool for plain task functions (see
 * pool.h for the contract and why it is not libuv's pool).
 *
 * Invariants: `head`/`tail`/`idle`/`quit` only under `mu`; a task is in at
 * most one of (the queue, a thread's hands, the done stack); `done` is a
 * Treiber stack pushed by threads and emptied whole by the loop thread
 * (one exchange), so there is no ABA; the pusher that finds it empty
 * sends the async, so at most one uv_async_send per drain.
 */
#include <stdlib.h>

#include "pool.h"
#include "task_impl.h"

struct dq_pool_s {
    uv_loop_t       *loop;
    uv_async_t       async;
    uv_mutex_t       mu;
    uv_cond_t        cv;
    dq_task_t       *head, *tail;   /* queued, not started (mu) */
    int              idle;          /* threads waiting on cv (mu) */
    int              quit;          /* (mu) */
    dq_task_t       *done;          /* finished, newest first (atomic) */
    size_t           busy;          /* queued + running (loop thread) */
    dq_pool_run_cb   run;
    dq_pool_done_cb  done_cb;
    void            *data;
    int              nthreads;
    uv_thread_t     *threads;
};

static void
dq__pool_thread(void *arg)
{
    dq_pool_t *p = arg;
    dq_task_t *t, *old;
    int        more;

    for (;;) {
        uv_mutex_lock(&p->mu);
        while (p->head == NULL && !p->quit) {
            p->idle++;
            uv_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (p->head == NULL) {
            uv_mutex_unlock(&p->mu);
            return;                                 /* quit */
        }
        t = p->head;
        p->head = t->pool_next;
        if (p->head == NULL) {
            p->tail = NULL;
        }
        /* more queued and a thread asleep: wake it (the chain of wake-ups
         * is paid by the pool threads, not by the loop) */
        more = p->head != NULL && p->idle > 0;
        uv_mutex_unlock(&p->mu);
        if (more) {
            uv_cond_signal(&p->cv);
        }

        p->run(t);

        old = __atomic_load_n(&p->done, __ATOMIC_RELAXED);
        do {
            t->pool_next = old;
        } while (!__atomic_compare_exchange_n(&p->done, &old, t, 1,
                                              __ATOMIC_RELEASE,
                                              __ATOMIC_RELAXED));
        if (old == NULL) {
            uv_async_send(&p->async);   /* the loop drains them all */
        }
    }
}

static void
dq__pool_async(uv_async_t *a)
{
    dq_pool_t *p = a->data;
    dq_task_t *list, *t, *next, *fifo = NULL;

    list = __atomic_exchange_n(&p->done, NULL, __ATOMIC_ACQUIRE);
    for (t = list; t != NULL; t = next) {        /* oldest first */
        next = t->pool_next;
        t->pool_next = fifo;
        fifo = t;
    }
    dq_log_hold();                  /* their lines in one write */
    for (t = fifo; t != NULL; t = next) {
        next = t->pool_next;
        t->pool_next = NULL;
        p->busy--;
        p->done_cb(t, p->data);
    }
    dq_log_release();
}

dq_pool_t *
dq_pool_new(uv_loop_t *loop, int nthreads, dq_pool_run_cb run,
            dq_pool_done_cb done, void *data)
{
    dq_pool_t *p;
    int        i;

    if (nthreads < 1) {
        nthreads = 1;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->threads = calloc((size_t) nthreads, sizeof(*p->threads));
    if (p->threads == NULL || uv_mutex_init(&p->mu) != 0) {
        free(p->threads);
        free(p);
        return NULL;
    }
    if (uv_cond_init(&p->cv) != 0) {
        uv_mutex_destroy(&p->mu);
        free(p->threads);
        free(p);
        return NULL;
    }
    p->loop = loop;
    p->run = run;
    p->done_cb = done;
    p->data = data;
    if (uv_async_init(loop, &p->async, dq__pool_async) != 0) {
        uv_cond_destroy(&p->cv);
        uv_mutex_destroy(&p->mu);
        free(p->threads);
        free(p);
        return NULL;
    }
    p->async.data = p;
    for (i = 0; i < nthreads; i++) {
        if (uv_thread_create(&p->threads[i], dq__pool_thread, p) != 0) {
            dq_log_error("cannot start pool thread %d of %d", i + 1,
                         nthreads);
            break;
        }
        p->nthreads++;
    }
    if (p->nthreads == 0) {
        dq_pool_close(p);
        return NULL;
    }
    return p;
}

void
dq_pool_submit(dq_pool_t *p, dq_task_t **tasks, size_t n)
{
    size_t i;
    int    wake;

    if (n == 0) {
        return;
    }
    for (i = 0; i + 1 < n; i++) {
        tasks[i]->pool_next = tasks[i + 1];
    }
    tasks[n - 1]->pool_next = NULL;
    p->busy += n;

    uv_mutex_lock(&p->mu);
    if (p->tail != NULL) {
        p->tail->pool_next = tasks[0];
    } else {
        p->head = tasks[0];
    }
    p->tail = tasks[n - 1];
    wake = p->idle > 0;
    uv_mutex_unlock(&p->mu);
    if (wake) {
        uv_cond_signal(&p->cv);
    }
}

size_t
dq_pool_cancel(dq_pool_t *p, void (*cb)(dq_task_t *t, void *data),
               void *data)
{
    dq_task_t *list, *t, *next;
    size_t     n = 0;

    if (p == NULL) {
        return 0;
    }
    uv_mutex_lock(&p->mu);
    list = p->head;
    p->head = p->tail = NULL;
    uv_mutex_unlock(&p->mu);
    for (t = list; t != NULL; t = next) {
        next = t->pool_next;
        t->pool_next = NULL;
        p->busy--;
        n++;
        cb(t, data);
    }
    return n;
}

size_t
dq_pool_busy(const dq_pool_t *p)
{
    return p ? p->busy : 0;
}

static void
dq__pool_closed(uv_handle_t *h)
{
    dq_pool_t *p = h->data;

    uv_cond_destroy(&p->cv);
    uv_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

void
dq_pool_close(dq_pool_t *p)
{
    int i;

    if (p == NULL) {
        return;
    }
    uv_mutex_lock(&p->mu);
    p->quit = 1;
    uv_mutex_unlock(&p->mu);
    uv_cond_broadcast(&p->cv);
    for (i = 0; i < p->nthreads; i++) {
        uv_thread_join(&p->threads[i]);
    }
    uv_close((uv_handle_t *) &p->async, dq__pool_closed);
}
