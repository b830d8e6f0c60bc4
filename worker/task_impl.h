/*
 * deferred-worker — the task object behind include/deferred/task.h
 * (internal to the worker).
 *
 * A dq_task_t is born from one entry of a claim reply: the envelope bytes
 * are copied (the reply dies when its callback returns) into the claim's
 * block, decoded strictly into the block's msgpack zone, and the claim
 * metadata kept. It lives
 * until its ack/retry/bury/release reply arrives. Between dispatch and the
 * work's completion it belongs to one pool thread; the loop thread only
 * touches the list links and the state fields.
 */
#ifndef DQ_TASK_IMPL_H
#define DQ_TASK_IMPL_H

#include <uv.h>

#include "worker.h"

typedef struct dq_cqueue_s dq_cqueue_t;   /* a served queue (child.c) */

typedef enum {
    DQ_TS_CLAIMED = 0,   /* not yet handed to the pool */
    DQ_TS_QUEUED,        /* in the pool's queue or running there */
    DQ_TS_DONE,          /* result known, reply to Redis under way */
} dq_task_state_t;

typedef struct dq_header_str_s dq_header_str_t;
typedef struct dq_task_block_s dq_task_block_t;

struct dq_task_s {
    dq_task_t            *prev, *next;    /* child's in-flight list */
    dq_cqueue_t          *q;
    dq_task_state_t       state;
    int                   lease_lost;     /* the heartbeat was fenced */
    int                   redo_op;        /* report.c: undelivered op */
    int                   resent;         /* ... and sent again */
    int                   held;           /* master's table entry + 1
                                             (held.c), 0 = none */
    int64_t               retry_delay_ms; /* for a resent retry */

    /* the claim */
    char                 *id;             /* NUL-terminated copies */
    char                 *queue;         /* the (shard) queue in Redis */
    const char           *uqueue;        /* the queue's name: queue
                                             without a shard's "#i" */
    int64_t               eta_ms;
    char                  claim[DQ_CLAIM_ID_MAX + 1]; /* claim id: fencing */
    int64_t               runs;           /* earlier runs that reached the
                                             function */
    int64_t               retries;        /* failed attempts so far */
    int64_t               first_run_ms;
    int64_t               failed_ms;      /* last failed attempt judged */
    int64_t               claim_now_ms;   /* Redis time of the claim */
    uint64_t              claim_loop_ms;  /* uv_now() at the claim */

    /* the envelope: NULL buf = missing; decoded = 0 = undecodable */
    char                 *buf;
    size_t                len;
    int                   decoded;
    dq_envelope_t         env;
    char                 *name;           /* NULL if unnamed */
    char                 *func;
    char                 *url;
    dq_header_str_t      *hdrs;           /* lazily NUL-terminated copies */

    /* what runs it */
    const dq_loader_t    *loader;
    const dq_fn_entry_t  *fn;
    const dq_handler_t   *handler;
    const dq_queue_conf_t *qc;            /* its queue's settings, or NULL */
    dq_retry_t            retry;          /* merged: task, queue, defaults */

    /* the result */
    dq_task_result_t      result;
    char                  error[512];
    uint64_t              start_loop_ms;
    uint64_t              run_start_ms;   /* pool thread's start stamp
                                             (timeout.c clock), atomic */
    int                   timed_out;      /* failed by timeout.c; the
                                             thread may still run it */
    int                   ran;            /* reached its function */
    void                 *tk_run;         /* a running tasklet's run
                                             (tasklet_task.c), or NULL */
    dq_task_t            *pool_next;     /* pool.c: queue / done links */
    dq_task_block_t      *block;          /* its claim's memory (task.c) */
};

/* The tasks of n claim entries (one claim reply), allocated together:
 * every task struct, its strings and its decoded envelope in one block
 * (a task bigger than 64 KiB in a block of its own), freed with the
 * block's last task. out[i] is NULL only on out-of-memory. When an
 * envelope is missing or undecodable, out[i]->error says why (and the
 * caller buries it). */
void dq_task_new_many(const dq_claimed_t *c, size_t n, dq_str_t queue,
                      const dq_limits_t *lim, const dq_loader_t *loader,
                      dq_task_t **out);
void dq_task_free(dq_task_t *t);

/* Pool thread: the URL handler if one is registered, else the function. */
dq_task_result_t dq_task_execute(dq_task_t *t);

/* The configuration tasks are created under (queue settings: push
 * routing, dq_task_push_*); set once at child start, NULL at its end. */
void dq_task_set_worker_conf(const dq_worker_conf_t *conf);

/* What tasks see as dq_worker_redis_address()/db(); set once at start. */
void dq_task_set_worker_redis(const char *address, const char *password,
                              int db);

/* log.c */
void dq_log_close(void);

#endif /* DQ_TASK_IMPL_H */
