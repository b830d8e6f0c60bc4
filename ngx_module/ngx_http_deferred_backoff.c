
/*
 * ngx_http_deferred_module: when the Redis connection is not ready.
 *
 * The back-off between attempts (BACKOFF_MIN doubling to BACKOFF_MAX),
 * the attempt a request makes on its own path when the last one is
 * BACKOFF_MIN old, the "soon" wait of a request that comes right after a
 * failed attempt, and who waits for the connection's setup: operator
 * requests (ngx_http_deferred_redis_await, woken by
 * ngx_http_deferred_redis_wake) and the merged enqueues (merge.c, failed
 * through ngx_http_deferred_redis_failed). The connection itself and its
 * commands are ngx_http_deferred_redis.c's, its connect and setup
 * ngx_http_deferred_connect.c's.
 *
 * Invariants: a waiter's handler runs exactly once, with NGX_OK once the
 * setup answered OK or NGX_ERROR once the attempt failed, unless it
 * cancelled its wait; a request waits at most for the next attempt
 * (docs/OPERATIONS.md). Nothing here blocks.
 */


#include "ngx_http_deferred_module.h"
#include "ngx_http_deferred_redis.h"


static void ngx_http_deferred_redis_failed_handler(ngx_event_t *ev);


void
ngx_http_deferred_redis_schedule(ngx_http_deferred_redis_t *rs)
{
    if (rs->exiting) {
        return;
    }

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    ngx_add_timer(&rs->timer, rs->backoff);

    rs->backoff *= 2;

    if (rs->backoff > NGX_HTTP_DEFERRED_BACKOFF_MAX) {
        rs->backoff = NGX_HTTP_DEFERRED_BACKOFF_MAX;
    }
}


/* a connection failed before its setup answered, or was lost: what
 * waited for it fails (503) */

void
ngx_http_deferred_redis_failed(ngx_http_deferred_redis_t *rs,
    const char *failure)
{
    if (rs->cluster) {
        ngx_http_deferred_cluster_node_failed(rs);
        return;
    }

    ngx_http_deferred_merge_fail_queued(rs, failure);
    ngx_http_deferred_redis_wake(rs, NGX_ERROR);
}


/*
 * An operator request that came while the connection is in its setup
 * (connect, AUTH, INFO, SCRIPT LOAD; asking the sentinels; a cluster's
 * first map) waits for it, as the enqueued tasks do (merge.c): NGX_OK
 * ready now, NGX_AGAIN w->handler runs once the setup answered or failed,
 * NGX_DECLINED not reachable (nor being connected).
 */

ngx_int_t
ngx_http_deferred_redis_await(ngx_http_deferred_redis_t *rs,
    ngx_http_deferred_redis_waiter_t *w)
{
    if (ngx_http_deferred_redis_ready(rs) == NGX_OK) {
        return NGX_OK;
    }

    if (rs->exiting || ngx_http_deferred_redis_usable(rs) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_queue_insert_tail(&rs->waiters, &w->link);
    w->waiting = 1;

    return NGX_AGAIN;
}


void
ngx_http_deferred_redis_await_cancel(ngx_http_deferred_redis_waiter_t *w)
{
    if (w->waiting) {
        ngx_queue_remove(&w->link);
        w->waiting = 0;
    }
}


/* a handler may finish its request, and so cancel its own wait */

void
ngx_http_deferred_redis_wake(ngx_http_deferred_redis_t *rs, ngx_int_t rc)
{
    ngx_http_deferred_redis_waiter_t  *w;

    while (!ngx_queue_empty(&rs->waiters)) {
        w = ngx_queue_data(ngx_queue_head(&rs->waiters),
                           ngx_http_deferred_redis_waiter_t, link);
        ngx_http_deferred_redis_await_cancel(w);
        w->handler(w->data, rc);
    }
}


/*
 * A request in back-off: the next attempt is made now if the last one is
 * BACKOFF_MIN old, else when it is (rs->timer brought forward: "soon"),
 * and the request waits for it, bounded by its deferred_timeout; 503 if
 * that attempt fails too. So a request right after an attempt failed (in
 * this worker process: another one's may have just succeeded) is not
 * refused while Redis may be back, and during a long outage every request
 * still has its 503 within about BACKOFF_MIN plus one attempt: the
 * waiters are those of the last BACKOFF_MIN, at most
 * (docs/OPERATIONS.md).
 */

void
ngx_http_deferred_redis_soon(ngx_http_deferred_redis_t *rs)
{
    ngx_msec_t  since, rest;

    since = ngx_current_msec - rs->last_attempt;
    rest = since < NGX_HTTP_DEFERRED_BACKOFF_MIN
           ? NGX_HTTP_DEFERRED_BACKOFF_MIN - since : 1;

    if (rs->timer.timer_set
        && (ngx_msec_int_t) (rs->timer.timer.key - ngx_current_msec)
           > (ngx_msec_int_t) rest)
    {
        /* ngx_add_timer would keep a key less than 300 ms off */
        ngx_del_timer(&rs->timer);
    }

    if (!rs->timer.timer_set) {
        ngx_add_timer(&rs->timer, rest);
    }

    rs->soon = 1;
}


static void
ngx_http_deferred_redis_failed_handler(ngx_event_t *ev)
{
    ngx_http_deferred_redis_t  *rs = ev->data;

    /* not if a newer attempt is on its way: its own waiters wait for it */
    if (rs->exiting || rs->ac != NULL
        || rs->state != NGX_HTTP_DEFERRED_REDIS_BACKOFF)
    {
        return;
    }

    ngx_http_deferred_redis_failed(rs, "Redis is not reachable");
}


/*
 * An attempt made on a request's path failed at once (a unix socket with
 * no Redis, ENETUNREACH, no descriptor left): the back-off timer replaced
 * the one the requests waiting for that attempt ("soon") counted on, so
 * they fail now, as when an attempt fails later; from a posted event, not
 * inside the request that made the attempt (review RM; t/105).
 */

void
ngx_http_deferred_redis_failed_at_once(ngx_http_deferred_redis_t *rs)
{
    if (rs->exiting) {
        return;
    }

    if (rs->failed_ev.handler == NULL) {
        /* a cluster node is made on the fly: set up here, on first use */
        rs->failed_ev.handler = ngx_http_deferred_redis_failed_handler;
        rs->failed_ev.data = rs;
        rs->failed_ev.log = rs->log;
    }

    if (!rs->failed_ev.posted) {
        ngx_post_event(&rs->failed_ev, &ngx_posted_events);
    }
}


/* may a request use the connection, or wait for it */

ngx_int_t
ngx_http_deferred_redis_usable(ngx_http_deferred_redis_t *rs)
{
    if (rs->nseeds) {
        if (rs->slots == NULL
            && !rs->exiting
            && rs->state == NGX_HTTP_DEFERRED_REDIS_BACKOFF)
        {
            if (ngx_current_msec - rs->last_attempt
                >= NGX_HTTP_DEFERRED_BACKOFF_MIN)
            {
                /* no map yet: the next request asks, at most once per
                 * BACKOFF_MIN, without waiting for the backoff timer */
                if (rs->timer.timer_set) {
                    ngx_del_timer(&rs->timer);
                }

                ngx_http_deferred_cluster_refresh(rs);

            } else if (ngx_http_deferred_redis_young(rs)) {
                ngx_http_deferred_redis_soon(rs);
            }
        }

        return ngx_http_deferred_redis_connecting(rs);
    }

    if (rs->ac == NULL
        && !rs->exiting
        && rs->state == NGX_HTTP_DEFERRED_REDIS_BACKOFF)
    {
        if (ngx_current_msec - rs->last_attempt
            >= NGX_HTTP_DEFERRED_BACKOFF_MIN)
        {
            /* the next request reconnects, at most once per BACKOFF_MIN */
            if (ngx_http_deferred_redis_connect(rs) != NGX_OK) {
                ngx_http_deferred_redis_failed_at_once(rs);
            }

        } else if (ngx_http_deferred_redis_young(rs)) {
            ngx_http_deferred_redis_soon(rs);
        }
    }

    return ngx_http_deferred_redis_connecting(rs);
}


/* connected, connecting, asking the sentinels (between two of them too),
 * or the next attempt soon: what is queued waits for it */

ngx_int_t
ngx_http_deferred_redis_connecting(ngx_http_deferred_redis_t *rs)
{
    ngx_uint_t  soon;

    soon = rs->soon && rs->timer.timer_set
           && rs->state == NGX_HTTP_DEFERRED_REDIS_BACKOFF;

    if (rs->nseeds) {
        /* a cluster: a map, or asking for the first one */
        return (rs->slots || rs->state == NGX_HTTP_DEFERRED_REDIS_SLOTS
                || soon)
               ? NGX_OK : NGX_DECLINED;
    }

    return (rs->ac || rs->state == NGX_HTTP_DEFERRED_REDIS_SENTINEL || soon)
           ? NGX_OK : NGX_DECLINED;
}


/* commands go only on a connection whose setup answered OK */

ngx_int_t
ngx_http_deferred_redis_ready(ngx_http_deferred_redis_t *rs)
{
    if (rs->nseeds) {
        /* a cluster: each command waits for its own node */
        return rs->slots ? NGX_OK : NGX_DECLINED;
    }

    return (rs->ac && rs->state == NGX_HTTP_DEFERRED_REDIS_READY)
           ? NGX_OK : NGX_DECLINED;
}
