/*
 * deferred-worker — the dq_task_* accessors of include/deferred/task.h
 * over a decoded envelope, plus the task object's life (task_impl.h).
 *
 * Metadata comes from the claim: retry count = failed attempts so far
 * (lease expiries included), execution count = earlier runs that reached
 * the function (a lease that expired, a release, a worker that could not
 * run it do not count), ETA = the score the task was due at. Every string handed to a function is owned
 * by the task and dies with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dq_sync.h"
#include "worker.h"
#include "task_impl.h"

struct dq_header_str_s {
    dq_header_str_t *next;
    char            *name;
    char            *value;
};

static char    *dq__redis_address;
static char    *dq__redis_password;
static int      dq__redis_db;
static const dq_worker_conf_t *dq__conf;

static char *
dq__strndup(const char *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s != NULL) {
        if (n) {
            memcpy(s, p, n);
        }
        s[n] = '\0';
    }
    return s;
}

void
dq_task_set_worker_redis(const char *address, const char *password, int db)
{
    free(dq__redis_address);
    free(dq__redis_password);
    dq__redis_address = NULL;
    if (address != NULL) {
        /* normalized, as task.h promises, whatever form was configured
         * (the configuration was checked: it parses) */
        dq_addr_t a;
        char      buf[600];

        if (dq_addr_parse(dq_str_c(address), &a, NULL) == DQ_OK
            && dq_addr_format(&a, buf, sizeof(buf)) > 0)
        {
            dq__redis_address = strdup(buf);
        } else {
            dq__redis_address = strdup(address);
        }
    }
    dq__redis_password = password ? strdup(password) : NULL;
    dq__redis_db = db;
}

void
dq_task_set_worker_conf(const dq_worker_conf_t *conf)
{
    dq__conf = conf;
}

DQ_EXPORT const char *
dq_task_push_target(const dq_task_t *t)
{
    return t->qc ? t->qc->push_target : NULL;
}

DQ_EXPORT int64_t
dq_task_push_deadline_ms(const dq_task_t *t)
{
    return t->qc ? t->qc->push_deadline_ms : 0;
}

DQ_EXPORT int
dq_task_push_require_ack(const dq_task_t *t)
{
    return t->qc ? t->qc->push_require_ack : 1;
}

DQ_EXPORT const char *
dq_task_push_secret(const dq_task_t *t)
{
    (void) t;
    return dq__conf ? dq__conf->push_secret : NULL;
}

DQ_EXPORT const char *
dq_worker_redis_address(void)
{
    return dq__redis_address;
}

DQ_EXPORT int
dq_worker_redis_db(void)
{
    return dq__redis_db;
}

DQ_EXPORT redisContext *
dq_worker_redis_connect(int timeout_ms, char *err, size_t errlen)
{
    char buf[512];

    if (err == NULL || errlen == 0) {
        err = buf;
        errlen = sizeof(buf);
    }
    if (dq__redis_address == NULL) {
        snprintf(err, errlen, "no Redis address (not in a worker child)");
        return NULL;
    }
    return dq_sync_connect(dq__redis_address, dq__redis_password,
                           dq__redis_db, timeout_ms > 0 ? timeout_ms : 5000,
                           err, errlen);
}

/* The tasks of one claim reply live in one block (task_impl.h): the task
 * structs, their strings (id, envelope copy, function, URL, name), the
 * queue name once, and one msgpack zone for every decoded envelope. A
 * block is freed with its last task; a task bigger than
 * DQ__BLOCK_MAX gets a block of its own, so one long task never keeps a
 * large claim's memory alive. */
#define DQ__BLOCK_MAX  (64 * 1024)
#define DQ__ALIGN(n)   (((n) + 15) & ~(size_t) 15)

struct dq_task_block_s {
    size_t        refs;        /* its live tasks, +1 while being filled */
    int           zone_ok;
    msgpack_zone  zone;
    size_t        used;
    size_t        size;
    char         *queue;       /* the shard's name in Redis ("q#1") */
    char         *uqueue;      /* the queue's ("q"): may be queue */
    char          mem[] __attribute__((aligned(16)));
};

/* Room one claim entry may take in a block (at most). */
static size_t
dq__task_room(const dq_claimed_t *c)
{
    size_t n = DQ__ALIGN(sizeof(dq_task_t)) + 16 + c->id.len + 1;

    if (c->envelope.ptr != NULL) {
        /* the copy, then function + URL + name (disjoint pieces of it, or
         * the default URL) */
        n += 2 * (c->envelope.len + 1) + 2 + sizeof(DQ_DEFAULT_URL);
    }
    return n;
}

static dq_task_block_t *
dq__block_new(size_t room, size_t env_total, dq_str_t queue)
{
    dq_task_block_t *b;
    size_t           chunk;
    dq_str_t         base;

    room += 2 * (queue.len + 1) + 32;
    b = malloc(sizeof(*b) + room);
    if (b == NULL) {
        return NULL;
    }
    b->refs = 1;
    b->used = 0;
    b->size = room;
    /* decoded objects: ~24 bytes per element, an element at least one
     * byte of envelope; the zone grows past this if it must */
    chunk = env_total * 4 + 256;
    chunk = chunk > 16384 ? 16384 : chunk;
    b->zone_ok = msgpack_zone_init(&b->zone, chunk) ? 1 : 0;
    if (!b->zone_ok) {
        free(b);
        return NULL;
    }
    b->queue = b->mem;
    memcpy(b->queue, queue.ptr, queue.len);
    b->queue[queue.len] = '\0';
    b->used = DQ__ALIGN(queue.len + 1);
    b->uqueue = b->queue;
    base = dq_shard_base(queue);
    if (base.len != queue.len) {
        /* a shard: the functions, the push library and the queue's
         * settings know the queue by its own name */
        b->uqueue = b->mem + b->used;
        memcpy(b->uqueue, base.ptr, base.len);
        b->uqueue[base.len] = '\0';
        b->used = DQ__ALIGN(b->used + base.len + 1);
    }
    return b;
}

static void *
dq__balloc(dq_task_block_t *b, size_t n, int align)
{
    char *p;

    if (align) {
        b->used = DQ__ALIGN(b->used);
    }
    if (b->used + n > b->size) {
        return NULL;            /* dq__task_room reserved it: cannot be */
    }
    p = b->mem + b->used;
    b->used += n;
    return p;
}

static char *
dq__bstrndup(dq_task_block_t *b, const char *p, size_t n)
{
    char *s = dq__balloc(b, n + 1, 0);

    if (s != NULL) {
        if (n) {
            memcpy(s, p, n);
        }
        s[n] = '\0';
    }
    return s;
}

static void
dq__block_unref(dq_task_block_t *b)
{
    if (b != NULL && --b->refs == 0) {
        msgpack_zone_destroy(&b->zone);
        free(b);
    }
}

/* One task in block b from claim entry c; NULL only if the block's room
 * was miscounted. */
static dq_task_t *
dq__task_new(dq_task_block_t *b, const dq_claimed_t *c, dq_str_t queue,
             const dq_limits_t *lim, const dq_loader_t *loader)
{
    dq_task_t  *t;
    dq_error_t  err;

    t = dq__balloc(b, sizeof(*t), 1);
    if (t == NULL) {
        return NULL;
    }
    memset(t, 0, sizeof(*t));
    t->block = b;
    b->refs++;
    t->loader = loader;
    t->queue = b->queue;
    t->uqueue = b->uqueue;
    t->id = dq__bstrndup(b, c->id.ptr, c->id.len);
    if (t->id == NULL) {
        goto nomem;
    }
    t->eta_ms = c->eta_ms;
    if (c->claim.len == 0 || c->claim.len > DQ_CLAIM_ID_MAX) {
        goto nomem;     /* dq_reply_claim checked it: cannot happen */
    }
    memcpy(t->claim, c->claim.ptr, c->claim.len);
    t->claim[c->claim.len] = '\0';
    t->runs = c->runs;
    t->retries = c->retries;
    t->first_run_ms = c->first_run_ms;
    t->failed_ms = c->failed_ms;

    if (c->envelope.ptr == NULL) {
        snprintf(t->error, sizeof(t->error),
                 "missing envelope: the task hash has no entry for this id");
        return t;
    }

    t->buf = dq__bstrndup(b, c->envelope.ptr, c->envelope.len);
    if (t->buf == NULL) {
        goto nomem;
    }
    t->len = c->envelope.len;
    memset(&err, 0, sizeof(err));
    /* the id and queue the envelope keeps: the block's copies (the
     * claim reply dies with its callback) */
    if (dq_envelope_decode(t->buf, t->len,
                           (dq_str_t) { t->id, c->id.len },
                           (dq_str_t) { t->queue, queue.len }, lim,
                           &b->zone, &t->env, &err)
        != DQ_OK)
    {
        snprintf(t->error, sizeof(t->error), "undecodable envelope: %s%s%s",
                 err.field[0] ? err.field : "", err.field[0] ? ": " : "",
                 err.msg);
        t->decoded = -1;
        return t;
    }
    t->decoded = 1;

    t->func = dq__bstrndup(b, t->env.func.ptr, t->env.func.len);
    t->url = t->env.url.ptr
             ? dq__bstrndup(b, t->env.url.ptr, t->env.url.len)
             : dq__bstrndup(b, DQ_DEFAULT_URL, sizeof(DQ_DEFAULT_URL) - 1);
    if (t->func == NULL || t->url == NULL) {
        goto nomem;
    }
    if (t->env.name.ptr != NULL) {
        t->name = dq__bstrndup(b, t->env.name.ptr, t->env.name.len);
        if (t->name == NULL) {
            goto nomem;
        }
    }

    t->qc = dq__conf ? dq_conf_queue(dq__conf, dq_str_c(t->uqueue)) : NULL;
    if (loader != NULL && t->qc != NULL && t->qc->push_target != NULL) {
        /* a push queue: every task goes to the push library, which POSTs
         * it to the app at its URL (no URL handler of this worker runs) */
        t->fn = dq_loader_function(loader, dq_str_c(DQ_PUSH_FUNCTION));
        if (t->fn == NULL) {
            /* the unknown-function reason names it */
            t->func = (char *) DQ_PUSH_FUNCTION " (queue with push_target: "
                      "load the push library, libdq_push.so)";
        }
    } else if (loader != NULL) {
        t->fn = dq_loader_function(loader, t->env.func);
        t->handler = dq_loader_handler(loader, dq_str_c(t->url));
    }
    return t;

nomem:
    dq_task_free(t);
    return NULL;
}

void
dq_task_new_many(const dq_claimed_t *c, size_t n, dq_str_t queue,
                 const dq_limits_t *lim, const dq_loader_t *loader,
                 dq_task_t **out)
{
    dq_task_block_t *b = NULL;
    size_t           i, k, room, env, r;

    for (i = 0; i < n; i = k) {
        /* the next block: as many entries as fit in DQ__BLOCK_MAX (at
         * least one) */
        room = 0;
        env = 0;
        for (k = i; k < n; k++) {
            r = dq__task_room(&c[k]);
            if (k > i && room + r > DQ__BLOCK_MAX) {
                break;
            }
            room += r;
            env += c[k].envelope.ptr ? c[k].envelope.len : 0;
        }
        b = dq__block_new(room, env, queue);
        for (r = i; r < k; r++) {
            out[r] = b ? dq__task_new(b, &c[r], queue, lim, loader) : NULL;
        }
        dq__block_unref(b);        /* the filler's reference */
    }
}

void
dq_task_free(dq_task_t *t)
{
    dq_header_str_t *h, *n;

    if (t == NULL) {
        return;
    }
    for (h = t->hdrs; h; h = n) {
        n = h->next;
        free(h->name);
        free(h->value);
        free(h);
    }
    dq__block_unref(t->block);
}

dq_task_result_t
dq_task_execute(dq_task_t *t)
{
    dq_task_result_t r;

    if (t->handler != NULL) {
        r = t->handler->handle(t, t->handler->udata);
    } else {
        r = dq_task_run(t);
    }
    switch (r) {
    case DQ_TASK_OK:
    case DQ_TASK_FAIL:
    case DQ_TASK_RETRY_QUIET:
    case DQ_TASK_PERMANENT:
        return r;
    }
    dq_task_set_error(t, "function returned an unknown result code %d",
                      (int) r);
    return DQ_TASK_FAIL;
}

DQ_EXPORT dq_task_result_t
dq_task_run(dq_task_t *t)
{
    if (t->fn == NULL) {
        dq_task_set_error(t, "unknown function \"%s\"",
                          t->func ? t->func : "");
        return DQ_TASK_PERMANENT;
    }
    return t->fn->fn->fn(t, t->fn->fn->udata);
}

DQ_EXPORT void
dq_task_set_error(dq_task_t *t, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(t->error, sizeof(t->error), fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ arguments */

DQ_EXPORT size_t
dq_task_nargs(const dq_task_t *t)
{
    if (t->decoded != 1 || t->env.args == NULL) {
        return 0;
    }
    return t->env.args->via.array.size;
}

DQ_EXPORT const msgpack_object *
dq_task_arg(const dq_task_t *t, size_t i)
{
    if (i >= dq_task_nargs(t)) {
        return NULL;
    }
    return &t->env.args->via.array.ptr[i];
}

static int
dq__to_int(dq_task_t *t, const msgpack_object *o, const char *what,
           int64_t *out)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t) INT64_MAX) {
            dq_task_set_error(t, "%s: integer out of range", what);
            return DQ_EINVAL;
        }
        *out = (int64_t) o->via.u64;
        return DQ_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = o->via.i64;
        return DQ_OK;
    default:
        dq_task_set_error(t, "%s: expected an integer", what);
        return DQ_EINVAL;
    }
}

static int
dq__to_str(dq_task_t *t, const msgpack_object *o, const char *what,
           const char **ptr, size_t *len)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        *ptr = o->via.str.ptr;
        *len = o->via.str.size;
        return DQ_OK;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        *ptr = o->via.bin.ptr;
        *len = o->via.bin.size;
        return DQ_OK;
    }
    dq_task_set_error(t, "%s: expected a string", what);
    return DQ_EINVAL;
}

static const msgpack_object *
dq__arg_or_err(dq_task_t *t, size_t i, char *what, size_t wsize)
{
    const msgpack_object *o = dq_task_arg(t, i);

    snprintf(what, wsize, "argument %zu", i);
    if (o == NULL) {
        dq_task_set_error(t, "%s: missing (the task has %zu)", what,
                          dq_task_nargs(t));
    }
    return o;
}

DQ_EXPORT int
dq_task_arg_int(dq_task_t *t, size_t i, int64_t *out)
{
    char                  what[48];
    const msgpack_object *o = dq__arg_or_err(t, i, what, sizeof(what));

    return o ? dq__to_int(t, o, what, out) : DQ_ENOTFOUND;
}

DQ_EXPORT int
dq_task_arg_double(dq_task_t *t, size_t i, double *out)
{
    char                  what[48];
    const msgpack_object *o = dq__arg_or_err(t, i, what, sizeof(what));

    if (o == NULL) {
        return DQ_ENOTFOUND;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = o->via.f64;
        return DQ_OK;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double) o->via.u64;
        return DQ_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double) o->via.i64;
        return DQ_OK;
    default:
        dq_task_set_error(t, "%s: expected a number", what);
        return DQ_EINVAL;
    }
}

DQ_EXPORT int
dq_task_arg_bool(dq_task_t *t, size_t i, int *out)
{
    char                  what[48];
    const msgpack_object *o = dq__arg_or_err(t, i, what, sizeof(what));

    if (o == NULL) {
        return DQ_ENOTFOUND;
    }
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        dq_task_set_error(t, "%s: expected a boolean", what);
        return DQ_EINVAL;
    }
    *out = o->via.boolean ? 1 : 0;
    return DQ_OK;
}

DQ_EXPORT int
dq_task_arg_str(dq_task_t *t, size_t i, const char **ptr, size_t *len)
{
    char                  what[48];
    const msgpack_object *o = dq__arg_or_err(t, i, what, sizeof(what));

    return o ? dq__to_str(t, o, what, ptr, len) : DQ_ENOTFOUND;
}

DQ_EXPORT const msgpack_object *
dq_task_kwarg(const dq_task_t *t, const char *key)
{
    if (t->decoded != 1 || t->env.kwargs == NULL) {
        return NULL;
    }
    return dq_map_get(t->env.kwargs, key);
}

DQ_EXPORT int
dq_task_kwarg_int(dq_task_t *t, const char *key, int64_t *out)
{
    char                  what[64];
    const msgpack_object *o = dq_task_kwarg(t, key);

    snprintf(what, sizeof(what), "keyword argument \"%.40s\"", key);
    if (o == NULL) {
        dq_task_set_error(t, "%s: missing", what);
        return DQ_ENOTFOUND;
    }
    return dq__to_int(t, o, what, out);
}

DQ_EXPORT int
dq_task_kwarg_str(dq_task_t *t, const char *key, const char **ptr,
                  size_t *len)
{
    char                  what[64];
    const msgpack_object *o = dq_task_kwarg(t, key);

    snprintf(what, sizeof(what), "keyword argument \"%.40s\"", key);
    if (o == NULL) {
        dq_task_set_error(t, "%s: missing", what);
        return DQ_ENOTFOUND;
    }
    return dq__to_str(t, o, what, ptr, len);
}

/* ------------------------------------------------------------- metadata */

DQ_EXPORT const char *
dq_task_id(const dq_task_t *t)
{
    return t->id;
}

DQ_EXPORT const char *
dq_task_name(const dq_task_t *t)
{
    return t->name;
}

DQ_EXPORT const char *
dq_task_queue(const dq_task_t *t)
{
    return t->uqueue;
}

DQ_EXPORT const char *
dq_task_func(const dq_task_t *t)
{
    return t->func;
}

DQ_EXPORT const char *
dq_task_url(const dq_task_t *t)
{
    return t->url;
}

DQ_EXPORT int64_t
dq_task_retry_count(const dq_task_t *t)
{
    return t->retries;
}

DQ_EXPORT int64_t
dq_task_execution_count(const dq_task_t *t)
{
    return t->runs;
}

DQ_EXPORT int64_t
dq_task_eta_ms(const dq_task_t *t)
{
    return t->eta_ms;
}

DQ_EXPORT const char *
dq_task_header(const dq_task_t *t_, const char *name)
{
    dq_task_t              *t = (dq_task_t *) t_;   /* lazily caches */
    dq_header_str_t        *h;
    const msgpack_object   *m;
    const msgpack_object_kv *kv;
    size_t                  nlen = strlen(name);

    for (h = t->hdrs; h; h = h->next) {
        if (strcasecmp(h->name, name) == 0) {
            return h->value;
        }
    }
    if (t->decoded != 1 || t->env.headers == NULL) {
        return NULL;
    }
    m = t->env.headers;
    if (m->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        kv = &m->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR
            || kv->val.type != MSGPACK_OBJECT_STR
            || kv->key.via.str.size != nlen
            || strncasecmp(kv->key.via.str.ptr, name, nlen) != 0)
        {
            continue;
        }
        h = calloc(1, sizeof(*h));
        if (h == NULL) {
            return NULL;
        }
        h->name = dq__strndup(kv->key.via.str.ptr, kv->key.via.str.size);
        h->value = dq__strndup(kv->val.via.str.ptr, kv->val.via.str.size);
        if (h->name == NULL || h->value == NULL) {
            free(h->name);
            free(h->value);
            free(h);
            return NULL;
        }
        h->next = t->hdrs;
        t->hdrs = h;
        return h->value;
    }
    return NULL;
}

DQ_EXPORT int
dq_task_header_at(const dq_task_t *t, size_t i, const char **name,
                  size_t *nlen, const char **value, size_t *vlen)
{
    const msgpack_object_kv *kv;

    if (t->decoded != 1 || t->env.headers == NULL
        || t->env.headers->type != MSGPACK_OBJECT_MAP
        || i >= t->env.headers->via.map.size)
    {
        return DQ_ENOTFOUND;
    }
    kv = &t->env.headers->via.map.ptr[i];
    if (kv->key.type != MSGPACK_OBJECT_STR
        || kv->val.type != MSGPACK_OBJECT_STR)
    {
        return DQ_EINVAL;          /* the decoder refuses these anyway */
    }
    *name = kv->key.via.str.ptr;
    *nlen = kv->key.via.str.size;
    *value = kv->val.via.str.ptr;
    *vlen = kv->val.via.str.size;
    return DQ_OK;
}
