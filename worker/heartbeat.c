/*
 * deferred-worker — the lease heartbeat of one child: every third of the
 * lease, one dq_cmd_extend per queue for all the tasks the child holds
 * (running or waiting for a pool thread), so a long task keeps its lease
 * and no other worker runs it again. A fenced reply (0) means the lease was
 * lost: logged; a tasklet task is canceled and dropped
 * (dq_tasklet_task_lease_lost), a thread cannot be stopped, so its result
 * is still reported (an ack is accepted if nobody claimed the task since).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child_impl.h"
#include "tasklet_task.h"

/* One extend call's tasks, as copies of their ids: tasks may be freed
 * meanwhile. */
typedef struct {
    dq_child_t *ch;
    char       *queue;
    size_t      n;
    char       *ids[DQ_MAX_LEASE_ITEMS];
    char        claims[DQ_MAX_LEASE_ITEMS][DQ_CLAIM_ID_MAX + 1];
} dq__hb_t;

/* The live task leased under (id, claim), or NULL. */
static dq_task_t *
dq__hb_find(dq_child_t *ch, const char *id, const char *claim)
{
    dq_task_t *t;

    for (t = ch->tasks; t; t = t->next) {
        if (strcmp(t->id, id) == 0 && strcmp(t->claim, claim) == 0) {
            return t;
        }
    }
    return NULL;
}

static void
dq__hb_reply(dq_conn_t *r, redisReply *rep, const char *errstr, void *data)
{
    dq__hb_t   *h = data;
    dq_child_t *ch = h->ch;
    dq_task_t  *t;
    int         st[DQ_MAX_LEASE_ITEMS];
    dq_error_t  err;
    size_t      i;

    (void) r;
    memset(&err, 0, sizeof(err));
    if (rep == NULL || dq_reply_statuses(rep, h->n, st, &err) != DQ_OK) {
        dq_log_warn("heartbeat of %zu tasks (queue %s) failed: %s", h->n,
                    h->queue, rep == NULL ? errstr : err.msg);
    } else {
        for (i = 0; i < h->n; i++) {
            if (st[i] != 0) {
                continue;
            }
            t = dq__hb_find(ch, h->ids[i], h->claims[i]);
            if (t != NULL && !t->lease_lost && t->state == DQ_TS_QUEUED
                && dq_tasklet_task_lease_lost(ch, t))
            {
                dq_log_warn("lease lost: tasklet task %s (queue %s) was "
                            "canceled: its lease expired and was taken "
                            "back", h->ids[i], h->queue);
            } else {
                dq_log_warn("lease lost: task %s (queue %s) is running "
                            "but its lease expired and was taken back",
                            h->ids[i], h->queue);
            }
        }
    }
    for (i = 0; i < h->n; i++) {
        free(h->ids[i]);
    }
    free(h->queue);
    free(h);
    dq_child_maybe_finish(ch);
}

/* Extend the lease of every task this child holds that has not finished
 * running (finished ones are being acked/retried with their token). */
void
dq_heartbeat(dq_child_t *ch)
{
    dq_lease_item_t items[DQ_MAX_LEASE_ITEMS];
    dq_task_t      *t;
    dq__hb_t       *h;
    dq_cmd_t        cmd;
    size_t          i, k;

    for (i = 0; i < ch->nq; i++) {
        dq_cqueue_t *q = &ch->qs[i];

        t = ch->tasks;
        while (t != NULL) {
            h = malloc(sizeof(*h));
            if (h == NULL) {
                return;
            }
            h->ch = ch;
            h->queue = strndup(q->name.ptr, q->name.len);
            for (k = 0; t != NULL && k < DQ_MAX_LEASE_ITEMS; t = t->next) {
                if (t->q != q || t->state != DQ_TS_QUEUED) {
                    continue;
                }
                h->ids[k] = strdup(t->id);
                memcpy(h->claims[k], t->claim, sizeof(t->claim));
                dq_dispatch_lease_item(&items[k], t);
                k++;
            }
            h->n = k;
            if (k == 0) {
                free(h->queue);
                free(h);
                break;
            }
            dq_cmd_init(&cmd);
            if (dq_cmd_extend(&cmd, q->name, items, k, ch->conf->lease_ms)
                != DQ_OK
                || dq_conn_send_cmd(ch->cmd_conn, &cmd, DQ_CMD_TIMEOUT_MS,
                                    dq__hb_reply, h) != 0)
            {
                dq__hb_reply(NULL, NULL, "redis not connected", h);
            }
            dq_cmd_free(&cmd);
        }
    }
}
