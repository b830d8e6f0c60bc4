/*
 * Example task library (and the one the worker tests use).
 *
 * Functions (positional arguments):
 *   noop                       does nothing, succeeds
 *   sleep_ms(ms [, path])      sleeps, then records to path if given
 *   record(path [, tag])       appends one line to path (below), succeeds
 *   fail_then_ok(path, n)      records; fails (DQ_TASK_FAIL) while the file
 *                              holds <= n lines, then succeeds
 *   quiet_then_ok(path, n)     the same with DQ_TASK_RETRY_QUIET
 *   always_fail(path)          records, fails every time
 *   permanent(message)         DQ_TASK_PERMANENT with that message
 *   echo_meta(path)            records, with the X-Example header as tag
 *   typed(path, i, s [, d [, b]])  typed accessors; kwargs n (int), s (str)
 * Handler: tasks whose URL is /example/handler are run through a handler
 * that logs "example handler: running <func>" and then dq_task_run().
 *
 * A record line: "<id> <host ms> <eta ms> <executions before> <retries>
 * <tag>\n", written with one O_APPEND write (whole lines even when several
 * threads or workers share the file). Host ms is CLOCK_REALTIME; on one
 * host that is the same clock Redis' TIME reads, so a test can compute
 * lateness = host ms - eta ms.
 *
 * Build: -fPIC -shared -fvisibility=hidden; the dq_task_* functions come
 * from the worker at load time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <deferred/task.h>

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Arg i as a NUL-terminated path in buf; 0 or -1 (error set on task). */
static int
arg_path(dq_task_t *t, size_t i, char *buf, size_t size)
{
    const char *p;
    size_t      n;

    if (dq_task_arg_str(t, i, &p, &n) != DQ_OK) {
        return -1;
    }
    if (n == 0 || n >= size || memchr(p, '\0', n) != NULL) {
        dq_task_set_error(t, "argument %zu: not a usable path", i);
        return -1;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    return 0;
}

static int
record_line(dq_task_t *t, const char *path, const char *tag, size_t taglen)
{
    char line[1024];
    int  fd, n;

    n = snprintf(line, sizeof(line), "%s %lld %lld %lld %lld %.*s\n",
                 dq_task_id(t), (long long) now_ms(),
                 (long long) dq_task_eta_ms(t),
                 (long long) dq_task_execution_count(t),
                 (long long) dq_task_retry_count(t), (int) taglen, tag);
    if (n < 0 || (size_t) n >= sizeof(line)) {
        dq_task_set_error(t, "record line too long");
        return -1;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        dq_task_set_error(t, "open %s: %s", path, strerror(errno));
        return -1;
    }
    if (write(fd, line, (size_t) n) != n) {
        dq_task_set_error(t, "write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static long
count_lines(const char *path)
{
    char    buf[4096];
    long    lines = 0;
    ssize_t r;
    int     fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return -1;
    }
    while ((r = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < r; i++) {
            lines += buf[i] == '\n';
        }
    }
    close(fd);
    return lines;
}

static dq_task_result_t
fn_noop(dq_task_t *t, void *u)
{
    (void) t;
    (void) u;
    return DQ_TASK_OK;
}

static dq_task_result_t
fn_record(dq_task_t *t, void *u)
{
    char        path[512];
    const char *tag = "-";
    size_t      taglen = 1;
    int64_t     itag;
    char        ibuf[32];

    (void) u;
    if (arg_path(t, 0, path, sizeof(path)) != 0) {
        return DQ_TASK_PERMANENT;
    }
    if (dq_task_nargs(t) > 1) {
        if (dq_task_arg_int(t, 1, &itag) == DQ_OK) {
            taglen = (size_t) snprintf(ibuf, sizeof(ibuf), "%lld",
                                       (long long) itag);
            tag = ibuf;
        } else if (dq_task_arg_str(t, 1, &tag, &taglen) != DQ_OK) {
            return DQ_TASK_PERMANENT;
        }
    }
    return record_line(t, path, tag, taglen) == 0 ? DQ_TASK_OK
                                                  : DQ_TASK_FAIL;
}

static dq_task_result_t
fn_sleep_ms(dq_task_t *t, void *u)
{
    int64_t         ms;
    struct timespec ts;
    char            path[512];

    (void) u;
    if (dq_task_arg_int(t, 0, &ms) != DQ_OK || ms < 0) {
        return DQ_TASK_PERMANENT;
    }
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { /* void */ }
    if (dq_task_nargs(t) > 1) {
        if (arg_path(t, 1, path, sizeof(path)) != 0) {
            return DQ_TASK_PERMANENT;
        }
        return record_line(t, path, "slept", 5) == 0 ? DQ_TASK_OK
                                                     : DQ_TASK_FAIL;
    }
    return DQ_TASK_OK;
}

static dq_task_result_t
fail_n(dq_task_t *t, dq_task_result_t how)
{
    char    path[512];
    int64_t n;
    long    runs;

    if (arg_path(t, 0, path, sizeof(path)) != 0
        || dq_task_arg_int(t, 1, &n) != DQ_OK)
    {
        return DQ_TASK_PERMANENT;
    }
    if (record_line(t, path, "run", 3) != 0) {
        return DQ_TASK_FAIL;
    }
    runs = count_lines(path);
    if (runs >= 0 && runs <= n) {
        dq_task_set_error(t, "failing on purpose (run %ld, succeeds after "
                          "%lld failures)", runs, (long long) n);
        return how;
    }
    return DQ_TASK_OK;
}

static dq_task_result_t
fn_fail_then_ok(dq_task_t *t, void *u)
{
    (void) u;
    return fail_n(t, DQ_TASK_FAIL);
}

static dq_task_result_t
fn_quiet_then_ok(dq_task_t *t, void *u)
{
    (void) u;
    return fail_n(t, DQ_TASK_RETRY_QUIET);
}

static dq_task_result_t
fn_always_fail(dq_task_t *t, void *u)
{
    char path[512];

    (void) u;
    if (arg_path(t, 0, path, sizeof(path)) != 0) {
        return DQ_TASK_PERMANENT;
    }
    record_line(t, path, "run", 3);
    dq_task_set_error(t, "always fails");
    return DQ_TASK_FAIL;
}

static dq_task_result_t
fn_permanent(dq_task_t *t, void *u)
{
    const char *m;
    size_t      n;

    (void) u;
    if (dq_task_arg_str(t, 0, &m, &n) != DQ_OK) {
        return DQ_TASK_PERMANENT;
    }
    dq_task_set_error(t, "%.*s", (int) n, m);
    return DQ_TASK_PERMANENT;
}

static dq_task_result_t
fn_echo_meta(dq_task_t *t, void *u)
{
    char        path[512];
    const char *h;

    (void) u;
    if (arg_path(t, 0, path, sizeof(path)) != 0) {
        return DQ_TASK_PERMANENT;
    }
    h = dq_task_header(t, "X-Example");
    return record_line(t, path, h ? h : "-", h ? strlen(h) : 1) == 0
           ? DQ_TASK_OK : DQ_TASK_FAIL;
}

/* typed(path, int, str [, double [, bool]]) with keyword arguments n (int)
 * and s (str): records "i=.. s=.. d=.. b=.. n=.. ks=..". Any wrong type is
 * a permanent failure carrying the accessor's message. */
static dq_task_result_t
fn_typed(dq_task_t *t, void *u)
{
    char        path[512], tag[600];
    int64_t     i, n = -1;
    const char *str, *ks = "-";
    size_t      slen, kslen = 1;
    double      d = 0;
    int         b = -1;

    (void) u;
    if (arg_path(t, 0, path, sizeof(path)) != 0
        || dq_task_arg_int(t, 1, &i) != DQ_OK
        || dq_task_arg_str(t, 2, &str, &slen) != DQ_OK
        || (dq_task_nargs(t) > 3 && dq_task_arg_double(t, 3, &d) != DQ_OK)
        || (dq_task_nargs(t) > 4 && dq_task_arg_bool(t, 4, &b) != DQ_OK)
        || (dq_task_kwarg(t, "n") && dq_task_kwarg_int(t, "n", &n) != DQ_OK)
        || (dq_task_kwarg(t, "s")
            && dq_task_kwarg_str(t, "s", &ks, &kslen) != DQ_OK))
    {
        return DQ_TASK_PERMANENT;
    }
    snprintf(tag, sizeof(tag), "i=%lld s=%.*s d=%g b=%d n=%lld ks=%.*s",
             (long long) i, (int) slen, str, d, b, (long long) n,
             (int) kslen, ks);
    return record_line(t, path, tag, strlen(tag)) == 0 ? DQ_TASK_OK
                                                       : DQ_TASK_FAIL;
}

static dq_task_result_t
handle_example(dq_task_t *t, void *u)
{
    (void) u;
    dq_log(t, DQ_LOG_INFO, "example handler: running %s", dq_task_func(t));
    return dq_task_run(t);
}

static const dq_function_t functions[] = {
    { "noop", fn_noop, 0, NULL },
    { "record", fn_record, 0, NULL },
    { "sleep_ms", fn_sleep_ms, 0, NULL },
    { "fail_then_ok", fn_fail_then_ok, 0, NULL },
    { "quiet_then_ok", fn_quiet_then_ok, 0, NULL },
    { "always_fail", fn_always_fail, 0, NULL },
    { "permanent", fn_permanent, 0, NULL },
    { "echo_meta", fn_echo_meta, 0, NULL },
    { "typed", fn_typed, 0, NULL },
    { NULL, NULL, 0, NULL }
};

static const dq_handler_t handlers[] = {
    { "/example/handler", handle_example, NULL },
    { NULL, NULL, NULL }
};

DQ_LIBRARY("example-tasks", functions, handlers, NULL, NULL);
