/*
 * The Lua scripts against a real redis-server (t/unit/scripts_helper.h),
 * claim: fencing, the clock guard (garbage, forward jumps, later gaps),
 * release of a lost claim, expired leases back after the backoff, one call
 * per worker cycle (acks + claim), ETAs read by runs.
 * Usage: test_scripts_claim PORT
 */
#include "scripts_helper.h"

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

int
main(int argc, char **argv)
{
    if (!scripts_start(argc, argv)) {
        return 0;
    }

    test_fencing();
    test_clock();
    test_release_claim();
    test_clock_jump();
    test_clock_jump_gaps();
    test_reclaim_backoff();
    test_cycle();
    test_eta_runs();

    return scripts_done();
}
