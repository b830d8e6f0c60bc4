/*
 * ngx_deferred — the task ABI: how a shared library gives deferred-worker
 * functions to run.
 *
 * A task library defines exactly one exported symbol, `dq_library` (use
 * DQ_LIBRARY below), a table of named functions and optional URL handlers.
 * The worker dlopen()s the library, checks abi_version, and indexes the
 * table; a name that arrives in a task payload is only ever looked up in
 * that index, never passed to dlsym().
 *
 * Build a library with -fPIC -shared -fvisibility=hidden; the dq_task_*
 * accessors are provided by the worker executable at load time.
 *
 * Threading: a plain function runs on one of the worker's pool threads; it
 * may block; it must not keep `task` or anything obtained from it after it
 * returns (all strings and objects die with the task). Functions flagged
 * DQ_FN_TASKLET run on the worker's loop thread as coroutines (see
 * tasklet.h) and must not block; functions flagged DQ_FN_LOOP run on the
 * loop thread as plain calls (below).
 */
#ifndef DEFERRED_TASK_H
#define DEFERRED_TASK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include <deferred/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The task ABI a library is built for (its dq_library.abi_version). The
 * worker loads only libraries of its own version and says which version a
 * refused one was built for. 2: the tasklet runtime's call-site entry
 * points were renamed dq_*_at -> dq_*_loc (the macros are unchanged; a
 * version-1 library must be rebuilt). */
#define DQ_TASK_ABI_VERSION 2

/* What a task function returns. */
typedef enum {
    DQ_TASK_OK = 0,          /* done: acked, name tombstoned */
    DQ_TASK_FAIL = 1,        /* failed: retried with backoff until the retry
                                or age limit, then dead (error logged) */
    DQ_TASK_RETRY_QUIET = 2, /* SingularTaskFailure: retried with backoff,
                                counted, but not logged as an error */
    DQ_TASK_PERMANENT = 3    /* PermanentTaskFailure: dead at once */
} dq_task_result_t;

typedef struct dq_task_s dq_task_t;   /* opaque; owned by the worker */

typedef dq_task_result_t (*dq_task_fn)(dq_task_t *task, void *udata);

#define DQ_FN_TASKLET  0x1u   /* run as a coroutine on the loop */
/* May run on the worker's loop thread itself, right where its claim
 * arrives, with no hand-off to a pool thread: for short functions that
 * never block (no I/O, no sleep, no lock held for long). The worker times
 * every such call; a call longer than DQ_FN_LOOP_MAX_US that was on the
 * CPU that long or waited (slept, did I/O, met a contended lock) moves the
 * function to the pool for the rest of that worker's life, in all its
 * children (logged once per child); a call only preempted does not. Such a call is not preemptible: the queue's
 * `timeout` (or `function_timeout`) is judged when it returns, and a call
 * past it fails the task as "timed out" whatever it returned (charged,
 * retried or buried); while it runs its child does nothing else.
 * A worker that does not know the flag runs the function on its pool
 * (the ABI is unchanged). Not together with DQ_FN_TASKLET; a task whose
 * URL has a handler runs on the pool. */
#define DQ_FN_LOOP     0x2u
#define DQ_FN_LOOP_MAX_US 1000

typedef struct {
    const char *name;     /* [A-Za-z0-9_.:-]{1,200}, unique in the worker */
    dq_task_fn  fn;
    unsigned    flags;    /* DQ_FN_* */
    void       *udata;    /* passed to fn */
} dq_function_t;

/*
 * A URL handler: the analogue of a custom deferred.TaskHandler / the
 * run_from_request hook. It receives every task whose URL equals `url`
 * and decides how to run it; dq_task_run() runs the registered function.
 * Tasks whose URL has no handler run their function directly.
 */
typedef dq_task_result_t (*dq_handler_fn)(dq_task_t *task, void *udata);

typedef struct {
    const char   *url;    /* exact path, e.g. "/custom/path" */
    dq_handler_fn handle;
    void         *udata;
} dq_handler_t;

typedef struct {
    uint32_t             abi_version;   /* DQ_TASK_ABI_VERSION */
    const char          *name;          /* library name, for logs */
    const dq_function_t *functions;     /* terminated by {NULL} */
    const dq_handler_t  *handlers;      /* terminated by {NULL}, or NULL */
    /* Optional, called once per worker process after load / before unload.
     * init returns 0, or non-zero to refuse loading (give a reason with
     * dq_log). */
    int                (*init)(void);
    void               (*fini)(void);
} dq_library_t;

#define DQ_LIBRARY_SYMBOL "dq_library"

/* Define the library table:
 *   DQ_LIBRARY("counter", functions, handlers, NULL, NULL); */
#define DQ_LIBRARY(lname, fns, hdls, initfn, finifn)                          \
    DQ_EXPORT const dq_library_t dq_library = {                               \
        DQ_TASK_ABI_VERSION, (lname), (fns), (hdls), (initfn), (finifn)       \
    }

/* ------------------------------------------------------------ arguments */

/* Number of positional arguments. */
DQ_EXPORT size_t dq_task_nargs(const dq_task_t *task);

/* Raw argument i (NULL if out of range). */
DQ_EXPORT const msgpack_object *dq_task_arg(const dq_task_t *task, size_t i);

/* Typed accessors: DQ_OK, DQ_ENOTFOUND (no such argument) or DQ_EINVAL
 * (wrong type / out of range). Each records a message on the task, so a
 * function may simply `return DQ_TASK_PERMANENT` on failure. */
DQ_EXPORT int dq_task_arg_int(dq_task_t *task, size_t i, int64_t *out);
DQ_EXPORT int dq_task_arg_double(dq_task_t *task, size_t i, double *out);
DQ_EXPORT int dq_task_arg_bool(dq_task_t *task, size_t i, int *out);
/* String (or bin): pointer + length, not NUL-terminated, valid while the
 * task runs. */
DQ_EXPORT int dq_task_arg_str(dq_task_t *task, size_t i, const char **ptr,
                              size_t *len);

/* Keyword arguments (NULL if absent) and typed forms. */
DQ_EXPORT const msgpack_object *dq_task_kwarg(const dq_task_t *task,
                                              const char *key);
DQ_EXPORT int dq_task_kwarg_int(dq_task_t *task, const char *key,
                                int64_t *out);
DQ_EXPORT int dq_task_kwarg_str(dq_task_t *task, const char *key,
                                const char **ptr, size_t *len);

/* ------------------------------------------------------------- metadata */

/* NUL-terminated, valid while the task runs. name is NULL if unnamed. */
DQ_EXPORT const char *dq_task_id(const dq_task_t *task);
DQ_EXPORT const char *dq_task_name(const dq_task_t *task);
DQ_EXPORT const char *dq_task_queue(const dq_task_t *task);
DQ_EXPORT const char *dq_task_func(const dq_task_t *task);
DQ_EXPORT const char *dq_task_url(const dq_task_t *task);
/* X-AppEngine-TaskRetryCount: failed attempts before this one, whether
 * or not they reached the function (an expired lease counts). */
DQ_EXPORT int64_t dq_task_retry_count(const dq_task_t *task);
/* X-AppEngine-TaskExecutionCount: earlier runs that reached the function
 * (and failed). */
DQ_EXPORT int64_t dq_task_execution_count(const dq_task_t *task);
/* X-AppEngine-TaskETA, UTC ms. */
DQ_EXPORT int64_t dq_task_eta_ms(const dq_task_t *task);
/* A header carried with the task (case-insensitive name), or NULL. */
DQ_EXPORT const char *dq_task_header(const dq_task_t *task, const char *name);
/* Header i of the task (0, 1, ... in the order stored): name and value as
 * pointer + length, not NUL-terminated, valid while the task runs.
 * DQ_OK, or DQ_ENOTFOUND past the last one. */
DQ_EXPORT int dq_task_header_at(const dq_task_t *task, size_t i,
                                const char **name, size_t *nlen,
                                const char **value, size_t *vlen);

/* The Redis the worker serves, normalized whatever form the operator
 * configured: "HOST:PORT" (the port always given, 6379 by default),
 * "[IPV6]:PORT" for an IPv6 address, "unix:PATH", or
 * "sentinel:MASTER@HOST:PORT,..." (dq_worker_redis_connect() asks the
 * sentinels); HOST is as written
 * (a name is not resolved here). NULL outside a worker child. And the
 * database number. */
DQ_EXPORT const char *dq_worker_redis_address(void);
DQ_EXPORT int dq_worker_redis_db(void);

/* A new blocking hiredis connection to that Redis, authenticated and on
 * that database (the worker's own connect code), for libraries that keep
 * their own connection: one per pool thread, used only from plain
 * functions (the worker's connections belong to its loop; a tasklet uses
 * dq_redis_command). timeout_ms bounds the connect and every command.
 * NULL with err filled (err may be NULL). Free with redisFree(). */
struct redisContext;
DQ_EXPORT struct redisContext *dq_worker_redis_connect(int timeout_ms,
                                                      char *err,
                                                      size_t errlen);

/* ------------------------------------------------------------------ push */

/* The function a push queue's tasks run, whatever their own function:
 * a queue with `push_target URL` in the worker's configuration hands every
 * task to the library that registered this name (push/libdq_push.so),
 * which POSTs it to the app. */
#define DQ_PUSH_FUNCTION "dq.push"

/* The push settings that apply to this task: its queue's push_target
 * (NULL = not a push queue) and push_deadline (ms), and the worker's
 * push_secret (NULL = pushes go unsigned). Strings live as long as the
 * worker process. */
DQ_EXPORT const char *dq_task_push_target(const dq_task_t *task);
DQ_EXPORT int64_t dq_task_push_deadline_ms(const dq_task_t *task);
DQ_EXPORT const char *dq_task_push_secret(const dq_task_t *task);
/* The queue's push_require_ack (default 1): a 2xx answer counts as done
 * only when it carries X-Deferred-Result: ok. */
DQ_EXPORT int dq_task_push_require_ack(const dq_task_t *task);

/* -------------------------------------------------------------- results */

/* The error text recorded with a failed task (dead set, logs). */
DQ_EXPORT void dq_task_set_error(dq_task_t *task, const char *fmt, ...)
    DQ_PRINTF(2, 3);

/* From a handler: run the function registered for this task's name. */
DQ_EXPORT dq_task_result_t dq_task_run(dq_task_t *task);

/* ------------------------------------------------------------------ log */

#define DQ_LOG_ERROR  0
#define DQ_LOG_WARN   1
#define DQ_LOG_INFO   2
#define DQ_LOG_DEBUG  3

/* Log through the worker's logger (line prefixed with the task id when
 * task is not NULL). Thread-safe. */
DQ_EXPORT void dq_log(const dq_task_t *task, int level, const char *fmt, ...)
    DQ_PRINTF(3, 4);

#ifdef __cplusplus
}
#endif

#endif /* DEFERRED_TASK_H */
