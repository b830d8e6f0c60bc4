/*
 * JSON request bodies -> msgpack, so one validator (dq_request_parse) and
 * one envelope format serve both.
 *
 * One pass over the text, no tree: each value is written to the output as
 * it is read (a SAX-style converter of our own, recursive descent bounded
 * by the depth limit). Why not a library: jansson builds a whole DOM
 * (allocations per value, then a walk), and yajl 2.1, the streaming parser
 * Debian ships, turns a lone UTF-16 surrogate escape into "?", joins
 * "\ud800\u0041" into a wrong code point, refuses -9223372036854775808 and
 * loses the position of a number error (checked with libyajl2 2.1.0-3).
 *
 * The rules are jansson's (what this file used before, with
 * JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY), so clients see
 * no change: RFC 8259 text, any value at the top, strict UTF-8 in strings
 * (no overlongs, no encoded surrogates, nothing above U+10FFFF), escapes
 * with paired surrogates only, "\u0000" allowed in strings (msgpack strings
 * are binary-safe) but not in object keys, duplicate keys refused (which
 * value would win is a guess), integers stay integers (beyond int64
 * refused, never rounded), reals become float64 (overflow refused),
 * true/false/null. The bytes written are the ones the jansson DOM walk
 * wrote (smallest integer and header forms, float64 reals, keys in text
 * order): fuzz/fuzz_json.c compares the two on every input.
 *
 * Bounded on hostile input: the text is at most max_envelope bytes, depth
 * at most min(max_depth, 32) (the C stack holds one small frame per
 * level), container elements at most max_items (a map pair counts 2), and
 * every allocation (output, the key list, the header fix-ups) is bounded by
 * those. A container's element count is known only at its end: its header
 * is written as one byte and, when 16 or more elements need a 3- or 5-byte
 * header, widened once at the end in a single backwards pass (every byte
 * moves at most once). Duplicate keys: a map's keys are compared as they
 * come while it has at most DQ__JSON_LINEAR keys; a larger map's keys are
 * sorted when it closes (n log n, no hash an attacker could flood), and
 * the error then points at the map's end.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dq_contract.h"

#define DQ__JSON_DEPTH   32     /* msgpack-c's parser stack holds 32 */
#define DQ__JSON_LINEAR  16     /* keys compared one by one up to this */

typedef struct {
    uint32_t off;       /* the key's bytes in the output */
    uint32_t len;
} dq__jkey_t;

typedef struct {
    size_t   pos;       /* the one-byte header in the output */
    uint32_t n;         /* elements */
    uint8_t  map;
} dq__jfix_t;

typedef struct {
    const unsigned char *start;
    const unsigned char *p;
    const unsigned char *end;
    msgpack_sbuffer     *out;
    size_t               items;
    size_t               max_items;
    unsigned             max_depth;
    dq__jkey_t          *keys;      /* keys of the open maps, innermost last */
    size_t               nkeys;
    size_t               keys_cap;
    dq__jfix_t          *fix;       /* headers to widen at the end */
    size_t               nfix;
    size_t               fix_cap;
    size_t               widen;     /* bytes the fix-ups add */
    dq_error_t          *err;
} dq__json_t;

/* ------------------------------------------------------------- errors */

static size_t dq__json_cut(const char *s, size_t len, size_t max);

/* Line, column (characters) and byte (1-based) of the byte at pos. */
static int
dq__json_fail(dq__json_t *j, const unsigned char *pos, const char *fmt,
              const char *arg, size_t arg_len)
{
    const unsigned char *q;
    unsigned long        line = 1, col = 0;
    char                 what[160];

    if (pos > j->end) {
        pos = j->end;
    }
    for (q = j->start; q < pos; q++) {
        if (*q == '\n') {
            line++;
            col = 0;
        } else if ((*q & 0xc0) != 0x80) {
            col++;
        }
    }
    if (arg) {
        snprintf(what, sizeof(what), fmt, (int) arg_len, arg);
    } else {
        snprintf(what, sizeof(what), "%s", fmt);
    }
    return dq_error_set(j->err, DQ_EDECODE, NULL,
                        "JSON at line %lu column %lu (byte %zu): %s", line,
                        col + (pos < j->end), (size_t) (pos - j->start)
                                              + (pos < j->end), what);
}

static int
dq__json_nomem(dq__json_t *j)
{
    return dq_error_set(j->err, DQ_ENOMEM, NULL,
                        "out of memory converting JSON");
}

/* ------------------------------------------------------------- output */

static int
dq__json_reserve(dq__json_t *j, size_t n)
{
    msgpack_sbuffer *sb = j->out;
    size_t           size;
    char            *data;

    if (sb->alloc - sb->size >= n) {
        return 0;
    }
    size = sb->alloc ? sb->alloc * 2 : 256;
    while (size - sb->size < n) {
        size *= 2;
    }
    data = realloc(sb->data, size);
    if (data == NULL) {
        return -1;
    }
    sb->data = data;
    sb->alloc = size;
    return 0;
}

#define dq__json_put(j, byte)                                                \
    ((j)->out->data[(j)->out->size++] = (char) (byte))

static void
dq__json_be(dq__json_t *j, uint64_t v, unsigned bytes)
{
    while (bytes--) {
        dq__json_put(j, (v >> (8 * bytes)) & 0xff);
    }
}

/* msgpack_pack_int64's forms: the smallest that holds v. */
static int
dq__json_int(dq__json_t *j, int64_t v)
{
    if (dq__json_reserve(j, 9)) {
        return -1;
    }
    if (v >= 0) {
        if (v < 128) {
            dq__json_put(j, v);
        } else if (v < 256) {
            dq__json_put(j, 0xcc);
            dq__json_be(j, (uint64_t) v, 1);
        } else if (v < 65536) {
            dq__json_put(j, 0xcd);
            dq__json_be(j, (uint64_t) v, 2);
        } else if (v < 4294967296LL) {
            dq__json_put(j, 0xce);
            dq__json_be(j, (uint64_t) v, 4);
        } else {
            dq__json_put(j, 0xcf);
            dq__json_be(j, (uint64_t) v, 8);
        }
    } else if (v >= -32) {
        dq__json_put(j, (uint8_t) (int8_t) v);
    } else if (v >= -128) {
        dq__json_put(j, 0xd0);
        dq__json_be(j, (uint64_t) v, 1);
    } else if (v >= -32768) {
        dq__json_put(j, 0xd1);
        dq__json_be(j, (uint64_t) v, 2);
    } else if (v >= -2147483648LL) {
        dq__json_put(j, 0xd2);
        dq__json_be(j, (uint64_t) v, 4);
    } else {
        dq__json_put(j, 0xd3);
        dq__json_be(j, (uint64_t) v, 8);
    }
    return 0;
}

static int
dq__json_double(dq__json_t *j, double d)
{
    uint64_t bits;

    if (dq__json_reserve(j, 9)) {
        return -1;
    }
    memcpy(&bits, &d, sizeof(bits));
    dq__json_put(j, 0xcb);
    dq__json_be(j, bits, 8);
    return 0;
}

/* A str header for n bytes, with room reserved for the bytes. */
static int
dq__json_str_head(dq__json_t *j, size_t n)
{
    if (n > 0xffffffffu || dq__json_reserve(j, n + 5)) {
        return -1;
    }
    if (n < 32) {
        dq__json_put(j, 0xa0 | n);
    } else if (n < 256) {
        dq__json_put(j, 0xd9);
        dq__json_be(j, n, 1);
    } else if (n < 65536) {
        dq__json_put(j, 0xda);
        dq__json_be(j, n, 2);
    } else {
        dq__json_put(j, 0xdb);
        dq__json_be(j, n, 4);
    }
    return 0;
}

/* ------------------------------------------------------------- strings */

static int
dq__json_hex4(const unsigned char *p, unsigned *cp)
{
    unsigned i, v = 0;

    for (i = 0; i < 4; i++) {
        unsigned c = p[i];

        if (c >= '0' && c <= '9') {
            v = v * 16 + (c - '0');
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            v = v * 16 + ((c | 0x20) - 'a' + 10);
        } else {
            return -1;
        }
    }
    *cp = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t
dq__json_utf8(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t   n, i;
    unsigned cp;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t) (end - p) < n) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    {
        return 0;
    }
    return n;
}

/* bytes that stand for themselves inside a JSON string */
static const unsigned char dq__json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/*
 * The string whose opening quote is at j->p, checked, then written as a
 * msgpack str. *off and *len give where its bytes landed in the output.
 * First pass: find the end, check escapes and UTF-8, count the decoded
 * length; second pass (only when it has escapes): decode.
 */
static int
dq__json_string(dq__json_t *j, int key, size_t *off, size_t *len)
{
    const unsigned char *p = j->p + 1, *s = p, *s0, *end = j->end;
    unsigned             cp, lo;
    size_t               n = 0, k;
    int                  esc = 0, nul = 0;
    char                *dst;

    for (;;) {
        /* the plain run (printable ASCII but '"' and '\\'): one table
         * load a byte */
        s0 = p;
        while (p < end && dq__json_plain[*p]) {
            p++;
        }
        n += (size_t) (p - s0);
        if (p == end) {
            return dq__json_fail(j, p, "unexpected end of input in a string",
                                 NULL, 0);
        }
        if (*p == '"') {
            break;
        }
        if (*p < 0x20) {
            return dq__json_fail(j, p, "control character in a string",
                                 NULL, 0);
        }
        if (*p < 0x80 && *p != '\\') {
            p++;
            n++;
            continue;
        }
        if (*p >= 0x80) {
            k = dq__json_utf8(p, end);
            if (k == 0) {
                return dq__json_fail(j, p, "invalid UTF-8 in a string",
                                     NULL, 0);
            }
            p += k;
            n += k;
            continue;
        }
        esc = 1;
        if (end - p < 2) {
            return dq__json_fail(j, end, "unexpected end of input in a "
                                 "string", NULL, 0);
        }
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n':
        case 'r': case 't':
            p += 2;
            n++;
            continue;
        case 'u':
            break;
        default:
            return dq__json_fail(j, p, "invalid escape", NULL, 0);
        }
        if (end - p < 6 || dq__json_hex4(p + 2, &cp)) {
            return dq__json_fail(j, p, "invalid \\u escape", NULL, 0);
        }
        if (cp >= 0xdc00 && cp <= 0xdfff) {
            return dq__json_fail(j, p, "invalid Unicode '%.*s'",
                                 (const char *) p, 6);
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (end - p < 12 || p[6] != '\\' || p[7] != 'u'
                || dq__json_hex4(p + 8, &lo) || lo < 0xdc00 || lo > 0xdfff)
            {
                return dq__json_fail(j, p, "invalid Unicode '%.*s'",
                                     (const char *) p, 6);
            }
            p += 12;
            n += 4;
            continue;
        }
        nul |= cp == 0;
        p += 6;
        n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
    }
    if (key && nul) {
        return dq__json_fail(j, s - 1, "NUL byte in object key not "
                             "supported", NULL, 0);
    }
    if (dq__json_str_head(j, n)) {
        return dq__json_nomem(j);
    }
    *off = j->out->size;
    *len = n;
    dst = j->out->data + j->out->size;
    j->out->size += n;
    j->p = p + 1;
    if (!esc) {
        memcpy(dst, s, n);
        return DQ_OK;
    }
    /* checked above: every escape is whole and valid */
    for (p = s; *p != '"'; ) {
        if (*p != '\\') {
            *dst++ = (char) *p++;
            continue;
        }
        switch (p[1]) {
        case 'b': *dst++ = '\b'; p += 2; continue;
        case 'f': *dst++ = '\f'; p += 2; continue;
        case 'n': *dst++ = '\n'; p += 2; continue;
        case 'r': *dst++ = '\r'; p += 2; continue;
        case 't': *dst++ = '\t'; p += 2; continue;
        case 'u': break;
        default: *dst++ = (char) p[1]; p += 2; continue;
        }
        (void) dq__json_hex4(p + 2, &cp);
        p += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            (void) dq__json_hex4(p + 2, &lo);
            p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (cp < 0x80) {
            *dst++ = (char) cp;
        } else if (cp < 0x800) {
            *dst++ = (char) (0xc0 | (cp >> 6));
            *dst++ = (char) (0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            *dst++ = (char) (0xe0 | (cp >> 12));
            *dst++ = (char) (0x80 | ((cp >> 6) & 0x3f));
            *dst++ = (char) (0x80 | (cp & 0x3f));
        } else {
            *dst++ = (char) (0xf0 | (cp >> 18));
            *dst++ = (char) (0x80 | ((cp >> 12) & 0x3f));
            *dst++ = (char) (0x80 | ((cp >> 6) & 0x3f));
            *dst++ = (char) (0x80 | (cp & 0x3f));
        }
    }
    return DQ_OK;
}

/* ------------------------------------------------------------- numbers */

/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
dq__json_number(dq__json_t *j)
{
    const unsigned char *p = j->p, *s = p, *end = j->end;
    int                  real = 0, neg = 0;
    uint64_t             u = 0;
    double               d;
    char                 small[64], *text, *stop;
    size_t               n;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p == end || *p < '0' || *p > '9') {
        return dq__json_fail(j, p, "invalid number", NULL, 0);
    }
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9') {
            return dq__json_fail(j, p, "invalid number (leading zero)",
                                 NULL, 0);
        }
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && *p == '.') {
        real = 1;
        p++;
        if (p == end || *p < '0' || *p > '9') {
            return dq__json_fail(j, p, "invalid number", NULL, 0);
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p == end || *p < '0' || *p > '9') {
            return dq__json_fail(j, p, "invalid number", NULL, 0);
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    j->p = p;
    if (!real) {
        /* exact: up to 2^63 - 1, or 2^63 when negative */
        for (p = s + neg; p < j->p; p++) {
            if (u > (UINT64_C(1) << 63) / 10
                || (u = u * 10 + (uint64_t) (*p - '0'))
                   > (UINT64_C(1) << 63) - !neg)
            {
                return dq__json_fail(j, s, "integer out of the int64 range",
                                     NULL, 0);
            }
        }
        if (dq__json_int(j, neg ? (int64_t) (0 - u) : (int64_t) u)) {
            return dq__json_nomem(j);
        }
        return DQ_OK;
    }
    /* strtod needs a terminated copy (the text may end at the buffer) */
    n = (size_t) (j->p - s);
    text = n < sizeof(small) ? small : malloc(n + 1);
    if (text == NULL) {
        return dq__json_nomem(j);
    }
    memcpy(text, s, n);
    text[n] = '\0';
    errno = 0;
    d = strtod(text, &stop);
    n = (size_t) (stop - text) == n
        && !(errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL));
    if (text != small) {
        free(text);
    }
    if (!n) {
        return dq__json_fail(j, s, "real number overflow", NULL, 0);
    }
    if (dq__json_double(j, d)) {
        return dq__json_nomem(j);
    }
    return DQ_OK;
}

/* ---------------------------------------------------------- containers */

static void
dq__json_ws(dq__json_t *j)
{
    while (j->p < j->end
           && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r'
               || *j->p == '\t'))
    {
        j->p++;
    }
}

static int
dq__json_literal(dq__json_t *j, const char *word, size_t len, int byte)
{
    if ((size_t) (j->end - j->p) < len || memcmp(j->p, word, len) != 0) {
        return dq__json_fail(j, j->p, "invalid token", NULL, 0);
    }
    if (dq__json_reserve(j, 1)) {
        return dq__json_nomem(j);
    }
    dq__json_put(j, byte);
    j->p += len;
    return DQ_OK;
}

static int
dq__json_count(dq__json_t *j, size_t n)
{
    if (n > j->max_items - j->items) {
        return dq_error_set(j->err, DQ_ETOOBIG, NULL,
                            "JSON holds more than %zu elements",
                            j->max_items);
    }
    j->items += n;
    return DQ_OK;
}

/* the output while a map's keys are sorted (qsort has no context) */
static __thread const char *dq__json_data;

static int
dq__json_key_cmp(const void *a, const void *b)
{
    const dq__jkey_t *x = a, *y = b;

    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return memcmp(dq__json_data + x->off, dq__json_data + y->off, x->len);
}

/* Remember a new key of the map whose keys start at base; refuse a
 * duplicate among the first DQ__JSON_LINEAR. */
static int
dq__json_key(dq__json_t *j, size_t base, size_t off, size_t len,
             const unsigned char *at)
{
    dq__jkey_t *k;
    size_t      i;

    if (j->nkeys - base < DQ__JSON_LINEAR) {
        for (i = base; i < j->nkeys; i++) {
            if (j->keys[i].len == len
                && memcmp(j->out->data + j->keys[i].off, j->out->data + off,
                          len) == 0)
            {
                return dq__json_fail(j, at, "duplicate object key \"%.*s\"",
                                     (const char *) j->out->data + off,
                                     dq__json_cut((const char *) j->out->data
                                                  + off, len, 60));
            }
        }
    }
    if (j->nkeys == j->keys_cap) {
        size_t cap = j->keys_cap ? j->keys_cap * 2 : 32;

        k = realloc(j->keys, cap * sizeof(*k));
        if (k == NULL) {
            return dq__json_nomem(j);
        }
        j->keys = k;
        j->keys_cap = cap;
    }
    j->keys[j->nkeys].off = (uint32_t) off;
    j->keys[j->nkeys].len = (uint32_t) len;
    j->nkeys++;
    return DQ_OK;
}

/* At most max bytes of the UTF-8 text s (len bytes), never ending inside
 * a character: an error message quoting a key stays valid UTF-8. */
static size_t
dq__json_cut(const char *s, size_t len, size_t max)
{
    if (len <= max) {
        return len;
    }
    while (max > 0 && ((unsigned char) s[max] & 0xc0) == 0x80) {
        max--;
    }
    return max;
}

/* A large map ends: sort its keys, refuse a pair of equal ones. */
static int
dq__json_keys_sorted(dq__json_t *j, size_t base, const unsigned char *at)
{
    size_t i, n = j->nkeys - base;

    if (n <= DQ__JSON_LINEAR) {
        return DQ_OK;
    }
    dq__json_data = j->out->data;
    qsort(j->keys + base, n, sizeof(dq__jkey_t), dq__json_key_cmp);
    for (i = base + 1; i < j->nkeys; i++) {
        if (dq__json_key_cmp(&j->keys[i - 1], &j->keys[i]) == 0) {
            return dq__json_fail(j, at, "duplicate object key \"%.*s\"",
                                 (const char *) j->out->data
                                 + j->keys[i].off,
                                 dq__json_cut((const char *) j->out->data
                                              + j->keys[i].off,
                                              j->keys[i].len, 60));
        }
    }
    return DQ_OK;
}

/* The container whose one-byte header is at pos ends with n elements. */
static int
dq__json_close(dq__json_t *j, size_t pos, size_t n, int map)
{
    dq__jfix_t *f;

    if (n < 16) {
        j->out->data[pos] = (char) ((map ? 0x80 : 0x90) | n);
        return DQ_OK;
    }
    if (j->nfix == j->fix_cap) {
        size_t cap = j->fix_cap ? j->fix_cap * 2 : 8;

        f = realloc(j->fix, cap * sizeof(*f));
        if (f == NULL) {
            return dq__json_nomem(j);
        }
        j->fix = f;
        j->fix_cap = cap;
    }
    j->fix[j->nfix].pos = pos;
    j->fix[j->nfix].n = (uint32_t) n;
    j->fix[j->nfix].map = (uint8_t) map;
    j->nfix++;
    j->widen += n < 65536 ? 2 : 4;
    return DQ_OK;
}

static int dq__json_value(dq__json_t *j, unsigned depth);

static int
dq__json_container(dq__json_t *j, unsigned depth)
{
    int    map = *j->p == '{';
    char   close = map ? '}' : ']';
    size_t pos, n = 0, base = j->nkeys, off, len;
    int    rc;

    if (depth + 1 > j->max_depth) {
        return dq_error_set(j->err, DQ_EDECODE, NULL,
                            "JSON nested deeper than %u levels",
                            j->max_depth);
    }
    if (dq__json_reserve(j, 1)) {
        return dq__json_nomem(j);
    }
    pos = j->out->size;
    dq__json_put(j, 0);
    j->p++;
    dq__json_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return dq__json_close(j, pos, 0, map);
    }
    for (;;) {
        rc = dq__json_count(j, map ? 2 : 1);
        if (rc != DQ_OK) {
            return rc;
        }
        if (map) {
            const unsigned char *at = j->p;

            if (j->p == j->end || *j->p != '"') {
                return dq__json_fail(j, j->p, j->p == j->end
                                     ? "unexpected end of input"
                                     : "string or '}' expected", NULL, 0);
            }
            rc = dq__json_string(j, 1, &off, &len);
            if (rc != DQ_OK) {
                return rc;
            }
            rc = dq__json_key(j, base, off, len, at);
            if (rc != DQ_OK) {
                return rc;
            }
            dq__json_ws(j);
            if (j->p == j->end || *j->p != ':') {
                return dq__json_fail(j, j->p, "':' expected", NULL, 0);
            }
            j->p++;
        }
        rc = dq__json_value(j, depth + 1);
        if (rc != DQ_OK) {
            return rc;
        }
        n++;
        dq__json_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            dq__json_ws(j);
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            break;
        }
        return dq__json_fail(j, j->p, j->p == j->end
                             ? "unexpected end of input"
                             : map ? "',' or '}' expected"
                                   : "',' or ']' expected", NULL, 0);
    }
    if (map) {
        rc = dq__json_keys_sorted(j, base, j->p);
        if (rc != DQ_OK) {
            return rc;
        }
        j->nkeys = base;
    }
    j->p++;
    return dq__json_close(j, pos, n, map);
}

static int
dq__json_value(dq__json_t *j, unsigned depth)
{
    size_t off, len;

    dq__json_ws(j);
    if (j->p == j->end) {
        return dq__json_fail(j, j->p, "unexpected end of input", NULL, 0);
    }
    switch (*j->p) {
    case '{':
    case '[':
        return dq__json_container(j, depth);
    case '"':
        return dq__json_string(j, 0, &off, &len);
    case 't':
        return dq__json_literal(j, "true", 4, 0xc3);
    case 'f':
        return dq__json_literal(j, "false", 5, 0xc2);
    case 'n':
        return dq__json_literal(j, "null", 4, 0xc0);
    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
            return dq__json_number(j);
        }
        return dq__json_fail(j, j->p, "invalid token", NULL, 0);
    }
}

/* Widen the headers of containers of 16+ elements, from the back. */
static int
dq__json_widen(dq__json_t *j)
{
    msgpack_sbuffer *sb = j->out;
    size_t           i, end, shift, hdr;
    dq__jfix_t      *f;

    if (j->nfix == 0) {
        return DQ_OK;
    }
    if (dq__json_reserve(j, j->widen)) {
        return dq__json_nomem(j);
    }
    /* closed inner-first: order by position (each is unique) */
    for (i = 1; i < j->nfix; i++) {
        dq__jfix_t t = j->fix[i];
        size_t     k = i;

        if (j->fix[k - 1].pos < t.pos) {
            continue;
        }
        /* a container closes after its descendants and lies before
         * them: it moves past those only (at most depth - 1 levels of
         * them), so the sort is O(32 nfix) */
        while (k > 0 && j->fix[k - 1].pos > t.pos) {
            j->fix[k] = j->fix[k - 1];
            k--;
        }
        j->fix[k] = t;
    }
    end = sb->size;
    shift = j->widen;
    for (i = j->nfix; i-- > 0; ) {
        f = &j->fix[i];
        hdr = f->n < 65536 ? 2 : 4;
        memmove(sb->data + f->pos + 1 + shift, sb->data + f->pos + 1,
                end - f->pos - 1);
        shift -= hdr;
        sb->data[f->pos + shift] = (char) (f->map
                                           ? (hdr == 2 ? 0xde : 0xdf)
                                           : (hdr == 2 ? 0xdc : 0xdd));
        {
            size_t k;

            for (k = 0; k < hdr; k++) {
                sb->data[f->pos + shift + 1 + k] =
                    (char) ((f->n >> (8 * (hdr - 1 - k))) & 0xff);
            }
        }
        end = f->pos;
    }
    sb->size += j->widen;
    return DQ_OK;
}

int
dq_json_to_msgpack(const char *buf, size_t len, const dq_limits_t *lim,
                   msgpack_sbuffer *out, dq_error_t *err)
{
    dq_limits_t def;
    dq__json_t  j;
    size_t      start = out->size;
    int         rc;

    if (lim == NULL) {
        dq_limits_default(&def);
        lim = &def;
    }
    if (len > lim->max_envelope) {
        return dq_error_set(err, DQ_ETOOBIG, NULL,
                            "%zu bytes over the limit of %zu", len,
                            lim->max_envelope);
    }
    memset(&j, 0, sizeof(j));
    j.start = (const unsigned char *) (buf ? buf : "");
    j.p = j.start;
    j.end = j.start + len;
    j.out = out;
    j.max_items = lim->max_items;
    j.max_depth = lim->max_depth < DQ__JSON_DEPTH ? lim->max_depth
                                                  : DQ__JSON_DEPTH;
    j.err = err;

    /* the msgpack form is rarely much larger than the text */
    if (dq__json_reserve(&j, len + 16)) {
        rc = dq__json_nomem(&j);
        goto done;
    }
    rc = dq__json_value(&j, 0);
    if (rc == DQ_OK) {
        dq__json_ws(&j);
        if (j.p != j.end) {
            rc = dq__json_fail(&j, j.p, "end of input expected", NULL, 0);
        }
    }
    if (rc == DQ_OK) {
        rc = dq__json_widen(&j);
    }

done:
    free(j.keys);
    free(j.fix);
    if (rc != DQ_OK) {
        out->size = start;
    }
    return rc;
}
