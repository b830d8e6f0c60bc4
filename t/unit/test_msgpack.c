/*
 * The strict msgpack decoder over hostile input: truncation at every
 * offset, huge container and string lengths, deep nesting, trailing bytes,
 * invalid bytes, element limits, random mutations. No crash, no leak (the
 * sanitizer build), and no allocation before the pre-scan accepted the
 * bytes (the caller's zone is untouched when input is refused).
 */
#include <stdlib.h>
#include <string.h>

#include "dq_contract.h"
#include "tap.h"

static dq_limits_t lim;

/* Decode into a fresh zone; *touched = 1 if the zone allocated. */
static int
decode(const void *buf, size_t len, int *touched, dq_error_t *err)
{
    msgpack_zone   zone;
    msgpack_object obj;
    char          *ptr0;
    size_t         free0;
    int            rc;

    msgpack_zone_init(&zone, 256);
    ptr0 = zone.chunk_list.ptr;
    free0 = zone.chunk_list.free;
    rc = dq_msgpack_unpack(buf, len, &lim, &zone, &obj, err);
    if (touched) {
        *touched = zone.chunk_list.ptr != ptr0 || zone.chunk_list.free != free0;
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

static int
envdecode(const void *buf, size_t len, dq_error_t *err)
{
    msgpack_zone  zone;
    dq_envelope_t env;
    int           rc;

    msgpack_zone_init(&zone, 256);
    rc = dq_envelope_decode(buf, len, dq_str_lit("id"), dq_str_lit("q"), &lim,
                            &zone, &env, err);
    msgpack_zone_destroy(&zone);
    return rc;
}

/* A valid envelope with every optional part present. */
static void
sample(msgpack_sbuffer *sb)
{
    msgpack_sbuffer args;
    msgpack_packer  pk;
    dq_request_t    req;
    dq_error_t      err;

    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int64(&pk, -5);
    msgpack_pack_str_with_body(&pk, "hello", 5);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "k", 1);
    msgpack_pack_double(&pk, 2.5);
    msgpack_pack_bin_with_body(&pk, "\0\1", 2);

    dq_request_init(&req);
    req.func = dq_str_lit("counter.add");
    req.name = dq_str_lit("nm");
    req.url = dq_str_lit("/custom");
    req.args_raw.ptr = args.data;
    req.args_raw.len = args.size;
    req.kwargs_raw = dq_str_lit("\x81\xa1x\x01");
    req.eta_ms = 1790000000123LL;
    req.retry.retry_limit = 3;
    dq_envelope_encode(&req, -1, 1700000000000LL, &lim,
                       sb, &err);
    msgpack_sbuffer_destroy(&args);
}

/* dq_msgpack_write == msgpack_pack_object, dq_msgpack_size its length */
static int
same_as_msgpack_c(const msgpack_object *o)
{
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    size_t          n = dq_msgpack_size(o);
    char           *mine = malloc(n + 1), *end;
    int             same;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    end = dq_msgpack_write(mine, o);
    same = msgpack_pack_object(&pk, *o) == 0 && (size_t) (end - mine) == n
           && sb.size == n && memcmp(sb.data, mine, n) == 0;
    msgpack_sbuffer_destroy(&sb);
    free(mine);
    return same;
}

static void
test_writer(void)
{
    static const int64_t ints[] = {
        0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 4294967295LL,
        4294967296LL, INT64_MAX, -1, -31, -32, -33, -127, -128, -129,
        -32767, -32768, -32769, -2147483647LL, -2147483648LL,
        -2147483649LL, INT64_MIN
    };
    static const size_t lens[] = {
        0, 1, 2, 3, 4, 5, 8, 15, 16, 17, 31, 32, 255, 256, 65535, 65536
    };
    static char         bytes[70000];
    msgpack_object      o, *elems;
    msgpack_object_kv  *kvs;
    size_t              i, k;
    int                 good = 1;

    for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        o.type = ints[i] < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER
                             : MSGPACK_OBJECT_POSITIVE_INTEGER;
        o.via.i64 = ints[i];
        if (!same_as_msgpack_c(&o)) {
            good = 0;
            diag("integer %lld", (long long) ints[i]);
        }
    }
    o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o.via.u64 = UINT64_MAX;
    good &= same_as_msgpack_c(&o);
    ok(good, "writer: every integer form as msgpack-c packs it");

    good = 1;
    memset(bytes, 'b', sizeof(bytes));
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        o.type = MSGPACK_OBJECT_STR;
        o.via.str.size = (uint32_t) lens[i];
        o.via.str.ptr = bytes;
        good &= same_as_msgpack_c(&o);
        o.type = MSGPACK_OBJECT_BIN;
        o.via.bin.size = (uint32_t) lens[i];
        o.via.bin.ptr = bytes;
        good &= same_as_msgpack_c(&o);
        o.type = MSGPACK_OBJECT_EXT;
        o.via.ext.type = -7;
        o.via.ext.size = (uint32_t) lens[i];
        o.via.ext.ptr = bytes;
        good &= same_as_msgpack_c(&o);
        if (!good) {
            diag("length %zu", lens[i]);
            break;
        }
    }
    ok(good, "writer: str, bin and ext of every header form");

    o.type = MSGPACK_OBJECT_FLOAT64;
    o.via.f64 = -1.25e300;
    good = same_as_msgpack_c(&o);
    o.type = MSGPACK_OBJECT_FLOAT32;
    o.via.f64 = 3.5;
    good &= same_as_msgpack_c(&o);
    o.type = MSGPACK_OBJECT_NIL;
    good &= same_as_msgpack_c(&o);
    o.type = MSGPACK_OBJECT_BOOLEAN;
    o.via.boolean = true;
    good &= same_as_msgpack_c(&o);
    o.via.boolean = false;
    good &= same_as_msgpack_c(&o);
    ok(good, "writer: floats, nil, booleans");

    /* containers of 0, 15, 16, 65535 and 65536 elements, nested */
    elems = calloc(65536, sizeof(msgpack_object));
    kvs = calloc(65536, sizeof(msgpack_object_kv));
    for (k = 0; k < 65536; k++) {
        elems[k].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        elems[k].via.u64 = k;
        kvs[k].key.type = MSGPACK_OBJECT_STR;
        kvs[k].key.via.str.size = 3;
        kvs[k].key.via.str.ptr = bytes;
        kvs[k].val = elems[k];
    }
    good = 1;
    for (i = 0; i < 5; i++) {
        static const uint32_t sizes[] = { 0, 15, 16, 65535, 65536 };

        o.type = MSGPACK_OBJECT_ARRAY;
        o.via.array.size = sizes[i];
        o.via.array.ptr = elems;
        good &= same_as_msgpack_c(&o);
        o.type = MSGPACK_OBJECT_MAP;
        o.via.map.size = sizes[i];
        o.via.map.ptr = kvs;
        good &= same_as_msgpack_c(&o);
    }
    elems[3].type = MSGPACK_OBJECT_MAP;     /* [.., {.., [...]}, ..] */
    elems[3].via.map.size = 20;
    elems[3].via.map.ptr = kvs;
    kvs[5].val.type = MSGPACK_OBJECT_ARRAY;
    kvs[5].val.via.array.size = 17;
    kvs[5].val.via.array.ptr = elems + 100;
    o.type = MSGPACK_OBJECT_ARRAY;
    o.via.array.size = 18;
    o.via.array.ptr = elems;
    good &= same_as_msgpack_c(&o);
    ok(good, "writer: arrays and maps of every header form, nested");
    free(elems);
    free(kvs);
}

int
main(void)
{
    msgpack_sbuffer sb;
    dq_error_t      err;
    unsigned char   buf[256], *big;
    size_t          i, bad = 0, touched_n = 0;
    int             rc, touched, k;
    unsigned        seed = 12345;

    dq_limits_default(&lim);
    msgpack_sbuffer_init(&sb);
    sample(&sb);
    is_int(envdecode(sb.data, sb.size, &err), DQ_OK, "sample envelope decodes");

    /* truncated at every offset */
    for (i = 0; i < sb.size; i++) {
        rc = decode(sb.data, i, &touched, &err);
        bad += rc == DQ_OK;
        touched_n += touched;
        bad += envdecode(sb.data, i, &err) == DQ_OK;
    }
    is_int(bad, 0, "every truncation (%zu offsets) refused", sb.size);
    is_int(touched_n, 0, "no allocation for any truncated input");
    rc = decode(sb.data, sb.size - 1, NULL, &err);
    ok(rc == DQ_EDECODE && (strstr(err.msg, "truncated")
                            || strstr(err.msg, "exceeds the input")),
       "message: %s", err.msg);

    /* trailing bytes */
    memcpy(buf, sb.data, sb.size);
    buf[sb.size] = 0xc0;
    is_int(decode(buf, sb.size + 1, &touched, &err), DQ_EDECODE,
           "one trailing byte refused");
    ok(strstr(err.msg, "trailing") != NULL, "message: %s", err.msg);
    ok(!touched, "refused before allocating");

    /* huge container headers: 5 bytes must not reserve gigabytes */
    is_int(decode("\xdd\xff\xff\xff\xff", 5, &touched, &err), DQ_EDECODE,
           "array32 of 4G elements refused");
    ok(!touched, "no allocation for it (%s)", err.msg);
    is_int(decode("\xdf\xff\xff\xff\xff", 5, &touched, &err), DQ_EDECODE,
           "map32 of 4G pairs refused");
    ok(!touched, "no allocation for it");
    is_int(decode("\xdc\x00\x03\xc0\xc0", 5, &touched, &err), DQ_EDECODE,
           "array16 of 3 with 2 elements refused");
    is_int(decode("\x82\xc0\xc0\xc0", 4, NULL, &err), DQ_EDECODE,
           "fixmap of 2 pairs with 3 objects refused");
    is_int(decode("\xdb\xff\xff\xff\xff" "abc", 8, &touched, &err), DQ_EDECODE,
           "str32 of 4 GiB refused");
    ok(!touched, "no allocation for it");
    is_int(decode("\xc6\x00\x00\x00\x05" "ab", 7, NULL, &err), DQ_EDECODE,
           "bin32 longer than the input refused");
    is_int(decode("\xc9\x00\x00\x00\x02\x01" "a", 7, NULL, &err), DQ_EDECODE,
           "ext32 longer than the input refused");
    is_int(decode("\xd8\x01" "0123456789abcde", 17, NULL, &err), DQ_EDECODE,
           "fixext16 one byte short refused");
    is_int(decode("\xd8\x01" "0123456789abcdef", 18, NULL, &err), DQ_OK,
           "fixext16 accepted");
    is_int(decode("\xc1", 1, NULL, &err), DQ_EDECODE, "0xc1 refused");
    ok(strstr(err.msg, "0xc1") != NULL, "message names the byte: %s",
       err.msg);
    is_int(decode("", 0, NULL, &err), DQ_EDECODE, "empty input refused");
    is_int(decode("\xcb\x00\x00", 3, NULL, &err), DQ_EDECODE,
           "short float64 refused");

    /* nesting */
    memset(buf, 0x91, 40);
    buf[40] = 0xc0;
    is_int(decode(buf, 41, &touched, &err), DQ_EDECODE,
           "40 nested arrays refused");
    ok(!touched && strstr(err.msg, "deeper"), "before allocating: %s",
       err.msg);
    buf[33] = 0xc0;
    lim.max_depth = 100;
    is_int(decode(buf, 34, NULL, &err), DQ_EDECODE,
           "33 nested arrays refused even with max_depth 100 (msgpack-c's "
           "stack holds 32)");
    dq_limits_default(&lim);
    buf[32] = 0xc0;
    is_int(decode(buf, 33, NULL, &err), DQ_OK,
           "32 nested arrays accepted (the default limit)");
    lim.max_depth = 4;
    buf[4] = 0xc0;
    is_int(decode(buf, 5, NULL, &err), DQ_OK, "4 levels with max_depth 4");
    buf[4] = 0x91;
    buf[5] = 0xc0;
    is_int(decode(buf, 6, NULL, &err), DQ_EDECODE, "5 levels refused");
    dq_limits_default(&lim);

    /* element and size limits */
    big = malloc(70000);
    big[0] = 0xdd;
    big[1] = 0;
    big[2] = 1;
    big[3] = 0;
    big[4] = 0;                          /* array32 of 65536 */
    memset(big + 5, 0xc0, 65536);
    is_int(decode(big, 5 + 65536, NULL, &err), DQ_OK,
           "65536 elements accepted");
    big[4] = 1;
    big[5 + 65536] = 0xc0;
    is_int(decode(big, 6 + 65536, &touched, &err), DQ_ETOOBIG,
           "65537 elements refused");
    ok(!touched, "before allocating: %s", err.msg);
    lim.max_envelope = 100;
    is_int(decode(big, 101, NULL, &err), DQ_ETOOBIG,
           "input over max_envelope refused");
    dq_limits_default(&lim);
    free(big);

    /* random mutations of a valid envelope: never a crash */
    bad = 0;
    for (k = 0; k < 20000; k++) {
        memcpy(buf, sb.data, sb.size);
        for (i = 0; i < 3; i++) {
            seed = seed * 1103515245 + 12345;
            buf[(seed >> 8) % sb.size] = (unsigned char) (seed >> 16);
        }
        seed = seed * 1103515245 + 12345;
        rc = envdecode(buf, sb.size - (seed >> 8) % 3, &err);
        bad += rc != DQ_OK && rc != DQ_EDECODE && rc != DQ_ETOOBIG;
    }
    is_int(bad, 0, "20000 mutated envelopes: ok or a decode error");

    /* dq_map_get */
    {
        msgpack_zone   zone;
        msgpack_object o;
        msgpack_zone_init(&zone, 256);
        dq_msgpack_unpack("\x82\xa1" "a\x01\x01\x02", 6, &lim, &zone, &o,
                          &err);
        ok(dq_map_get(&o, "a") && dq_map_get(&o, "a")->via.u64 == 1,
           "dq_map_get finds a string key");
        ok(dq_map_get(&o, "b") == NULL, "absent key: NULL");
        ok(dq_map_get(NULL, "a") == NULL, "NULL map: NULL");
        msgpack_zone_destroy(&zone);
    }
    msgpack_sbuffer_destroy(&sb);
    test_writer();
    return done_testing();
}
