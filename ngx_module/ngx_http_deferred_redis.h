
/*
 * ngx_http_deferred_module: what the Redis layer's files share
 * (ngx_http_deferred_redis.c: the adapter and the commands;
 * ngx_http_deferred_connect.c: reaching a Redis and the setup;
 * ngx_http_deferred_backoff.c: its back-off and who waits for it;
 * ngx_http_deferred_sentinel.c: asking the sentinels where it is;
 * ngx_http_deferred_cluster.c: a Redis Cluster), not the rest of the
 * module: its calls into them are in ngx_http_deferred_module.h.
 */


#ifndef _NGX_HTTP_DEFERRED_REDIS_H_INCLUDED_
#define _NGX_HTTP_DEFERRED_REDIS_H_INCLUDED_


#include "ngx_http_deferred_module.h"


#define NGX_HTTP_DEFERRED_REDIS_IDLE        0
#define NGX_HTTP_DEFERRED_REDIS_CONNECTING  1
#define NGX_HTTP_DEFERRED_REDIS_READY       2
#define NGX_HTTP_DEFERRED_REDIS_BACKOFF     3
#define NGX_HTTP_DEFERRED_REDIS_SENTINEL    4
#define NGX_HTTP_DEFERRED_REDIS_SLOTS       5   /* a cluster: asking */

#define NGX_HTTP_DEFERRED_BACKOFF_MIN       100
#define NGX_HTTP_DEFERRED_BACKOFF_MAX       2000

/* an outage is young until the back-off reaches its maximum: the first
 * four failed attempts since the last success (or the start), 0.4 to
 * 1.5 s; only then does a request within BACKOFF_MIN of a failed attempt
 * wait for the next one, later it has its 503 at once (docs/MODULE.md) */
#define ngx_http_deferred_redis_young(rs)                                    \
    ((rs)->backoff < NGX_HTTP_DEFERRED_BACKOFF_MAX)


struct ngx_http_deferred_redis_cmd_s {
    ngx_http_deferred_redis_handler_pt   handler;   /* once; never while
                                                       exiting */
    void                                *data;
    dq_cmd_t                            *cmd;       /* for the EVAL retry */
    ngx_http_deferred_redis_t           *redis;     /* a cluster: the node */
    ngx_http_deferred_redis_t           *cluster;   /* NULL: not routed */
    u_char                              *buf;       /* cluster: as sent */
    size_t                               size;
    ngx_queue_t                          link;      /* in a node's waitq */
    ngx_uint_t                           redirects;
    unsigned                             eval:1;
    unsigned                             asking:1;  /* ASKING before it */
};


/* ngx_http_deferred_redis.c */
ngx_uint_t ngx_http_deferred_redis_level(ngx_http_deferred_redis_t *rs);
redisAsyncContext *ngx_http_deferred_redis_open(
    ngx_http_deferred_redis_t *rs, const char *host, in_port_t port);
void ngx_http_deferred_redis_reply_cb(redisAsyncContext *ac, void *r,
    void *privdata);
ngx_http_deferred_redis_cmd_t *ngx_http_deferred_redis_cmd_new(ngx_log_t *log,
    dq_cmd_t *cmd, ngx_http_deferred_redis_handler_pt handler, void *data);

/* ngx_http_deferred_connect.c */
ngx_int_t ngx_http_deferred_redis_connect(ngx_http_deferred_redis_t *rs);
ngx_int_t ngx_http_deferred_redis_connect_to(
    ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_redis_drop(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_redis_timer_handler(ngx_event_t *ev);
void ngx_http_deferred_redis_ask_at(ngx_http_deferred_redis_t *rs,
    const char *host, in_port_t port, ngx_uint_t auth, int argc,
    const char **argv, const size_t *argvlen);
void ngx_http_deferred_redis_ask_failed(ngx_http_deferred_redis_t *rs,
    const char *why);
ngx_int_t ngx_http_deferred_redis_ask_expired(ngx_http_deferred_redis_t *rs);

/* ngx_http_deferred_backoff.c */
void ngx_http_deferred_redis_schedule(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_redis_soon(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_redis_failed_at_once(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_redis_wake(ngx_http_deferred_redis_t *rs,
    ngx_int_t rc);
void ngx_http_deferred_redis_failed(ngx_http_deferred_redis_t *rs,
    const char *failure);

/* ngx_http_deferred_sentinel.c */
void ngx_http_deferred_sentinel_ask(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_sentinel_answer(ngx_http_deferred_redis_t *rs,
    redisReply *reply);

/* ngx_http_deferred_cluster.c */
void ngx_http_deferred_cluster_init(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_cluster_exit(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_cluster_timer(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_cluster_refresh(ngx_http_deferred_redis_t *rs);
void ngx_http_deferred_cluster_answer(ngx_http_deferred_redis_t *rs,
    redisReply *reply);
ngx_http_deferred_redis_cmd_t *ngx_http_deferred_cluster_send(
    ngx_http_deferred_redis_t *rs, ngx_http_deferred_redis_cmd_t *after,
    dq_cmd_t *cmd, int argc, const char **argv, const size_t *argvlen,
    ngx_http_deferred_redis_handler_pt handler, void *data);
ngx_int_t ngx_http_deferred_cluster_format(
    ngx_http_deferred_redis_cmd_t *rcmd, int argc, const char **argv,
    const size_t *argvlen);
ngx_int_t ngx_http_deferred_cluster_append(
    ngx_http_deferred_redis_t *node, ngx_http_deferred_redis_cmd_t *rcmd);
void ngx_http_deferred_cluster_node_ready(
    ngx_http_deferred_redis_t *node);
void ngx_http_deferred_cluster_node_failed(
    ngx_http_deferred_redis_t *node);
ngx_int_t ngx_http_deferred_cluster_redirect(
    ngx_http_deferred_redis_cmd_t *rcmd, redisReply *reply);
void ngx_http_deferred_cluster_free(ngx_http_deferred_redis_cmd_t *rcmd);


#endif /* _NGX_HTTP_DEFERRED_REDIS_H_INCLUDED_ */
