/*
 * The C client's per-task size refusals name the task as nginx's 413
 * does (review RLO finding 3, from RLO's t/unit/rlo_client_413.c):
 * "tasks[i]: ..." for task i of a dq_defer_many batch, and a one-task
 * refusal names no "request" (as the client's other one-task errors:
 * "func: required"). argv[1]: a redis-server port (t/219-client-413.t);
 * nothing is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <deferred/client.h>
#include "tap.h"

static int
starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

int
main(int argc, char **argv)
{
    char             addr[64], ids[2][DQ_ID_SIZE];
    dq_client_t     *c;
    dq_args_t       *big, *many, *kw;
    size_t           n = 2u << 20, i;
    char            *buf;
    int              rc, st[2];
    const char      *e;

    if (argc < 2) {
        printf("Bail out! usage: test_client_413 PORT\n");
        return 1;
    }
    snprintf(addr, sizeof(addr), "127.0.0.1:%s", argv[1]);
    c = dq_client_new(addr, NULL);
    buf = malloc(n);
    memset(buf, 'x', n);
    big = dq_args_new();
    dq_args_str(big, buf, n);
    many = dq_args_new();
    for (i = 0; i < 40000; i++) {
        dq_args_int(many, (int64_t) i);
    }
    kw = dq_kwargs_new();
    for (i = 0; i < 30000; i++) {
        char k[16];

        snprintf(k, sizeof(k), "k%zu", i);
        dq_args_key(kw, k);
        dq_args_int(kw, 1);
    }

    /* one task: over the size limit */
    rc = dq_defer(c, "noop", big, NULL, ids[0], NULL);
    e = dq_client_errstr(c);
    is_int(rc, DQ_ETOOBIG, "one task of 2 MiB: DQ_ETOOBIG");
    ok(strstr(e, "over the limit") != NULL && !starts(e, "request")
       && !starts(e, "tasks["), "one task: no task named: %s", e);

    /* a batch: tasks[1] over the size limit */
    {
        dq_defer_req_t r[2] = { { "noop", NULL, NULL },
                                { "noop", big, NULL } };

        rc = dq_defer_many(c, r, 2, st, ids);
        e = dq_client_errstr(c);
        is_int(st[1], DQ_ETOOBIG, "batch: tasks[1] of 2 MiB: DQ_ETOOBIG");
        ok(starts(e, "tasks[1]: ") && strstr(e, "over the limit") != NULL,
           "batch: the refusal names tasks[1]: %s", e);
    }

    /* a batch: tasks[1] over the element limit */
    {
        dq_defer_opts_t o = DQ_DEFER_OPTS_INIT;
        dq_defer_req_t  r[2] = { { "noop", NULL, NULL },
                                 { "noop", many, &o } };

        o.kwargs = kw;
        rc = dq_defer_many(c, r, 2, st, ids);
        e = dq_client_errstr(c);
        ok(st[1] != DQ_OK, "batch: tasks[1] of 70,000 elements refused (%d)",
           st[1]);
        ok(starts(e, "tasks[1]: "), "batch: the refusal names tasks[1]: %s",
           e);
        rc = dq_defer(c, "noop", many, &o, ids[0], NULL);
        e = dq_client_errstr(c);
        ok(rc != DQ_OK && !starts(e, "request") && !starts(e, "tasks["),
           "one task of 70,000 elements: refused, no task named: %s", e);
    }

    /* the client's own one-task check, for the wording */
    rc = dq_defer(c, NULL, NULL, NULL, ids[0], NULL);
    is_int(rc, DQ_EINVAL, "one task without func: DQ_EINVAL");
    is_str(dq_client_errstr(c), "func: required", "its text");

    dq_args_free(big);
    dq_args_free(many);
    dq_args_free(kw);
    free(buf);
    dq_client_free(c);
    return done_testing();
}
