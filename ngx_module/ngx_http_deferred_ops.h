
/*
 * ngx_http_deferred_module: what the operator locations' files share.
 *
 *   ngx_http_deferred_ops.c        the locations' directive and content
 *                                  handler, the op (a collection of
 *                                  commands that may outlive its request)
 *   ngx_http_deferred_status.c     what status, metrics and readiness ask
 *                                  and how their replies fill in
 *   ngx_http_deferred_render.c     status as JSON, metrics as Prometheus
 *                                  text
 *   ngx_http_deferred_admin.c      deferred_admin: its checks, the action
 *                                  on every shard, its answer
 *   ngx_http_deferred_dashboard.c  deferred_dashboard: the embedded page
 */


#ifndef _NGX_HTTP_DEFERRED_OPS_H_INCLUDED_
#define _NGX_HTTP_DEFERRED_OPS_H_INCLUDED_


#include "ngx_http_deferred_module.h"


#define NGX_HTTP_DEFERRED_OPS_STATUS     1
#define NGX_HTTP_DEFERRED_OPS_METRICS    2
#define NGX_HTTP_DEFERRED_OPS_DASHBOARD  3
#define NGX_HTTP_DEFERRED_OPS_ADMIN      4
#define NGX_HTTP_DEFERRED_OPS_READY      5

#define NGX_HTTP_DEFERRED_MAX_QUEUES     1000
/* status scripts of shards >= 1 per scrape (a queue's all or none) */
#define NGX_HTTP_DEFERRED_MAX_SHARD_CALLS  1000

#define NGX_HTTP_DEFERRED_METRICS_TYPE                                      \
    "text/plain; version=0.0.4; charset=utf-8"

/* a scrape without Redis still succeeds: the scraper sees redis_up 0 */
#define NGX_HTTP_DEFERRED_METRICS_DOWN                                      \
    "# HELP deferred_redis_up 1 if Redis answered this scrape.\n"           \
    "# TYPE deferred_redis_up gauge\n"                                      \
    "deferred_redis_up 0\n"


typedef struct {
    ngx_uint_t                     kind;
    ngx_flag_t                     open;        /* "open": any address */
    ngx_str_t                      status_url;  /* dashboard */
    ngx_str_t                      admin_url;
} ngx_http_deferred_ops_conf_t;


typedef struct {
    ngx_str_t                      id;
    ngx_str_t                      died;
    ngx_str_t                      func;
    ngx_str_t                      error;
} ngx_http_deferred_dead_t;


/* event counters of dq2:{q}:stats (a second group beside the task counters) */
#define NGX_HTTP_DEFERRED_NEVENTS      6

typedef struct {
    const char                    *field;       /* in dq2:{q}:stats */
    const char                    *metric;      /* deferred_<metric>_total */
    const char                    *help;
} ngx_http_deferred_event_t;


typedef struct ngx_http_deferred_qstat_s {
    ngx_str_t                      name;
    ngx_uint_t                     ok;
    int64_t                        waiting, due, running, dead, oldest;
    ngx_uint_t                     paused;
    ngx_str_t                      rate;
    ngx_str_t                      max_concurrent;
    int64_t                        counters[7];
    int64_t                        events[NGX_HTTP_DEFERRED_NEVENTS];
    int64_t                        late[DQ_LATENESS_NBOUNDS + 1];
    int64_t                        late_sum, late_count;
    int64_t                        v1_left;     /* tasks in contract v1's
                                                   keys (not migrated) */
    ngx_array_t                    dead_tasks;
    ngx_uint_t                     shards;      /* conf "shards" (0: 1) */
    ngx_str_t                      unread;      /* Redis' refusal of its
                                                   (or a shard's) status
                                                   call: not shown */
    struct ngx_http_deferred_qstat_s  *parts;   /* a sharded queue: each
                                                   shard's own, the queue
                                                   their sums */
} ngx_http_deferred_qstat_t;


typedef struct {
    ngx_str_t                      id;
    ngx_array_t                    fields;      /* ngx_keyval_t */
} ngx_http_deferred_wstat_t;


typedef struct ngx_http_deferred_op_s  ngx_http_deferred_op_t;

/* what a command of an op asks, so what its reply fills in */
#define NGX_HTTP_DEFERRED_OP_QUEUES      0    /* the queue names */
#define NGX_HTTP_DEFERRED_OP_WORKERS     1    /* the live workers' ids */
#define NGX_HTTP_DEFERRED_OP_QUEUE       2    /* queue index's status */
#define NGX_HTTP_DEFERRED_OP_WORKER      3    /* worker index's heartbeat */
#define NGX_HTTP_DEFERRED_OP_ACTION      4    /* an admin action on one
                                                 shard, or readiness of
                                                 master index */
#define NGX_HTTP_DEFERRED_OP_SHARD       5    /* a shard (1..N-1) of queue
                                                 index: its status */
#define NGX_HTTP_DEFERRED_OP_NSHARDS     6    /* admin: the queue's shard
                                                 count */

typedef struct {
    ngx_http_deferred_op_t        *op;
    ngx_uint_t                     what;        /* NGX_HTTP_DEFERRED_OP_* */
    ngx_uint_t                     index;
    ngx_uint_t                     shard;       /* OP_SHARD: which */
    dq_cmd_t                       cmd;
} ngx_http_deferred_op_cmd_t;


struct ngx_http_deferred_op_s {
    ngx_pool_t                    *pool;
    ngx_http_request_t            *request;     /* NULL: detached */
    ngx_pool_cleanup_t            *cln;         /* in the request's pool,
                                                   NULL once it is gone */
    ngx_http_deferred_redis_t     *redis;
    ngx_uint_t                     kind;
    ngx_uint_t                     pending;
    ngx_uint_t                     stage;
    ngx_uint_t                     failed;
    ngx_event_t                    timer;
    ngx_http_deferred_redis_waiter_t  setup;    /* waiting for the
                                                   connection's setup */
    int64_t                        now_ms;
    ngx_array_t                    queues;      /* qstat */
    ngx_uint_t                     dropped;     /* queues past the limit */
    ngx_uint_t                     unsummed;    /* sharded queues shown
                                                   with shard 0's numbers:
                                                   past the shard calls'
                                                   cap */
    ngx_array_t                    workers;     /* wstat */
    ngx_str_t                      action;      /* admin */
    ngx_str_t                      queue;
    ngx_str_t                      id;
    ngx_uint_t                     nshards;     /* admin: the queue's */
    int64_t                        result;
    ngx_str_t                      error;
};


/* ngx_http_deferred_ops.c */
ngx_int_t ngx_http_deferred_ops_send(ngx_http_request_t *r,
    ngx_int_t status, const char *type, ngx_str_t *body);
ngx_http_deferred_op_cmd_t *ngx_http_deferred_op_cmd(
    ngx_http_deferred_op_t *op, ngx_uint_t what, ngx_uint_t index);
ngx_int_t ngx_http_deferred_op_plain(ngx_http_deferred_op_t *op,
    ngx_uint_t what, ngx_uint_t index, ngx_uint_t argc, ngx_str_t *argv);
ngx_int_t ngx_http_deferred_op_script(ngx_http_deferred_op_t *op,
    ngx_http_deferred_op_cmd_t *oc, int built);
ngx_str_t ngx_http_deferred_op_copy(ngx_http_deferred_op_t *op,
    redisReply *r);
void ngx_http_deferred_op_finish(ngx_http_deferred_op_t *op,
    ngx_int_t status, const char *type, ngx_str_t *body);
void ngx_http_deferred_op_release(ngx_http_deferred_op_t *op);

/* ngx_http_deferred_status.c */
extern const char     *ngx_http_deferred_counter_names[7];
extern const ngx_http_deferred_event_t
    ngx_http_deferred_events[NGX_HTTP_DEFERRED_NEVENTS];
extern const int64_t   ngx_http_deferred_late_bounds[DQ_LATENESS_NBOUNDS];

void ngx_http_deferred_ops_start(ngx_http_deferred_op_t *op);
void ngx_http_deferred_op_reply(void *data, redisReply *reply);

/* ngx_http_deferred_render.c */
void ngx_http_deferred_render_status(ngx_http_deferred_op_t *op);
void ngx_http_deferred_render_metrics(ngx_http_deferred_op_t *op);

/* ngx_http_deferred_admin.c */
ngx_int_t ngx_http_deferred_admin_start(ngx_http_deferred_op_t *op);
void ngx_http_deferred_admin_shards(ngx_http_deferred_op_t *op);
void ngx_http_deferred_admin_next(ngx_http_deferred_op_t *op);

/* ngx_http_deferred_dashboard.c */
ngx_int_t ngx_http_deferred_dashboard_send(ngx_http_request_t *r,
    ngx_http_deferred_ops_conf_t *oc);


#endif /* _NGX_HTTP_DEFERRED_OPS_H_INCLUDED_ */
