
/*
 * ngx_http_deferred_module: who may call the deferred endpoint, and what.
 *
 *   - with no deferred_secret and no "deferred_endpoint on open", only the
 *     local host's own addresses (127.0.0.1, ::1, a unix socket) are
 *     answered;
 *   - deferred_secret: the X-Deferred-Signature header of lib/dq_sign.h
 *     (method, URI, timestamp and body signed; a window; several secrets
 *     for rotation), checked over the body as nginx read it (in memory,
 *     any number of buffers);
 *   - deferred_functions / deferred_queues allow-lists and the server-side
 *     bounds on retry_options (deferred_retry_bounds);
 *   - the one table from DQ_E* codes to the error names of the answers.
 */


#include "ngx_http_deferred_module.h"

#include <inttypes.h>


/* the error names of the module's answers (docs/MODULE.md, "Answers") */

const char *
ngx_http_deferred_error_name(int code)
{
    switch (code) {

    case DQ_ETOOBIG:
        return "RequestTooLarge";

    case DQ_EDECODE:
        return "MalformedBody";

    case DQ_EDUPLICATE:
        return "TaskAlreadyExists";

    case DQ_ETOMBSTONE:
        return "TombstonedTask";

    case DQ_EREDIS:
        return "RedisUnavailable";

    case DQ_EINVAL:
    case DQ_ENOTFOUND:
        return "InvalidTask";

    default:
        return "InternalError";
    }
}


/*
 * "Local" is decided on the address nginx has for the client, which is a
 * same-host proxy's when one sits in front (proxy_pass from another server
 * block, a TLS terminator, stunnel): so a request that says it was
 * forwarded (X-Forwarded-For, Forwarded, X-Real-IP, Via) is never local,
 * even when realip rewrote the address to a loopback one (a proxy said
 * so: refused too, fail closed), and on a proxy_protocol connection the
 * address is the one the PROXY header names. A same-host proxy that adds
 * none of these headers still makes every client local: allow/deny or a
 * deferred_secret are the real controls (docs/SECURITY.md).
 */

static ngx_int_t ngx_http_deferred_local_addr(struct sockaddr *sa);
static ngx_int_t ngx_http_deferred_header_any(ngx_http_request_t *r,
    ngx_str_t *names, ngx_uint_t n, ngx_str_t *value);


ngx_int_t
ngx_http_deferred_local_client(ngx_http_request_t *r)
{
    ngx_str_t           v;
    ngx_addr_t          addr;
    ngx_connection_t   *c;
    static ngx_str_t    forwarded[] = {
        ngx_string("X-Forwarded-For"),
        ngx_string("Forwarded"),
        ngx_string("X-Real-IP"),
        ngx_string("Via")
    };

    /* any of them, once or more: one walk over the headers */

    if (ngx_http_deferred_header_any(r, forwarded,
                                     sizeof(forwarded) / sizeof(forwarded[0]),
                                     &v)
        != NGX_DECLINED)
    {
        return NGX_DECLINED;
    }

    c = r->connection;

    if (c->proxy_protocol) {
        if (ngx_parse_addr(r->pool, &addr, c->proxy_protocol->src_addr.data,
                           c->proxy_protocol->src_addr.len)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        return ngx_http_deferred_local_addr(addr.sockaddr);
    }

    return ngx_http_deferred_local_addr(c->sockaddr);
}


static ngx_int_t
ngx_http_deferred_local_addr(struct sockaddr *sa)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    u_char               *p;
    struct sockaddr_in6  *sin6;
    static const u_char   v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                           0xff, 0xff };
#endif

    switch (sa->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) sa;
        return sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK)
               ? NGX_OK : NGX_DECLINED;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;
        p = sin6->sin6_addr.s6_addr;

        if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
            return NGX_OK;
        }

        if (ngx_memcmp(p, v4mapped, 12) == 0
            && p[12] == 127 && p[13] == 0 && p[14] == 0 && p[15] == 1)
        {
            return NGX_OK;
        }

        return NGX_DECLINED;
#endif

#if (NGX_HAVE_UNIX_DOMAIN)
    case AF_UNIX:
        return NGX_OK;
#endif

    default:
        return NGX_DECLINED;
    }
}


/* a request header by name: NGX_OK (value), NGX_DECLINED (absent),
 * NGX_BUSY (sent twice) */

ngx_int_t
ngx_http_deferred_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    return ngx_http_deferred_header_any(r, name, 1, value);
}


/* the same for headers of any of n names, in one walk over the headers:
 * NGX_BUSY when two headers have one of the names */

static ngx_int_t
ngx_http_deferred_header_any(ngx_http_request_t *r, ngx_str_t *names,
    ngx_uint_t n, ngx_str_t *value)
{
    ngx_int_t         rc;
    ngx_uint_t        i, k;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;
    rc = NGX_DECLINED;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        for (k = 0; k < n; k++) {
            if (h[i].key.len == names[k].len
                && ngx_strncasecmp(h[i].key.data, names[k].data,
                                   names[k].len)
                   == 0)
            {
                if (rc == NGX_OK) {
                    return NGX_BUSY;
                }

                *value = h[i].value;
                rc = NGX_OK;
                break;
            }
        }
    }

    return rc;
}


/*
 * Before the body is read: the signature header is there once, parses,
 * and its timestamp is inside the window. An unauthenticated client gets
 * 403 at once instead of making nginx buffer deferred_max_body first.
 */

ngx_int_t
ngx_http_deferred_signature_precheck(ngx_http_request_t *r,
    ngx_http_deferred_loc_conf_t *dlcf, dq_error_t *err)
{
    int64_t            now, w;
    ngx_str_t          v;
    dq_sign_header_t   h;

    switch (ngx_http_deferred_header(r, &dlcf->secret_header, &v)) {

    case NGX_DECLINED:
        dq_error_set(err, DQ_EINVAL, NULL, "missing %.*s header",
                     (int) dlcf->secret_header.len, dlcf->secret_header.data);
        return NGX_DECLINED;

    case NGX_BUSY:
        dq_error_set(err, DQ_EINVAL, NULL, "two %.*s headers",
                     (int) dlcf->secret_header.len, dlcf->secret_header.data);
        return NGX_DECLINED;
    }

    if (dq_sign_parse((const char *) v.data, v.len, &h, err) != DQ_OK) {
        return NGX_DECLINED;
    }

    now = (int64_t) ngx_time();
    w = (int64_t) dlcf->secret_window;

    if (h.t > now + w || h.t < now - w) {
        dq_error_set(err, DQ_EINVAL, NULL,
                     "signature timestamp %" PRId64 " outside the %" PRId64
                     " s window around %" PRId64, h.t, w, now);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* body: as ngx_http_deferred_body_filter copied it while reading; mac
 * (DQ_SIGN_MAC_LEN bytes): the MAC that matched */

ngx_int_t
ngx_http_deferred_signature_check(ngx_http_request_t *r,
    ngx_http_deferred_loc_conf_t *dlcf, ngx_str_t *body, u_char *mac,
    dq_error_t *err)
{
    int        rc;
    dq_str_t   method, uri, piece;
    ngx_str_t  v;

    switch (ngx_http_deferred_header(r, &dlcf->secret_header, &v)) {

    case NGX_DECLINED:
        ngx_str_null(&v);
        break;

    case NGX_BUSY:
        dq_error_set(err, DQ_EINVAL, NULL, "two %.*s headers",
                     (int) dlcf->secret_header.len, dlcf->secret_header.data);
        return NGX_DECLINED;
    }

    method.ptr = (const char *) r->method_name.data;
    method.len = r->method_name.len;
    uri.ptr = (const char *) r->unparsed_uri.data;
    uri.len = r->unparsed_uri.len;

    piece.ptr = (const char *) body->data;
    piece.len = body->len;

    rc = dq_sign_verify_mac(dlcf->secrets->elts, dlcf->secrets->nelts,
                            (const char *) v.data, v.len, method, uri, &piece,
                            1, (int64_t) ngx_time(),
                            (int64_t) dlcf->secret_window, mac, err);

    if (rc == DQ_OK) {
        return NGX_OK;
    }

    return rc == DQ_EINVAL ? NGX_DECLINED : NGX_ERROR;
}


/* deferred_functions (exact names, or "prefix.*") and the retry bounds */

ngx_int_t
ngx_http_deferred_allowed(ngx_http_deferred_loc_conf_t *dlcf,
    dq_request_t *req, const char *prefix, dq_error_t *err)
{
    char                         field[96];
    const char                  *dot;
    ngx_str_t                   *f;
    ngx_uint_t                   i;
    dq_retry_t                  *rt;
    ngx_http_deferred_bounds_t  *b;

    dot = prefix ? "." : "";
    prefix = prefix ? prefix : "";

    if (dlcf->functions) {
        f = dlcf->functions->elts;

        for (i = 0; i < dlcf->functions->nelts; i++) {
            if (f[i].len >= 2 && f[i].data[f[i].len - 1] == '*') {
                if (req->func.len >= f[i].len - 1
                    && ngx_strncmp(req->func.ptr, f[i].data, f[i].len - 1)
                       == 0)
                {
                    break;
                }

                continue;
            }

            if (f[i].len == req->func.len
                && ngx_strncmp(f[i].data, req->func.ptr, f[i].len) == 0)
            {
                break;
            }
        }

        if (i == dlcf->functions->nelts) {
            snprintf(field, sizeof(field), "%s%sfunc", prefix, dot);
            return dq_error_set(err, DQ_ENOTFOUND, field,
                                "%s: \"%.*s\" is not allowed here", field,
                                (int) ngx_min(req->func.len, 200),
                                req->func.ptr);
        }
    }

    b = dlcf->bounds;
    rt = &req->retry;

    if (rt->retry_limit > b->max_retries) {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "%s%sretry_options.task_retry_limit: at most "
                            "%lld here", prefix, dot,
                            (long long) b->max_retries);
    }

    if (rt->min_backoff_ms >= 0 && rt->min_backoff_ms < b->min_backoff_ms) {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "%s%sretry_options.min_backoff_seconds: at least "
                            "%.3f here", prefix, dot,
                            (double) b->min_backoff_ms / 1000);
    }

    if (rt->max_backoff_ms > b->max_backoff_ms) {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "%s%sretry_options.max_backoff_seconds: at most "
                            "%.3f here", prefix, dot,
                            (double) b->max_backoff_ms / 1000);
    }

    if (rt->max_doublings > b->max_doublings) {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "%s%sretry_options.max_doublings: at most %lld "
                            "here", prefix, dot, (long long) b->max_doublings);
    }

    if (b->max_age_ms && rt->age_limit_ms > b->max_age_ms) {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "%s%sretry_options.task_age_limit: at most %.3f "
                            "here", prefix, dot,
                            (double) b->max_age_ms / 1000);
    }

    return DQ_OK;
}
