/*
 * deferred-worker — the per-task run time limit (a queue's `timeout`, or
 * a function's `function_timeout`, which wins).
 *
 * A thread cannot be stopped safely in the middle of task code, so a plain
 * function that runs past its queue's timeout is handled like this:
 *
 *   1. the task counts as failed at once: retry with backoff (or bury if
 *      its retries are exhausted) under its fencing token, with the error
 *      "timed out after N ms"; its lease leaves the lease set, so the
 *      heartbeat no longer extends it and, if the function ever returns,
 *      its ack is fenced (nothing is run twice by this child);
 *   2. the child stops like on SIGTERM (it raises SIGTERM to itself): no
 *      new claims, unstarted tasks released, the other running tasks
 *      finish within the grace period;
 *   3. when only timed-out tasks are left and every Redis reply is in, the
 *      child _exit()s with DQ_CHILD_EXIT_REPLACE (its stuck threads die
 *      with it) and the master starts a fresh child at once.
 *
 * A check timer walks the child's tasks every timeout/10 (10 ms .. 1 s);
 * the start time of a run is stamped by the pool thread (task.c), so time
 * spent waiting for a free thread does not count.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child_impl.h"
#include "config.h"
#include "master.h"
#include "timeout.h"

struct dq_timeouts_s {
    uv_timer_t  timer;
    dq_child_t *ch;
    int         tripped;   /* a task timed out: the child is leaving */
};

typedef struct {
    char *id;
    char *queue;
} dq__to_req_t;

uint64_t
dq_timeout_clock_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void
dq__to_reply(dq_conn_t *r, redisReply *rep, const char *errstr, void *data)
{
    dq__to_req_t *q = data;
    int           st = 0;
    dq_error_t    err;

    (void) r;
    if (rep == NULL || dq_reply_statuses(rep, 1, &st, &err) != DQ_OK) {
        dq_log_warn("timed-out task %s (queue %s): failing it in Redis did "
                    "not work (%s); its lease expires instead", q->id,
                    q->queue, rep == NULL ? errstr : err.msg);
    } else if (st == 0) {
        dq_log_warn("timed-out task %s (queue %s): lease already lost",
                    q->id, q->queue);
    }
    free(q->id);
    free(q->queue);
    free(q);
}

/* Fail one task that ran past its timeout (the thread keeps running). */
static void
dq__trip(dq_child_t *ch, dq_task_t *t, uint64_t ran_ms, int64_t limit_ms)
{
    dq_lease_item_t  it;
    dq_cmd_t         cmd;
    dq__to_req_t    *req;
    int64_t          failed, now, delay = 0;
    int              rc, bury;
    char             err[600], reason[700], q[DQ_LOG_QUOTE_MAX];

    t->timed_out = 1;
    t->state = DQ_TS_DONE;          /* no heartbeat, no release */
    snprintf(err, sizeof(err), "timed out after %llu ms (timeout %lld ms); "
             "its child is replaced",
             (unsigned long long) ran_ms, (long long) limit_ms);

    failed = t->retries + 1;
    now = t->claim_now_ms
          + (int64_t) (uv_now(&ch->loop) - t->claim_loop_ms);
    bury = dq_retry_exhausted(&t->retry, failed,
                              t->first_run_ms ? t->first_run_ms : now, now);
    dq_dispatch_lease_item(&it, t);

    dq_cmd_init(&cmd);
    if (bury) {
        snprintf(reason, sizeof(reason), "retry limit reached after %lld "
                 "failed attempts: %s", (long long) failed, err);
        dq_log_error("task dead: queue=%s id=%s name=%s function=%s "
                     "attempt=%lld reason=\"%s\"", t->queue, t->id,
                     t->name ? t->name : "-", t->func ? t->func : "-",
                     (long long) failed, dq_log_quote(q, sizeof(q), reason));
        rc = dq_cmd_bury(&cmd, dq_str_c(t->queue), &it, dq_str_c(reason),
                         ch->conf->dead_max, ch->conf->dead_age_ms,
                         ch->conf->tombstone_ms, 1);
    } else {
        delay = dq_backoff_ms(&t->retry, failed);
        dq_log_error("task failed: queue=%s id=%s name=%s function=%s "
                     "attempt=%lld error=\"%s\" retry_in_ms=%lld", t->queue,
                     t->id, t->name ? t->name : "-",
                     t->func ? t->func : "-", (long long) failed,
                     dq_log_quote(q, sizeof(q), err), (long long) delay);
        rc = dq_cmd_retry(&cmd, dq_str_c(t->queue), &it, delay,
                          dq_str_c(err), 1);
    }
    req = calloc(1, sizeof(*req));
    if (req) {
        req->id = strdup(t->id);
        req->queue = strdup(t->queue);
    }
    if (rc != DQ_OK || req == NULL || req->id == NULL || req->queue == NULL
        || dq_conn_send_cmd(ch->cmd_conn, &cmd, DQ_CMD_TIMEOUT_MS, dq__to_reply,
                            req) != 0)
    {
        dq_log_warn("timed-out task %s: cannot reach Redis; its lease "
                    "expires instead", t->id);
        if (req) {
            free(req->id);
            free(req->queue);
            free(req);
        }
    }
    dq_cmd_free(&cmd);
}

static void
dq__check(uv_timer_t *tm)
{
    dq_timeouts_t *to = tm->data;
    dq_child_t    *ch = to->ch;
    dq_task_t     *t;
    uint64_t       now = dq_timeout_clock_ms(), started;
    int64_t        limit;
    int            tripped = 0, others = 0;

    for (t = ch->tasks; t != NULL; t = t->next) {
        if (t->timed_out) {
            continue;
        }
        others++;
        started = __atomic_load_n(&t->run_start_ms, __ATOMIC_ACQUIRE);
        limit = t->q ? dq_conf_timeout(ch->conf, t->q->qc, t->func) : 0;
        if (started == 0 || t->state != DQ_TS_QUEUED || limit <= 0
            || now - started < (uint64_t) limit)
        {
            continue;
        }
        dq__trip(ch, t, now - started, limit);
        tripped = 1;
        others--;
    }

    if (tripped && !to->tripped) {
        to->tripped = 1;
        ch->exit_status = DQ_CHILD_EXIT_REPLACE;
        dq_log_warn("a task ran past its timeout: this child stops "
                    "claiming, lets its other tasks finish and is replaced");
        raise(SIGTERM);             /* the child's graceful stop */
    }
    if (to->tripped && others == 0 && ch->reserved == 0
        && !ch->flush_active && dq_conn_pending(ch->cmd_conn) == 0)
    {
        dq_log_info("only timed-out tasks left: exiting to be replaced");
        /* threads are still inside task code: no orderly teardown */
        _exit(DQ_CHILD_EXIT_REPLACE);
    }
}

int
dq_timeout_start(dq_child_t *ch)
{
    dq_timeouts_t *to;
    int64_t        min = 0, period;
    size_t         i;

    ch->timeouts = NULL;
    for (i = 0; i < ch->conf->nqueues; i++) {
        int64_t l = ch->conf->queues[i].timeout_ms;

        if (l > 0 && (min == 0 || l < min)) {
            min = l;
        }
    }
    for (i = 0; i < ch->conf->nfunctions; i++) {
        int64_t l = ch->conf->functions[i].timeout_ms;

        if (l > 0 && (min == 0 || l < min)) {
            min = l;
        }
    }
    if (min == 0) {
        return 0;                   /* no timeout configured */
    }
    to = calloc(1, sizeof(*to));
    if (to == NULL) {
        return -1;
    }
    to->ch = ch;
    uv_timer_init(&ch->loop, &to->timer);
    to->timer.data = to;
    period = min / 10;
    period = period < 10 ? 10 : period > 1000 ? 1000 : period;
    uv_timer_start(&to->timer, dq__check, (uint64_t) period,
                   (uint64_t) period);
    uv_unref((uv_handle_t *) &to->timer);
    ch->timeouts = to;
    return 0;
}

static void
dq__free_cb(uv_handle_t *h)
{
    free(h->data);
}

void
dq_timeout_close(dq_child_t *ch)
{
    if (ch->timeouts) {
        uv_close((uv_handle_t *) &ch->timeouts->timer, dq__free_cb);
        ch->timeouts = NULL;
    }
}
