
/*
 * ngx_http_deferred_module: one script call for the tasks of many requests.
 *
 * A request's tasks of one queue (a group) are not sent at once: they wait
 * on their Redis' list until the end of the current event loop iteration
 * (a posted event), when every waiting group of the same queue and
 * tombstone window is copied into ONE enqueue command (dq_cmd_enqueue),
 * up to a size cap. Each group stays whole inside one command, so a
 * request's tasks of one queue are still stored atomically; Redis runs the
 * script once for many tasks instead of once per request.
 *
 * A merged command owns copies of everything it sends (ids, envelopes,
 * names), so it outlives the requests in it and can be re-sent as EVAL on
 * NOSCRIPT. A request that goes away (timeout, client gone) is detached
 * from its slot; the reply is split by slot and delivered to the groups
 * still attached (ngx_http_deferred_batch_deliver), each exactly once.
 *
 * While NGX_HTTP_DEFERRED_INFLIGHT calls of a queue are out on a
 * connection, its groups that make a partial call wait on the list, and
 * the reply posts the flush that sends them together, one bigger call
 * instead of one per loop iteration (Redis pays a fixed cost per call).
 * Groups that fill a call (a cap reached, or the next group does not
 * fit: waiting cannot make it bigger) go at once, calls out or not: a
 * round trip per full call would hold batches past deferred_timeout on
 * a slow link. A request alone finds nothing out and goes at the end of
 * its iteration, as before. Waiting groups stay the requests' own: their
 * timer or a lost connection fails them, never sent. The count is per
 * queue key entry: a shard ("q#1") has its own; past NGX_HTTP_DEFERRED_QKEYS
 * entries with calls out, further queues go without the cap.
 *
 * Per queue, each worker process keeps the script's key strings
 * (formatted once, not per command) and when it last sent the queue's
 * SADD to dq:queues: at most once per connection and second, not once per
 * command. At most NGX_HTTP_DEFERRED_QKEYS queues per Redis are kept
 * (least recently used goes first), so a client naming many queues costs
 * formatting, never memory.
 */


#include "ngx_http_deferred_module.h"


#define NGX_HTTP_DEFERRED_MERGE_ITEMS  1000
#define NGX_HTTP_DEFERRED_MERGE_BYTES  (4 * 1024 * 1024)
#define NGX_HTTP_DEFERRED_QKEYS        64
#define NGX_HTTP_DEFERRED_REGISTER_MS  1000
#define NGX_HTTP_DEFERRED_SORT_STACK   64  /* groups a flush sorts in a
                                              table on its stack */
#define NGX_HTTP_DEFERRED_INFLIGHT     1    /* enqueue calls a queue has
                                               out on a connection */


struct ngx_http_deferred_qkeys_s {
    ngx_queue_t                    lru;
    ngx_uint_t                     hash;
    ngx_uint_t                     generation;  /* of its last SADD */
    ngx_msec_t                     registered;  /* when */
    ngx_uint_t                     inflight;    /* its calls not answered */
    size_t                         len;
    u_char                         name[DQ_SHARD_NAME_MAX];
    dq_enqueue_keys_t              keys;
};


struct ngx_http_deferred_merged_s {
    ngx_http_deferred_redis_t     *redis;
    dq_cmd_t                       cmd;
    ngx_http_deferred_redis_cmd_t *rcmd;        /* while not replied: the
                                                   WAIT goes behind it */
    dq_enqueue_item_t             *items;
    ngx_uint_t                     n;
    dq_str_t                       queue;       /* points into the copy */
    ngx_http_deferred_qkeys_t     *qk;          /* its keys, or NULL */
    ngx_http_deferred_qkeys_t     *counted;     /* in qk->inflight */
    ngx_http_deferred_group_t    **members;     /* NULL: detached */
    ngx_uint_t                    *offsets;     /* first item of a member */
    ngx_uint_t                     nmembers;

    /* with "replicas=": the results wait for WAIT's answer */
    dq_enqueue_result_t           *res;
    const char                    *failure;
    unsigned                       waiting:1;   /* a WAIT is out */
    unsigned                       sadd:1;      /* register the queue */
    unsigned                       replied:1;   /* the script answered */
};


static void ngx_http_deferred_merge_flush(ngx_event_t *ev);
static void ngx_http_deferred_merge_sort_free(void *heads, void *stack);
static ngx_uint_t ngx_http_deferred_merge_fit(ngx_http_deferred_group_t *first,
    ngx_uint_t *np, size_t *bytesp, ngx_uint_t *nmembersp);
static ngx_int_t ngx_http_deferred_merge_build(ngx_http_deferred_redis_t *rs,
    ngx_http_deferred_group_t **chain, ngx_http_deferred_merged_t **mp);
static void ngx_http_deferred_merge_reply(void *data, redisReply *reply);
static void ngx_http_deferred_merge_registered(void *data, redisReply *reply);
static void ngx_http_deferred_merge_waited(void *data, redisReply *reply);
static void ngx_http_deferred_merge_finish(ngx_http_deferred_merged_t *m);
static void ngx_http_deferred_merge_deliver(ngx_http_deferred_merged_t *m,
    dq_enqueue_result_t *res, const char *failure);
static void ngx_http_deferred_merge_free(ngx_http_deferred_merged_t *m);
static ngx_http_deferred_qkeys_t *ngx_http_deferred_merge_qkeys(
    ngx_http_deferred_redis_t *rs, dq_str_t queue, ngx_uint_t hash);


void
ngx_http_deferred_merge_init(ngx_http_deferred_redis_t *rs)
{
    ngx_queue_init(&rs->queued);

    ngx_memzero(&rs->flush, sizeof(ngx_event_t));
    rs->flush.handler = ngx_http_deferred_merge_flush;
    rs->flush.data = rs;
    rs->flush.log = rs->log;

    rs->qkeys = NULL;
    rs->nqkeys = 0;
    ngx_queue_init(&rs->qlru);

    ngx_http_deferred_shards_init(rs);
}


void
ngx_http_deferred_merge_add(ngx_http_deferred_group_t *g)
{
    ngx_http_deferred_redis_t  *rs = g->ctx->redis;

    /* (g->hash: its queue's, set where the group was made, not at each
     * flush it waits through) */

    ngx_queue_insert_tail(&rs->queued, &g->link);
    g->queued = 1;

    if (!rs->flush.posted) {
        ngx_post_event(&rs->flush, &ngx_posted_events);
    }
}


/* the connection's setup answered OK: what waited for it goes now */

void
ngx_http_deferred_merge_ready(ngx_http_deferred_redis_t *rs)
{
    if (!ngx_queue_empty(&rs->queued) && !rs->flush.posted) {
        ngx_post_event(&rs->flush, &ngx_posted_events);
    }
}


/* the connection failed before its setup answered: 503 for the waiting */

void
ngx_http_deferred_merge_fail_queued(ngx_http_deferred_redis_t *rs,
    const char *failure)
{
    ngx_http_deferred_group_t  *g;

    while (!ngx_queue_empty(&rs->queued)) {
        g = ngx_queue_data(ngx_queue_head(&rs->queued),
                           ngx_http_deferred_group_t, link);

        /* every group of the request leaves the list (batch_cancel)
         * before its request may be freed: g is not touched after */
        ngx_http_deferred_batch_deliver(g, NULL, failure);
    }
}


void
ngx_http_deferred_merge_cancel(ngx_http_deferred_group_t *g)
{
    if (g->queued) {
        ngx_queue_remove(&g->link);
        g->queued = 0;
    }

    if (g->merged) {
        g->merged->members[g->slot] = NULL;
        g->merged = NULL;
    }
}


static void
ngx_http_deferred_merge_flush(ngx_event_t *ev)
{
    ngx_http_deferred_redis_t  *rs = ev->data;

    size_t                        bytes;
    ngx_int_t                     rc;
    ngx_uint_t                    count, nslots, norder, j, k, *order;
    ngx_uint_t                    n, nmembers;
    ngx_queue_t                  *q;
    ngx_http_deferred_qkeys_t    *qk;
    ngx_http_deferred_group_t   **heads, **tails, *g, *chain;
    ngx_http_deferred_merged_t   *m;
    ngx_http_deferred_group_t    *stack[NGX_HTTP_DEFERRED_SORT_STACK * 5];

    if (ngx_http_deferred_redis_ready(rs) != NGX_OK) {

        if (ngx_http_deferred_redis_connecting(rs) != NGX_OK) {
            ngx_http_deferred_merge_fail_queued(rs, "Redis is not reachable");
        }

        /* connecting: sent once the setup answered OK (merge_ready) */
        return;
    }

    ngx_http_deferred_shards_release(rs);

again:

    if (ngx_queue_empty(&rs->queued)) {
        return;
    }

    /*
     * The waiting groups by queue and tombstone window, in order of first
     * appearance: an open-addressing table of chains, so that many
     * distinct queues cost O(groups), not O(groups x queues).
     */

    count = 0;

    for (q = ngx_queue_head(&rs->queued);
         q != ngx_queue_sentinel(&rs->queued);
         q = ngx_queue_next(q))
    {
        count++;
    }

    for (nslots = 4; nslots < 2 * count; nslots *= 2) { /* void */ }

    /* up to NGX_HTTP_DEFERRED_SORT_STACK groups on the stack (the usual
     * flush: no malloc and free per call) */
    if (nslots <= NGX_HTTP_DEFERRED_SORT_STACK * 2) {
        heads = stack;
        ngx_memzero(heads, nslots * sizeof(ngx_http_deferred_group_t *));

    } else {
        heads = ngx_calloc(2 * nslots * sizeof(ngx_http_deferred_group_t *)
                           + count * sizeof(ngx_uint_t), rs->log);
    }

    if (heads == NULL) {
        ngx_http_deferred_batch_deliver(
            ngx_queue_data(ngx_queue_head(&rs->queued),
                           ngx_http_deferred_group_t, link),
            NULL, "out of memory");
        goto again;
    }

    tails = heads + nslots;
    order = (ngx_uint_t *) (tails + nslots);
    norder = 0;

    for (q = ngx_queue_head(&rs->queued);
         q != ngx_queue_sentinel(&rs->queued);
         q = ngx_queue_next(q))
    {
        g = ngx_queue_data(q, ngx_http_deferred_group_t, link);
        g->bucket_next = NULL;

        if (g->shard_wait) {
            continue;                   /* held: its shard count */
        }

        j = (g->hash ^ (ngx_uint_t) g->tombstone) & (nslots - 1);

        for ( ;; ) {
            if (heads[j] == NULL) {
                heads[j] = g;
                tails[j] = g;
                order[norder++] = j;
                break;
            }

            if (heads[j]->hash == g->hash
                && heads[j]->tombstone == g->tombstone
                && heads[j]->queue.len == g->queue.len
                && ngx_memcmp(heads[j]->queue.ptr, g->queue.ptr,
                              g->queue.len)
                   == 0)
            {
                tails[j]->bucket_next = g;
                tails[j] = g;
                break;
            }

            j = (j + 1) & (nslots - 1);
        }
    }

    for (k = 0; k < norder; k++) {
        chain = heads[order[k]];

        while (chain) {

            qk = ngx_http_deferred_merge_qkeys(rs, chain->queue, chain->hash);

            if (qk && qk->inflight >= NGX_HTTP_DEFERRED_INFLIGHT
                && !ngx_http_deferred_merge_fit(chain, &n, &bytes,
                                                &nmembers))
            {
                /* the queue's call is out and these make a partial
                 * call: they wait for its reply, to go in a bigger one
                 * (merge_reply posts this event again); a full call
                 * gains nothing by waiting and goes now */
                break;
            }

            rc = ngx_http_deferred_merge_build(rs, &chain, &m);

            if (rc != NGX_OK) {
                if (rc == NGX_ERROR) {
                    /* out of memory: fail the first waiting group (its
                     * request leaves the list) */
                    ngx_http_deferred_batch_deliver(chain, NULL,
                                                    "out of memory");
                }

                /* a failure may have taken other groups off the list:
                 * the chains are rebuilt */
                ngx_http_deferred_merge_sort_free(heads, stack);
                goto again;
            }

            m->rcmd = ngx_http_deferred_redis_eval(rs, &m->cmd,
                                          ngx_http_deferred_merge_reply, m);

            if (m->rcmd == NULL) {
                ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                              "deferred: redis %V unavailable", &rs->name);

                ngx_http_deferred_merge_sort_free(heads, stack);
                ngx_http_deferred_merge_deliver(m, NULL,
                                                "Redis is not reachable");
                ngx_http_deferred_merge_free(m);

                if (rs->nseeds) {
                    /* a cluster: only this queue's node is down; the
                     * others' groups still go */
                    goto again;
                }

                ngx_http_deferred_merge_fail_queued(rs,
                                                    "Redis is not reachable");
                return;
            }

            if (m->qk) {
                m->qk->inflight++;
                m->counted = m->qk;
            }

            /* the queue in dq:queues (what deferred-cli stats and the
             * operators list; queues, not shards): pipelined, its answer
             * not waited for */
            if (m->sadd
                && ngx_http_deferred_redis_register(rs,
                                       dq_shard_base(m->queue),
                                       ngx_http_deferred_merge_registered,
                                       m->qk)
                   != NGX_OK
                && m->qk)
            {
                m->qk->generation = 0;      /* not sent: next time */
            }

            if (rs->replicas) {
                m->waiting = 1;

                if (ngx_http_deferred_redis_wait(rs, m->rcmd,
                                                 ngx_http_deferred_merge_waited,
                                                 m)
                    != NGX_OK)
                {
                    /* the script's reply still comes: it fails the tasks */
                    m->waiting = 0;
                    m->failure = "cannot wait for replicas";
                }
            }
        }
    }

    ngx_http_deferred_merge_sort_free(heads, stack);
}


static void
ngx_http_deferred_merge_sort_free(void *heads, void *stack)
{
    if (heads != stack) {
        ngx_free(heads);
    }
}


/*
 * What of a chain fits one command: n tasks in its first nmembers groups
 * (the first always, whatever its size), bytes of copies. 1: the command
 * is full, waiting cannot make it bigger (a cap is reached, or the next
 * group of the chain does not fit); 0: a partial command.
 */

static ngx_uint_t
ngx_http_deferred_merge_fit(ngx_http_deferred_group_t *first,
    ngx_uint_t *np, size_t *bytesp, ngx_uint_t *nmembersp)
{
    size_t                      size, bytes;
    ngx_uint_t                  k, n, nmembers;
    ngx_http_deferred_group_t  *g;

    n = 0;
    nmembers = 0;
    bytes = first->queue.len;

    for (g = first; g; g = g->bucket_next) {
        size = 0;

        for (k = 0; k < g->n; k++) {
            size += g->items[k].id.len + g->items[k].envelope.len
                    + g->items[k].name.len;
        }

        if (nmembers
            && (n + g->n > NGX_HTTP_DEFERRED_MERGE_ITEMS
                || bytes + size > NGX_HTTP_DEFERRED_MERGE_BYTES))
        {
            break;
        }

        n += g->n;
        bytes += size;
        nmembers++;
    }

    *np = n;
    *bytesp = bytes;
    *nmembersp = nmembers;

    return g != NULL || n >= NGX_HTTP_DEFERRED_MERGE_ITEMS
           || bytes >= NGX_HTTP_DEFERRED_MERGE_BYTES;
}


/*
 * Takes the groups of one chain (same queue and tombstone window, in
 * order), as many as fit the caps, off the list into a new command;
 * *chain moves past them. NGX_ERROR: no memory, nothing taken;
 * NGX_DECLINED: the groups taken have been failed already.
 */

static ngx_int_t
ngx_http_deferred_merge_build(ngx_http_deferred_redis_t *rs,
    ngx_http_deferred_group_t **chain, ngx_http_deferred_merged_t **mp)
{
    u_char                      *p;
    dq_str_t                     queue;
    size_t                       bytes;
    ngx_uint_t                   i, k, n, nmembers;
    dq_enqueue_item_t           *it;
    ngx_http_deferred_qkeys_t   *qk;
    ngx_http_deferred_group_t   *first, *g, *next;
    ngx_http_deferred_merged_t  *m;

    first = *chain;

    (void) ngx_http_deferred_merge_fit(first, &n, &bytes, &nmembers);

    m = ngx_alloc(sizeof(ngx_http_deferred_merged_t)
                  + n * sizeof(dq_enqueue_item_t)
                  + nmembers * (sizeof(void *) + sizeof(ngx_uint_t))
                  + bytes, rs->log);
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->redis = rs;
    m->rcmd = NULL;
    m->counted = NULL;
    m->n = n;
    m->res = NULL;
    m->failure = NULL;
    m->waiting = 0;
    m->replied = 0;
    m->sadd = 1;
    m->nmembers = nmembers;
    m->items = (dq_enqueue_item_t *) (m + 1);
    m->members = (ngx_http_deferred_group_t **) (m->items + n);
    m->offsets = (ngx_uint_t *) (m->members + nmembers);
    p = (u_char *) (m->offsets + nmembers);

    /* copy: the command must not depend on any request's memory */

    it = m->items;
    i = 0;

    for (g = first; g && i < nmembers; g = next) {
        next = g->bucket_next;

        m->members[i] = g;
        m->offsets[i] = it - m->items;

        for (k = 0; k < g->n; k++, it++) {
            *it = g->items[k];

            it->id.ptr = (const char *) p;
            p = ngx_cpymem(p, g->items[k].id.ptr, g->items[k].id.len);

            it->envelope.ptr = (const char *) p;
            p = ngx_cpymem(p, g->items[k].envelope.ptr,
                           g->items[k].envelope.len);

            if (g->items[k].name.ptr) {
                it->name.ptr = (const char *) p;
                p = ngx_cpymem(p, g->items[k].name.ptr, g->items[k].name.len);
            }
        }

        ngx_queue_remove(&g->link);
        g->queued = 0;
        g->merged = m;
        g->slot = i;
        i++;
    }

    *chain = g;             /* the first group not taken, or NULL */

    queue.ptr = (const char *) p;
    queue.len = first->queue.len;
    ngx_memcpy(p, first->queue.ptr, first->queue.len);
    m->queue = queue;

    dq_cmd_init(&m->cmd);

    qk = ngx_http_deferred_merge_qkeys(rs, queue, first->hash);
    m->qk = qk;

    if (qk) {
        if (qk->generation == rs->generation
            && ngx_current_msec - qk->registered
               < NGX_HTTP_DEFERRED_REGISTER_MS)
        {
            m->sadd = 0;

        } else {
            qk->generation = rs->generation;
            qk->registered = ngx_current_msec;
        }
    }

    if ((qk ? dq_cmd_enqueue_keys(&m->cmd, &qk->keys, m->items, n,
                                  first->tombstone)
            : dq_cmd_enqueue(&m->cmd, queue, m->items, n, first->tombstone))
        != DQ_OK)
    {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: cannot build the enqueue command");
        ngx_http_deferred_merge_deliver(m, NULL, "out of memory");
        ngx_http_deferred_merge_free(m);
        return NGX_DECLINED;
    }

    *mp = m;

    return NGX_OK;
}


/* The SADD's reply: refused (-OOM: the enqueue before it may have been
 * stored and filled the memory) or lost, the queue is not registered,
 * and its next enqueue sends the SADD again. qk is an entry of the
 * connection's fixed table: if it now holds another queue, that one
 * sends one SADD more. */

static void
ngx_http_deferred_merge_registered(void *data, redisReply *reply)
{
    ngx_http_deferred_qkeys_t  *qk = data;

    if (qk && (reply == NULL || reply->type == REDIS_REPLY_ERROR)) {
        qk->generation = 0;
    }
}


static void
ngx_http_deferred_merge_reply(void *data, redisReply *reply)
{
    ngx_http_deferred_merged_t  *m = data;

    dq_error_t                   err;
    ngx_http_deferred_redis_t   *rs;

    rs = m->redis;
    m->replied = 1;
    m->rcmd = NULL;             /* freed before its handler runs */

    if (m->counted) {
        /* the queue's groups that waited for this reply go now */
        m->counted->inflight--;
        m->counted = NULL;

        if (!ngx_queue_empty(&rs->queued) && !rs->flush.posted) {
            ngx_post_event(&rs->flush, &ngx_posted_events);
        }
    }

    if (reply == NULL) {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: redis %V: no reply (connection lost, "
                      "or a cluster node's never made) for %ui tasks",
                      &rs->name, m->n);
        m->failure = "Redis connection lost";
        goto done;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: redis %V: enqueue failed: %*s",
                      &rs->name, (size_t) reply->len, reply->str);
        m->failure = "Redis refused the enqueue";
        goto done;
    }

    m->res = ngx_alloc(m->n * sizeof(dq_enqueue_result_t), rs->log);

    if (m->res == NULL || dq_reply_enqueue(reply, m->items, m->n, m->res,
                                            &err) != DQ_OK)
    {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: redis %V: unexpected enqueue reply: %s",
                      &rs->name, m->res ? err.msg : "out of memory");
        m->failure = "unexpected reply from Redis";
    }

done:

    if (!m->waiting) {
        ngx_http_deferred_merge_finish(m);
    }
}


/*
 * WAIT's answer: the number of replicas that have the writes. It came
 * before the script's reply only when the script was re-sent behind it:
 * as EVAL (NOSCRIPT), or to another cluster node (MOVED, ASK): then wait
 * again, behind the script, on the node it went to.
 */

static void
ngx_http_deferred_merge_waited(void *data, redisReply *reply)
{
    ngx_http_deferred_merged_t  *m = data;

    ngx_http_deferred_redis_t   *rs;

    rs = m->redis;

    if (!m->replied && reply) {
        if (ngx_http_deferred_redis_wait(rs, m->rcmd,
                                         ngx_http_deferred_merge_waited, m)
            == NGX_OK)
        {
            return;
        }

        m->waiting = 0;
        m->failure = "cannot wait for replicas";
        return;
    }

    m->waiting = 0;

    if ((reply == NULL || reply->type != REDIS_REPLY_INTEGER
         || reply->integer < rs->replicas)
        && m->failure == NULL)
    {
        /* (when the script failed, its own line said so: enqueue.lua
         * checks its arguments and reads every key it may write, the
         * cold buckets too, before its first write, so nothing was
         * stored to be acknowledged) */
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: redis %V: %ui tasks stored but not "
                      "acknowledged by %i replicas within %M ms (%s)",
                      &rs->name, m->n, rs->replicas, rs->replicas_timeout,
                      reply == NULL ? "connection lost"
                      : reply->type == REDIS_REPLY_INTEGER ? "too few"
                      : "WAIT refused");

        m->failure = "not replicated in time";
    }

    if (m->replied) {
        ngx_http_deferred_merge_finish(m);
    }
}


static void
ngx_http_deferred_merge_finish(ngx_http_deferred_merged_t *m)
{
    if (m->failure) {
        ngx_http_deferred_merge_deliver(m, NULL, m->failure);

    } else {
        ngx_http_deferred_merge_deliver(m, m->res, NULL);
    }

    if (m->res) {
        ngx_free(m->res);
    }

    ngx_http_deferred_merge_free(m);
}


/* each attached group once; a delivery may detach others (same request) */

static void
ngx_http_deferred_merge_deliver(ngx_http_deferred_merged_t *m,
    dq_enqueue_result_t *res, const char *failure)
{
    ngx_uint_t                  i;
    ngx_http_deferred_group_t  *g;

    for (i = 0; i < m->nmembers; i++) {
        g = m->members[i];

        if (g == NULL) {
            continue;
        }

        m->members[i] = NULL;
        g->merged = NULL;

        ngx_http_deferred_batch_deliver(g, res ? res + m->offsets[i] : NULL,
                                        failure);
    }
}


static void
ngx_http_deferred_merge_free(ngx_http_deferred_merged_t *m)
{
    dq_cmd_free(&m->cmd);
    ngx_free(m);
}


/*
 * The queue's entry, made (or the least recently used one reused) when
 * missing. NULL: no memory for the table; the caller formats the keys
 * itself.
 */

static ngx_http_deferred_qkeys_t *
ngx_http_deferred_merge_qkeys(ngx_http_deferred_redis_t *rs, dq_str_t queue,
    ngx_uint_t hash)
{
    ngx_queue_t                *q;
    ngx_http_deferred_qkeys_t  *qk;

    if (!dq_shard_name_valid(queue)) {
        return NULL;
    }

    for (q = ngx_queue_head(&rs->qlru);
         q != ngx_queue_sentinel(&rs->qlru);
         q = ngx_queue_next(q))
    {
        qk = ngx_queue_data(q, ngx_http_deferred_qkeys_t, lru);

        if (qk->hash == hash && qk->len == queue.len
            && ngx_memcmp(qk->name, queue.ptr, queue.len) == 0)
        {
            if (q != ngx_queue_head(&rs->qlru)) {
                ngx_queue_remove(q);
                ngx_queue_insert_head(&rs->qlru, q);
            }

            return qk;
        }
    }

    if (rs->qkeys == NULL) {
        /* the cycle's pool: freed when the worker process exits */
        rs->qkeys = ngx_palloc(ngx_cycle->pool, NGX_HTTP_DEFERRED_QKEYS
                                   * sizeof(ngx_http_deferred_qkeys_t));
        if (rs->qkeys == NULL) {
            return NULL;
        }
    }

    if (rs->nqkeys < NGX_HTTP_DEFERRED_QKEYS) {
        qk = &rs->qkeys[rs->nqkeys++];

    } else {
        /* the least recently used entry without a call out (its count
         * must stay its queue's); none: this queue goes without */
        for (q = ngx_queue_last(&rs->qlru);
             q != ngx_queue_sentinel(&rs->qlru);
             q = ngx_queue_prev(q))
        {
            qk = ngx_queue_data(q, ngx_http_deferred_qkeys_t, lru);

            if (qk->inflight == 0) {
                break;
            }
        }

        if (q == ngx_queue_sentinel(&rs->qlru)) {
            return NULL;
        }

        ngx_queue_remove(q);
    }

    qk->inflight = 0;

    if (dq_enqueue_keys_init(&qk->keys, queue) != DQ_OK) {
        /* (a valid name always fits) an empty name never matches */
        qk->len = 0;
        ngx_queue_insert_tail(&rs->qlru, &qk->lru);
        return NULL;
    }

    qk->hash = hash;
    qk->len = queue.len;
    ngx_memcpy(qk->name, queue.ptr, queue.len);
    qk->generation = 0;
    qk->registered = 0;

    ngx_queue_insert_head(&rs->qlru, &qk->lru);

    return qk;
}
