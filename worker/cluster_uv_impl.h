/*
 * deferred-worker — the inside of a Redis Cluster connection
 * (worker/cluster_uv.c), shared with worker/cluster_tryagain.c (what a
 * TRYAGAIN answer does: the back-off, the settle step, the probe).
 * Nothing else includes it.
 */
#ifndef DQ_CLUSTER_UV_IMPL_H
#define DQ_CLUSTER_UV_IMPL_H

#include <hiredis/hiredis.h>

#include "worker.h"
#include "cluster_uv.h"

typedef struct dq__cnode_s  dq__cnode_t;
typedef struct dq__creq_s   dq__creq_t;

struct dq__cnode_s {
    dq_ccl_t    *cl;
    dq_conn_t   *c;
    char         host[DQ_CLUSTER_HOST];     /* numeric */
    int          port;
    int          started;
    int          up;
    int          used;          /* a command was routed here since the
                                   last map */
};

struct dq__creq_s {
    dq__creq_t       *prev, *next;      /* the waiting list */
    dq_ccl_t         *cl;
    dq__cnode_t      *node;             /* sent to, or waiting for */
    dq_conn_reply_cb  cb;
    void             *data;
    int64_t           timeout_ms;
    uint64_t          wait_since;
    int               slot;             /* -1: any node */
    int               redirects;
    int               asking;           /* ASK: ASKING first */
    int               internal;         /* CLUSTER SLOTS */
    int               waiting;
    int               tryagain;         /* TRYAGAIN answers so far */
    int               mode;             /* DQ_CCL_RETRY, _ONCE, _SETTLE:
                                           what a TRYAGAIN does */
    int               follow;           /* DQ_CCL_SETTLE, waiting: behind
                                           another's probe (same key) */
    uint64_t          keyh;             /* its first key's hash */
    uint64_t          tryagain_since;   /* its first TRYAGAIN */
    uint64_t          retry_at;         /* waits for this time, not for
                                           its node (0: not) */
    dq_conn_fmt_t     f;                /* formatted once, its RESP in this
                                           block: resent as is after a
                                           redirect */
};

struct dq_ccl_s {
    uv_loop_t         *loop;
    dq_conn_t         *owner;
    dq_conn_state_cb   state_cb;
    void              *data;
    dq_conn_opts_t     o;               /* for the node connections */
    char              *label;
    char              *password;
    char               seed_host[DQ_MAX_SEEDS][INET6_ADDRSTRLEN];
    int                seed_port[DQ_MAX_SEEDS];
    size_t             nseeds;
    size_t             next_cand;       /* the candidate asked next */
    dq_cluster_map_t   map;
    int                have_map;
    dq__cnode_t      **nodes;
    size_t             nnodes, cap_nodes;
    size_t             rr;              /* which up node is asked next */
    dq__creq_t        *whead, *wtail;
    size_t             nwait;
    size_t             nreqs;           /* the owner's, alive */
    size_t             ninternal;
    uv_timer_t         tick;
    int                tick_open;
    int                refreshing;
    int                want_refresh;
    uint64_t           last_refresh;
    int                lost;            /* up = 0 said, up = 1 not yet */
    int                no_retry;        /* the owner stops: TRYAGAIN is
                                           not tried again */
    size_t             nsettle;         /* DQ_CCL_SETTLE calls alive that
                                           met TRYAGAIN */
    uint64_t           settle_warned;   /* the warning said: the first
                                           TRYAGAIN it named (0: not) */
    uint64_t           prune_at;        /* close unused masters (0: no) */
    int                closing;
};

/* cluster_uv.c */
/* The owner's callback, once; the request freed. */
void dq__ccl_finish(dq__creq_t *q, redisReply *rep, const char *errstr);
/* q on the waiting list (for its node, or for its time: retry_at) */
void dq__ccl_wait(dq__creq_t *q);
/* q refused unrun by its node (rep an error reply): its caller hears "not
 * run: ..." (dq_conn_not_run) */
void dq__ccl_not_run(dq__creq_t *q, redisReply *rep);
/* q's TRYAGAIN back-off is over (or cut short): sent where the map now
 * says */
void dq__ccl_retry(dq_ccl_t *cl, dq__creq_t *q);

/* cluster_tryagain.c */
/* q's answer rep (NULL: none), not a redirect: 1 when it was a TRYAGAIN
 * dealt with here (q not run, or waiting to be sent again), or q was
 * finished; 0: the caller goes on with it. */
int dq__ccl_tryagain(dq__creq_t *q, redisReply *rep);
/* q is finished: the count of settling calls refused, and the info line
 * once none is. */
void dq__ccl_settle_end(dq_ccl_t *cl, const dq__creq_t *q);

#endif /* DQ_CLUSTER_UV_IMPL_H */
