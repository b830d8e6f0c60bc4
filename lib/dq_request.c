/*
 * The public task request (see dq_request_t in dq_contract.h): one msgpack
 * map, or an array of them, validated field by field. Every error names
 * the field ("tasks[3].retry_options.max_doublings") and the rule broken.
 * Times: countdown and eta are seconds (App Engine's units); eta is epoch
 * seconds or an RFC 3339 string with Z or a numeric offset.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dq_contract.h"

/* Ten years: far enough for any schedule, small enough for exact ms. */
#define DQ__MAX_SECONDS  (10.0 * 366 * 24 * 3600)
#define DQ__MAX_EPOCH    253402300799.0     /* 9999-12-31T23:59:59Z */

typedef struct {
    const char *prefix;
    char        buf[96];
} dq__field_t;

/* "prefix.name", or name itself without a prefix. Called for every field
 * of every task (the name waits in case of an error), so no printf. */
static const char *
dq__name(dq__field_t *f, const char *name)
{
    size_t p, n;

    if (f->prefix == NULL || f->prefix[0] == '\0') {
        return name;
    }
    p = strlen(f->prefix);
    n = strlen(name);
    if (p + 1 + n >= sizeof(f->buf)) {
        snprintf(f->buf, sizeof(f->buf), "%s.%s", f->prefix, name);
        return f->buf;
    }
    memcpy(f->buf, f->prefix, p);
    f->buf[p] = '.';
    memcpy(f->buf + p + 1, name, n + 1);
    return f->buf;
}

static int
dq__number(const msgpack_object *o, double *v)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *v = (double) o->via.u64;
        return 1;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *v = (double) o->via.i64;
        return 1;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *v = o->via.f64;
        return isfinite(*v);
    default:
        return 0;
    }
}

/* Seconds (>= 0, <= max) -> ms. */
static int
dq__seconds(const msgpack_object *o, double max, const char *field,
            int64_t *ms, dq_error_t *err)
{
    double v;

    if (!dq__number(o, &v)) {
        return dq_error_set(err, DQ_EINVAL, field,
                            "%s: must be a number of seconds", field);
    }
    if (v < 0 || v > max) {
        return dq_error_set(err, DQ_EINVAL, field,
                            "%s: must be between 0 and %.0f seconds", field,
                            max);
    }
    *ms = (int64_t) llround(v * 1000.0);
    return DQ_OK;
}

static int
dq__count(const msgpack_object *o, int64_t max, const char *field,
          int64_t *v, dq_error_t *err)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > (uint64_t) max)
    {
        return dq_error_set(err, DQ_EINVAL, field,
                            "%s: must be an integer from 0 to %lld", field,
                            (long long) max);
    }
    *v = (int64_t) o->via.u64;
    return DQ_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
dq__days(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
dq__digits(const char *p, size_t n, int *out)
{
    size_t i;
    int    v = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" -> UTC ms.
 * Returns 0 on success, -1 if malformed, -2 if it has no offset. */
static int
dq__rfc3339(const char *s, size_t len, int64_t *ms)
{
    static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                   30, 31 };
    int     Y, M, D, h, mi, sec, oh, om, leap;
    size_t  i = 19;
    int64_t frac = 0, scale = 100, off = 0;

    if (len < 19 || !dq__digits(s, 4, &Y) || s[4] != '-'
        || !dq__digits(s + 5, 2, &M) || s[7] != '-'
        || !dq__digits(s + 8, 2, &D)
        || (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        || !dq__digits(s + 11, 2, &h) || s[13] != ':'
        || !dq__digits(s + 14, 2, &mi) || s[16] != ':'
        || !dq__digits(s + 17, 2, &sec))
    {
        return -1;
    }
    leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1]
        || (M == 2 && D == 29 && !leap) || h > 23 || mi > 59 || sec > 60)
    {
        return -1;
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || s[i] < '0' || s[i] > '9') {
            return -1;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            frac += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
    }
    if (i == len) {
        return -2;
    }
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        off = 0;
    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == len
               && dq__digits(s + i + 1, 2, &oh) && s[i + 3] == ':'
               && dq__digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59)
    {
        off = (int64_t) (oh * 60 + om) * 60000;
        if (s[i] == '-') {
            off = -off;
        }
    } else {
        return -1;
    }
    *ms = ((dq__days(Y, M, D) * 24 + h) * 60 + mi) * 60000
          + (int64_t) sec * 1000 + frac - off;
    return 0;
}

static int
dq__str(const msgpack_object *o, dq_str_t *out)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        return 0;
    }
    out->ptr = o->via.str.ptr;
    out->len = o->via.str.size;
    return 1;
}

/* Header names: RFC 7230 tokens; values: no control characters. */
static int
dq__header_ok(const msgpack_object *k, const msgpack_object *v)
{
    uint32_t i;

    if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR
        || k->via.str.size == 0 || k->via.str.size > 256
        || v->via.str.size > 8192)
    {
        return 0;
    }
    for (i = 0; i < k->via.str.size; i++) {
        unsigned char c = (unsigned char) k->via.str.ptr[i];
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c)) {
            return 0;
        }
    }
    for (i = 0; i < v->via.str.size; i++) {
        unsigned char c = (unsigned char) v->via.str.ptr[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int
dq__dup_keys(const msgpack_object *map, uint32_t upto, const msgpack_object *k)
{
    uint32_t j;

    for (j = 0; j < upto; j++) {
        const msgpack_object *o = &map->via.map.ptr[j].key;
        /* (an empty key's ptr may be NULL: no memcmp on it) */
        if (o->type == MSGPACK_OBJECT_STR && o->via.str.size == k->via.str.size
            && (k->via.str.size == 0
                || memcmp(o->via.str.ptr, k->via.str.ptr, k->via.str.size)
                   == 0))
        {
            return 1;
        }
    }
    return 0;
}

/* Every key a string, none repeated. */
static int
dq__check_keys(const msgpack_object *map, const char *field, dq_error_t *err)
{
    uint32_t i;

    for (i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            return dq_error_set(err, DQ_EINVAL, field,
                                "%s: keys must be strings", field);
        }
        if (map->via.map.size <= 64 && dq__dup_keys(map, i, k)) {
            return dq_error_set(err, DQ_EINVAL, field,
                                "%s: key \"%.*s\" given twice", field,
                                (int) (k->via.str.size > 60
                                       ? 60 : k->via.str.size),
                                k->via.str.ptr);
        }
    }
    return DQ_OK;
}

static int
dq__retry_options(const msgpack_object *o, dq__field_t *f, dq_retry_t *r,
                  dq_error_t *err)
{
    char     field[96];
    uint32_t i;
    int      rc;

    snprintf(field, sizeof(field), "%s", dq__name(f, "retry_options"));
    if (o->type != MSGPACK_OBJECT_MAP) {
        return dq_error_set(err, DQ_EINVAL, field, "%s: must be a map", field);
    }
    rc = dq__check_keys(o, field, err);
    if (rc != DQ_OK) {
        return rc;
    }
    for (i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        const msgpack_object *v = &o->via.map.ptr[i].val;
        dq_str_t              key = { k->via.str.ptr, k->via.str.size };
        char                  kf[160];

        snprintf(kf, sizeof(kf), "%s.%.*s", field,
                 (int) (key.len > 60 ? 60 : key.len), key.ptr);
        if (v->type == MSGPACK_OBJECT_NIL) {
            continue;
        }
        if (dq_str_eq(key, "task_retry_limit")) {
            rc = dq__count(v, 1000000000, kf, &r->retry_limit, err);
        } else if (dq_str_eq(key, "task_age_limit")) {
            rc = dq__seconds(v, DQ__MAX_SECONDS, kf, &r->age_limit_ms, err);
        } else if (dq_str_eq(key, "min_backoff_seconds")) {
            rc = dq__seconds(v, DQ__MAX_SECONDS, kf, &r->min_backoff_ms, err);
        } else if (dq_str_eq(key, "max_backoff_seconds")) {
            rc = dq__seconds(v, DQ__MAX_SECONDS, kf, &r->max_backoff_ms, err);
        } else if (dq_str_eq(key, "max_doublings")) {
            rc = dq__count(v, 62, kf, &r->max_doublings, err);
        } else {
            return dq_error_set(err, DQ_EINVAL, kf,
                                "%s: unknown retry option", kf);
        }
        if (rc != DQ_OK) {
            return rc;
        }
    }
    if (r->min_backoff_ms >= 0 && r->max_backoff_ms >= 0
        && r->min_backoff_ms > r->max_backoff_ms)
    {
        return dq_error_set(err, DQ_EINVAL, field,
                            "%s: min_backoff_seconds is above "
                            "max_backoff_seconds", field);
    }
    return DQ_OK;
}

int
dq_client_id_valid(dq_str_t s)
{
    size_t i;

    if (s.ptr == NULL || s.len == 0 || s.len > DQ_CLIENT_ID_MAX) {
        return 0;
    }
    for (i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char) s.ptr[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
        {
            return 0;
        }
    }
    return 1;
}

enum {
    DQ__F_UNKNOWN, DQ__F_FUNC, DQ__F_ARGS, DQ__F_KWARGS, DQ__F_QUEUE,
    DQ__F_NAME, DQ__F_ID, DQ__F_COUNTDOWN, DQ__F_ETA, DQ__F_URL,
    DQ__F_HEADERS, DQ__F_RETRY
};

/* The request field a key names (one compare per key, not a chain) */
static int
dq__field(const msgpack_object *k)
{
    static const struct {
        const char *name;
        size_t      len;
        int         field;
    } fields[] = {
        { "func", 4, DQ__F_FUNC }, { "args", 4, DQ__F_ARGS },
        { "kwargs", 6, DQ__F_KWARGS }, { "queue", 5, DQ__F_QUEUE },
        { "name", 4, DQ__F_NAME }, { "id", 2, DQ__F_ID },
        { "countdown", 9, DQ__F_COUNTDOWN }, { "eta", 3, DQ__F_ETA },
        { "url", 3, DQ__F_URL }, { "headers", 7, DQ__F_HEADERS },
        { "retry_options", 13, DQ__F_RETRY }
    };
    size_t i;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (k->via.str.size == fields[i].len
            && k->via.str.ptr[0] == fields[i].name[0]
            && memcmp(k->via.str.ptr, fields[i].name, fields[i].len) == 0)
        {
            return fields[i].field;
        }
    }
    return DQ__F_UNKNOWN;
}

void
dq_request_init(dq_request_t *req)
{
    static const dq_retry_t unset = DQ_RETRY_UNSET;

    memset(req, 0, sizeof(*req));
    req->queue = dq_str_lit(DQ_DEFAULT_QUEUE);
    req->countdown_ms = -1;
    req->eta_ms = -1;
    req->retry = unset;
}

int
dq_request_parse(const msgpack_object *map, const char *prefix,
                 dq_request_t *req, dq_error_t *err)
{
    dq__field_t f;
    const char *fn;
    uint32_t    i, j;
    int         rc, r;
    double      d;

    f.prefix = prefix;
    dq_request_init(req);
    if (map->type != MSGPACK_OBJECT_MAP) {
        fn = prefix && prefix[0] ? prefix : "request";
        return dq_error_set(err, DQ_EINVAL, fn, "%s: must be a map", fn);
    }
    rc = dq__check_keys(map, prefix && prefix[0] ? prefix : "request", err);
    if (rc != DQ_OK) {
        return rc;
    }
    for (i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        const msgpack_object *v = &map->via.map.ptr[i].val;
        dq_str_t              key = { k->via.str.ptr, k->via.str.size };
        int                   field = dq__field(k);

        if (field == DQ__F_FUNC) {
            fn = dq__name(&f, "func");
            if (!dq__str(v, &req->func) || !dq_func_name_valid(req->func)) {
                return dq_error_set(err, DQ_EINVAL, fn,
                                    "%s: must be 1 to %d characters of "
                                    "[A-Za-z0-9_.:-]", fn, DQ_FUNC_NAME_MAX);
            }
            continue;
        }
        if (v->type == MSGPACK_OBJECT_NIL && field != DQ__F_UNKNOWN) {
            continue;   /* null = absent, for every optional field we know */
        }
        if (field == DQ__F_ARGS) {
            fn = dq__name(&f, "args");
            if (v->type != MSGPACK_OBJECT_ARRAY) {
                return dq_error_set(err, DQ_EINVAL, fn,
                                    "%s: must be an array", fn);
            }
            req->args = v;
        } else if (field == DQ__F_KWARGS) {
            fn = dq__name(&f, "kwargs");
            if (v->type != MSGPACK_OBJECT_MAP) {
                return dq_error_set(err, DQ_EINVAL, fn, "%s: must be a map",
                                    fn);
            }
            rc = dq__check_keys(v, fn, err);
            if (rc != DQ_OK) {
                return rc;
            }
            req->kwargs = v;
        } else if (field == DQ__F_QUEUE) {
            fn = dq__name(&f, "queue");
            if (!dq__str(v, &req->queue) || !dq_queue_name_valid(req->queue)) {
                return dq_error_set(err, DQ_EINVAL, fn,
                                    "%s: must be 1 to %d characters of "
                                    "[A-Za-z0-9_-]", fn, DQ_QUEUE_NAME_MAX);
            }
        } else if (field == DQ__F_NAME) {
            fn = dq__name(&f, "name");
            if (!dq__str(v, &req->name) || !dq_task_name_valid(req->name)) {
                return dq_error_set(err, DQ_EINVAL, fn,
                                    "%s: must be 1 to %d characters of "
                                    "[A-Za-z0-9_-]", fn, DQ_TASK_NAME_MAX);
            }
        } else if (field == DQ__F_ID) {
            fn = dq__name(&f, "id");
            if (!dq__str(v, &req->id) || !dq_client_id_valid(req->id)) {
                return dq_error_set(err, DQ_EINVAL, fn,
                                    "%s: must be 1 to %d characters of "
                                    "[A-Za-z0-9_-]", fn, DQ_CLIENT_ID_MAX);
            }
        } else if (field == DQ__F_COUNTDOWN) {
            rc = dq__seconds(v, DQ__MAX_SECONDS, dq__name(&f, "countdown"),
                             &req->countdown_ms, err);
            if (rc != DQ_OK) {
                return rc;
            }
        } else if (field == DQ__F_ETA) {
            fn = dq__name(&f, "eta");
            if (v->type == MSGPACK_OBJECT_STR) {
                r = dq__rfc3339(v->via.str.ptr, v->via.str.size, &req->eta_ms);
                if (r == -2) {
                    return dq_error_set(err, DQ_EINVAL, fn,
                                        "%s: a time without Z or a UTC "
                                        "offset is ambiguous; add one", fn);
                }
                if (r != 0 || req->eta_ms < 0) {
                    return dq_error_set(err, DQ_EINVAL, fn,
                                        "%s: not an RFC 3339 time "
                                        "(2026-11-21T10:00:00Z)", fn);
                }
            } else if (dq__number(v, &d) && d >= 0 && d <= DQ__MAX_EPOCH) {
                req->eta_ms = (int64_t) llround(d * 1000.0);
            } else {
                return dq_error_set(err, DQ_EINVAL, fn,
                                    "%s: must be epoch seconds (>= 0) or an "
                                    "RFC 3339 string", fn);
            }
        } else if (field == DQ__F_URL) {
            fn = dq__name(&f, "url");
            if (!dq__str(v, &req->url) || !dq_url_valid(req->url)) {
                return dq_error_set(err, DQ_EINVAL, fn,
                                    "%s: must be a path starting with '/' of "
                                    "printable ASCII, at most %d bytes", fn,
                                    DQ_URL_MAX);
            }
        } else if (field == DQ__F_HEADERS) {
            fn = dq__name(&f, "headers");
            if (v->type != MSGPACK_OBJECT_MAP) {
                return dq_error_set(err, DQ_EINVAL, fn, "%s: must be a map",
                                    fn);
            }
            rc = dq__check_keys(v, fn, err);
            if (rc != DQ_OK) {
                return rc;
            }
            for (j = 0; j < v->via.map.size; j++) {
                if (!dq__header_ok(&v->via.map.ptr[j].key,
                                   &v->via.map.ptr[j].val))
                {
                    return dq_error_set(err, DQ_EINVAL, fn,
                                        "%s: entry %u: names must be HTTP "
                                        "tokens, values strings without "
                                        "control characters", fn,
                                        (unsigned) j);
                }
            }
            req->headers = v;
        } else if (field == DQ__F_RETRY) {
            rc = dq__retry_options(v, &f, &req->retry, err);
            if (rc != DQ_OK) {
                return rc;
            }
        } else {
            char kf[96];
            snprintf(kf, sizeof(kf), "%.*s", (int) (key.len > 60 ? 60
                                                                 : key.len),
                     key.ptr);
            fn = dq__name(&f, kf);
            return dq_error_set(err, DQ_EINVAL, fn, "%s: unknown field", fn);
        }
    }
    if (req->func.ptr == NULL) {
        fn = dq__name(&f, "func");
        return dq_error_set(err, DQ_EINVAL, fn, "%s: required", fn);
    }
    if (req->countdown_ms >= 0 && req->eta_ms >= 0) {
        fn = dq__name(&f, "eta");
        return dq_error_set(err, DQ_EINVAL, fn,
                            "%s: give countdown or eta, not both", fn);
    }
    return DQ_OK;
}

int
dq_request_parse_body(const msgpack_object *root, const dq_limits_t *lim,
                      dq_request_t *reqs, size_t *n, dq_error_t *err)
{
    char     prefix[32];
    uint32_t i;
    int      rc;

    *n = 0;
    if (root->type == MSGPACK_OBJECT_MAP) {
        rc = dq_request_parse(root, NULL, &reqs[0], err);
        if (rc == DQ_OK) {
            *n = 1;
        }
        return rc;
    }
    if (root->type != MSGPACK_OBJECT_ARRAY) {
        return dq_error_set(err, DQ_EINVAL, "request",
                            "request: must be a map (one task) or an array "
                            "of maps (a batch)");
    }
    if (root->via.array.size == 0) {
        return dq_error_set(err, DQ_EINVAL, "tasks",
                            "tasks: empty batch");
    }
    if (root->via.array.size > lim->max_batch) {
        return dq_error_set(err, DQ_ETOOBIG, "tasks",
                            "tasks: batch of %u tasks over the limit of %zu",
                            (unsigned) root->via.array.size, lim->max_batch);
    }
    for (i = 0; i < root->via.array.size; i++) {
        snprintf(prefix, sizeof(prefix), "tasks[%u]", (unsigned) i);
        rc = dq_request_parse(&root->via.array.ptr[i], prefix, &reqs[i], err);
        if (rc != DQ_OK) {
            return rc;
        }
    }
    *n = root->via.array.size;
    return DQ_OK;
}
