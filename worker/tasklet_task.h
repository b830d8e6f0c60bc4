/*
 * deferred-worker — running DQ_FN_TASKLET task functions as tasklets on a
 * child's loop (internal to the worker; worker/tasklet_task.c).
 *
 * The child sets up this thread's tasklet runtime on its loop, with the
 * worker's log and its command connection as the transport of
 * dq_redis_command(). A claimed task whose function is a tasklet starts as
 * a toplevel tasklet (fresh context) if fewer than conf->tasklet_concurrency
 * run, else waits in a FIFO (its lease kept alive by the heartbeat like any
 * running task). When the toplevel future completes — the function
 * returned and everything it started has ended — the task is reported
 * through dq_dispatch_done() exactly like a plain task back from the pool.
 */
#ifndef DQ_TASKLET_TASK_H
#define DQ_TASKLET_TASK_H

#include <stddef.h>

typedef struct dq_child_s dq_child_t;
typedef struct dq_task_s  dq_task_t;

/* dispatch.c: a task back from the pool or from a tasklet; canceled = it
 * never started and its lease is handed back. */
void dq_dispatch_done(dq_child_t *ch, dq_task_t *t, int canceled);

/* Set up the runtime on ch->loop (after ch->cmd_conn exists): child.c
 * does it at start, before any task runs, so that no pool thread ever gets
 * a runtime of its own (dq_tasklet_child_start() would do it otherwise).
 * 0 or -1 (logged). */
int dq_tasklet_child_init(dq_child_t *ch);
/* Run t (counted in ch->used by the caller) as a tasklet, now or when a
 * tasklet slot frees up. The first call adds tasklet_concurrency to the
 * child's claim slots (ch->concurrency), so a worker that never sees a
 * tasklet task never leases more than its pool can run. */
void dq_tasklet_child_start(dq_child_t *ch, dq_task_t *t);
/* heartbeat.c: t's lease was lost (a fenced extend). A running tasklet
 * task is canceled (what it waits on fails with DQ_ECANCELED) and, like
 * one still waiting for a slot, dropped without a report: 1. 0 if t is
 * not a tasklet task here (a thread cannot be stopped: it runs on). */
int dq_tasklet_task_lease_lost(dq_child_t *ch, dq_task_t *t);
/* Graceful stop: tasks still waiting for a slot are handed back
 * (dq_dispatch_done(..., canceled = 1)); running tasklets go on. */
void dq_tasklet_child_stop(dq_child_t *ch);
/* After the loop has stopped: tear the runtime down (its handle is closed
 * by the caller's last uv_run). NULL-safe, idempotent. */
void dq_tasklet_child_fini(dq_child_t *ch);

#endif /* DQ_TASKLET_TASK_H */
