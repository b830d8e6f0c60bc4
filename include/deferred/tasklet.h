/*
 * ngx_deferred — futures and tasklets: App Engine ndb's tasklets model in C.
 *
 * A future (dq_future_t) is a value that will be ready later: a result (a
 * dq_value_t) or an exception (a code, a message and the sites it was
 * raised and re-raised at). A tasklet is a function run as a stackful
 * coroutine on a libuv loop; inside it, dq_future_wait() suspends only that
 * coroutine until the future is done, while the loop runs everything else.
 *
 *   static void fetch(dq_future_t *self, void *arg) {
 *       dq_future_t *a = dq_redis_command("GET a"), *b = dq_sleep(0.1);
 *       if (dq_future_wait(a) != DQ_OK)          // suspends this tasklet
 *           { dq_future_propagate(self, a); goto out; }
 *       dq_future_set_result(self, dq_value_copy(dq_future_result(a)));
 *   out:
 *       dq_future_unref(a); dq_future_unref(b);
 *   }
 *   ...
 *   dq_future_t *f = dq_tasklet(fetch, NULL);   // runs until its first wait
 *
 * In deferred-worker: a task function registered with DQ_FN_TASKLET
 * (task.h) runs as a toplevel tasklet on the child's loop thread; it may
 * wait on futures (dq_redis_command on the child's own connection,
 * dq_sleep, other tasklets) and returns its dq_task_result_t as usual. The
 * task is acked / retried / buried once it returned and everything it
 * started has ended. At most `tasklet_concurrency` run per child; stacks
 * are `tasklet_stack` bytes. It must never block the thread.
 *
 * Threading: everything here belongs to ONE thread, the thread running the
 * loop given to dq_tasklet_init() (the worker's loop thread). The runtime
 * is thread-local; a future may only be touched on the thread that made it.
 * Nothing here is async-signal-safe.
 *
 * Errors: functions that can fail return DQ_OK (0) or a negative code: the
 * DQ_E* codes of common.h, plus DQ_EEOF, DQ_EDEADLOCK, DQ_EPENDING,
 * DQ_ESTATE and DQ_ENOTASKLET below. An exception's code is any non-zero
 * int the code that raised it chose (negative DQ_E* codes by convention);
 * its detail (message, traceback) lives on the future, never in a global.
 *
 * Ownership: futures are reference counted. Every function that returns a
 * dq_future_t * returns a NEW reference the caller must dq_future_unref()
 * (unless it says otherwise). Values (dq_value_t) are small and copied by
 * value; their heap payloads (strings, Redis replies, user pointers, lists)
 * are shared and reference counted: dq_value_copy() adds a reference,
 * dq_value_clear() drops one. Passing a value TO a set_result call hands
 * over the caller's reference.
 *
 * Creation sites: the functions that create futures are macros that record
 * __FILE__, __LINE__ and __func__ (the *_loc functions, which take that
 * location, are the real entry points), so dq_future_dump() and deadlock
 * errors can say where each pending future came from.
 */
#ifndef DEFERRED_TASKLET_H
#define DEFERRED_TASKLET_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include <deferred/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Codes of this header (outside the range of common.h's). */
#define DQ_EEOF       -100  /* queue future: no more results (EOFError) */
#define DQ_EDEADLOCK  -101  /* waiting on futures nothing can complete */
#define DQ_EPENDING   -102  /* the future is not done yet */
#define DQ_ESTATE     -103  /* already done / already completed / closed */
#define DQ_ENOTASKLET -104  /* only allowed outside (or inside) a tasklet */
#define DQ_ECANCELED  -105  /* the runtime shut down before completion */

/* Static English text of any code: this header's here, common.h's by
 * dq_strerror (the same text), any other "application error". */
DQ_EXPORT const char *dq_tasklet_strerror(int code);

/* ============================================================== runtime */

typedef enum {
    DQ_CORO_DEFAULT = 0,   /* DQ_CORO_ASM where available, else UCONTEXT */
    DQ_CORO_ASM,           /* hand-written switch (x86-64 only) */
    DQ_CORO_UCONTEXT       /* makecontext/swapcontext (portable, slower:
                              one sigprocmask syscall per switch) */
} dq_coro_backend_t;

typedef struct {
    size_t            stack_size;  /* usable bytes per tasklet stack, rounded
                                      up to pages, at least 16 KiB; 0 =
                                      DQ_TASKLET_STACK_DEFAULT (a guard page
                                      is added below it; sanitizer builds
                                      use 4x the size) */
    size_t            stack_pool;  /* stacks kept for reuse after tasklets
                                      end; 0 = 256 */
    dq_coro_backend_t backend;     /* 0 = best available; the environment
                                      variable DQ_TASKLET_CORO=asm|ucontext
                                      overrides it (tests, benchmarks) */
} dq_tasklet_opts_t;

/* 64 KiB: 10,000 concurrent tasklets reserve ~650 MiB of address space but
 * only the touched pages are resident (measured: 10,000 suspended
 * tasklets, ~6 KB of RSS each). Sanitizer builds quadruple every size
 * (ASan's redzones make frames several times larger). */
#define DQ_TASKLET_STACK_DEFAULT (64 * 1024)

/*
 * Set up this thread's runtime on `loop` (NULL: uv_default_loop()).
 * opts may be NULL. Returns DQ_OK, DQ_ESTATE if already initialized, or
 * DQ_ENOMEM / DQ_EINVAL. Functions below that need a runtime and find none
 * initialize one on uv_default_loop() with default options — unless some
 * thread of the process has initialized one on a loop of its own (as the
 * worker does): then they fail (NULL futures, DQ_ENOMEM-like returns), so
 * that a plain task function on a pool thread cannot drive a loop by
 * mistake. Tasklet functions belong to the loop's thread.
 */
DQ_EXPORT int dq_tasklet_init(uv_loop_t *loop, const dq_tasklet_opts_t *opts);

/*
 * Tear this thread's runtime down: pending futures that tasklets still wait
 * on are failed with DQ_ECANCELED and their tasklets run to their end; the
 * stack pool and loop handles are released (the loop is run until the
 * handles are closed). Futures still referenced by the caller stay valid
 * objects (their callbacks are not called any more) until unreferenced.
 * Must not be called from inside a tasklet.
 */
DQ_EXPORT void dq_tasklet_shutdown(void);

/* The loop of this thread's runtime. */
DQ_EXPORT uv_loop_t *dq_tasklet_loop(void);

/* Where unhandled errors go: a tasklet or future whose exception nobody
 * looked at (wait, check_success, exception_code, propagate) is logged
 * when its last reference is dropped, at DQ_LOG_ERROR (task.h's levels),
 * unless it is a flow exception. Default (fn NULL): one line on stderr.
 * The worker routes it to its log. Per thread. */
typedef void (*dq_tasklet_log_fn)(int level, const char *msg);
DQ_EXPORT void dq_tasklet_set_log(dq_tasklet_log_fn fn);

/* Statistics of this thread's runtime (for logs and tests). */
typedef struct {
    uint64_t futures_pending;    /* created and not done */
    uint64_t tasklets_live;      /* started and not ended */
    uint64_t tasklets_started;   /* since init */
    uint64_t stacks_mapped;      /* stacks currently mmap'd (live + pooled) */
    uint64_t switches;           /* coroutine switches since init */
    size_t   stack_size;         /* usable bytes per stack */
    const char *backend;         /* "asm-x86_64" or "ucontext" */
} dq_tasklet_stats_t;

DQ_EXPORT void dq_tasklet_stats(dq_tasklet_stats_t *out);

/* ================================================================ values */

typedef enum {
    DQ_VAL_NONE = 0,
    DQ_VAL_INT,      /* u.i */
    DQ_VAL_DOUBLE,   /* u.d */
    DQ_VAL_STR,      /* bytes + length (NUL-terminated copy), shared */
    DQ_VAL_PTR,      /* a user pointer with its destructor, shared */
    DQ_VAL_REPLY,    /* a Redis reply (hiredis' redisReply tree), shared */
    DQ_VAL_LIST      /* an array of values (MultiFuture results), shared */
} dq_value_type_t;

typedef struct dq__box_s dq__box_t;   /* the shared heap payload */

typedef struct {
    dq_value_type_t type;
    union {
        int64_t    i;
        double     d;
        dq__box_t *box;   /* STR, PTR, REPLY, LIST: use the accessors */
    } u;
} dq_value_t;

#define DQ_VALUE_NONE ((dq_value_t) { DQ_VAL_NONE, { 0 } })

DQ_EXPORT dq_value_t dq_value_int(int64_t i);
DQ_EXPORT dq_value_t dq_value_double(double d);
/* Copies len bytes (a NUL is added after them). On allocation failure the
 * value is DQ_VAL_NONE. */
DQ_EXPORT dq_value_t dq_value_str(const char *ptr, size_t len);
DQ_EXPORT dq_value_t dq_value_cstr(const char *s);
/* Takes ptr; free_fn (may be NULL) runs when the last copy is cleared. */
DQ_EXPORT dq_value_t dq_value_ptr(void *ptr, void (*free_fn)(void *));
/* A new reference to the same payload (ints and doubles just copy). */
DQ_EXPORT dq_value_t dq_value_copy(const dq_value_t *v);
/* Drop this reference; v becomes DQ_VAL_NONE. */
DQ_EXPORT void dq_value_clear(dq_value_t *v);

/* Accessors: NULL / 0 when v is of another type. */
DQ_EXPORT const char *dq_value_str_ptr(const dq_value_t *v, size_t *len);
DQ_EXPORT void *dq_value_ptr_get(const dq_value_t *v);
/* The reply is read-only and lives as long as a copy of the value. The
 * type is hiredis' redisReply (declared opaque here: include hiredis.h). */
struct redisReply;
DQ_EXPORT const struct redisReply *dq_value_reply(const dq_value_t *v);
DQ_EXPORT size_t dq_value_list_len(const dq_value_t *v);
DQ_EXPORT const dq_value_t *dq_value_list_item(const dq_value_t *v, size_t i);
/* Append a one-line rendering ("42", "\"abc\"", "[1, 2]", "reply:...")
 * to buf; returns the length it needed (like snprintf). For logs/tests. */
DQ_EXPORT int dq_value_format(const dq_value_t *v, char *buf, size_t size);

/* =============================================================== futures */

typedef struct dq_future_s dq_future_t;

typedef enum {
    DQ_FUTURE_PENDING = 0,  /* created, no producer attached yet */
    DQ_FUTURE_RUNNING,      /* a tasklet, timer or command is producing it */
    DQ_FUTURE_DONE          /* result or exception set; never changes */
} dq_future_state_t;

typedef void (*dq_future_cb)(dq_future_t *f, void *arg);

/* One frame of an exception's traceback: where it was raised or passed on. */
typedef struct {
    const char *file;   /* static strings (__FILE__, __func__) */
    int         line;
    const char *func;
} dq_site_t;

/* A new pending future with one reference (the caller's). `what` is a
 * static or caller-lifetime-free description for dumps (may be NULL). */
#define dq_future_new(what) \
    dq_future_new_loc((what), __FILE__, __LINE__, __func__)
DQ_EXPORT dq_future_t *dq_future_new_loc(const char *what, const char *file,
                                         int line, const char *func);

DQ_EXPORT dq_future_t *dq_future_ref(dq_future_t *f);
/* Drop a reference. A future that is dropped while still pending by
 * everyone (no producer, no waiter) is simply freed. NULL is ignored. */
DQ_EXPORT void dq_future_unref(dq_future_t *f);

DQ_EXPORT dq_future_state_t dq_future_state(const dq_future_t *f);
DQ_EXPORT int dq_future_done(const dq_future_t *f);
/* Mark a pending future as being produced (informational; done futures
 * stay done). */
DQ_EXPORT void dq_future_set_running(dq_future_t *f);

/*
 * Complete the future with a result (takes the value's reference) or an
 * exception. Immediate callbacks run before these return, in the order
 * added; loop callbacks and waiting tasklets are queued on the loop.
 * Returns DQ_OK, or DQ_ESTATE if the future was already done (the value is
 * then cleared and nothing else happens).
 */
DQ_EXPORT int dq_future_set_result(dq_future_t *f, dq_value_t v);
#define dq_future_set_int(f, i)  dq_future_set_result((f), dq_value_int(i))

#define dq_future_set_exception(f, code, ...) \
    dq_future_set_exception_loc((f), (code), __FILE__, __LINE__, __func__, \
                                __VA_ARGS__)
DQ_EXPORT int dq_future_set_exception_loc(dq_future_t *f, int code,
                                          const char *file, int line,
                                          const char *func,
                                          const char *fmt, ...)
    DQ_PRINTF(6, 7);

/* A flow exception: like set_exception, but not logged when nobody
 * handles it (ndb's add_flow_exception role: expected control flow such
 * as "retry later" is not an error worth a log line). */
#define dq_future_set_flow_exception(f, code, ...) \
    dq_future_set_flow_exception_loc((f), (code), __FILE__, __LINE__, \
                                     __func__, __VA_ARGS__)
DQ_EXPORT int dq_future_set_flow_exception_loc(dq_future_t *f, int code,
                                               const char *file, int line,
                                               const char *func,
                                               const char *fmt, ...)
    DQ_PRINTF(6, 7);

/* add_flow_exception: exceptions with this code are flow exceptions
 * wherever they are raised (never logged as unhandled), like ndb's
 * registered exception classes. Per thread; up to 32 codes. DQ_OK,
 * DQ_EINVAL (code 0) or DQ_ENOMEM (table full). DQ_EEOF is registered
 * from the start. */
DQ_EXPORT int dq_tasklet_add_flow_exception(int code);

/* Re-raise `from`'s exception on `f`, adding this site to its traceback
 * (the way an exception passes up through tasklets). If `from` holds a
 * result instead, f gets a copy of it. `from` must be done (else
 * DQ_EPENDING). */
#define dq_future_propagate(f, from) \
    dq_future_propagate_loc((f), (from), __FILE__, __LINE__, __func__)
DQ_EXPORT int dq_future_propagate_loc(dq_future_t *f, const dq_future_t *from,
                                      const char *file, int line,
                                      const char *func);

/* The result, or NULL if the future is not done or holds an exception.
 * Borrowed: valid while the future is (dq_value_copy() to keep it). */
DQ_EXPORT const dq_value_t *dq_future_result(const dq_future_t *f);
/* Convenience: DQ_OK and *out, DQ_EPENDING, the exception's code, or
 * DQ_EINVAL if the result is not an integer. */
DQ_EXPORT int dq_future_get_int(const dq_future_t *f, int64_t *out);

/* check_success: DQ_OK if done with a result, DQ_EPENDING if not done,
 * else the exception's code. */
DQ_EXPORT int dq_future_check_success(const dq_future_t *f);
/* The exception's code (0 if none / not done), message ("" if none),
 * whether it is a flow exception, and its traceback: frames[0] is where it
 * was raised, later frames where it was propagated. */
DQ_EXPORT int dq_future_exception_code(const dq_future_t *f);
DQ_EXPORT const char *dq_future_exception_message(const dq_future_t *f);
DQ_EXPORT int dq_future_exception_is_flow(const dq_future_t *f);
DQ_EXPORT size_t dq_future_traceback(const dq_future_t *f,
                                     const dq_site_t **frames);
/* Format "code (text): message\n  raised at f.c:12 in fn\n  ..." into buf;
 * returns the length needed (like snprintf). */
DQ_EXPORT int dq_future_format_exception(const dq_future_t *f, char *buf,
                                         size_t size);
/* Where the future was created, and its description. */
DQ_EXPORT dq_site_t dq_future_site(const dq_future_t *f);
DQ_EXPORT const char *dq_future_what(const dq_future_t *f);

/*
 * Callbacks. add_callback: cb(f, arg) runs from the loop after f is done
 * (queued at completion, or right away if already done — never
 * synchronously inside this call), callbacks of one future in the order
 * added. add_immediate_callback: cb runs synchronously when f completes,
 * inside set_result/set_exception (or inside this call if f is already
 * done). Immediate callbacks must not block; they may complete other
 * futures. The future holds a reference on itself until its loop callbacks
 * have run. Returns DQ_OK or DQ_ENOMEM.
 */
DQ_EXPORT int dq_future_add_callback(dq_future_t *f, dq_future_cb cb,
                                     void *arg);
DQ_EXPORT int dq_future_add_immediate_callback(dq_future_t *f,
                                               dq_future_cb cb, void *arg);
/* Remove the first callback registered with this (cb, arg), of either
 * kind, if it has not run or been queued yet. Returns DQ_OK or
 * DQ_ENOTFOUND. */
DQ_EXPORT int dq_future_remove_callback(dq_future_t *f, dq_future_cb cb,
                                        void *arg);

/*
 * wait: inside a tasklet, suspend that tasklet until f is done (the loop
 * and other tasklets keep running). Outside, run the loop until f is done.
 * Returns dq_future_check_success(f) once done, or DQ_ENOTASKLET when
 * called outside a tasklet from inside a loop callback (it would re-enter
 * uv_run).
 *
 * Deadlocks: outside a tasklet, when the loop has nothing left that could
 * complete what is waited on (no active handle, request or queued
 * callback), the futures that suspended tasklets wait on — or, when no
 * tasklet waits, the waited futures themselves — are failed with
 * DQ_EDEADLOCK, the message naming every pending future, where it was
 * created and which tasklet awaits it; the tasklets resume with that error
 * and the wait goes on (so a tasklet that propagates it makes wait return
 * DQ_EDEADLOCK). ndb spins forever there.
 */
DQ_EXPORT int dq_future_wait(dq_future_t *f);
#define dq_await(f) dq_future_wait(f)

/* wait_any: wait until one of n futures is done; returns its index (the
 * lowest index among those already done), or DQ_EINVAL if n == 0 (a
 * future failed by deadlock detection counts as done). */
DQ_EXPORT int dq_future_wait_any(dq_future_t *const *fs, size_t n);
/* wait_all: wait until all are done; DQ_OK, or the first (lowest index)
 * exception code among them (DQ_EDEADLOCK included). */
DQ_EXPORT int dq_future_wait_all(dq_future_t *const *fs, size_t n);

/* Write every pending future of this thread (what, state, creation site,
 * which tasklet waits on it) to out; returns how many. */
DQ_EXPORT size_t dq_future_dump(FILE *out);

/* ======================================================= multi futures */

/*
 * MultiFuture: done when complete() was called and every dependent is
 * done; its result is a DQ_VAL_LIST of the dependents' results in the
 * order they were added. The first dependent that fails fails the
 * MultiFuture at once with that exception (traceback extended).
 * QueueFuture: getq() returns a future for the next result to become ready
 * (ready order); after complete() and the last result, getq() futures fail
 * with DQ_EEOF. SerialQueueFuture: the same in insertion order.
 * ReducingFuture: values are folded by reducer over batches of batch_size
 * (in completion order, so possibly reordered); its result is the final
 * reduction (DQ_VAL_NONE if nothing was added, the only value if one was).
 * The queue futures and the reducing future complete when complete() was
 * called and every dependent is done; a failed dependent fails the
 * ReducingFuture, but for queues it is handed out by getq() like a result.
 *
 * All of them are dq_future_t (wait, callbacks, unref work on them).
 * add_dependent takes its own reference on dep; putq adds a ready value
 * (takes the value's reference). After complete(), adding returns
 * DQ_ESTATE. set_exception on the multi future itself fails it at once.
 */
#define dq_multi_future_new() \
    dq_multi_future_new_loc(__FILE__, __LINE__, __func__)
#define dq_queue_future_new() \
    dq_queue_future_new_loc(__FILE__, __LINE__, __func__)
#define dq_serial_queue_future_new() \
    dq_serial_queue_future_new_loc(__FILE__, __LINE__, __func__)
#define dq_reducing_future_new(reducer, arg, batch_size) \
    dq_reducing_future_new_loc((reducer), (arg), (batch_size), __FILE__, \
                               __LINE__, __func__)

/* Fold n >= 2 values into *out (a new value). Return DQ_OK, or an error
 * code that fails the ReducingFuture. Must not keep vals. */
typedef int (*dq_reducer_fn)(const dq_value_t *vals, size_t n,
                             dq_value_t *out, void *arg);

DQ_EXPORT dq_future_t *dq_multi_future_new_loc(const char *file, int line,
                                               const char *func);
DQ_EXPORT dq_future_t *dq_queue_future_new_loc(const char *file, int line,
                                               const char *func);
DQ_EXPORT dq_future_t *dq_serial_queue_future_new_loc(const char *file,
                                                      int line,
                                                      const char *func);
/* batch_size >= 2 (else NULL). */
DQ_EXPORT dq_future_t *dq_reducing_future_new_loc(dq_reducer_fn reducer,
                                                  void *arg, size_t batch_size,
                                                  const char *file, int line,
                                                  const char *func);

/* DQ_OK, DQ_ESTATE (completed), DQ_EINVAL (not a multi/queue future). */
DQ_EXPORT int dq_multi_add_dependent(dq_future_t *mf, dq_future_t *dep);
DQ_EXPORT int dq_multi_putq(dq_future_t *mf, dq_value_t v);
DQ_EXPORT int dq_multi_complete(dq_future_t *mf);
/* Queue futures only: a new future for the next item (see above). */
#define dq_queue_getq(qf) dq_queue_getq_loc((qf), __FILE__, __LINE__, __func__)
DQ_EXPORT dq_future_t *dq_queue_getq_loc(dq_future_t *qf, const char *file,
                                         int line, const char *func);

/* A ready reducer: sums DQ_VAL_INT values (and integer Redis replies). */
DQ_EXPORT int dq_reducer_sum(const dq_value_t *vals, size_t n,
                             dq_value_t *out, void *arg);

/* ============================================================= tasklets */

/*
 * The body of a tasklet: runs on its own stack; completes `self` with
 * set_result/set_exception/propagate (if it returns without doing so,
 * self gets DQ_VAL_NONE). It must not unref self (the runtime owns that
 * reference) and must not block the thread.
 */
typedef void (*dq_tasklet_fn)(dq_future_t *self, void *arg);

/*
 * Start fn(self, arg) as a tasklet and return its future (a new
 * reference). The tasklet runs at once, until it first waits on a future
 * that is not done (or ends), then this returns; later it is resumed from
 * the loop. It inherits the current context (see below). Returns NULL on
 * DQ_ENOMEM (no stack could be mapped: see errno).
 */
#define dq_tasklet(fn, arg) dq_tasklet_loc((fn), (arg), #fn, __FILE__, \
                                           __LINE__, __func__)
DQ_EXPORT dq_future_t *dq_tasklet_loc(dq_tasklet_fn fn, void *arg,
                                      const char *name, const char *file,
                                      int line, const char *func);

/* Non-zero when called from inside a tasklet. */
DQ_EXPORT int dq_in_tasklet(void);
/* The future of the tasklet running now (borrowed), or NULL. */
DQ_EXPORT dq_future_t *dq_tasklet_current(void);

/*
 * synctasklet: start fn as a tasklet and wait for it (outside a tasklet:
 * run the loop; inside: suspend). Returns the tasklet's future (new
 * reference) after it is done; NULL on DQ_ENOMEM.
 * toplevel: the same, but the tasklet runs in a fresh context, and its
 * future completes only once every tasklet and loop operation started in
 * that context (fire-and-forget work included) has ended. dq_toplevel()
 * returns that future without waiting (what the worker uses).
 */
#define dq_synctasklet(fn, arg) dq_synctasklet_loc((fn), (arg), #fn, \
                                                   __FILE__, __LINE__, __func__)
DQ_EXPORT dq_future_t *dq_synctasklet_loc(dq_tasklet_fn fn, void *arg,
                                          const char *name, const char *file,
                                          int line, const char *func);
#define dq_toplevel(fn, arg) dq_toplevel_loc((fn), (arg), #fn, __FILE__, \
                                             __LINE__, __func__)
DQ_EXPORT dq_future_t *dq_toplevel_loc(dq_tasklet_fn fn, void *arg,
                                       const char *name, const char *file,
                                       int line, const char *func);
#define dq_toplevel_sync(fn, arg) dq_toplevel_sync_loc((fn), (arg), #fn, \
                                            __FILE__, __LINE__, __func__)
DQ_EXPORT dq_future_t *dq_toplevel_sync_loc(dq_tasklet_fn fn, void *arg,
                                            const char *name, const char *file,
                                            int line, const char *func);

/* sleep: a future that gets DQ_VAL_NONE after `seconds` (a uv timer,
 * millisecond resolution; <= 0 completes on the next loop iteration). */
#define dq_sleep(seconds) dq_sleep_loc((seconds), __FILE__, __LINE__, __func__)
DQ_EXPORT dq_future_t *dq_sleep_loc(double seconds, const char *file,
                                    int line, const char *func);

/* ============================================================= contexts */

/*
 * A context belongs to a tree of tasklets (ndb's Context: the place for
 * per-request caches and batchers). A tasklet inherits its creator's
 * context when it starts; dq_context_set changes the current tasklet's
 * (or, outside tasklets, the thread's) context from then on. Contexts are
 * reference counted; get returns a borrowed pointer, make a new reference.
 * Slots: named values (the name is copied) replaced by set, read by get.
 */
typedef struct dq_context_s dq_context_t;

DQ_EXPORT dq_context_t *dq_context_make(void);
DQ_EXPORT dq_context_t *dq_context_get(void);          /* never NULL */
DQ_EXPORT void dq_context_set(dq_context_t *ctx);      /* takes a ref */
DQ_EXPORT dq_context_t *dq_context_ref(dq_context_t *ctx);
DQ_EXPORT void dq_context_unref(dq_context_t *ctx);
/* Slots: DQ_OK or DQ_ENOMEM; the value's reference is taken. */
DQ_EXPORT int dq_context_slot_set(dq_context_t *ctx, const char *name,
                                  dq_value_t v);
/* Borrowed, or NULL if unset. */
DQ_EXPORT const dq_value_t *dq_context_slot_get(const dq_context_t *ctx,
                                                const char *name);
/* Tasklets and loop operations started in this context and not ended. */
DQ_EXPORT size_t dq_context_pending(const dq_context_t *ctx);

/* ====================================================== worker futures */

/*
 * Inside deferred-worker (a child's loop thread, i.e. in DQ_FN_TASKLET
 * functions): a Redis command on the child's own connection, as a future
 * whose result is a DQ_VAL_REPLY (a Redis error reply is an exception with
 * code DQ_EREDIS and the error text; a lost connection too). The command
 * is binary-safe (argv/argvlen like redisAsyncCommandArgv); printf-style
 * dq_redis_command follows hiredis' format rules (%s stops at NUL; %b takes
 * pointer and size). Returns NULL only on DQ_ENOMEM; with no connection the
 * future fails with DQ_EREDIS.
 */
#define dq_redis_command(...) \
    dq_redis_command_loc(__FILE__, __LINE__, __func__, __VA_ARGS__)
DQ_EXPORT dq_future_t *dq_redis_command_loc(const char *file, int line,
                                            const char *func,
                                            const char *fmt, ...);
#define dq_redis_command_argv(argc, argv, argvlen) \
    dq_redis_command_argv_loc((argc), (argv), (argvlen), __FILE__, __LINE__, \
                              __func__)
DQ_EXPORT dq_future_t *dq_redis_command_argv_loc(int argc, const char **argv,
                                                 const size_t *argvlen,
                                                 const char *file, int line,
                                                 const char *func);

/* Where dq_redis_command sends commands on this thread: an async context
 * already attached to the runtime's loop (the worker sets it on connect
 * and clears it, NULL, on disconnect). Not owned. */
struct redisAsyncContext;
DQ_EXPORT void dq_tasklet_set_redis(struct redisAsyncContext *ac);

#ifdef __cplusplus
}
#endif

#endif /* DEFERRED_TASKLET_H */
