
/*
 * ngx_http_deferred_module: directives, configuration, variables and the
 * module's hooks into nginx (phases, worker start and exit).
 *
 * Everything a configuration can get wrong is reported at load time with
 * ngx_conf_log_error naming the bad value, so it shows in "nginx -t".
 */


#include "ngx_http_deferred_module.h"


/* deferred_retry_bounds defaults (min_backoff: DQ_DEFAULT_MIN_BACKOFF_MS) */
#define NGX_HTTP_DEFERRED_MAX_RETRIES     100
#define NGX_HTTP_DEFERRED_MAX_BACKOFF_MS  (24 * 3600 * 1000LL)
#define NGX_HTTP_DEFERRED_MAX_DOUBLINGS   32


static ngx_int_t ngx_http_deferred_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_deferred_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_deferred_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_deferred_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_deferred_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_deferred_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_deferred_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_deferred_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_deferred_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_deferred_queues(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_deferred_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_deferred_functions(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_deferred_retry_bounds(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_deferred_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_deferred_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_deferred_init_process(ngx_cycle_t *cycle);
static void ngx_http_deferred_exit_process(ngx_cycle_t *cycle);


static ngx_http_request_body_filter_pt  ngx_http_next_request_body_filter;


static ngx_conf_num_bounds_t  ngx_http_deferred_batch_bounds = {
    ngx_conf_check_num_bounds, 1, DQ_DEFAULT_MAX_BATCH * 10
};


static ngx_command_t  ngx_http_deferred_commands[] = {

    { ngx_string("deferred_redis"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_deferred_redis,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("deferred_endpoint"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_deferred_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("deferred_enqueue"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_deferred_enqueue_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("deferred_return"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_deferred_return_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("deferred_queues"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_deferred_queues,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("deferred_secret"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_deferred_secret,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("deferred_functions"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_deferred_functions,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("deferred_retry_bounds"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_deferred_retry_bounds,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("deferred_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_deferred_loc_conf_t, max_body),
      NULL },

    { ngx_string("deferred_max_envelope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_deferred_loc_conf_t, max_envelope),
      NULL },

    { ngx_string("deferred_max_batch"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_deferred_loc_conf_t, max_batch),
      &ngx_http_deferred_batch_bounds },

    { ngx_string("deferred_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_deferred_loc_conf_t, timeout),
      NULL },

    { ngx_string("deferred_tombstone"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_deferred_loc_conf_t, tombstone),
      NULL },

    { ngx_string("deferred_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_deferred_ops_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_deferred_ops_kinds[1] },

    { ngx_string("deferred_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_deferred_ops_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_deferred_ops_kinds[2] },

    { ngx_string("deferred_dashboard"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE123,
      ngx_http_deferred_ops_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_deferred_ops_kinds[3] },

    { ngx_string("deferred_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_deferred_ops_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_deferred_ops_kinds[4] },

    { ngx_string("deferred_ready"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_deferred_ops_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_deferred_ops_kinds[5] },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_deferred_module_ctx = {
    ngx_http_deferred_preconfiguration,    /* preconfiguration */
    ngx_http_deferred_postconfiguration,   /* postconfiguration */

    ngx_http_deferred_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_deferred_create_srv_conf,     /* create server configuration */
    ngx_http_deferred_merge_srv_conf,      /* merge server configuration */

    ngx_http_deferred_create_loc_conf,     /* create location configuration */
    ngx_http_deferred_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_deferred_module = {
    NGX_MODULE_V1,
    &ngx_http_deferred_module_ctx,         /* module context */
    ngx_http_deferred_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_deferred_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_deferred_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_deferred_vars[] = {

    { ngx_string("deferred_task_id"), NULL, ngx_http_deferred_variable,
      offsetof(ngx_http_deferred_ctx_t, var_id), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("deferred_task_eta"), NULL, ngx_http_deferred_variable,
      offsetof(ngx_http_deferred_ctx_t, var_eta), NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_deferred_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_deferred_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_deferred_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *s;
    ngx_http_deferred_ctx_t  *ctx;

    ctx = ngx_http_deferred_ctx_find(r, NULL);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_deferred_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                      i, n;
    ngx_array_t                    *a;
    ngx_http_handler_pt            *h;
    ngx_http_deferred_redis_t     **rsp;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_deferred_main_conf_t  *dmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_deferred_module);

    /* one attempt with sentinels or seeds is a round of them, each up to
     * connect_timeout: longer than deferred_timeout, a request waiting for
     * it may be answered only at its timeout (docs/OPERATIONS.md) */
    rsp = dmcf->servers.elts;

    for (i = 0; i < dmcf->servers.nelts; i++) {
        n = rsp[i]->nsentinels ? rsp[i]->nsentinels : rsp[i]->nseeds;

        if (n && rsp[i]->max_timeout
            && n * rsp[i]->connect_timeout >= rsp[i]->max_timeout)
        {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "deferred_redis %V: %ui %s x connect_timeout "
                          "%Mms is not below deferred_timeout %Mms: while "
                          "they do not answer, a request may wait its whole "
                          "deferred_timeout", &rsp[i]->name, n,
                          rsp[i]->nsentinels ? "sentinels" : "seeds",
                          rsp[i]->connect_timeout, rsp[i]->max_timeout);
        }
    }

    /*
     * Both in the precontent phase, after every access and limit phase
     * (allow/deny, auth_basic, auth_request, limit_req, limit_conn) and
     * after the rewrite phase ("set", "if", "return"). Handlers of a phase
     * run from the last pushed to the first: the endpoint goes at the end
     * (it runs first, ahead of try_files), deferred_enqueue at the start
     * (it runs last, after try_files has chosen the location that serves
     * the request).
     */

    a = &cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers;

    h = ngx_array_push(a);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_deferred_precontent_handler;

    h = ngx_array_push(a);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = a->elts;
    ngx_memmove(&h[1], &h[0], (a->nelts - 1) * sizeof(ngx_http_handler_pt));
    h[0] = ngx_http_deferred_enqueue_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_deferred_log_handler;

    /* deferred_max_body while the body is read, whatever its framing */

    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_deferred_body_filter;

    return NGX_OK;
}


static void *
ngx_http_deferred_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_deferred_main_conf_t  *dmcf;

    dmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_deferred_main_conf_t));
    if (dmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&dmcf->servers, cf->pool, 2,
                       sizeof(ngx_http_deferred_redis_t *))
        != NGX_OK)
    {
        return NULL;
    }

    ngx_queue_init(&dmcf->tfree);

    return dmcf;
}


static void *
ngx_http_deferred_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_deferred_srv_conf_t  *dscf;

    dscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_deferred_srv_conf_t));
    if (dscf == NULL) {
        return NULL;
    }

    dscf->endpoint = NGX_CONF_UNSET;

    return dscf;
}


static char *
ngx_http_deferred_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_deferred_srv_conf_t  *prev = parent;
    ngx_http_deferred_srv_conf_t  *conf = child;

    ngx_conf_merge_value(conf->endpoint, prev->endpoint, 0);

    return NGX_CONF_OK;
}


static void *
ngx_http_deferred_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_deferred_loc_conf_t  *dlcf;

    dlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_deferred_loc_conf_t));
    if (dlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     dlcf->enqueues = NULL;
     *     dlcf->secret_header = { 0, NULL };
     */

    dlcf->redis = NGX_CONF_UNSET_PTR;
    dlcf->endpoint = NGX_CONF_UNSET;
    dlcf->endpoint_off = NGX_CONF_UNSET;
    dlcf->open = NGX_CONF_UNSET;
    dlcf->functions = NGX_CONF_UNSET_PTR;
    dlcf->secrets = NGX_CONF_UNSET_PTR;
    dlcf->secret_window = NGX_CONF_UNSET;
    dlcf->bounds = NGX_CONF_UNSET_PTR;
    dlcf->queues = NGX_CONF_UNSET_PTR;
    dlcf->max_body = NGX_CONF_UNSET_SIZE;
    dlcf->max_envelope = NGX_CONF_UNSET_SIZE;
    dlcf->max_batch = NGX_CONF_UNSET_UINT;
    dlcf->timeout = NGX_CONF_UNSET_MSEC;
    dlcf->tombstone = NGX_CONF_UNSET_MSEC;

    return dlcf;
}


static char *
ngx_http_deferred_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_deferred_loc_conf_t  *prev = parent;
    ngx_http_deferred_loc_conf_t  *conf = child;

    ngx_flag_t                     open_here;
    ngx_http_deferred_srv_conf_t  *dscf;

    static ngx_http_deferred_bounds_t  bounds = {
        NGX_HTTP_DEFERRED_MAX_RETRIES, DQ_DEFAULT_MIN_BACKOFF_MS,
        NGX_HTTP_DEFERRED_MAX_BACKOFF_MS, NGX_HTTP_DEFERRED_MAX_DOUBLINGS, 0
    };

    open_here = (conf->open == 1);

    ngx_conf_merge_ptr_value(conf->redis, prev->redis, NULL);
    ngx_conf_merge_value(conf->endpoint, prev->endpoint, 0);
    ngx_conf_merge_value(conf->endpoint_off, prev->endpoint_off, 0);
    ngx_conf_merge_value(conf->open, prev->open, 0);
    ngx_conf_merge_ptr_value(conf->queues, prev->queues, NULL);
    ngx_conf_merge_ptr_value(conf->functions, prev->functions, NULL);
    ngx_conf_merge_ptr_value(conf->secrets, prev->secrets, NULL);
    ngx_conf_merge_value(conf->secret_window, prev->secret_window,
                         DQ_SIGN_WINDOW_S);
    ngx_conf_merge_ptr_value(conf->bounds, prev->bounds, &bounds);
    ngx_conf_merge_size_value(conf->max_body, prev->max_body,
                              DQ_DEFAULT_MAX_ENVELOPE);
    ngx_conf_merge_size_value(conf->max_envelope, prev->max_envelope,
                              DQ_DEFAULT_MAX_ENVELOPE);
    ngx_conf_merge_uint_value(conf->max_batch, prev->max_batch,
                              DQ_DEFAULT_MAX_BATCH);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 3000);
    ngx_conf_merge_msec_value(conf->tombstone, prev->tombstone,
                              (ngx_msec_t) DQ_DEFAULT_TOMBSTONE_MS);

    if (conf->secret_header.data == NULL) {
        conf->secret_header = prev->secret_header;
    }

    if (conf->secret_header.data == NULL) {
        ngx_str_set(&conf->secret_header, DQ_SIGN_HEADER);
    }

    if (open_here && conf->secrets == NULL) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "the deferred endpoint is open to every address "
                           "without \"deferred_secret\": anyone who reaches "
                           "this server can run any registered function");
    }

    if (conf->max_body == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"deferred_max_body\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    /* a task's envelope: within what a worker's max_envelope can be set
     * to (the workers' must be at least this: docs/OPERATIONS.md) */

    if (conf->max_envelope < DQ_MIN_ENVELOPE_LIMIT
        || conf->max_envelope > (size_t) DQ_MAX_ENVELOPE_LIMIT)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"deferred_max_envelope\" must be %d to %uz "
                           "bytes (the range of the worker's max_envelope)",
                           DQ_MIN_ENVELOPE_LIMIT,
                           (size_t) DQ_MAX_ENVELOPE_LIMIT);
        return NGX_CONF_ERROR;
    }

    if (conf->timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"deferred_timeout\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    if (conf->redis && conf->redis->max_timeout < conf->timeout) {
        conf->redis->max_timeout = conf->timeout;
    }

    dscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_deferred_module);

    if (conf->redis == NULL
        && (conf->enqueues || conf->endpoint
            || (dscf && dscf->endpoint == 1)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"deferred_endpoint\" or \"deferred_enqueue\" "
                           "used without \"deferred_redis\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* host of url, resolved now, into out: numeric, NUL-terminated, IPv6
 * without brackets */

static ngx_int_t
ngx_http_deferred_redis_resolve(ngx_conf_t *cf, ngx_str_t *url,
    dq_str_t *host, int port, ngx_str_t *out)
{
    ngx_url_t  u;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *url;
    u.host.data = (u_char *) host->ptr;
    u.host.len = host->len;
    u.port = (in_port_t) port;

    if (ngx_inet_resolve_host(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in \"deferred_redis\" address \"%V\"",
                           u.err ? u.err : "host not found", &u.url);
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen,
                             out->data, NGX_SOCKADDR_STRLEN, 0);
    out->data[out->len] = '\0';

    if (out->len && out->data[0] == '[') {
        /* IPv6 without the brackets for getaddrinfo */
        ngx_memmove(out->data, out->data + 1, out->len - 2);
        out->len -= 2;
        out->data[out->len] = '\0';
    }

    return NGX_OK;
}


/* deferred_redis HOST[:PORT] | [IPV6]:PORT | unix:PATH
 *                | sentinel:MASTER@HOST[:PORT][,...]
 *                | cluster:HOST[:PORT][,...] [password=] [db=]
 *                [connect_timeout=] [replicas=n] [replicas_timeout=] */

static char *
ngx_http_deferred_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_deferred_loc_conf_t  *dlcf = conf;

    u_char                          *p;
    ngx_str_t                       *value, password, s;
    ngx_int_t                        db, replicas;
    ngx_uint_t                       i;
    dq_addr_t                        addr;
    dq_error_t                       err;
    ngx_msec_t                       connect_timeout, replicas_timeout;
    ngx_http_deferred_redis_t       *rs, **rsp;
    ngx_http_deferred_main_conf_t   *dmcf;

    if (dlcf->redis != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_str_null(&password);
    db = 0;
    connect_timeout = 1000;
    replicas = 0;
    replicas_timeout = 1000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            password.data = value[i].data + 9;
            password.len = value[i].len - 9;

            if (password.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            db = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (db == NGX_ERROR || db > 65535) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "replicas=", 9) == 0) {
            replicas = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (replicas == NGX_ERROR || replicas > 100) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "replicas_timeout=", 17) == 0) {
            s.data = value[i].data + 17;
            s.len = value[i].len - 17;

            replicas_timeout = ngx_parse_time(&s, 0);
            if (replicas_timeout == (ngx_msec_t) NGX_ERROR
                || replicas_timeout == 0)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "connect_timeout=", 16) == 0) {
            s.data = value[i].data + 16;
            s.len = value[i].len - 16;

            connect_timeout = ngx_parse_time(&s, 0);
            if (connect_timeout == (ngx_msec_t) NGX_ERROR
                || connect_timeout == 0)
            {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_deferred_module);

    /* one connection per worker per Redis: share equal definitions */

    rsp = dmcf->servers.elts;

    for (i = 0; i < dmcf->servers.nelts; i++) {
        rs = rsp[i];

        if (rs->name.len == value[1].len
            && ngx_strncmp(rs->name.data, value[1].data, value[1].len) == 0
            && rs->db == db
            && rs->replicas == replicas
            && rs->replicas_timeout == replicas_timeout
            && rs->password.len == password.len
            && ngx_strncmp(rs->password.data, password.data, password.len)
               == 0)
        {
            dlcf->redis = rs;
            return NGX_CONF_OK;
        }
    }

    rs = ngx_pcalloc(cf->pool, sizeof(ngx_http_deferred_redis_t));
    if (rs == NULL) {
        return NGX_CONF_ERROR;
    }

    rs->name = value[1];
    rs->db = db;
    rs->connect_timeout = connect_timeout;
    rs->replicas = replicas;
    rs->replicas_timeout = replicas_timeout;

    if (password.len) {
        rs->password.data = ngx_pstrdup(cf->pool, &password);
        if (rs->password.data == NULL) {
            return NGX_CONF_ERROR;
        }

        rs->password.len = password.len;
    }

    /* the syntax is dq_addr_parse's, as for the worker and the client */

    if (dq_addr_parse((dq_str_t) { (char *) value[1].data, value[1].len },
                      &addr, &err)
        != DQ_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in \"deferred_redis\"", err.msg);
        return NGX_CONF_ERROR;
    }

    if (addr.path.len) {
        rs->unix_path.len = addr.path.len;
        rs->unix_path.data = ngx_pnalloc(cf->pool, rs->unix_path.len + 1);
        if (rs->unix_path.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(rs->unix_path.data, addr.path.ptr, addr.path.len);
        *p = '\0';

    } else if (addr.master.len) {

        /* the sentinels resolved here, once; the primary is asked of them
         * by each worker on each (re)connect */

        rs->master.len = addr.master.len;
        rs->master.data = ngx_pnalloc(cf->pool, addr.master.len + 1);
        rs->host.data = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        rs->sentinels = ngx_pcalloc(cf->pool, addr.nsentinels
                                    * sizeof(ngx_http_deferred_sentinel_t));
        if (rs->master.data == NULL || rs->host.data == NULL
            || rs->sentinels == NULL)
        {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(rs->master.data, addr.master.ptr, addr.master.len);
        *p = '\0';

        for (i = 0; i < addr.nsentinels; i++) {
            if (ngx_http_deferred_redis_resolve(cf, &value[1],
                                                &addr.sentinel[i].host,
                                                addr.sentinel[i].port,
                                                &rs->sentinels[i].host)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            rs->sentinels[i].port = (in_port_t) addr.sentinel[i].port;
        }

        rs->nsentinels = addr.nsentinels;

    } else if (addr.nseeds) {

        /* the seeds resolved here, once; the slot map is asked of them
         * by each worker (numeric addresses only after that) */

        if (db != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"db=%i\" in \"deferred_redis\": a Redis "
                               "Cluster has only database 0", db);
            return NGX_CONF_ERROR;
        }

        rs->seeds = ngx_pcalloc(cf->pool, addr.nseeds
                                * sizeof(ngx_http_deferred_sentinel_t));
        if (rs->seeds == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < addr.nseeds; i++) {
            if (ngx_http_deferred_redis_resolve(cf, &value[1],
                                                &addr.seed[i].host,
                                                addr.seed[i].port,
                                                &rs->seeds[i].host)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            rs->seeds[i].port = (in_port_t) addr.seed[i].port;
        }

        rs->nseeds = addr.nseeds;

    } else {

        /* resolved here, once: workers connect by numeric address */

        if (ngx_http_deferred_redis_resolve(cf, &value[1], &addr.host,
                                            addr.port, &rs->host)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        rs->port = addr.port;
    }

    rsp = ngx_array_push(&dmcf->servers);
    if (rsp == NULL) {
        return NGX_CONF_ERROR;
    }

    *rsp = rs;
    dlcf->redis = rs;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"deferred_redis\"",
                       &value[i]);

    return NGX_CONF_ERROR;
}


/* deferred_endpoint on [open] | off: "on" at server level serves
 * /_ah/queue/deferred; in a location, that location's URL; "open" lets any
 * address call it (else only the local host's, unless deferred_secret) */

static char *
ngx_http_deferred_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_deferred_loc_conf_t  *dlcf = conf;

    ngx_str_t                     *value;
    ngx_flag_t                     on;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_deferred_srv_conf_t  *dscf;

    value = cf->args->elts;

    if (ngx_strcasecmp(value[1].data, (u_char *) "on") == 0) {
        on = 1;

    } else if (ngx_strcasecmp(value[1].data, (u_char *) "off") == 0) {
        on = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"deferred_endpoint\", "
                           "it must be \"on\" or \"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (!on || ngx_strcmp(value[2].data, "open") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"deferred_endpoint\", only \"on open\" "
                               "takes one", &value[2]);
            return NGX_CONF_ERROR;
        }

        dlcf->open = 1;
    }

    if (cf->cmd_type == NGX_HTTP_SRV_CONF) {
        dscf = ngx_http_conf_get_module_srv_conf(cf,
                                                 ngx_http_deferred_module);

        if (dscf->endpoint != NGX_CONF_UNSET) {
            return "is duplicate";
        }

        dscf->endpoint = on;
        return NGX_CONF_OK;
    }

    if (dlcf->endpoint != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    dlcf->endpoint = on;
    dlcf->endpoint_off = !on;

    if (on) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        clcf->handler = ngx_http_deferred_endpoint_handler;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_deferred_queues(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_deferred_loc_conf_t  *dlcf = conf;

    dq_str_t     d;
    ngx_str_t   *value, *q;
    ngx_uint_t   i;

    if (dlcf->queues != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    dlcf->queues = ngx_array_create(cf->pool, cf->args->nelts,
                                    sizeof(ngx_str_t));
    if (dlcf->queues == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        d.ptr = (const char *) value[i].data;
        d.len = value[i].len;

        if (!dq_queue_name_valid(d)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid queue name \"%V\" in "
                               "\"deferred_queues\": 1 to %d characters of "
                               "[A-Za-z0-9_-]", &value[i], DQ_QUEUE_NAME_MAX);
            return NGX_CONF_ERROR;
        }

        q = ngx_array_push(dlcf->queues);
        if (q == NULL) {
            return NGX_CONF_ERROR;
        }

        *q = value[i];
    }

    return NGX_CONF_OK;
}


/* deferred_secret secret [secret ...] [header=name] [window=time] */

static char *
ngx_http_deferred_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_deferred_loc_conf_t  *dlcf = conf;

    time_t       window;
    dq_str_t    *d;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (dlcf->secrets != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    dlcf->secrets = ngx_array_create(cf->pool, 2, sizeof(dq_str_t));
    if (dlcf->secrets == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "header=", 7) == 0) {
            if (value[i].len == 7) {
                goto invalid;
            }

            dlcf->secret_header.data = value[i].data + 7;
            dlcf->secret_header.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "window=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            window = ngx_parse_time(&s, 1);
            if (window == (time_t) NGX_ERROR || window == 0) {
                goto invalid;
            }

            dlcf->secret_window = window;
            continue;
        }

        if (value[i].len < 16) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"deferred_secret\" is too short: use at "
                               "least 16 characters");
            return NGX_CONF_ERROR;
        }

        if (dlcf->secrets->nelts == DQ_SIGN_MAX_SECRETS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"deferred_secret\" takes at most %d secrets",
                               DQ_SIGN_MAX_SECRETS);
            return NGX_CONF_ERROR;
        }

        d = ngx_array_push(dlcf->secrets);
        if (d == NULL) {
            return NGX_CONF_ERROR;
        }

        d->ptr = (const char *) value[i].data;
        d->len = value[i].len;
    }

    if (dlcf->secrets->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"deferred_secret\" names no secret");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"deferred_secret\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/* deferred_functions name | prefix* ... */

static char *
ngx_http_deferred_functions(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_deferred_loc_conf_t  *dlcf = conf;

    dq_str_t     d;
    ngx_str_t   *value, *f;
    ngx_uint_t   i;

    if (dlcf->functions != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    dlcf->functions = ngx_array_create(cf->pool, cf->args->nelts,
                                       sizeof(ngx_str_t));
    if (dlcf->functions == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        d.ptr = (const char *) value[i].data;
        d.len = value[i].len;

        if (d.len > 1 && d.ptr[d.len - 1] == '*') {
            d.len--;
        }

        if (!dq_func_name_valid(d)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid function \"%V\" in "
                               "\"deferred_functions\": a name, or a prefix "
                               "followed by \"*\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        f = ngx_array_push(dlcf->functions);
        if (f == NULL) {
            return NGX_CONF_ERROR;
        }

        *f = value[i];
    }

    return NGX_CONF_OK;
}


/* deferred_retry_bounds [max_retries=n] [min_backoff=time]
 *                       [max_backoff=time] [max_doublings=n] [max_age=time] */

static char *
ngx_http_deferred_retry_bounds(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_deferred_loc_conf_t  *dlcf = conf;

    int64_t                     *field;
    ngx_int_t                    n;
    ngx_str_t                   *value, s;
    ngx_uint_t                   i, is_time;
    ngx_msec_t                   ms;
    ngx_http_deferred_bounds_t  *b;

    if (dlcf->bounds != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    b = ngx_palloc(cf->pool, sizeof(ngx_http_deferred_bounds_t));
    if (b == NULL) {
        return NGX_CONF_ERROR;
    }

    b->max_retries = NGX_HTTP_DEFERRED_MAX_RETRIES;
    b->min_backoff_ms = DQ_DEFAULT_MIN_BACKOFF_MS;
    b->max_backoff_ms = NGX_HTTP_DEFERRED_MAX_BACKOFF_MS;
    b->max_doublings = NGX_HTTP_DEFERRED_MAX_DOUBLINGS;
    b->max_age_ms = 0;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        s = value[i];
        is_time = 1;

        if (ngx_strncmp(s.data, "max_retries=", 12) == 0) {
            field = &b->max_retries;
            is_time = 0;
            s.data += 12;
            s.len -= 12;

        } else if (ngx_strncmp(s.data, "min_backoff=", 12) == 0) {
            field = &b->min_backoff_ms;
            s.data += 12;
            s.len -= 12;

        } else if (ngx_strncmp(s.data, "max_backoff=", 12) == 0) {
            field = &b->max_backoff_ms;
            s.data += 12;
            s.len -= 12;

        } else if (ngx_strncmp(s.data, "max_doublings=", 14) == 0) {
            field = &b->max_doublings;
            is_time = 0;
            s.data += 14;
            s.len -= 14;

        } else if (ngx_strncmp(s.data, "max_age=", 8) == 0) {
            field = &b->max_age_ms;
            s.data += 8;
            s.len -= 8;

        } else {
            goto invalid;
        }

        if (is_time) {
            ms = ngx_parse_time(&s, 0);
            if (ms == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            *field = (int64_t) ms;
            continue;
        }

        n = ngx_atoi(s.data, s.len);
        if (n == NGX_ERROR) {
            goto invalid;
        }

        *field = n;
    }

    dlcf->bounds = b;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in "
                       "\"deferred_retry_bounds\"", &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * deferred_max_body while the body is read (Content-Length, chunked,
 * HTTP/2 without a length alike): the endpoint's body is copied here into
 * the request pool as it arrives and refused with 413 as soon as it
 * passes the limit; nothing is read back from a temp file later.
 */

static ngx_int_t
ngx_http_deferred_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    u_char                        *p;
    size_t                         size, cap;
    ngx_chain_t                   *cl;
    ngx_http_deferred_ctx_t       *ctx;
    ngx_http_deferred_loc_conf_t  *dlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_deferred_module);

    if (ctx == NULL || !ctx->reading) {
        return ngx_http_next_request_body_filter(r, in);
    }

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_deferred_module);

    for (cl = in; cl; cl = cl->next) {
        size = cl->buf->last - cl->buf->pos;

        if (size == 0 || cl->buf->in_file) {
            continue;
        }

        if (size > dlcf->max_body - ctx->raw_len) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "deferred: 413 body over deferred_max_body (%uz) "
                          "while reading", dlcf->max_body);
            ctx->reading = 0;
            return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        }

        if (ctx->raw_len + size > ctx->raw_cap) {
            /* grown as bytes arrive, never to what Content-Length claims
             * (a client announcing 1 MiB and sending nothing would hold
             * it) */
            if (ctx->raw_len == 0
                && (off_t) size == r->headers_in.content_length_n)
            {
                /* the whole body in one buffer (the common small POST):
                 * its size exactly, from the pool's block, no malloc'd
                 * 16 KiB per request */
                cap = size;

            } else {
                cap = ngx_max(ctx->raw_cap * 2, 16384);
                cap = ngx_max(cap, ctx->raw_len + size);
                cap = ngx_min(cap, dlcf->max_body);
            }

            p = ngx_pnalloc(r->pool, cap);
            if (p == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (ctx->raw_len) {
                ngx_memcpy(p, ctx->raw, ctx->raw_len);
            }

            ctx->raw = p;
            ctx->raw_cap = cap;
        }

        ngx_memcpy(ctx->raw + ctx->raw_len, cl->buf->pos, size);
        ctx->raw_len += size;
    }

    return ngx_http_next_request_body_filter(r, in);
}


static ngx_int_t
ngx_http_deferred_init_process(ngx_cycle_t *cycle)
{
    ngx_http_deferred_main_conf_t  *dmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_deferred_module);
    if (dmcf == NULL) {
        return NGX_OK;
    }

    return ngx_http_deferred_redis_init_process(cycle, dmcf);
}


static void
ngx_http_deferred_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_deferred_main_conf_t  *dmcf;

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_deferred_module);
    if (dmcf == NULL) {
        return;
    }

    ngx_http_deferred_redis_exit_process(dmcf);
    ngx_http_deferred_scratch_free(dmcf);
}
