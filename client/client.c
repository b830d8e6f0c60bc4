/*
 * The C client (include/deferred/client.h): synchronous hiredis. This
 * file: errors, the connection, script calls and the replica waits; the
 * enqueue is client_enqueue.c's.
 *
 * Connection: made at dq_client_new (a failure is remembered, not fatal);
 * any I/O error drops the context and the next call reconnects (AUTH,
 * SELECT). Scripts go as EVALSHA; NOSCRIPT (Redis restarted or SCRIPT
 * FLUSH) is answered by sending the same command as EVAL, which also
 * caches the script again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"


int
dq__fail(dq_client_t *c, int code, const char *fmt, ...)
{
    va_list                ap;
    dq_cluster_redirect_t  rd;
    const char            *m;
    size_t                 n;

    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof(c->errstr), fmt, ap);
    va_end(ap);
    /* a Redis Cluster node given as a plain address answers MOVED for
     * the slots of other nodes: say what to give instead */
    if (c->cl == NULL && c->address
        && ((m = strstr(c->errstr, "MOVED "))
            || (m = strstr(c->errstr, "ASK ")))
        && (m == c->errstr || m[-1] == ' ')
        && dq_cluster_redirect_str(m, strlen(m), &rd))
    {
        n = strlen(c->errstr);
        snprintf(c->errstr + n, sizeof(c->errstr) - n, " (%s is a Redis "
                 "Cluster node: give the address as cluster:HOST:PORT"
                 "[,HOST:PORT...])", c->address);
    }
    return code;
}

int
dq__fail_err(dq_client_t *c, const dq_error_t *e)
{
    return dq__fail(c, e->code, "%s", e->msg);
}

int
dq__queue_arg(dq_client_t *c, const char *queue, dq_str_t *q)
{
    *q = dq_str_c(queue ? queue : DQ_DEFAULT_QUEUE);
    if (!dq_queue_name_valid(*q)) {
        return dq__fail(c, DQ_EINVAL, "queue: must be 1 to %d characters "
                        "of [A-Za-z0-9_-]", DQ_QUEUE_NAME_MAX);
    }
    return DQ_OK;
}

/* ------------------------------------------------------------ connection */

struct timeval
dq__ms_tv(long long ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t) (ms / 1000);
    tv.tv_usec = (suseconds_t) (ms % 1000) * 1000;
    return tv;
}

void
dq__disconnect(dq_client_t *c)
{
    if (c->cl) {
        dq__cl_disconnect(c);
    }
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    dq__qset_clear(&c->queues);   /* the next connection adds them again */
}

/* AUTH or SELECT on a fresh connection; 0, or -1 with err filled. */
static int
dq__setup_cmd(redisContext *ctx, const char *cmd, const char *arg,
              char *err, size_t errlen)
{
    const char *argv[2] = { cmd, arg };
    redisReply *r = redisCommandArgv(ctx, 2, argv, NULL);
    int         rc = 0;

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis %s: %s", cmd,
                 r ? r->str : ctx->errstr[0] ? ctx->errstr : "no reply");
        rc = -1;
    }
    if (r) {
        freeReplyObject(r);
    }
    return rc;
}

/* Refuse a Redis older than the scripts need (every ack would fail and
 * every task run until dead). INFO refused or renamed: not checked. */
static int
dq__check_server(redisContext *ctx, char *err, size_t errlen)
{
    redisReply       *r = redisCommand(ctx, "INFO server");
    dq_server_info_t  si;
    int               rc = 0;

    if (r == NULL) {
        snprintf(err, errlen, "redis INFO: %s",
                 ctx->errstr[0] ? ctx->errstr : "no reply");
        return -1;
    }
    if (r->type == REDIS_REPLY_STRING
        && dq_server_info(r->str, r->len, &si) == 0 && si.too_old)
    {
        snprintf(err, errlen, "Redis %s is too old: %s or later is needed "
                 "(script flags, ZMSCORE)", si.version,
                 DQ_REDIS_MIN_VERSION);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* One TCP or unix connection with the timeout set; NULL with err. */
static redisContext *
dq__open(const char *host, int port, const char *path, struct timeval tv,
         char *err, size_t errlen)
{
    redisContext *ctx;

    ctx = path ? redisConnectUnixWithTimeout(path, tv)
               : redisConnectWithTimeout(host, port, tv);
    if (ctx == NULL) {
        snprintf(err, errlen, "redis connect: out of memory");
        return NULL;
    }
    if (ctx->err) {
        if (path) {
            snprintf(err, errlen, "redis connect to unix:%s: %s", path,
                     ctx->errstr);
        } else {
            snprintf(err, errlen, "redis connect to %s:%d: %s", host, port,
                     ctx->errstr);
        }
        redisFree(ctx);
        return NULL;
    }
    if (redisSetTimeout(ctx, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis: cannot set the timeout");
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

/* The primary the sentinels name (asked in turn, the first usable answer
 * wins) and that says it is a master (ROLE): a sentinel that has not yet
 * seen a failover names the demoted primary, now a replica. NULL with err
 * saying what the last sentinel answered. */
static redisContext *
dq__sentinel_open(const dq_addr_t *a, const char *password,
                  struct timeval tv, char *err, size_t errlen)
{
    redisContext *sc, *ctx;
    redisReply   *r;
    dq_error_t    e;
    char          sh[256], mh[256], name[DQ_MAX_MASTER_NAME + 1];
    char          last[256];
    int           mport;
    size_t        i;

    snprintf(name, sizeof(name), "%.*s", (int) a->master.len, a->master.ptr);
    last[0] = '\0';
    for (i = 0; i < a->nsentinels; i++) {
        snprintf(sh, sizeof(sh), "%.*s", (int) a->sentinel[i].host.len,
                 a->sentinel[i].host.ptr);
        sc = dq__open(sh, a->sentinel[i].port, NULL, tv, last, sizeof(last));
        if (sc == NULL) {
            snprintf(err, errlen, "sentinel %s:%d: %s", sh,
                     a->sentinel[i].port, last);
            continue;
        }
        r = redisCommand(sc, "SENTINEL get-master-addr-by-name %s", name);
        if (dq_sentinel_reply(r, mh, sizeof(mh), &mport, &e) != DQ_OK) {
            snprintf(err, errlen, "sentinel %s:%d, master \"%s\": %s", sh,
                     a->sentinel[i].port, name,
                     r == NULL ? (sc->errstr[0] ? sc->errstr : "no reply")
                               : e.msg);
            if (r) {
                freeReplyObject(r);
            }
            redisFree(sc);
            continue;
        }
        freeReplyObject(r);
        redisFree(sc);
        ctx = dq__open(mh, mport, NULL, tv, err, errlen);
        if (ctx == NULL) {
            continue;
        }
        if (password && password[0]
            && dq__setup_cmd(ctx, "AUTH", password, err, errlen) != 0)
        {
            redisFree(ctx);
            continue;
        }
        r = redisCommand(ctx, "ROLE");
        if (dq_reply_is_master_role(r)) {
            freeReplyObject(r);
            return ctx;
        }
        snprintf(err, errlen, "sentinel %s:%d named %s:%d for \"%s\", which "
                 "is not a master (%s)", sh, a->sentinel[i].port, mh, mport,
                 name, r == NULL ? "no reply to ROLE"
                       : r->type == REDIS_REPLY_ERROR ? r->str
                       : "ROLE says replica");
        if (r) {
            freeReplyObject(r);
        }
        redisFree(ctx);
    }
    snprintf(last, sizeof(last), "%s", err);
    snprintf(err, errlen, "no sentinel named a usable primary for \"%s\" "
             "(%zu asked; the last: %s)", name, a->nsentinels, last);
    return NULL;
}

redisContext *
dq_sync_connect(const char *address, const char *password, int db,
                int timeout_ms, char *err, size_t errlen)
{
    struct timeval  tv;
    redisContext   *ctx;
    dq_addr_t       a;
    dq_error_t      e;
    char            host[256], dbs[16];

    if (dq_addr_parse(dq_str_c(address), &a, &e) != DQ_OK) {
        snprintf(err, errlen, "%s", e.msg);
        return NULL;
    }
    if (a.nseeds > 0) {
        /* never one of the seeds taken as "the" Redis: a single connection
         * reaches only the slots of one node */
        snprintf(err, errlen, "%s: a Redis Cluster address needs a "
                 "connection per node, which this single-connection API "
                 "cannot give (the C client, dq_client_new, routes a "
                 "cluster)", address);
        return NULL;
    }
    tv = dq__ms_tv(timeout_ms);
    if (a.master.len) {
        ctx = dq__sentinel_open(&a, password, tv, err, errlen);
        password = NULL;                  /* AUTH done before ROLE */
    } else if (a.path.len) {
        ctx = dq__open(NULL, 0, address + 5, tv, err, errlen);
    } else {
        snprintf(host, sizeof(host), "%.*s", (int) a.host.len, a.host.ptr);
        ctx = dq__open(host, a.port, NULL, tv, err, errlen);
    }
    if (ctx == NULL) {
        return NULL;
    }
    /* an empty password (-a '', an exported empty variable) is none */
    if (password && password[0]
        && dq__setup_cmd(ctx, "AUTH", password, err, errlen) != 0)
    {
        goto fail;
    }
    snprintf(dbs, sizeof(dbs), "%d", db);
    if (db && dq__setup_cmd(ctx, "SELECT", dbs, err, errlen) != 0) {
        goto fail;
    }
    if (dq__check_server(ctx, err, errlen) != 0) {
        goto fail;
    }
    return ctx;

fail:
    redisFree(ctx);
    return NULL;
}

redisContext *
dq__node_open(const char *host, int port, const char *password,
              int timeout_ms, char *err, size_t errlen)
{
    redisContext   *ctx;

    ctx = dq__open(host, port, NULL, dq__ms_tv(timeout_ms), err, errlen);
    if (ctx == NULL) {
        return NULL;
    }
    if ((password && password[0]
         && dq__setup_cmd(ctx, "AUTH", password, err, errlen) != 0)
        || dq__check_server(ctx, err, errlen) != 0)
    {
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

static int
dq__connect(dq_client_t *c)
{
    char err[sizeof(c->errstr)];

    if (c->cl) {
        return dq__cl_ready(c);
    }
    if (c->ctx && c->ctx->err == 0) {
        return DQ_OK;
    }
    dq__disconnect(c);
    c->ctx = dq_sync_connect(c->address, c->password, c->db, c->timeout_ms,
                             err, sizeof(err));
    if (c->ctx == NULL) {
        return dq__fail(c, strstr(err, "out of memory") ? DQ_ENOMEM
                                                         : DQ_EREDIS,
                        "%s", err);
    }
    return DQ_OK;
}

dq_client_t *
dq_client_new(const char *address, const dq_client_opts_t *opts)
{
    dq_client_t *c = calloc(1, sizeof(*c));
    dq_addr_t    a;
    dq_error_t   err;
    int          bad;

    if (c == NULL) {
        return NULL;
    }
    if (address == NULL || address[0] == '\0') {
        address = "127.0.0.1:6379";
    }
    bad = dq_addr_parse(dq_str_c(address), &a, &err) != DQ_OK;
    if (bad) {
        dq__fail(c, DQ_EINVAL, "%s", err.msg);
    }
    c->address = strdup(address);
    if (c->address == NULL || (!bad && a.nseeds > 0 && dq__cl_new(c) != DQ_OK))
    {
        goto nomem;
    }
    c->timeout_ms = 5000;
    c->tombstone_ms = DQ_DEFAULT_TOMBSTONE_MS;
    dq_limits_default(&c->lim);
    if (opts) {
        if (opts->password && opts->password[0]) {
            c->password = strdup(opts->password);
            if (c->password == NULL) {
                goto nomem;
            }
        }
        c->db = opts->db;
        if (opts->timeout_ms > 0) {
            c->timeout_ms = opts->timeout_ms;
        }
        if (opts->tombstone_ms > 0) {
            c->tombstone_ms = opts->tombstone_ms;
        }
        if (opts->max_envelope > 0) {
            c->lim.max_envelope = opts->max_envelope;
        }
    }
    if (bad) {
        c->bad_address = 1;       /* every call answers DQ_EINVAL */
        return c;
    }
    (void) dq__connect(c);
    return c;

nomem:
    dq_client_free(c);
    return NULL;
}

void
dq_client_free(dq_client_t *c)
{
    if (c == NULL) {
        return;
    }
    dq__disconnect(c);
    dq__cl_free(c);
    free(c->address);
    free(c->password);
    free(c);
}

const char *
dq_client_errstr(const dq_client_t *c)
{
    return c->errstr;
}

/* Ready to talk: address valid and connected. */
int
dq__ready(dq_client_t *c)
{
    dq_addr_t  a;
    dq_error_t err;

    if (c->bad_address) {
        (void) dq_addr_parse(dq_str_c(c->address), &a, &err);
        return dq__fail(c, DQ_EINVAL, "%s", err.msg);
    }
    return dq__connect(c);
}

/* Read one reply of a pipeline; I/O errors drop the connection. */
int
dq__get_reply(dq_client_t *c, redisReply **r)
{
    void *p = NULL;

    if (c->cl) {
        return dq__cl_get_reply(c, r);
    }
    if (redisGetReply(c->ctx, &p) != REDIS_OK || p == NULL) {
        if (c->ctx->err == REDIS_ERR_IO
            && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
            dq__fail(c, DQ_EREDIS, "redis: no reply within %d ms (the "
                     "command may still run)", c->timeout_ms);
        } else {
            dq__fail(c, DQ_EREDIS, "redis: %s",
                     c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
        }
        dq__disconnect(c);
        *r = NULL;
        return DQ_EREDIS;
    }
    *r = p;
    return DQ_OK;
}

int
dq__append(dq_client_t *c, int argc, const char **argv,
           const size_t *argvlen)
{
    if (c->cl) {
        return dq__cl_append(c, argc, argv, argvlen);
    }
    if (redisAppendCommandArgv(c->ctx, argc, argv, argvlen) != REDIS_OK) {
        dq__disconnect(c);
        return dq__fail(c, DQ_ENOMEM, "redis: cannot queue the command");
    }
    return DQ_OK;
}

/* Send one script command; a NOSCRIPT reply is retried as EVAL (in a
 * cluster on the node that said it: the same slot). */
int
dq__run(dq_client_t *c, dq_cmd_t *cmd, redisReply **r)
{
    int rc;

    if ((rc = dq__append(c, cmd->argc, cmd->argv, cmd->argvlen)) != DQ_OK) {
        return rc;
    }
    if (dq__get_reply(c, r) != DQ_OK) {
        return DQ_EREDIS;
    }
    if (dq_reply_is_unavailable(*r)) {
        /* READONLY (a demoted primary), LOADING...: the next call
         * connects again (and asks the sentinels again) */
        dq__disconnect(c);
        return DQ_OK;
    }
    if (dq_reply_is_noscript(*r)) {
        freeReplyObject(*r);
        dq_cmd_use_eval(cmd);
        if ((rc = dq__append(c, cmd->argc, cmd->argv, cmd->argvlen))
            != DQ_OK)
        {
            return rc;
        }
        return dq__get_reply(c, r);
    }
    return DQ_OK;
}

int
dq_client_set_wait(dq_client_t *c, int replicas, int timeout_ms)
{
    if (replicas < 0 || (replicas > 0 && timeout_ms <= 0)) {
        return dq__fail(c, DQ_EINVAL, "dq_client_set_wait: replicas >= 0 "
                        "and timeout_ms > 0 needed");
    }
    c->wait_replicas = replicas;
    c->wait_ms = timeout_ms;
    return DQ_OK;
}

int
dq__wait(dq_client_t *c)
{
    redisReply     *r;
    int             rc = DQ_OK;
    long long       total = (long long) c->timeout_ms + c->wait_ms;

    if (c->cl) {
        return dq__cl_wait(c, c->wait_replicas, c->wait_ms);
    }
    redisSetTimeout(c->ctx, dq__ms_tv(total));
    r = redisCommand(c->ctx, "WAIT %d %d", c->wait_replicas, c->wait_ms);
    if (r == NULL) {
        rc = dq__fail(c, DQ_EREDIS, "stored, but WAIT got no reply: %s",
                      c->ctx->errstr[0] ? c->ctx->errstr : "no reply");
        dq__disconnect(c);
        return rc;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = dq__fail(c, DQ_EREDIS, "stored, but WAIT failed: %s", r->str);
    } else if (r->type != REDIS_REPLY_INTEGER
               || r->integer < c->wait_replicas)
    {
        rc = dq__fail(c, DQ_EREDIS, "stored, but acknowledged by %lld of "
                      "%d replicas within %d ms",
                      r->type == REDIS_REPLY_INTEGER ? r->integer : -1LL,
                      c->wait_replicas, c->wait_ms);
    }
    freeReplyObject(r);
    redisSetTimeout(c->ctx, dq__ms_tv(c->timeout_ms));
    return rc;
}

/* A command on ctx that got no reply: the connection is dropped. */
static int
dq__node_lost(dq_client_t *c, redisContext *ctx, const char *cmd,
              const char *who, const char *what)
{
    int rc = dq__fail(c, DQ_EREDIS, "%s stored, but %s on %s got no reply: "
                      "%s", what, cmd, who, ctx->errstr[0] ? ctx->errstr
                                                           : "no reply");

    dq__disconnect(c);
    return rc;
}

int
dq__wait_node(dq_client_t *c, redisContext *ctx, const char *who,
              int timeout_ms, const char *what)
{
    redisReply     *r;
    long long       total = (long long) c->timeout_ms + timeout_ms;
    size_t          nrep = 0;
    int             rc = DQ_OK;

    if ((r = redisCommand(ctx, "ROLE")) == NULL) {
        return dq__node_lost(c, ctx, "ROLE", who, what);
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3
        && r->element[0]->type == REDIS_REPLY_STRING
        && strcmp(r->element[0]->str, "master") == 0
        && r->element[2]->type == REDIS_REPLY_ARRAY)
    {
        nrep = r->element[2]->elements;
    }
    freeReplyObject(r);
    if (nrep == 0) {
        return DQ_OK;           /* no replica to lose it to */
    }
    redisSetTimeout(ctx, dq__ms_tv(total));
    if ((r = redisCommand(ctx, "WAIT 1 %d", timeout_ms)) == NULL) {
        return dq__node_lost(c, ctx, "WAIT", who, what);
    }
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 1) {
        rc = dq__fail(c, DQ_EREDIS, "%s stored on %s, but none of its %zu "
                      "replicas acknowledged it within %d ms (%s): a "
                      "failover now would lose it; run the command again",
                      what, who, nrep, timeout_ms,
                      r->type == REDIS_REPLY_ERROR ? r->str : "WAIT");
    }
    freeReplyObject(r);
    redisSetTimeout(ctx, dq__ms_tv(c->timeout_ms));
    return rc;
}

int
dq__wait_replicated(dq_client_t *c, int timeout_ms, const char *what)
{
    if (c->cl) {
        return dq__cl_wait_replicated(c, timeout_ms, what);
    }
    return dq__wait_node(c, c->ctx, "redis", timeout_ms, what);
}
