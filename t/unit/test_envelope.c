/*
 * The public request format (every error names its field) and the stored
 * envelope: encode -> decode round trip, defaults, size limit, and the
 * decoder's checks of each element.
 */
#define _GNU_SOURCE   /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dq_contract.h"
#include "ref_envelope.h"
#include "json_pack.h"
#include "tap.h"

static dq_limits_t  lim;
static msgpack_zone zone;
static dq_request_t reqs[DQ_DEFAULT_MAX_BATCH];
static size_t       nreq;
static char         body[4][1 << 16];     /* keeps parsed bytes alive */
static int          nbody;

/* Parse a JSON body into reqs; returns rc, fills err. */
static int
parse(const char *json, dq_error_t *err)
{
    msgpack_sbuffer sb;
    msgpack_object  root;
    int             rc;
    char           *keep = body[nbody++ % 4];

    msgpack_sbuffer_init(&sb);
    rc = test_json_pack(json, strlen(json), &lim, &sb, err);
    if (rc == DQ_OK) {
        memcpy(keep, sb.data, sb.size);
        rc = dq_msgpack_unpack(keep, sb.size, &lim, &zone, &root, err);
    }
    msgpack_sbuffer_destroy(&sb);
    if (rc == DQ_OK) {
        rc = dq_request_parse_body(&root, &lim, reqs, &nreq, err);
    }
    return rc;
}

static void
bad(const char *json, int code, const char *field)
{
    dq_error_t err;
    int        rc;

    memset(&err, 0, sizeof(err));
    rc = parse(json, &err);
    ok(rc == code && strcmp(err.field, field) == 0
       && strstr(err.msg, field) != NULL,
       "%s -> %s [%s]", json, field, err.msg);
    if (rc != code) {
        diag("  rc %d, want %d", rc, code);
    }
}

static int64_t
utc_ms(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t) timegm(&tm) * 1000;
}

static void
test_request(void)
{
    dq_error_t err;
    static char batch[40000];
    size_t      i, off;

    is_int(parse("{\"func\":\"f\"}", &err), DQ_OK, "minimal request");
    ok(nreq == 1 && dq_str_eq(reqs[0].queue, "default")
       && reqs[0].countdown_ms == -1 && reqs[0].eta_ms == -1
       && reqs[0].name.ptr == NULL && reqs[0].url.ptr == NULL
       && reqs[0].retry.retry_limit == -1, "defaults");
    bad("{}", DQ_EINVAL, "func");
    bad("{\"func\":\"a b\"}", DQ_EINVAL, "func");
    bad("{\"func\":1}", DQ_EINVAL, "func");
    bad("{\"func\":\"f\",\"queue\":\"a b\"}", DQ_EINVAL, "queue");
    bad("{\"func\":\"f\",\"name\":\"\"}", DQ_EINVAL, "name");
    bad("{\"func\":\"f\",\"countdown\":-1}", DQ_EINVAL, "countdown");
    bad("{\"func\":\"f\",\"countdown\":\"5\"}", DQ_EINVAL, "countdown");
    bad("{\"func\":\"f\",\"countdown\":1e300}", DQ_EINVAL, "countdown");
    is_int(parse("{\"func\":\"f\",\"countdown\":1.5}", &err), DQ_OK,
           "float countdown");
    is_int(reqs[0].countdown_ms, 1500, "countdown in ms");
    is_int(parse("{\"func\":\"f\",\"eta\":\"2026-11-21T10:00:00Z\"}", &err),
           DQ_OK, "RFC 3339 eta with Z");
    is_int(reqs[0].eta_ms, utc_ms(2026, 11, 21, 10, 0, 0), "eta value");
    parse("{\"func\":\"f\",\"eta\":\"2026-11-21T10:00:00+02:00\"}", &err);
    is_int(reqs[0].eta_ms, utc_ms(2026, 11, 21, 8, 0, 0), "positive offset");
    parse("{\"func\":\"f\",\"eta\":\"2024-02-29t23:30:00.25-01:30\"}", &err);
    is_int(reqs[0].eta_ms, utc_ms(2024, 3, 1, 1, 0, 0) + 250,
           "negative offset, fraction, leap day");
    bad("{\"func\":\"f\",\"eta\":\"1969-12-31T23:59:59Z\"}", DQ_EINVAL, "eta");
    bad("{\"func\":\"f\",\"eta\":\"2026-11-21T10:00:00\"}", DQ_EINVAL, "eta");
    parse("{\"func\":\"f\",\"eta\":\"2026-11-21T10:00:00\"}", &err);
    ok(strstr(err.msg, "offset") != NULL, "naive: the message says why (%s)",
       err.msg);
    bad("{\"func\":\"f\",\"eta\":\"2026-02-29T10:00:00Z\"}", DQ_EINVAL, "eta");
    bad("{\"func\":\"f\",\"eta\":\"2026-11-21T25:00:00Z\"}", DQ_EINVAL, "eta");
    bad("{\"func\":\"f\",\"eta\":\"2026-11-21T10:00:00+2\"}", DQ_EINVAL, "eta");
    bad("{\"func\":\"f\",\"eta\":\"tomorrow\"}", DQ_EINVAL, "eta");
    is_int(parse("{\"func\":\"f\",\"eta\":1790000000.5}", &err), DQ_OK,
           "epoch eta");
    is_int(reqs[0].eta_ms, 1790000000500LL, "epoch seconds -> ms");
    bad("{\"func\":\"f\",\"eta\":-1}", DQ_EINVAL, "eta");
    bad("{\"func\":\"f\",\"eta\":true}", DQ_EINVAL, "eta");
    bad("{\"func\":\"f\",\"eta\":1,\"countdown\":1}", DQ_EINVAL, "eta");
    bad("{\"func\":\"f\",\"args\":{}}", DQ_EINVAL, "args");
    bad("{\"func\":\"f\",\"kwargs\":[]}", DQ_EINVAL, "kwargs");
    bad("{\"func\":\"f\",\"url\":\"nopath\"}", DQ_EINVAL, "url");
    is_int(parse("{\"func\":\"f\",\"headers\":{\"X-A\":\"b c\"}}", &err),
           DQ_OK, "headers");
    bad("{\"func\":\"f\",\"headers\":{\"X A\":\"b\"}}", DQ_EINVAL, "headers");
    bad("{\"func\":\"f\",\"headers\":{\"X-A\":1}}", DQ_EINVAL, "headers");
    bad("{\"func\":\"f\",\"headers\":{\"X-A\":\"a\\r\\nB: c\"}}", DQ_EINVAL,
        "headers");
    is_int(parse("{\"func\":\"f\",\"retry_options\":{\"task_retry_limit\":3,"
                 "\"task_age_limit\":60,\"min_backoff_seconds\":0.5,"
                 "\"max_backoff_seconds\":10,\"max_doublings\":4}}", &err),
           DQ_OK, "retry options");
    ok(reqs[0].retry.retry_limit == 3 && reqs[0].retry.age_limit_ms == 60000
       && reqs[0].retry.min_backoff_ms == 500
       && reqs[0].retry.max_backoff_ms == 10000
       && reqs[0].retry.max_doublings == 4, "retry options in ms");
    bad("{\"func\":\"f\",\"retry_options\":{\"task_retry_limt\":3}}",
        DQ_EINVAL, "retry_options.task_retry_limt");
    bad("{\"func\":\"f\",\"retry_options\":{\"task_retry_limit\":-1}}",
        DQ_EINVAL, "retry_options.task_retry_limit");
    bad("{\"func\":\"f\",\"retry_options\":{\"max_doublings\":1.5}}",
        DQ_EINVAL, "retry_options.max_doublings");
    bad("{\"func\":\"f\",\"retry_options\":{\"min_backoff_seconds\":10,"
        "\"max_backoff_seconds\":1}}", DQ_EINVAL, "retry_options");
    bad("{\"func\":\"f\",\"retry_options\":5}", DQ_EINVAL, "retry_options");
    bad("{\"func\":\"f\",\"countdwn\":5}", DQ_EINVAL, "countdwn");
    is_int(parse("{\"func\":\"f\",\"queue\":null,\"eta\":null}", &err), DQ_OK,
           "null = absent");
    ok(dq_str_eq(reqs[0].queue, "default"), "null queue -> default");
    bad("\"string\"", DQ_EINVAL, "request");
    bad("[]", DQ_EINVAL, "tasks");
    bad("[{\"func\":\"f\"},{\"func\":\"g\",\"queue\":\"x y\"}]", DQ_EINVAL,
        "tasks[1].queue");
    bad("[{\"func\":\"f\"},7]", DQ_EINVAL, "tasks[1]");
    bad("[{\"func\":\"f\",\"retry_options\":{\"x\":1}}]", DQ_EINVAL,
        "tasks[0].retry_options.x");
    off = (size_t) snprintf(batch, sizeof(batch), "[");
    for (i = 0; i < 1001; i++) {
        off += (size_t) snprintf(batch + off, sizeof(batch) - off,
                                 "%s{\"func\":\"f\"}", i ? "," : "");
    }
    snprintf(batch + off, sizeof(batch) - off, "]");
    bad(batch, DQ_ETOOBIG, "tasks");
    batch[off - 13] = ']';          /* drop the last: 1000 tasks */
    batch[off - 12] = '\0';
    is_int(parse(batch, &err), DQ_OK, "a batch of 1000");
    is_int(nreq, 1000, "1000 requests");

    /* msgpack-only shapes: repeated keys, non-string keys */
    {
        msgpack_object o;
        static const char dup[] = "\x82\xa4" "func\xa1" "f\xa4" "func\xa1" "g";
        static const char num[] = "\x82\xa4" "func\xa1" "f\x01\x02";
        dq_msgpack_unpack(dup, sizeof(dup) - 1, &lim, &zone, &o, &err);
        is_int(dq_request_parse(&o, NULL, &reqs[0], &err), DQ_EINVAL,
               "repeated key refused");
        ok(strstr(err.msg, "twice") != NULL, "%s", err.msg);
        dq_msgpack_unpack(num, sizeof(num) - 1, &lim, &zone, &o, &err);
        is_int(dq_request_parse(&o, "tasks[2]", &reqs[0], &err), DQ_EINVAL,
               "integer key refused");
        is_str(err.field, "tasks[2]", "named with the prefix");
    }
    /* found by fuzz/fuzz_request (docs/SECURITY.md): two empty keys, whose
     * pointers msgpack-c leaves NULL, went to memcmp (UBSan: null
     * argument); now compared by length alone */
    {
        msgpack_object o;
        static const char emp[] = "\x82\xa0\xa1" "f\xa0\xa1" "g";
        dq_msgpack_unpack(emp, sizeof(emp) - 1, &lim, &zone, &o, &err);
        is_int(dq_request_parse(&o, NULL, &reqs[0], &err), DQ_EINVAL,
               "two empty keys: refused as repeated, no UB");
    }
}

static void
test_envelope(void)
{
    msgpack_sbuffer sb;
    dq_envelope_t   env;
    dq_error_t      err;
    int             rc;

    msgpack_sbuffer_init(&sb);
    rc = parse("{\"func\":\"mod.fn\",\"args\":[1,\"two\",[3]],"
               "\"kwargs\":{\"k\":false},\"queue\":\"q-1\",\"name\":\"nm\","
               "\"url\":\"/custom\",\"eta\":1790000000.25,"
               "\"headers\":{\"X-A\":\"b\"},"
               "\"retry_options\":{\"task_retry_limit\":2}}", &err);
    is_int(rc, DQ_OK, "full request");
    rc = dq_envelope_encode(&reqs[0], -1, 1700000000001LL,
                            &lim, &sb, &err);
    is_int(rc, DQ_OK, "encoded");
    ok(memmem(sb.data, sb.size, "ID0123456789abcdefghij", 22) == NULL
       && memmem(sb.data, sb.size, "q-1", 3) == NULL,
       "version 2 stores neither the id nor the queue");
    rc = dq_envelope_decode(sb.data, sb.size,
                            dq_str_lit("ID0123456789abcdefghij"),
                            dq_str_lit("q-1"), &lim, &zone, &env, &err);
    is_int(rc, DQ_OK, "decoded");
    is_int(env.version, 2, "version 2");
    ok(dq_str_eq(env.id, "ID0123456789abcdefghij"), "id (the caller's)");
    ok(dq_str_eq(env.func, "mod.fn"), "func");
    ok(env.args->type == MSGPACK_OBJECT_ARRAY && env.args->via.array.size == 3
       && env.args->via.array.ptr[1].type == MSGPACK_OBJECT_STR, "args");
    ok(env.kwargs && env.kwargs->via.map.size == 1
       && dq_map_get(env.kwargs, "k")->type == MSGPACK_OBJECT_BOOLEAN,
       "kwargs");
    ok(dq_str_eq(env.queue, "q-1"), "queue (the caller's)");
    ok(dq_str_eq(env.name, "nm"), "name");
    ok(dq_str_eq(env.url, "/custom"), "url");
    is_int(env.created_ms, 1700000000001LL, "created");
    is_int(env.eta_ms, 1790000000250LL, "requested eta");
    ok(env.headers && dq_map_get(env.headers, "X-A"), "headers");
    ok(env.retry.retry_limit == 2 && env.retry.min_backoff_ms == -1,
       "retry options, unset ones -1");

    msgpack_sbuffer_clear(&sb);
    parse("{\"func\":\"f\"}", &err);
    dq_envelope_encode(&reqs[0], -1, 5, &lim, &sb, &err);
    is_int(dq_envelope_decode(sb.data, sb.size, dq_str_lit("x"),
                              dq_str_lit("q"), &lim, &zone, &env, &err),
           DQ_OK, "minimal envelope");
    ok(dq_str_eq(env.url, DQ_DEFAULT_URL), "nil url -> default URL");
    ok(env.args->via.array.size == 0 && env.kwargs == NULL
       && env.name.ptr == NULL && env.headers == NULL && env.eta_ms == 0
       && env.retry.retry_limit == -1, "absent parts");

    /* size limit */
    msgpack_sbuffer_clear(&sb);
    parse("{\"func\":\"f\",\"args\":[\"0123456789012345678901234567890123456"
          "789012345678901234567890123456789\"]}", &err);
    lim.max_envelope = 64;
    rc = dq_envelope_encode(&reqs[0], -1, 5, &lim, &sb, &err);
    ok(rc == DQ_ETOOBIG && sb.size == 0, "over max_envelope: %s", err.msg);
    ok(strcmp(err.field, "request") == 0
       && strncmp(err.msg, "request: task envelope of ", 26) == 0,
       "one task: named \"request\" in field and message");
    rc = dq_envelope_encode(&reqs[0], 7, 5, &lim, &sb, &err);
    ok(rc == DQ_ETOOBIG && sb.size == 0 && strcmp(err.field, "tasks[7]") == 0
       && strncmp(err.msg, "tasks[7]: task envelope of ", 27) == 0,
       "task 7 of a batch: named \"tasks[7]\" (%s)", err.msg);
    dq_limits_default(&lim);
    msgpack_sbuffer_destroy(&sb);
}

/* Hand-made envelopes with one element wrong. */
static void
test_decode_checks(void)
{
    static const struct {
        const char *bytes;
        size_t      len;
        const char *field;
        const char *what;
    } cases[] = {
#define E(s, f, w) { s, sizeof(s) - 1, f, w }
        E("\xc0", "", "not an array"),
        E("\x91\x03", "version", "version 3"),
        E("\x9a\x02\xa3" "a b\x90\xc0\xc0\xc0\x00\x00\xc0\xc0",
          "func", "v2: bad func"),
        E("\x9a\x02\xa1" "f\x90\xc0\xa1.\xc0\x00\x00\xc0\xc0",
          "name", "v2: bad name"),
        E("\x9c\x02\xa1x\xa1" "f\x90\xc0\xa1q\xc0\xc0\x00\x00\xc0\xc0",
          "", "a version 1 layout marked 2"),
        E("\x9c\x01\xa1y\xa1" "f\x90\xc0\xa1q\xc0\xc0\x00\x00\xc0\xc0",
          "id", "v1: another task's id"),
        E("\x9c\x01\xa1x\xa1" "f\x90\xc0\xa1r\xc0\xc0\x00\x00\xc0\xc0",
          "queue", "v1: another queue"),
        E("\x92\x01\xa1x", "", "too few elements"),
        E("\x9c\x01\x01\xa1" "f\x90\xc0\xa1q\xc0\xc0\x00\x00\xc0\xc0",
          "id", "integer id"),
        E("\x9c\x01\xa1x\xa3" "a b\x90\xc0\xa1q\xc0\xc0\x00\x00\xc0\xc0",
          "func", "bad func"),
        E("\x9c\x01\xa1x\xa1" "f\x80\xc0\xa1q\xc0\xc0\x00\x00\xc0\xc0",
          "args", "args a map"),
        E("\x9c\x01\xa1x\xa1" "f\x90\x81\x01\x01\xa1q\xc0\xc0\x00\x00\xc0\xc0",
          "kwargs", "integer kwargs key"),
        E("\x9c\x01\xa1x\xa1" "f\x90\xc0\xa0\xc0\xc0\x00\x00\xc0\xc0",
          "queue", "empty queue"),
        E("\x9c\x01\xa1x\xa1" "f\x90\xc0\xa1q\xa1.\xc0\x00\x00\xc0\xc0",
          "name", "bad name"),
        E("\x9c\x01\xa1x\xa1" "f\x90\xc0\xa1q\xc0\xa1x\x00\x00\xc0\xc0",
          "url", "relative url"),
        E("\x9c\x01\xa1x\xa1" "f\x90\xc0\xa1q\xc0\xc0\xff\x00\xc0\xc0",
          "created_ms", "negative created"),
        E("\x9c\x01\xa1x\xa1" "f\x90\xc0\xa1q\xc0\xc0\x00\xa1" "1\xc0\xc0",
          "eta_ms", "string eta"),
        E("\x9c\x01\xa1x\xa1" "f\x90\xc0\xa1q\xc0\xc0\x00\x00\x81\xa1h\x01\xc0",
          "headers", "integer header value"),
        E("\x9c\x01\xa1x\xa1" "f\x90\xc0\xa1q\xc0\xc0\x00\x00\xc0\x94\x01\x01"
          "\x01\x01", "retry", "4 retry values"),
        E("\x9c\x01\xa1x\xa1" "f\x90\xc0\xa1q\xc0\xc0\x00\x00\xc0\x95\x01\x01"
          "\x01\x01\xfd", "retry", "retry value -3"),
#undef E
    };
    dq_envelope_t env;
    dq_error_t    err;
    size_t        i;
    int           rc;

    is_int(dq_envelope_decode("\x9c\x01\xa1x\xa1" "f\x90\xc0\xa1q\xc0\xc0\x00"
                              "\x00\xc0\xc0", 16, dq_str_lit("x"),
                              dq_str_lit("q"), &lim, &zone, &env, &err),
           DQ_OK, "the hand-made version 1 case decodes");
    ok(env.version == 1 && dq_str_eq(env.id, "x") && dq_str_eq(env.queue, "q")
       && dq_str_eq(env.func, "f") && env.name.ptr == NULL
       && dq_str_eq(env.url, DQ_DEFAULT_URL),
       "version 1: its fields where version 2 has them");
    is_int(dq_envelope_decode("\x9c\x01\xa1x\xa1" "f\x90\xc0\xa1q\xa2nm\xa2/u"
                              "\x07\x08\xc0\xc0", 20, dq_str_lit("x"),
                              dq_str_lit("q"), &lim, &zone, &env, &err),
           DQ_OK, "version 1 with name and url");
    ok(dq_str_eq(env.name, "nm") && dq_str_eq(env.url, "/u")
       && env.created_ms == 7 && env.eta_ms == 8,
       "version 1: name, url, created, eta read after the queue");
    is_int(dq_envelope_decode("\x9a\x02\xa1" "f\x90\xc0\xc0\xc0\x00\x00\xc0"
                              "\xc0", 12, dq_str_lit("x"), dq_str_lit("q"),
                              &lim, &zone, &env, &err),
           DQ_OK, "the hand-made version 2 case decodes");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&err, 0, sizeof(err));
        rc = dq_envelope_decode(cases[i].bytes, cases[i].len,
                                dq_str_lit("x"), dq_str_lit("q"), &lim,
                                &zone, &env, &err);
        ok(rc == DQ_EDECODE && strcmp(err.field, cases[i].field) == 0,
           "%s refused, field '%s' (%s)", cases[i].what, cases[i].field,
           err.msg);
    }
}

/* dq_envelope_encode writes the bytes msgpack-c's packer wrote (the
 * reference in ref_envelope.h), for every part and every size form */
static void
test_same_bytes(void)
{
    static char     big[80000];
    static char     json[90000];
    static const char *bodies[] = {
        "{\"func\":\"f\"}",
        "{\"func\":\"bench.noop\",\"args\":[\"hello\",1]}",
        "{\"func\":\"f\",\"args\":[0,-1,-32,-33,127,128,255,256,-128,"
        "-129,65535,65536,-32768,-32769,4294967295,4294967296,-2147483648,"
        "-2147483649,9223372036854775807,-9223372036854775808,1.5,-0.0,"
        "1e300,true,false,null,\"\",[],{}],"
        "\"kwargs\":{\"a\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17],"
        "\"b\":{\"x\":{\"y\":[[[\"deep\"]]]}}},"
        "\"name\":\"n-1\",\"url\":\"/x/y\",\"eta\":1700000000.5,"
        "\"headers\":{\"X-A\":\"1\",\"X-B\":\"\"},"
        "\"retry_options\":{\"task_retry_limit\":5,"
        "\"task_age_limit\":86400,\"min_backoff_seconds\":0.1,"
        "\"max_backoff_seconds\":3600,\"max_doublings\":16}}",
        "{\"func\":\"f\",\"retry_options\":{\"max_doublings\":0}}",
        "{\"func\":\"f\",\"countdown\":5}",
    };
    msgpack_sbuffer mine, want;
    dq_error_t      err;
    size_t          i, k, len[] = { 31, 32, 255, 256, 40000 };
    int64_t         created[] = { 0, 1700000000123LL, -1, -40000, INT64_MAX };
    int             rc;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]) + 5; i++) {
        const char *js = bodies[i % (sizeof(bodies) / sizeof(bodies[0]))];

        if (i >= sizeof(bodies) / sizeof(bodies[0])) {
            /* a string argument of each str size form parse() keeps (str
             * 32 in test_msgpack), and a map of 16+ */
            k = len[i - sizeof(bodies) / sizeof(bodies[0])];
            memset(big, 'a', k);
            big[k] = '\0';
            snprintf(json, sizeof(json), "{\"func\":\"f\",\"args\":[\"%s\"],"
                     "\"kwargs\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4,"
                     "\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,"
                     "\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,"
                     "\"p\":16}}", big);
            js = json;
        }
        rc = parse(js, &err);
        if (rc != DQ_OK) {
            ok(0, "parse %zu: %s", i, err.msg);
            continue;
        }
        for (k = 0; k < sizeof(created) / sizeof(created[0]); k++) {
            msgpack_sbuffer_init(&mine);
            msgpack_sbuffer_init(&want);
            msgpack_sbuffer_write(&mine, "pre", 3);
            msgpack_sbuffer_write(&want, "pre", 3);
            rc = dq_envelope_encode(&reqs[0], -1, created[k], NULL, &mine,
                                    &err);
            ok(rc == DQ_OK && ref_envelope(&reqs[0], created[k], &want) == 0
               && mine.size == want.size
               && memcmp(mine.data, want.data, mine.size) == 0,
               "envelope %zu, created %lld: msgpack-c's bytes (%zu)", i,
               (long long) created[k], mine.size);
            msgpack_sbuffer_destroy(&mine);
            msgpack_sbuffer_destroy(&want);
        }
    }

    /* pre-packed args and kwargs (the C client's) are copied as they are */
    dq_request_init(&reqs[0]);
    reqs[0].func = dq_str_lit("f");
    reqs[0].args_raw = dq_str_lit("\x92\x01\xa1x");
    reqs[0].kwargs_raw = dq_str_lit("\x81\xa1k\xc3");
    msgpack_sbuffer_init(&mine);
    msgpack_sbuffer_init(&want);
    rc = dq_envelope_encode(&reqs[0], -1, 5, NULL, &mine, &err);
    ok(rc == DQ_OK && ref_envelope(&reqs[0], 5, &want) == 0
       && mine.size == want.size
       && memcmp(mine.data, want.data, mine.size) == 0,
       "pre-packed args and kwargs: msgpack-c's bytes (%zu)", mine.size);
    msgpack_sbuffer_destroy(&mine);
    msgpack_sbuffer_destroy(&want);
}

/* an accepted request's envelope decodes with the same limits, also when
 * the request held all the elements max_items allows (the envelope adds
 * its own fields; found by fuzz_request, 2026-11-30) */
static void
test_items_at_limit(void)
{
    static char     json[1024];
    msgpack_sbuffer sb;
    msgpack_zone    z;
    dq_envelope_t   env;
    dq_error_t      err;
    size_t          off, k;
    int             rc;

    lim.max_items = 100;
    off = (size_t) snprintf(json, sizeof(json),
                            "{\"func\":\"f\",\"retry_options\":"
                            "{\"max_doublings\":1},\"args\":[");
    /* 2 + 2 + 2 + 2 items before the args' elements */
    for (k = 0; k < 92; k++) {
        off += (size_t) snprintf(json + off, sizeof(json) - off, "%s1",
                                 k ? "," : "");
    }
    snprintf(json + off, sizeof(json) - off, "]}");
    rc = parse(json, &err);
    is_int(rc, DQ_OK, "a request of exactly max_items elements (%s)",
           rc ? err.msg : "ok");
    msgpack_sbuffer_init(&sb);
    msgpack_zone_init(&z, 1024);
    rc = rc ? rc : dq_envelope_encode(&reqs[0], -1, 1, &lim, &sb, &err);
    rc = rc ? rc : dq_envelope_decode(sb.data, sb.size, dq_str_lit("id"),
                                      dq_str_lit("q"), &lim, &z, &env,
                                      &err);
    ok(rc == DQ_OK && env.args->via.array.size == 92,
       "its envelope decodes with the same limits (%s)",
       rc ? err.msg : "ok");
    msgpack_zone_destroy(&z);
    msgpack_sbuffer_destroy(&sb);
    dq_limits_default(&lim);
}

/* A batch's raised max_items lets one task hold more elements than the
 * worker's decoder takes: the encoder bounds each task's args, kwargs and
 * headers by its own max_items (the module's 413, review6-RH2 1). */
static void
test_items_per_task(void)
{
    static char     json[1024];
    msgpack_sbuffer sb;
    msgpack_zone    z;
    dq_envelope_t   env;
    dq_limits_t     dec;
    dq_error_t      err;
    size_t          off, k, n;
    int             rc;

    for (n = 100; n <= 101; n++) {
        lim.max_items = 1000;           /* the body's bound, raised */
        off = (size_t) snprintf(json, sizeof(json),
                                "{\"func\":\"f\",\"headers\":{\"a\":\"b\"},"
                                "\"kwargs\":{\"k\":[1]},\"args\":[");
        /* 2 (headers) + 3 (kwargs) + the args' elements */
        for (k = 0; k < n - 5; k++) {
            off += (size_t) snprintf(json + off, sizeof(json) - off, "%s1",
                                     k ? "," : "");
        }
        snprintf(json + off, sizeof(json) - off, "]}");
        rc = parse(json, &err);
        is_int(rc, DQ_OK, "%zu elements parse under the raised bound", n);

        lim.max_items = 100;            /* each task's: the decoder's */
        msgpack_sbuffer_init(&sb);
        rc = dq_envelope_encode(&reqs[0], -1, 1, &lim, &sb, &err);
        if (n == 101) {
            ok(rc == DQ_ETOOBIG && sb.size == 0
               && strstr(err.msg, "101 elements") != NULL
               && strstr(err.msg, "more than 100 elements") != NULL,
               "101 elements: refused, nothing written (%s)", err.msg);
        } else {
            dec = lim;
            msgpack_zone_init(&z, 1024);
            rc = rc ? rc : dq_envelope_decode(sb.data, sb.size,
                                              dq_str_lit("id"),
                                              dq_str_lit("q"), &dec, &z,
                                              &env, &err);
            ok(rc == DQ_OK && env.args->via.array.size == 95,
               "100 elements: encoded, and decodes with max_items 100 (%s)",
               rc ? err.msg : "ok");
            msgpack_zone_destroy(&z);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    dq_limits_default(&lim);
}

int
main(void)
{
    dq_limits_default(&lim);
    msgpack_zone_init(&zone, 4096);
    test_request();
    test_envelope();
    test_decode_checks();
    test_same_bytes();
    test_items_at_limit();
    test_items_per_task();
    msgpack_zone_destroy(&zone);
    return done_testing();
}
