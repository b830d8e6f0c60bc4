/*
 * deferred-worker — the due list handed back when a child stops (not the
 * master's hand-back of a dead child's tasks: held.c): lib/lua/unlist.lua
 * per served queue, again while its reply says elements are left, at
 * most DQ__UNLIST_CALLS calls a queue (an enqueue that finds the list off
 * moves the rest, 1,000 ids a call). This worker read the list; the
 * workers that remain may not (a rollback of the workers alone): the
 * list is turned off (stats due_until past) and its tasks go back to the
 * ETA set, which every build reads. A new worker that remains turns the
 * list on again with its next claim (docs/CONTRACT.md "The due list").
 *
 * The calls go on the commands connection; while one is pending the
 * child does not finish (dq_child_maybe_finish waits for the
 * connection's pending commands), and each reply calls it again.
 */
#include <stdlib.h>

#include "child_impl.h"
#include "unlist.h"

#define DQ__UNLIST_CALLS 64

typedef struct {
    dq_child_t *ch;
    size_t      qi;
    unsigned    calls;
} dq__unlist_t;

static int dq__unlist_send(dq__unlist_t *u);

static void
dq__unlist_reply(dq_conn_t *r, redisReply *reply, const char *errstr,
                 void *data)
{
    dq__unlist_t *u = data;
    dq_child_t   *ch = u->ch;

    (void) r;
    if (reply == NULL && !dq_conn_not_run(errstr)) {
        /* timed out or the connection lost: the call may still run (it
         * sits in the socket of a frozen Redis) */
        dq_log_warn("queue %.*s: the due list may not have been handed "
                    "back on stop: %s",
                    (int) ch->qs[u->qi].name.len, ch->qs[u->qi].name.ptr,
                    errstr ? errstr : "no reply");
    } else if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        dq_log_warn("queue %.*s: the due list not handed back on stop: %s",
                    (int) ch->qs[u->qi].name.len, ch->qs[u->qi].name.ptr,
                    errstr ? errstr
                    : reply && reply->type == REDIS_REPLY_ERROR
                      ? reply->str : "bad reply");
    } else if (reply->element[1]->integer > 0
               && u->calls < DQ__UNLIST_CALLS)
    {
        if (dq__unlist_send(u) == 0) {
            return;                 /* pending again: no finish below */
        }
    } else if (reply->element[1]->integer > 0) {
        dq_log_warn("queue %.*s: %lld elements left in the due list on "
                    "stop: workers that read the list claim them, or "
                    "enqueues move them back once it lapses (deferred-cli "
                    "unlist does it at once)",
                    (int) ch->qs[u->qi].name.len, ch->qs[u->qi].name.ptr,
                    (long long) reply->element[1]->integer);
    }
    free(u);
    dq_child_maybe_finish(ch);
}

/* 0 if sent (u is the callback's); else -1 (u still the caller's) */
static int
dq__unlist_send(dq__unlist_t *u)
{
    dq_child_t *ch = u->ch;
    dq_cmd_t    cmd;
    int         rc;

    u->calls++;
    dq_cmd_init(&cmd);
    rc = dq_cmd_unlist(&cmd, ch->qs[u->qi].name);
    if (rc == DQ_OK
        && dq_conn_send_cmd(ch->cmd_conn, &cmd, DQ_CMD_TIMEOUT_MS,
                            dq__unlist_reply, u) != 0)
    {
        rc = DQ_EREDIS;
    }
    dq_cmd_free(&cmd);
    return rc == DQ_OK ? 0 : -1;
}

void
dq_unlist_on_stop(dq_child_t *ch)
{
    dq__unlist_t *u;
    size_t        i;

    if (!dq_conn_is_up(ch->cmd_conn)) {
        if (ch->nq > 0) {
            dq_log_warn("the due list not handed back on stop: the command "
                        "connection is down (deferred-cli unlist moves it "
                        "back)");
        }
        return;
    }
    for (i = 0; i < ch->nq; i++) {
        if ((u = malloc(sizeof(*u))) == NULL) {
            return;
        }
        u->ch = ch;
        u->qi = i;
        u->calls = 0;
        if (dq__unlist_send(u) != 0) {
            free(u);
        }
    }
}
