/*
 * deferred-worker — live state in Redis (worker/live.c): each child's
 * heartbeat (who is alive, what it serves, what it did) and per-queue
 * lateness histograms, for `deferred-cli workers`, the module's status,
 * metrics and dashboard. Key names and fields: lib/dq_contract.h
 * (DQ_WORKERS_KEY, DQ_WORKER_KEY_PREFIX, DQ_LATENESS_*).
 */
#ifndef DQ_LIVE_H
#define DQ_LIVE_H

#include "child_impl.h"

typedef struct dq_live_s dq_live_t;

int  dq_live_start(dq_child_t *ch);          /* 0 or -1 (out of memory) */
/* shard entry k of ch->qs (of the queue at base, now of n shards) gets
 * its settings: its share of the file's, until its conf is read */
/* A shard's max_concurrent when its share of the worker file's is 0
 * (dq__shard_conf): no claims from it (0 would mean unlimited). */
#define DQ_LIVE_NO_CLAIMS  (-1)
int  dq_live_add_shard(dq_child_t *ch, size_t k, size_t base, unsigned n);
void dq_live_task_end(dq_child_t *ch, const dq_task_t *t);
/* read the queues' conf (applied settings, shard counts) now: on connect */
void dq_live_conf_now(dq_child_t *ch);
void dq_live_leave(dq_child_t *ch);          /* stopping: leave the list */
void dq_live_close(dq_child_t *ch);          /* closes the timer */
void dq_live_free(dq_child_t *ch);           /* after the loop ended */

#endif /* DQ_LIVE_H */
