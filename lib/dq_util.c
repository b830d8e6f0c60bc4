/*
 * The contract's small pieces: strings, errors, Redis addresses, clocks,
 * task ids, limits, name rules and Redis key names. The only mutable
 * state: each thread's buffer of random bytes for task ids, and the fork
 * generation that invalidates it in a child (see dq_id_new).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dq_contract.h"

dq_str_t
dq_str_c(const char *s)
{
    dq_str_t r = { s, s ? strlen(s) : 0 };
    return r;
}

int
dq_str_eq(dq_str_t a, const char *cstr)
{
    size_t n = strlen(cstr);
    return a.len == n && (n == 0 || memcmp(a.ptr, cstr, n) == 0);
}

int
dq_error_set(dq_error_t *err, int code, const char *field,
             const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return code;
    }
    err->code = code;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    } else {
        snprintf(err->msg, sizeof(err->msg), "%s", dq_strerror(code));
    }
    return code;
}

const char *
dq_strerror(int code)
{
    switch (code) {
    case DQ_OK:         return "ok";
    case DQ_ERR:        return "error";
    case DQ_EINVAL:     return "invalid input";
    case DQ_ETOOBIG:    return "over the size limit";
    case DQ_EDUPLICATE: return "duplicate task name";
    case DQ_ETOMBSTONE: return "task name tombstoned";
    case DQ_EREDIS:     return "redis error";
    case DQ_ENOMEM:     return "out of memory";
    case DQ_ENOTFOUND:  return "not found";
    case DQ_ELEASE:     return "lease lost";
    case DQ_EDECODE:    return "malformed input";
    default:            return "unknown error";
    }
}

/* HOST, HOST:PORT, [IPV6], [IPV6]:PORT of p..end: 0, or -1. */
static int
dq__hostport_parse(const char *p, const char *end, int defport,
                   dq_str_t *host, int *port)
{
    const char *colon = NULL, *q;
    size_t      ncolons = 0;
    long        n;

    *port = defport;
    if (p == end) {
        return -1;
    }
    if (p[0] == '[') {
        q = memchr(p, ']', (size_t) (end - p));
        if (q == NULL || q == p + 1 || (q + 1 < end && q[1] != ':')) {
            return -1;
        }
        host->ptr = p + 1;
        host->len = (size_t) (q - p - 1);
        colon = q + 1 < end ? q + 1 : NULL;
    } else {
        for (q = p; q < end; q++) {
            if (*q == ':') {
                ncolons++;
                colon = q;
            }
        }
        if (ncolons > 1) {
            colon = NULL;                    /* a bare IPv6 address */
        }
        host->ptr = p;
        host->len = colon ? (size_t) (colon - p) : (size_t) (end - p);
    }
    if (host->len == 0 || host->len > 255
        || memchr(host->ptr, '\0', host->len)
        || memchr(host->ptr, '/', host->len))
    {
        return -1;
    }
    if (colon) {
        n = 0;
        for (q = colon + 1; q < end; q++) {
            if (*q < '0' || *q > '9' || n > 65535) {
                return -1;
            }
            n = n * 10 + (*q - '0');
        }
        if (q == colon + 1 || n < 1 || n > 65535) {
            return -1;
        }
        *port = (int) n;
    }
    return 0;
}

/* sentinel:MASTER@HOST[:PORT][,...] after the "sentinel:" */
static int
dq__sentinel_parse(const char *p, const char *end, dq_addr_t *a)
{
    const char *at, *comma, *q;

    at = memchr(p, '@', (size_t) (end - p));
    if (at == NULL || at == p || at - p > DQ_MAX_MASTER_NAME) {
        return -1;
    }
    for (q = p; q < at; q++) {
        if ((unsigned char) *q <= ' ' || *q == ',' || *q == 0x7f) {
            return -1;
        }
    }
    a->master.ptr = p;
    a->master.len = (size_t) (at - p);
    for (p = at + 1; ; p = comma + 1) {
        comma = memchr(p, ',', (size_t) (end - p));
        if (comma == NULL) {
            comma = end;
        }
        if (a->nsentinels == DQ_MAX_SENTINELS
            || dq__hostport_parse(p, comma, DQ_SENTINEL_PORT,
                                  &a->sentinel[a->nsentinels].host,
                                  &a->sentinel[a->nsentinels].port) != 0)
        {
            return -1;
        }
        a->nsentinels++;
        if (comma == end) {
            return 0;
        }
    }
}

int
dq_addr_parse(dq_str_t s, dq_addr_t *a, dq_error_t *err)
{
    const char *p = s.ptr, *end = s.ptr + s.len, *comma;

    memset(a, 0, sizeof(*a));
    a->port = DQ_REDIS_PORT;
    if (s.len == 0) {
        return dq_error_set(err, DQ_EINVAL, "redis", "empty Redis address");
    }
    if (s.len > 5 && memcmp(p, "unix:", 5) == 0) {
        a->path.ptr = p + 5;
        a->path.len = s.len - 5;
        return memchr(a->path.ptr, '\0', a->path.len)
               ? dq_error_set(err, DQ_EINVAL, "redis",
                              "Redis socket path contains a NUL byte")
               : DQ_OK;
    }
    if (s.len >= 9 && memcmp(p, "sentinel:", 9) == 0) {
        if (dq__sentinel_parse(p + 9, end, a) == 0) {
            a->port = 0;
            return DQ_OK;
        }
        memset(a, 0, sizeof(*a));
        return dq_error_set(err, DQ_EINVAL, "redis",
                            "invalid Redis address \"%.*s\" (expected "
                            "sentinel:MASTER@HOST[:PORT][,HOST[:PORT]...], "
                            "at most %d sentinels)",
                            (int) (s.len > 200 ? 200 : s.len), s.ptr,
                            DQ_MAX_SENTINELS);
    }
    if (s.len >= 8 && memcmp(p, "cluster:", 8) == 0) {
        for (p += 8; ; p = comma + 1) {
            comma = memchr(p, ',', (size_t) (end - p));
            if (comma == NULL) {
                comma = end;
            }
            if (a->nseeds == DQ_MAX_SEEDS
                || dq__hostport_parse(p, comma, DQ_REDIS_PORT,
                                      &a->seed[a->nseeds].host,
                                      &a->seed[a->nseeds].port) != 0)
            {
                memset(a, 0, sizeof(*a));
                return dq_error_set(err, DQ_EINVAL, "redis",
                                    "invalid Redis address \"%.*s\" "
                                    "(expected cluster:HOST[:PORT]"
                                    "[,HOST[:PORT]...], at most %d seed "
                                    "nodes)",
                                    (int) (s.len > 200 ? 200 : s.len),
                                    s.ptr, DQ_MAX_SEEDS);
            }
            a->nseeds++;
            if (comma == end) {
                a->port = 0;
                return DQ_OK;
            }
        }
    }
    if (dq__hostport_parse(p, end, DQ_REDIS_PORT, &a->host, &a->port) == 0) {
        return DQ_OK;
    }
    memset(a, 0, sizeof(*a));
    return dq_error_set(err, DQ_EINVAL, "redis",
                        "invalid Redis address \"%.*s\" (expected HOST, "
                        "HOST:PORT, [IPV6]:PORT, unix:PATH, "
                        "sentinel:MASTER@HOST:PORT,... or "
                        "cluster:HOST:PORT,...)",
                        (int) (s.len > 200 ? 200 : s.len), s.ptr);
}

static int
dq__hostport_format(dq_str_t host, int port, char *buf, size_t len)
{
    return memchr(host.ptr, ':', host.len)
           ? snprintf(buf, len, "[%.*s]:%d", (int) host.len, host.ptr, port)
           : snprintf(buf, len, "%.*s:%d", (int) host.len, host.ptr, port);
}

int
dq_addr_format(const dq_addr_t *a, char *buf, size_t len)
{
    size_t i, off;
    int    n;

    if (a->path.len) {
        n = snprintf(buf, len, "unix:%.*s", (int) a->path.len, a->path.ptr);
    } else if (a->master.len) {
        n = snprintf(buf, len, "sentinel:%.*s@", (int) a->master.len,
                     a->master.ptr);
        for (i = 0; n >= 0 && i < a->nsentinels; i++) {
            off = (size_t) n;
            if (off + (i > 0) >= len) {
                return -1;
            }
            if (i > 0) {
                buf[off++] = ',';
            }
            n = dq__hostport_format(a->sentinel[i].host, a->sentinel[i].port,
                                    buf + off, len - off);
            n = n < 0 ? n : n + (int) off;
        }
    } else if (a->nseeds) {
        n = snprintf(buf, len, "cluster:");
        for (i = 0; n >= 0 && i < a->nseeds; i++) {
            off = (size_t) n;
            if (off + (i > 0) >= len) {
                return -1;
            }
            if (i > 0) {
                buf[off++] = ',';
            }
            n = dq__hostport_format(a->seed[i].host, a->seed[i].port,
                                    buf + off, len - off);
            n = n < 0 ? n : n + (int) off;
        }
    } else {
        n = dq__hostport_format(a->host, a->port, buf, len);
    }
    return n >= 0 && (size_t) n < len ? n : -1;
}

int64_t
dq_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
dq__random(unsigned char *buf, size_t len)
{
    size_t  got = 0;
    ssize_t n;
    int     fd;

    while (got < len) {
        n = getrandom(buf + got, len - got, 0);
        if (n > 0) {
            got += (size_t) n;
        } else if (n < 0 && errno != EINTR) {
            break;
        }
    }
    if (got == len) {
        return;
    }
    /* no getrandom (old kernel, seccomp): the device, then give up loudly */
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && got < len) {
        n = read(fd, buf + got, len - got);
        if (n > 0) {
            got += (size_t) n;
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    if (got != len) {
        abort();    /* ids must be unique; never fall back to a weak PRNG */
    }
}

/*
 * Task ids take their 16 random bytes from a per-thread buffer filled by
 * one getrandom per DQ__ID_BUF / 16 ids (not one syscall per id).
 *
 * Threads: the buffer is thread-local, so no two threads share bytes.
 * Fork: nginx workers and the worker's children fork after ids may have
 * been made; a child inheriting the parent's unused bytes would make the
 * same ids as its parent. A pthread_atfork child handler (run by glibc in
 * the child of every fork(), registered once before the first buffer is
 * filled) bumps dq__id_gen, and a buffer filled in another generation is
 * thrown away unused. (vfork and posix_spawn children only exec; a raw
 * clone(2) or _Fork() would bypass the handler and is not used here.) The
 * handler is unregistered by glibc when a dlopen'ed module is unloaded.
 * Bytes are used once and never reused.
 */
#define DQ__ID_BUF  512

typedef struct {
    unsigned char bytes[DQ__ID_BUF];
    size_t        used;               /* DQ__ID_BUF = empty */
    unsigned long gen;                /* dq__id_gen when filled */
} dq__id_buf_t;

static __thread dq__id_buf_t dq__id_buf = { .used = DQ__ID_BUF };
static unsigned long         dq__id_gen = 1;
static pthread_once_t        dq__id_once = PTHREAD_ONCE_INIT;
static int                   dq__id_atfork_ok;

static void
dq__id_after_fork(void)
{
    /* in the child, single-threaded */
    __atomic_add_fetch(&dq__id_gen, 1, __ATOMIC_SEQ_CST);
}

static void
dq__id_init(void)
{
    dq__id_atfork_ok =
        pthread_atfork(NULL, NULL, dq__id_after_fork) == 0;
}

static void
dq__id_bytes(unsigned char r[16])
{
    dq__id_buf_t  *b = &dq__id_buf;
    unsigned long  gen;

    pthread_once(&dq__id_once, dq__id_init);
    if (!dq__id_atfork_ok) {
        dq__random(r, 16);  /* no fork detection: one syscall per id */
        return;
    }
    gen = __atomic_load_n(&dq__id_gen, __ATOMIC_SEQ_CST);
    if (b->used + 16 > DQ__ID_BUF || b->gen != gen) {
        dq__random(b->bytes, DQ__ID_BUF);
        b->used = 0;
        b->gen = gen;
    }
    memcpy(r, b->bytes + b->used, 16);
    memset(b->bytes + b->used, 0, 16);
    b->used += 16;
}

/* 128 bits -> 22 base64url digits (the last one holds 2 bits), three
 * bytes to four digits at a time */
void
dq_id_new(char out[DQ_ID_SIZE])
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[16];
    uint32_t      v;
    size_t        i;
    char         *p = out;

    dq__id_bytes(r);
    for (i = 0; i < 15; i += 3) {
        v = (uint32_t) r[i] << 16 | (uint32_t) r[i + 1] << 8 | r[i + 2];
        p[0] = alpha[v >> 18];
        p[1] = alpha[(v >> 12) & 63];
        p[2] = alpha[(v >> 6) & 63];
        p[3] = alpha[v & 63];
        p += 4;
    }
    p[0] = alpha[r[15] >> 2];
    p[1] = alpha[(r[15] & 3) << 4];
    out[DQ_ID_LEN] = '\0';
}

void
dq_limits_default(dq_limits_t *lim)
{
    lim->max_envelope = DQ_DEFAULT_MAX_ENVELOPE;
    lim->max_depth = DQ_DEFAULT_MAX_DEPTH;
    lim->max_items = DQ_DEFAULT_MAX_ITEMS;
    lim->max_batch = DQ_DEFAULT_MAX_BATCH;
}

/* ----------------------------------------------------------------- names */

/* name characters: 1 = [A-Za-z0-9_-], 2 = also in a function name (".:") */
static const unsigned char dq__name_chars[256] = {
    ['-'] = 3, ['_'] = 3, ['.'] = 2, [':'] = 2,
    ['0'] = 3, ['1'] = 3, ['2'] = 3, ['3'] = 3, ['4'] = 3, ['5'] = 3,
    ['6'] = 3, ['7'] = 3, ['8'] = 3, ['9'] = 3,
    ['A'] = 3, ['B'] = 3, ['C'] = 3, ['D'] = 3, ['E'] = 3, ['F'] = 3,
    ['G'] = 3, ['H'] = 3, ['I'] = 3, ['J'] = 3, ['K'] = 3, ['L'] = 3,
    ['M'] = 3, ['N'] = 3, ['O'] = 3, ['P'] = 3, ['Q'] = 3, ['R'] = 3,
    ['S'] = 3, ['T'] = 3, ['U'] = 3, ['V'] = 3, ['W'] = 3, ['X'] = 3,
    ['Y'] = 3, ['Z'] = 3,
    ['a'] = 3, ['b'] = 3, ['c'] = 3, ['d'] = 3, ['e'] = 3, ['f'] = 3,
    ['g'] = 3, ['h'] = 3, ['i'] = 3, ['j'] = 3, ['k'] = 3, ['l'] = 3,
    ['m'] = 3, ['n'] = 3, ['o'] = 3, ['p'] = 3, ['q'] = 3, ['r'] = 3,
    ['s'] = 3, ['t'] = 3, ['u'] = 3, ['v'] = 3, ['w'] = 3, ['x'] = 3,
    ['y'] = 3, ['z'] = 3,
};

/* 1..max characters, each with a bit of `set` in the table */
static int
dq__chars_valid(dq_str_t s, size_t max, unsigned set)
{
    size_t i;

    if (s.ptr == NULL || s.len == 0 || s.len > max) {
        return 0;
    }
    for (i = 0; i < s.len; i++) {
        if (!(dq__name_chars[(unsigned char) s.ptr[i]] & set)) {
            return 0;
        }
    }
    return 1;
}

int
dq_queue_name_valid(dq_str_t s)
{
    return dq__chars_valid(s, DQ_QUEUE_NAME_MAX, 1);
}

int
dq_task_name_valid(dq_str_t s)
{
    return dq__chars_valid(s, DQ_TASK_NAME_MAX, 1);
}

int
dq_func_name_valid(dq_str_t s)
{
    return dq__chars_valid(s, DQ_FUNC_NAME_MAX, 2);
}

/* The path (before '?') is the one the app will route on: no "//", no
 * '%' escape, no "." or ".." segment. A server normalises those (nginx's
 * merge_slashes, unescaping, dot segments), so "//_ngx_deferred/enqueue"
 * or "/%5Fngx_deferred/enqueue" would pass a prefix check on the raw URL
 * and still reach the enqueue location (a push loop). */
static int
dq__url_path_plain(dq_str_t s)
{
    size_t i, end, seg;

    for (end = 0; end < s.len && s.ptr[end] != '?'; end++) {
        /* the path's end */
    }
    seg = 1;
    for (i = 0; i <= end; i++) {
        if (i < end && s.ptr[i] == '%') {
            return 0;
        }
        if (i == end || s.ptr[i] == '/') {
            size_t n = i - seg;
            if (i < end && i > 0 && s.ptr[i - 1] == '/') {
                return 0;                           /* "//" */
            }
            if ((n == 1 && s.ptr[seg] == '.')
                || (n == 2 && s.ptr[seg] == '.' && s.ptr[seg + 1] == '.'))
            {
                return 0;                           /* "." or ".." */
            }
            seg = i + 1;
        }
    }
    return 1;
}

int
dq_url_valid(dq_str_t s)
{
    size_t i;

    if (s.ptr == NULL || s.len == 0 || s.len > DQ_URL_MAX || s.ptr[0] != '/') {
        return 0;
    }
    for (i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char) s.ptr[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            return 0;
        }
    }
    return dq__url_path_plain(s);
}

/* ------------------------------------------------------------------ keys */

static const char *const dq__key_suffix[DQ_KEY_V1__COUNT] = {
    "tasks", "eta", "leases", "dead", "errors", "names", "stats", "wake",
    "conf", "bucket", "unrunnable", "cold", "due",
    "state", "lease"                    /* v1 only */
};

static size_t
dq__key_format(char *buf, size_t size, const char *prefix, dq_str_t queue,
               dq_key_kind_t kind)
{
    size_t np, ns, n;

    if ((unsigned) kind >= DQ_KEY_V1__COUNT || !dq_shard_name_valid(queue)) {
        return 0;
    }
    /* "<prefix>{<queue>}:<suffix>", copied in pieces (a worker builds
     * nine keys per claim call: no printf) */
    np = strlen(prefix);
    ns = strlen(dq__key_suffix[kind]);
    n = np + 1 + queue.len + 2 + ns;
    if (n >= size) {
        return 0;
    }
    memcpy(buf, prefix, np);
    buf[np] = '{';
    memcpy(buf + np + 1, queue.ptr, queue.len);
    memcpy(buf + np + 1 + queue.len, "}:", 2);
    memcpy(buf + np + 3 + queue.len, dq__key_suffix[kind], ns);
    buf[n] = '\0';
    return n;
}

size_t
dq_key_format(char *buf, size_t size, dq_str_t queue, dq_key_kind_t kind)
{
    if ((unsigned) kind >= DQ_KEY__COUNT) {
        return 0;
    }
    return dq__key_format(buf, size, "dq2:", queue, kind);
}

size_t
dq_key_format_v1(char *buf, size_t size, dq_str_t queue, dq_key_kind_t kind)
{
    return dq__key_format(buf, size, "dq:", queue, kind);
}
