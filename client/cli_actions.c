/*
 * deferred-cli task actions: retry/requeue, delete, purge, pause/resume.
 * Every write goes through a script of lib/lua (requeue, remove, pause),
 * so it is atomic with the workers' claims.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client_impl.h"


/* --------------------------------------------------------------- retry */

/* retry QUEUE ID | --all | --match TEXT: dead tasks run again (due now,
 * retry state reset): one through dq_requeue_dead, many through
 * dq_requeue_dead_all (TEXT: a substring of the last error). Also
 * "requeue-all QUEUE [TEXT]". */
int
dq_cli_retry(dq_cli_t *cli, int argc, char **argv)
{
    const char *queue = NULL, *id = NULL, *match = NULL;
    int         all = 0, i, rc;
    long long   done = 0, seen = 0;

    if (strcmp(argv[0], "requeue-all") == 0) {
        if (argc < 2 || argc > 3) {
            return dq_cli_usage_error("requeue-all QUEUE [TEXT]");
        }
        queue = argv[1];
        match = argc == 3 ? argv[2] : NULL;
        all = match == NULL;
        i = argc;
    } else {
        i = 1;
    }
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0) {
            all = 1;
        } else if (strcmp(argv[i], "--match") == 0 && i + 1 < argc) {
            match = argv[++i];
        } else if (queue == NULL && argv[i][0] != '-') {
            queue = argv[i];
        } else if (queue != NULL && id == NULL) {
            id = argv[i];       /* ids may start with '-' (base64url) */
        } else {
            return dq_cli_usage_error("%s: unexpected \"%s\"", argv[0],
                                      argv[i]);
        }
    }
    if (queue == NULL || (id != NULL) + all + (match != NULL) != 1) {
        return dq_cli_usage_error("%s QUEUE ID | QUEUE --all | QUEUE "
                                  "--match TEXT", argv[0]);
    }
    if (!dq_cli_queue(queue)) {
        return DQ_CLI_USAGE;
    }
    if (id) {
        rc = dq_requeue_dead(cli->c, queue, id);
        if (rc == DQ_ENOTFOUND) {
            fprintf(stderr, "deferred-cli: task %s is not dead in queue "
                    "%s\n", id, queue);
            return DQ_CLI_NOTFOUND;
        }
        if (rc != DQ_OK) {
            return dq_cli_fail(cli, rc);
        }
        done = seen = 1;
    } else {
        /* lib/lua/requeue_all (client: dq_requeue_dead_all), 1000 a call */
        int64_t n = 0, kept = 0;

        rc = dq_requeue_dead_all(cli->c, queue, match, &n, &kept);
        if (rc != DQ_OK) {
            return dq_cli_fail(cli, rc);
        }
        done = n;
        seen = kept;
    }
    if (cli->json) {
        json_t *o = json_object();
        json_object_set_new(o, "queue", json_string(queue));
        json_object_set_new(o, "requeued", json_integer(done));
        json_object_set_new(o, "kept_dead", json_integer(id ? 0 : seen));
        dq_cli_print_json(o);
    } else if (id) {
        printf("requeued %s in %s\n", id, queue);
    } else if (strcmp(argv[0], "requeue-all") == 0) {
        /* the older command's own words */
        printf("%lld requeued, %lld left dead (name held by a live task)\n",
               done, seen);
    } else {
        printf("requeued %lld dead tasks in %s (%lld left dead: a live task "
               "holds their name)\n", done, queue, seen);
    }
    return DQ_CLI_OK;
}

/* ----------------------------------------------------- delete and purge */

/* --tombstone MS: how long a removed task's name stays taken (0: free at
 * once, as deferred_tombstone 0); the client's window when not given */
static int
dq__tombstone(const char *s, int64_t *ms)
{
    char      *end;
    long long  v = strtoll(s, &end, 10);

    if (*s == '\0' || *end || v < 0) {
        return dq_cli_usage_error("--tombstone: milliseconds (0: the name "
                                  "is free at once), not \"%s\"", s);
    }
    *ms = v;
    return DQ_CLI_OK;
}

/* One remove call (what "id": followed through the cold tier's steps).
 * *out: for "id", the script's answer (0 not found, 1 waiting, 2 running,
 * 3 dead); else the tasks removed, and *more 1 when entries of that state
 * may be left (the reply { removed, more }: a call that took entries
 * holding no task removed fewer than it took, review RV8 finding 1). */
static int
dq__remove(dq_cli_t *cli, const char *queue, const char *what,
           const char *id, int64_t tomb, int64_t *out, int *more)
{
    dq_cmd_t    cmd;
    redisReply *r;
    int64_t     from = strcmp(what, "id") == 0 ? 0 : -1;

    /* one id: the cold tier is looked at in bounded steps (a reply < 0
     * says where to go on), so Redis is never busy for long */
    do {
        dq_cmd_init(&cmd);
        r = dq_cli_script(cli, &cmd,
                          dq_cmd_remove_from(&cmd, dq_str_c(queue), what,
                                             dq_str_c(id ? id : ""), 1000,
                                             tomb, from), NULL);
        if (r == NULL) {
            return DQ_EREDIS;
        }
        if (more) {
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                freeReplyObject(r);
                /* (the caller exits with DQ_CLI_ERROR: the text printed
                 * here, as for a failed call) */
                (void) dq_cli_fail(cli, dq__fail(cli->c, DQ_EREDIS,
                                   "remove %s: unexpected reply", what));
                return DQ_EREDIS;
            }
            *out = dq_reply_int(r->element[0]);
            *more = dq_reply_int(r->element[1]) != 0;
            freeReplyObject(r);
            return DQ_OK;
        }
        *out = dq_reply_int(r);
        freeReplyObject(r);
        from = -*out;
    } while (*out < 0);
    return DQ_OK;
}

int
dq_cli_delete(dq_cli_t *cli, int argc, char **argv)
{
    static const char *was[] = { "", "waiting", "running", "dead" };
    int64_t            n, tomb = cli->c->tombstone_ms;
    char               s[DQ_SHARD_NAME_MAX + 1];
    unsigned           ns = 1, i;
    int                rc;

    if (argc == 5 && strcmp(argv[3], "--tombstone") == 0) {
        if (dq__tombstone(argv[4], &tomb) != DQ_CLI_OK) {
            return DQ_CLI_USAGE;
        }
        argc = 3;
    }
    if (argc != 3) {
        return dq_cli_usage_error("delete QUEUE ID [--tombstone MS]");
    }
    if (!dq_cli_queue(argv[1])) {
        return DQ_CLI_USAGE;
    }
    if ((rc = dq_queue_shards(cli->c, argv[1], &ns)) != DQ_OK) {
        return dq_cli_fail(cli, rc);
    }
    /* a sharded queue: the shard that holds it */
    for (i = 0, n = 0; i < ns && (n < 1 || n > 3); i++) {
        dq_shard_name(s, sizeof(s), dq_str_c(argv[1]), i);
        if (dq__remove(cli, s, "id", argv[2], tomb, &n, NULL) != DQ_OK) {
            return DQ_CLI_ERROR;
        }
    }
    if (n < 1 || n > 3) {
        fprintf(stderr, "deferred-cli: no task %s in queue %s\n", argv[2],
                argv[1]);
        return DQ_CLI_NOTFOUND;
    }
    if (cli->json) {
        json_t *o = json_object();
        json_object_set_new(o, "queue", json_string(argv[1]));
        json_object_set_new(o, "id", json_string(argv[2]));
        json_object_set_new(o, "deleted", json_true());
        json_object_set_new(o, "was", json_string(was[n]));
        dq_cli_print_json(o);
    } else {
        printf("deleted %s (%s) from %s\n", argv[2], was[n], argv[1]);
    }
    return DQ_CLI_OK;
}

int
dq_cli_purge(dq_cli_t *cli, int argc, char **argv)
{
    dq_cli_state_t  st = DQ_ST_ALL;
    const char     *queue = NULL;
    int             yes = 0, i, s, more;
    long long       total = 0;
    int64_t         n, tomb = cli->c->tombstone_ms;
    json_t         *o;
    char            sname[DQ_SHARD_NAME_MAX + 1];
    unsigned        ns = 1, k;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
            if (dq_cli_state(argv[++i], &st) != 0 || st == DQ_ST_RUNNING) {
                return dq_cli_usage_error("--state: waiting, due, delayed, "
                                          "dead or all, not \"%s\" (running "
                                          "tasks are deleted one by one)",
                                          argv[i]);
            }
        } else if (strcmp(argv[i], "--yes") == 0) {
            yes = 1;
        } else if (strcmp(argv[i], "--tombstone") == 0 && i + 1 < argc) {
            if (dq__tombstone(argv[++i], &tomb) != DQ_CLI_OK) {
                return DQ_CLI_USAGE;
            }
        } else if (argv[i][0] != '-' && queue == NULL) {
            queue = argv[i];
        } else {
            return dq_cli_usage_error("purge: unexpected \"%s\"", argv[i]);
        }
    }
    if (queue == NULL) {
        return dq_cli_usage_error("purge QUEUE [--state STATE] --yes");
    }
    if (!dq_cli_queue(queue)) {
        return DQ_CLI_USAGE;
    }
    if (!yes) {
        return dq_cli_usage_error("purge deletes every %s task of %s for "
                                  "good: add --yes", st == DQ_ST_ALL
                                  ? "waiting and dead" : dq_cli_states[st],
                                  queue);
    }
    if ((i = dq_queue_shards(cli->c, queue, &ns)) != DQ_OK) {
        return dq_cli_fail(cli, i);
    }
    for (k = 0; k < ns; k++) {          /* every shard of a sharded queue */
        dq_shard_name(sname, sizeof(sname), dq_str_c(queue), k);
        for (s = DQ_ST_WAITING; s <= DQ_ST_DEAD; s++) {
            if (st == DQ_ST_ALL ? (s != DQ_ST_WAITING && s != DQ_ST_DEAD)
                                : s != (int) st)
            {
                continue;
            }
            do {
                if (dq__remove(cli, sname, dq_cli_states[s], NULL, tomb, &n,
                               &more)
                    != DQ_OK)
                {
                    return DQ_CLI_ERROR;
                }
                total += n;
            } while (more);
        }
    }
    if (cli->json) {
        o = json_object();
        json_object_set_new(o, "queue", json_string(queue));
        json_object_set_new(o, "state", json_string(dq_cli_states[st]));
        json_object_set_new(o, "deleted", json_integer(total));
        dq_cli_print_json(o);
    } else {
        printf("purged %lld %s tasks from %s\n", total,
               st == DQ_ST_ALL ? "waiting and dead" : dq_cli_states[st],
               queue);
    }
    return DQ_CLI_OK;
}

/* -------------------------------------------------------- pause/resume */

int
dq_cli_pause(dq_cli_t *cli, int argc, char **argv)
{
    int     pause = strcmp(argv[0], "pause") == 0, i, rc;
    json_t *out;

    if ((rc = dq_cli_queue_args(argc, argv, 1, argv[0])) != DQ_CLI_OK) {
        return rc;
    }
    out = cli->json ? json_array() : NULL;
    for (i = 1; i < argc; i++) {
        int changed = 0;

        rc = dq_queue_pause(cli->c, argv[i], pause, &changed);
        if (rc != DQ_OK) {
            json_decref(out);
            return dq_cli_fail(cli, rc);
        }
        if (out) {
            json_t *o = json_object();
            json_object_set_new(o, "queue", json_string(argv[i]));
            json_object_set_new(o, "paused", json_boolean(pause));
            json_array_append_new(out, o);
        } else {
            printf("%s %s\n", pause ? "paused" : "resumed", argv[i]);
        }
    }
    if (out) {
        dq_cli_print_json(out);
    }
    return DQ_CLI_OK;
}
