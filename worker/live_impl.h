/*
 * deferred-worker — the inside of a child's live state (worker/live.c:
 * heartbeat, lateness histograms, the live tick; worker/live_conf.c: the
 * queues' applied configuration and shard counts). Nothing else includes
 * it.
 */
#ifndef DQ_LIVE_IMPL_H
#define DQ_LIVE_IMPL_H

#include "live.h"

typedef struct dq__qref_s {
    dq_child_t *ch;
    size_t      i;
    unsigned    probing;    /* shard 0: the probe of this shard sent,
                               its reply not in (0: none in flight) */
    unsigned    next;       /* shard 0: the shard probed next (below N:
                               N, the first past the known count) */
    unsigned    hi;         /* shard 0: a probe past N was lost or not
                               sent, so N may be more: the file's limits
                               are split by this bound (DQ_MAX_SHARDS, or
                               a shard found absent), not by N; 0: no
                               probe lost since one answered (review RF
                               finding 1) */
    unsigned    s0;         /* shard 0: the `shards` its own conf said at
                               the last read (or that this worker wrote
                               back there); 0: not read yet */
    int         heal_failed; /* shard 0: the last write back failed
                               (logged once) */
} dq__qref_t;

typedef struct {
    int64_t  n[DQ_LATENESS_NBOUNDS + 1];
    int64_t  sum_ms;
    int64_t  count;
} dq__hist_t;

struct dq_live_s {
    uv_timer_t  timer;
    char        id[300];            /* host:pid */
    char        key[320];
    char        host[256];
    char       *queues;             /* "a,b,c" */
    int64_t     started_ms;
    int64_t     done, failed;
    dq__hist_t *hist;               /* per served queue (ch->qs order) */
    dq_queue_conf_t        *qconf;  /* the settings the child uses */
    const dq_queue_conf_t **orig;   /* its file's, per queue */
    int                    *applied;
    struct dq__qref_s      *refs;
    int         left;
    int         beaten;             /* one heartbeat sent */
    unsigned    tick;               /* live ticks since the first beat */
};

/* live_conf.c: the conf of every queue; the probe past the known shard
 * count of the queues that need one now (all of them when `all`) */
void dq__conf_refresh(dq_child_t *ch, int all);

#endif /* DQ_LIVE_IMPL_H */
