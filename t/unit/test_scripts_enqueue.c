/*
 * The Lua scripts against a real redis-server (t/unit/scripts_helper.h),
 * enqueue: a task's round trip through claim and ack, countdown, names
 * (duplicate, tombstone window, expired tombstones dropped, a bounded
 * number per call), batches (atomicity, 10,000 tasks in one call), the
 * wake list (and its decision inside a batch), keyed ids.
 * Usage: test_scripts_enqueue PORT
 */
#include "scripts_helper.h"

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

    /* a malformed task anywhere: nothing is written (a countdown: the
     * call carries its when_i, which a call of tasks all due now leaves
     * out) */
    it[2].countdown_ms = 1000;
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
    /* 1 + 20 pushes: the 17th token cuts the list to 8, then 4 more */
    is_int(rint_("LLEN %s", key("wk", DQ_KEY_WAKE)), 12,
           "wake list cut to 8 past 16 tokens (12 after 21 pushes)");
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

/* dq_cmd_enqueue of it[0..1] on queue "sf", run, its reply read into res */
static int
sf_send2(dq_enqueue_item_t *it, dq_enqueue_result_t *res)
{
    dq_error_t  err;
    redisReply *r;
    int         rc;

    dq_cmd_enqueue(&C, dq_str_lit("sf"), it, 2, TOMB);
    r = run(&C);
    rc = dq_reply_enqueue(r, it, 2, res, &err);
    freeReplyObject(r);
    return rc;
}

/* The call's two short forms (lib/lua/enqueue.lua): no when_i when every
 * task is due now, and -n when every plain id is new (made up by the
 * caller): no look for stored ids. The long forms stay accepted (callers
 * of the contract that are not ours), a length that fits neither is
 * refused, and a fresh call still stores a repeated id once. */
static void
test_short_forms(void)
{
    dq_enqueue_item_t   it[3];
    dq_enqueue_result_t res[3];
    redisReply         *r;
    char                tk[128], ek[128], sk[128];
    int                 i, rc;

    snprintf(tk, sizeof(tk), "%s", key("sf", DQ_KEY_TASKS));
    snprintf(ek, sizeof(ek), "%s", key("sf", DQ_KEY_ETA));
    snprintf(sk, sizeof(sk), "%s", key("sf", DQ_KEY_STATS));
    memset(it, 0, sizeof(it));
    for (i = 0; i < 3; i++) {
        it[i].id = i == 0 ? dq_str_lit("sf0") : i == 1 ? dq_str_lit("sf1")
                                                       : dq_str_lit("sf2");
        it[i].envelope = dq_str_lit("env");
        it[i].eta_ms = -1;
        it[i].countdown_ms = -1;
    }

    /* due now, not fresh: 2 values a task, n positive */
    rc = sf_send2(it, res);
    is_int((int64_t) C.argc, 3 + DQ_ENQUEUE_NKEYS + 3 + 2 * 2,
           "all due now: no when_i sent");
    is_str(C.argv[3 + DQ_ENQUEUE_NKEYS + 1], "2", "ids not fresh: n as is");
    ok(rc == DQ_OK && !res[0].existed && !res[1].existed,
       "the short form stores");
    is_int(rint_("ZCARD %s", ek), 2, "both on eta");

    /* the same ids again without the fresh mark: found stored */
    rc = sf_send2(it, res);
    ok(rc == DQ_OK && res[0].existed && res[1].existed,
       "not fresh: stored ids are found (idempotent)");

    /* fresh, with a countdown: n negative, when_i sent */
    it[0].id = dq_str_lit("sf3");
    it[1].id = dq_str_lit("sf4");
    it[1].countdown_ms = 10000;     /* within the cold horizon: on eta */
    for (i = 0; i < 3; i++) {
        it[i].fresh = 1;
    }
    rc = sf_send2(it, res);
    is_int((int64_t) C.argc, 3 + DQ_ENQUEUE_NKEYS + 3 + 3 * 2,
           "a countdown: when_i sent");
    is_str(C.argv[3 + DQ_ENQUEUE_NKEYS + 1], "-2", "fresh ids: -n");
    ok(rc == DQ_OK && !res[0].existed && !res[1].existed, "fresh: stored");
    ok(rint_("ZSCORE %s sf4", ek) > rint_("ZSCORE %s sf3", ek) + 5000,
       "its countdown kept");

    /* fresh and one id twice in the call: stored once, the second answers
     * existed (HSET's count of new fields) */
    it[1].countdown_ms = -1;
    it[0].id = dq_str_lit("sf5");
    it[1].id = dq_str_lit("sf5");
    rc = sf_send2(it, res);
    ok(rc == DQ_OK && !res[0].existed && res[1].existed,
       "fresh, the same id twice: the first stored, the second existed");
    is_int(rint_("HGET %s enqueued", sk), 5, "5 tasks counted");

    /* a keyed task in the call: n stays positive (its id is the client's) */
    it[1].id = dq_str_lit("sf6");
    it[1].keyed = 1;
    it[1].fresh = 0;
    dq_cmd_enqueue(&C, dq_str_lit("sf"), it, 2, TOMB);
    is_str(C.argv[3 + DQ_ENQUEUE_NKEYS + 1], "-2",
           "a keyed task does not unmark the plain ids");
    it[0].keyed = 1;
    dq_cmd_enqueue(&C, dq_str_lit("sf"), it, 2, TOMB);
    is_str(C.argv[3 + DQ_ENQUEUE_NKEYS + 1], "2",
           "keyed tasks only (no plain id): n positive");
    it[0].fresh = 0;
    it[0].keyed = 0;
    it[1].keyed = 0;
    dq_cmd_enqueue(&C, dq_str_lit("sf"), it, 2, TOMB);
    is_str(C.argv[3 + DQ_ENQUEUE_NKEYS + 1], "2",
           "one plain id not fresh: n positive");

    /* a call that says fresh but carries a stored id (no caller of ours
     * does): not silent, counted (review 9X, finding 1) */
    r = redisCommand(R, "EVAL %s 8 %s %s k3 %s k5 k6 k7 k8 1000 -2 0 "
                     "sf0 e sf9 e",
                     dq_script(DQ_SCRIPT_ENQUEUE)->source, tk, ek, sk);
    ok(r && r->type == REDIS_REPLY_ARRAY, "a stored id sent as fresh: ran");
    freeReplyObject(r);
    is_int(rint_("HGET %s fresh_collisions", sk), 1,
           "counted in stats fresh_collisions");

    /* a length that fits neither form, and a non-integer n */
    r = redisCommand(R, "EVAL %s 8 %s %s k3 %s k5 k6 k7 k8 1000 2 0 a e b e x",
                     dq_script(DQ_SCRIPT_ENQUEUE)->source, tk, ek, sk);
    ok(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "bad arguments"),
       "2 tasks with 1 when: bad arguments");
    freeReplyObject(r);
    r = redisCommand(R, "EVAL %s 8 %s %s k3 %s k5 k6 k7 k8 1000 1.5 0 a e b",
                     dq_script(DQ_SCRIPT_ENQUEUE)->source, tk, ek, sk);
    ok(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "bad arguments"),
       "n 1.5: bad arguments");
    freeReplyObject(r);
    /* the long form with every when "" (other callers of the contract) */
    r = redisCommand(R, "EVAL %s 8 %s %s k3 %s k5 k6 k7 k8 1000 2 0 "
                     "sf7 e sf8 e %s %s",
                     dq_script(DQ_SCRIPT_ENQUEUE)->source, tk, ek, sk, "", "");
    ok(r && r->type == REDIS_REPLY_ARRAY, "the long form, whens \"\": stored");
    freeReplyObject(r);
    ok(rint_("ZSCORE %s sf8", ek) > 0, "on eta");
}

int
main(int argc, char **argv)
{
    if (!scripts_start(argc, argv)) {
        return 0;
    }

    test_round_trip();
    test_countdown();
    test_names();
    test_batch();
    test_wake();
    test_wake_batch();
    test_names_cleanup();
    test_big_batch();
    test_names_bounded();
    test_keyed();
    test_short_forms();

    return scripts_done();
}
