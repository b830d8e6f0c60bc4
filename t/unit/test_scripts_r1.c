/*
 * Contract v2 scripts against the findings of review R1 (issue #12), each
 * the way operations meet it, through the dq_cmd_* builders:
 *  1 a requeued dead task that succeeds leaves no error behind (forget
 *    works on the queue after it);
 *  5 a second forward clock step, smaller than a first one still on record,
 *    does not expire live leases;
 *  8 one enqueue of 10,000 named tasks over 10,000 expired tombstones;
 *  9 a rate bucket written before the clock stepped back refills.
 * Usage: test_scripts_r1 PORT
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "scripts_helper.h"

/* one task, no name, due now (scripts_helper.h's enq) */
static int
enq1(const char *q, const char *id)
{
    return enq(q, id, NULL, -1, -1, NULL);
}

/* one claim of at most one task (rate: tasks/s, 0 none); the claimed task
 * as the lease item a worker would echo (id and claim copied out) */
static char          got_id[64], got_cid[DQ_ID_SIZE];
static dq_claimed_t  got;

static int
claim1(const char *q, int64_t lease, double rate)
{
    dq_claimed_t      tasks[4];
    dq_claim_result_t res;
    dq_claim_limits_t lim = { rate, 1, 0 };
    dq_error_t        err;
    redisReply       *r;
    char              cid[DQ_ID_SIZE];
    int               n;

    dq_claim_id_new(cid);
    dq_cmd_claim_limited(&C, dq_str_c(q), cid, 1, lease, 0, NULL, &lim);
    r = run(&C);
    res.tasks = tasks;
    if (dq_reply_claim(r, &res, 4, &err) != DQ_OK) {
        diag("claim: %s", err.msg);
        freeReplyObject(r);
        return -1;
    }
    n = (int) res.n;
    if (n == 1) {
        got = tasks[0];
        snprintf(got_id, sizeof(got_id), "%.*s", (int) got.id.len,
                 got.id.ptr);
        snprintf(got_cid, sizeof(got_cid), "%.*s", (int) got.claim.len,
                 got.claim.ptr);
        got.id = dq_str_c(got_id);
        got.claim = dq_str_c(got_cid);
        got.envelope = dq_str_c("");
        first_put(&got);            /* item() names its lease */
    }
    freeReplyObject(r);
    return n;
}

/* the claimed task as the lease item a worker would echo */
static dq_lease_item_t
got_item(void)
{
    return item(got_id, got_cid, NULL);
}

static long long
reply_int(void)
{
    redisReply *r = run(&C);
    long long   v = -999;

    if (r && r->type == REDIS_REPLY_INTEGER) {
        v = r->integer;
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        diag("%s", r->str);
    }
    freeReplyObject(r);
    return v;
}

/* Finding 1: bury, requeue, run again, succeed: the error goes with it */
static void
test_requeue_error(void)
{
    dq_lease_item_t it;
    dq_error_t      err;
    redisReply     *r;
    int             rq = -1;

    enq1("rq", "t1");
    is_int(claim1("rq", 30000, 0), 1, "1: claimed");
    it = got_item();
    dq_cmd_bury(&C, dq_str_lit("rq"), &it, dq_str_lit("boom permanent"),
                100, 0, 1000, 1);
    is_int(reply_int(), 1, "1: buried");
    dq_cmd_requeue(&C, dq_str_lit("rq"), dq_str_lit("t1"));
    r = run(&C);
    is_int(dq_reply_requeue(r, &rq, &err), DQ_OK, "1: requeue answered");
    freeReplyObject(r);
    is_int(rq, 1, "1: requeued");
    is_int(claim1("rq", 30000, 0), 1, "1: claimed again");
    it = got_item();
    dq_cmd_ack(&C, dq_str_lit("rq"), &it, 1, 1000);
    r = run(&C);
    ok(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1
       && r->element[0]->integer == 1, "1: acked (history as the claim said)");
    freeReplyObject(r);
    is_int(rint_("HLEN %s", key("rq", DQ_KEY_TASKS)), 0, "1: task gone");
    is_int(rint_("HLEN %s", key("rq", DQ_KEY_ERRORS)), 0,
           "1: its error gone with it");
    dq_cmd_forget(&C, dq_str_lit("rq"));
    r = run(&C);
    ok(r && r->type != REDIS_REPLY_ERROR
       && !(r->type == REDIS_REPLY_INTEGER && r->integer == 0),
       "1: forget accepts the empty queue");
    freeReplyObject(r);
}

/* Finding 5: jump J1 (25 s) recorded, its guard over; then J2 (16 s,
 * > lease/2 = 15 s) crosses a live lease: it must not be taken back. */
static void
test_second_jump(void)
{
    long long now, lease;
    int       bad;

    enq1("j2", "t1");
    is_int(claim1("j2", 30000, 0), 1, "5: claimed (lease 30 s)");
    now = rint_("HGET %s clock", key("j2", DQ_KEY_STATS));
    /* the holder extended 14 s before the step: its deadline is 2 s
     * "past" once the clock stepped 16 s forward */
    {
        redisReply *m = redisCommand(R, "ZRANGE %s 0 0",
                                     key("j2", DQ_KEY_LEASE));
        char        mem[128];

        snprintf(mem, sizeof(mem), "%s", m->element[0]->str);
        freeReplyObject(m);
        rint_("ZADD %s %lld %s", key("j2", DQ_KEY_LEASE), now - 2000, mem);
    }
    rint_("HSET %s clock %lld gap_from %lld gap_to %lld",
          key("j2", DQ_KEY_STATS), now - 16000, now - 60000, now - 35000);
    is_int(claim1("j2", 30000, 0), 0, "5: the next claim takes nothing");
    lease = rint_("ZCARD %s", key("j2", DQ_KEY_LEASE));
    bad = (int) rint_("HGET %s reclaimed", key("j2", DQ_KEY_STATS));
    is_int(lease, 1, "5: the live lease is still held after the 2nd jump");
    ok(bad <= 0, "5: nothing reclaimed (%d)", bad);
    is_int(rint_("HGET %s clock_jumps", key("j2", DQ_KEY_STATS)), 1,
           "5: the jump counted");
}

/* Finding 8: one call of 10,000 named tasks over 10,000 expired
 * tombstones (deferred_max_batch allows 10,000) */
static void
test_many_tombstones(void)
{
    static dq_enqueue_item_t   it[10000];
    static dq_enqueue_result_t res[10000];
    static char                ids[10000][16], names[10000][16];
    dq_error_t                 err;
    redisReply                *r;
    int                        i, rc, stored = 0;

    for (i = 0; i < 10000; i += 500) {
        int  j;
        char cmd[64];

        redisAppendCommand(R, "MULTI");
        for (j = i; j < i + 500; j++) {
            snprintf(cmd, sizeof(cmd), "old%d", j);
            redisAppendCommand(R, "ZADD %s 1 %s", key("tb", DQ_KEY_NAMES),
                               cmd);
        }
        redisAppendCommand(R, "EXEC");
        for (j = 0; j < 502; j++) {
            redisGetReply(R, (void **) &r);
            freeReplyObject(r);
        }
    }
    for (i = 0; i < 10000; i++) {
        snprintf(ids[i], sizeof(ids[i]), "t%d", i);
        snprintf(names[i], sizeof(names[i]), "n%d", i);
        memset(&it[i], 0, sizeof(it[i]));
        it[i].id = dq_str_c(ids[i]);
        it[i].envelope = dq_str_lit("env");
        it[i].name = dq_str_c(names[i]);
        it[i].eta_ms = -1;
        it[i].countdown_ms = -1;
    }
    dq_cmd_enqueue(&C, dq_str_lit("tb"), it, 10000, 1000);
    r = run(&C);
    rc = dq_reply_enqueue(r, it, 10000, res, &err);
    ok(rc == DQ_OK, "8: 10,000 named tasks over 10,000 expired tombstones: %s",
       rc == DQ_OK ? "ok" : (r && r->type == REDIS_REPLY_ERROR ? r->str
                                                                : err.msg));
    freeReplyObject(r);
    for (i = 0; rc == DQ_OK && i < 10000; i++) {
        stored += res[i].status == DQ_OK && !res[i].existed;
    }
    is_int(stored, 10000, "8: all stored");
    is_int(rint_("HLEN %s", key("tb", DQ_KEY_TASKS)), 10000,
           "8: 10,000 envelopes");
}

/* Finding 9: the bucket was written an hour "ahead", then the clock was
 * corrected (dq_now steps back): the bucket refills from now on */
static void
test_bucket_step_back(void)
{
    long long now;
    int       took = 0, i;

    enq1("rb", "t1");
    now = rint_("HGET %s clock", key("rb", DQ_KEY_STATS));
    rint_("HSET %s clock %lld", key("rb", DQ_KEY_STATS), now + 3600000);
    rint_("HSET %s tokens 0 ts %lld", key("rb", DQ_KEY_BUCKET),
          now + 3600000);
    for (i = 0; i < 30 && took == 0; i++) {
        took = claim1("rb", 30000, 50);   /* a token every 20 ms */
        if (took == 0) {
            struct timespec ts = { 0, 20 * 1000000 };

            nanosleep(&ts, NULL);
        }
    }
    is_int(took, 1, "9: the task is claimed once the bucket refills");
    ok(rint_("HGET %s ts", key("rb", DQ_KEY_BUCKET)) < now + 60000,
       "9: the bucket's time is not left in the future");
}

int
main(int argc, char **argv)
{
    if (!scripts_start(argc, argv)) {
        return 0;
    }
    test_requeue_error();
    test_second_jump();
    test_many_tombstones();
    test_bucket_step_back();
    return scripts_done();
}
