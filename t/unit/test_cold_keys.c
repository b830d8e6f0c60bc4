/*
 * One home for key names (issue #12, item 3): the cold tier's index comes
 * to enqueue, remove and forget in KEYS, built by lib/dq_cmd.c, and no
 * script derives it from another key. Attacked by handing each script an
 * index under a name no script could derive ("...:coldX"): everything
 * the tier writes, finds or refuses must follow that name.
 * Usage: test_cold_keys PORT
 */
#include <stdio.h>
#include <string.h>

#include "redis_helper.h"

#define DAY 86400000LL

static const char *Q = "ck";
static const char *IDX = "dq2:{ck}:coldX";   /* same hash tag */
static const char *STD = "dq2:{ck}:cold";     /* the usual name */

static int
arg_is(const dq_cmd_t *c, int i, const char *want)
{
    return i < c->argc && c->argvlen[i] == strlen(want)
           && memcmp(c->argv[i], want, c->argvlen[i]) == 0;
}

/* Put IDX in place of KEYS[k] (1-based) of a built script command;
 * 0 when KEYS[k] was not the queue's cold index. */
static int
swap_key(dq_cmd_t *c, int k)
{
    char want[DQ_KEY_MAX];
    int  i = 2 + k;    /* EVALSHA sha numkeys KEYS... */

    dq_key_format(want, sizeof(want), dq_str_c(Q), DQ_KEY_COLD);
    if (!arg_is(c, i, want)) {
        return 0;
    }
    c->argv[i] = IDX;
    c->argvlen[i] = strlen(IDX);
    return 1;
}

static long long
zcard(const char *k)
{
    return rint_("ZCARD %s", k);
}

int
main(int argc, char **argv)
{
    dq_cmd_t            c;
    dq_enqueue_item_t   it[2];
    dq_enqueue_result_t res[2];
    dq_error_t          err;
    redisReply         *r;
    char                bucket[DQ_KEY_MAX + 64];
    int                 port = redis_port(argc, argv);

    if (port <= 0) {
        printf("1..0 # SKIP no redis port\n");
        return 0;
    }
    redis_connect(port);
    rint_("FLUSHALL");
    dq_cmd_init(&c);

    /* enqueue: 8 KEYS, the 7th the cold index (the 8th the due list) */
    memset(it, 0, sizeof(it));
    it[0].id = dq_str_lit("t1");
    it[0].envelope = dq_str_lit("E1");
    it[0].eta_ms = -1;
    it[0].countdown_ms = DAY;
    it[1] = it[0];
    it[1].id = dq_str_lit("t2");
    it[1].envelope = dq_str_lit("E2");
    is_int(dq_cmd_enqueue(&c, dq_str_c(Q), it, 2, 1000), DQ_OK,
           "enqueue built");
    ok(arg_is(&c, 2, "8"), "enqueue: 8 KEYS");
    ok(swap_key(&c, 7), "enqueue: KEYS[7] is the cold index (%s)", STD);
    r = run(&c);
    is_int(dq_reply_enqueue(r, it, 2, res, &err), DQ_OK, "enqueue ran");
    freeReplyObject(r);
    ok(res[0].status == DQ_OK && !res[0].existed && res[1].status == DQ_OK,
       "both stored");
    is_int(zcard(IDX), 1, "the index named in KEYS holds the bucket");
    is_int(rint_("EXISTS %s", STD), 0, "no index under a derived name");
    r = redisCommand(R, "ZRANGE %s 0 0", IDX);
    snprintf(bucket, sizeof(bucket), "%s:%s", IDX,
             r && r->type == REDIS_REPLY_ARRAY && r->elements == 1
             ? r->element[0]->str : "?");
    freeReplyObject(r);
    is_int(rint_("HLEN %s", bucket), 2,
           "the bucket is named from the index (%s)", bucket);
    is_int(rint_("HEXISTS dq2:{ck}:tasks t1"), 0, "the tasks went cold");

    /* forget: 13 KEYS, the 12th the cold index; refuses while it exists */
    is_int(dq_cmd_forget(&c, dq_str_c(Q)), DQ_OK, "forget built");
    ok(arg_is(&c, 2, "13") && swap_key(&c, 12),
       "forget: KEYS[12] is the cold index");
    r = run(&c);
    ok(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0,
       "forget refuses: the index named in KEYS holds tasks");
    freeReplyObject(r);

    /* remove: 11 KEYS, the 10th the cold index; finds the task there */
    is_int(dq_cmd_remove(&c, dq_str_c(Q), "id", dq_str_lit("t1"), 1, 0),
           DQ_OK, "remove id built");
    ok(arg_is(&c, 2, "11") && swap_key(&c, 10),
       "remove: KEYS[10] is the cold index");
    r = run(&c);
    ok(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1,
       "remove id finds the task through the index named in KEYS");
    freeReplyObject(r);
    is_int(rint_("HLEN %s", bucket), 1, "one task left in the bucket");
    is_int(dq_cmd_remove(&c, dq_str_c(Q), "delayed", dq_str_lit(""), 10, 0),
           DQ_OK, "remove delayed built");
    ok(swap_key(&c, 10), "remove delayed: KEYS[10] is the cold index");
    r = run(&c);
    ok(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2
       && r->element[0]->integer == 1 && r->element[1]->integer == 0,
       "remove delayed takes the last cold task ({ 1, 0 })");
    freeReplyObject(r);
    is_int(rint_("EXISTS %s", IDX), 0, "the index is gone with its bucket");
    is_int(rint_("HGET dq2:{ck}:stats cold"), 0, "stats cold back to 0");

    is_int(dq_cmd_forget(&c, dq_str_c(Q)), DQ_OK, "forget built again");
    ok(swap_key(&c, 12), "forget: KEYS[12] again");
    r = run(&c);
    ok(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1,
       "forget accepts the queue once the index is empty");
    freeReplyObject(r);

    dq_cmd_free(&c);
    redisFree(R);
    return done_testing();
}
