/*
 * The C client's opt-in replication wait (dq_client_set_wait; issue 10,
 * item 9) against real redis-servers: argv[1] a master with one replica,
 * argv[2] a master with none (t/23-client-wait.t starts them). With the
 * replica the enqueue answers DQ_OK; without one it fails with the count
 * of replicas that acknowledged, although the task is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <deferred/client.h>
#include "tap.h"

static long long
hlen(int port, const char *key)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    redisReply   *r;
    long long     n = -1;

    if (c == NULL || c->err) {
        return -1;
    }
    r = redisCommand(c, "HLEN %s", key);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        n = r->integer;
    }
    freeReplyObject(r);
    redisFree(c);
    return n;
}

int
main(int argc, char **argv)
{
    char          addr[64], id[DQ_ID_SIZE];
    dq_client_t  *c;
    int           rc;

    if (argc < 3) {
        printf("Bail out! usage: test_client_wait PORT_WITH_REPLICA "
               "PORT_ALONE\n");
        return 1;
    }

    snprintf(addr, sizeof(addr), "127.0.0.1:%s", argv[1]);
    c = dq_client_new(addr, NULL);
    is_int(dq_client_set_wait(c, -1, 100), DQ_EINVAL, "negative replicas "
           "refused");
    is_int(dq_client_set_wait(c, 1, 0), DQ_EINVAL, "a wait needs a timeout");
    is_int(dq_client_set_wait(c, 1, 5000), DQ_OK, "wait for 1 replica, 5 s");
    rc = dq_defer(c, "t.f", NULL, NULL, id, NULL);
    is_int(rc, DQ_OK, "with a replica: the enqueue is acknowledged");
    if (rc != DQ_OK) {
        diag("%s", dq_client_errstr(c));
    }
    dq_client_free(c);

    snprintf(addr, sizeof(addr), "127.0.0.1:%s", argv[2]);
    c = dq_client_new(addr, NULL);
    dq_client_set_wait(c, 1, 300);
    rc = dq_defer(c, "t.f", NULL, NULL, id, NULL);
    is_int(rc, DQ_EREDIS, "without a replica: the enqueue fails");
    ok(strstr(dq_client_errstr(c), "stored, but acknowledged by 0 of 1 "
                                   "replicas within 300 ms") != NULL,
       "... saying the task is stored but not replicated (%s)",
       dq_client_errstr(c));
    is_int(hlen(atoi(argv[2]), "dq2:{default}:tasks"), 1, "... and it is "
           "stored on the master");

    /* review R4 finding 3: a failed WAIT fails the tasks it stored, not a
     * duplicate the batch did not write (it used to become DQ_EREDIS too,
     * and dq_defer_many returned the WAIT's error although its calls were
     * made) */
    {
        dq_defer_opts_t o = DQ_DEFER_OPTS_INIT;
        dq_defer_req_t  reqs[2];
        int             st[2] = { -99, -99 };

        o.name = "r4-dup";
        dq_client_set_wait(c, 0, 0);
        is_int(dq_defer(c, "t.f", NULL, &o, id, NULL), DQ_OK, "named task "
               "stored (wait off)");
        dq_client_set_wait(c, 1, 300);
        reqs[0].func = reqs[1].func = "t.f";
        reqs[0].args = reqs[1].args = NULL;
        reqs[0].opts = &o;
        reqs[1].opts = NULL;
        is_int(dq_defer_many(c, reqs, 2, st, NULL), DQ_OK, "dq_defer_many, "
               "WAIT unmet: the calls were made");
        is_int(st[0], DQ_EDUPLICATE, "the duplicate stays DQ_EDUPLICATE");
        is_int(st[1], DQ_EREDIS, "the stored one is DQ_EREDIS (stored, not "
               "replicated)");
        ok(strstr(dq_client_errstr(c), "stored, but") != NULL, "errstr "
           "says so (%s)", dq_client_errstr(c));
    }
    dq_client_set_wait(c, 0, 0);
    is_int(dq_defer(c, "t.f", NULL, NULL, id, NULL), DQ_OK, "wait off: "
           "acknowledged at once");
    dq_client_free(c);
    return done_testing();
}
