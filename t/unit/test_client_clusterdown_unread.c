/*
 * The C client on a Redis Cluster whose node answers CLUSTERDOWN to one
 * queue's shard-count read (its slot served by no master, full coverage
 * off; t/109 starts the node and passes its port): Redis refused that
 * read, the connection is fine, so only that queue's named and keyed
 * tasks fail and the other queues' tasks of the dq_defer_many are stored,
 * as with WRONGTYPE (t/104). Before the fix CLUSTERDOWN dropped the map
 * and the client took it for a lost connection: the whole call failed
 * (review RM finding 4: rc -6, statuses -6,-6,-6, "good" not stored).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <deferred/client.h>

#include "redis_helper.h"

int
main(int argc, char **argv)
{
    int              port = redis_port(argc, argv), st[3], rc, i;
    char             addr[48], ids[3][DQ_ID_SIZE];
    dq_client_t     *c;
    dq_defer_opts_t  o[3];
    dq_defer_req_t   reqs[3];

    signal(SIGPIPE, SIG_IGN);
    if (port <= 0) {
        printf("1..0 # SKIP no cluster node port given\n");
        return 0;
    }
    redis_connect(port);
    snprintf(addr, sizeof(addr), "cluster:127.0.0.1:%d", port);
    c = dq_client_new(addr, NULL);

    for (i = 0; i < 3; i++) {
        dq_defer_opts_t d = DQ_DEFER_OPTS_INIT;

        o[i] = d;
        reqs[i].func = "f";
        reqs[i].args = NULL;
        reqs[i].opts = &o[i];
    }
    o[0].queue = "good";                /* slot 2195: served */
    o[1].queue = "bad";                 /* slot 8498: not served */
    o[2].queue = "bad";
    o[2].name = "n1";

    rc = dq_defer_many(c, reqs, 3, st, ids);
    is_int(rc, DQ_OK, "dq_defer_many: the call was made (%s)",
           dq_client_errstr(c));
    is_int(st[0], DQ_OK, "good (slot served), unnamed: stored");
    ok(st[1] != DQ_OK, "bad (slot unserved), unnamed: not stored (%d)",
       st[1]);
    is_int(st[2], DQ_EREDIS, "bad, named: refused (its count unread)");
    is_int((int) rint_("HLEN dq2:{good}:tasks"), 1, "good: its task in "
           "Redis");
    ok(strstr(dq_client_errstr(c), "CLUSTERDOWN") != NULL,
       "errstr has Redis' answer: %s", dq_client_errstr(c));

    dq_client_free(c);
    redisFree(R);
    return done_testing();
}
