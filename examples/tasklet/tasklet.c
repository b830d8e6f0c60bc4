/*
 * The tasklet example: the same task written twice, as a tasklet and as a
 * plain function, plus a sleeping tasklet for the concurrency test.
 *
 *   example.sum_tasklet(tag[, n])   DQ_FN_TASKLET: n (100) INCRBY commands
 *       on ex:<tag>:<i>, all in flight at once on the worker's own
 *       connection, their replies summed by a ReducingFuture and checked
 *       against a MultiFuture of the same commands; then
 *       RPUSH ex:<tag>:results "<sum>:<microseconds>".
 *   example.sum_plain(tag[, n])     the same, as a plain function on a pool
 *       thread: n synchronous round trips on the thread's own hiredis
 *       connection, one after the other.
 *   example.sleep_tasklet(ms, key)  DQ_FN_TASKLET: sleeps ms (a loop timer;
 *       the coroutine is suspended, the loop runs other tasks), then INCR
 *       key.
 *   example.misuse_plain()          a plain function that calls dq_sleep():
 *       on a pool thread there is no tasklet runtime, so it gets NULL and
 *       says so (what a task author sees when a function lacks
 *       DQ_FN_TASKLET).
 *   example.gauge_tasklet(ms, key)  DQ_FN_TASKLET: INCR key:now (how many
 *       run at this moment), remember the highest value in the sorted set
 *       key:seen, sleep ms, DECR key:now — shows tasklet_concurrency.
 *
 * Tasklet functions run on the worker's loop thread and must not block:
 * every Redis call goes through dq_redis_command(). The plain function
 * blocks its pool thread instead. examples/tasklet/measure.pl runs both
 * and prints the difference (docs/TASKLETS.md has the figures).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include <deferred/task.h>
#include <deferred/tasklet.h>

#define EX_MAX_N 10000

static int64_t
ex_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
ex_args(dq_task_t *task, const char **tag, size_t *tlen, int64_t *n)
{
    if (dq_task_arg_str(task, 0, tag, tlen) != DQ_OK) {
        return -1;
    }
    *n = 100;
    if (dq_task_nargs(task) > 1 && dq_task_arg_int(task, 1, n) != DQ_OK) {
        return -1;
    }
    if (*n < 1 || *n > EX_MAX_N) {
        dq_task_set_error(task, "n must be 1..%d", EX_MAX_N);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ tasklet */

static dq_task_result_t
ex_sum_tasklet(dq_task_t *task, void *udata)
{
    const char  *tag;
    size_t       tlen;
    int64_t      n, i, sum = 0, t0 = ex_now_us();
    dq_future_t *rf, *mf, *f, *bad;
    int          rc;

    (void) udata;
    if (ex_args(task, &tag, &tlen, &n) != 0) {
        return DQ_TASK_PERMANENT;
    }
    rf = dq_reducing_future_new(dq_reducer_sum, NULL, 10);
    mf = dq_multi_future_new();
    for (i = 0; i < n; i++) {
        f = dq_redis_command("INCRBY ex:%b:%lld %lld", tag, tlen,
                             (long long) i, (long long) i);
        if (f == NULL) {
            break;
        }
        dq_multi_add_dependent(rf, f);
        dq_multi_add_dependent(mf, f);
        dq_future_unref(f);
    }
    dq_multi_complete(rf);
    dq_multi_complete(mf);

    bad = mf;
    rc = dq_future_wait(mf);            /* suspends this tasklet only */
    if (rc == DQ_OK) {
        bad = rf;
        rc = dq_future_wait(rf);
    }
    if (rc != DQ_OK) {
        char buf[300];

        dq_future_format_exception(bad, buf, sizeof(buf));
        dq_task_set_error(task, "INCRBY: %s", buf);
        dq_future_unref(rf);
        dq_future_unref(mf);
        return DQ_TASK_FAIL;
    }
    dq_future_get_int(rf, &sum);
    if (dq_value_list_len(dq_future_result(mf)) != (size_t) i) {
        dq_task_set_error(task, "MultiFuture lost replies");
        rc = DQ_ERR;
    }
    dq_future_unref(rf);
    dq_future_unref(mf);
    if (rc != DQ_OK) {
        return DQ_TASK_FAIL;
    }

    f = dq_redis_command("RPUSH ex:%b:results %lld:%lld", tag, tlen,
                         (long long) sum, (long long) (ex_now_us() - t0));
    rc = dq_future_wait(f);
    if (rc != DQ_OK) {
        dq_task_set_error(task, "RPUSH: %s", dq_future_exception_message(f));
    }
    dq_future_unref(f);
    return rc == DQ_OK ? DQ_TASK_OK : DQ_TASK_FAIL;
}

static dq_task_result_t
ex_sleep_tasklet(dq_task_t *task, void *udata)
{
    int64_t      ms;
    const char  *key;
    size_t       klen;
    dq_future_t *f;
    int          rc;

    (void) udata;
    if (dq_task_arg_int(task, 0, &ms) != DQ_OK
        || dq_task_arg_str(task, 1, &key, &klen) != DQ_OK)
    {
        return DQ_TASK_PERMANENT;
    }
    f = dq_sleep((double) ms / 1000.0);
    rc = dq_future_wait(f);
    dq_future_unref(f);
    if (rc != DQ_OK) {
        dq_task_set_error(task, "sleep: %s", dq_tasklet_strerror(rc));
        return DQ_TASK_FAIL;
    }
    f = dq_redis_command("INCR %b", key, klen);
    rc = dq_future_wait(f);
    if (rc != DQ_OK) {
        dq_task_set_error(task, "INCR: %s", dq_future_exception_message(f));
    }
    dq_future_unref(f);
    return rc == DQ_OK ? DQ_TASK_OK : DQ_TASK_FAIL;
}

/* Wait for f and drop it; DQ_OK or the error (recorded on the task). */
static int
ex_wait(dq_task_t *task, dq_future_t *f, const char *what)
{
    int rc = f ? dq_future_wait(f) : DQ_ENOMEM;

    if (rc != DQ_OK) {
        dq_task_set_error(task, "%s: %s", what,
                          f ? dq_future_exception_message(f) : "no memory");
    }
    dq_future_unref(f);
    return rc;
}

static dq_task_result_t
ex_gauge_tasklet(dq_task_t *task, void *udata)
{
    int64_t      ms, now = 0;
    const char  *key;
    size_t       klen;
    dq_future_t *f;
    int          rc;

    (void) udata;
    if (dq_task_arg_int(task, 0, &ms) != DQ_OK
        || dq_task_arg_str(task, 1, &key, &klen) != DQ_OK)
    {
        return DQ_TASK_PERMANENT;
    }
    f = dq_redis_command("INCR %b:now", key, klen);
    if (f && dq_future_wait(f) == DQ_OK) {
        now = ((const struct redisReply *)
               dq_value_reply(dq_future_result(f)))->integer;
    }
    if ((rc = ex_wait(task, f, "INCR")) != DQ_OK
        || (rc = ex_wait(task, dq_redis_command("ZADD %b:seen %lld %lld",
                                                key, klen, (long long) now,
                                                (long long) now),
                         "ZADD")) != DQ_OK
        || (rc = ex_wait(task, dq_sleep((double) ms / 1000.0), "sleep"))
           != DQ_OK)
    {
        (void) ex_wait(task, dq_redis_command("DECR %b:now", key, klen),
                       "DECR");
        return DQ_TASK_FAIL;
    }
    rc = ex_wait(task, dq_redis_command("DECR %b:now", key, klen), "DECR");
    return rc == DQ_OK ? DQ_TASK_OK : DQ_TASK_FAIL;
}

/* -------------------------------------------------------------- plain */

/*
 * One synchronous connection per pool thread, made on first use. The key
 * has no destructor: libuv joins its pool threads at process exit, after
 * the worker has unloaded this library, so a destructor here would be
 * called in unmapped code. Every connection is on a list instead, freed by
 * ex_fini.
 */
typedef struct ex_conn_s {
    redisContext     *c;
    struct ex_conn_s *next;
} ex_conn_t;

static pthread_key_t   ex_conn_key;
static pthread_mutex_t ex_conns_lock = PTHREAD_MUTEX_INITIALIZER;
static ex_conn_t      *ex_conns;

static redisContext *
ex_conn(dq_task_t *task)
{
    ex_conn_t     *cc = pthread_getspecific(ex_conn_key);
    char           err[512];
    redisContext  *c;

    if (cc && cc->c && !cc->c->err) {
        return cc->c;
    }
    if (cc == NULL) {
        cc = calloc(1, sizeof(*cc));
        if (cc == NULL) {
            dq_task_set_error(task, "out of memory");
            return NULL;
        }
        pthread_mutex_lock(&ex_conns_lock);
        cc->next = ex_conns;
        ex_conns = cc;
        pthread_mutex_unlock(&ex_conns_lock);
        pthread_setspecific(ex_conn_key, cc);
    }
    redisFree(cc->c);
    cc->c = NULL;
    c = dq_worker_redis_connect(5000, err, sizeof(err));
    if (c == NULL) {
        dq_task_set_error(task, "%s", err);
        return NULL;
    }
    cc->c = c;
    return c;
}

static dq_task_result_t
ex_sum_plain(dq_task_t *task, void *udata)
{
    const char   *tag;
    size_t        tlen;
    int64_t       n, i, sum = 0, t0 = ex_now_us();
    redisContext *c;
    redisReply   *r;

    (void) udata;
    if (ex_args(task, &tag, &tlen, &n) != 0) {
        return DQ_TASK_PERMANENT;
    }
    if ((c = ex_conn(task)) == NULL) {
        return DQ_TASK_FAIL;
    }
    for (i = 0; i < n; i++) {
        r = redisCommand(c, "INCRBY ex:%b:%lld %lld", tag, tlen,
                         (long long) i, (long long) i);
        if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
            dq_task_set_error(task, "INCRBY: %s",
                              r ? r->str : c->errstr);
            freeReplyObject(r);
            return DQ_TASK_FAIL;
        }
        sum += r->integer;
        freeReplyObject(r);
    }
    r = redisCommand(c, "RPUSH ex:%b:results %lld:%lld", tag, tlen,
                     (long long) sum, (long long) (ex_now_us() - t0));
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        dq_task_set_error(task, "RPUSH: %s", r ? r->str : c->errstr);
        freeReplyObject(r);
        return DQ_TASK_FAIL;
    }
    freeReplyObject(r);
    return DQ_TASK_OK;
}

static dq_task_result_t
ex_misuse_plain(dq_task_t *task, void *udata)
{
    dq_future_t *f = dq_sleep(0.01);

    (void) udata;
    if (f == NULL) {
        dq_task_set_error(task, "dq_sleep() returned NULL: the tasklet API "
                          "is only for DQ_FN_TASKLET functions");
        return DQ_TASK_PERMANENT;
    }
    dq_future_unref(f);
    return DQ_TASK_OK;
}

static int
ex_init(void)
{
    return pthread_key_create(&ex_conn_key, NULL);
}

static void
ex_fini(void)
{
    ex_conn_t *cc;

    pthread_mutex_lock(&ex_conns_lock);
    while ((cc = ex_conns) != NULL) {
        ex_conns = cc->next;
        redisFree(cc->c);
        free(cc);
    }
    pthread_mutex_unlock(&ex_conns_lock);
    pthread_key_delete(ex_conn_key);
}

static const dq_function_t ex_functions[] = {
    { "example.sum_tasklet", ex_sum_tasklet, DQ_FN_TASKLET, NULL },
    { "example.sum_plain", ex_sum_plain, 0, NULL },
    { "example.sleep_tasklet", ex_sleep_tasklet, DQ_FN_TASKLET, NULL },
    { "example.gauge_tasklet", ex_gauge_tasklet, DQ_FN_TASKLET, NULL },
    { "example.misuse_plain", ex_misuse_plain, 0, NULL },
    { NULL, NULL, 0, NULL }
};

DQ_LIBRARY("tasklet-example", ex_functions, NULL, ex_init, ex_fini);
