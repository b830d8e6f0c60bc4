
/*
 * ngx_http_deferred_module: deferred_enqueue locations.
 *
 *   - the directive: function, options (queue, countdown, eta, name, url)
 *     and typed positional arguments, compiled as complex values; constant
 *     values are checked at load time;
 *   - the precontent-phase handler (after access control, limits and
 *     try_files): evaluates the variables, builds the task requests and
 *     hands them to the batch code; when every task is stored the
 *     location's own content runs, otherwise the client gets the error.
 */


#include "ngx_http_deferred_module.h"


static ngx_int_t ngx_http_deferred_compile(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_complex_value_t **cv);
static ngx_int_t ngx_http_deferred_arg(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_deferred_arg_t *arg);
static void ngx_http_deferred_enqueue_done(ngx_http_deferred_ctx_t *ctx);
static void ngx_http_deferred_enqueue_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_deferred_enqueue_build(ngx_http_request_t *r,
    ngx_http_deferred_loc_conf_t *dlcf, dq_request_t *reqs, dq_error_t *err);
static ngx_int_t ngx_http_deferred_pack_args(ngx_http_request_t *r,
    ngx_array_t *args, dq_str_t *out, dq_error_t *err);
static ngx_int_t ngx_http_deferred_seconds(ngx_str_t *v, int64_t *ms);
static ngx_int_t ngx_http_deferred_bad_name(dq_error_t *err, ngx_uint_t batch,
    ngx_uint_t i, const char *what, int max);


/* the directive */

/* deferred_enqueue func [queue=] [countdown=] [eta=] [name=] [url=]
 *                  [args=first more ...] */

char *
ngx_http_deferred_enqueue_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_deferred_loc_conf_t  *dlcf = conf;

    ngx_str_t                     *value, s;
    ngx_uint_t                     i;
    dq_str_t                       d;
    ngx_http_deferred_arg_t       *arg;
    ngx_http_deferred_enqueue_t   *e;
    ngx_http_complex_value_t     **cv;

    value = cf->args->elts;

    d.ptr = (const char *) value[1].data;
    d.len = value[1].len;

    if (!dq_func_name_valid(d)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid function name \"%V\" in "
                           "\"deferred_enqueue\": 1 to %d characters of "
                           "[A-Za-z0-9_.:-]", &value[1], DQ_FUNC_NAME_MAX);
        return NGX_CONF_ERROR;
    }

    if (dlcf->enqueues == NULL) {
        dlcf->enqueues = ngx_array_create(cf->pool, 2,
                                          sizeof(ngx_http_deferred_enqueue_t));
        if (dlcf->enqueues == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    e = ngx_array_push(dlcf->enqueues);
    if (e == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(e, sizeof(ngx_http_deferred_enqueue_t));
    e->func = value[1];

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "args=", 5) == 0) {
            e->args = ngx_array_create(cf->pool, cf->args->nelts - i,
                                       sizeof(ngx_http_deferred_arg_t));
            if (e->args == NULL) {
                return NGX_CONF_ERROR;
            }

            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            for ( ;; ) {
                if (s.len) {
                    arg = ngx_array_push(e->args);
                    if (arg == NULL
                        || ngx_http_deferred_arg(cf, &s, arg) != NGX_OK)
                    {
                        return NGX_CONF_ERROR;
                    }
                }

                if (++i == cf->args->nelts) {
                    break;
                }

                s = value[i];
            }

            break;
        }

        s = value[i];
        cv = NULL;

        if (ngx_strncmp(s.data, "queue=", 6) == 0) {
            cv = &e->queue;
            s.data += 6;
            s.len -= 6;

        } else if (ngx_strncmp(s.data, "countdown=", 10) == 0) {
            cv = &e->countdown;
            s.data += 10;
            s.len -= 10;

        } else if (ngx_strncmp(s.data, "eta=", 4) == 0) {
            cv = &e->eta;
            s.data += 4;
            s.len -= 4;

        } else if (ngx_strncmp(s.data, "name=", 5) == 0) {
            cv = &e->name;
            s.data += 5;
            s.len -= 5;

        } else if (ngx_strncmp(s.data, "url=", 4) == 0) {
            cv = &e->url;
            s.data += 4;
            s.len -= 4;
        }

        if (cv == NULL || *cv != NULL || s.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"deferred_enqueue\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_deferred_compile(cf, &s, cv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        /* constant values are checked now, not per request */

        if ((*cv)->lengths != NULL) {
            continue;
        }

        d.ptr = (const char *) s.data;
        d.len = s.len;

        if ((cv == &e->queue && !dq_queue_name_valid(d))
            || (cv == &e->name && !dq_task_name_valid(d))
            || (cv == &e->url && !dq_url_valid(d))
            || ((cv == &e->countdown || cv == &e->eta)
                && ngx_atofp(s.data, s.len, 3) == NGX_ERROR))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value in \"%V\" of "
                               "\"deferred_enqueue\"", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    if (e->countdown && e->eta) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"deferred_enqueue\" takes countdown= or eta=, "
                           "not both");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_deferred_compile(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_complex_value_t **cv)
{
    ngx_http_compile_complex_value_t  ccv;

    *cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (*cv == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = *cv;

    return ngx_http_compile_complex_value(&ccv);
}


/* int:V float:V str:V bool:V null; bare constants typed by their look */

static ngx_int_t
ngx_http_deferred_arg(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_deferred_arg_t *arg)
{
    char                        *end, buf[64];
    ngx_str_t                    s;
    ngx_uint_t                   typed;
    ngx_http_complex_value_t    *cv;

    s = *value;
    typed = 1;

    if (s.len >= 4 && ngx_strncmp(s.data, "int:", 4) == 0) {
        arg->type = NGX_HTTP_DEFERRED_ARG_INT;
        s.data += 4;
        s.len -= 4;

    } else if (s.len >= 6 && ngx_strncmp(s.data, "float:", 6) == 0) {
        arg->type = NGX_HTTP_DEFERRED_ARG_FLOAT;
        s.data += 6;
        s.len -= 6;

    } else if (s.len >= 4 && ngx_strncmp(s.data, "str:", 4) == 0) {
        arg->type = NGX_HTTP_DEFERRED_ARG_STR;
        s.data += 4;
        s.len -= 4;

    } else if (s.len >= 5 && ngx_strncmp(s.data, "bool:", 5) == 0) {
        arg->type = NGX_HTTP_DEFERRED_ARG_BOOL;
        s.data += 5;
        s.len -= 5;

    } else if (s.len == 4 && ngx_strncmp(s.data, "null", 4) == 0) {
        arg->type = NGX_HTTP_DEFERRED_ARG_NIL;

    } else {
        arg->type = NGX_HTTP_DEFERRED_ARG_STR;
        typed = 0;
    }

    cv = &arg->value;

    {
        ngx_http_compile_complex_value_t  ccv;

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &s;
        ccv.complex_value = cv;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (cv->lengths != NULL || arg->type == NGX_HTTP_DEFERRED_ARG_NIL) {
        return NGX_OK;
    }

    /* a constant: give it its type now, refuse a bad one now */

    if (s.len == 0 || s.len >= sizeof(buf)) {
        if (typed && arg->type != NGX_HTTP_DEFERRED_ARG_STR) {
            goto invalid;
        }

        return NGX_OK;
    }

    ngx_memcpy(buf, s.data, s.len);
    buf[s.len] = '\0';

    if (!typed) {
        errno = 0;
        (void) strtoll(buf, &end, 10);

        if (*end == '\0' && errno == 0) {
            arg->type = NGX_HTTP_DEFERRED_ARG_INT;
            return NGX_OK;
        }

        errno = 0;
        (void) strtod(buf, &end);

        if (*end == '\0' && errno == 0 && ngx_strlchr(s.data, s.data + s.len,
                                                      '.'))
        {
            arg->type = NGX_HTTP_DEFERRED_ARG_FLOAT;
            return NGX_OK;
        }

        if (ngx_strcmp(buf, "true") == 0 || ngx_strcmp(buf, "false") == 0) {
            arg->type = NGX_HTTP_DEFERRED_ARG_BOOL;
        }

        return NGX_OK;
    }

    errno = 0;

    switch (arg->type) {

    case NGX_HTTP_DEFERRED_ARG_INT:
        (void) strtoll(buf, &end, 10);
        if (*end != '\0' || errno) {
            goto invalid;
        }
        break;

    case NGX_HTTP_DEFERRED_ARG_FLOAT:
        (void) strtod(buf, &end);
        if (*end != '\0' || errno) {
            goto invalid;
        }
        break;

    case NGX_HTTP_DEFERRED_ARG_BOOL:
        if (ngx_strcmp(buf, "true") != 0 && ngx_strcmp(buf, "false") != 0) {
            goto invalid;
        }
        break;
    }

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid argument \"%V\" in \"deferred_enqueue\"",
                       value);
    return NGX_ERROR;
}


/*
 * deferred_return code [text]: "return" for a deferred_enqueue location.
 * nginx's own "return" answers in the rewrite phase, before access control
 * and before the enqueue (which then never runs); this one is the
 * location's content handler, so it answers after the tasks are stored,
 * with $deferred_task_id and $deferred_task_eta set.
 */

static ngx_int_t ngx_http_deferred_return_handler(ngx_http_request_t *r);


char *
ngx_http_deferred_return_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_deferred_loc_conf_t  *dlcf = conf;

    ngx_str_t                 *value, empty = ngx_null_string;
    ngx_int_t                  status;
    ngx_http_core_loc_conf_t  *clcf;

    if (dlcf->ret_status) {
        return "is duplicate";
    }

    value = cf->args->elts;

    status = ngx_atoi(value[1].data, value[1].len);

    if (status == NGX_ERROR || status < 200 || status > 599
        || (status >= 300 && status < 400))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid status \"%V\" in \"deferred_return\": "
                           "200 to 599, not a redirect", &value[1]);
        return NGX_CONF_ERROR;
    }

    dlcf->ret_status = status;

    if (ngx_http_deferred_compile(cf, cf->args->nelts == 3 ? &value[2]
                                                           : &empty,
                                  &dlcf->ret_text)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_deferred_return_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_deferred_return_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_deferred_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_deferred_module);

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_send_response(r, dlcf->ret_status, NULL,
                                  dlcf->ret_text);
}


/*
 * The log phase: a deferred_enqueue location answered successfully
 * without its enqueue having run can only have answered in the rewrite
 * phase ("return", a redirecting "rewrite"): say so, once per worker.
 */

ngx_int_t
ngx_http_deferred_log_handler(ngx_http_request_t *r)
{
    static ngx_uint_t              warned;
    ngx_http_deferred_loc_conf_t  *dlcf;

    if (warned || r != r->main) {
        return NGX_OK;
    }

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_deferred_module);

    if (dlcf->enqueues == NULL
        || r->headers_out.status >= NGX_HTTP_BAD_REQUEST
        || ngx_http_deferred_ctx_find(r, dlcf) != NULL)
    {
        return NGX_OK;
    }

    warned = 1;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "deferred: \"%V\" answered %ui before its deferred_enqueue "
                  "ran (nginx's \"return\" answers in the rewrite phase, "
                  "before access control): use \"deferred_return\"",
                  &r->uri, r->headers_out.status);

    return NGX_OK;
}


/* the requests */

/*
 * deferred_enqueue: the last handler of the precontent phase, so after
 * the access and limit phases let the request through, after "set" and
 * "map" values exist, after try_files chose the location that serves the
 * request. Once per request and location: an internal redirect back to
 * the same location (index, error_page, X-Accel-Redirect, rewrite ...
 * last) finds the context of the first pass and does not store again.
 */

ngx_int_t
ngx_http_deferred_enqueue_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    dq_error_t                     err;
    dq_request_t                  *reqs;
    dq_str_t                       none = { NULL, 0 };
    ngx_http_deferred_ctx_t       *ctx;
    ngx_http_deferred_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_deferred_module);

    if (dlcf->enqueues == NULL) {
        return NGX_DECLINED;
    }

    if (r != r->main) {
        /* SSI include, mirror, auth_request, ...: the main request's
         * location stores, a subrequest never (once per client request) */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "deferred: no deferred_enqueue in a subrequest");
        return NGX_DECLINED;
    }

    ctx = ngx_http_deferred_ctx_find(r, dlcf);

    if (ctx && !ctx->body_pending) {
        ngx_http_set_ctx(r, ctx, ngx_http_deferred_module);

        /* stored, or answered with an error already: once is enough */
        return ctx->state == NGX_HTTP_DEFERRED_WAITING ? NGX_DONE
                                                       : NGX_DECLINED;
    }

    if (ctx == NULL) {
        ctx = ngx_http_deferred_ctx_create(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->conf = dlcf;

        /*
         * The body first: a body over client_max_body_size (chunked, or
         * HTTP/2 without a length), a client gone or a body timeout mid-
         * upload answers 413/400/408 and stores nothing. nginx keeps the
         * body (preserve_body) for the location's content handler
         * (proxy_pass ...).
         */

        if (r->request_body == NULL) {
            ctx->body_pending = 1;

            rc = ngx_http_read_client_request_body(r,
                                             ngx_http_deferred_enqueue_body);
            if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
                return rc;
            }

            ngx_http_finalize_request(r, NGX_DONE);
            return NGX_DONE;
        }
    }

    ngx_http_set_ctx(r, ctx, ngx_http_deferred_module);
    ctx->body_pending = 0;

    ngx_memzero(&err, sizeof(dq_error_t));

    reqs = ngx_palloc(r->pool, dlcf->enqueues->nelts * sizeof(dq_request_t));
    if (reqs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* several deferred_enqueue answer an error with every task's status */
    ctx->batch = dlcf->enqueues->nelts > 1;

    if (ngx_http_deferred_enqueue_build(r, dlcf, reqs, &err) != DQ_OK
        || ngx_http_deferred_batch_prepare(ctx, reqs, dlcf->enqueues->nelts,
                                           none, &err)
           != DQ_OK)
    {
        ngx_http_deferred_log_safe(err.msg);

        rc = ngx_http_deferred_reject(r, ctx,
                                      ngx_http_deferred_status_of(err.code),
                                      ngx_http_deferred_error_name(err.code),
                                      err.field, err.msg);
        goto answered;
    }

    ctx->done = ngx_http_deferred_enqueue_done;

    rc = ngx_http_deferred_batch_send(ctx);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_deferred_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "RedisUnavailable", NULL,
                                      "Redis is not reachable");
        goto answered;
    }

    if (rc != NGX_AGAIN) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_deferred_watch_client(r);

    return NGX_DONE;

answered:

    /* a precontent handler's NGX_OK would run the content phase too */
    ngx_http_finalize_request(r, rc);
    return NGX_DONE;
}


/* the body is read: the precontent phase again, the enqueue stores */

static void
ngx_http_deferred_enqueue_body(ngx_http_request_t *r)
{
    r->preserve_body = 1;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


static void
ngx_http_deferred_enqueue_done(ngx_http_deferred_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    if (ctx->state == NGX_HTTP_DEFERRED_STORED) {
        ngx_http_deferred_batch_results(ctx);

        if (ctx->status == NGX_HTTP_CREATED) {
            /* stored: the location's own content follows */
            r->write_event_handler = ngx_http_core_run_phases;
            ngx_http_core_run_phases(r);
            ngx_http_run_posted_requests(c);
            return;
        }

        /* a name was taken: the content is not sent (an allocation
         * failure stays a 500) */
        if (ctx->status == 207) {
            ctx->status = NGX_HTTP_CONFLICT;
        }
    }

    rc = ngx_http_discard_request_body(r);

    if (rc == NGX_OK) {
        rc = ngx_http_deferred_send_response(r, ctx);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* a queue or task name from a variable that is not 1 to max characters
 * of [A-Za-z0-9_-] (as lib/dq_request.c says it for the endpoint's
 * body): the field names the task when the location enqueues several */

static ngx_int_t
ngx_http_deferred_bad_name(dq_error_t *err, ngx_uint_t batch, ngx_uint_t i,
    const char *what, int max)
{
    char  field[64];

    ngx_http_deferred_batch_field(field, batch, i, what);

    return dq_error_set(err, DQ_EINVAL, field,
                        "%s: must be 1 to %d characters of [A-Za-z0-9_-]",
                        field, max);
}


static ngx_int_t
ngx_http_deferred_enqueue_build(ngx_http_request_t *r,
    ngx_http_deferred_loc_conf_t *dlcf, dq_request_t *reqs, dq_error_t *err)
{
    ngx_str_t                     v;
    ngx_uint_t                    i, batch;
    dq_request_t                 *req;
    ngx_http_deferred_enqueue_t  *e;

    e = dlcf->enqueues->elts;
    batch = dlcf->enqueues->nelts > 1;     /* as ctx->batch */

    for (i = 0; i < dlcf->enqueues->nelts; i++) {
        req = &reqs[i];

        dq_request_init(req);

        req->func.ptr = (const char *) e[i].func.data;
        req->func.len = e[i].func.len;

        if (e[i].queue) {
            if (ngx_http_complex_value(r, e[i].queue, &v) != NGX_OK) {
                return dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");
            }

            if (v.len) {
                req->queue.ptr = (const char *) v.data;
                req->queue.len = v.len;

                if (!dq_queue_name_valid(req->queue)) {
                    return ngx_http_deferred_bad_name(err, batch, i, "queue",
                                                      DQ_QUEUE_NAME_MAX);
                }
            }
        }

        if (e[i].name) {
            if (ngx_http_complex_value(r, e[i].name, &v) != NGX_OK) {
                return dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");
            }

            if (v.len) {
                req->name.ptr = (const char *) v.data;
                req->name.len = v.len;

                if (!dq_task_name_valid(req->name)) {
                    return ngx_http_deferred_bad_name(err, batch, i, "name",
                                                      DQ_TASK_NAME_MAX);
                }
            }
        }

        if (e[i].url) {
            if (ngx_http_complex_value(r, e[i].url, &v) != NGX_OK) {
                return dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");
            }

            if (v.len) {
                req->url.ptr = (const char *) v.data;
                req->url.len = v.len;
            }

            if (v.len && !dq_url_valid(req->url)) {
                return dq_error_set(err, DQ_EINVAL, "url",
                                    "url: \"%.*s\" is not a path of "
                                    "printable ASCII", (int) ngx_min(v.len,
                                    100), v.data);
            }
        }

        if (e[i].countdown) {
            if (ngx_http_complex_value(r, e[i].countdown, &v) != NGX_OK) {
                return dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");
            }

            if (v.len
                && (ngx_http_deferred_seconds(&v, &req->countdown_ms)
                    != NGX_OK
                    || req->countdown_ms > 10LL * 366 * 24 * 3600 * 1000))
            {
                return dq_error_set(err, DQ_EINVAL, "countdown",
                                    "countdown: \"%.*s\" is not a number of "
                                    "seconds up to ten years",
                                    (int) ngx_min(v.len, 100), v.data);
            }
        }

        if (e[i].eta) {
            if (ngx_http_complex_value(r, e[i].eta, &v) != NGX_OK) {
                return dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");
            }

            if (v.len
                && ngx_http_deferred_seconds(&v, &req->eta_ms) != NGX_OK)
            {
                return dq_error_set(err, DQ_EINVAL, "eta",
                                    "eta: \"%.*s\" is not epoch seconds",
                                    (int) ngx_min(v.len, 100), v.data);
            }
        }

        if (req->countdown_ms >= 0 && req->eta_ms >= 0) {
            return dq_error_set(err, DQ_EINVAL, "eta",
                                "eta: give countdown or eta, not both");
        }

        if (e[i].args
            && ngx_http_deferred_pack_args(r, e[i].args, &req->args_raw, err)
               != DQ_OK)
        {
            return err->code;
        }
    }

    return DQ_OK;
}


/* "12", "0.5": non-negative seconds with up to 3 decimals -> ms */

static ngx_int_t
ngx_http_deferred_seconds(ngx_str_t *v, int64_t *ms)
{
    ngx_int_t  n;

    n = ngx_atofp(v->data, v->len, 3);

    /* at most ten years of countdown; an eta before the year 9999 */
    if (n == NGX_ERROR || n > (ngx_int_t) 253402300799000LL) {
        return NGX_ERROR;
    }

    *ms = n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_deferred_pack_args(ngx_http_request_t *r, ngx_array_t *args,
    dq_str_t *out, dq_error_t *err)
{
    int                       rc;
    char                     *end, buf[64];
    double                    d;
    long long                 ll;
    ngx_str_t                 v;
    ngx_uint_t                i;
    msgpack_packer            pk;
    msgpack_sbuffer          *sb;
    ngx_http_deferred_arg_t  *a;

    a = args->elts;

    /* the worker process' scratch buffer (request.c), copied out below */
    sb = ngx_http_deferred_scratch(r);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);

    rc = msgpack_pack_array(&pk, args->nelts);

    for (i = 0; rc == 0 && i < args->nelts; i++) {
        if (ngx_http_complex_value(r, &a[i].value, &v) != NGX_OK) {
            rc = dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");
            break;
        }

        if (a[i].type == NGX_HTTP_DEFERRED_ARG_STR) {
            rc = msgpack_pack_str(&pk, v.len)
                 || msgpack_pack_str_body(&pk, v.data, v.len);
            continue;
        }

        if (a[i].type == NGX_HTTP_DEFERRED_ARG_NIL) {
            rc = msgpack_pack_nil(&pk);
            continue;
        }

        if (a[i].type == NGX_HTTP_DEFERRED_ARG_BOOL) {
            if (v.len == 4 && ngx_strncmp(v.data, "true", 4) == 0) {
                rc = msgpack_pack_true(&pk);

            } else if (v.len == 5 && ngx_strncmp(v.data, "false", 5) == 0) {
                rc = msgpack_pack_false(&pk);

            } else {
                rc = dq_error_set(err, DQ_EINVAL, "args",
                                  "args[%u]: \"%.*s\" is not true or false",
                                  (unsigned) i, (int) ngx_min(v.len, 64),
                                  v.data);
            }

            continue;
        }

        if (v.len == 0 || v.len >= sizeof(buf)) {
            goto bad_number;
        }

        ngx_memcpy(buf, v.data, v.len);
        buf[v.len] = '\0';
        errno = 0;

        if (a[i].type == NGX_HTTP_DEFERRED_ARG_INT) {
            ll = strtoll(buf, &end, 10);
            if (*end != '\0' || errno) {
                goto bad_number;
            }

            rc = msgpack_pack_int64(&pk, ll);
            continue;
        }

        d = strtod(buf, &end);
        if (*end != '\0' || errno || d != d) {
            goto bad_number;
        }

        rc = msgpack_pack_double(&pk, d);
        continue;

    bad_number:

        rc = dq_error_set(err, DQ_EINVAL, "args",
                          "args[%u]: \"%.*s\" is not a%s number", (unsigned) i,
                          (int) ngx_min(v.len, 64), v.data,
                          a[i].type == NGX_HTTP_DEFERRED_ARG_INT
                          ? "n integer" : "");
    }

    if (rc == 0) {
        out->ptr = ngx_pnalloc(r->pool, sb->size);

        if (out->ptr == NULL) {
            rc = dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");

        } else {
            ngx_memcpy((u_char *) out->ptr, sb->data, sb->size);
            out->len = sb->size;
        }

    } else if (err->code == 0) {
        /* a msgpack_pack_* call failed: only memory can fail there */
        rc = dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");
    }

    ngx_http_deferred_scratch_trim(r);

    return rc == 0 ? DQ_OK : err->code;
}
