/*
 * deferred-worker — what a child reports about its tasks: one script call
 * per ack, release, retry or bury (acks and releases grouped per queue and
 * loop iteration, flushed from a uv_check; the acks usually ride the
 * queue's next claim instead: claim.c), its reply read per task, and the
 * results that got no usable reply kept and sent again.
 *
 * Fencing: every call names the claim id its task was leased under; a
 * reply of 0 is a "lease lost" warning: the task belongs to another worker
 * now and this one's result is dropped. A report's call not settled by a
 * reply (not delivered, no reply, an error reply) keeps its tasks
 * (ch->redo) and is sent again once Redis is back or after a back-off
 * (1 s doubling to 30 s); the claim id makes a repeat harmless. A task is
 * freed only when the reply to its last command arrived (or the command
 * failed for good).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child_impl.h"
#include "dispatch_impl.h"
#include "master.h"
#include "config.h"

static const char *dq__op_names[] = { "ack", "retry", "bury", "release",
                                      "extend", "release" };

/* --------------------------------------------------------------- replies */

#define DQ__NOT_BUILT "cannot build the command"

/* Keep the tasks of an undelivered report for dq_dispatch_resend(). */
static int
dq__keep(dq_child_t *ch, dq__report_t *b)
{
    size_t      i, cap;
    dq_task_t **a;

    if (ch->nredo + b->n > ch->cap_redo) {
        cap = ch->cap_redo ? ch->cap_redo * 2 : 64;
        while (cap < ch->nredo + b->n) {
            cap *= 2;
        }
        a = realloc(ch->redo, cap * sizeof(*a));
        if (a == NULL) {
            return 0;
        }
        ch->redo = a;
        ch->cap_redo = cap;
    }
    for (i = 0; i < b->n; i++) {
        b->tasks[i]->redo_op = (int) b->op;
        ch->redo[ch->nredo++] = b->tasks[i];
    }
    return 1;
}

#define DQ__REDO_MIN_MS  1000
#define DQ__REDO_MAX_MS  30000

static void
dq__redo_cb(uv_timer_t *tm)
{
    dq_dispatch_resend(tm->data);
}

/* Results kept after an error reply (Redis answered, but not with the
 * script's statuses): sent again after a back-off, 1 s doubling to 30 s
 * while the errors go on (a reconnect sends them sooner). */
static uint64_t
dq__redo_later(dq_child_t *ch)
{
    ch->redo_backoff_ms = ch->redo_backoff_ms == 0 ? DQ__REDO_MIN_MS
                          : ch->redo_backoff_ms * 2 > DQ__REDO_MAX_MS
                            ? DQ__REDO_MAX_MS : ch->redo_backoff_ms * 2;
    if (!uv_is_active((uv_handle_t *) &ch->redo_timer)) {
        uv_timer_start(&ch->redo_timer, dq__redo_cb, ch->redo_backoff_ms,
                       0);
    }
    return ch->redo_backoff_ms;
}

/* A report's call not settled by a reply (lost: not delivered or not
 * answered; else refused: an error reply, or one that is not the per-task
 * statuses): keep its tasks and send it again, once Redis is back or
 * after a back-off; the claim id makes a repeat harmless. 0: could not
 * keep them (out of memory). */
static int
dq__keep_report(dq__report_t *b, const char *lost, const char *refused)
{
    if (b->op == DQ_OP_EXTEND || !dq__keep(b->ch, b)) {
        return 0;
    }
    if (lost != NULL && strncmp(lost, DQ_CONN_NOT_RUN,
                                sizeof(DQ_CONN_NOT_RUN) - 1) == 0)
    {
        /* refused unrun by a cluster node (CLUSTERDOWN; a TRYAGAIN only
         * on paths other than a result's 50 ms step): the back-off sends
         * it again; no "Redis is back" need come (the connection stays
         * up), though the "up" after the map asked again may send it
         * sooner (review RFLO finding 2) */
        dq_log_warn("%s of %zu tasks %s; sent again within %llu ms",
                    dq__op_names[b->op], b->n, lost,
                    (unsigned long long) dq__redo_later(b->ch));
    } else if (lost != NULL) {
        /* the "up" that follows a lost connection sends it again; the
         * back-off too, in case no "up" comes (a cluster whose map did
         * not change) */
        dq_log_warn("%s of %zu tasks not delivered: %s; sent again when "
                    "Redis is back (or in %llu ms)", dq__op_names[b->op],
                    b->n, lost,
                    (unsigned long long) dq__redo_later(b->ch));
    } else {
        dq_log_warn("%s of %zu tasks refused: %s; sent again in %llu ms",
                    dq__op_names[b->op], b->n, refused,
                    (unsigned long long) dq__redo_later(b->ch));
    }
    free(b);
    return 1;
}

static void
dq__report_reply(dq_conn_t *r, redisReply *rep, const char *errstr,
                void *data)
{
    dq__report_t *b = data;
    int          st[DQ_MAX_LEASE_ITEMS];
    dq_error_t   err;

    (void) r;
    memset(&err, 0, sizeof(err));
    if (rep != NULL && dq_reply_statuses(rep, b->n, st, &err) == DQ_OK) {
        b->ch->redo_backoff_ms = 0;
        dq__report_done(b, st, NULL);
        return;
    }
    if (rep == NULL && strcmp(errstr, DQ__NOT_BUILT) == 0) {
        dq__report_done(b, NULL, errstr);       /* a repeat cannot help */
        return;
    }
    if (!dq__keep_report(b, rep == NULL ? errstr : NULL, err.msg)) {
        dq__report_done(b, NULL, rep == NULL ? errstr : err.msg);
    }
}

/* The answer to a report's call: st[i] per task (1 done, 0 fenced), or
 * st NULL when the call failed (why): the tasks are settled (logged,
 * unlinked, freed) and so is the report. */
void
dq__report_done(dq__report_t *b, const int *st, const char *why)
{
    dq_child_t  *ch = b->ch;
    size_t       i;

    if (st == NULL) {
        for (i = 0; i < b->n; i++) {
            dq_log_warn("%s failed for task %s (queue %s): %s; the task "
                        "runs again when its lease expires",
                        dq__op_names[b->op], b->tasks[i]->id,
                        b->tasks[i]->queue, why);
        }
    } else {
        for (i = 0; i < b->n; i++) {
            if (st[i] == 0 && b->tasks[i]->resent) {
                dq_log_warn("lease lost: %s of task %s (queue %s, claim "
                            "%s) sent again and refused: the first "
                            "attempt landed after all, or the lease "
                            "expired meanwhile", dq__op_names[b->op],
                            b->tasks[i]->id, b->tasks[i]->queue,
                            b->tasks[i]->claim);
            } else if (st[i] == 0) {
                dq_log_warn("lease lost: %s of task %s (queue %s, claim "
                            "%s) refused: the lease expired and was taken "
                            "back; this result is dropped",
                            dq__op_names[b->op], b->tasks[i]->id,
                            b->tasks[i]->queue, b->tasks[i]->claim);
            }
        }
    }
    for (i = 0; i < b->n; i++) {
        dq_child_unlink(ch, b->tasks[i]);
        dq_task_free(b->tasks[i]);
    }
    free(b);
    dq_child_maybe_finish(ch);
}

/* A report's call got no usable answer: lost (lost != NULL: not
 * delivered, or no reply) or refused with an error (why): kept and sent
 * again (dq__keep_report); dropped only when out of memory. */
void
dq__report_unanswered(dq__report_t *b, const char *lost, const char *why)
{
    if (!dq__keep_report(b, lost, why)) {
        dq__report_done(b, NULL, lost != NULL ? lost : why);
    }
}

dq__report_t *
dq__report_new(dq_child_t *ch, dq_op_t op, size_t n)
{
    dq__report_t *b = malloc(sizeof(*b) + n * sizeof(dq_task_t *));

    if (b != NULL) {
        b->ch = ch;
        b->op = op;
        b->n = n;
    }
    return b;
}

/* Send cmd for the report; on failure, answer through the same path.
 * Sent to settle (dq_conn_send_cmd_settle): on a slot that migrates it
 * lands as soon as the slot settles, before a claim can take the task
 * again (review RV8 finding 2). */
void
dq__report_send(dq__report_t *b, dq_cmd_t *cmd, int built)
{
    if (built != DQ_OK) {
        dq__report_reply(NULL, NULL, DQ__NOT_BUILT, b);
    } else if (dq_conn_send_cmd_settle(b->ch->cmd_conn, cmd,
                                       DQ_CMD_TIMEOUT_MS, dq__report_reply,
                                       b) != 0)
    {
        dq__report_reply(NULL, NULL, DQ_CONN_NOT_SENT, b);
    }
    dq_cmd_free(cmd);
}

void
dq_dispatch_lease_item(dq_lease_item_t *it, const dq_task_t *t)
{
    it->id = dq_str_c(t->id);
    it->claim = dq_str_c(t->claim);
    it->name = dq_str_c(t->name);
    it->first_run_ms = t->first_run_ms;
    it->history = dq_claimed_history(t);
}

/* A batch of one task for op, its lease item filled; NULL (the task freed)
 * when out of memory. */
dq__report_t *
dq__report_one(dq_child_t *ch, dq_task_t *t, dq_op_t op, dq_lease_item_t *it)
{
    dq__report_t *b = dq__report_new(ch, op, 1);

    t->state = DQ_TS_DONE;
    if (b == NULL) {
        dq_child_unlink(ch, t);
        dq_task_free(t);
        return NULL;
    }
    b->tasks[0] = t;
    dq_dispatch_lease_item(it, t);
    return b;
}

/* One task to the dead set (its reason already logged by the caller). */
void
dq__bury(dq_child_t *ch, dq_task_t *t, const char *reason)
{
    dq__report_t     *b;
    dq_lease_item_t  it;
    dq_cmd_t         cmd;
    int              rc;

    if (reason != t->error) {       /* kept for a resend */
        snprintf(t->error, sizeof(t->error), "%s", reason);
    }
    /* decided: if this child dies before the bury lands, the master
     * buries it rather than retrying it (held.c) */
    dq_held_bury(t->held, t->name, t->error, t->ran);
    if ((b = dq__report_one(ch, t, DQ_OP_BURY, &it)) == NULL) {
        return;
    }
    dq_cmd_init(&cmd);
    rc = dq_cmd_bury(&cmd, dq_str_c(t->queue), &it, dq_str_c(reason),
                     ch->conf->dead_max, ch->conf->dead_age_ms,
                     ch->conf->tombstone_ms, t->ran);
    dq__report_send(b, &cmd, rc);
}

void
dq__bury_bad(dq_child_t *ch, dq_task_t *t, const char *reason)
{
    char  q[DQ_LOG_QUOTE_MAX];

    dq_log_error("task dead: queue=%s id=%s name=%s function=%s attempt=%lld "
                 "reason=\"%s\"", t->queue, t->id, dq__s(t->name),
                 dq__s(t->func), (long long) (t->retries + 1),
                 dq_log_quote(q, sizeof(q), reason));
    dq__bury(ch, t, reason);
}

void
dq__retry(dq_child_t *ch, dq_task_t *t, int64_t delay_ms)
{
    dq__report_t     *b;
    dq_lease_item_t  it;
    dq_cmd_t         cmd;
    int              rc;

    t->retry_delay_ms = delay_ms;
    if ((b = dq__report_one(ch, t, DQ_OP_RETRY, &it)) == NULL) {
        return;
    }
    dq_cmd_init(&cmd);
    rc = dq_cmd_retry(&cmd, dq_str_c(t->queue), &it, delay_ms,
                      dq_str_c(t->error), t->ran);
    dq__report_send(b, &cmd, rc);
}

/* --------------------------------------------------------- report calls */

/* b's acks (tasks of queue q) sent in one call, to settle
 * (dq__report_send). */
void
dq__report_send_acks(dq__report_t *b, dq_cqueue_t *q)
{
    dq_lease_item_t items[DQ_MAX_LEASE_ITEMS];
    dq_cmd_t        cmd;
    size_t          i;

    for (i = 0; i < b->n; i++) {
        dq_dispatch_lease_item(&items[i], b->tasks[i]);
    }
    dq_cmd_init(&cmd);
    dq__report_send(b, &cmd, dq_cmd_ack(&cmd, q->name, items, b->n,
                                        b->ch->conf->tombstone_ms));
}

static void
dq__flush_list(dq_child_t *ch, dq_cqueue_t *q, dq_op_t op, dq_task_t **list,
               size_t n)
{
    size_t          max = DQ_MAX_LEASE_ITEMS;
    size_t          off, k, i;
    dq_lease_item_t items[DQ_MAX_LEASE_ITEMS];
    dq__report_t   *b;
    dq_cmd_t        cmd;

    for (off = 0; off < n; off += k) {
        k = n - off < max ? n - off : max;
        b = dq__report_new(ch, op, k);
        if (b == NULL) {
            for (i = 0; i < k; i++) {
                dq_child_unlink(ch, list[off + i]);
                dq_task_free(list[off + i]);
            }
            continue;
        }
        for (i = 0; i < k; i++) {
            b->tasks[i] = list[off + i];
        }
        if (op == DQ_OP_ACK) {
            dq__report_send_acks(b, q);
            continue;
        }
        for (i = 0; i < k; i++) {
            dq_dispatch_lease_item(&items[i], list[off + i]);
        }
        dq_cmd_init(&cmd);
        dq__report_send(b, &cmd, dq_cmd_release(&cmd, q->name, items, k, 0,
                                                NULL));
    }
}

void
dq_dispatch_flush(dq_child_t *ch)
{
    size_t i, n;

    for (i = 0; i < ch->nq; i++) {
        dq_cqueue_t *q = &ch->qs[i];

        if (q->nacks) {
            n = q->nacks;
            q->nacks = 0;
            dq__flush_list(ch, q, DQ_OP_ACK, q->acks, n);
        }
        if (q->nrels) {
            n = q->nrels;
            q->nrels = 0;
            dq_log_info("releasing %zu never-started tasks of queue %.*s",
                        n, (int) q->name.len, q->name.ptr);
            dq__flush_list(ch, q, DQ_OP_RELEASE, q->rels, n);
        }
    }
}

/* ------------------------------------------------- resend on reconnect */

int
dq__push(dq_task_t ***arr, size_t *n, size_t *cap, dq_task_t *t)
{
    dq_task_t **a;
    size_t      c;

    if (*n == *cap) {
        c = *cap ? *cap * 2 : 64;
        a = realloc(*arr, c * sizeof(*a));
        if (a == NULL) {
            return -1;
        }
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = t;
    return 0;
}

/* The commands connection is up again: send the results that were not
 * delivered (acks and releases grouped again, retries and burials one by
 * one). A lease that expired meanwhile answers 0: "lease lost". */
void
dq_dispatch_resend(dq_child_t *ch)
{
    dq_task_t      **list = ch->redo;
    size_t           n = ch->nredo, i;
    dq_task_t       *t;
    int              rc;

    for (i = 0; i < ch->nq; i++) {
        dq__release_lost(ch, &ch->qs[i]);
    }
    if (n == 0) {
        return;
    }
    ch->redo = NULL;
    ch->nredo = ch->cap_redo = 0;
    dq_log_info("sending %zu undelivered results again", n);
    for (i = 0; i < n; i++) {
        t = list[i];
        t->resent = 1;
        switch ((dq_op_t) t->redo_op) {
        case DQ_OP_ACK:
            rc = dq__push(&t->q->acks, &t->q->nacks, &t->q->cap_acks, t);
            break;
        case DQ_OP_RELEASE:
            rc = dq__push(&t->q->rels, &t->q->nrels, &t->q->cap_rels, t);
            break;
        case DQ_OP_RETRY:
            dq__retry(ch, t, t->retry_delay_ms);
            rc = 0;
            break;
        case DQ_OP_BURY:
            dq__bury(ch, t, t->error);
            rc = 0;
            break;
        case DQ_OP_UNRUNNABLE:
            dq__unrunnable(ch, t);
            rc = 0;
            break;
        default:
            rc = -1;
            break;
        }
        if (rc != 0) {
            dq_log_warn("result of task %s (queue %s) dropped: out of "
                        "memory; it runs again when its lease expires",
                        t->id, t->queue);
            dq_child_unlink(ch, t);
            dq_task_free(t);
        }
    }
    free(list);
    dq_child_flush_on(ch);
}
