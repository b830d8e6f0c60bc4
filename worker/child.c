/*
 * deferred-worker — one child process: the libuv loop and its clocks.
 *
 * Owns the two Redis connections (commands; BLPOP on the wake lists of
 * every served queue), the deadline timer, the lease heartbeat, the
 * signals, and the shutdown sequence. The work itself: claim.c (claim),
 * dispatch.c (check, run), report.c (ack, retry, bury, release).
 *
 * Deadlines, not polling: each claim reply says when the queue's next task
 * is due (earliest ETA or lease deadline); the child arms one timer for the
 * earliest such time over its queues, and the BLPOP wakes it early when an
 * enqueue pushes a token. No queue sleeps longer than one lease period
 * (capped at 30 s) without a claim: that claim is how an idle child learns
 * of leases other hosts took since, and so takes back a dead host's
 * leases when they expire. The BLPOP timeout is a liveness check only. The
 * child only BLPOPs while it has a free slot and some served queue is
 * neither known to be due nor being claimed, so a busy child leaves wake
 * tokens to idle ones and does not pay a BLPOP per claim. When several
 * queues are due, the free slots are shared by queue weight.
 *
 * Stop (SIGTERM/SIGINT): no more claims, wake connection closed, the due
 * list handed back (unlist.c), work not yet started handed back
 * (release), running work gets conf->grace_ms;
 * when nothing is left in flight every handle is closed and the loop ends.
 * SIGQUIT: the same with no grace. SIGUSR1 reopens the log.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child_impl.h"
#include "live.h"
#include "migrate.h"
#include "pool.h"
#include "tasklet_task.h"
#include "unlist.h"
#include "master.h"

/* ---------------------------------------------------------------- tasks */

void
dq_child_link(dq_child_t *ch, dq_task_t *t)
{
    t->prev = NULL;
    t->next = ch->tasks;
    if (ch->tasks) {
        ch->tasks->prev = t;
    }
    ch->tasks = t;
    dq_child_stat_held(1);          /* for the master's crash report */
    t->held = dq_held_add(t->queue, t->id, t->claim, t->first_run_ms,
                          dq_claimed_history(t));
}

/* The task's function is entered (pool thread or loop): if the child dies
 * now, the master fails it with the queue's backoff (held.c). */
void
dq_child_started(dq_task_t *t)
{
    dq_held_started(t->held, dq_backoff_ms(&t->retry, t->retries + 1));
}

void
dq_child_unlink(dq_child_t *ch, dq_task_t *t)
{
    if (t->prev) {
        t->prev->next = t->next;
    } else {
        ch->tasks = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    t->prev = t->next = NULL;
    dq_child_stat_held(-1);
    dq_held_remove(t->held);
    t->held = 0;
    dq_live_task_end(ch, t);        /* counters + lateness (live.c) */
}

/* ---------------------------------------------------------- wake-ups */

static void dq__blpop(dq_cwake_t *g);
static int dq__wakes_add(dq_child_t *ch, size_t from, size_t to, int start);

static size_t
dq__free_slots(const dq_child_t *ch)
{
    size_t busy = ch->used + ch->reserved;

    return busy >= ch->concurrency ? 0 : ch->concurrency - busy;
}

uint64_t
dq_child_jitter(uint64_t max)
{
    static uint64_t x;

    if (x == 0) {
        x = ((uint64_t) getpid() << 32) ^ uv_hrtime() ^ 0x9e3779b97f4a7c15ULL;
    }
    x ^= x << 13;                 /* xorshift64 */
    x ^= x >> 7;
    x ^= x << 17;
    return max == 0 ? 0 : x % (max + 1);
}

static void
dq__due_cb(uv_timer_t *t)
{
    dq_child_kick(t->data);
}

/* May q take a slot in this kick? Due, below its claim size, and not a
 * queue that is only "maybe more" (its last claim was full) while the
 * child is busy and has fewer than half a claim of free slots (gate),
 * nor one whose shard count is not read yet (conf_wait); never a shard
 * without a max_concurrent share (DQ_LIVE_NO_CLAIMS). */
static int
dq__eligible(const dq_cqueue_t *q, uint64_t now, size_t claim_size, int gate)
{
    return q->due_at <= now && (size_t) q->want < claim_size
           && !(gate && q->more) && !q->ch->qs[q->base].conf_wait
           && q->qc->max_concurrent != DQ_LIVE_NO_CLAIMS;
}

/* A queue's weight (its configuration's, at least 1), shared by the
 * shards of it that are eligible in this slot round: scaled by
 * DQ__WEIGHT_SCALE (divisible by 1..16) so the shares stay integers. */
#define DQ__WEIGHT_SCALE  720720

static int64_t
dq__weight(const dq_cqueue_t *q)
{
    int64_t  w = q->qc->weight > 0 ? q->qc->weight : 1;
    unsigned n = q->ch->qs[q->base].nelig;

    return w * DQ__WEIGHT_SCALE / (n > 0 ? n : 1);
}

void
dq_child_shards(dq_child_t *ch, size_t base, unsigned n)
{
    dq_cqueue_t *b = &ch->qs[base], *q;
    unsigned     i;

    if (n <= b->nshards || ch->stopping) {
        return;
    }
    for (i = b->nshards; i < n && ch->nq < ch->cap_q; i++) {
        q = &ch->qs[ch->nq];
        memset(q, 0, sizeof(*q));
        q->ch = ch;
        q->base = base;
        q->shard = i;
        if (dq_shard_name(q->sname, sizeof(q->sname), b->name, i) == 0
            || dq_live_add_shard(ch, ch->nq, base, n) != 0)
        {
            dq_log_error("queue %.*s: cannot serve shard %u", (int) b->name.len,
                         b->name.ptr, i);
            break;
        }
        q->name = dq_str_c(q->sname);
        q->wake_key_len = dq_key_format(q->wake_key, sizeof(q->wake_key),
                                        q->name, DQ_KEY_WAKE);
        q->due_at = 0;              /* claim it at once */
        ch->nq++;
    }
    if (dq__wakes_add(ch, ch->nq - (i - b->nshards), ch->nq, 1) != 0) {
        dq_log_error("queue %.*s: no wake wait for its new shards (they "
                     "are looked at every %llu ms)", (int) b->name.len,
                     b->name.ptr, (unsigned long long) ch->idle_look_ms);
    }
    dq_log_info("queue %.*s: serving %u shards (was %u)", (int) b->name.len,
                b->name.ptr, i, b->nshards);
    b->nshards = i;
    dq_child_kick(ch);
}

/* Claim from the queues that may have due work while slots are free
 * (shared by weight), then sleep until the earliest known due time.
 * Called once per loop iteration, from the cycle check (dq__cycle_cb),
 * after every completion and reply of the iteration is in. */
static void
dq__kick_now(dq_child_t *ch)
{
    uint64_t     now, next = DQ_NEVER;
    size_t       i, s, w, free_slots, claim_size, half;
    int64_t      total, weight;
    int          all_due, gate;
    dq_cqueue_t *q, *best;

    /* the loop's cached time can be a whole iteration old (tasks ran,
     * replies were parsed): refresh it, so the due timer armed below is
     * not late by that much */
    uv_update_time(&ch->loop);
    now = uv_now(&ch->loop);

    if (ch->stopping) {
        /* what kicked may have been the last thing a stop waited for
         * (a claim reply taking nothing) */
        dq_child_maybe_finish(ch);
        return;
    }
    claim_size = ch->conf->claim_size > 0 ? (size_t) ch->conf->claim_size
                                          : 1;
    free_slots = dq__free_slots(ch);
    /* A busy child draining a queue (its last claim was full) claims
     * again only once half a claim's slots are free: a claim per finished
     * task would carry one or two tasks per call. A queue that just
     * became due (a wake token, its due time, the idle look) is claimed
     * at once, for its lateness; an idle child always claims. */
    half = claim_size < ch->concurrency ? claim_size : ch->concurrency;
    half = half / 2 > 0 ? half / 2 : 1;
    gate = free_slots > 0 && free_slots < half
           && ch->used + ch->reserved > 0;
    /* ... but not for long: with long tasks holding most slots, the free
     * ones are claimed after DQ_GATE_MAX_MS (t/133-claim-gate.t) */
    if (!gate) {
        ch->gate_since = 0;
    } else if (ch->gate_since == 0) {
        ch->gate_since = now;
    } else if (now - ch->gate_since >= DQ_GATE_MAX_MS) {
        gate = 0;
        ch->gate_since = 0;
    }
    if (dq_conn_is_up(ch->cmd_conn) && free_slots > 0) {
        /* Share the free slots among the due queues by weight, one slot
         * at a time (smooth weighted round robin, as nginx picks upstream
         * peers). A slot that falls to a queue whose claim is in flight
         * is kept for it: its claim's reply kicks again. */
        for (i = 0; i < ch->nq; i++) {
            ch->qs[i].want = 0;
            ch->qs[i].nelig = 0;
        }
        /* a sharded queue's weight is shared by its eligible shards,
         * counted once for the round: a shard stops being eligible in it
         * only when its want reaches claim_size (review R4 finding 6: it
         * was counted again for every slot; callgrind, one child draining
         * 20,000 no-op tasks: 24.4k -> 14.9k instructions per cycle with
         * a 16-shard queue, 2.6k -> 1.8k with one queue) */
        for (i = 0; i < ch->nq; i++) {
            if (dq__eligible(&ch->qs[i], now, claim_size, gate)) {
                ch->qs[ch->qs[i].base].nelig++;
            }
        }
        for (s = 0; s < free_slots; s++) {
            best = NULL;
            total = 0;
            for (i = 0; i < ch->nq; i++) {
                q = &ch->qs[i];
                if (!dq__eligible(q, now, claim_size, gate)) {
                    continue;
                }
                weight = dq__weight(q);
                q->cur += weight;
                total += weight;
                if (best == NULL || q->cur > best->cur) {
                    best = q;
                }
            }
            if (best == NULL) {
                break;
            }
            best->cur -= total;
            if (best->claiming) {
                /* its share is kept for it (its claim's reply kicks
                 * again) and the round goes on for the others: stopping
                 * here kept every remaining slot back, so on a cluster,
                 * where each master's replies come on their own, claims
                 * carried ~1 task (bench/cluster_calls.pl) */
                continue;
            }
            if ((size_t) ++best->want >= claim_size) {
                ch->qs[best->base].nelig--;     /* out of this round */
            }
        }
        for (i = 0; i < ch->nq; i++) {
            if (ch->qs[i].want > 0) {
                dq_dispatch_claim(&ch->qs[i], (size_t) ch->qs[i].want);
            }
        }
    }

    /* Look again at every queue at least once per lease period, even one
     * whose last claim found it empty: a lease taken since by another
     * host is only ever seen by a claim, and a host that died with it
     * sends no wake-up. A look inside the lease sees its deadline in the
     * claim reply (next_ms) and the child then sleeps until exactly that
     * deadline, so a dead host's leases come back within `lease` plus a
     * round trip, with no new traffic, for one claim per queue per lease
     * period when idle. The look comes 0-10 % early, at random, so a
     * fleet started (or reconnected) together does not claim in the same
     * millisecond (docs/OPERATIONS.md, "Idle load"). */
    for (i = 0; i < ch->nq; i++) {
        if (ch->qs[i].due_at > now + ch->idle_look_ms) {
            ch->qs[i].due_at = now + ch->idle_look_ms
                               - dq_child_jitter(ch->idle_look_ms / 10);
        }
    }

    for (i = 0; i < ch->nq; i++) {
        if (!ch->qs[i].claiming && ch->qs[i].due_at < next) {
            next = ch->qs[i].due_at;
        }
    }
    if (next == DQ_NEVER || !dq_conn_is_up(ch->cmd_conn)) {
        uv_timer_stop(&ch->due_timer);
    } else if (next > now) {
        uv_timer_start(&ch->due_timer, dq__due_cb, next - now, 0);
    } else if (dq__free_slots(ch) > 0 && !gate) {
        /* due now but not claimed (claim send failed): soon, not hot */
        uv_timer_start(&ch->due_timer, dq__due_cb, 1, 0);
    } else if (dq__free_slots(ch) > 0 && ch->gate_since != 0) {
        /* a gated queue: a finishing task kicks, or the gate ends */
        uv_timer_start(&ch->due_timer, dq__due_cb,
                       ch->gate_since + DQ_GATE_MAX_MS > now
                       ? ch->gate_since + DQ_GATE_MAX_MS - now : 1, 0);
    } else {
        uv_timer_stop(&ch->due_timer);     /* a finishing task kicks */
    }

    /* Block on the wake lists only when a wake could tell the child
     * something: while every served queue has a claim in flight or is
     * known to be due, the child claims again anyway (the claim's reply
     * kicks, or a finishing task does), and a BLPOP would only take a wake
     * token an idle child could use. A queue that is not due keeps the
     * BLPOP armed, so an enqueue on it still wakes a child busy with
     * another queue. Every path that ends a
     * busy spell (a claim reply taking less than asked, a failed claim, a
     * due time in the future) comes back through here and arms it. With
     * several wake waits (a cluster: one per slot), each is looked at for
     * its own queues. */
    for (w = 0; w < ch->nwakes && dq__free_slots(ch) > 0; w++) {
        dq_cwake_t *g = &ch->wakes[w];

        all_due = g->nq > 0;
        for (i = 0; i < g->nq; i++) {
            q = &ch->qs[g->qi[i]];
            if (!q->claiming && q->due_at > now) {
                all_due = 0;
            }
        }
        if (!g->inflight && !(all_due && dq_conn_is_up(ch->cmd_conn))) {
            dq__blpop(g);
        }
    }
}

static void
dq__blpop_retry_cb(uv_timer_t *t)
{
    dq_child_t *ch = t->data;

    for (size_t w = 0; w < ch->nwakes && dq__free_slots(ch) > 0; w++) {
        if (!ch->wakes[w].inflight) {
            dq__blpop(&ch->wakes[w]);
        }
    }
}

static void
dq__blpop_reply(dq_conn_t *r, redisReply *rep, const char *errstr,
                void *data)
{
    dq_cwake_t *g = data;
    dq_child_t *ch = g->ch;
    size_t      i;

    (void) r;
    g->inflight = 0;
    if (ch->stopping) {
        return;
    }
    if (rep == NULL) {
        /* the token may have been popped with the reply lost: the
         * queues are looked at when the wake connection is up again
         * (dq__redis_state) */
        dq_log_debug("wake connection: %s", errstr);
        return;                    /* re-issued when it is up again */
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        dq_log_warn("BLPOP on the wake lists failed: %s; again in 1 s",
                    rep->str);
        uv_timer_start(&ch->blpop_retry, dq__blpop_retry_cb, 1000, 0);
        return;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2
        && rep->element[0]->type == REDIS_REPLY_STRING)
    {
        for (i = 0; i < ch->nq; i++) {
            dq_cqueue_t *q = &ch->qs[i];

            if (q->wake_key_len == rep->element[0]->len
                && memcmp(q->wake_key, rep->element[0]->str,
                          q->wake_key_len) == 0)
            {
                dq_log_debug("woken for queue %.*s", (int) q->name.len,
                             q->name.ptr);
                q->due_at = 0;
                q->more = 0;
                /* a claim in flight may have run in Redis before the
                 * enqueue that pushed this token: its reply ("empty")
                 * must not undo the wake-up (dq__claim_reply) */
                q->woken = q->claiming;
            }
        }
    }
    /* nil: the liveness timeout; nothing to do but block again */
    dq_child_kick(ch);
}

static void
dq__blpop(dq_cwake_t *g)
{
    dq_child_t  *ch = g->ch;
    const char **argv;
    size_t      *len;
    size_t       i, n = g->nq + 2;
    char         tmo[16];

    if (ch->stopping || g->conn == NULL || !dq_conn_is_up(g->conn)) {
        return;
    }
    argv = calloc(n, sizeof(*argv));
    len = calloc(n, sizeof(*len));
    if (argv == NULL || len == NULL) {
        free(argv);
        free(len);
        return;
    }
    argv[0] = "BLPOP";
    len[0] = 5;
    for (i = 0; i < g->nq; i++) {
        argv[i + 1] = ch->qs[g->qi[i]].wake_key;
        len[i + 1] = ch->qs[g->qi[i]].wake_key_len;
    }
    len[n - 1] = (size_t) snprintf(tmo, sizeof(tmo), "%d",
                                   DQ_BLPOP_TIMEOUT_S);
    argv[n - 1] = tmo;
    if (dq_conn_send(g->conn, (int) n, argv, len,
                     (DQ_BLPOP_TIMEOUT_S + 10) * 1000LL, dq__blpop_reply,
                     g) == 0)
    {
        g->inflight = 1;
    }
    free(argv);
    free(len);
}

static void
dq__redis_state(dq_conn_t *r, int up, void *data)
{
    dq_child_t *ch = data;
    size_t      i, w;

    if (r == ch->cmd_conn && up) {
        /* (re)connected: whatever was due meanwhile is due now, and what
         * could not be reported is reported now */
        for (i = 0; i < ch->nq; i++) {
            ch->qs[i].due_at = 0;
            ch->qs[i].more = 0;
        }
        /* the settings and shard counts first: on the same connection,
         * their replies come before the claims' (a sharded queue's
         * shards are served from the first round trip, not the first
         * heartbeat) */
        dq_live_conf_now(ch);
        dq_dispatch_resend(ch);
    }
    for (w = 0; w < ch->nwakes; w++) {
        dq_cwake_t *g = &ch->wakes[w];

        if (r != g->conn) {
            continue;
        }
        if (!up) {
            g->inflight = 0;
            continue;
        }
        /* a BLPOP whose reply was lost (connection dropped, command
         * timeout after Redis popped the token) took a wake-up nobody
         * saw: look at its queues now rather than at the idle look */
        for (i = 0; i < g->nq; i++) {
            ch->qs[g->qi[i]].due_at = 0;
            ch->qs[g->qi[i]].more = 0;
        }
    }
    dq_child_kick(ch);
}

/* ----------------------------------------------------------- heartbeat */

static void
dq__hb_cb(uv_timer_t *t)
{
    dq_child_t *ch = t->data;

    if (dq_conn_is_up(ch->cmd_conn)) {
        dq_heartbeat(ch);
    }
}

/* ---------------------------------------------------------------- cycle */

/* Once per loop iteration that asked for it, after the poll phase (every
 * completion drained by the pool's async, every reply parsed): decide the
 * claims (dq__kick_now), then send the acks and releases that no claim
 * took along. */
static void
dq__cycle_cb(uv_check_t *c)
{
    dq_child_t *ch = c->data;

    uv_check_stop(c);
    uv_idle_stop(&ch->nudge);
    ch->flush_active = 0;
    if (ch->kick_pending) {
        ch->kick_pending = 0;
        dq__kick_now(ch);
    }
    dq_dispatch_flush(ch);
    dq_child_maybe_finish(ch);
}

static void
dq__nudge_cb(uv_idle_t *h)
{
    (void) h;       /* only keeps the poll phase from blocking */
}

static void
dq__cycle_on(dq_child_t *ch)
{
    if (!ch->flush_active) {
        ch->flush_active = 1;
        uv_check_start(&ch->flush, dq__cycle_cb);
        /* asked from a timer (or a check): the poll phase in between
         * must not block, or the decision would wait for I/O */
        uv_idle_start(&ch->nudge, dq__nudge_cb);
    }
}

void
dq_child_flush_on(dq_child_t *ch)
{
    dq__cycle_on(ch);
}

/* Ask for a claim decision in this loop iteration's cycle check. */
void
dq_child_kick(dq_child_t *ch)
{
    ch->kick_pending = 1;
    dq__cycle_on(ch);
}

/* ------------------------------------------------------------ stopping */

static void
dq__close_wakes(dq_child_t *ch)
{
    for (size_t w = 0; w < ch->nwakes; w++) {
        if (ch->wakes[w].conn) {
            dq_conn_close(ch->wakes[w].conn);
            ch->wakes[w].conn = NULL;
        }
    }
}

static void
dq__close_all(dq_child_t *ch)
{
    size_t i;

    uv_close((uv_handle_t *) &ch->due_timer, NULL);
    uv_close((uv_handle_t *) &ch->hb_timer, NULL);
    uv_close((uv_handle_t *) &ch->grace_timer, NULL);
    uv_close((uv_handle_t *) &ch->blpop_retry, NULL);
    uv_close((uv_handle_t *) &ch->redo_timer, NULL);
    uv_close((uv_handle_t *) &ch->flush, NULL);
    uv_close((uv_handle_t *) &ch->nudge, NULL);
    dq_live_close(ch);
    dq_migrate_close(ch);
    dq_timeout_close(ch);
    dq_pool_close(ch->pool);        /* nothing runs: threads joined */
    ch->pool = NULL;
    for (i = 0; i < sizeof(ch->sigs) / sizeof(ch->sigs[0]); i++) {
        uv_close((uv_handle_t *) &ch->sigs[i], NULL);
    }
    dq__close_wakes(ch);
    dq_conn_close(ch->cmd_conn);
    ch->cmd_conn = NULL;
}

/* Once stopping: done when no task, no claim and no command is left. */
void
dq_child_maybe_finish(dq_child_t *ch)
{
    if (!ch->stopping || ch->finished) {
        return;
    }
    if (ch->tasks != NULL || ch->reserved > 0 || ch->flush_active
        || dq_conn_pending(ch->cmd_conn) > 0)
    {
        return;
    }
    ch->finished = 1;
    dq_log_info("stopped");
    dq__close_all(ch);
}

static void
dq__grace_cb(uv_timer_t *t)
{
    dq_child_t *ch = t->data;
    size_t      n = 0;
    dq_task_t  *k;

    for (k = ch->tasks; k; k = k->next) {
        n++;
    }
    dq_log_warn("grace period of %lld ms over with %zu tasks unfinished "
                "or unreported; their leases expire and they run again",
                (long long) ch->conf->grace_ms, n);
    /* pool threads may still be inside task code: no orderly teardown */
    _exit(1);
}

/* SIGQUIT with no task running: the hand-back and release replies get
 * up to this long (the loop ends as soon as they are in) */
#define DQ__QUIT_FLUSH_MS 2000

static void
dq__stop(dq_child_t *ch, int fast)
{
    if (ch->stopping) {
        if (fast) {
            uv_timer_start(&ch->grace_timer, dq__grace_cb, 0, 0);
        }
        return;
    }
    ch->stopping = 1;
    dq_live_leave(ch);
    dq_unlist_on_stop(ch);
    dq_log_info("stopping%s: %zu tasks running", fast ? " now" : "",
                ch->used);
    uv_timer_stop(&ch->due_timer);
    uv_timer_stop(&ch->blpop_retry);
    dq__close_wakes(ch);                /* BLPOP callbacks get NULL */
    dq_conn_stop_retries(ch->cmd_conn); /* no TRYAGAIN back-off outlives
                                           the stop (review RLO) */
    dq_dispatch_stop(ch);
    /* fast with no task running: the unlist and release replies get up
     * to DQ__QUIT_FLUSH_MS (the loop ends as soon as they are in) */
    uv_timer_start(&ch->grace_timer, dq__grace_cb,
                   fast ? (ch->tasks ? 0 : DQ__QUIT_FLUSH_MS)
                        : (uint64_t) ch->conf->grace_ms, 0);
    uv_unref((uv_handle_t *) &ch->grace_timer);
    dq_child_maybe_finish(ch);
}

static void
dq__signal_cb(uv_signal_t *s, int signum)
{
    dq_child_t *ch = s->data;

    switch (signum) {
    case SIGTERM:
    case SIGINT:
        dq__stop(ch, 0);
        break;
    case SIGQUIT:
        dq__stop(ch, 1);
        break;
    case SIGUSR1:
        dq_log_reopen();
        break;
    }
}

/* ---------------------------------------------------------------- main */

/* The wake waits for ch->qs[from..to): one over all of them for one
 * server; for a cluster one per slot among their wake lists (each on its
 * own cluster connection, which connects only to the master of that
 * slot). Called at setup for the configured queues, and again for the
 * shards a queue grows (dq_child_shards): those get waits of their own,
 * so a BLPOP already in flight need not end before they are watched.
 * ch->wakes and the qi block have room for ch->cap_q entries. */
static int
dq__wakes_add(dq_child_t *ch, size_t from, size_t to, int start)
{
    size_t   *qi, i, k, w, first;
    unsigned *slot;
    char      label[48];

    if (ch->wakes == NULL) {
        ch->wakes = calloc(ch->cap_q ? ch->cap_q : 1, sizeof(*ch->wakes));
        qi = calloc(ch->cap_q ? ch->cap_q : 1, sizeof(*qi));
        if (ch->wakes == NULL || qi == NULL) {
            free(qi);
            return -1;
        }
        ch->wakes[0].qi = qi;           /* freed with it (dq_child_main) */
    }
    qi = ch->wakes[0].qi;
    slot = calloc(ch->cap_q ? ch->cap_q : 1, sizeof(*slot));
    if (slot == NULL) {
        return -1;
    }
    for (i = from; i < to; i++) {
        slot[i] = ch->wake_cluster ? dq_cluster_slot(ch->qs[i].wake_key,
                                                     ch->qs[i].wake_key_len)
                                   : 0;
    }
    /* the queues of each wait side by side in qi, in served order */
    first = ch->nwakes;
    for (i = from, k = ch->nqi; i < to; i++) {
        for (w = first; w < ch->nwakes; w++) {
            if (slot[ch->wakes[w].qi[0]] == slot[i]) {
                break;
            }
        }
        if (w < ch->nwakes) {
            continue;                   /* this slot's wait is made */
        }
        ch->wakes[w].ch = ch;
        ch->wakes[w].qi = qi + k;
        for (size_t j = i; j < to; j++) {
            if (slot[j] == slot[i]) {
                qi[k++] = j;
                ch->wakes[w].nq++;
            }
        }
        ch->nwakes++;
    }
    ch->nqi = k;
    for (w = first; w < ch->nwakes; w++) {
        if (ch->wake_cluster) {
            snprintf(label, sizeof(label), "wake, slot %u",
                     slot[ch->wakes[w].qi[0]]);
            ch->wake_ro.label = label;
        } else {
            ch->wake_ro.label = first ? "wake, shards" : "wake";
        }
        ch->wakes[w].conn = dq_conn_new(&ch->loop, &ch->wake_ro,
                                        dq__redis_state, ch);
        if (ch->wakes[w].conn == NULL) {
            free(slot);
            return -1;
        }
        if (start) {
            dq_conn_start(ch->wakes[w].conn);
        }
    }
    free(slot);
    return 0;
}

static int
dq__wakes_new(dq_child_t *ch, const dq_conn_opts_t *ro)
{
    dq_addr_t a;

    ch->wake_cluster = dq_addr_parse(dq_str_c(ro->address), &a, NULL)
                       == DQ_OK && a.nseeds > 0;
    ch->wake_ro = *ro;
    ch->wake_ro.load_scripts = 0;
    return dq__wakes_add(ch, 0, ch->nq, 0);
}

static int
dq__setup(dq_child_t *ch)
{
    const dq_worker_conf_t *conf = ch->conf;
    static const int        signums[] = { SIGTERM, SIGINT, SIGQUIT, SIGUSR1 };
    dq_conn_opts_t         ro;
    size_t                  i;
    int64_t                 hb;

    ch->nq = conf->nqueues;
    /* room for every shard a queue may get (untouched pages cost
     * nothing): ch->qs never moves, so pointers into it stay valid */
    ch->cap_q = ch->nq * DQ_MAX_SHARDS;
    ch->qs = calloc(ch->cap_q ? ch->cap_q : 1, sizeof(*ch->qs));
    if (ch->qs == NULL) {
        return -1;
    }
    for (i = 0; i < ch->nq; i++) {
        dq_cqueue_t *q = &ch->qs[i];

        q->ch = ch;
        q->qc = &conf->queues[i];
        q->name = dq_str_c(conf->queues[i].name);
        q->base = i;
        q->nshards = 1;
        /* a limit from the file is split over the queue's shards: shard
         * 0 claiming with the whole of it before N is known exceeded it
         * (live.c reads N on connect) */
        q->conf_wait = conf->queues[i].max_concurrent > 0
                       || conf->queues[i].rate > 0;
        q->wake_key_len = dq_key_format(q->wake_key, sizeof(q->wake_key),
                                        q->name, DQ_KEY_WAKE);
        q->due_at = 0;
        if (q->wake_key_len == 0) {
            dq_log_error("invalid queue name \"%s\"", conf->queues[i].name);
            return -1;
        }
    }

    ch->concurrency = conf->concurrency > 0 ? (size_t) conf->concurrency
                                            : (size_t) conf->threads;
    ch->idle_look_ms = conf->lease_ms < DQ_IDLE_LOOK_MAX_MS
                       ? (uint64_t) conf->lease_ms : DQ_IDLE_LOOK_MAX_MS;
    if (ch->idle_look_ms < 1) {
        ch->idle_look_ms = 1;
    }
    uv_timer_init(&ch->loop, &ch->due_timer);
    uv_timer_init(&ch->loop, &ch->hb_timer);
    uv_timer_init(&ch->loop, &ch->grace_timer);
    uv_timer_init(&ch->loop, &ch->blpop_retry);
    uv_timer_init(&ch->loop, &ch->redo_timer);
    ch->redo_timer.data = ch;
    uv_check_init(&ch->loop, &ch->flush);
    uv_idle_init(&ch->loop, &ch->nudge);
    ch->due_timer.data = ch->hb_timer.data = ch->grace_timer.data = ch;
    ch->blpop_retry.data = ch;
    ch->flush.data = ch;
    ch->nudge.data = ch;
    for (i = 0; i < sizeof(signums) / sizeof(signums[0]); i++) {
        uv_signal_init(&ch->loop, &ch->sigs[i]);
        ch->sigs[i].data = ch;
        uv_signal_start(&ch->sigs[i], dq__signal_cb, signums[i]);
    }

    memset(&ro, 0, sizeof(ro));
    ro.address = conf->redis_address;
    ro.password = conf->redis_password;
    ro.db = conf->redis_db;
    ro.label = "commands";
    ro.load_scripts = 1;
    ch->cmd_conn = dq_conn_new(&ch->loop, &ro, dq__redis_state, ch);
    if (ch->cmd_conn == NULL || dq__wakes_new(ch, &ro) != 0) {
        return -1;
    }

    /* the pool's threads start now, not on the first task's clock */
    ch->pool = dq_pool_new(&ch->loop, conf->threads > 0 ? conf->threads : 4,
                           dq_dispatch_run, dq_dispatch_pool_done, ch);
    if (ch->pool == NULL) {
        return -1;
    }

    hb = conf->lease_ms / 3 > 0 ? conf->lease_ms / 3 : 1;
    uv_timer_start(&ch->hb_timer, dq__hb_cb, (uint64_t) hb, (uint64_t) hb);
    if (dq_timeout_start(ch) != 0 || dq_live_start(ch) != 0
        || dq_migrate_start(ch) != 0)
    {
        return -1;
    }
    /* the tasklet runtime on this loop, before any task runs (so a plain
     * function on a pool thread cannot start a runtime of its own) */
    if (dq_tasklet_child_init(ch) != 0) {
        return -1;
    }
    dq_conn_start(ch->cmd_conn);
    for (i = 0; i < ch->nwakes; i++) {
        dq_conn_start(ch->wakes[i].conn);
    }
    return 0;
}

static void
dq__close_walk(uv_handle_t *h, void *arg)
{
    (void) arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

int
dq_child_main(const dq_worker_conf_t *conf, int index)
{
    dq_child_t *ch;
    char        buf[32];
    int         status;
    dq_task_t  *t;

    signal(SIGPIPE, SIG_IGN);
    snprintf(buf, sizeof(buf), "child %d", index);
    dq_log_set_prefix(buf);

    ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        return 1;
    }
    ch->conf = conf;
    ch->index = index;
    if (uv_loop_init(&ch->loop) != 0) {
        free(ch);
        return 1;
    }
    dq_task_set_worker_redis(conf->redis_address, conf->redis_password,
                             conf->redis_db);
    dq_task_set_worker_conf(conf);
    ch->loader = dq_loader_new(conf->libraries, conf->nlibraries);
    if (ch->loader == NULL || dq__setup(ch) != 0) {
        dq_log_error("child cannot start");
        status = 1;
        if (ch->cmd_conn) {
            dq_conn_close(ch->cmd_conn);
        }
        dq__close_wakes(ch);
        dq_pool_close(ch->pool);
        ch->pool = NULL;
        uv_walk(&ch->loop, dq__close_walk, NULL);
        goto done;
    }
    dq_log_info("started: %zu queues, %d threads, concurrency %zu, "
                "claim size %d, lease %lld ms", ch->nq, conf->threads,
                ch->concurrency, conf->claim_size, (long long) conf->lease_ms);

    uv_run(&ch->loop, UV_RUN_DEFAULT);
    status = ch->exit_status;

done:
    dq_tasklet_child_fini(ch);             /* closes its idle handle */
    uv_run(&ch->loop, UV_RUN_DEFAULT);     /* close callbacks */
    if (uv_loop_close(&ch->loop) != 0) {
        dq_log_warn("event loop closed with handles still open");
    }
    while ((t = ch->tasks) != NULL) {
        dq_child_unlink(ch, t);
        dq_task_free(t);
    }
    for (size_t i = 0; i < ch->nq; i++) {
        free(ch->qs[i].acks);
        free(ch->qs[i].rels);
    }
    free(ch->qs);
    if (ch->wakes) {
        free(ch->wakes[0].qi);          /* one block for every wait */
    }
    free(ch->wakes);
    free(ch->redo);
    dq_live_free(ch);
    dq_migrate_free(ch);
    dq_loader_free(ch->loader);
    dq_task_set_worker_redis(NULL, NULL, 0);
    dq_task_set_worker_conf(NULL);
    free(ch);
    return status;
}
