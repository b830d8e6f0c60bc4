
/*
 * ngx_http_deferred_module: types shared by the module's files.
 *
 *   ngx_http_deferred_module.c   directives, configuration, variables,
 *                                phase handlers registration, process hooks
 *   ngx_http_deferred_handler.c  the deferred POST endpoint
 *   ngx_http_deferred_request.c  what every location shares: the context,
 *                                reject, send_body, watch_client, the
 *                                scratch buffer
 *   ngx_http_deferred_enqueue.c  deferred_enqueue: directive and locations
 *   ngx_http_deferred_batch.c    tasks of one request: ids, envelopes,
 *                                waiting for the store (deferred_timeout)
 *   ngx_http_deferred_reply.c    the results as status, JSON body and
 *                                variables; error bodies; the response
 *   ngx_http_deferred_merge.c    the tasks of concurrent requests merged
 *                                into one script call per queue
 *   ngx_http_deferred_shards.c   a sharded queue: its shard count per
 *                                worker, a task's shard, held groups
 *   ngx_http_deferred_redis.c    hiredis on nginx's event loop: the adapter,
 *                                one connection per worker per Redis,
 *                                its commands, EVALSHA/EVAL
 *   ngx_http_deferred_connect.c  reaching a Redis: connect, the setup
 *                                pipeline and its replies, connection
 *                                lost, a question to a helper server on
 *                                a short-lived connection
 *   ngx_http_deferred_backoff.c  the connection not ready: back-off, the
 *                                attempt on a request's path, who waits
 *                                for the setup
 *   ngx_http_deferred_sentinel.c the sentinels asked before each connect
 *   ngx_http_deferred_cluster.c  Redis Cluster: slot map, a connection per
 *                                master, routing by slot, MOVED/ASK
 *   ngx_http_deferred_redis.h    what those five share (internal)
 *   ngx_http_deferred_access.c   who may call the endpoint: local
 *                                addresses, signatures (lib/dq_sign.c),
 *                                functions and retry bounds
 *   ngx_http_deferred_ops.c      operator locations: the directive, the
 *                                content handler, the op
 *                                (ngx_http_deferred_ops.h)
 *   ngx_http_deferred_status.c   status, metrics, readiness: what they ask
 *   ngx_http_deferred_render.c   status as JSON, metrics as Prometheus text
 *   ngx_http_deferred_admin.c    deferred_admin: the actions
 *   ngx_http_deferred_dashboard.c
 *                                deferred_dashboard: the embedded page
 *
 * Key names, scripts, the envelope and name rules come from lib/ only.
 */


#ifndef _NGX_HTTP_DEFERRED_MODULE_H_INCLUDED_
#define _NGX_HTTP_DEFERRED_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "dq_contract.h"
#include "dq_sign.h"


#define NGX_HTTP_DEFERRED_RETRY_AFTER  "1"


typedef struct ngx_http_deferred_redis_s      ngx_http_deferred_redis_t;
typedef struct ngx_http_deferred_redis_cmd_s  ngx_http_deferred_redis_cmd_t;
typedef struct ngx_http_deferred_ctx_s        ngx_http_deferred_ctx_t;
typedef struct ngx_http_deferred_merged_s     ngx_http_deferred_merged_t;
typedef struct ngx_http_deferred_qkeys_s      ngx_http_deferred_qkeys_t;
typedef struct ngx_http_deferred_shards_s     ngx_http_deferred_shards_t;


/* the reply handler of a command; reply is NULL when the connection is
 * lost or dropped; it runs exactly once (not at all when the worker
 * process exits) */
typedef void (*ngx_http_deferred_redis_handler_pt)(void *data,
    redisReply *reply);


/* something waiting for a connection's setup (ops.c's operator
 * requests): its handler runs once, with NGX_OK when the setup answered
 * OK, NGX_ERROR when it failed; never once cancelled or when the worker
 * process exits */
typedef void (*ngx_http_deferred_redis_await_pt)(void *data, ngx_int_t rc);

typedef struct {
    ngx_queue_t                        link;      /* in redis->waiters */
    ngx_http_deferred_redis_await_pt   handler;
    void                              *data;
    unsigned                           waiting:1;
} ngx_http_deferred_redis_waiter_t;


/* a sentinel, or a cluster's seed node: resolved at config time */
typedef struct {
    ngx_str_t                      host;        /* numeric, NUL-terminated */
    in_port_t                      port;
} ngx_http_deferred_sentinel_t;


struct ngx_http_deferred_redis_s {
    ngx_str_t                      name;        /* as configured, for logs */
    ngx_str_t                      host;        /* numeric, NUL-terminated;
                                                   sentinel: their last
                                                   answer (per worker) */
    in_port_t                      port;
    ngx_str_t                      master;      /* sentinel: the master's
                                                   name, NUL-terminated */
    ngx_http_deferred_sentinel_t  *sentinels;
    ngx_uint_t                     nsentinels;  /* 0: not sentinel: */
    ngx_str_t                      unix_path;   /* NUL-terminated, or empty */
    ngx_str_t                      password;
    ngx_int_t                      db;
    ngx_msec_t                     connect_timeout;
    ngx_int_t                      replicas;    /* WAIT for n replicas */
    ngx_msec_t                     replicas_timeout;
    ngx_msec_t                     max_timeout; /* longest deferred_timeout
                                                   of the locations using
                                                   it */

    /* per worker process, from init_process on */
    redisAsyncContext             *ac;
    ngx_uint_t                     state;
    ngx_event_t                    timer;       /* connect timeout, backoff */
    ngx_msec_t                     backoff;
    ngx_msec_t                     last_attempt;
    ngx_log_t                     *log;
    ngx_queue_t                    queued;      /* groups not yet sent */
    ngx_queue_t                    waiters;     /* of redis_waiter_t: for
                                                   the setup (not on a
                                                   cluster's node) */
    ngx_uint_t                     pending;     /* commands sent, no reply */
    ngx_msec_t                     waiting_since; /* last reply, or first
                                                   send after none */
    ngx_event_t                    flush;       /* posted: send them */
    ngx_event_t                    failed_ev;   /* posted: an attempt on a
                                                   request's path failed
                                                   at once */
    ngx_http_deferred_qkeys_t     *qkeys;       /* per queue: its keys,
                                                   a bounded LRU (merge.c) */
    ngx_queue_t                    qlru;
    ngx_uint_t                     nqkeys;
    ngx_http_deferred_shards_t    *shards;      /* per queue: its shard
                                                   count, read from Redis
                                                   (merge.c) */
    ngx_uint_t                     nshards;
    ngx_uint_t                     shard_rr;    /* unnamed tasks' shard */
    ngx_uint_t                     generation;  /* connections made */
    redisAsyncContext             *sac;         /* the sentinel asked */
    const char                    *asked_host;  /* its address, for logs */
    in_port_t                      asked_port;
    ngx_uint_t                     snext;       /* the sentinel asked next */
    ngx_uint_t                     sasked;      /* since the last answer */

    /* Redis Cluster (nseeds > 0): this one routes each command by its
     * slot to a node, itself a redis_t with the connection above (its
     * "cluster" points back here); the map is asked with sac/snext/sasked
     * like the sentinels */
    ngx_http_deferred_sentinel_t  *seeds;
    ngx_uint_t                     nseeds;
    ngx_http_deferred_redis_t     *cluster;     /* a node: its cluster */
    ngx_array_t                    nodes;       /* of redis_t *, per worker;
                                                   never shrinks */
    int16_t                       *slots;       /* node index per slot, -1:
                                                   none; NULL: no map yet */
    int16_t                       *masters;     /* the nodes the map
                                                   names, in slot order
                                                   (after slots, one
                                                   block) */
    ngx_uint_t                     nmasters;
    ngx_msec_t                     map_asked;   /* the last question */
    ngx_queue_t                    waitq;       /* a node: commands waiting
                                                   for its setup */
    unsigned                       map_again:1; /* ask once more after */
    unsigned                       soon:1;      /* in back-off, the next
                                                   attempt on rs->timer
                                                   within BACKOFF_MIN:
                                                   requests wait for it */
    unsigned                       down_logged:1;
    unsigned                       exiting:1;
};


/* idle msgpack zones kept per worker process (8 KiB each once cleared):
 * one per request in flight; past it a request pays a malloc and a free
 * (32 made 42 % of the requests of one worker with 50 connections pay
 * them: callgrind, docs/BENCHMARKS.md) */
#define NGX_HTTP_DEFERRED_ZONES         128
#define NGX_HTTP_DEFERRED_SCRATCH_KEEP  (64 * 1024)


/*
 * One deferred_timeout timer for the requests that wait for Redis with the
 * same deadline: those sent in one event loop iteration (ngx_current_msec
 * is the iteration's) by locations with the same deferred_timeout. It
 * fires where their own timers would have, and fails them in the order
 * they came, as nginx would have run their timers (batch.c).
 */
typedef struct {
    ngx_event_t                    ev;
    ngx_queue_t                    ctxs;        /* of ctx_t, by tlink */
    ngx_msec_t                     deadline;
    ngx_queue_t                    link;        /* in tfree while unused */
    unsigned                       firing:1;
} ngx_http_deferred_timeout_t;


typedef struct {
    ngx_array_t                    servers;     /* of redis_t * */

    /* per worker process: reused by every request, so that a request or
     * a task allocates no msgpack buffer or zone of its own (request.c) */
    msgpack_sbuffer                scratch;
    msgpack_zone                  *zones[NGX_HTTP_DEFERRED_ZONES]; /* idle */
    ngx_uint_t                     nzones;

    /* per worker process: the deferred_timeout timers (batch.c) */
    ngx_http_deferred_timeout_t   *tlast;       /* the newest, to join */
    ngx_queue_t                    tfree;       /* unused ones */
} ngx_http_deferred_main_conf_t;


typedef struct {
    ngx_flag_t                     endpoint;    /* /_ah/queue/deferred */
} ngx_http_deferred_srv_conf_t;


/* one positional argument of a deferred_enqueue */
typedef enum {
    NGX_HTTP_DEFERRED_ARG_STR = 0,
    NGX_HTTP_DEFERRED_ARG_INT,
    NGX_HTTP_DEFERRED_ARG_FLOAT,
    NGX_HTTP_DEFERRED_ARG_BOOL,
    NGX_HTTP_DEFERRED_ARG_NIL
} ngx_http_deferred_arg_type_e;


typedef struct {
    ngx_http_complex_value_t       value;
    ngx_uint_t                     type;
} ngx_http_deferred_arg_t;


typedef struct {
    ngx_str_t                      func;
    ngx_http_complex_value_t      *queue;
    ngx_http_complex_value_t      *countdown;
    ngx_http_complex_value_t      *eta;
    ngx_http_complex_value_t      *name;
    ngx_http_complex_value_t      *url;
    ngx_array_t                   *args;        /* ngx_http_deferred_arg_t */
} ngx_http_deferred_enqueue_t;


/* server-side bounds on a task's retry_options (deferred_retry_bounds) */
typedef struct {
    int64_t                        max_retries;
    int64_t                        min_backoff_ms;
    int64_t                        max_backoff_ms;
    int64_t                        max_doublings;
    int64_t                        max_age_ms;  /* 0: any */
} ngx_http_deferred_bounds_t;


typedef struct {
    ngx_http_deferred_redis_t     *redis;
    ngx_flag_t                     endpoint;    /* this location */
    ngx_flag_t                     endpoint_off;
    ngx_flag_t                     open;        /* any address may call */
    ngx_array_t                   *enqueues;    /* of enqueue_t */
    ngx_array_t                   *queues;      /* ngx_str_t, allowed */
    ngx_array_t                   *functions;   /* ngx_str_t, allowed */
    ngx_array_t                   *secrets;     /* dq_str_t */
    ngx_str_t                      secret_header;
    time_t                         secret_window;
    ngx_http_deferred_bounds_t    *bounds;
    ngx_uint_t                     ret_status;  /* deferred_return */
    ngx_http_complex_value_t      *ret_text;
    size_t                         max_body;
    size_t                         max_envelope; /* of one task */
    ngx_uint_t                     max_batch;
    ngx_msec_t                     timeout;
    ngx_msec_t                     tombstone;
    void                          *ops;         /* ops.c: operator
                                                   location, or NULL */
} ngx_http_deferred_loc_conf_t;


/* one queue's share of a request's tasks: one script call */
typedef struct ngx_http_deferred_group_s  ngx_http_deferred_group_t;

struct ngx_http_deferred_group_s {
    ngx_http_deferred_ctx_t       *ctx;
    dq_str_t                       queue;       /* the shard's name */
    ngx_uint_t                     hash;        /* ngx_hash_key of queue,
                                                   set with it */
    dq_enqueue_item_t             *items;
    ngx_uint_t                    *index;       /* item -> task number */
    ngx_uint_t                     n;
    int64_t                        tombstone;
    ngx_queue_t                    link;        /* in redis->queued */
    ngx_http_deferred_group_t     *bucket_next; /* same queue, while the
                                                   merger sorts the list */
    ngx_http_deferred_merged_t    *merged;      /* sent, waiting */
    ngx_uint_t                     slot;        /* in merged */
    unsigned                       queued:1;
    unsigned                       shard_wait:1; /* its queue's shard count
                                                   was not known: held
                                                   until it is (merge.c),
                                                   then split by shard */
};


typedef struct {
    dq_str_t                       id;
    dq_str_t                       queue;
    dq_str_t                       shard;       /* its shard of queue (the
                                                   queue when unsharded) */
    dq_str_t                       name;
    dq_str_t                       url;
    dq_str_t                       envelope;
    int64_t                        eta_ms;      /* requested, -1 none */
    int64_t                        countdown_ms;
    int                            keyed;       /* id from the client */
    int                            url_default; /* url is DQ_DEFAULT_URL */
    int64_t                        key_window_ms;
    dq_enqueue_result_t            result;
} ngx_http_deferred_task_t;


/* an empty dq_error_t (no code, field or message): what a zeroed one
 * reads as, without writing its 356 bytes twice a request */
#define ngx_http_deferred_error_init(e)                                       \
    ((e)->code = 0, (e)->field[0] = '\0', (e)->msg[0] = '\0')


/* one request's last queue: ngx_http_deferred_shards_task */
typedef struct {
    dq_str_t                       queue;
    ngx_uint_t                     hash;        /* ngx_hash_key of it */
    ngx_uint_t                     n;           /* its shard count */
    ngx_uint_t                     guessed;
    dq_str_t                       spread;      /* its unnamed tasks'
                                                   shard, once named */
} ngx_http_deferred_shard_memo_t;


typedef enum {
    NGX_HTTP_DEFERRED_NEW = 0,
    NGX_HTTP_DEFERRED_WAITING,
    NGX_HTTP_DEFERRED_STORED,
    NGX_HTTP_DEFERRED_FAILED
} ngx_http_deferred_state_e;


/* the request's context; the batch it carries lives in the request pool */
struct ngx_http_deferred_ctx_s {
    ngx_http_request_t            *request;
    ngx_http_deferred_loc_conf_t  *conf;        /* whose enqueues */
    ngx_uint_t                     state;
    ngx_uint_t                     endpoint;    /* POST vs enqueue location */

    ngx_http_deferred_task_t      *tasks;
    ngx_uint_t                     ntasks;
    ngx_uint_t                     batch;       /* body was an array */
    ngx_int_t                      kind;        /* _JSON or _MSGPACK */
    msgpack_zone                  *zone;        /* the body's tree: given
                                                   back by the cleanup */
    ngx_uint_t                     sent;        /* batch_send: its groups
                                                   cancelled by the cleanup */
    ngx_http_deferred_group_t     *groups;
    ngx_uint_t                     ngroups;
    ngx_uint_t                     waiting;     /* groups without reply */

    ngx_http_deferred_redis_t     *redis;
    void                         (*done)(ngx_http_deferred_ctx_t *ctx);
    ngx_http_deferred_timeout_t   *timeout;     /* deferred_timeout: the
                                                   timer it shares */
    ngx_queue_t                    tlink;       /* in timeout->ctxs */
    ngx_uint_t                     timed_out;
    ngx_int_t                      status;      /* response when done */
    ngx_str_t                      body;        /* response body (JSON) */
    ngx_uint_t                     retry_after;

    u_char                        *raw;         /* the body as read */
    size_t                         raw_len;
    size_t                         raw_cap;
    unsigned                       reading:1;   /* endpoint body */
    unsigned                       body_pending:1;  /* enqueue: reading */

    ngx_str_t                      var_id;      /* $deferred_task_id */
    ngx_str_t                      var_eta;     /* $deferred_task_eta */
};


/* ngx_http_deferred_merge.c */
void ngx_http_deferred_merge_init(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_merge_add(ngx_http_deferred_group_t *g);
void ngx_http_deferred_merge_cancel(ngx_http_deferred_group_t *g);
void ngx_http_deferred_merge_ready(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_merge_fail_queued(ngx_http_deferred_redis_t *rs,
    const char *failure);

/* ngx_http_deferred_shards.c */
void ngx_http_deferred_shards_init(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_shards_exit(ngx_http_deferred_redis_t *rs);
ngx_uint_t ngx_http_deferred_shards_count(ngx_http_deferred_redis_t *rs,
    dq_str_t queue, ngx_uint_t hash, ngx_uint_t *guessed);
ngx_int_t ngx_http_deferred_shards_task(ngx_http_deferred_ctx_t *ctx,
    ngx_http_deferred_task_t *t, ngx_uint_t rr, ngx_uint_t *wait,
    ngx_http_deferred_shard_memo_t *memo);
void ngx_http_deferred_shards_release(ngx_http_deferred_redis_t *rs);

/* ngx_http_deferred_backoff.c */
ngx_int_t ngx_http_deferred_redis_usable(ngx_http_deferred_redis_t *rs);
ngx_int_t ngx_http_deferred_redis_connecting(ngx_http_deferred_redis_t *rs);
ngx_int_t ngx_http_deferred_redis_ready(ngx_http_deferred_redis_t *rs);
ngx_int_t ngx_http_deferred_redis_await(ngx_http_deferred_redis_t *rs,
    ngx_http_deferred_redis_waiter_t *w);
void ngx_http_deferred_redis_await_cancel(
    ngx_http_deferred_redis_waiter_t *w);

/* ngx_http_deferred_redis.c */
ngx_int_t ngx_http_deferred_redis_register(ngx_http_deferred_redis_t *rs,
    dq_str_t queue, ngx_http_deferred_redis_handler_pt handler, void *data);
ngx_int_t ngx_http_deferred_redis_wait(ngx_http_deferred_redis_t *rs,
    ngx_http_deferred_redis_cmd_t *after,
    ngx_http_deferred_redis_handler_pt handler, void *data);
ngx_int_t ngx_http_deferred_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_deferred_main_conf_t *dmcf);
void ngx_http_deferred_redis_exit_process(ngx_http_deferred_main_conf_t *dmcf);
ngx_http_deferred_redis_cmd_t *ngx_http_deferred_redis_eval(
    ngx_http_deferred_redis_t *rs, dq_cmd_t *cmd,
    ngx_http_deferred_redis_handler_pt handler, void *data);
void ngx_http_deferred_redis_timed_out(ngx_http_deferred_redis_t *rs);
ngx_uint_t ngx_http_deferred_redis_masters(ngx_http_deferred_redis_t *rs);
ngx_http_deferred_redis_cmd_t *ngx_http_deferred_redis_eval_at(
    ngx_http_deferred_redis_t *rs, ngx_uint_t nth, dq_cmd_t *cmd,
    ngx_http_deferred_redis_handler_pt handler, void *data);

/* ngx_http_deferred_batch.c */
ngx_int_t ngx_http_deferred_batch_prepare(ngx_http_deferred_ctx_t *ctx,
    dq_request_t *reqs, ngx_uint_t n, dq_str_t default_url,
    dq_error_t *err);
ngx_int_t ngx_http_deferred_batch_send(ngx_http_deferred_ctx_t *ctx);
void ngx_http_deferred_batch_cleanup(ngx_http_deferred_ctx_t *ctx);
void ngx_http_deferred_batch_field(char *field, ngx_uint_t batch,
    ngx_uint_t i, const char *name);
void ngx_http_deferred_batch_deliver(ngx_http_deferred_group_t *g,
    dq_enqueue_result_t *res, const char *failure);
ngx_int_t ngx_http_deferred_status_of(int code);

/* ngx_http_deferred_reply.c */
void ngx_http_deferred_batch_results(ngx_http_deferred_ctx_t *ctx);
ngx_int_t ngx_http_deferred_error_body(ngx_http_request_t *r,
    ngx_http_deferred_ctx_t *ctx, ngx_int_t status, const char *error,
    const char *field, const char *message);
ngx_int_t ngx_http_deferred_send_response(ngx_http_request_t *r,
    ngx_http_deferred_ctx_t *ctx);

/* ngx_http_deferred_access.c */
ngx_int_t ngx_http_deferred_local_client(ngx_http_request_t *r);
ngx_int_t ngx_http_deferred_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value);
ngx_int_t ngx_http_deferred_signature_precheck(ngx_http_request_t *r,
    ngx_http_deferred_loc_conf_t *dlcf, dq_error_t *err);
ngx_int_t ngx_http_deferred_signature_check(ngx_http_request_t *r,
    ngx_http_deferred_loc_conf_t *dlcf, ngx_str_t *body, u_char *mac,
    dq_error_t *err);
ngx_int_t ngx_http_deferred_allowed(ngx_http_deferred_loc_conf_t *dlcf,
    dq_request_t *req, const char *prefix, dq_error_t *err);
const char *ngx_http_deferred_error_name(int code);

/* ngx_http_deferred_handler.c */
ngx_int_t ngx_http_deferred_endpoint_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_deferred_precontent_handler(ngx_http_request_t *r);

/* ngx_http_deferred_request.c */
ngx_http_deferred_ctx_t *ngx_http_deferred_ctx_create(ngx_http_request_t *r);
ngx_http_deferred_ctx_t *ngx_http_deferred_ctx_find(ngx_http_request_t *r,
    ngx_http_deferred_loc_conf_t *conf);
void ngx_http_deferred_log_safe(char *s);
ngx_int_t ngx_http_deferred_reject(ngx_http_request_t *r,
    ngx_http_deferred_ctx_t *ctx, ngx_int_t status, const char *error,
    const char *field, const char *message);
ngx_int_t ngx_http_deferred_send_body(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_str_t *body);
void ngx_http_deferred_watch_client(ngx_http_request_t *r);
msgpack_sbuffer *ngx_http_deferred_scratch(ngx_http_request_t *r);
void ngx_http_deferred_scratch_trim(ngx_http_request_t *r);
ngx_int_t ngx_http_deferred_header_add(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value);
void ngx_http_deferred_scratch_free(ngx_http_deferred_main_conf_t *dmcf);

/* ngx_http_deferred_ops.c */
extern ngx_uint_t  ngx_http_deferred_ops_kinds[];
char *ngx_http_deferred_ops_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_deferred_enqueue.c */
char *ngx_http_deferred_enqueue_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_deferred_return_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_deferred_log_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_deferred_enqueue_handler(ngx_http_request_t *r);


extern ngx_module_t  ngx_http_deferred_module;


#endif /* _NGX_HTTP_DEFERRED_MODULE_H_INCLUDED_ */
