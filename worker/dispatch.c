/*
 * deferred-worker — a child's claimed tasks from check to result: claims
 * are claim.c's, the calls that report results report.c's.
 *
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
 *            past DQ_FN_LOOP_MAX_US and blocked the loop (on the CPU that
 *            long, or waiting: a preempted call is not demoted);
 *   result   ok -> ack, queued per queue for the next claim or flush
 *            (report.c); fail / retry-quietly -> retry after
 *            dq_backoff_ms, or bury once exhausted; permanent -> bury.
 */
#define _GNU_SOURCE     /* RUSAGE_THREAD */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

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
        if (dq__push(&t->q->acks, &t->q->nacks, &t->q->cap_acks, t) != 0) {
            dq_log_error("out of memory queueing the ack of task %s", t->id);
            dq_child_unlink(ch, t);
            dq_task_free(t);
            return;
        }
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
        if (dq__push(&t->q->rels, &t->q->nrels, &t->q->cap_rels, t) != 0) {
            dq_child_unlink(ch, t);
            dq_task_free(t);
            dq_child_maybe_finish(ch);
            return;
        }
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

/* The loop thread's own clocks at one moment: the wall clock, its CPU
 * time (CLOCK_THREAD_CPUTIME_ID, exact; getrusage's CPU figures move only
 * at scheduler ticks, up to a tick late) and how many times it left the
 * CPU to wait (getrusage RUSAGE_THREAD ru_nvcsw: a sleep, I/O, a lock;
 * a preemption is counted in ru_nivcsw, not here). Two system calls: taken
 * once per run of loop calls, or per DQ__LOOP_MARK_NS of them. */
typedef struct {
    uint64_t  wall_ns;
    uint64_t  cpu_ns;
    long      nvcsw;
    long      nivcsw;
    int       ok;         /* both read */
} dq__clocks_t;

#define DQ__LOOP_MARK_NS  100000

static void
dq__clocks(dq__clocks_t *c, uint64_t wall_ns)
{
    struct timespec ts;
    struct rusage   ru;

    c->wall_ns = wall_ns;
    c->cpu_ns = 0;
    c->nvcsw = 0;
    c->nivcsw = 0;
    c->ok = 0;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0
        && getrusage(RUSAGE_THREAD, &ru) == 0)
    {
        c->cpu_ns = (uint64_t) ts.tv_sec * 1000000000u
                    + (uint64_t) ts.tv_nsec;
        c->nvcsw = ru.ru_nvcsw;
        c->nivcsw = ru.ru_nivcsw;
        c->ok = 1;
    }
}

/* Did a DQ_FN_LOOP call of wall_us (> DQ_FN_LOOP_MAX_US), started at
 * start_ns, block the loop? Only when it ran on the CPU for longer than
 * DQ_FN_LOOP_MAX_US, left the CPU to wait, or was switched out more than
 * once (ru_nivcsw: a sched_yield() wait counts there): a call preempted
 * once on a busy host (its wall time is someone else's CPU) is not the
 * function's fault.
 * The CPU figure is a lower bound: the mark's CPU before the call is at
 * most its wall time (exact unless preempted in between, then low by at
 * most DQ__LOOP_MARK_NS). The waits counted since the mark may be an
 * earlier call's (within DQ__LOOP_MARK_NS). Either clock unread: the
 * wall time alone decides (blocked). *mark moves to now. */
static int
dq__loop_blocked(dq__clocks_t *mark, uint64_t start_ns, uint64_t end_ns,
                 uint64_t *cpu_us, long *waits, long *yields)
{
    dq__clocks_t now;
    uint64_t     before, cpu;
    int          ok;

    dq__clocks(&now, end_ns);
    ok = now.ok && mark->ok;
    before = start_ns - mark->wall_ns;
    cpu = ok ? now.cpu_ns - mark->cpu_ns : 0;
    cpu = cpu > before ? cpu - before : 0;
    *cpu_us = cpu / 1000;
    *waits = ok ? now.nvcsw - mark->nvcsw : 0;
    /* a sched_yield() that gives the CPU away counts as involuntary: a
     * call that waits by yielding (a spin-then-yield lock, a wait for
     * another thread on a busy CPU) switches out again and again, where
     * a preemption is one switch (review 9Z, finding 1) */
    *yields = ok ? now.nivcsw - mark->nivcsw : 0;
    *mark = now;
    return !ok || *cpu_us > DQ_FN_LOOP_MAX_US || *waits > 0
           || *yields > 1;
}

/* The DQ_FN_LOOP functions' tasks of a claim, run right here on the loop
 * thread (no hand-off), one after the other, timed: a call longer than
 * DQ_FN_LOOP_MAX_US that blocked the loop (dq__loop_blocked: on the CPU
 * that long, or waiting) moves the function to the pool for the rest of
 * this child's life (logged once); one only preempted for that long stays
 * (a debug line). No timer can stop a call on the loop thread, so its
 * time limit (timeout / function_timeout) is judged on the wall clock when
 * it returns: past it, the task fails as timed out whatever it returned
 * (charged, retried or buried, the pool's error text; timeout.c). */
void
dq__run_on_loop(dq_child_t *ch, dq_task_t **ts, size_t n)
{
    dq__clocks_t mark;
    dq_task_t   *t;
    uint64_t     t0, t1, us, cpu_us;
    int64_t      limit;
    long         waits, yields;
    size_t       i;

    mark.wall_ns = 0;
    for (i = 0; i < n; i++) {
        t = ts[i];
        t0 = uv_hrtime();
        if (i == 0 || t0 - mark.wall_ns > DQ__LOOP_MARK_NS) {
            dq__clocks(&mark, t0);
        }
        /* the loop's clock read before each call and after a call of a
         * ms or more: its log line's duration_ms is its own, and the
         * timers set after it start from now, not from the claim's
         * reply (review 9Z finding 4, review 9L finding 1) */
        uv_update_time(&ch->loop);
        t->start_loop_ms = uv_now(&ch->loop);
        dq_loop_enter(t->func);     /* the master reads it if we die */
        dq__run(t);
        dq_loop_enter(NULL);
        t1 = uv_hrtime();
        us = (t1 - t0) / 1000;
        if (us >= 1000) {
            uv_update_time(&ch->loop);
        }
        limit = dq_conf_timeout(ch->conf, t->q->qc, t->func);
        if (limit > 0 && us / 1000 >= (uint64_t) limit) {
            t->result = DQ_TASK_FAIL;
            snprintf(t->error, sizeof(t->error), "timed out after %llu ms "
                     "(timeout %lld ms); a DQ_FN_LOOP call cannot be "
                     "stopped: judged when it returned",
                     (unsigned long long) (us / 1000), (long long) limit);
        }
        if (us > DQ_FN_LOOP_MAX_US && !t->fn->loop_demoted) {
            if (dq__loop_blocked(&mark, t0, t1, &cpu_us, &waits, &yields))
            {
                ((dq_fn_entry_t *) t->fn)->loop_demoted = 1;
                (void) dq_loop_demote(t->func);     /* for every child */
                dq_log_warn("function \"%s\" (flagged DQ_FN_LOOP) ran %llu "
                            "us on the loop thread, more than %d us: it runs "
                            "on the pool from now on, in every child (logged "
                            "once; %llu us of it on the CPU, off the CPU to "
                            "wait %ld times, switched out %ld times)",
                            t->func, (unsigned long long) us,
                            DQ_FN_LOOP_MAX_US, (unsigned long long) cpu_us,
                            waits, yields);
            } else {
                dq_log_debug("function \"%s\" (flagged DQ_FN_LOOP) ran %llu "
                             "us on the loop thread, %llu us of it on the "
                             "CPU, no wait, switched out %ld times: "
                             "preempted, it stays there",
                             t->func, (unsigned long long) us,
                             (unsigned long long) cpu_us, yields);
            }
        }
        dq_dispatch_done(ch, t, 0);
    }
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

/* Graceful stop: work still waiting in the pool's queue is taken back and
 * released; running work finishes. */
void
dq_dispatch_stop(dq_child_t *ch)
{
    dq_tasklet_child_stop(ch);   /* tasklet tasks still waiting for a slot */
    (void) dq_pool_cancel(ch->pool, dq__pool_canceled, ch);
}
