/*
 * The C client when one queue's shard-count read fails (review R4 finding
 * 9b), against a real redis-server: queue "bad"'s conf key is a string,
 * so its HGET answers WRONGTYPE, while the other queues read fine. The
 * client follows nginx's rule (lib dq_shards_unread / dq_shards_may_place,
 * t/194 for the module): never read, the count is guessed 1 and only the
 * tasks free to go to any shard go; the named and keyed ones of that
 * queue fail alone (DQ_EREDIS, errstr naming the queue and Redis'
 * answer), the rest of the dq_defer_many is stored; a count read before
 * is kept (a named task goes to its shard of 4) for DQ_SHARDS_KEEP_MS,
 * then guessed (review RM finding 5: kept however old before). Before the
 * fix the whole dq_defer_many failed (DQ_EREDIS, nothing stored).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <deferred/client.h>

#include "redis_helper.h"

#define NREQ 6

static dq_client_t *C;

static long long
stored(const char *q)
{
    return rint_("HLEN dq2:{%s}:tasks", q);
}

static int
defer_named(const char *queue, const char *name)
{
    dq_defer_opts_t d = DQ_DEFER_OPTS_INIT;

    d.queue = queue;
    d.name = name;
    return dq_defer(C, "f", NULL, &d, NULL, NULL);
}

static void
test_unread(void)
{
    dq_defer_opts_t  o[NREQ];
    dq_defer_req_t   reqs[NREQ];
    int              st[NREQ], rc, i;
    char             ids[NREQ][DQ_ID_SIZE], key[64], nm[16];
    unsigned         k;
    long long        before;

    for (i = 0; i < NREQ; i++) {
        dq_defer_opts_t d = DQ_DEFER_OPTS_INIT;

        o[i] = d;
        reqs[i].func = "f";
        reqs[i].args = NULL;
        reqs[i].opts = &o[i];
    }
    o[0].queue = "good";                       /* unnamed */
    o[1].queue = "bad";                        /* unnamed: any shard */
    o[2].queue = "bad";
    o[2].name = "b-named";                     /* refused alone */
    o[3].queue = "bad";
    o[3].id = "b-keyed";                       /* refused alone */
    o[4].queue = "good";
    o[4].name = "g-named";
    o[5].queue = "four";
    o[5].name = "f-named";                     /* its shard of 4 */

    rc = dq_defer_many(C, reqs, NREQ, st, ids);
    is_int(rc, DQ_OK, "dq_defer_many: the calls were made (%s)",
           dq_client_errstr(C));
    for (i = 0; i < NREQ; i++) {
        ok(i == 2 || i == 3 || ids[i][0] != '\0', "task %d: an id", i);
    }
    is_int(st[0], DQ_OK, "good, unnamed: stored");
    is_int(st[1], DQ_OK, "bad (count unread), unnamed: stored (shard 0)");
    is_int(st[2], DQ_EREDIS, "bad, named: refused alone");
    is_int(st[3], DQ_EREDIS, "bad, keyed: refused alone");
    is_int(st[4], DQ_OK, "good, named: stored");
    is_int(st[5], DQ_OK, "four, named: stored");
    ok(strstr(dq_client_errstr(C), "\"bad\"") != NULL
       && strstr(dq_client_errstr(C), "WRONGTYPE") != NULL,
       "errstr names the queue and Redis' answer: %s", dq_client_errstr(C));
    is_int((int) stored("good"), 2, "good: 2 tasks stored");
    is_int((int) stored("bad"), 1, "bad: only the unnamed task stored");
    k = dq_shard_of(dq_str_lit("f-named"), 4);
    if (k == 0) {
        snprintf(key, sizeof(key), "four");
    } else {
        snprintf(key, sizeof(key), "four#%u", k);
    }
    is_int((int) stored(key), 1, "four: the named task in its shard (%s)",
           key);

    /* a plain dq_defer of a named task on "bad": the same refusal */
    rc = defer_named("bad", "b-again");
    is_int(rc, DQ_EREDIS, "dq_defer, bad, named: DQ_EREDIS (%s)",
           dq_client_errstr(C));

    /* a count read before is kept when a re-read fails: "four" made
     * unreadable, its cached 4 expired (DQ_SHARDS_TTL_MS), a named task
     * to a shard other than 0 */
    for (i = 0; i < 1000; i++) {
        snprintf(nm, sizeof(nm), "k%d", i);
        if (dq_shard_of(dq_str_c(nm), 4) != 0) {
            break;
        }
    }
    k = dq_shard_of(dq_str_c(nm), 4);
    snprintf(key, sizeof(key), "four#%u", k);
    before = stored(key);
    freeReplyObject(redisCommand(R, "DEL dq2:{four}:conf"));
    freeReplyObject(redisCommand(R, "SET dq2:{four}:conf x"));
    sleep_ms(DQ_SHARDS_TTL_MS + 200);
    rc = defer_named("four", nm);
    is_int(rc, DQ_OK, "four unreadable after its count was read: a named "
           "task stored (%s)", dq_client_errstr(C));
    is_int((int) (stored(key) - before), 1,
           "... in its shard of the 4 kept (%s)", key);
    is_str(dq_client_errstr(C), "", "... and errstr empty after the "
           "success (it held stack bytes: first_err unset)");

    /* a count read long ago is not kept: "four" still unreadable, its 4
     * read more than DQ_SHARDS_KEEP_MS ago (the re-reads since refused):
     * a named task is refused, not placed by a count that may be stale
     * (N grown meanwhile: a second live copy in another shard; review RM
     * finding 5: it was stored by the 4 however old) */
    sleep_ms(DQ_SHARDS_KEEP_MS - DQ_SHARDS_TTL_MS + 200);
    rc = defer_named("four", nm);
    is_int(rc, DQ_EREDIS, "four unreadable, its count read over "
           "DQ_SHARDS_KEEP_MS ago: a named task refused (%s)",
           dq_client_errstr(C));

    /* the count readable again: named tasks of "bad" go, once the guess
     * is DQ_SHARDS_TTL_MS old */
    freeReplyObject(redisCommand(R, "DEL dq2:{bad}:conf"));
    sleep_ms(DQ_SHARDS_TTL_MS + 200);
    rc = defer_named("bad", "b-named");
    is_int(rc, DQ_OK, "bad readable again: its named task stored (%s)",
           dq_client_errstr(C));
}

int
main(int argc, char **argv)
{
    int  port = redis_port(argc, argv);
    char addr[32];

    signal(SIGPIPE, SIG_IGN);
    if (port <= 0) {
        printf("1..0 # SKIP no redis port given\n");
        return 0;
    }
    redis_connect(port);
    freeReplyObject(redisCommand(R, "FLUSHALL"));
    /* "four": 4 shards, as dq_queue_set writes it (shard 0's conf; each
     * shard's own conf holds N too); "bad": a conf that is not a hash */
    freeReplyObject(redisCommand(R, "HSET dq2:{four}:conf shards 4"));
    freeReplyObject(redisCommand(R, "HSET dq2:{four#1}:conf shards 4"));
    freeReplyObject(redisCommand(R, "HSET dq2:{four#2}:conf shards 4"));
    freeReplyObject(redisCommand(R, "HSET dq2:{four#3}:conf shards 4"));
    freeReplyObject(redisCommand(R, "SET dq2:{bad}:conf x"));
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);

    C = dq_client_new(addr, NULL);
    test_unread();
    dq_client_free(C);

    redisFree(R);
    return done_testing();
}
