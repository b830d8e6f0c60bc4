/*
 * examples/counter — the Counter sample of App Engine's deferred guide,
 * as a task library for deferred-worker.
 *
 *   do_something_later(key, amount)    registered as
 *                                      "counter.do_something_later":
 *                                      adds amount to the counter `key`
 *                                      (Redis key "counter:<key>"), then
 *                                      publishes the new count as plain
 *                                      digits to $DQ_COUNTER_DIR/<key>,
 *                                      the file nginx serves for
 *                                      /counter/get;
 *   handler for "/custom/path"         logs "Executing deferred task."
 *                                      and runs the task (the sample's
 *                                      custom_deferred()).
 *
 * Task functions run on the worker's pool threads and may block: each
 * thread keeps its own synchronous hiredis connection to the worker's
 * Redis (dq_worker_redis_connect(): address, password, database), made on
 * first use and freed when the thread ends. A Redis error fails the task, so the worker retries it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <deferred/task.h>

/* Every thread's connection is also on this list, so that fini frees the
 * connections of pool threads that have not exited by then. */
typedef struct counter_conn_s {
    redisContext          *c;
    struct counter_conn_s *next;
} counter_conn_t;

static pthread_key_t    counter_conn_key;
static pthread_mutex_t  counter_conns_lock = PTHREAD_MUTEX_INITIALIZER;
static counter_conn_t  *counter_conns;

static void
counter_conn_free(void *p)
{
    counter_conn_t **pp;

    pthread_mutex_lock(&counter_conns_lock);
    for (pp = &counter_conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = (*pp)->next;
            break;
        }
    }
    pthread_mutex_unlock(&counter_conns_lock);
    redisFree(((counter_conn_t *) p)->c);
    free(p);
}

static redisContext *
counter_conn(dq_task_t *t)
{
    counter_conn_t *cc = pthread_getspecific(counter_conn_key);
    redisContext  *c = cc ? cc->c : NULL;
    char           err[512];

    if (c != NULL && c->err == 0) {
        return c;
    }
    if (cc != NULL) {
        pthread_setspecific(counter_conn_key, NULL);
        counter_conn_free(cc);
    }
    c = dq_worker_redis_connect(5000, err, sizeof(err));
    if (c == NULL) {
        dq_task_set_error(t, "counter: %s", err);
        return NULL;
    }
    cc = malloc(sizeof(*cc));
    if (cc == NULL) {
        redisFree(c);
        dq_task_set_error(t, "counter: out of memory");
        return NULL;
    }
    cc->c = c;
    pthread_mutex_lock(&counter_conns_lock);
    cc->next = counter_conns;
    counter_conns = cc;
    pthread_mutex_unlock(&counter_conns_lock);
    pthread_setspecific(counter_conn_key, cc);
    return c;
}

/* Write the count as plain digits, atomically (tmp file + rename). */
static int
counter_publish(dq_task_t *t, const char *key, size_t keylen, long long n)
{
    const char *dir = getenv("DQ_COUNTER_DIR");
    char        path[1024], tmp[1100], digits[32];
    int         fd, len;

    if (dir == NULL || dir[0] == '\0') {
        return 0;    /* nothing to publish to */
    }
    snprintf(path, sizeof(path), "%s/%.*s", dir, (int) keylen, key);
    snprintf(tmp, sizeof(tmp), "%s.%lu.tmp", path,
             (unsigned long) pthread_self());
    len = snprintf(digits, sizeof(digits), "%lld", n);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        dq_task_set_error(t, "counter: open %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write(fd, digits, (size_t) len) != len || close(fd) != 0) {
        dq_task_set_error(t, "counter: write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        dq_task_set_error(t, "counter: rename %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static dq_task_result_t
do_something_later(dq_task_t *t, void *udata)
{
    const char   *key;
    size_t        keylen;
    int64_t       amount;
    redisContext *c;
    redisReply   *r;
    long long     count, previous;

    (void) udata;
    if (dq_task_arg_str(t, 0, &key, &keylen) != DQ_OK
        || dq_task_arg_int(t, 1, &amount) != DQ_OK)
    {
        return DQ_TASK_PERMANENT;    /* the accessors recorded why */
    }
    if (keylen == 0 || keylen > 200 || memchr(key, '/', keylen)
        || memchr(key, '\0', keylen) || (keylen <= 2 && key[0] == '.'))
    {
        dq_task_set_error(t, "counter: key must be 1-200 bytes, no '/'");
        return DQ_TASK_PERMANENT;
    }
    c = counter_conn(t);
    if (c == NULL) {
        return DQ_TASK_FAIL;
    }
    /* INCRBY once per execution: a retry after a lost ack may count twice,
     * as the App Engine sample would (tasks run at least once). */
    r = redisCommand(c, "INCRBY counter:%b %lld", key, keylen,
                     (long long) amount);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        dq_task_set_error(t, "counter: INCRBY failed: %s",
                          r ? r->str : c->errstr);
        freeReplyObject(r);
        return DQ_TASK_FAIL;
    }
    count = r->integer;
    freeReplyObject(r);
    previous = count - amount;
    dq_log(t, DQ_LOG_INFO, "counter %.*s: %lld + %lld = %lld", (int) keylen,
           key, previous, (long long) amount, count);
    return counter_publish(t, key, keylen, count) == 0 ? DQ_TASK_OK
                                                       : DQ_TASK_FAIL;
}

/* The sample's custom_deferred(): log, then run the task. */
static dq_task_result_t
custom_deferred(dq_task_t *t, void *udata)
{
    (void) udata;
    dq_log(t, DQ_LOG_INFO, "Executing deferred task.");
    return dq_task_run(t);
}

static int
counter_init(void)
{
    return pthread_key_create(&counter_conn_key, counter_conn_free) == 0
           ? 0 : -1;
}

static void
counter_fini(void)
{
    counter_conn_t *cc;

    /* the pool threads are done with their tasks when the library goes */
    pthread_key_delete(counter_conn_key);
    pthread_mutex_lock(&counter_conns_lock);
    while ((cc = counter_conns) != NULL) {
        counter_conns = cc->next;
        redisFree(cc->c);
        free(cc);
    }
    pthread_mutex_unlock(&counter_conns_lock);
}

static const dq_function_t counter_functions[] = {
    { "counter.do_something_later", do_something_later, 0, NULL },
    { NULL, NULL, 0, NULL }
};

static const dq_handler_t counter_handlers[] = {
    { "/custom/path", custom_deferred, NULL },
    { NULL, NULL, NULL }
};

DQ_LIBRARY("counter", counter_functions, counter_handlers, counter_init,
           counter_fini);
