/*
 * deferred-worker — claim, run, and report tasks (one child's work).
 *
 *   claim    dq_cmd_claim for up to the free slots and claim_size; the
 *            reply's next_ms becomes the queue's due time (no polling);
 *   check    bad tasks (missing or undecodable envelope, retry limit
 *            already passed after lease expiries) are buried at once with
 *            their reason and never run; a task this worker cannot run (no
 *            function or handler registered, its library failed to load)
 *            is released without charge for another worker, after a
 *            back-off of its own (logged once per function);
 *   run      plain functions on the child's own pool (pool.c): a claim's
 *            tasks handed over in one call, completions drained by one
 *            uv_async per loop iteration; DQ_FN_LOOP functions right on
 *            the loop thread once the claim's pool tasks are handed over,
 *            timed (judged against their timeout when they return),
 *            moved to the pool in every child (master.h) if one call runs
 *            past DQ_FN_LOOP_MAX_US;
 *   report   ok -> ack, grouped per queue and loop iteration (flushed from
 *            a uv_check); fail / retry-quietly -> retry after
 *            dq_backoff_ms, or bury once exhausted; permanent -> bury;
 *            the calls, their replies and resends are report.c's.
 *
 * Fencing: each claim call draws a random claim id (dq_claim_id_new) that
 * every later call for its tasks names; a reply of 0 is a "lease lost"
 * warning: the task belongs to another worker now and this one's result
 * is dropped. A claim whose reply was lost (the connection dropped) is
 * given back whole with release_claim once Redis is back. A task is freed only
 * when the reply to its last command arrived (or the command failed).
 */
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "child_impl.h"
#include "dispatch_impl.h"
#include "master.h"
#include "config.h"
#include "pool.h"
#include "tasklet_task.h"

static int64_t
dq__redis_now(const dq_task_t *t, const dq_child_t *ch)
{
    return t->claim_now_ms
           + (int64_t) (uv_now((uv_loop_t *) &ch->loop) - t->claim_loop_ms);
}

/* ----------------------------------------------------------------- run */

/* Why an exhausted task is buried: which limits, and the last error. With
 * both a retry limit and an age limit, a task is dead only once both are
 * reached (App Engine's rule, dq_retry_exhausted). */
static void
dq__limit_reason(char *buf, size_t size, const dq_task_t *t, int64_t failed,
                 int64_t now, const char *last)
{
    const dq_retry_t *r = &t->retry;
    int64_t           age = now - (t->first_run_ms ? t->first_run_ms : now);

    if (r->age_limit_ms > 0 && r->retry_limit >= 0) {
        snprintf(buf, size, "retry limit of %lld and age limit of %lld ms "
                 "reached (first run %lld ms ago) after %lld failed "
                 "attempts: %s", (long long) r->retry_limit,
                 (long long) r->age_limit_ms, (long long) age,
                 (long long) failed, last);
    } else if (r->age_limit_ms > 0) {
        snprintf(buf, size, "age limit of %lld ms reached (first run %lld "
                 "ms ago) after %lld failed attempts: %s",
                 (long long) r->age_limit_ms, (long long) age,
                 (long long) failed, last);
    } else {
        snprintf(buf, size, "retry limit reached after %lld failed "
                 "attempts: %s", (long long) failed, last);
    }
}

static void
dq__run(dq_task_t *t)
{
    __atomic_store_n(&t->run_start_ms, dq_timeout_clock_ms(),
                     __ATOMIC_RELEASE);
    t->ran = 1;
    dq_child_started(t);
    t->result = dq_task_execute(t);
}

/* Pool thread: run one plain task. Finished OK: marked so in the master's
 * table right here, not when the loop drains the completion, so a child
 * killed meanwhile (its loop stalled) has the master ack it rather than
 * charge it and run it again. */
void
dq_dispatch_run(dq_task_t *t)
{
    dq__run(t);
    if (t->result == DQ_TASK_OK) {
        dq_held_done(t->held, t->name);
    }
}

/* Append s (at most room - 1 bytes in all) to buf at *n. */
static void
dq__put(char *buf, size_t room, size_t *n, const char *s)
{
    size_t k = strlen(s);

    if (k > room - 1 - *n) {
        k = room - 1 - *n;
    }
    memcpy(buf + *n, s, k);
    *n += k;
}

static void
dq__put_u64(char *buf, size_t room, size_t *n, uint64_t v)
{
    char  d[24];
    char *p = d + sizeof(d);

    *--p = '\0';
    do {
        *--p = (char) ('0' + v % 10);
        v /= 10;
    } while (v);
    dq__put(buf, room, n, p);
}

/* "task finished: queue=Q id=I function=F attempt=N duration_ms=D
 * result=R", built without printf: a busy child logs one per task. */
static void
dq__log_finished(dq_child_t *ch, const dq_task_t *t)
{
    char    m[1024];
    size_t  n = 0;

    dq__put(m, sizeof(m), &n, "task finished: queue=");
    dq__put(m, sizeof(m), &n, t->queue);
    dq__put(m, sizeof(m), &n, " id=");
    dq__put(m, sizeof(m), &n, t->id);
    dq__put(m, sizeof(m), &n, " function=");
    dq__put(m, sizeof(m), &n, dq__s(t->func));
    dq__put(m, sizeof(m), &n, " attempt=");
    dq__put_u64(m, sizeof(m), &n, (uint64_t) (t->retries + 1));
    dq__put(m, sizeof(m), &n, " duration_ms=");
    dq__put_u64(m, sizeof(m), &n, uv_now(&ch->loop) - t->start_loop_ms);
    dq__put(m, sizeof(m), &n, t->result == DQ_TASK_OK ? " result=ok"
                              : t->result == DQ_TASK_PERMANENT
                                ? " result=permanent"
                              : t->result == DQ_TASK_RETRY_QUIET
                                ? " result=retry" : " result=failed");
    m[n] = '\0';
    dq_logf(DQ_LOG_INFO, "%s", m);
}

static void
dq__finished(dq_child_t *ch, dq_task_t *t)
{
    int64_t     failed, now, delay;
    char        reason[700], q[DQ_LOG_QUOTE_MAX];
    int         quiet;

    /* one line per task that ran, whatever its result (the failures'
     * details follow at error) */
    if (t->start_loop_ms && dq_log_level() >= DQ_LOG_INFO) {
        dq__log_finished(ch, t);
    }

    switch (t->result) {
    case DQ_TASK_OK:
        t->state = DQ_TS_DONE;
        if (t->q->nacks == t->q->cap_acks) {
            size_t      cap = t->q->cap_acks ? t->q->cap_acks * 2 : 64;
            dq_task_t **a = realloc(t->q->acks, cap * sizeof(*a));

            if (a == NULL) {
                dq_log_error("out of memory queueing the ack of task %s",
                             t->id);
                dq_child_unlink(ch, t);
                dq_task_free(t);
                return;
            }
            t->q->acks = a;
            t->q->cap_acks = cap;
        }
        t->q->acks[t->q->nacks++] = t;
        dq_child_flush_on(ch);
        return;

    case DQ_TASK_PERMANENT:
        if (t->error[0] == '\0') {
            snprintf(t->error, sizeof(t->error), "permanent failure");
        }
        dq__bury_bad(ch, t, t->error);
        return;

    case DQ_TASK_FAIL:
    case DQ_TASK_RETRY_QUIET:
    default:
        break;
    }

    quiet = t->result == DQ_TASK_RETRY_QUIET;
    if (t->error[0] == '\0') {
        snprintf(t->error, sizeof(t->error), "%s",
                 quiet ? "retry requested" : "failed (no error message)");
    }
    failed = t->retries + 1;
    now = dq__redis_now(t, ch);
    if (dq_retry_exhausted(&t->retry, failed,
                           t->first_run_ms ? t->first_run_ms : now, now))
    {
        dq__limit_reason(reason, sizeof(reason), t, failed, now, t->error);
        memcpy(t->error, reason, sizeof(t->error) - 1);
        t->error[sizeof(t->error) - 1] = '\0';
        dq__bury_bad(ch, t, t->error);
        return;
    }
    delay = dq_backoff_ms(&t->retry, failed);
    if (quiet) {
        dq_log_debug("task retry: queue=%s id=%s name=%s function=%s "
                     "attempt=%lld error=\"%s\" retry_in_ms=%lld", t->queue,
                     t->id, dq__s(t->name), t->func, (long long) failed,
                     dq_log_quote(q, sizeof(q), t->error), (long long) delay);
    } else {
        dq_log_error("task failed: queue=%s id=%s name=%s function=%s "
                     "attempt=%lld error=\"%s\" retry_in_ms=%lld", t->queue,
                     t->id, dq__s(t->name), t->func, (long long) failed,
                     dq_log_quote(q, sizeof(q), t->error), (long long) delay);
    }
    dq__retry(ch, t, delay);
}

/* A task back from the pool, or from a tasklet (tasklet_task.c); canceled:
 * it never started (graceful stop) and its lease is handed back. */
void
dq_dispatch_done(dq_child_t *ch, dq_task_t *t, int canceled)
{
    ch->used--;
    if (t->timed_out) {
        /* timeout.c failed it already; its lease is gone */
        dq_log_warn("task %s (queue %s) returned after its timeout; result "
                    "dropped", t->id, t->queue);
        dq_child_unlink(ch, t);
        dq_task_free(t);
        dq_child_maybe_finish(ch);
        return;
    }
    if (t->lease_lost) {
        /* a tasklet task canceled because its lease was lost
         * (heartbeat.c): the task is someone else's now; no report */
        dq_log_warn("task %s (queue %s) canceled: its lease was lost",
                    t->id, t->queue);
        dq_child_unlink(ch, t);
        dq_task_free(t);
        dq_child_maybe_finish(ch);
        dq_child_kick(ch);
        return;
    }
    if (canceled) {
        /* never started (graceful stop): hand the lease back */
        t->state = DQ_TS_DONE;
        if (t->q->nrels == t->q->cap_rels) {
            size_t      cap = t->q->cap_rels ? t->q->cap_rels * 2 : 64;
            dq_task_t **a = realloc(t->q->rels, cap * sizeof(*a));

            if (a == NULL) {
                dq_child_unlink(ch, t);
                dq_task_free(t);
                dq_child_maybe_finish(ch);
                return;
            }
            t->q->rels = a;
            t->q->cap_rels = cap;
        }
        t->q->rels[t->q->nrels++] = t;
        dq_child_flush_on(ch);
        return;
    }
    dq_child_stat_done(1);
    if (t->result == DQ_TASK_OK) {
        dq_held_done(t->held, t->name);   /* a crash now: the master acks */
    }
    dq__finished(ch, t);
    dq_child_kick(ch);
}

/* A DQ_FN_LOOP function's task, run right here on the loop thread (no
 * hand-off), timed: a call longer than DQ_FN_LOOP_MAX_US moves the
 * function to the pool for the rest of this child's life (logged once).
 * No timer can stop a call on the loop thread, so its time limit
 * (timeout / function_timeout) is judged when it returns: past it, the
 * task fails as timed out whatever it returned (charged, retried or
 * buried, the pool's error text; timeout.c). */
void
dq__run_on_loop(dq_child_t *ch, dq_task_t *t)
{
    uint64_t t0 = uv_hrtime(), us;
    int64_t  limit;

    dq_loop_enter(t->func);         /* the master reads it if we die */
    dq__run(t);
    dq_loop_enter(NULL);
    us = (uv_hrtime() - t0) / 1000;
    limit = dq_conf_timeout(ch->conf, t->q->qc, t->func);
    if (limit > 0 && us / 1000 >= (uint64_t) limit) {
        t->result = DQ_TASK_FAIL;
        snprintf(t->error, sizeof(t->error), "timed out after %llu ms "
                 "(timeout %lld ms); a DQ_FN_LOOP call cannot be stopped: "
                 "judged when it returned", (unsigned long long) (us / 1000),
                 (long long) limit);
    }
    if (us > DQ_FN_LOOP_MAX_US && !t->fn->loop_demoted) {
        ((dq_fn_entry_t *) t->fn)->loop_demoted = 1;
        (void) dq_loop_demote(t->func);     /* for every child */
        dq_log_warn("function \"%s\" (flagged DQ_FN_LOOP) ran %llu us on "
                    "the loop thread, more than %d us: it runs on the pool "
                    "from now on, in every child (logged once)", t->func,
                    (unsigned long long) us, DQ_FN_LOOP_MAX_US);
    }
    dq_dispatch_done(ch, t, 0);
}

/* May this DQ_FN_LOOP function run on the loop thread? Not once it was
 * demoted, here or by another child of this worker (master.h). */
static int
dq__loop_ok(dq_task_t *t)
{
    dq_fn_entry_t *fe = (dq_fn_entry_t *) t->fn;

    if (fe->loop_demoted) {
        return 0;
    }
    if (dq_loop_is_demoted(t->func)) {
        fe->loop_demoted = 1;
        dq_log_warn("function \"%s\" (flagged DQ_FN_LOOP) runs on the pool: "
                    "it broke its promise in an earlier child (logged once)",
                    t->func);
        return 0;
    }
    return 1;
}

/* Loop thread: a plain task back from the pool (ran) or taken back from
 * its queue before it started (canceled, graceful stop). */
void
dq_dispatch_pool_done(dq_task_t *t, void *data)
{
    dq_dispatch_done(data, t, 0);
}

static void
dq__pool_canceled(dq_task_t *t, void *data)
{
    dq_dispatch_done(data, t, 1);
}

/* ------------------------------------------------------- cannot run here */

/* A function this worker cannot run (none registered, or its library
 * failed to load): another worker may. Its tasks are released without
 * charge, after a back-off of their own that grows with how long the
 * function has been missing here (1 s .. DQ__UNRUNNABLE_MAX_MS), so a
 * worker without the function does not spin on them; the first time per
 * function it is logged (with the libraries that failed to load). */
#define DQ__UNRUNNABLE_MIN_MS  1000
#define DQ__UNRUNNABLE_MAX_MS  30000

typedef struct dq__missing_s {
    struct dq__missing_s *next;
    uint64_t              since;    /* loop ms it was first missing */
    char                  func[];
} dq__missing_t;

static dq__missing_t *dq__missing;   /* one child per process */

void
dq__unrunnable(dq_child_t *ch, dq_task_t *t)
{
    dq__report_t     *b;
    dq__missing_t   *m;
    dq_lease_item_t  it;
    dq_cmd_t         cmd;
    uint64_t         now = uv_now(&ch->loop), delay;
    int64_t          lim;
    const char      *le;
    char             reason[512];
    int              rc;

    for (m = dq__missing; m; m = m->next) {
        if (strcmp(m->func, t->func) == 0) {
            break;
        }
    }
    if (m == NULL) {
        le = dq_loader_errors(ch->loader);
        dq_log_warn("function \"%s\" (queue %s) is not registered here%s%s"
                    "%s: its tasks are released for other workers, no "
                    "attempt charged (logged once)", t->func, t->queue,
                    le ? " (task libraries that failed to load: " : "",
                    le ? le : "", le ? ")" : "");
        m = malloc(sizeof(*m) + strlen(t->func) + 1);
        if (m != NULL) {
            m->since = now;
            strcpy(m->func, t->func);
            m->next = dq__missing;
            dq__missing = m;
        }
    }
    delay = m ? now - m->since : 0;
    lim = ch->conf->unrunnable_limit_ms;
    if (lim > 0 && m != NULL && now - m->since >= (uint64_t) lim
        && (t->env.created_ms <= 0
            || t->claim_now_ms - t->env.created_ms >= lim))
    {
        /* nobody ran it for that long, while its function was missing
         * here all along: take it for missing everywhere */
        snprintf(reason, sizeof(reason), "no worker has function \"%s\" "
                 "(missing here for %llu ms, the task is older than "
                 "unrunnable_limit %lld ms)", t->func,
                 (unsigned long long) (now - m->since), (long long) lim);
        dq__bury_bad(ch, t, reason);
        return;
    }
    if (delay < DQ__UNRUNNABLE_MIN_MS) {
        delay = DQ__UNRUNNABLE_MIN_MS;
    } else if (delay > DQ__UNRUNNABLE_MAX_MS) {
        delay = DQ__UNRUNNABLE_MAX_MS;
    }
    t->retry_delay_ms = (int64_t) delay;
    if ((b = dq__report_one(ch, t, DQ_OP_UNRUNNABLE, &it)) == NULL) {
        return;
    }
    dq_cmd_init(&cmd);
    rc = dq_cmd_release(&cmd, dq_str_c(t->queue), &it, 1, (int64_t) delay,
                        t->func);
    dq__report_send(b, &cmd, rc);
}

/* A claimed task: bury it if it cannot run, start it if it is a tasklet;
 * 1 = a plain task for the pool (the caller hands a claim's plain tasks
 * over in one dq_pool_submit), 2 = one for the loop thread (the caller
 * runs it with dq__run_on_loop once the pool has the others: a loop call
 * that blocks must not hold them back). */
int
dq__start(dq_child_t *ch, dq_task_t *t, int64_t now_ms)
{
    char reason[1024];

    if (t->decoded != 1) {
        dq__bury_bad(ch, t, t->error);
        return 0;
    }
    dq_retry_merge(&t->retry, &t->env.retry, &t->q->qc->retry);

    /* Lease expiries count as failed attempts without a worker deciding
     * on them: check here. Judge at the moment the last attempt failed
     * (failed_ms, kept by the scripts), not now, or the age limit would
     * catch a task one run early. */
    if (t->retries > 0
        && dq_retry_exhausted(&t->retry, t->retries,
                              t->first_run_ms ? t->first_run_ms : now_ms,
                              t->failed_ms ? t->failed_ms : now_ms))
    {
        dq__limit_reason(reason, sizeof(reason), t, t->retries, now_ms,
                         "the last lease expired, or the limits changed");
        dq__bury_bad(ch, t, reason);
        return 0;
    }
    if (t->fn == NULL && t->handler == NULL) {
        dq__unrunnable(ch, t);
        return 0;
    }
    if (ch->stopping) {
        t->state = DQ_TS_QUEUED;
        ch->used++;
        dq_dispatch_done(ch, t, 1);
        return 0;
    }
    if (t->fn != NULL && (t->fn->fn->flags & DQ_FN_TASKLET)) {
        /* a coroutine on this loop, not the pool (tasklet_task.c) */
        t->state = DQ_TS_QUEUED;
        ch->used++;
        dq_tasklet_child_start(ch, t);
        return 0;
    }
    t->state = DQ_TS_QUEUED;
    t->start_loop_ms = uv_now(&ch->loop);
    ch->used++;
    if (t->fn != NULL && t->handler == NULL
        && (t->fn->fn->flags & DQ_FN_LOOP) && dq__loop_ok(t))
    {
        return 2;
    }
    return 1;
}

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
        if (c->acks != NULL) {
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
    for (i = 0; i < nloop; i++) {
        dq__run_on_loop(ch, started[c->asked + i]);
    }
    free(started);

    if (res.n >= c->asked || woken) {
        /* a full claim: maybe more; or a wake token came while the claim
         * was in flight: what it announced may be newer than the claim */
        q->due_at = now;
        q->more = !woken;
    } else if (res.next_ms < 0) {
        q->due_at = DQ_NEVER;                 /* empty: the wake list says */
    } else {
        /* next_ms counts from the script's TIME (res.now_ms) */
        q->due_at = dq__due_loop_ms(c->sent_ms, res.now_ms,
                                    res.next_ms > 0 ? res.next_ms : 1);
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
    if (rc != DQ_OK
        || dq_conn_send_cmd(ch->cmd_conn, &cmd, DQ_CMD_TIMEOUT_MS,
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

/* Graceful stop: work still waiting in the pool's queue is taken back and
 * released; running work finishes. */
void
dq_dispatch_stop(dq_child_t *ch)
{
    dq_tasklet_child_stop(ch);   /* tasklet tasks still waiting for a slot */
    (void) dq_pool_cancel(ch->pool, dq__pool_canceled, ch);
}

/* ------------------------------------------ give back a lost claim */

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
