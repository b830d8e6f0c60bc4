/*
 * The C client behind Redis Sentinel (issue 15, item 2), against real
 * servers t/178-client-sentinel.t starts: argv[1] the sentinel: address,
 * argv[2] one sentinel's port, argv[3] the master name. One long-lived
 * dq_client_t enqueues (waiting for 1 replica), the sentinels are told to
 * fail over (SENTINEL FAILOVER: the primary is demoted, its clients
 * killed), and the same client must find the new primary by itself: the
 * calls after the switch fail at most until the sentinels name it, and
 * every acknowledged task is on the new primary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include <deferred/client.h>
#include "tap.h"

static int
named_port(int sport, const char *name)
{
    redisContext *c = redisConnect("127.0.0.1", sport);
    redisReply   *r;
    int           port = -1;

    if (c == NULL || c->err) {
        redisFree(c);
        return -1;
    }
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", name);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        port = atoi(r->element[1]->str);
    }
    freeReplyObject(r);
    redisFree(c);
    return port;
}

static void
nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

int
main(int argc, char **argv)
{
    char               id[DQ_ID_SIZE];
    dq_client_t       *c;
    dq_queue_stats_t   st;
    redisContext      *s;
    redisReply        *r;
    int                sport, before, after = -1, ok_n = 0, failed = 0, i;

    if (argc < 4) {
        printf("Bail out! usage: test_client_sentinel ADDRESS SENTINEL_PORT "
               "NAME\n");
        return 1;
    }
    sport = atoi(argv[2]);

    c = dq_client_new(argv[1], NULL);
    is_int(dq_client_set_wait(c, 1, 2000), DQ_OK, "wait for 1 replica");
    for (i = 0; i < 10; i++) {
        if (dq_defer(c, "t.f", NULL, NULL, id, NULL) == DQ_OK) {
            ok_n++;
        }
    }
    is_int(ok_n, 10, "10 tasks acknowledged through the sentinels");
    if (ok_n != 10) {
        diag("%s", dq_client_errstr(c));
    }

    before = named_port(sport, argv[3]);
    s = redisConnect("127.0.0.1", sport);
    r = s && !s->err ? redisCommand(s, "SENTINEL FAILOVER %s", argv[3])
                     : NULL;
    ok(r && r->type == REDIS_REPLY_STATUS, "SENTINEL FAILOVER accepted (%s)",
       r && r->str ? r->str : "no reply");
    freeReplyObject(r);
    redisFree(s);
    for (i = 0; i < 300; i++) {
        after = named_port(sport, argv[3]);
        if (after > 0 && after != before) {
            break;
        }
        nap_ms(100);
    }
    ok(after > 0 && after != before, "the sentinels name a new primary "
       "(%d, was %d)", after, before);

    /* the same client object: it must follow by itself */
    for (i = 0; i < 100; i++) {
        if (dq_defer(c, "t.f", NULL, NULL, id, NULL) == DQ_OK) {
            break;
        }
        failed++;
        diag("after the switch: %s", dq_client_errstr(c));
        nap_ms(100);
    }
    ok(i < 100, "the client enqueues again after the switch (%d calls "
       "failed first)", failed);
    ok_n++;
    is_int(dq_queue_stats(c, "default", &st), DQ_OK, "stats on the new "
           "primary");
    ok(st.enqueued >= ok_n, "every acknowledged task is on the new "
       "primary (%lld enqueued, %d acknowledged)", (long long) st.enqueued,
       ok_n);
    dq_client_free(c);
    return done_testing();
}
