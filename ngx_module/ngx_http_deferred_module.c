
/*
 * ngx_http_deferred_module: directives, configuration, variables and the
 * module's hooks into nginx (phases, worker start and exit).
 *
 * Everything a configuration can get wrong is reported at load time with
 * ngx_conf_log_error naming the bad value, so it shows in "nginx -t".
 */


#include "ngx_http_deferred_module.h"




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
static ngx_int_t ngx_http_deferred_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_deferred_init_process(ngx_cycle_t *cycle);
static void ngx_http_deferred_exit_process(ngx_cycle_t *cycle);


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
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
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

    { ngx_string("deferred_queues"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_deferred_queues,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("deferred_secret"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_deferred_secret,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("deferred_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_deferred_loc_conf_t, max_body),
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

    ctx = ngx_http_get_module_ctx(r, ngx_http_deferred_module);

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
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* pushed after the rewrite module's handler: runs before "return" */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_deferred_rewrite_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_deferred_precontent_handler;

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
     *     dlcf->secret = { 0, NULL };
     *     dlcf->secret_header = { 0, NULL };
     */

    dlcf->redis = NGX_CONF_UNSET_PTR;
    dlcf->endpoint = NGX_CONF_UNSET;
    dlcf->queues = NGX_CONF_UNSET_PTR;
    dlcf->max_body = NGX_CONF_UNSET_SIZE;
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

    ngx_http_deferred_srv_conf_t  *dscf;

    ngx_conf_merge_ptr_value(conf->redis, prev->redis, NULL);
    ngx_conf_merge_value(conf->endpoint, prev->endpoint, 0);
    ngx_conf_merge_ptr_value(conf->queues, prev->queues, NULL);
    ngx_conf_merge_size_value(conf->max_body, prev->max_body,
                              DQ_DEFAULT_MAX_ENVELOPE);
    ngx_conf_merge_uint_value(conf->max_batch, prev->max_batch,
                              DQ_DEFAULT_MAX_BATCH);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 3000);
    ngx_conf_merge_msec_value(conf->tombstone, prev->tombstone,
                              (ngx_msec_t) DQ_DEFAULT_TOMBSTONE_MS);

    if (conf->secret.data == NULL) {
        conf->secret = prev->secret;
        conf->secret_header = prev->secret_header;
    }

    if (conf->max_body == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"deferred_max_body\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    if (conf->timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"deferred_timeout\" must be more than 0");
        return NGX_CONF_ERROR;
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


/* deferred_redis HOST[:PORT] | [IPV6]:PORT | unix:PATH [password=] [db=]
 *                [connect_timeout=] */

static char *
ngx_http_deferred_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_deferred_loc_conf_t  *dlcf = conf;

    u_char                          *p;
    ngx_str_t                       *value, password, s;
    ngx_int_t                        db;
    ngx_uint_t                       i;
    dq_addr_t                        addr;
    ngx_url_t                        u;
    dq_error_t                       err;
    ngx_msec_t                       connect_timeout;
    ngx_http_deferred_redis_t       *rs, **rsp;
    ngx_http_deferred_main_conf_t   *dmcf;

    if (dlcf->redis != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_str_null(&password);
    db = 0;
    connect_timeout = 1000;

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

    } else {

        /* resolved here, once: workers connect by numeric address */

        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = value[1];
        u.host.data = (u_char *) addr.host.ptr;
        u.host.len = addr.host.len;
        u.port = (in_port_t) addr.port;

        if (ngx_inet_resolve_host(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in \"deferred_redis\" address \"%V\"",
                               u.err ? u.err : "host not found", &u.url);
            return NGX_CONF_ERROR;
        }

        rs->host.data = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (rs->host.data == NULL) {
            return NGX_CONF_ERROR;
        }

        rs->host.len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen,
                                     rs->host.data, NGX_SOCKADDR_STRLEN, 0);
        rs->host.data[rs->host.len] = '\0';

        if (rs->host.len && rs->host.data[0] == '[') {
            /* IPv6 without the brackets for getaddrinfo */
            ngx_memmove(rs->host.data, rs->host.data + 1, rs->host.len - 2);
            rs->host.len -= 2;
            rs->host.data[rs->host.len] = '\0';
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


/* "on" at server level: /_ah/queue/deferred; in a location: that URL */

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


/* deferred_secret <secret> [header=X-Deferred-Signature] */

static char *
ngx_http_deferred_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_deferred_loc_conf_t  *dlcf = conf;

    ngx_str_t  *value;

    if (dlcf->secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len < 16) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"deferred_secret\" is too short: use at least "
                           "16 characters");
        return NGX_CONF_ERROR;
    }

    dlcf->secret = value[1];
    ngx_str_set(&dlcf->secret_header, "X-Deferred-Signature");

    if (cf->args->nelts == 3) {
        if (value[2].len <= 7
            || ngx_strncmp(value[2].data, "header=", 7) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"deferred_secret\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        dlcf->secret_header.data = value[2].data + 7;
        dlcf->secret_header.len = value[2].len - 7;
    }

    return NGX_CONF_OK;
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
}
