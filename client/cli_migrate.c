/*
 * deferred-cli queue upkeep: forget (an empty queue out of dq:queues),
 * migrate (a queue's tasks from contract v1 to v2) and unlist (the due
 * list's tasks back to the ETA set), each through its script of lib/lua.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client_impl.h"


/* -------------------------------------------------------------- forget */

/*
 * forget QUEUE...: takes a queue that holds nothing (no task in any state,
 * no name taken, no stored settings) out of dq:queues and drops its
 * counters (lib/lua/forget.lua). dq:queues is not in the queue's hash
 * slot, so: SREM first, the script, SADD back when it refuses (an enqueue
 * racing with it re-registers the queue either way).
 */
int
dq_cli_forget(dq_cli_t *cli, int argc, char **argv)
{
    int          i, rc, ret = DQ_CLI_OK;
    int64_t      done;
    dq_cmd_t     cmd;
    redisReply  *r;
    json_t      *out;

    if ((rc = dq_cli_queue_args(argc, argv, 1, "forget")) != DQ_CLI_OK) {
        return rc;
    }
    out = cli->json ? json_array() : NULL;
    for (i = 1; i < argc; i++) {
        const char  *srem[] = { "SREM", DQ_QUEUES_KEY, argv[i] };
        const char  *sadd[] = { "SADD", DQ_QUEUES_KEY, argv[i] };

        if ((r = dq_cli_cmd(cli, 3, srem)) == NULL) {
            json_decref(out);
            return DQ_CLI_ERROR;
        }
        freeReplyObject(r);
        dq_cmd_init(&cmd);
        r = dq_cli_script(cli, &cmd, dq_cmd_forget(&cmd, dq_str_c(argv[i])),
                          &rc);
        if (r == NULL) {
            /* not known whether it ran: the queue stays listed; the exit
             * code the builder's or the call's (review RLO finding 4: a
             * builder's code was lost to DQ_CLI_ERROR) */
            if ((r = dq_cli_cmd(cli, 3, sadd)) != NULL) {
                freeReplyObject(r);
            }
            json_decref(out);
            return rc;
        }
        done = dq_reply_int(r);
        freeReplyObject(r);
        if (done != 1) {
            if ((r = dq_cli_cmd(cli, 3, sadd)) == NULL) {
                json_decref(out);
                return DQ_CLI_ERROR;
            }
            freeReplyObject(r);
            fprintf(stderr, "deferred-cli: queue %s is not empty (tasks, "
                    "names in their tombstone window or stored settings: "
                    "purge, wait, or config clear/resume first); kept\n",
                    argv[i]);
            ret = DQ_CLI_NOTFOUND;
        }
        if (out) {
            json_t *o = json_object();
            json_object_set_new(o, "queue", json_string(argv[i]));
            json_object_set_new(o, "forgotten", json_boolean(done == 1));
            json_array_append_new(out, o);
        } else if (done == 1) {
            printf("forgot %s\n", argv[i]);
        }
    }
    if (out) {
        dq_cli_print_json(out);
    }
    return ret;
}

/* migrate one queue from contract v1 (dq_cmd_migrate until its cursor is
 * "0"); -1 on a Redis error (printed) */
static int
dq__migrate_one(dq_cli_t *cli, const char *queue, int64_t *moved,
                int64_t *left)
{
    char        cursor[24] = "0";
    int64_t     m, l;
    dq_cmd_t    cmd;
    dq_error_t  err;
    redisReply *r;
    int         rc;

    *moved = 0;
    *left = 0;
    do {
        dq_cmd_init(&cmd);
        r = dq_cli_script(cli, &cmd, dq_cmd_migrate(&cmd, dq_str_c(queue),
                                                    cursor, 1000), NULL);
        if (r == NULL) {
            return -1;
        }
        rc = dq_reply_migrate(r, cursor, &m, &l, &err);
        freeReplyObject(r);
        if (rc != DQ_OK) {
            fprintf(stderr, "deferred-cli: %s\n", err.msg);
            return -1;
        }
        *moved += m;
        *left = l;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* The queues of "CMD QUEUE...|--all" (--all: every queue in dq:queues),
 * sorted and checked; NULL with *ret set (usage, or a Redis error). Free
 * the array and *names (the --all reply its strings point into). */
static char **
dq__queues_arg(dq_cli_t *cli, int argc, char **argv, const char *what,
               redisReply **names, size_t *n, int *ret)
{
    char   **q;
    size_t   i;

    *names = NULL;
    if (argc < 2 || (strcmp(argv[1], "--all") == 0 && argc != 2)) {
        *ret = dq_cli_usage_error("%s QUEUE...|--all", what);
        return NULL;
    }
    if (strcmp(argv[1], "--all") == 0) {
        q = dq_cli_queue_names(cli, names, n);
    } else {
        *n = (size_t) argc - 1;
        q = calloc(*n + 1, sizeof(*q));
        for (i = 0; q && i < *n; i++) {
            q[i] = argv[i + 1];
        }
    }
    if (q == NULL) {
        freeReplyObject(*names);
        *ret = DQ_CLI_ERROR;
        return NULL;
    }
    qsort(q, *n, sizeof(*q), dq_cli_cmp_str);
    for (i = 0; i < *n; i++) {
        if (!dq_cli_queue(q[i])) {
            free(q);
            freeReplyObject(*names);
            *ret = DQ_CLI_USAGE;
            return NULL;
        }
    }
    *ret = DQ_CLI_OK;
    return q;
}

/* A command's run over its queue arguments: fn per queue, given the
 * queue's JSON object to fill (--json; "queue" already set) or NULL (fn
 * prints its line). fn: 0, or -1 on an error (printed), which ends the
 * run. */
typedef int (*dq__queue_fn)(dq_cli_t *cli, const char *queue, json_t *o);

static int
dq__each_queue(dq_cli_t *cli, int argc, char **argv, const char *command,
               dq__queue_fn fn)
{
    redisReply  *names;
    json_t      *out, *o;
    char       **q;
    size_t       i, n;
    int          ret;

    if ((q = dq__queues_arg(cli, argc, argv, command, &names, &n, &ret))
        == NULL)
    {
        return ret;
    }
    out = cli->json ? json_array() : NULL;
    for (i = 0; i < n; i++) {
        o = NULL;
        if (out) {
            o = json_object();
            json_object_set_new(o, "queue", json_string(q[i]));
        }
        if (fn(cli, q[i], o) != 0) {
            json_decref(o);
            ret = DQ_CLI_ERROR;
            goto done;
        }
        if (o) {
            json_array_append_new(out, o);
        }
    }
    if (out) {
        dq_cli_print_json(out);
        out = NULL;
    }
done:
    json_decref(out);
    free(q);
    freeReplyObject(names);
    return ret;
}

/* migrate QUEUE...|--all: contract v1 -> v2 (docs/CONTRACT.md "Upgrading
 * from v1") */
static int
dq__migrate_queue(dq_cli_t *cli, const char *queue, json_t *o)
{
    int64_t moved, left;

    if (dq__migrate_one(cli, queue, &moved, &left) != 0) {
        return -1;
    }
    if (o) {
        json_object_set_new(o, "moved", json_integer(moved));
        json_object_set_new(o, "left", json_integer(left));
        return 0;
    }
    printf("queue %s: moved %lld tasks from contract v1", queue,
           (long long) moved);
    if (left > 0) {
        printf(" (%lld left in v1: leased by v1 workers; run migrate again "
               "after they finish)", (long long) left);
    }
    printf("\n");
    return 0;
}

int
dq_cli_migrate(dq_cli_t *cli, int argc, char **argv)
{
    return dq__each_queue(cli, argc, argv, "migrate", dq__migrate_queue);
}

/* unlist one queue (each shard of a sharded one): dq_cmd_unlist until the
 * list is gone; -1 on an error (printed) */
static int
dq__unlist_one(dq_cli_t *cli, const char *queue, int64_t *moved)
{
    char        sq[DQ_SHARD_NAME_MAX + 1];
    unsigned    ns = 1, sh;
    int64_t     left;
    dq_cmd_t    cmd;
    redisReply *r;
    int         rc, rounds;

    *moved = 0;
    if ((rc = dq_queue_shards(cli->c, queue, &ns)) != DQ_OK) {
        (void) dq_cli_fail(cli, rc);
        return -1;
    }
    for (sh = 0; sh < ns; sh++) {
        dq_shard_name(sq, sizeof(sq), dq_str_c(queue), sh);
        /* at most 1000 ids a call; a list a producer still writes (a
         * worker that reads it claims again) is given up after 100,000
         * calls */
        for (rounds = 0, left = 1; left > 0 && rounds < 100000; rounds++) {
            dq_cmd_init(&cmd);
            r = dq_cli_script(cli, &cmd, dq_cmd_unlist(&cmd, dq_str_c(sq)),
                              NULL);
            if (r == NULL) {
                return -1;
            }
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                fprintf(stderr, "deferred-cli: unlist %s: unexpected "
                        "reply\n", sq);
                freeReplyObject(r);
                return -1;
            }
            *moved += dq_reply_int(r->element[0]);
            left = dq_reply_int(r->element[1]);
            freeReplyObject(r);
        }
        if (left > 0) {
            fprintf(stderr, "deferred-cli: unlist %s: the due list is "
                    "still written (a worker that reads it claims this "
                    "queue: stop it first)\n", sq);
            return -1;
        }
    }
    return 0;
}

/* unlist QUEUE...|--all: the due list off and emptied into the ETA set
 * (docs/OPERATIONS.md, rolling back past the due list) */
static int
dq__unlist_queue(dq_cli_t *cli, const char *queue, json_t *o)
{
    int64_t moved;

    if (dq__unlist_one(cli, queue, &moved) != 0) {
        return -1;
    }
    if (o) {
        json_object_set_new(o, "moved", json_integer(moved));
    } else {
        printf("queue %s: moved %lld tasks from the due list to the ETA "
               "set\n", queue, (long long) moved);
    }
    return 0;
}

int
dq_cli_unlist(dq_cli_t *cli, int argc, char **argv)
{
    return dq__each_queue(cli, argc, argv, "unlist", dq__unlist_queue);
}
