/*
 * The Lua scripts against a real redis-server, driven only through the
 * dq_cmd_* builders and dq_reply_* parsers: enqueue/claim/ack, countdown,
 * names (duplicate, tombstone window), fencing, reclaim, retry, bury and
 * dead-set trimming, requeue, release, extend, NOSCRIPT, batch atomicity,
 * the wake list (and its decision inside a batch), expired tombstones, the
 * clock guard, memory of waiting tasks.
 * Usage: test_scripts PORT
 */
#include <stdio.h>
#include <string.h>

#include "redis_helper.h"

#define TOMB 300   /* tombstone window used here, ms */

static dq_cmd_t C;
static char     kbuf[DQ_KEY__COUNT][DQ_KEY_MAX];

static const char *
key(const char *q, dq_key_kind_t k)
{
    dq_key_format(kbuf[k], sizeof(kbuf[k]), dq_str_c(q), k);
    return kbuf[k];
}

/* Enqueue one task; returns its status (DQ_OK, DQ_EDUPLICATE, ...). */
static int
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

static void
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
static dq_lease_item_t
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

static int
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
static int
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

static int
ack1(const char *q, const char *id, const char *token, const char *name)
{
    dq_lease_item_t it = item(id, token, name);
    int             s;
    dq_cmd_ack(&C, dq_str_c(q), &it, 1, TOMB);
    return statuses(1, &s);
}

static int
retry1(const char *q, const char *id, const char *token, int64_t delay,
       const char *error)
{
    dq_lease_item_t it = item(id, token, NULL);
    int             s;
    dq_cmd_retry(&C, dq_str_c(q), &it, delay, dq_str_c(error), 1);
    return statuses(1, &s);
}

static int
bury1(const char *q, const char *id, const char *token, const char *name,
      const char *error, int64_t dead_max, int64_t dead_age)
{
    dq_lease_item_t it = item(id, token, name);
    int             s;
    dq_cmd_bury(&C, dq_str_c(q), &it, dq_str_c(error), dead_max, dead_age,
                TOMB, 1);
    return statuses(1, &s);
}

static int
extend1(const char *q, const char *id, const char *token, int64_t lease)
{
    dq_lease_item_t it = item(id, token, NULL);
    int             s;
    dq_cmd_extend(&C, dq_str_c(q), &it, 1, lease);
    return statuses(1, &s);
}

static int
release1(const char *q, const char *id, const char *token)
{
    dq_lease_item_t it = item(id, token, NULL);
    int             s;
    dq_cmd_release(&C, dq_str_c(q), &it, 1, 0, NULL);
    return statuses(1, &s);
}

static int
requeue1(const char *q, const char *id)
{
    int s;
    dq_cmd_requeue(&C, dq_str_c(q), dq_str_c(id));
    return statuses(1, &s);
}

static void
test_round_trip(void)
{
    dq_enqueue_result_t res;
    task_t              t[4];
    char                buf[64];
    int                 n;

    is_int(enq("rt", "id1", NULL, -1, -1, &res), DQ_OK, "enqueue stored");
    ok(!res.existed && res.eta_ms > 1700000000000LL, "eta is Redis now (%lld)",
       (long long) res.eta_ms);
    is_str(rstr(buf, sizeof(buf), "HGET %s id1", key("rt", DQ_KEY_TASKS)),
           "id1", "a waiting task's value is its envelope (no prefix)");
    is_int(rint_("HGET %s enqueued", key("rt", DQ_KEY_STATS)), 1,
           "enqueued counted");
    is_int(enq("rt", "id1", NULL, -1, -1, &res), DQ_OK,
           "same id again: ok (idempotent)");
    ok(res.existed, "same id reported as existed");
    is_int(rint_("ZCARD %s", key("rt", DQ_KEY_ETA)), 1, "stored once");

    n = claim("rt", 10, 1000, 0, t, 4);
    is_int(n, 1, "claim takes the due task");
    is_str(t[0].id, "id1", "claimed id");
    is_str(t[0].env, "id1", "claimed envelope");
    is_int((int64_t) strlen(t[0].token), 22, "the claim id comes back");
    is_int(t[0].runs, 0, "no run before this one");
    is_int(t[0].retries, 0, "no retries yet");
    is_int(t[0].first, claim_now, "first run = claim time");
    ok(claim_next > 0 && claim_next <= 1000,
       "next = lease deadline (%lld ms)", (long long) claim_next);
    is_str(rstr(buf, sizeof(buf), "HGET %s id1", key("rt", DQ_KEY_TASKS)),
           "id1", "claim writes no state: the value stays the envelope");
    {
        char m[128];

        snprintf(m, sizeof(m), "id1|%s|%lld", t[0].token,
                 (long long) t[0].first);
        ok(rint_("ZSCORE %s %s", key("rt", DQ_KEY_LEASE), m) > 0,
           "lease member \"id|claim|first_run_ms\" (%s)", m);
    }
    is_int(claim("rt", 10, 1000, 0, t, 4), 0, "nothing more to claim");

    is_int(ack1("rt", "id1", "nottheclaim", NULL), 0,
           "ack with another claim id refused");
    is_int(ack1("rt", "id1", t[0].token, NULL), 1, "ack with the claim id");
    is_int(rint_("HLEN %s", key("rt", DQ_KEY_TASKS)), 0, "envelope deleted");
    is_int(rint_("ZCARD %s", key("rt", DQ_KEY_LEASE)), 0, "lease deleted");
    is_int(rint_("HGET %s done", key("rt", DQ_KEY_STATS)), 1, "done counted");
    is_int(ack1("rt", "id1", t[0].token, NULL), 0, "second ack refused");
    is_int(claim("rt", 10, 1000, 0, t, 4), 0, "empty queue");
    is_int(claim_next, -1, "next -1 on an empty queue");
}

static void
test_countdown(void)
{
    dq_enqueue_result_t res;
    task_t              t[2];
    int64_t             now;

    /* 10 s: inside the cold tier's horizon (t/unit/test_cold.c) */
    enq("cd", "a", NULL, -1, 10000, &res);
    is_int(claim("cd", 10, 1000, 0, t, 2), 0, "a countdown task is not due");
    now = claim_now;
    ok(res.eta_ms >= now + 9000 && res.eta_ms <= now + 10000,
       "eta = now + countdown (%lld)", (long long) (res.eta_ms - now));
    ok(claim_next > 9000 && claim_next <= 10000,
       "next = time to its eta (%lld)", (long long) claim_next);
    enq("cd", "b", NULL, now - 5, -1, &res);
    is_int(res.eta_ms, now - 5, "absolute eta kept");
    is_int(claim("cd", 10, 1000, 0, t, 2), 1, "a past eta is due");
    is_str(t[0].id, "b", "the past one");
    is_int(t[0].eta, now - 5, "claim reports the eta it was due at");
}

static void
test_names(void)
{
    task_t t[2];

    is_int(enq("nm", "n1", "job", -1, 60000, NULL), DQ_OK, "named task");
    is_int(enq("nm", "n2", "job", -1, -1, NULL), DQ_EDUPLICATE,
           "same name while waiting: duplicate");
    is_int(enq("nm", "n3", "other", -1, -1, NULL), DQ_OK, "other name passes");
    is_int(rint_("HEXISTS %s n2", key("nm", DQ_KEY_TASKS)), 0,
           "duplicate not stored");
    is_int(claim("nm", 1, 1000, 0, t, 2), 1, "claim the other");
    is_int(ack1("nm", "n3", t[0].token, "other"), 1, "ack it");
    is_int(enq("nm", "n4", "other", -1, -1, NULL), DQ_ETOMBSTONE,
           "name tombstoned after ack");
    sleep_ms(TOMB + 50);
    is_int(enq("nm", "n5", "other", -1, -1, NULL), DQ_OK,
           "accepted after the window");
    is_int(rint_("ZSCORE %s job", key("nm", DQ_KEY_NAMES)), 0,
           "a live name scores inf (read as 0 here)");
    {
        /* tombstone_ms 0: no window at all */
        dq_lease_item_t it;
        int             st;

        is_int(enq("nm", "z1", "zero", -1, -1, NULL), DQ_OK, "named task z1");
        while (claim("nm", 1, 1000, 0, t, 2) == 1
               && strcmp(t[0].id, "z1") != 0) { }
        it = item("z1", t[0].token, "zero");
        dq_cmd_ack(&C, dq_str_lit("nm"), &it, 1, 0);
        is_int(statuses(1, &st), 1, "acked with tombstone_ms 0");
        is_int(enq("nm", "z2", "zero", -1, -1, NULL), DQ_OK,
               "the name is free again at once");
    }
}

static void
test_fencing(void)
{
    task_t t[2];
    char   buf[64], a[DQ_ID_SIZE];
    int    s;

    enq("fe", "f1", "fn", -1, -1, NULL);
    is_int(claim("fe", 1, 100, 0, t, 2), 1, "worker A claims, lease 100 ms");
    snprintf(a, sizeof(a), "%s", t[0].token);
    sleep_ms(150);
    is_int(claim("fe", 1, 5000, 100, t, 2), 0,
           "after expiry: taken back, due after the backoff (100 ms)");
    sleep_ms(150);
    is_int(claim("fe", 1, 5000, 0, t, 2), 1, "then worker B claims it");
    ok(strcmp(t[0].token, a) != 0, "B holds another claim id");
    is_int(t[0].retries, 1, "the expired lease counted as a failed attempt");
    is_int(t[0].runs, 0, "but not as a run that reached the function");
    ok(t[0].failed > 0 && t[0].failed < claim_now - 100,
       "failed_ms = when the expiry was judged");
    is_int(rint_("HGET %s reclaimed", key("fe", DQ_KEY_STATS)), 1,
           "reclaimed counted");
    is_str(rstr(buf, sizeof(buf), "HGET %s f1", key("fe", DQ_KEY_ERRORS)),
           "lease expired", "reason recorded");
    is_int(ack1("fe", "f1", a, "fn"), 0, "A's ack refused");
    is_int(retry1("fe", "f1", a, 0, "x"), 0, "A's retry refused");
    is_int(bury1("fe", "f1", a, "fn", "x", 0, 0), 0, "A's bury refused");
    is_int(extend1("fe", "f1", a, 5000), 0, "A's extend refused");
    is_int(release1("fe", "f1", a), 0, "A's release refused");
    is_int(rint_("ZCARD %s", key("fe", DQ_KEY_LEASE)), 1, "still leased to B");
    is_int(ack1("fe", "f1", t[0].token, "fn"), 1, "B's ack accepted");
    /* a waiting task is acked only by the claim its state names */
    enq("fe", "f2", NULL, -1, 60000, NULL);
    redisReply *r = redisCommand(R, "HSET %s f2 %b",
                                 key("fe", DQ_KEY_TASKS),
                                 "S0:1:1:1:zz\nf2", (size_t) 15);
    freeReplyObject(r);
    is_int(ack1("fe", "f2", "yy", NULL), 0, "ack of a waiting task refused");
    dq_lease_item_t its[2] = { item("f2", "zz", NULL),
                               item("nope", "zz", NULL) };
    dq_cmd_extend(&C, dq_str_c("fe"), its, 2, 1000);
    int st[2] = { 9, 9 };
    s = statuses(2, st);
    ok(s == 0 && st[1] == 0, "batch extend: per task statuses");

    /* malformed batches are refused before any write */
    {
        static const char *what[3] = { "ack", "extend", "release" };
        int k;
        for (k = 0; k < 3; k++) {
            if (k == 0) {
                dq_cmd_ack(&C, dq_str_c("fe"), its, 2, TOMB);
            } else if (k == 1) {
                dq_cmd_extend(&C, dq_str_c("fe"), its, 2, 1000);
            } else {
                dq_cmd_release(&C, dq_str_c("fe"), its, 2, 0, NULL);
            }
            C.argc--;                     /* drop the last argument */
            r = run(&C);
            ok(r && r->type == REDIS_REPLY_ERROR
               && strstr(r->str, "bad arguments"),
               "%s with a missing argument refused", what[k]);
            freeReplyObject(r);
        }
    }
}

static void
test_retry(void)
{
    task_t t[2];
    char   buf[64];

    enq("re", "r1", NULL, -1, -1, NULL);
    claim("re", 1, 5000, 0, t, 2);
    rint_("DEL %s", key("re", DQ_KEY_WAKE));
    is_int(retry1("re", "r1", t[0].token, 300, "boom"), 1, "retry accepted");
    is_int(rint_("LLEN %s", key("re", DQ_KEY_WAKE)), 1,
           "retry woke a sleeper (earliest task)");
    is_str(rstr(buf, sizeof(buf), "HGET %s r1", key("re", DQ_KEY_ERRORS)),
           "boom", "error kept");
    is_int(rint_("HGET %s retried", key("re", DQ_KEY_STATS)), 1,
           "retried counted");
    is_int(claim("re", 1, 5000, 0, t, 2), 0, "not due before its delay");
    ok(claim_next > 0 && claim_next <= 300, "next <= delay (%lld)",
       (long long) claim_next);
    sleep_ms(320);
    is_int(claim("re", 1, 5000, 0, t, 2), 1, "due after its delay");
    is_int(t[0].retries, 1, "retries 1");
    is_int(t[0].runs, 1, "runs 1 (the failed run reached the function)");
    is_int(ack1("re", "r1", t[0].token, NULL), 1, "acked");
    is_int(rint_("HEXISTS %s r1", key("re", DQ_KEY_ERRORS)), 0,
           "error cleared by ack");
}

static void
test_bury_requeue(void)
{
    task_t t[8];
    char   id[16], buf[64];
    int    i, n;

    for (i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        enq("de", id, NULL, -1, -1, NULL);
    }
    {
        /* d4 is named: bury keeps the name for requeue */
        dq_request_t        req;
        dq_enqueue_item_t   it;
        dq_enqueue_result_t res;
        dq_error_t          err;
        msgpack_sbuffer     sb;
        redisReply         *r;

        dq_request_init(&req);
        req.func = dq_str_lit("f");
        req.name = dq_str_lit("dn");
        msgpack_sbuffer_init(&sb);
        dq_envelope_encode(&req, "d4", 1, NULL, &sb, &err);
        memset(&it, 0, sizeof(it));
        it.id = dq_str_lit("d4");
        it.envelope.ptr = sb.data;
        it.envelope.len = sb.size;
        it.name = dq_str_lit("dn");
        it.eta_ms = it.countdown_ms = -1;
        dq_cmd_enqueue(&C, dq_str_lit("de"), &it, 1, TOMB);
        r = run(&C);
        dq_reply_enqueue(r, &it, 1, &res, &err);
        freeReplyObject(r);
        msgpack_sbuffer_destroy(&sb);
    }
    n = claim("de", 10, 5000, 0, t, 8);
    is_int(n, 5, "claimed 5");
    for (i = 0; i < n; i++) {
        bury1("de", t[i].id, t[i].token, strcmp(t[i].id, "d4") ? NULL : "dn",
              "dead reason", 3, 0);
        sleep_ms(2);
    }
    is_int(rint_("ZCARD %s", key("de", DQ_KEY_DEAD)), 3,
           "dead set trimmed to dead_max");
    is_int(rint_("HLEN %s", key("de", DQ_KEY_TASKS)), 3,
           "trimmed tasks' envelopes deleted");
    is_int(rint_("HLEN %s", key("de", DQ_KEY_ERRORS)), 3,
           "trimmed tasks' errors deleted");
    is_int(rint_("HGET %s dead", key("de", DQ_KEY_STATS)), 5, "dead counted");
    is_str(rstr(buf, sizeof(buf), "HGET %s d4", key("de", DQ_KEY_ERRORS)),
           "dead reason", "reason kept");
    is_int(enq("de", "x", "dn", -1, -1, NULL), DQ_ETOMBSTONE,
           "a dead task's name is tombstoned");
    is_int(requeue1("de", "d0"), 0, "requeue of a trimmed task: not dead");
    is_int(requeue1("de", "d4"), 1, "requeue of a dead task");
    is_int(rint_("ZCARD %s", key("de", DQ_KEY_DEAD)), 2, "left the dead set");
    is_int(enq("de", "y", "dn", -1, -1, NULL), DQ_EDUPLICATE,
           "its name is live again");
    n = claim("de", 10, 5000, 0, t, 8);
    is_int(n, 1, "the requeued task is due");
    is_int(t[0].retries, 0, "retries reset");
    is_int(t[0].runs, 0, "runs reset");
    is_int(requeue1("de", "d4"), 0, "requeue of a running task: not dead");
    /* age trimming */
    sleep_ms(30);
    bury1("de", "d4", t[0].token, "dn", "again", 0, 20);
    is_int(rint_("ZCARD %s", key("de", DQ_KEY_DEAD)), 1,
           "older than dead_age: trimmed");
    is_int(rint_("ZSCORE %s d4", key("de", DQ_KEY_DEAD)) > 0, 1,
           "the fresh one stays");
    /* dead_max never deletes a task younger than dead_age */
    for (i = 5; i < 9; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        enq("de", id, NULL, -1, -1, NULL);
    }
    n = claim("de", 10, 5000, 0, t, 8);
    is_int(n, 4, "claimed 4 more");
    for (i = 0; i < n; i++) {
        bury1("de", t[i].id, t[i].token, NULL, "again", 2, 60000);
    }
    is_int(rint_("ZCARD %s", key("de", DQ_KEY_DEAD)), 5,
           "dead_max 2 with dead_age 60 s: all 5 young dead tasks kept");
    ok(rint_("HGET %s dead_over_max", key("de", DQ_KEY_STATS)) >= 3,
       "the dead set over dead_max is counted");
}

static void
test_release_extend(void)
{
    task_t t[2];

    enq("rl", "l1", NULL, -1, -1, NULL);
    claim("rl", 1, 5000, 0, t, 2);
    rint_("DEL %s", key("rl", DQ_KEY_WAKE));
    is_int(release1("rl", "l1", t[0].token), 1, "release");
    is_int(rint_("LLEN %s", key("rl", DQ_KEY_WAKE)), 1, "release wakes");
    sleep_ms(5);
    is_int(claim("rl", 1, 100, 0, t, 2), 1, "due again at once");
    is_int(t[0].runs, 0, "released run not counted");
    is_int(t[0].retries, 0, "release is not a failure");
    is_int(t[0].first, claim_now,
           "first run = this claim (the released one never ran)");
    is_int(extend1("rl", "l1", t[0].token, 5000), 1, "extend");
    sleep_ms(150);
    is_int(claim("rl", 1, 100, 0, t, 2), 0, "extended lease not reclaimed");
    is_int(rint_("HGET %s reclaimed", key("rl", DQ_KEY_STATS)), -1,
           "nothing reclaimed");
    ok(claim_next > 4000 || claim_next == 34,
       "next = a third of the lease (the lease deadline is later) (%lld)",
       (long long) claim_next);
    is_int(claim("rl", 1, 30000, 0, t, 2), 0, "with a lease of 30 s");
    ok(claim_next > 4000 && claim_next <= 5000,
       "next = the extended deadline (%lld)", (long long) claim_next);
}

static void
test_noscript(void)
{
    dq_enqueue_item_t   it = { dq_str_lit("ns1"), dq_str_lit("e"),
                               { NULL, 0 }, -1, -1, 0, 0 };
    dq_enqueue_result_t res;
    dq_error_t          err;
    redisReply         *r;

    freeReplyObject(redisCommand(R, "SCRIPT FLUSH"));
    dq_cmd_enqueue(&C, dq_str_lit("ns"), &it, 1, TOMB);
    r = redisCommandArgv(R, C.argc, C.argv, C.argvlen);
    ok(dq_reply_is_noscript(r), "EVALSHA after SCRIPT FLUSH: NOSCRIPT");
    freeReplyObject(r);
    dq_cmd_use_eval(&C);
    is_str(C.argv[0], "EVAL", "use_eval rewrites the command");
    r = redisCommandArgv(R, C.argc, C.argv, C.argvlen);
    is_int(dq_reply_enqueue(r, &it, 1, &res, &err), DQ_OK, "EVAL works");
    freeReplyObject(r);
    dq_cmd_enqueue(&C, dq_str_lit("ns"), &it, 1, TOMB);
    r = redisCommandArgv(R, C.argc, C.argv, C.argvlen);
    ok(!dq_reply_is_noscript(r) && r->type == REDIS_REPLY_ARRAY,
       "EVALSHA works again: the build-time SHA1 is Redis' SHA1");
    freeReplyObject(r);
}

static void
test_batch(void)
{
    dq_enqueue_item_t   it[1000];
    dq_enqueue_result_t res[1000];
    dq_error_t          err;
    redisReply         *r;
    char                ids[1000][16];
    int                 i, rc;

    for (i = 0; i < 3; i++) {
        snprintf(ids[i], sizeof(ids[i]), "b%d", i);
        memset(&it[i], 0, sizeof(it[i]));
        it[i].id = dq_str_c(ids[i]);
        it[i].envelope = dq_str_lit("env");
        it[i].name = i < 2 ? dq_str_lit("same") : dq_str_lit("");
        it[i].eta_ms = -1;
        it[i].countdown_ms = -1;
    }
    dq_cmd_enqueue(&C, dq_str_lit("ba"), it, 3, TOMB);
    r = run(&C);
    rc = dq_reply_enqueue(r, it, 3, res, &err);
    freeReplyObject(r);
    ok(rc == DQ_OK && res[0].status == DQ_OK && res[1].status == DQ_EDUPLICATE
       && res[2].status == DQ_OK, "per task status in a batch");

    /* a malformed task anywhere: nothing is written */
    dq_cmd_enqueue(&C, dq_str_lit("bb"), it, 3, TOMB);
    /* the last task's when: before the 2 named tasks' 3 values each */
    C.argv[C.argc - 7] = "x";
    C.argvlen[C.argc - 7] = 1;
    r = run(&C);
    ok(r && r->type == REDIS_REPLY_ERROR, "bad batch refused: %s",
       r && r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
    is_int(rint_("EXISTS %s", key("bb", DQ_KEY_TASKS)), 0,
           "nothing of the bad batch stored");
    is_int(rint_("EXISTS %s", key("bb", DQ_KEY_NAMES)), 0,
           "no name of the bad batch recorded");

    for (i = 0; i < 1000; i++) {
        snprintf(ids[i], sizeof(ids[i]), "k%d", i);
        memset(&it[i], 0, sizeof(it[i]));
        it[i].id = dq_str_c(ids[i]);
        it[i].envelope = dq_str_lit("env");
        it[i].name = dq_str_lit("");
        it[i].eta_ms = -1;
        it[i].countdown_ms = i;
    }
    dq_cmd_enqueue(&C, dq_str_lit("bc"), it, 1000, TOMB);
    r = run(&C);
    rc = dq_reply_enqueue(r, it, 1000, res, &err);
    freeReplyObject(r);
    is_int(rc, DQ_OK, "1000 tasks in one call");
    is_int(rint_("ZCARD %s", key("bc", DQ_KEY_ETA)), 1000, "all scheduled");
    is_int(rint_("HGET %s enqueued", key("bc", DQ_KEY_STATS)), 1000,
           "all counted");
    is_int(rint_("LLEN %s", key("bc", DQ_KEY_WAKE)), 1,
           "one wake token for the batch");
}

static void
test_wake(void)
{
    task_t t[4];
    char   id[16];
    int    i;

    enq("wk", "w1", NULL, -1, 60000, NULL);
    is_int(rint_("LLEN %s", key("wk", DQ_KEY_WAKE)), 1,
           "first waiting task wakes (earliest)");
    rint_("DEL %s", key("wk", DQ_KEY_WAKE));
    enq("wk", "w2", NULL, -1, 120000, NULL);
    is_int(rint_("LLEN %s", key("wk", DQ_KEY_WAKE)), 0,
           "a later task does not wake");
    enq("wk", "w3", NULL, -1, 30000, NULL);
    is_int(rint_("LLEN %s", key("wk", DQ_KEY_WAKE)), 1,
           "an earlier task wakes");
    for (i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "x%d", i);
        enq("wk", id, NULL, -1, -1, NULL);
    }
    is_int(rint_("LLEN %s", key("wk", DQ_KEY_WAKE)), 8,
           "wake list trimmed to 8 tokens");
    rint_("DEL %s", key("wk", DQ_KEY_WAKE));
    is_int(claim("wk", 2, 5000, 0, t, 4), 2, "claim 2 of 20 due");
    is_int(rint_("LLEN %s", key("wk", DQ_KEY_WAKE)), 1,
           "claim passes the token on while due work remains");
    is_int(claim_next, 0, "next 0 while due work remains");
}

/* Enqueue 2 unnamed tasks (countdowns a, b; -1 = due now) in one call;
 * returns the number of wake tokens it pushed. */
static int
enq2_wake(const char *q, const char *id_a, int64_t a, const char *id_b,
          int64_t b)
{
    dq_enqueue_item_t   it[2];
    dq_enqueue_result_t res[2];
    dq_error_t          err;
    redisReply         *r;
    int                 before;

    before = (int) rint_("LLEN %s", key(q, DQ_KEY_WAKE));
    memset(it, 0, sizeof(it));
    it[0].id = dq_str_c(id_a);
    it[1].id = dq_str_c(id_b);
    it[0].countdown_ms = a;
    it[1].countdown_ms = b;
    it[0].envelope = it[1].envelope = dq_str_lit("env");
    it[0].name = it[1].name = dq_str_lit("");
    it[0].eta_ms = it[1].eta_ms = -1;
    dq_cmd_enqueue(&C, dq_str_c(q), it, 2, TOMB);
    r = run(&C);
    if (dq_reply_enqueue(r, it, 2, res, &err) != DQ_OK
        || res[0].status != DQ_OK || res[1].status != DQ_OK)
    {
        diag("enqueue of %s, %s failed", id_a, id_b);
    }
    freeReplyObject(r);
    return (int) rint_("LLEN %s", key(q, DQ_KEY_WAKE)) - before;
}

/* The wake decision inside one call: the earliest waiting ETA is read only
 * when needed, the decision is the same whatever the order of tasks. */
static void
test_wake_batch(void)
{
    enq("wb", "e0", NULL, -1, 60000, NULL);     /* earliest waiting: 60 s */
    rint_("DEL %s", key("wb", DQ_KEY_WAKE));
    is_int(enq2_wake("wb", "e1", 90000, "e2", 120000), 0,
           "batch of later tasks: no wake");
    is_int(enq2_wake("wb", "e3", 90000, "e4", 30000), 1,
           "later task then one earlier than every waiting task: one wake");
    is_int(enq2_wake("wb", "e5", 20000, "e6", 120000), 1,
           "earlier task then a later one: one wake");
    is_int(enq2_wake("wb", "e7", 25000, "e8", 26000), 0,
           "earliest is read before the call's own tasks (20 s): no wake");
    /* a due task is in the eta set too: the earliest from now on */
    enq("wd", "d0", NULL, -1, 60000, NULL);
    rint_("DEL %s", key("wd", DQ_KEY_WAKE));
    is_int(enq2_wake("wd", "d1", 90000, "d2", -1), 1,
           "later task then a due one: one wake");
    is_int(enq2_wake("wd", "d3", -1, "d4", 90000), 1,
           "due task then a later one: one wake");
    is_int(enq2_wake("wd", "d5", 1000, "d6", 2000), 0,
           "after a due task, a delayed one is not the earliest: no wake");
    is_int(enq2_wake("wc", "f1", 60000, "f2", 90000), 1,
           "empty queue: a waiting task wakes");
}

/* Expired tombstones are dropped by the next call with a named task. */
static void
test_names_cleanup(void)
{
    task_t t[2];

    enq("nc", "g1", "gone", -1, -1, NULL);
    claim("nc", 1, 1000, 0, t, 2);
    ack1("nc", "g1", t[0].token, "gone");
    is_int(rint_("ZCARD %s", key("nc", DQ_KEY_NAMES)), 1, "name tombstoned");
    sleep_ms(TOMB + 50);
    enq("nc", "g2", NULL, -1, -1, NULL);
    is_int(rint_("ZCARD %s", key("nc", DQ_KEY_NAMES)), 1,
           "an unnamed call leaves the expired tombstone");
    is_int(enq("nc", "g3", "new", -1, -1, NULL), DQ_OK, "a named task");
    is_int(rint_("ZSCORE %s gone", key("nc", DQ_KEY_NAMES)), -1,
           "a named call removes the expired tombstone");
    is_int(rint_("ZCARD %s", key("nc", DQ_KEY_NAMES)), 1, "only the new name");
}

static void
test_clock(void)
{
    dq_enqueue_result_t res;
    task_t              t[2];
    int64_t             ahead;

    claim("ck", 1, 1000, 0, t, 2);
    ahead = claim_now + 30000;
    rint_("HSET %s clock %lld", key("ck", DQ_KEY_STATS), (long long) ahead);
    enq("ck", "c1", NULL, -1, -1, &res);
    is_int(res.eta_ms, ahead,
           "time never goes back (30 s): now = the stored clock");
    is_int(claim("ck", 1, 1000, 0, t, 2), 1, "due at the guarded now");
    is_int(claim_now, ahead, "claim uses the guarded now");

    ahead = claim_now + 3600000;
    rint_("HSET %s clock %lld", key("ck", DQ_KEY_STATS), (long long) ahead);
    enq("ck", "c2", NULL, -1, -1, &res);
    ok(res.eta_ms < ahead - 3500000,
       "a clock over 60 s ahead was an error: Redis TIME wins");
    is_int(rint_("HGET %s clock", key("ck", DQ_KEY_STATS)), res.eta_ms,
           "and the stored clock steps back to it");

    rint_("HSET %s clock %lld", key("ck", DQ_KEY_STATS),
          (long long) (res.eta_ms - 10000));
    enq("ck", "c3", NULL, -1, -1, &res);
    is_int(rint_("HGET %s clock", key("ck", DQ_KEY_STATS)), res.eta_ms,
           "a clock behind Redis TIME moves forward to it");
}

/* issue 11 item 7: 10,000 tasks in one call (unpack of every ZADD pair
 * failed above ~8,000 values, after the envelopes were written) */
static void
test_big_batch(void)
{
    static dq_enqueue_item_t   it[10000];
    static dq_enqueue_result_t res[10000];
    static char                ids[10000][16], names[10000][16];
    dq_error_t                 err;
    redisReply                *r;
    int                        i, rc, stored = 0;

    for (i = 0; i < 10000; i++) {
        snprintf(ids[i], sizeof(ids[i]), "x%d", i);
        snprintf(names[i], sizeof(names[i]), "n%d", i);
        memset(&it[i], 0, sizeof(it[i]));
        it[i].id = dq_str_c(ids[i]);
        it[i].envelope = dq_str_lit("env");
        it[i].name = dq_str_c(names[i]);
        it[i].eta_ms = -1;
        it[i].countdown_ms = i % 2 ? 60000 : -1;
    }
    dq_cmd_enqueue(&C, dq_str_lit("big"), it, 10000, TOMB);
    r = run(&C);
    rc = dq_reply_enqueue(r, it, 10000, res, &err);
    ok(rc == DQ_OK, "10,000 tasks in one call answered: %s",
       rc == DQ_OK ? "ok" : (r && r->type == REDIS_REPLY_ERROR ? r->str
                                                                : err.msg));
    freeReplyObject(r);
    for (i = 0; rc == DQ_OK && i < 10000; i++) {
        stored += res[i].status == DQ_OK && !res[i].existed;
    }
    is_int(stored, 10000, "all 10,000 stored");
    is_int(rint_("ZCARD %s", key("big", DQ_KEY_ETA)), 10000,
           "all 10,000 scheduled");
    is_int(rint_("HLEN %s", key("big", DQ_KEY_TASKS)), 10000,
           "10,000 envelopes");
    is_int(rint_("ZCARD %s", key("big", DQ_KEY_NAMES)), 10000,
           "10,000 names live");
}

/* issue 10 item 5: expired tombstones are removed a bounded number per
 * call, and one expired but not yet removed counts as free */
static void
test_names_bounded(void)
{
    redisReply *r;
    int         i;

    for (i = 0; i < 50; i++) {
        r = redisCommand(R, "ZADD %s 1 a%d 1 b%d 1 c%d 1 d%d 1 e%d 1 f%d "
                         "1 g%d 1 h%d 1 i%d 1 j%d",
                         key("nb", DQ_KEY_NAMES), i, i, i, i, i, i, i, i, i,
                         i);
        freeReplyObject(r);
    }
    r = redisCommand(R, "ZADD %s 1 oldname", key("nb", DQ_KEY_NAMES));
    freeReplyObject(r);
    is_int(rint_("ZCARD %s", key("nb", DQ_KEY_NAMES)), 501,
           "501 expired tombstones");
    is_int(enq("nb", "nb1", "fresh", -1, -1, NULL), DQ_OK, "a named task");
    ok(rint_("ZCARD %s", key("nb", DQ_KEY_NAMES)) >= 501 - 102 + 1,
       "one call removed at most 2n+100 of them (%lld left)",
       rint_("ZCARD %s", key("nb", DQ_KEY_NAMES)));
    ok(rint_("ZCARD %s", key("nb", DQ_KEY_NAMES)) < 501,
       "but some (bounded, not none)");
    is_int(enq("nb", "nb2", "oldname", -1, -1, NULL), DQ_OK,
           "an expired tombstone not yet removed does not refuse its name");
}

/* issue 10 item 10: a client-supplied id (keyed) is idempotent while the
 * task is stored and for the tombstone window after its ETA */
static int
enqk(const char *q, const char *id, dq_enqueue_result_t *res)
{
    dq_enqueue_item_t it;
    dq_error_t        err;
    redisReply       *r;
    int               rc;

    memset(&it, 0, sizeof(it));
    it.id = dq_str_c(id);
    it.envelope = dq_str_c(id);
    it.name = dq_str_c(NULL);
    it.eta_ms = -1;
    it.countdown_ms = -1;
    it.keyed = 1;
    dq_cmd_enqueue(&C, dq_str_c(q), &it, 1, TOMB);
    r = run(&C);
    rc = dq_reply_enqueue(r, &it, 1, res, &err);
    freeReplyObject(r);
    return rc == DQ_OK ? res->status : rc;
}

static void
test_keyed(void)
{
    dq_enqueue_result_t res;
    task_t              t[2];

    is_int(enqk("ky", "client-id-1", &res), DQ_OK, "keyed enqueue stored");
    ok(!res.existed, "new");
    is_int(enqk("ky", "client-id-1", &res), DQ_OK, "again while waiting");
    ok(res.existed && res.eta_ms > 0, "existed, with its ETA");
    is_int(rint_("HLEN %s", key("ky", DQ_KEY_TASKS)), 1, "stored once");
    claim("ky", 1, 1000, 0, t, 2);
    ack1("ky", "client-id-1", t[0].token, NULL);
    is_int(rint_("HLEN %s", key("ky", DQ_KEY_TASKS)), 0, "ran and acked");
    is_int(enqk("ky", "client-id-1", &res), DQ_OK, "again after it ran");
    ok(res.existed && res.eta_ms == 0, "existed (already ran): not stored");
    is_int(rint_("HLEN %s", key("ky", DQ_KEY_TASKS)), 0, "not stored again");
    sleep_ms(TOMB + 50);
    is_int(enqk("ky", "client-id-1", &res), DQ_OK,
           "after the window the id is new again");
    ok(!res.existed, "stored");
    is_int(rint_("HLEN %s", key("ky", DQ_KEY_TASKS)), 1, "stored");
}

/* A late ack: the lease expired and was taken back, but nobody claimed the
 * task again: the finished run counts (running it again would be for
 * nothing). Once someone claims it, the old claim's ack is refused. */
static void
test_late_ack(void)
{
    task_t t[2];
    char   a[DQ_ID_SIZE];

    enq("la", "l1", NULL, -1, -1, NULL);
    is_int(claim("la", 1, 50, 0, t, 2), 1, "claimed, lease 50 ms");
    snprintf(a, sizeof(a), "%s", t[0].token);
    sleep_ms(80);
    is_int(claim("la", 1, 5000, 60000, t, 2), 0,
           "expired: taken back (due in 60 s)");
    is_int(rint_("ZCARD %s", key("la", DQ_KEY_LEASE)), 0, "lease gone");
    is_int(ack1("la", "l1", a, NULL), 1, "the late ack is accepted");
    is_int(rint_("ZCARD %s", key("la", DQ_KEY_ETA)), 0,
           "and the task is gone from the ETA set");
    is_int(rint_("HLEN %s", key("la", DQ_KEY_TASKS)), 0,
           "value (and its state prefix) deleted");
    is_int(rint_("HGET %s acked_late", key("la", DQ_KEY_STATS)), 1,
           "acked_late counted");

    enq("la", "l2", NULL, -1, -1, NULL);
    claim("la", 1, 50, 0, t, 2);
    snprintf(a, sizeof(a), "%s", t[0].token);
    sleep_ms(80);
    is_int(claim("la", 1, 5000, 0, t, 2), 0, "expired: taken back");
    sleep_ms(120);
    is_int(claim("la", 1, 5000, 0, t, 2), 1, "after its backoff, claimed again");
    is_int(ack1("la", "l2", a, NULL), 0, "then the old claim's ack is refused");
    is_int(retry1("la", "l2", t[0].token, 0, "x"), 1, "the new holder's retry");
    is_int(ack1("la", "l2", t[0].token, NULL), 0,
           "a retried task is not acked by its old claim");
}

/* An expired lease does not overwrite the last real error. */
static void
test_expiry_keeps_error(void)
{
    task_t t[2];
    char   buf[64];

    enq("ke", "k1", NULL, -1, -1, NULL);
    claim("ke", 1, 5000, 0, t, 2);
    retry1("ke", "k1", t[0].token, 0, "real error");
    sleep_ms(2);
    claim("ke", 1, 30, 0, t, 2);
    sleep_ms(60);
    claim("ke", 0, 30, 0, t, 2);
    is_str(rstr(buf, sizeof(buf), "HGET %s k1", key("ke", DQ_KEY_ERRORS)),
           "real error", "the last real error is kept after an expiry");
}

/* release_claim: a claim whose reply was lost is given back whole, without
 * charge; other claims' leases are untouched. */
static void
test_release_claim(void)
{
    dq_claimed_t      tasks[8];
    dq_claim_result_t res;
    dq_error_t        err;
    redisReply       *r;
    task_t            t[8];
    char              cid[DQ_ID_SIZE], cursor[24];
    int64_t           n = 0, total = 0;
    int               i;

    for (i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "c%d", i);
        enq("rc", id, NULL, -1, -1, NULL);
    }
    is_int(claim("rc", 2, 60000, 0, t, 8), 2, "another claim holds 2");
    dq_claim_id_new(cid);
    res.tasks = tasks;
    dq_cmd_claim(&C, dq_str_lit("rc"), cid, 3, 60000, 0);
    r = run(&C);
    is_int(dq_reply_claim(r, &res, 8, &err), DQ_OK, "a claim of 3 ...");
    freeReplyObject(r);
    /* ... whose reply the worker never saw */
    snprintf(cursor, sizeof(cursor), "0");
    do {
        dq_cmd_release_claim(&C, dq_str_lit("rc"), cid, cursor);
        r = run(&C);
        if (dq_reply_release_claim(r, cursor, &n, &err) != DQ_OK) {
            diag("release_claim: %s", err.msg);
            freeReplyObject(r);
            break;
        }
        freeReplyObject(r);
        total += n;
    } while (strcmp(cursor, "0") != 0);
    is_int(total, 3, "release_claim gave back its 3 tasks");
    is_int(rint_("ZCARD %s", key("rc", DQ_KEY_LEASE)), 2,
           "the other claim's 2 leases stay");
    is_int(claim("rc", 8, 60000, 0, t, 8), 3, "the 3 are due again at once");
    is_int(t[0].retries + t[1].retries + t[2].retries, 0, "no attempt charged");
}

/* Bulk requeue: all dead, or those whose error matches; a name a live task
 * holds now keeps its dead task dead. */
static void
test_requeue_bulk(void)
{
    task_t  t[8];
    int64_t off, n, k;
    int     i, rc;
    dq_error_t err;
    redisReply *r;

    for (i = 0; i < 6; i++) {
        char id[16], nm[16];
        snprintf(id, sizeof(id), "b%d", i);
        snprintf(nm, sizeof(nm), "bn%d", i);
        enq("rq", id, i == 0 ? nm : NULL, -1, -1, NULL);
    }
    is_int(claim("rq", 8, 60000, 0, t, 8), 6, "6 claimed");
    for (i = 0; i < 6; i++) {
        bury1("rq", t[i].id, t[i].token, strcmp(t[i].id, "b0") ? NULL : "bn0",
              i % 2 ? "error: timeout" : "error: refused", 0, 0);
    }
    is_int(requeue1("rq", "nope"), 0, "requeue of an unknown id: 0");
    dq_cmd_requeue_bulk(&C, dq_str_lit("rq"), "timeout", 0, 1000);
    r = run(&C);
    rc = dq_reply_requeue_bulk(r, &off, &n, &k, &err);
    freeReplyObject(r);
    is_int(rc, DQ_OK, "bulk requeue by error text");
    is_int(n, 3, "the 3 timeouts requeued");
    is_int(off, -1, "the end reached");
    is_int(rint_("ZCARD %s", key("rq", DQ_KEY_DEAD)), 3, "3 stay dead");
    /* b0's name was tombstoned at bury (TOMB ms); after it a new task
     * takes the name: b0 must stay dead */
    sleep_ms(TOMB + 20);
    is_int(enq("rq", "new0", "bn0", -1, 60000, NULL), DQ_OK,
           "a new live task takes b0's name");
    dq_cmd_requeue(&C, dq_str_lit("rq"), dq_str_lit("b0"));
    r = run(&C);
    is_int(dq_reply_requeue(r, &i, &err), DQ_EDUPLICATE,
           "requeue of b0: its name is held by a live task");
    freeReplyObject(r);
    /* limit 1 per call: the offset walks past what stays dead */
    off = 0;
    int64_t total = 0, conflicts = 0;
    while (off >= 0) {
        dq_cmd_requeue_bulk(&C, dq_str_lit("rq"), NULL, off, 1);
        r = run(&C);
        rc = dq_reply_requeue_bulk(r, &off, &n, &k, &err);
        freeReplyObject(r);
        if (rc != DQ_OK) {
            break;
        }
        total += n;
        conflicts += k;
    }
    is_int(total, 2, "bulk requeue of all, 1 per call: 2 requeued");
    is_int(conflicts, 1, "1 left dead for its name");
    is_int(rint_("ZCARD %s", key("rq", DQ_KEY_DEAD)), 1, "only b0 stays dead");
    is_int(rint_("ZSCORE %s bn0", key("rq", DQ_KEY_NAMES)), 0,
           "the name is still the live task's (inf)");
}

/* Scripts that only free memory work at maxmemory. */
static void
test_oom(void)
{
    task_t t[4];
    int    s;

    enq("om", "o1", "on1", -1, -1, NULL);
    enq("om", "o2", NULL, -1, -1, NULL);
    enq("om", "o3", NULL, -1, -1, NULL);
    enq("om", "o4", NULL, -1, -1, NULL);
    is_int(claim("om", 4, 60000, 0, t, 4), 4, "4 claimed");
    rint_("CONFIG SET maxmemory-policy noeviction");
    rint_("CONFIG SET maxmemory 1");
    ok(enq("om", "o9", NULL, -1, -1, NULL) != DQ_OK,
       "at maxmemory an enqueue is refused (OOM)");
    is_int(extend1("om", t[0].id, t[0].token, 60000), 1, "extend works");
    is_int(ack1("om", t[0].id, t[0].token, strcmp(t[0].id, "o1") ? NULL
                                                                 : "on1"), 1,
           "ack works");
    is_int(bury1("om", t[1].id, t[1].token, NULL, "x", 0, 0), 1,
           "bury works");
    is_int(release1("om", t[2].id, t[2].token), 1, "release works");
    rint_("CONFIG SET maxmemory 0");
    {
        /* a failed attempt is never refused at maxmemory (retry runs
         * there like bury), and both keep their growth small there: the
         * error text is cut to 64 bytes */
        char   longerr[300];
        task_t u[2];

        memset(longerr, 'e', sizeof(longerr) - 1);
        longerr[sizeof(longerr) - 1] = '\0';
        enq("om", "o5", NULL, -1, -1, NULL);
        enq("om", "o6", NULL, -1, -1, NULL);
        is_int(claim("om", 2, 60000, 0, u, 2), 2, "2 more claimed");
        rint_("CONFIG SET maxmemory 1");
        is_int(retry1("om", u[0].id, u[0].token, 0, longerr), 1,
               "retry works at maxmemory");
        is_int(rint_("HSTRLEN %s %s", key("om", DQ_KEY_ERRORS), u[0].id), 64,
               "its error text cut to 64 bytes");
        is_int(bury1("om", u[1].id, u[1].token, NULL, longerr, 0, 0), 1,
               "bury works at maxmemory");
        is_int(rint_("HSTRLEN %s %s", key("om", DQ_KEY_ERRORS), u[1].id), 64,
               "its error text cut to 64 bytes");
        rint_("CONFIG SET maxmemory 0");
        is_int(bury1("om", u[0].id, u[0].token, NULL, longerr, 0, 0), 0,
               "(the retried one is not leased any more)");
    }
    rint_("CONFIG SET maxmemory 1");
    {
        dq_lease_item_t it = item(t[3].id, t[3].token, NULL);
        dq_cmd_ack(&C, dq_str_lit("om"), &it, 1, TOMB);
        is_int(statuses(1, &s), 1, "a second ack works");
    }
    rint_("CONFIG SET maxmemory 0");
}

/* The clock field: garbage in it breaks nothing; a forward jump of the
 * Redis clock (simulated: the queue's clock and the lease deadlines set an
 * hour back, which is what the scripts see after a step of an hour) takes
 * back only the leases that had expired before it, for one lease period,
 * even when a heartbeat was the first call to see the jump. */
static void
test_clock_jump(void)
{
    task_t  t[6];
    int64_t back;
    char    m[128];
    int     i;

    rint_("HSET %s clock banana", key("cj", DQ_KEY_STATS));
    is_int(enq("cj", "j1", NULL, -1, -1, NULL), DQ_OK,
           "a non-numeric clock field: enqueue works");
    is_int(claim("cj", 1, 60000, 0, t, 6), 1, "and claim works");
    ok(rint_("HGET %s clock", key("cj", DQ_KEY_STATS)) > 1700000000000LL,
       "the clock field is rewritten");
    enq("cj", "j2", NULL, -1, -1, NULL);
    is_int(claim("cj", 1, 60000, 0, t + 1, 5), 1, "second task claimed");
    enq("cj", "j3", NULL, -1, -1, NULL);
    is_int(claim("cj", 1, 60000, 0, t + 2, 4), 1, "third task claimed");
    /* the jump: an hour since the last call by the queue's clock; j1's and
     * j3's leases (deadline last clock + 60 s) look long expired, j2's had
     * expired before the jump */
    back = claim_now - 3600000;
    rint_("HSET %s clock %lld", key("cj", DQ_KEY_STATS), (long long) back);
    for (i = 0; i < 3; i++) {
        snprintf(m, sizeof(m), "%.63s|%.31s|%lld", t[i].id, t[i].token,
                 (long long) t[i].first);
        rint_("ZADD %s XX %lld %s", key("cj", DQ_KEY_LEASE),
              (long long) (i == 1 ? back - 1000 : back + 60000), m);
    }
    is_int(extend1("cj", "j1", t[0].token, 60000), 1,
           "j1's holder heartbeats first after the jump");
    is_int(claim("cj", 4, 60000, 0, t + 3, 3), 0, "then a claim");
    is_int(rint_("HGET %s clock_jumps", key("cj", DQ_KEY_STATS)), 1,
           "sees the jump");
    is_int(rint_("HGET %s reclaimed", key("cj", DQ_KEY_STATS)), 1,
           "and takes back only the lease that expired before it");
    is_int(extend1("cj", "j3", t[2].token, 60000), 1,
           "j3's holder, heartbeating later, still holds its lease");
    is_int(claim("cj", 4, 60000, 0, t + 3, 3), 0, "a later claim");
    is_int(rint_("HGET %s reclaimed", key("cj", DQ_KEY_STATS)), 1,
           "takes nothing more");
    is_int(rint_("HGET %s clock_jumps", key("cj", DQ_KEY_STATS)), 1,
           "the jump is counted once");
    is_int(ack1("cj", "j1", t[0].token, NULL), 1, "j1's ack is accepted");
    is_int(ack1("cj", "j3", t[2].token, NULL), 1, "j3's ack is accepted");
}

/* The jump guard against a quiet queue's later gaps and against jumps
 * shorter than two lease periods: (a) a jump of an hour, then a 2 s gap
 * (before: the 2 s gap replaced the record and the next claim took back
 * every lease the jump had expired); (b) a jump of one lease period and a
 * second (before: unguarded below two lease periods). */
static void
jump_case(const char *q, int64_t jump, int64_t second_gap, const char *what)
{
    task_t  t[4];
    int64_t back;
    char    m[128], msg[160];
    int     i;

    for (i = 0; i < 2; i++) {
        snprintf(m, sizeof(m), "%s%d", q, i);
        enq(q, m, NULL, -1, -1, NULL);
        is_int(claim(q, 1, 60000, 0, t + i, 3), 1, "claimed");
    }
    back = claim_now - jump;
    rint_("HSET %s clock %lld", key(q, DQ_KEY_STATS), (long long) back);
    for (i = 0; i < 2; i++) {
        snprintf(m, sizeof(m), "%.63s|%.31s|%lld", t[i].id, t[i].token,
                 (long long) t[i].first);
        rint_("ZADD %s XX %lld %s", key(q, DQ_KEY_LEASE),
              (long long) (back + 60000), m);
    }
    is_int(extend1(q, t[0].id, t[0].token, 60000), 1,
           "the first holder heartbeats first after the jump");
    if (second_gap > 0) {
        /* a quiet spell after it: the queue's clock second_gap behind */
        rint_("HSET %s clock %lld", key(q, DQ_KEY_STATS),
              (long long) (rint_("HGET %s clock", key(q, DQ_KEY_STATS))
                           - second_gap));
        is_int(extend1(q, t[0].id, t[0].token, 60000), 1,
               "a heartbeat after a second, smaller gap");
    }
    is_int(claim(q, 4, 60000, 0, t + 2, 2), 0, "a claim");
    snprintf(msg, sizeof(msg), "%s: the other lease is not taken back", what);
    is_int(rint_("HGET %s reclaimed", key(q, DQ_KEY_STATS)), -1, msg);
    is_int(extend1(q, t[1].id, t[1].token, 60000), 1,
           "its holder, heartbeating later, still holds it");
}

static void
test_clock_jump_gaps(void)
{
    int64_t now;

    jump_case("cg", 3600000, 2000, "a jump, then a 2 s gap");
    jump_case("ch", 61000, 0, "a jump of one lease period");
    /* a backward step of over 60 s (the clock was ahead, now corrected):
     * the gap record belongs to the old time line and goes */
    enq("cb", "b0", NULL, -1, -1, NULL);
    now = rint_("HGET %s clock", key("cb", DQ_KEY_STATS));
    rint_("HSET %s clock %lld gap_from %lld gap_to %lld",
          key("cb", DQ_KEY_STATS), (long long) (now + 120000),
          (long long) (now + 50000), (long long) (now + 120000));
    enq("cb", "b1", NULL, -1, -1, NULL);
    ok(rint_("HGET %s clock", key("cb", DQ_KEY_STATS)) < now + 60000,
       "a clock 120 s ahead steps back");
    is_int(rint_("HEXISTS %s gap_from", key("cb", DQ_KEY_STATS)), 0,
           "and the stale gap record is cleared");
}

/* Expired leases come back after the queue's backoff: the Lua arithmetic
 * equals dq_backoff_ms for every attempt count; at most 1000 per call. */
static void
test_reclaim_backoff(void)
{
    static const dq_retry_t bo = { 5, 0, 10, 700, 3 };
    dq_claimed_t      tasks[32];
    dq_claim_result_t res;
    dq_error_t        err;
    redisReply       *r;
    char              cid[DQ_ID_SIZE], id[16], st[96];
    int64_t           now, eta;
    int               i, bad = 0;

    for (i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "bo%d", i);
        enq("bk", id, NULL, -1, -1, NULL);
    }
    dq_claim_id_new(cid);
    res.tasks = tasks;
    dq_cmd_claim(&C, dq_str_lit("bk"), cid, 20, 1, 0);
    r = run(&C);
    is_int(dq_reply_claim(r, &res, 32, &err), DQ_OK, "20 claimed, lease 1 ms");
    freeReplyObject(r);
    for (i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "bo%d", i);
        snprintf(st, sizeof(st), "S0:%d:1:0:%s\n%s", i, cid, id);
        freeReplyObject(redisCommand(R, "HSET %s %s %b",
                                     key("bk", DQ_KEY_TASKS), id, st,
                                     strlen(st)));
    }
    sleep_ms(5);
    dq_claim_id_new(cid);
    dq_cmd_claim_limited(&C, dq_str_lit("bk"), cid, 0, 1000, 0, &bo, NULL);
    r = run(&C);
    res.n = 0;
    dq_reply_claim(r, &res, 32, &err);
    now = res.now_ms;
    freeReplyObject(r);
    for (i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "bo%d", i);
        eta = rint_("ZSCORE %s %s", key("bk", DQ_KEY_ETA), id);
        if (eta - now != dq_backoff_ms(&bo, i + 1)) {
            diag("retries %d: lua %lld, C %lld", i + 1,
                 (long long) (eta - now),
                 (long long) dq_backoff_ms(&bo, i + 1));
            bad++;
        }
    }
    is_int(bad, 0, "expired leases: ETA = now + dq_backoff_ms(retries)");

    /* 2500 expired leases: taken back 1000 per call */
    {
        static dq_enqueue_item_t it[1000];
        static char              ids[1000][16];
        int                      k;

        for (k = 0; k < 3; k++) {
            for (i = 0; i < 1000; i++) {
                snprintf(ids[i], sizeof(ids[i]), "m%d", k * 1000 + i);
                it[i].id = dq_str_c(ids[i]);
                it[i].envelope = dq_str_lit("e");
                it[i].name = dq_str_lit("");
                it[i].eta_ms = it[i].countdown_ms = -1;
            }
            dq_cmd_enqueue(&C, dq_str_lit("bm"), it, k < 2 ? 1000 : 500,
                           TOMB);
            freeReplyObject(run(&C));
        }
        /* a 1.5 s lease, so a loaded machine's three claims do not
         * expire each other's; the queue's clock is ticked every 200 ms
         * while they expire (an enqueue of a task a day ahead), so the
         * wait is no gap the clock-jump guard would hold leases back for */
        for (k = 0; k < 3; k++) {
            dq_claim_id_new(cid);
            dq_cmd_claim(&C, dq_str_lit("bm"), cid, 1000, 1500, 60000);
            freeReplyObject(run(&C));
        }
        for (k = 0; k < 8; k++) {
            static char tick[16];

            sleep_ms(200);
            snprintf(tick, sizeof(tick), "tick%d", k);
            it[0].id = dq_str_c(tick);
            it[0].countdown_ms = 86400000;
            dq_cmd_enqueue(&C, dq_str_lit("bm"), it, 1, TOMB);
            freeReplyObject(run(&C));
        }
        dq_claim_id_new(cid);
        dq_cmd_claim(&C, dq_str_lit("bm"), cid, 0, 1000, 60000);
        freeReplyObject(run(&C));
        is_int(rint_("HGET %s reclaimed", key("bm", DQ_KEY_STATS)), 1000,
               "one claim takes back at most 1000 expired leases");
        is_int(rint_("ZCARD %s", key("bm", DQ_KEY_LEASE)), 1500,
               "the rest wait for the next calls");
    }
}

/* Calls of one Redis command since the last CONFIG RESETSTAT (scripts'
 * redis.call included). */
static long long
calls(const char *cmd)
{
    redisReply *r = redisCommand(R, "INFO commandstats");
    char        pat[64];
    const char *p;
    long long   n = 0;

    snprintf(pat, sizeof(pat), "cmdstat_%s:calls=", cmd);
    if (r && r->type == REDIS_REPLY_STRING
        && (p = strstr(r->str, pat)) != NULL)
    {
        n = strtoll(p + strlen(pat), NULL, 10);
    }
    freeReplyObject(r);
    return n;
}

/* One call per worker cycle (dq_cmd_cycle): the acks of the last batch
 * and the next claim together; the success path writes no state (no
 * HSET but the queue's clock, one HDEL: the values), reads each structure
 * once; a task with history has its error deleted by the ack, one
 * without has none to delete. */
static void
test_cycle(void)
{
    dq_claimed_t      tasks[64];
    dq_lease_item_t   acks[64];
    dq_claim_result_t res;
    dq_error_t        err;
    redisReply       *r;
    char              cid[DQ_ID_SIZE], cid2[DQ_ID_SIZE], id[16];
    int               st[64], i, bad = 0;
    size_t            n;

    /* one ETA (long past) for all: the claim reads it as one run (a
     * ZSCORE and a ZCOUNT), whatever ms each enqueue call ran in */
    for (i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "cy%d", i);
        enq("cy", id, NULL, 1000, -1, NULL);
    }
    res.tasks = tasks;
    dq_claim_id_new(cid);
    is_int(dq_cmd_cycle(&C, dq_str_lit("cy"), cid, 20, 60000, 0, NULL, NULL,
                        NULL, 0, TOMB), DQ_OK, "cycle without acks built");
    r = run(&C);
    is_int(dq_reply_cycle(r, 0, st, &res, 64, &err), DQ_OK,
           "cycle without acks = claim");
    is_int((int64_t) res.n, 20, "20 claimed");
    n = res.n;
    for (i = 0; i < (int) n; i++) {
        memset(&acks[i], 0, sizeof(acks[i]));
        acks[i].id = tasks[i].id;
        acks[i].claim = tasks[i].claim;
        acks[i].first_run_ms = tasks[i].first_run_ms;
        acks[i].history = dq_claimed_history(&tasks[i]);
    }
    acks[n] = acks[0];
    acks[n].claim = dq_str_lit("someoneelse");
    rint_("CONFIG RESETSTAT");
    dq_claim_id_new(cid2);
    is_int(dq_cmd_cycle(&C, dq_str_lit("cy"), cid2, 20, 60000, 0, NULL, NULL,
                        acks, n + 1, TOMB), DQ_OK, "cycle with 21 acks built");
    {
        redisReply *r2 = run(&C);

        /* the acks' strings point into r: freed only now */
        freeReplyObject(r);
        r = r2;
    }
    res.tasks = tasks;
    is_int(dq_reply_cycle(r, n + 1, st, &res, 64, &err), DQ_OK,
           "cycle reply");
    for (i = 0; i < (int) n; i++) {
        bad += st[i] != 1;
    }
    is_int(bad, 0, "the 20 acks accepted");
    is_int(st[n], 0, "an ack under another claim id fenced, in the same call");
    is_int((int64_t) res.n, 20, "and the next 20 claimed");
    freeReplyObject(r);
    ok(calls("hset") <= 1, "success path: no HSET but the clock's (%lld)",
       calls("hset"));
    is_int(calls("hdel"), 1, "one HDEL (the values; no error to delete)");
    is_int(calls("hget"), 0, "no HGET");
    /* the acks emptied the lease set: the claim made a new one, with the
     * pad member that makes it a skiplist (added and removed at once) */
    is_int(calls("zrem"), 1, "no ZREM of leases per ack, none of eta "
           "(ZREMRANGEBYRANK): one of the skiplist pad");
    is_int(calls("zremrangebyrank"), 1, "the claimed tasks leave eta by "
           "rank");
    is_int(calls("zadd"), 2, "two ZADDs: the acks' leases marked (XX GT "
           "+inf, one call for 21), the new leases");
    is_int(calls("zremrangebyscore"), 1, "the acks' leases removed by one "
           "call");
    is_int(calls("zrangebyscore"), 2, "one ZRANGEBYSCORE of eta (claim), "
           "one of the marked leases (an ack was fenced)");
    is_int(calls("zmscore"), 1, "no ZMSCORE of leases (its reply formats "
           "every score): one of eta, for the fenced ack only");
    is_int(calls("lpush") + calls("ltrim"), 0,
           "no wake token pushed: nothing left due");
    is_int(rint_("HGET %s done", key("cy", DQ_KEY_STATS)), 20, "done counted");
    is_int(rint_("ZCARD %s", key("cy", DQ_KEY_LEASE)), 20, "20 leased");
    {
        char enc[32];

        is_str(rstr(enc, sizeof(enc), "OBJECT ENCODING %s",
                    key("cy", DQ_KEY_LEASE)), "skiplist",
               "20 leases of ~45 bytes are a skiplist, not a listpack");
        is_int(rint_("ZCOUNT %s -inf 0", key("cy", DQ_KEY_LEASE)), 0,
               "the pad member is gone");
    }
    is_int(rint_("ZCARD %s", key("cy", DQ_KEY_ETA)), 0, "none waiting");

    /* history: a retried task's error goes with its ack */
    {
        task_t t[2];

        enq("cy2", "h1", NULL, -1, -1, NULL);
        claim("cy2", 1, 60000, 0, t, 2);
        retry1("cy2", "h1", t[0].token, 0, "boom");
        is_int(claim("cy2", 1, 60000, 0, t, 2), 1, "claimed again");
        ok(t[0].retries == 1, "with history");
        is_int(rint_("HEXISTS %s h1", key("cy2", DQ_KEY_ERRORS)), 1,
               "its error is kept while it runs");
        is_int(ack1("cy2", "h1", t[0].token, NULL), 1, "acked (history 1)");
        is_int(rint_("HEXISTS %s h1", key("cy2", DQ_KEY_ERRORS)), 0,
               "its error deleted");
        is_int(rint_("HLEN %s", key("cy2", DQ_KEY_TASKS)), 0,
               "value and prefix deleted");
    }
    /* bad arguments: refused before the first write (the acks' strings
     * pointed into a freed reply: names of our own now) */
    acks[0].id = dq_str_lit("cy0");
    acks[0].claim = dq_str_lit("someclaim");
    acks[1] = acks[0];
    dq_cmd_cycle(&C, dq_str_lit("cy"), cid, 20, 60000, 0, NULL, NULL,
                 acks, 2, TOMB);
    C.argc--;
    r = run(&C);
    ok(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "bad arguments"),
       "a cycle with a missing ack argument refused");
    freeReplyObject(r);
    is_int(rint_("ZCARD %s", key("cy", DQ_KEY_LEASE)), 20,
           "nothing acked, nothing claimed");
}

/* The migration's bounded steps: a v1 queue (written by hand, as the v1
 * scripts leave it) moved 3 tasks and 3 names a step, the cursor followed
 * to "0"; the name of a task still leased under v1 stays until that lease
 * is gone; nothing moves twice; the v1 keys go once v1 is empty. */
static char kv1[DQ_KEY_V1__COUNT][DQ_KEY_MAX];

static const char *
key1(dq_key_kind_t k)
{
    dq_key_format_v1(kv1[k], sizeof(kv1[k]), dq_str_lit("mg"), k);
    return kv1[k];
}

static int64_t mig_moved, mig_left, mig_steps;

static void
migrate_all(void)
{
    char        cursor[24] = "0";
    int64_t     m, l;
    dq_error_t  err;
    redisReply *r;

    mig_moved = mig_left = mig_steps = 0;
    do {
        if (dq_cmd_migrate(&C, dq_str_lit("mg"), cursor, 3) != DQ_OK) {
            diag("migrate: not built");
            return;
        }
        r = run(&C);
        if (dq_reply_migrate(r, cursor, &m, &l, &err) != DQ_OK) {
            diag("migrate: %s", err.msg);
            freeReplyObject(r);
            return;
        }
        freeReplyObject(r);
        mig_moved += m;
        mig_left = l;
        mig_steps++;
    } while (strcmp(cursor, "0") != 0 && mig_steps < 100);
}

/* Claim reads the ETAs of the tasks it takes by runs of equal ETAs
 * (ZSCORE + ZCOUNT of a run's first task, one call for the last one or
 * two tasks wanted; ZMSCORE for the rest after a run of one or two):
 * every claimed task must still report its own ETA, whatever the pattern
 * of runs, a claim that stops inside a run included. */
static void
test_eta_runs(void)
{
    /* ETA offsets (ms before now) of 24 due tasks, in ETA order: runs of
     * 3, 1, 1, 4, 1, 2, then 12 equal ones */
    static const int off[] = { 90, 90, 90, 80, 75, 70, 70, 70, 70, 60, 50,
                               50, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,
                               40, 40 };
    const size_t n = sizeof(off) / sizeof(off[0]);
    char         id[32];
    task_t       t[32];
    int64_t      now = 0, want[32];
    size_t       i, got = 0, bad = 0, takes[] = { 4, 4, 2, 14 }, k;
    int          c;

    {
        dq_enqueue_result_t res;

        enq("er", "er-probe", "", -1, -1, &res);
        now = res.eta_ms;
        rint_("DEL %s %s", key("er", DQ_KEY_TASKS), key("er", DQ_KEY_ETA));
    }
    for (i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "er%02zu", i);   /* ids in ETA order */
        want[i] = now - off[i];
        is_int(enq("er", id, "", want[i], -1, NULL), DQ_OK, "enqueued %s",
               id);
    }
    rint_("CONFIG RESETSTAT");
    for (k = 0; k < sizeof(takes) / sizeof(takes[0]); k++) {
        c = claim("er", (int64_t) takes[k], 60000, 0, t, 32);
        is_int(c, (int64_t) takes[k], "claim %zu took %zu", k, takes[k]);
        for (i = 0; c > 0 && i < (size_t) c; i++, got++) {
            unsigned j = (unsigned) atoi(t[i].id + 2);

            if (j != got || t[i].eta != want[j]) {
                diag("task %s: eta %lld, want %lld (position %zu)", t[i].id,
                     (long long) t[i].eta, (long long) want[j < n ? j : 0],
                     got);
                bad++;
            }
        }
    }
    is_int(got, n, "every task claimed");
    is_int(bad, 0, "each in ETA order with its own ETA");
    /* claim 0: the run of 3 (ZSCORE + ZCOUNT), then the last task wanted
     * (ZSCORE alone); claim 1: a run of one, then one ZMSCORE for the
     * other 3; claim 2 takes two tasks (one ZMSCORE, no count); claim 3:
     * a run of two, then one ZMSCORE for the other 12 */
    is_int(calls("zscore"), 4, "one ZSCORE per run read");
    is_int(calls("zcount"), 3, "no ZCOUNT for the last two tasks wanted");
    is_int(calls("zmscore"), 3, "one ZMSCORE after a run of one or two");
}

static void
test_migrate_steps(void)
{
    /* [1, "L", "f", [], nil, "mg", "held", nil, 0, 0, nil, nil] */
    static const char env_l[] = "\x9c\x01\xa1L\xa1" "f\x90\xc0\xa2mg\xa4held"
                                "\xc0\x00\x00\xc0\xc0";
    char buf[64];
    int  i, k;

    for (i = 0; i < 10; i++) {
        rint_("HSET %s t%d env%d", key1(DQ_KEY_TASKS), i, i);
        rint_("ZADD %s %d t%d", key1(DQ_KEY_ETA), 1000 + i, i);
    }
    for (i = 0; i < 2; i++) {
        rint_("HSET %s d%d envd", key1(DQ_KEY_TASKS), i);
        rint_("ZADD %s %d d%d", key1(DQ_KEY_DEAD), 500 + i, i);
        rint_("HSET %s d%d 1:0:5:7:cx:nmd", key1(DQ_KEY_V1_STATE), i);
        rint_("HSET %s d%d boom", key1(DQ_KEY_ERRORS), i);
    }
    for (i = 0; i < 6; i++) {
        rint_("ZADD %s 9999999999999 n%d", key1(DQ_KEY_NAMES), i);
    }
    rint_("ZADD %s inf held", key1(DQ_KEY_NAMES));
    rint_("ZADD %s 1 #L", key1(DQ_KEY_NAMES));      /* L's key, first */
    freeReplyObject(redisCommand(R, "HSET %s L %b", key1(DQ_KEY_TASKS), env_l,
                                 sizeof(env_l) - 1));
    rint_("ZADD %s 9999999999999 L|cl", key1(DQ_KEY_LEASE));
    rint_("HSET %s enqueued 13 done 3", key1(DQ_KEY_STATS));

    migrate_all();
    is_int(mig_moved, 12, "migrate: 10 waiting + 2 dead moved");
    ok(mig_steps >= 4, "in bounded steps of 3 (%lld steps)",
       (long long) mig_steps);
    is_int(mig_left, 1, "the leased one left in v1");
    is_int(rint_("ZCARD %s", key("mg", DQ_KEY_ETA)), 10, "v2: 10 waiting");
    is_int(rint_("ZSCORE %s t9", key("mg", DQ_KEY_ETA)), 1009,
           "with their ETA");
    is_int(rint_("ZCARD %s", key("mg", DQ_KEY_DEAD)), 2, "v2: 2 dead");
    rstr(buf, sizeof(buf), "HGET %s d1", key("mg", DQ_KEY_TASKS));
    is_str(buf, "S1:0:5:7:cx:nmd\nenvd", "the v1 state became the prefix");
    is_str(rstr(buf, sizeof(buf), "HGET %s d0", key("mg", DQ_KEY_ERRORS)),
           "boom", "errors moved");
    is_int(rint_("ZCARD %s", key("mg", DQ_KEY_NAMES)), 6,
           "the 6 tombstones moved (3 a step)");
    is_int(rint_("ZSCORE %s held", key1(DQ_KEY_NAMES)), 0,
           "the leased task's live name stays in v1 (inf reads 0)");
    is_int(rint_("ZSCORE %s #L", key1(DQ_KEY_NAMES)), 1,
           "its keyed id too (skipped, the names after it still moved)");
    is_int(rint_("EXISTS %s", key1(DQ_KEY_TASKS)), 1, "its task too");
    is_int(rint_("HGET %s enqueued", key("mg", DQ_KEY_STATS)), 13,
           "counters added");
    is_int(rint_("HEXISTS %s enqueued", key1(DQ_KEY_STATS)), 0,
           "and taken out of v1");
    migrate_all();
    is_int(mig_moved, 0, "again: nothing moves twice");
    is_int(rint_("HGET %s enqueued", key("mg", DQ_KEY_STATS)), 13,
           "counters not added twice");
    /* the v1 worker acks L on v1 */
    rint_("ZREM %s L|cl", key1(DQ_KEY_LEASE));
    rint_("HDEL %s L", key1(DQ_KEY_TASKS));
    rint_("ZADD %s 9999999999999 held", key1(DQ_KEY_NAMES));
    rint_("HINCRBY %s done 1", key1(DQ_KEY_STATS));
    migrate_all();
    is_int(mig_left, 0, "then nothing is left in v1");
    is_int(rint_("ZSCORE %s held", key("mg", DQ_KEY_NAMES)), 9999999999999LL,
           "the name moved with its tombstone");
    is_int(rint_("ZSCORE %s #L", key("mg", DQ_KEY_NAMES)), 1,
           "and the keyed id");
    is_int(rint_("HGET %s done", key("mg", DQ_KEY_STATS)), 4,
           "the v1 ack counted");
    for (k = 0; k < DQ_KEY_V1__COUNT; k++) {
        if (rint_("EXISTS %s", key1((dq_key_kind_t) k)) != 0) {
            break;
        }
    }
    is_int(k, DQ_KEY_V1__COUNT, "no v1 key left");
}

int
main(int argc, char **argv)
{
    int port = redis_port(argc, argv);

    if (port <= 0) {
        printf("1..0 # SKIP no redis port given\n");
        return 0;
    }
    redis_connect(port);
    freeReplyObject(redisCommand(R, "FLUSHALL"));
    dq_cmd_init(&C);

    test_round_trip();
    test_countdown();
    test_names();
    test_fencing();
    test_retry();
    test_bury_requeue();
    test_release_extend();
    test_noscript();
    test_batch();
    test_wake();
    test_wake_batch();
    test_names_cleanup();
    test_big_batch();
    test_names_bounded();
    test_keyed();
    test_clock();
    test_late_ack();
    test_expiry_keeps_error();
    test_release_claim();
    test_requeue_bulk();
    test_oom();
    test_clock_jump();
    test_clock_jump_gaps();
    test_reclaim_backoff();
    test_cycle();
    test_eta_runs();
    test_migrate_steps();

    dq_cmd_free(&C);
    redisFree(R);
    return done_testing();
}
