/*
 * deferred-worker — a Redis Cluster behind one dq_conn_t (internal to
 * redis_uv.c and cluster_uv.c). redis_uv.c hands every call on a
 * "cluster:..." connection to these; the callbacks the owner gets name
 * the owner's dq_conn_t, as for one server.
 */
#ifndef DQ_CLUSTER_UV_H
#define DQ_CLUSTER_UV_H

#include <arpa/inet.h>

#include "redis_uv.h"

typedef struct dq_ccl_s dq_ccl_t;

/* NULL on no memory or a seed name that does not resolve (logged). The
 * seeds are resolved here, once (blocking: before the loop runs). */
dq_ccl_t *dq_ccl_new(uv_loop_t *loop, dq_conn_t *owner,
                     const dq_conn_opts_t *o, const dq_addr_t *a,
                     dq_conn_state_cb cb, void *data);
void dq_ccl_start(dq_ccl_t *c);
int dq_ccl_is_up(const dq_ccl_t *c);
size_t dq_ccl_pending(const dq_ccl_t *c);
/* 0 if the cluster is up but its map has no master for the command's
 * slot (dq_ccl_send would report the cluster lost), else 1. */
int dq_ccl_routable(const dq_ccl_t *c, int argc, const char **argv,
                    const size_t *argvlen);
/* What a TRYAGAIN answer does to a command (cluster_tryagain.c): */
#define DQ_CCL_RETRY    0   /* sent again after 50, 100, ... 1000 ms, 10
                               times, then "not run" (dq_conn_send_cmd) */
#define DQ_CCL_ONCE     1   /* "not run" at once (dq_conn_send_cmd_once) */
#define DQ_CCL_SETTLE   2   /* sent again every DQ_CCL_SETTLE_MS until it
                               runs or the owner stops
                               (dq_conn_send_cmd_settle) */
int dq_ccl_send(dq_ccl_t *c, int argc, const char **argv,
                const size_t *argvlen, int64_t timeout_ms, int mode,
                dq_conn_reply_cb cb, void *data);
/* The owner stops: see dq_conn_stop_retries. */
void dq_ccl_stop_retries(dq_ccl_t *c);
/* Every pending callback gets NULL ("connection closing"); once the last
 * has run and the handles are closed, dq_conn_cluster_done(owner) frees
 * the owner (redis_uv.c). */
void dq_ccl_close(dq_ccl_t *c);

void dq_conn_cluster_done(dq_conn_t *owner);

/* name -> numeric address (blocking getaddrinfo); 0, or -1 logged with
 * label (redis_uv.c). */
int dq_conn_numeric(const char *label, const char *name,
                    char num[INET6_ADDRSTRLEN]);

#endif /* DQ_CLUSTER_UV_H */
