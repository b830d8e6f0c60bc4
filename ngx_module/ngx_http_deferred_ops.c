
/*
 * ngx_http_deferred_module: the operator locations' machinery, shared by
 * status, metrics, admin, ready and the dashboard: the directive, the
 * content handler (who may ask, the wait for the connection's setup), and
 * the op.
 *
 * Nothing blocks: the commands go over the worker's hiredis connection
 * (ngx_http_deferred_redis.c). A collection is an "op" that owns its own
 * pool and outlives its request if it must: every reply handler runs
 * exactly once; when the request goes first (client gone, or the
 * deferred_timeout answered 503), the op is detached and freed with its
 * last reply. Restrict these locations like any other (allow/deny,
 * auth_basic): docs/MODULE.md.
 *
 * Here: the directive, the content handler, the op's life (its commands
 * sent, its timeout, its request leaving, its answer). What each kind
 * asks and how its replies fill in: ngx_http_deferred_status.c (status,
 * metrics, ready) and ngx_http_deferred_admin.c; the rendering and the
 * page have their own files (ngx_http_deferred_ops.h lists them).
 */


#include "ngx_http_deferred_ops.h"


static ngx_int_t ngx_http_deferred_ops_handler(ngx_http_request_t *r);
static void ngx_http_deferred_ops_setup_done(void *data, ngx_int_t rc);
static ngx_int_t ngx_http_deferred_ops_down(ngx_http_deferred_op_t *op,
    ngx_str_t *body, const char **type);
static ngx_http_deferred_op_t *ngx_http_deferred_op_new(
    ngx_http_request_t *r, ngx_uint_t kind);
static ngx_int_t ngx_http_deferred_op_send(ngx_http_deferred_op_t *op,
    ngx_http_deferred_op_cmd_t *oc);
static void ngx_http_deferred_op_timeout(ngx_event_t *ev);
static void ngx_http_deferred_op_cleanup(void *data);
static void ngx_http_deferred_op_cmd_free(void *data);


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
     * request's cleanup ends the wait (review RM) */
    ngx_http_deferred_watch_client(r);

    r->main->count++;

    return NGX_DONE;
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
        if (ngx_http_deferred_header_add(r, &hdrs[i].key, &hdrs[i].value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_deferred_ops_send(ngx_http_request_t *r, ngx_int_t status,
    const char *type, ngx_str_t *body)
{
    ngx_str_t  t;

    if (ngx_http_deferred_ops_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    t.data = (u_char *) type;
    t.len = ngx_strlen(type);

    return ngx_http_deferred_send_body(r, status, &t, body);
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

ngx_int_t
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


ngx_str_t
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

void
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
