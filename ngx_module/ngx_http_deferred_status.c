
/*
 * ngx_http_deferred_module: locations for operators.
 *
 *   deferred_status      JSON: every queue's counts, counters, lateness
 *                        histogram, newest dead tasks; live workers
 *   deferred_metrics     the same as Prometheus text exposition
 *   deferred_dashboard   an HTML page (embedded, no CDN) that polls the
 *                        status location and posts to the admin one
 *   deferred_admin       POST ?action=retry|delete|pause|resume&queue=Q
 *                        [&id=ID], with the header X-Deferred-Admin: 1
 *   deferred_ready       200 when Redis answers and the enqueue script is
 *                        loaded, else 503
 *
 * Here: what an op asks first, how its replies fill in the queues and
 * workers, its next stages, and the answer of status, metrics and
 * readiness. The op itself (the directive, the content handler, its
 * commands, timeout and release) is ngx_http_deferred_ops.c; the admin
 * actions, the rendering and the page have their own files
 * (ngx_http_deferred_ops.h lists them).
 */


#include "ngx_http_deferred_ops.h"


#define NGX_HTTP_DEFERRED_DEAD_LIMIT     20
#define NGX_HTTP_DEFERRED_MAX_WORKERS    1000
/* the same number as a string (ZREVRANGEBYSCORE ... LIMIT 0 <it>) */
#define NGX_HTTP_DEFERRED_STR(x)         NGX_HTTP_DEFERRED_STR_(x)
#define NGX_HTTP_DEFERRED_STR_(x)        #x


static void ngx_http_deferred_op_next(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_op_queue(ngx_http_deferred_op_t *op,
    ngx_http_deferred_qstat_t *q, redisReply *reply);
static ngx_int_t ngx_http_deferred_op_shards(ngx_http_deferred_op_t *op);
static void ngx_http_deferred_op_unread(ngx_http_deferred_op_t *op,
    ngx_http_deferred_qstat_t *q, ngx_http_deferred_op_cmd_t *oc,
    redisReply *reply);
static void ngx_http_deferred_op_sum(ngx_http_deferred_op_t *op);
static int ngx_libc_cdecl ngx_http_deferred_dead_cmp(const void *one,
    const void *two);


const char  *ngx_http_deferred_counter_names[7] = {
    "enqueued", "done", "retried", "dead", "requeued", "deleted", "reclaimed"
};

/*
 * The event counters: the stats fields the scripts count that are not a
 * task's state change (docs/CONTRACT.md dq2:{q}:stats), shown as
 * deferred_<metric>_total and in the status JSON's "events".
 */

const ngx_http_deferred_event_t
    ngx_http_deferred_events[NGX_HTTP_DEFERRED_NEVENTS] =
{
    { "acked_late", "tasks_acked_late",
      "Acks accepted after their lease expired and was taken back (nobody "
      "had claimed the task since). Growing: tasks outrun their lease; "
      "raise the lease or have long tasks extend it, else they may run "
      "twice." },

    { "released", "tasks_released",
      "Claimed tasks given back unstarted and uncharged (a worker "
      "stopping or a child that died before starting them)." },

    { "unrunnable", "tasks_unrunnable",
      "Tasks given back because the worker has no such function. Growing: "
      "deploy the library that registers it (deferred-cli stats lists "
      "the functions)." },

    { "dead_over_max", "dead_over_max",
      "Burials that found the dead set past dead_max (kept: younger than "
      "dead_age). Alert on it; requeue or delete dead tasks by hand." },

    { "clock_jumps", "clock_jumps",
      "Forward steps of Redis' clock that held expired leases back from "
      "reclaim. Growing: check time sync (NTP) on the Redis host." },

    { "migrating_stalls", "migrating_stalls",
      "Claims that ran on a MIGRATING cluster slot and were kept from "
      "part of their work. Most claims there are refused before they run "
      "(TRYAGAIN, not counted): a slot left open shows as "
      "deferred_queues_not_read; redis-cli --cluster check, then "
      "--cluster fix." }
};

const int64_t  ngx_http_deferred_late_bounds[DQ_LATENESS_NBOUNDS] =
    DQ_LATENESS_BOUNDS_MS;


/* the op's first commands (the later ones follow their replies) */

void
ngx_http_deferred_ops_start(ngx_http_deferred_op_t *op)
{
    ngx_str_t                    argv[7];
    ngx_uint_t                   n, nmasters;
    ngx_http_deferred_op_cmd_t  *cmd;

    switch (op->kind) {

    case NGX_HTTP_DEFERRED_OPS_ADMIN:
        ngx_http_deferred_admin_shards(op);
        break;

    case NGX_HTTP_DEFERRED_OPS_READY:
        /* EVALSHA of lib/lua/ready.lua: refused when Redis refuses
         * writes (OOM, read-only replica); its source only after a
         * NOSCRIPT. A cluster: asked of every master (each queue lives
         * on one), ready only if all of them answer */
        nmasters = ngx_http_deferred_redis_masters(op->redis);

        for (n = 0; n < nmasters; n++) {
            cmd = ngx_http_deferred_op_cmd(op, NGX_HTTP_DEFERRED_OP_ACTION,
                                           n);
            if (cmd == NULL) {
                break;
            }

            if (ngx_http_deferred_op_script(op, cmd, dq_cmd_ready(&cmd->cmd))
                != NGX_OK)
            {
                break;
            }
        }
        break;

    default:
        ngx_str_set(&argv[0], "SMEMBERS");
        ngx_str_set(&argv[1], DQ_QUEUES_KEY);
        (void) ngx_http_deferred_op_plain(op, NGX_HTTP_DEFERRED_OP_QUEUES, 0,
                                          2, argv);

        /* the freshest members first, as many as are kept: scores are
         * Redis' clock, not this host's (a member whose heartbeat hash
         * expired shows no fields and is left out; stale members stay
         * until a worker's trim, once per ttl, and a crash-looping fleet
         * leaves many: oldest first, they cut the live ones, review RW
         * finding 5) */
        ngx_str_set(&argv[0], "ZREVRANGEBYSCORE");
        ngx_str_set(&argv[1], DQ_WORKERS_KEY);
        ngx_str_set(&argv[2], "+inf");
        ngx_str_set(&argv[3], "-inf");
        ngx_str_set(&argv[4], "LIMIT");
        ngx_str_set(&argv[5], "0");
        ngx_str_set(&argv[6],
                    NGX_HTTP_DEFERRED_STR(NGX_HTTP_DEFERRED_MAX_WORKERS));
        (void) ngx_http_deferred_op_plain(op, NGX_HTTP_DEFERRED_OP_WORKERS, 0,
                                          7, argv);
        break;
    }
}


/*
 * A queue whose status call (or one of its shards') Redis refused: not
 * shown at all (a sharded queue summed without a shard would show its
 * counters falling, a false reset), counted in queues_not_read and listed
 * with Redis' answer; logged.
 */

static void
ngx_http_deferred_op_unread(ngx_http_deferred_op_t *op,
    ngx_http_deferred_qstat_t *q, ngx_http_deferred_op_cmd_t *oc,
    redisReply *reply)
{
    q->ok = 0;

    if (q->unread.len == 0) {
        q->unread = ngx_http_deferred_op_copy(op, reply);
    }

    if (oc->what == NGX_HTTP_DEFERRED_OP_SHARD) {
        ngx_log_error(NGX_LOG_WARN, op->request->connection->log, 0,
                      "deferred status: queue \"%V\" not shown, shard %ui's "
                      "status refused: %s", &q->name, oc->shard, reply->str);

    } else {
        ngx_log_error(NGX_LOG_WARN, op->request->connection->log, 0,
                      "deferred status: queue \"%V\" not shown, its "
                      "status refused: %s", &q->name, reply->str);
    }
}


void
ngx_http_deferred_op_reply(void *data, redisReply *reply)
{
    ngx_http_deferred_op_cmd_t  *oc = data;

    size_t                        i;
    ngx_http_deferred_op_t       *op;
    ngx_http_deferred_qstat_t    *q;
    ngx_http_deferred_wstat_t    *w;
    ngx_keyval_t                 *kv;

    op = oc->op;
    op->pending--;

    if (op->request == NULL) {
        ngx_http_deferred_op_release(op);
        return;
    }

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR
        && (oc->what == NGX_HTTP_DEFERRED_OP_QUEUE
            || oc->what == NGX_HTTP_DEFERRED_OP_SHARD))
    {
        /* Redis answered but refused this queue's call (TRYAGAIN: its
         * slot is MIGRATING and the script's keys are not all on one
         * node): that queue alone is left out, said so; the others are
         * shown (review R6, t/50) */
        q = (ngx_http_deferred_qstat_t *) op->queues.elts + oc->index;
        ngx_http_deferred_op_unread(op, q, oc, reply);
        goto next;
    }

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        op->failed = 1;
        if (reply && op->error.len == 0) {
            op->error = ngx_http_deferred_op_copy(op, reply);
        }
        goto next;
    }

    switch (oc->what) {

    case NGX_HTTP_DEFERRED_OP_QUEUES:
        for (i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements;
             i++)
        {
            if (!dq_queue_name_valid(dq_str_c(reply->element[i]->str))) {
                continue;
            }

            if (op->queues.nelts == NGX_HTTP_DEFERRED_MAX_QUEUES) {
                op->dropped++;      /* said, not silently left out */
                continue;
            }

            q = ngx_array_push(&op->queues);
            if (q == NULL) {
                op->failed = 1;
                break;
            }

            ngx_memzero(q, sizeof(ngx_http_deferred_qstat_t));
            q->name = ngx_http_deferred_op_copy(op, reply->element[i]);
        }
        break;

    case NGX_HTTP_DEFERRED_OP_WORKERS:
        for (i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements
                    && op->workers.nelts < NGX_HTTP_DEFERRED_MAX_WORKERS; i++)
        {
            w = ngx_array_push(&op->workers);
            if (w == NULL
                || ngx_array_init(&w->fields, op->pool, 10,
                                  sizeof(ngx_keyval_t)) != NGX_OK)
            {
                op->failed = 1;
                break;
            }

            w->id = ngx_http_deferred_op_copy(op, reply->element[i]);
        }
        break;

    case NGX_HTTP_DEFERRED_OP_QUEUE:
        q = (ngx_http_deferred_qstat_t *) op->queues.elts + oc->index;
        ngx_http_deferred_op_queue(op, q, reply);
        break;

    case NGX_HTTP_DEFERRED_OP_SHARD:
        q = (ngx_http_deferred_qstat_t *) op->queues.elts + oc->index;
        ngx_http_deferred_op_queue(op, &q->parts[oc->shard], reply);
        break;

    case NGX_HTTP_DEFERRED_OP_WORKER:
        w = (ngx_http_deferred_wstat_t *) op->workers.elts + oc->index;

        for (i = 0; reply->type == REDIS_REPLY_ARRAY
                    && i + 1 < reply->elements; i += 2)
        {
            kv = ngx_array_push(&w->fields);
            if (kv == NULL) {
                op->failed = 1;
                break;
            }

            kv->key = ngx_http_deferred_op_copy(op, reply->element[i]);
            kv->value = ngx_http_deferred_op_copy(op, reply->element[i + 1]);
        }
        break;

    case NGX_HTTP_DEFERRED_OP_NSHARDS:
        op->nshards = reply->type == REDIS_REPLY_STRING
                      ? dq_shards_parse(reply->str, reply->len) : 1;
        break;

    default:    /* NGX_HTTP_DEFERRED_OP_ACTION: the largest answer */
        if (dq_reply_int(reply) > op->result) {
            op->result = dq_reply_int(reply);
        }
        if (reply->type == REDIS_REPLY_STRING) {
            op->error = ngx_http_deferred_op_copy(op, reply);
        }
        break;
    }

next:

    if (op->pending == 0) {
        ngx_http_deferred_op_next(op);
    }
}


static void
ngx_http_deferred_op_queue(ngx_http_deferred_op_t *op,
    ngx_http_deferred_qstat_t *q, redisReply *reply)
{
    size_t                     i, k;
    redisReply                *a;
    ngx_http_deferred_dead_t  *d;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 9) {
        op->failed = 1;
        return;
    }

    q->waiting = dq_reply_int(reply->element[1]);
    q->due = dq_reply_int(reply->element[2]);
    q->running = dq_reply_int(reply->element[3]);
    q->dead = dq_reply_int(reply->element[4]);
    q->oldest = dq_reply_int(reply->element[5]);

    a = reply->element[6];              /* conf */
    for (i = 0; a->type == REDIS_REPLY_ARRAY && i + 1 < a->elements; i += 2) {
        if (ngx_strcmp(a->element[i]->str, "paused") == 0) {
            q->paused = dq_reply_int(a->element[i + 1]) == 1;

        } else if (ngx_strcmp(a->element[i]->str, "rate") == 0) {
            q->rate = ngx_http_deferred_op_copy(op, a->element[i + 1]);

        } else if (ngx_strcmp(a->element[i]->str, "max_concurrent") == 0) {
            q->max_concurrent = ngx_http_deferred_op_copy(op,
                                                          a->element[i + 1]);

        } else if (ngx_strcmp(a->element[i]->str, DQ_QCONF_SHARDS) == 0
                   && a->element[i + 1]->type == REDIS_REPLY_STRING)
        {
            q->shards = dq_shards_parse(a->element[i + 1]->str,
                                        a->element[i + 1]->len);
        }
    }

    a = reply->element[7];              /* stats */
    for (i = 0; a->type == REDIS_REPLY_ARRAY && i + 1 < a->elements; i += 2) {
        const char  *f = a->element[i]->str;
        int64_t      v = dq_reply_int(a->element[i + 1]);
        char         name[32];

        for (k = 0; k < 7; k++) {
            if (ngx_strcmp(f, ngx_http_deferred_counter_names[k]) == 0) {
                q->counters[k] = v;
            }
        }

        for (k = 0; k < NGX_HTTP_DEFERRED_NEVENTS; k++) {
            if (ngx_strcmp(f, ngx_http_deferred_events[k].field) == 0) {
                q->events[k] = v;
            }
        }

        if (ngx_strcmp(f, "v1_left") == 0) {    /* added by status.lua */
            q->v1_left = v;
            continue;
        }

        if (ngx_strncmp(f, "late_", 5) != 0) {
            continue;
        }

        if (ngx_strcmp(f, "late_sum_ms") == 0) {
            q->late_sum = v;
            continue;
        }

        if (ngx_strcmp(f, "late_count") == 0) {
            q->late_count = v;
            continue;
        }

        if (ngx_strcmp(f, "late_le_inf") == 0) {
            q->late[DQ_LATENESS_NBOUNDS] = v;
            continue;
        }

        for (k = 0; k < DQ_LATENESS_NBOUNDS; k++) {
            ngx_sprintf((u_char *) name, "late_le_%L%Z",
                        ngx_http_deferred_late_bounds[k]);
            if (ngx_strcmp(f, name) == 0) {
                q->late[k] = v;
            }
        }
    }

    if (ngx_array_init(&q->dead_tasks, op->pool, 4,
                       sizeof(ngx_http_deferred_dead_t))
        != NGX_OK)
    {
        op->failed = 1;
        return;
    }

    a = reply->element[8];              /* dead tasks */
    for (i = 0; a->type == REDIS_REPLY_ARRAY && i + 3 < a->elements; i += 4) {
        d = ngx_array_push(&q->dead_tasks);
        if (d == NULL) {
            op->failed = 1;
            return;
        }

        d->id = ngx_http_deferred_op_copy(op, a->element[i]);
        d->died = ngx_http_deferred_op_copy(op, a->element[i + 1]);
        d->func = ngx_http_deferred_op_copy(op, a->element[i + 2]);
        d->error = ngx_http_deferred_op_copy(op, a->element[i + 3]);
    }

    q->ok = 1;
}


/* after each stage: send the next one, or answer */

static void
ngx_http_deferred_op_next(ngx_http_deferred_op_t *op)
{
    int                          rc;
    ngx_str_t                    body, argv[2];
    ngx_uint_t                   i, dead;
    ngx_http_deferred_op_cmd_t  *oc;
    ngx_http_deferred_qstat_t   *q;
    ngx_http_deferred_wstat_t   *w;

    if (op->kind == NGX_HTTP_DEFERRED_OPS_READY) {
        if (op->failed && op->error.len) {
            /* Redis answered but refuses writes (OOM, READONLY...) */
            body.data = ngx_pnalloc(op->pool, op->error.len * 6 + 64);
            if (body.data == NULL) {
                ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "application/json", NULL);
                return;
            }

            ngx_log_error(NGX_LOG_WARN, op->request->connection->log, 0,
                          "deferred_ready: 503, Redis refuses writes: %V",
                          &op->error);

            body.len = ngx_sprintf(body.data, "{\"ready\":false,"
                                   "\"redis\":\"refuses writes\","
                                   "\"error\":\"")
                       - body.data;
            body.len = (u_char *) ngx_escape_json(body.data + body.len,
                                                  op->error.data,
                                                  op->error.len)
                       - body.data;
            body.len = ngx_sprintf(body.data + body.len, "\"}\n")
                       - body.data;
            ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "application/json", &body);
            return;
        }

        if (op->failed) {
            ngx_str_set(&body, "{\"ready\":false,\"redis\":\"down\"}\n");
            ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "application/json", &body);
            return;
        }

        ngx_str_set(&body, "{\"ready\":true,\"redis\":\"up\","
                           "\"writable\":true}\n");
        ngx_http_deferred_op_finish(op, NGX_HTTP_OK, "application/json",
                                    &body);
        return;
    }

    if (op->kind == NGX_HTTP_DEFERRED_OPS_ADMIN) {
        ngx_http_deferred_admin_next(op);
        return;
    }

    if (op->failed && op->kind == NGX_HTTP_DEFERRED_OPS_METRICS) {
        ngx_str_set(&body, NGX_HTTP_DEFERRED_METRICS_DOWN);
        ngx_http_deferred_op_finish(op, NGX_HTTP_OK,
                                    NGX_HTTP_DEFERRED_METRICS_TYPE, &body);
        return;
    }

    if (op->failed) {
        ngx_str_set(&body, "{\"error\":\"RedisUnavailable\",\"message\":"
                           "\"Redis did not answer\"}\n");
        ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "application/json", &body);
        return;
    }

    if (op->stage == 0) {
        op->stage = 1;

        dead = op->kind == NGX_HTTP_DEFERRED_OPS_STATUS
               ? NGX_HTTP_DEFERRED_DEAD_LIMIT : 0;

        q = op->queues.elts;
        for (i = 0; i < op->queues.nelts; i++) {
            oc = ngx_http_deferred_op_cmd(op, NGX_HTTP_DEFERRED_OP_QUEUE, i);
            if (oc == NULL) {
                break;
            }

            rc = dq_cmd_status(&oc->cmd, dq_str_c((char *) q[i].name.data),
                               (int64_t) dead);

            if (ngx_http_deferred_op_script(op, oc, rc) != NGX_OK) {
                break;
            }
        }

        w = op->workers.elts;
        for (i = 0; !op->failed && i < op->workers.nelts; i++) {
            ngx_str_set(&argv[0], "HGETALL");
            argv[1].len = sizeof(DQ_WORKER_KEY_PREFIX) - 1 + w[i].id.len;
            argv[1].data = ngx_pnalloc(op->pool, argv[1].len);
            if (argv[1].data == NULL) {
                op->failed = 1;
                break;
            }

            ngx_memcpy(ngx_cpymem(argv[1].data, DQ_WORKER_KEY_PREFIX,
                                  sizeof(DQ_WORKER_KEY_PREFIX) - 1),
                       w[i].id.data, w[i].id.len);

            (void) ngx_http_deferred_op_plain(op,
                                              NGX_HTTP_DEFERRED_OP_WORKER,
                                              i, 2, argv);
        }

        if (op->pending) {
            return;     /* failures answered when the sent ones are back */
        }

        if (op->failed) {
            ngx_http_deferred_op_next(op);
            return;
        }
    }

    if (op->stage == 1) {
        /* a sharded queue's other shards (their count came with shard
         * 0's conf) */
        op->stage = 2;

        if (ngx_http_deferred_op_shards(op) != NGX_OK || op->pending) {
            return;
        }

        if (op->failed) {
            ngx_http_deferred_op_next(op);
            return;
        }
    }

    ngx_http_deferred_op_sum(op);

    if (op->kind == NGX_HTTP_DEFERRED_OPS_METRICS) {
        ngx_http_deferred_render_metrics(op);

    } else {
        ngx_http_deferred_render_status(op);
    }
}


/* the status of shards 1..N-1 of every sharded queue: NGX_ERROR when the
 * op went (failed and answered) */

static ngx_int_t
ngx_http_deferred_op_shards(ngx_http_deferred_op_t *op)
{
    int                          rc;
    u_char                       name[DQ_SHARD_NAME_MAX + 1];
    ngx_uint_t                   i, j, dead, budget;
    ngx_http_deferred_op_cmd_t  *oc;
    ngx_http_deferred_qstat_t   *q;

    dead = op->kind == NGX_HTTP_DEFERRED_OPS_STATUS
           ? NGX_HTTP_DEFERRED_DEAD_LIMIT : 0;

    q = op->queues.elts;
    budget = NGX_HTTP_DEFERRED_MAX_SHARD_CALLS;

    for (i = 0; i < op->queues.nelts && !op->failed; i++) {
        if (!q[i].ok || q[i].shards <= 1) {
            continue;
        }

        /* a scrape's cost stays bounded (1,000 queues of 64 shards would
         * be 63,000 calls): the queues past the cap show shard 0 alone */
        if (q[i].shards - 1 > budget) {
            op->unsummed++;
            continue;
        }

        budget -= q[i].shards - 1;

        q[i].parts = ngx_pcalloc(op->pool, q[i].shards
                                 * sizeof(ngx_http_deferred_qstat_t));
        if (q[i].parts == NULL) {
            op->failed = 1;
            break;
        }

        for (j = 1; j < q[i].shards; j++) {
            if (dq_shard_name((char *) name, sizeof(name),
                              dq_str_c((char *) q[i].name.data), j)
                == 0)
            {
                op->failed = 1;
                break;
            }

            oc = ngx_http_deferred_op_cmd(op, NGX_HTTP_DEFERRED_OP_SHARD, i);
            if (oc == NULL) {
                break;
            }

            oc->shard = j;

            rc = dq_cmd_status(&oc->cmd, dq_str_c((char *) name),
                               (int64_t) dead);

            if (ngx_http_deferred_op_script(op, oc, rc) != NGX_OK) {
                break;
            }
        }
    }

    return NGX_OK;
}


/* a sharded queue is shown as one queue: the sums over its shards, and
 * each shard's own (parts[0] is shard 0's, copied before the sums) */

static void
ngx_http_deferred_op_sum(ngx_http_deferred_op_t *op)
{
    u_char                     *p;
    double                      rate;
    int64_t                     maxc;
    ngx_uint_t                  i, j, k, unl_rate, unl_maxc;
    ngx_http_deferred_dead_t   *d, *nd;
    ngx_http_deferred_qstat_t  *q, *s;

    q = op->queues.elts;

    for (i = 0; i < op->queues.nelts; i++) {
        if (q[i].parts == NULL) {
            continue;
        }

        q[i].parts[0] = q[i];
        q[i].parts[0].parts = NULL;

        rate = 0;
        maxc = 0;
        unl_rate = 0;
        unl_maxc = 0;

        for (j = 0; j < q[i].shards; j++) {
            s = &q[i].parts[j];

            if (s->rate.len) {
                rate += strtod((char *) s->rate.data, NULL);
                unl_rate |= strtod((char *) s->rate.data, NULL) <= 0;
            }

            maxc += s->max_concurrent.len
                    ? strtoll((char *) s->max_concurrent.data, NULL, 10) : 0;
            unl_maxc |= s->max_concurrent.len == 0
                        || strtoll((char *) s->max_concurrent.data, NULL, 10)
                           <= 0;

            if (j == 0 || !s->ok) {
                continue;
            }

            q[i].waiting += s->waiting;
            q[i].due += s->due;
            q[i].running += s->running;
            q[i].dead += s->dead;
            q[i].oldest = ngx_max(q[i].oldest, s->oldest);
            q[i].paused |= s->paused;
            q[i].v1_left += s->v1_left;
            q[i].late_sum += s->late_sum;
            q[i].late_count += s->late_count;

            for (k = 0; k < 7; k++) {
                q[i].counters[k] += s->counters[k];
            }

            for (k = 0; k < NGX_HTTP_DEFERRED_NEVENTS; k++) {
                q[i].events[k] += s->events[k];
            }

            for (k = 0; k <= DQ_LATENESS_NBOUNDS; k++) {
                q[i].late[k] += s->late[k];
            }

            d = s->dead_tasks.elts;
            for (k = 0; k < s->dead_tasks.nelts; k++) {
                nd = ngx_array_push(&q[i].dead_tasks);
                if (nd == NULL) {
                    break;
                }

                *nd = d[k];
            }
        }

        /* the shards' newest dead tasks, the newest of them kept */
        ngx_qsort(q[i].dead_tasks.elts, q[i].dead_tasks.nelts,
                  sizeof(ngx_http_deferred_dead_t),
                  ngx_http_deferred_dead_cmp);

        if (q[i].dead_tasks.nelts > NGX_HTTP_DEFERRED_DEAD_LIMIT) {
            q[i].dead_tasks.nelts = NGX_HTTP_DEFERRED_DEAD_LIMIT;
        }

        /* the whole queue's limits: the shards' shares summed */

        if (q[i].rate.len) {
            p = ngx_pnalloc(op->pool, 64);
            if (p) {
                q[i].rate.len = snprintf((char *) p, 64, "%.6g",
                                         unl_rate ? 0.0 : rate);
                q[i].rate.data = p;
            }
        }

        if (q[i].max_concurrent.len) {
            p = ngx_pnalloc(op->pool, NGX_INT64_LEN + 1);
            if (p) {
                q[i].max_concurrent.len = ngx_sprintf(p, "%L",
                                                      unl_maxc ? 0 : maxc)
                                          - p;
                q[i].max_concurrent.data = p;
            }
        }
    }
}


/* newest first (died_ms is a decimal string, NUL-terminated: op_copy) */

static int ngx_libc_cdecl
ngx_http_deferred_dead_cmp(const void *one, const void *two)
{
    long long                        a, b;
    const ngx_http_deferred_dead_t  *x = one, *y = two;

    a = x->died.len ? strtoll((char *) x->died.data, NULL, 10) : 0;
    b = y->died.len ? strtoll((char *) y->died.data, NULL, 10) : 0;

    return a < b ? 1 : a > b ? -1 : 0;
}
