/*
 * deferred-cli — defer tasks and inspect queues from the shell, through
 * the C client (include/deferred/client.h).
 *
 *   deferred-cli [-r ADDR] [--password P] [--db N] [--json] COMMAND ...
 *
 * Commands: queues, list, show (client/cli_inspect.c), retry/requeue,
 * delete, purge, pause, resume (cli_actions.c), forget, migrate
 * (cli_migrate.c), workers (cli_workers.c), config, queue (cli_config.c),
 * defer (here), and the older stats, dead, error. `deferred-cli --help`
 * lists them; docs/OPERATIONS.md shows them at work. Exit codes: cli.h.
 * Also: requeue-all QUEUE [TEXT] (every dead task, or those whose last
 * error contains TEXT), and sign [-m METHOD] -s SECRET_FILE... URI
 * [BODY_FILE]: the X-Deferred-Signature value for an HTTP request (body
 * from BODY_FILE or stdin; no Redis involved).
 *
 * defer options: -q QUEUE, -n NAME, --id ID (idempotent: the task's id), -u URL, --countdown MS, --eta MS,
 * -H NAME:VALUE (repeatable), -k KEY=VALUE (keyword argument, repeatable), --retry-limit N, --age-limit MS,
 * --min-backoff MS, --max-backoff MS, --max-doublings N, --count N
 * (defer N copies, pipelined). ARG and VALUE: an integer literal is sent as an
 * integer, "d:1.5" as a double, "b:true"/"b:false" as a boolean, "nil" as
 * nil, "s:TEXT" as the string TEXT, anything else as a string.
 * Prints "<id> <eta_ms>" per task.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "cli.h"

#define MAX_HEADERS 32

static void
usage_to(FILE *out)
{
    fprintf(out,
        "usage: deferred-cli [-r ADDR] [-a|--password PASS] [--db N] "
        "[--json]\n"
        "  ADDR: HOST, HOST:PORT, [IPV6]:PORT, unix:PATH, "
        "sentinel:MASTER@HOST:PORT,...\n"
        "        or cluster:HOST:PORT,... (a Redis Cluster, --db 0)\n"
        "        (default 127.0.0.1:6379)\n"
        "                    COMMAND ...\n"
        "  queues                          every known queue: waiting, due, "
        "delayed,\n"
        "                                  running, dead, paused, rate, "
        "oldest due age\n"
        "  list QUEUE [--state waiting|due|delayed|running|dead] "
        "[--limit N]\n"
        "  show QUEUE ID                   decoded envelope, attempts, ETA, "
        "last error\n"
        "  retry QUEUE ID|--all|--match TEXT   re-run dead tasks "
        "(alias: requeue)\n"
        "  delete QUEUE ID [--tombstone MS]\n"
        "                                  delete one task (any state); its "
        "name is\n"
        "                                  taken MS more (default 7 days, 0: "
        "free)\n"
        "  purge QUEUE [--state waiting|due|delayed|dead|all] "
        "[--tombstone MS] --yes\n"
        "  pause QUEUE... | resume QUEUE...\n"
        "  forget QUEUE...                 drop empty queues from the list "
        "(exit 5: not empty)\n"
        "  migrate QUEUE...|--all          move queues written by contract "
        "v1 (dq:{Q}:*)\n"
        "                                  to v2 (dq2:{Q}:*); safe to run "
        "again\n"
        "  unlist QUEUE...|--all           the due list off, its tasks back "
        "to the ETA set\n"
        "                                  (a rollback to workers before "
        "the due list)\n"
        "  workers                         live workers (heartbeats)\n"
        "  config apply FILE [--dry-run]   queue blocks or App Engine "
        "queue.yaml -> Redis\n"
        "  config show [QUEUE] | config clear QUEUE...\n"
        "  queue QUEUE [--shards N] [--rate R] [--max-concurrent M]\n"
        "                                  shards (only grow) and whole-queue "
        "limits\n"
        "  defer [-q QUEUE] [-n NAME] [--id ID] [-u URL] [--countdown MS]\n"
        "        [--eta MS] [-H NAME:VALUE]... [-k KEY=VALUE]... [--retry-limit N]\n"
        "        [--age-limit MS] [--min-backoff MS] [--max-backoff MS]\n"
        "        [--max-doublings N] [--count N] FUNC [ARG...]\n"
        "  stats [QUEUE] | dead [QUEUE] | error QUEUE ID | "
        "requeue-all QUEUE [TEXT]\n"
        "  sign [-m METHOD] -s SECRET_FILE... URI [BODY_FILE]\n"
        "                                  X-Deferred-Signature for an HTTP "
        "request\n"
        "  PASS: Redis AUTH, empty for none (or $DEFERRED_REDIS_PASSWORD, "
        "kept out of ps)\n"
        "Environment: DEFERRED_REDIS (address), DEFERRED_REDIS_PASSWORD.\n"
        "Exit: 0 ok, 1 error, 2 usage, 3 duplicate name, 4 tombstoned "
        "name, 5 not found.\n");
}

static int
usage(void)
{
    usage_to(stderr);
    return 2;
}


/* a whole file (or stdin for NULL) into a malloc'ed buffer */
static char *
slurp_file(const char *path, size_t *len)
{
    FILE   *f = path ? fopen(path, "rb") : stdin;
    char   *buf = NULL, *nb;
    size_t  cap = 0, n;

    *len = 0;
    if (f == NULL) {
        return NULL;
    }
    for (;;) {
        if (*len == cap) {
            cap = cap ? cap * 2 : 65536;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        n = fread(buf + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0) {
            break;
        }
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    if (path) {
        fclose(f);
    }
    return buf ? buf : (*len == 0 ? calloc(1, 1) : NULL);
}

/* sign [-m METHOD] -s SECRET_FILE... URI [BODY_FILE]: the secrets come from
 * files (never the command line, which other users can read in ps) */
static int
cmd_sign(int argc, char **argv)
{
    const char *method = "POST", *secrets[8];
    char       *owned[8], *body, out[DQ_SIGN_REQUEST_MAX];
    size_t      ns = 0, len, n, i;
    int         k, rc, ret = 2;

    for (k = 0; k < argc && argv[k][0] == '-'; k += 2) {
        if (k + 1 >= argc) {
            return usage();
        }
        if (strcmp(argv[k], "-m") == 0) {
            method = argv[k + 1];
        } else if (strcmp(argv[k], "-s") == 0 && ns < 8) {
            owned[ns] = slurp_file(argv[k + 1], &n);
            if (owned[ns] == NULL || n == 0) {
                fprintf(stderr, "deferred-cli: sign: cannot read a secret "
                        "from %s\n", argv[k + 1]);
                free(owned[ns]);
                goto done;
            }
            while (n && (owned[ns][n - 1] == '\n' || owned[ns][n - 1] == '\r'))
            {
                n--;
            }
            owned[ns][n] = '\0';
            secrets[ns] = owned[ns];
            ns++;
        } else {
            goto done;
        }
    }
    if (ns == 0 || k >= argc || argc - k > 2) {
        fprintf(stderr, "deferred-cli: sign: -s SECRET_FILE and URI are "
                "needed\n");
        goto done;
    }
    body = slurp_file(k + 1 < argc ? argv[k + 1] : NULL, &len);
    if (body == NULL) {
        fprintf(stderr, "deferred-cli: sign: cannot read the body\n");
        ret = 1;
        goto done;
    }
    rc = dq_sign_request(secrets, ns, method, argv[k], body, len, 0, out,
                         sizeof(out));
    free(body);
    if (rc != DQ_OK) {
        fprintf(stderr, "deferred-cli: sign: %s\n", dq_strerror(rc));
        ret = dq_cli_exit_code(rc);
        goto done;
    }
    printf("%s\n", out);
    ret = 0;
done:
    for (i = 0; i < ns; i++) {
        free(owned[i]);
    }
    return ret;
}

static int
parse_i64(const char *s, int64_t *out)
{
    char      *end;
    long long  v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end) {
        return -1;
    }
    *out = v;
    return 0;
}

/* One value: an integer literal as an integer, "d:NUMBER" as a double,
 * "b:true|false" as a boolean, "nil" as nil, "s:TEXT" or anything else as a
 * string. */
static int
add_value(dq_args_t *a, const char *v)
{
    int64_t  n;
    char    *end;
    double   d;

    if (parse_i64(v, &n) == 0) {
        return dq_args_int(a, n);
    }
    if (strncmp(v, "d:", 2) == 0) {
        d = strtod(v + 2, &end);
        return (end == v + 2 || *end) ? DQ_EINVAL : dq_args_double(a, d);
    }
    if (strcmp(v, "b:true") == 0 || strcmp(v, "b:false") == 0) {
        return dq_args_bool(a, v[2] == 't');
    }
    if (strcmp(v, "nil") == 0) {
        return dq_args_nil(a);
    }
    if (strncmp(v, "s:", 2) == 0) {
        return dq_args_cstr(a, v + 2);
    }
    return dq_args_cstr(a, v);
}

static int
cmd_defer(dq_client_t *c, int argc, char **argv)
{
    dq_defer_opts_t  o = DQ_DEFER_OPTS_INIT;
    dq_header_t      hdrs[MAX_HEADERS];
    char            *hcopy[MAX_HEADERS];
    size_t           nh = 0;
    int64_t          count = 1, v;
    dq_args_t       *args, *kwargs = NULL;
    int              i, rc = DQ_OK, ret = 0;

    for (i = 0; i < argc && argv[i][0] == '-'; i += 2) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (val == NULL) {
            return usage();
        }
        if (strcmp(a, "-q") == 0) {
            o.queue = val;
        } else if (strcmp(a, "-n") == 0) {
            o.name = val;
        } else if (strcmp(a, "--id") == 0) {
            o.id = val;
        } else if (strcmp(a, "-u") == 0) {
            o.url = val;
        } else if (strcmp(a, "-k") == 0) {
            char *kv = strdup(val), *eq = kv ? strchr(kv, '=') : NULL;

            if (kwargs == NULL) {
                kwargs = dq_kwargs_new();
            }
            if (eq == NULL || kwargs == NULL) {
                fprintf(stderr, "deferred-cli: bad keyword argument \"%s\" "
                        "(KEY=VALUE)\n", val);
                free(kv);
                ret = 2;
                goto done;
            }
            *eq = '\0';
            rc = dq_args_key(kwargs, kv);
            if (rc == DQ_OK) {
                rc = add_value(kwargs, eq + 1);
            }
            free(kv);
            if (rc != DQ_OK) {
                fprintf(stderr, "deferred-cli: keyword argument \"%s\": %s\n",
                        val, dq_strerror(rc));
                ret = 2;
                goto done;
            }
        } else if (strcmp(a, "-H") == 0) {
            char *colon;

            if (nh == MAX_HEADERS || (hcopy[nh] = strdup(val)) == NULL
                || (colon = strchr(hcopy[nh], ':')) == NULL)
            {
                fprintf(stderr, "deferred-cli: bad header \"%s\"\n", val);
                ret = 2;
                goto done;
            }
            *colon = '\0';
            hdrs[nh].name = hcopy[nh];
            hdrs[nh].value = colon + 1 + (colon[1] == ' ');
            nh++;
        } else if (parse_i64(val, &v) != 0) {
            fprintf(stderr, "deferred-cli: %s: not a number: %s\n", a, val);
            ret = 2;
            goto done;
        } else if (strcmp(a, "--countdown") == 0) {
            o.countdown_ms = v;
        } else if (strcmp(a, "--eta") == 0) {
            o.eta_ms = v;
        } else if (strcmp(a, "--retry-limit") == 0) {
            o.retry.retry_limit = v;
        } else if (strcmp(a, "--age-limit") == 0) {
            o.retry.age_limit_ms = v;
        } else if (strcmp(a, "--min-backoff") == 0) {
            o.retry.min_backoff_ms = v;
        } else if (strcmp(a, "--max-backoff") == 0) {
            o.retry.max_backoff_ms = v;
        } else if (strcmp(a, "--max-doublings") == 0) {
            o.retry.max_doublings = v;
        } else if (strcmp(a, "--count") == 0 && v >= 1) {
            count = v;
        } else {
            fprintf(stderr, "deferred-cli: unknown defer option %s\n", a);
            ret = 2;
            goto done;
        }
    }
    if (i >= argc) {
        ret = usage();
        goto done;
    }
    o.headers = nh ? hdrs : NULL;
    o.nheaders = nh;
    o.kwargs = kwargs;

    args = dq_args_new();
    if (args == NULL) {
        ret = 1;
        goto done;
    }
    for (int k = i + 1; k < argc && rc == DQ_OK; k++) {
        rc = add_value(args, argv[k]);
    }

    if (rc == DQ_OK && count == 1) {
        char    id[DQ_ID_SIZE];
        int64_t eta = 0;

        rc = dq_defer(c, argv[i], args, &o, id, &eta);
        if (rc == DQ_OK) {
            printf("%s %lld\n", id, (long long) eta);
        }
    } else if (rc == DQ_OK) {
        /* pipelined, up to 1000 per call */
        size_t          chunk = 1000, n, k;
        dq_defer_req_t *reqs = calloc(chunk, sizeof(*reqs));
        int            *st = calloc(chunk, sizeof(*st));
        char          (*ids)[DQ_ID_SIZE] = calloc(chunk, DQ_ID_SIZE);

        if (reqs == NULL || st == NULL || ids == NULL) {
            rc = DQ_ENOMEM;
        }
        for (int64_t done = 0; rc == DQ_OK && done < count; done += n) {
            n = (size_t) (count - done) < chunk ? (size_t) (count - done)
                                                : chunk;
            for (k = 0; k < n; k++) {
                reqs[k].func = argv[i];
                reqs[k].args = args;
                reqs[k].opts = &o;
            }
            rc = dq_defer_many(c, reqs, n, st, ids);
            for (k = 0; (rc == DQ_OK || rc == DQ_EREDIS) && k < n; k++) {
                if (rc != DQ_OK) {
                    /* stopped midway (a node lost): the ones stored */
                    if (st[k] == DQ_OK) {
                        printf("%s\n", ids[k]);
                    }
                } else if (st[k] != DQ_OK) {
                    /* a refusal by Redis: the reply (the first one) */
                    fprintf(stderr, "deferred-cli: task %lld: %s%s%s\n",
                            (long long) (done + (int64_t) k),
                            dq_strerror(st[k]), st[k] == DQ_EREDIS ? ": " : "",
                            st[k] == DQ_EREDIS ? dq_client_errstr(c) : "");
                    ret = dq_cli_exit_code(st[k]);
                } else {
                    printf("%s\n", ids[k]);
                }
            }
        }
        free(reqs);
        free(st);
        free(ids);
    }
    if (rc != DQ_OK) {
        fprintf(stderr, "deferred-cli: %s: %s\n", dq_strerror(rc),
                dq_client_errstr(c));
        ret = dq_cli_exit_code(rc);
    }
    dq_args_free(args);

done:
    dq_args_free(kwargs);
    for (size_t k = 0; k < nh; k++) {
        free(hcopy[k]);
    }
    return ret;
}

/* "unrunnable_fn <function> <count> <last ms>" per function whose tasks
 * were given back because no library of the worker registers it (the hash
 * DQ_KEY_UNRUNNABLE: at most 64 functions, the rest as "(others)"). */
static int
stats_unrunnable(dq_cli_t *cli, const char *queue)
{
    char        key[DQ_KEY_MAX];
    const char *a[] = { "HGETALL", key };
    redisReply *r;
    size_t      i;

    dq_key_format(key, sizeof(key), dq_str_c(queue), DQ_KEY_UNRUNNABLE);
    if ((r = dq_cli_cmd(cli, 2, a)) == NULL) {
        return DQ_CLI_ERROR;
    }
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
    {
        const char *v = r->element[i + 1]->str;
        const char *colon = v ? strchr(v, ':') : NULL;

        if (colon != NULL) {
            printf("unrunnable_fn %s %.*s %s\n", r->element[i]->str,
                   (int) (colon - v), v, colon + 1);
        }
    }
    freeReplyObject(r);
    return 0;
}

/* "v1_left <tasks>" when the queue still has keys of contract v1
 * (dq:{q}:*): tasks waiting, leased or dead there (deferred-cli migrate
 * moves them); nothing when it has none. */
static int
stats_v1(dq_cli_t *cli, const char *queue)
{
    static const dq_key_kind_t zs[4] = { DQ_KEY_ETA, DQ_KEY_LEASE,
                                         DQ_KEY_V1_LEASE, DQ_KEY_DEAD };
    static const dq_key_kind_t other[6] = { DQ_KEY_TASKS, DQ_KEY_NAMES,
        DQ_KEY_STATS, DQ_KEY_CONF, DQ_KEY_V1_STATE, DQ_KEY_ERRORS };
    char        key[DQ_KEY_MAX], keys[6][DQ_KEY_MAX];
    const char *z[] = { "ZCARD", key };
    const char *ex[7] = { "EXISTS" };
    redisReply *r;
    long long   left = 0, any;
    int         i;

    for (i = 0; i < 4; i++) {
        dq_key_format_v1(key, sizeof(key), dq_str_c(queue), zs[i]);
        if ((r = dq_cli_cmd(cli, 2, z)) == NULL) {
            return DQ_CLI_ERROR;
        }
        left += dq_reply_int(r);
        freeReplyObject(r);
    }
    for (i = 0; i < 6; i++) {
        dq_key_format_v1(keys[i], sizeof(keys[i]), dq_str_c(queue), other[i]);
        ex[i + 1] = keys[i];
    }
    if ((r = dq_cli_cmd(cli, 7, ex)) == NULL) {
        return DQ_CLI_ERROR;
    }
    any = dq_reply_int(r);
    freeReplyObject(r);
    if (left > 0 || any > 0) {
        printf("v1_left %lld\n", left);
        fprintf(stderr, "deferred-cli: queue %s has data of contract v1 "
                "(%lld tasks): deferred-cli migrate %s\n", queue, left,
                queue);
    }
    return DQ_CLI_OK;
}

/*
 * "stats [QUEUE]": the counts and counters (dq_queue_stats_t), the event
 * counters dq_queue_stats_t does not carry (adding them would change its
 * size, the public ABI: "acked_late N", "clock_jumps N", "migrating_stalls
 * N"), all summed over a sharded queue's shards, then its breakdown
 * ("shards N", then "shard I waiting W running R dead D done X enqueued E"
 * per shard), the unrunnable functions, contract v1's leftovers and a due
 * list no worker claims (a warning). Two reads of each shard's stats hash:
 * dq_queue_stats_shard's and one HMGET of the fields it does not read.
 */
static int
cmd_stats(dq_cli_t *cli, int argc, char **argv)
{
    static const char *f[3] = { "acked_late", "clock_jumps",
                                "migrating_stalls" };
    dq_queue_stats_t   s, sh[DQ_MAX_SHARDS];
    const char        *queue = argc > 1 ? argv[1] : DQ_DEFAULT_QUEUE;
    char               key[DQ_KEY_MAX], sq[DQ_SHARD_NAME_MAX + 1];
    const char        *a[] = { "HMGET", key, f[0], f[1], f[2], "due_n",
                               "due_until" };
    redisReply        *ev[DQ_MAX_SHARDS] = { NULL };
    long long          sum[3] = { 0 };
    int64_t            now;
    unsigned           n = 1, i, k;
    int                rc;

    if ((rc = dq_queue_shards(cli->c, queue, &n)) != DQ_OK) {
        return dq_cli_fail(cli, rc);
    }
    memset(&s, 0, sizeof(s));
    for (i = 0; i < n; i++) {
        if ((rc = dq_queue_stats_shard(cli->c, queue, i, &sh[i])) != DQ_OK) {
            rc = dq_cli_fail(cli, rc);
            goto done;
        }
        s.waiting += sh[i].waiting;
        s.running += sh[i].running;
        s.dead += sh[i].dead;
        s.enqueued += sh[i].enqueued;
        s.done += sh[i].done;
        s.retried += sh[i].retried;
        s.dead_total += sh[i].dead_total;
        s.reclaimed += sh[i].reclaimed;
        s.released += sh[i].released;
        s.unrunnable += sh[i].unrunnable;
        s.dead_over_max += sh[i].dead_over_max;
        dq_shard_name(sq, sizeof(sq), dq_str_c(queue), i);
        dq_key_format(key, sizeof(key), dq_str_c(sq), DQ_KEY_STATS);
        if ((ev[i] = dq_cli_cmd(cli, 7, a)) == NULL) {
            rc = DQ_CLI_ERROR;
            goto done;
        }
        for (k = 0; ev[i]->type == REDIS_REPLY_ARRAY && k < 3
                    && k < ev[i]->elements; k++)
        {
            sum[k] += dq_reply_int(ev[i]->element[k]);
        }
    }
    printf("queue %s\nwaiting %lld\nrunning %lld\ndead %lld\nenqueued %lld\n"
           "done %lld\nretried %lld\ndead_total %lld\nreclaimed %lld\n"
           "released %lld\nunrunnable %lld\ndead_over_max %lld\n", queue,
           (long long) s.waiting, (long long) s.running, (long long) s.dead,
           (long long) s.enqueued, (long long) s.done, (long long) s.retried,
           (long long) s.dead_total, (long long) s.reclaimed,
           (long long) s.released, (long long) s.unrunnable,
           (long long) s.dead_over_max);
    for (k = 0; k < 3; k++) {
        printf("%s %lld\n", f[k], sum[k]);
    }
    if (n > 1) {
        printf("shards %u\n", n);
        for (i = 0; i < n; i++) {
            printf("shard %u waiting %lld running %lld dead %lld done %lld "
                   "enqueued %lld\n", i, (long long) sh[i].waiting,
                   (long long) sh[i].running, (long long) sh[i].dead,
                   (long long) sh[i].done, (long long) sh[i].enqueued);
        }
    }
    rc = stats_unrunnable(cli, queue);
    if (rc == DQ_CLI_OK) {
        rc = stats_v1(cli, queue);
    }
    if (rc == DQ_CLI_OK) {
        if ((now = dq_cli_now(cli)) < 0) {
            rc = DQ_CLI_ERROR;
            goto done;
        }
        for (i = 0; i < n; i++) {
            if (ev[i]->type == REDIS_REPLY_ARRAY && ev[i]->elements == 5) {
                dq_shard_name(sq, sizeof(sq), dq_str_c(queue), i);
                dq_cli_due_warn(sq, dq_reply_int(ev[i]->element[3]),
                                ev[i]->element[4], now);
            }
        }
    }
done:
    for (i = 0; i < n; i++) {
        if (ev[i]) {
            freeReplyObject(ev[i]);
        }
    }
    return rc;
}

/* "dead [QUEUE]": "<id> <last error>" per dead task (oldest first). */
static int
cmd_dead(dq_cli_t *cli, int argc, char **argv)
{
    const char *queue = argc > 1 ? argv[1] : DQ_DEFAULT_QUEUE;
    char        key[DQ_KEY_MAX], err[1024], s[DQ_SHARD_NAME_MAX + 1];
    const char *a[] = { "ZRANGE", key, "0", "-1" };
    redisReply *r;
    size_t      i;
    unsigned    n = 1, k;
    int         rc;

    if (!dq_cli_queue(queue)) {
        return DQ_CLI_USAGE;
    }
    if ((rc = dq_queue_shards(cli->c, queue, &n)) != DQ_OK) {
        return dq_cli_fail(cli, rc);
    }
    for (k = 0; k < n; k++) {           /* every shard of a sharded queue */
        dq_shard_name(s, sizeof(s), dq_str_c(queue), k);
        dq_key_format(key, sizeof(key), dq_str_c(s), DQ_KEY_DEAD);
        if ((r = dq_cli_cmd(cli, 4, a)) == NULL) {
            return DQ_CLI_ERROR;
        }
        for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            const char *id = r->element[i]->str;

            if (dq_task_last_error(cli->c, queue, id, err, sizeof(err))
                != DQ_OK)
            {
                snprintf(err, sizeof(err), "-");
            }
            printf("%s %s\n", id, err);
        }
        freeReplyObject(r);
    }
    return 0;
}

static int
cmd_error(dq_cli_t *cli, int argc, char **argv)
{
    char buf[1024];
    int  rc;

    if (argc != 3) {
        return usage();
    }
    rc = dq_task_last_error(cli->c, argv[1], argv[2], buf, sizeof(buf));
    if (rc != DQ_OK) {
        return dq_cli_fail(cli, rc);
    }
    printf("%s\n", buf);
    return 0;
}

static int
cmd_defer_entry(dq_cli_t *cli, int argc, char **argv)
{
    return cmd_defer(cli->c, argc - 1, argv + 1);
}

static const struct {
    const char *name;
    int       (*run)(dq_cli_t *cli, int argc, char **argv);
} commands[] = {
    { "defer",   cmd_defer_entry },
    { "queues",  dq_cli_queues },
    { "list",    dq_cli_list },
    { "show",    dq_cli_show },
    { "retry",   dq_cli_retry },
    { "requeue", dq_cli_retry },
    { "requeue-all", dq_cli_retry },
    { "delete",  dq_cli_delete },
    { "purge",   dq_cli_purge },
    { "pause",   dq_cli_pause },
    { "resume",  dq_cli_pause },
    { "forget",  dq_cli_forget },
    { "migrate", dq_cli_migrate },
    { "unlist",  dq_cli_unlist },
    { "workers", dq_cli_workers },
    { "config",  dq_cli_config },
    { "queue",   dq_cli_queue_cmd },
    { "stats",   cmd_stats },
    { "dead",    cmd_dead },
    { "error",   cmd_error },
};

int
main(int argc, char **argv)
{
    const char       *address = getenv("DEFERRED_REDIS");
    dq_client_opts_t  o = { 0 };
    dq_cli_t          cli = { 0 };
    char             *end, **args;
    int               i, n = 0, ret;
    size_t            k;

    o.password = getenv("DEFERRED_REDIS_PASSWORD");
    if (address == NULL || address[0] == '\0') {
        address = "127.0.0.1:6379";
    }
    /* global options, before the command; --json anywhere */
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage_to(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            cli.json = 1;
            continue;
        }
        if (i + 1 >= argc) {
            return usage();
        }
        if (strcmp(argv[i], "-r") == 0 || strcmp(argv[i], "--redis") == 0) {
            address = argv[++i];
        } else if (strcmp(argv[i], "-a") == 0
                   || strcmp(argv[i], "--password") == 0)
        {
            o.password = argv[++i];
        } else if (strcmp(argv[i], "--db") == 0) {
            o.db = (int) strtol(argv[++i], &end, 10);
            if (*end || o.db < 0) {
                return dq_cli_usage_error("--db: a database number, not "
                                          "\"%s\"", argv[i]);
            }
        } else {
            return dq_cli_usage_error("unknown option %s", argv[i]);
        }
    }
    if (i >= argc) {
        return usage();
    }
    if (strcmp(argv[i], "sign") == 0) {
        return cmd_sign(argc - i - 1, argv + i + 1);
    }
    if (o.password && o.password[0] == '\0') {
        o.password = NULL;
    }
    args = calloc((size_t) (argc - i) + 1, sizeof(*args));
    if (args == NULL) {
        return 1;
    }
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && n > 0
            && strcmp(args[0], "defer") != 0)
        {
            cli.json = 1;
        } else {
            args[n++] = argv[i];
        }
    }
    cli.c = dq_client_new(address, &o);
    if (cli.c == NULL) {
        fprintf(stderr, "deferred-cli: out of memory\n");
        free(args);
        return 1;
    }
    ret = -1;
    for (k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
        if (strcmp(args[0], commands[k].name) == 0) {
            ret = commands[k].run(&cli, n, args);
            break;
        }
    }
    if (ret < 0) {
        ret = dq_cli_usage_error("unknown command \"%s\"", args[0]);
    }
    dq_client_free(cli.c);
    free(args);
    return ret;
}
