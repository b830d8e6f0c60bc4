/*
 * The shared setup of the test_scripts_*.c unit tests (the Lua scripts
 * against a real redis-server, driven only through the dq_cmd_* builders
 * and dq_reply_* parsers): the command, the queue's key names, one-call
 * wrappers of enqueue, claim, ack, retry, bury, extend, release and
 * requeue (a claim remembers each id's lease member), and the start and
 * end of a test. Header only, like redis_helper.h: one copy per binary.
 */
#ifndef DQ_TEST_SCRIPTS_HELPER_H
#define DQ_TEST_SCRIPTS_HELPER_H

#include <stdio.h>
#include <string.h>

#include "redis_helper.h"

#define TOMB 300   /* tombstone window used here, ms */

static dq_cmd_t C;
static char     kbuf[DQ_KEY__COUNT][DQ_KEY_MAX];

__attribute__((unused)) static const char *
key(const char *q, dq_key_kind_t k)
{
    dq_key_format(kbuf[k], sizeof(kbuf[k]), dq_str_c(q), k);
    return kbuf[k];
}

/* Enqueue one task; returns its status (DQ_OK, DQ_EDUPLICATE, ...). */
__attribute__((unused)) static int
enq(const char *q, const char *id, const char *name, int64_t eta,
    int64_t countdown, dq_enqueue_result_t *res)
{
    dq_enqueue_item_t   it;
    dq_enqueue_result_t tmp;
    dq_error_t          err;
    redisReply         *r;
    int                 rc;

    memset(&it, 0, sizeof(it));
    it.id = dq_str_c(id);
    it.envelope = dq_str_c(id);       /* scripts never look inside */
    it.name = dq_str_c(name);
    it.eta_ms = eta;
    it.countdown_ms = countdown;
    if (res == NULL) {
        res = &tmp;
    }
    if (dq_cmd_enqueue(&C, dq_str_c(q), &it, 1, TOMB) != DQ_OK) {
        return -100;
    }
    r = run(&C);
    rc = dq_reply_enqueue(r, &it, 1, res, &err);
    if (rc != DQ_OK) {
        diag("enqueue: %s", err.msg);
    }
    freeReplyObject(r);
    return rc == DQ_OK ? res->status : rc;
}

/* Claim; tasks copied out (ids and envelopes into static storage). */
typedef struct {
    char    id[64];
    char    env[64];
    int     has_env;
    char    token[DQ_ID_SIZE];      /* the claim id */
    int64_t eta, retries, first, runs, failed;
} task_t;

static int64_t claim_now, claim_next;

/* The first_run_ms and history of the last claim of each id (the lease
 * member is "id|claim|first_run_ms": every later call names it). */
#define NFIRST 4096
static struct { char id[64]; char claim[DQ_ID_SIZE]; int64_t first;
                int history; } firsts[NFIRST];
static size_t nfirst;

__attribute__((unused)) static void
first_put(const dq_claimed_t *t)
{
    size_t i;

    for (i = 0; i < nfirst; i++) {
        if (strlen(firsts[i].id) == t->id.len
            && memcmp(firsts[i].id, t->id.ptr, t->id.len) == 0)
        {
            break;
        }
    }
    if (i == nfirst) {
        if (nfirst == NFIRST || t->id.len >= sizeof(firsts[i].id)) {
            return;
        }
        nfirst++;
    }
    snprintf(firsts[i].id, sizeof(firsts[i].id), "%.*s", (int) t->id.len,
             t->id.ptr);
    snprintf(firsts[i].claim, sizeof(firsts[i].claim), "%.*s",
             (int) t->claim.len, t->claim.ptr);
    firsts[i].first = t->first_run_ms;
    firsts[i].history = dq_claimed_history(t);
}

/* The lease item of id's last claim; claim given, or the one it had */
__attribute__((unused)) static dq_lease_item_t
item(const char *id, const char *token, const char *name)
{
    dq_lease_item_t it;
    size_t          i;

    memset(&it, 0, sizeof(it));
    it.id = dq_str_c(id);
    it.claim = dq_str_c(token);
    it.name = dq_str_c(name);
    for (i = 0; i < nfirst; i++) {
        if (strcmp(firsts[i].id, id) == 0) {
            it.first_run_ms = firsts[i].first;
            it.history = firsts[i].history;
        }
    }
    return it;
}

__attribute__((unused)) static int
claim(const char *q, int64_t max_n, int64_t lease, int64_t delay,
      task_t *out, size_t cap)
{
    dq_claimed_t      tasks[64];
    dq_claim_result_t res;
    dq_error_t        err;
    redisReply       *r;
    size_t            i;

    char              cid[DQ_ID_SIZE];

    res.tasks = tasks;
    dq_claim_id_new(cid);
    if (dq_cmd_claim(&C, dq_str_c(q), cid, max_n, lease, delay) != DQ_OK) {
        return -100;
    }
    r = run(&C);
    if (dq_reply_claim(r, &res, cap < 64 ? cap : 64, &err) != DQ_OK) {
        diag("claim: %s", err.msg);
        freeReplyObject(r);
        return -1;
    }
    claim_now = res.now_ms;
    claim_next = res.next_ms;
    for (i = 0; i < res.n; i++) {
        snprintf(out[i].id, sizeof(out[i].id), "%.*s", (int) tasks[i].id.len,
                 tasks[i].id.ptr);
        out[i].has_env = tasks[i].envelope.ptr != NULL;
        snprintf(out[i].env, sizeof(out[i].env), "%.*s",
                 (int) tasks[i].envelope.len,
                 tasks[i].envelope.ptr ? tasks[i].envelope.ptr : "");
        out[i].eta = tasks[i].eta_ms;
        snprintf(out[i].token, sizeof(out[i].token), "%.*s",
                 (int) tasks[i].claim.len, tasks[i].claim.ptr);
        out[i].retries = tasks[i].retries;
        out[i].first = tasks[i].first_run_ms;
        out[i].runs = tasks[i].runs;
        out[i].failed = tasks[i].failed_ms;
        first_put(&tasks[i]);
    }
    freeReplyObject(r);
    return (int) res.n;
}

/* Run C, expect n statuses. Returns the first status or -1. */
__attribute__((unused)) static int
statuses(size_t n, int *out)
{
    dq_error_t  err;
    redisReply *r = run(&C);
    int         rc = dq_reply_statuses(r, n, out, &err);

    if (rc != DQ_OK) {
        diag("statuses: %s", err.msg);
    }
    freeReplyObject(r);
    return rc == DQ_OK ? out[0] : -1;
}

__attribute__((unused)) static int
ack1(const char *q, const char *id, const char *token, const char *name)
{
    dq_lease_item_t it = item(id, token, name);
    int             s;
    dq_cmd_ack(&C, dq_str_c(q), &it, 1, TOMB);
    return statuses(1, &s);
}

__attribute__((unused)) static int
retry1(const char *q, const char *id, const char *token, int64_t delay,
       const char *error)
{
    dq_lease_item_t it = item(id, token, NULL);
    int             s;
    dq_cmd_retry(&C, dq_str_c(q), &it, delay, dq_str_c(error), 1);
    return statuses(1, &s);
}

__attribute__((unused)) static int
bury1(const char *q, const char *id, const char *token, const char *name,
      const char *error, int64_t dead_max, int64_t dead_age)
{
    dq_lease_item_t it = item(id, token, name);
    int             s;
    dq_cmd_bury(&C, dq_str_c(q), &it, dq_str_c(error), dead_max, dead_age,
                TOMB, 1);
    return statuses(1, &s);
}

__attribute__((unused)) static int
extend1(const char *q, const char *id, const char *token, int64_t lease)
{
    dq_lease_item_t it = item(id, token, NULL);
    int             s;
    dq_cmd_extend(&C, dq_str_c(q), &it, 1, lease);
    return statuses(1, &s);
}

__attribute__((unused)) static int
release1(const char *q, const char *id, const char *token)
{
    dq_lease_item_t it = item(id, token, NULL);
    int             s;
    dq_cmd_release(&C, dq_str_c(q), &it, 1, 0, NULL);
    return statuses(1, &s);
}

__attribute__((unused)) static int
requeue1(const char *q, const char *id)
{
    int s;
    dq_cmd_requeue(&C, dq_str_c(q), dq_str_c(id));
    return statuses(1, &s);
}

/* Connect to the test's redis-server (a fresh one, its port in argv[1]),
 * empty it and set up C; 0: no port given, the test is skipped. */
__attribute__((unused)) static int
scripts_start(int argc, char **argv)
{
    int port = redis_port(argc, argv);

    if (port <= 0) {
        printf("1..0 # SKIP no redis port given\n");
        return 0;
    }
    redis_connect(port);
    freeReplyObject(redisCommand(R, "FLUSHALL"));
    dq_cmd_init(&C);
    return 1;
}

/* Free what scripts_start set up; the exit status of the test. */
__attribute__((unused)) static int
scripts_done(void)
{
    dq_cmd_free(&C);
    redisFree(R);
    return done_testing();
}

#endif /* DQ_TEST_SCRIPTS_HELPER_H */
