
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
 */


#include "ngx_http_deferred_module.h"
#include "ngx_http_deferred_dashboard.h"


#define NGX_HTTP_DEFERRED_OPS_STATUS     1
#define NGX_HTTP_DEFERRED_OPS_METRICS    2
#define NGX_HTTP_DEFERRED_OPS_DASHBOARD  3
#define NGX_HTTP_DEFERRED_OPS_ADMIN      4
#define NGX_HTTP_DEFERRED_OPS_READY      5

#define NGX_HTTP_DEFERRED_DEAD_LIMIT     20

/* a scrape without Redis still succeeds: the scraper sees redis_up 0 */
#define NGX_HTTP_DEFERRED_METRICS_TYPE                                      \
    "text/plain; version=0.0.4; charset=utf-8"
#define NGX_HTTP_DEFERRED_METRICS_DOWN                                      \
    "# HELP deferred_redis_up 1 if Redis answered this scrape.\n"           \
    "# TYPE deferred_redis_up gauge\n"                                      \
    "deferred_redis_up 0\n"
#define NGX_HTTP_DEFERRED_MAX_QUEUES     1000
#define NGX_HTTP_DEFERRED_MAX_WORKERS    1000
/* status scripts of shards >= 1 per scrape (a queue's all or none) */
#define NGX_HTTP_DEFERRED_MAX_SHARD_CALLS  1000


typedef struct {
    ngx_uint_t                     kind;
    ngx_flag_t                     open;        /* "open": any address */
    ngx_str_t                      status_url;  /* dashboard */
    ngx_str_t                      admin_url;
} ngx_http_deferred_ops_conf_t;


typedef struct {
    ngx_str_t                      id;
    ngx_str_t                      died;
    ngx_str_t                      func;
    ngx_str_t                      error;
} ngx_http_deferred_dead_t;


typedef struct ngx_http_deferred_qstat_s {
    ngx_str_t                      name;
    ngx_uint_t                     ok;
    int64_t                        waiting, due, running, dead, oldest;
    ngx_uint_t                     paused;
    ngx_str_t                      rate;
    ngx_str_t                      max_concurrent;
    int64_t                        counters[7];
    int64_t                        late[DQ_LATENESS_NBOUNDS + 1];
    int64_t                        late_sum, late_count;
    int64_t                        v1_left;     /* tasks in contract v1's
                                                   keys (not migrated) */
    ngx_array_t                    dead_tasks;
    ngx_uint_t                     shards;      /* conf "shards" (0: 1) */
    struct ngx_http_deferred_qstat_s  *parts;   /* a sharded queue: each
                                                   shard's own, the queue
                                                   their sums */
} ngx_http_deferred_qstat_t;


typedef struct {
    ngx_str_t                      id;
    ngx_array_t                    fields;      /* ngx_keyval_t */
} ngx_http_deferred_wstat_t;


typedef struct ngx_http_deferred_op_s  ngx_http_deferred_op_t;

typedef struct {
    ngx_http_deferred_op_t        *op;
    ngx_uint_t                     what;        /* 0 queues, 1 workers, 2
                                                   queue i, 3 worker i, 4
                                                   admin/ready, 5 a shard
                                                   of queue i, 6 admin:
                                                   shard count */
    ngx_uint_t                     index;
    ngx_uint_t                     shard;       /* 5: shard of queue i */
    dq_cmd_t                       cmd;
    ngx_uint_t                     built;       /* cmd needs dq_cmd_free */
} ngx_http_deferred_op_cmd_t;


struct ngx_http_deferred_op_s {
    ngx_pool_t                    *pool;
    ngx_http_request_t            *request;     /* NULL: detached */
    ngx_pool_cleanup_t            *cln;         /* in the request's pool,
                                                   NULL once it is gone */
    ngx_http_deferred_redis_t     *redis;
    ngx_uint_t                     kind;
    ngx_uint_t                     pending;
    ngx_uint_t                     stage;
    ngx_uint_t                     failed;
    ngx_event_t                    timer;
    ngx_http_deferred_redis_waiter_t  setup;    /* waiting for the
                                                   connection's setup */
    int64_t                        now_ms;
    ngx_array_t                    queues;      /* qstat */
    ngx_uint_t                     dropped;     /* queues past the limit */
    ngx_uint_t                     unsummed;    /* sharded queues shown
                                                   with shard 0's numbers:
                                                   past the shard calls'
                                                   cap */
    ngx_array_t                    workers;     /* wstat */
    ngx_str_t                      action;      /* admin */
    ngx_str_t                      queue;
    ngx_str_t                      id;
    ngx_uint_t                     nshards;     /* admin: the queue's */
    int64_t                        result;
    ngx_str_t                      error;
};


static ngx_int_t ngx_http_deferred_ops_handler(ngx_http_request_t *r);
static void ngx_http_deferred_ops_start(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_ops_setup_done(void *data, ngx_int_t rc);
static ngx_int_t ngx_http_deferred_ops_down(ngx_http_deferred_op_t *op,
    ngx_str_t *body, char **type);
static ngx_int_t ngx_http_deferred_ops_send(ngx_http_request_t *r,
    ngx_int_t status, const char *type, ngx_str_t *body);
static ngx_int_t ngx_http_deferred_dashboard_send(ngx_http_request_t *r,
    ngx_http_deferred_ops_conf_t *oc);
static ngx_http_deferred_op_t *ngx_http_deferred_op_new(
    ngx_http_request_t *r, ngx_uint_t kind);
static ngx_int_t ngx_http_deferred_op_plain(ngx_http_deferred_op_t *op,
    ngx_uint_t what, ngx_uint_t index, ngx_uint_t argc, ngx_str_t *argv);
static ngx_int_t ngx_http_deferred_op_script(ngx_http_deferred_op_t *op,
    ngx_http_deferred_op_cmd_t *oc);
static ngx_int_t ngx_http_deferred_op_send(ngx_http_deferred_op_t *op,
    ngx_http_deferred_op_cmd_t *oc);
static void ngx_http_deferred_op_reply(void *data, redisReply *reply);
static void ngx_http_deferred_op_next(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_op_finish(ngx_http_deferred_op_t *op,
    ngx_int_t status, const char *type, ngx_str_t *body);
static void ngx_http_deferred_op_timeout(ngx_event_t *ev);
static void ngx_http_deferred_op_cleanup(void *data);
static void ngx_http_deferred_op_release(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_op_cmd_free(void *data);
static void ngx_http_deferred_op_queue(ngx_http_deferred_op_t *op,
    ngx_http_deferred_qstat_t *q, redisReply *reply);
static ngx_int_t ngx_http_deferred_admin_start(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_admin_shards(ngx_http_deferred_op_t *op);
static ngx_int_t ngx_http_deferred_admin_send(ngx_http_deferred_op_t *op);
static ngx_int_t ngx_http_deferred_op_shards(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_op_sum(ngx_http_deferred_op_t *op);
static int ngx_libc_cdecl ngx_http_deferred_dead_cmp(const void *one,
    const void *two);
static void ngx_http_deferred_render_status(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_render_metrics(ngx_http_deferred_op_t *op);


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


static const char  *ngx_http_deferred_counter_names[7] = {
    "enqueued", "done", "retried", "dead", "requeued", "deleted", "reclaimed"
};

static const int64_t  ngx_http_deferred_late_bounds[DQ_LATENESS_NBOUNDS] =
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
    char                          *type;
    ngx_int_t                      rc;
    ngx_str_t                      body;
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

    r->main->count++;

    return NGX_DONE;
}


/* the op's first commands (the later ones follow their replies) */

static void
ngx_http_deferred_ops_start(ngx_http_deferred_op_t *op)
{
    ngx_str_t  argv[4];

    switch (op->kind) {

    case NGX_HTTP_DEFERRED_OPS_ADMIN:
        ngx_http_deferred_admin_shards(op);
        break;

    case NGX_HTTP_DEFERRED_OPS_READY:
        {
        ngx_uint_t                   k, nmasters;
        ngx_http_deferred_op_cmd_t  *rc_;

        /* EVALSHA of lib/lua/ready.lua: refused when Redis refuses
         * writes (OOM, read-only replica); its source only after a
         * NOSCRIPT. A cluster: asked of every master (each queue lives
         * on one), ready only if all of them answer */
        nmasters = ngx_http_deferred_redis_masters(op->redis);

        for (k = 0; k < nmasters; k++) {
            rc_ = ngx_pcalloc(op->pool, sizeof(ngx_http_deferred_op_cmd_t));
            if (rc_ == NULL) {
                op->failed = 1;
                break;
            }

            rc_->op = op;
            rc_->what = 4;
            rc_->index = k;
            dq_cmd_init(&rc_->cmd);

            if (dq_cmd_ready(&rc_->cmd) != DQ_OK) {
                dq_cmd_free(&rc_->cmd);
                op->failed = 1;
                break;
            }

            if (ngx_http_deferred_op_script(op, rc_) != NGX_OK) {
                break;
            }
        }
        }
        break;

    default:
        ngx_str_set(&argv[0], "SMEMBERS");
        ngx_str_set(&argv[1], DQ_QUEUES_KEY);
        (void) ngx_http_deferred_op_plain(op, 0, 0, 2, argv);

        /* every member: scores are Redis' clock, not this host's (a
         * member whose heartbeat hash expired shows no fields and is
         * left out; stale members are trimmed by the workers' beats) */
        ngx_str_set(&argv[0], "ZRANGEBYSCORE");
        ngx_str_set(&argv[1], DQ_WORKERS_KEY);
        ngx_str_set(&argv[2], "-inf");
        ngx_str_set(&argv[3], "+inf");
        (void) ngx_http_deferred_op_plain(op, 1, 0, 4, argv);
        break;
    }
}


/* the connection's setup answered (NGX_OK) or failed: the op starts, or
 * gets the answer it would have had without Redis */

static void
ngx_http_deferred_ops_setup_done(void *data, ngx_int_t rc)
{
    ngx_http_deferred_op_t  *op = data;

    char       *type;
    ngx_str_t   body;

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
    char **type)
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


static ngx_int_t
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


/* the page, with the two URLs it talks to put in */

static ngx_int_t
ngx_http_deferred_dashboard_send(ngx_http_request_t *r,
    ngx_http_deferred_ops_conf_t *oc)
{
    u_char     *p;
    ngx_str_t   body;
    size_t      head, tail;

    head = sizeof(ngx_http_deferred_dashboard_head) - 1;
    tail = sizeof(ngx_http_deferred_dashboard_tail) - 1;

    body.len = head + tail + oc->status_url.len * 6 + oc->admin_url.len * 6
               + sizeof("<script>var DQ_STATUS=\"\",DQ_ADMIN=\"\";</script>");
    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body.data, ngx_http_deferred_dashboard_head, head);
    p = ngx_cpymem(p, "<script>var DQ_STATUS=\"", 23);
    p = (u_char *) ngx_escape_html(p, oc->status_url.data,
                                   oc->status_url.len);
    p = ngx_cpymem(p, "\",DQ_ADMIN=\"", 12);
    p = (u_char *) ngx_escape_html(p, oc->admin_url.data, oc->admin_url.len);
    p = ngx_cpymem(p, "\";</script>", 11);
    p = ngx_cpymem(p, ngx_http_deferred_dashboard_tail, tail);

    body.len = p - body.data;

    return ngx_http_deferred_ops_send(r, NGX_HTTP_OK,
                                      "text/html; charset=utf-8", &body);
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

    oc = ngx_pcalloc(op->pool, sizeof(ngx_http_deferred_op_cmd_t));
    if (oc == NULL) {
        return NGX_ERROR;
    }

    oc->op = op;
    oc->what = what;
    oc->index = index;
    oc->cmd.argc = (int) argc;
    oc->cmd.cap = (int) argc;
    oc->cmd.script = DQ_SCRIPT__COUNT;     /* never turned into EVAL */
    oc->cmd.argv = ngx_palloc(op->pool, argc * sizeof(char *));
    oc->cmd.argvlen = ngx_palloc(op->pool, argc * sizeof(size_t));

    if (oc->cmd.argv == NULL || oc->cmd.argvlen == NULL) {
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
    if ((oc->what == 4 && op->kind == NGX_HTTP_DEFERRED_OPS_READY
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


/* a script command built by lib (its strings freed with the op) */

static ngx_int_t
ngx_http_deferred_op_script(ngx_http_deferred_op_t *op,
    ngx_http_deferred_op_cmd_t *oc)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(op->pool, 0);
    if (cln == NULL) {
        dq_cmd_free(&oc->cmd);
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

    case 0:     /* the queue names */
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

    case 1:     /* the live workers' ids */
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

    case 2:     /* one queue's status */
        q = (ngx_http_deferred_qstat_t *) op->queues.elts + oc->index;
        ngx_http_deferred_op_queue(op, q, reply);
        break;

    case 5:     /* a shard (1..N-1) of a sharded queue */
        q = (ngx_http_deferred_qstat_t *) op->queues.elts + oc->index;
        ngx_http_deferred_op_queue(op, &q->parts[oc->shard], reply);
        break;

    case 3:     /* one worker's heartbeat */
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

    case 6:     /* admin: the queue's shard count */
        op->nshards = reply->type == REDIS_REPLY_STRING
                      ? dq_shards_parse(reply->str, reply->len) : 1;
        break;

    default:    /* admin action (once per shard: the largest answer),
                   readiness */
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

    if (op->kind == NGX_HTTP_DEFERRED_OPS_ADMIN && op->stage == 0
        && !op->failed)
    {
        /* the shard count is in: the action on every shard */
        op->stage = 1;

        if (ngx_http_deferred_admin_send(op) != NGX_OK) {
            op->failed = 1;
        }

        if (op->pending) {
            return;
        }
    }

    if (op->kind == NGX_HTTP_DEFERRED_OPS_ADMIN) {
        if (op->failed) {
            body.data = ngx_pnalloc(op->pool, op->error.len * 6 + 128);
            if (body.data == NULL) {
                ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "application/json", NULL);
                return;
            }

            body.len = ngx_sprintf(body.data, "{\"error\":\"RedisError\","
                                   "\"message\":\"%s\"}\n",
                                   op->error.len ? "Redis answered an error"
                                                 : "Redis is not reachable")
                       - body.data;
            ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "application/json", &body);
            return;
        }

        body.data = ngx_pnalloc(op->pool, op->queue.len + op->id.len
                                          + op->action.len + 128);
        if (body.data == NULL) {
            ngx_http_deferred_op_finish(op, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "application/json", NULL);
            return;
        }

        /* queue and id were checked: no characters to escape */
        body.len = ngx_sprintf(body.data, "{\"action\":\"%V\",\"queue\":\"%V\","
                               "\"id\":\"%V\",\"done\":%s}\n",
                               &op->action, &op->queue, &op->id,
                               op->result > 0 ? "true" : "false")
                   - body.data;

        ngx_http_deferred_op_finish(op, op->result > 0 || op->id.len == 0
                                        ? NGX_HTTP_OK : NGX_HTTP_NOT_FOUND,
                                    "application/json", &body);
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
            oc = ngx_pcalloc(op->pool, sizeof(ngx_http_deferred_op_cmd_t));
            if (oc == NULL) {
                op->failed = 1;
                break;
            }

            oc->op = op;
            oc->what = 2;
            oc->index = i;
            dq_cmd_init(&oc->cmd);

            if (dq_cmd_status(&oc->cmd, dq_str_c((char *) q[i].name.data),
                              (int64_t) dead)
                != DQ_OK)
            {
                dq_cmd_free(&oc->cmd);
                op->failed = 1;
                break;
            }

            if (ngx_http_deferred_op_script(op, oc) != NGX_OK) {
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

            (void) ngx_http_deferred_op_plain(op, 3, i, 2, argv);
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
            oc = ngx_pcalloc(op->pool, sizeof(ngx_http_deferred_op_cmd_t));
            if (oc == NULL) {
                op->failed = 1;
                break;
            }

            oc->op = op;
            oc->what = 5;
            oc->index = i;
            oc->shard = j;
            dq_cmd_init(&oc->cmd);

            if (dq_shard_name((char *) name, sizeof(name),
                              dq_str_c((char *) q[i].name.data), j)
                == 0
                || dq_cmd_status(&oc->cmd, dq_str_c((char *) name),
                                 (int64_t) dead)
                   != DQ_OK)
            {
                dq_cmd_free(&oc->cmd);
                op->failed = 1;
                break;
            }

            if (ngx_http_deferred_op_script(op, oc) != NGX_OK) {
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


static void
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
        ngx_str_set(&body, "{\"error\":\"RedisUnavailable\",\"message\":"
                           "\"Redis did not answer in time\"}\n");
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


/* admin actions: POST ?action=&queue=&id= with X-Deferred-Admin: 1 */

/* the admin action on each shard of the queue (1 when not sharded) */

static ngx_int_t
ngx_http_deferred_admin_send(ngx_http_deferred_op_t *op)
{
    int                            rc;
    u_char                         name[DQ_SHARD_NAME_MAX + 1];
    dq_str_t                       q;
    ngx_str_t                      v;
    ngx_uint_t                     i;
    ngx_http_deferred_op_cmd_t    *oc;
    ngx_http_deferred_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(op->request,
                                        ngx_http_deferred_module);
    v = op->action;

    for (i = 0; i < op->nshards; i++) {
        q.len = dq_shard_name((char *) name, sizeof(name),
                              (dq_str_t) { (char *) op->queue.data,
                                           op->queue.len }, i);
        q.ptr = (const char *) name;

        if (q.len == 0) {
            return NGX_ERROR;
        }

        oc = ngx_pcalloc(op->pool, sizeof(ngx_http_deferred_op_cmd_t));
        if (oc == NULL) {
            return NGX_ERROR;
        }

        oc->op = op;
        oc->what = 4;
        dq_cmd_init(&oc->cmd);

        if (v.len == 5 && ngx_strncmp(v.data, "retry", 5) == 0) {
            rc = dq_cmd_requeue(&oc->cmd, q,
                                (dq_str_t) { (char *) op->id.data,
                                             op->id.len });

        } else if (v.len == 6 && ngx_strncmp(v.data, "delete", 6) == 0) {
            rc = dq_cmd_remove(&oc->cmd, q, "id",
                               (dq_str_t) { (char *) op->id.data,
                                            op->id.len },
                               1, (int64_t) dlcf->tombstone);

        } else {
            rc = dq_cmd_pause(&oc->cmd, q, v.len == 5);
        }

        if (rc != DQ_OK) {
            dq_cmd_free(&oc->cmd);
            return NGX_ERROR;
        }

        if (ngx_http_deferred_op_script(op, oc) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_deferred_admin_start(ngx_http_deferred_op_t *op)
{
    ngx_str_t                      v, hdr = ngx_string("X-Deferred-Admin");
    ngx_uint_t                     found;
    ngx_http_request_t            *r;

    r = op->request;

    /* a custom header: a cross-site form or fetch cannot send it without
     * a CORS preflight, which this location never grants */

    found = ngx_http_deferred_header(r, &hdr, &v) == NGX_OK
            && v.len == 1 && v.data[0] == '1';

    if (!found) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "deferred: admin request without "
                      "\"X-Deferred-Admin: 1\"");
        return NGX_HTTP_FORBIDDEN;
    }

    if (ngx_http_arg(r, (u_char *) "action", 6, &op->action) != NGX_OK
        || ngx_http_arg(r, (u_char *) "queue", 5, &v) != NGX_OK)
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    if (!dq_queue_name_valid((dq_str_t) { (char *) v.data, v.len })) {
        return NGX_HTTP_BAD_REQUEST;
    }

    op->queue.data = ngx_pstrdup(op->pool, &v);
    op->queue.len = v.len;

    if (ngx_http_arg(r, (u_char *) "id", 2, &v) == NGX_OK) {
        if (v.len == 0 || v.len > 64
            || !dq_task_name_valid((dq_str_t) { (char *) v.data, v.len }))
        {
            return NGX_HTTP_BAD_REQUEST;
        }

        op->id.data = ngx_pstrdup(op->pool, &v);
        op->id.len = v.len;
    }

    if (op->queue.data == NULL || (op->id.len && op->id.data == NULL)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v = op->action;

    if (!((v.len == 5 && ngx_strncmp(v.data, "retry", 5) == 0 && op->id.len)
          || (v.len == 6 && ngx_strncmp(v.data, "delete", 6) == 0
              && op->id.len)
          || (v.len == 5 && ngx_strncmp(v.data, "pause", 5) == 0)
          || (v.len == 6 && ngx_strncmp(v.data, "resume", 6) == 0)))
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    if (v.data[0] == 'p' || (v.data[0] == 'r' && v.len == 6)) {
        op->id.len = 0;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "deferred: admin %V queue=%V id=%V", &op->action,
                  &op->queue, &op->id);

    return NGX_OK;
}


/* first the queue's shard count (a sharded queue: the action goes to
 * every shard, ngx_http_deferred_admin_send); nothing sent: 503 */

static void
ngx_http_deferred_admin_shards(ngx_http_deferred_op_t *op)
{
    ngx_http_deferred_op_cmd_t  *oc;

    oc = ngx_pcalloc(op->pool, sizeof(ngx_http_deferred_op_cmd_t));
    if (oc == NULL) {
        op->failed = 1;
        return;
    }

    oc->op = op;
    oc->what = 6;
    op->nshards = 1;
    dq_cmd_init(&oc->cmd);

    if (dq_cmd_shards(&oc->cmd, (dq_str_t) { (char *) op->queue.data,
                                              op->queue.len })
        != DQ_OK)
    {
        dq_cmd_free(&oc->cmd);
        op->failed = 1;
        return;
    }

    (void) ngx_http_deferred_op_script(op, oc);
}


/* rendering: a growing buffer in the op's pool */

typedef struct {
    ngx_pool_t  *pool;
    u_char      *start, *pos, *end;
    ngx_uint_t   failed;
} ngx_http_deferred_out_t;


static u_char *
ngx_http_deferred_out_room(ngx_http_deferred_out_t *o, size_t n)
{
    u_char  *p;
    size_t   size;

    if (o->failed) {
        return NULL;
    }

    if ((size_t) (o->end - o->pos) >= n) {
        return o->pos;
    }

    size = (o->end - o->start) * 2 + n + 4096;
    p = ngx_pnalloc(o->pool, size);
    if (p == NULL) {
        o->failed = 1;
        return NULL;
    }

    o->pos = ngx_cpymem(p, o->start, o->pos - o->start);
    o->start = p;
    o->end = p + size;

    return o->pos;
}


static void
ngx_http_deferred_out(ngx_http_deferred_out_t *o, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    /* every formatted piece here is short: numbers and fixed text */
    p = ngx_http_deferred_out_room(o, 512);
    if (p == NULL) {
        return;
    }

    va_start(args, fmt);
    o->pos = ngx_vslprintf(p, o->end, fmt, args);
    va_end(args);
}


/* a JSON string: '"', '\\' and control characters escaped, bytes that
 * are not UTF-8 replaced by '?' (the reply must stay valid JSON) */

static void
ngx_http_deferred_out_json(ngx_http_deferred_out_t *o, ngx_str_t *s)
{
    u_char      *p, c;
    size_t       i, n, k;
    static u_char hex[] = "0123456789abcdef";

    p = ngx_http_deferred_out_room(o, s->len * 6 + 2);
    if (p == NULL) {
        return;
    }

    *p++ = '"';

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = c;

        } else if (c < 0x20 || c == 0x7f) {
            *p++ = '\\'; *p++ = 'u'; *p++ = '0'; *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];

        } else if (c < 0x80) {
            *p++ = c;

        } else {
            n = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
                : (c & 0xf8) == 0xf0 ? 3 : 0;

            for (k = 1; n && k <= n; k++) {
                if (i + k >= s->len || (s->data[i + k] & 0xc0) != 0x80) {
                    n = 0;
                }
            }

            if (n == 0) {
                *p++ = '?';
                continue;
            }

            p = ngx_cpymem(p, s->data + i, n + 1);
            i += n;
        }
    }

    *p++ = '"';
    o->pos = p;
}


/* a Prometheus label value: '\\', '"' and newline escaped */

static void
ngx_http_deferred_out_label(ngx_http_deferred_out_t *o, ngx_str_t *s)
{
    u_char  *p;
    size_t   i;

    p = ngx_http_deferred_out_room(o, s->len * 2 + 2);
    if (p == NULL) {
        return;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] == '\\' || s->data[i] == '"') {
            *p++ = '\\';
            *p++ = s->data[i];

        } else if (s->data[i] == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else {
            *p++ = s->data[i];
        }
    }

    o->pos = p;
}


static ngx_str_t *
ngx_http_deferred_wfield(ngx_http_deferred_wstat_t *w, const char *name)
{
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    kv = w->fields.elts;

    for (i = 0; i < w->fields.nelts; i++) {
        if (kv[i].key.len && ngx_strcmp(kv[i].key.data, name) == 0) {
            return &kv[i].value;
        }
    }

    return NULL;
}


static void
ngx_http_deferred_render_status(ngx_http_deferred_op_t *op)
{
    ngx_str_t                   body, *v, nul = ngx_null_string;
    ngx_uint_t                  i, k, n;
    int64_t                     cum;
    ngx_http_deferred_out_t     o;
    ngx_http_deferred_qstat_t  *q, *s;
    ngx_http_deferred_wstat_t  *w;
    ngx_http_deferred_dead_t   *d;
    static const char          *wnum[] = { "pid", "child", "running",
                                           "done", "failed", "started_ms",
                                           "beat_ms" };

    ngx_memzero(&o, sizeof(o));
    o.pool = op->pool;

    ngx_http_deferred_out(&o, "{\"now_ms\":%L,\"redis\":\"up\","
                          "\"queues_not_shown\":%ui,"
                          "\"queues_not_summed\":%ui,\"queues\":[",
                          op->now_ms, op->dropped, op->unsummed);

    q = op->queues.elts;
    n = 0;

    for (i = 0; i < op->queues.nelts; i++) {
        if (!q[i].ok) {
            continue;
        }

        ngx_http_deferred_out(&o, "%s{\"queue\":", n++ ? "," : "");
        ngx_http_deferred_out_json(&o, &q[i].name);
        ngx_http_deferred_out(&o, ",\"waiting\":%L,\"due\":%L,\"delayed\":%L,"
                              "\"running\":%L,\"dead\":%L,\"paused\":%s,"
                              "\"rate\":",
                              q[i].waiting, q[i].due, q[i].waiting - q[i].due,
                              q[i].running, q[i].dead,
                              q[i].paused ? "true" : "false");
        if (q[i].rate.len) {
            ngx_http_deferred_out_json(&o, &q[i].rate);
        } else {
            ngx_http_deferred_out(&o, "null");
        }

        ngx_http_deferred_out(&o, ",\"max_concurrent\":");
        if (q[i].max_concurrent.len) {
            ngx_http_deferred_out_json(&o, &q[i].max_concurrent);
        } else {
            ngx_http_deferred_out(&o, "null");
        }

        if (q[i].oldest >= 0) {
            ngx_http_deferred_out(&o, ",\"oldest_due_age_ms\":%L",
                                  q[i].oldest);
        } else {
            ngx_http_deferred_out(&o, ",\"oldest_due_age_ms\":null");
        }

        ngx_http_deferred_out(&o, ",\"v1_left\":%L,\"shards\":%ui",
                              q[i].v1_left,
                              q[i].shards > 1 ? q[i].shards : 1);

        for (k = 0; q[i].parts && k < q[i].shards; k++) {
            s = &q[i].parts[k];
            ngx_http_deferred_out(&o, "%s{\"shard\":%ui,\"waiting\":%L,"
                                  "\"due\":%L,\"running\":%L,\"dead\":%L,"
                                  "\"enqueued\":%L,\"done\":%L}",
                                  k ? "," : ",\"shard_stats\":[", k,
                                  s->waiting, s->due, s->running, s->dead,
                                  s->counters[0], s->counters[1]);
        }

        if (q[i].parts) {
            ngx_http_deferred_out(&o, "]");
        }

        ngx_http_deferred_out(&o, ",\"counters\":{");
        for (k = 0; k < 7; k++) {
            ngx_http_deferred_out(&o, "%s\"%s\":%L", k ? "," : "",
                                  ngx_http_deferred_counter_names[k],
                                  q[i].counters[k]);
        }

        ngx_http_deferred_out(&o, "},\"lateness_ms\":{\"buckets\":[");
        cum = 0;
        for (k = 0; k <= DQ_LATENESS_NBOUNDS; k++) {
            cum += q[i].late[k];
            if (k < DQ_LATENESS_NBOUNDS) {
                ngx_http_deferred_out(&o, "%s[%L,%L]", k ? "," : "",
                                      ngx_http_deferred_late_bounds[k], cum);
            } else {
                ngx_http_deferred_out(&o, ",[\"+Inf\",%L]", cum);
            }
        }

        ngx_http_deferred_out(&o, "],\"sum\":%L,\"count\":%L},"
                              "\"dead_tasks\":[", q[i].late_sum,
                              q[i].late_count);

        d = q[i].dead_tasks.elts;
        for (k = 0; k < q[i].dead_tasks.nelts; k++) {
            ngx_http_deferred_out(&o, "%s{\"id\":", k ? "," : "");
            ngx_http_deferred_out_json(&o, &d[k].id);
            ngx_http_deferred_out(&o, ",\"died_ms\":%L,\"function\":",
                                  (int64_t) (d[k].died.len
                                      ? strtoll((char *) d[k].died.data,
                                                NULL, 10) : 0));
            ngx_http_deferred_out_json(&o, &d[k].func);
            ngx_http_deferred_out(&o, ",\"error\":");
            ngx_http_deferred_out_json(&o, &d[k].error);
            ngx_http_deferred_out(&o, "}");
        }

        ngx_http_deferred_out(&o, "]}");
    }

    ngx_http_deferred_out(&o, "],\"workers\":[");

    w = op->workers.elts;
    n = 0;

    for (i = 0; i < op->workers.nelts; i++) {
        if (w[i].fields.nelts == 0) {
            continue;   /* expired between the two reads */
        }

        ngx_http_deferred_out(&o, "%s{\"id\":", n++ ? "," : "");
        ngx_http_deferred_out_json(&o, &w[i].id);
        ngx_http_deferred_out(&o, ",\"host\":");
        v = ngx_http_deferred_wfield(&w[i], "host");
        ngx_http_deferred_out_json(&o, v ? v : &nul);
        ngx_http_deferred_out(&o, ",\"queues\":");
        v = ngx_http_deferred_wfield(&w[i], "queues");
        ngx_http_deferred_out_json(&o, v ? v : &nul);

        for (k = 0; k < sizeof(wnum) / sizeof(wnum[0]); k++) {
            v = ngx_http_deferred_wfield(&w[i], wnum[k]);
            ngx_http_deferred_out(&o, ",\"%s\":%L", wnum[k],
                                  (int64_t) (v && v->len
                                      ? strtoll((char *) v->data, NULL, 10)
                                      : 0));
        }

        ngx_http_deferred_out(&o, "}");
    }

    ngx_http_deferred_out(&o, "]}\n");

    if (o.failed) {
        ngx_http_deferred_op_finish(op, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "application/json", NULL);
        return;
    }

    body.data = o.start;
    body.len = o.pos - o.start;

    ngx_http_deferred_op_finish(op, NGX_HTTP_OK, "application/json", &body);
}


static void
ngx_http_deferred_render_metrics(ngx_http_deferred_op_t *op)
{
    ngx_str_t                   body, *v;
    ngx_uint_t                  i, k, s, live;
    int64_t                     cum, val;
    ngx_http_deferred_out_t     o;
    ngx_http_deferred_qstat_t  *q;
    ngx_http_deferred_wstat_t  *w;
    static const char          *states[] = { "due", "delayed", "running",
                                             "dead" };
    static const char          *chelp[7] = {
        "Tasks stored by enqueue.",
        "Tasks that ran and succeeded.",
        "Failed attempts given another try.",
        "Tasks moved to the dead set.",
        "Dead tasks run again by an operator.",
        "Tasks deleted by an operator.",
        "Expired leases taken back (a worker died or stalled)."
    };

    ngx_memzero(&o, sizeof(o));
    o.pool = op->pool;
    q = op->queues.elts;

    ngx_http_deferred_out(&o, "# HELP deferred_tasks Tasks in a queue by "
                          "state (due and delayed are waiting).\n"
                          "# TYPE deferred_tasks gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        for (s = 0; q[i].ok && s < 4; s++) {
            val = s == 0 ? q[i].due : s == 1 ? q[i].waiting - q[i].due
                  : s == 2 ? q[i].running : q[i].dead;
            ngx_http_deferred_out(&o, "deferred_tasks{queue=\"");
            ngx_http_deferred_out_label(&o, &q[i].name);
            ngx_http_deferred_out(&o, "\",state=\"%s\"} %L\n", states[s],
                                  val);
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_queue_shards Shards of a "
                          "queue (1: not sharded; deferred_tasks and the "
                          "counters are the sums over them).\n"
                          "# TYPE deferred_queue_shards gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        if (q[i].ok) {
            ngx_http_deferred_out(&o, "deferred_queue_shards{queue=\"");
            ngx_http_deferred_out_label(&o, &q[i].name);
            ngx_http_deferred_out(&o, "\"} %ui\n",
                                  q[i].shards > 1 ? q[i].shards : 1);
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_shard_tasks Tasks in one "
                          "shard of a sharded queue by state.\n"
                          "# TYPE deferred_shard_tasks gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        for (k = 0; q[i].ok && q[i].parts && k < q[i].shards; k++) {
            for (s = 0; s < 4; s++) {
                val = s == 0 ? q[i].parts[k].due
                      : s == 1 ? q[i].parts[k].waiting - q[i].parts[k].due
                      : s == 2 ? q[i].parts[k].running : q[i].parts[k].dead;
                ngx_http_deferred_out(&o, "deferred_shard_tasks{queue=\"");
                ngx_http_deferred_out_label(&o, &q[i].name);
                ngx_http_deferred_out(&o, "\",shard=\"%ui\",state=\"%s\"} "
                                      "%L\n", k, states[s], val);
            }
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_v1_tasks Tasks still in "
                          "contract v1's keys (dq:{q}:*): the workers and "
                          "deferred-cli migrate move them.\n"
                          "# TYPE deferred_v1_tasks gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        if (q[i].ok) {
            ngx_http_deferred_out(&o, "deferred_v1_tasks{queue=\"");
            ngx_http_deferred_out_label(&o, &q[i].name);
            ngx_http_deferred_out(&o, "\"} %L\n", q[i].v1_left);
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_queue_paused 1 if the queue "
                          "is paused.\n# TYPE deferred_queue_paused gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        if (q[i].ok) {
            ngx_http_deferred_out(&o, "deferred_queue_paused{queue=\"");
            ngx_http_deferred_out_label(&o, &q[i].name);
            ngx_http_deferred_out(&o, "\"} %ui\n", q[i].paused);
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_oldest_due_age_seconds How "
                          "long the oldest due task has waited past its "
                          "ETA (0: none due).\n"
                          "# TYPE deferred_oldest_due_age_seconds gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        if (q[i].ok) {
            val = q[i].oldest > 0 ? q[i].oldest : 0;
            ngx_http_deferred_out(&o,
                                  "deferred_oldest_due_age_seconds{queue=\"");
            ngx_http_deferred_out_label(&o, &q[i].name);
            ngx_http_deferred_out(&o, "\"} %L.%03L\n", val / 1000,
                                  val % 1000);
        }
    }

    for (k = 0; k < 7; k++) {
        ngx_http_deferred_out(&o, "# HELP deferred_tasks_%s_total %s\n"
                              "# TYPE deferred_tasks_%s_total counter\n",
                              ngx_http_deferred_counter_names[k], chelp[k],
                              ngx_http_deferred_counter_names[k]);

        for (i = 0; i < op->queues.nelts; i++) {
            if (q[i].ok) {
                ngx_http_deferred_out(&o, "deferred_tasks_%s_total{queue=\"",
                                      ngx_http_deferred_counter_names[k]);
                ngx_http_deferred_out_label(&o, &q[i].name);
                ngx_http_deferred_out(&o, "\"} %L\n", q[i].counters[k]);
            }
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_task_lateness_seconds Time "
                          "from a task's ETA to its claim, for tasks that "
                          "ran.\n"
                          "# TYPE deferred_task_lateness_seconds histogram\n");

    for (i = 0; i < op->queues.nelts; i++) {
        if (!q[i].ok) {
            continue;
        }

        cum = 0;

        for (k = 0; k <= DQ_LATENESS_NBOUNDS; k++) {
            cum += q[i].late[k];
            ngx_http_deferred_out(&o,
                                  "deferred_task_lateness_seconds_bucket"
                                  "{queue=\"");
            ngx_http_deferred_out_label(&o, &q[i].name);

            if (k < DQ_LATENESS_NBOUNDS) {
                val = ngx_http_deferred_late_bounds[k];
                ngx_http_deferred_out(&o, "\",le=\"%L.%03L\"} %L\n",
                                      val / 1000, val % 1000, cum);
            } else {
                ngx_http_deferred_out(&o, "\",le=\"+Inf\"} %L\n", cum);
            }
        }

        ngx_http_deferred_out(&o, "deferred_task_lateness_seconds_sum"
                              "{queue=\"");
        ngx_http_deferred_out_label(&o, &q[i].name);
        ngx_http_deferred_out(&o, "\"} %L.%03L\n", q[i].late_sum / 1000,
                              q[i].late_sum % 1000);
        ngx_http_deferred_out(&o, "deferred_task_lateness_seconds_count"
                              "{queue=\"");
        ngx_http_deferred_out_label(&o, &q[i].name);
        ngx_http_deferred_out(&o, "\"} %L\n", cum);
    }

    w = op->workers.elts;
    live = 0;

    for (i = 0; i < op->workers.nelts; i++) {
        live += w[i].fields.nelts != 0;
    }

    ngx_http_deferred_out(&o, "# HELP deferred_queues_not_shown Queues in "
                          "dq:queues past the %d reported (deferred-cli "
                          "forget drops empty ones).\n"
                          "# TYPE deferred_queues_not_shown gauge\n"
                          "deferred_queues_not_shown %ui\n",
                          NGX_HTTP_DEFERRED_MAX_QUEUES, op->dropped);

    ngx_http_deferred_out(&o, "# HELP deferred_queues_not_summed Sharded "
                          "queues shown with shard 0's numbers only (past "
                          "%d shard status calls per scrape).\n"
                          "# TYPE deferred_queues_not_summed gauge\n"
                          "deferred_queues_not_summed %ui\n",
                          NGX_HTTP_DEFERRED_MAX_SHARD_CALLS, op->unsummed);

    ngx_http_deferred_out(&o, "# HELP deferred_workers Live worker children "
                          "(heartbeat younger than %d s).\n"
                          "# TYPE deferred_workers gauge\n"
                          "deferred_workers %ui\n",
                          DQ_WORKER_TTL_MS / 1000, live);

    ngx_http_deferred_out(&o, "# HELP deferred_worker_running_tasks Tasks a "
                          "worker child runs now.\n"
                          "# TYPE deferred_worker_running_tasks gauge\n");

    for (i = 0; i < op->workers.nelts; i++) {
        if (w[i].fields.nelts == 0) {
            continue;
        }

        v = ngx_http_deferred_wfield(&w[i], "running");
        ngx_http_deferred_out(&o, "deferred_worker_running_tasks{worker=\"");
        ngx_http_deferred_out_label(&o, &w[i].id);
        ngx_http_deferred_out(&o, "\"} %L\n",
                              (int64_t) (v && v->len
                                  ? strtoll((char *) v->data, NULL, 10) : 0));
    }

    ngx_http_deferred_out(&o, "# HELP deferred_redis_up 1 if Redis "
                          "answered this scrape.\n"
                          "# TYPE deferred_redis_up gauge\n"
                          "deferred_redis_up 1\n");

    if (o.failed) {
        ngx_http_deferred_op_finish(op, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "text/plain", NULL);
        return;
    }

    body.data = o.start;
    body.len = o.pos - o.start;

    ngx_http_deferred_op_finish(op, NGX_HTTP_OK,
                                NGX_HTTP_DEFERRED_METRICS_TYPE,
                                &body);
}
