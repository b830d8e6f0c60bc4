/*
 * libFuzzer, differential: test_json_pack (t/unit/json_pack.h: the tree
 * lib/dq_json.c's dq_json_parse builds in one pass, which the module's
 * request parser walks, packed by msgpack-c) against the reference it replaced: jansson's DOM
 * (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY) walked into
 * msgpack with the same limits. On every input the two must agree:
 *   - accepted: jansson accepts too and the msgpack bytes are identical;
 *   - a syntax error ("JSON at line ..."): jansson refuses the text too
 *     (except a raw NUL byte, which jansson 2.14 skips after a number);
 *   - a limit (depth, elements): jansson refuses the text or the walk hits
 *     the same limit.
 * And the tree itself (what dq_request_parse reads, by type: via.u64 for
 * a POSITIVE_INTEGER, via.i64 for a NEGATIVE_INTEGER), not only its
 * packed bytes, which hide a type (a NEGATIVE_INTEGER holding 5 packs as
 * a positive 5): dq_json_parse gives the same verdict, and an accepted
 * tree equals, node by node, the one msgpack-c unpacks from the
 * reference bytes (same_tree: types, integers, floats bit for bit, bytes
 * of strings, order of elements and pairs; msgpack_object_equal would
 * let -0.0 equal 0.0).
 * Any disagreement aborts (a crash for libFuzzer).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dq_contract.h"
#include "../t/unit/json_pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    msgpack_packer pk;
    size_t         items;
    size_t         max_items;
    unsigned       max_depth;
} ref_t;

/* DQ_OK, DQ_EDECODE (depth), DQ_ETOOBIG (elements) */
static int
ref_pack(ref_t *r, const json_t *v, unsigned depth)
{
    const char *key;
    json_t     *val;
    size_t      i, n;
    int         rc;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth + 1 > r->max_depth) {
            return DQ_EDECODE;
        }
        n = json_is_object(v) ? json_object_size(v) : json_array_size(v);
        if ((json_is_object(v) ? 2 * n : n) > r->max_items - r->items) {
            return DQ_ETOOBIG;
        }
        r->items += json_is_object(v) ? 2 * n : n;
        if (json_is_array(v)) {
            msgpack_pack_array(&r->pk, n);
            for (i = 0; i < n; i++) {
                rc = ref_pack(r, json_array_get(v, i), depth + 1);
                if (rc != DQ_OK) {
                    return rc;
                }
            }
            return DQ_OK;
        }
        msgpack_pack_map(&r->pk, n);
        json_object_foreach((json_t *) v, key, val) {
            n = strlen(key);
            msgpack_pack_str(&r->pk, n);
            msgpack_pack_str_body(&r->pk, key, n);
            rc = ref_pack(r, val, depth + 1);
            if (rc != DQ_OK) {
                return rc;
            }
        }
        return DQ_OK;
    case JSON_STRING:
        n = json_string_length(v);
        msgpack_pack_str(&r->pk, n);
        msgpack_pack_str_body(&r->pk, json_string_value(v), n);
        return DQ_OK;
    case JSON_INTEGER:
        msgpack_pack_int64(&r->pk, (int64_t) json_integer_value(v));
        return DQ_OK;
    case JSON_REAL:
        msgpack_pack_double(&r->pk, json_real_value(v));
        return DQ_OK;
    case JSON_TRUE:
        msgpack_pack_true(&r->pk);
        return DQ_OK;
    case JSON_FALSE:
        msgpack_pack_false(&r->pk);
        return DQ_OK;
    default:
        msgpack_pack_nil(&r->pk);
        return DQ_OK;
    }
}

/* 1 if a and b are the same tree (stricter than msgpack_object_equal) */
static int
same_tree(const msgpack_object *a, const msgpack_object *b)
{
    uint32_t i;

    if (a->type != b->type) {
        return 0;
    }
    switch (a->type) {
    case MSGPACK_OBJECT_NIL:
        return 1;
    case MSGPACK_OBJECT_BOOLEAN:
        return a->via.boolean == b->via.boolean;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return a->via.u64 == b->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        /* msgpack-c gives this type to values < 0 only */
        return a->via.i64 == b->via.i64 && a->via.i64 < 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return memcmp(&a->via.f64, &b->via.f64, sizeof(double)) == 0;
    case MSGPACK_OBJECT_STR:
        return a->via.str.size == b->via.str.size
               && (a->via.str.size == 0
                   || memcmp(a->via.str.ptr, b->via.str.ptr,
                             a->via.str.size) == 0);
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size) {
            return 0;
        }
        for (i = 0; i < a->via.array.size; i++) {
            if (!same_tree(&a->via.array.ptr[i], &b->via.array.ptr[i])) {
                return 0;
            }
        }
        return 1;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size) {
            return 0;
        }
        for (i = 0; i < a->via.map.size; i++) {
            if (!same_tree(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key)
                || !same_tree(&a->via.map.ptr[i].val,
                              &b->via.map.ptr[i].val))
            {
                return 0;
            }
        }
        return 1;
    default:
        return 0;               /* JSON makes no bin or ext */
    }
}

static void
disagree(const char *what, const uint8_t *data, size_t size, const char *msg)
{
    fprintf(stderr, "fuzz_json: %s (%s) on %zu bytes: %.*s\n", what, msg,
            size, (int) (size > 200 ? 200 : size), (const char *) data);
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dq_limits_t     lim;
    dq_error_t      err;
    msgpack_sbuffer mine, ref;
    json_error_t    jerr;
    json_t         *root;
    ref_t           r;
    int             rc, rrc, trc;
    size_t          off;
    msgpack_zone    tz, uz;
    msgpack_object  tree, unpacked;
    dq_error_t      terr;

    dq_limits_default(&lim);
    lim.max_envelope = 64 * 1024;
    lim.max_items = 4096;
    lim.max_depth = 32;

    msgpack_sbuffer_init(&mine);
    msgpack_sbuffer_write(&mine, "pre", 3);     /* appended after, kept */
    memset(&err, 0, sizeof(err));
    rc = test_json_pack((const char *) data, size, &lim, &mine, &err);
    if (mine.size < 3 || memcmp(mine.data, "pre", 3) != 0
        || (rc != DQ_OK && mine.size != 3))
    {
        disagree("output prefix touched or left half-written", data, size,
                 err.msg);
    }
    if (rc == DQ_ENOMEM || size > lim.max_envelope) {
        msgpack_sbuffer_destroy(&mine);
        return 0;
    }

    /* the tree the module's parser walks: the same verdict */
    if (!msgpack_zone_init(&tz, 4096)) {
        abort();
    }
    memset(&terr, 0, sizeof(terr));
    trc = dq_json_parse((const char *) data, size, &lim, &tz, &tree, &terr);
    if (trc != rc && trc != DQ_ENOMEM) {
        disagree("dq_json_parse and test_json_pack differ", data, size,
                 terr.msg);
    }

    root = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES
                      | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    rrc = DQ_EDECODE;
    msgpack_sbuffer_init(&ref);
    if (root) {
        msgpack_packer_init(&r.pk, &ref, msgpack_sbuffer_write);
        r.items = 0;
        r.max_items = lim.max_items;
        r.max_depth = lim.max_depth;
        rrc = ref_pack(&r, root, 0);
        json_decref(root);
    }

    if (rc == DQ_OK) {
        if (root == NULL) {
            disagree("accepted, jansson refuses", data, size, jerr.text);
        }
        if (rrc != DQ_OK) {
            disagree("accepted, the reference hits a limit", data, size, "");
        }
        if (ref.size != mine.size - 3
            || memcmp(ref.data, mine.data + 3, ref.size) != 0)
        {
            disagree("different msgpack", data, size, "");
        }
        if (trc == DQ_OK) {
            if (!msgpack_zone_init(&uz, 4096)) {
                abort();
            }
            off = 0;
            if (msgpack_unpack(ref.data, ref.size, &off, &uz, &unpacked)
                != MSGPACK_UNPACK_SUCCESS || off != ref.size)
            {
                disagree("the reference bytes do not unpack", data, size,
                         "");
            }
            if (!same_tree(&tree, &unpacked)) {
                disagree("a different tree", data, size, "");
            }
            msgpack_zone_destroy(&uz);
        }
    } else if (strncmp(err.msg, "JSON at line ", 13) == 0) {
        /* jansson 2.14 lets a raw NUL byte through after a number ("0\0",
         * "[1\0]"); RFC 8259 does not, nor do we */
        if (root != NULL && memchr(data, 0, size) == NULL) {
            disagree("refused, jansson accepts", data, size, err.msg);
        }
    } else if (rc == DQ_EDECODE || rc == DQ_ETOOBIG) {
        if (root != NULL && rrc != rc) {
            disagree("a limit only here", data, size, err.msg);
        }
    } else {
        disagree("unexpected error code", data, size, err.msg);
    }
    msgpack_zone_destroy(&tz);
    msgpack_sbuffer_destroy(&ref);
    msgpack_sbuffer_destroy(&mine);
    return 0;
}
