/*
 * deferred-worker — hiredis async on libuv: the adapter, timeouts,
 * reconnect, script loading (redis_uv.h has the contract).
 *
 * Why not hiredis' adapters/libuv.h: in 0.14 its poll callback returns
 * early when libuv reports an error, so a refused connect never reaches
 * the connect callback and the loop just runs dry. Here a poll error is
 * handed to hiredis as a read/write event; hiredis then sees the socket
 * error itself (SO_ERROR on connect, read() failing later) and runs the
 * connect/disconnect and reply callbacks as usual.
 *
 * Invariants: r->ac is the live context or NULL; it becomes NULL in the
 * adapter's cleanup hook, which hiredis calls after it has run every
 * pending reply callback, so nothing references a request after that.
 * Requests are kept in send order (Redis answers in order): the head is
 * the oldest, and the command timer only ever watches the head.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>

#include "worker.h"
#include "redis_uv_impl.h"
#include "cluster_uv.h"

#define DQ_RECONNECT_MIN_MS  100
#define DQ_RECONNECT_MAX_MS  5000
#define DQ_HANDSHAKE_TIMEOUT_MS 10000

static void dq__drop(dq_conn_t *r, const char *why);
static int dq__resolve(dq_conn_t *r);

/* ------------------------------------------------------------- adapter */

static void
dq__on_poll(uv_poll_t *h, int status, int events)
{
    dq__ev_t *e = h->data;

    if (status < 0) {
        /* Pass it through: hiredis finds the socket error itself. */
        if (e->ac && (e->events & UV_WRITABLE)) {
            redisAsyncHandleWrite(e->ac);
        } else if (e->ac) {
            redisAsyncHandleRead(e->ac);
        }
        return;
    }
    if (e->ac && (events & UV_READABLE)) {
        redisAsyncHandleRead(e->ac);
    }
    if (e->ac && (events & UV_WRITABLE)) {
        redisAsyncHandleWrite(e->ac);
    }
}

static void
dq__ev_update(dq__ev_t *e, int add, int ev)
{
    if (e->ac == NULL) {
        return;
    }
    if (add) {
        e->events |= ev;
    } else {
        e->events &= ~ev;
    }
    if (e->events) {
        uv_poll_start(&e->poll, e->events, dq__on_poll);
    } else {
        uv_poll_stop(&e->poll);
    }
}

static void dq__add_read(void *p)  { dq__ev_update(p, 1, UV_READABLE); }
static void dq__del_read(void *p)  { dq__ev_update(p, 0, UV_READABLE); }
static void dq__add_write(void *p) { dq__ev_update(p, 1, UV_WRITABLE); }
static void dq__del_write(void *p) { dq__ev_update(p, 0, UV_WRITABLE); }

static void dq__maybe_free(dq_conn_t *r);

static void
dq__ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
dq__cleanup(void *p)
{
    dq__ev_t   *e = p;
    dq_conn_t *r = e->r;

    if (r->ac == e->ac) {
        r->ac = NULL;
    }
    if (r->sac == e->ac) {
        r->sac = NULL;
    }
    e->ac = NULL;
    uv_poll_stop(&e->poll);
    uv_close((uv_handle_t *) &e->poll, dq__ev_closed);
    dq__maybe_free(r);
}

int
dq__attach(dq_conn_t *r, redisAsyncContext *ac)
{
    dq__ev_t *e = calloc(1, sizeof(*e));

    if (e == NULL) {
        return -1;
    }
    if (uv_poll_init_socket(r->loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return -1;
    }
    e->poll.data = e;
    e->ac = ac;
    e->r = r;
    /* replies built in one block each (lib/dq_reply_mem.c) */
    ac->c.reader->fn = (redisReplyObjectFunctions *) &dq_reply_functions;
    ac->ev.addRead = dq__add_read;
    ac->ev.delRead = dq__del_read;
    ac->ev.addWrite = dq__add_write;
    ac->ev.delWrite = dq__del_write;
    ac->ev.cleanup = dq__cleanup;
    ac->ev.data = e;
    return 0;
}

/* ------------------------------------------------------------- requests */

static void
dq__unlink(dq_conn_t *r, dq__req_t *q)
{
    if (q->prev) {
        q->prev->next = q->next;
    } else {
        r->head = q->next;
    }
    if (q->next) {
        q->next->prev = q->prev;
    } else {
        r->tail = q->prev;
    }
    q->prev = q->next = NULL;
    r->npending--;
}

static void
dq__link(dq_conn_t *r, dq__req_t *q)
{
    q->prev = r->tail;
    q->next = NULL;
    if (r->tail) {
        r->tail->next = q;
    } else {
        r->head = q;
    }
    r->tail = q;
    r->npending++;
}

static void
dq__cmd_timer_cb(uv_timer_t *t)
{
    dq_conn_t *r = t->data;
    uint64_t    now = uv_now(r->loop);
    dq__req_t  *q;

    for (q = r->head; q && q->deadline == 0; q = q->next) { /* void */ }
    if (q == NULL) {
        return;
    }
    if (q->deadline <= now) {
        char why[96];

        snprintf(why, sizeof(why), "command %s timed out after %lld ms",
                 q->f.name, (long long) q->timeout_ms);
        dq__drop(r, why);
        return;
    }
    uv_timer_start(&r->cmd_timer, dq__cmd_timer_cb, q->deadline - now, 0);
}

static void dq__on_reply(redisAsyncContext *ac, void *reply, void *privdata);
static void dq__req_free(dq__req_t *q);
static int dq__req_as_eval(dq__req_t *q, const dq_script_t *s);

static int
dq__submit(dq_conn_t *r, dq__req_t *q)
{
    if (r->ac == NULL
        || redisAsyncFormattedCommand(r->ac, dq__on_reply, q, q->f.resp,
                                      q->f.len) != REDIS_OK)
    {
        return -1;
    }
    q->deadline = q->timeout_ms > 0
                  ? uv_now(r->loop) + (uint64_t) q->timeout_ms : 0;
    dq__link(r, q);
    if (q->deadline && !uv_is_active((uv_handle_t *) &r->cmd_timer)) {
        uv_timer_start(&r->cmd_timer, dq__cmd_timer_cb, q->timeout_ms, 0);
    }
    return 0;
}

static void
dq__on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    dq__req_t  *q = privdata;
    dq_conn_t *r = q->r;
    redisReply *rep = reply;
    const char *err = NULL;

    (void) ac;
    dq__unlink(r, q);

    if (rep != NULL && q->f.evalsha && dq_reply_is_noscript(rep)) {
        const dq_script_t *s = NULL;

        /* NOSCRIPT (SCRIPT FLUSH, failover): resend this one as EVAL */
        for (int i = 0; i < DQ_SCRIPT__COUNT; i++) {
            const dq_script_t *c = dq_script((dq_script_id_t) i);

            if (c && memcmp(q->f.sha, c->sha1, 40) == 0) {
                s = c;
                break;
            }
        }
        if (s != NULL) {
            dq_log_warn("redis (%s): NOSCRIPT for \"%s\", sending it as EVAL",
                        r->label, s->name);
            if (dq__req_as_eval(q, s) == 0 && dq__submit(r, q) == 0) {
                return;
            }
        }
    }

    if (rep != NULL && q->f.script && dq_reply_is_unavailable(rep)
        && !(r->cluster_node && dq_cluster_is_retry(rep)))
    {
        /* Redis did not run it (a demoted master, loading, busy, out of
         * memory...): "not delivered", like a lost connection. Drop this
         * connection (a failover may have moved the name) and let the
         * owner keep the result for the resend after reconnecting. */
        char why[200];

        snprintf(why, sizeof(why), "%s answered: %.*s", q->f.name,
                 (int) (rep->len > 120 ? 120 : rep->len), rep->str);
        if (r->faults < 6) {
            r->faults++;
        }
        if (q->cb) {
            q->cb(r, NULL, why, q->data);
        }
        dq__req_free(q);
        if (r->state == DQ_RS_UP || r->state == DQ_RS_HANDSHAKE) {
            dq__drop(r, why);
        }
        return;
    }
    if (rep != NULL && q->f.script && rep->type != REDIS_REPLY_ERROR) {
        r->faults = 0;
    }
    if (rep != NULL && !r->cluster_node && !r->told_cluster
        && rep->type == REDIS_REPLY_ERROR)
    {
        dq_cluster_redirect_t rd;

        if (dq_cluster_redirect(rep, &rd)) {
            /* a cluster node given as one server: say what to give */
            r->told_cluster = 1;
            dq_log_warn("redis (%s): %s answered %.*s: %s:%d is a Redis "
                        "Cluster node: give the address as "
                        "cluster:HOST:PORT[,HOST:PORT...]", r->label,
                        q->f.name, (int) (rep->len > 80 ? 80 : rep->len),
                        rep->str, r->host ? r->host : "?", r->port);
        }
    }
    if (rep == NULL) {
        err = r->errstr[0] ? r->errstr
              : (ac->errstr[0] ? ac->errstr : "connection closed");
    }
    if (q->cb) {
        q->cb(r, rep, err, q->data);
    }
    dq__req_free(q);
}

/* Bytes of one argument in RESP: "$<n>\r\n<n bytes>\r\n". */
static size_t
dq__bulk_size(size_t n)
{
    size_t d = 1, v = n;

    while (v >= 10) {
        v /= 10;
        d++;
    }
    return 1 + d + 2 + n + 2;
}

static void
dq__req_free(dq__req_t *q)
{
    free(q->own);
    free(q);
}

size_t
dq_conn_fmt_size(int argc, const char **argv, const size_t *argvlen)
{
    return dq_resp_size(argc, argv, argvlen);
}

void
dq_conn_fmt(dq_conn_fmt_t *f, char *buf, int argc, const char **argv,
            const size_t *len)
{
    size_t rest = 0, k;

    memset(f, 0, sizeof(*f));
    k = len[0] < sizeof(f->name) - 1 ? len[0] : sizeof(f->name) - 1;
    memcpy(f->name, argv[0], k);
    f->name[k] = '\0';
    f->evalsha = argc >= 2 && len[0] == 7
                 && strncasecmp(argv[0], "EVALSHA", 7) == 0 && len[1] == 40;
    f->script = f->evalsha || (len[0] == 4 && strncasecmp(argv[0], "EVAL", 4)
                               == 0);
    if (f->evalsha) {
        memcpy(f->sha, argv[1], 40);
    }
    f->resp = buf;
    f->len = dq_resp_format(buf, argc, argv, len);
    for (int i = 2; i < argc; i++) {
        rest += dq__bulk_size(len[i]);
    }
    f->tail = f->len - rest;       /* where the third argument starts */
}

/* The request, formatted once (dq_conn_fmt): its RESP right after it
 * (one block); with f, the caller's RESP, borrowed. */
static dq__req_t *
dq__req_new(dq_conn_t *r, int argc, const char **argv, const size_t *len,
            const dq_conn_fmt_t *f, int64_t timeout_ms, dq_conn_reply_cb cb,
            void *data)
{
    dq__req_t *q;

    q = malloc(sizeof(*q) + (f ? 0 : dq_resp_size(argc, argv, len)));
    if (q == NULL) {
        return NULL;
    }
    memset(q, 0, sizeof(*q));
    q->r = r;
    q->cb = cb;
    q->data = data;
    q->timeout_ms = timeout_ms;
    if (f != NULL) {
        q->f = *f;
    } else {
        dq_conn_fmt(&q->f, (char *) (q + 1), argc, argv, len);
    }
    return q;
}

/* NOSCRIPT: the same command as "EVAL <source> ..." (its own block): the
 * original "*<argc>" line, EVAL and the source, then the original's
 * arguments from the third on. */
static int
dq__req_as_eval(dq__req_t *q, const dq_script_t *s)
{
    const char *argv[2] = { "EVAL", s->source };
    size_t      len[2] = { 4, s->len };
    size_t      head = q->f.tail - dq__bulk_size(q->f.evalsha ? 7 : 4)
                       - dq__bulk_size(40);
    size_t      rest = q->f.len - q->f.tail, two = dq_resp_size(2, argv, len);
    char       *p;

    /* head >= 4 ("*3\r\n"); "*2\r\n" is 4 bytes */
    p = malloc(head - 4 + two + rest);
    if (p == NULL) {
        return -1;
    }
    (void) dq_resp_format(p + head - 4, 2, argv, len);
    memcpy(p, q->f.resp, head);               /* "*<argc>\r\n" over "*2" */
    memcpy(p + head - 4 + two, q->f.resp + q->f.tail, rest);
    free(q->own);
    q->f.resp = p;
    q->own = p;
    q->f.len = head - 4 + two + rest;
    q->f.evalsha = 0;
    memcpy(q->f.name, "EVAL", 5);
    return 0;
}

static int
dq__send(dq_conn_t *r, int argc, const char **argv, const size_t *argvlen,
         const dq_conn_fmt_t *f, int64_t timeout_ms, dq_conn_reply_cb cb,
         void *data)
{
    dq__req_t *q;

    if ((r->state != DQ_RS_UP && r->state != DQ_RS_HANDSHAKE)
        || r->ac == NULL || (f == NULL && argc < 1))
    {
        return -1;
    }
    q = dq__req_new(r, argc, argv, argvlen, f, timeout_ms, cb, data);
    if (q == NULL) {
        return -1;
    }
    if (dq__submit(r, q) != 0) {
        dq__req_free(q);
        return -1;
    }
    return 0;
}

int
dq_conn_send(dq_conn_t *r, int argc, const char **argv,
             const size_t *argvlen, int64_t timeout_ms,
             dq_conn_reply_cb cb, void *data)
{
    if (r->cl != NULL) {
        return dq_ccl_send(r->cl, argc, argv, argvlen, timeout_ms,
                           DQ_CCL_RETRY, cb, data);
    }
    if (r->state != DQ_RS_UP) {
        return -1;
    }
    return dq__send(r, argc, argv, argvlen, NULL, timeout_ms, cb, data);
}

int
dq_conn_routable(const dq_conn_t *r, int argc, const char **argv,
                 const size_t *argvlen)
{
    return r->cl == NULL || dq_ccl_routable(r->cl, argc, argv, argvlen);
}

int
dq_conn_send_fmt(dq_conn_t *r, const dq_conn_fmt_t *f, int64_t timeout_ms,
                 dq_conn_reply_cb cb, void *data)
{
    if (r->cl != NULL || r->state != DQ_RS_UP) {
        return -1;                  /* a node's connection, never the
                                       cluster's own */
    }
    return dq__send(r, 0, NULL, NULL, f, timeout_ms, cb, data);
}

int
dq_conn_send_cmd(dq_conn_t *r, const dq_cmd_t *c, int64_t timeout_ms,
                 dq_conn_reply_cb cb, void *data)
{
    return dq_conn_send(r, c->argc, c->argv, c->argvlen, timeout_ms, cb,
                        data);
}

static int
dq__send_cmd_mode(dq_conn_t *r, const dq_cmd_t *c, int64_t timeout_ms,
                  int mode, dq_conn_reply_cb cb, void *data)
{
    if (r->cl != NULL) {
        return dq_ccl_send(r->cl, c->argc, c->argv, c->argvlen, timeout_ms,
                           mode, cb, data);
    }
    return dq_conn_send_cmd(r, c, timeout_ms, cb, data);
}

int
dq_conn_send_cmd_once(dq_conn_t *r, const dq_cmd_t *c, int64_t timeout_ms,
                      dq_conn_reply_cb cb, void *data)
{
    return dq__send_cmd_mode(r, c, timeout_ms, DQ_CCL_ONCE, cb, data);
}

int
dq_conn_send_cmd_settle(dq_conn_t *r, const dq_cmd_t *c, int64_t timeout_ms,
                        dq_conn_reply_cb cb, void *data)
{
    return dq__send_cmd_mode(r, c, timeout_ms, DQ_CCL_SETTLE, cb, data);
}

void
dq_conn_stop_retries(dq_conn_t *r)
{
    if (r != NULL && r->cl != NULL) {
        dq_ccl_stop_retries(r->cl);
    }
}

int
dq_conn_not_run(const char *errstr)
{
    return errstr != NULL
           && (strcmp(errstr, DQ_CONN_NOT_SENT) == 0
               || strncmp(errstr, DQ_CONN_NOT_RUN,
                          sizeof(DQ_CONN_NOT_RUN) - 1) == 0);
}

int
dq_conn_is_up(const dq_conn_t *r)
{
    if (r->cl != NULL) {
        return dq_ccl_is_up(r->cl);
    }
    return r->state == DQ_RS_UP;
}

size_t
dq_conn_pending(const dq_conn_t *r)
{
    if (r->cl != NULL) {
        return dq_ccl_pending(r->cl);
    }
    return r->npending;
}

/* ----------------------------------------------------------- connecting */

static void
dq__reconnect_cb(uv_timer_t *t)
{
    dq__connect(t->data);
}

void
dq__schedule_reconnect(dq_conn_t *r)
{
    if (r->state == DQ_RS_CLOSING) {
        return;
    }
    r->state = DQ_RS_DOWN;
    if (r->faults > 0 && r->backoff_ms < (125LL << r->faults)) {
        /* Redis answers but refuses (OOM, READONLY...): do not hammer it
         * with reconnects, 250 ms doubling to 8 s */
        r->backoff_ms = 125LL << r->faults;
    }
    uv_timer_start(&r->conn_timer, dq__reconnect_cb, (uint64_t) r->backoff_ms,
                   0);
    r->backoff_ms *= 2;
    if (r->backoff_ms > DQ_RECONNECT_MAX_MS) {
        r->backoff_ms = DQ_RECONNECT_MAX_MS;
    }
}

/* Drop the live connection: every pending callback gets NULL. */
static void
dq__drop(dq_conn_t *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    int                was_up = r->state == DQ_RS_UP
                                || r->state == DQ_RS_HANDSHAKE;

    snprintf(r->errstr, sizeof(r->errstr), "%s", why);
    if (r->state != DQ_RS_CLOSING) {
        dq_log_warn("redis (%s): %s; reconnecting", r->label, why);
    }
    uv_timer_stop(&r->cmd_timer);
    if (r->state != DQ_RS_CLOSING) {
        r->state = DQ_RS_DOWN;      /* no sends from the callbacks below */
    }
    if (ac != NULL) {
        ac->onDisconnect = NULL;    /* handled here */
        redisAsyncFree(ac);         /* runs the pending callbacks */
    }
    if (r->state != DQ_RS_CLOSING) {
        dq__schedule_reconnect(r);
        if (was_up && r->state_cb) {
            r->state_cb(r, 0, r->data);
        }
    }
}

static void
dq__setup_reply(dq_conn_t *r, redisReply *rep, const char *errstr,
                void *data)
{
    const char *what = data;

    if (rep == NULL) {
        return;                 /* the connection went: already handled */
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        char why[200];

        snprintf(why, sizeof(why), "%s failed: %s", what, rep->str);
        dq_log_error("redis (%s): %s", r->label, why);
        dq__drop(r, why);
    }
    (void) errstr;
}

/* The INFO reply of the handshake: refuse a server older than the
 * scripts need (retried slowly: an upgrade may come), warn once per
 * process about an evicting maxmemory-policy, then tell the owner. */
static void
dq__info_reply(dq_conn_t *r, redisReply *rep, const char *errstr,
               void *data)
{
    static char       warned_policy[32];
    dq_server_info_t  si;
    char              why[200];

    (void) errstr;
    (void) data;
    if (rep == NULL || r->state != DQ_RS_HANDSHAKE) {
        return;                 /* the connection went: already handled */
    }
    si.version[0] = '\0';
    if (rep->type != REDIS_REPLY_STRING) {
        /* INFO renamed away or refused: nothing to check against */
        dq_log_warn("redis (%s): INFO answered %s; cannot check the server "
                    "version (%s or later is needed)", r->label,
                    rep->type == REDIS_REPLY_ERROR ? rep->str : "no text",
                    DQ_REDIS_MIN_VERSION);
    } else if (dq_server_info(rep->str, rep->len, &si) != 0) {
        dq_log_warn("redis (%s): INFO gave no redis_version; cannot check "
                    "the server version (%s or later is needed)", r->label,
                    DQ_REDIS_MIN_VERSION);
    } else if (si.loading) {
        /* INFO answers while Redis reads its AOF; scripts would not: not
         * up until it is done (a report sent now would be refused) */
        if (r->faults < 6) {
            r->faults++;                    /* again in 250 ms, doubling */
        }
        dq__drop(r, "Redis is loading its data set");
        return;
    } else if (si.too_old) {
        snprintf(why, sizeof(why), "Redis %s is too old: %s or later is "
                 "needed (script flags, ZMSCORE); not using it", si.version,
                 DQ_REDIS_MIN_VERSION);
        dq_log_error("redis (%s): %s", r->label, why);
        r->faults = 6;          /* look again in 8 s */
        dq__drop(r, why);
        return;
    } else {
        if (si.evicts && strcmp(warned_policy, si.policy) != 0) {
            snprintf(warned_policy, sizeof(warned_policy), "%s", si.policy);
            dq_log_warn("redis (%s): maxmemory-policy is %s: under memory "
                        "pressure Redis may delete task data (a whole "
                        "queue's hash); use noeviction (docs/RELIABILITY.md)",
                        r->label, si.policy);
        }
    }
    dq_log_info("redis (%s): connected%s%s%s", r->label,
                si.version[0] ? " (Redis " : "", si.version,
                si.version[0] ? ")" : "");
    r->state = DQ_RS_UP;
    if (r->state_cb) {
        r->state_cb(r, 1, r->data);
    }
}

static void
dq__role_reply(dq_conn_t *r, redisReply *rep, const char *errstr,
               void *data)
{
    char why[200];

    (void) errstr;
    (void) data;
    if (rep == NULL || r->state != DQ_RS_HANDSHAKE
        || dq_reply_is_master_role(rep))
    {
        return;
    }
    snprintf(why, sizeof(why), "%s:%d, named by the sentinels for \"%s\", "
             "is not a master (%s); asking the sentinels again", r->host,
             r->port, r->master,
             rep->type == REDIS_REPLY_ERROR ? rep->str : "ROLE: replica");
    if (r->faults < 4) {
        r->faults++;                        /* 250 ms, doubling to 2 s */
    }
    dq__drop(r, why);
}

static void
dq__on_connect(const redisAsyncContext *ac, int status)
{
    dq_conn_t *r = ac->data;
    char        dbs[24];

    uv_timer_stop(&r->conn_timer);
    if (status != REDIS_OK) {
        if (r->state != DQ_RS_CLOSING) {
            dq_log_warn("redis (%s): cannot connect: %s", r->label,
                        ac->errstr);
            dq__schedule_reconnect(r);
        }
        return;                 /* hiredis frees the context */
    }

    r->state = DQ_RS_HANDSHAKE;
    r->errstr[0] = '\0';
    r->backoff_ms = DQ_RECONNECT_MIN_MS;

    /* pipelined ahead of anything the owner sends; the owner hears "up"
     * from the INFO reply (dq__info_reply) */
    if (r->password) {
        const char *argv[] = { "AUTH", r->password };
        size_t      len[] = { 4, strlen(r->password) };

        dq__send(r, 2, argv, len, NULL, 0, dq__setup_reply, "AUTH");
    }
    if (r->db) {
        const char *argv[] = { "SELECT", dbs };
        size_t      len[2];

        len[0] = 6;
        len[1] = (size_t) snprintf(dbs, sizeof(dbs), "%d", r->db);
        dq__send(r, 2, argv, len, NULL, 0, dq__setup_reply, "SELECT");
    }
    if (r->master) {
        /* the sentinels' answer may be stale (a demoted primary is a
         * replica now): writes go only to a server that says master */
        const char *argv[] = { "ROLE" };
        size_t      len[] = { 4 };

        dq__send(r, 1, argv, len, NULL, DQ_HANDSHAKE_TIMEOUT_MS,
                 dq__role_reply,
                 NULL);
    }
    {
        const char *argv[] = { "INFO" };
        size_t      len[] = { 4 };

        dq__send(r, 1, argv, len, NULL, DQ_HANDSHAKE_TIMEOUT_MS,
                 dq__info_reply,
                 NULL);
    }
    for (int i = 0; r->load_scripts && i < DQ_SCRIPT__COUNT; i++) {
        const dq_script_t *s = dq_script((dq_script_id_t) i);
        const char        *argv[] = { "SCRIPT", "LOAD", s->source };
        size_t             len[] = { 6, 4, s->len };

        dq__send(r, 3, argv, len, NULL, 0, dq__setup_reply, "SCRIPT LOAD");
    }
}

static void
dq__on_disconnect(const redisAsyncContext *ac, int status)
{
    dq_conn_t *r = ac->data;

    (void) status;
    uv_timer_stop(&r->cmd_timer);
    if (r->state == DQ_RS_CLOSING) {
        return;
    }
    dq_log_warn("redis (%s): connection lost: %s; reconnecting", r->label,
                ac->errstr[0] ? ac->errstr : "closed by the server");
    dq__schedule_reconnect(r);
    if (r->state_cb) {
        r->state_cb(r, 0, r->data);
    }
}

static void
dq__connect_timeout_cb(uv_timer_t *t)
{
    dq_conn_t        *r = t->data;
    redisAsyncContext *ac = r->ac;
    char               why[64];

    snprintf(why, sizeof(why), "connect timed out after %lld ms",
             (long long) r->connect_timeout_ms);
    dq_log_warn("redis (%s): %s", r->label, why);
    if (ac != NULL) {
        ac->onConnect = NULL;
        redisAsyncFree(ac);
    }
    dq__schedule_reconnect(r);
}

void
dq__connect(dq_conn_t *r)
{
    redisAsyncContext *ac;

    if (r->state == DQ_RS_CLOSING || r->ac != NULL || r->sac != NULL) {
        return;
    }
    r->errstr[0] = '\0';
    if (r->master != NULL && r->state != DQ_RS_SENTINEL) {
        r->sasked = 0;
        dq__ask_sentinel(r);        /* connects here once one answered */
        return;
    }
    if (r->name != NULL && r->reconnecting) {
        (void) dq__resolve(r);        /* on failure: the last address */
    }
    r->reconnecting = 1;
    ac = r->path ? redisAsyncConnectUnix(r->path)
                 : redisAsyncConnect(r->host, r->port);
    if (ac == NULL) {
        dq_log_error("redis (%s): out of memory", r->label);
        dq__schedule_reconnect(r);
        return;
    }
    if (ac->err) {
        dq_log_warn("redis (%s): cannot connect: %s", r->label, ac->errstr);
        redisAsyncFree(ac);
        dq__schedule_reconnect(r);
        return;
    }
    if (dq__attach(r, ac) != 0) {
        dq_log_error("redis (%s): cannot watch the socket", r->label);
        redisAsyncFree(ac);
        dq__schedule_reconnect(r);
        return;
    }
    ac->data = r;
    r->ac = ac;
    r->state = DQ_RS_CONNECTING;
    redisAsyncSetConnectCallback(ac, dq__on_connect);
    redisAsyncSetDisconnectCallback(ac, dq__on_disconnect);
    uv_timer_start(&r->conn_timer, dq__connect_timeout_cb,
                   (uint64_t) r->connect_timeout_ms, 0);
}

/* ------------------------------------------------------------- lifetime */

/* host name -> numeric address in r->host (blocking getaddrinfo: a name
 * from /etc/hosts or a literal costs nothing; a DNS name is looked up
 * again on every reconnect, so a failover that moves the name is
 * followed). 0 or -1 (logged, r->host kept). */
int
dq_conn_numeric(const char *label, const char *name,
                char num[INET6_ADDRSTRLEN])
{
    struct addrinfo  hints, *res = NULL;
    int              rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        dq_log_error("redis (%s): cannot resolve \"%s\": %s", label,
                     name, gai_strerror(rc));
        return -1;
    }
    if (res->ai_family == AF_INET6) {
        inet_ntop(AF_INET6,
                  &((struct sockaddr_in6 *) res->ai_addr)->sin6_addr, num,
                  INET6_ADDRSTRLEN);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *) res->ai_addr)->sin_addr,
                  num, INET6_ADDRSTRLEN);
    }
    freeaddrinfo(res);
    return 0;
}

static int
dq__resolve(dq_conn_t *r)
{
    char  num[INET6_ADDRSTRLEN];
    char *h;

    if (dq_conn_numeric(r->label, r->name, num) != 0) {
        return -1;
    }
    if (r->host != NULL && strcmp(r->host, num) == 0) {
        return 0;
    }
    h = strdup(num);
    if (h == NULL) {
        return -1;
    }
    if (r->host != NULL) {
        dq_log_info("redis (%s): %s now resolves to %s (was %s)", r->label,
                    r->name, num, r->host);
    }
    free(r->host);
    r->host = h;
    return 0;
}

/* The address by dq_addr_parse; a host name resolved here, and again on
 * every reconnect (dq__connect). */
static int
dq__parse_address(dq_conn_t *r, const char *address)
{
    dq_addr_t   a;
    dq_error_t  err;

    if (dq_addr_parse(dq_str_c(address), &a, &err) != DQ_OK) {
        dq_log_error("%s", err.msg);
        return -1;
    }
    if (a.path.len) {
        r->path = strndup(a.path.ptr, a.path.len);
        return r->path ? 0 : -1;
    }
    if (a.master.len) {
        /* the sentinels resolved once, here (the primary is asked of
         * them before every connect) */
        char num[INET6_ADDRSTRLEN], *name;

        r->master = strndup(a.master.ptr, a.master.len);
        if (r->master == NULL) {
            return -1;
        }
        for (size_t i = 0; i < a.nsentinels; i++) {
            name = strndup(a.sentinel[i].host.ptr, a.sentinel[i].host.len);
            if (name == NULL || dq_conn_numeric(r->label, name, num) != 0) {
                free(name);
                return -1;
            }
            free(name);
            r->shost[i] = strdup(num);
            if (r->shost[i] == NULL) {
                return -1;
            }
            r->sport[i] = a.sentinel[i].port;
            r->nsentinels++;
        }
        return 0;
    }
    r->port = a.port;
    r->name = strndup(a.host.ptr, a.host.len);
    if (r->name == NULL) {
        return -1;
    }
    return dq__resolve(r);
}

static void
dq__free_names(dq_conn_t *r)
{
    free(r->label);
    free(r->password);
    free(r->name);
    free(r->host);
    free(r->path);
    free(r->master);
    for (size_t i = 0; i < r->nsentinels; i++) {
        free(r->shost[i]);
    }
    free(r);
}

void
dq_conn_cluster_done(dq_conn_t *r)
{
    dq__free_names(r);
}

dq_conn_t *
dq_conn_new(uv_loop_t *loop, const dq_conn_opts_t *o,
            dq_conn_state_cb cb, void *data)
{
    dq_conn_t *r = calloc(1, sizeof(*r));
    dq_addr_t  a;

    if (r == NULL) {
        return NULL;
    }
    r->loop = loop;
    r->label = strdup(o->label ? o->label : "redis");
    r->password = o->password ? strdup(o->password) : NULL;
    r->db = o->db;
    r->load_scripts = o->load_scripts;
    r->connect_timeout_ms = o->connect_timeout_ms > 0
                            ? o->connect_timeout_ms : 5000;
    r->backoff_ms = DQ_RECONNECT_MIN_MS;
    r->state_cb = cb;
    r->data = data;
    r->cluster_node = o->cluster_node;
    if (r->label != NULL && o->address != NULL
        && dq_addr_parse(dq_str_c(o->address), &a, NULL) == DQ_OK
        && a.nseeds > 0)
    {
        if (o->db != 0) {
            dq_log_error("redis (%s): a cluster has database 0 only "
                         "(redis_db %d)", r->label, o->db);
            dq__free_names(r);
            return NULL;
        }
        r->cl = dq_ccl_new(loop, r, o, &a, cb, data);
        if (r->cl == NULL) {
            dq__free_names(r);
            return NULL;
        }
        return r;
    }
    if (r->label == NULL || dq__parse_address(r, o->address) != 0) {
        dq__free_names(r);
        return NULL;
    }
    uv_timer_init(loop, &r->conn_timer);
    uv_timer_init(loop, &r->cmd_timer);
    r->conn_timer.data = r;
    r->cmd_timer.data = r;
    r->open_handles = 2;
    return r;
}

void
dq_conn_start(dq_conn_t *r)
{
    if (r->cl != NULL) {
        dq_ccl_start(r->cl);
        return;
    }
    dq__connect(r);
}

static void
dq__maybe_free(dq_conn_t *r)
{
    if (r->state != DQ_RS_CLOSING || r->ac != NULL || r->sac != NULL
        || r->open_handles > 0)
    {
        return;
    }
    dq__free_names(r);
}

static void
dq__timer_closed(uv_handle_t *h)
{
    dq_conn_t *r = h->data;

    r->open_handles--;
    dq__maybe_free(r);
}

void
dq_conn_close(dq_conn_t *r)
{
    if (r == NULL || r->state == DQ_RS_CLOSING) {
        return;
    }
    r->state = DQ_RS_CLOSING;
    if (r->cl != NULL) {
        dq_ccl_close(r->cl);        /* frees r when done */
        return;
    }
    snprintf(r->errstr, sizeof(r->errstr), "connection closing");
    uv_timer_stop(&r->conn_timer);
    uv_timer_stop(&r->cmd_timer);
    /* close the timers first: the cleanup hook may free r */
    r->open_handles++;                 /* held until the context is gone */
    uv_close((uv_handle_t *) &r->conn_timer, dq__timer_closed);
    uv_close((uv_handle_t *) &r->cmd_timer, dq__timer_closed);
    if (r->ac != NULL) {
        r->ac->onConnect = NULL;
        r->ac->onDisconnect = NULL;
        redisAsyncFree(r->ac);         /* deferred if inside a callback */
    }
    if (r->sac != NULL) {
        r->sac->onConnect = NULL;
        redisAsyncFree(r->sac);
    }
    r->open_handles--;
    dq__maybe_free(r);
}
