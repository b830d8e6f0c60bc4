/*
 * The C client's internals shared by client/client*.c.
 * Not part of the nginx module build.
 */
#ifndef DQ_CLIENT_IMPL_H
#define DQ_CLIENT_IMPL_H

#include <msgpack.h>

#include <deferred/client.h>
#include "dq_contract.h"
#include "dq_sync.h"

struct dq_args_s {
    msgpack_sbuffer sb;       /* the elements, without container header */
    msgpack_packer  pk;
    uint32_t        count;    /* elements (array) or pairs (map) */
    int             is_map;
    int             key_pending;
    int             broken;   /* a call failed: the args are refused */
};

/* Write the container header and the elements to pk (whose data is a
 * msgpack_sbuffer). 0 or -1 (out of memory). */
int dq__args_pack(const dq_args_t *a, msgpack_packer *pk);

#define DQ__CHUNK  1000   /* tasks per enqueue script call (a chunk) */

/* Queues already added to dq:queues on this connection (client_queues.c). */
typedef struct {
    char   **slot;        /* open addressing, NULL = empty */
    size_t   cap;         /* 0 or a power of two */
    size_t   n;
} dq__qset_t;

int  dq__qset_has(const dq__qset_t *s, const char *q);
int  dq__qset_add(dq__qset_t *s, const char *q);    /* 0 or -1 (ENOMEM) */
void dq__qset_clear(dq__qset_t *s);

/* A Redis Cluster behind one client (client_cluster.c): one blocking
 * connection per master, opened when a command for one of its slots
 * comes; commands are pipelined per node and their replies read back in
 * the order the caller appended them, MOVED/ASK/TRYAGAIN followed. */
typedef struct {
    char          host[DQ_CLUSTER_HOST];
    int           port;
    redisContext *ctx;            /* NULL: not connected */
    int           wrote;          /* answered a command (not an error)
                                     since dq__cl_wait_reset: WAIT here */
} dq__cl_conn_t;

typedef struct {
    size_t        conn;           /* where it was sent last */
    char         *cmd;            /* RESP (redisFormatCommandArgv), kept to
                                     send it again after a redirect */
    long long     len;
    int           slot;           /* -1: keyless, any node */
    redisReply   *reply;          /* read early (a redirect drained its
                                     node to reach a later reply) */
} dq__cl_pend_t;

typedef struct {
    dq_cluster_map_t  map;
    int               have_map;
    int64_t           refreshed_ms;
    dq__cl_conn_t    *conn;       /* by host:port, kept across map changes */
    size_t            nconn;
    dq__cl_pend_t    *pend;       /* appended, reply not yet taken */
    size_t            head, npend, cap;
} dq__cluster_t;

/* Shard counts read (client_shards.c): up to 64 queues (as nginx's
 * table), each for DQ_SHARDS_TTL_MS, the least recently used evicted. */
#define DQ__SHARD_CACHE  64

typedef struct {
    char     name[DQ_QUEUE_NAME_MAX + 1];   /* "" = free */
    unsigned n;
    unsigned rr;                            /* its unnamed tasks' round
                                               robin (per queue) */
    int64_t  expires;                       /* monotonic ms: read again */
    int64_t  known;                         /* monotonic ms: n last read
                                               (not guessed) */
    uint64_t used;                          /* shard_tick when last used */
    int      guessed;                       /* n = 1: the read failed
                                               (dq_shards_unread) */
    char     why[96];                       /* then: Redis' answer */
} dq__shard_cache_t;

struct dq_client_s {
    char        *address;     /* as given (dq_addr_parse's forms) */
    int          bad_address; /* dq_addr_parse refused it */
    dq__cluster_t *cl;        /* a cluster: address; NULL otherwise */
    char        *password;
    int          db;
    int          timeout_ms;
    int          wait_replicas;   /* dq_client_set_wait; 0 = off */
    int          wait_ms;
    int64_t      tombstone_ms;
    dq_limits_t  lim;
    redisContext *ctx;
    dq__qset_t   queues;      /* SADD dq:queues sent on ctx (reset with it) */
    dq__shard_cache_t shards[DQ__SHARD_CACHE];
    uint64_t     shard_tick;  /* the shard cache's use counter (LRU) */
    int          refused;     /* the last shard count read got an error
                                 reply (not a lost connection) */
    char         errstr[512];
};

/* client.c, shared by the other client*.c. */
struct timeval dq__ms_tv(long long ms);   /* a hiredis timeout of ms */
int  dq__fail(dq_client_t *c, int code, const char *fmt, ...) DQ_PRINTF(3, 4);
int  dq__fail_err(dq_client_t *c, const dq_error_t *e);
/* A queue argument (NULL: the default queue) into q; DQ_EINVAL (errstr
 * set) unless it is a valid name. */
int  dq__queue_arg(dq_client_t *c, const char *queue, dq_str_t *q);
void dq__disconnect(dq_client_t *c);
int  dq__ready(dq_client_t *c);       /* connected (reconnects) or error */
int  dq__get_reply(dq_client_t *c, redisReply **r);
int  dq__run(dq_client_t *c, dq_cmd_t *cmd, redisReply **r);  /* NOSCRIPT */
/* Queue one command (argvlen NULL: C strings); its reply is read with
 * dq__get_reply, in append order. DQ_OK, or an error (errstr set, the
 * connection dropped). */
int  dq__append(dq_client_t *c, int argc, const char **argv,
                const size_t *argvlen);
/* Open one node: connect (timeout), AUTH, the Redis version check. */
redisContext *dq__node_open(const char *host, int port, const char *password,
                            int timeout_ms, char *err, size_t errlen);

/* WAIT for dq_client_set_wait's replicas after an enqueue
 * (client_enqueue.c; the socket timeout stretched by the wait's own). */
int  dq__wait(dq_client_t *c);
/* After a write that must survive a failover (a queue's shard count):
 * on the master written to (one Redis: the connection; a cluster: each
 * master that answered since dq__cl_wait_reset), ROLE, and if it has
 * replicas WAIT 1 timeout_ms; none acknowledged: DQ_EREDIS saying `what`
 * is stored but not replicated. A master without replicas: DQ_OK. */
int  dq__wait_replicated(dq_client_t *c, int timeout_ms, const char *what);
int  dq__wait_node(dq_client_t *c, redisContext *ctx, const char *who,
                   int timeout_ms, const char *what);

/* client_cluster.c */
int  dq__cl_new(dq_client_t *c);                  /* DQ_OK or DQ_ENOMEM */
void dq__cl_free(dq_client_t *c);
void dq__cl_disconnect(dq_client_t *c);
int  dq__cl_ready(dq_client_t *c);
int  dq__cl_append(dq_client_t *c, int argc, const char **argv,
                   const size_t *argvlen);
int  dq__cl_get_reply(dq_client_t *c, redisReply **r);
/* dq__cl_wait WAITs on the masters that answered a command (not with an
 * error) since dq__cl_wait_reset: the ones this enqueue wrote to. */
void dq__cl_wait_reset(dq_client_t *c);
int  dq__cl_wait(dq_client_t *c, int replicas, int timeout_ms);
int  dq__cl_wait_replicated(dq_client_t *c, int timeout_ms,
                            const char *what);

/* client_shards.c: a queue's shard count (cached), the shard an enqueue
 * goes to (name: the task's name, else its caller-chosen id, else NULL:
 * round robin; *unplaced 1, errstr set: this task must not go, its
 * queue's count could not be read and it is named or keyed,
 * dq_shards_may_place), and the applied
 * settings of a whole (maybe sharded) queue: v holds DQ_QCONF_FIELDS'
 * values ("" = not set), rate, bucket_size and max_concurrent for the
 * whole queue (summed on read, split on write). */
int dq__shard_target(dq_client_t *c, const char *queue, const char *name,
                     char out[DQ_SHARD_NAME_MAX + 1], int *unplaced);
int dq__queue_settings(dq_client_t *c, dq_str_t q,
                       char v[DQ_QCONF_NFIELDS][48], unsigned *n,
                       int *unsplit);   /* (may be NULL) 1: shard 0's
                                           limits not its share (an old
                                           CLI wrote them: DQ_QCONF_SPLIT) */
int dq__queue_apply(dq_client_t *c, dq_str_t q, char v[DQ_QCONF_NFIELDS][48]);
int dq__queue_clear(dq_client_t *c, dq_str_t q);

#endif /* DQ_CLIENT_IMPL_H */
