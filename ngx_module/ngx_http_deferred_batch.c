
/*
 * ngx_http_deferred_module: the tasks of one request.
 *
 * Fixes each task's id and envelope (lib's dq_id_new, dq_envelope_encode)
 * before anything talks to Redis, groups the tasks by queue, hands the
 * groups to the merger (one script call per queue, shared with concurrent
 * requests: ngx_http_deferred_merge.c), waits for every group's result or
 * deferred_timeout; the results become a status, a JSON body and the
 * $deferred_task_* values in ngx_http_deferred_reply.c.
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
