
/*
 * ngx_http_deferred_module: the deferred POST endpoint.
 *
 *   - the content handler: checks method, content type and size, reads
 *     the body (memory, several buffers or a temp file), checks the HMAC,
 *     decodes msgpack or JSON with lib's strict decoders, parses the task
 *     requests, and answers with the stored tasks as JSON;
 *   - the server-level endpoint: claims /_ah/queue/deferred in the
 *     precontent phase by putting the endpoint handler in place.
 *
 * What it shares with the other locations (the context, reject,
 * send_body, watch_client, the scratch buffer) is in
 * ngx_http_deferred_request.c.
 */


#include "ngx_http_deferred_module.h"


static void ngx_http_deferred_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_deferred_body_taken(ngx_http_request_t *r,
    ngx_http_deferred_ctx_t *ctx, ngx_http_deferred_loc_conf_t *dlcf);
static ngx_int_t ngx_http_deferred_content_type(ngx_http_request_t *r);
static void ngx_http_deferred_endpoint_done(ngx_http_deferred_ctx_t *ctx);
static ngx_int_t ngx_http_deferred_idempotency_key(ngx_http_request_t *r,
    ngx_http_deferred_loc_conf_t *dlcf, dq_request_t *reqs, size_t n,
    dq_error_t *err);
static ngx_int_t ngx_http_deferred_unique_ids(ngx_http_request_t *r,
    dq_request_t *reqs, size_t n, dq_error_t *err);
static ngx_int_t ngx_http_deferred_signed_ids(ngx_http_request_t *r,
    dq_request_t *reqs, size_t n, u_char *mac, int64_t window_ms);


#define NGX_HTTP_DEFERRED_MSGPACK  1
#define NGX_HTTP_DEFERRED_JSON     2


/* server level: "deferred_endpoint on" serves DQ_DEFAULT_URL */

ngx_int_t
ngx_http_deferred_precontent_handler(ngx_http_request_t *r)
{
    ngx_http_deferred_srv_conf_t  *dscf;
    ngx_http_deferred_loc_conf_t  *dlcf;

    dscf = ngx_http_get_module_srv_conf(r, ngx_http_deferred_module);
    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_deferred_module);

    if (!dscf->endpoint
        || dlcf->endpoint_off
        || r->uri.len != sizeof(DQ_DEFAULT_URL) - 1
        || ngx_strncmp(r->uri.data, DQ_DEFAULT_URL, r->uri.len) != 0)
    {
        return NGX_DECLINED;
    }

    r->content_handler = ngx_http_deferred_endpoint_handler;

    /* straight to the content phase: try_files must not redirect it */

    return NGX_OK;
}


ngx_int_t
ngx_http_deferred_endpoint_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    dq_error_t                     err;
    ngx_http_deferred_ctx_t       *ctx;
    ngx_http_deferred_loc_conf_t  *dlcf;

    static ngx_str_t  allow = ngx_string("Allow");
    static ngx_str_t  post = ngx_string("POST");

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_deferred_module);
    ngx_http_deferred_error_init(&err);

    ctx = ngx_http_deferred_ctx_create(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->endpoint = 1;

    if (dlcf->redis == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "deferred: no deferred_redis for this location");
        return ngx_http_deferred_reject(r, ctx,
                                        NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "RedisUnavailable", NULL,
                                        "no Redis configured");
    }

    if (!dlcf->open && dlcf->secrets == NULL
        && ngx_http_deferred_local_client(r) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "deferred: 403 client %V is not local (or came "
                      "through a proxy); the endpoint has no "
                      "\"deferred_secret\" and is not "
                      "\"deferred_endpoint on open\"",
                      &r->connection->addr_text);

        return ngx_http_deferred_reject(r, ctx, NGX_HTTP_FORBIDDEN,
                                        "Forbidden", NULL,
                                        "the deferred endpoint answers only "
                                        "the local host, not through a "
                                        "proxy");
    }

    if (!(r->method & NGX_HTTP_POST)) {
        if (ngx_http_deferred_header_add(r, &allow, &post) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_deferred_reject(r, ctx, NGX_HTTP_NOT_ALLOWED,
                                        "MethodNotAllowed", NULL,
                                        "deferred tasks are POSTed");
    }

    ctx->kind = ngx_http_deferred_content_type(r);

    if (ctx->kind == NGX_DECLINED) {
        return ngx_http_deferred_reject(r, ctx,
                                        NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        "UnsupportedMediaType", NULL,
                                        "use application/x-msgpack or "
                                        "application/json");
    }

    if (dlcf->secrets
        && ngx_http_deferred_signature_precheck(r, dlcf, &err) != NGX_OK)
    {
        ngx_http_deferred_log_safe(err.msg);
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "deferred: 403 %V from %V: %s (before the body)",
                      &dlcf->secret_header, &r->connection->addr_text,
                      err.msg);

        return ngx_http_deferred_reject(r, ctx, NGX_HTTP_FORBIDDEN,
                                        "Forbidden", NULL, err.msg);
    }

    if (r->headers_in.content_length_n > (off_t) dlcf->max_body) {
        return ngx_http_deferred_reject(r, ctx,
                                        NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                        "RequestTooLarge", NULL,
                                        "body over deferred_max_body");
    }

    if (r->request_body) {
        /* read already by another module (mirror_request_body ...): its
         * buffers, never a blocking read of a temp file */
        return ngx_http_deferred_body_taken(r, ctx, dlcf);
    }

    /* the body lands in ctx->raw, within deferred_max_body, as it is read
     * (ngx_http_deferred_body_filter) */
    ctx->reading = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_deferred_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_deferred_content_type(ngx_http_request_t *r)
{
    size_t      len;
    u_char     *p;
    ngx_str_t  *ct;

    if (r->headers_in.content_type == NULL) {
        return NGX_DECLINED;
    }

    ct = &r->headers_in.content_type->value;

    /* libc's memchr, not ngx_strlchr's byte loop (~80 instructions for
     * "application/json") */
    p = memchr(ct->data, ';', ct->len);
    len = (p ? p : ct->data + ct->len) - ct->data;

    while (len && (ct->data[len - 1] == ' ' || ct->data[len - 1] == '\t')) {
        len--;
    }

    /* the usual spelling first: one memcmp, not a case-folded compare */
    if (len == sizeof("application/json") - 1
        && (ngx_memcmp(ct->data, "application/json", len) == 0
            || ngx_strncasecmp(ct->data, (u_char *) "application/json", len)
               == 0))
    {
        return NGX_HTTP_DEFERRED_JSON;
    }

    if ((len == sizeof("application/x-msgpack") - 1
         && ngx_strncasecmp(ct->data, (u_char *) "application/x-msgpack", len)
            == 0)
        || (len == sizeof("application/msgpack") - 1
            && ngx_strncasecmp(ct->data, (u_char *) "application/msgpack",
                               len)
               == 0))
    {
        return NGX_HTTP_DEFERRED_MSGPACK;
    }

    return NGX_DECLINED;
}


static void
ngx_http_deferred_body_handler(ngx_http_request_t *r)
{
    int                            rc;
    u_char                         mac[DQ_SIGN_MAC_LEN];
    size_t                         n, i;
    ngx_str_t                      body, url;
    dq_str_t                       default_url;
    dq_error_t                     err;
    dq_limits_t                    lim;
    dq_request_t                  *reqs;
    msgpack_object                 root;
    ngx_http_deferred_ctx_t       *ctx;
    ngx_http_deferred_loc_conf_t  *dlcf;
    ngx_http_deferred_main_conf_t *dmcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_deferred_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_deferred_module);

    ngx_http_deferred_error_init(&err);

    ctx->reading = 0;
    body.data = ctx->raw ? ctx->raw : (u_char *) "";
    body.len = ctx->raw_len;

    if (dlcf->secrets) {
        rc = ngx_http_deferred_signature_check(r, dlcf, &body, mac, &err);

        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "deferred: signature check failed: %s", err.msg);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (rc != NGX_OK) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "deferred: 403 %V from %V: %s",
                          &dlcf->secret_header, &r->connection->addr_text,
                          err.msg);

            (void) ngx_http_deferred_error_body(r, ctx, NGX_HTTP_FORBIDDEN,
                                                "Forbidden", NULL, err.msg);
            goto respond;
        }
    }

    dq_limits_default(&lim);
    lim.max_envelope = dlcf->max_body;
    lim.max_batch = dlcf->max_batch;

    /* a batch may be up to deferred_max_batch tasks of a few fields each;
     * each task stays within the worker's decoder's bounds on its own
     * (batch.c: dq_envelope_encode with the default max_items and
     * deferred_max_envelope) */
    lim.max_items = ngx_max(lim.max_items, dlcf->max_batch * 16);

    /* the tree's zone: an idle one of the worker process, given back by
     * the context's pool cleanup (ngx_http_deferred_ctx_cleanup) */
    if (ctx->zone == NULL) {
        dmcf = ngx_http_get_module_main_conf(r, ngx_http_deferred_module);

        ctx->zone = dmcf->nzones ? dmcf->zones[--dmcf->nzones]
                                 : msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);

        if (ctx->zone == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    /* JSON: the tree straight from the text (its strings point into the
     * body, which lives in the request's pool); msgpack: strictly
     * unpacked. The same tree either way, for one validator. */

    if (ctx->kind == NGX_HTTP_DEFERRED_JSON) {
        rc = dq_json_parse((char *) body.data, body.len, &lim, ctx->zone,
                           &root, &err);

    } else {
        rc = dq_msgpack_unpack((char *) body.data, body.len, &lim,
                               ctx->zone, &root, &err);
    }

    if (rc != DQ_OK) {
        goto failed;
    }

    n = 1;

    if (root.type == MSGPACK_OBJECT_ARRAY) {
        ctx->batch = 1;

        if (root.via.array.size > dlcf->max_batch) {
            dq_error_set(&err, DQ_ETOOBIG, "tasks",
                         "tasks: batch of %u tasks over the limit of %u",
                         (unsigned) root.via.array.size,
                         (unsigned) dlcf->max_batch);
            goto failed;
        }

        n = ngx_max(root.via.array.size, 1);
    }

    reqs = ngx_palloc(r->pool, n * sizeof(dq_request_t));
    if (reqs == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    lim.max_batch = n;

    rc = dq_request_parse_body(&root, &lim, reqs, &n, &err);
    if (rc != DQ_OK) {
        goto failed;
    }

    if (ngx_http_deferred_idempotency_key(r, dlcf, reqs, n, &err)
        != NGX_OK)
    {
        goto failed;
    }

    if (dlcf->secrets
        && ngx_http_deferred_signed_ids(r, reqs, n, mac,
                                        2000 * (int64_t) dlcf->secret_window)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_deferred_unique_ids(r, reqs, n, &err) != NGX_OK) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        char  prefix[32];

        if (ctx->batch) {
            ngx_sprintf((u_char *) prefix, "tasks[%uz]%Z", i);
        }

        rc = ngx_http_deferred_allowed(dlcf, &reqs[i],
                                       ctx->batch ? prefix : NULL, &err);
        if (rc != DQ_OK) {
            goto failed;
        }
    }

    /* tasks posted to a custom URL carry it (deferred.Handler().post) */

    default_url.ptr = NULL;
    default_url.len = 0;
    url = r->uri;

    if (!(url.len == sizeof(DQ_DEFAULT_URL) - 1
          && ngx_strncmp(url.data, DQ_DEFAULT_URL, url.len) == 0))
    {
        default_url.ptr = (const char *) url.data;
        default_url.len = url.len;

        if (!dq_url_valid(default_url)) {
            dq_error_set(&err, DQ_EINVAL, "url",
                         "url: the endpoint's path is not a valid task URL");
            goto failed;
        }
    }

    rc = ngx_http_deferred_batch_prepare(ctx, reqs, n, default_url, &err);
    if (rc != DQ_OK) {
        goto failed;
    }

    ctx->done = ngx_http_deferred_endpoint_done;

    switch (ngx_http_deferred_batch_send(ctx)) {

    case NGX_AGAIN:
        ngx_http_deferred_watch_client(r);
        return;

    case NGX_DECLINED:
        ctx->retry_after = 1;
        (void) ngx_http_deferred_error_body(r, ctx,
                                            NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "RedisUnavailable", NULL,
                                            "Redis is not reachable");
        goto respond;

    default:
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

failed:

    /* the message may quote the client's bytes (a msgpack key): no line
     * breaks or control characters into the error log */
    ngx_http_deferred_log_safe(err.msg);
    ngx_http_deferred_log_safe(err.field);

    ngx_log_error((ngx_uint_t) (err.code == DQ_ENOMEM ? NGX_LOG_ERR
                                                      : NGX_LOG_INFO),
                  r->connection->log, 0,
                  "deferred: %i rejected task: %s",
                  ngx_http_deferred_status_of(err.code), err.msg);

    (void) ngx_http_deferred_error_body(r, ctx,
                  ngx_http_deferred_status_of(err.code),
                  ngx_http_deferred_error_name(err.code),
                  err.field, err.msg);

respond:

    ngx_http_finalize_request(r, ngx_http_deferred_send_response(r, ctx));
}


static ngx_int_t
ngx_http_deferred_body_taken(ngx_http_request_t *r,
    ngx_http_deferred_ctx_t *ctx, ngx_http_deferred_loc_conf_t *dlcf)
{
    size_t        size, len;
    u_char       *p;
    ngx_chain_t  *cl;

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->in_file || !ngx_buf_in_memory(cl->buf)) {
            if (ngx_buf_size(cl->buf) == 0) {
                continue;
            }

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "deferred: the request body was read before the "
                          "deferred endpoint (another module in this "
                          "location, e.g. mirror_request_body) and is in a "
                          "temp file; raise client_body_buffer_size or read "
                          "no body before it");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len += cl->buf->last - cl->buf->pos;
    }

    if (len > dlcf->max_body) {
        return ngx_http_deferred_reject(r, ctx,
                                        NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                        "RequestTooLarge", NULL,
                                        "body over deferred_max_body");
    }

    p = ngx_pnalloc(r->pool, ngx_max(len, 1));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->raw = p;
    ctx->raw_cap = ngx_max(len, 1);

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        size = cl->buf->last - cl->buf->pos;

        if (size && ngx_buf_in_memory(cl->buf)) {
            p = ngx_cpymem(p, cl->buf->pos, size);
        }
    }

    ctx->raw_len = len;

    r->main->count++;
    ngx_http_deferred_body_handler(r);

    return NGX_DONE;
}


/*
 * Idempotency-Key: the id of a single task, "<key>-<i>" of task i of a
 * batch, unless the task names its own "id". A retry of a request that
 * got 503 or no answer then stores nothing twice (lib/lua/enqueue.lua,
 * "keyed").
 */

static ngx_int_t
ngx_http_deferred_idempotency_key(ngx_http_request_t *r,
    ngx_http_deferred_loc_conf_t *dlcf, dq_request_t *reqs, size_t n,
    dq_error_t *err)
{
    u_char     *p;
    size_t      i, max;
    dq_str_t    key;
    ngx_str_t   v, name = ngx_string("Idempotency-Key");

    switch (ngx_http_deferred_header(r, &name, &v)) {

    case NGX_DECLINED:
        return NGX_OK;

    case NGX_BUSY:
        dq_error_set(err, DQ_EINVAL, "Idempotency-Key",
                     "Idempotency-Key: sent twice");
        return NGX_ERROR;
    }

    /*
     * The header is not signed: on a signed request a replay could add or
     * change it and so store the task again under a new id. The ids of a
     * signed request come from its (signed) body or from the signature.
     */

    if (dlcf->secrets) {
        dq_error_set(err, DQ_EINVAL, "Idempotency-Key",
                     "Idempotency-Key: not covered by the signature; on a "
                     "signed request give each task an \"id\" in the body");
        return NGX_ERROR;
    }

    key.ptr = (const char *) v.data;
    key.len = v.len;

    /* room for "-<i>" after the key of a batch of up to 99999 tasks */
    max = (n == 1) ? DQ_CLIENT_ID_MAX : DQ_CLIENT_ID_MAX - 6;

    if (key.len > max || !dq_client_id_valid(key)) {
        dq_error_set(err, DQ_EINVAL, "Idempotency-Key",
                     "Idempotency-Key: must be 1 to %d characters of "
                     "[A-Za-z0-9_-]%s", (int) max,
                     n == 1 ? "" : " on a batch");
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (reqs[i].id.ptr) {
            continue;
        }

        if (n == 1) {
            reqs[i].id = key;
            continue;
        }

        p = ngx_pnalloc(r->pool, key.len + 1 + NGX_INT_T_LEN);
        if (p == NULL) {
            dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");
            return NGX_ERROR;
        }

        reqs[i].id.ptr = (const char *) p;
        reqs[i].id.len = ngx_sprintf(p, "%*s-%uz", key.len, key.ptr, i) - p;
    }

    return NGX_OK;
}


/*
 * Ids are per queue, and a batch stores one task per id: two tasks of one
 * batch with the same id in the same queue (two equal "id"s, or an "id"
 * equal to an Idempotency-Key's "<key>-<i>") would make the second
 * "existed" and drop it with a 2xx. Refused whole: 400 naming both.
 */

static int ngx_libc_cdecl
ngx_http_deferred_id_cmp(const void *one, const void *two)
{
    int                  c;
    size_t               l;
    const dq_request_t  *a, *b;

    a = *(const dq_request_t **) one;
    b = *(const dq_request_t **) two;

    c = (a->id.len > b->id.len) - (a->id.len < b->id.len);
    if (c == 0) {
        c = ngx_memcmp(a->id.ptr, b->id.ptr, a->id.len);
    }

    if (c == 0) {
        l = ngx_min(a->queue.len, b->queue.len);
        c = l ? ngx_memcmp(a->queue.ptr, b->queue.ptr, l) : 0;
        if (c == 0) {
            c = (a->queue.len > b->queue.len) - (a->queue.len < b->queue.len);
        }
    }

    if (c == 0) {
        c = (a > b) - (a < b);
    }

    return c;
}


static ngx_int_t
ngx_http_deferred_unique_ids(ngx_http_request_t *r, dq_request_t *reqs,
    size_t n, dq_error_t *err)
{
    size_t         i, m;
    dq_request_t  **p, *a, *b;

    if (n < 2) {
        return NGX_OK;
    }

    p = ngx_palloc(r->pool, n * sizeof(dq_request_t *));
    if (p == NULL) {
        dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");
        return NGX_ERROR;
    }

    for (i = 0, m = 0; i < n; i++) {
        if (reqs[i].id.ptr) {
            p[m++] = &reqs[i];
        }
    }

    if (m < 2) {
        return NGX_OK;
    }

    ngx_qsort(p, m, sizeof(dq_request_t *), ngx_http_deferred_id_cmp);

    for (i = 1; i < m; i++) {
        a = p[i - 1];
        b = p[i];

        if (a->id.len == b->id.len
            && ngx_memcmp(a->id.ptr, b->id.ptr, a->id.len) == 0
            && a->queue.len == b->queue.len
            && (a->queue.len == 0
                || ngx_memcmp(a->queue.ptr, b->queue.ptr, a->queue.len) == 0))
        {
            dq_error_set(err, DQ_EINVAL, "tasks",
                         "tasks[%u] and tasks[%u]: the same id \"%.*s\" in "
                         "one queue; a batch stores one task per id",
                         (unsigned) (a - reqs), (unsigned) (b - reqs),
                         (int) a->id.len, a->id.ptr);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A signed request's tasks that carry no id get one derived from the
 * SHA-256 of the signed content (method, URI, t, body: lib/dq_sign.h,
 * dq_sign_digest) as "sig-<40 hex>" ("-<i>" in a batch): a replay of the
 * request within the signature window stores nothing ("existed"), whatever
 * v1= values it adds or drops. The id is remembered for twice the window
 * after the task's ETA.
 */

static ngx_int_t
ngx_http_deferred_signed_ids(ngx_http_request_t *r, dq_request_t *reqs,
    size_t n, u_char *mac, int64_t window_ms)
{
    u_char  *p, *q;
    size_t   i;

    for (i = 0; i < n; i++) {
        if (reqs[i].id.ptr) {
            continue;
        }

        p = ngx_pnalloc(r->pool, sizeof("sig--") - 1 + 40 + NGX_SIZE_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        q = ngx_cpymem(p, "sig-", 4);
        q = ngx_hex_dump(q, mac, 20);

        if (n > 1) {
            q = ngx_sprintf(q, "-%uz", i);
        }

        reqs[i].id.ptr = (const char *) p;
        reqs[i].id.len = q - p;

        /* remembered as long as a replay could pass the window check
         * (not the tombstone window: one entry per signed request) */
        reqs[i].key_window_ms = window_ms;
    }

    return NGX_OK;
}


static void
ngx_http_deferred_endpoint_done(ngx_http_deferred_ctx_t *ctx)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    if (ctx->state == NGX_HTTP_DEFERRED_STORED) {
        ngx_http_deferred_batch_results(ctx);
    }

    ngx_http_finalize_request(r, ngx_http_deferred_send_response(r, ctx));
    ngx_http_run_posted_requests(c);
}


