/*
 * Not a TAP test: a probe for t/123, t/124 and t/128 (review R4's
 * findings on the C client over a Redis Cluster and sharded queues).
 *   client_r4_probe waitloop ADDR QA -   WAIT 1: one dq_defer to QA, READY,
 *                                        then one dq_defer to QA per line
 *                                        on stdin
 *   client_r4_probe wait ADDR QA QB      WAIT 1: dq_defer to QB, READY, a
 *                                        line on stdin, dq_defer to QA
 *   client_r4_probe many ADDR QA QB      dq_defer to QA and QB, READY, a
 *                                        line, dq_defer_many [QA, QB]
 *   client_r4_probe manywait ADDR QA QB  as many, with WAIT 1
 *   client_r4_probe alt ADDR QA QB       20 unnamed dq_defer: QA, QB, ...
 *   client_r4_probe cfg ADDR QUEUE set V the configure script, field
 *                                        "shards" only (no CLI guard)
 *   client_r4_probe cfg ADDR QUEUE sha   print the configure script's
 *                                        SHA1 (to send it by hand)
 * Each dq_defer prints "TAG queue Q rc RC id ID err ERR".
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "client_impl.h"

static int
one(dq_client_t *c, const char *q, const char *tag)
{
    dq_defer_opts_t o = DQ_DEFER_OPTS_INIT;
    char            id[DQ_ID_SIZE] = "";
    int             rc;

    o.queue = q;
    rc = dq_defer(c, "r4.f", NULL, &o, id, NULL);
    printf("%s queue %s rc %d id %s err %s\n", tag, q, rc, id,
           rc ? dq_client_errstr(c) : "");
    fflush(stdout);
    return rc;
}

static int
cfg(dq_client_t *c, int argc, char **argv)
{
    dq_cmd_t     cmd;
    redisReply  *r = NULL;
    const char  *f[1] = { "shards" }, *v[1];
    int          rc, set = strcmp(argv[4], "set") == 0;

    if (!set) {
        /* the script's sha: the test sends "clear shards" itself (no C
         * call builds it) */
        printf("sha %s\n", dq_script(DQ_SCRIPT_CONFIGURE)->sha1);
        return 0;
    }
    v[0] = argc > 5 ? argv[5] : "";
    dq_cmd_init(&cmd);
    rc = dq_cmd_configure(&cmd, dq_str_c(argv[3]), f, set ? v : NULL, 1);
    if (rc != DQ_OK) {
        printf("build rc %d\n", rc);
        return 1;
    }
    rc = dq__run(c, &cmd, &r);
    printf("rc %d reply %s\n", rc,
           r ? (r->type == REDIS_REPLY_ERROR ? r->str : "ok")
             : dq_client_errstr(c));
    if (r) {
        freeReplyObject(r);
    }
    dq_cmd_free(&cmd);
    return 0;
}

int
main(int argc, char **argv)
{
    char         line[64], tag[16];
    dq_client_t *c;
    int          k;

    if (argc < 5) {
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    c = dq_client_new(argv[2], NULL);
    if (c == NULL) {
        return 1;
    }
    if (strcmp(argv[1], "cfg") == 0) {
        k = cfg(c, argc, argv);
        dq_client_free(c);
        return k;
    }
    if (strcmp(argv[1], "alt") == 0) {
        for (k = 0; k < 20; k++) {
            dq_defer_opts_t o = DQ_DEFER_OPTS_INIT;

            o.queue = argv[3 + k % 2];
            if (dq_defer(c, "r4.f", NULL, &o, NULL, NULL) != DQ_OK) {
                printf("fail %s\n", dq_client_errstr(c));
                return 1;
            }
        }
        printf("done\n");
    } else if (strcmp(argv[1], "waitloop") == 0) {
        dq_client_set_wait(c, 1, 500);
        one(c, argv[3], "warm");
        printf("READY\n");
        fflush(stdout);
        for (k = 0; fgets(line, sizeof(line), stdin); k++) {
            snprintf(tag, sizeof(tag), "after%d", k);
            one(c, argv[3], tag);
        }
    } else if (strcmp(argv[1], "wait") == 0) {
        /* 5 s: a live replica's ack took over 500 ms on a loaded machine
         * (t/124's warm-up failed so); a WAIT on the master whose replica
         * is dead (the finding) still fails, after 5 s */
        dq_client_set_wait(c, 1, 5000);
        one(c, argv[4], "warm");
        printf("READY\n");
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin)) {
            return 3;
        }
        one(c, argv[3], "main");
    } else {
        dq_defer_opts_t o[2] = { DQ_DEFER_OPTS_INIT, DQ_DEFER_OPTS_INIT };
        dq_defer_req_t  r[2];
        int             st[2] = { -99, -99 }, rc;
        char            ids[2][DQ_ID_SIZE];

        if (strcmp(argv[1], "manywait") == 0) {
            dq_client_set_wait(c, 1, 500);
        }
        one(c, argv[3], "warm");
        one(c, argv[4], "warm");
        printf("READY\n");
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin)) {
            return 3;
        }
        o[0].queue = argv[3];
        o[1].queue = argv[4];
        r[0].func = r[1].func = "r4.f";
        r[0].args = r[1].args = NULL;
        r[0].opts = &o[0];
        r[1].opts = &o[1];
        rc = dq_defer_many(c, r, 2, st, ids);
        printf("many rc %d status0 %d id0 %s status1 %d id1 %s err %s\n", rc,
               st[0], ids[0], st[1], ids[1], dq_client_errstr(c));
    }
    fflush(stdout);
    dq_client_free(c);
    return 0;
}
