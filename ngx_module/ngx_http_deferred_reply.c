
/*
 * ngx_http_deferred_module: a request's answer from its tasks' results.
 *
 * The status (201, 207, 409, ...), the JSON body and the $deferred_task_*
 * values of a request whose groups all have their results
 * (ngx_http_deferred_batch.c delivers them), the error body of a refused
 * request, and the response sent. Written straight into one pool buffer:
 * no JSON library, no printf.
 */


#include "ngx_http_deferred_module.h"


static u_char *ngx_http_deferred_json_string(u_char *p, dq_str_t s);
static u_char *ngx_http_deferred_json_text(u_char *p, dq_str_t s);
static u_char *ngx_http_deferred_json_plain(u_char *p, dq_str_t s);
static u_char *ngx_http_deferred_json_member(u_char *p, u_char *first,
    const char *key, const char *value);
static u_char *ngx_http_deferred_rfc3339(u_char *p, int64_t ms);
static u_char *ngx_http_deferred_int(u_char *p, int64_t v, ngx_uint_t width);
static const u_char *ngx_http_deferred_eta_text(int64_t ms, size_t *len);


/* results -> status, JSON, variables */

/*
 * The reply is written straight into one pool buffer, byte for byte what
 * jansson's json_dumps(JSON_COMPACT) gave before: keys in insertion order,
 * '"', '\\' and control characters escaped (\b \f \n \r \t, others as
 * \u00XX, upper-case hex), other UTF-8 as is, a string that is not valid
 * UTF-8 becomes null (a task field) or is left out (an error field).
 */

#define NGX_HTTP_DEFERRED_TASK_JSON  256    /* fixed text of one object */


void
ngx_http_deferred_batch_results(ngx_http_deferred_ctx_t *ctx)
{
    u_char                    *p, *e, *b;
    size_t                     size, eta;
    const u_char              *num;
    ngx_int_t                  status;
    ngx_uint_t                 i, stored, conflict, emit;
    const char                *what;
    ngx_http_request_t        *r;
    ngx_http_deferred_task_t  *t;

    r = ctx->request;

    ctx->body.len = 0;

    ctx->var_id.data = ngx_pnalloc(r->pool,
                                   ctx->ntasks * (DQ_CLIENT_ID_MAX + 1));
    ctx->var_eta.data = ngx_pnalloc(r->pool, ctx->ntasks * (NGX_INT64_LEN + 1));
    if (ctx->var_id.data == NULL || ctx->var_eta.data == NULL) {
        ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return;
    }

    size = sizeof("[]\n");

    for (i = 0; i < ctx->ntasks; i++) {
        t = &ctx->tasks[i];
        size += NGX_HTTP_DEFERRED_TASK_JSON + 6 * t->id.len + 6 * t->queue.len
                + 6 * t->name.len + 6 * t->url.len;
    }

    b = ngx_pnalloc(r->pool, size);
    if (b == NULL) {
        ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return;
    }

    p = ctx->var_id.data;
    e = ctx->var_eta.data;
    stored = 0;
    conflict = 0;

    ctx->body.data = b;

    if (ctx->batch) {
        *b++ = '[';
    }

    for (i = 0; i < ctx->ntasks; i++) {
        t = &ctx->tasks[i];

        if (i) {
            *p++ = ',';
            *e++ = ',';
        }

        /* $deferred_task_id and _eta line up: a refused task has an empty
         * entry in both */
        if (t->result.status == DQ_OK) {
            p = ngx_cpymem(p, t->id.ptr, t->id.len);
        }

        /* a single task's reply is its object alone (there is one task) */

        emit = ctx->batch || i == 0;

        if (i && emit) {
            *b++ = ',';
        }

        if (emit) {
            /* the id, queue and name were checked to be [A-Za-z0-9_-]
             * (dq_request, ngx_http_deferred_enqueue_build): nothing to
             * escape */
            b = ngx_cpymem(b, "{\"id\":", sizeof("{\"id\":") - 1);
            b = (t->result.status == DQ_OK)
                ? ngx_http_deferred_json_plain(b, t->id)
                : ngx_cpymem(b, "null", 4);

            b = ngx_cpymem(b, ",\"queue\":", sizeof(",\"queue\":") - 1);
            b = ngx_http_deferred_json_plain(b, t->queue);

            b = ngx_cpymem(b, ",\"name\":", sizeof(",\"name\":") - 1);
            b = t->name.ptr ? ngx_http_deferred_json_plain(b, t->name)
                            : ngx_cpymem(b, "null", 4);

            if (t->url_default) {
                /* nothing to escape there (where most tasks go) */
                b = ngx_cpymem(b, ",\"url\":\"" DQ_DEFAULT_URL "\"",
                               sizeof(",\"url\":\"" DQ_DEFAULT_URL "\"") - 1);

            } else {
                b = ngx_cpymem(b, ",\"url\":", sizeof(",\"url\":") - 1);
                b = ngx_http_deferred_json_string(b, t->url);
            }
        }

        if (t->result.status == DQ_OK) {
            stored++;
            num = ngx_http_deferred_eta_text(t->result.eta_ms, &eta);
            e = ngx_cpymem(e, num, eta);

            if (emit) {
                b = t->result.existed
                    ? ngx_cpymem(b, ",\"status\":\"existed\",\"eta_ms\":",
                                 sizeof(",\"status\":\"existed\",\"eta_ms\":")
                                 - 1)
                    : ngx_cpymem(b, ",\"status\":\"created\",\"eta_ms\":",
                                 sizeof(",\"status\":\"created\",\"eta_ms\":")
                                 - 1);
                b = ngx_cpymem(b, num, eta);
                b = ngx_cpymem(b, ",\"eta\":\"", sizeof(",\"eta\":\"") - 1);
                b = ngx_http_deferred_rfc3339(b, t->result.eta_ms);
                b = ngx_cpymem(b, "\"}", 2);
            }

        } else {
            conflict++;
            what = t->result.status == DQ_ETOMBSTONE ? "TombstonedTask"
                                                     : "TaskAlreadyExists";
            if (emit) {
                b = ngx_sprintf(b, ",\"status\":\"%s\",\"error\":\"%s\"}",
                                what, what);
            }

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "deferred: task name \"%*s\" in queue \"%*s\": %s",
                          t->name.len, t->name.ptr,
                          t->queue.len, t->queue.ptr, what);
        }
    }

    if (ctx->batch) {
        *b++ = ']';
    }

    *b++ = '\n';
    ctx->body.len = b - ctx->body.data;

    ctx->var_id.len = p - ctx->var_id.data;
    ctx->var_eta.len = e - ctx->var_eta.data;

    if (conflict == 0) {
        status = NGX_HTTP_CREATED;

    } else if (stored == 0) {
        status = NGX_HTTP_CONFLICT;

    } else {
        status = 207;
    }

    ctx->status = status;
}


ngx_int_t
ngx_http_deferred_error_body(ngx_http_request_t *r,
    ngx_http_deferred_ctx_t *ctx, ngx_int_t status, const char *error,
    const char *field, const char *message)
{
    u_char  *p, *start;
    size_t   size;

    ctx->status = status;
    ctx->body.len = 0;

    size = sizeof("{,\"error\":\"\",\"field\":\"\",\"message\":\"\"}\n")
           + 6 * ngx_strlen(error)
           + (field ? 6 * ngx_strlen(field) : 0)
           + (message ? 6 * ngx_strlen(message) : 0);

    start = ngx_pnalloc(r->pool, size);
    if (start == NULL) {
        return NGX_ERROR;
    }

    *start = '{';
    p = start + 1;

    p = ngx_http_deferred_json_member(p, start + 1, "error", error);

    if (field && field[0]) {
        p = ngx_http_deferred_json_member(p, start + 1, "field", field);
    }

    if (message && message[0]) {
        p = ngx_http_deferred_json_member(p, start + 1, "message", message);
    }

    p = ngx_cpymem(p, "}\n", 2);

    ctx->body.data = start;
    ctx->body.len = p - start;

    return NGX_OK;
}


/* ,"key":"value" at p (no comma at first); left out if not valid UTF-8 */

static u_char *
ngx_http_deferred_json_member(u_char *p, u_char *first, const char *key,
    const char *value)
{
    u_char    *q;
    dq_str_t   s;

    q = p;

    if (p != first) {
        *q++ = ',';
    }

    *q++ = '"';
    q = ngx_cpymem(q, key, ngx_strlen(key));
    *q++ = '"';
    *q++ = ':';

    s.ptr = value;
    s.len = ngx_strlen(value);

    q = ngx_http_deferred_json_text(q, s);

    return q ? q : p;
}


/* a JSON string, or null when s is not valid UTF-8 */

static u_char *
ngx_http_deferred_json_string(u_char *p, dq_str_t s)
{
    u_char  *q;

    q = ngx_http_deferred_json_text(p, s);

    return q ? q : ngx_cpymem(p, "null", 4);
}


/* s quoted as it is: only for strings of [A-Za-z0-9_-] */

static u_char *
ngx_http_deferred_json_plain(u_char *p, dq_str_t s)
{
    *p++ = '"';
    p = ngx_cpymem(p, s.ptr, s.len);
    *p++ = '"';

    return p;
}


/*
 * s as a quoted JSON string at p (at most 6 * s.len + 2 bytes), or NULL
 * when s is not valid UTF-8 (overlong forms, surrogates and code points
 * above U+10FFFF included)
 */

static u_char *
ngx_http_deferred_json_text(u_char *p, dq_str_t s)
{
    u_char          c;
    uint32_t        cp, min;
    ngx_uint_t      n;
    const u_char   *s0, *end;

    static u_char   hex[] = "0123456789ABCDEF";

    s0 = (const u_char *) s.ptr;
    end = s0 + s.len;

    *p++ = '"';

    while (s0 < end) {
        c = *s0;

        if (c >= 0x20 && c < 0x80) {
            if (c == '"' || c == '\\') {
                *p++ = '\\';
            }

            *p++ = c;
            s0++;
            continue;
        }

        if (c < 0x20) {
            *p++ = '\\';

            switch (c) {
            case '\b': *p++ = 'b'; break;
            case '\f': *p++ = 'f'; break;
            case '\n': *p++ = 'n'; break;
            case '\r': *p++ = 'r'; break;
            case '\t': *p++ = 't'; break;
            default:
                *p++ = 'u'; *p++ = '0'; *p++ = '0';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 0xf];
            }

            s0++;
            continue;
        }

        /* a multi-byte sequence: copied as is once checked */

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1; cp = c & 0x1f; min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2; cp = c & 0x0f; min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3; cp = c & 0x07; min = 0x10000;

        } else {
            return NULL;
        }

        if ((size_t) (end - s0) <= n) {
            return NULL;
        }

        for (c = 1; c <= n; c++) {
            if ((s0[c] & 0xc0) != 0x80) {
                return NULL;
            }

            cp = (cp << 6) | (s0[c] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return NULL;
        }

        p = ngx_cpymem(p, s0, n + 1);
        s0 += n + 1;
    }

    *p++ = '"';

    return p;
}


/* decimal, at least width digits (zero-padded); no printf: three numbers
 * per task were a tenth of a worker's instructions with ngx_sprintf */

static u_char *
ngx_http_deferred_int(u_char *p, int64_t v, ngx_uint_t width)
{
    u_char         buf[NGX_INT64_LEN], *q;
    uint64_t       u;
    ngx_uint_t     d;

    static u_char  pairs[] = "00010203040506070809"
                             "10111213141516171819"
                             "20212223242526272829"
                             "30313233343536373839"
                             "40414243444546474849"
                             "50515253545556575859"
                             "60616263646566676869"
                             "70717273747576777879"
                             "80818283848586878889"
                             "90919293949596979899";

    u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;
    q = buf + sizeof(buf);

    /* two digits a division */

    while (u >= 10) {
        d = (ngx_uint_t) (u % 100) * 2;
        u /= 100;
        *--q = pairs[d + 1];
        *--q = pairs[d];
    }

    if (u || q == buf + sizeof(buf)) {
        *--q = (u_char) ('0' + u);
    }

    while ((ngx_uint_t) (buf + sizeof(buf) - q) < width) {
        *--q = '0';
    }

    if (v < 0) {
        *p++ = '-';
    }

    return ngx_cpymem(p, q, buf + sizeof(buf) - q);
}


/* an ETA's decimal digits (eta_ms), kept for the next ETA of the same
 * millisecond: the tasks of one merged call stored now share the call's
 * clock, so one conversion a call, not one a task */

static const u_char *
ngx_http_deferred_eta_text(int64_t ms, size_t *len)
{
    static size_t   n;
    static int64_t  cached = -1;
    static u_char   text[NGX_INT64_LEN + 1];

    if (ms != cached || n == 0) {
        n = ngx_http_deferred_int(text, ms, 1) - text;
        cached = ms;
    }

    *len = n;

    return text;
}


/* an ETA (ms >= 0) as "2026-11-21T10:00:00.000Z"; the text up to the
 * second is kept for the next ETA of the same second (a request's tasks,
 * the requests of one second: one ngx_gmtime a second, not one a task) */

static u_char *
ngx_http_deferred_rfc3339(u_char *p, int64_t ms)
{
    u_char         *q;
    int64_t         sec;
    ngx_tm_t        tm;
    ngx_uint_t      m;

    static size_t   len;
    static int64_t  cached = -1;
    static u_char   text[NGX_INT_T_LEN + sizeof("-11-21T10:00:00.")];

    sec = ms / 1000;

    if (sec != cached) {
        ngx_gmtime((time_t) sec, &tm);

        q = ngx_http_deferred_int(text, tm.ngx_tm_year, 4);
        *q++ = '-';
        q = ngx_http_deferred_int(q, tm.ngx_tm_mon, 2);
        *q++ = '-';
        q = ngx_http_deferred_int(q, tm.ngx_tm_mday, 2);
        *q++ = 'T';
        q = ngx_http_deferred_int(q, tm.ngx_tm_hour, 2);
        *q++ = ':';
        q = ngx_http_deferred_int(q, tm.ngx_tm_min, 2);
        *q++ = ':';
        q = ngx_http_deferred_int(q, tm.ngx_tm_sec, 2);
        *q++ = '.';

        len = q - text;
        cached = sec;
    }

    p = ngx_cpymem(p, text, len);

    m = (ngx_uint_t) (ms % 1000);
    *p++ = (u_char) ('0' + m / 100);
    *p++ = (u_char) ('0' + m / 10 % 10);
    *p++ = (u_char) ('0' + m % 10);
    *p++ = 'Z';

    return p;
}


ngx_int_t
ngx_http_deferred_send_response(ngx_http_request_t *r,
    ngx_http_deferred_ctx_t *ctx)
{
    static ngx_str_t  json = ngx_string("application/json");
    static ngx_str_t  retry_after = ngx_string("Retry-After");
    static ngx_str_t  retry_after_s =
                          ngx_string(NGX_HTTP_DEFERRED_RETRY_AFTER);

    if (ctx->retry_after
        && ngx_http_deferred_header_add(r, &retry_after, &retry_after_s)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_deferred_send_body(r, ctx->status, &json, &ctx->body);
}
