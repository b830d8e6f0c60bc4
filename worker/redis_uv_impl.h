/*
 * deferred-worker — the inside of a dq_conn_t (worker/redis_uv.c), shared
 * with worker/sentinel_uv.c, which asks the sentinels where the primary
 * is before each connect of a sentinel: address. Nothing else includes it.
 */
#ifndef DQ_REDIS_UV_IMPL_H
#define DQ_REDIS_UV_IMPL_H

#include <hiredis/async.h>

#include "worker.h"
#include "redis_uv.h"
#include "cluster_uv.h"

/* SENTINEL: asking a sentinel where the primary is (sentinel: addresses
 * only, before each connect); HANDSHAKE: connected, AUTH/SELECT/ROLE/INFO
 * (version check) under way; UP once INFO said the server is recent
 * enough. */
typedef enum { DQ_RS_DOWN, DQ_RS_SENTINEL, DQ_RS_CONNECTING,
               DQ_RS_HANDSHAKE, DQ_RS_UP, DQ_RS_CLOSING }
    dq__rstate_t;

typedef struct dq__req_s dq__req_t;

struct dq__req_s {
    dq__req_t         *prev, *next;
    dq_conn_t         *r;
    dq_conn_reply_cb   cb;
    void              *data;
    uint64_t           deadline;       /* uv_now ms; 0 = none */
    int64_t            timeout_ms;
    /* The command, formatted once: its RESP after this struct, or the
     * cluster layer's (dq_conn_send_fmt), or, once resent as EVAL, own */
    dq_conn_fmt_t      f;
    char              *own;            /* the EVAL block to free, or NULL */
};

typedef struct {
    uv_poll_t          poll;
    redisAsyncContext *ac;
    dq_conn_t         *r;
    int                events;
} dq__ev_t;

struct dq_conn_s {
    uv_loop_t         *loop;
    redisAsyncContext *ac;
    dq__rstate_t       state;
    uv_timer_t         conn_timer;     /* connect timeout / reconnect */
    uv_timer_t         cmd_timer;      /* head request's deadline */
    int                open_handles;
    int64_t            backoff_ms;
    int64_t            connect_timeout_ms;
    dq__req_t         *head, *tail;
    size_t             npending;
    char              *label;
    char              *password;
    int                db;
    int                load_scripts;
    char              *name;           /* host as configured */
    char              *host;           /* numeric, or NULL for unix */
    int                port;
    int                reconnecting;   /* not the first connect */
    int                faults;         /* fault replies in a row */
    char              *path;           /* unix socket */
    char              *master;         /* sentinel: the master's name */
    char              *shost[DQ_MAX_SENTINELS];  /* numeric */
    int                sport[DQ_MAX_SENTINELS];
    size_t             nsentinels;
    size_t             snext;          /* the sentinel asked next */
    size_t             sasked;         /* asked since the last answer */
    redisAsyncContext *sac;            /* the sentinel being asked */
    char               errstr[160];    /* why the last connection ended */
    int                cluster_node;   /* a node of cluster_uv.c's */
    int                told_cluster;   /* "give cluster:" logged */
    dq_ccl_t          *cl;             /* a cluster: all is done there */
    dq_conn_state_cb  state_cb;
    void              *data;
};

/* redis_uv.c */
void dq__connect(dq_conn_t *r);
void dq__schedule_reconnect(dq_conn_t *r);
int  dq__attach(dq_conn_t *r, redisAsyncContext *ac);

/* sentinel_uv.c: ask the next sentinel; connects once one answered */
void dq__ask_sentinel(dq_conn_t *r);

#endif /* DQ_REDIS_UV_IMPL_H */
