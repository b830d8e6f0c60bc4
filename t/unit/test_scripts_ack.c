/*
 * The Lua scripts against a real redis-server (t/unit/scripts_helper.h),
 * the end of a lease: retry, bury and dead-set trimming (and requeue of a
 * buried task), release, extend, a late ack, an expired lease that keeps
 * the last error.
 * Usage: test_scripts_ack PORT
 */
#include "scripts_helper.h"

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
        dq_envelope_encode(&req, -1, 1, NULL, &sb, &err);
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

int
main(int argc, char **argv)
{
    if (!scripts_start(argc, argv)) {
        return 0;
    }

    test_retry();
    test_bury_requeue();
    test_release_extend();
    test_late_ack();
    test_expiry_keeps_error();

    return scripts_done();
}
