/*
 * Futures made of futures: MultiFuture, QueueFuture, SerialQueueFuture and
 * ReducingFuture (ndb's semantics, see tasklet.h).
 *
 * Each is a dq_future_t with more state after it. A dependent is watched
 * through an immediate callback that holds one reference on the multi
 * future, so the multi future outlives every dependent still pending; a
 * dependent itself is referenced by the multi future as long as it keeps
 * it (Multi: until freed, for the ordered results; queues: until handed to
 * a getq future).
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "tasklet_int.h"

typedef struct {
    dq_future_t  **v;
    size_t         head, len, cap;
} dq__fifo_t;

typedef struct {
    dq_future_t    base;
    int            full;         /* complete() called */
    size_t         npending;     /* dependents not done */
    dq__fifo_t     deps;         /* MULTI: all, in order; SERIAL: not yet
                                    handed out; QUEUE: done, not handed */
    dq__fifo_t     waiters;      /* queues: getq futures with no item yet */
    dq_value_t    *acc;          /* REDUCING: values not folded yet */
    size_t         nacc, cacc;
    dq_reducer_fn  reducer;
    void          *rarg;
    size_t         batch;
} dq__multi_t;

static int
dq__fifo_push(dq__fifo_t *q, dq_future_t *f)
{
    if (q->head + q->len == q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, q->len * sizeof(*q->v));
            q->head = 0;
        }
        if (q->len == q->cap) {
            size_t        cap = q->cap ? q->cap * 2 : 8;
            dq_future_t **v = realloc(q->v, cap * sizeof(*v));

            if (v == NULL) {
                return DQ_ENOMEM;
            }
            q->v = v;
            q->cap = cap;
        }
    }
    q->v[q->head + q->len++] = f;
    return DQ_OK;
}

static dq_future_t *
dq__fifo_pop(dq__fifo_t *q)
{
    dq_future_t *f;

    if (q->len == 0) {
        return NULL;
    }
    f = q->v[q->head++];
    q->len--;
    if (q->len == 0) {
        q->head = 0;
    }
    return f;
}

static void
dq__fifo_free(dq__fifo_t *q)
{
    while (q->len) {
        dq_future_unref(dq__fifo_pop(q));
    }
    free(q->v);
    q->v = NULL;
    q->cap = 0;
}

static dq_future_t *
dq__multi_new(dq__fut_kind_t kind, const char *what, const char *file,
              int line, const char *func)
{
    dq_future_t *f = dq__future_alloc(sizeof(dq__multi_t), kind, what, file,
                                      line, func);
    if (f) {
        f->state = DQ_FUTURE_RUNNING;
    }
    return f;
}

dq_future_t *
dq_multi_future_new_loc(const char *file, int line, const char *func)
{
    return dq__multi_new(DQ__FUT_MULTI, "MultiFuture", file, line, func);
}

dq_future_t *
dq_queue_future_new_loc(const char *file, int line, const char *func)
{
    return dq__multi_new(DQ__FUT_QUEUE, "QueueFuture", file, line, func);
}

dq_future_t *
dq_serial_queue_future_new_loc(const char *file, int line, const char *func)
{
    return dq__multi_new(DQ__FUT_SERIAL, "SerialQueueFuture", file, line,
                         func);
}

dq_future_t *
dq_reducing_future_new_loc(dq_reducer_fn reducer, void *arg, size_t batch,
                           const char *file, int line, const char *func)
{
    dq_future_t *f;
    dq__multi_t *m;

    if (reducer == NULL || batch < 2) {
        return NULL;
    }
    f = dq__multi_new(DQ__FUT_REDUCING, "ReducingFuture", file, line, func);
    if (f) {
        m = (dq__multi_t *) f;
        m->reducer = reducer;
        m->rarg = arg;
        m->batch = batch;
    }
    return f;
}

void
dq__multi_release(dq_future_t *f)
{
    dq__multi_t *m = (dq__multi_t *) f;
    size_t       i;

    dq__fifo_free(&m->deps);
    dq__fifo_free(&m->waiters);
    for (i = 0; i < m->nacc; i++) {
        dq_value_clear(&m->acc[i]);
    }
    free(m->acc);
}

static int
dq__is_multi(const dq_future_t *f)
{
    return f && (f->kind == DQ__FUT_MULTI || f->kind == DQ__FUT_QUEUE
                 || f->kind == DQ__FUT_SERIAL || f->kind == DQ__FUT_REDUCING);
}

/* ------------------------------------------------------- Multi: finish */

static void
dq__multi_finish(dq__multi_t *m)
{
    dq_future_t *f = &m->base;
    dq_value_t  *items;
    size_t       i, n = m->deps.len;

    if (f->state == DQ_FUTURE_DONE) {
        return;
    }
    items = calloc(n ? n : 1, sizeof(*items));
    if (items == NULL) {
        dq_future_set_exception(f, DQ_ENOMEM, "no memory for the results");
        return;
    }
    for (i = 0; i < n; i++) {
        items[i] = dq_value_copy(&m->deps.v[m->deps.head + i]->result);
    }
    dq_future_set_result(f, dq__value_list(items, n));
}

/* ---------------------------------------------------- Reducing: fold */

static int
dq__acc_push(dq__multi_t *m, dq_value_t v)
{
    if (m->nacc == m->cacc) {
        size_t      cap = m->cacc ? m->cacc * 2 : m->batch + 1;
        dq_value_t *a = realloc(m->acc, cap * sizeof(*a));

        if (a == NULL) {
            dq_value_clear(&v);
            return DQ_ENOMEM;
        }
        m->acc = a;
        m->cacc = cap;
    }
    m->acc[m->nacc++] = v;
    return DQ_OK;
}

/* Fold the first n accumulated values into one, put at the end. */
static int
dq__reduce(dq__multi_t *m, size_t n)
{
    dq_value_t out = DQ_VALUE_NONE;
    size_t     i;
    int        rc;

    rc = m->reducer(m->acc, n, &out, m->rarg);
    for (i = 0; i < n; i++) {
        dq_value_clear(&m->acc[i]);
    }
    memmove(m->acc, m->acc + n, (m->nacc - n) * sizeof(*m->acc));
    m->nacc -= n;
    if (rc != DQ_OK) {
        dq_value_clear(&out);
        dq_future_set_exception(&m->base, rc, "reducer failed: %s",
                                dq_tasklet_strerror(rc));
        return rc;
    }
    return dq__acc_push(m, out);
}

static void
dq__reducing_value(dq__multi_t *m, dq_value_t v)
{
    if (m->base.state == DQ_FUTURE_DONE) {
        dq_value_clear(&v);
        return;
    }
    if (dq__acc_push(m, v) != DQ_OK) {
        dq_future_set_exception(&m->base, DQ_ENOMEM, "no memory");
        return;
    }
    while (m->nacc >= m->batch && m->base.state != DQ_FUTURE_DONE) {
        if (dq__reduce(m, m->batch) != DQ_OK) {
            return;
        }
    }
}

static void
dq__reducing_finish(dq__multi_t *m)
{
    if (m->base.state == DQ_FUTURE_DONE) {
        return;
    }
    if (m->nacc > 1 && dq__reduce(m, m->nacc) != DQ_OK) {
        return;
    }
    if (m->nacc == 0) {
        dq_future_set_result(&m->base, DQ_VALUE_NONE);
    } else {
        m->nacc = 0;
        dq_future_set_result(&m->base, m->acc[0]);
    }
}

/* ------------------------------------------------------------- queues */

static void
dq__queue_eof_waiters(dq__multi_t *m)
{
    dq_future_t *w;

    while ((w = dq__fifo_pop(&m->waiters)) != NULL) {
        dq_future_set_flow_exception(w, DQ_EEOF, "queue is empty");
        dq_future_unref(w);
    }
}

/* A serial item is done: hand it to the getq future waiting for it. */
static void
dq__serial_link_cb(dq_future_t *dep, void *arg)
{
    dq_future_t *w = arg;

    dq__future_pass(w, dep, NULL, 0, NULL);
    dq_future_unref(w);
}

static void
dq__serial_link(dq_future_t *w, dq_future_t *dep)
{
    /* the callback owns w's extra ref and, through dep's list, dep */
    if (dq_future_add_immediate_callback(dep, dq__serial_link_cb,
                                         dq_future_ref(w)) != DQ_OK)
    {
        dq_future_set_exception(w, DQ_ENOMEM, "no memory");
        dq_future_unref(w);
    }
    dq_future_unref(dep);
}

static void
dq__serial_match(dq__multi_t *m)
{
    while (m->deps.len && m->waiters.len) {
        dq_future_t *dep = dq__fifo_pop(&m->deps);
        dq_future_t *w = dq__fifo_pop(&m->waiters);

        dq__serial_link(w, dep);
        dq_future_unref(w);
    }
}

/* ---------------------------------------------------------- dependents */

static void
dq__dep_done(dq_future_t *dep, void *arg)
{
    dq__multi_t *m = arg;
    dq_future_t *f = &m->base, *w;

    m->npending--;
    switch (f->kind) {
    case DQ__FUT_MULTI:
        if (dep->exc_code && f->state != DQ_FUTURE_DONE) {
            dq__future_pass(f, dep, __FILE__, __LINE__, "MultiFuture");
        } else if (m->full && m->npending == 0) {
            dq__multi_finish(m);
        }
        break;

    case DQ__FUT_QUEUE:
        if ((w = dq__fifo_pop(&m->waiters)) != NULL) {
            dq__future_pass(w, dep, NULL, 0, NULL);
            dq_future_unref(w);
        } else if (dq__fifo_push(&m->deps, dq_future_ref(dep)) != DQ_OK) {
            dq_future_unref(dep);
            dq_future_set_exception(f, DQ_ENOMEM, "no memory");
        }
        if (m->full && m->npending == 0) {
            if (m->deps.len == 0) {
                dq__queue_eof_waiters(m);
            }
            dq_future_set_result(f, DQ_VALUE_NONE);
        }
        break;

    case DQ__FUT_SERIAL:
        if (m->full && m->npending == 0) {
            dq_future_set_result(f, DQ_VALUE_NONE);
        }
        break;

    case DQ__FUT_REDUCING:
        if (dep->exc_code) {
            if (f->state != DQ_FUTURE_DONE) {
                dq__future_pass(f, dep, __FILE__, __LINE__, "ReducingFuture");
            }
        } else {
            dq__reducing_value(m, dq_value_copy(&dep->result));
        }
        if (m->full && m->npending == 0) {
            dq__reducing_finish(m);
        }
        break;
    }
    dq_future_unref(f);
}

int
dq_multi_add_dependent(dq_future_t *mf, dq_future_t *dep)
{
    dq__multi_t *m = (dq__multi_t *) mf;
    int          rc;

    if (!dq__is_multi(mf) || dep == NULL) {
        return DQ_EINVAL;
    }
    if (m->full) {
        return DQ_ESTATE;
    }
    if (mf->kind == DQ__FUT_MULTI || mf->kind == DQ__FUT_SERIAL) {
        rc = dq__fifo_push(&m->deps, dq_future_ref(dep));
        if (rc != DQ_OK) {
            dq_future_unref(dep);
            return rc;
        }
    }
    m->npending++;
    rc = dq_future_add_immediate_callback(dep, dq__dep_done,
                                          dq_future_ref(mf));
    if (rc != DQ_OK) {
        m->npending--;
        dq_future_unref(mf);
        return rc;
    }
    if (mf->kind == DQ__FUT_SERIAL) {
        dq__serial_match(m);
    }
    return DQ_OK;
}

int
dq_multi_putq(dq_future_t *mf, dq_value_t v)
{
    dq_future_t *f;
    int          rc;

    if (!dq__is_multi(mf)) {
        dq_value_clear(&v);
        return DQ_EINVAL;
    }
    if (((dq__multi_t *) mf)->full) {
        dq_value_clear(&v);
        return DQ_ESTATE;
    }
    f = dq__future_alloc(sizeof(dq_future_t), DQ__FUT_PLAIN, "putq",
                         mf->site.file, mf->site.line, mf->site.func);
    if (f == NULL) {
        dq_value_clear(&v);
        return DQ_ENOMEM;
    }
    dq_future_set_result(f, v);
    rc = dq_multi_add_dependent(mf, f);
    dq_future_unref(f);
    return rc;
}

int
dq_multi_complete(dq_future_t *mf)
{
    dq__multi_t *m = (dq__multi_t *) mf;

    if (!dq__is_multi(mf)) {
        return DQ_EINVAL;
    }
    if (m->full) {
        return DQ_ESTATE;
    }
    m->full = 1;
    if (mf->state == DQ_FUTURE_DONE) {
        return DQ_OK;
    }
    switch (mf->kind) {
    case DQ__FUT_MULTI:
        if (m->npending == 0) {
            dq__multi_finish(m);
        }
        break;
    case DQ__FUT_QUEUE:
        if (m->npending == 0) {
            if (m->deps.len == 0) {
                dq__queue_eof_waiters(m);
            }
            dq_future_set_result(mf, DQ_VALUE_NONE);
        }
        break;
    case DQ__FUT_SERIAL:
        if (m->deps.len == 0) {
            dq__queue_eof_waiters(m);
        }
        if (m->npending == 0) {
            dq_future_set_result(mf, DQ_VALUE_NONE);
        }
        break;
    case DQ__FUT_REDUCING:
        if (m->npending == 0) {
            dq__reducing_finish(m);
        }
        break;
    }
    return DQ_OK;
}

dq_future_t *
dq_queue_getq_loc(dq_future_t *qf, const char *file, int line,
                  const char *func)
{
    dq__multi_t *m = (dq__multi_t *) qf;
    dq_future_t *g, *dep;

    if (qf == NULL
        || (qf->kind != DQ__FUT_QUEUE && qf->kind != DQ__FUT_SERIAL))
    {
        return NULL;
    }
    g = dq__future_alloc(sizeof(dq_future_t), DQ__FUT_PLAIN, "getq", file,
                         line, func);
    if (g == NULL) {
        return NULL;
    }
    if ((dep = dq__fifo_pop(&m->deps)) != NULL) {
        if (qf->kind == DQ__FUT_QUEUE) {
            dq__future_pass(g, dep, NULL, 0, NULL);
            dq_future_unref(dep);
        } else {
            dq__serial_link(g, dep);
        }
        return g;
    }
    if (m->full && (qf->kind == DQ__FUT_SERIAL || m->npending == 0)) {
        dq_future_set_flow_exception(g, DQ_EEOF, "queue is empty");
        return g;
    }
    if (dq__fifo_push(&m->waiters, dq_future_ref(g)) != DQ_OK) {
        dq_future_unref(g);
        dq_future_set_exception(g, DQ_ENOMEM, "no memory");
    }
    g->state = DQ_FUTURE_RUNNING;
    return g;
}

/* ------------------------------------------------------------ reducers */

static int
dq__value_as_int(const dq_value_t *v, int64_t *out)
{
    const redisReply *r;
    const char       *s;
    char             *end;

    switch (v->type) {
    case DQ_VAL_INT:
        *out = v->u.i;
        return DQ_OK;
    case DQ_VAL_STR:
        s = dq_value_str_ptr(v, NULL);
        break;
    case DQ_VAL_REPLY:
        r = dq_value_reply(v);
        if (r->type == REDIS_REPLY_INTEGER) {
            *out = r->integer;
            return DQ_OK;
        }
        if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) {
            return DQ_EINVAL;
        }
        s = r->str;
        break;
    default:
        return DQ_EINVAL;
    }
    if (s == NULL || *s == '\0') {
        return DQ_EINVAL;
    }
    *out = strtoll(s, &end, 10);
    return *end == '\0' ? DQ_OK : DQ_EINVAL;
}

int
dq_reducer_sum(const dq_value_t *vals, size_t n, dq_value_t *out, void *arg)
{
    int64_t sum = 0, x;
    size_t  i;

    (void) arg;
    for (i = 0; i < n; i++) {
        if (dq__value_as_int(&vals[i], &x) != DQ_OK) {
            return DQ_EINVAL;
        }
        sum += x;
    }
    *out = dq_value_int(sum);
    return DQ_OK;
}
