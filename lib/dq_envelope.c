/*
 * The stored task envelope (dq_envelope_t): a versioned msgpack array,
 *   [ 2, func, args, kwargs|nil, name|nil, url|nil, created_ms, eta_ms,
 *     headers|nil, retry|nil ]
 * (version 1, still read: [ 1, id, func, args, kwargs|nil, queue,
 * name|nil, url|nil, created_ms, eta_ms, headers|nil, retry|nil ])
 * written only by dq_envelope_encode and read only by dq_envelope_decode,
 * which treats the bytes as untrusted (anyone with Redis access can write
 * them) and checks every element. Then the state prefix of a stored value
 * (dq_task_value_split).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dq_contract.h"

#define DQ__ENV_FIELDS    10    /* version 2 */
#define DQ__ENV_FIELDS_V1 12
#define DQ__ID_MAX     64

/* bytes of a str, or of nil for an absent one */
static size_t
dq__str_size(dq_str_t s)
{
    msgpack_object o;

    if (s.ptr == NULL) {
        return 1;
    }
    o.type = MSGPACK_OBJECT_STR;
    o.via.str.size = (uint32_t) s.len;
    o.via.str.ptr = s.ptr;
    return dq_msgpack_size(&o);
}

static char *
dq__put_str(char *p, dq_str_t s)
{
    if (s.ptr == NULL) {
        *p++ = (char) 0xc0;
        return p;
    }
    return dq_msgpack_write_str(p, s.ptr, s.len);
}

static int
dq__retry_set(const dq_retry_t *r)
{
    return r->retry_limit >= 0 || r->age_limit_ms >= 0
           || r->min_backoff_ms >= 0 || r->max_backoff_ms >= 0
           || r->max_doublings >= 0;
}

/* an object, its pre-packed bytes, or `none` (one byte) */
static size_t
dq__part_size(const msgpack_object *o, dq_str_t raw)
{
    return o ? dq_msgpack_size(o) : raw.len ? raw.len : 1;
}

static char *
dq__put_part(char *p, const msgpack_object *o, dq_str_t raw,
             unsigned char none)
{
    if (o) {
        return dq_msgpack_write(p, o);
    }
    if (raw.len) {
        memcpy(p, raw.ptr, raw.len);
        return p + raw.len;
    }
    *p++ = (char) none;
    return p;
}

/*
 * The envelope's size is known before a byte is written (the args,
 * kwargs and headers trees are walked once for it): one check against
 * the limit, one room reservation, then plain stores (no callback per
 * element). The bytes are the ones msgpack-c's packer wrote here before
 * (t/unit/test_envelope.c, fuzz/fuzz_request.c compare them).
 */
/* a refused task: err names it ("tasks[3]", or "request" for one task,
 * dq_request_parse_body's names), the field in front of the message */
static int DQ_PRINTF(3, 4)
dq__too_big(dq_error_t *err, long task, const char *fmt, ...)
{
    char    field[32], msg[sizeof(err->msg)];
    va_list ap;

    if (task >= 0) {
        snprintf(field, sizeof(field), "tasks[%ld]", task);
    } else {
        snprintf(field, sizeof(field), "request");
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return dq_error_set(err, DQ_ETOOBIG, field, "%s: %s", field, msg);
}

int
dq_envelope_encode(const dq_request_t *req, long task,
                   int64_t created_ms, const dq_limits_t *lim,
                   msgpack_sbuffer *out, dq_error_t *err)
{
    static const dq_str_t none = { NULL, 0 };
    size_t                max, max_items, n, parts, items, cap;
    int64_t               eta = req->eta_ms >= 0 ? req->eta_ms : 0;
    int                   retry;
    char                 *p, *data;
    const dq_retry_t     *r = &req->retry;

    max = lim ? lim->max_envelope : DQ_DEFAULT_MAX_ENVELOPE;
    max_items = lim ? lim->max_items : DQ_DEFAULT_MAX_ITEMS;
    retry = dq__retry_set(r);

    parts = dq__part_size(req->args, req->args_raw)
            + dq__part_size(req->kwargs, req->kwargs_raw)
            + dq__part_size(req->headers, none);

    /* every element takes a byte at least: only parts of more bytes than
     * max_items can hold too many, and only those are counted (a raw part
     * is deferred_enqueue's flat array of its directive's arguments, far
     * below the limit: not counted) */
    if (parts > max_items) {
        items = (req->args ? dq_msgpack_items(req->args) : 0)
                + (req->kwargs ? dq_msgpack_items(req->kwargs) : 0)
                + (req->headers ? dq_msgpack_items(req->headers) : 0);
        if (items > max_items) {
            return dq__too_big(err, task,
                               "task of %zu elements in args, kwargs and "
                               "headers, more than %zu elements (the "
                               "limit of one task)", items, max_items);
        }
    }

    n = 1 + 1 + dq__str_size(req->func)        /* [ 2, func, */
        + parts
        + dq__str_size(req->name) + dq__str_size(req->url)
        + dq_msgpack_int_size(created_ms) + dq_msgpack_int_size(eta)
        + 1;
    if (retry) {
        n += dq_msgpack_int_size(r->retry_limit)
             + dq_msgpack_int_size(r->age_limit_ms)
             + dq_msgpack_int_size(r->min_backoff_ms)
             + dq_msgpack_int_size(r->max_backoff_ms)
             + dq_msgpack_int_size(r->max_doublings);
    }
    if (n > max) {
        return dq__too_big(err, task,
                           "task envelope of %zu bytes over the limit of "
                           "%zu", n, max);
    }
    if (out->alloc - out->size < n) {
        cap = out->alloc ? out->alloc : MSGPACK_SBUFFER_INIT_SIZE;
        while (cap - out->size < n) {
            cap *= 2;
        }
        data = realloc(out->data, cap);
        if (data == NULL) {
            return dq_error_set(err, DQ_ENOMEM, NULL,
                                "out of memory packing the envelope");
        }
        out->data = data;
        out->alloc = cap;
    }

    p = out->data + out->size;
    *p++ = (char) (0x90 | DQ__ENV_FIELDS);
    p = dq_msgpack_write_uint(p, DQ_ENVELOPE_VERSION);
    p = dq__put_str(p, req->func);
    p = dq__put_part(p, req->args, req->args_raw, 0x90);
    p = dq__put_part(p, req->kwargs, req->kwargs_raw, 0xc0);
    p = dq__put_str(p, req->name);
    p = dq__put_str(p, req->url);
    p = dq_msgpack_write_int(p, created_ms);
    p = dq_msgpack_write_int(p, eta);
    p = dq__put_part(p, req->headers, none, 0xc0);
    if (retry) {
        *p++ = (char) 0x95;
        p = dq_msgpack_write_int(p, r->retry_limit);
        p = dq_msgpack_write_int(p, r->age_limit_ms);
        p = dq_msgpack_write_int(p, r->min_backoff_ms);
        p = dq_msgpack_write_int(p, r->max_backoff_ms);
        p = dq_msgpack_write_int(p, r->max_doublings);
    } else {
        *p++ = (char) 0xc0;
    }
    out->size += n;
    return DQ_OK;
}

/* ---------------------------------------------------------------- decode */

static int
dq__get_str(const msgpack_object *o, int nullable, dq_str_t *out)
{
    if (o->type == MSGPACK_OBJECT_NIL && nullable) {
        out->ptr = NULL;
        out->len = 0;
        return 1;
    }
    if (o->type != MSGPACK_OBJECT_STR) {
        return 0;
    }
    out->ptr = o->via.str.ptr;
    out->len = o->via.str.size;
    return 1;
}

static int
dq__get_int(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER
        && o->via.u64 <= (uint64_t) INT64_MAX)
    {
        *v = (int64_t) o->via.u64;
        return 1;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 1;
    }
    return 0;
}

static int
dq__id_valid(dq_str_t s)
{
    size_t i;

    if (s.len == 0 || s.len > DQ__ID_MAX) {
        return 0;
    }
    for (i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char) s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return 0;
        }
    }
    return 1;
}

static int
dq__bad(dq_error_t *err, const char *field, const char *what)
{
    return dq_error_set(err, DQ_EDECODE, field, "envelope %s: %s", field,
                        what);
}

int
dq_envelope_decode(const char *buf, size_t len, dq_str_t id, dq_str_t queue,
                   const dq_limits_t *lim, msgpack_zone *zone,
                   dq_envelope_t *env, dq_error_t *err)
{
    msgpack_object        root;
    const msgpack_object *a;
    dq_limits_t           own;
    int64_t               v;
    uint32_t              i, n;
    int                   rc;

    memset(env, 0, sizeof(*env));

    /* a request may hold max_items elements; its envelope adds its own
     * (the 10 fields, the 5 retry values): what the encoder wrote from an
     * accepted request must decode */
    if (lim == NULL) {
        dq_limits_default(&own);
        lim = &own;
    }
    own = *lim;
    own.max_items = lim->max_items + DQ__ENV_FIELDS + 5;
    rc = dq_msgpack_unpack(buf, len, &own, zone, &root, err);
    if (rc != DQ_OK) {
        return rc;
    }
    if (root.type != MSGPACK_OBJECT_ARRAY || root.via.array.size == 0) {
        return dq_error_set(err, DQ_EDECODE, NULL,
                            "envelope: not a msgpack array");
    }
    a = root.via.array.ptr;
    if (!dq__get_int(&a[0], &v) || (v != DQ_ENVELOPE_VERSION && v != 1)) {
        return dq_error_set(err, DQ_EDECODE, "version",
                            "envelope: unsupported version");
    }
    env->version = (uint32_t) v;
    n = v == 1 ? DQ__ENV_FIELDS_V1 : DQ__ENV_FIELDS;
    if (root.via.array.size != n) {
        return dq_error_set(err, DQ_EDECODE, NULL,
                            "envelope: %u elements, version %u has %u",
                            (unsigned) root.via.array.size, env->version,
                            (unsigned) n);
    }
    if (v == 1) {
        /* [1, id, func, args, kwargs, queue, name, ...]: id and queue
         * checked against the caller's, then read as version 2 with the
         * queue left out */
        if (!dq__get_str(&a[1], 0, &env->id) || !dq__id_valid(env->id)
            || (id.ptr && (id.len != env->id.len
                           || memcmp(id.ptr, env->id.ptr, id.len) != 0)))
        {
            return dq__bad(err, "id", id.ptr ? "not this task's id"
                                             : "not a task id");
        }
        if (!dq__get_str(&a[5], 0, &env->queue)
            || !dq_queue_name_valid(env->queue)
            || (queue.ptr && (queue.len != env->queue.len
                              || memcmp(queue.ptr, env->queue.ptr,
                                        queue.len) != 0)))
        {
            return dq__bad(err, "queue", queue.ptr ? "not this task's queue"
                                                   : "not a valid queue name");
        }
        a++;                        /* func at a[1] as in version 2 */
    } else {
        env->id = id;
        env->queue = queue;
    }
    if (!dq__get_str(&a[1], 0, &env->func) || !dq_func_name_valid(env->func)) {
        return dq__bad(err, "func", "not a valid function name");
    }
    if (a[2].type != MSGPACK_OBJECT_ARRAY) {
        return dq__bad(err, "args", "not an array");
    }
    env->args = &a[2];
    if (a[3].type == MSGPACK_OBJECT_MAP) {
        for (i = 0; i < a[3].via.map.size; i++) {
            if (a[3].via.map.ptr[i].key.type != MSGPACK_OBJECT_STR) {
                return dq__bad(err, "kwargs", "a key is not a string");
            }
        }
        env->kwargs = &a[3];
    } else if (a[3].type != MSGPACK_OBJECT_NIL) {
        return dq__bad(err, "kwargs", "not a map");
    }
    if (v == 1) {
        a++;                        /* skip the queue: name at a[4] */
    }
    if (!dq__get_str(&a[4], 1, &env->name)
        || (env->name.ptr && !dq_task_name_valid(env->name)))
    {
        return dq__bad(err, "name", "not a valid task name");
    }
    if (!dq__get_str(&a[5], 1, &env->url)
        || (env->url.ptr && !dq_url_valid(env->url)))
    {
        return dq__bad(err, "url", "not a valid URL path");
    }
    if (env->url.ptr == NULL) {
        env->url = dq_str_lit(DQ_DEFAULT_URL);
    }
    if (!dq__get_int(&a[6], &env->created_ms) || env->created_ms < 0) {
        return dq__bad(err, "created_ms", "not a time");
    }
    if (!dq__get_int(&a[7], &env->eta_ms) || env->eta_ms < 0) {
        return dq__bad(err, "eta_ms", "not a time");
    }
    if (a[8].type == MSGPACK_OBJECT_MAP) {
        for (i = 0; i < a[8].via.map.size; i++) {
            if (a[8].via.map.ptr[i].key.type != MSGPACK_OBJECT_STR
                || a[8].via.map.ptr[i].val.type != MSGPACK_OBJECT_STR)
            {
                return dq__bad(err, "headers", "not a map of strings");
            }
        }
        env->headers = &a[8];
    } else if (a[8].type != MSGPACK_OBJECT_NIL) {
        return dq__bad(err, "headers", "not a map");
    }
    env->retry.retry_limit = env->retry.age_limit_ms = -1;
    env->retry.min_backoff_ms = env->retry.max_backoff_ms = -1;
    env->retry.max_doublings = -1;
    if (a[9].type == MSGPACK_OBJECT_ARRAY) {
        const msgpack_object *r = a[9].via.array.ptr;
        if (a[9].via.array.size != 5
            || !dq__get_int(&r[0], &env->retry.retry_limit)
            || !dq__get_int(&r[1], &env->retry.age_limit_ms)
            || !dq__get_int(&r[2], &env->retry.min_backoff_ms)
            || !dq__get_int(&r[3], &env->retry.max_backoff_ms)
            || !dq__get_int(&r[4], &env->retry.max_doublings)
            || env->retry.retry_limit < -1 || env->retry.age_limit_ms < -1
            || env->retry.min_backoff_ms < -1 || env->retry.max_backoff_ms < -1
            || env->retry.max_doublings < -1 || env->retry.max_doublings > 62)
        {
            return dq__bad(err, "retry", "not 5 integers >= -1");
        }
    } else if (a[9].type != MSGPACK_OBJECT_NIL) {
        return dq__bad(err, "retry", "not an array");
    }
    return DQ_OK;
}

/* ------------------------------------------------- state prefix (v2) */

static const char *
dq__prefix_int(const char *p, const char *end, int64_t *v)
{
    int64_t n = 0;

    if (p == end || *p < '0' || *p > '9') {
        return NULL;
    }
    while (p < end && *p >= '0' && *p <= '9') {
        if (n > (INT64_MAX - 9) / 10) {
            return NULL;
        }
        n = n * 10 + (*p++ - '0');
    }
    *v = n;
    return p;
}

static const char *
dq__prefix_word(const char *p, const char *end, dq_str_t *w)
{
    const char *s = p;

    while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                       || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
    {
        p++;
    }
    w->ptr = s;
    w->len = (size_t) (p - s);
    return p;
}

int
dq_task_value_split(dq_str_t value, dq_value_state_t *st, dq_str_t *envelope)
{
    const char *p, *end, *nl;
    int64_t    *f[4];
    int         i;

    memset(st, 0, sizeof(*st));
    *envelope = value;
    if (value.len == 0 || value.ptr[0] != 'S') {
        return DQ_OK;
    }
    nl = memchr(value.ptr, '\n', value.len);
    if (nl == NULL) {
        return DQ_EDECODE;
    }
    f[0] = &st->runs;
    f[1] = &st->retries;
    f[2] = &st->first_run_ms;
    f[3] = &st->failed_ms;
    p = value.ptr + 1;
    end = nl;
    for (i = 0; i < 4; i++) {
        p = dq__prefix_int(p, end, f[i]);
        if (p == NULL || p == end || *p++ != ':') {
            goto bad;
        }
    }
    p = dq__prefix_word(p, end, &st->claim);
    if (p < end && *p == ':') {
        p = dq__prefix_word(p + 1, end, &st->name);
    }
    if (p != end) {
        goto bad;
    }
    st->has = 1;
    envelope->ptr = nl + 1;
    envelope->len = value.len - (size_t) (nl + 1 - value.ptr);
    return DQ_OK;

bad:
    memset(st, 0, sizeof(*st));
    return DQ_EDECODE;
}
