/*
 * deferred-cli config: queue configuration stored in Redis, the fleet's
 * one source of truth (App Engine's queue.yaml, deployed once).
 *
 *   config apply FILE [--dry-run]   this project's `queue NAME { ... }`
 *                                   blocks (read by the worker's own
 *                                   parser, conf/config_file.c: the same
 *                                   syntax, names and errors), or App
 *                                   Engine's queue.yaml (translated by
 *                                   cli_yaml.c; what cannot be honoured
 *                                   is refused)
 *   config show [QUEUE]             effective settings per queue: applied,
 *                                   or "worker files" when nothing is
 *   config clear QUEUE...           back to each worker's own file
 *
 * Each queue's settings go to its conf hash in one script call
 * (lib/lua/configure.lua, fields DQ_QCONF_FIELDS); the claim script and
 * every worker read them from there (worker/live.c refreshes them with
 * its heartbeat). A file is checked whole before anything is written.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client_impl.h"
#include "config.h"

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

        if (m == NULL || dq_cli_yaml_translate(text, m, err, sizeof(err)) != 0)
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
        if ((qs = dq_cli_queue_names(cli, &names, &n)) == NULL) {
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
    int i, rc;

    if ((rc = dq_cli_queue_args(argc, argv, 2, "config clear")) != DQ_CLI_OK) {
        return rc;
    }
    for (i = 2; i < argc; i++) {
        rc = dq__queue_clear(cli->c, dq_str_c(argv[i]));
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
