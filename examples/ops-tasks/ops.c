/*
 * Operations test library: the task functions the production tests
 * (t/7N-*.t) need beyond examples/tasks. Built twice, as
 * libdq_ops_v1.so and libdq_ops_v2.so (OPS_VERSION), so a reload test can
 * tell which code ran.
 *
 * Functions (positional arguments); every line is one O_APPEND write, so
 * whole lines survive many threads and processes sharing the file:
 *   ops.run(path)          "R <id> <ms> <pid> <execs> <retries> v<N>"
 *   ops.segv(path, n)      n == 13: SIGSEGV (kills its child); else ops.run
 *   ops.span(path, ms)     "S <id> <ms> <pid>", sleeps ms, "E <id> <ms>
 *                          <pid> <execs> <retries>": start/end for rate
 *                          and concurrency
 *   ops.version(path)      "V <id> <pid> v<N>"
 *   ops.loop(path, us)     "L <id> <1 on the loop thread|0>", then busy
 *                          for us microseconds (DQ_FN_LOOP)
 *   ops.hang(path, ms)     "H <id> <1 on the loop thread|0>", then sleeps
 *                          ms (DQ_FN_LOOP breaking its promise: blocks)
 *   ops.ywait(path, us)    "W <id> <1 on the loop thread|0>", then waits
 *                          for a thread of its own that computes for us
 *                          microseconds, by sched_yield() (DQ_FN_LOOP
 *                          breaking its promise without a voluntary
 *                          switch: a yield counts as involuntary)
 * <ms> is CLOCK_REALTIME in ms.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <deferred/task.h>

#ifndef OPS_VERSION
#define OPS_VERSION 1
#endif

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
put_line(dq_task_t *t, const char *fmt, ...) DQ_PRINTF(2, 3);

static int
put_line(dq_task_t *t, const char *fmt, ...)
{
    char        path[1024], line[512];
    const char *p;
    size_t      n;
    va_list     ap;
    int         fd, len;

    if (dq_task_arg_str(t, 0, &p, &n) != DQ_OK) {
        return -1;
    }
    if (n == 0 || n >= sizeof(path) || memchr(p, '\0', n)) {
        dq_task_set_error(t, "argument 0: not a usable path");
        return -1;
    }
    memcpy(path, p, n);
    path[n] = '\0';
    va_start(ap, fmt);
    len = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (len < 0 || len >= (int) sizeof(line)) {
        return -1;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        dq_task_set_error(t, "open %s failed", path);
        return -1;
    }
    if (write(fd, line, (size_t) len) != len) {
        close(fd);
        dq_task_set_error(t, "write %s failed", path);
        return -1;
    }
    close(fd);
    return 0;
}

static dq_task_result_t
fn_run(dq_task_t *t, void *u)
{
    (void) u;
    if (put_line(t, "R %s %lld %ld %lld %lld v%d\n", dq_task_id(t), now_ms(),
                 (long) getpid(), (long long) dq_task_execution_count(t),
                 (long long) dq_task_retry_count(t), OPS_VERSION) != 0)
    {
        return DQ_TASK_FAIL;
    }
    return DQ_TASK_OK;
}

static dq_task_result_t
fn_segv(dq_task_t *t, void *u)
{
    int64_t n;

    if (dq_task_arg_int(t, 1, &n) != DQ_OK) {
        return DQ_TASK_PERMANENT;
    }
    if (n == 13) {
        /* a real crash: the child dies, its leases come back later */
        raise(SIGSEGV);
    }
    return fn_run(t, u);
}

static dq_task_result_t
fn_span(dq_task_t *t, void *u)
{
    int64_t         ms;
    struct timespec ts;

    (void) u;
    if (dq_task_arg_int(t, 1, &ms) != DQ_OK || ms < 0 || ms > 600000) {
        return DQ_TASK_PERMANENT;
    }
    if (put_line(t, "S %s %lld %ld\n", dq_task_id(t), now_ms(),
                 (long) getpid()) != 0)
    {
        return DQ_TASK_FAIL;
    }
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000;
    while (nanosleep(&ts, &ts) != 0) {
        /* EINTR: sleep the rest */
    }
    if (put_line(t, "E %s %lld %ld %lld %lld\n", dq_task_id(t), now_ms(),
                 (long) getpid(), (long long) dq_task_execution_count(t),
                 (long long) dq_task_retry_count(t)) != 0)
    {
        return DQ_TASK_FAIL;
    }
    return DQ_TASK_OK;
}

static dq_task_result_t
fn_version(dq_task_t *t, void *u)
{
    (void) u;
    if (put_line(t, "V %s %ld v%d\n", dq_task_id(t), (long) getpid(),
                 OPS_VERSION) != 0)
    {
        return DQ_TASK_FAIL;
    }
    return DQ_TASK_OK;
}

/* busy on the CPU for us microseconds (ops.loop, ops.ywait's helper) */
static void
spin_us(int64_t us)
{
    struct timespec a, b;

    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000
             < us);
}

/* ops.loop(path, us): "L <id> <on the loop thread: 1|0>", then spins
 * for us microseconds; flagged DQ_FN_LOOP (the worker child's loop thread
 * is its process's main thread: its tid == the pid). */
static dq_task_result_t
fn_loop(dq_task_t *t, void *u)
{
    int64_t  us;

    (void) u;
    if (dq_task_arg_int(t, 1, &us) != DQ_OK || us < 0 || us > 1000000) {
        return DQ_TASK_PERMANENT;
    }
    if (put_line(t, "L %s %d\n", dq_task_id(t),
                 (long) syscall(SYS_gettid) == (long) getpid() ? 1 : 0) != 0)
    {
        return DQ_TASK_FAIL;
    }
    spin_us(us);
    return DQ_TASK_OK;
}

/* ops.hang(path, ms): "H <id> <on the loop thread: 1|0>", then sleeps ms
 * (at most 60 s): a DQ_FN_LOOP function that blocks its thread. */
static dq_task_result_t
fn_hang(dq_task_t *t, void *u)
{
    int64_t         ms;
    struct timespec ts;

    (void) u;
    if (dq_task_arg_int(t, 1, &ms) != DQ_OK || ms < 0 || ms > 60000) {
        return DQ_TASK_PERMANENT;
    }
    if (put_line(t, "H %s %d\n", dq_task_id(t),
                 (long) syscall(SYS_gettid) == (long) getpid() ? 1 : 0) != 0)
    {
        return DQ_TASK_FAIL;
    }
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000;
    while (nanosleep(&ts, &ts) != 0) {
        /* interrupted: sleep the rest */
    }
    return DQ_TASK_OK;
}

/* ops.ywait's helper: computes for its call's us, then raises its call's
 * flag (each call its own: calls on the pool run at once) */
typedef struct {
    int64_t     us;
    atomic_int  done;
} ywait_t;

static void *
ywait_helper(void *arg)
{
    ywait_t *w = arg;

    spin_us(w->us);
    atomic_store(&w->done, 1);
    return NULL;
}

/* ops.ywait(path, us): "W <id> <on the loop thread: 1|0>", then yields
 * the CPU until its helper thread computed for us microseconds: holds the
 * loop thread without being on the CPU and without a voluntary switch
 * (review 9Z, finding 1) */
static dq_task_result_t
fn_ywait(dq_task_t *t, void *u)
{
    ywait_t    w;
    pthread_t  th;

    (void) u;
    if (dq_task_arg_int(t, 1, &w.us) != DQ_OK || w.us < 0
        || w.us > 1000000)
    {
        return DQ_TASK_PERMANENT;
    }
    if (put_line(t, "W %s %d\n", dq_task_id(t),
                 (long) syscall(SYS_gettid) == (long) getpid() ? 1 : 0) != 0)
    {
        return DQ_TASK_FAIL;
    }
    atomic_init(&w.done, 0);
    if (pthread_create(&th, NULL, ywait_helper, &w) != 0) {
        return DQ_TASK_FAIL;
    }
    while (!atomic_load(&w.done)) {
        sched_yield();
    }
    pthread_join(th, NULL);     /* before w goes */
    return DQ_TASK_OK;
}

static const dq_function_t functions[] = {
    { "ops.hang", fn_hang, DQ_FN_LOOP, NULL },
    { "ops.ywait", fn_ywait, DQ_FN_LOOP, NULL },
    { "ops.loop", fn_loop, DQ_FN_LOOP, NULL },
    { "ops.run", fn_run, 0, NULL },
    { "ops.segv", fn_segv, 0, NULL },
    { "ops.span", fn_span, 0, NULL },
    { "ops.version", fn_version, 0, NULL },
    { NULL, NULL, 0, NULL }
};

DQ_LIBRARY("ops-tasks", functions, NULL, NULL, NULL);
