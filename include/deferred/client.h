/*
 * ngx_deferred — the C client: defer a function call from a C program.
 *
 * deferred.defer(fn, *args, _countdown=, _eta=, _name=, _queue=, _url=,
 * _headers=, _retry_options=) in C. Synchronous (blocking hiredis): for C
 * programs, tools and tests — never call it from an nginx worker or from a
 * tasklet.
 *
 *   dq_client_t *c = dq_client_new("127.0.0.1:6379", NULL);
 *   dq_args_t *a = dq_args_new();
 *   dq_args_str(a, "key", 3); dq_args_int(a, 10);
 *   dq_defer_opts_t o = DQ_DEFER_OPTS_INIT;
 *   o.countdown_ms = 60000;
 *   char id[DQ_ID_SIZE];
 *   if (dq_defer(c, "counter.add", a, &o, id) != DQ_OK)
 *       fprintf(stderr, "%s\n", dq_client_errstr(c));
 *
 * Ownership: a client is used by one thread at a time. Errors: every call
 * returns DQ_OK or a DQ_E* code; dq_client_errstr() has the detail of the
 * last failed call on that client. After any connection error the next
 * call reconnects. DQ_EREDIS on a timeout does not prove the task was not
 * stored (Redis may run the command later): the id is fixed before
 * sending, so a retry with the same name is deduplicated.
 *
 * Signals: hiredis writes with write(2), so a write to a connection Redis
 * has closed raises SIGPIPE; the library changes no process-wide state, so
 * a program that must survive that ignores SIGPIPE itself.
 */
#ifndef DEFERRED_CLIENT_H
#define DEFERRED_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <deferred/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dq_client_s dq_client_t;

typedef struct {
    const char *password;        /* AUTH; NULL or "": no AUTH */
    int         db;              /* SELECT, 0 default */
    int         timeout_ms;      /* connect and command timeout; 0 = 5000 */
    int64_t     tombstone_ms;    /* name dedup window; 0 = 7 days */
    size_t      max_envelope;    /* 0 = 1 MiB; at most the workers'
                                    max_envelope (a larger task is
                                    stored and never decoded) */
} dq_client_opts_t;

/* address: "HOST" (port 6379), "HOST:PORT", "[IPV6]:PORT",
 * "unix:/path/to/sock", "sentinel:MASTER@HOST[:PORT][,...]" or
 * "cluster:HOST[:PORT][,...]" (the same forms as the module and the
 * worker); a host name is resolved at each connect; with sentinel: each
 * connect asks the sentinels in turn and takes the answer only if ROLE
 * says master. With cluster: (a Redis Cluster; the hosts are seeds, any
 * nodes) the slot map is asked of the seeds (CLUSTER SLOTS), a blocking
 * connection per master is opened when a command for one of its slots
 * comes (AUTH, the timeout, each), MOVED and ASK are followed (at most 5
 * in a row per command), TRYAGAIN is retried for about 1 s; opts->db must be 0
 * (calls fail with DQ_EINVAL otherwise); dq_client_set_wait WAITs on
 * each master that answered this call's enqueue commands (not on other
 * connections held). A lost node connection fails the call (DQ_EREDIS, as
 * on one Redis; dq_defer_many: see there) and the next call asks for the
 * map again.
 * Returns NULL only on out-of-memory; a failed connect returns a client
 * whose calls fail with DQ_EREDIS (see dq_client_errstr) and which
 * reconnects on the next call. opts may be NULL. */
dq_client_t *dq_client_new(const char *address, const dq_client_opts_t *opts);
void dq_client_free(dq_client_t *c);
const char *dq_client_errstr(const dq_client_t *c);

/* Opt-in durability wait: after each enqueue, WAIT until `replicas`
 * replicas acknowledged it, at most timeout_ms (> 0). Fewer in time: the
 * tasks the call stored fail with DQ_EREDIS ("stored, but ...") although
 * they are stored on the master (in dq_defer_many their statuses; a
 * DQ_EDUPLICATE or DQ_ETOMBSTONE task keeps its status); sending the
 * same request again is safe only for named tasks or fixed ids (a replay
 * of an unnamed task is a new task).
 * replicas 0 turns it off (the default). Redis 7.0 has no WAITAOF: this is
 * replication, not fsync (docs/RELIABILITY.md). */
int dq_client_set_wait(dq_client_t *c, int replicas, int timeout_ms);

/* Positional (array) or keyword (map) arguments, built as msgpack. */
typedef struct dq_args_s dq_args_t;

dq_args_t *dq_args_new(void);     /* an array */
dq_args_t *dq_kwargs_new(void);   /* a map: call dq_args_key before each value */
void dq_args_free(dq_args_t *a);
void dq_args_clear(dq_args_t *a);
int dq_args_key(dq_args_t *a, const char *key);
int dq_args_int(dq_args_t *a, int64_t v);
int dq_args_double(dq_args_t *a, double v);
int dq_args_bool(dq_args_t *a, int v);
int dq_args_nil(dq_args_t *a);
int dq_args_str(dq_args_t *a, const char *s, size_t len);
int dq_args_cstr(dq_args_t *a, const char *s);
int dq_args_bin(dq_args_t *a, const void *p, size_t len);

/* Options; fields left as in DQ_DEFER_OPTS_INIT take App Engine's
 * defaults: queue "default", URL "/_ah/queue/deferred", run now. */
typedef struct {
    const char        *queue;
    const char        *name;          /* task name (dedup), or NULL */
    const char        *url;
    int64_t            countdown_ms;  /* -1: none */
    int64_t            eta_ms;        /* -1: none; absolute UTC ms */
    const dq_header_t *headers;
    size_t             nheaders;
    dq_retry_t         retry;         /* fields -1: not given */
    const dq_args_t   *kwargs;        /* or NULL */
    const char        *id;            /* the task id ([A-Za-z0-9_-], 1 to
                                         DQ_ID_LEN characters), or NULL
                                         for a new one: a defer of an id
                                         stored, or run within the
                                         tombstone window after its ETA,
                                         stores nothing and reports DQ_OK
                                         (safe retries after DQ_EREDIS) */
} dq_defer_opts_t;

#define DQ_DEFER_OPTS_INIT                                                    \
    { NULL, NULL, NULL, -1, -1, NULL, 0, DQ_RETRY_UNSET, NULL, NULL }

/* Defer func(args) with opts (either may be NULL). On DQ_OK, id_out (if not
 * NULL) holds the task id and *eta_ms (if not NULL) its ETA. Errors:
 * DQ_EINVAL (bad name/queue/url/options), DQ_ETOOBIG, DQ_EDUPLICATE,
 * DQ_ETOMBSTONE, DQ_EREDIS. */
int dq_defer(dq_client_t *c, const char *func, const dq_args_t *args,
             const dq_defer_opts_t *opts, char id_out[DQ_ID_SIZE],
             int64_t *eta_ms);

/* Many tasks in as few round trips as possible (pipelined, one script call
 * per queue per up to 1000 tasks). statuses[i] gets each task's result
 * (DQ_OK, DQ_EDUPLICATE, ...) and ids (if not NULL) its id. Returns DQ_OK if
 * the calls were made (check statuses), or the error that stopped them. A
 * call Redis answered with an error (TRYAGAIN, OOM, READONLY...: on a
 * cluster, one node) gives its tasks DQ_EREDIS, the first such reply in
 * dq_client_errstr; the other calls' tasks keep their own results. An
 * error that stops the calls midway (a node's connection lost) is
 * returned, and statuses still tell: the tasks of calls whose replies
 * were read keep their results (DQ_OK: stored), the others get the error
 * (with dq_client_set_wait, stored but not WAITed for: DQ_EREDIS too).
 * A sharded queue's shard count Redis refused to read (docs/SCALING.md):
 * its named and keyed tasks get DQ_EREDIS, nothing sent for them, the
 * others go on (the count read before, else shard 0). */
typedef struct {
    const char            *func;
    const dq_args_t       *args;
    const dq_defer_opts_t *opts;
} dq_defer_req_t;

int dq_defer_many(dq_client_t *c, const dq_defer_req_t *reqs, size_t n,
                  int *statuses, char (*ids)[DQ_ID_SIZE]);

/* Inspection and administration. */
typedef struct {
    int64_t waiting;     /* in the ETA set (due or not) or the cold
                            tier (stats "cold") */
    int64_t running;     /* leased */
    int64_t dead;
    int64_t enqueued, done, retried, dead_total;  /* counters */
    int64_t reclaimed;   /* expired leases taken back */
    int64_t released;    /* leases given back unstarted, not charged */
    int64_t unrunnable;  /* released by a worker that cannot run the
                            function (not registered, library not loaded) */
    int64_t dead_over_max;  /* burials that found the dead set over
                               dead_max (nothing younger than dead_age is
                               deleted) */
} dq_queue_stats_t;

int dq_queue_stats(dq_client_t *c, const char *queue, dq_queue_stats_t *out);

/* Re-run a dead task (DQ_ENOTFOUND if it is not dead; DQ_EDUPLICATE if a
 * live task holds its name now: it stays dead). */
int dq_requeue_dead(dq_client_t *c, const char *queue, const char *id);

/* Re-run every dead task of a queue whose last error contains `match` (a
 * plain substring; NULL or "" = all of them), oldest first, in script
 * calls of at most 1000 tasks each. *requeued and *conflicts (either may
 * be NULL) say how many ran again and how many stayed dead because a live
 * task holds their name now. */
int dq_requeue_dead_all(dq_client_t *c, const char *queue, const char *match,
                        int64_t *requeued, int64_t *conflicts);

/* The last error recorded for a task (dead or retrying), copied into buf;
 * DQ_ENOTFOUND if none. */
int dq_task_last_error(dq_client_t *c, const char *queue, const char *id,
                       char *buf, size_t size);

/* Pause (paused 1) or resume (0) a queue for every worker: claims take
 * nothing from it while tasks are still accepted; resuming wakes sleeping
 * workers. *changed (may be NULL): 1 if the state changed, 0 if it already
 * was so. */
int dq_queue_pause(dq_client_t *c, const char *queue, int paused,
                   int *changed);

/* Sharded queues (docs/SCALING.md): a queue spread over N shards, each
 * its own Redis hash slot (so its own Redis Cluster node, or core). */

/* How many shards the queue has now (1: not sharded): shard 0's count, or
 * more if shard N's conf says more (shard 0's lost in a failover). */
int dq_queue_shards(dq_client_t *c, const char *queue, unsigned *n);

/* A queue's settings, applied for the whole fleet (as deferred-cli config
 * apply does): fields left as in DQ_QUEUE_SET_INIT stay as they are.
 *   shards          1..DQ_MAX_SHARDS (64); it can only grow: a smaller
 *                   value is refused (DQ_EINVAL), as a shard above it
 *                   could still hold tasks
 *   rate            tasks/s for the whole queue (0 unlimited): each shard
 *                   gets rate / shards
 *   max_concurrent  tasks leased at once for the whole queue (0
 *                   unlimited): split so the shards' shares sum to exactly
 *                   it; fewer than the shards is refused (DQ_EINVAL)
 * Changing shards re-splits the applied limits (a limit nothing applied
 * stays the worker files'), pauses the new shards of a paused queue,
 * writes the count into every shard's conf (shard 0's last) and waits for
 * a replica of shard 0's master when it has one (none acknowledging in
 * 1 s: DQ_EREDIS, the count stored but not replicated; call it again).
 * Producers (this client, nginx) and workers see a new shard count within
 * DQ_SHARDS_TTL_MS and their live tick (5 s). Upgrade every worker before
 * the first growth: older workers serve shard 0 only. DQ_OK, DQ_EINVAL,
 * DQ_EREDIS. */
typedef struct {
    unsigned shards;          /* 0: keep */
    double   rate;            /* < 0: keep */
    int64_t  max_concurrent;  /* < 0: keep */
} dq_queue_set_t;

#define DQ_QUEUE_SET_INIT  { 0, -1, -1 }

int dq_queue_set(dq_client_t *c, const char *queue, const dq_queue_set_t *set);

/* dq_queue_stats of one shard (0..n-1) of a queue; dq_queue_stats gives
 * the sums over every shard. */
int dq_queue_stats_shard(dq_client_t *c, const char *queue, unsigned shard,
                         dq_queue_stats_t *out);

/*
 * The X-Deferred-Signature header value for an HTTP request to an nginx
 * deferred endpoint with deferred_secret (format: lib/dq_sign.h,
 * docs/MODULE.md): "t=<t>,v1=<hex HMAC-SHA256(secret, method \n uri \n t
 * \n body)>", one v1 per secret (1 to 8: sign with the old and the new
 * secret during a rotation). uri is the request target as sent (path and
 * query); t is unix seconds, <= 0 for now. out needs DQ_SIGN_REQUEST_MAX
 * bytes. DQ_OK, DQ_EINVAL (bad arguments, out too small), DQ_ERR
 * (libcrypto failed).
 */
#define DQ_SIGN_REQUEST_MAX  (32 + 8 * 68)

DQ_EXPORT int dq_sign_request(const char *const *secrets, size_t nsecrets,
                              const char *method, const char *uri,
                              const void *body, size_t len, int64_t t,
                              char *out, size_t outlen);

#ifdef __cplusplus
}
#endif

#endif /* DEFERRED_CLIENT_H */
