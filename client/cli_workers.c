/*
 * deferred-cli workers: the live worker children, from their heartbeats
 * (DQ_WORKERS_KEY + DQ_WORKER_KEY_PREFIX<id>, written by worker/live.c).
 * A worker whose heartbeat expired is not listed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *
dq__field(const redisReply *h, const char *name)
{
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements;
         i += 2)
    {
        if (strcmp(h->element[i]->str, name) == 0) {
            return h->element[i + 1]->str;
        }
    }
    return NULL;
}

int
dq_cli_workers(dq_cli_t *cli, int argc, char **argv)
{
    char            nowbuf[24], key[256];
    const char     *a[] = { "ZRANGEBYSCORE", DQ_WORKERS_KEY, nowbuf, "+inf" };
    static const char *num[] = { "pid", "child", "running", "done", "failed",
                                 "started_ms", "beat_ms" };
    redisReply     *ids, *h;
    json_t         *out = NULL;
    dq_cli_table_t  t;
    int64_t         now;
    size_t          i, k;

    (void) argv;
    if (argc > 1) {
        return dq_cli_usage_error("workers takes no argument");
    }
    if ((now = dq_cli_now(cli)) < 0) {
        return DQ_CLI_ERROR;
    }
    snprintf(nowbuf, sizeof(nowbuf), "%lld", (long long) now);
    if ((ids = dq_cli_cmd(cli, 4, a)) == NULL) {
        return DQ_CLI_ERROR;
    }
    if (cli->json) {
        out = json_array();
    } else {
        dq_cli_table_init(&t, 9, "WORKER", "HOST", "PID", "QUEUES",
                          "RUNNING", "DONE", "FAILED", "STARTED",
                          "LAST_BEAT_MS_AGO");
    }
    for (i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
        const char *hg[] = { "HGETALL", key };
        const char *v;

        snprintf(key, sizeof(key), "%s%s", DQ_WORKER_KEY_PREFIX,
                 ids->element[i]->str);
        if ((h = dq_cli_cmd(cli, 2, hg)) == NULL) {
            freeReplyObject(ids);
            json_decref(out);
            return DQ_CLI_ERROR;
        }
        if (h->elements == 0) {     /* expired between the two reads */
            freeReplyObject(h);
            continue;
        }
        if (out) {
            json_t *o = json_object();

            json_object_set_new(o, "id", json_string(ids->element[i]->str));
            json_object_set_new(o, "host", json_string(
                (v = dq__field(h, "host")) ? v : ""));
            for (k = 0; k < sizeof(num) / sizeof(num[0]); k++) {
                v = dq__field(h, num[k]);
                json_object_set_new(o, num[k], json_integer(
                    v ? strtoll(v, NULL, 10) : 0));
            }
            json_object_set_new(o, "queues", json_string(
                (v = dq__field(h, "queues")) ? v : ""));
            json_array_append_new(out, o);
        } else {
            char tb[32];

#define F(n) ((v = dq__field(h, n)) ? v : "-")
            dq_cli_table_cell(&t, "%s", ids->element[i]->str);
            dq_cli_table_cell(&t, "%s", F("host"));
            dq_cli_table_cell(&t, "%s", F("pid"));
            dq_cli_table_cell(&t, "%s", F("queues"));
            dq_cli_table_cell(&t, "%s", F("running"));
            dq_cli_table_cell(&t, "%s", F("done"));
            dq_cli_table_cell(&t, "%s", F("failed"));
            v = dq__field(h, "started_ms");
            dq_cli_table_cell(&t, "%s",
                              dq_cli_time(v ? strtoll(v, NULL, 10) : 0, tb));
            v = dq__field(h, "beat_ms");
            dq_cli_table_cell(&t, "%lld", v ? (long long) (now
                              - strtoll(v, NULL, 10)) : -1LL);
#undef F
        }
        freeReplyObject(h);
    }
    freeReplyObject(ids);
    if (out) {
        dq_cli_print_json(out);
    } else {
        dq_cli_table_print(&t);
    }
    return DQ_CLI_OK;
}
