/*
 * The C client (include/deferred/client.h): synchronous hiredis.
 *
 * A task is built exactly as an HTTP client's would be: the options become
 * a public request map (msgpack), which goes through the same strict
 * decoder and dq_request_parse as a POST body, then dq_envelope_encode and
 * the enqueue script. So a C program cannot store anything the nginx module
 * would refuse.
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

static int dq__wait(dq_client_t *c);

/* ------------------------------------------------------------ connection */

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
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
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
    struct timeval  tv;
    redisContext   *ctx;

    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    ctx = dq__open(host, port, NULL, tv, err, errlen);
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

/* ------------------------------------------------------------ defer */

static int
dq__pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int
dq__pack_key(msgpack_packer *pk, const char *k)
{
    return dq__pack_cstr(pk, k);
}

/* The options as a public request map (what an HTTP client would POST). */
static int
dq__pack_request(msgpack_packer *pk, const char *func, const dq_args_t *args,
                 const dq_defer_opts_t *o)
{
    const dq_retry_t *r = &o->retry;
    uint32_t          n = 1, nr = 0;
    size_t            i;
    int               rc;

    n += args != NULL;
    n += o->kwargs != NULL;
    n += o->queue != NULL;
    n += o->name != NULL;
    n += o->id != NULL;
    n += o->url != NULL;
    n += o->countdown_ms >= 0;
    n += o->eta_ms >= 0;
    n += o->nheaders > 0;
    nr = (r->retry_limit >= 0) + (r->age_limit_ms >= 0)
         + (r->min_backoff_ms >= 0) + (r->max_backoff_ms >= 0)
         + (r->max_doublings >= 0);
    n += nr > 0;

    rc = msgpack_pack_map(pk, n) || dq__pack_key(pk, "func")
         || dq__pack_cstr(pk, func);
    if (!rc && args) {
        rc = dq__pack_key(pk, "args") || dq__args_pack(args, pk);
    }
    if (!rc && o->kwargs) {
        rc = dq__pack_key(pk, "kwargs") || dq__args_pack(o->kwargs, pk);
    }
    if (!rc && o->queue) {
        rc = dq__pack_key(pk, "queue") || dq__pack_cstr(pk, o->queue);
    }
    if (!rc && o->name) {
        rc = dq__pack_key(pk, "name") || dq__pack_cstr(pk, o->name);
    }
    if (!rc && o->id) {
        rc = dq__pack_key(pk, "id") || dq__pack_cstr(pk, o->id);
    }
    if (!rc && o->url) {
        rc = dq__pack_key(pk, "url") || dq__pack_cstr(pk, o->url);
    }
    if (!rc && o->countdown_ms >= 0) {
        rc = dq__pack_key(pk, "countdown")
             || msgpack_pack_double(pk, (double) o->countdown_ms / 1000.0);
    }
    if (!rc && o->eta_ms >= 0) {
        rc = dq__pack_key(pk, "eta")
             || msgpack_pack_double(pk, (double) o->eta_ms / 1000.0);
    }
    if (!rc && o->nheaders > 0) {
        rc = dq__pack_key(pk, "headers")
             || msgpack_pack_map(pk, o->nheaders);
        for (i = 0; !rc && i < o->nheaders; i++) {
            rc = dq__pack_cstr(pk, o->headers[i].name ? o->headers[i].name
                                                      : "")
                 || dq__pack_cstr(pk, o->headers[i].value
                                      ? o->headers[i].value : "");
        }
    }
    if (!rc && nr > 0) {
        rc = dq__pack_key(pk, "retry_options") || msgpack_pack_map(pk, nr);
        if (!rc && r->retry_limit >= 0) {
            rc = dq__pack_key(pk, "task_retry_limit")
                 || msgpack_pack_int64(pk, r->retry_limit);
        }
        if (!rc && r->age_limit_ms >= 0) {
            rc = dq__pack_key(pk, "task_age_limit")
                 || msgpack_pack_double(pk, r->age_limit_ms / 1000.0);
        }
        if (!rc && r->min_backoff_ms >= 0) {
            rc = dq__pack_key(pk, "min_backoff_seconds")
                 || msgpack_pack_double(pk, r->min_backoff_ms / 1000.0);
        }
        if (!rc && r->max_backoff_ms >= 0) {
            rc = dq__pack_key(pk, "max_backoff_seconds")
                 || msgpack_pack_double(pk, r->max_backoff_ms / 1000.0);
        }
        if (!rc && r->max_doublings >= 0) {
            rc = dq__pack_key(pk, "max_doublings")
                 || msgpack_pack_int64(pk, r->max_doublings);
        }
    }
    return rc ? -1 : 0;
}

/* One task prepared for the enqueue script. */
typedef struct {
    size_t   env_off, env_len;    /* in the shared envelope buffer */
    char     id[DQ_ID_SIZE];
    char     queue[DQ_QUEUE_NAME_MAX + 1];
    char     shard[DQ_SHARD_NAME_MAX + 1];   /* the queue's shard it goes
                                             to (client_shards.c) */
    char    *name;                /* malloc'd copy, or NULL */
    int64_t  eta_ms, countdown_ms;
    int      status;
    int64_t  result_eta;
    int      sent;
    int      answered;            /* its call's reply was read: status is
                                     Redis's answer */
    int      keyed;               /* id given by the caller */
} dq__prep_t;

/* Validate one call and append its envelope to envs. */
static int
dq__prepare(dq_client_t *c, const char *func, const dq_args_t *args,
            const dq_defer_opts_t *opts, const char *field,
            msgpack_sbuffer *envs, dq__prep_t *p)
{
    static const dq_defer_opts_t defaults = DQ_DEFER_OPTS_INIT;
    msgpack_sbuffer reqbuf;
    msgpack_packer  pk;
    msgpack_zone    zone;
    msgpack_object  root;
    dq_request_t    req;
    dq_error_t      err;
    int             rc;

    if (opts == NULL) {
        opts = &defaults;
    }
    if (func == NULL) {
        return dq__fail(c, DQ_EINVAL, "%s%sfunc: required", field,
                        field[0] ? "." : "");
    }
    if ((args && (args->broken || args->key_pending || args->is_map))
        || (opts->kwargs && (opts->kwargs->broken || opts->kwargs->key_pending
                             || !opts->kwargs->is_map)))
    {
        return dq__fail(c, DQ_EINVAL, "%s%s%s: incomplete or failed "
                        "arguments (args must come from dq_args_new, kwargs "
                        "from dq_kwargs_new with a value after every key)",
                        field, field[0] ? "." : "",
                        args && (args->broken || args->key_pending
                                 || args->is_map) ? "args" : "kwargs");
    }
    if (opts->nheaders && opts->headers == NULL) {
        return dq__fail(c, DQ_EINVAL, "%s%sheaders: NULL with nheaders %zu",
                        field, field[0] ? "." : "", opts->nheaders);
    }
    msgpack_sbuffer_init(&reqbuf);
    msgpack_packer_init(&pk, &reqbuf, msgpack_sbuffer_write);
    if (dq__pack_request(&pk, func, args, opts) != 0) {
        msgpack_sbuffer_destroy(&reqbuf);
        return dq__fail(c, DQ_ENOMEM, "out of memory building the task");
    }
    if (!msgpack_zone_init(&zone, 2048)) {
        msgpack_sbuffer_destroy(&reqbuf);
        return dq__fail(c, DQ_ENOMEM, "out of memory");
    }
    rc = dq_msgpack_unpack(reqbuf.data, reqbuf.size, &c->lim, &zone, &root,
                           &err);
    if (rc == DQ_OK) {
        rc = dq_request_parse(&root, field[0] ? field : NULL, &req, &err);
    }
    if (rc == DQ_OK && req.id.ptr && req.id.len > DQ_ID_LEN) {
        rc = dq_error_set(&err, DQ_EINVAL, "id", "%s%sid: at most %d "
                          "characters through the C client (it fits the "
                          "id_out buffers)", field, field[0] ? "." : "",
                          DQ_ID_LEN);
    }
    if (rc == DQ_OK) {
        if (req.id.ptr) {
            /* the caller's id: the enqueue is idempotent */
            memcpy(p->id, req.id.ptr, req.id.len);
            p->id[req.id.len] = '\0';
            p->keyed = 1;
        } else {
            dq_id_new(p->id);
        }
        p->env_off = envs->size;
        rc = dq_envelope_encode(&req, p->id, dq_now_ms(), &c->lim, envs,
                                &err);
        p->env_len = envs->size - p->env_off;
    }
    if (rc == DQ_OK) {
        memcpy(p->queue, req.queue.ptr, req.queue.len);
        p->queue[req.queue.len] = '\0';
        p->name = NULL;
        if (req.name.ptr) {
            p->name = strndup(req.name.ptr, req.name.len);
            if (p->name == NULL) {
                rc = DQ_ENOMEM;
                dq_error_set(&err, rc, NULL, "out of memory");
            }
        }
        p->eta_ms = req.eta_ms;
        p->countdown_ms = req.countdown_ms;
    }
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&reqbuf);
    if (rc != DQ_OK) {
        return dq__fail_err(c, &err);
    }
    return DQ_OK;
}

static void
dq__status_text(dq_client_t *c, const dq__prep_t *p)
{
    if (p->status == DQ_EDUPLICATE) {
        dq__fail(c, DQ_EDUPLICATE, "task name \"%s\" in queue \"%s\": a task "
                 "with this name is waiting or running", p->name, p->queue);
    } else if (p->status == DQ_ETOMBSTONE) {
        dq__fail(c, DQ_ETOMBSTONE, "task name \"%s\" in queue \"%s\": a task "
                 "with this name ran or died recently (tombstoned)", p->name,
                 p->queue);
    }
}

/* An error reply to one enqueue call (a node refused it: TRYAGAIN, OOM,
 * CLUSTERDOWN, READONLY...): its tasks get DQ_EREDIS (the first such
 * reply is errstr) and the other calls' results stand, so a caller of
 * dq_defer_many sees which tasks to send again. 1 if r was one (freed). */
static int
dq__call_refused(dq_client_t *c, redisReply *r, dq_enqueue_result_t *res,
                 size_t n, int *refused)
{
    size_t i;

    if (r->type != REDIS_REPLY_ERROR) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        res[i].status = DQ_EREDIS;
    }
    if (!*refused) {
        dq__fail(c, DQ_EREDIS, "enqueue: %.*s", (int) r->len, r->str);
        *refused = 1;
    }
    freeReplyObject(r);
    return 1;
}

/* One call's reply read: its tasks' results are final (kept even if a
 * later call's reply is lost). */
static void
dq__call_answered(dq__prep_t *preps, const size_t *idx,
                  const dq_enqueue_result_t *res, size_t first, size_t n)
{
    size_t i;

    for (i = first; i < first + n; i++) {
        preps[idx[i]].status = res[i].status;
        preps[idx[i]].result_eta = res[i].eta_ms;
        preps[idx[i]].answered = 1;
    }
}

/* Enqueue prepared tasks: one script call per queue per DQ__CHUNK tasks,
 * all pipelined, then all replies read. Each task whose call's reply was
 * read gets its result (answered); the others keep answered 0 and the
 * error returned is theirs. With dq_client_set_wait, the WAIT follows;
 * if it fails, or the calls stopped before it, the answered tasks that
 * were stored (DQ_OK) get DQ_EREDIS ("stored, but ..."); a duplicate or
 * tombstoned one keeps its status (nothing was written for it). */
static int
dq__enqueue(dq_client_t *c, dq__prep_t *preps, size_t n,
            const msgpack_sbuffer *envs)
{
    dq_enqueue_item_t   *items = NULL;
    dq_enqueue_result_t *res = NULL;
    size_t              *idx = NULL, ncalls = 0, i, j, k, m;
    dq_cmd_t            *cmds = NULL;
    size_t              *call_first = NULL, *call_n = NULL;
    unsigned char       *call_sadd = NULL;     /* SADD dq:queues follows */
    redisReply          *r;
    dq_error_t           err;
    const char          *sadd[3];
    char                 qkey[DQ_SHARD_NAME_MAX + 1];
    int                  rc = DQ_OK, refused = 0, wrc;

    items = calloc(n, sizeof(*items));
    res = calloc(n, sizeof(*res));
    idx = calloc(n, sizeof(*idx));
    cmds = calloc(n, sizeof(*cmds));        /* at most n calls */
    call_first = calloc(n, sizeof(*call_first));
    call_n = calloc(n, sizeof(*call_n));
    call_sadd = calloc(n, sizeof(*call_sadd));
    if (!items || !res || !idx || !cmds || !call_first || !call_n
        || !call_sadd)
    {
        rc = dq__fail(c, DQ_ENOMEM, "out of memory");
        goto done;
    }
    /* the shard of each task's queue (a sharded queue: by its name, else
     * by the id the caller chose, so a retry finds the stored task; else
     * round robin; docs/SCALING.md) */
    for (i = 0; i < n; i++) {
        if (!preps[i].sent
            && (rc = dq__shard_target(c, preps[i].queue,
                                      preps[i].name ? preps[i].name
                                      : preps[i].keyed ? preps[i].id : NULL,
                                      preps[i].shard)) != DQ_OK)
        {
            goto done;
        }
    }
    /* group by shard, keeping the callers' order inside a shard */
    m = 0;
    for (i = 0; i < n; i++) {
        if (preps[i].sent) {
            continue;
        }
        snprintf(qkey, sizeof(qkey), "%s", preps[i].shard);
        for (j = i; j < n; j++) {
            if (preps[j].sent || strcmp(preps[j].shard, qkey) != 0) {
                continue;
            }
            if (ncalls == 0 || call_n[ncalls - 1] == DQ__CHUNK
                || strcmp(preps[idx[call_first[ncalls - 1]]].shard, qkey) != 0)
            {
                call_first[ncalls] = m;
                call_n[ncalls] = 0;
                ncalls++;
            }
            preps[j].sent = 1;
            idx[m] = j;
            items[m].id = dq_str_c(preps[j].id);
            items[m].envelope.ptr = envs->data + preps[j].env_off;
            items[m].envelope.len = preps[j].env_len;
            items[m].name = dq_str_c(preps[j].name);
            items[m].eta_ms = preps[j].eta_ms;
            items[m].countdown_ms = preps[j].countdown_ms;
            items[m].keyed = preps[j].keyed;
            call_n[ncalls - 1]++;
            m++;
        }
    }
    for (k = 0; k < ncalls; k++) {
        dq_cmd_init(&cmds[k]);
        rc = dq_cmd_enqueue(&cmds[k],
                            dq_str_c(preps[idx[call_first[k]]].shard),
                            &items[call_first[k]], call_n[k], c->tombstone_ms);
        if (rc != DQ_OK) {
            dq__fail(c, rc, "cannot build the enqueue command");
            ncalls = k + 1;
            goto done;
        }
    }
    if (c->cl) {
        /* WAIT where these calls are answered (not where N was read) */
        dq__cl_wait_reset(c);
    }
    /* pipeline: every call, plus the informational queue set once per
     * queue per connection (any I/O error drops the connection and the
     * record with it, so a queue is marked only once its SADD is queued on
     * a connection that then stays up or forgets) */
    for (k = 0; k < ncalls; k++) {
        rc = dq__append(c, cmds[k].argc, cmds[k].argv, cmds[k].argvlen);
        if (rc != DQ_OK) {
            goto done;
        }
        sadd[2] = preps[idx[call_first[k]]].queue;
        if (dq__qset_has(&c->queues, sadd[2])) {
            continue;
        }
        sadd[0] = "SADD";
        sadd[1] = DQ_QUEUES_KEY;
        if ((rc = dq__append(c, 3, sadd, NULL)) != DQ_OK) {
            goto done;
        }
        if (dq__qset_add(&c->queues, sadd[2]) != 0) {
            dq__disconnect(c);
            rc = dq__fail(c, DQ_ENOMEM, "redis: cannot queue the command");
            goto done;
        }
        call_sadd[k] = 1;
    }
    for (k = 0; k < ncalls; k++) {
        if (dq__get_reply(c, &r) != DQ_OK) {
            rc = DQ_EREDIS;
            goto done;
        }
        if (dq_reply_is_noscript(r)) {
            /* not run: send it again as EVAL once the pipeline drained */
            freeReplyObject(r);
            r = NULL;
        }
        if (r && dq__call_refused(c, r, &res[call_first[k]], call_n[k],
                                  &refused))
        {
            dq__call_answered(preps, idx, res, call_first[k], call_n[k]);
            call_n[k] = 0;      /* done: its tasks' status says so */
        } else if (r) {
            rc = dq_reply_enqueue(r, &items[call_first[k]], call_n[k],
                                  &res[call_first[k]], &err);
            freeReplyObject(r);
            if (rc != DQ_OK) {
                dq__fail_err(c, &err);
                goto drain;
            }
            dq__call_answered(preps, idx, res, call_first[k], call_n[k]);
            call_n[k] = 0;      /* done */
        }
        if (call_sadd[k]) {
            if (dq__get_reply(c, &r) != DQ_OK) {
                rc = DQ_EREDIS;
                goto done;
            }
            freeReplyObject(r);    /* SADD: informational, errors ignored */
        }
    }
    for (k = 0; k < ncalls; k++) {
        if (call_n[k] == 0) {
            continue;
        }
        rc = dq__run(c, &cmds[k], &r);
        if (rc != DQ_OK) {
            goto done;
        }
        if (dq__call_refused(c, r, &res[call_first[k]], call_n[k], &refused))
        {
            dq__call_answered(preps, idx, res, call_first[k], call_n[k]);
            continue;
        }
        rc = dq_reply_enqueue(r, &items[call_first[k]], call_n[k],
                                  &res[call_first[k]], &err);
        freeReplyObject(r);
        if (rc != DQ_OK) {
            dq__fail_err(c, &err);
            goto done;
        }
        dq__call_answered(preps, idx, res, call_first[k], call_n[k]);
    }
    goto done;

drain:
    /* a malformed reply: read the rest so the connection stays in step
     * (this call's SADD, then every later call and its SADD) */
    for (i = call_sadd[k], k++; k < ncalls; k++) {
        i += 1 + call_sadd[k];
    }
    while (i-- > 0 && dq__get_reply(c, &r) == DQ_OK) {
        freeReplyObject(r);
    }
done:
    if (c->wait_replicas > 0) {
        /* stored is not enough: replicated, or the stored ones fail */
        wrc = rc == DQ_OK ? dq__wait(c) : rc;
        for (i = 0; wrc != DQ_OK && i < n; i++) {
            if (preps[i].answered && preps[i].status == DQ_OK) {
                preps[i].status = wrc;
            }
        }
    }
    if (cmds) {
        for (k = 0; k < ncalls; k++) {
            dq_cmd_free(&cmds[k]);
        }
    }
    free(items);
    free(res);
    free(idx);
    free(cmds);
    free(call_first);
    free(call_n);
    free(call_sadd);
    return rc;
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

/* WAIT for the replicas after an enqueue (the socket timeout stretched by
 * the wait's own). */
static int
dq__wait(dq_client_t *c)
{
    struct timeval  tv;
    redisReply     *r;
    int             rc = DQ_OK;
    long long       total = (long long) c->timeout_ms + c->wait_ms;

    if (c->cl) {
        return dq__cl_wait(c, c->wait_replicas, c->wait_ms);
    }
    tv.tv_sec = (time_t) (total / 1000);
    tv.tv_usec = (suseconds_t) (total % 1000) * 1000;
    redisSetTimeout(c->ctx, tv);
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
    tv.tv_sec = c->timeout_ms / 1000;
    tv.tv_usec = (c->timeout_ms % 1000) * 1000;
    redisSetTimeout(c->ctx, tv);
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
    struct timeval  tv;
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
    tv.tv_sec = (time_t) (total / 1000);
    tv.tv_usec = (suseconds_t) (total % 1000) * 1000;
    redisSetTimeout(ctx, tv);
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
    tv.tv_sec = c->timeout_ms / 1000;
    tv.tv_usec = (c->timeout_ms % 1000) * 1000;
    redisSetTimeout(ctx, tv);
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

static int
dq__defer_many(dq_client_t *c, const dq_defer_req_t *reqs, size_t n,
               int *statuses, char (*ids)[DQ_ID_SIZE], int64_t *etas)
{
    msgpack_sbuffer envs;
    dq__prep_t     *preps;
    char            field[32], first_err[sizeof(c->errstr)];
    size_t          i, j, first_bad = n, nvalid = 0;
    int             rc = DQ_OK;

    c->errstr[0] = '\0';
    if (n == 0) {
        return DQ_OK;
    }
    if (reqs == NULL || statuses == NULL) {
        return dq__fail(c, DQ_EINVAL, "dq_defer_many: NULL reqs or statuses");
    }
    preps = calloc(n, sizeof(*preps));
    if (preps == NULL) {
        return dq__fail(c, DQ_ENOMEM, "out of memory");
    }
    msgpack_sbuffer_init(&envs);
    for (i = 0; i < n; i++) {
        field[0] = '\0';
        if (n > 1) {
            snprintf(field, sizeof(field), "tasks[%zu]", i);
        }
        statuses[i] = dq__prepare(c, reqs[i].func, reqs[i].args,
                                  reqs[i].opts, field, &envs, &preps[i]);
        if (statuses[i] != DQ_OK) {
            preps[i].sent = 1;      /* invalid: never sent */
            if (first_bad == n) {
                first_bad = i;
                rc = statuses[i];
                memcpy(first_err, c->errstr, sizeof(first_err));
            }
        } else {
            nvalid++;
        }
    }
    if (nvalid == 0) {
        memcpy(c->errstr, first_err, sizeof(first_err));
        goto done;
    }
    c->errstr[0] = '\0';
    rc = dq__ready(c);
    if (rc == DQ_OK) {
        rc = dq__enqueue(c, preps, n, &envs);
    }
    for (i = 0; i < n; i++) {
        if (statuses[i] != DQ_OK) {
            if (ids) {
                ids[i][0] = '\0';  /* refused before sending */
            }
            continue;
        }
        /* a call answered keeps its tasks' results when a later one's
         * reply is lost; only the unanswered ones get the error */
        statuses[i] = preps[i].answered ? preps[i].status
                      : rc != DQ_OK ? rc : DQ_EREDIS;
        if (ids) {
            memcpy(ids[i], preps[i].id, DQ_ID_SIZE);
        }
        if (etas) {
            etas[i] = preps[i].result_eta;
        }
    }
    if (rc == DQ_OK) {
        /* the calls were made (see statuses); errstr tells why the first
         * refused task was refused, but a Redis error (a node's refusal,
         * a failed WAIT) keeps its text: a duplicate says nothing new */
        for (i = 0; i < n && statuses[i] == DQ_OK; i++) {
            /* find it */
        }
        for (j = i; j < n && statuses[j] != DQ_EREDIS; j++) {
            /* a Redis error after it? */
        }
        if (i == first_bad) {
            memcpy(c->errstr, first_err, sizeof(first_err));
        } else if (i < n && j == n) {
            dq__status_text(c, &preps[i]);
        }
    }

done:
    for (i = 0; i < n; i++) {
        free(preps[i].name);
    }
    free(preps);
    msgpack_sbuffer_destroy(&envs);
    return rc;
}

int
dq_defer_many(dq_client_t *c, const dq_defer_req_t *reqs, size_t n,
              int *statuses, char (*ids)[DQ_ID_SIZE])
{
    return dq__defer_many(c, reqs, n, statuses, ids, NULL);
}

int
dq_defer(dq_client_t *c, const char *func, const dq_args_t *args,
         const dq_defer_opts_t *opts, char id_out[DQ_ID_SIZE],
         int64_t *eta_ms)
{
    dq_defer_req_t req;
    int            status = DQ_ERR, rc;
    char           ids[1][DQ_ID_SIZE];
    int64_t        eta = 0;

    req.func = func;
    req.args = args;
    req.opts = opts;
    rc = dq__defer_many(c, &req, 1, &status, ids, &eta);
    if (rc == DQ_OK) {
        rc = status;
    }
    if (rc != DQ_OK) {
        return rc;
    }
    if (id_out) {
        memcpy(id_out, ids[0], DQ_ID_SIZE);
    }
    if (eta_ms) {
        *eta_ms = eta;
    }
    return DQ_OK;
}
