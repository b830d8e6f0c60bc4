/*
 * JSON -> msgpack: every JSON type, integers kept as integers, strings
 * with NUL, duplicate keys, malformed text with its position, depth,
 * element and size limits, nothing appended on failure. Then what a
 * one-pass converter must survive: deep nesting, huge numbers, long
 * strings and numbers, escapes and UTF-8 at every edge, containers whose
 * headers widen (16+ and 65536+ elements, nested), duplicate keys in
 * large maps, all byte-compared with msgpack-c's own packer.
 */
#include <stdio.h>
#include <string.h>

#include "dq_contract.h"
#include "json_pack.h"
#include "tap.h"

static dq_limits_t lim;

static int conv_len(const char *json, size_t len, msgpack_zone *zone,
                    msgpack_object *o, msgpack_sbuffer *sb, dq_error_t *err);

static int
conv(const char *json, msgpack_zone *zone, msgpack_object *o,
     msgpack_sbuffer *sb, dq_error_t *err)
{
    int rc;

    msgpack_sbuffer_clear(sb);
    rc = test_json_pack(json, strlen(json), &lim, sb, err);
    if (rc == DQ_OK) {
        rc = dq_msgpack_unpack(sb->data, sb->size, &lim, zone, o, err);
    }
    return rc;
}

/* refused with DQ_EDECODE and a message holding `what` */
static void
refused(const char *json, size_t len, const char *what, const char *name)
{
    msgpack_sbuffer sb;
    dq_error_t      err;
    int             rc;

    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_write(&sb, "x", 1);
    rc = test_json_pack(json, len, &lim, &sb, &err);
    ok(rc == DQ_EDECODE && strstr(err.msg, what) != NULL && sb.size == 1,
       "%s: %s", name, rc == DQ_OK ? "accepted" : err.msg);
    msgpack_sbuffer_destroy(&sb);
}

/* converts to exactly the bytes msgpack-c packs for the same value */
static void
same_bytes(const char *json, size_t len, const msgpack_sbuffer *want,
           const char *name)
{
    msgpack_sbuffer sb;
    dq_error_t      err;
    int             rc;

    msgpack_sbuffer_init(&sb);
    rc = test_json_pack(json, len, &lim, &sb, &err);
    ok(rc == DQ_OK && sb.size == want->size
       && memcmp(sb.data, want->data, sb.size) == 0, "%s (%zu bytes%s%s)",
       name, sb.size, rc == DQ_OK ? "" : ": ", rc == DQ_OK ? "" : err.msg);
    msgpack_sbuffer_destroy(&sb);
}

static void
hostile(msgpack_zone *zone, msgpack_object *o, msgpack_sbuffer *sb)
{
    static char     txt[1300000];
    msgpack_sbuffer want;
    msgpack_packer  pk;
    dq_error_t      err;
    size_t          k, off;
    char            key[32];
    int             n;

    /* numbers */
    refused("-9223372036854775809", 20, "int64", "int64 min - 1 refused");
    refused("18446744073709551616", 20, "int64", "2^64 refused");
    refused("1e400", 5, "overflow", "a real beyond double refused");
    refused("-1e400", 6, "overflow", "a negative one too");
    refused("01", 2, "leading zero", "a leading zero refused");
    refused("1.", 2, "invalid number", "a dot without digits refused");
    refused(".5", 2, "invalid token", "a dot first refused");
    refused("-", 1, "invalid number", "a lone minus refused");
    refused("1e", 2, "invalid number", "an exponent without digits");
    refused("NaN", 3, "invalid token", "NaN refused");
    txt[0] = '1';
    memset(txt + 1, '0', 99999);
    refused(txt, 100000, "int64", "a 100,000-digit integer refused");
    memcpy(txt, "0.", 2);
    memset(txt + 2, '0', 99997);
    txt[99999] = '1';
    is_int(conv_len(txt, 100000, zone, o, sb, &err), DQ_OK,
           "a 100,000-character real converts");
    ok(o->type == MSGPACK_OBJECT_FLOAT64 && o->via.f64 == 0.0,
       "(it underflows to 0, as strtod says)");
    is_int(conv("[-0, 0.0, 1E2, -1.5e-3]", zone, o, sb, &err), DQ_OK,
           "number forms");
    ok(o->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER
       && o->via.array.ptr[2].type == MSGPACK_OBJECT_FLOAT64
       && o->via.array.ptr[2].via.f64 == 100.0
       && o->via.array.ptr[3].via.f64 == -1.5e-3,
       "-0 is the integer 0, 1E2 the real 100");

    /* strings: escapes and UTF-8 at every edge */
    refused("\"\\ud800\"", 8, "invalid Unicode", "lone high surrogate");
    refused("\"\\udc00\"", 8, "invalid Unicode", "lone low surrogate");
    refused("\"\\ud800\\u0041\"", 14, "invalid Unicode",
            "high surrogate + not a low one");
    refused("\"\\ud800", 7, "invalid Unicode", "high surrogate at the end");
    refused("\"\\u12\"", 6, "\\u escape", "short \\u escape");
    refused("\"\\x\"", 4, "invalid escape", "unknown escape");
    refused("\"a\tb\"", 5, "control character", "raw tab in a string");
    refused("\"a\0b\"", 5, "control character", "raw NUL in a string");
    refused("\"\xc0\x80\"", 4, "UTF-8", "overlong NUL");
    refused("\"\xe0\x80\xaf\"", 5, "UTF-8", "overlong 3-byte");
    refused("\"\xed\xa0\x80\"", 5, "UTF-8", "an encoded surrogate");
    refused("\"\xf4\x90\x80\x80\"", 6, "UTF-8", "above U+10FFFF");
    refused("\"\xe2\x82\"", 4, "UTF-8", "a sequence cut by the quote");
    refused("\"\xe2\x82", 3, "UTF-8", "a sequence cut by the end");
    refused("\"abc", 4, "end of input", "an unterminated string");
    refused("{\"a\\u0000b\":1}", 14, "NUL byte in object key",
            "NUL in a key refused (as jansson did)");
    is_int(conv("\"\\ud83d\\ude00\\u20ac\\/\xf0\x9f\x98\x80\"", zone, o,
                sb, &err), DQ_OK, "surrogate pair, escapes, raw 4-byte");
    ok(o->via.str.size == 12
       && memcmp(o->via.str.ptr, "\xf0\x9f\x98\x80\xe2\x82\xac/"
                 "\xf0\x9f\x98\x80", 12) == 0, "decoded to UTF-8");

    /* a 1 MiB string of escapes: one value, decoded length exact */
    off = 0;
    txt[off++] = '"';
    for (k = 0; k < 200000; k++) {
        memcpy(txt + off, "\\u00e9", 6);
        off += 6;
    }
    txt[off++] = '"';
    lim.max_envelope = sizeof(txt);
    is_int(conv_len(txt, off, zone, o, sb, &err), DQ_OK,
           "1.2 MB of escapes in one string");
    ok(o->type == MSGPACK_OBJECT_STR && o->via.str.size == 400000,
       "400,000 bytes of UTF-8 (%u)", (unsigned) o->via.str.size);

    /* headers that widen: byte-compared with msgpack-c's packer */
    msgpack_sbuffer_init(&want);
    msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
    for (n = 0; n < 40; n += 1) {
        int i;

        off = 0;
        msgpack_sbuffer_clear(&want);
        txt[off++] = '[';
        msgpack_pack_array(&pk, (size_t) n);
        for (i = 0; i < n; i++) {
            off += (size_t) sprintf(txt + off, "%s{\"k\":[%d,\"s\"]}",
                                    i ? "," : "", i);
            msgpack_pack_map(&pk, 1);
            msgpack_pack_str(&pk, 1);
            msgpack_pack_str_body(&pk, "k", 1);
            msgpack_pack_array(&pk, 2);
            msgpack_pack_int64(&pk, i);
            msgpack_pack_str(&pk, 1);
            msgpack_pack_str_body(&pk, "s", 1);
        }
        txt[off++] = ']';
        if (n == 0 || n == 15 || n == 16 || n == 17 || n == 39) {
            snprintf(key, sizeof(key), "array of %d maps", n);
            same_bytes(txt, off, &want, key);
        }
    }
    /* nested: [[16 x 0], {17 pairs}, [20 x [16 x 1]]] */
    off = 0;
    msgpack_sbuffer_clear(&want);
    off += (size_t) sprintf(txt + off, "[[");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_array(&pk, 16);
    for (k = 0; k < 16; k++) {
        off += (size_t) sprintf(txt + off, "%s0", k ? "," : "");
        msgpack_pack_int64(&pk, 0);
    }
    off += (size_t) sprintf(txt + off, "],{");
    msgpack_pack_map(&pk, 17);
    for (k = 0; k < 17; k++) {
        n = snprintf(key, sizeof(key), "key%zu", k);
        off += (size_t) sprintf(txt + off, "%s\"%s\":%zu", k ? "," : "", key,
                                k * 1000);
        msgpack_pack_str(&pk, (size_t) n);
        msgpack_pack_str_body(&pk, key, (size_t) n);
        msgpack_pack_int64(&pk, (int64_t) k * 1000);
    }
    off += (size_t) sprintf(txt + off, "},[");
    msgpack_pack_array(&pk, 20);
    for (k = 0; k < 20; k++) {
        size_t i;

        off += (size_t) sprintf(txt + off, "%s[", k ? "," : "");
        msgpack_pack_array(&pk, 16);
        for (i = 0; i < 16; i++) {
            off += (size_t) sprintf(txt + off, "%s1", i ? "," : "");
            msgpack_pack_int64(&pk, 1);
        }
        txt[off++] = ']';
    }
    off += (size_t) sprintf(txt + off, "]]");
    same_bytes(txt, off, &want, "nested containers that all widen");

    /* 70,000 elements: a 5-byte header (limit raised) */
    lim.max_items = 200000;
    msgpack_sbuffer_clear(&want);
    off = 0;
    txt[off++] = '[';
    msgpack_pack_array(&pk, 70000);
    for (k = 0; k < 70000; k++) {
        off += (size_t) sprintf(txt + off, "%s%zu", k ? "," : "", k % 300);
        msgpack_pack_int64(&pk, (int64_t) (k % 300));
    }
    txt[off++] = ']';
    same_bytes(txt, off, &want, "70,000 elements: array32 header");

    /* duplicate keys in large maps: sorted when the map ends */
    msgpack_sbuffer_clear(&want);
    off = 0;
    txt[off++] = '{';
    msgpack_pack_map(&pk, 30000);
    for (k = 0; k < 30000; k++) {
        n = snprintf(key, sizeof(key), "k%zu", (k * 7919) % 30000);
        off += (size_t) sprintf(txt + off, "%s\"%s\":{\"%s\":1}",
                                k ? "," : "", key, key);
        msgpack_pack_str(&pk, (size_t) n);
        msgpack_pack_str_body(&pk, key, (size_t) n);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str(&pk, (size_t) n);
        msgpack_pack_str_body(&pk, key, (size_t) n);
        msgpack_pack_int64(&pk, 1);
    }
    txt[off++] = '}';
    same_bytes(txt, off, &want,
               "30,000 distinct keys, each repeated in its own inner map");
    memcpy(txt + off - 1, ",\"k0\":2}", 9);
    refused(txt, off + 8, "duplicate object key \"k0\"",
            "the same map with \"k0\" again at its end");
    refused("{\"a\":1,\"b\":2,\"a\":3}", 19,
            "line 1 column 14 (byte 14): duplicate object key \"a\"",
            "a small map's duplicate, at the key");
    refused("{\"\":1,\"\":2}", 13, "duplicate", "two empty keys");
    /* a long key quoted in the error is cut at a character boundary (59
     * ASCII bytes, then a 2-byte character across the 60-byte cut): the
     * message stays valid UTF-8, so the module's error body carries it */
    {
        static const char dup[] =
            "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\":1,"
            "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\":2}";

        refused(dup, sizeof(dup) - 1,
                "duplicate object key \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                "aaaaaaaaaaaaaaaaaa\"",
                "a long key's duplicate: the quote ends before the split character");
    }
    is_int(conv("{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":2}}", zone, o, sb,
                &err), DQ_OK, "the same key in different maps is fine");
    lim.max_items = 10;
    refused("{\"a\":1,\"b\":2,\"a\":3}", 19, "duplicate",
            "a duplicate within the element limit");
    dq_limits_default(&lim);
    msgpack_sbuffer_destroy(&want);

    /* positions over lines; junk after the value */
    refused("{\n  \"a\": tru\n}", 15, "line 2 column 8 (byte 10)",
            "error position on the second line");
    refused("[1] [2]", 7, "end of input expected", "two values refused");
    refused("\xef\xbb\xbf{}", 5, "invalid token", "a byte order mark refused");
    refused("  ", 2, "end of input", "only white space refused");
    refused("[1,]", 4, "invalid token", "a trailing comma refused");
    refused("{\"a\" 1}", 7, "':' expected", "a missing colon refused");
    refused("{1:2}", 5, "string or '}' expected", "a number as a key refused");
    refused("[1 2]", 5, "',' or ']' expected", "a missing comma refused");
}

static int
conv_len(const char *json, size_t len, msgpack_zone *zone, msgpack_object *o,
         msgpack_sbuffer *sb, dq_error_t *err)
{
    int rc;

    msgpack_sbuffer_clear(sb);
    rc = test_json_pack(json, len, &lim, sb, err);
    if (rc == DQ_OK) {
        rc = dq_msgpack_unpack(sb->data, sb->size, &lim, zone, o, err);
    }
    return rc;
}

/* dq_json_parse's own tree: strings in the text or decoded in the zone,
 * the value stack past its first block, empty containers */
static void
tree(void)
{
    static char     txt[4096];
    const char     *js = "{\"plain\": \"abc\", \"esc\": \"a\\nb\", "
                         "\"z\": -0, \"e\": [{}, []]}";
    msgpack_zone    zone;
    msgpack_object  o, v;
    const msgpack_object *x;
    dq_error_t      err;
    size_t          off = 0;
    int             k, good;

    msgpack_zone_init(&zone, 1024);
    is_int(dq_json_parse(js, strlen(js), &lim, &zone, &o, &err), DQ_OK,
           "parse: a map");
    x = dq_map_get(&o, "plain");
    ok(x && x->type == MSGPACK_OBJECT_STR && x->via.str.size == 3
       && x->via.str.ptr >= js && x->via.str.ptr < js + strlen(js)
       && memcmp(x->via.str.ptr, "abc", 3) == 0,
       "parse: a string without escapes points into the text");
    x = dq_map_get(&o, "esc");
    ok(x && x->via.str.size == 3
       && !(x->via.str.ptr >= js && x->via.str.ptr < js + strlen(js))
       && memcmp(x->via.str.ptr, "a\nb", 3) == 0,
       "parse: an escaped one is decoded into the zone");
    x = dq_map_get(&o, "z");
    ok(x && x->type == MSGPACK_OBJECT_POSITIVE_INTEGER && x->via.u64 == 0,
       "parse: -0 is the integer 0 (as msgpack-c unpacks it)");
    x = dq_map_get(&o, "e");
    ok(x && x->via.array.size == 2
       && x->via.array.ptr[0].type == MSGPACK_OBJECT_MAP
       && x->via.array.ptr[0].via.map.size == 0
       && x->via.array.ptr[1].type == MSGPACK_OBJECT_ARRAY
       && x->via.array.ptr[1].via.array.size == 0, "parse: empty containers");

    /* 3 arrays of 100 and a map of 40 keys: more values open at once
     * than the stack's first block holds */
    txt[off++] = '[';
    for (k = 0; k < 300; k++) {
        off += (size_t) sprintf(txt + off, "%s%d", k % 100 ? "," : k ? "],["
                                                                  : "[", k);
    }
    off += (size_t) sprintf(txt + off, "],{");
    for (k = 0; k < 40; k++) {
        off += (size_t) sprintf(txt + off, "%s\"k%d\":%d", k ? "," : "", k,
                                -k);
    }
    off += (size_t) sprintf(txt + off, "}]");
    is_int(dq_json_parse(txt, off, &lim, &zone, &o, &err), DQ_OK,
           "parse: the value stack grows");
    good = o.via.array.size == 4;
    for (k = 0; good && k < 300; k++) {
        v = o.via.array.ptr[k / 100].via.array.ptr[k % 100];
        good = o.via.array.ptr[k / 100].via.array.size == 100
               && v.type == MSGPACK_OBJECT_POSITIVE_INTEGER
               && v.via.u64 == (uint64_t) k;
    }
    for (k = 0; good && k < 40; k++) {
        char key[16];

        sprintf(key, "k%d", k);
        x = dq_map_get(&o.via.array.ptr[3], key);
        good = o.via.array.ptr[3].via.map.size == 40 && x != NULL
               && (k ? x->via.i64 == -k : x->via.u64 == 0);
    }
    ok(good, "parse: every element in its place");
    memcpy(txt + off - 2, ",\"k7\":1}]", 10);
    is_int(dq_json_parse(txt, off + 7, &lim, &zone, &o, &err), DQ_EDECODE,
           "parse: a duplicate in a large map after the stack grew");
    ok(strstr(err.msg, "duplicate object key \"k7\"") != NULL, "%s",
       err.msg);
    msgpack_zone_destroy(&zone);
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
    is_int(test_json_pack(deep, 66, &lim, &sb, &err), DQ_EDECODE,
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

    hostile(&zone, &o, &sb);
    tree();

    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
    return done_testing();
}
