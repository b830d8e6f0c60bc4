/*
 * deferred-worker — a child's claims: dq_cmd_cycle for up to the free
 * slots and claim_size of one queue, carrying the loop iteration's acks of
 * that queue; the reply's tasks tracked in the master's table, then
 * started (dispatch.c), and its next_ms made the queue's due time on the
 * loop's clock (no polling).
 *
 * Each claim call draws a random claim id (dq_claim_id_new) that every
 * later call for its tasks names (fencing). A claim whose reply was lost
 * (the connection dropped, or an error reply that may follow the script's
 * writes) is given back whole with release_claim once Redis is back; the
 * master's entry for it stays until then, so a child dying meanwhile still
 * has the master give its tasks back.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "child_impl.h"
#include "dispatch_impl.h"
#include "master.h"
#include "config.h"
#include "pool.h"

/* --------------------------------------------------------------- claim */

typedef struct {
    dq_cqueue_t *q;
    size_t       asked;
    uint64_t     sent_ms;     /* loop time when the claim was asked */
    char         claim[DQ_ID_SIZE];
    int          held;        /* the master's entry for it (held.c) */
    dq__report_t *acks;       /* the acks riding this call, or NULL */
} dq__claim_t;

/* A claim whose reply was lost may have leased tasks nobody here knows
 * about: give them back (no charge) once Redis is back. Its entry in the
 * master's table (`held`, "claim in flight") stays until then, so a child
 * dying meanwhile still has the master give them back. */
static void
dq__claim_lost(dq_cqueue_t *q, const char *claim, int held)
{
    if (q->nlost == DQ_LOST_CLAIMS) {
        dq_log_warn("too many lost claim replies on queue %.*s: the tasks "
                    "of claim %s come back when their lease expires",
                    (int) q->name.len, q->name.ptr, q->lost[0]);
        dq_held_remove(q->lost_held[0]);
        memmove(q->lost[0], q->lost[1], sizeof(q->lost[0]) * --q->nlost);
        memmove(&q->lost_held[0], &q->lost_held[1],
                sizeof(q->lost_held[0]) * q->nlost);
    }
    memcpy(q->lost[q->nlost], claim, DQ_ID_SIZE);
    q->lost_held[q->nlost++] = held;
}

/* An error reply that says the claim script leased nothing: its own
 * argument check (before its first write), the replies Redis gives before
 * a script runs or at its first write (dq_reply_is_unavailable: OOM stops
 * a script without allow-oom only while it has written nothing), and
 * those the cluster layer or Redis give instead of running it. Any other
 * error may come after the leases were written: Redis 7.0 stops a script
 * on a MIGRATING slot with "ERR Script attempted to access a non local
 * key" when it reads a key gone missing (review R5), and a Lua error can
 * come at any line; the writes before it stay. Such a claim is filed as
 * lost (released by claim id: harmless when it leased nothing). */
static int
dq__claim_refused(const redisReply *rep)
{
    static const char *const  not_run[] = {
        "ERR claim: bad arguments", "NOSCRIPT", "UNBLOCKED", "MOVED", "ASK"
    };

    return dq_reply_is_unavailable(rep)
           || dq_reply_error_is(rep, not_run,
                                sizeof(not_run) / sizeof(not_run[0]));
}

/* The loop time (ms) when a claim's next_ms is up: next_ms counts from
 * the script's clock, now_ms (Redis TIME cut to the ms), so the wait ends
 * when the wall clock reads now_ms + next_ms (an ETA or a lease deadline
 * is due at that whole ms). That instant, through this host's wall clock
 * in us, on the loop's monotonic clock, rounded up; the script's moment
 * is kept between a ms before the asking time and now (the script ran in
 * between: a Redis host whose clock is off from this one's lands on an
 * end). Counting next_ms from the asking time woke the child up to a
 * round trip and a ms early, and a claim that came early found nothing
 * due and cost another round trip (t/163-claim-on-time.t). uv_hrtime is
 * CLOCK_MONOTONIC, the loop's clock the same or (where it ticks every ms
 * or faster) its coarse variant, which lags it: then up to a tick late,
 * never early. */
static uint64_t
dq__due_loop_ms(uint64_t sent_ms, int64_t now_ms, int64_t next_ms)
{
    struct timespec ts;
    int64_t         loop_us, wall_us, at_us;

    loop_us = (int64_t) (uv_hrtime() / 1000);
    clock_gettime(CLOCK_REALTIME, &ts);
    wall_us = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    /* the loop time at which the wall clock read now_ms.000 */
    at_us = loop_us - (wall_us - now_ms * 1000);
    if (at_us < ((int64_t) sent_ms - 1) * 1000) {
        at_us = ((int64_t) sent_ms - 1) * 1000;
    } else if (at_us > loop_us) {
        at_us = loop_us;
    }
    at_us += next_ms * 1000;
    return (uint64_t) ((at_us + 999) / 1000);
}

static void
dq__claim_reply(dq_conn_t *r, redisReply *rep, const char *errstr,
                void *data)
{
    dq__claim_t       *c = data;
    dq_cqueue_t       *q = c->q;
    dq_child_t        *ch = q->ch;
    dq_claim_result_t  res;
    dq_claimed_t      *slots;
    dq_error_t         err;
    dq_task_t        **started;
    uint64_t           now = uv_now(&ch->loop);
    size_t             i, nstart = 0, npool, nloop;
    int                woken = q->woken;
    int                ack_st[DQ_MAX_LEASE_ITEMS];

    (void) r;
    q->claiming = 0;
    q->woken = 0;
    q->more = 0;
    ch->reserved -= c->asked;
    memset(&err, 0, sizeof(err));
    memset(&res, 0, sizeof(res));

    slots = calloc(c->asked, sizeof(*slots));
    /* the second half: the claim's DQ_FN_LOOP tasks */
    started = calloc(2 * c->asked, sizeof(*started));
    if (started == NULL) {
        free(slots);
        slots = NULL;
    }
    res.tasks = slots;
    if ((rep == NULL && !dq_conn_not_run(errstr))
        || (rep != NULL && rep->type == REDIS_REPLY_ERROR
            && !dq__claim_refused(rep)))
    {
        dq__claim_lost(q, c->claim, c->held);  /* it may have landed */
        c->held = 0;                 /* the entry stays until given back */
    }
    if (rep == NULL || slots == NULL
        || dq_reply_cycle(rep, c->acks ? c->acks->n : 0, ack_st, &res,
                          c->asked, &err) != DQ_OK)
    {
        if (rep != NULL && slots == NULL) {
            dq__claim_lost(q, c->claim, c->held);  /* it did land */
            c->held = 0;
        }
        if (c->acks != NULL && rep == NULL && dq_conn_not_run(errstr)) {
            /* not run (a TRYAGAIN on a slot that migrates: the claim is
             * sent once): the acks go again at once, alone, to settle
             * (every 50 ms until the slot settles, before a claim can
             * take their expired leases back), while the claim half
             * gives its reservation back and tries again in 1 s (review
             * RF8 finding 2: held in the cluster layer's retry, it
             * starved the child's other queues) */
            dq__report_send_acks(c->acks, q);
            c->acks = NULL;
        } else if (c->acks != NULL) {
            /* no answer (or none we can read): the acks are said again
             * once Redis is back, as a lost ack call's are; an error
             * reply: kept too and sent alone after a back-off (only the
             * script's per-task statuses settle an ack) */
            dq__report_unanswered(c->acks, rep == NULL || slots == NULL
                                           ? (rep == NULL ? errstr
                                                          : "out of memory")
                                           : NULL,
                                  err.msg);
            c->acks = NULL;
        }
        dq_held_remove(c->held);
        dq_log_warn("claim on queue %.*s failed: %s; trying again in 1 s",
                    (int) q->name.len, q->name.ptr,
                    rep == NULL ? errstr : slots == NULL ? "out of memory"
                                                         : err.msg);
        free(slots);
        free(started);
        free(c);
        q->due_at = now + 1000;
        dq_child_kick(ch);
        return;
    }

    if (c->acks != NULL) {
        ch->redo_backoff_ms = 0;
        dq__report_done(c->acks, ack_st, NULL);
        c->acks = NULL;
    }

    /* every task gets its own entry in the master's table before the
     * claim's entry goes (a child dying in between must not leave them
     * untracked), and only then does any start (the claim's entry would
     * give back, uncharged, a task that started) */
    dq_task_new_many(res.tasks, res.n, q->name, &ch->conf->limits,
                     ch->loader, started);
    for (i = 0; i < res.n; i++) {
        dq_task_t *t = started[i];

        if (t == NULL) {
            char qn[DQ_HELD_QUEUE_MAX], id[DQ_HELD_ID_MAX];

            dq_log_error("out of memory: task %.*s (queue %.*s) left to "
                         "its lease", (int) res.tasks[i].id.len,
                         res.tasks[i].id.ptr, (int) q->name.len,
                         q->name.ptr);
            /* still tracked: if this child dies the master gives it back
             * (its entry is never freed here: a leak of one slot) */
            if (q->name.len < sizeof(qn) && res.tasks[i].id.len < sizeof(id)
                && res.tasks[i].claim.len <= DQ_CLAIM_ID_MAX)
            {
                char cl[DQ_CLAIM_ID_MAX + 1];

                memcpy(qn, q->name.ptr, q->name.len);
                qn[q->name.len] = '\0';
                memcpy(id, res.tasks[i].id.ptr, res.tasks[i].id.len);
                id[res.tasks[i].id.len] = '\0';
                memcpy(cl, res.tasks[i].claim.ptr, res.tasks[i].claim.len);
                cl[res.tasks[i].claim.len] = '\0';
                (void) dq_held_add(qn, id, cl, res.tasks[i].first_run_ms,
                                   dq_claimed_history(&res.tasks[i]));
            }
            continue;
        }
        t->q = q;
        t->claim_now_ms = res.now_ms;
        t->claim_loop_ms = now;
        dq_child_link(ch, t);
        started[nstart++] = t;
    }
    dq_held_remove(c->held);
    npool = 0;
    nloop = 0;
    for (i = 0; i < nstart; i++) {
        switch (dq__start(ch, started[i], res.now_ms)) {
        case 1:
            started[npool++] = started[i];      /* for the pool */
            break;
        case 2:
            started[c->asked + nloop++] = started[i];   /* the loop's */
            break;
        default:
            break;
        }
    }
    dq_pool_submit(ch->pool, started, npool);
    /* the loop tasks once the pool has the claim's other tasks */
    dq__run_on_loop(ch, started + c->asked, nloop);
    free(started);

    if (res.n >= c->asked || woken) {
        /* a full claim: maybe more; or a wake token came while the claim
         * was in flight: what it announced may be newer than the claim */
        q->due_at = now;
        q->more = !woken;
    } else if (res.next_ms < 0) {
        q->due_at = DQ_NEVER;                 /* empty: the wake list says */
    } else if (res.next_ms == 0) {
        /* due work remains (cold buckets to promote, CONTRACT.md
         * "next_ms"): claim again in this loop, not 1 ms later (review
         * RLT: a dense window promoted at half the rate) */
        q->due_at = now;
    } else {
        /* next_ms counts from the script's TIME (res.now_ms) */
        q->due_at = dq__due_loop_ms(c->sent_ms, res.now_ms,
                                    res.next_ms);
        /* no jitter here: next_ms is an ETA or a lease deadline, and a
         * wake after it is that much lateness (0-10 % late, up to 100 ms,
         * was measured as the lateness max: 83-98 ms). Children that
         * share the deadline claim within the same few ms; the first
         * takes what is due, the others find nothing. The idle look
         * (child.c) keeps its early jitter. */
    }
    dq_log_debug("claimed %zu of %zu on queue %.*s, next in %lld ms", res.n,
                 c->asked, (int) q->name.len, q->name.ptr,
                 (long long) res.next_ms);
    free(slots);
    free(c);
    dq_child_kick(ch);
}

/* Ask for n tasks of queue q (the slots are already reserved); first give
 * back claims of q whose reply was lost and whose give-back failed. */
void
dq_dispatch_claim(dq_cqueue_t *q, size_t n)
{
    dq_child_t  *ch = q->ch;
    dq__claim_t       *c = malloc(sizeof(*c));
    dq_cmd_t           cmd;
    dq_claim_limits_t  lim;
    dq_lease_item_t    items[DQ_MAX_LEASE_ITEMS];
    size_t             i, j, k = 0;
    int                rc;

    if (c == NULL) {
        return;
    }
    if (n > DQ_MAX_LEASE_ITEMS) {
        n = DQ_MAX_LEASE_ITEMS;
    }
    if (q->nlost > 0) {
        dq__release_lost(ch, q);
    }
    c->q = q;
    c->asked = n;
    c->sent_ms = uv_now(&ch->loop);   /* fresh: dq_child_kick updated it */
    c->acks = NULL;
    dq_claim_id_new(c->claim);

    /* The iteration's acks of this queue ride the claim: one script call
     * (dq_cmd_cycle). Not an ack sent again after a lost reply: the claim
     * half refuses to run at maxmemory, and an ack alone (dq_cmd_ack)
     * does run there; those go alone from dq_dispatch_flush. */
    for (i = 0; i < q->nacks && k < DQ_MAX_LEASE_ITEMS; i++) {
        if (!q->acks[i]->resent) {
            dq_dispatch_lease_item(&items[k++], q->acks[i]);
        }
    }
    if (k > 0 && (c->acks = dq__report_new(ch, DQ_OP_ACK, k)) == NULL) {
        k = 0;                                 /* they go alone */
    }

    dq_cmd_init(&cmd);
    lim.rate = q->qc->rate;
    lim.bucket_size = q->qc->bucket_size;
    lim.max_concurrent = q->qc->max_concurrent;
    rc = dq_cmd_cycle(&cmd, q->name, c->claim, (int64_t) n,
                      ch->conf->lease_ms, ch->conf->reclaim_delay_ms,
                      &q->qc->retry, &lim, items, k, ch->conf->tombstone_ms);
    /* A claim is sent once: refused unrun (TRYAGAIN, a slot that
     * migrates) it ends here, its reservation given back, and its own
     * "again in 1 s" takes over; a stopping child does not wait out the
     * cluster layer's back-off (review RLO). Acks riding it are then sent
     * again at once, alone, to settle (dq__claim_reply): on a 1 s step a
     * claim that took their expired leases back ran tasks twice (reviews
     * RFLO, RV8: t/223, t/224), and a claim held in a 50 ms retry kept its
     * reserved concurrency while the slot migrated (review RF8: t/229). */
    if (rc != DQ_OK
        || dq_conn_send_cmd_once(ch->cmd_conn, &cmd, DQ_CMD_TIMEOUT_MS,
                                 dq__claim_reply, c) != 0)
    {
        free(c->acks);            /* the acks stay queued */
        free(c);
        dq_cmd_free(&cmd);
        return;                   /* retried when Redis is back */
    }
    dq_cmd_free(&cmd);
    if (k > 0) {
        /* sent: the acks belong to the call now (until its reply their
         * held entries stay "finished OK": the master acks them if this
         * child dies first) */
        for (i = 0, j = 0, k = 0; i < q->nacks; i++) {
            if (!q->acks[i]->resent && k < c->acks->n) {
                c->acks->tasks[k++] = q->acks[i];
            } else {
                q->acks[j++] = q->acks[i];
            }
        }
        q->nacks = j;
    }
    /* if this child dies before the reply, the master gives back what
     * the claim leased: the shard's name (q#i), where the claim leased */
    c->held = dq_held_add(q->name.ptr, NULL, c->claim, 0, 0);
    q->claiming = 1;
    ch->reserved += n;
}

/* ---------------------------------------------- give back a lost claim */

/* One step of giving back the leases of a claim whose reply was lost. */
typedef struct {
    dq_child_t *ch;
    dq_cqueue_t *q;
    char        claim[DQ_ID_SIZE];
    int         held;          /* its entry in the master's table */
} dq__relclaim_t;

static void dq__release_claim(dq__relclaim_t *rq, const char *cursor);

static void
dq__release_claim_reply(dq_conn_t *r, redisReply *rep, const char *errstr,
                        void *data)
{
    dq__relclaim_t *rq = data;
    dq_error_t      err;
    char            cursor[24];
    int64_t         n = 0;

    (void) r;
    if (rep == NULL || dq_reply_release_claim(rep, cursor, &n, &err)
                       != DQ_OK)
    {
        /* not delivered (connection lost, Redis loading...) or refused:
         * kept until a give-back succeeds, sent again with the next claim
         * of the queue or the next reconnect */
        dq_log_warn("giving back claim %s (queue %.*s) failed: %s; trying "
                    "again with the next claim or reconnect", rq->claim,
                    (int) rq->q->name.len, rq->q->name.ptr,
                    rep == NULL ? errstr : err.msg);
        dq__claim_lost(rq->q, rq->claim, rq->held);
        free(rq);
        return;
    }
    if (n > 0) {
        dq_log_info("gave back %lld tasks of claim %s (queue %.*s) whose "
                    "reply was lost, no attempt charged", (long long) n,
                    rq->claim, (int) rq->q->name.len, rq->q->name.ptr);
    }
    if (strcmp(cursor, "0") == 0) {
        dq_held_remove(rq->held);        /* all given back */
        free(rq);
        return;
    }
    dq__release_claim(rq, cursor);
}

static void
dq__release_claim(dq__relclaim_t *rq, const char *cursor)
{
    dq_cmd_t cmd;

    dq_cmd_init(&cmd);
    if (dq_cmd_release_claim(&cmd, rq->q->name, rq->claim, cursor) != DQ_OK
        || dq_conn_send_cmd(rq->ch->cmd_conn, &cmd, DQ_CMD_TIMEOUT_MS,
                             dq__release_claim_reply, rq) != 0)
    {
        dq__claim_lost(rq->q, rq->claim, rq->held);     /* the next time */
        free(rq);
    }
    dq_cmd_free(&cmd);
}

/* Give back the claims of q whose reply was lost. Each leaves the list
 * while its release_claim is on its way and comes back to it if that
 * fails, so a claim id is forgotten only once its leases are given back
 * (or when more than DQ_LOST_CLAIMS wait: then the oldest is left to its
 * lease expiry, logged). */
void
dq__release_lost(dq_child_t *ch, dq_cqueue_t *q)
{
    dq__relclaim_t *rq;
    char            ids[DQ_LOST_CLAIMS][DQ_ID_SIZE];
    int             held[DQ_LOST_CLAIMS];
    size_t          n = q->nlost, k;

    memcpy(ids, q->lost, sizeof(ids[0]) * n);
    memcpy(held, q->lost_held, sizeof(held[0]) * n);
    q->nlost = 0;
    for (k = 0; k < n; k++) {
        rq = malloc(sizeof(*rq));
        if (rq == NULL) {
            dq__claim_lost(q, ids[k], held[k]);
            continue;
        }
        rq->ch = ch;
        rq->q = q;
        rq->held = held[k];
        memcpy(rq->claim, ids[k], DQ_ID_SIZE);
        dq__release_claim(rq, "0");
    }
}
