/*
 * deferred-worker — what a TRYAGAIN answer does on a Redis Cluster
 * connection (cluster_uv.c; the state they share: cluster_uv_impl.h).
 *
 * TRYAGAIN (a multi-key command on a slot being resharded, some of its keys
 * moved): not run, sent again to the slot's node after a back-off
 * (DQ_CCL_TRYAGAIN_MS doubling up to a second, DQ_CCL_TRYAGAIN_TRIES times:
 * ~6.5 s) with the connection kept: no map refresh, no "lost" (which made
 * the worker re-read every queue's conf after each map during a reshard). A
 * command sent to settle leases (DQ_CCL_SETTLE, dq_conn_send_cmd_settle: an
 * ack, retry, bury or release) is sent again every DQ_CCL_SETTLE_MS instead,
 * with no cap on the tries, also once the owner stops (its grace bounds it):
 * it lands within that step of the slot settling, before a claim that takes
 * its expired lease back can claim the task again (the queue's backoff, at
 * least; review RV8 finding 2: on the 1 s steps a claim alone won that race;
 * review RF8 finding 1: "not run" at once after a stop, an ack waited the
 * worker's 1 s redo). One such command per key (slot and first key: a queue)
 * is the probe, sent again every DQ_CCL_SETTLE_MS; the others on that key
 * wait behind it and go as soon as it gets an answer that is neither
 * TRYAGAIN nor a redirect (else every DQ_CCL_FOLLOW_MS): the load while a
 * slot migrates is one TRYAGAIN answer (refused before any script runs) per
 * connection and queue every DQ_CCL_SETTLE_MS plus one per waiting call
 * every DQ_CCL_FOLLOW_MS (review RF8 finding 3: each waiting call every 50
 * ms was ~640 answers a second for 32 acks). Settling calls refused
 * DQ_CCL_SETTLE_WARN_MS: one warning per connection, and an info line when
 * none is refused any more. A back-off ends at its own deadline (the tick is
 * set for the earliest), not at a 250 ms tick. Not so for a command sent
 * "once" (DQ_CCL_ONCE, dq_conn_send_cmd_once: a claim, which tries again
 * itself in 1 s and leases nothing when refused; acks that rode it are then
 * sent alone, to settle) nor, after dq_ccl_stop_retries (the owner stops:
 * what waits out a back-off goes at once), for any command but a settling
 * one: their TRYAGAIN is "not run" at once, the connection kept (no "lost",
 * no map asked). TRYAGAIN after the last try, and CLUSTERDOWN: the command
 * was not run; the caller gets NULL with an errstr that says so
 * (DQ_CONN_NOT_RUN, dq_conn_not_run()): a claim refused so leased nothing.
 */
#include <stdio.h>

#include "cluster_uv_impl.h"

#define DQ_CCL_TRYAGAIN_TRIES 10    /* TRYAGAIN: sent again this often, */
#define DQ_CCL_TRYAGAIN_MS  50      /* after 50, 100, ... 800, then 1000
                                       ms each */
#define DQ_CCL_TRYAGAIN_MAX 1000
#define DQ_CCL_SETTLE_MS    50      /* DQ_CCL_SETTLE: TRYAGAIN sent again
                                       after this, until it runs; half the
                                       default min_backoff
                                       (DQ_DEFAULT_MIN_BACKOFF_MS) */
#define DQ_CCL_SETTLE_LOG   20      /* its debug line every this many */
#define DQ_CCL_FOLLOW_MS    1000    /* a settling call behind another's
                                       probe (same key) is sent again
                                       after this, unless released */
#define DQ_CCL_SETTLE_WARN_MS 10000 /* settling calls refused this long:
                                       warned, once per connection */

/* A settling call on q's key (slot and first key: one queue) that waits
 * out a TRYAGAIN as the probe, not behind one; NULL: none. */
static dq__creq_t *
dq__ccl_probe(dq_ccl_t *cl, const dq__creq_t *q)
{
    dq__creq_t *w;

    for (w = cl->whead; w; w = w->next) {
        if (w != q && w->mode == DQ_CCL_SETTLE && w->retry_at != 0
            && !w->follow && w->slot == q->slot && w->keyh == q->keyh)
        {
            return w;
        }
    }
    return NULL;
}

/* A settling call on this key that met TRYAGAIN got another answer (it
 * ran, an error, none; not a redirect): the calls behind its probe go
 * now. */
static void
dq__ccl_release(dq_ccl_t *cl, int slot, uint64_t keyh)
{
    dq__creq_t *w, *next;

    for (w = cl->whead; w; w = next) {
        next = w->next;
        if (w->follow && w->retry_at != 0 && w->slot == slot
            && w->keyh == keyh)
        {
            dq__ccl_retry(cl, w);
            if (cl->closing) {
                return;                 /* closed from a callback */
            }
        }
    }
}

/* q, a settling call, answered TRYAGAIN: sent again in DQ_CCL_SETTLE_MS
 * as its key's probe, or, behind another call's probe, when that one
 * gets another answer (at most DQ_CCL_FOLLOW_MS): one call per key every
 * DQ_CCL_SETTLE_MS, not each waiting one (review RF8 finding 3: 32 acks
 * of one queue made ~640 TRYAGAIN answers a second). Warned once per
 * connection after DQ_CCL_SETTLE_WARN_MS. */
static uint64_t
dq__ccl_settle_step(dq_ccl_t *cl, dq__creq_t *q)
{
    uint64_t now = uv_now(cl->loop);

    if (q->tryagain == 0) {
        q->tryagain_since = now;
        cl->nsettle++;
    }
    if (cl->settle_warned == 0
        && now - q->tryagain_since >= DQ_CCL_SETTLE_WARN_MS)
    {
        cl->settle_warned = q->tryagain_since ? q->tryagain_since : 1;
        dq_log_warn("redis (%s): %zu calls that settle leases (acks, "
                    "retries, burials) refused with TRYAGAIN for %llu s on "
                    "slot %d (%s:%d), sent again until it runs: a slot "
                    "migration stuck? (CLUSTER SETSLOT %d NODE ... on "
                    "every master ends it)", cl->label, cl->nsettle,
                    (unsigned long long) ((now - q->tryagain_since) / 1000),
                    q->slot, q->node->host, q->node->port, q->slot);
    }
    q->follow = dq__ccl_probe(cl, q) != NULL;
    return q->follow ? DQ_CCL_FOLLOW_MS : DQ_CCL_SETTLE_MS;
}

int
dq__ccl_tryagain(dq__creq_t *q, redisReply *rep)
{
    static const char *const  tryagain[] = { "TRYAGAIN" };
    dq_ccl_t                 *cl = q->cl;

    if (q->mode == DQ_CCL_SETTLE && q->tryagain > 0
        && (rep == NULL || !dq_reply_error_is(rep, tryagain, 1)))
    {
        /* not a redirect (on a migrating slot an ASK comes before each
         * TRYAGAIN), not TRYAGAIN: the calls behind it go now */
        dq__ccl_release(cl, q->slot, q->keyh);
        if (cl->closing) {
            dq__ccl_finish(q, rep, rep ? NULL : "connection closing");
            return 1;
        }
    }
    if (rep != NULL
        && (q->mode == DQ_CCL_ONCE
            || (cl->no_retry && q->mode != DQ_CCL_SETTLE))
        && dq_reply_error_is(rep, tryagain, 1))
    {
        /* not run, and not tried again here: a claim (it has its own
         * "again in 1 s" and leases nothing so; retried here it kept a
         * stopping child alive through the back-off and could lease it
         * tasks: review RLO finding 1), or, once the owner stops
         * (dq_ccl_stop_retries), anything but a call that settles leases:
         * that one keeps its step, the stopping child staying for it at
         * most its grace (review RF8 finding 1: "not run" at once, an ack
         * waited the redo back-off, 1 s and more, and a claim elsewhere
         * ran its task again). The connection is fine: no "lost", no map
         * refresh. */
        dq__ccl_not_run(q, rep);
        return 1;
    }
    if (rep != NULL
        && (q->mode == DQ_CCL_SETTLE || q->tryagain < DQ_CCL_TRYAGAIN_TRIES)
        && dq_reply_error_is(rep, tryagain, 1))
    {
        /* not run, the slot's keys part moved: the same command again
         * after a back-off, routed anew (ASK again if still needed), the
         * connection kept (no "lost", no map refresh) */
        uint64_t ms = 0;

        if (q->mode == DQ_CCL_SETTLE) {
            ms = dq__ccl_settle_step(cl, q);
        } else {
            ms = (uint64_t) DQ_CCL_TRYAGAIN_MS << q->tryagain;
            if (ms > DQ_CCL_TRYAGAIN_MAX) {
                ms = DQ_CCL_TRYAGAIN_MAX;
            }
        }
        if (q->mode != DQ_CCL_SETTLE || q->tryagain % DQ_CCL_SETTLE_LOG == 0)
        {
            dq_log_debug("redis (%s): %s answered TRYAGAIN (%d); again in "
                         "%llu ms", cl->label, q->f.name, q->tryagain + 1,
                         (unsigned long long) ms);
        }
        q->retry_at = uv_now(cl->loop) + ms;
        q->tryagain++;
        q->asking = 0;
        q->redirects = 0;
        dq__ccl_wait(q);
        return 1;
    }
    return 0;
}

void
dq__ccl_settle_end(dq_ccl_t *cl, const dq__creq_t *q)
{
    if (q->mode == DQ_CCL_SETTLE && q->tryagain > 0
        && --cl->nsettle == 0 && cl->settle_warned != 0)
    {
        if (!cl->closing) {
            dq_log_info("redis (%s): the calls that settle leases answered "
                        "TRYAGAIN no more, %llu s after the first", cl->label,
                        (unsigned long long) ((uv_now(cl->loop)
                                               - cl->settle_warned) / 1000));
        }
        cl->settle_warned = 0;
    }
}
