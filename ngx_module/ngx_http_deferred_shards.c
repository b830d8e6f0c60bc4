
/*
 * ngx_http_deferred_module: the shards of a queue.
 *
 * A sharded queue (docs/SCALING.md): each shard is a queue of its own
 * here ("q#1"...: batch.c groups a request's tasks by shard), so its
 * tasks merge per shard. How many shards a queue has is read from Redis
 * (dq_cmd_shards) without waiting: ngx_http_deferred_shards_count answers
 * from this worker's table, 0 while a queue's count is not known yet
 * (the first groups of a queue in a worker process are held until the
 * answer is in, one round trip; a read that fails or cannot be sent
 * counts as 1, "guessed": a named or keyed task then gets 503 at once),
 * and asks again in the background once the answer is DQ_SHARDS_TTL_MS
 * old. At most NGX_HTTP_DEFERRED_SHARDS queues are kept (least recently
 * used goes).
 *
 * The rest of a shard's way is here too: which shard a task of a request
 * goes to (ngx_http_deferred_shards_task), and the groups held for a
 * count, released and split by shard when it is in
 * (ngx_http_deferred_shards_release).
 */


#include "ngx_http_deferred_module.h"


#define NGX_HTTP_DEFERRED_SHARDS       64


struct ngx_http_deferred_shards_s {
    ngx_uint_t                     hash;
    size_t                         len;         /* 0: free */
    u_char                         name[DQ_QUEUE_NAME_MAX];
    ngx_uint_t                     n;           /* 0: not known yet */
    ngx_http_deferred_redis_t     *rs;
    ngx_msec_t                     read;        /* when n was answered */
    ngx_msec_t                     known;       /* when n was last read
                                                   (not guessed) */
    ngx_msec_t                     used;        /* last asked for */
    dq_cmd_t                       cmd;         /* the HGET in flight */
    unsigned                       pending:1;
    unsigned                       guessed:1;   /* n = 1: its read failed */
};


static void ngx_http_deferred_shards_read(void *data, redisReply *reply);
static ngx_uint_t ngx_http_deferred_shards_placed(
    ngx_http_deferred_group_t *g);
static ngx_int_t ngx_http_deferred_shards_split(ngx_http_deferred_group_t *g,
    ngx_uint_t n);


void
ngx_http_deferred_shards_init(ngx_http_deferred_redis_t *rs)
{
    rs->shards = NULL;
    rs->nshards = 0;
    rs->shard_rr = 0;
}


/* the worker exits (its connections already freed: no reply can come):
 * the entries' command buffers, which are heap, not the cycle's pool
 * (review 9N, finding 2) */

void
ngx_http_deferred_shards_exit(ngx_http_deferred_redis_t *rs)
{
    ngx_uint_t  i;

    for (i = 0; i < rs->nshards; i++) {
        dq_cmd_free(&rs->shards[i].cmd);
    }
}


/* How many shards the queue has, as this worker process knows it, or 0
 * while it is not known (the groups of such a queue are held: merge_flush;
 * also when every entry is being read: an answer wakes them);
 * asks Redis again, without waiting, when it is unknown or
 * DQ_SHARDS_TTL_MS old. *guessed: the 1 returned is not read (the last
 * read failed, or no memory for the entry): good enough for a task free
 * to go to any shard, not for a named or keyed one (merge_flush fails
 * those with 503). hash: ngx_hash_key of the queue (the caller's, which
 * it keeps for the group). */

ngx_uint_t
ngx_http_deferred_shards_count(ngx_http_deferred_redis_t *rs, dq_str_t queue,
    ngx_uint_t hash, ngx_uint_t *guessed)
{
    ngx_uint_t                   i;
    ngx_http_deferred_shards_t  *e, *lru;

    e = NULL;
    lru = NULL;
    *guessed = 0;

    for (i = 0; i < rs->nshards; i++) {
        if (rs->shards[i].hash == hash && rs->shards[i].len == queue.len
            && ngx_memcmp(rs->shards[i].name, queue.ptr, queue.len) == 0)
        {
            e = &rs->shards[i];
            break;
        }

        /* the least recently used goes first, an unsharded queue's
         * before a sharded one's (forgetting N sends a sharded queue's
         * tasks to shard 0 until it is read again) */
        if (!rs->shards[i].pending
            && (lru == NULL
                || (rs->shards[i].n > 1) < (lru->n > 1)
                || ((rs->shards[i].n > 1) == (lru->n > 1)
                    && rs->shards[i].used < lru->used)))
        {
            lru = &rs->shards[i];
        }
    }

    if (e == NULL) {
        if (queue.len == 0 || queue.len > DQ_QUEUE_NAME_MAX) {
            return 1;
        }

        if (rs->shards == NULL) {
            /* the cycle's pool: freed when the worker process exits */
            rs->shards = ngx_pcalloc(ngx_cycle->pool,
                                     NGX_HTTP_DEFERRED_SHARDS
                                     * sizeof(ngx_http_deferred_shards_t));
            if (rs->shards == NULL) {
                *guessed = 1;
                return 1;
            }
        }

        if (rs->nshards < NGX_HTTP_DEFERRED_SHARDS) {
            e = &rs->shards[rs->nshards++];
            dq_cmd_init(&e->cmd);

        } else if (lru) {
            e = lru;

        } else {
            return 0;           /* every entry is being read: held */
        }

        e->hash = hash;
        e->len = queue.len;
        ngx_memcpy(e->name, queue.ptr, queue.len);
        e->n = 0;
        e->guessed = 0;
        e->rs = rs;
        e->read = 0;
        e->known = 0;
    }

    e->used = ngx_current_msec;

    if (e->n != 0 && !e->guessed
        && ngx_current_msec - e->known > DQ_SHARDS_KEEP_MS)
    {
        /* read too long ago to place a named task by (its re-reads
         * refused, or the queue idle): not known until the answer, which
         * the groups wait for (lib dq_shards_unread; review RM finding
         * 5: a stale N stored a second live copy in another shard) */
        e->n = 0;
    }

    if (!e->pending
        && (e->n == 0 || ngx_current_msec - e->read >= DQ_SHARDS_TTL_MS)
        && ngx_http_deferred_redis_ready(rs) == NGX_OK)
    {
        if (dq_cmd_shards(&e->cmd, queue) == DQ_OK
            && ngx_http_deferred_redis_eval(rs, &e->cmd,
                                        ngx_http_deferred_shards_read, e)
               != NULL)
        {
            e->pending = 1;

        } else {
            /* not sent (a cluster slot without a master, its node in
             * back-off): a failed read, no answer would ever release the
             * groups held for it */
            ngx_http_deferred_shards_read(e, NULL);
        }
    }

    *guessed = e->guessed;

    return e->n;
}


static void
ngx_http_deferred_shards_read(void *data, redisReply *reply)
{
    int                          guessed;
    int64_t                      again;
    unsigned                     n;
    ngx_http_deferred_shards_t  *e = data;

    e->pending = 0;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* lib's rule, the C client's too: a known N kept, else 1
         * guessed (the held groups free to go anywhere go to shard 0
         * rather than wait, the named and keyed ones fail: 503); the
         * attempt stamped so that the next comes when the rule says, not
         * with every task of the batch (each try a failed send, an ERR
         * line, a map refresh) */
        if (e->n == 0 || e->guessed) {
            ngx_log_error(NGX_LOG_ERR, e->rs->log, 0,
                          "deferred: redis %V: the shard count of queue "
                          "\"%*s\" could not be read: %s", &e->rs->name,
                          e->len, e->name,
                          reply ? reply->str : "not sent or no answer");
        }

        n = (unsigned) e->n;
        guessed = e->guessed;
        again = dq_shards_unread(&n, &guessed,
                                 (int64_t) (ngx_current_msec - e->known));

        e->n = n;
        e->guessed = guessed ? 1 : 0;
        e->read = ngx_current_msec - DQ_SHARDS_TTL_MS + (ngx_msec_t) again;

    } else {
        e->n = reply->type == REDIS_REPLY_STRING
               ? dq_shards_parse(reply->str, reply->len) : 1;
        e->guessed = 0;
        e->read = ngx_current_msec;
        e->known = ngx_current_msec;
    }

    /* the groups held for it */
    if (!ngx_queue_empty(&e->rs->queued) && !e->rs->flush.posted) {
        ngx_post_event(&e->rs->flush, &ngx_posted_events);
    }
}


/* A task's shard: t->shard is its queue, or for a sharded queue the
 * shard's name, by its name (dedup holds there), else by the client's id
 * (a retry finds the stored task), else the request's (rr). *wait: the
 * queue's count is not known yet, or only guessed for a named or keyed
 * task: its group is held (shards_release). memo (zeroed by the caller
 * once per request) keeps the last queue's count and its unnamed tasks'
 * shard name: a batch to one queue looks its count up and formats that
 * name once, not once a task. NGX_ERROR: out of memory. */

ngx_int_t
ngx_http_deferred_shards_task(ngx_http_deferred_ctx_t *ctx,
    ngx_http_deferred_task_t *t, ngx_uint_t rr, ngx_uint_t *wait,
    ngx_http_deferred_shard_memo_t *memo)
{
    u_char                        *p;
    ngx_uint_t                     k, spread;
    ngx_http_deferred_loc_conf_t  *dlcf;

    if (memo->queue.ptr == NULL || memo->queue.len != t->queue.len
        || ngx_memcmp(memo->queue.ptr, t->queue.ptr, t->queue.len) != 0)
    {
        dlcf = ngx_http_get_module_loc_conf(ctx->request,
                                            ngx_http_deferred_module);

        memo->queue = t->queue;
        memo->hash = ngx_hash_key((u_char *) t->queue.ptr, t->queue.len);
        memo->guessed = 0;
        memo->n = dlcf->redis
                  ? ngx_http_deferred_shards_count(dlcf->redis, t->queue,
                                                   memo->hash, &memo->guessed)
                  : 1;
        memo->spread.ptr = NULL;
        memo->spread.len = 0;
    }

    t->shard = t->queue;

    /* not known yet: held (shards_release); a named or keyed task never
     * goes by a guess (held, then 503 if still a guess) */
    *wait = memo->n == 0
            || !dq_shards_may_place((int) memo->guessed,
                                    t->name.ptr != NULL || t->keyed);

    if (memo->n <= 1) {
        return NGX_OK;
    }

    spread = t->name.ptr == NULL && !t->keyed;

    if (spread && memo->spread.ptr) {
        t->shard = memo->spread;
        return NGX_OK;
    }

    k = t->name.ptr ? dq_shard_of(t->name, memo->n)
        : t->keyed ? dq_shard_of(t->id, memo->n) : rr % memo->n;

    p = ngx_pnalloc(ctx->request->pool, DQ_SHARD_NAME_MAX + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    t->shard.ptr = (const char *) p;
    t->shard.len = dq_shard_name((char *) p, DQ_SHARD_NAME_MAX + 1,
                                 t->queue, k);

    if (spread) {
        memo->spread = t->shard;
    }

    return NGX_OK;
}


/* the merger's flush, before it merges: the held groups whose count is
 * in go on, split by shard */

void
ngx_http_deferred_shards_release(ngx_http_deferred_redis_t *rs)
{
    ngx_uint_t                  n, guessed;
    ngx_queue_t                *q, *next;
    ngx_http_deferred_group_t  *g;

    /*
     * Groups of a queue whose shard count was not known when their request
     * was read: held until it is (its answer posts this event again), then
     * split by shard (a named or keyed task to its own shard:
     * ngx_http_deferred_shards_split, whose new groups join the list's
     * tail and this walk).
     */

    for (q = ngx_queue_head(&rs->queued);
         q != ngx_queue_sentinel(&rs->queued);
         q = next)
    {
        next = ngx_queue_next(q);
        g = ngx_queue_data(q, ngx_http_deferred_group_t, link);

        if (!g->shard_wait) {
            continue;
        }

        n = ngx_http_deferred_shards_count(rs, g->queue, g->hash, &guessed);
        if (n == 0) {
            continue;                   /* still held */
        }

        g->shard_wait = 0;

        if (!dq_shards_may_place((int) guessed,
                                 ngx_http_deferred_shards_placed(g)))
        {
            /* a name or client id must land on its own shard: never a
             * guess (a second copy on another shard), 503 instead */
            ngx_http_deferred_batch_deliver(g, NULL,
                                            "the queue's shard count could "
                                            "not be read");
            next = ngx_queue_head(&rs->queued);
            continue;
        }

        if (n > 1 && ngx_http_deferred_shards_split(g, n) != NGX_OK) {
            /* out of memory: its request fails (and leaves the list) */
            ngx_http_deferred_batch_deliver(g, NULL, "out of memory");
            next = ngx_queue_head(&rs->queued);
        }
    }
}


/* the group has a task that must go to one shard: named or keyed */

static ngx_uint_t
ngx_http_deferred_shards_placed(ngx_http_deferred_group_t *g)
{
    ngx_uint_t                 k;
    ngx_http_deferred_task_t  *t;

    for (k = 0; k < g->n; k++) {
        t = &g->ctx->tasks[g->index[k]];

        if (t->name.ptr != NULL || t->keyed) {
            return 1;
        }
    }

    return 0;
}


/*
 * A group held because its queue's shard count was not known (all its
 * tasks in shard 0's group): the count is in, n > 1. Its named and keyed
 * tasks belong to their shards: the group becomes the group of one shard
 * its tasks use (0 when any stays there), and each other shard used gets
 * a new group of the same request (ctx->groups has room for one per
 * task), queued after it. NGX_ERROR: out of memory (nothing moved).
 */

static ngx_int_t
ngx_http_deferred_shards_split(ngx_http_deferred_group_t *g, ngx_uint_t n)
{
    u_char                     *p;
    dq_str_t                    name[DQ_MAX_SHARDS];
    ngx_uint_t                  k, s, m, keep, next, cnt[DQ_MAX_SHARDS],
                               *sh;
    ngx_http_request_t         *r;
    ngx_http_deferred_ctx_t    *ctx;
    ngx_http_deferred_task_t   *t;
    ngx_http_deferred_group_t  *ng[DQ_MAX_SHARDS];

    ctx = g->ctx;
    r = ctx->request;

    if (n > DQ_MAX_SHARDS) {
        return NGX_ERROR;
    }

    /* up to deferred_max_batch tasks: each one's shard, once */
    sh = ngx_palloc(r->pool, g->n * sizeof(ngx_uint_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(cnt, sizeof(cnt));
    ngx_memzero(name, sizeof(name));

    for (k = 0; k < g->n; k++) {
        t = &ctx->tasks[g->index[k]];
        sh[k] = t->name.ptr ? dq_shard_of(t->name, n)
                : t->keyed ? dq_shard_of(t->id, n) : 0;
        cnt[sh[k]]++;
    }

    keep = 0;
    while (cnt[keep] == 0) {        /* g->n >= 1: one is used */
        keep++;
    }

    next = ctx->ngroups;

    for (s = 0; s < n; s++) {
        ng[s] = NULL;

        if (cnt[s] == 0) {
            continue;
        }

        name[s] = g->queue;

        if (s > 0) {
            p = ngx_pnalloc(r->pool, DQ_SHARD_NAME_MAX + 1);
            if (p == NULL) {
                return NGX_ERROR;
            }

            name[s].ptr = (const char *) p;
            name[s].len = dq_shard_name((char *) p, DQ_SHARD_NAME_MAX + 1,
                                        g->queue, s);
            if (name[s].len == 0) {
                return NGX_ERROR;
            }
        }

        if (s == keep) {
            continue;
        }

        if (next == ctx->ntasks) {
            return NGX_ERROR;       /* cannot be: a group per task */
        }

        ng[s] = &ctx->groups[next++];
        ngx_memzero(ng[s], sizeof(ngx_http_deferred_group_t));
        ng[s]->ctx = ctx;
        ng[s]->tombstone = g->tombstone;
        ng[s]->queue = name[s];
        ng[s]->hash = ngx_hash_key((u_char *) name[s].ptr, name[s].len);
        ng[s]->items = ngx_pcalloc(r->pool,
                                   cnt[s] * sizeof(dq_enqueue_item_t));
        ng[s]->index = ngx_pcalloc(r->pool, cnt[s] * sizeof(ngx_uint_t));

        if (ng[s]->items == NULL || ng[s]->index == NULL) {
            return NGX_ERROR;
        }
    }

    /* nothing can fail from here on */

    for (k = 0, m = 0; k < g->n; k++) {
        t = &ctx->tasks[g->index[k]];
        s = sh[k];
        t->shard = name[s];

        if (s == keep) {
            g->items[m] = g->items[k];
            g->index[m] = g->index[k];
            m++;
            continue;
        }

        ng[s]->items[ng[s]->n] = g->items[k];
        ng[s]->index[ng[s]->n] = g->index[k];
        ng[s]->n++;
    }

    g->n = m;
    g->queue = name[keep];
    g->hash = ngx_hash_key((u_char *) g->queue.ptr, g->queue.len);
    ctx->ngroups = next;

    for (s = 0; s < n; s++) {
        if (ng[s] != NULL) {
            ctx->waiting++;
            ngx_http_deferred_merge_add(ng[s]);
        }
    }

    return NGX_OK;
}
