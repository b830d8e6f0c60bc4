/*
 * deferred-worker — moves what contract v1 left (keys "dq:{q}:*") to
 * contract v2 for every queue the child serves: once the commands
 * connection is up after the child starts, then again every
 * DQ_MIGRATE_AGAIN_MS while a round saw v1 data (a v1 worker still
 * running a task, a v1 producer still writing), else every
 * DQ_MIGRATE_IDLE_MS (a queue without v1 data costs four ZCARDs and one
 * EXISTS, no write). Each queue goes in steps of DQ_MIGRATE_STEP tasks (one
 * atomic script each, sent one after the other on the commands
 * connection, so claims and acks go in between), at most
 * DQ_MIGRATE_STEPS per queue and round; a queue with more starts the next
 * round after DQ_MIGRATE_RETRY_MS (the cursor restarts: what moved is
 * gone from v1, so nothing is done twice). A queue
 * that moved anything logs "queue q: moved N tasks from contract v1" (and
 * how many v1 still holds). Several children (and hosts) migrating at
 * once is safe: every step is atomic and what moved is gone from v1.
 * docs/CONTRACT.md, "Upgrading from v1".
 */
#include <stdlib.h>
#include <string.h>

#include "child_impl.h"
#include "migrate.h"

#define DQ_MIGRATE_FIRST_MS  200      /* after the child starts */
#define DQ_MIGRATE_RETRY_MS  1000     /* commands connection not up */
#define DQ_MIGRATE_AGAIN_MS  120000   /* while v1 data is seen */
#define DQ_MIGRATE_IDLE_MS   600000   /* no v1 data in the last round */
#define DQ_MIGRATE_STEP      1000     /* tasks per step (the script's max) */
#define DQ_MIGRATE_STEPS     100      /* steps per queue and round */

struct dq_migrate_s {
    uv_timer_t  timer;
    dq_child_t *ch;
    size_t      qi;                 /* the queue of the round in hand */
    char        cursor[24];
    int         steps;
    int64_t     moved, left;        /* this queue, this round */
    int         seen;               /* this round saw v1 data */
    int         capped;             /* a queue had more than a round's
                                       steps: the next round soon */
    int         closed;
};

static void dq__migrate_step(dq_migrate_t *m);

static void
dq__migrate_later(dq_migrate_t *m, uint64_t ms);

/* the queue in hand is done for this round: log, go to the next one */
static void
dq__migrate_next(dq_migrate_t *m)
{
    dq_cqueue_t *q = &m->ch->qs[m->qi];

    if (m->moved > 0) {
        dq_log_info("queue %.*s: moved %lld tasks from contract v1 (%lld "
                    "left there)", (int) q->name.len, q->name.ptr,
                    (long long) m->moved, (long long) m->left);
    }
    if (m->moved > 0 || m->left > 0) {
        m->seen = 1;
    }
    m->qi++;
    m->steps = 0;
    m->moved = 0;
    m->left = 0;
    strcpy(m->cursor, "0");
}

static void
dq__migrate_reply(dq_conn_t *r, redisReply *rep, const char *errstr,
                  void *data)
{
    dq_migrate_t *m = data;
    dq_child_t   *ch = m->ch;
    dq_cqueue_t  *q;
    dq_error_t    err;
    int64_t       moved = 0, left = 0;

    (void) r;
    if (m->closed || ch->stopping) {
        dq_child_maybe_finish(ch);
        return;
    }
    if (rep == NULL) {
        /* connection lost or timed out: the round starts again later
         * (a step that ran is not lost: it moved what it reports) */
        (void) errstr;
        dq__migrate_later(m, DQ_MIGRATE_RETRY_MS);
        return;
    }
    q = &ch->qs[m->qi];
    if (dq_reply_migrate(rep, m->cursor, &moved, &left, &err) != DQ_OK) {
        dq_log_warn("queue %.*s: contract v1 migration: %s",
                    (int) q->name.len, q->name.ptr, err.msg);
        m->seen = 1;                /* look again in a while */
        dq__migrate_next(m);
    } else {
        m->moved += moved;
        m->left = left;
        if (strcmp(m->cursor, "0") == 0 || ++m->steps >= DQ_MIGRATE_STEPS) {
            if (strcmp(m->cursor, "0") != 0) {
                m->capped = 1;      /* more than a round's worth */
            }
            dq__migrate_next(m);
        }
    }
    dq__migrate_step(m);
}

/* send the next step of the round, or end the round */
static void
dq__migrate_step(dq_migrate_t *m)
{
    dq_child_t  *ch = m->ch;
    dq_cqueue_t *q;
    dq_cmd_t     cmd;
    int          rc;

    while (m->qi < ch->nq) {
        if (m->closed || ch->stopping) {
            return;
        }
        q = &ch->qs[m->qi];
        dq_cmd_init(&cmd);
        rc = dq_cmd_migrate(&cmd, q->name, m->cursor, DQ_MIGRATE_STEP);
        if (rc == DQ_OK) {
            rc = dq_conn_send_cmd(ch->cmd_conn, &cmd, DQ_CMD_TIMEOUT_MS,
                                  dq__migrate_reply, m) == 0 ? DQ_OK : -1;
            dq_cmd_free(&cmd);
            if (rc == DQ_OK) {
                return;             /* dq__migrate_reply goes on */
            }
            dq__migrate_later(m, DQ_MIGRATE_RETRY_MS);   /* not up */
            return;
        }
        dq_cmd_free(&cmd);
        dq_log_warn("queue %.*s: contract v1 migration: cannot build the "
                    "command (%d)", (int) q->name.len, q->name.ptr, rc);
        dq__migrate_next(m);
    }
    dq__migrate_later(m, m->capped ? DQ_MIGRATE_RETRY_MS
                         : m->seen ? DQ_MIGRATE_AGAIN_MS : DQ_MIGRATE_IDLE_MS);
}

static void
dq__migrate_round(uv_timer_t *timer)
{
    dq_migrate_t *m = timer->data;

    if (m->closed || m->ch->stopping) {
        return;
    }
    if (!dq_conn_is_up(m->ch->cmd_conn)) {
        dq__migrate_later(m, DQ_MIGRATE_RETRY_MS);
        return;
    }
    m->qi = 0;
    m->steps = 0;
    m->moved = 0;
    m->left = 0;
    m->seen = 0;
    m->capped = 0;
    strcpy(m->cursor, "0");
    dq__migrate_step(m);
}

static void
dq__migrate_later(dq_migrate_t *m, uint64_t ms)
{
    if (!m->closed) {
        uv_timer_start(&m->timer, dq__migrate_round, ms, 0);
    }
}

int
dq_migrate_start(dq_child_t *ch)
{
    dq_migrate_t *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        return -1;
    }
    m->ch = ch;
    strcpy(m->cursor, "0");
    uv_timer_init(&ch->loop, &m->timer);
    m->timer.data = m;
    uv_timer_start(&m->timer, dq__migrate_round, DQ_MIGRATE_FIRST_MS, 0);
    uv_unref((uv_handle_t *) &m->timer);
    ch->migrate = m;
    return 0;
}

void
dq_migrate_close(dq_child_t *ch)
{
    if (ch->migrate != NULL && !ch->migrate->closed) {
        ch->migrate->closed = 1;
        uv_close((uv_handle_t *) &ch->migrate->timer, NULL);
    }
}

void
dq_migrate_free(dq_child_t *ch)
{
    free(ch->migrate);
    ch->migrate = NULL;
}
