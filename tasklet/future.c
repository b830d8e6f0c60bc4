/*
 * Futures: states, results and exceptions, callbacks, and the run queue
 * that runs loop callbacks.
 *
 * Completion (set_result / set_exception / propagate) happens once: the
 * future leaves rt->pending, its immediate callbacks run in order right
 * there, and its loop callbacks move to the run queue, each holding a
 * reference on the future, to run from the loop's idle phase. The run
 * queue is a FIFO of nodes taken from a free list, so a callback costs no
 * malloc once the list is warm; the idle handle is active while the queue
 * holds something and for one more loop iteration (so what the callbacks
 * started runs before the loop blocks), so an empty queue never keeps the
 * loop busy.
 */
#define _GNU_SOURCE 1
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasklet_int.h"

char *
dq__vstrf(const char *fmt, va_list ap)
{
    char *s;

    if (vasprintf(&s, fmt, ap) < 0) {
        return NULL;
    }
    return s;
}

char *
dq__strf(const char *fmt, ...)
{
    va_list ap;
    char   *s;

    va_start(ap, fmt);
    s = dq__vstrf(fmt, ap);
    va_end(ap);
    return s;
}

/* --------------------------------------------------------- run queue */

dq__node_t *
dq__node_get(dq__rt_t *rt)
{
    dq__node_t *n = rt->free_nodes;

    if (n) {
        rt->free_nodes = n->next;
        n->next = NULL;
        return n;
    }
    return calloc(1, sizeof(*n));
}

void
dq__node_put(dq__rt_t *rt, dq__node_t *n)
{
    n->f = NULL;
    n->arg = NULL;
    n->cb = NULL;
    n->next = rt->free_nodes;
    rt->free_nodes = n;
}

static void
dq__idle_cb(uv_idle_t *h)
{
    dq__rt_t *rt = h->data;

    dq__rq_drain(rt);
}

void
dq__rq_push_node(dq__rt_t *rt, dq__node_t *n)
{
    n->next = NULL;
    *rt->rq_tail = n;
    rt->rq_tail = &n->next;
    if (!rt->idle_on) {
        uv_idle_start(&rt->idle, dq__idle_cb);
        rt->idle_on = 1;
    }
}

int
dq__rq_push(dq__rt_t *rt, dq_future_cb cb, dq_future_t *f, void *arg)
{
    dq__node_t *n = dq__node_get(rt);

    if (n == NULL) {
        return DQ_ENOMEM;
    }
    n->cb = cb;
    n->f = f;
    n->arg = arg;
    n->immediate = 0;
    dq__rq_push_node(rt, n);
    return DQ_OK;
}

size_t
dq__rq_drain(dq__rt_t *rt)
{
    dq__node_t *n, *last = NULL;
    size_t      ran = 0;

    if (rt->rq_head == NULL) {
        if (rt->idle_on) {
            uv_idle_stop(&rt->idle);
            rt->idle_on = 0;
        }
        return 0;
    }

    /* Only what is queued now: callbacks queued while these run wait for
     * the next loop iteration, so I/O is never starved. */
    for (n = rt->rq_head; n; n = n->next) {
        last = n;
    }
    rt->dispatching++;
    while ((n = rt->rq_head) != NULL) {
        int          is_last = (n == last);
        int          embedded = (n->immediate == 2);
        dq_future_t *f = n->f;
        dq_future_cb cb = n->cb;
        void        *arg = n->arg;

        rt->rq_head = n->next;
        if (rt->rq_head == NULL) {
            rt->rq_tail = &rt->rq_head;
        }
        if (!embedded) {
            dq__node_put(rt, n);   /* before cb: cb may free its owner */
        }
        cb(f, arg);
        dq_future_unref(f);
        ran++;
        if (is_last) {
            break;
        }
    }
    rt->dispatching--;
    /* The idle handle stays active until a drain finds nothing to do: what
     * these callbacks started (a uv_check, say the worker's batched acks)
     * then runs in this iteration, because an active idle handle makes
     * the coming poll non-blocking. Stopping here would let the loop block
     * in epoll until the next unrelated event. */
    return ran;
}

/* ----------------------------------------------------------- futures */

dq_future_t *
dq__future_alloc(size_t size, dq__fut_kind_t kind, const char *what,
                 const char *file, int line, const char *func)
{
    dq__rt_t    *rt = dq__rt_get();
    dq_future_t *f;

    if (rt == NULL || (f = calloc(1, size)) == NULL) {
        return NULL;
    }
    f->refs = 1;
    f->kind = kind;
    f->state = DQ_FUTURE_PENDING;
    f->cbs_tail = &f->cbs;
    f->site.file = file;
    f->site.line = line;
    f->site.func = func;
    f->what = what ? what : "future";
    f->pnext = rt->pending;
    if (rt->pending) {
        rt->pending->pprev = f;
    }
    rt->pending = f;
    f->listed = 1;
    rt->npending++;
    return f;
}

dq_future_t *
dq_future_new_loc(const char *what, const char *file, int line,
                  const char *func)
{
    return dq__future_alloc(sizeof(dq_future_t), DQ__FUT_PLAIN, what, file,
                            line, func);
}

static void
dq__future_unlist(dq_future_t *f)
{
    dq__rt_t *rt = dq__rt;

    if (!f->listed) {
        return;
    }
    f->listed = 0;
    if (f->pprev) {
        f->pprev->pnext = f->pnext;
    } else if (rt) {
        rt->pending = f->pnext;
    }
    if (f->pnext) {
        f->pnext->pprev = f->pprev;
    }
    f->pprev = f->pnext = NULL;
    if (rt) {
        rt->npending--;
    }
}

dq_future_t *
dq_future_ref(dq_future_t *f)
{
    if (f) {
        f->refs++;
    }
    return f;
}

void
dq_future_unref(dq_future_t *f)
{
    dq__node_t *n;

    if (f == NULL || --f->refs > 0) {
        return;
    }
    if (f->state == DQ_FUTURE_DONE && f->exc_code && !f->seen && !f->flow
        && !dq__is_flow_code(f->exc_code))
    {
        dq__log_unhandled(f);
    }
    if (f->kind == DQ__FUT_MULTI || f->kind == DQ__FUT_QUEUE
        || f->kind == DQ__FUT_SERIAL || f->kind == DQ__FUT_REDUCING)
    {
        dq__multi_release(f);
    }
    dq__future_unlist(f);
    while ((n = f->cbs) != NULL) {
        f->cbs = n->next;
        if (dq__rt) {
            dq__node_put(dq__rt, n);
        } else {
            free(n);
        }
    }
    dq_value_clear(&f->result);
    free(f->exc_msg);
    free(f->tb);
    free(f);
}

dq_future_state_t
dq_future_state(const dq_future_t *f)
{
    return (dq_future_state_t) f->state;
}

int
dq_future_done(const dq_future_t *f)
{
    return f->state == DQ_FUTURE_DONE;
}

void
dq_future_set_running(dq_future_t *f)
{
    if (f->state == DQ_FUTURE_PENDING) {
        f->state = DQ_FUTURE_RUNNING;
    }
}

/* Mark done and fire the callbacks. */
static void
dq__future_complete(dq_future_t *f)
{
    dq__rt_t   *rt = dq__rt;
    dq__node_t *n;

    f->state = DQ_FUTURE_DONE;
    dq__future_unlist(f);
    dq_future_ref(f);              /* callbacks may drop the last one */
    while ((n = f->cbs) != NULL) {
        f->cbs = n->next;
        if (f->cbs == NULL) {
            f->cbs_tail = &f->cbs;
        }
        if (n->immediate || rt == NULL) {
            dq_future_cb cb = n->cb;
            void        *arg = n->arg;

            if (rt) {
                dq__node_put(rt, n);
            } else {
                free(n);
            }
            cb(f, arg);
        } else {
            n->f = dq_future_ref(f);
            dq__rq_push_node(rt, n);
        }
    }
    dq_future_unref(f);
}

int
dq_future_set_result(dq_future_t *f, dq_value_t v)
{
    if (f->state == DQ_FUTURE_DONE) {
        dq_value_clear(&v);
        return DQ_ESTATE;
    }
    f->result = v;
    dq__future_complete(f);
    return DQ_OK;
}

static int
dq__tb_push(dq_future_t *f, const char *file, int line, const char *func)
{
    dq_site_t *tb = realloc(f->tb, (f->ntb + 1) * sizeof(*tb));

    if (tb == NULL) {
        return DQ_ENOMEM;
    }
    tb[f->ntb].file = file;
    tb[f->ntb].line = line;
    tb[f->ntb].func = func;
    f->tb = tb;
    f->ntb++;
    return DQ_OK;
}

int
dq__future_fail(dq_future_t *f, int code, int flow, char *msg,
                const char *file, int line, const char *func)
{
    if (f->state == DQ_FUTURE_DONE) {
        free(msg);
        return DQ_ESTATE;
    }
    f->exc_code = code ? code : DQ_ERR;
    f->exc_msg = msg;
    f->flow = (uint8_t) flow;
    (void) dq__tb_push(f, file, line, func);
    dq__future_complete(f);
    return DQ_OK;
}

int
dq_future_set_exception_loc(dq_future_t *f, int code, const char *file,
                            int line, const char *func, const char *fmt, ...)
{
    va_list ap;
    char   *msg = NULL;

    if (fmt) {
        va_start(ap, fmt);
        msg = dq__vstrf(fmt, ap);
        va_end(ap);
    }
    return dq__future_fail(f, code, 0, msg, file, line, func);
}

int
dq_future_set_flow_exception_loc(dq_future_t *f, int code, const char *file,
                                 int line, const char *func,
                                 const char *fmt, ...)
{
    va_list ap;
    char   *msg = NULL;

    if (fmt) {
        va_start(ap, fmt);
        msg = dq__vstrf(fmt, ap);
        va_end(ap);
    }
    return dq__future_fail(f, code, 1, msg, file, line, func);
}

int
dq__future_pass(dq_future_t *f, const dq_future_t *from, const char *file,
                int line, const char *func)
{
    dq_future_t *src = (dq_future_t *) from;

    if (from->state != DQ_FUTURE_DONE) {
        return DQ_EPENDING;
    }
    if (f->state == DQ_FUTURE_DONE) {
        return DQ_ESTATE;
    }
    if (from->exc_code == 0) {
        return dq_future_set_result(f, dq_value_copy(&from->result));
    }
    src->seen = 1;      /* handed on: the receiver is responsible now */
    f->exc_code = from->exc_code;
    f->exc_msg = from->exc_msg ? strdup(from->exc_msg) : NULL;
    f->flow = from->flow;
    if (from->ntb) {
        f->tb = malloc(from->ntb * sizeof(dq_site_t));
        if (f->tb) {
            memcpy(f->tb, from->tb, from->ntb * sizeof(dq_site_t));
            f->ntb = from->ntb;
        }
    }
    if (file) {
        (void) dq__tb_push(f, file, line, func);
    }
    dq__future_complete(f);
    return DQ_OK;
}

int
dq_future_propagate_loc(dq_future_t *f, const dq_future_t *from,
                        const char *file, int line, const char *func)
{
    return dq__future_pass(f, from, file, line, func);
}

/* ------------------------------------------------------------ reading */

const dq_value_t *
dq_future_result(const dq_future_t *f)
{
    if (f->state != DQ_FUTURE_DONE || f->exc_code) {
        return NULL;
    }
    return &f->result;
}

int
dq_future_check_success(const dq_future_t *f)
{
    if (f->state != DQ_FUTURE_DONE) {
        return DQ_EPENDING;
    }
    ((dq_future_t *) f)->seen = 1;
    return f->exc_code;
}

int
dq_future_get_int(const dq_future_t *f, int64_t *out)
{
    int rc = dq_future_check_success(f);

    if (rc != DQ_OK) {
        return rc;
    }
    if (f->result.type != DQ_VAL_INT) {
        return DQ_EINVAL;
    }
    *out = f->result.u.i;
    return DQ_OK;
}

int
dq_future_exception_code(const dq_future_t *f)
{
    if (f->state != DQ_FUTURE_DONE) {
        return 0;
    }
    ((dq_future_t *) f)->seen = 1;
    return f->exc_code;
}

const char *
dq_future_exception_message(const dq_future_t *f)
{
    if (f->state != DQ_FUTURE_DONE || f->exc_code == 0) {
        return "";
    }
    return f->exc_msg ? f->exc_msg : dq_tasklet_strerror(f->exc_code);
}

int
dq_future_exception_is_flow(const dq_future_t *f)
{
    return f->state == DQ_FUTURE_DONE && f->exc_code
           && (f->flow || dq__is_flow_code(f->exc_code));
}

size_t
dq_future_traceback(const dq_future_t *f, const dq_site_t **frames)
{
    if (frames) {
        *frames = f->tb;
    }
    return f->exc_code ? f->ntb : 0;
}

int
dq_future_format_exception(const dq_future_t *f, char *buf, size_t size)
{
    size_t i;
    int    n, total;

    if (size == 0) {
        buf = NULL;
    }
    if (f->state != DQ_FUTURE_DONE || f->exc_code == 0) {
        return snprintf(buf, size, "no exception");
    }
    total = snprintf(buf, size, "%d (%s): %s", f->exc_code,
                     dq_tasklet_strerror(f->exc_code),
                     dq_future_exception_message(f));
    for (i = 0; i < f->ntb; i++) {
        size_t at = (size_t) total < size ? (size_t) total : size;

        n = snprintf(buf ? buf + at : NULL, buf ? size - at : 0,
                     "\n  %s at %s:%d in %s()", i ? "passed on" : "raised",
                     f->tb[i].file, f->tb[i].line, f->tb[i].func);
        if (n > 0) {
            total += n;
        }
    }
    return total;
}

dq_site_t
dq_future_site(const dq_future_t *f)
{
    return f->site;
}

const char *
dq_future_what(const dq_future_t *f)
{
    return f->what;
}

/* ---------------------------------------------------------- callbacks */

static int
dq__future_add_cb(dq_future_t *f, dq_future_cb cb, void *arg, int immediate)
{
    dq__rt_t   *rt = dq__rt_get();
    dq__node_t *n;

    if (rt == NULL) {
        return DQ_ENOMEM;
    }
    if (f->state == DQ_FUTURE_DONE) {
        if (immediate) {
            cb(f, arg);
            return DQ_OK;
        }
        return dq__rq_push(rt, cb, dq_future_ref(f), arg) == DQ_OK
               ? DQ_OK : (dq_future_unref(f), DQ_ENOMEM);
    }
    n = dq__node_get(rt);
    if (n == NULL) {
        return DQ_ENOMEM;
    }
    n->cb = cb;
    n->arg = arg;
    n->f = NULL;
    n->immediate = immediate;
    n->next = NULL;
    *f->cbs_tail = n;
    f->cbs_tail = &n->next;
    return DQ_OK;
}

int
dq_future_add_callback(dq_future_t *f, dq_future_cb cb, void *arg)
{
    return dq__future_add_cb(f, cb, arg, 0);
}

int
dq_future_add_immediate_callback(dq_future_t *f, dq_future_cb cb, void *arg)
{
    return dq__future_add_cb(f, cb, arg, 1);
}

static int
dq__future_remove(dq_future_t *f, dq_future_cb cb, void *arg, int imm_only)
{
    dq__node_t **pp, *n;

    for (pp = &f->cbs; (n = *pp) != NULL; pp = &n->next) {
        if (n->cb == cb && n->arg == arg && (!imm_only || n->immediate)) {
            *pp = n->next;
            if (f->cbs_tail == &n->next) {
                f->cbs_tail = pp;
            }
            dq__node_put(dq__rt, n);
            return DQ_OK;
        }
    }
    return DQ_ENOTFOUND;
}

int
dq_future_remove_callback(dq_future_t *f, dq_future_cb cb, void *arg)
{
    return dq__future_remove(f, cb, arg, 0);
}

int
dq__future_remove_cb(dq_future_t *f, dq_future_cb cb, void *arg)
{
    return dq__future_remove(f, cb, arg, 1);
}

/* --------------------------------------------------------------- dump */

static const char *
dq__state_name(int s)
{
    return s == DQ_FUTURE_PENDING ? "pending"
         : s == DQ_FUTURE_RUNNING ? "running" : "done";
}

size_t
dq_future_dump(FILE *out)
{
    dq__rt_t    *rt = dq__rt;
    dq_future_t *f;
    size_t       n = 0;

    if (rt == NULL) {
        return 0;
    }
    for (f = rt->pending; f; f = f->pnext) {
        n++;
        fprintf(out, "%s %p (%s) created at %s:%d in %s()", f->what,
                (void *) f, dq__state_name(f->state), f->site.file,
                f->site.line, f->site.func);
        if (f->waiter && f->waiter->waiting_on == f) {
            fprintf(out, ", awaited by tasklet %s",
                    f->waiter->name ? f->waiter->name : "?");
        }
        fputc('\n', out);
    }
    return n;
}
