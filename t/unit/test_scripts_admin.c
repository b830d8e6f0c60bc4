/*
 * The Lua scripts against a real redis-server (t/unit/scripts_helper.h),
 * administration: NOSCRIPT (the EVAL fallback), bulk requeue, scripts that
 * only free memory at maxmemory, the v1 -> v2 migration in bounded steps.
 * Usage: test_scripts_admin PORT
 */
#include "scripts_helper.h"

static void
test_noscript(void)
{
    dq_enqueue_item_t   it = { dq_str_lit("ns1"), dq_str_lit("e"),
                               { NULL, 0 }, -1, -1, 0, 0, 0 };
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
    if (!scripts_start(argc, argv)) {
        return 0;
    }

    test_noscript();
    test_requeue_bulk();
    test_oom();
    test_migrate_steps();

    return scripts_done();
}
