/*
 * The C client on a real Redis Cluster (issue 15, item 1), driven by
 * t/172-client-cluster.t (t/lib/DQCluster.pm: 3 masters, 3 replicas).
 *
 *   test_client_cluster spread ADDRESS Q1 Q2 ...   (TAP)
 *       queues on different masters: dq_defer_many across all of them in
 *       one call, dq_defer, a named duplicate, stats, pause/resume, the
 *       last error of an unknown task; a client with a database number is
 *       refused; dq_sync_connect (one connection: task libraries'
 *       dq_worker_redis_connect) refuses a cluster address.
 *   test_client_cluster loop ADDRESS QUEUE STOPFILE [QUEUE2]
 *       dq_defer and dq_queue_stats on one queue until STOPFILE exists
 *       (while the test migrates the queue's slot), then 20 more of each;
 *       prints "ok ID" per stored task, "fail RC MSG" per failed call,
 *       "stats N" per stats call that answered, "statsfail MSG" per one
 *       that did not. With QUEUE2 (on another node) each round also makes
 *       one dq_defer_many of a task for QUEUE then one for QUEUE2: a
 *       redirect of the first to QUEUE2's node must not take the second's
 *       reply ("ok ID" / "ok2 ID", "fail"/"fail2").
 *   test_client_cluster batch ADDRESS QUEUE1 QUEUE2
 *       one dq_defer_many of a task for each: prints "status1 RC",
 *       "status2 RC" and "err ERRSTR".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <deferred/client.h>
#include "dq_sync.h"
#include "tap.h"

static int
spread(const char *address, int nq, char **queues)
{
    dq_client_opts_t   o = { 0 };
    dq_client_t       *c = dq_client_new(address, NULL), *bad;
    dq_defer_req_t    *reqs;
    dq_defer_opts_t   *opts;
    dq_defer_opts_t    one = DQ_DEFER_OPTS_INIT;
    dq_queue_stats_t   st;
    char             (*ids)[DQ_ID_SIZE];
    char               id[DQ_ID_SIZE], buf[256];
    int               *statuses, i, n = nq * 3, all_ok = 1, changed = -1;

    if (c == NULL) {
        printf("Bail out! out of memory\n");
        return 1;
    }
    reqs = calloc((size_t) n, sizeof(*reqs));
    opts = calloc((size_t) n, sizeof(*opts));
    ids = calloc((size_t) n, sizeof(*ids));
    statuses = calloc((size_t) n, sizeof(*statuses));
    /* interleaved: q1 q2 q3 q1 q2 q3 ... in one call (one pipeline per
     * node) */
    for (i = 0; i < n; i++) {
        dq_defer_opts_t d = DQ_DEFER_OPTS_INIT;

        opts[i] = d;
        opts[i].queue = queues[i % nq];
        reqs[i].func = "ops.run";
        reqs[i].opts = &opts[i];
    }
    is_int(dq_defer_many(c, reqs, (size_t) n, statuses, ids), DQ_OK,
           "dq_defer_many: %d tasks over %d queues in one call", n, nq);
    for (i = 0; i < n; i++) {
        all_ok &= statuses[i] == DQ_OK && ids[i][0] != '\0';
    }
    ok(all_ok, "every task of the batch stored (%s)", dq_client_errstr(c));
    for (i = 0; i < nq; i++) {
        one.queue = queues[i];
        one.name = "only-once";
        is_int(dq_defer(c, "ops.run", NULL, &one, id, NULL), DQ_OK,
               "dq_defer: named task in %s", queues[i]);
        is_int(dq_defer(c, "ops.run", NULL, &one, id, NULL), DQ_EDUPLICATE,
               "the same name again in %s: DQ_EDUPLICATE", queues[i]);
        is_int(dq_queue_stats(c, queues[i], &st), DQ_OK, "stats of %s",
               queues[i]);
        is_int((int) st.waiting, 4, "%s: 4 waiting", queues[i]);
        is_int((int) st.enqueued, 4, "%s: 4 enqueued", queues[i]);
        is_int(dq_queue_pause(c, queues[i], 1, &changed), DQ_OK,
               "pause %s", queues[i]);
        is_int(changed, 1, "%s paused", queues[i]);
        is_int(dq_queue_pause(c, queues[i], 0, &changed), DQ_OK,
               "resume %s", queues[i]);
        is_int(dq_task_last_error(c, queues[i], "no-such-task", buf,
                                  sizeof(buf)), DQ_ENOTFOUND,
               "last error of an unknown task in %s: DQ_ENOTFOUND",
               queues[i]);
    }

    o.db = 1;
    bad = dq_client_new(address, &o);
    one.queue = queues[0];
    one.name = NULL;
    is_int(dq_defer(bad, "ops.run", NULL, &one, id, NULL), DQ_EINVAL,
           "a cluster client with database 1: DQ_EINVAL");
    ok(strstr(dq_client_errstr(bad), "only database 0") != NULL,
       "... saying why (%s)", dq_client_errstr(bad));
    dq_client_free(bad);

    ok(dq_sync_connect(address, NULL, 0, 1000, buf, sizeof(buf)) == NULL,
       "dq_sync_connect refuses a cluster address");
    ok(strstr(buf, "a Redis Cluster address") != NULL, "... saying why (%s)",
       buf);

    free(reqs);
    free(opts);
    free(ids);
    free(statuses);
    dq_client_free(c);
    return done_testing();
}

static void
one_round(dq_client_t *c, const char *queue, const char *queue2)
{
    dq_defer_opts_t  o = DQ_DEFER_OPTS_INIT, o2[2];
    dq_defer_req_t   reqs[2];
    dq_queue_stats_t st;
    char             id[DQ_ID_SIZE], ids[2][DQ_ID_SIZE];
    int              rc, statuses[2], i;

    o.queue = queue;
    rc = dq_defer(c, "ops.run", NULL, &o, id, NULL);
    if (rc == DQ_OK) {
        printf("ok %s\n", id);
    } else {
        printf("fail %d %s\n", rc, dq_client_errstr(c));
    }
    rc = dq_queue_stats(c, queue, &st);
    if (rc == DQ_OK) {
        printf("stats %lld\n", (long long) st.waiting);
    } else {
        printf("statsfail %s\n", dq_client_errstr(c));
    }
    for (i = 0; queue2 && i < 2; i++) {
        o2[i] = o;
        o2[i].queue = i ? queue2 : queue;
        reqs[i].func = "ops.run";
        reqs[i].args = NULL;
        reqs[i].opts = &o2[i];
    }
    if (queue2) {
        rc = dq_defer_many(c, reqs, 2, statuses, ids);
        for (i = 0; i < 2; i++) {
            if (rc == DQ_OK && statuses[i] == DQ_OK) {
                printf("ok%s %s\n", i ? "2" : "", ids[i]);
            } else {
                printf("fail%s %d %s\n", i ? "2" : "",
                       rc != DQ_OK ? rc : statuses[i], dq_client_errstr(c));
            }
        }
    }
    fflush(stdout);
}

static int
loop(const char *address, const char *queue, const char *stop,
     const char *queue2)
{
    dq_client_t    *c = dq_client_new(address, NULL);
    struct timespec ts = { 0, 2000000 };
    int             i;

    if (c == NULL) {
        return 1;
    }
    while (access(stop, F_OK) != 0) {
        one_round(c, queue, queue2);
        nanosleep(&ts, NULL);
    }
    for (i = 0; i < 20; i++) {
        one_round(c, queue, queue2);
    }
    dq_client_free(c);
    return 0;
}

static int
batch(const char *address, const char *q1, const char *q2)
{
    dq_client_t     *c = dq_client_new(address, NULL);
    dq_defer_opts_t  o[2] = { DQ_DEFER_OPTS_INIT, DQ_DEFER_OPTS_INIT };
    dq_defer_req_t   reqs[2];
    char             ids[2][DQ_ID_SIZE];
    int              st[2] = { -100, -100 }, rc, i;

    if (c == NULL) {
        return 1;
    }
    for (i = 0; i < 2; i++) {
        o[i].queue = i ? q2 : q1;
        reqs[i].func = "ops.run";
        reqs[i].args = NULL;
        reqs[i].opts = &o[i];
    }
    rc = dq_defer_many(c, reqs, 2, st, ids);
    printf("rc %d\nstatus1 %d\nstatus2 %d\nerr %s\n", rc, st[0], st[1],
           dq_client_errstr(c));
    dq_client_free(c);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "batch") == 0) {
        return batch(argv[2], argv[3], argv[4]);
    }
    if (argc >= 4 && strcmp(argv[1], "spread") == 0) {
        return spread(argv[2], argc - 3, argv + 3);
    }
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "loop") == 0) {
        return loop(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
    }
    printf("Bail out! usage: test_client_cluster spread ADDRESS Q... | "
           "loop ADDRESS QUEUE STOPFILE [QUEUE2] | batch ADDRESS Q1 Q2\n");
    return 1;
}
