/*
 * deferred-worker — logging.
 *
 * One line per call: "2026-11-22T00:10:00.123Z [level] <prefix>: text\n",
 * written with a single write(2) so lines from pool threads and from the
 * children of one master never interleave inside a line. Output is stderr
 * or a file opened O_APPEND; dq_log_reopen() reopens the file (SIGUSR1,
 * log rotation). A mutex guards the fd swap on reopen only: formatting
 * happens on the caller's stack.
 *
 * dq_log() is the entry point task libraries use (task.h); it prefixes the
 * line with the task id.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"
#include "task_impl.h"

#define DQ_LOG_LINE_MAX 4096

static struct {
    pthread_mutex_t lock;
    int             fd;           /* 2 = stderr */
    int             level;
    char           *path;         /* NULL: stderr */
    char            prefix[64];
    int             json;         /* log_format json */
} dq__log = { PTHREAD_MUTEX_INITIALIZER, 2, DQ_LOG_INFO, NULL, "", 0 };

static const char *dq__level_names[] = { "error", "warn", "info", "debug" };

/* dq_log_hold(): this thread's lines, written on release or when full */
static __thread struct {
    int     held;
    size_t  len;
    char    buf[PIPE_BUF];
} dq__held;

static void
dq__write_all(const char *p, size_t n)
{
    ssize_t w;

    pthread_mutex_lock(&dq__log.lock);
    do {
        w = write(dq__log.fd, p, n);
    } while (w < 0 && errno == EINTR);
    pthread_mutex_unlock(&dq__log.lock);
}

void
dq_log_hold(void)
{
    dq__held.held++;
}

void
dq_log_release(void)
{
    if (dq__held.held == 0 || --dq__held.held > 0) {
        return;
    }
    if (dq__held.len > 0) {
        dq__write_all(dq__held.buf, dq__held.len);
        dq__held.len = 0;
    }
}

/* One formatted line: into this thread's held buffer, else written. */
static void
dq__emit(const char *line, size_t n)
{
    if (dq__held.held > 0 && n <= PIPE_BUF) {
        if (dq__held.len + n > PIPE_BUF) {
            dq__write_all(dq__held.buf, dq__held.len);
            dq__held.len = 0;
        }
        memcpy(dq__held.buf + dq__held.len, line, n);
        dq__held.len += n;
        return;
    }
    dq__write_all(line, n);
}

int
dq_log_open(const char *path, int level)
{
    int fd;

    if (level < DQ_LOG_ERROR) {
        level = DQ_LOG_ERROR;
    }
    if (level > DQ_LOG_DEBUG) {
        level = DQ_LOG_DEBUG;
    }
    dq__log.level = level;

    if (path == NULL) {
        return 0;
    }

    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        dq_log_error("cannot open log file \"%s\": %s", path, strerror(errno));
        return -1;
    }

    pthread_mutex_lock(&dq__log.lock);
    free(dq__log.path);
    dq__log.path = strdup(path);
    if (dq__log.fd > 2) {
        close(dq__log.fd);
    }
    dq__log.fd = fd;
    pthread_mutex_unlock(&dq__log.lock);
    return 0;
}

int
dq_log_reopen(void)
{
    int fd, old;

    if (dq__log.path == NULL) {
        return 0;
    }
    fd = open(dq__log.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        dq_log_error("cannot reopen log file \"%s\": %s", dq__log.path,
                     strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&dq__log.lock);
    old = dq__log.fd;
    dq__log.fd = fd;
    pthread_mutex_unlock(&dq__log.lock);
    if (old > 2) {
        close(old);
    }
    return 0;
}

/* Called at exit so the sanitizer's leak check stays quiet. */
void
dq_log_close(void)
{
    pthread_mutex_lock(&dq__log.lock);
    free(dq__log.path);
    dq__log.path = NULL;
    if (dq__log.fd > 2) {
        close(dq__log.fd);
    }
    dq__log.fd = 2;
    pthread_mutex_unlock(&dq__log.lock);
}

void
dq_log_set_prefix(const char *prefix)
{
    snprintf(dq__log.prefix, sizeof(dq__log.prefix), "%s",
             prefix ? prefix : "");
}

int
dq_log_set_format(const char *format)
{
    if (format == NULL || strcmp(format, "text") == 0) {
        dq__log.json = 0;
    } else if (strcmp(format, "json") == 0) {
        dq__log.json = 1;
    } else {
        return -1;
    }
    return 0;
}

/* JSON string body of s[0..n) into out (room: 6n + 1); returns the end. */
static char *
dq__json_str(char *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char) c;
        } else if (c < 0x20) {
            *out++ = '\\'; *out++ = 'u'; *out++ = '0'; *out++ = '0';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        } else {
            *out++ = (char) c;      /* UTF-8 passes; the text is ours */
        }
    }
    return out;
}

/* A value that is a plain decimal integer is written as a number. */
static int
dq__json_int(const char *s, size_t n)
{
    size_t i = s[0] == '-';

    if (n == i || n - i > 18) {
        return 0;
    }
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/*
 * Quoted values (k="text"): dq_log_quote() writes text with '\\', '"' and
 * control bytes escaped (\\\\ \\" \\n \\r \\t \\xNN), so a value ends at the
 * first '"' that is not escaped, whatever the text holds: one line per
 * event, no field can be forged from a task's error text.
 */
const char *
dq_log_quote(char *buf, size_t size, const char *s)
{
    static const char  hex[] = "0123456789abcdef";
    size_t             n = 0;
    unsigned char      c;

    if (size == 0) {
        return "";
    }
    for (; s && *s && n + 5 < size; s++) {
        c = (unsigned char) *s;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char) c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            buf[n++] = '\\';
            buf[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            buf[n++] = '\\';
            buf[n++] = 'x';
            buf[n++] = hex[c >> 4];
            buf[n++] = hex[c & 15];
        } else {
            buf[n++] = (char) c;
        }
    }
    buf[n] = '\0';
    return buf;
}

/* the closing '"' of a value quoted by dq_log_quote (v: after the opening
 * one), followed by the end or a space; NULL if there is none */
static const char *
dq__quoted_end(const char *v, const char *end)
{
    for (; v < end; v++) {
        if (*v == '\\') {
            v++;
        } else if (*v == '"') {
            return (v + 1 == end || v[1] == ' ') ? v : NULL;
        }
    }
    return NULL;
}

static int
dq__hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* JSON string body of a value quoted by dq_log_quote (undone) */
static char *
dq__json_unquote(char *out, const char *s, size_t n)
{
    char  c;

    for (size_t i = 0; i < n; i++) {
        c = s[i];
        if (c == '\\' && i + 1 < n) {
            c = s[++i];
            if (c == 'n') {
                c = '\n';
            } else if (c == 'r') {
                c = '\r';
            } else if (c == 't') {
                c = '\t';
            } else if (c == 'x' && i + 2 < n && dq__hexval(s[i + 1]) >= 0
                       && dq__hexval(s[i + 2]) >= 0)
            {
                c = (char) (dq__hexval(s[i + 1]) * 16 + dq__hexval(s[i + 2]));
                i += 2;
            }
        }
        out = dq__json_str(out, &c, 1);
    }
    return out;
}

/*
 * log_format json: one object per line with the same fields as the text
 * line: "time", "level", "process" ("master", "child 3"), "task" (from a
 * task library's dq_log), "msg", and, when the message is "event: k=v
 * k=\"text\" ..." (every structured line: task finished/failed/dead...),
 * "msg" is the event and each k=v becomes a field (integers as numbers;
 * a quoted value, escaped by dq_log_quote, always a string, unescaped).
 * A message that does not parse that way stays whole in "msg".
 */
static size_t
dq__log_json(char *out, size_t size, const char *time, int level,
             const char *id, const char *msg, size_t len)
{
    char       *p = out, *end = out + size;
    const char *colon = NULL, *q, *k, *v, *ve;
    size_t      kl;
    int         ok = 0;

    if (size < 6 * len + 256 + 6 * sizeof(dq__log.prefix)) {
        return 0;
    }
    p += snprintf(p, (size_t) (end - p), "{\"time\":\"%s\",\"level\":\"%s\"",
                  time, dq__level_names[level]);
    if (dq__log.prefix[0]) {
        p += snprintf(p, (size_t) (end - p), ",\"process\":\"");
        p = dq__json_str(p, dq__log.prefix, strlen(dq__log.prefix));
        *p++ = '"';
    }
    if (id) {
        p += snprintf(p, (size_t) (end - p), ",\"task\":\"");
        p = dq__json_str(p, id, strlen(id));
        *p++ = '"';
    }

    /* "event: k=v ..." ? check the whole line parses before writing */
    colon = memchr(msg, ':', len);
    if (colon && colon + 1 < msg + len && colon[1] == ' '
        && memchr(msg, '=', (size_t) (colon - msg)) == NULL)
    {
        ok = 1;
        for (q = colon + 2; ok && q < msg + len; ) {
            k = q;
            while (q < msg + len && (*q == '_' || (*q >= 'a' && *q <= 'z')
                                     || (*q >= '0' && *q <= '9')))
            {
                q++;
            }
            if (q == k || q >= msg + len || *q != '=') {
                ok = 0;
                break;
            }
            q++;
            if (q < msg + len && *q == '"') {
                ve = dq__quoted_end(q + 1, msg + len);
                if (ve == NULL) {
                    ok = 0;
                    break;
                }
                q = ve + 1;
            } else {
                while (q < msg + len && *q != ' ') {
                    q++;
                }
            }
            if (q < msg + len) {
                q++;            /* the space */
            }
        }
    }

    p += snprintf(p, (size_t) (end - p), ",\"msg\":\"");
    if (!ok) {
        p = dq__json_str(p, msg, len);
        *p++ = '"';
    } else {
        p = dq__json_str(p, msg, (size_t) (colon - msg));
        *p++ = '"';
        for (q = colon + 2; q < msg + len; ) {
            k = q;
            while (*q != '=') {
                q++;
            }
            kl = (size_t) (q - k);
            q++;
            *p++ = ',';
            *p++ = '"';
            p = dq__json_str(p, k, kl);
            *p++ = '"';
            *p++ = ':';
            if (*q == '"') {
                ve = dq__quoted_end(q + 1, msg + len);
                *p++ = '"';
                p = dq__json_unquote(p, q + 1, (size_t) (ve - q - 1));
                *p++ = '"';
                q = ve + 1;
            } else {
                v = q;
                while (q < msg + len && *q != ' ') {
                    q++;
                }
                ve = q;
                if (dq__json_int(v, (size_t) (ve - v))) {
                    memcpy(p, v, (size_t) (ve - v));
                    p += ve - v;
                } else {
                    *p++ = '"';
                    p = dq__json_str(p, v, (size_t) (ve - v));
                    *p++ = '"';
                }
            }
            if (q < msg + len) {
                q++;
            }
        }
    }
    *p++ = '}';
    *p++ = '\n';
    return (size_t) (p - out);
}

int
dq_log_level(void)
{
    return dq__log.level;
}

static __thread struct {
    time_t sec;
    size_t len;
    char   text[32];
} dq__tcache;

/* Append a NUL-terminated piece to a line being built (the header: date,
 * level, prefix and id fit well inside DQ_LOG_LINE_MAX). */
static size_t
dq__cat(char *line, size_t n, const char *s)
{
    size_t k = strlen(s);

    if (k > 512) {
        k = 512;
    }
    memcpy(line + n, s, k);
    return n + k;
}

static void
dq__log_write(int level, const char *id, const char *fmt, va_list ap)
{
    char            line[DQ_LOG_LINE_MAX];
    struct timespec ts;
    struct tm       tm;
    size_t          n, msgat;
    int             r, ms;

    if (level > dq__log.level) {
        return;
    }
    if (level < DQ_LOG_ERROR) {
        level = DQ_LOG_ERROR;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != dq__tcache.sec || dq__tcache.len == 0) {
        /* the date and time to the second, formatted once per second per
         * thread (a busy child logs a line per finished task) */
        gmtime_r(&ts.tv_sec, &tm);
        dq__tcache.len = strftime(dq__tcache.text, sizeof(dq__tcache.text),
                                  "%Y-%m-%dT%H:%M:%S", &tm);
        dq__tcache.sec = ts.tv_sec;
    }
    n = dq__tcache.len;
    memcpy(line, dq__tcache.text, n);
    ms = (int) (ts.tv_nsec / 1000000);
    line[n++] = '.';
    line[n++] = (char) ('0' + ms / 100);
    line[n++] = (char) ('0' + ms / 10 % 10);
    line[n++] = (char) ('0' + ms % 10);
    n = dq__cat(line, n, "Z [");
    n = dq__cat(line, n, dq__level_names[level]);
    n = dq__cat(line, n, "] ");
    if (dq__log.prefix[0]) {
        n = dq__cat(line, n, dq__log.prefix);
        n = dq__cat(line, n, ": ");
    }
    if (id) {
        n = dq__cat(line, n, "task ");
        n = dq__cat(line, n, id);     /* an id: at most DQ_ID_MAX bytes */
        n = dq__cat(line, n, ": ");
    }
    msgat = n;
    if (fmt[0] == '%' && fmt[1] == 's' && fmt[2] == '\0') {
        /* a message built by the caller: copied, no printf */
        const char *msg = va_arg(ap, const char *);
        size_t      k = strlen(msg);

        if (k > sizeof(line) - n - 2) {
            k = sizeof(line) - n - 2;
        }
        memcpy(line + n, msg, k);
        r = (int) k;
    } else {
        r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    }
    if (r < 0) {
        r = 0;
    }
    n += (size_t) r;
    if (n > sizeof(line) - 2) {
        n = sizeof(line) - 2;   /* truncated */
    }
    /* one line, whatever the message held */
    for (size_t i = 0; i < n; i++) {
        if (line[i] == '\n' || line[i] == '\r') {
            line[i] = ' ';
        }
    }
    line[n++] = '\n';

    if (dq__log.json) {
        char   *js;
        size_t  head = 24, jn;    /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */

        line[head] = '\0';
        js = malloc(6 * n + 1024);
        jn = js ? dq__log_json(js, 6 * n + 1024, line, level, id,
                               line + msgat, n - 1 - msgat) : 0;
        if (jn) {
            dq__emit(js, jn);
            free(js);
            return;
        }
        free(js);
        line[head] = ' ';
    }

    dq__emit(line, n);
}

void
dq_logf(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    dq__log_write(level, NULL, fmt, ap);
    va_end(ap);
}

DQ_EXPORT void
dq_log(const dq_task_t *task, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    dq__log_write(level, task ? task->id : NULL, fmt, ap);
    va_end(ap);
}
