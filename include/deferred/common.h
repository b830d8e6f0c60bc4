/*
 * ngx_deferred — types and error codes shared by every public header.
 *
 * Error convention (libuv's): functions return DQ_OK (0) or a negative
 * DQ_E* code; the human-readable detail lives on the object the call was
 * made on (client, task, error struct), never in a global.
 */
#ifndef DEFERRED_COMMON_H
#define DEFERRED_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DQ_EXPORT __attribute__((visibility("default")))
#define DQ_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DQ_EXPORT
#define DQ_PRINTF(f, a)
#endif

/* Result codes. */
#define DQ_OK          0
#define DQ_ERR        -1   /* generic failure; see the error text */
#define DQ_EINVAL     -2   /* invalid input (bad name, bad type, bad field) */
#define DQ_ETOOBIG    -3   /* envelope or body over the configured limit */
#define DQ_EDUPLICATE -4   /* a task with this name is waiting or running */
#define DQ_ETOMBSTONE -5   /* a task with this name ran within the window */
#define DQ_EREDIS     -6   /* Redis unreachable, timed out or answered error */
#define DQ_ENOMEM     -7
#define DQ_ENOTFOUND  -8   /* unknown task, function, queue */
#define DQ_ELEASE     -9   /* fencing token no longer matches the lease */
#define DQ_EDECODE   -10   /* malformed msgpack / JSON */

/* Static English name of a DQ_E* code ("duplicate task name", ...). */
DQ_EXPORT const char *dq_strerror(int code);

/* App Engine's limits on names. */
#define DQ_QUEUE_NAME_MAX  100  /* [A-Za-z0-9_-]{1,100} */
#define DQ_TASK_NAME_MAX   500  /* [A-Za-z0-9_-]{1,500} */
#define DQ_FUNC_NAME_MAX   200  /* [A-Za-z0-9_.:-]{1,200} */
#define DQ_URL_MAX        2048  /* absolute path, starts with '/' */

/* Task ids: 22 characters of [A-Za-z0-9_-] (128 random bits). */
#define DQ_ID_LEN   22
#define DQ_ID_SIZE  (DQ_ID_LEN + 1)

#define DQ_DEFAULT_QUEUE "default"
#define DQ_DEFAULT_URL   "/_ah/queue/deferred"

/*
 * Retry options (App Engine's retry_parameters). A field set to -1 is
 * "not given": the queue's configuration, then the built-in default, apply.
 * Built-in defaults: retry_limit 5, age_limit none, min_backoff 100 ms,
 * max_backoff 3600 s, max_doublings 16.
 */
typedef struct dq_retry_s {
    int64_t retry_limit;      /* failed attempts allowed before dead */
    int64_t age_limit_ms;     /* since the first run; 0 = no limit */
    int64_t min_backoff_ms;
    int64_t max_backoff_ms;
    int64_t max_doublings;
} dq_retry_t;

#define DQ_RETRY_UNSET { -1, -1, -1, -1, -1 }

#define DQ_DEFAULT_RETRY_LIMIT     5
#define DQ_DEFAULT_AGE_LIMIT_MS    0
#define DQ_DEFAULT_MIN_BACKOFF_MS  100
#define DQ_DEFAULT_MAX_BACKOFF_MS  3600000
#define DQ_DEFAULT_MAX_DOUBLINGS   16

/* One HTTP-style header carried with a task (X-AppEngine-* style). */
typedef struct dq_header_s {
    const char *name;
    const char *value;
} dq_header_t;

#ifdef __cplusplus
}
#endif

#endif /* DEFERRED_COMMON_H */
