/*
 * deferred-worker — a child's own thread pool for plain task functions
 * (worker/pool.c; internal to the worker).
 *
 * Replaces uv_queue_work for tasks, which cost one lock round, one
 * condition signal and one uv_async wake-up per task. Here:
 *   - a claim's tasks are handed over in one call: one lock, at most one
 *     condition signal (a thread that takes a task and sees more queued
 *     wakes the next idle thread itself, so the loop thread pays one
 *     wake-up per batch);
 *   - threads take ONE task at a time from a FIFO, so a slow task never
 *     holds up the ones queued behind it while another thread is free;
 *   - a finished task goes onto a lock-free stack; the thread that finds
 *     the stack empty sends the one uv_async, and the loop drains every
 *     completion there in one callback (in the order they finished).
 *
 * Threading: dq_pool_submit, dq_pool_cancel and dq_pool_close run on the
 * loop thread; run_cb runs on a pool thread; done_cb on the loop thread.
 */
#ifndef DQ_POOL_H
#define DQ_POOL_H

#include <stddef.h>

#include <uv.h>

typedef struct dq_pool_s dq_pool_t;
typedef struct dq_task_s dq_task_t;

/* Pool thread: run the task. */
typedef void (*dq_pool_run_cb)(dq_task_t *t);
/* Loop thread: the task is back (run_cb returned). */
typedef void (*dq_pool_done_cb)(dq_task_t *t, void *data);

/* nthreads threads started now; NULL on failure (logged). */
dq_pool_t *dq_pool_new(uv_loop_t *loop, int nthreads, dq_pool_run_cb run,
                       dq_pool_done_cb done, void *data);

/* Queue n tasks (FIFO, in this order). */
void dq_pool_submit(dq_pool_t *p, dq_task_t **tasks, size_t n);

/* Take back every task not yet started, in queue order: they are handed
 * to cb (loop thread) and will never reach run_cb. Returns how many. */
size_t dq_pool_cancel(dq_pool_t *p, void (*cb)(dq_task_t *t, void *data),
                      void *data);

/* Tasks queued or running now (loop thread; a snapshot). */
size_t dq_pool_busy(const dq_pool_t *p);

/* Stop the threads (after their current task: call only when no task is
 * queued or running) and close the async handle; the pool is freed in its
 * close callback (keep running the loop). NULL-safe. */
void dq_pool_close(dq_pool_t *p);

#endif /* DQ_POOL_H */
