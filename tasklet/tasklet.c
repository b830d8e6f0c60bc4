/*
 * Tasklets: the per-thread runtime, starting and ending tasklets,
 * contexts, synctasklet/toplevel, error texts and the unhandled-error log.
 *
 * A tasklet is a coroutine (coro.c) running dq_tasklet_fn(self, arg). It
 * holds one reference on its own future and one on its context until it
 * ends; it counts as one pending operation of that context (toplevel waits
 * for the count to reach zero). A tasklet starts synchronously (runs until
 * its first wait on a future that is not done) and is later resumed from
 * the run queue when what it waits on completes (future_wait.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasklet_int.h"

__thread dq__rt_t *dq__rt;

/*
 * Set once some thread has called dq_tasklet_init() on a loop of its own.
 * From then on no thread gets a runtime implicitly: a plain task function
 * on a worker pool thread that calls dq_sleep() must get an error, not a
 * second runtime driving uv_default_loop() from a pool thread. Process-wide
 * on purpose (it describes the process, not a thread); written once.
 */
static int dq__explicit_loop;

/* The runtime's own codes here; the shared DQ_E* codes by dq_strerror (one
 * text per code everywhere); any other code is an application's. */
const char *
dq_tasklet_strerror(int code)
{
    switch (code) {
    case DQ_EEOF:        return "end of queue";
    case DQ_EDEADLOCK:   return "deadlock";
    case DQ_EPENDING:    return "future not done";
    case DQ_ESTATE:      return "invalid state";
    case DQ_ENOTASKLET:  return "not allowed in this context";
    case DQ_ECANCELED:   return "canceled";
    default:
        return code <= DQ_OK && code >= DQ_EDECODE ? dq_strerror(code)
                                                   : "application error";
    }
}

/* ------------------------------------------------------------- runtime */

int
dq_tasklet_init(uv_loop_t *loop, const dq_tasklet_opts_t *opts)
{
    dq__rt_t *rt;
    int       rc;

    if (dq__rt) {
        return DQ_ESTATE;
    }
    rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        return DQ_ENOMEM;
    }
    rt->loop = loop ? loop : uv_default_loop();
    rt->rq_tail = &rt->rq_head;
    rc = dq__coro_setup(rt, opts);
    if (rc != DQ_OK) {
        free(rt);
        return rc;
    }
    if (uv_idle_init(rt->loop, &rt->idle) != 0) {
        dq__coro_teardown(rt);
        free(rt);
        return DQ_ERR;
    }
    rt->idle.data = rt;   /* started only while the run queue holds work */
    dq__rt = rt;
    if (loop != NULL && loop != uv_default_loop()) {
        __atomic_store_n(&dq__explicit_loop, 1, __ATOMIC_RELEASE);
    }
    return DQ_OK;
}


dq__rt_t *
dq__rt_get(void)
{
    if (dq__rt == NULL
        && !__atomic_load_n(&dq__explicit_loop, __ATOMIC_ACQUIRE))
    {
        (void) dq_tasklet_init(NULL, NULL);
    }
    return dq__rt;
}

void *
dq__tasklet_host(void)
{
    return dq__rt ? dq__rt->host : NULL;
}

void
dq__tasklet_set_host(void *host)
{
    if (dq__rt != NULL) {
        dq__rt->host = host;
    }
}

uv_loop_t *
dq_tasklet_loop(void)
{
    dq__rt_t *rt = dq__rt_get();

    return rt ? rt->loop : NULL;
}

void
dq_tasklet_set_log(dq_tasklet_log_fn fn)
{
    dq__rt_t *rt = dq__rt_get();

    if (rt) {
        rt->log = fn;
    }
}

int
dq_tasklet_add_flow_exception(int code)
{
    dq__rt_t *rt = dq__rt_get();

    if (code == 0) {
        return DQ_EINVAL;
    }
    if (rt == NULL) {
        return DQ_ENOTASKLET;
    }
    if (dq__is_flow_code(code)) {
        return DQ_OK;
    }
    if (rt->nflow == sizeof(rt->flow_codes) / sizeof(rt->flow_codes[0])) {
        return DQ_ENOMEM;
    }
    rt->flow_codes[rt->nflow++] = code;
    return DQ_OK;
}

int
dq__is_flow_code(int code)
{
    size_t i;

    if (code == DQ_EEOF) {
        return 1;
    }
    for (i = 0; dq__rt && i < dq__rt->nflow; i++) {
        if (dq__rt->flow_codes[i] == code) {
            return 1;
        }
    }
    return 0;
}

void
dq__log_unhandled(const dq_future_t *f)
{
    char  buf[1024];
    char *line;

    dq_future_format_exception(f, buf, sizeof(buf));
    line = dq__strf("unhandled exception in %s created at %s:%d in %s(): "
                    "%s", f->what, f->site.file, f->site.line, f->site.func,
                    buf);
    if (dq__rt && dq__rt->log) {
        dq__rt->log(0, line ? line : buf);
    } else {
        fprintf(stderr, "deferred tasklet: %s\n", line ? line : buf);
    }
    free(line);
}

void
dq_tasklet_stats(dq_tasklet_stats_t *out)
{
    dq__rt_t *rt = dq__rt_get();

    memset(out, 0, sizeof(*out));
    if (rt == NULL) {
        return;
    }
    out->futures_pending = rt->npending;
    out->tasklets_live = rt->tasklets_live;
    out->tasklets_started = rt->tasklets_started;
    out->stacks_mapped = rt->stacks_mapped;
    out->switches = rt->switches;
    out->stack_size = rt->stack_size;
    out->backend = dq__coro_backend_name(rt->backend);
}

static void
dq__rt_close_cb(uv_handle_t *h)
{
    dq__rt_t *rt = h->data;

    free(rt);
}

void
dq_tasklet_shutdown(void)
{
    dq__rt_t    *rt = dq__rt;
    dq_future_t *f, *next;
    dq__node_t  *n;
    int          rounds;

    if (rt == NULL || rt->current != &rt->main) {
        return;
    }
    /* Timers in flight end now (their futures fail with DQ_ECANCELED);
     * then every tasklet still suspended gets DQ_ECANCELED from what it
     * waits on and runs to its end. */
    dq__sleep_cancel_all(rt);
    for (rounds = 0; rounds < 100000; rounds++) {
        while (dq__rq_drain(rt)) {
            /* resumed tasklets may queue more */
        }
        for (f = rt->pending; f; f = f->pnext) {
            if (f->waiter && f->waiter->state == DQ__CORO_SUSPENDED
                && f->waiter->waiting_on == f)
            {
                break;
            }
        }
        if (f == NULL) {
            break;
        }
        dq_future_ref(f);
        dq_future_set_exception(f, DQ_ECANCELED, "tasklet runtime shut down");
        dq_future_unref(f);
    }
    /* Futures still referenced by callers outlive the runtime unlisted. */
    for (f = rt->pending; f; f = next) {
        next = f->pnext;
        f->listed = 0;
        f->pprev = f->pnext = NULL;
    }
    rt->pending = NULL;
    while ((n = rt->free_nodes) != NULL) {
        rt->free_nodes = n->next;
        free(n);
    }
    if (rt->thread_ctx) {
        dq_context_unref(rt->thread_ctx);
        rt->thread_ctx = NULL;
    }
    dq__coro_teardown(rt);
    dq__rt = NULL;
    uv_close((uv_handle_t *) &rt->idle, dq__rt_close_cb);
    uv_run(rt->loop, UV_RUN_NOWAIT);
}

/* ------------------------------------------------------------ contexts */

dq_context_t *
dq_context_make(void)
{
    dq_context_t *ctx = calloc(1, sizeof(*ctx));

    if (ctx) {
        ctx->refs = 1;
    }
    return ctx;
}

dq_context_t *
dq_context_ref(dq_context_t *ctx)
{
    if (ctx) {
        ctx->refs++;
    }
    return ctx;
}

void
dq_context_unref(dq_context_t *ctx)
{
    dq__slot_t *s;

    if (ctx == NULL || --ctx->refs > 0) {
        return;
    }
    while ((s = ctx->slots) != NULL) {
        ctx->slots = s->next;
        dq_value_clear(&s->v);
        free(s);
    }
    dq_future_unref(ctx->drain);
    dq_future_unref(ctx->main);
    free(ctx->cancel_msg);
    free(ctx);
}

dq_context_t *
dq_context_get(void)
{
    dq__rt_t *rt = dq__rt_get();

    if (rt == NULL) {
        return NULL;
    }
    if (rt->current != &rt->main) {
        return rt->current->ctx;
    }
    if (rt->thread_ctx == NULL) {
        rt->thread_ctx = dq_context_make();
    }
    return rt->thread_ctx;
}

void
dq_context_set(dq_context_t *ctx)
{
    dq__rt_t      *rt = dq__rt_get();
    dq_context_t **slot;

    if (rt == NULL || ctx == NULL) {
        dq_context_unref(ctx);
        return;
    }
    slot = rt->current != &rt->main ? &rt->current->ctx : &rt->thread_ctx;
    dq_context_unref(*slot);
    *slot = ctx;
}

int
dq_context_slot_set(dq_context_t *ctx, const char *name, dq_value_t v)
{
    dq__slot_t *s;
    size_t      len = strlen(name);

    for (s = ctx->slots; s; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            dq_value_clear(&s->v);
            s->v = v;
            return DQ_OK;
        }
    }
    s = malloc(sizeof(*s) + len + 1);
    if (s == NULL) {
        dq_value_clear(&v);
        return DQ_ENOMEM;
    }
    memcpy(s->name, name, len + 1);
    s->v = v;
    s->next = ctx->slots;
    ctx->slots = s;
    return DQ_OK;
}

const dq_value_t *
dq_context_slot_get(const dq_context_t *ctx, const char *name)
{
    const dq__slot_t *s;

    for (s = ctx->slots; s; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            return &s->v;
        }
    }
    return NULL;
}

size_t
dq_context_pending(const dq_context_t *ctx)
{
    return ctx->pending;
}

void
dq__context_op_start(dq_context_t *ctx)
{
    ctx->pending++;
}

/* toplevel: once everything started in the tree has ended (and its main
 * tasklet is known), the drain future gets the main tasklet's outcome. */
static void
dq__context_try_drain(dq_context_t *ctx)
{
    dq_future_t *drain = ctx->drain;

    if (ctx->pending == 0 && drain && ctx->main
        && drain->state != DQ_FUTURE_DONE)
    {
        ctx->drain = NULL;
        dq__future_pass(drain, ctx->main, NULL, 0, NULL);
        dq_future_unref(drain);
    }
}

void
dq__context_cancel(dq_context_t *ctx, int code, const char *msg)
{
    dq__rt_t     *rt = dq__rt;
    dq_future_t  *f;

    if (rt == NULL || ctx->canceled) {
        return;
    }
    ctx->canceled = code ? code : DQ_ECANCELED;
    ctx->cancel_msg = msg ? strdup(msg) : NULL;
    dq__sleep_cancel_ctx(rt, ctx, ctx->canceled, msg);
    /* wake the tree's tasklets still suspended on something else: their
     * wait sees ctx->canceled (waking only queues: the list stays put) */
    for (f = rt->pending; f; f = f->pnext) {
        if (f->waiter && f->waiter->state == DQ__CORO_SUSPENDED
            && f->waiter->waiting_on == f && f->waiter->home == ctx
            && f->waiter->wake == 1)
        {
            dq__tasklet_wake(f->waiter);
        }
    }
}

void
dq__context_op_end(dq_context_t *ctx)
{
    ctx->pending--;
    dq__context_try_drain(ctx);
}

/* ------------------------------------------------------------ tasklets */

static void
dq__tasklet_entry(dq__coro_t *c)
{
    dq__rt_t     *rt = dq__rt;
    dq_future_t  *self = c->future;
    dq_context_t *ctx;

    c->fn(self, c->arg);
    if (self->state != DQ_FUTURE_DONE) {
        dq_future_set_result(self, DQ_VALUE_NONE);
    }
    ctx = c->home;             /* not c->ctx: fn may have set another */
    dq_context_unref(c->ctx);
    c->ctx = NULL;
    c->home = NULL;
    c->future = NULL;
    rt->tasklets_live--;
    dq_future_unref(self);
    dq__context_op_end(ctx);
    dq_context_unref(ctx);
    dq__coro_exit(rt);
}

dq_future_t *
dq_tasklet_loc(dq_tasklet_fn fn, void *arg, const char *name,
               const char *file, int line, const char *func)
{
    dq__rt_t     *rt = dq__rt_get();
    dq__coro_t   *c;
    dq_future_t  *f;
    dq_context_t *ctx;

    if (rt == NULL || (ctx = dq_context_get()) == NULL) {
        return NULL;
    }
    f = dq__future_alloc(sizeof(dq_future_t), DQ__FUT_TASKLET, name, file,
                         line, func);
    if (f == NULL) {
        return NULL;
    }
    c = dq__coro_get(rt);
    if (c == NULL) {
        dq_future_unref(f);
        return NULL;
    }
    f->state = DQ_FUTURE_RUNNING;
    c->future = dq_future_ref(f);
    c->fn = fn;
    c->arg = arg;
    c->name = name;
    c->ctx = dq_context_ref(ctx);
    c->home = dq_context_ref(ctx);
    dq__context_op_start(ctx);
    rt->tasklets_live++;
    rt->tasklets_started++;
    dq__coro_start(rt, c, dq__tasklet_entry);
    dq__coro_resume(rt, c);
    return f;
}

int
dq_in_tasklet(void)
{
    return dq__rt && dq__rt->current != &dq__rt->main;
}

dq_future_t *
dq_tasklet_current(void)
{
    return dq_in_tasklet() ? dq__rt->current->future : NULL;
}

dq_future_t *
dq_synctasklet_loc(dq_tasklet_fn fn, void *arg, const char *name,
                   const char *file, int line, const char *func)
{
    dq_future_t *f = dq_tasklet_loc(fn, arg, name, file, line, func);

    if (f) {
        (void) dq_future_wait(f);
    }
    return f;
}

dq_future_t *
dq_toplevel_loc(dq_tasklet_fn fn, void *arg, const char *name,
                const char *file, int line, const char *func)
{
    return dq__toplevel_start(fn, arg, name, file, line, func, NULL);
}

dq_future_t *
dq__toplevel_start(dq_tasklet_fn fn, void *arg, const char *name,
                   const char *file, int line, const char *func,
                   dq_context_t **ctx_out)
{
    dq__rt_t     *rt = dq__rt_get();
    dq_context_t *ctx, *saved, **slot;
    dq_future_t  *main, *top;

    if (ctx_out) {
        *ctx_out = NULL;
    }
    if (rt == NULL || (ctx = dq_context_make()) == NULL) {
        return NULL;
    }
    top = dq__future_alloc(sizeof(dq_future_t), DQ__FUT_TOPLEVEL, name,
                           file, line, func);
    if (top == NULL) {
        dq_context_unref(ctx);
        return NULL;
    }
    top->state = DQ_FUTURE_RUNNING;
    ctx->drain = dq_future_ref(top);

    /* the tasklet inherits ctx; the caller keeps its own context */
    (void) dq_context_get();
    slot = rt->current != &rt->main ? &rt->current->ctx : &rt->thread_ctx;
    saved = *slot;
    *slot = ctx;
    main = dq_tasklet_loc(fn, arg, name, file, line, func);
    *slot = saved;
    if (main == NULL) {
        dq_future_set_exception(top, DQ_ENOMEM, "cannot start tasklet %s",
                                name);
        dq_context_unref(ctx);
        return top;
    }
    ctx->main = main;
    if (ctx_out) {
        *ctx_out = dq_context_ref(ctx);
    }
    dq_context_ref(ctx);
    dq__context_try_drain(ctx);
    dq_context_unref(ctx);
    dq_context_unref(ctx);     /* the tasklets of the tree hold it now */
    return top;
}

dq_future_t *
dq_toplevel_sync_loc(dq_tasklet_fn fn, void *arg, const char *name,
                     const char *file, int line, const char *func)
{
    dq_future_t *f = dq_toplevel_loc(fn, arg, name, file, line, func);

    if (f) {
        (void) dq_future_wait(f);
    }
    return f;
}
