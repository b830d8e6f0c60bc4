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

/* ------------------------------------------------------------------ pack */

/*
 * msgpack_pack_object's bytes without its per-element write callback: the
 * size first (dq_msgpack_size), then the bytes into room the caller made
 * (dq_msgpack_write). The forms are msgpack-c 4.0's, byte for byte (the
 * smallest integer, str, bin, ext and container headers; FLOAT32 as a
 * float, FLOAT64 as a double): t/unit/test_msgpack.c and fuzz/fuzz_request.c
 * compare the two.
 */

size_t
dq_msgpack_int_size(int64_t v)
{
    if (v < -(1LL << 5)) {
        return v < -(1LL << 15) ? (v < -(1LL << 31) ? 9 : 5)
                                : (v < -(1LL << 7) ? 3 : 2);
    }
    if (v < (1 << 7)) {
        return 1;
    }
    return v < (1LL << 16) ? (v < (1 << 8) ? 2 : 3)
                           : (v < (1LL << 32) ? 5 : 9);
}

static size_t
dq__uint_size(uint64_t v)
{
    return v <= INT64_MAX ? dq_msgpack_int_size((int64_t) v) : 9;
}

/* a length of 1, 2 or 4 bytes and its type byte (dq__write_len) */
static size_t
dq__len_size(size_t n)
{
    return n < 256 ? 2 : n < 65536 ? 3 : 5;
}

static size_t
dq__head_size(size_t n, size_t fix)
{
    return n < fix ? 1 : n < 65536 ? 3 : 5;
}

static size_t
dq__blob_head_size(msgpack_object_type type, size_t n)
{
    if (type == MSGPACK_OBJECT_STR) {
        return n < 32 ? 1 : dq__len_size(n);
    }
    if (type == MSGPACK_OBJECT_BIN) {
        return dq__len_size(n);
    }
    /* ext: fixext 1/2/4/8/16, else ext 8/16/32 (a type byte each) */
    if (n == 1 || n == 2 || n == 4 || n == 8 || n == 16) {
        return 2;
    }
    return dq__len_size(n) + 1;
}

size_t
dq_msgpack_size(const msgpack_object *o)
{
    size_t   n;
    uint32_t i;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
    case MSGPACK_OBJECT_BOOLEAN:
        return 1;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return dq__uint_size(o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return dq_msgpack_int_size(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
        return 5;
    case MSGPACK_OBJECT_FLOAT64:
        return 9;
    case MSGPACK_OBJECT_STR:
        return dq__blob_head_size(o->type, o->via.str.size) + o->via.str.size;
    case MSGPACK_OBJECT_BIN:
        return dq__blob_head_size(o->type, o->via.bin.size) + o->via.bin.size;
    case MSGPACK_OBJECT_EXT:
        return dq__blob_head_size(o->type, o->via.ext.size) + o->via.ext.size;
    case MSGPACK_OBJECT_ARRAY:
        n = dq__head_size(o->via.array.size, 16);
        for (i = 0; i < o->via.array.size; i++) {
            n += dq_msgpack_size(&o->via.array.ptr[i]);
        }
        return n;
    case MSGPACK_OBJECT_MAP:
        n = dq__head_size(o->via.map.size, 16);
        for (i = 0; i < o->via.map.size; i++) {
            n += dq_msgpack_size(&o->via.map.ptr[i].key)
                 + dq_msgpack_size(&o->via.map.ptr[i].val);
        }
        return n;
    default:
        return 0;
    }
}

size_t
dq_msgpack_items(const msgpack_object *o)
{
    size_t   n = 0;
    uint32_t i;

    if (o->type == MSGPACK_OBJECT_ARRAY) {
        n = o->via.array.size;
        for (i = 0; i < o->via.array.size; i++) {
            n += dq_msgpack_items(&o->via.array.ptr[i]);
        }
    } else if (o->type == MSGPACK_OBJECT_MAP) {
        n = 2 * (size_t) o->via.map.size;
        for (i = 0; i < o->via.map.size; i++) {
            n += dq_msgpack_items(&o->via.map.ptr[i].key)
                 + dq_msgpack_items(&o->via.map.ptr[i].val);
        }
    }
    return n;
}

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define dq__be16(v)  (v)
#define dq__be32(v)  (v)
#define dq__be64(v)  (v)
#else
#define dq__be16(v)  __builtin_bswap16(v)
#define dq__be32(v)  __builtin_bswap32(v)
#define dq__be64(v)  __builtin_bswap64(v)
#endif

/* v's low n bytes (1, 2, 4 or 8), big-endian */
static inline char *
dq__be_put(char *p, uint64_t v, unsigned n)
{
    uint16_t v16;
    uint32_t v32;

    switch (n) {
    case 1:
        *p = (char) v;
        break;
    case 2:
        v16 = dq__be16((uint16_t) v);
        memcpy(p, &v16, 2);
        break;
    case 4:
        v32 = dq__be32((uint32_t) v);
        memcpy(p, &v32, 4);
        break;
    default:
        v = dq__be64(v);
        memcpy(p, &v, 8);
    }
    return p + n;
}

char *
dq_msgpack_write_uint(char *p, uint64_t v)
{
    if (v < 128) {
        *p++ = (char) v;
        return p;
    }
    if (v < 256) {
        *p++ = (char) 0xcc;
        return dq__be_put(p, v, 1);
    }
    if (v < 65536) {
        *p++ = (char) 0xcd;
        return dq__be_put(p, v, 2);
    }
    if (v < (UINT64_C(1) << 32)) {
        *p++ = (char) 0xce;
        return dq__be_put(p, v, 4);
    }
    *p++ = (char) 0xcf;
    return dq__be_put(p, v, 8);
}

char *
dq_msgpack_write_int(char *p, int64_t v)
{
    if (v >= 0) {
        return dq_msgpack_write_uint(p, (uint64_t) v);
    }
    if (v >= -32) {
        *p++ = (char) (int8_t) v;
        return p;
    }
    if (v >= -128) {
        *p++ = (char) 0xd0;
        return dq__be_put(p, (uint64_t) v, 1);
    }
    if (v >= -32768) {
        *p++ = (char) 0xd1;
        return dq__be_put(p, (uint64_t) v, 2);
    }
    if (v >= -2147483648LL) {
        *p++ = (char) 0xd2;
        return dq__be_put(p, (uint64_t) v, 4);
    }
    *p++ = (char) 0xd3;
    return dq__be_put(p, (uint64_t) v, 8);
}

/* n in 1, 2 or 4 bytes after the first, second or third of three
 * consecutive type bytes from b8 (str 8/16/32 0xd9, bin 0xc4, ext 0xc7) */
static char *
dq__write_len(char *p, size_t n, unsigned char b8)
{
    if (n < 256) {
        *p++ = (char) b8;
        return dq__be_put(p, n, 1);
    }
    if (n < 65536) {
        *p++ = (char) (b8 + 1);
        return dq__be_put(p, n, 2);
    }
    *p++ = (char) (b8 + 2);
    return dq__be_put(p, n, 4);
}

static char *
dq__put_bytes(char *p, const char *s, size_t n)
{
    if (n) {
        memcpy(p, s, n);
    }
    return p + n;
}

char *
dq_msgpack_write_str(char *p, const char *s, size_t n)
{
    if (n < 32) {
        *p++ = (char) (0xa0 | n);
    } else {
        p = dq__write_len(p, n, 0xd9);
    }
    return dq__put_bytes(p, s, n);
}

static char *
dq__write_head(char *p, size_t n, unsigned char fix, unsigned char b16)
{
    if (n < 16) {
        *p++ = (char) (fix | n);
        return p;
    }
    if (n < 65536) {
        *p++ = (char) b16;
        return dq__be_put(p, n, 2);
    }
    *p++ = (char) (b16 + 1);
    return dq__be_put(p, n, 4);
}

char *
dq_msgpack_write(char *p, const msgpack_object *o)
{
    uint64_t bits;
    uint32_t i, n;
    float    f;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        *p++ = (char) 0xc0;
        return p;
    case MSGPACK_OBJECT_BOOLEAN:
        *p++ = (char) (o->via.boolean ? 0xc3 : 0xc2);
        return p;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return dq_msgpack_write_uint(p, o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return dq_msgpack_write_int(p, o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
        f = (float) o->via.f64;
        memcpy(&i, &f, 4);
        *p++ = (char) 0xca;
        return dq__be_put(p, i, 4);
    case MSGPACK_OBJECT_FLOAT64:
        memcpy(&bits, &o->via.f64, 8);
        *p++ = (char) 0xcb;
        return dq__be_put(p, bits, 8);
    case MSGPACK_OBJECT_STR:
        return dq_msgpack_write_str(p, o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        p = dq__write_len(p, o->via.bin.size, 0xc4);
        return dq__put_bytes(p, o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        n = o->via.ext.size;
        switch (n) {
        case 1: *p++ = (char) 0xd4; break;
        case 2: *p++ = (char) 0xd5; break;
        case 4: *p++ = (char) 0xd6; break;
        case 8: *p++ = (char) 0xd7; break;
        case 16: *p++ = (char) 0xd8; break;
        default:
            p = dq__write_len(p, n, 0xc7);
        }
        *p++ = (char) o->via.ext.type;
        return dq__put_bytes(p, o->via.ext.ptr, n);
    case MSGPACK_OBJECT_ARRAY:
        p = dq__write_head(p, o->via.array.size, 0x90, 0xdc);
        for (i = 0; i < o->via.array.size; i++) {
            p = dq_msgpack_write(p, &o->via.array.ptr[i]);
        }
        return p;
    case MSGPACK_OBJECT_MAP:
        p = dq__write_head(p, o->via.map.size, 0x80, 0xde);
        for (i = 0; i < o->via.map.size; i++) {
            p = dq_msgpack_write(p, &o->via.map.ptr[i].key);
            p = dq_msgpack_write(p, &o->via.map.ptr[i].val);
        }
        return p;
    default:
        return p;
    }
}
