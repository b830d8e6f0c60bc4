
/*
 * ngx_http_deferred_module: locations for operators.
 *
 *   deferred_status      JSON: every queue's counts, counters, lateness
 *                        histogram, newest dead tasks; live workers
 *   deferred_metrics     the same as Prometheus text exposition
 *   deferred_dashboard   an HTML page (embedded, no CDN) that polls the
 *                        status location and posts to the admin one
 *   deferred_admin       POST ?action=retry|delete|pause|resume&queue=Q
 *                        [&id=ID], with the header X-Deferred-Admin: 1
 *   deferred_ready       200 when Redis answers and the enqueue script is
 *                        loaded, else 503
 *
 * Nothing blocks: the commands go over the worker's hiredis connection
 * (ngx_http_deferred_redis.c). A collection is an "op" that owns its own
 * pool and outlives its request if it must: every reply handler runs
 * exactly once; when the request goes first (client gone, or the
 * deferred_timeout answered 503), the op is detached and freed with its
 * last reply. Restrict these locations like any other (allow/deny,
 * auth_basic): docs/MODULE.md.
 *
 * Here: the directive, the content handler, the op, the collection of
 * status and metrics, readiness. The admin actions, the rendering and
 * the page have their own files (ngx_http_deferred_ops.h lists them).
 */


#include "ngx_http_deferred_ops.h"


#define NGX_HTTP_DEFERRED_DEAD_LIMIT     20

/* a scrape without Redis still succeeds: the scraper sees redis_up 0 */
#define NGX_HTTP_DEFERRED_METRICS_DOWN                                      \
    "# HELP deferred_redis_up 1 if Redis answered this scrape.\n"           \
    "# TYPE deferred_redis_up gauge\n"                                      \
    "deferred_redis_up 0\n"
#define NGX_HTTP_DEFERRED_MAX_WORKERS    1000


static ngx_int_t ngx_http_deferred_ops_handler(ngx_http_request_t *r);
static void ngx_http_deferred_ops_start(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_ops_setup_done(void *data, ngx_int_t rc);
static ngx_int_t ngx_http_deferred_ops_down(ngx_http_deferred_op_t *op,
    ngx_str_t *body, const char **type);
static ngx_http_deferred_op_t *ngx_http_deferred_op_new(
    ngx_http_request_t *r, ngx_uint_t kind);
static ngx_int_t ngx_http_deferred_op_plain(ngx_http_deferred_op_t *op,
    ngx_uint_t what, ngx_uint_t index, ngx_uint_t argc, ngx_str_t *argv);
static ngx_int_t ngx_http_deferred_op_send(ngx_http_deferred_op_t *op,
    ngx_http_deferred_op_cmd_t *oc);
static void ngx_http_deferred_op_reply(void *data, redisReply *reply);
static void ngx_http_deferred_op_next(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_op_timeout(ngx_event_t *ev);
static void ngx_http_deferred_op_cleanup(void *data);
static void ngx_http_deferred_op_release(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_op_cmd_free(void *data);
static void ngx_http_deferred_op_queue(ngx_http_deferred_op_t *op,
    ngx_http_deferred_qstat_t *q, redisReply *reply);
static ngx_int_t ngx_http_deferred_op_shards(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_op_sum(ngx_http_deferred_op_t *op);
static int ngx_libc_cdecl ngx_http_deferred_dead_cmp(const void *one,
    const void *two);


/* the directives (registered in ngx_http_deferred_module.c's table) take
 * their kind from cmd->post */
ngx_uint_t  ngx_http_deferred_ops_kinds[] = {
    0,
    NGX_HTTP_DEFERRED_OPS_STATUS,
    NGX_HTTP_DEFERRED_OPS_METRICS,
    NGX_HTTP_DEFERRED_OPS_DASHBOARD,
    NGX_HTTP_DEFERRED_OPS_ADMIN,
    NGX_HTTP_DEFERRED_OPS_READY
};


const char  *ngx_http_deferred_counter_names[7] = {
    "enqueued", "done", "retried", "dead", "requeued", "deleted", "reclaimed"
};

const int64_t  ngx_http_deferred_late_bounds[DQ_LATENESS_NBOUNDS] =
    DQ_LATENESS_BOUNDS_MS;


/* configuration */

char *
ngx_http_deferred_ops_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_deferred_loc_conf_t  *dlcf = conf;

    ngx_str_t                     *value;
    ngx_uint_t                     i, n;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_deferred_ops_conf_t  *oc;

    if (dlcf->ops != NULL) {
        return "is duplicate (one operator directive per location)";
    }

    oc = ngx_pcalloc(cf->pool, sizeof(ngx_http_deferred_ops_conf_t));
    if (oc == NULL) {
        return NGX_CONF_ERROR;
    }

    oc->kind = *(ngx_uint_t *) cmd->post;

    value = cf->args->elts;

    ngx_str_set(&oc->status_url, "status");
    ngx_str_set(&oc->admin_url, "admin");

    /* "open" anywhere; the dashboard's URLs in order */
    for (i = 1, n = 0; i < cf->args->nelts; i++) {

        if (value[i].len == 4 && ngx_strcmp(value[i].data, "open") == 0) {
            if (oc->kind == NGX_HTTP_DEFERRED_OPS_READY || oc->open) {
                return "has an invalid \"open\"";
            }

            oc->open = 1;
            continue;
        }

        if (oc->kind != NGX_HTTP_DEFERRED_OPS_DASHBOARD || n == 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (n++ == 0) {
            oc->status_url = value[i];

        } else {
            oc->admin_url = value[i];
        }
    }

    if (oc->open && oc->kind == NGX_HTTP_DEFERRED_OPS_ADMIN) {
        /* allow/deny and auth_basic may follow in the block and keep
         * their settings private: the warning is given every time */
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"deferred_admin open\" lets every address "
                           "retry, delete, pause and resume tasks: restrict "
                           "this location with allow/deny or auth_basic");
    }

    dlcf->ops = oc;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_deferred_ops_handler;

    return NGX_CONF_OK;
}


/* the content handler */

static ngx_int_t
ngx_http_deferred_ops_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      body;
    const char                    *type;
    ngx_http_deferred_op_t        *op;
    ngx_http_deferred_loc_conf_t  *dlcf;
    ngx_http_deferred_ops_conf_t  *oc;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_deferred_module);
    oc = dlcf->ops;

    /* safe by default: the operator locations answer only the local host
     * (as the endpoint does) unless "open"; deferred_ready always answers */
    if (!oc->open && oc->kind != NGX_HTTP_DEFERRED_OPS_READY
        && ngx_http_deferred_local_client(r) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "deferred: 403 client %V is not local; this operator "
                      "location is not \"open\"",
                      &r->connection->addr_text);

        return NGX_HTTP_FORBIDDEN;
    }

    if (oc->kind == NGX_HTTP_DEFERRED_OPS_ADMIN) {
        if (r->method != NGX_HTTP_POST) {
            return NGX_HTTP_NOT_ALLOWED;
        }

    } else if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (oc->kind == NGX_HTTP_DEFERRED_OPS_DASHBOARD) {
        return ngx_http_deferred_dashboard_send(r, oc);
    }

    if (dlcf->redis == NULL || dlcf->redis == NGX_CONF_UNSET_PTR) {
        ngx_str_set(&body, "{\"error\":\"NoRedis\",\"message\":"
                           "\"no deferred_redis for this location\"}\n");
        return ngx_http_deferred_ops_send(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                          "application/json", &body);
    }

    op = ngx_http_deferred_op_new(r, oc->kind);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (oc->kind == NGX_HTTP_DEFERRED_OPS_ADMIN) {
        rc = ngx_http_deferred_admin_start(op);
        if (rc != NGX_OK) {
            ngx_http_deferred_op_release(op);
            return rc;
        }
    }

    /* the connection still in its setup (the first requests after a
     * start or reload): they wait for it, within deferred_timeout */

    rc = ngx_http_deferred_redis_await(dlcf->redis, &op->setup);

    if (rc == NGX_OK) {
        ngx_http_deferred_ops_start(op);
    }

    if (rc != NGX_AGAIN && op->pending == 0) {
        /* nothing could be sent: Redis is not reachable */
        rc = ngx_http_deferred_ops_down(op, &body, &type);
        ngx_http_deferred_op_release(op);
        return ngx_http_deferred_ops_send(r, rc, type, &body);
    }

    ngx_add_timer(&op->timer, dlcf->timeout);

    /* a client that leaves is noticed while the op waits (499); its
     * request's cleanup ends the wait (review RM). A body still being
     * discarded keeps its handler (it notices a close too). */
    if (!r->discard_body) {
        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_request_empty_handler;
    }

    r->main->count++;

    return NGX_DONE;
}


/* the op's first commands (the later ones follow their replies) */

static void
ngx_http_deferred_ops_start(ngx_http_deferred_op_t *op)
{
    ngx_str_t                    argv[4];
    ngx_uint_t                   n, nmasters;
    ngx_http_deferred_op_cmd_t  *cmd;

    switch (op->kind) {

    case NGX_HTTP_DEFERRED_OPS_ADMIN:
        ngx_http_deferred_admin_shards(op);
        break;

    case NGX_HTTP_DEFERRED_OPS_READY:
        /* EVALSHA of lib/lua/ready.lua: refused when Redis refuses
         * writes (OOM, read-only replica); its source only after a
         * NOSCRIPT. A cluster: asked of every master (each queue lives
         * on one), ready only if all of them answer */
        nmasters = ngx_http_deferred_redis_masters(op->redis);

        for (n = 0; n < nmasters; n++) {
            cmd = ngx_http_deferred_op_cmd(op, NGX_HTTP_DEFERRED_OP_ACTION,
                                           n);
            if (cmd == NULL) {
                break;
            }

            if (ngx_http_deferred_op_script(op, cmd, dq_cmd_ready(&cmd->cmd))
                != NGX_OK)
            {
                break;
            }
        }
        break;

    default:
        ngx_str_set(&argv[0], "SMEMBERS");
        ngx_str_set(&argv[1], DQ_QUEUES_KEY);
        (void) ngx_http_deferred_op_plain(op, NGX_HTTP_DEFERRED_OP_QUEUES, 0,
                                          2, argv);

        /* every member: scores are Redis' clock, not this host's (a
         * member whose heartbeat hash expired shows no fields and is
         * left out; stale members are trimmed by the workers' beats) */
        ngx_str_set(&argv[0], "ZRANGEBYSCORE");
        ngx_str_set(&argv[1], DQ_WORKERS_KEY);
        ngx_str_set(&argv[2], "-inf");
        ngx_str_set(&argv[3], "+inf");
        (void) ngx_http_deferred_op_plain(op, NGX_HTTP_DEFERRED_OP_WORKERS, 0,
                                          4, argv);
        break;
    }
}


/* the connection's setup answered (NGX_OK) or failed: the op starts, or
 * gets the answer it would have had without Redis */

static void
ngx_http_deferred_ops_setup_done(void *data, ngx_int_t rc)
{
    ngx_http_deferred_op_t  *op = data;

    const char  *type;
    ngx_str_t    body;

    if (rc == NGX_OK) {
        ngx_http_deferred_ops_start(op);
    }

    if (op->pending == 0) {
        rc = ngx_http_deferred_ops_down(op, &body, &type);
        ngx_http_deferred_op_finish(op, rc, type, &body);
    }
}


/* the answer when nothing could be sent: a scrape still succeeds (the
 * scraper sees redis_up 0), the others 503 */

static ngx_int_t
ngx_http_deferred_ops_down(ngx_http_deferred_op_t *op, ngx_str_t *body,
    const char **type)
{
    *type = "application/json";

    switch (op->kind) {

    case NGX_HTTP_DEFERRED_OPS_METRICS:
        ngx_str_set(body, NGX_HTTP_DEFERRED_METRICS_DOWN);
        *type = NGX_HTTP_DEFERRED_METRICS_TYPE;
        return NGX_HTTP_OK;

    case NGX_HTTP_DEFERRED_OPS_READY:
        ngx_str_set(body, "{\"ready\":false,"
                          "\"error\":\"RedisUnavailable\"}\n");
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    default:
        ngx_str_set(body, "{\"error\":\"RedisUnavailable\",\"message\":"
                          "\"Redis is not reachable\"}\n");
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }
}


/* operator answers are never framed, sniffed or cached; the page loads
 * nothing from elsewhere and runs only its own inline script */

static ngx_int_t
ngx_http_deferred_ops_headers(ngx_http_request_t *r)
{
    ngx_uint_t         i;
    ngx_table_elt_t   *h;

    static ngx_keyval_t  hdrs[] = {
        { ngx_string("X-Frame-Options"), ngx_string("DENY") },
        { ngx_string("Content-Security-Policy"),
          ngx_string("frame-ancestors 'none'; default-src 'self'; "
                     "script-src 'self' 'unsafe-inline'; "
                     "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                     "base-uri 'none'; form-action 'none'") },
        { ngx_string("X-Content-Type-Options"), ngx_string("nosniff") },
        { ngx_string("Cache-Control"), ngx_string("no-store") },
        { ngx_string("Referrer-Policy"), ngx_string("no-referrer") }
    };

    for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        h->key = hdrs[i].key;
        h->value = hdrs[i].value;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_deferred_ops_send(ngx_http_request_t *r, ngx_int_t status,
    const char *type, ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (ngx_http_deferred_ops_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (body->len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* an op and its commands */

static ngx_http_deferred_op_t *
ngx_http_deferred_op_new(ngx_http_request_t *r, ngx_uint_t kind)
{
    ngx_pool_t                    *pool;
    ngx_time_t                    *tp;
    ngx_pool_cleanup_t            *cln;
    ngx_http_deferred_op_t        *op;
    ngx_http_deferred_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_deferred_module);

    pool = ngx_create_pool(4096, r->connection->log);
    if (pool == NULL) {
        return NULL;
    }

    op = ngx_pcalloc(pool, sizeof(ngx_http_deferred_op_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (op == NULL || cln == NULL
        || ngx_array_init(&op->queues, pool, 8,
                          sizeof(ngx_http_deferred_qstat_t)) != NGX_OK
        || ngx_array_init(&op->workers, pool, 8,
                          sizeof(ngx_http_deferred_wstat_t)) != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NULL;
    }

    op->pool = pool;
    op->request = r;
    op->redis = dlcf->redis;
    op->kind = kind;

    tp = ngx_timeofday();
    op->now_ms = (int64_t) tp->sec * 1000 + tp->msec;

    op->timer.handler = ngx_http_deferred_op_timeout;
    op->timer.data = op;
    op->timer.log = r->connection->log;

    op->setup.handler = ngx_http_deferred_ops_setup_done;
    op->setup.data = op;

    cln->handler = ngx_http_deferred_op_cleanup;
    cln->data = op;
    op->cln = cln;

    return op;
}


/* a plain command (not a script): argv copied into the op's pool */

static ngx_int_t
ngx_http_deferred_op_plain(ngx_http_deferred_op_t *op, ngx_uint_t what,
    ngx_uint_t index, ngx_uint_t argc, ngx_str_t *argv)
{
    ngx_uint_t                   i;
    ngx_http_deferred_op_cmd_t  *oc;

    oc = ngx_http_deferred_op_cmd(op, what, index);
    if (oc == NULL) {
        return NGX_ERROR;
    }

    oc->cmd.argc = (int) argc;
    oc->cmd.cap = (int) argc;
    oc->cmd.script = DQ_SCRIPT__COUNT;     /* never turned into EVAL */
    oc->cmd.argv = ngx_palloc(op->pool, argc * sizeof(char *));
    oc->cmd.argvlen = ngx_palloc(op->pool, argc * sizeof(size_t));

    if (oc->cmd.argv == NULL || oc->cmd.argvlen == NULL) {
        op->failed = 1;
        return NGX_ERROR;
    }

    for (i = 0; i < argc; i++) {
        oc->cmd.argv[i] = (const char *) argv[i].data;
        oc->cmd.argvlen[i] = argv[i].len;
    }

    return ngx_http_deferred_op_send(op, oc);
}


static ngx_int_t
ngx_http_deferred_op_send(ngx_http_deferred_op_t *op,
    ngx_http_deferred_op_cmd_t *oc)
{
    if ((oc->what == NGX_HTTP_DEFERRED_OP_ACTION
         && op->kind == NGX_HTTP_DEFERRED_OPS_READY
         ? ngx_http_deferred_redis_eval_at(op->redis, oc->index, &oc->cmd,
                                           ngx_http_deferred_op_reply, oc)
         : ngx_http_deferred_redis_eval(op->redis, &oc->cmd,
                                        ngx_http_deferred_op_reply, oc))
        == NULL)
    {
        op->failed = 1;
        return NGX_ERROR;
    }

    op->pending++;

    return NGX_OK;
}


/* a command of the op, zeroed, for op_plain or a dq_cmd_* builder; NULL
 * (the op failed) when out of memory */

ngx_http_deferred_op_cmd_t *
ngx_http_deferred_op_cmd(ngx_http_deferred_op_t *op, ngx_uint_t what,
    ngx_uint_t index)
{
    ngx_http_deferred_op_cmd_t  *oc;

    oc = ngx_pcalloc(op->pool, sizeof(ngx_http_deferred_op_cmd_t));
    if (oc == NULL) {
        op->failed = 1;
        return NULL;
    }

    oc->op = op;
    oc->what = what;
    oc->index = index;
    dq_cmd_init(&oc->cmd);

    return oc;
}


/* a script command built by lib, "built" what its dq_cmd_* builder
 * returned: sent (its strings freed with the op), or freed at once and
 * the op failed */

ngx_int_t
ngx_http_deferred_op_script(ngx_http_deferred_op_t *op,
    ngx_http_deferred_op_cmd_t *oc, int built)
{
    ngx_pool_cleanup_t  *cln;

    cln = built == DQ_OK ? ngx_pool_cleanup_add(op->pool, 0) : NULL;
    if (cln == NULL) {
        dq_cmd_free(&oc->cmd);
        op->failed = 1;
        return NGX_ERROR;
    }

    cln->handler = ngx_http_deferred_op_cmd_free;
    cln->data = &oc->cmd;

    return ngx_http_deferred_op_send(op, oc);
}


static void
ngx_http_deferred_op_cmd_free(void *data)
{
    dq_cmd_free(data);
}


static ngx_str_t
ngx_http_deferred_op_copy(ngx_http_deferred_op_t *op, redisReply *r)
{
    ngx_str_t  s;

    ngx_str_null(&s);

    if (r == NULL
        || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS
            && r->type != REDIS_REPLY_ERROR))
    {
        return s;
    }

    s.data = ngx_pnalloc(op->pool, r->len + 1);
    if (s.data == NULL) {
        return s;
    }

    ngx_memcpy(s.data, r->str, r->len);
    s.data[r->len] = '\0';
    s.len = r->len;

    return s;
}


static void
ngx_http_deferred_op_reply(void *data, redisReply *reply)
{
    ngx_http_deferred_op_cmd_t  *oc = data;

    size_t                        i;
    ngx_http_deferred_op_t       *op;
    ngx_http_deferred_qstat_t    *q;
    ngx_http_deferred_wstat_t    *w;
    ngx_keyval_t                 *kv;

    op = oc->op;
    op->pending--;

    if (op->request == NULL) {
        ngx_http_deferred_op_release(op);
        return;
    }

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        op->failed = 1;
        if (reply && op->error.len == 0) {
            op->error = ngx_http_deferred_op_copy(op, reply);
        }
        goto next;
    }

    switch (oc->what) {

    case NGX_HTTP_DEFERRED_OP_QUEUES:
        for (i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements;
             i++)
        {
            if (!dq_queue_name_valid(dq_str_c(reply->element[i]->str))) {
                continue;
            }

            if (op->queues.nelts == NGX_HTTP_DEFERRED_MAX_QUEUES) {
                op->dropped++;      /* said, not silently left out */
                continue;
            }

            q = ngx_array_push(&op->queues);
            if (q == NULL) {
                op->failed = 1;
                break;
            }

            ngx_memzero(q, sizeof(ngx_http_deferred_qstat_t));
            q->name = ngx_http_deferred_op_copy(op, reply->element[i]);
        }
        break;

    case NGX_HTTP_DEFERRED_OP_WORKERS:
        for (i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements
                    && op->workers.nelts < NGX_HTTP_DEFERRED_MAX_WORKERS; i++)
        {
            w = ngx_array_push(&op->workers);
            if (w == NULL
                || ngx_array_init(&w->fields, op->pool, 10,
                                  sizeof(ngx_keyval_t)) != NGX_OK)
            {
                op->failed = 1;
                break;
            }

            w->id = ngx_http_deferred_op_copy(op, reply->element[i]);
        }
        break;

    case NGX_HTTP_DEFERRED_OP_QUEUE:
        q = (ngx_http_deferred_qstat_t *) op->queues.elts + oc->index;
        ngx_http_deferred_op_queue(op, q, reply);
        break;

    case NGX_HTTP_DEFERRED_OP_SHARD:
        q = (ngx_http_deferred_qstat_t *) op->queues.elts + oc->index;
        ngx_http_deferred_op_queue(op, &q->parts[oc->shard], reply);
        break;

    case NGX_HTTP_DEFERRED_OP_WORKER:
        w = (ngx_http_deferred_wstat_t *) op->workers.elts + oc->index;

        for (i = 0; reply->type == REDIS_REPLY_ARRAY
                    && i + 1 < reply->elements; i += 2)
        {
            kv = ngx_array_push(&w->fields);
            if (kv == NULL) {
                op->failed = 1;
                break;
            }

            kv->key = ngx_http_deferred_op_copy(op, reply->element[i]);
            kv->value = ngx_http_deferred_op_copy(op, reply->element[i + 1]);
        }
        break;

    case NGX_HTTP_DEFERRED_OP_NSHARDS:
        op->nshards = reply->type == REDIS_REPLY_STRING
                      ? dq_shards_parse(reply->str, reply->len) : 1;
        break;

    default:    /* NGX_HTTP_DEFERRED_OP_ACTION: the largest answer */
        if (dq_reply_int(reply) > op->result) {
            op->result = dq_reply_int(reply);
        }
        if (reply->type == REDIS_REPLY_STRING) {
            op->error = ngx_http_deferred_op_copy(op, reply);
        }
        break;
    }

next:

    if (op->pending == 0) {
        ngx_http_deferred_op_next(op);
    }
}


static void
ngx_http_deferred_op_queue(ngx_http_deferred_op_t *op,
    ngx_http_deferred_qstat_t *q, redisReply *reply)
{
    size_t                     i, k;
    redisReply                *a;
    ngx_http_deferred_dead_t  *d;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 9) {
        op->failed = 1;
        return;
    }

    q->waiting = dq_reply_int(reply->element[1]);
    q->due = dq_reply_int(reply->element[2]);
    q->running = dq_reply_int(reply->element[3]);
    q->dead = dq_reply_int(reply->element[4]);
    q->oldest = dq_reply_int(reply->element[5]);

    a = reply->element[6];              /* conf */
    for (i = 0; a->type == REDIS_REPLY_ARRAY && i + 1 < a->elements; i += 2) {
        if (ngx_strcmp(a->element[i]->str, "paused") == 0) {
            q->paused = dq_reply_int(a->element[i + 1]) == 1;

        } else if (ngx_strcmp(a->element[i]->str, "rate") == 0) {
            q->rate = ngx_http_deferred_op_copy(op, a->element[i + 1]);

        } else if (ngx_strcmp(a->element[i]->str, "max_concurrent") == 0) {
            q->max_concurrent = ngx_http_deferred_op_copy(op,
                                                          a->element[i + 1]);

        } else if (ngx_strcmp(a->element[i]->str, DQ_QCONF_SHARDS) == 0
                   && a->element[i + 1]->type == REDIS_REPLY_STRING)
        {
            q->shards = dq_shards_parse(a->element[i + 1]->str,
                                        a->element[i + 1]->len);
        }
    }

    a = reply->element[7];              /* stats */
    for (i = 0; a->type == REDIS_REPLY_ARRAY && i + 1 < a->elements; i += 2) {
        const char  *f = a->element[i]->str;
        int64_t      v = dq_reply_int(a->element[i + 1]);
        char         name[32];

        for (k = 0; k < 7; k++) {
            if (ngx_strcmp(f, ngx_http_deferred_counter_names[k]) == 0) {
                q->counters[k] = v;
            }
        }

        if (ngx_strcmp(f, "v1_left") == 0) {    /* added by status.lua */
            q->v1_left = v;
            continue;
        }

        if (ngx_strncmp(f, "late_", 5) != 0) {
            continue;
        }

        if (ngx_strcmp(f, "late_sum_ms") == 0) {
            q->late_sum = v;
            continue;
        }

        if (ngx_strcmp(f, "late_count") == 0) {
            q->late_count = v;
            continue;
        }

        if (ngx_strcmp(f, "late_le_inf") == 0) {
            q->late[DQ_LATENESS_NBOUNDS] = v;
            continue;
        }

        for (k = 0; k < DQ_LATENESS_NBOUNDS; k++) {
            ngx_sprintf((u_char *) name, "late_le_%L%Z",
                        ngx_http_deferred_late_bounds[k]);
            if (ngx_strcmp(f, name) == 0) {
                q->late[k] = v;
            }
        }
    }

    if (ngx_array_init(&q->dead_tasks, op->pool, 4,
                       sizeof(ngx_http_deferred_dead_t))
        != NGX_OK)
    {
        op->failed = 1;
        return;
    }

    a = reply->element[8];              /* dead tasks */
    for (i = 0; a->type == REDIS_REPLY_ARRAY && i + 3 < a->elements; i += 4) {
        d = ngx_array_push(&q->dead_tasks);
        if (d == NULL) {
            op->failed = 1;
            return;
        }

        d->id = ngx_http_deferred_op_copy(op, a->element[i]);
        d->died = ngx_http_deferred_op_copy(op, a->element[i + 1]);
        d->func = ngx_http_deferred_op_copy(op, a->element[i + 2]);
        d->error = ngx_http_deferred_op_copy(op, a->element[i + 3]);
    }

    q->ok = 1;
}


/* after each stage: send the next one, or answer */

static void
ngx_http_deferred_op_next(ngx_http_deferred_op_t *op)
{
    int                          rc;
    ngx_str_t                    body, argv[2];
    ngx_uint_t                   i, dead;
    ngx_http_deferred_op_cmd_t  *oc;
    ngx_http_deferred_qstat_t   *q;
    ngx_http_deferred_wstat_t   *w;

    if (op->kind == NGX_HTTP_DEFERRED_OPS_READY) {
        if (op->failed && op->error.len) {
            /* Redis answered but refuses writes (OOM, READONLY...) */
            body.data = ngx_pnalloc(op->pool, op->error.len * 6 + 64);
            if (body.data == NULL) {
                ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "application/json", NULL);
                return;
            }

            ngx_log_error(NGX_LOG_WARN, op->request->connection->log, 0,
                          "deferred_ready: 503, Redis refuses writes: %V",
                          &op->error);

            body.len = ngx_sprintf(body.data, "{\"ready\":false,"
                                   "\"redis\":\"refuses writes\","
                                   "\"error\":\"")
                       - body.data;
            body.len = (u_char *) ngx_escape_json(body.data + body.len,
                                                  op->error.data,
                                                  op->error.len)
                       - body.data;
            body.len = ngx_sprintf(body.data + body.len, "\"}\n")
                       - body.data;
            ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "application/json", &body);
            return;
        }

        if (op->failed) {
            ngx_str_set(&body, "{\"ready\":false,\"redis\":\"down\"}\n");
            ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "application/json", &body);
            return;
        }

        ngx_str_set(&body, "{\"ready\":true,\"redis\":\"up\","
                           "\"writable\":true}\n");
        ngx_http_deferred_op_finish(op, NGX_HTTP_OK, "application/json",
                                    &body);
        return;
    }

    if (op->kind == NGX_HTTP_DEFERRED_OPS_ADMIN) {
        ngx_http_deferred_admin_next(op);
        return;
    }

    if (op->failed && op->kind == NGX_HTTP_DEFERRED_OPS_METRICS) {
        ngx_str_set(&body, NGX_HTTP_DEFERRED_METRICS_DOWN);
        ngx_http_deferred_op_finish(op, NGX_HTTP_OK,
                                    NGX_HTTP_DEFERRED_METRICS_TYPE, &body);
        return;
    }

    if (op->failed) {
        ngx_str_set(&body, "{\"error\":\"RedisUnavailable\",\"message\":"
                           "\"Redis did not answer\"}\n");
        ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "application/json", &body);
        return;
    }

    if (op->stage == 0) {
        op->stage = 1;

        dead = op->kind == NGX_HTTP_DEFERRED_OPS_STATUS
               ? NGX_HTTP_DEFERRED_DEAD_LIMIT : 0;

        q = op->queues.elts;
        for (i = 0; i < op->queues.nelts; i++) {
            oc = ngx_http_deferred_op_cmd(op, NGX_HTTP_DEFERRED_OP_QUEUE, i);
            if (oc == NULL) {
                break;
            }

            rc = dq_cmd_status(&oc->cmd, dq_str_c((char *) q[i].name.data),
                               (int64_t) dead);

            if (ngx_http_deferred_op_script(op, oc, rc) != NGX_OK) {
                break;
            }
        }

        w = op->workers.elts;
        for (i = 0; !op->failed && i < op->workers.nelts; i++) {
            ngx_str_set(&argv[0], "HGETALL");
            argv[1].len = sizeof(DQ_WORKER_KEY_PREFIX) - 1 + w[i].id.len;
            argv[1].data = ngx_pnalloc(op->pool, argv[1].len);
            if (argv[1].data == NULL) {
                op->failed = 1;
                break;
            }

            ngx_memcpy(ngx_cpymem(argv[1].data, DQ_WORKER_KEY_PREFIX,
                                  sizeof(DQ_WORKER_KEY_PREFIX) - 1),
                       w[i].id.data, w[i].id.len);

            (void) ngx_http_deferred_op_plain(op,
                                              NGX_HTTP_DEFERRED_OP_WORKER,
                                              i, 2, argv);
        }

        if (op->pending) {
            return;     /* failures answered when the sent ones are back */
        }

        if (op->failed) {
            ngx_http_deferred_op_next(op);
            return;
        }
    }

    if (op->stage == 1) {
        /* a sharded queue's other shards (their count came with shard
         * 0's conf) */
        op->stage = 2;

        if (ngx_http_deferred_op_shards(op) != NGX_OK || op->pending) {
            return;
        }

        if (op->failed) {
            ngx_http_deferred_op_next(op);
            return;
        }
    }

    ngx_http_deferred_op_sum(op);

    if (op->kind == NGX_HTTP_DEFERRED_OPS_METRICS) {
        ngx_http_deferred_render_metrics(op);

    } else {
        ngx_http_deferred_render_status(op);
    }
}


/* the status of shards 1..N-1 of every sharded queue: NGX_ERROR when the
 * op went (failed and answered) */

static ngx_int_t
ngx_http_deferred_op_shards(ngx_http_deferred_op_t *op)
{
    int                          rc;
    u_char                       name[DQ_SHARD_NAME_MAX + 1];
    ngx_uint_t                   i, j, dead, budget;
    ngx_http_deferred_op_cmd_t  *oc;
    ngx_http_deferred_qstat_t   *q;

    dead = op->kind == NGX_HTTP_DEFERRED_OPS_STATUS
           ? NGX_HTTP_DEFERRED_DEAD_LIMIT : 0;

    q = op->queues.elts;
    budget = NGX_HTTP_DEFERRED_MAX_SHARD_CALLS;

    for (i = 0; i < op->queues.nelts && !op->failed; i++) {
        if (!q[i].ok || q[i].shards <= 1) {
            continue;
        }

        /* a scrape's cost stays bounded (1,000 queues of 64 shards would
         * be 63,000 calls): the queues past the cap show shard 0 alone */
        if (q[i].shards - 1 > budget) {
            op->unsummed++;
            continue;
        }

        budget -= q[i].shards - 1;

        q[i].parts = ngx_pcalloc(op->pool, q[i].shards
                                 * sizeof(ngx_http_deferred_qstat_t));
        if (q[i].parts == NULL) {
            op->failed = 1;
            break;
        }

        for (j = 1; j < q[i].shards; j++) {
            if (dq_shard_name((char *) name, sizeof(name),
                              dq_str_c((char *) q[i].name.data), j)
                == 0)
            {
                op->failed = 1;
                break;
            }

            oc = ngx_http_deferred_op_cmd(op, NGX_HTTP_DEFERRED_OP_SHARD, i);
            if (oc == NULL) {
                break;
            }

            oc->shard = j;

            rc = dq_cmd_status(&oc->cmd, dq_str_c((char *) name),
                               (int64_t) dead);

            if (ngx_http_deferred_op_script(op, oc, rc) != NGX_OK) {
                break;
            }
        }
    }

    return NGX_OK;
}


/* a sharded queue is shown as one queue: the sums over its shards, and
 * each shard's own (parts[0] is shard 0's, copied before the sums) */

static void
ngx_http_deferred_op_sum(ngx_http_deferred_op_t *op)
{
    u_char                     *p;
    double                      rate;
    int64_t                     maxc;
    ngx_uint_t                  i, j, k, unl_rate, unl_maxc;
    ngx_http_deferred_dead_t   *d, *nd;
    ngx_http_deferred_qstat_t  *q, *s;

    q = op->queues.elts;

    for (i = 0; i < op->queues.nelts; i++) {
        if (q[i].parts == NULL) {
            continue;
        }

        q[i].parts[0] = q[i];
        q[i].parts[0].parts = NULL;

        rate = 0;
        maxc = 0;
        unl_rate = 0;
        unl_maxc = 0;

        for (j = 0; j < q[i].shards; j++) {
            s = &q[i].parts[j];

            if (s->rate.len) {
                rate += strtod((char *) s->rate.data, NULL);
                unl_rate |= strtod((char *) s->rate.data, NULL) <= 0;
            }

            maxc += s->max_concurrent.len
                    ? strtoll((char *) s->max_concurrent.data, NULL, 10) : 0;
            unl_maxc |= s->max_concurrent.len == 0
                        || strtoll((char *) s->max_concurrent.data, NULL, 10)
                           <= 0;

            if (j == 0 || !s->ok) {
                continue;
            }

            q[i].waiting += s->waiting;
            q[i].due += s->due;
            q[i].running += s->running;
            q[i].dead += s->dead;
            q[i].oldest = ngx_max(q[i].oldest, s->oldest);
            q[i].paused |= s->paused;
            q[i].v1_left += s->v1_left;
            q[i].late_sum += s->late_sum;
            q[i].late_count += s->late_count;

            for (k = 0; k < 7; k++) {
                q[i].counters[k] += s->counters[k];
            }

            for (k = 0; k <= DQ_LATENESS_NBOUNDS; k++) {
                q[i].late[k] += s->late[k];
            }

            d = s->dead_tasks.elts;
            for (k = 0; k < s->dead_tasks.nelts; k++) {
                nd = ngx_array_push(&q[i].dead_tasks);
                if (nd == NULL) {
                    break;
                }

                *nd = d[k];
            }
        }

        /* the shards' newest dead tasks, the newest of them kept */
        ngx_qsort(q[i].dead_tasks.elts, q[i].dead_tasks.nelts,
                  sizeof(ngx_http_deferred_dead_t),
                  ngx_http_deferred_dead_cmp);

        if (q[i].dead_tasks.nelts > NGX_HTTP_DEFERRED_DEAD_LIMIT) {
            q[i].dead_tasks.nelts = NGX_HTTP_DEFERRED_DEAD_LIMIT;
        }

        /* the whole queue's limits: the shards' shares summed */

        if (q[i].rate.len) {
            p = ngx_pnalloc(op->pool, 64);
            if (p) {
                q[i].rate.len = snprintf((char *) p, 64, "%.6g",
                                         unl_rate ? 0.0 : rate);
                q[i].rate.data = p;
            }
        }

        if (q[i].max_concurrent.len) {
            p = ngx_pnalloc(op->pool, NGX_INT64_LEN + 1);
            if (p) {
                q[i].max_concurrent.len = ngx_sprintf(p, "%L",
                                                      unl_maxc ? 0 : maxc)
                                          - p;
                q[i].max_concurrent.data = p;
            }
        }
    }
}


/* newest first (died_ms is a decimal string, NUL-terminated: op_copy) */

static int ngx_libc_cdecl
ngx_http_deferred_dead_cmp(const void *one, const void *two)
{
    long long                        a, b;
    const ngx_http_deferred_dead_t  *x = one, *y = two;

    a = x->died.len ? strtoll((char *) x->died.data, NULL, 10) : 0;
    b = y->died.len ? strtoll((char *) y->died.data, NULL, 10) : 0;

    return a < b ? 1 : a > b ? -1 : 0;
}


void
ngx_http_deferred_op_finish(ngx_http_deferred_op_t *op, ngx_int_t status,
    const char *type, ngx_str_t *body)
{
    ngx_int_t            rc;
    ngx_str_t            empty = ngx_null_string;
    ngx_http_request_t  *r;

    r = op->request;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    /* the body lives in the op's pool: copy it into the request's */

    if (body && body->len) {
        empty.data = ngx_pnalloc(r->pool, body->len);
        if (empty.data == NULL) {
            status = NGX_HTTP_INTERNAL_SERVER_ERROR;

        } else {
            ngx_memcpy(empty.data, body->data, body->len);
            empty.len = body->len;
        }
    }

    rc = ngx_http_deferred_ops_send(r, status, type, &empty);

    ngx_http_deferred_op_release(op);

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_deferred_op_timeout(ngx_event_t *ev)
{
    ngx_str_t                   body;
    ngx_uint_t                  setup;
    ngx_http_deferred_op_t     *op = ev->data;
    ngx_http_deferred_redis_t  *rs;

    setup = op->setup.waiting;

    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                  setup ? "deferred: redis %V: the connection's setup did "
                          "not finish within deferred_timeout"
                        : "deferred: redis %V: no reply within "
                          "deferred_timeout",
                  &op->redis->name);

    rs = op->redis;

    if (op->kind == NGX_HTTP_DEFERRED_OPS_METRICS) {
        ngx_str_set(&body, NGX_HTTP_DEFERRED_METRICS_DOWN);
        ngx_http_deferred_op_finish(op, NGX_HTTP_OK,
                                    NGX_HTTP_DEFERRED_METRICS_TYPE, &body);

    } else {
        if (op->kind == NGX_HTTP_DEFERRED_OPS_READY) {
            /* the probe's own shape, as ngx_http_deferred_ops_down */
            ngx_str_set(&body, "{\"ready\":false,"
                               "\"error\":\"RedisUnavailable\","
                               "\"message\":\"Redis did not answer in "
                               "time\"}\n");

        } else {
            ngx_str_set(&body, "{\"error\":\"RedisUnavailable\","
                               "\"message\":\"Redis did not answer in "
                               "time\"}\n");
        }

        ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "application/json", &body);
    }

    /* a stuck connection: start over (pending replies come back NULL);
     * a setup has its own connect_timeout */
    if (!setup) {
        ngx_http_deferred_redis_timed_out(rs);
    }
}


static void
ngx_http_deferred_op_cleanup(void *data)
{
    ngx_http_deferred_op_t  *op = data;

    op->cln = NULL;     /* the request's pool is going */

    if (op->request == NULL) {
        return;         /* answered; freed with its last reply */
    }

    ngx_http_deferred_op_release(op);
}


/* detaches the op from its request; frees it once no command is in
 * flight (else its last reply does) */

static void
ngx_http_deferred_op_release(ngx_http_deferred_op_t *op)
{
    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    op->request = NULL;

    ngx_http_deferred_redis_await_cancel(&op->setup);

    if (op->pending) {
        return;
    }

    if (op->cln) {
        op->cln->handler = NULL;
    }

    ngx_destroy_pool(op->pool);
}
