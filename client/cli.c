/*
 * deferred-cli — defer tasks and inspect queues from the shell, through
 * the C client (include/deferred/client.h).
 *
 * Global options, before the command: -r ADDR (HOST, HOST:PORT,
 * [IPV6]:PORT or unix:PATH, as everywhere: dq_addr_parse), -a PASSWORD
 * (else $DEFERRED_REDIS_PASSWORD), --db N. Every command goes through one
 * dq_client_t: one connect, AUTH, SELECT and NOSCRIPT fallback.
 *
 *   deferred-cli [-r ADDR] defer [OPTIONS] FUNC [ARG...]
 *   deferred-cli [-r ADDR] stats [QUEUE]
 *   deferred-cli [-r ADDR] dead [QUEUE]          dead ids and their errors
 *   deferred-cli [-r ADDR] error QUEUE ID        last error of a task
 *   deferred-cli [-r ADDR] requeue QUEUE ID      re-run a dead task
 *   deferred-cli [-r ADDR] requeue-all QUEUE [TEXT]
 *                                   re-run every dead task (whose last
 *                                   error contains TEXT)
 *   deferred-cli sign [-m METHOD] -s SECRET_FILE... URI [BODY_FILE]
 *                     the X-Deferred-Signature value for an HTTP request
 *                     (body from BODY_FILE or stdin; no Redis involved)
 *
 * defer options: -q QUEUE, -n NAME, --id ID (idempotent: the task's id), -u URL, --countdown MS, --eta MS,
 * -H NAME:VALUE (repeatable), -k KEY=VALUE (keyword argument, repeatable), --retry-limit N, --age-limit MS,
 * --min-backoff MS, --max-backoff MS, --max-doublings N, --count N
 * (defer N copies, pipelined). ARG and VALUE: an integer literal is sent as an
 * integer, "d:1.5" as a double, "b:true"/"b:false" as a boolean, "nil" as
 * nil, "s:TEXT" as the string TEXT, anything else as a string.
 * Prints "<id> <eta_ms>" per task. Exit: 0 ok, 2 usage/invalid,
 * 3 duplicate name, 4 tombstoned name, 1 other errors.
 *
 * The dead listing reads the dead set directly (ZRANGE; the key name from
 * dq_key_format) since the client API has no listing call.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <deferred/client.h>
#include "client_impl.h"

#define MAX_HEADERS 32

static int
usage(void)
{
    fprintf(stderr,
        "usage: deferred-cli [-r ADDR] [-a PASSWORD] [--db N] COMMAND ...\n"
        "  ADDR: HOST, HOST:PORT, [IPV6]:PORT or unix:PATH "
        "(default 127.0.0.1:6379)\n"
        "  PASSWORD: Redis AUTH, empty for none (or "
        "$DEFERRED_REDIS_PASSWORD, kept out of ps)\n"
        "  defer [-q QUEUE] [-n NAME] [--id ID] [-u URL] [--countdown MS] [--eta MS]\n"
        "        [-H NAME:VALUE]... [-k KEY=VALUE]... [--retry-limit N]\n"
        "        [--age-limit MS]\n"
        "        [--min-backoff MS] [--max-backoff MS] [--max-doublings N]\n"
        "        [--count N] FUNC [ARG...]\n"
        "  stats [QUEUE]\n"
        "  dead [QUEUE]\n"
        "  error QUEUE ID\n"
        "  requeue QUEUE ID\n"
        "  requeue-all QUEUE [ERROR-TEXT]\n"
        "  sign [-m METHOD] -s SECRET_FILE... URI [BODY_FILE]\n");
    return 2;
}


static int exit_code(int rc);

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
        ret = exit_code(rc);
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
exit_code(int rc)
{
    switch (rc) {
    case DQ_OK:         return 0;
    case DQ_EINVAL:
    case DQ_ETOOBIG:    return 2;
    case DQ_EDUPLICATE: return 3;
    case DQ_ETOMBSTONE: return 4;
    default:            return 1;
    }
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
            for (k = 0; rc == DQ_OK && k < n; k++) {
                if (st[k] != DQ_OK) {
                    fprintf(stderr, "deferred-cli: task %lld: %s\n",
                            (long long) (done + (int64_t) k),
                            dq_strerror(st[k]));
                    ret = exit_code(st[k]);
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
        ret = exit_code(rc);
    }
    dq_args_free(args);

done:
    dq_args_free(kwargs);
    for (size_t k = 0; k < nh; k++) {
        free(hcopy[k]);
    }
    return ret;
}

static int
cmd_stats(dq_client_t *c, const char *queue)
{
    dq_queue_stats_t s;
    int              rc = dq_queue_stats(c, queue, &s);

    if (rc != DQ_OK) {
        fprintf(stderr, "deferred-cli: %s: %s\n", dq_strerror(rc),
                dq_client_errstr(c));
        return exit_code(rc);
    }
    printf("queue %s\nwaiting %lld\nrunning %lld\ndead %lld\nenqueued %lld\n"
           "done %lld\nretried %lld\ndead_total %lld\nreclaimed %lld\n"
           "released %lld\nunrunnable %lld\ndead_over_max %lld\n", queue,
           (long long) s.waiting, (long long) s.running, (long long) s.dead,
           (long long) s.enqueued, (long long) s.done, (long long) s.retried,
           (long long) s.dead_total, (long long) s.reclaimed,
           (long long) s.released, (long long) s.unrunnable,
           (long long) s.dead_over_max);
    return 0;
}

/* The dead ids, on the client's own connection (dq__ready: connect, AUTH,
 * SELECT as for every other call). */
static int
cmd_dead(dq_client_t *c, const char *queue)
{
    char          key[DQ_KEY_MAX], err[1024];
    redisReply   *r;
    size_t        klen, i;
    int           ret = 0, rc;

    klen = dq_key_format(key, sizeof(key), dq_str_c(queue), DQ_KEY_DEAD);
    if (klen == 0) {
        fprintf(stderr, "deferred-cli: invalid queue name \"%s\"\n", queue);
        return 2;
    }
    if ((rc = dq__ready(c)) != DQ_OK) {
        fprintf(stderr, "deferred-cli: %s\n", dq_client_errstr(c));
        return exit_code(rc);
    }
    {
        const char *argv[] = { "ZRANGE", key, "0", "-1" };
        size_t      len[] = { 6, klen, 1, 2 };

        r = redisCommandArgv(c->ctx, 4, argv, len);
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "deferred-cli: ZRANGE failed: %s\n",
                r ? (r->str ? r->str : "unexpected reply") : c->ctx->errstr);
        ret = 1;
    } else {
        for (i = 0; i < r->elements; i++) {
            const char *id = r->element[i]->str;

            if (dq_task_last_error(c, queue, id, err, sizeof(err)) != DQ_OK)
            {
                snprintf(err, sizeof(err), "-");
            }
            printf("%s %s\n", id, err);
        }
    }
    freeReplyObject(r);
    return ret;
}

int
main(int argc, char **argv)
{
    const char       *address = "127.0.0.1:6379";
    dq_client_t      *c;
    dq_client_opts_t  opts;
    int64_t           db;
    int               i = 1, ret;
    char              buf[1024];

    memset(&opts, 0, sizeof(opts));
    opts.password = getenv("DEFERRED_REDIS_PASSWORD");
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "-r") == 0) {
            address = argv[i + 1];
        } else if (strcmp(argv[i], "-a") == 0) {
            opts.password = argv[i + 1];
        } else if (strcmp(argv[i], "--db") == 0) {
            if (parse_i64(argv[i + 1], &db) != 0 || db < 0 || db > INT_MAX) {
                fprintf(stderr, "deferred-cli: --db: not a database number: "
                        "\"%s\"\n", argv[i + 1]);
                return 2;
            }
            opts.db = (int) db;
        } else {
            return usage();
        }
    }
    if (i >= argc) {
        return usage();
    }
    if (strcmp(argv[i], "sign") == 0) {
        return cmd_sign(argc - i - 1, argv + i + 1);
    }
    c = dq_client_new(address, &opts);
    if (c == NULL) {
        fprintf(stderr, "deferred-cli: out of memory\n");
        return 1;
    }
    if (strcmp(argv[i], "defer") == 0) {
        ret = cmd_defer(c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "stats") == 0) {
        ret = cmd_stats(c, i + 1 < argc ? argv[i + 1] : DQ_DEFAULT_QUEUE);
    } else if (strcmp(argv[i], "dead") == 0) {
        ret = cmd_dead(c, i + 1 < argc ? argv[i + 1] : DQ_DEFAULT_QUEUE);
    } else if (strcmp(argv[i], "error") == 0 && i + 2 < argc) {
        ret = dq_task_last_error(c, argv[i + 1], argv[i + 2], buf,
                                 sizeof(buf));
        if (ret == DQ_OK) {
            printf("%s\n", buf);
        } else {
            fprintf(stderr, "deferred-cli: %s\n", dq_strerror(ret));
        }
        ret = exit_code(ret);
    } else if (strcmp(argv[i], "requeue") == 0 && i + 2 < argc) {
        ret = dq_requeue_dead(c, argv[i + 1], argv[i + 2]);
        if (ret != DQ_OK) {
            fprintf(stderr, "deferred-cli: %s: %s\n", dq_strerror(ret),
                    dq_client_errstr(c));
        }
        ret = exit_code(ret);
    } else if (strcmp(argv[i], "requeue-all") == 0 && i + 1 < argc) {
        int64_t n = 0, k = 0;

        ret = dq_requeue_dead_all(c, argv[i + 1],
                                  i + 2 < argc ? argv[i + 2] : NULL, &n, &k);
        if (ret != DQ_OK) {
            fprintf(stderr, "deferred-cli: %s: %s\n", dq_strerror(ret),
                    dq_client_errstr(c));
        } else {
            printf("%lld requeued, %lld left dead (name held by a live "
                   "task)\n", (long long) n, (long long) k);
        }
        ret = exit_code(ret);
    } else {
        ret = usage();
    }
    dq_client_free(c);
    return ret;
}
