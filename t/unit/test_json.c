/*
 * JSON -> msgpack: every JSON type, integers kept as integers, strings
 * with NUL, duplicate keys, malformed text with its position, depth,
 * element and size limits, nothing appended on failure.
 */
#include <string.h>

#include "dq_contract.h"
#include "tap.h"

static dq_limits_t lim;

static int
conv(const char *json, msgpack_zone *zone, msgpack_object *o,
     msgpack_sbuffer *sb, dq_error_t *err)
{
    int rc;

    msgpack_sbuffer_clear(sb);
    rc = dq_json_to_msgpack(json, strlen(json), &lim, sb, err);
    if (rc == DQ_OK) {
        rc = dq_msgpack_unpack(sb->data, sb->size, &lim, zone, o, err);
    }
    return rc;
}

int
main(void)
{
    msgpack_sbuffer sb;
    msgpack_zone    zone;
    msgpack_object  o;
    const msgpack_object *a;
    dq_error_t      err;
    char            deep[200];
    int             i, rc;

    dq_limits_default(&lim);
    msgpack_sbuffer_init(&sb);
    msgpack_zone_init(&zone, 4096);

    rc = conv("[1, -2, 9223372036854775807, -9223372036854775808, 1.5, "
              "\"s\\u0000t\", true, false, null, {\"k\": [ ]}, \"\\u00e9\"]",
              &zone, &o, &sb, &err);
    is_int(rc, DQ_OK, "every JSON type converts");
    a = o.via.array.ptr;
    ok(o.type == MSGPACK_OBJECT_ARRAY && o.via.array.size == 11, "array");
    ok(a[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[0].via.u64 == 1,
       "1 is an integer");
    ok(a[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER && a[1].via.i64 == -2,
       "-2 is a negative integer");
    ok(a[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER
       && a[2].via.u64 == 9223372036854775807ULL, "int64 max exact");
    ok(a[3].type == MSGPACK_OBJECT_NEGATIVE_INTEGER
       && a[3].via.i64 == INT64_MIN, "int64 min exact");
    ok(a[4].type == MSGPACK_OBJECT_FLOAT64 && a[4].via.f64 == 1.5,
       "real -> float64");
    ok(a[5].type == MSGPACK_OBJECT_STR && a[5].via.str.size == 3
       && memcmp(a[5].via.str.ptr, "s\0t", 3) == 0, "string with NUL");
    ok(a[6].type == MSGPACK_OBJECT_BOOLEAN && a[6].via.boolean
       && a[7].type == MSGPACK_OBJECT_BOOLEAN && !a[7].via.boolean,
       "booleans");
    ok(a[8].type == MSGPACK_OBJECT_NIL, "null -> nil");
    ok(a[9].type == MSGPACK_OBJECT_MAP && dq_map_get(&a[9], "k")
       && dq_map_get(&a[9], "k")->type == MSGPACK_OBJECT_ARRAY,
       "object -> map with string keys");
    ok(a[10].via.str.size == 2 && memcmp(a[10].via.str.ptr, "\xc3\xa9", 2) == 0,
       "unicode escape -> UTF-8");

    is_int(conv("{\"a\":1,\"a\":2}", &zone, &o, &sb, &err), DQ_EDECODE,
           "duplicate keys refused");
    ok(strstr(err.msg, "duplicate") != NULL, "%s", err.msg);
    is_int(conv("9223372036854775808", &zone, &o, &sb, &err), DQ_EDECODE,
           "integer over int64 refused (not rounded)");
    is_int(conv("{\"a\": [1, 2,]}", &zone, &o, &sb, &err), DQ_EDECODE,
           "malformed JSON refused");
    ok(strstr(err.msg, "line 1") && strstr(err.msg, "column"),
       "error gives the position: %s", err.msg);
    is_int(conv("{} x", &zone, &o, &sb, &err), DQ_EDECODE,
           "trailing garbage refused");
    is_int(conv("", &zone, &o, &sb, &err), DQ_EDECODE, "empty refused");
    is_int(conv("\"\xff\"", &zone, &o, &sb, &err), DQ_EDECODE,
           "invalid UTF-8 refused");
    is_int(conv("7", &zone, &o, &sb, &err), DQ_OK, "a bare scalar converts");

    for (i = 0; i < 33; i++) {
        deep[i] = '[';
    }
    for (i = 0; i < 33; i++) {
        deep[33 + i] = ']';
    }
    deep[66] = '\0';
    msgpack_sbuffer_clear(&sb);
    is_int(dq_json_to_msgpack(deep, 66, &lim, &sb, &err), DQ_EDECODE,
           "33 nested arrays refused");
    ok(sb.size == 0, "nothing appended on failure (%s)", err.msg);
    is_int(conv(deep + 1, &zone, &o, &sb, &err), DQ_EDECODE,
           "still unbalanced -> malformed");
    deep[65] = '\0';
    is_int(conv(deep + 1, &zone, &o, &sb, &err), DQ_OK,
           "32 nested arrays accepted");

    {
        /* limits hold before jansson builds a tree */
        static char txt[300000];
        size_t      k, off = 0;

        txt[off++] = '[';
        for (k = 0; k < 70000; k++) {
            txt[off++] = '1';
            txt[off++] = ',';
        }
        txt[off - 1] = ']';
        txt[off] = '\0';
        is_int(conv(txt, &zone, &o, &sb, &err), DQ_ETOOBIG,
               "70000 elements refused (%s)", err.msg);
        for (k = 0; k < 3000; k++) {
            txt[k] = '[';
            txt[3000 + k] = ']';
        }
        txt[6000] = '\0';
        is_int(conv(txt, &zone, &o, &sb, &err), DQ_EDECODE,
               "3000 nested arrays refused");
        ok(strstr(err.msg, "deeper") != NULL, "by the depth limit: %s",
           err.msg);
        off = 0;
        txt[off++] = '[';
        txt[off++] = '"';
        for (k = 0; k < 100000; k++) {
            txt[off++] = k % 2 ? ',' : '\\';
            txt[off++] = k % 2 ? '[' : '"';
        }
        txt[off++] = '"';
        txt[off++] = ']';
        txt[off] = '\0';
        is_int(conv(txt, &zone, &o, &sb, &err), DQ_OK,
               "commas, brackets and escaped quotes inside a string "
               "are not elements");
        ok(o.via.array.size == 1 && o.via.array.ptr[0].via.str.size == 150000,
           "the string survived (%u bytes)",
           (unsigned) o.via.array.ptr[0].via.str.size);
    }

    lim.max_items = 3;
    is_int(conv("[1,2,3]", &zone, &o, &sb, &err), DQ_OK, "3 items at limit 3");
    is_int(conv("[1,2,3,4]", &zone, &o, &sb, &err), DQ_ETOOBIG,
           "4 items over limit 3");
    is_int(conv("{\"a\":1,\"b\":2}", &zone, &o, &sb, &err), DQ_ETOOBIG,
           "a map counts keys and values");
    dq_limits_default(&lim);
    lim.max_envelope = 10;
    is_int(conv("[1,2,3,4,5,6]", &zone, &o, &sb, &err), DQ_ETOOBIG,
           "text over max_envelope refused");
    dq_limits_default(&lim);

    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
    return done_testing();
}
