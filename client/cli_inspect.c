/*
 * deferred-cli inspection: queues, list, show. Reads only, straight from
 * the queue's keys (names from dq_key_format), pipelined on the client's
 * connection; the writes are cli_actions.c's and cli_migrate.c's.
 *
 * States (dq_cli_state_t, cli.h): waiting = in the ETA set (due +
 * delayed), due = ETA <= Redis now, delayed = ETA later, running =
 * leased, dead = in the dead set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client_impl.h"

#define DQ_CLI_MAX_LIST  10000

static void
dq__key(char *buf, const char *queue, dq_key_kind_t kind)
{
    dq_key_format(buf, DQ_KEY_MAX, dq_str_c(queue), kind);
}

/* n commands pipelined on the client's connection; replies[i] are the
 * caller's (freeReplyObject each). DQ_OK or the first error (printed). */
static int
dq__pipeline(dq_cli_t *cli, size_t n, int *argcs, const char ***argvs,
             redisReply **replies)
{
    dq_client_t *c = cli->c;
    size_t       i;
    int          rc;

    memset(replies, 0, n * sizeof(*replies));
    if ((rc = dq__ready(c)) != DQ_OK) {
        return dq_cli_fail(cli, rc), rc;
    }
    for (i = 0; i < n; i++) {
        if ((rc = dq__append(c, argcs[i], argvs[i], NULL)) != DQ_OK) {
            return dq_cli_fail(cli, rc), rc;
        }
    }
    for (i = 0; i < n; i++) {
        if (dq__get_reply(c, &replies[i]) != DQ_OK) {
            for (size_t k = 0; k < i; k++) {
                freeReplyObject(replies[k]);
                replies[k] = NULL;
            }
            return dq_cli_fail(cli, DQ_EREDIS), DQ_EREDIS;
        }
    }
    return DQ_OK;
}

/* ----------------------------------------------------- due list lapse */

int
dq_cli_due_warn(const char *sq, int64_t listed, const redisReply *until,
                int64_t now)
{
    int64_t u = -1;

    if (listed <= 0) {
        return 0;
    }
    if (until != NULL && until->type == REDIS_REPLY_STRING) {
        u = strtoll(until->str, NULL, 10);
    }
    if (u > now && u <= now + DQ_DUE_HOLD_MS) {
        return 0;
    }
    fprintf(stderr, "deferred-cli: warning: queue %s: %lld tasks in the due "
            "list and no worker that reads it claims (workers built before "
            "it never take them): run \"deferred-cli unlist %s\" if only "
            "such workers are left\n", sq, (long long) listed, sq);
    return 1;
}

/* -------------------------------------------------------------- queues */

int
dq_cli_queues(dq_cli_t *cli, int argc, char **argv)
{
    redisReply      *names, *rep[9];
    dq_cli_table_t   t;
    json_t          *out = NULL;
    char           **q;
    char             k[9][DQ_KEY_MAX], nowbuf[24];
    int64_t          now;
    size_t           i, n;

    (void) argv;
    if (argc > 1) {
        return dq_cli_usage_error("queues takes no argument");
    }
    if ((now = dq_cli_now(cli)) < 0
        || (q = dq_cli_queue_names(cli, &names, &n)) == NULL)
    {
        return DQ_CLI_ERROR;
    }
    qsort(q, n, sizeof(*q), dq_cli_cmp_str);
    snprintf(nowbuf, sizeof(nowbuf), "%lld", (long long) now);

    if (cli->json) {
        out = json_array();
    } else {
        dq_cli_table_init(&t, 11, "QUEUE", "WAITING", "DUE", "DELAYED",
                          "RUNNING", "DEAD", "PAUSED", "RATE",
                          "OLDEST_DUE_MS", "DONE", "FAILED");
    }
    for (i = 0; i < n; i++) {
        const char **av[9];
        int          ac[9];
        const char  *a0[] = { "ZCARD", k[0] };
        const char  *a1[] = { "ZCOUNT", k[0], "-inf", nowbuf };
        const char  *a2[] = { "ZCARD", k[1] };
        const char  *a3[] = { "ZCARD", k[2] };
        const char  *a4[] = { "ZRANGE", k[0], "0", "0", "WITHSCORES" };
        const char  *a5[] = { "HMGET", k[3], "paused", "rate",
                              "max_concurrent" };
        const char  *a6[] = { "HMGET", k[4], "enqueued", "done", "retried",
                              "dead", "requeued", "deleted" };
        /* the cold tier's and the due list's tasks (both waiting; the
         * list's all due, its oldest ETA its head marker "@<ms>") */
        const char  *a7[] = { "HMGET", k[4], "cold", "due_n",
                              "due_until" };
        const char  *a8[] = { "LINDEX", k[5], "0" };
        int64_t      waiting = 0, due = 0, running = 0, dead = 0,
                     oldest = -1, paused = 0, cnt[6] = { 0 }, listed;
        const char  *rate = "-";
        char         rbuf[48], sq[DQ_SHARD_NAME_MAX + 1];
        double       rsum = 0;
        int          j, rall = 1;
        unsigned     ns = 1, sh;

        if (!dq_queue_name_valid(dq_str_c(q[i]))) {
            continue;
        }
        if ((j = dq_queue_shards(cli->c, q[i], &ns)) != DQ_OK) {
            free(q);
            freeReplyObject(names);
            json_decref(out);
            return dq_cli_fail(cli, j);
        }
        /* a sharded queue is one row: the sums over its shards */
        for (sh = 0; sh < ns; sh++) {
            dq_shard_name(sq, sizeof(sq), dq_str_c(q[i]), sh);
            dq__key(k[0], sq, DQ_KEY_ETA);
            dq__key(k[1], sq, DQ_KEY_LEASE);
            dq__key(k[2], sq, DQ_KEY_DEAD);
            dq__key(k[3], sq, DQ_KEY_CONF);
            dq__key(k[4], sq, DQ_KEY_STATS);
            dq__key(k[5], sq, DQ_KEY_DUE);
            av[0] = a0; ac[0] = 2; av[1] = a1; ac[1] = 4; av[2] = a2;
            ac[2] = 2; av[3] = a3; ac[3] = 2; av[4] = a4; ac[4] = 5;
            av[5] = a5; ac[5] = 5; av[6] = a6; ac[6] = 8; av[7] = a7;
            ac[7] = 5; av[8] = a8; ac[8] = 3;
            if (dq__pipeline(cli, 9, ac, av, rep) != DQ_OK) {
                free(q);
                freeReplyObject(names);
                json_decref(out);
                return DQ_CLI_ERROR;
            }
            waiting += dq_reply_int(rep[0]);
            due += dq_reply_int(rep[1]);
            listed = 0;
            if (rep[7]->type == REDIS_REPLY_ARRAY && rep[7]->elements == 3) {
                waiting += dq_reply_off_eta(rep[7]->element[0],
                                            rep[7]->element[1], &listed);
                due += listed;
                dq_cli_due_warn(sq, listed, rep[7]->element[2], now);
            }
            if (rep[8]->type == REDIS_REPLY_STRING && rep[8]->len > 1
                && rep[8]->str[0] == '@' && listed > 0)
            {
                int64_t eta = strtoll(rep[8]->str + 1, NULL, 10);
                if (eta <= now && now - eta > oldest) {
                    oldest = now - eta;
                }
            }
            running += dq_reply_int(rep[2]);
            dead += dq_reply_int(rep[3]);
            if (rep[4]->type == REDIS_REPLY_ARRAY && rep[4]->elements == 2) {
                int64_t eta = dq_reply_int(rep[4]->element[1]);
                if (eta <= now && now - eta > oldest) {
                    oldest = now - eta;
                }
            }
            paused |= rep[5]->type == REDIS_REPLY_ARRAY
                      && rep[5]->elements == 3
                      && dq_reply_int(rep[5]->element[0]) == 1;
            if (rep[5]->type == REDIS_REPLY_ARRAY && rep[5]->elements == 3
                && rep[5]->element[1]->type == REDIS_REPLY_STRING)
            {
                rsum += atof(rep[5]->element[1]->str);
                rall &= atof(rep[5]->element[1]->str) > 0;
            } else {
                rall = 0;
            }
            for (j = 0; j < 6 && rep[6]->type == REDIS_REPLY_ARRAY
                        && rep[6]->elements == 6; j++)
            {
                cnt[j] += dq_reply_int(rep[6]->element[j]);
            }
            for (j = 0; j < 9; j++) {
                freeReplyObject(rep[j]);
            }
        }
        if (rall) {
            snprintf(rbuf, sizeof(rbuf), "%.6g", rsum);
            rate = rbuf;
        }
        if (out) {
            json_t *o = json_object(), *st = json_object();
            static const char *cn[] = { "enqueued", "done", "retried",
                                        "dead", "requeued", "deleted" };

            json_object_set_new(o, "queue", json_string(q[i]));
            json_object_set_new(o, "waiting", json_integer(waiting));
            json_object_set_new(o, "due", json_integer(due));
            json_object_set_new(o, "delayed", json_integer(waiting - due));
            json_object_set_new(o, "running", json_integer(running));
            json_object_set_new(o, "dead", json_integer(dead));
            json_object_set_new(o, "paused", json_boolean(paused));
            json_object_set_new(o, "rate",
                                strcmp(rate, "-") ? json_string(rate)
                                                  : json_null());
            json_object_set_new(o, "oldest_due_age_ms",
                                oldest >= 0 ? json_integer(oldest)
                                            : json_null());
            for (j = 0; j < 6; j++) {
                json_object_set_new(st, cn[j], json_integer(cnt[j]));
            }
            json_object_set_new(o, "counters", st);
            json_array_append_new(out, o);
        } else {
            int64_t done = cnt[1], failed = cnt[2] + cnt[3];

            dq_cli_table_cell(&t, "%s", q[i]);
            dq_cli_table_cell(&t, "%lld", (long long) waiting);
            dq_cli_table_cell(&t, "%lld", (long long) due);
            dq_cli_table_cell(&t, "%lld", (long long) (waiting - due));
            dq_cli_table_cell(&t, "%lld", (long long) running);
            dq_cli_table_cell(&t, "%lld", (long long) dead);
            dq_cli_table_cell(&t, "%s", paused ? "yes" : "no");
            dq_cli_table_cell(&t, "%s", rate);
            if (oldest >= 0) {
                dq_cli_table_cell(&t, "%lld", (long long) oldest);
            } else {
                dq_cli_table_cell(&t, "-");
            }
            dq_cli_table_cell(&t, "%lld", (long long) done);
            dq_cli_table_cell(&t, "%lld", (long long) failed);
        }
    }
    if (out) {
        dq_cli_print_json(out);
    } else {
        dq_cli_table_print(&t);
    }
    free(q);
    freeReplyObject(names);
    return DQ_CLI_OK;
}

/* ------------------------------------------------------- one task's data */

typedef struct {
    char            id[DQ_ID_SIZE + 64];
    dq_cli_state_t  state;        /* DQ_ST_ALL: not found */
    int64_t         score;        /* ETA, lease deadline or time of death */
    int64_t         runs, retries, first_run, failed_ms;
    char            claim[64];    /* the last claim id, or "" */
    char           *error;        /* or NULL */
    redisReply     *env_reply;    /* HGET tasks (string or nil) */
    dq_envelope_t   env;
    int             env_ok;
    msgpack_zone    zone;
} dq_cli_task_t;

static void
dq__task_free(dq_cli_task_t *t)
{
    free(t->error);
    freeReplyObject(t->env_reply);
    msgpack_zone_destroy(&t->zone);
}

/* A task of the cold tier (lib/lua/cold.lua): one HGET per bucket,
 * pipelined DQ__COLD_PIPE at a time (each its own command: Redis is never
 * busy for long; ~8,600 buckets hold 1,000,000 tasks over a day). On a hit
 * t->env_reply holds the value (4-digit ETA offset, then the envelope) and
 * *env points into it. */
#define DQ__COLD_PIPE 128

static void
dq__task_cold(dq_cli_t *cli, const char *queue, dq_cli_task_t *t,
              dq_str_t *env)
{
    char         idx[DQ_KEY_MAX], key[DQ__COLD_PIPE][DQ_KEY_MAX + 64];
    const char  *ai[] = { "ZRANGE", idx, "0", "-1", "WITHSCORES" };
    const char  *ah[DQ__COLD_PIPE][3];
    const char **av[DQ__COLD_PIPE];
    int          ac[DQ__COLD_PIPE];
    redisReply  *b, *v[DQ__COLD_PIPE];
    size_t       j, k, m, n;

    dq__key(idx, queue, DQ_KEY_TASKS);
    n = strlen(idx);
    if (n < 5 || strcmp(idx + n - 5, "tasks") != 0) {
        return;
    }
    snprintf(idx + n - 5, sizeof(idx) - n + 5, "cold");
    if ((b = dq_cli_cmd(cli, 5, ai)) == NULL) {
        return;
    }
    n = b->type == REDIS_REPLY_ARRAY ? b->elements / 2 : 0;
    for (j = 0; j < n && t->state == DQ_ST_ALL; j += m) {
        m = n - j < DQ__COLD_PIPE ? n - j : DQ__COLD_PIPE;
        for (k = 0; k < m; k++) {
            snprintf(key[k], sizeof(key[k]), "%s:%s", idx,
                     b->element[2 * (j + k)]->str);
            ah[k][0] = "HGET";
            ah[k][1] = key[k];
            ah[k][2] = t->id;
            av[k] = ah[k];
            ac[k] = 3;
        }
        if (dq__pipeline(cli, m, ac, av, v) != DQ_OK) {
            break;
        }
        for (k = 0; k < m; k++) {
            if (t->state == DQ_ST_ALL && v[k]->type == REDIS_REPLY_STRING
                && v[k]->len > 4)
            {
                char off[5];

                memcpy(off, v[k]->str, 4);
                off[4] = '\0';
                freeReplyObject(t->env_reply);
                t->env_reply = v[k];
                env->ptr = v[k]->str + 4;
                env->len = v[k]->len - 4;
                t->state = DQ_ST_WAITING;
                t->score = strtoll(b->element[2 * (j + k) + 1]->str, NULL, 10)
                           + strtoll(off, NULL, 10);
                continue;
            }
            freeReplyObject(v[k]);
        }
    }
    freeReplyObject(b);
}

/* 1 when id waits in the due list (*eta: its run's marker "@<ms>"), found
 * with LPOS (O(length of the list)) and the marker before it. */
static int
dq__due_find(dq_cli_t *cli, const char *queue, const char *id, int64_t *eta)
{
    char         key[DQ_KEY_MAX], from[24], to[24];
    const char  *ap[] = { "LPOS", key, id };
    const char  *ar[] = { "LRANGE", key, from, to };
    redisReply  *r;
    long long    at, lo;
    size_t       e;

    if (id[0] == '@') {
        return 0;
    }
    dq__key(key, queue, DQ_KEY_DUE);
    if ((r = dq_cli_cmd(cli, 3, ap)) == NULL) {
        return 0;
    }
    at = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    if (at < 0) {
        return 0;
    }
    *eta = 0;
    while (at > 0) {
        lo = at > 100 ? at - 100 : 0;
        snprintf(from, sizeof(from), "%lld", lo);
        snprintf(to, sizeof(to), "%lld", at - 1);
        if ((r = dq_cli_cmd(cli, 4, ar)) == NULL) {
            return 1;
        }
        for (e = r->type == REDIS_REPLY_ARRAY ? r->elements : 0; e > 0; e--) {
            if (r->element[e - 1]->type == REDIS_REPLY_STRING
                && r->element[e - 1]->str[0] == '@')
            {
                *eta = strtoll(r->element[e - 1]->str + 1, NULL, 10);
                freeReplyObject(r);
                return 1;
            }
        }
        freeReplyObject(r);
        at = lo;
    }
    return 1;
}

/* Fill t (id already set; state/score set by the caller unless find): the
 * envelope, its state prefix (dq_task_value_split) and last error. find:
 * also locate the task (the ETA set, the dead set, its lease
 * "id|claim|first_run_ms": looked for with ZSCAN MATCH "id|*", ids being
 * [A-Za-z0-9_-]; the cold tier's buckets). */
static int
dq__task_load(dq_cli_t *cli, const char *queue, dq_cli_task_t *t, int find)
{
    char             k[4][DQ_KEY_MAX], match[DQ_ID_SIZE + 128], cur[32];
    const char      *a0[] = { "HGET", k[0], t->id };
    const char      *a1[] = { "HGET", k[1], t->id };
    const char      *a2[] = { "ZSCORE", k[2], t->id };
    const char      *a3[] = { "ZSCORE", k[3], t->id };
    const char      *as[] = { "ZSCAN", k[2], cur, "MATCH", match, "COUNT",
                              "1000" };
    const char     **av[4] = { a0, a1, a2, a3 };
    int              ac[4] = { 3, 3, 3, 3 };
    redisReply      *r[4], *z;
    dq_limits_t      lim;
    dq_error_t       err;
    dq_value_state_t  st;
    dq_str_t         env = { NULL, 0 };
    size_t           j;
    int              i, n = find ? 4 : 2;

    dq__key(k[0], queue, DQ_KEY_TASKS);
    dq__key(k[1], queue, DQ_KEY_ERRORS);
    dq__key(k[2], queue, DQ_KEY_ETA);
    dq__key(k[3], queue, DQ_KEY_DEAD);
    msgpack_zone_init(&t->zone, 2048);
    t->error = NULL;
    t->env_reply = NULL;
    t->env_ok = 0;
    t->runs = t->retries = t->first_run = t->failed_ms = 0;
    t->claim[0] = '\0';
    if (dq__pipeline(cli, (size_t) n, ac, av, r) != DQ_OK) {
        return DQ_EREDIS;
    }
    t->env_reply = r[0];
    if (r[0]->type == REDIS_REPLY_STRING) {
        dq_task_value_split((dq_str_t) { r[0]->str, r[0]->len }, &st, &env);
        t->runs = st.runs;
        t->retries = st.retries;
        t->first_run = st.first_run_ms;
        t->failed_ms = st.failed_ms;
        snprintf(t->claim, sizeof(t->claim), "%.*s", (int) st.claim.len,
                 st.claim.ptr ? st.claim.ptr : "");
    }
    if (r[1]->type == REDIS_REPLY_STRING) {
        t->error = strdup(r[1]->str);
    }
    if (find) {
        t->state = DQ_ST_ALL;
        if (r[2]->type == REDIS_REPLY_STRING) {
            t->state = DQ_ST_WAITING;
            t->score = strtoll(r[2]->str, NULL, 10);
        } else if (r[3]->type == REDIS_REPLY_STRING) {
            t->state = DQ_ST_DEAD;
            t->score = strtoll(r[3]->str, NULL, 10);
        } else if (env.ptr != NULL) {
            /* running: its lease member names the claim */
            k[2][0] = '\0';
            dq__key(k[2], queue, DQ_KEY_LEASE);
            snprintf(match, sizeof(match), "%s|*", t->id);
            snprintf(cur, sizeof(cur), "0");
            do {
                z = dq_cli_cmd(cli, 7, as);
                if (z == NULL || z->type != REDIS_REPLY_ARRAY
                    || z->elements != 2
                    || z->element[0]->type != REDIS_REPLY_STRING
                    || z->element[1]->type != REDIS_REPLY_ARRAY)
                {
                    freeReplyObject(z);
                    break;
                }
                snprintf(cur, sizeof(cur), "%s", z->element[0]->str);
                for (j = 0; j + 1 < z->element[1]->elements; j += 2) {
                    const char *m = z->element[1]->element[j]->str;
                    const char *c = m + strlen(t->id) + 1;
                    const char *e = strchr(c, '|');

                    t->state = DQ_ST_RUNNING;
                    t->score = strtoll(z->element[1]->element[j + 1]->str,
                                       NULL, 10);
                    snprintf(t->claim, sizeof(t->claim), "%.*s",
                             (int) (e ? (size_t) (e - c) : strlen(c)), c);
                    if (e && !st.has) {
                        t->first_run = strtoll(e + 1, NULL, 10);
                    }
                }
                freeReplyObject(z);
            } while (t->state == DQ_ST_ALL && strcmp(cur, "0") != 0);
            if (t->state == DQ_ST_ALL && dq__due_find(cli, queue, t->id,
                                                      &t->score))
            {
                t->state = DQ_ST_WAITING;       /* in the due list */
            }
        } else {
            /* not hot: a delayed task may wait in the cold tier */
            dq__task_cold(cli, queue, t, &env);
        }
    }
    for (i = 1; i < n; i++) {
        freeReplyObject(r[i]);
    }
    if (env.ptr != NULL) {
        dq_limits_default(&lim);
        lim.max_envelope = env.len + 1;
        t->env_ok = dq_envelope_decode(env.ptr, env.len, dq_str_c(t->id),
                                       dq_str_c(queue), &lim, &t->zone,
                                       &t->env, &err)
                    == DQ_OK;
    }
    return DQ_OK;
}

static const char *
dq__time_title(dq_cli_state_t st)
{
    return st == DQ_ST_RUNNING ? "lease_until_ms"
           : st == DQ_ST_DEAD ? "died_ms" : "eta_ms";
}

static json_t *
dq__task_json(const char *queue, dq_cli_task_t *t, int full)
{
    json_t *o = json_object();

    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "queue", json_string(queue));
    json_object_set_new(o, "state", json_string(dq_cli_states[t->state]));
    if (t->env_ok) {
        json_object_set_new(o, "function",
                            json_stringn(t->env.func.ptr, t->env.func.len));
        json_object_set_new(o, "name", t->env.name.ptr
                            ? json_stringn(t->env.name.ptr, t->env.name.len)
                            : json_null());
    } else {
        json_object_set_new(o, "function", json_null());
        json_object_set_new(o, "name", json_null());
    }
    json_object_set_new(o, dq__time_title(t->state), json_integer(t->score));
    json_object_set_new(o, "runs", json_integer(t->runs));
    json_object_set_new(o, "retries", json_integer(t->retries));
    json_object_set_new(o, "first_run_ms", json_integer(t->first_run));
    json_object_set_new(o, "last_failure_ms", json_integer(t->failed_ms));
    json_object_set_new(o, "claim", t->claim[0] ? json_string(t->claim)
                                                : json_null());
    json_object_set_new(o, "last_error", t->error ? json_string(t->error)
                                                  : json_null());
    if (full && t->env_ok) {
        json_t *r = json_object();

        json_object_set_new(o, "url", json_stringn(t->env.url.ptr,
                                                   t->env.url.len));
        json_object_set_new(o, "args", dq_cli_msgpack_json(t->env.args));
        json_object_set_new(o, "kwargs", t->env.kwargs
                            ? dq_cli_msgpack_json(t->env.kwargs)
                            : json_null());
        json_object_set_new(o, "headers", t->env.headers
                            ? dq_cli_msgpack_json(t->env.headers)
                            : json_null());
        json_object_set_new(o, "created_ms",
                            json_integer(t->env.created_ms));
        json_object_set_new(o, "requested_eta_ms",
                            json_integer(t->env.eta_ms));
        json_object_set_new(r, "task_retry_limit",
                            json_integer(t->env.retry.retry_limit));
        json_object_set_new(r, "task_age_limit_ms",
                            json_integer(t->env.retry.age_limit_ms));
        json_object_set_new(r, "min_backoff_ms",
                            json_integer(t->env.retry.min_backoff_ms));
        json_object_set_new(r, "max_backoff_ms",
                            json_integer(t->env.retry.max_backoff_ms));
        json_object_set_new(r, "max_doublings",
                            json_integer(t->env.retry.max_doublings));
        json_object_set_new(o, "retry_options", r);
        json_object_set_new(o, "envelope_version",
                            json_integer(t->env.version));
    } else if (full) {
        json_object_set_new(o, "envelope", json_string(
            t->env_reply && t->env_reply->type == REDIS_REPLY_STRING
            ? "undecodable" : "missing"));
    }
    return o;
}

/* ---------------------------------------------------------------- list */

/* One row of `list`: task id of shard sq, its score (ETA, lease deadline
 * or time of death). */
static int
dq__list_row(dq_cli_t *cli, const char *queue, const char *sq,
             dq_cli_state_t st, int64_t now, const char *id, int64_t score,
             json_t *out, dq_cli_table_t *t)
{
    dq_cli_task_t task;

    snprintf(task.id, sizeof(task.id), "%s", id);
    task.score = score;
    task.state = st == DQ_ST_WAITING
                 ? (task.score <= now ? DQ_ST_DUE : DQ_ST_DELAYED) : st;
    if (dq__task_load(cli, sq, &task, 0) != DQ_OK) {
        dq__task_free(&task);
        return DQ_EREDIS;
    }
    if (out) {
        json_array_append_new(out, dq__task_json(queue, &task, 0));
    } else {
        char tbuf[32];

        dq_cli_table_cell(t, "%s", task.id);
        if (task.env_ok) {
            dq_cli_table_cell(t, "%.*s", (int) task.env.func.len,
                              task.env.func.ptr);
            dq_cli_table_cell(t, "%.*s", task.env.name.ptr
                              ? (int) task.env.name.len : 1,
                              task.env.name.ptr ? task.env.name.ptr : "-");
        } else {
            dq_cli_table_cell(t, "?");
            dq_cli_table_cell(t, "?");
        }
        dq_cli_table_cell(t, "%s", dq_cli_time(task.score, tbuf));
        dq_cli_table_cell(t, "%lld", (long long) task.runs);
        dq_cli_table_cell(t, "%lld", (long long) task.retries);
        dq_cli_table_cell(t, "%.80s", task.error ? task.error : "-");
    }
    dq__task_free(&task);
    return DQ_OK;
}

/* The rows of the due list's first *left tasks (lib/lua/prelude.lua
 * dq_due_read: ids in runs headed by "@<eta ms>"); *left less those. */
static int
dq__list_due(dq_cli_t *cli, const char *queue, const char *sq,
             dq_cli_state_t st, int64_t now, long long *left, json_t *out,
             dq_cli_table_t *t)
{
    char         key[DQ_KEY_MAX], end[24];
    const char  *a[] = { "LRANGE", key, "0", end };
    redisReply  *r;
    int64_t      eta = 0;
    size_t       e;
    int          rc = DQ_OK;

    dq__key(key, sq, DQ_KEY_DUE);
    snprintf(end, sizeof(end), "%lld", 2 * *left);
    if ((r = dq_cli_cmd(cli, 4, a)) == NULL) {
        return DQ_EREDIS;
    }
    for (e = 0; r->type == REDIS_REPLY_ARRAY && e < r->elements && *left > 0;
         e++)
    {
        const char *m = r->element[e]->str;

        if (r->element[e]->type != REDIS_REPLY_STRING) {
            continue;
        }
        if (m[0] == '@') {
            eta = strtoll(m + 1, NULL, 10);
            continue;
        }
        if ((rc = dq__list_row(cli, queue, sq, st, now, m, eta, out, t))
            != DQ_OK)
        {
            break;
        }
        (*left)--;
    }
    freeReplyObject(r);
    return rc;
}

int
dq_cli_list(dq_cli_t *cli, int argc, char **argv)
{
    dq_cli_state_t  st = DQ_ST_WAITING;
    const char     *queue = NULL;
    long long       limit = 100, cold = 0, left;
    char            key[DQ_KEY_MAX], nowbuf[24], lim[24], tb[32],
                    sq[DQ_SHARD_NAME_MAX + 1];
    unsigned        ns = 1, sh;
    const char     *a[8];
    int             n = 0, i;
    int64_t         now;
    redisReply     *r;
    json_t         *out = NULL;
    dq_cli_table_t  t;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
            if (dq_cli_state(argv[++i], &st) != 0 || st == DQ_ST_ALL) {
                return dq_cli_usage_error("--state: waiting, due, delayed, "
                                          "running or dead, not \"%s\"",
                                          argv[i]);
            }
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            char *end;
            limit = strtoll(argv[++i], &end, 10);
            if (*end || limit < 1 || limit > DQ_CLI_MAX_LIST) {
                return dq_cli_usage_error("--limit: 1 to %d",
                                          DQ_CLI_MAX_LIST);
            }
        } else if (argv[i][0] != '-' && queue == NULL) {
            queue = argv[i];
        } else {
            return dq_cli_usage_error("list: unexpected \"%s\"", argv[i]);
        }
    }
    if (queue == NULL) {
        return dq_cli_usage_error("list QUEUE [--state STATE] [--limit N]");
    }
    if (!dq_cli_queue(queue)) {
        return DQ_CLI_USAGE;
    }
    if ((now = dq_cli_now(cli)) < 0) {
        return DQ_CLI_ERROR;
    }
    snprintf(nowbuf, sizeof(nowbuf), "%lld", (long long) now);
    snprintf(lim, sizeof(lim), "%lld", limit);
    snprintf(tb, sizeof(tb), "(%lld", (long long) now);
    if ((i = dq_queue_shards(cli->c, queue, &ns)) != DQ_OK) {
        return dq_cli_fail(cli, i);
    }
    if (cli->json) {
        out = json_array();
    } else {
        dq_cli_table_init(&t, 7, "ID", "FUNCTION", "NAME",
                          st == DQ_ST_RUNNING ? "LEASE_UNTIL"
                          : st == DQ_ST_DEAD ? "DIED" : "ETA",
                          "RUNS", "RETRIES", "LAST_ERROR");
    }
    /* a sharded queue: each shard's, up to --limit each, shard by shard */
    for (sh = 0; sh < ns; sh++) {
        dq_shard_name(sq, sizeof(sq), dq_str_c(queue), sh);
        n = 0;
        dq__key(key, sq, st == DQ_ST_RUNNING ? DQ_KEY_LEASE
                            : st == DQ_ST_DEAD ? DQ_KEY_DEAD : DQ_KEY_ETA);
        switch (st) {
        case DQ_ST_DUE:
            a[n++] = "ZRANGEBYSCORE"; a[n++] = key; a[n++] = "-inf";
            a[n++] = nowbuf;
            break;
        case DQ_ST_DELAYED:
            a[n++] = "ZRANGEBYSCORE"; a[n++] = key; a[n++] = tb;
            a[n++] = "+inf";
            break;
        case DQ_ST_DEAD:      /* newest death first */
            a[n++] = "ZREVRANGEBYSCORE"; a[n++] = key; a[n++] = "+inf";
            a[n++] = "-inf";
            break;
        default:
            a[n++] = "ZRANGEBYSCORE"; a[n++] = key; a[n++] = "-inf";
            a[n++] = "+inf";
            break;
        }
        if (st == DQ_ST_WAITING || st == DQ_ST_DELAYED) {
            char        skey[DQ_KEY_MAX];
            const char *c[] = { "HGET", skey, "cold" };

            dq__key(skey, sq, DQ_KEY_STATS);
            if ((r = dq_cli_cmd(cli, 3, c)) != NULL) {
                cold += dq_reply_int(r);
                freeReplyObject(r);
            }
        }
        left = limit;
        if (st == DQ_ST_WAITING || st == DQ_ST_DUE) {
            /* the due list's tasks first (all due, the oldest) */
            if (dq__list_due(cli, queue, sq, st, now, &left, out, &t)
                != DQ_OK)
            {
                json_decref(out);
                return DQ_CLI_ERROR;
            }
            if (left == 0) {
                continue;
            }
        }
        snprintf(lim, sizeof(lim), "%lld", left);
        a[n++] = "WITHSCORES"; a[n++] = "LIMIT"; a[n++] = "0"; a[n++] = lim;
        if ((r = dq_cli_cmd(cli, n, a)) == NULL) {
            json_decref(out);
            return DQ_CLI_ERROR;
        }
        for (size_t e = 0; r->type == REDIS_REPLY_ARRAY && e + 1 < r->elements;
             e += 2)
        {
            const char *m = r->element[e]->str, *bar = strchr(m, '|');
            char        id[DQ_ID_SIZE + 1];

            /* a lease member is "id|claim id|first_run_ms" (ids have no '|') */
            snprintf(id, sizeof(id), "%.*s",
                     (int) (st == DQ_ST_RUNNING && bar ? (size_t) (bar - m)
                                                       : strlen(m)), m);
            if (dq__list_row(cli, queue, sq, st, now, id,
                             strtoll(r->element[e + 1]->str, NULL, 10), out,
                             &t) != DQ_OK)
            {
                freeReplyObject(r);
                json_decref(out);
                return DQ_CLI_ERROR;
            }
        }
        freeReplyObject(r);
    }
    if (out) {
        dq_cli_print_json(out);
    } else {
        dq_cli_table_print(&t);
    }
    if (!cli->json && cold > 0) {
        /* the cold tier's tasks are not in the ETA set: say how many */
        printf("(and %lld delayed in the cold tier: listed from "
               "20-30 s before their ETA)\n", (long long) cold);
    }
    return DQ_CLI_OK;
}

/* ---------------------------------------------------------------- show */

int
dq_cli_show(dq_cli_t *cli, int argc, char **argv)
{
    dq_cli_task_t  t;
    json_t        *o;
    int64_t        now;
    char           s[DQ_SHARD_NAME_MAX + 1];
    unsigned       ns = 1, i;
    int            rc;

    if (argc != 3) {
        return dq_cli_usage_error("show QUEUE ID");
    }
    if (!dq_cli_queue(argv[1])) {
        return DQ_CLI_USAGE;
    }
    if ((now = dq_cli_now(cli)) < 0) {
        return DQ_CLI_ERROR;
    }
    if ((rc = dq_queue_shards(cli->c, argv[1], &ns)) != DQ_OK) {
        return dq_cli_fail(cli, rc);
    }
    /* a sharded queue: the shard that holds it */
    for (i = 0; i < ns; i++) {
        dq_shard_name(s, sizeof(s), dq_str_c(argv[1]), i);
        snprintf(t.id, sizeof(t.id), "%s", argv[2]);
        if (dq__task_load(cli, s, &t, 1) != DQ_OK) {
            dq__task_free(&t);
            return DQ_CLI_ERROR;
        }
        if (t.state != DQ_ST_ALL || i + 1 == ns) {
            break;
        }
        dq__task_free(&t);
    }
    if (t.state == DQ_ST_ALL) {
        dq__task_free(&t);
        fprintf(stderr, "deferred-cli: no task %s in queue %s\n", argv[2],
                argv[1]);
        return DQ_CLI_NOTFOUND;
    }
    if (t.state == DQ_ST_WAITING) {
        t.state = t.score <= now ? DQ_ST_DUE : DQ_ST_DELAYED;
    }
    o = dq__task_json(argv[1], &t, 1);
    if (cli->json) {
        dq_cli_print_json(o);
    } else {
        /* one "field: value" line each; values as JSON */
        const char *k;
        json_t     *v;
        char        tbuf[32];

        json_object_foreach(o, k, v) {
            char *s = json_is_string(v) ? NULL
                      : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY
                                      | JSON_PRESERVE_ORDER);
            printf("%-18s %s", k, s ? s : json_string_value(v));
            if (strstr(k, "_ms") && json_is_integer(v)
                && json_integer_value(v) > 1000000000000LL)
            {
                printf("  (%s)", dq_cli_time(json_integer_value(v), tbuf));
            }
            putchar('\n');
            free(s);
        }
        json_decref(o);
    }
    dq__task_free(&t);
    return DQ_CLI_OK;
}
