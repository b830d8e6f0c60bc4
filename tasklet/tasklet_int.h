/*
 * Futures and tasklets — internals shared by tasklet/future*.c,
 * tasklet/coro*.c and tasklet/tasklet*.c (include/deferred/tasklet.h is the
 * public side, tasklet_host.h the few calls an embedding program such as
 * the worker makes).
 *
 * One runtime per thread (dq__rt, thread-local): the loop, the run queue of
 * loop callbacks (drained by a uv_idle handle that is active only while the
 * queue is not empty), the list of pending futures (for dumps and deadlock
 * messages), the coroutine that is running now and the stack pool.
 *
 * Invariants:
 *   - a future's callback nodes are on exactly one list: the future's own
 *     (not run yet), the run queue (loop callbacks of a done future), or
 *     the free list;
 *   - a done future never changes again; its loop callbacks hold one
 *     reference on it each until they have run;
 *   - only the main context (the thread's own stack) runs the loop and the
 *     run queue; tasklets run only between a resume and their next
 *     suspension, with rt->current pointing at them.
 */
#ifndef DQ_TASKLET_INT_H
#define DQ_TASKLET_INT_H

#include <stddef.h>
#include <stdint.h>
#include <ucontext.h>

#include <uv.h>

#include <deferred/tasklet.h>

#include "tasklet_host.h"

#if defined(__SANITIZE_ADDRESS__)
#define DQ__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DQ__ASAN 1
#endif
#endif

typedef struct dq__rt_s   dq__rt_t;
typedef struct dq__coro_s dq__coro_t;
typedef struct dq__node_s dq__node_t;

/* ---------------------------------------------------------- callbacks */

struct dq__node_s {
    dq__node_t   *next;
    dq_future_cb  cb;
    dq_future_t  *f;          /* the future (ref held while queued), or
                                 NULL for plain run-queue items */
    void         *arg;
    int           immediate;
};

/* ------------------------------------------------------------- futures */

typedef enum {
    DQ__FUT_PLAIN = 0,
    DQ__FUT_TASKLET,
    DQ__FUT_MULTI,
    DQ__FUT_QUEUE,
    DQ__FUT_SERIAL,
    DQ__FUT_REDUCING,
    DQ__FUT_SLEEP,
    DQ__FUT_REDIS,
    DQ__FUT_TOPLEVEL
} dq__fut_kind_t;

struct dq_future_s {
    unsigned          refs;
    uint8_t           state;       /* dq_future_state_t */
    uint8_t           kind;        /* dq__fut_kind_t */
    uint8_t           flow;        /* flow exception: not logged */
    uint8_t           seen;        /* exception looked at by someone */
    uint8_t           listed;      /* on rt->pending */
    int               exc_code;    /* 0: result (when done) */
    char             *exc_msg;
    dq_site_t        *tb;
    size_t            ntb;
    dq_value_t        result;
    dq__node_t       *cbs;         /* callbacks not run yet, in order */
    dq__node_t      **cbs_tail;
    dq_site_t         site;
    const char       *what;
    dq__coro_t       *waiter;      /* last tasklet that waited on it */
    dq_future_t      *pprev, *pnext;   /* rt->pending */
};

/* Allocate a future of `size` bytes (>= sizeof(dq_future_t)), kind set. */
dq_future_t *dq__future_alloc(size_t size, dq__fut_kind_t kind,
                              const char *what, const char *file, int line,
                              const char *func);
/* Free hook for multi futures (future_multi.c). */
void dq__multi_release(dq_future_t *f);
/* Set an exception with a preformatted message (takes msg, may be NULL). */
int dq__future_fail(dq_future_t *f, int code, int flow, char *msg,
                    const char *file, int line, const char *func);
/* Pass from's outcome to f (result copy or exception + this site). */
int dq__future_pass(dq_future_t *f, const dq_future_t *from,
                    const char *file, int line, const char *func);
/* Remove the first immediate callback (cb, arg); DQ_OK / DQ_ENOTFOUND. */
int dq__future_remove_cb(dq_future_t *f, dq_future_cb cb, void *arg);

/* ---------------------------------------------------------- coroutines */

typedef enum {
    DQ__CORO_FREE = 0,
    DQ__CORO_RUNNING,
    DQ__CORO_SUSPENDED,
    DQ__CORO_DEAD
} dq__coro_state_t;

struct dq__coro_s {
    void             *sp;          /* asm backend: saved stack pointer */
    ucontext_t       *uc;          /* ucontext backend */
    char             *map;         /* mmap'd region: guard page + stack */
    size_t            map_size;
    char             *stack_lo;    /* usable stack [lo, lo + size) */
    size_t            stack_size;
    dq__coro_t       *caller;      /* who resumed it: gets control back */
    dq__coro_t       *pool_next;
    dq__coro_state_t  state;

    /* the tasklet */
    dq_future_t      *future;      /* its own (one ref) */
    dq_tasklet_fn     fn;
    void             *arg;
    const char       *name;
    dq_context_t     *ctx;         /* current context, one ref */
    dq_context_t     *home;        /* the context it was started in and
                                      counted as pending in, one ref */
    dq_future_t      *waiting_on;  /* borrowed, while suspended */
    int               wake;        /* 0 idle, 1 waiting, 2 resume queued */
    dq__node_t        resume;      /* run-queue item that resumes it
                                      (immediate == 2: embedded) */

#ifdef DQ__ASAN
    void             *asan_fake;
#endif
};

/* ------------------------------------------------------------ contexts */

typedef struct dq__slot_s {
    struct dq__slot_s *next;
    dq_value_t         v;
    char               name[];
} dq__slot_t;

struct dq_context_s {
    unsigned      refs;
    size_t        pending;     /* tasklets + loop operations not ended */
    dq__slot_t   *slots;
    dq_future_t  *drain;       /* toplevel: completes when pending == 0 */
    dq_future_t  *main;        /* toplevel: its tasklet's future */
    int           canceled;    /* dq__context_cancel's code, or 0 */
    char         *cancel_msg;
};

void dq__context_op_start(dq_context_t *ctx);
void dq__context_op_end(dq_context_t *ctx);

/* ------------------------------------------------------------- runtime */

struct dq__rt_s {
    uv_loop_t        *loop;
    uv_idle_t         idle;
    int               idle_on;
    int               dispatching;

    dq__node_t       *rq_head, **rq_tail;    /* run queue */
    dq__node_t       *free_nodes;

    dq_future_t      *pending;               /* pending futures */
    uint64_t          npending;

    dq__coro_t        main;                  /* the thread's own stack */
    dq__coro_t       *current;
    dq__coro_t       *switch_from;           /* ASan bookkeeping */
    dq__coro_t       *pool;                  /* free coroutines + stacks */
    size_t            npool, pool_max;
    size_t            stack_size;            /* usable, page multiple */
    size_t            page;
    int               backend;               /* DQ_CORO_ASM / UCONTEXT */
    void            (*entry)(dq__coro_t *);  /* what new coroutines run */

    dq_context_t     *thread_ctx;

    struct dq__sleep_s *sleeps;              /* timers in flight */
    struct redisAsyncContext *redis;         /* raw hiredis transport */
    dq__redis_send_fn redis_send;            /* or the worker's */
    void             *redis_conn;
    dq_tasklet_log_fn log;
    int               flow_codes[32];        /* add_flow_exception */
    size_t            nflow;
    void             *host;     /* the embedding program's state (the
                                   worker child's tasklet_task.c) */

    uint64_t          tasklets_live, tasklets_started, stacks_mapped;
    uint64_t          switches;
};

extern __thread dq__rt_t *dq__rt;

/* The runtime of this thread, initialized on uv_default_loop() if needed
 * (NULL only when that fails for lack of memory). */
dq__rt_t *dq__rt_get(void);

/* Queue cb(f, arg) on the run queue; f (may be NULL) must already carry a
 * reference for the item. Returns DQ_OK or DQ_ENOMEM. */
int dq__rq_push(dq__rt_t *rt, dq_future_cb cb, dq_future_t *f, void *arg);
void dq__rq_push_node(dq__rt_t *rt, dq__node_t *n);
dq__node_t *dq__node_get(dq__rt_t *rt);
void dq__node_put(dq__rt_t *rt, dq__node_t *n);
/* Run what is queued now; returns how many ran. */
size_t dq__rq_drain(dq__rt_t *rt);

/* coro.c */
int dq__coro_setup(dq__rt_t *rt, const dq_tasklet_opts_t *opts);
void dq__coro_teardown(dq__rt_t *rt);
dq__coro_t *dq__coro_get(dq__rt_t *rt);        /* a coroutine with a stack */
void dq__coro_start(dq__rt_t *rt, dq__coro_t *c, void (*entry)(dq__coro_t *));
void dq__coro_resume(dq__rt_t *rt, dq__coro_t *c);
void dq__coro_yield(dq__rt_t *rt);                /* from a tasklet */
void dq__coro_exit(dq__rt_t *rt) __attribute__((noreturn));
const char *dq__coro_backend_name(int backend);

/* future_wait.c: resume a tasklet suspended in a wait (it re-checks why) */
void dq__tasklet_wake(dq__coro_t *c);

/* tasklet_io.c: fail and close the sleep timers still running */
void dq__sleep_cancel_all(dq__rt_t *rt);
/* the same for the sleeps of one context, with this code and message */
void dq__sleep_cancel_ctx(dq__rt_t *rt, dq_context_t *ctx, int code,
                          const char *msg);

/* logging of unhandled errors (tasklet.c) */
void dq__log_unhandled(const dq_future_t *f);
int dq__is_flow_code(int code);

/* values (future_value.c) */
struct redisReply;
dq_value_t dq__value_reply_dup(const struct redisReply *r);
dq_value_t dq__value_list(dq_value_t *items, size_t n);   /* takes items */

/* Heap-formatted string (NULL on ENOMEM). */
char *dq__vstrf(const char *fmt, va_list ap);
char *dq__strf(const char *fmt, ...) DQ_PRINTF(1, 2);

#endif /* DQ_TASKLET_INT_H */
