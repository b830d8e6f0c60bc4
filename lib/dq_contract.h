/*
 * ngx_deferred — THE contract between the nginx module, the worker, the C
 * client and the tests. Compiled into all of them; nothing here is written
 * twice anywhere else:
 *
 *   - the msgpack task envelope (stored format) and the public task request
 *     (what clients POST, msgpack or JSON), with strict decoding of
 *     untrusted bytes;
 *   - name rules (queue, task, function, URL), task ids, limits;
 *   - Redis key names (dq_key_format) and the Lua scripts (embedded at build
 *     time from lib/lua/NAME.lua), with the KEYS/ARGV order of every script
 *     built only by the dq_cmd_* functions below and replies parsed only by
 *     the dq_reply_* functions;
 *   - App Engine's retry/backoff arithmetic.
 *
 * No function here does I/O except dq_id_new (getrandom). Nothing blocks;
 * everything is safe to call from nginx workers and worker threads.
 * Every function that can fail fills a dq_error_t (code, field, message).
 */
#ifndef DQ_CONTRACT_H
#define DQ_CONTRACT_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>
#include <hiredis/hiredis.h>

#include <deferred/common.h>

/* ---------------------------------------------------------------- basics */

typedef struct {
    const char *ptr;     /* not NUL-terminated in general */
    size_t      len;
} dq_str_t;

#define dq_str_lit(s)  ((dq_str_t) { (s), sizeof(s) - 1 })
dq_str_t dq_str_c(const char *s);                 /* NULL -> {NULL, 0} */
int dq_str_eq(dq_str_t a, const char *cstr);

typedef struct {
    int  code;           /* DQ_E* */
    char field[96];      /* offending field ("tasks[3].queue"), or "" */
    char msg[256];       /* one line of English, no trailing newline */
} dq_error_t;

/* Fill err (any of field/fmt may be NULL) and return code. */
int dq_error_set(dq_error_t *err, int code, const char *field,
                 const char *fmt, ...) DQ_PRINTF(4, 5);

/* A Redis address, as the module, the worker, the client and the CLI all
 * take it (one parser, one behaviour):
 *   HOST              port 6379 (HOST: a name, an IPv4 or an IPv6 address)
 *   HOST:PORT         PORT 1..65535
 *   [IPV6]  [IPV6]:PORT   an IPv6 address with a port goes in brackets; an
 *                     unbracketed string with two or more colons is an IPv6
 *                     address without a port
 *   unix:PATH         a Unix socket (PATH not empty)
 *   sentinel:MASTER@HOST[:PORT][,HOST[:PORT]...]
 *                     the primary Redis Sentinel names MASTER: up to
 *                     DQ_MAX_SENTINELS sentinels (port 26379 by default),
 *                     each HOST as above (brackets for IPv6 with a port);
 *                     MASTER is 1..DQ_MAX_MASTER_NAME bytes, none of them
 *                     '@', ',', a space or a control byte. Each connect
 *                     asks the sentinels in turn (SENTINEL
 *                     get-master-addr-by-name MASTER) and uses the answer
 *                     only once ROLE says it is a master. Sentinels are
 *                     asked without a password (the password option is the
 *                     data Redis'); see docs/OPERATIONS.md.
 *   cluster:HOST[:PORT][,HOST[:PORT]...]
 *                     a Redis Cluster: up to DQ_MAX_SEEDS seed nodes (port
 *                     6379 by default, each HOST as above); the slot map
 *                     is asked of them (CLUSTER SLOTS) and every command
 *                     goes to the master of its key's slot, MOVED and ASK
 *                     followed (lib/dq_cluster.c; docs/SCALING.md).
 * Parsing never resolves a name. Where a name is resolved is each caller's:
 * the module once, when the configuration is read (never per request); the
 * worker when a child starts and again on each reconnect (blocking
 * getaddrinfo, so a failover that moves the name is followed; a sentinel
 * once, when the child starts); the blocking client and the CLI at each
 * connect (hiredis). A password and a database number are given beside the
 * address, never inside it. */
#define DQ_REDIS_PORT       6379
#define DQ_SENTINEL_PORT    26379
#define DQ_MAX_SENTINELS    8
#define DQ_MAX_MASTER_NAME  128
#define DQ_MAX_SEEDS        8

typedef struct {
    dq_str_t  host;      /* into the input, without brackets */
    int       port;
} dq_hostport_t;

typedef struct {
    dq_str_t       host;      /* into the input, without brackets; len 0:
                                 unix or sentinel */
    dq_str_t       path;      /* the socket path (into the input); len 0:
                                 TCP */
    int            port;      /* TCP only */
    dq_str_t       master;    /* sentinel: the master's name; len 0: not
                                 a sentinel address */
    size_t         nsentinels;
    dq_hostport_t  sentinel[DQ_MAX_SENTINELS];
    size_t         nseeds;    /* cluster: how many seed nodes; 0: not a
                                 cluster address */
    dq_hostport_t  seed[DQ_MAX_SEEDS];
} dq_addr_t;

/* DQ_OK, or DQ_EINVAL with err saying what is wrong (err may be NULL). */
int dq_addr_parse(dq_str_t s, dq_addr_t *a, dq_error_t *err);

/* The normalized text of a parsed address: "HOST:PORT" (the port always
 * written), "[IPV6]:PORT", "unix:PATH", "sentinel:MASTER@HOST:PORT,..." or
 * "cluster:HOST:PORT,...".
 * The length written, or -1 when it does not fit in len bytes (with the
 * NUL). */
int dq_addr_format(const dq_addr_t *a, char *buf, size_t len);

/* Wall clock in ms since the Unix epoch (for created_ms only: "now" for
 * scheduling is always Redis TIME inside the scripts). */
int64_t dq_now_ms(void);

/* 22 chars of [A-Za-z0-9_-] from 128 random bits, NUL-terminated.
 * Thread-safe, never blocks after boot (getrandom). */
void dq_id_new(char out[DQ_ID_SIZE]);

/* ---------------------------------------------------------------- limits */

typedef struct {
    size_t   max_envelope;   /* bytes of one request body / envelope: 1 MiB */
    unsigned max_depth;      /* nesting of containers: 32 (and never more:
                                msgpack-c's parser stack holds 32) */
    size_t   max_items;      /* container elements in one document: 65536 */
    size_t   max_batch;      /* tasks in one batch request: 1000 */
} dq_limits_t;

#define DQ_DEFAULT_MAX_ENVELOPE  (1024 * 1024)
#define DQ_DEFAULT_MAX_DEPTH     32
#define DQ_DEFAULT_MAX_ITEMS     65536
#define DQ_DEFAULT_MAX_BATCH     1000

/* The range of a task envelope's byte limit where one is configured (the
 * worker's max_envelope, the module's deferred_max_envelope): an envelope
 * is one Redis value, and Redis' proto-max-bulk-len is 512 MiB. The
 * producers' limit (the module, the C client: DQ_DEFAULT_MAX_ENVELOPE
 * unless told) must not exceed the workers' max_envelope, or a task is
 * stored that no worker decodes (docs/OPERATIONS.md). */
#define DQ_MIN_ENVELOPE_LIMIT    64
#define DQ_MAX_ENVELOPE_LIMIT    (512LL * 1024 * 1024)

/* Most tasks one script call of the worker's side handles: leases named
 * by an ack, release or extend, tasks taken by a claim, dead tasks looked
 * at by a requeue. Bounds each call's work; the scripts check it too
 * (DQ_CHUNK in lib/lua/prelude.lua, the same number). Not a request
 * batch. */
#define DQ_MAX_LEASE_ITEMS       1000

/* The module's and the client's default. The worker's defaults (lease,
 * dead_max, dead_age, ...) live only in its directive table
 * (conf/config.c), as the text a user would write, fed through its
 * parser; its tombstone there is "7d", the same 7 days. */
#define DQ_DEFAULT_TOMBSTONE_MS  (7LL * 24 * 3600 * 1000)  /* 7 days */

void dq_limits_default(dq_limits_t *lim);

/* ----------------------------------------------------------------- names */

/* 1 if valid, 0 if not. */
int dq_queue_name_valid(dq_str_t s);   /* [A-Za-z0-9_-]{1,100} */
int dq_task_name_valid(dq_str_t s);    /* [A-Za-z0-9_-]{1,500} */
int dq_func_name_valid(dq_str_t s);    /* [A-Za-z0-9_.:-]{1,200} */
int dq_url_valid(dq_str_t s);          /* "/" + printable non-space ASCII,
                                          up to DQ_URL_MAX; the path (before
                                          '?') without "//", '%', "." or
                                          ".." segments */
#define DQ_CLIENT_ID_MAX  64
int dq_client_id_valid(dq_str_t s);    /* [A-Za-z0-9_-]{1,64}: a task id
                                          chosen by the client */

/* --------------------------------------------------------------- msgpack */

/*
 * Strict decode of untrusted msgpack: pre-scans the bytes (every container
 * element needs at least one byte of input, depth <= max_depth, element
 * total <= max_items, len <= max_envelope) BEFORE msgpack-c allocates, then
 * unpacks into `zone` and requires that all bytes were consumed.
 * Objects point into `buf` (STR/BIN) and into `zone`: keep both alive.
 */
int dq_msgpack_unpack(const char *buf, size_t len, const dq_limits_t *lim,
                      msgpack_zone *zone, msgpack_object *out,
                      dq_error_t *err);

/* JSON text -> the msgpack_object tree dq_msgpack_unpack would give for the
 * same value as msgpack (objects -> maps, arrays -> arrays, integers ->
 * int, reals -> float64, strings -> str, true/false/null), built in `zone`
 * in one pass (lib/dq_json.c). Strings without escapes point into `buf`:
 * keep buf and zone alive. Same limits as above (the text's length
 * against max_envelope); DQ_EDECODE with position on malformed JSON. */
int dq_json_parse(const char *buf, size_t len, const dq_limits_t *lim,
                  msgpack_zone *zone, msgpack_object *out, dq_error_t *err);

/* msgpack_pack_object's bytes, written straight: dq_msgpack_size gives
 * their count, dq_msgpack_write writes them at p (that much room made by
 * the caller) and returns the end; the _int/_uint/_str forms likewise (at
 * most 9 bytes, 5 + n for a str). Byte for byte msgpack-c 4.0's smallest
 * forms (lib/dq_msgpack.c). */
size_t dq_msgpack_size(const msgpack_object *o);
size_t dq_msgpack_int_size(int64_t v);
char *dq_msgpack_write(char *p, const msgpack_object *o);
char *dq_msgpack_write_int(char *p, int64_t v);
char *dq_msgpack_write_uint(char *p, uint64_t v);
char *dq_msgpack_write_str(char *p, const char *s, size_t n);

/* The container elements inside o as dq_msgpack_unpack's max_items counts
 * them: each array element 1, each map pair 2, nested ones too (0 for a
 * scalar). Never more than dq_msgpack_size(o) - 1. */
size_t dq_msgpack_items(const msgpack_object *o);

/* Typed look-up in a msgpack map by string key (NULL if absent). */
const msgpack_object *dq_map_get(const msgpack_object *map, const char *key);

/* --------------------------------------------------------------- request */

/*
 * The public task request: what a client POSTs (msgpack or JSON) or what the
 * C client builds. A body is one request map, or an array of them (batch).
 *
 *   { "func": "counter.add",               required, dq_func_name_valid
 *     "id": "order-1234-mail",              optional, dq_client_id_valid:
 *                                           the task id; an enqueue of an id
 *                                           already stored, or run within
 *                                           the tombstone window after its
 *                                           ETA, is answered "existed" and
 *                                           stores nothing (safe retries)
 *     "args": [ ... ],                      optional array
 *     "kwargs": { "k": v, ... },            optional map, string keys
 *     "queue": "default",                   optional
 *     "name": "unique-name",                optional, dq_task_name_valid
 *     "countdown": 60,                      optional seconds (int or float >= 0)
 *     "eta": 1790000000.5 | "2026-11-21T10:00:00Z",
 *                                           optional absolute UTC: epoch seconds,
 *                                           or RFC 3339 WITH Z or an offset
 *                                           (naive times are refused)
 *     "url": "/custom/path",                optional
 *     "headers": { "X-Foo": "bar" },        optional map str -> str
 *     "retry_options": { "task_retry_limit": 3, "task_age_limit": 3600,
 *                        "min_backoff_seconds": 0.1,
 *                        "max_backoff_seconds": 3600,
 *                        "max_doublings": 16 } }   optional, App Engine names
 *
 * countdown and eta together: DQ_EINVAL. Unknown keys: DQ_EINVAL naming the
 * key (typos must not pass silently).
 */
typedef struct {
    dq_str_t              func;
    dq_str_t              id;        /* {NULL,0} when absent: the task id
                                        is made up; given: the enqueue is
                                        idempotent (dq_enqueue_item_t
                                        .keyed) */
    int64_t               key_window_ms; /* how long the id is remembered
                                        after the ETA; 0: the tombstone
                                        window (not from the body) */
    dq_str_t              queue;     /* "default" when absent */
    dq_str_t              name;      /* {NULL,0} when absent */
    dq_str_t              url;       /* {NULL,0} when absent: caller decides */
    const msgpack_object *args;      /* array, or NULL */
    dq_str_t              args_raw;  /* or: pre-packed msgpack array bytes
                                        (trusted: copied into the envelope
                                        as they are) */
    const msgpack_object *kwargs;    /* map, or NULL */
    dq_str_t              kwargs_raw;/* or: pre-packed msgpack map bytes
                                        (trusted, likewise) */
    const msgpack_object *headers;   /* map str->str, or NULL */
    int64_t               countdown_ms;  /* -1 when absent */
    int64_t               eta_ms;        /* -1 when absent; absolute UTC */
    dq_retry_t            retry;         /* fields -1 when absent */
} dq_request_t;

void dq_request_init(dq_request_t *req);

/* Parse and validate one request map. Field names in errors are prefixed
 * with `prefix` (e.g. "tasks[3]") when non-NULL. */
int dq_request_parse(const msgpack_object *map, const char *prefix,
                     dq_request_t *req, dq_error_t *err);

/* Parse a whole body: a map -> 1 request, an array of maps -> n requests
 * (1..lim->max_batch). reqs has room for lim->max_batch entries. */
int dq_request_parse_body(const msgpack_object *root, const dq_limits_t *lim,
                          dq_request_t *reqs, size_t *n, dq_error_t *err);

/* -------------------------------------------------------------- envelope */

/*
 * Stored envelope (the value in dq2:{q}:tasks, after the state prefix a
 * task with history has), a msgpack array, version first. Version 2
 * (written since contract v2) holds neither the id nor the queue: they
 * are the hash field and the key.
 *   [ 2, func, args(array), kwargs(map|nil), name(str|nil),
 *     url(str|nil = default), created_ms, eta_ms(requested, 0 = none),
 *     headers(map|nil), retry([limit, age_ms, min_ms, max_ms, doublings]
 *     with -1 = unset | nil) ]
 * Version 1 (contract v1; still read: tasks the migration moved keep it):
 *   [ 1, id, func, args, kwargs, queue, name, url, created_ms, eta_ms,
 *     headers, retry ]
 */
#define DQ_ENVELOPE_VERSION 2

typedef struct {
    uint32_t              version;   /* 2, or 1 (contract v1) */
    dq_str_t              id;        /* the caller's id (version 1: the
                                        envelope's, equal to it) */
    dq_str_t              func;
    const msgpack_object *args;      /* always an array (maybe empty) */
    const msgpack_object *kwargs;    /* map or NULL */
    dq_str_t              queue;     /* as id */
    dq_str_t              name;      /* {NULL,0} if unnamed */
    dq_str_t              url;       /* DQ_DEFAULT_URL if nil */
    int64_t               created_ms;
    int64_t               eta_ms;    /* requested; 0 = none */
    const msgpack_object *headers;   /* map str->str or NULL */
    dq_retry_t            retry;
} dq_envelope_t;

/* Validated request + created time -> envelope bytes (version 2) appended
 * to out. DQ_ETOOBIG (nothing appended) when the envelope is over
 * lim->max_envelope bytes, or when args, kwargs and headers hold more
 * than lim->max_items elements together (dq_msgpack_items): an envelope
 * this writes decodes with the same limits (dq_envelope_decode adds the
 * envelope's own fields). The worker decodes with DQ_DEFAULT_MAX_ITEMS
 * (it has no knob for it) and its max_envelope: producers encode with
 * dq_limits_default's max_items and at most the worker's max_envelope.
 * lim NULL: the defaults. task: the task's index in a batch, or -1 for
 * a request of one task; an error names it as dq_request_parse_body does
 * (err->field "tasks[3]" or "request", and "field: " before the message).
 * (The id is not stored since version 2: the hash field is the id.) */
int dq_envelope_encode(const dq_request_t *req, long task,
                       int64_t created_ms, const dq_limits_t *lim,
                       msgpack_sbuffer *out, dq_error_t *err);

/* Strict decode (untrusted bytes: anyone with Redis access can write
 * them) of the envelope of task `id` in `queue` (the hash field and the
 * key it was read from; {NULL,0} when unknown). Version 2 takes both from
 * the caller; version 1 carries its own, and one that differs from a
 * given id or queue is refused (DQ_EDECODE): a value copied under another
 * id or queue is never run as this task. */
int dq_envelope_decode(const char *buf, size_t len, dq_str_t id,
                       dq_str_t queue, const dq_limits_t *lim,
                       msgpack_zone *zone, dq_envelope_t *env,
                       dq_error_t *err);

/* A stored task value (hash DQ_KEY_TASKS): the envelope, after a state
 * prefix when the task has history (lib/lua/prelude.lua is its writer):
 *   "S<runs>:<retries>:<first_run_ms>:<failed_ms>:<claim>[:<name>]\n"
 * claim: the claim id of the last claim that ended in a failed attempt or
 * an expired lease ("" none; a late ack of it is accepted while the task
 * waits); name: kept by bury for requeue. */
typedef struct {
    int      has;            /* 1: the value had a prefix */
    int64_t  runs;
    int64_t  retries;
    int64_t  first_run_ms;
    int64_t  failed_ms;
    dq_str_t claim;          /* into the value; len 0: none */
    dq_str_t name;           /* into the value; len 0: none */
} dq_value_state_t;

/* Split a stored value: st (zero when there is no prefix) and the
 * envelope (into value). DQ_OK, or DQ_EDECODE for a prefix that does not
 * parse (st zero, envelope = the whole value). */
int dq_task_value_split(dq_str_t value, dq_value_state_t *st,
                        dq_str_t *envelope);

/* ----------------------------------------------------------------- retry */

/* out = task's options, else queue's, else built-in defaults. */
void dq_retry_merge(dq_retry_t *out, const dq_retry_t *task,
                    const dq_retry_t *queue);

/* App Engine backoff before attempt `retries + 1`, retries = failed attempts
 * so far (>= 1 when called after a failure):
 *   d = min_backoff * 2^(min(retries-1, max_doublings)),
 *   past max_doublings growing linearly by min_backoff * 2^max_doublings,
 *   capped at max_backoff. `r` must be merged (no -1 fields). */
int64_t dq_backoff_ms(const dq_retry_t *r, int64_t retries);

/* 1 if a task that has failed `retries` times (counting the one just
 * failed) must not run again: retries > retry_limit (so retry_limit 0 =
 * one run, no retry); when age_limit_ms > 0 as well, only once BOTH the
 * count and the age (now - first_run_ms >= age_limit_ms) are reached, as
 * App Engine does. */
int dq_retry_exhausted(const dq_retry_t *r, int64_t retries,
                       int64_t first_run_ms, int64_t now_ms);

/* ------------------------------------------------------------------ keys */

/* Every key of a queue carries the hash tag {queue}: one slot per queue.
 * Contract v2 (this one) names them "dq2:{<queue>}:<kind>"; contract v1
 * named them "dq:{<queue>}:<kind>" (and kept a `state` hash and, before
 * claim ids, a `lease` set): v2 code never reads or writes a v1 key except
 * the migration (lib/lua/migrate.lua, dq_cmd_migrate). The layout of every
 * value and member is in lib/lua/prelude.lua and docs/CONTRACT.md. */
typedef enum {
    DQ_KEY_TASKS = 0,   /* hash  id -> [state prefix] envelope: a task with
                           history (a failed attempt, an expired lease, a
                           bury...) carries "S<runs>:<retries>:
                           <first_run_ms>:<failed_ms>:<claim>[:<name>]\n"
                           in front of its envelope (prelude.lua) */
    DQ_KEY_ETA,         /* zset  id by ETA ms (waiting and due) */
    DQ_KEY_LEASE,       /* zset  "id|claim id|first_run_ms" by lease
                           deadline ms (key "leases") */
    DQ_KEY_DEAD,        /* zset  id by time of death ms */
    DQ_KEY_ERRORS,      /* hash  id -> last error text */
    DQ_KEY_NAMES,       /* zset  name by end of dedup window (+inf: live) */
    DQ_KEY_STATS,       /* hash  counters + "clock" (last TIME seen) */
    DQ_KEY_WAKE,        /* list  wake tokens for sleeping workers */
    DQ_KEY_CONF,        /* hash  queue settings (rate, concurrency, paused) */
    DQ_KEY_BUCKET,      /* hash  rate-limit token bucket state */
    DQ_KEY_UNRUNNABLE,  /* hash  function -> "count:last_ms": tasks given
                           back because no library here registers it
                           (at most DQ_UNRUNNABLE_FUNCS fields) */
    DQ_KEY_COLD,        /* zset  the cold tier's index of bucket hashes
                           "cold:<window start>[.<id>]" by window start
                           (DQ_COLD_WINDOW_MS below, lib/lua/cold.lua;
                           a bucket is "<this key>:<member>"): in the
                           KEYS of every script that reads or writes the
                           tier (enqueue, claim, remove, forget), so that
                           Redis Cluster checks it before the script runs
                           and no script builds the name itself */
    DQ_KEY_DUE,         /* list  the due list: ids of plain tasks enqueued
                           due now, FIFO, in runs each headed by a marker
                           "@<eta ms>" (lib/lua/prelude.lua dq_due_read;
                           written only while a worker that reads it
                           claims the queue: stats "due_until") */
    DQ_KEY__COUNT,
    /* contract v1 only (dq_key_format_v1; dq_key_format refuses them) */
    DQ_KEY_V1_STATE = DQ_KEY__COUNT,   /* hash id -> "runs:retries:
                           first_run_ms:failed_ms:claim[:name]" */
    DQ_KEY_V1_LEASE,    /* zset  bare id by lease deadline ms: the lease
                           set of workers before claim ids ("lease") */
    DQ_KEY_V1__COUNT
} dq_key_kind_t;

/* "dq2:{<queue>}:<kind>" into buf; returns the length, or 0 if it does not
 * fit, the queue is not valid or kind is a v1-only kind. */
size_t dq_key_format(char *buf, size_t size, dq_str_t queue,
                     dq_key_kind_t kind);

/* The contract v1 name of a key, "dq:{<queue>}:<kind>" (any kind, the
 * v1-only ones included): for the migration and the tools that report v1
 * leftovers only. */
size_t dq_key_format_v1(char *buf, size_t size, dq_str_t queue,
                        dq_key_kind_t kind);

#define DQ_KEY_MAX (DQ_QUEUE_NAME_MAX + 32)

/* The cold tier (lib/lua/cold.lua holds the same values; t/unit/test_cold.c
 * checks that the scripts behave by these): an unnamed, un-keyed task whose
 * ETA window (DQ_COLD_WINDOW_MS of ETA) starts later than now +
 * DQ_COLD_AFTER_MS waits in a bucket hash "<prefix>cold:<window start>[.<id>]"
 * of at most DQ_COLD_BUCKET tasks, indexed by the zset "<prefix>cold" (the
 * prefix is the tasks key's, without "tasks"); claim promotes at most
 * DQ_COLD_PROMOTE buckets per call. docs/CONTRACT.md "Cold tier". */
#define DQ_COLD_AFTER_MS  20000
#define DQ_COLD_WINDOW_MS 10000
#define DQ_COLD_BUCKET    128
#define DQ_COLD_PROMOTE   1
#define DQ_QUEUES_KEY "dq:queues"   /* set of queue names (informational) */
/* Live workers: every worker child refreshes its heartbeat hash
 * DQ_WORKER_KEY_PREFIX + "<host>:<pid>" (fields host, pid, child, queues,
 * running, done, failed, started_ms, beat_ms; EXPIREs after ttl) and its
 * member in the zset DQ_WORKERS_KEY (score: when the heartbeat expires,
 * ms). worker/live.c writes them; deferred-cli workers and the module's
 * status read them. */
#define DQ_WORKERS_KEY       "dq:workers"
#define DQ_WORKER_KEY_PREFIX "dq:worker:"
#define DQ_WORKER_TTL_MS     30000     /* heartbeat every ttl / 3 */
/* A worker child's live tick: the loop-alive mark for its master and the
 * read of its queues' conf (applied settings, shard counts); every second
 * tick is a heartbeat (DQ_WORKER_TTL_MS / 3), every sixth trims the live
 * list and probes for shards past the known count (every tick for a queue
 * with a whole-queue limit: worker/live_conf.c); a tick flushes the
 * lateness counts of the tasks run since the last (worker/live.c). */
#define DQ_WORKER_TICK_MS    5000
/* Lateness (claim time - ETA, ms) per queue, a histogram in the queue's
 * stats hash: fields "late_le_<bound>" for each bound below and
 * "late_le_inf" (counts per bucket, not cumulative), "late_sum_ms",
 * "late_count". Workers add their counts with each live tick (5 s). */
#define DQ_LATENESS_BOUNDS_MS { 5, 25, 100, 500, 1000, 5000, 30000 }
#define DQ_LATENESS_NBOUNDS   7

/* ---------------------------------------------------------------- shards */

/*
 * A sharded queue (docs/SCALING.md): one queue name, N shards, each its
 * own hash slot. N lives in the queue's conf hash (shard 0's), field
 * DQ_QCONF_SHARDS; absent = 1 (one shard, the layout of an unsharded
 * queue). Shard 0 IS the queue "<q>" (its keys dq2:{<q>}:*), so growing
 * 1 -> N keeps every task where it is; shard i >= 1 is the queue
 * "<q>#<i>" (keys dq2:{<q>#<i>}:*, its own conf). '#' is never in a
 * user's queue name (dq_queue_name_valid): only this code builds those
 * names. N only grows (configure.lua refuses a decrease: a shard above
 * the new N could still hold tasks).
 *
 * A named task goes to shard dq_shard_of(name, N) (FNV-1a 32 of the name,
 * mod N): dedup by name holds among tasks enqueued under the same N; a
 * change of N moves some names to another shard, so for one dedup window
 * after a change a name may be live twice (docs/SCALING.md, the bound).
 * Unnamed tasks are spread (each producer round robin).
 *
 * Whole-queue limits are split across the shards (dq_shard_share):
 * rate R gives each shard R/N, max_concurrent M gives shard i
 * dq_shard_share(M, N, i) (sum exactly M; N > M is refused: a share of 0
 * would mean unlimited). Never more than the whole-queue limit, but up to
 * (N-1)/N of it unused while the work sits in fewer shards.
 */
#define DQ_MAX_SHARDS       64
#define DQ_SHARD_NAME_MAX   (DQ_QUEUE_NAME_MAX + 3)   /* "<q>#63" */
#define DQ_QCONF_SHARDS     "shards"
/* In shard 0's conf, written with every split (the C client's
 * dq_queue_set / config apply): "N MAXC RATE", the shard count and the
 * whole-queue max_concurrent and rate the shards' values were split from
 * ("-" for absent). A shard 0 whose values are not its share of them was
 * written by a tool that does not split (a deferred-cli built before
 * sharded queues): readers say so. */
#define DQ_QCONF_SPLIT      "split"
#define DQ_SHARDS_TTL_MS    2000    /* producers re-read N this often */
#define DQ_SHARDS_RETRY_MS  100     /* a failed re-read of a known N: the
                                       next try comes no sooner (review RF
                                       finding 2: one try per task) */
#define DQ_SHARDS_KEEP_MS   (2 * DQ_SHARDS_TTL_MS) /* a count read longer
                                       ago than this is not kept when its
                                       re-read fails (review RM finding
                                       5): the dedup bound */

/* 1 if s is a queue name (dq_queue_name_valid) or a shard of one:
 * "<queue>#<i>", i in 1..DQ_MAX_SHARDS-1 without leading zeros. Keys and
 * script commands take both; everything a user types takes queue names
 * only. */
int dq_shard_name_valid(dq_str_t s);

/* The queue a shard name belongs to: "q" of "q#2" (q of q), pointing into
 * name. Functions, the push library, settings and dq:queues know a shard
 * by its queue's name. */
dq_str_t dq_shard_base(dq_str_t name);

/* The name of shard i of queue into buf (NUL-terminated): the queue itself
 * for i = 0, "<queue>#<i>" else. The length, or 0 when the queue is not
 * valid, i >= DQ_MAX_SHARDS or it does not fit. */
size_t dq_shard_name(char *buf, size_t size, dq_str_t queue, unsigned i);

/* The shard (0..n-1) a task named `name` goes to: FNV-1a 32 of the name's
 * bytes, mod n (n 0 or 1: 0). Stable across processes, hosts, versions. */
unsigned dq_shard_of(dq_str_t name, unsigned n);

/* Shard i's share of an integer whole-queue limit: total / n, plus 1 for
 * the first total % n shards (the shares sum to exactly total). */
int64_t dq_shard_share(int64_t total, unsigned n, unsigned i);

/* The shards field's value as stored (a string reply or NULL): 1..
 * DQ_MAX_SHARDS, or 1 for absent or anything else. */
unsigned dq_shards_parse(const char *s, size_t len);

/* A producer's read of a queue's shard count failed (an error reply, or
 * no answer on a connection still up): the count it goes on with, one
 * rule for nginx and the C client (review R4 finding 9b). A count read
 * before (*n > 0, not *guessed) at most DQ_SHARDS_KEEP_MS ago (age_ms:
 * since its last successful read) is kept, read again DQ_SHARDS_RETRY_MS
 * later; none (*n 0), a guess or an older count: *n = 1, *guessed = 1,
 * read again DQ_SHARDS_TTL_MS later (a count kept with no age limit
 * placed named tasks by a stale N for as long as the refusal lasted:
 * review RM finding 5). Returns that delay (ms). With a guessed count
 * only the tasks free to go to any shard go (dq_shards_may_place). */
int64_t dq_shards_unread(unsigned *n, int *guessed, int64_t age_ms);

/* 1 if a task may go where the shard count says: always when the count
 * was read; with a guessed one only a task that is not placed (neither
 * named nor given an id by its caller: those must land on their own
 * shard, dq_shard_of, or a second copy could be stored beside the first;
 * they fail instead, nothing stored). */
int dq_shards_may_place(int guessed, int placed);

/* --------------------------------------------------------------- scripts */

typedef enum {
    DQ_SCRIPT_ENQUEUE = 0,
    DQ_SCRIPT_CLAIM,
    DQ_SCRIPT_ACK,
    DQ_SCRIPT_RETRY,
    DQ_SCRIPT_BURY,
    DQ_SCRIPT_EXTEND,
    DQ_SCRIPT_RELEASE,
    DQ_SCRIPT_REQUEUE,
    DQ_SCRIPT_PAUSE,
    DQ_SCRIPT_RELEASE_CLAIM,
    DQ_SCRIPT_REMOVE,
    DQ_SCRIPT_STATUS,
    DQ_SCRIPT_CONFIGURE,
    DQ_SCRIPT_READY,
    DQ_SCRIPT_FORGET,
    DQ_SCRIPT_BEAT,
    DQ_SCRIPT_MIGRATE,
    DQ_SCRIPT_UNLIST,
    DQ_SCRIPT__COUNT
} dq_script_id_t;

typedef struct {
    const char *name;     /* "enqueue" */
    const char *source;   /* Lua text, NUL-terminated */
    size_t      len;
    const char *sha1;     /* 40 lowercase hex, computed at build time */
} dq_script_t;

const dq_script_t *dq_script(dq_script_id_t id);

/* ------------------------------------------------------------ commands */

/*
 * A Redis command as argv, ready for redisCommandArgv /
 * redisAsyncCommandArgv / redisAppendCommandArgv. Strings the builder
 * formats (keys, numbers) live inside the dq_cmd_t and stay valid until
 * dq_cmd_reset/dq_cmd_free; payload pointers (envelopes, names, ids) point
 * at the caller's memory, which must outlive the send call only.
 */
typedef struct dq_cmd_chunk_s dq_cmd_chunk_t;

typedef struct {
    int              argc;
    int              cap;
    const char     **argv;
    size_t          *argvlen;
    dq_cmd_chunk_t  *chunks;   /* storage for formatted strings */
    dq_script_id_t   script;
} dq_cmd_t;

void dq_cmd_init(dq_cmd_t *c);
void dq_cmd_reset(dq_cmd_t *c);
void dq_cmd_free(dq_cmd_t *c);

/* The NOSCRIPT fallback: turn "EVALSHA <sha> ..." into "EVAL <src> ...". */
void dq_cmd_use_eval(dq_cmd_t *c);

/* A command in Redis' wire format (RESP: "*argc\r\n", then "$len\r\n
 * bytes\r\n" per argument), for redisAsyncFormattedCommand and
 * redisAppendFormattedCommand: its size, and the bytes written into out
 * (dq_resp_size of them; returns that size). A fraction of what hiredis'
 * own formatting (sdscatfmt per argument) costs. */
size_t dq_resp_size(int argc, const char **argv, const size_t *argvlen);
size_t dq_resp_format(char *out, int argc, const char **argv,
                      const size_t *argvlen);

/* 1 if reply is the NOSCRIPT error. */
int dq_reply_is_noscript(const redisReply *r);

/* An integer reply, or a string holding one (HGET of a counter); 0 for
 * nil, errors and anything else (lib/dq_reply.c). */
int64_t dq_reply_int(const redisReply *r);

/* The waiting tasks outside the ETA set, from a shard's stats fields
 * "cold" and "due_n" (HMGET replies): the cold tier's plus the due
 * list's (a due_n below 0, a drift, counts 0; lib/lua/status.lua counts
 * the same). *listed (may be NULL): the due list's, all of them due. */
int64_t dq_reply_off_eta(const redisReply *cold, const redisReply *due_n,
                         int64_t *listed);

/* 1 if reply is an error saying Redis did not run the command and it
 * should be sent again on a fresh connection (READONLY, LOADING, BUSY,
 * OOM, MASTERDOWN, NOREPLICAS, TRYAGAIN, CLUSTERDOWN; lib/dq_server.c). */
int dq_reply_is_unavailable(const redisReply *r);
/* 1 if reply is an error whose text is one of names[0..nn) or starts
 * with one and a space (lib/dq_server.c). */
int dq_reply_error_is(const redisReply *r, const char *const *names,
                      size_t nn);
/* Of those, the ones that say this server is not (or no longer) the
 * primary to write to: READONLY, LOADING, MASTERDOWN. A client that found
 * the primary through Sentinel asks the sentinels again on them; on the
 * others (OOM, BUSY, NOREPLICAS...) the same server is still the one. */
int dq_reply_is_elsewhere(const redisReply *r);

/* The ROLE reply of a server names it a master (ROLE's first element is
 * "master"): what a sentinel's answer is checked with before use. */
int dq_reply_is_master_role(const redisReply *r);

/* A sentinel's answer to SENTINEL get-master-addr-by-name: the address
 * into host (NUL-terminated) and port. DQ_OK; DQ_ENOTFOUND for nil (the
 * sentinel does not know that master name); DQ_EREDIS for an error reply
 * or anything not [HOST, PORT] (err says which, may be NULL). */
int dq_sentinel_reply(const redisReply *r, char *host, size_t hostlen,
                      int *port, dq_error_t *err);

/* ------------------------------------------------------------- cluster */

/*
 * Redis Cluster, the parts every client shares (lib/dq_cluster.c; the
 * connections are each client's own: worker/redis_uv.c, the module's
 * ngx_http_deferred_redis.c, client/client.c). Every key of one queue
 * carries the hash tag {queue}, so every script and every command but a
 * few global ones (dq:queues, the worker registry) has one slot.
 */
#define DQ_CLUSTER_SLOTS   16384
#define DQ_CLUSTER_HOST    256     /* longest node host kept, with the NUL */

/* The slot of a key (CRC16/XMODEM of the key, or of the part between the
 * first '{' and the next '}' when that part is not empty), 0..16383. */
unsigned dq_cluster_slot(const char *key, size_t len);

/* The slot a command goes to: its first key's. The key is argv[1] for
 * every command the contract sends but these: EVAL/EVALSHA/FCALL (argv[3]
 * when numkeys > 0), and keyless commands (PING, INFO, TIME, SCRIPT,
 * CLUSTER, ROLE, AUTH, SELECT, ASKING, READONLY, CLIENT, HELLO, WAIT,
 * CONFIG, COMMAND, DBSIZE, SCAN, QUIT): -1, any node will do. */
int dq_cluster_cmd_slot(int argc, const char *const *argv,
                        const size_t *argvlen);
/* That first key (*len its length), or NULL: keyless. */
const char *dq_cluster_cmd_key(int argc, const char *const *argv,
                               const size_t *argvlen, size_t *len);

typedef struct {
    char  host[DQ_CLUSTER_HOST];
    int   port;
} dq_cluster_node_t;

/* Which master serves each slot. nodes are the masters named in the map
 * (in the reply's order, each once); slot[i] indexes them, -1 for a slot
 * no master serves (CLUSTERDOWN there). */
typedef struct {
    size_t              nnodes;
    dq_cluster_node_t  *nodes;      /* malloc'ed */
    int16_t             slot[DQ_CLUSTER_SLOTS];
} dq_cluster_map_t;

/* Parse a CLUSTER SLOTS reply into m (m's previous contents are freed
 * first only on success: on an error m is left as it was, so callers
 * parse straight into the map in use). A node whose host in the reply is
 * empty or "?" (a node that does not know its own address) gets
 * asked_host, the host the reply came from. DQ_OK; DQ_EREDIS with err
 * saying why for an error reply, a malformed one or one that names no
 * master (a node reset, or out of the cluster: it would serve nothing);
 * DQ_ENOMEM. */
int dq_cluster_map_parse(dq_cluster_map_t *m, const redisReply *r,
                         const char *asked_host, dq_error_t *err);
void dq_cluster_map_init(dq_cluster_map_t *m);
void dq_cluster_map_free(dq_cluster_map_t *m);
/* The index of host:port in m->nodes, or -1. */
int dq_cluster_map_find(const dq_cluster_map_t *m, const char *host,
                        int port);

/* A redirect error reply: "MOVED <slot> <host>:<port>" or "ASK <slot>
 * <host>:<port>" (host may be an IPv6 address: the port follows the last
 * colon; an empty host means "the node you asked": host is then "").
 * 1 and rd filled for a redirect, 0 for any other reply. */
typedef struct {
    int       ask;          /* 1 ASK (send ASKING first, once), 0 MOVED */
    unsigned  slot;
    char      host[DQ_CLUSTER_HOST];
    int       port;
} dq_cluster_redirect_t;

int dq_cluster_redirect(const redisReply *r, dq_cluster_redirect_t *rd);
int dq_cluster_redirect_str(const char *s, size_t len,
                            dq_cluster_redirect_t *rd);

/* 1 for a TRYAGAIN or CLUSTERDOWN error reply (the command was not run:
 * a slot being migrated, a slot no master serves); 0 for anything else. */
int dq_cluster_is_retry(const redisReply *r);

/* The oldest Redis the scripts run on: script flags (#!lua flags=...,
 * 7.0) and ZMSCORE (6.2). */
#define DQ_REDIS_MIN_VERSION "7.0.0"

typedef struct {
    char version[32];      /* "7.0.15" */
    char policy[32];       /* maxmemory_policy, "" if INFO did not say */
    int  too_old;          /* version < DQ_REDIS_MIN_VERSION */
    int  evicts;           /* policy set and not "noeviction": Redis may
                              delete a queue's keys under memory pressure */
    int  loading;          /* loading:1 (reading its AOF/RDB): INFO works,
                              scripts answer -LOADING */
} dq_server_info_t;

/* Read an INFO reply's text (the "server", "memory" and "persistence"
 * sections). 0, or
 * -1 when it holds no redis_version. (lib/dq_server.c) */
int dq_server_info(const char *info, size_t len, dq_server_info_t *out);

/* Enqueue (one script call, one queue, 1..n tasks, atomic).
 * Per task: dedup by id (same id already stored -> status DQ_OK... see
 * dq_enqueue_result_t), by name (live name -> DQ_EDUPLICATE, tombstoned
 * within window -> DQ_ETOMBSTONE), store envelope, schedule at eta_ms (if
 * >= 0) else Redis-now + countdown_ms (countdown -1 = 0), mark the name live,
 * count it, and push one wake token if the task is due now or earlier than
 * every waiting task. */
typedef struct {
    dq_str_t id;
    dq_str_t envelope;
    dq_str_t name;          /* {NULL,0} if unnamed */
    int64_t  eta_ms;        /* -1 if none */
    int64_t  countdown_ms;  /* -1 if none */
    int      keyed;         /* 1: id given by the client (idempotent
                               enqueue): a second enqueue of the id is
                               "existed" while the task is stored and for
                               key_window_ms (0: tombstone_ms) after its
                               ETA */
    int64_t  key_window_ms;
    int      fresh;         /* 1: the id was made up for this call
                               (dq_id_new) and is never sent again after
                               a lost reply: when every plain task of a
                               call is fresh, the script skips looking
                               whether one is stored already */
} dq_enqueue_item_t;

int dq_cmd_enqueue(dq_cmd_t *c, dq_str_t queue, const dq_enqueue_item_t *items,
                   size_t n, int64_t tombstone_ms);

/* The enqueue script's KEYS for one queue, formatted once: a caller that
 * enqueues to the same queues again and again (the module) keeps one per
 * queue and builds each command with dq_cmd_enqueue_keys, which copies
 * them into the command (the dq_enqueue_keys_t may go away after). */
#define DQ_ENQUEUE_NKEYS 8   /* the 6th: contract v1's names (dedup); the
                                7th: the cold tier's index; the 8th: the
                                due list */

typedef struct {
    size_t len[DQ_ENQUEUE_NKEYS];
    char   key[DQ_ENQUEUE_NKEYS][DQ_KEY_MAX];
} dq_enqueue_keys_t;

/* DQ_OK, or DQ_EINVAL for an invalid queue name. */
int dq_enqueue_keys_init(dq_enqueue_keys_t *k, dq_str_t queue);
/* = dq_cmd_enqueue on the queue k was made for */
int dq_cmd_enqueue_keys(dq_cmd_t *c, const dq_enqueue_keys_t *k,
                        const dq_enqueue_item_t *items, size_t n,
                        int64_t tombstone_ms);

typedef struct {
    int     status;   /* DQ_OK stored; DQ_EDUPLICATE; DQ_ETOMBSTONE */
    int     existed;  /* 1 if the same id was already stored (idempotent
                         retry of an enqueue that did land): status DQ_OK */
    int64_t eta_ms;   /* the scheduled ETA (UTC ms) when status is DQ_OK
                         (if existed: its ETA while waiting, else 0) */
} dq_enqueue_result_t;

/* lib/dq_reply_mem.c: hiredis reply objects carved from one block per
 * reply (hiredis' own functions make two allocations per element); for
 * a reader: ac->c.reader->fn = (redisReplyObjectFunctions *)
 * &dq_reply_functions. Replies stay plain redisReply; only a root is
 * freed (by hiredis after the callback), its children with it. */
extern const redisReplyObjectFunctions dq_reply_functions;

/* The reply of an enqueue of items[0..n-1] (the items it was built from:
 * a reply of only { now_ms } means every task was stored now, and each
 * one's ETA follows from its eta_ms or countdown_ms). */
int dq_reply_enqueue(const redisReply *r, const dq_enqueue_item_t *items,
                     size_t n, dq_enqueue_result_t *out, dq_error_t *err);

/*
 * Fencing. Every claim call carries a claim id the caller draws
 * (dq_claim_id_new: 128 random bits, never reused); each task it leases is
 * the lease member "id|claim id|first_run_ms", and every later call for the
 * task (ack, retry, bury, extend, release) names that claim id (and the
 * first_run_ms the claim replied: dq_lease_item_t). A call whose claim id
 * does not hold the task's lease is refused ("fenced", status 0). Because
 * the id is random and not derived from data in Redis, no rollback of
 * Redis (AOF everysec after a crash, an asynchronous failover) can issue
 * it again: a zombie holding an old claim can never match a newer lease.
 */
#define DQ_CLAIM_ID_MAX 32          /* bytes, [A-Za-z0-9_-] */

/* A fresh claim id (22 chars of dq_id_new), NUL-terminated. */
void dq_claim_id_new(char out[DQ_ID_SIZE]);

/* Claim: first takes expired leases back (at most 1000 per call; each is a
 * failed attempt, rescheduled after the queue's backoff for its attempt
 * count, never sooner than reclaim_delay_ms; the last real error is kept),
 * then moves up to max_n (<= 1000) due tasks to the lease set with
 * deadline now + lease_ms under claim_id; passes a wake token on if due
 * work remains. backoff: the queue's retry options (min/max backoff,
 * doublings; NULL = built-in defaults). A forward jump of the Redis
 * clock (a gap over half a lease period since the queue's last call)
 * takes back, for one lease period, only leases that expired before the
 * gap. While leases are held, next_ms is at most a third of lease_ms.
 * Claim writes no state: a task's counters come from its value's prefix
 * (dq_task_value_split), and the envelope in the reply is without it. */
int dq_cmd_claim(dq_cmd_t *c, dq_str_t queue, const char *claim_id,
                 int64_t max_n, int64_t lease_ms, int64_t reclaim_delay_ms);

/* Queue limits enforced inside the claim script, atomically, for every
 * worker on every host: a token bucket in DQ_KEY_BUCKET refilled at `rate`
 * per second (Redis TIME) up to bucket_size, the lease set's size against
 * max_concurrent, and the "paused" flag in DQ_KEY_CONF (dq_cmd_pause).
 * When a limit holds due work back, claim returns fewer tasks, passes no
 * wake token on, and next_ms is when the limit can let a task go (the
 * bucket's next token, the earliest lease deadline), or -1 when paused. */
typedef struct {
    double  rate;            /* tasks/s; 0 = unlimited */
    int64_t bucket_size;     /* burst; < 1 = max(1, rate) */
    int64_t max_concurrent;  /* leased at once; 0 = unlimited */
} dq_claim_limits_t;

/* dq_cmd_claim with the queue's backoff and limits (NULL = defaults /
 * none). */
int dq_cmd_claim_limited(dq_cmd_t *c, dq_str_t queue, const char *claim_id,
                         int64_t max_n, int64_t lease_ms,
                         int64_t reclaim_delay_ms, const dq_retry_t *backoff,
                         const dq_claim_limits_t *lim);

/* Pause (paused = 1) or resume (0) a queue for all workers; resume wakes
 * a sleeper. Reply (dq_reply_statuses, n = 1): 1 changed, 0 already so. */
int dq_cmd_pause(dq_cmd_t *c, dq_str_t queue, int paused);

/* Operator deletes (lib/lua/remove.lua): what = "id" removes task `id` in
 * any state (reply 0 not found, 1 waiting, 2 running, 3 dead); what =
 * "waiting" | "due" | "delayed" | "dead" removes up to max (1..1000) tasks
 * of that state (reply { removed, more }: the tasks removed, and 1 when
 * entries of that state may be left: call again while more is 1; an entry
 * that held no task is taken off, not counted). A removed name stays
 * taken for tombstone_ms. */
int dq_cmd_remove(dq_cmd_t *c, dq_str_t queue, const char *what,
                  dq_str_t id, int64_t max, int64_t tombstone_ms);
/* The same; for what = "id", cold_from >= 0 looks at the cold tier in
 * bounded steps from that window start on (0: from the first): a reply
 * < 0 means not found yet, call again with cold_from = -reply.
 * dq_cmd_remove (cold_from -1) looks at all of the tier in one call. */
int dq_cmd_remove_from(dq_cmd_t *c, dq_str_t queue, const char *what,
                       dq_str_t id, int64_t max, int64_t tombstone_ms,
                       int64_t cold_from);

/* A queue's live state, read only (lib/lua/status.lua): counts, oldest due
 * age, conf, stats and the dead_limit (0..100) newest dead tasks. */
int dq_cmd_status(dq_cmd_t *c, dq_str_t queue, int64_t dead_limit);

/* A queue's applied configuration (lib/lua/configure.lua): n field/value
 * pairs are written, the hash's other fields kept (values: NULL-free
 * strings; a caller that replaces the configuration gives every field:
 * deferred-cli config apply), or n = 0 with values NULL clears every
 * DQ_QCONF_FIELDS field and DQ_QCONF_SPLIT. The fields, in the conf hash:
 * "cfg"
 * (set: applied), "rate" (tasks/s, 0 unlimited), "bucket_size" (0 auto),
 * "max_concurrent" (0 unlimited), "retry_limit", "age_limit_ms",
 * "min_backoff_ms", "max_backoff_ms", "max_doublings" (resolved: never
 * -1 except age_limit_ms -1 = none), "timeout_ms" (0 none), "applied_ms",
 * "source" (the file applied). */
#define DQ_QCONF_FIELDS  { "cfg", "rate", "bucket_size", "max_concurrent", \
    "retry_limit", "age_limit_ms", "min_backoff_ms", "max_backoff_ms",      \
    "max_doublings", "timeout_ms", "applied_ms", "source" }
#define DQ_QCONF_NFIELDS 12
/* deferred_ready's probe (lib/lua/ready.lua): refused by Redis when it
 * would refuse writes (OOM, read-only replica) */
int dq_cmd_ready(dq_cmd_t *c);
/* lib/lua/forget.lua: 1 when the queue was empty and its counters went,
 * 0 (nothing done) while it holds tasks, names or settings */
int dq_cmd_forget(dq_cmd_t *c, dq_str_t queue);
/* lib/lua/unlist.lua: the due list off (stats "due_until" set to 1, past;
 * deleted with the list's last id) and up to 1000 of its tasks back to the
 * ETA set; replies { moved, left } */
int dq_cmd_unlist(dq_cmd_t *c, dq_str_t queue);
/* The due list is on while stats "due_until" is in (now, now +
 * DQ_DUE_HOLD_MS]: a claim that wants tasks keeps it there (lib/lua
 * prelude.lua repeats it); listed ids while it is not are a lapse (no
 * worker that reads the list claims: deferred-cli queues and stats warn) */
#define DQ_DUE_HOLD_MS 60000
/* lib/lua/beat.lua: a worker child's member of DQ_WORKERS_KEY scored on
 * Redis' clock, members scored past trimmed when trim is non-zero;
 * replies Redis now in ms */
int dq_cmd_beat(dq_cmd_t *c, const char *id, int64_t ttl_ms, int trim);
int dq_cmd_configure(dq_cmd_t *c, dq_str_t queue, const char *const *fields,
                     const char *const *values, size_t n);

/* "HGET dq2:{<queue>}:conf shards": what producers read N with (not a
 * script: c->script is DQ_SCRIPT__COUNT). DQ_OK or DQ_EINVAL. */
int dq_cmd_shards(dq_cmd_t *c, dq_str_t queue);

typedef struct {
    dq_str_t id;
    dq_str_t envelope;      /* {NULL,0} if the hash had no envelope */
    dq_str_t claim;         /* the claim id it is leased under (the same
                               for every task of one reply) */
    int64_t  eta_ms;        /* the score it was due at */
    int64_t  retries;       /* failed attempts so far, lease expiries
                               included: X-AppEngine-TaskRetryCount */
    int64_t  first_run_ms;  /* first claim not given back (Redis time) */
    int64_t  runs;          /* earlier runs that reached the function and
                               failed: X-AppEngine-TaskExecutionCount */
    int64_t  failed_ms;     /* when the last failed attempt was judged
                               (0 = none): limits are checked at it */
} dq_claimed_t;

typedef struct {
    int64_t       now_ms;   /* Redis time of the claim */
    int64_t       next_ms;  /* ms until the next ETA or lease deadline,
                               -1 if the queue is empty */
    size_t        n;
    dq_claimed_t *tasks;    /* points into the reply; `cap` entries given */
} dq_claim_result_t;

int dq_reply_claim(const redisReply *r, dq_claim_result_t *out, size_t cap,
                   dq_error_t *err);

/* A task named in a later call: its id, the claim id it was leased under
 * (dq_claimed_t.claim), its name (for the tombstone). */
typedef struct {
    dq_str_t id;
    dq_str_t claim;
    dq_str_t name;          /* {NULL,0} if unnamed */
    int64_t  first_run_ms;  /* dq_claimed_t.first_run_ms: part of the lease
                               member "id|claim|first_run_ms" */
    int      history;       /* 1 when the claim said retries > 0, runs > 0
                               or failed_ms > 0 (dq_claimed_history): the
                               task may have an `errors` entry; ack deletes
                               it only then. 0 for a task with history
                               leaves its error text behind (harmless but
                               kept until the queue is forgotten). */
} dq_lease_item_t;

/* 1 if a claimed task has history (dq_lease_item_t.history). */
#define dq_claimed_history(t)                                               \
    ((t)->retries > 0 || (t)->runs > 0 || (t)->failed_ms > 0)

/* Ack 1..n (<= 1000) tasks: those still leased under their claim id, or
 * whose lease expired but which nobody claimed again since (a late ack:
 * stats "acked_late"). Deletes the value (envelope and state prefix) and,
 * for items with history, the last error; tombstones the name
 * until now + tombstone_ms, counts "done". Per task status 1 = acked,
 * 0 = fenced. Works at maxmemory. */
int dq_cmd_ack(dq_cmd_t *c, dq_str_t queue, const dq_lease_item_t *items,
               size_t n, int64_t tombstone_ms);

/* Ack n_acks finished tasks of this queue (exactly as dq_cmd_ack), then
 * claim as dq_cmd_claim_limited, in ONE script call (lib/lua/claim.lua).
 * n_acks may be 0 (= dq_cmd_claim_limited); max_n may be 0 (then it only
 * acks and replies next_ms). Unlike dq_cmd_ack the call does not run at
 * maxmemory (it claims): on an OOM error the caller sends its acks with
 * dq_cmd_ack (which does). */
int dq_cmd_cycle(dq_cmd_t *c, dq_str_t queue, const char *claim_id,
                 int64_t max_n, int64_t lease_ms, int64_t reclaim_delay_ms,
                 const dq_retry_t *backoff, const dq_claim_limits_t *lim,
                 const dq_lease_item_t *acks, size_t n_acks,
                 int64_t tombstone_ms);

/* ack_status: room for n_acks (1 acked, 0 fenced); out as dq_reply_claim
 * (which is dq_reply_cycle with n_acks 0). */
int dq_reply_cycle(const redisReply *r, size_t n_acks, int *ack_status,
                   dq_claim_result_t *out, size_t cap, dq_error_t *err);

/* Contract v1 -> v2 (lib/lua/migrate.lua): moves up to max (1..1000) of
 * queue's v1 tasks (waiting, delayed, dead; their errors, names, state as
 * the v2 state prefix) and, on the first step, its counters, conf and
 * unrunnable records into the v2 keys, in one atomic step. A task under
 * an unexpired v1 lease stays (a v1 worker runs it and acks it on v1); an
 * expired v1 lease is taken back as v1 claim did (a failed attempt). Start
 * with cursor "0" and call again with the returned cursor until it is "0";
 * safe to run again at any time (idempotent) and while v1 workers run. */
int dq_cmd_migrate(dq_cmd_t *c, dq_str_t queue, const char *cursor,
                   int64_t max);

/* cursor: room for 24 bytes ("0": done for now). moved: tasks moved by
 * this step; left: v1 tasks still in v1 keys after it (leased by a live
 * v1 worker, or not reached yet). */
int dq_reply_migrate(const redisReply *r, char *cursor, int64_t *moved,
                     int64_t *left, dq_error_t *err);

/* Retry one task after delay_ms (computed by dq_backoff_ms) with error
 * text kept; counts a failed attempt, and a run if ran (the run reached
 * the function). Reply 1 ok, 0 fenced. */
int dq_cmd_retry(dq_cmd_t *c, dq_str_t queue, const dq_lease_item_t *item,
                 int64_t delay_ms, dq_str_t error, int ran);

/* Bury one task in the dead set with its error; tombstones its name;
 * trims the dead set: tasks dead longer than dead_age_ms are deleted, and
 * the oldest beyond dead_max only when dead_age_ms <= 0 (a task dead for
 * less than dead_age is never deleted). Reply 1 ok, 0 fenced. Works at
 * maxmemory. */
int dq_cmd_bury(dq_cmd_t *c, dq_str_t queue, const dq_lease_item_t *item,
                dq_str_t error, int64_t dead_max, int64_t dead_age_ms,
                int64_t tombstone_ms, int ran);

/* Extend leases (heartbeat) to now + lease_ms; per task 1 ok, 0 fenced.
 * Works at maxmemory. */
int dq_cmd_extend(dq_cmd_t *c, dq_str_t queue, const dq_lease_item_t *items,
                  size_t n, int64_t lease_ms);

/* Give leases back WITHOUT charging an attempt (the tasks never reached
 * their function): due again at now + delay_ms. unrunnable: the function
 * this worker cannot run (no library registers it, or its library failed
 * to load; counted in stats "unrunnable" and per function in the hash
 * DQ_KEY_UNRUNNABLE), NULL = never started (stop; "released").
 * Per task 1 ok, 0 fenced. Works at maxmemory. */
int dq_cmd_release(dq_cmd_t *c, dq_str_t queue, const dq_lease_item_t *items,
                   size_t n, int64_t delay_ms, const char *unrunnable);

/* Give back, without charge, every lease one claim call still holds (its
 * reply was lost). Walks the lease set: start with cursor "0" and call
 * again with the returned cursor until it is "0". */
int dq_cmd_release_claim(dq_cmd_t *c, dq_str_t queue, const char *claim_id,
                         const char *cursor);

/* cursor: room for 24 bytes. */
int dq_reply_release_claim(const redisReply *r, char *cursor,
                           int64_t *released, dq_error_t *err);

/* Re-run a dead task: dead -> due now, retry state reset, name live
 * again. Reply (dq_reply_statuses) 1 ok, 0 not dead; a task whose name a
 * live task holds now stays dead: dq_reply_requeue gives DQ_EDUPLICATE. */
int dq_cmd_requeue(dq_cmd_t *c, dq_str_t queue, dq_str_t id);

/* 1 requeued / 0 not dead (DQ_OK either way, *requeued says), or
 * DQ_EDUPLICATE (name held by a live task) or DQ_EREDIS. */
int dq_reply_requeue(const redisReply *r, int *requeued, dq_error_t *err);

/* Bulk requeue: the dead tasks of a queue whose last error contains
 * `match` (plain substring; NULL or "" = all), looking at most `limit`
 * (<= 1000) per call from `offset`, oldest first. */
int dq_cmd_requeue_bulk(dq_cmd_t *c, dq_str_t queue, const char *match,
                        int64_t offset, int64_t limit);

/* next_offset -1 when the dead set was walked to its end. */
int dq_reply_requeue_bulk(const redisReply *r, int64_t *next_offset,
                          int64_t *requeued, int64_t *conflicts,
                          dq_error_t *err);

/* Per-item 0/1 statuses of ack/extend/release (arrays), and of retry/bury/
 * requeue (an integer reply, read with n = 1); out has room for n. */
int dq_reply_statuses(const redisReply *r, size_t n, int *out,
                      dq_error_t *err);

#endif /* DQ_CONTRACT_H */
