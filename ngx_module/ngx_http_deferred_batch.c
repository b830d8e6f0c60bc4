
/*
 * ngx_http_deferred_module: the tasks of one request.
 *
 * Fixes each task's id and envelope (lib's dq_id_new, dq_envelope_encode)
 * before anything talks to Redis, groups the tasks by queue, hands the
 * groups to the merger (one script call per queue, shared with concurrent
 * requests: ngx_http_deferred_merge.c), waits for every group's result or
 * deferred_timeout, and turns the results into a status, a JSON body and
 * the $deferred_task_* values.
 *
 * A request is finished from exactly one path: the last result, a failure,
 * or the timer; the other paths are cancelled before done() runs.
 */


#include "ngx_http_deferred_module.h"


static ngx_int_t ngx_http_deferred_batch_timer(ngx_http_deferred_ctx_t *ctx,
    ngx_msec_t timeout);
static void ngx_http_deferred_batch_untimer(ngx_http_deferred_ctx_t *ctx);
static void ngx_http_deferred_batch_timeout(ngx_event_t *ev);
static void ngx_http_deferred_batch_cancel(ngx_http_deferred_ctx_t *ctx);
static void ngx_http_deferred_batch_fail(ngx_http_deferred_ctx_t *ctx,
    const char *message);
static u_char *ngx_http_deferred_json_string(u_char *p, dq_str_t s);
static u_char *ngx_http_deferred_json_text(u_char *p, dq_str_t s);
static u_char *ngx_http_deferred_json_plain(u_char *p, dq_str_t s);
static u_char *ngx_http_deferred_json_member(u_char *p, u_char *first,
    const char *key, const char *value);
static u_char *ngx_http_deferred_rfc3339(u_char *p, int64_t ms);
static u_char *ngx_http_deferred_int(u_char *p, int64_t v, ngx_uint_t width);
static const u_char *ngx_http_deferred_eta_text(int64_t ms, size_t *len);


ngx_int_t
ngx_http_deferred_status_of(int code)
{
    switch (code) {

    case DQ_EINVAL:
    case DQ_EDECODE:
    case DQ_ENOTFOUND:
        return NGX_HTTP_BAD_REQUEST;

    case DQ_ETOOBIG:
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;

    case DQ_EDUPLICATE:
    case DQ_ETOMBSTONE:
        return NGX_HTTP_CONFLICT;

    case DQ_EREDIS:
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


ngx_int_t
ngx_http_deferred_batch_prepare(ngx_http_deferred_ctx_t *ctx,
    dq_request_t *reqs, ngx_uint_t n, dq_str_t default_url, dq_error_t *err)
{
    int                             rc;
    char                            id[DQ_CLIENT_ID_MAX + 1], field[64];
    size_t                          idlen;
    u_char                         *p;
    int64_t                         now;
    ngx_str_t                      *q;
    size_t                          size;
    ngx_uint_t                      i, j, k, hash, nslots, *slots, *group,
                                    *index, rr, wait;
    dq_enqueue_item_t              *items;
    dq_limits_t                     lim;
    dq_request_t                   *req;
    ngx_http_deferred_shard_memo_t  memo;
    msgpack_sbuffer                *sb;
    ngx_http_request_t             *r;
    ngx_http_deferred_task_t       *t;
    ngx_http_deferred_group_t      *g;
    ngx_http_deferred_loc_conf_t   *dlcf;

    r = ctx->request;
    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_deferred_module);

    /* each task's envelope within what the workers decode: the default
     * max_items (they have no knob for it), deferred_max_envelope bytes */
    dq_limits_default(&lim);
    lim.max_envelope = dlcf->max_envelope;

    for (nslots = 4; nslots < 2 * n; nslots *= 2) { /* void */ }

    /* one zeroed block: the tasks, the groups, the table of shard names,
     * each task's group, and the groups' items and indexes (n of each in
     * all, sliced per group below) */

    size = ngx_align(n * sizeof(ngx_http_deferred_task_t), NGX_ALIGNMENT)
           + ngx_align(n * sizeof(ngx_http_deferred_group_t), NGX_ALIGNMENT)
           + ngx_align(n * sizeof(dq_enqueue_item_t), NGX_ALIGNMENT)
           + (nslots + 2 * n) * sizeof(ngx_uint_t);

    p = ngx_pcalloc(r->pool, size);
    if (p == NULL) {
        return dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");
    }

    ctx->tasks = (ngx_http_deferred_task_t *) p;
    p += ngx_align(n * sizeof(ngx_http_deferred_task_t), NGX_ALIGNMENT);
    ctx->groups = (ngx_http_deferred_group_t *) p;
    p += ngx_align(n * sizeof(ngx_http_deferred_group_t), NGX_ALIGNMENT);
    items = (dq_enqueue_item_t *) p;
    p += ngx_align(n * sizeof(dq_enqueue_item_t), NGX_ALIGNMENT);
    slots = (ngx_uint_t *) p;
    group = slots + nslots;
    index = group + n;

    ctx->ntasks = n;
    ctx->ngroups = 0;
    now = dq_now_ms();

    /* a sharded queue's unnamed tasks of one request go to one shard
     * (stored together, as a request's tasks of one queue are) */
    rr = dlcf->redis ? dlcf->redis->shard_rr++ : 0;
    ngx_memzero(&memo, sizeof(ngx_http_deferred_shard_memo_t));
    g = NULL;

    for (i = 0; i < n; i++) {
        req = &reqs[i];
        t = &ctx->tasks[i];

        /* the queue's and the task's names are valid: checked where they
         * were read (lib/dq_request.c for the endpoint's body,
         * ngx_http_deferred_enqueue_build for deferred_enqueue); the
         * field's name is formatted only for an error (one ngx_sprintf a
         * task was 5 % of a 1,000-task batch) */

        if (dlcf->queues) {
            q = dlcf->queues->elts;

            for (j = 0; j < dlcf->queues->nelts; j++) {
                if (q[j].len == req->queue.len
                    && ngx_strncmp(q[j].data, req->queue.ptr, q[j].len) == 0)
                {
                    break;
                }
            }

            if (j == dlcf->queues->nelts) {
                ngx_http_deferred_batch_field(field, ctx->batch, i, "queue");
                return dq_error_set(err, DQ_ENOTFOUND, field,
                                    "%s: queue \"%.*s\" is not served here",
                                    field, (int) req->queue.len,
                                    req->queue.ptr);
            }
        }

        if (req->url.ptr == NULL && default_url.len) {
            req->url = default_url;
        }

        /* the client's id (idempotent enqueue), or a new one */

        if (req->id.ptr) {
            idlen = req->id.len;
            ngx_memcpy(id, req->id.ptr, idlen);
            id[idlen] = '\0';
            t->keyed = 1;
            t->key_window_ms = req->key_window_ms;

        } else {
            dq_id_new(id);
            idlen = DQ_ID_LEN;
        }

        /* the worker process' scratch buffer: no malloc per task; the id
         * and the envelope then share one pool block */
        sb = ngx_http_deferred_scratch(r);

        rc = dq_envelope_encode(req, ctx->batch ? (long) i : -1, now, &lim,
                                sb, err);

        if (rc == DQ_OK) {
            p = ngx_pnalloc(r->pool, idlen + sb->size);

            if (p == NULL) {
                rc = dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");

            } else {
                ngx_memcpy(p, id, idlen);
                t->envelope.ptr = (const char *) p + idlen;
                t->envelope.len = sb->size;
                ngx_memcpy((u_char *) t->envelope.ptr, sb->data, sb->size);
            }
        }

        ngx_http_deferred_scratch_trim(r);

        if (rc != DQ_OK) {
            return rc;
        }

        t->id.ptr = (const char *) p;
        t->id.len = idlen;
        t->queue = req->queue;
        t->name = req->name;
        if (req->url.ptr) {
            t->url = req->url;

        } else {
            t->url = dq_str_lit(DQ_DEFAULT_URL);
            t->url_default = 1;
        }

        t->eta_ms = req->eta_ms;
        t->countdown_ms = req->countdown_ms;

        if (ngx_http_deferred_shards_task(ctx, t, rr, &wait, &memo)
            != NGX_OK)
        {
            return dq_error_set(err, DQ_ENOMEM, NULL, "out of memory");
        }

        /* the task's group: the previous task's (a batch to one queue),
         * else by an open-addressing table of shard names, so that a
         * batch over many queues costs O(n), not O(n * queues) */

        if (i && g->queue.len == t->shard.len
            && ngx_memcmp(g->queue.ptr, t->shard.ptr, t->shard.len) == 0)
        {
            group[i] = group[i - 1];
            g->n++;
            g->shard_wait |= wait;
            continue;
        }

        /* the queue's hash, taken once for its shard count (memo), when
         * the task's group is its queue's (not a shard's) */
        hash = (t->shard.ptr == t->queue.ptr && t->shard.len == t->queue.len)
               ? memo.hash
               : ngx_hash_key((u_char *) t->shard.ptr, t->shard.len);

        for (j = hash & (nslots - 1); /* void */; j = (j + 1) & (nslots - 1))
        {
            if (slots[j] == 0) {
                g = &ctx->groups[ctx->ngroups];
                g->ctx = ctx;
                g->queue = t->shard;
                g->hash = hash;
                g->shard_wait = wait;
                slots[j] = ++ctx->ngroups;
                break;
            }

            g = &ctx->groups[slots[j] - 1];

            if (g->queue.len == t->shard.len
                && ngx_strncmp(g->queue.ptr, t->shard.ptr, t->shard.len) == 0)
            {
                break;
            }
        }

        group[i] = slots[j] - 1;
        g->n++;
        g->shard_wait |= wait;  /* a named task after unnamed ones */
    }

    for (j = 0; j < ctx->ngroups; j++) {
        g = &ctx->groups[j];

        g->items = items;
        g->index = index;
        items += g->n;
        index += g->n;

        g->n = 0;       /* counted again while filled */
    }

    for (i = 0; i < n; i++) {
        t = &ctx->tasks[i];
        g = &ctx->groups[group[i]];
        k = g->n++;

        g->items[k].id = t->id;
        g->items[k].envelope = t->envelope;
        g->items[k].name = t->name;
        g->items[k].eta_ms = t->eta_ms;
        g->items[k].countdown_ms = t->countdown_ms;
        g->items[k].keyed = t->keyed;
        g->items[k].fresh = !t->keyed;      /* dq_id_new's: never re-sent */
        g->items[k].key_window_ms = t->key_window_ms;
        g->index[k] = i;
    }

    return DQ_OK;
}


/* an error's field: "tasks[i].name" in a batch, else "name" (64 bytes) */

void
ngx_http_deferred_batch_field(char *field, ngx_uint_t batch, ngx_uint_t i,
    const char *name)
{
    if (batch) {
        ngx_sprintf((u_char *) field, "tasks[%ui].%s%Z", i, name);

    } else {
        ngx_sprintf((u_char *) field, "%s%Z", name);
    }
}


ngx_int_t
ngx_http_deferred_batch_send(ngx_http_deferred_ctx_t *ctx)
{
    ngx_uint_t                     i;
    ngx_http_request_t            *r;
    ngx_http_deferred_loc_conf_t  *dlcf;

    r = ctx->request;
    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_deferred_module);

    ctx->redis = dlcf->redis;

    if (ngx_http_deferred_redis_usable(ctx->redis) != NGX_OK) {
        /* the outage itself is logged once, at error, by the connection */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "deferred: redis %V unavailable", &ctx->redis->name);
        ctx->state = NGX_HTTP_DEFERRED_FAILED;
        return NGX_DECLINED;
    }

    /* the groups leave the merger and the timer's list when the request
     * goes: by the context's pool cleanup (ngx_http_deferred_ctx_cleanup),
     * not one of their own */
    ctx->sent = 1;

    if (ngx_http_deferred_batch_timer(ctx, dlcf->timeout) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->state = NGX_HTTP_DEFERRED_WAITING;
    ctx->waiting = ctx->ngroups;

    /* sent at the end of this event loop iteration, merged with others */

    for (i = 0; i < ctx->ngroups; i++) {
        ctx->groups[i].tombstone = (int64_t) dlcf->tombstone;
        ngx_http_deferred_merge_add(&ctx->groups[i]);
    }

    return NGX_AGAIN;
}


/*
 * The request's deferred_timeout: the timer of the requests sent before it
 * in this loop iteration with the same deferred_timeout (the same
 * deadline, to the millisecond: ngx_current_msec is the iteration's), or a
 * new one. One rbtree insert and delete per iteration, not per request.
 */

static ngx_int_t
ngx_http_deferred_batch_timer(ngx_http_deferred_ctx_t *ctx,
    ngx_msec_t timeout)
{
    ngx_queue_t                    *q;
    ngx_http_deferred_timeout_t    *t;
    ngx_http_deferred_main_conf_t  *dmcf;

    ngx_http_deferred_batch_untimer(ctx);      /* (a ctx sent again) */

    dmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_deferred_module);

    t = dmcf->tlast;

    if (t == NULL || !t->ev.timer_set
        || t->deadline != ngx_current_msec + timeout)
    {
        if (!ngx_queue_empty(&dmcf->tfree)) {
            q = ngx_queue_head(&dmcf->tfree);
            ngx_queue_remove(q);
            t = ngx_queue_data(q, ngx_http_deferred_timeout_t, link);

        } else {
            /* the cycle's pool: kept for reuse until the worker exits */
            t = ngx_pcalloc(ngx_cycle->pool,
                            sizeof(ngx_http_deferred_timeout_t));
            if (t == NULL) {
                return NGX_ERROR;
            }

            t->ev.handler = ngx_http_deferred_batch_timeout;
            t->ev.data = t;
            t->ev.log = ngx_cycle->log;
        }

        ngx_queue_init(&t->ctxs);
        t->deadline = ngx_current_msec + timeout;
        ngx_add_timer(&t->ev, timeout);

        dmcf->tlast = t;
    }

    ngx_queue_insert_tail(&t->ctxs, &ctx->tlink);
    ctx->timeout = t;

    return NGX_OK;
}


/* the request no longer waits: its timer goes when no one else waits */

static void
ngx_http_deferred_batch_untimer(ngx_http_deferred_ctx_t *ctx)
{
    ngx_http_deferred_timeout_t    *t;
    ngx_http_deferred_main_conf_t  *dmcf;

    t = ctx->timeout;

    if (t == NULL) {
        return;
    }

    ngx_queue_remove(&ctx->tlink);
    ctx->timeout = NULL;

    if (!ngx_queue_empty(&t->ctxs) || t->firing) {
        return;
    }

    if (t->ev.timer_set) {
        ngx_del_timer(&t->ev);
    }

    dmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_deferred_module);

    if (dmcf->tlast == t) {
        dmcf->tlast = NULL;
    }

    ngx_queue_insert_head(&dmcf->tfree, &t->link);
}


/* the results of one group, or why there are none: exactly once */

void
ngx_http_deferred_batch_deliver(ngx_http_deferred_group_t *g,
    dq_enqueue_result_t *res, const char *failure)
{
    ngx_uint_t                 k;
    ngx_http_deferred_ctx_t   *ctx;

    ctx = g->ctx;

    if (res == NULL) {
        if (ngx_http_deferred_redis_ready(ctx->redis) != NGX_OK) {
            /* the connection is down (its attempt failed, or it was lost
             * while this waited): the outage is logged once by the
             * connection, each request at info (as ngx_http_deferred_reject;
             * t/97) */
            ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                          "deferred: 503 RedisUnavailable: redis %V: %s",
                          &ctx->redis->name, failure);

        } else {
            ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                          "deferred: redis %V: %s", &ctx->redis->name,
                          failure);
        }

        ngx_http_deferred_batch_fail(ctx, failure);
        return;
    }

    for (k = 0; k < g->n; k++) {
        ctx->tasks[g->index[k]].result = res[k];
    }

    if (--ctx->waiting) {
        return;
    }

    ngx_http_deferred_batch_untimer(ctx);

    ctx->state = NGX_HTTP_DEFERRED_STORED;
    ctx->done(ctx);
}


/* the requests still waiting at the deadline, one by one in the order
 * they came (a failure may end others': a stuck connection is dropped) */

static void
ngx_http_deferred_batch_timeout(ngx_event_t *ev)
{
    ngx_http_deferred_timeout_t *t = ev->data;

    ngx_queue_t                    *q;
    ngx_http_deferred_ctx_t        *ctx;
    ngx_http_deferred_main_conf_t  *dmcf;

    dmcf = NULL;
    t->firing = 1;

    while (!ngx_queue_empty(&t->ctxs)) {
        q = ngx_queue_head(&t->ctxs);
        ctx = ngx_queue_data(q, ngx_http_deferred_ctx_t, tlink);

        ngx_queue_remove(q);
        ctx->timeout = NULL;
        ctx->timed_out = 1;

        dmcf = ngx_http_get_module_main_conf(ctx->request,
                                             ngx_http_deferred_module);

        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "deferred: redis %V: no reply within deferred_timeout",
                      &ctx->redis->name);

        ngx_http_deferred_batch_fail(ctx, "Redis did not answer in time");

        /* after done(): the request may be gone, the connection is not */
    }

    t->firing = 0;

    if (dmcf) {
        if (dmcf->tlast == t) {
            dmcf->tlast = NULL;
        }

        ngx_queue_insert_head(&dmcf->tfree, &t->link);
    }
}


static void
ngx_http_deferred_batch_fail(ngx_http_deferred_ctx_t *ctx,
    const char *message)
{
    ngx_uint_t                  timed_out;
    ngx_http_deferred_redis_t  *rs;

    timed_out = ctx->timed_out;
    rs = ctx->redis;

    ngx_http_deferred_batch_cancel(ctx);

    ctx->state = NGX_HTTP_DEFERRED_FAILED;
    ctx->retry_after = 1;

    (void) ngx_http_deferred_error_body(ctx->request, ctx,
                                        NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "RedisUnavailable", NULL, message);
    ctx->done(ctx);

    if (timed_out) {
        /* a stuck connection: start over; other waiters get 503 now */
        ngx_http_deferred_redis_timed_out(rs);
    }
}


static void
ngx_http_deferred_batch_cancel(ngx_http_deferred_ctx_t *ctx)
{
    ngx_uint_t  i;

    for (i = 0; i < ctx->ngroups; i++) {
        ngx_http_deferred_merge_cancel(&ctx->groups[i]);
    }

    ngx_http_deferred_batch_untimer(ctx);
}


void
ngx_http_deferred_batch_cleanup(ngx_http_deferred_ctx_t *ctx)
{
    ngx_http_deferred_batch_cancel(ctx);
}


/* results -> status, JSON, variables */

/*
 * The reply is written straight into one pool buffer, byte for byte what
 * jansson's json_dumps(JSON_COMPACT) gave before: keys in insertion order,
 * '"', '\\' and control characters escaped (\b \f \n \r \t, others as
 * \u00XX, upper-case hex), other UTF-8 as is, a string that is not valid
 * UTF-8 becomes null (a task field) or is left out (an error field).
 */

#define NGX_HTTP_DEFERRED_TASK_JSON  256    /* fixed text of one object */


void
ngx_http_deferred_batch_results(ngx_http_deferred_ctx_t *ctx)
{
    u_char                    *p, *e, *b;
    size_t                     size, eta;
    const u_char              *num;
    ngx_int_t                  status;
    ngx_uint_t                 i, stored, conflict, emit;
    const char                *what;
    ngx_http_request_t        *r;
    ngx_http_deferred_task_t  *t;

    r = ctx->request;

    ctx->body.len = 0;

    ctx->var_id.data = ngx_pnalloc(r->pool,
                                   ctx->ntasks * (DQ_CLIENT_ID_MAX + 1));
    ctx->var_eta.data = ngx_pnalloc(r->pool, ctx->ntasks * (NGX_INT64_LEN + 1));
    if (ctx->var_id.data == NULL || ctx->var_eta.data == NULL) {
        ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return;
    }

    size = sizeof("[]\n");

    for (i = 0; i < ctx->ntasks; i++) {
        t = &ctx->tasks[i];
        size += NGX_HTTP_DEFERRED_TASK_JSON + 6 * t->id.len + 6 * t->queue.len
                + 6 * t->name.len + 6 * t->url.len;
    }

    b = ngx_pnalloc(r->pool, size);
    if (b == NULL) {
        ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return;
    }

    p = ctx->var_id.data;
    e = ctx->var_eta.data;
    stored = 0;
    conflict = 0;

    ctx->body.data = b;

    if (ctx->batch) {
        *b++ = '[';
    }

    for (i = 0; i < ctx->ntasks; i++) {
        t = &ctx->tasks[i];

        if (i) {
            *p++ = ',';
            *e++ = ',';
        }

        /* $deferred_task_id and _eta line up: a refused task has an empty
         * entry in both */
        if (t->result.status == DQ_OK) {
            p = ngx_cpymem(p, t->id.ptr, t->id.len);
        }

        /* a single task's reply is its object alone (there is one task) */

        emit = ctx->batch || i == 0;

        if (i && emit) {
            *b++ = ',';
        }

        if (emit) {
            /* the id, queue and name were checked to be [A-Za-z0-9_-]
             * (dq_request, ngx_http_deferred_enqueue_build): nothing to
             * escape */
            b = ngx_cpymem(b, "{\"id\":", sizeof("{\"id\":") - 1);
            b = (t->result.status == DQ_OK)
                ? ngx_http_deferred_json_plain(b, t->id)
                : ngx_cpymem(b, "null", 4);

            b = ngx_cpymem(b, ",\"queue\":", sizeof(",\"queue\":") - 1);
            b = ngx_http_deferred_json_plain(b, t->queue);

            b = ngx_cpymem(b, ",\"name\":", sizeof(",\"name\":") - 1);
            b = t->name.ptr ? ngx_http_deferred_json_plain(b, t->name)
                            : ngx_cpymem(b, "null", 4);

            if (t->url_default) {
                /* nothing to escape there (where most tasks go) */
                b = ngx_cpymem(b, ",\"url\":\"" DQ_DEFAULT_URL "\"",
                               sizeof(",\"url\":\"" DQ_DEFAULT_URL "\"") - 1);

            } else {
                b = ngx_cpymem(b, ",\"url\":", sizeof(",\"url\":") - 1);
                b = ngx_http_deferred_json_string(b, t->url);
            }
        }

        if (t->result.status == DQ_OK) {
            stored++;
            num = ngx_http_deferred_eta_text(t->result.eta_ms, &eta);
            e = ngx_cpymem(e, num, eta);

            if (emit) {
                b = t->result.existed
                    ? ngx_cpymem(b, ",\"status\":\"existed\",\"eta_ms\":",
                                 sizeof(",\"status\":\"existed\",\"eta_ms\":")
                                 - 1)
                    : ngx_cpymem(b, ",\"status\":\"created\",\"eta_ms\":",
                                 sizeof(",\"status\":\"created\",\"eta_ms\":")
                                 - 1);
                b = ngx_cpymem(b, num, eta);
                b = ngx_cpymem(b, ",\"eta\":\"", sizeof(",\"eta\":\"") - 1);
                b = ngx_http_deferred_rfc3339(b, t->result.eta_ms);
                b = ngx_cpymem(b, "\"}", 2);
            }

        } else {
            conflict++;
            what = t->result.status == DQ_ETOMBSTONE ? "TombstonedTask"
                                                     : "TaskAlreadyExists";
            if (emit) {
                b = ngx_sprintf(b, ",\"status\":\"%s\",\"error\":\"%s\"}",
                                what, what);
            }

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "deferred: task name \"%*s\" in queue \"%*s\": %s",
                          t->name.len, t->name.ptr,
                          t->queue.len, t->queue.ptr, what);
        }
    }

    if (ctx->batch) {
        *b++ = ']';
    }

    *b++ = '\n';
    ctx->body.len = b - ctx->body.data;

    ctx->var_id.len = p - ctx->var_id.data;
    ctx->var_eta.len = e - ctx->var_eta.data;

    if (conflict == 0) {
        status = NGX_HTTP_CREATED;

    } else if (stored == 0) {
        status = NGX_HTTP_CONFLICT;

    } else {
        status = 207;
    }

    ctx->status = status;
}


ngx_int_t
ngx_http_deferred_error_body(ngx_http_request_t *r,
    ngx_http_deferred_ctx_t *ctx, ngx_int_t status, const char *error,
    const char *field, const char *message)
{
    u_char  *p, *start;
    size_t   size;

    ctx->status = status;
    ctx->body.len = 0;

    size = sizeof("{,\"error\":\"\",\"field\":\"\",\"message\":\"\"}\n")
           + 6 * ngx_strlen(error)
           + (field ? 6 * ngx_strlen(field) : 0)
           + (message ? 6 * ngx_strlen(message) : 0);

    start = ngx_pnalloc(r->pool, size);
    if (start == NULL) {
        return NGX_ERROR;
    }

    *start = '{';
    p = start + 1;

    p = ngx_http_deferred_json_member(p, start + 1, "error", error);

    if (field && field[0]) {
        p = ngx_http_deferred_json_member(p, start + 1, "field", field);
    }

    if (message && message[0]) {
        p = ngx_http_deferred_json_member(p, start + 1, "message", message);
    }

    p = ngx_cpymem(p, "}\n", 2);

    ctx->body.data = start;
    ctx->body.len = p - start;

    return NGX_OK;
}


/* ,"key":"value" at p (no comma at first); left out if not valid UTF-8 */

static u_char *
ngx_http_deferred_json_member(u_char *p, u_char *first, const char *key,
    const char *value)
{
    u_char    *q;
    dq_str_t   s;

    q = p;

    if (p != first) {
        *q++ = ',';
    }

    *q++ = '"';
    q = ngx_cpymem(q, key, ngx_strlen(key));
    *q++ = '"';
    *q++ = ':';

    s.ptr = value;
    s.len = ngx_strlen(value);

    q = ngx_http_deferred_json_text(q, s);

    return q ? q : p;
}


/* a JSON string, or null when s is not valid UTF-8 */

static u_char *
ngx_http_deferred_json_string(u_char *p, dq_str_t s)
{
    u_char  *q;

    q = ngx_http_deferred_json_text(p, s);

    return q ? q : ngx_cpymem(p, "null", 4);
}


/* s quoted as it is: only for strings of [A-Za-z0-9_-] */

static u_char *
ngx_http_deferred_json_plain(u_char *p, dq_str_t s)
{
    *p++ = '"';
    p = ngx_cpymem(p, s.ptr, s.len);
    *p++ = '"';

    return p;
}


/*
 * s as a quoted JSON string at p (at most 6 * s.len + 2 bytes), or NULL
 * when s is not valid UTF-8 (overlong forms, surrogates and code points
 * above U+10FFFF included)
 */

static u_char *
ngx_http_deferred_json_text(u_char *p, dq_str_t s)
{
    u_char          c;
    uint32_t        cp, min;
    ngx_uint_t      n;
    const u_char   *s0, *end;

    static u_char   hex[] = "0123456789ABCDEF";

    s0 = (const u_char *) s.ptr;
    end = s0 + s.len;

    *p++ = '"';

    while (s0 < end) {
        c = *s0;

        if (c >= 0x20 && c < 0x80) {
            if (c == '"' || c == '\\') {
                *p++ = '\\';
            }

            *p++ = c;
            s0++;
            continue;
        }

        if (c < 0x20) {
            *p++ = '\\';

            switch (c) {
            case '\b': *p++ = 'b'; break;
            case '\f': *p++ = 'f'; break;
            case '\n': *p++ = 'n'; break;
            case '\r': *p++ = 'r'; break;
            case '\t': *p++ = 't'; break;
            default:
                *p++ = 'u'; *p++ = '0'; *p++ = '0';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 0xf];
            }

            s0++;
            continue;
        }

        /* a multi-byte sequence: copied as is once checked */

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1; cp = c & 0x1f; min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2; cp = c & 0x0f; min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3; cp = c & 0x07; min = 0x10000;

        } else {
            return NULL;
        }

        if ((size_t) (end - s0) <= n) {
            return NULL;
        }

        for (c = 1; c <= n; c++) {
            if ((s0[c] & 0xc0) != 0x80) {
                return NULL;
            }

            cp = (cp << 6) | (s0[c] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return NULL;
        }

        p = ngx_cpymem(p, s0, n + 1);
        s0 += n + 1;
    }

    *p++ = '"';

    return p;
}


/* decimal, at least width digits (zero-padded); no printf: three numbers
 * per task were a tenth of a worker's instructions with ngx_sprintf */

static u_char *
ngx_http_deferred_int(u_char *p, int64_t v, ngx_uint_t width)
{
    u_char         buf[NGX_INT64_LEN], *q;
    uint64_t       u;
    ngx_uint_t     d;

    static u_char  pairs[] = "00010203040506070809"
                             "10111213141516171819"
                             "20212223242526272829"
                             "30313233343536373839"
                             "40414243444546474849"
                             "50515253545556575859"
                             "60616263646566676869"
                             "70717273747576777879"
                             "80818283848586878889"
                             "90919293949596979899";

    u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;
    q = buf + sizeof(buf);

    /* two digits a division */

    while (u >= 10) {
        d = (ngx_uint_t) (u % 100) * 2;
        u /= 100;
        *--q = pairs[d + 1];
        *--q = pairs[d];
    }

    if (u || q == buf + sizeof(buf)) {
        *--q = (u_char) ('0' + u);
    }

    while ((ngx_uint_t) (buf + sizeof(buf) - q) < width) {
        *--q = '0';
    }

    if (v < 0) {
        *p++ = '-';
    }

    return ngx_cpymem(p, q, buf + sizeof(buf) - q);
}


/* an ETA's decimal digits (eta_ms), kept for the next ETA of the same
 * millisecond: the tasks of one merged call stored now share the call's
 * clock, so one conversion a call, not one a task */

static const u_char *
ngx_http_deferred_eta_text(int64_t ms, size_t *len)
{
    static size_t   n;
    static int64_t  cached = -1;
    static u_char   text[NGX_INT64_LEN + 1];

    if (ms != cached || n == 0) {
        n = ngx_http_deferred_int(text, ms, 1) - text;
        cached = ms;
    }

    *len = n;

    return text;
}


/* an ETA (ms >= 0) as "2026-11-21T10:00:00.000Z"; the text up to the
 * second is kept for the next ETA of the same second (a request's tasks,
 * the requests of one second: one ngx_gmtime a second, not one a task) */

static u_char *
ngx_http_deferred_rfc3339(u_char *p, int64_t ms)
{
    u_char         *q;
    int64_t         sec;
    ngx_tm_t        tm;
    ngx_uint_t      m;

    static size_t   len;
    static int64_t  cached = -1;
    static u_char   text[NGX_INT_T_LEN + sizeof("-11-21T10:00:00.")];

    sec = ms / 1000;

    if (sec != cached) {
        ngx_gmtime((time_t) sec, &tm);

        q = ngx_http_deferred_int(text, tm.ngx_tm_year, 4);
        *q++ = '-';
        q = ngx_http_deferred_int(q, tm.ngx_tm_mon, 2);
        *q++ = '-';
        q = ngx_http_deferred_int(q, tm.ngx_tm_mday, 2);
        *q++ = 'T';
        q = ngx_http_deferred_int(q, tm.ngx_tm_hour, 2);
        *q++ = ':';
        q = ngx_http_deferred_int(q, tm.ngx_tm_min, 2);
        *q++ = ':';
        q = ngx_http_deferred_int(q, tm.ngx_tm_sec, 2);
        *q++ = '.';

        len = q - text;
        cached = sec;
    }

    p = ngx_cpymem(p, text, len);

    m = (ngx_uint_t) (ms % 1000);
    *p++ = (u_char) ('0' + m / 100);
    *p++ = (u_char) ('0' + m / 10 % 10);
    *p++ = (u_char) ('0' + m % 10);
    *p++ = 'Z';

    return p;
}


ngx_int_t
ngx_http_deferred_send_response(ngx_http_request_t *r,
    ngx_http_deferred_ctx_t *ctx)
{
    ngx_table_elt_t  *h;

    static ngx_str_t  json = ngx_string("application/json");

    if (ctx->retry_after) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        ngx_str_set(&h->key, "Retry-After");
        ngx_str_set(&h->value, NGX_HTTP_DEFERRED_RETRY_AFTER);
    }

    return ngx_http_deferred_send_body(r, ctx->status, &json, &ctx->body);
}
