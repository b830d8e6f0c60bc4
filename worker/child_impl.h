/*
 * deferred-worker — one child's state, shared by child.c (loop, signals,
 * wake-ups, heartbeat, shutdown), claim.c (claim), dispatch.c (run),
 * report.c (ack/retry/bury/release) and unlist.c (the due list handed
 * back on stop). Internal to the worker.
 *
 * Slots: `used` counts tasks claimed and not yet finished running (they
 * occupy the pool); `reserved` counts tasks asked for by claims in flight.
 * A claim never asks for more than concurrency - used - reserved, so the
 * child never holds more leases than it can run.
 */
#ifndef DQ_CHILD_IMPL_H
#define DQ_CHILD_IMPL_H

#include <uv.h>

#include "worker.h"
#include "redis_uv.h"
#include "task_impl.h"
#include "timeout.h"

#define DQ_CMD_TIMEOUT_MS    10000
#define DQ_BLPOP_TIMEOUT_S   30       /* liveness only: wake-ups come early */
#define DQ_NEVER             UINT64_MAX
#define DQ_IDLE_LOOK_MAX_MS  30000    /* longest sleep of a queue without
                                         a claim (min with the lease) */
#define DQ_LOST_CLAIMS       8        /* per queue, between reconnects */
#define DQ_GATE_MAX_MS       2        /* longest a draining queue waits
                                         for half a claim of free slots */

typedef struct dq_child_s dq_child_t;

/* One BLPOP over the wake lists of some served queues, on its own
 * connection: all of them for one server; for a cluster, those whose wake
 * list has one slot (a BLPOP over several slots is refused, CROSSSLOT). */
typedef struct {
    dq_child_t            *ch;
    dq_conn_t             *conn;
    size_t                *qi;         /* indexes into ch->qs */
    size_t                 nq;
    int                    inflight;   /* its BLPOP is sent */
} dq_cwake_t;


/* A served queue of N shards (dq_contract.h "shards") is N entries of
 * ch->qs: shard 0 (the queue itself) at the queue's index in the
 * configuration, shards 1..N-1 appended when the child learns N (its
 * live tick reads it every 5 s, the probe past it every tick for a queue
 * with a whole-queue limit, every 30 s otherwise: live_conf.c), each
 * claimed, acked and woken as a queue of its own. The queue's weight is
 * shared by its shards that are due. */
struct dq_cqueue_s {
    dq_child_t            *ch;
    const dq_queue_conf_t *qc;
    dq_str_t               name;       /* the shard's name in Redis */
    size_t                 base;       /* index of its shard 0 in ch->qs */
    unsigned               shard;      /* 0..N-1 */
    unsigned               nshards;    /* shard 0: N known (1 at start) */
    unsigned               nelig;      /* shard 0: shards eligible in the
                                          slot round (child.c) */
    int                    conf_wait;  /* shard 0: the file's limits are
                                          split by N, unknown until the
                                          queue's conf is read: none of
                                          its shards claims before */
    char                   sname[DQ_SHARD_NAME_MAX + 1];
    char                   wake_key[DQ_KEY_MAX];
    size_t                 wake_key_len;
    uint64_t               due_at;     /* uv_now ms when work may be due */
    int                    claiming;   /* a claim is in flight */
    int                    more;       /* due because its last claim was
                                          full (draining), not because it
                                          just became due */
    int                    woken;      /* a wake token came while claiming:
                                          the claim may have run before the
                                          enqueue; look again after it */
    int64_t                cur;        /* weighted round robin state */
    int64_t                want;       /* slots given in this kick */
    dq_task_t            **acks;       /* finished OK, ack not sent yet */
    size_t                 nacks, cap_acks;
    dq_task_t            **rels;       /* never started, to release */
    size_t                 nrels, cap_rels;
    char                   lost[DQ_LOST_CLAIMS][DQ_ID_SIZE];
    int                    lost_held[DQ_LOST_CLAIMS]; /* their master
                                           table entries (held.c) */
    size_t                 nlost;      /* claims whose reply was lost:
                                          release_claim on reconnect */
};

struct dq_child_s {
    uv_loop_t               loop;
    const dq_worker_conf_t *conf;
    int                     index;
    dq_loader_t            *loader;
    dq_conn_t              *cmd_conn;   /* claims, acks, scripts */
    dq_cwake_t             *wakes;      /* BLPOP on the wake lists */
    size_t                  nwakes;
    size_t                  nqi;        /* qi block entries in use */
    int                     wake_cluster;
    dq_conn_opts_t          wake_ro;    /* for the waits of new shards */
    dq_cqueue_t            *qs;
    size_t                  nq;         /* entries in use (shards too) */
    size_t                  cap_q;      /* room: queues * DQ_MAX_SHARDS */

    uv_timer_t              due_timer;  /* earliest known due time */
    uv_timer_t              hb_timer;   /* lease heartbeat */
    uv_timer_t              grace_timer;
    uv_timer_t              blpop_retry;
    uv_timer_t              redo_timer; /* results refused with an error
                                           reply: sent again (report.c) */
    uint64_t                redo_backoff_ms;
    uv_check_t              flush;      /* the cycle: claims decided,
                                           acks and releases sent, once
                                           per loop iteration */
    uv_idle_t               nudge;      /* keeps poll from blocking while
                                           the cycle check is due */
    int                     kick_pending; /* a claim decision is asked */
    uint64_t                gate_since; /* loop ms a draining queue's claim
                                           was first held back (0: none) */
    uv_signal_t             sigs[4];
    struct dq_pool_s       *pool;       /* plain functions (pool.c) */

    dq_task_t              *tasks;      /* every live task */
    size_t                  used;
    size_t                  reserved;
    size_t                  concurrency;
    uint64_t                idle_look_ms; /* min(lease, 30 s) */
    int                     flush_active;
    dq_task_t             **redo;       /* results not delivered, sent */
    size_t                  nredo;      /* again on reconnect */
    size_t                  cap_redo;
    int                     stopping;
    int                     finished;
    int                     exit_status;
    dq_timeouts_t          *timeouts;   /* timeout.c, or NULL */
    struct dq_live_s       *live;       /* live.c: heartbeat in Redis */
    struct dq_migrate_s    *migrate;    /* migrate.c: contract v1 -> v2 */
};

/* child.c */
void dq_child_kick(dq_child_t *ch);
/* 0 .. max ms, uniform enough: spreads a fleet's idle claims (loop
 * thread only) */
uint64_t dq_child_jitter(uint64_t max);
/* claim.c */
void dq_dispatch_claim(dq_cqueue_t *q, size_t n);
/* report.c */
void dq_dispatch_flush(dq_child_t *ch);
void dq_dispatch_resend(dq_child_t *ch);  /* commands connection is back */
void dq_dispatch_lease_item(dq_lease_item_t *it, const dq_task_t *t);
/* dispatch.c */
void dq_dispatch_stop(dq_child_t *ch);    /* cancel never-started work */
void dq_dispatch_run(dq_task_t *t);                 /* pool thread */
void dq_dispatch_pool_done(dq_task_t *t, void *ch); /* loop thread */

/* heartbeat.c */
void dq_heartbeat(dq_child_t *ch);

/* child.c */
void dq_child_maybe_finish(dq_child_t *ch);
void dq_child_flush_on(dq_child_t *ch);
void dq_child_link(dq_child_t *ch, dq_task_t *t);
void dq_child_unlink(dq_child_t *ch, dq_task_t *t);
void dq_child_started(dq_task_t *t);      /* any thread */
/* The served queue at index base has n shards (live.c, from its conf):
 * the ones not served yet are added and claimed at once. */
void dq_child_shards(dq_child_t *ch, size_t base, unsigned n);

#endif /* DQ_CHILD_IMPL_H */
