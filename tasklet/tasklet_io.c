/*
 * Futures produced by the loop: sleep (a uv timer) and Redis commands (on
 * the async connection set with dq_tasklet_set_redis, the worker child's
 * own).
 *
 * Each operation counts as pending in the context it was started in, so a
 * toplevel tasklet does not end while a fire-and-forget sleep or command
 * of its tree is still in flight. An operation holds one reference on its
 * future until it completes it.
 *
 * Redis: every hiredis callback runs exactly once; a NULL reply (the
 * connection was lost or freed) fails the future with DQ_EREDIS and the
 * context's error text; an error reply fails it with the reply's text; any
 * other reply is copied (hiredis frees it when the callback returns).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "tasklet_int.h"

typedef struct dq__sleep_s {
    uv_timer_t           timer;
    struct dq__sleep_s  *prev, *next;
    dq_future_t         *f;
    dq_context_t        *ctx;
} dq__sleep_t;

static void
dq__sleep_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void
dq__sleep_end_with(dq__sleep_t *s, int code, const char *msg)
{
    dq__rt_t    *rt = dq__rt;
    dq_future_t *f = s->f;

    if (s->prev) {
        s->prev->next = s->next;
    } else if (rt) {
        rt->sleeps = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *) &s->timer, dq__sleep_close_cb);
    s->f = NULL;
    if (code) {
        (void) dq__future_fail(f, code, 1, msg ? strdup(msg) : NULL, __FILE__,
                               __LINE__, "dq_sleep");
    } else {
        dq_future_set_result(f, DQ_VALUE_NONE);
    }
    dq_future_unref(f);
    dq__context_op_end(s->ctx);
    dq_context_unref(s->ctx);
}

static void
dq__sleep_cb(uv_timer_t *t)
{
    dq__sleep_end_with(t->data, 0, NULL);
}

void
dq__sleep_cancel_all(dq__rt_t *rt)
{
    while (rt->sleeps) {
        dq__sleep_end_with(rt->sleeps, DQ_ECANCELED,
                           "tasklet runtime shut down");
    }
}

void
dq__sleep_cancel_ctx(dq__rt_t *rt, dq_context_t *ctx, int code,
                     const char *msg)
{
    dq__sleep_t *s, *next;

    for (s = rt->sleeps; s; s = next) {
        next = s->next;
        if (s->ctx == ctx) {
            /* ending one may end others (callbacks): restart the walk */
            dq__sleep_end_with(s, code, msg);
            next = rt->sleeps;
        }
    }
}

dq_future_t *
dq_sleep_loc(double seconds, const char *file, int line, const char *func)
{
    dq__rt_t    *rt = dq__rt_get();
    dq__sleep_t *s;
    dq_future_t *f;
    uint64_t     ms;

    if (rt == NULL) {
        return NULL;
    }
    f = dq__future_alloc(sizeof(dq_future_t), DQ__FUT_SLEEP, "sleep", file,
                         line, func);
    if (f == NULL) {
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL || uv_timer_init(rt->loop, &s->timer) != 0) {
        free(s);
        dq_future_set_exception(f, DQ_ENOMEM, "cannot start a timer");
        return f;
    }
    s->timer.data = s;
    s->f = dq_future_ref(f);
    s->ctx = dq_context_ref(dq_context_get());
    dq__context_op_start(s->ctx);
    s->next = rt->sleeps;
    if (s->next) {
        s->next->prev = s;
    }
    rt->sleeps = s;
    f->state = DQ_FUTURE_RUNNING;
    ms = seconds <= 0 ? 0 : (uint64_t) (seconds * 1000.0 + 0.5);
    uv_timer_start(&s->timer, dq__sleep_cb, ms, 0);
    return f;
}

/* -------------------------------------------------------------- Redis */

typedef struct {
    dq_future_t  *f;
    dq_context_t *ctx;
} dq__redis_op_t;

void
dq_tasklet_set_redis(struct redisAsyncContext *ac)
{
    dq__rt_t *rt = dq__rt_get();

    if (rt) {
        rt->redis = ac;
        rt->redis_send = NULL;
        rt->redis_conn = NULL;
    }
}

void
dq__tasklet_set_redis_sender(dq__redis_send_fn fn, void *conn)
{
    dq__rt_t *rt = dq__rt_get();

    if (rt) {
        rt->redis = NULL;
        rt->redis_send = fn;
        rt->redis_conn = conn;
    }
}

void
dq__redis_reply(void *opv, const redisReply *reply, const char *errstr)
{
    dq__redis_op_t *op = opv;
    dq_value_t      v;

    if (reply == NULL) {
        dq_future_set_exception(op->f, DQ_EREDIS, "redis: %s",
                                errstr && errstr[0] ? errstr
                                                    : "connection lost");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        dq_future_set_exception(op->f, DQ_EREDIS, "%.*s", (int) reply->len,
                                reply->str);
    } else {
        v = dq__value_reply_dup(reply);
        if (v.type == DQ_VAL_NONE) {
            dq_future_set_exception(op->f, DQ_ENOMEM, "cannot copy reply");
        } else {
            dq_future_set_result(op->f, v);
        }
    }
    dq_future_unref(op->f);
    dq__context_op_end(op->ctx);
    dq_context_unref(op->ctx);
    free(op);
}

static void
dq__redis_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    dq__redis_reply(privdata, r, ac && ac->errstr[0] ? ac->errstr : NULL);
}

/* A future for a command about to be sent; *opp gets the operation, or
 * NULL if the future already failed (not connected, no memory). */
static dq_future_t *
dq__redis_prepare(dq__redis_op_t **opp, const char *file, int line,
                  const char *func)
{
    dq__rt_t       *rt = dq__rt_get();
    dq__redis_op_t *op;
    dq_future_t    *f;

    *opp = NULL;
    if (rt == NULL) {
        return NULL;
    }
    f = dq__future_alloc(sizeof(dq_future_t), DQ__FUT_REDIS, "redis", file,
                         line, func);
    if (f == NULL) {
        return NULL;
    }
    if (rt->redis_send == NULL && (rt->redis == NULL || rt->redis->err)) {
        dq_future_set_exception(f, DQ_EREDIS, "not connected to redis%s%s",
                                rt->redis ? ": " : "",
                                rt->redis ? rt->redis->errstr : "");
        return f;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        dq_future_set_exception(f, DQ_ENOMEM, "no memory for the command");
        return f;
    }
    op->f = dq_future_ref(f);
    op->ctx = dq_context_ref(dq_context_get());
    dq__context_op_start(op->ctx);
    f->state = DQ_FUTURE_RUNNING;
    *opp = op;
    return f;
}

static void
dq__redis_unsent(dq__redis_op_t *op, const char *why)
{
    dq_future_set_exception(op->f, DQ_EREDIS, "cannot send the command: %s",
                            why);
    dq_future_unref(op->f);
    dq__context_op_end(op->ctx);
    dq_context_unref(op->ctx);
    free(op);
}

static void
dq__redis_send_argv(dq__redis_op_t *op, int argc, const char **argv,
                    const size_t *argvlen)
{
    dq__rt_t *rt = dq__rt;

    if (rt->redis_send) {
        if (rt->redis_send(rt->redis_conn, argc, argv, argvlen, op) != 0) {
            dq__redis_unsent(op, "not connected to redis");
        }
        return;
    }
    if (redisAsyncCommandArgv(rt->redis, dq__redis_cb, op, argc, argv,
                              argvlen) != REDIS_OK)
    {
        dq__redis_unsent(op, rt->redis->errstr[0] ? rt->redis->errstr
                                                  : "not connected");
    }
}

/* Split hiredis' RESP rendering of a formatted command back into argv
 * (what a transport taking argv needs). Returns argc, or -1. */
static int
dq__resp_to_argv(char *cmd, size_t len, const char ***argvp, size_t **lenp)
{
    char   *p = cmd, *end = cmd + len, *nl;
    long    n, i, l;
    const char **argv;
    size_t *lens;

    if (len < 4 || *p != '*') {
        return -1;
    }
    n = strtol(p + 1, &nl, 10);
    if (n <= 0 || n > 1024 * 1024 || nl + 2 > end) {
        return -1;
    }
    p = nl + 2;
    argv = calloc((size_t) n, sizeof(*argv));
    lens = calloc((size_t) n, sizeof(*lens));
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (p >= end || *p != '$') {
            goto bad;
        }
        l = strtol(p + 1, &nl, 10);
        if (l < 0 || nl + 2 + l + 2 > end) {
            goto bad;
        }
        argv[i] = nl + 2;
        lens[i] = (size_t) l;
        p = nl + 2 + l + 2;
    }
    *argvp = argv;
    *lenp = lens;
    return (int) n;
bad:
    free(argv);
    free(lens);
    return -1;
}

dq_future_t *
dq_redis_command_loc(const char *file, int line, const char *func,
                     const char *fmt, ...)
{
    dq__redis_op_t *op;
    dq_future_t    *f = dq__redis_prepare(&op, file, line, func);
    va_list         ap;
    char           *cmd = NULL;
    const char    **argv = NULL;
    size_t         *lens = NULL;
    int             len, argc;

    if (op == NULL) {
        return f;
    }
    if (dq__rt->redis_send == NULL) {
        va_start(ap, fmt);
        if (redisvAsyncCommand(dq__rt->redis, dq__redis_cb, op, fmt, ap)
            != REDIS_OK)
        {
            dq__redis_unsent(op, dq__rt->redis->errstr[0]
                                 ? dq__rt->redis->errstr : "bad format");
        }
        va_end(ap);
        return f;
    }
    va_start(ap, fmt);
    len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    argc = len > 0 ? dq__resp_to_argv(cmd, (size_t) len, &argv, &lens) : -1;
    if (argc < 0) {
        dq__redis_unsent(op, "bad format");
    } else {
        dq__redis_send_argv(op, argc, argv, lens);
    }
    free(argv);
    free(lens);
    free(cmd);     /* the transport copies its arguments at send time */
    return f;
}

dq_future_t *
dq_redis_command_argv_loc(int argc, const char **argv, const size_t *argvlen,
                          const char *file, int line, const char *func)
{
    dq__redis_op_t *op;
    dq_future_t    *f = dq__redis_prepare(&op, file, line, func);

    if (op) {
        dq__redis_send_argv(op, argc, argv, argvlen);
    }
    return f;
}
