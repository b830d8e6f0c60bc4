/*
 * deferred-worker — DQ_FN_TASKLET task functions run as tasklets on the
 * child's loop (see tasklet_task.h for the contract).
 *
 * Slots: a child claims up to `concurrency` tasks; the first time a
 * tasklet task shows up, `tasklet_concurrency` more claim slots are added
 * (so a worker without tasklet functions never holds more leases than its
 * pool can run). At most tasklet_concurrency tasklet tasks run at once;
 * more wait here in claim order.
 *
 * A task function returns its dq_task_result_t from inside the coroutine;
 * the body stores it as the tasklet's integer result. The toplevel future
 * then waits for fire-and-forget work of the tree, and its loop callback
 * hands the task back to dispatch.c. A toplevel that fails (no stack could
 * be mapped, or the runtime shut down under it) fails the task with that
 * error, to be retried.
 *
 * Run time limit (the queue's `timeout` / `function_timeout`, as for plain
 * functions in timeout.c): a coroutine can be stopped where a thread
 * cannot, at its waits. Past the limit the task's context is canceled —
 * what its tasklets wait on fails with DQ_ECANCELED, their sleeps end, any
 * further wait returns DQ_ECANCELED at once — and when the tree has
 * unwound the task counts as failed ("timed out"), retried with backoff or
 * buried like any failure. The child keeps running (no replacement
 * needed, unlike a stuck pool thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <deferred/tasklet.h>

#include "child_impl.h"
#include "config.h"
#include "tasklet_host.h"
#include "tasklet_task.h"

typedef struct {
    dq_child_t  *ch;
    size_t       running;
    size_t       limit;
    int          seen;        /* a tasklet task arrived: slots were added */
    dq_task_t  **wait;        /* FIFO of tasks waiting for a slot */
    size_t       head, len, cap;
} dq_tasklet_child_t;

/* The child's tasklet state hangs off this thread's runtime. */
static dq_tasklet_child_t *
dq__tk(void)
{
    return dq__tasklet_host();
}

static void
dq__tk_log(int level, const char *msg)
{
    dq_logf(level, "tasklet: %s", msg);
}

static void
dq__tk_redis_cb(dq_conn_t *r, redisReply *reply, const char *errstr,
                void *data)
{
    (void) r;
    dq__redis_reply(data, reply, errstr);
}

static int
dq__tk_redis_send(void *conn, int argc, const char **argv,
                  const size_t *argvlen, void *op)
{
    dq_child_t *ch = conn;

    if (ch->cmd_conn == NULL) {
        return -1;
    }
    return dq_conn_send(ch->cmd_conn, argc, argv, argvlen, DQ_CMD_TIMEOUT_MS,
                        dq__tk_redis_cb, op);
}

int
dq_tasklet_child_init(dq_child_t *ch)
{
    dq_tasklet_child_t *tk;
    dq_tasklet_opts_t   opts;
    int                 rc;

    tk = calloc(1, sizeof(*tk));
    if (tk == NULL) {
        dq_log_error("tasklets: out of memory");
        return -1;
    }
    tk->ch = ch;
    tk->limit = ch->conf->tasklet_concurrency > 0
                ? (size_t) ch->conf->tasklet_concurrency : 1;
    memset(&opts, 0, sizeof(opts));
    opts.stack_size = ch->conf->tasklet_stack;
    rc = dq_tasklet_init(&ch->loop, &opts);
    if (rc != DQ_OK) {
        dq_log_error("tasklets: cannot set up the runtime: %s",
                     dq_tasklet_strerror(rc));
        free(tk);
        return -1;
    }
    dq_tasklet_set_log(dq__tk_log);
    dq__tasklet_set_redis_sender(dq__tk_redis_send, ch);
    dq__tasklet_set_host(tk);
    return 0;
}

/* ------------------------------------------------------------- running */

static void
dq__tk_body(dq_future_t *self, void *arg)
{
    dq_task_t *t = arg;

    dq_future_set_int(self, (int64_t) dq_task_execute(t));
}

static void dq__tk_run(dq_tasklet_child_t *tk, dq_task_t *t);

static void
dq__tk_next(dq_tasklet_child_t *tk)
{
    dq_task_t *t;

    while (tk->len && tk->running < tk->limit && !tk->ch->stopping) {
        t = tk->wait[tk->head++];
        tk->len--;
        if (tk->len == 0) {
            tk->head = 0;
        }
        dq__tk_run(tk, t);
    }
}

/* One tasklet task running: its toplevel's context and its time limit. */
typedef struct {
    uv_timer_t    timer;
    dq_task_t    *t;
    dq_future_t  *f;           /* its toplevel future (borrowed) */
    dq_context_t *ctx;
    int64_t       limit_ms;
    int           timed_out;
} dq__tk_run_t;

static void
dq__tk_run_close(uv_handle_t *h)
{
    free(h->data);
}

static void
dq__tk_timeout(uv_timer_t *timer)
{
    dq__tk_run_t *run = timer->data;
    char          msg[128];

    if (dq_future_done(run->f)) {
        return;                /* finished; its report is already queued */
    }
    run->timed_out = 1;
    snprintf(msg, sizeof(msg), "timed out after %lld ms",
             (long long) run->limit_ms);
    dq_log_warn("tasklet task %s (queue %s, function %s) %s: canceling what "
                "it waits on", run->t->id, run->t->queue, run->t->func, msg);
    dq__context_cancel(run->ctx, DQ_ECANCELED, msg);
}

static void
dq__tk_done(dq_future_t *f, void *arg)
{
    dq__tk_run_t       *run = arg;
    dq_task_t          *t = run->t;
    dq_child_t         *ch = t->q->ch;
    dq_tasklet_child_t *tk = dq__tk();
    int64_t             r = DQ_TASK_FAIL;
    char                buf[400];
    int                 rc;

    rc = dq_future_get_int(f, &r);
    if (run->timed_out) {
        /* like a plain function past its limit: failed, retried later */
        snprintf(t->error, sizeof(t->error), "timed out after %lld ms (run "
                 "time limit); the tasklet was canceled",
                 (long long) run->limit_ms);
        r = DQ_TASK_FAIL;
    } else if (rc != DQ_OK) {
        dq_future_format_exception(f, buf, sizeof(buf));
        snprintf(t->error, sizeof(t->error), "tasklet failed: %s", buf);
        r = DQ_TASK_FAIL;
    }
    t->result = (dq_task_result_t) r;
    t->tk_run = NULL;
    tk->running--;
    dq_future_unref(f);
    dq_context_unref(run->ctx);
    run->ctx = NULL;
    if (run->limit_ms > 0) {
        uv_timer_stop(&run->timer);
        uv_close((uv_handle_t *) &run->timer, dq__tk_run_close);
    } else {
        free(run);
    }
    dq_dispatch_done(ch, t, 0);
    dq__tk_next(tk);
}

static void
dq__tk_run(dq_tasklet_child_t *tk, dq_task_t *t)
{
    dq__tk_run_t *run = calloc(1, sizeof(*run));
    dq_future_t  *f = NULL;

    t->start_loop_ms = uv_now(&tk->ch->loop);
    t->ran = 1;
    dq_child_started(t);
    tk->running++;
    if (run != NULL) {
        run->t = t;
        run->limit_ms = t->q ? dq_conf_timeout(tk->ch->conf, t->q->qc, t->func)
                             : 0;
        f = dq__toplevel_start(dq__tk_body, t, t->func, __FILE__, __LINE__,
                               "dq_tasklet_child_start", &run->ctx);
    }
    if (f == NULL || dq_future_add_callback(f, dq__tk_done, run) != DQ_OK) {
        dq_future_unref(f);
        if (run) {
            dq_context_unref(run->ctx);
            free(run);
        }
        tk->running--;
        snprintf(t->error, sizeof(t->error), "cannot start the tasklet: out "
                 "of memory or stacks");
        t->result = DQ_TASK_FAIL;
        dq_dispatch_done(tk->ch, t, 0);
        return;
    }
    run->f = f;
    if (!dq_future_done(f)) {
        t->tk_run = run;       /* dq_tasklet_task_lease_lost may cancel it */
    }
    if (run->limit_ms > 0 && !dq_future_done(f)) {
        uv_timer_init(&tk->ch->loop, &run->timer);
        run->timer.data = run;
        uv_timer_start(&run->timer, dq__tk_timeout, (uint64_t) run->limit_ms,
                       0);
    } else {
        run->limit_ms = 0;     /* done already: no timer to close */
    }
    /* the reference on f is dropped by dq__tk_done */
}

void
dq_tasklet_child_start(dq_child_t *ch, dq_task_t *t)
{
    dq_tasklet_child_t *tk = dq__tk();

    if (tk == NULL && dq_tasklet_child_init(ch) == 0) {
        tk = dq__tk();             /* set up at the first tasklet task */
    }
    if (tk == NULL) {
        snprintf(t->error, sizeof(t->error), "function \"%s\" is a tasklet "
                 "and this worker has no tasklet runtime", t->func);
        t->result = DQ_TASK_FAIL;
        dq_dispatch_done(ch, t, 0);
        return;
    }
    if (!tk->seen) {
        tk->seen = 1;
        ch->concurrency += tk->limit;      /* claim for the tasklets too */
    }
    if (tk->running < tk->limit && tk->len == 0) {
        dq__tk_run(tk, t);
        return;
    }
    if (tk->head + tk->len == tk->cap) {
        if (tk->head) {
            memmove(tk->wait, tk->wait + tk->head, tk->len * sizeof(*tk->wait));
            tk->head = 0;
        }
        if (tk->len == tk->cap) {
            size_t      cap = tk->cap ? tk->cap * 2 : 64;
            dq_task_t **w = realloc(tk->wait, cap * sizeof(*w));

            if (w == NULL) {
                snprintf(t->error, sizeof(t->error), "out of memory queueing "
                         "a tasklet task");
                t->result = DQ_TASK_FAIL;
                dq_dispatch_done(ch, t, 0);
                return;
            }
            tk->wait = w;
            tk->cap = cap;
        }
    }
    tk->wait[tk->head + tk->len++] = t;
}

int
dq_tasklet_task_lease_lost(dq_child_t *ch, dq_task_t *t)
{
    dq_tasklet_child_t *tk = dq__tk();
    dq__tk_run_t       *run = t->tk_run;
    size_t              i;

    if (tk == NULL) {
        return 0;
    }
    if (run != NULL) {
        t->lease_lost = 1;
        dq__context_cancel(run->ctx, DQ_ECANCELED, "lease lost");
        return 1;
    }
    for (i = 0; i < tk->len; i++) {
        if (tk->wait[tk->head + i] == t) {
            memmove(&tk->wait[tk->head + i], &tk->wait[tk->head + i + 1],
                    (tk->len - i - 1) * sizeof(*tk->wait));
            tk->len--;
            t->lease_lost = 1;
            dq_dispatch_done(ch, t, 1);
            return 1;
        }
    }
    return 0;
}

void
dq_tasklet_child_stop(dq_child_t *ch)
{
    dq_tasklet_child_t *tk = dq__tk();
    dq_task_t          *t;

    if (tk == NULL) {
        return;
    }
    while (tk->len) {
        t = tk->wait[tk->head++];
        tk->len--;
        dq_dispatch_done(ch, t, 1);
    }
    tk->head = 0;
}

void
dq_tasklet_child_fini(dq_child_t *ch)
{
    dq_tasklet_child_t *tk = dq__tk();

    if (tk == NULL) {
        return;
    }
    (void) ch;
    dq__tasklet_set_host(NULL);
    dq_tasklet_shutdown();
    free(tk->wait);
    free(tk);
}
