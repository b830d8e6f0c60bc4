/*
 * Strict decoding of untrusted msgpack.
 *
 * msgpack-c 4.0 reserves n * sizeof(msgpack_object) (or n * sizeof(kv))
 * from the zone as soon as it reads a container header, before a single
 * element exists, so 5 hostile bytes could ask for gigabytes. Hence a
 * pre-scan over the raw bytes that proves, before msgpack-c runs:
 *   - every header and string/bin/ext payload lies inside the input;
 *   - every container element can still have at least one byte of input
 *     (so n never exceeds what remains, and allocations are bounded by
 *     the input length);
 *   - nesting depth <= max_depth (and <= msgpack-c's own stack of 32);
 *   - total container elements <= max_items;
 *   - exactly one object and nothing after it.
 */
#include <string.h>

#include "dq_contract.h"

/* msgpack-c's parser stack (MSGPACK_EMBED_STACK_SIZE in unpack_define.h)
 * holds this many open containers; deeper input would fail inside it. */
#define DQ__MSGPACK_STACK 32

typedef struct {
    const unsigned char *start;
    const unsigned char *p;
    const unsigned char *end;
    size_t               items;
    size_t               max_items;
    unsigned             max_depth;
} dq__scan_t;

static uint64_t
dq__be(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    unsigned i;

    for (i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static int
dq__truncated(dq__scan_t *s, dq_error_t *err)
{
    return dq_error_set(err, DQ_EDECODE, NULL,
                        "msgpack truncated at byte %zu",
                        (size_t) (s->p - s->start));
}

static int dq__scan(dq__scan_t *s, unsigned depth, dq_error_t *err);

static int
dq__scan_container(dq__scan_t *s, uint64_t n, int is_map, unsigned depth,
                   dq_error_t *err)
{
    uint64_t elems = is_map ? n * 2 : n;
    uint64_t i;
    int      rc;

    if (depth + 1 > s->max_depth) {
        return dq_error_set(err, DQ_EDECODE, NULL,
                            "msgpack nested deeper than %u levels",
                            s->max_depth);
    }
    if (elems > (uint64_t) (s->end - s->p)) {
        return dq_error_set(err, DQ_EDECODE, NULL,
                            "msgpack %s of %llu elements at byte %zu "
                            "exceeds the input",
                            is_map ? "map" : "array", (unsigned long long) n,
                            (size_t) (s->p - s->start));
    }
    if (elems > s->max_items - s->items) {
        return dq_error_set(err, DQ_ETOOBIG, NULL,
                            "msgpack holds more than %zu elements",
                            s->max_items);
    }
    s->items += (size_t) elems;
    for (i = 0; i < elems; i++) {
        rc = dq__scan(s, depth + 1, err);
        if (rc != DQ_OK) {
            return rc;
        }
    }
    return DQ_OK;
}

/* Skip `lenbytes` of big-endian length, then that many payload bytes
 * (plus `extra` bytes such as an ext type). */
static int
dq__scan_blob(dq__scan_t *s, unsigned lenbytes, unsigned extra,
              dq_error_t *err)
{
    uint64_t len;

    if ((size_t) (s->end - s->p) < lenbytes) {
        return dq__truncated(s, err);
    }
    len = dq__be(s->p, lenbytes);
    s->p += lenbytes;
    if ((uint64_t) (s->end - s->p) < len + extra) {
        return dq__truncated(s, err);
    }
    s->p += len + extra;
    return DQ_OK;
}

static int
dq__skip(dq__scan_t *s, size_t n, dq_error_t *err)
{
    if ((size_t) (s->end - s->p) < n) {
        return dq__truncated(s, err);
    }
    s->p += n;
    return DQ_OK;
}

static int
dq__scan(dq__scan_t *s, unsigned depth, dq_error_t *err)
{
    unsigned char b;
    uint64_t      n;

    if (s->p >= s->end) {
        return dq__truncated(s, err);
    }
    b = *s->p++;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        return DQ_OK;                                   /* fixint, nil, bool */
    }
    if (b >= 0x80 && b <= 0x8f) {
        return dq__scan_container(s, b & 0x0f, 1, depth, err);
    }
    if (b >= 0x90 && b <= 0x9f) {
        return dq__scan_container(s, b & 0x0f, 0, depth, err);
    }
    if (b >= 0xa0 && b <= 0xbf) {
        return dq__skip(s, b & 0x1f, err);
    }
    switch (b) {
    case 0xc4: case 0xd9: return dq__scan_blob(s, 1, 0, err);  /* bin8 str8 */
    case 0xc5: case 0xda: return dq__scan_blob(s, 2, 0, err);
    case 0xc6: case 0xdb: return dq__scan_blob(s, 4, 0, err);
    case 0xc7: return dq__scan_blob(s, 1, 1, err);             /* ext */
    case 0xc8: return dq__scan_blob(s, 2, 1, err);
    case 0xc9: return dq__scan_blob(s, 4, 1, err);
    case 0xca: return dq__skip(s, 4, err);                     /* float */
    case 0xcb: return dq__skip(s, 8, err);
    case 0xcc: case 0xd0: return dq__skip(s, 1, err);          /* ints */
    case 0xcd: case 0xd1: return dq__skip(s, 2, err);
    case 0xce: case 0xd2: return dq__skip(s, 4, err);
    case 0xcf: case 0xd3: return dq__skip(s, 8, err);
    case 0xd4: return dq__skip(s, 2, err);                     /* fixext */
    case 0xd5: return dq__skip(s, 3, err);
    case 0xd6: return dq__skip(s, 5, err);
    case 0xd7: return dq__skip(s, 9, err);
    case 0xd8: return dq__skip(s, 17, err);
    case 0xdc: case 0xdd: case 0xde: case 0xdf:
        if ((size_t) (s->end - s->p) < (b & 1 ? 4u : 2u)) {
            return dq__truncated(s, err);
        }
        n = dq__be(s->p, b & 1 ? 4 : 2);
        s->p += b & 1 ? 4 : 2;
        return dq__scan_container(s, n, b >= 0xde, depth, err);
    default:
        s->p--;
        return dq_error_set(err, DQ_EDECODE, NULL,
                            "msgpack: invalid byte 0x%02x at byte %zu", b,
                            (size_t) (s->p - s->start));
    }
}

int
dq_msgpack_unpack(const char *buf, size_t len, const dq_limits_t *lim,
                  msgpack_zone *zone, msgpack_object *out, dq_error_t *err)
{
    dq_limits_t          def;
    dq__scan_t           s;
    size_t               off = 0;
    msgpack_unpack_return ret;
    int                  rc;

    if (lim == NULL) {
        dq_limits_default(&def);
        lim = &def;
    }
    if (len > lim->max_envelope) {
        return dq_error_set(err, DQ_ETOOBIG, NULL,
                            "%zu bytes over the limit of %zu", len,
                            lim->max_envelope);
    }
    if (len == 0) {
        return dq_error_set(err, DQ_EDECODE, NULL, "empty msgpack");
    }
    s.start = (const unsigned char *) buf;
    s.p = s.start;
    s.end = s.start + len;
    s.items = 0;
    s.max_items = lim->max_items;
    s.max_depth = lim->max_depth;
    if (s.max_depth > DQ__MSGPACK_STACK) {
        s.max_depth = DQ__MSGPACK_STACK;
    }
    rc = dq__scan(&s, 0, err);
    if (rc != DQ_OK) {
        return rc;
    }
    if (s.p != s.end) {
        return dq_error_set(err, DQ_EDECODE, NULL,
                            "msgpack: %zu trailing bytes after the object",
                            (size_t) (s.end - s.p));
    }
    ret = msgpack_unpack(buf, len, &off, zone, out);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR) {
        return dq_error_set(err, DQ_ENOMEM, NULL, "msgpack: out of memory");
    }
    if (ret != MSGPACK_UNPACK_SUCCESS || off != len) {
        return dq_error_set(err, DQ_EDECODE, NULL,
                            "msgpack: malformed (code %d at byte %zu)",
                            (int) ret, off);
    }
    return DQ_OK;
}

const msgpack_object *
dq_map_get(const msgpack_object *map, const char *key)
{
    size_t   klen = strlen(key);
    uint32_t i;

    if (map == NULL || map->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen
            && memcmp(k->via.str.ptr, key, klen) == 0)
        {
            return &map->via.map.ptr[i].val;
        }
    }
    return NULL;
}
