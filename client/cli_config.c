/*
 * deferred-cli config: queue configuration stored in Redis, the fleet's
 * one source of truth (App Engine's queue.yaml, deployed once).
 *
 *   config apply FILE [--dry-run]   this project's `queue NAME { ... }`
 *                                   blocks (read by the worker's own
 *                                   parser, conf/config_file.c: the same
 *                                   syntax, names and errors), or App
 *                                   Engine's queue.yaml (translated here;
 *                                   what cannot be honoured is refused)
 *   config show [QUEUE]             effective settings per queue: applied,
 *                                   or "worker files" when nothing is
 *   config clear QUEUE...           back to each worker's own file
 *
 * Each queue's settings go to its conf hash in one script call
 * (lib/lua/configure.lua, fields DQ_QCONF_FIELDS); the claim script and
 * every worker read them from there (worker/live.c refreshes them with
 * its heartbeat). A file is checked whole before anything is written.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client_impl.h"
#include "config.h"

/* ------------------------------------------------------------ queue.yaml */

static int
dq__yaml_err(char *err, size_t n, int line, const char *fmt, const char *a)
{
    char msg[300];

    snprintf(msg, sizeof(msg), fmt, a);
    snprintf(err, n, "line %d: %s", line, msg);
    return -1;
}

static char *
dq__trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    e = s + strlen(s);
    while (e > s && isspace((unsigned char) e[-1])) {
        *--e = '\0';
    }
    if ((*s == '"' || *s == '\'') && e - s >= 2 && e[-1] == *s) {
        e[-1] = '\0';
        s++;
    }
    return s;
}

/* frees the parser's copy after the message (which may point into it)
 * was written */
static int
dq__yfail(char *copy, int rc)
{
    free(copy);
    return rc;
}

#define DQ__YFAIL(...)                                                  \
    return dq__yfail(copy, dq__yaml_err(err, errlen, ln, __VA_ARGS__))

/* seconds (float) -> "NNNms"; below 1 ms is 1 ms (the finest backoff the
 * scripts keep; 0 would retry in a hot loop) */
static int
dq__secs(const char *v, char *out, size_t n)
{
    char      *end;
    double     d = strtod(v, &end);
    long long  ms;

    if (end == v || *end || !(d >= 0) || d > 1e9) {
        return -1;
    }
    ms = llround(d * 1000);
    snprintf(out, n, "%lldms", ms < 1 ? 1 : ms);
    return 0;
}

/* a decimal integer in [min, max] (the queue.yaml counts) */
static int
dq__yint(const char *v, long long min, long long max)
{
    char      *end;
    long long  n;

    if (!isdigit((unsigned char) v[0]) && v[0] != '-') {
        return -1;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    return (end == v || *end || errno || n < min || n > max) ? -1 : 0;
}

/*
 * The queue.yaml subset App Engine documents, translated into this
 * project's queue blocks (appended to out). Refused: target (a worker
 * serving the queue runs its tasks, there is no service to route to),
 * mode: pull, acl, total_storage_limit, anything unknown.
 */
typedef struct dq__yentry_s dq__yentry_t;
static int dq__yaml_translate_entries(const char *text, FILE *out,
    dq__yentry_t *e, char *err, size_t errlen);

/* one queue entry: its settings are collected until its name is known */
struct dq__yentry_s {
    FILE   *m;
    char   *buf;
    size_t  len;
    char    name[DQ_QUEUE_NAME_MAX + 1];
    int     line;
};

static int
dq__yentry_end(dq__yentry_t *e, FILE *out, char *err, size_t errlen)
{
    int rc = 0;

    if (e->m == NULL) {
        return 0;
    }
    fclose(e->m);
    e->m = NULL;
    if (e->name[0] == '\0') {
        rc = dq__yaml_err(err, errlen, e->line, "queue entry without a "
                          "name%s", "");
    } else {
        fprintf(out, "queue %s {\n%.*s}\n", e->name, (int) e->len,
                e->buf ? e->buf : "");
    }
    free(e->buf);
    e->buf = NULL;
    e->len = 0;
    e->name[0] = '\0';
    return rc;
}

static int
dq__yaml_translate(const char *text, FILE *out, char *err, size_t errlen)
{
    dq__yentry_t entry = { NULL, NULL, 0, "", 0 };
    FILE       *eo;
    int         rc;

    rc = dq__yaml_translate_entries(text, out, &entry, err, errlen);
    if (rc == 0) {
        rc = dq__yentry_end(&entry, out, err, errlen);
    } else if (entry.m) {
        eo = entry.m;
        fclose(eo);
        free(entry.buf);
    }
    return rc;
}

static int
dq__yaml_translate_entries(const char *text, FILE *out, dq__yentry_t *e,
    char *err, size_t errlen)
{
    char       *copy = strdup(text), *line, *save = NULL, *k, *v, *c;
    int         ln = 0, in_queue = 0, in_retry = 0, open = 0;
    int         item_indent = -1, retry_indent = -1, indent;
    char        val[64];
    double      rate;
    int64_t     ms;

    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
    {
        ln++;
        /* comments: a '#' outside quotes */
        for (c = line; *c; c++) {
            if (*c == '"' || *c == '\'') {
                char q = *c;
                while (c[1] && c[1] != q) {
                    c++;
                }
                if (c[1]) {
                    c++;
                }
            } else if (*c == '#') {
                *c = '\0';
                break;
            }
        }
        for (indent = 0; line[indent] == ' '; indent++) {
        }
        if (line[indent] == '\t') {
            DQ__YFAIL("tabs are not YAML "
                                "indentation%s", "");
        }
        if (line[indent] == '\0') {
            continue;
        }
        k = line + indent;
        /* App Engine writes the list at column 0: "queue:\n- name: x" */
        if (indent == 0 && !(in_queue && k[0] == '-'
                             && (k[1] == ' ' || k[1] == '\0')))
        {
            in_queue = in_retry = 0;
            if (strncmp(k, "queue:", 6) == 0 && *dq__trim(k + 6) == '\0') {
                in_queue = 1;
                continue;
            }
            if (strncmp(k, "total_storage_limit:", 20) == 0) {
                DQ__YFAIL("total_storage_limit "
                                    "cannot be honoured (Redis' maxmemory "
                                    "bounds storage)%s", "");
            }
            DQ__YFAIL("unknown top-level key "
                                "\"%s\" (expected queue:)", k);
        }
        if (!in_queue) {
            DQ__YFAIL("unexpected \"%s\"", k);
        }
        if (k[0] == '-' && (k[1] == ' ' || k[1] == '\0')) {
            /* a new queue entry */
            if (dq__yentry_end(e, out, err, errlen) != 0) {
                free(copy);
                return -1;
            }
            k = k + 1;
            while (*k == ' ') {
                k++;
            }
            item_indent = (int) (k - line);
            in_retry = 0;
            e->m = open_memstream(&e->buf, &e->len);
            e->line = ln;
            if (e->m == NULL) {
                free(copy);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            open = 1;
            if (*k == '\0') {
                continue;
            }
            indent = item_indent;
        } else if (in_retry && indent > retry_indent) {
            /* a retry_parameters field */
            v = strchr(k, ':');
            if (v == NULL) {
                DQ__YFAIL("expected key: value, "
                                    "not \"%s\"", k);
            }
            *v++ = '\0';
            v = dq__trim(v);
            k = dq__trim(k);
            if (strcmp(k, "task_retry_limit") == 0) {
                if (dq__yint(v, 0, 1000000000) != 0) {
                    DQ__YFAIL("task_retry_limit: a count >= 0, not \"%s\"",
                              v);
                }
                fprintf(e->m, "    retry_limit %s;\n", v);
            } else if (strcmp(k, "task_age_limit") == 0) {
                if (dq_conf_parse_time(v, &ms) != 0) {
                    DQ__YFAIL("task_age_limit: "
                                        "not a time: \"%s\"", v);
                }
                fprintf(e->m, "    age_limit %lldms;\n", (long long) ms);
            } else if (strcmp(k, "min_backoff_seconds") == 0
                       || strcmp(k, "max_backoff_seconds") == 0)
            {
                if (dq__secs(v, val, sizeof(val)) != 0) {
                    DQ__YFAIL("not a number of "
                                        "seconds: \"%s\"", v);
                }
                fprintf(e->m, "    %s %s;\n", k[1] == 'i' ? "min_backoff"
                                                          : "max_backoff",
                        val);
            } else if (strcmp(k, "max_doublings") == 0) {
                if (dq__yint(v, 0, 1000) != 0) {
                    DQ__YFAIL("max_doublings: a count >= 0, not \"%s\"", v);
                }
                fprintf(e->m, "    max_doublings %s;\n", v);
            } else {
                DQ__YFAIL("unknown "
                                    "retry_parameters key \"%s\"", k);
            }
            continue;
        }
        if (!open || indent != item_indent) {
            DQ__YFAIL("unexpected indentation at "
                                "\"%s\"", k);
        }
        in_retry = 0;
        v = strchr(k, ':');
        if (v == NULL) {
            DQ__YFAIL("expected key: value, not "
                                "\"%s\"", k);
        }
        *v++ = '\0';
        v = dq__trim(v);
        k = dq__trim(k);
        if (strcmp(k, "name") == 0) {
            if (!dq_queue_name_valid(dq_str_c(v))) {
                DQ__YFAIL("invalid queue name "
                                    "\"%s\"", v);
            }
            snprintf(e->name, sizeof(e->name), "%s", v);
        } else if (strcmp(k, "rate") == 0) {
            /* only numbers: "unlimited"/"off" are this project's words */
            if (!isdigit((unsigned char) v[0])
                || dq_conf_parse_rate(v, &rate) != 0)
            {
                DQ__YFAIL("rate: expected N/s, "
                                    "N/m, N/h or N/d, not \"%s\"", v);
            }
            if (rate <= 0) {
                /* App Engine: a queue with rate 0 runs nothing (paused);
                 * here rate 0 would mean unlimited */
                DQ__YFAIL("rate %s pauses the queue in App Engine: remove "
                          "the rate and pause it (deferred-cli pause "
                          "QUEUE) instead", v);
            }
            fprintf(e->m, "    rate %s;\n", v);
        } else if (strcmp(k, "bucket_size") == 0) {
            if (dq__yint(v, 1, 1000000) != 0) {
                DQ__YFAIL("bucket_size: an integer >= 1, not \"%s\"", v);
            }
            fprintf(e->m, "    bucket_size %s;\n", v);
        } else if (strcmp(k, "max_concurrent_requests") == 0) {
            if (dq__yint(v, 1, 1000000) != 0) {
                DQ__YFAIL("max_concurrent_requests: an integer >= 1 (App "
                          "Engine has no \"unlimited\" value: leave it "
                          "out), not \"%s\"", v);
            }
            fprintf(e->m, "    max_concurrent %s;\n", v);
        } else if (strcmp(k, "retry_parameters") == 0 && *v == '\0') {
            in_retry = 1;
            retry_indent = indent;
        } else if (strcmp(k, "mode") == 0 && strcmp(v, "push") == 0) {
            /* the only mode there is */
        } else if (strcmp(k, "mode") == 0) {
            DQ__YFAIL("mode %s cannot be honoured "
                                "(only push queues: workers run the tasks)",
                                v);
        } else if (strcmp(k, "target") == 0) {
            DQ__YFAIL("target \"%s\" cannot be "
                                "honoured: every worker that serves the "
                                "queue runs its tasks (serve the queue only "
                                "from the workers you mean)", v);
        } else if (strcmp(k, "acl") == 0) {
            DQ__YFAIL("acl cannot be honoured "
                                "(restrict the module's locations and "
                                "Redis instead)%s", "");
        } else {
            DQ__YFAIL("unknown queue key \"%s\"",
                                k);
        }
    }
    free(copy);
    return 0;
}

/* ------------------------------------------------------------ apply */

typedef struct {
    const char *name;
    char        v[DQ_QCONF_NFIELDS][48];
} dq__qset_conf_t;

static void
dq__resolve(const dq_queue_conf_t *q, const char *source, int64_t now,
            char v[DQ_QCONF_NFIELDS][48])
{
    dq_retry_t r;

    dq_retry_merge(&r, NULL, &q->retry);
    snprintf(v[0], 48, "1");
    snprintf(v[1], 48, "%.6g", q->rate);
    snprintf(v[2], 48, "%d", q->bucket_size);
    snprintf(v[3], 48, "%d", q->max_concurrent);
    snprintf(v[4], 48, "%lld", (long long) r.retry_limit);
    snprintf(v[5], 48, "%lld", (long long) r.age_limit_ms);
    snprintf(v[6], 48, "%lld", (long long) r.min_backoff_ms);
    snprintf(v[7], 48, "%lld", (long long) r.max_backoff_ms);
    snprintf(v[8], 48, "%lld", (long long) r.max_doublings);
    snprintf(v[9], 48, "%lld", (long long) q->timeout_ms);
    snprintf(v[10], 48, "%lld", (long long) now);
    snprintf(v[11], 48, "%.47s", source);
}

static const char *const dq__fields[DQ_QCONF_NFIELDS] = DQ_QCONF_FIELDS;

static json_t *
dq__conf_json(const char *queue, char v[DQ_QCONF_NFIELDS][48], int applied)
{
    json_t *o = json_object();
    int     i;

    json_object_set_new(o, "queue", json_string(queue));
    json_object_set_new(o, "applied", json_boolean(applied));
    for (i = 1; applied && i < DQ_QCONF_NFIELDS; i++) {
        if (v[i][0] == '\0') {
            continue;           /* absent: the worker files' value */
        }
        if (i == 1) {
            json_object_set_new(o, dq__fields[i], json_real(atof(v[i])));
        } else if (i == 11) {
            json_object_set_new(o, dq__fields[i], json_string(v[i]));
        } else {
            json_object_set_new(o, dq__fields[i],
                                json_integer(strtoll(v[i], NULL, 10)));
        }
    }
    return o;
}

/* Shard 0's limits are not its share of the whole queue's (written by a
 * deferred-cli built before sharded queues: DQ_QCONF_SPLIT). */
static void
dq__unsplit_warn(const char *queue, int unsplit)
{
    if (unsplit) {
        fprintf(stderr, "deferred-cli: warning: queue %s: shard 0's "
                "max_concurrent or rate is not its share of the whole "
                "queue's (written by a tool that does not split, such as a "
                "deferred-cli built before sharded queues?); the sums "
                "shown may be wrong: apply the limits again with this "
                "deferred-cli\n", queue);
    }
}

static void
dq__conf_row(dq_cli_table_t *t, const char *queue,
             char v[DQ_QCONF_NFIELDS][48], int applied)
{
    char tb[32];

    dq_cli_table_cell(t, "%s", queue);
    if (!applied) {
        dq_cli_table_cell(t, "worker files");
        for (int i = 0; i < 8; i++) {
            dq_cli_table_cell(t, "-");
        }
        return;
    }
    dq_cli_table_cell(t, "applied %s", dq_cli_time(strtoll(v[10], NULL, 10),
                                                   tb));
    /* absent (only some fields applied): the worker files' value */
    dq_cli_table_cell(t, "%s", v[1][0] == '\0' ? "(worker files)"
                               : atof(v[1]) > 0 ? v[1] : "unlimited");
    dq_cli_table_cell(t, "%s", v[2][0] == '\0' ? "(worker files)"
                               : strcmp(v[2], "0") ? v[2] : "auto");
    dq_cli_table_cell(t, "%s", v[3][0] == '\0' ? "(worker files)"
                               : strcmp(v[3], "0") ? v[3] : "unlimited");
    dq_cli_table_cell(t, "%s", v[4]);
    dq_cli_table_cell(t, "%s", strcmp(v[5], "0") > 0 ? v[5] : "none");
    dq_cli_table_cell(t, "%s-%s", v[6], v[7]);
    dq_cli_table_cell(t, "%s", v[8]);
    dq_cli_table_cell(t, "%s", strcmp(v[9], "0") ? v[9] : "off");
}

static void
dq__conf_table(dq_cli_table_t *t)
{
    dq_cli_table_init(t, 10, "QUEUE", "SOURCE", "RATE/S", "BUCKET",
                      "MAX_CONCURRENT", "RETRY_LIMIT", "AGE_LIMIT_MS",
                      "BACKOFF_MS", "DOUBLINGS", "TIMEOUT_MS");
}

static int
dq__config_apply(dq_cli_t *cli, int argc, char **argv)
{
    const char       *file = NULL, *base;
    int               dry = 0, i, rc, yaml;
    dq_worker_conf_t  conf;
    char              err[DQ_CONF_ERR_SIZE], tmp[] = "/tmp/dq-queue-XXXXXX";
    char             *text = NULL;
    size_t            len = 0, k;
    FILE             *f;
    int64_t           now;
    json_t           *out = NULL;
    dq_cli_table_t    t;

    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry = 1;
        } else if (file == NULL) {
            file = argv[i];
        } else {
            return dq_cli_usage_error("config apply FILE [--dry-run]");
        }
    }
    if (file == NULL) {
        return dq_cli_usage_error("config apply FILE [--dry-run]");
    }
    f = fopen(file, "r");
    if (f == NULL) {
        fprintf(stderr, "deferred-cli: cannot open %s\n", file);
        return DQ_CLI_USAGE;
    }
    {
        char   buf[4096];
        size_t n;

        while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
            char *nt = realloc(text, len + n + 1);
            if (nt == NULL || len > (16u << 20)) {
                free(nt ? nt : text);
                fclose(f);
                return DQ_CLI_ERROR;
            }
            text = nt;
            memcpy(text + len, buf, n);
            len += n;
        }
        fclose(f);
        if (text == NULL) {
            text = strdup("");
        }
        text[len] = '\0';
    }
    base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    yaml = strstr(base, ".yaml") || strstr(base, ".yml")
           || strncmp(text, "queue:", 6) == 0 || strstr(text, "\nqueue:");

    memset(&conf, 0, sizeof(conf));
    dq_conf_defaults(&conf);
    if (yaml) {
        /* translated into queue blocks, then read like any worker file */
        char  *blocks = NULL;
        size_t blen = 0;
        FILE  *m = open_memstream(&blocks, &blen);
        int    fd;

        if (m == NULL || dq__yaml_translate(text, m, err, sizeof(err)) != 0)
        {
            if (m) {
                fclose(m);
            }
            free(blocks);
            free(text);
            dq_conf_free(&conf);
            fprintf(stderr, "deferred-cli: %s: %s\n", file, err);
            return DQ_CLI_USAGE;
        }
        fclose(m);
        if ((fd = mkstemp(tmp)) < 0
            || write(fd, blocks, blen) != (ssize_t) blen
            || close(fd) != 0)
        {
            free(blocks);
            free(text);
            dq_conf_free(&conf);
            fprintf(stderr, "deferred-cli: %s: %s\n", file,
                    err[0] ? err : "cannot write a temporary file");
            unlink(tmp);
            return DQ_CLI_USAGE;
        }
        free(blocks);
        rc = dq_conf_load(&conf, tmp, err, sizeof(err));
        unlink(tmp);
        if (rc != 0) {
            /* every value was checked above; should the reader still
             * refuse one, name the yaml file, not the temporary one */
            char  *at = strstr(err, tmp), msg[DQ_CONF_ERR_SIZE];

            if (at) {
                snprintf(msg, sizeof(msg), "%.*s%s (translated)%s",
                         (int) (at - err), err, file, at + strlen(tmp));
                snprintf(err, sizeof(err), "%s", msg);
            }
        }
    } else {
        rc = dq_conf_load(&conf, file, err, sizeof(err));
    }
    free(text);
    if (rc != 0) {
        fprintf(stderr, "deferred-cli: %s\n", err);
        dq_conf_free(&conf);
        return DQ_CLI_USAGE;
    }
    if (conf.nqueues == 0) {
        fprintf(stderr, "deferred-cli: %s: no queue in it\n", file);
        dq_conf_free(&conf);
        return DQ_CLI_USAGE;
    }
    if ((now = dry ? (int64_t) time(NULL) * 1000 : dq_cli_now(cli)) < 0) {
        dq_conf_free(&conf);
        return DQ_CLI_ERROR;
    }
    if (cli->json) {
        out = json_array();
    } else {
        dq__conf_table(&t);
    }
    for (k = 0; k < conf.nqueues; k++) {
        char         v[DQ_QCONF_NFIELDS][48];
        const char  *sadd[] = { "SADD", DQ_QUEUES_KEY, conf.queues[k].name };

        dq__resolve(&conf.queues[k], base, now, v);
        if (!dry) {
            /* every shard of a sharded queue, the limits split
             * (client_shards.c) */
            rc = dq__queue_apply(cli->c, dq_str_c(conf.queues[k].name), v);
            if (rc != DQ_OK) {
                json_decref(out);
                if (!cli->json) {
                    dq_cli_table_print(&t);
                }
                dq_conf_free(&conf);
                return dq_cli_fail(cli, rc);
            }
            freeReplyObject(dq_cli_cmd(cli, 3, sadd));
        }
        if (out) {
            json_array_append_new(out, dq__conf_json(conf.queues[k].name, v,
                                                     1));
        } else {
            dq__conf_row(&t, conf.queues[k].name, v, 1);
        }
    }
    if (out) {
        dq_cli_print_json(out);
    } else {
        dq_cli_table_print(&t);
        printf("%s %zu queues from %s%s\n", dry ? "would apply" : "applied",
               conf.nqueues, file, dry ? " (dry run: nothing written)" : "");
    }
    dq_conf_free(&conf);
    return DQ_CLI_OK;
}

/* -------------------------------------------------------- show, clear */

static int
dq__config_show(dq_cli_t *cli, int argc, char **argv)
{
    const char     *smembers[] = { "SMEMBERS", DQ_QUEUES_KEY };
    redisReply     *names = NULL;
    json_t         *out = NULL;
    dq_cli_table_t  t;
    size_t          i, n;
    char          **qs;

    if (argc > 3) {
        return dq_cli_usage_error("config show [QUEUE]");
    }
    if (argc == 3) {
        if (!dq_cli_queue(argv[2])) {
            return DQ_CLI_USAGE;
        }
        n = 1;
        qs = &argv[2];
    } else {
        if ((names = dq_cli_cmd(cli, 2, smembers)) == NULL) {
            return DQ_CLI_ERROR;
        }
        n = names->elements;
        qs = calloc(n + 1, sizeof(*qs));
        for (i = 0; qs && i < n; i++) {
            qs[i] = names->element[i]->str;
        }
        if (qs == NULL) {
            freeReplyObject(names);
            return DQ_CLI_ERROR;
        }
    }
    if (cli->json) {
        out = json_array();
    } else {
        dq__conf_table(&t);
    }
    for (i = 0; i < n; i++) {
        char        v[DQ_QCONF_NFIELDS][48];
        unsigned    nshards = 1;
        int         rc, applied, unsplit;

        if (!dq_queue_name_valid(dq_str_c(qs[i]))) {
            continue;
        }
        /* a sharded queue: the whole queue's limits (the shards' sums) */
        rc = dq__queue_settings(cli->c, dq_str_c(qs[i]), v, &nshards,
                                &unsplit);
        if (rc != DQ_OK) {
            dq_cli_fail(cli, rc);
            break;
        }
        dq__unsplit_warn(qs[i], unsplit);
        applied = v[0][0] != '\0';
        if (out) {
            json_t *o = dq__conf_json(qs[i], v, applied);

            json_object_set_new(o, "shards", json_integer(nshards));
            json_array_append_new(out, o);
        } else {
            dq__conf_row(&t, qs[i], v, applied);
        }
    }
    if (out) {
        dq_cli_print_json(out);
    } else {
        dq_cli_table_print(&t);
    }
    if (names) {
        free(qs);
        freeReplyObject(names);
    }
    return i == n ? DQ_CLI_OK : DQ_CLI_ERROR;
}

static int
dq__config_clear(dq_cli_t *cli, int argc, char **argv)
{
    int i;

    if (argc < 3) {
        return dq_cli_usage_error("config clear QUEUE...");
    }
    for (i = 2; i < argc; i++) {
        if (!dq_cli_queue(argv[i])) {
            return DQ_CLI_USAGE;
        }
    }
    for (i = 2; i < argc; i++) {
        int rc = dq__queue_clear(cli->c, dq_str_c(argv[i]));

        if (rc != DQ_OK) {
            return dq_cli_fail(cli, rc);
        }
        if (!cli->json) {
            printf("cleared %s: each worker's own file applies\n", argv[i]);
        }
    }
    return DQ_CLI_OK;
}

int
dq_cli_config(dq_cli_t *cli, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "apply") == 0) {
        return dq__config_apply(cli, argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "show") == 0) {
        return dq__config_show(cli, argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "clear") == 0) {
        return dq__config_clear(cli, argc, argv);
    }
    return dq_cli_usage_error("config apply FILE [--dry-run] | config show "
                              "[QUEUE] | config clear QUEUE...");
}

/* ------------------------------------------------------------- queue */

/* "queue QUEUE [--shards N] [--rate R] [--max-concurrent M]": set (or,
 * without options, show) a queue's shard count and whole-queue limits
 * (dq_queue_set: the limits split across the shards). */
int
dq_cli_queue_cmd(dq_cli_t *cli, int argc, char **argv)
{
    dq_queue_set_t  set = DQ_QUEUE_SET_INIT;
    char            v[DQ_QCONF_NFIELDS][48], *end;
    unsigned        n = 1;
    long long       x;
    int             i, rc, unsplit;

    if (argc < 2 || !dq_cli_queue(argv[1])) {
        return argc < 2 ? dq_cli_usage_error("queue QUEUE [--shards N] "
                                             "[--rate R] [--max-concurrent "
                                             "M]")
                        : DQ_CLI_USAGE;
    }
    for (i = 2; i < argc; i++) {
        if (i + 1 >= argc) {
            return dq_cli_usage_error("%s: a value is missing", argv[i]);
        }
        if (strcmp(argv[i], "--shards") == 0) {
            x = strtoll(argv[++i], &end, 10);
            if (*end || end == argv[i] || x < 1 || x > DQ_MAX_SHARDS) {
                return dq_cli_usage_error("--shards: 1 to %d, not \"%s\"",
                                          DQ_MAX_SHARDS, argv[i]);
            }
            set.shards = (unsigned) x;
        } else if (strcmp(argv[i], "--rate") == 0) {
            set.rate = strtod(argv[++i], &end);
            if ((*end && strcmp(end, "/s") != 0) || end == argv[i]
                || !(set.rate >= 0) || isinf(set.rate))
            {
                return dq_cli_usage_error("--rate: tasks per second >= 0 "
                                          "(0 unlimited), not \"%s\"",
                                          argv[i]);
            }
        } else if (strcmp(argv[i], "--max-concurrent") == 0) {
            x = strtoll(argv[++i], &end, 10);
            if (*end || end == argv[i] || x < 0 || x > 1000000000) {
                return dq_cli_usage_error("--max-concurrent: an integer >= 0 "
                                          "(0 unlimited), not \"%s\"",
                                          argv[i]);
            }
            set.max_concurrent = x;
        } else {
            return dq_cli_usage_error("queue: unknown option %s", argv[i]);
        }
    }
    if (argc > 2) {
        rc = dq_queue_set(cli->c, argv[1], &set);
        if (rc != DQ_OK) {
            return dq_cli_fail(cli, rc);
        }
    }
    rc = dq__queue_settings(cli->c, dq_str_c(argv[1]), v, &n, &unsplit);
    if (rc != DQ_OK) {
        return dq_cli_fail(cli, rc);
    }
    dq__unsplit_warn(argv[1], unsplit);
    if (cli->json) {
        json_t *o = dq__conf_json(argv[1], v, v[0][0] != '\0');

        json_object_set_new(o, "shards", json_integer(n));
        dq_cli_print_json(o);
    } else {
        printf("queue %s shards %u rate %s max_concurrent %s\n", argv[1], n,
               v[0][0] == '\0' || v[1][0] == '\0' ? "(worker files)"
               : atof(v[1]) > 0 ? v[1] : "unlimited",
               v[0][0] == '\0' || v[3][0] == '\0' ? "(worker files)"
               : strtoll(v[3], NULL, 10) > 0 ? v[3] : "unlimited");
    }
    return DQ_CLI_OK;
}
