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
} dq__log = { PTHREAD_MUTEX_INITIALIZER, 2, DQ_LOG_INFO, NULL, "" };

static const char *dq__level_names[] = { "error", "warn", "info", "debug" };

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
dq_log_level(void)
{
    return dq__log.level;
}

static void
dq__log_write(int level, const char *id, const char *fmt, va_list ap)
{
    char            line[DQ_LOG_LINE_MAX];
    struct timespec ts;
    struct tm       tm;
    size_t          n;
    int             r;
    ssize_t         w;

    if (level > dq__log.level) {
        return;
    }
    if (level < DQ_LOG_ERROR) {
        level = DQ_LOG_ERROR;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03ldZ [%s] %s%s%s%s%s",
                 ts.tv_nsec / 1000000, dq__level_names[level],
                 dq__log.prefix, dq__log.prefix[0] ? ": " : "",
                 id ? "task " : "", id ? id : "", id ? ": " : "");
    n += (size_t) r;
    r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
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

    pthread_mutex_lock(&dq__log.lock);
    do {
        w = write(dq__log.fd, line, n);
    } while (w < 0 && errno == EINTR);
    pthread_mutex_unlock(&dq__log.lock);
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
