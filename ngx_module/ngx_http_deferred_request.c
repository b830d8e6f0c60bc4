/*
 * ngx_http_deferred_module: what every location of the module shares.
 *
 *   - the request's context (ngx_http_deferred_ctx_create, _find): it
 *     outlives internal redirects;
 *   - ngx_http_deferred_reject(): an error answer before or instead of
 *     reading the body (the endpoint and deferred_enqueue locations);
 *   - ngx_http_deferred_send_body(): an answer in one buffer (also the
 *     operator locations');
 *   - ngx_http_deferred_watch_client(): a client that leaves while its
 *     request waits for Redis ends it;
 *   - the worker process' scratch msgpack buffer and idle zones.
 */


#include "ngx_http_deferred_module.h"


static void ngx_http_deferred_ctx_cleanup(void *data);


/*
 * A context outlives internal redirects (which clear r->ctx): it is also
 * the data of a pool cleanup, found again by its handler, so that a
 * location's deferred_enqueue runs once per request whatever the
 * redirects, and $deferred_task_* keep their values.
 */

ngx_http_deferred_ctx_t *
ngx_http_deferred_ctx_create(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_deferred_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_deferred_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_deferred_ctx_cleanup;
    cln->data = ctx;

    ctx->request = r;

    ngx_http_set_ctx(r, ctx, ngx_http_deferred_module);

    return ctx;
}


/* the newest context of r (conf NULL), or the one of conf's enqueues */

ngx_http_deferred_ctx_t *
ngx_http_deferred_ctx_find(ngx_http_request_t *r,
    ngx_http_deferred_loc_conf_t *conf)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_deferred_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_deferred_module);

    if (ctx && (conf == NULL || ctx->conf == conf)) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler != ngx_http_deferred_ctx_cleanup) {
            continue;
        }

        ctx = cln->data;

        if (ctx->request == r && (conf == NULL || ctx->conf == conf)) {
            return ctx;
        }
    }

    return NULL;
}


static void
ngx_http_deferred_ctx_cleanup(void *data)
{
    ngx_http_deferred_ctx_t        *ctx = data;
    ngx_http_deferred_main_conf_t  *dmcf;

    /* a marker (the context lives in the pool); the batch's groups off
     * the merger and its timer's list; the body's msgpack zone back to the
     * worker process' idle ones (one cleanup a request, not three) */

    if (ctx->sent) {
        ngx_http_deferred_batch_cleanup(ctx);
        ctx->sent = 0;
    }

    if (ctx->zone == NULL) {
        return;
    }

    dmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_deferred_module);

    if (dmcf->nzones < NGX_HTTP_DEFERRED_ZONES) {
        msgpack_zone_clear(ctx->zone);
        dmcf->zones[dmcf->nzones++] = ctx->zone;

    } else {
        msgpack_zone_free(ctx->zone);
    }

    ctx->zone = NULL;
}


/* an answer before the body is read (or instead of reading it) */

ngx_int_t
ngx_http_deferred_reject(ngx_http_request_t *r, ngx_http_deferred_ctx_t *ctx,
    ngx_int_t status, const char *error, const char *field,
    const char *message)
{
    ngx_int_t  rc;

    /* 503: the Redis outage behind it is logged once by the connection */
    ngx_log_error((ngx_uint_t) (status >= NGX_HTTP_INTERNAL_SERVER_ERROR
                                && status != NGX_HTTP_SERVICE_UNAVAILABLE
                                ? NGX_LOG_ERR : NGX_LOG_INFO),
                  r->connection->log, 0,
                  "deferred: %i %s%s%s: %s", status, error,
                  field ? " " : "", field ? field : "", message);

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_deferred_error_body(r, ctx, status, error, field, message)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        ctx->retry_after = 1;
    }

    return ngx_http_deferred_send_response(r, ctx);
}


/*
 * An answer in one buffer: status, Content-Type, Content-Length, the
 * header and the body (none for HEAD or an empty body). Any other header
 * is the caller's, added before; the body must live until the request is
 * finalized. The endpoint's and deferred_enqueue's answers
 * (ngx_http_deferred_send_response) and the operator locations'.
 */

ngx_int_t
ngx_http_deferred_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
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


/*
 * A request that waits for Redis (a connection attempt, the setup, a
 * reply) watches its client: one that leaves ends the request (499), and
 * the request's pool cleanups take its tasks off the list if they were
 * not sent yet (a sent call is stored all the same) or end an operator's
 * wait. A body still being discarded keeps its handler: it notices a
 * close too. The endpoint, deferred_enqueue and the operator locations.
 */

void
ngx_http_deferred_watch_client(ngx_http_request_t *r)
{
    if (!r->discard_body) {
        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_request_empty_handler;
    }
}


void
ngx_http_deferred_log_safe(char *s)
{
    for ( /* void */ ; *s; s++) {
        if ((u_char) *s < 0x20 || *s == 0x7f) {
            *s = '?';
        }
    }
}


/*
 * Per worker process, one msgpack buffer (the JSON body converted, each
 * envelope encoded; each copied out into the request's pool at once) and
 * up to NGX_HTTP_DEFERRED_ZONES idle msgpack zones: no malloc and free of
 * 8 KiB twice per request and once per task. The buffer goes back to its
 * first size after a large body.
 */

msgpack_sbuffer *
ngx_http_deferred_scratch(ngx_http_request_t *r)
{
    ngx_http_deferred_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_deferred_module);
    dmcf->scratch.size = 0;

    return &dmcf->scratch;
}


void
ngx_http_deferred_scratch_trim(ngx_http_request_t *r)
{
    ngx_http_deferred_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_deferred_module);

    if (dmcf->scratch.alloc > NGX_HTTP_DEFERRED_SCRATCH_KEEP) {
        msgpack_sbuffer_destroy(&dmcf->scratch);
        msgpack_sbuffer_init(&dmcf->scratch);
    }
}


void
ngx_http_deferred_scratch_free(ngx_http_deferred_main_conf_t *dmcf)
{
    msgpack_sbuffer_destroy(&dmcf->scratch);
    msgpack_sbuffer_init(&dmcf->scratch);

    while (dmcf->nzones) {
        msgpack_zone_free(dmcf->zones[--dmcf->nzones]);
    }
}


/* one response header (key and value must outlive the request: static
 * strings or the request's pool) */

ngx_int_t
ngx_http_deferred_header_add(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    h->key = *key;
    h->value = *value;

    return NGX_OK;
}
