/*
 * JSON request bodies -> the msgpack_object tree the request parser
 * (dq_request_parse) walks, so one validator serves both body formats:
 * dq_json_parse builds the tree straight from the text (no msgpack bytes
 * and no second unpack on the module's path; the tests and
 * fuzz/fuzz_json.c pack that tree with t/unit/json_pack.h to compare
 * bytes).
 *
 * One pass over the text (a recursive descent of our own, bounded by the
 * depth limit). Why not a library: jansson builds a DOM of its own
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
 * true/false/null. The tree is the one msgpack-c unpacks from the bytes
 * the jansson DOM walk wrote (non-negative integers positive, reals
 * float64, keys in text order): fuzz/fuzz_json.c compares the packed tree
 * with that walk on every input.
 *
 * Bounded on hostile input: the text is at most max_envelope bytes, depth
 * at most min(max_depth, 32) (the C stack holds one small frame per
 * level), container elements at most max_items (a map pair counts 2). The
 * elements of the open containers wait on a value stack (on the C stack
 * up to DQ__JSON_STACK, then one growing heap block); a container's
 * elements move into the zone when it closes, in one block of its final
 * size. A string without escapes points into the text (keep it alive as
 * long as the tree); a decoded one is written into the zone. So the zone
 * holds at most max_items objects plus the text's length. Duplicate keys:
 * a map's keys are compared as they come while it has at most
 * DQ__JSON_LINEAR keys; a larger map's keys are sorted when it closes
 * (n log n, no hash an attacker could flood), and the error then points
 * at the map's end.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dq_contract.h"

#define DQ__JSON_DEPTH   32     /* msgpack-c's parser stack holds 32 */
#define DQ__JSON_LINEAR  16     /* keys compared one by one up to this */
#define DQ__JSON_STACK   64     /* values on the C stack before the heap */

typedef struct {
    const char *ptr;    /* a key's bytes (sorting a large map's keys) */
    uint32_t    len;
} dq__jkey_t;

typedef struct {
    const unsigned char *start;
    const unsigned char *p;
    const unsigned char *end;
    msgpack_zone        *zone;
    size_t               items;
    size_t               max_items;
    unsigned             max_depth;
    msgpack_object      *stk;       /* the open containers' elements */
    size_t               nstk;
    size_t               stk_cap;
    msgpack_object      *stk_local; /* stk's first block (the caller's) */
    dq__jkey_t          *keys;      /* a large map's keys, to sort */
    size_t               keys_cap;
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

/* ------------------------------------------------------------- values */

/* The stack is full: a block twice its size (the first one on the heap). */
static int
dq__json_grow(dq__json_t *j)
{
    msgpack_object *s;
    size_t          cap = j->stk_cap * 2;

    if (j->stk == j->stk_local) {
        s = malloc(cap * sizeof(msgpack_object));
        if (s != NULL) {
            memcpy(s, j->stk, j->nstk * sizeof(msgpack_object));
        }
    } else {
        s = realloc(j->stk, cap * sizeof(msgpack_object));
    }
    if (s == NULL) {
        return -1;
    }
    j->stk = s;
    j->stk_cap = cap;
    return 0;
}

/* A new value on the stack (its type and content set by the caller), or
 * NULL without memory. Bounded: the stack holds the open containers'
 * elements, at most max_items + the depth. */
static inline msgpack_object *
dq__json_push(dq__json_t *j)
{
    if (j->nstk == j->stk_cap && dq__json_grow(j) != 0) {
        return NULL;
    }
    return &j->stk[j->nstk++];
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
 * The string whose opening quote is at j->p, checked, then pushed as a
 * msgpack str: pointing into the text when it has no escapes, decoded
 * into the zone when it has.
 * First pass: find the end, check escapes and UTF-8, count the decoded
 * length; second pass (only when it has escapes): decode.
 */
static __attribute__((noinline)) int
dq__json_string_slow(dq__json_t *j, int key)
{
    const unsigned char *p = j->p + 1, *s = p, *s0, *end = j->end;
    unsigned             cp, lo;
    size_t               n = 0, k;
    int                  esc = 0, nul = 0;
    char                *dst;
    msgpack_object      *o;

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
    if (n > 0xffffffffu || (o = dq__json_push(j)) == NULL) {
        return dq__json_nomem(j);
    }
    o->type = MSGPACK_OBJECT_STR;
    o->via.str.size = (uint32_t) n;
    j->p = p + 1;
    if (!esc) {
        o->via.str.ptr = (const char *) s;
        return DQ_OK;
    }
    dst = msgpack_zone_malloc_no_align(j->zone, n);
    if (dst == NULL) {
        return dq__json_nomem(j);
    }
    o->via.str.ptr = dst;
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

/* The common string (printable ASCII, no escapes): found by one table
 * scan and pushed pointing into the text; anything else goes the long
 * way above, from the start. */
static inline int
dq__json_string(dq__json_t *j, int key)
{
    const unsigned char *s = j->p + 1, *p = s, *end = j->end;
    msgpack_object      *o;

    while (p < end && dq__json_plain[*p]) {
        p++;
    }
    if (p == end || *p != '"' || (size_t) (p - s) > 0xffffffffu) {
        return dq__json_string_slow(j, key);
    }
    o = dq__json_push(j);
    if (o == NULL) {
        return dq__json_nomem(j);
    }
    o->type = MSGPACK_OBJECT_STR;
    o->via.str.size = (uint32_t) (p - s);
    o->via.str.ptr = (const char *) s;
    j->p = p + 1;
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
    msgpack_object      *o;

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
        o = dq__json_push(j);
        if (o == NULL) {
            return dq__json_nomem(j);
        }
        if (neg && u != 0) {
            o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
            o->via.i64 = (int64_t) (0 - u);
        } else {
            o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            o->via.u64 = u;
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
    o = dq__json_push(j);
    if (o == NULL) {
        return dq__json_nomem(j);
    }
    o->type = MSGPACK_OBJECT_FLOAT64;
    o->via.f64 = d;
    return DQ_OK;
}
/* ---------------------------------------------------------- containers */

/* JSON's four whitespace bytes */
static const unsigned char dq__json_space[256] = {
    [' '] = 1, ['\n'] = 1, ['\r'] = 1, ['\t'] = 1
};

static inline void
dq__json_ws(dq__json_t *j)
{
    const unsigned char *p = j->p, *end = j->end;

    while (p < end && dq__json_space[*p]) {
        p++;
    }
    j->p = p;
}

static int
dq__json_literal(dq__json_t *j, const char *word, size_t len,
                 msgpack_object_type type, int truth)
{
    msgpack_object *o;

    if ((size_t) (j->end - j->p) < len || memcmp(j->p, word, len) != 0) {
        return dq__json_fail(j, j->p, "invalid token", NULL, 0);
    }
    o = dq__json_push(j);
    if (o == NULL) {
        return dq__json_nomem(j);
    }
    o->type = type;
    o->via.boolean = truth;
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

static int
dq__json_key_cmp(const void *a, const void *b)
{
    const dq__jkey_t *x = a, *y = b;

    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return memcmp(x->ptr, y->ptr, x->len);
}

static int
dq__json_dup(dq__json_t *j, const unsigned char *at, const char *key,
             size_t len)
{
    return dq__json_fail(j, at, "duplicate object key \"%.*s\"", key,
                         dq__json_cut(key, len, 60));
}

/* The key just pushed (the map's keys are every other value from base):
 * refuse a duplicate among the first DQ__JSON_LINEAR. */
static int
dq__json_key(dq__json_t *j, size_t base, const unsigned char *at)
{
    const msgpack_object *k = &j->stk[j->nstk - 1], *o;
    size_t                i;

    if ((j->nstk - 1 - base) / 2 >= DQ__JSON_LINEAR) {
        return DQ_OK;
    }
    for (i = base; i + 1 < j->nstk; i += 2) {
        o = &j->stk[i];
        if (o->via.str.size == k->via.str.size
            && memcmp(o->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0)
        {
            return dq__json_dup(j, at, k->via.str.ptr, k->via.str.size);
        }
    }
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

/* A large map of n keys from base ends: sort its keys, refuse a pair of
 * equal ones. */
static int
dq__json_keys_sorted(dq__json_t *j, size_t base, size_t n,
                     const unsigned char *at)
{
    dq__jkey_t *k;
    size_t      i;

    if (n <= DQ__JSON_LINEAR) {
        return DQ_OK;
    }
    if (n > j->keys_cap) {
        k = realloc(j->keys, n * sizeof(dq__jkey_t));
        if (k == NULL) {
            return dq__json_nomem(j);
        }
        j->keys = k;
        j->keys_cap = n;
    }
    for (i = 0; i < n; i++) {
        j->keys[i].ptr = j->stk[base + 2 * i].via.str.ptr;
        j->keys[i].len = j->stk[base + 2 * i].via.str.size;
    }
    qsort(j->keys, n, sizeof(dq__jkey_t), dq__json_key_cmp);
    for (i = 1; i < n; i++) {
        if (dq__json_key_cmp(&j->keys[i - 1], &j->keys[i]) == 0) {
            return dq__json_dup(j, at, j->keys[i].ptr, j->keys[i].len);
        }
    }
    return DQ_OK;
}

/* The container whose elements are on the stack from base ends: they
 * move into the zone, the container's object (at base - 1, taken when it
 * opened) points to them. */
static int
dq__json_close(dq__json_t *j, size_t base, int map)
{
    size_t          n = j->nstk - base;
    msgpack_object *o = &j->stk[base - 1], *e = NULL;

    if (n) {
        /* msgpack_object_kv is a key object then a value object */
        e = msgpack_zone_malloc(j->zone, n * sizeof(msgpack_object));
        if (e == NULL) {
            return dq__json_nomem(j);
        }
        memcpy(e, &j->stk[base], n * sizeof(msgpack_object));
    }
    j->nstk = base;
    if (map) {
        o->type = MSGPACK_OBJECT_MAP;
        o->via.map.size = (uint32_t) (n / 2);
        o->via.map.ptr = (msgpack_object_kv *) e;
    } else {
        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array.size = (uint32_t) n;
        o->via.array.ptr = e;
    }
    return DQ_OK;
}

static int dq__json_value(dq__json_t *j, unsigned depth);

static __attribute__((noinline)) int
dq__json_container(dq__json_t *j, unsigned depth)
{
    int    map = *j->p == '{';
    char   close = map ? '}' : ']';
    size_t base = j->nstk;
    int    rc;

    if (depth + 1 > j->max_depth) {
        return dq_error_set(j->err, DQ_EDECODE, NULL,
                            "JSON nested deeper than %u levels",
                            j->max_depth);
    }
    /* the container's own object, filled when it closes */
    if (dq__json_push(j) == NULL) {
        return dq__json_nomem(j);
    }
    base++;
    j->p++;
    dq__json_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return dq__json_close(j, base, map);
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
            rc = dq__json_string(j, 1);
            if (rc != DQ_OK) {
                return rc;
            }
            rc = dq__json_key(j, base, at);
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
        rc = dq__json_keys_sorted(j, base, (j->nstk - base) / 2, j->p);
        if (rc != DQ_OK) {
            return rc;
        }
    }
    j->p++;
    return dq__json_close(j, base, map);
}

static int
dq__json_value(dq__json_t *j, unsigned depth)
{
    dq__json_ws(j);
    if (j->p == j->end) {
        return dq__json_fail(j, j->p, "unexpected end of input", NULL, 0);
    }
    switch (*j->p) {
    case '{':
    case '[':
        return dq__json_container(j, depth);
    case '"':
        return dq__json_string(j, 0);
    case 't':
        return dq__json_literal(j, "true", 4, MSGPACK_OBJECT_BOOLEAN, 1);
    case 'f':
        return dq__json_literal(j, "false", 5, MSGPACK_OBJECT_BOOLEAN, 0);
    case 'n':
        return dq__json_literal(j, "null", 4, MSGPACK_OBJECT_NIL, 0);
    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
            return dq__json_number(j);
        }
        return dq__json_fail(j, j->p, "invalid token", NULL, 0);
    }
}

/* msgpack_object_kv is read as two msgpack_object (dq__json_close) */
typedef char dq__json_kv_check[sizeof(msgpack_object_kv)
                               == 2 * sizeof(msgpack_object) ? 1 : -1];

int
dq_json_parse(const char *buf, size_t len, const dq_limits_t *lim,
              msgpack_zone *zone, msgpack_object *out, dq_error_t *err)
{
    dq_limits_t    def;
    dq__json_t     j;
    msgpack_object local[DQ__JSON_STACK];
    int            rc;

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
    j.zone = zone;
    j.max_items = lim->max_items;
    j.max_depth = lim->max_depth < DQ__JSON_DEPTH ? lim->max_depth
                                                  : DQ__JSON_DEPTH;
    j.stk = local;
    j.stk_local = local;
    j.stk_cap = DQ__JSON_STACK;
    j.err = err;

    rc = dq__json_value(&j, 0);
    if (rc == DQ_OK) {
        dq__json_ws(&j);
        if (j.p != j.end) {
            rc = dq__json_fail(&j, j.p, "end of input expected", NULL, 0);
        }
    }
    if (rc == DQ_OK) {
        *out = j.stk[0];
    }
    if (j.stk != local) {
        free(j.stk);
    }
    free(j.keys);
    return rc;
}
