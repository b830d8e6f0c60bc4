
/*
 * ngx_http_deferred_module: what deferred_status and deferred_metrics
 * collected (ngx_http_deferred_status.c), written out: JSON, and
 * Prometheus text exposition. Nothing here asks Redis.
 */


#include "ngx_http_deferred_ops.h"


/* rendering: a growing buffer in the op's pool */

typedef struct {
    ngx_pool_t  *pool;
    u_char      *start, *pos, *end;
    ngx_uint_t   failed;
} ngx_http_deferred_out_t;


static u_char *
ngx_http_deferred_out_room(ngx_http_deferred_out_t *o, size_t n)
{
    u_char  *p;
    size_t   size;

    if (o->failed) {
        return NULL;
    }

    if ((size_t) (o->end - o->pos) >= n) {
        return o->pos;
    }

    size = (o->end - o->start) * 2 + n + 4096;
    p = ngx_pnalloc(o->pool, size);
    if (p == NULL) {
        o->failed = 1;
        return NULL;
    }

    o->pos = ngx_cpymem(p, o->start, o->pos - o->start);
    o->start = p;
    o->end = p + size;

    return o->pos;
}


static void
ngx_http_deferred_out(ngx_http_deferred_out_t *o, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    /* every formatted piece here is short: numbers and fixed text */
    p = ngx_http_deferred_out_room(o, 512);
    if (p == NULL) {
        return;
    }

    va_start(args, fmt);
    o->pos = ngx_vslprintf(p, o->end, fmt, args);
    va_end(args);
}


/* a JSON string: '"', '\\' and control characters escaped, bytes that
 * are not UTF-8 replaced by '?' (the reply must stay valid JSON) */

static void
ngx_http_deferred_out_json(ngx_http_deferred_out_t *o, ngx_str_t *s)
{
    u_char      *p, c;
    size_t       i, n, k;
    static u_char hex[] = "0123456789abcdef";

    p = ngx_http_deferred_out_room(o, s->len * 6 + 2);
    if (p == NULL) {
        return;
    }

    *p++ = '"';

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = c;

        } else if (c < 0x20 || c == 0x7f) {
            *p++ = '\\'; *p++ = 'u'; *p++ = '0'; *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];

        } else if (c < 0x80) {
            *p++ = c;

        } else {
            n = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
                : (c & 0xf8) == 0xf0 ? 3 : 0;

            for (k = 1; n && k <= n; k++) {
                if (i + k >= s->len || (s->data[i + k] & 0xc0) != 0x80) {
                    n = 0;
                }
            }

            if (n == 0) {
                *p++ = '?';
                continue;
            }

            p = ngx_cpymem(p, s->data + i, n + 1);
            i += n;
        }
    }

    *p++ = '"';
    o->pos = p;
}


/* a Prometheus label value: '\\', '"' and newline escaped */

static void
ngx_http_deferred_out_label(ngx_http_deferred_out_t *o, ngx_str_t *s)
{
    u_char  *p;
    size_t   i;

    p = ngx_http_deferred_out_room(o, s->len * 2 + 2);
    if (p == NULL) {
        return;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] == '\\' || s->data[i] == '"') {
            *p++ = '\\';
            *p++ = s->data[i];

        } else if (s->data[i] == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else {
            *p++ = s->data[i];
        }
    }

    o->pos = p;
}


static ngx_str_t *
ngx_http_deferred_wfield(ngx_http_deferred_wstat_t *w, const char *name)
{
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    kv = w->fields.elts;

    for (i = 0; i < w->fields.nelts; i++) {
        if (kv[i].key.len && ngx_strcmp(kv[i].key.data, name) == 0) {
            return &kv[i].value;
        }
    }

    return NULL;
}


/* a number a worker's heartbeat holds, 0 when absent */

static int64_t
ngx_http_deferred_wnum(ngx_http_deferred_wstat_t *w, const char *name)
{
    ngx_str_t  *v;

    v = ngx_http_deferred_wfield(w, name);

    return v && v->len ? strtoll((char *) v->data, NULL, 10) : 0;
}


/* tasks of a queue (or shard) in a state: due, delayed, running, dead */

static int64_t
ngx_http_deferred_in_state(ngx_http_deferred_qstat_t *q, ngx_uint_t state)
{
    return state == 0 ? q->due : state == 1 ? q->waiting - q->due
           : state == 2 ? q->running : q->dead;
}


/* one Prometheus sample: series (up to its label's opening quote), the
 * label's value, more labels, the value; "ms": milliseconds written as
 * seconds */

static void
ngx_http_deferred_out_sample(ngx_http_deferred_out_t *o, const char *series,
    ngx_str_t *label, const char *more, int64_t val, ngx_uint_t ms)
{
    ngx_http_deferred_out(o, "%s", series);
    ngx_http_deferred_out_label(o, label);

    if (ms) {
        ngx_http_deferred_out(o, "\"%s} %L.%03L\n", more, val / 1000,
                              val % 1000);

    } else {
        ngx_http_deferred_out(o, "\"%s} %L\n", more, val);
    }
}


/*
 * Whether a queue's counters (and lateness histogram) are exposed: read,
 * and whole. A sharded queue past the shard calls' cap has shard 0's
 * numbers only; as a counter, that would be the sum in one scrape and
 * shard 0's in another (the cap's share moves as queues come), which
 * Prometheus reads as a reset: left out instead (review R6, t/195).
 */

static ngx_uint_t
ngx_http_deferred_counted(ngx_http_deferred_qstat_t *q)
{
    return q->ok && (q->shards <= 1 || q->parts != NULL);
}


/* how many queues Redis refused the status call of (not shown) */

static ngx_uint_t
ngx_http_deferred_unread(ngx_http_deferred_op_t *op)
{
    ngx_uint_t                  i, n;
    ngx_http_deferred_qstat_t  *q;

    q = op->queues.elts;
    n = 0;

    for (i = 0; i < op->queues.nelts; i++) {
        n += q[i].unread.len != 0;
    }

    return n;
}


void
ngx_http_deferred_render_status(ngx_http_deferred_op_t *op)
{
    ngx_str_t                   body, *v, nul = ngx_null_string;
    ngx_uint_t                  i, k, n;
    int64_t                     cum;
    ngx_http_deferred_out_t     o;
    ngx_http_deferred_qstat_t  *q, *s;
    ngx_http_deferred_wstat_t  *w;
    ngx_http_deferred_dead_t   *d;
    static const char          *wnum[] = { "pid", "child", "running",
                                           "done", "failed", "started_ms",
                                           "beat_ms" };

    ngx_memzero(&o, sizeof(o));
    o.pool = op->pool;

    ngx_http_deferred_out(&o, "{\"now_ms\":%L,\"redis\":\"up\","
                          "\"queues_not_shown\":%ui,"
                          "\"queues_not_summed\":%ui,"
                          "\"queues_not_read\":%ui,\"queues_unread\":[",
                          op->now_ms, op->dropped, op->unsummed,
                          ngx_http_deferred_unread(op));

    q = op->queues.elts;
    n = 0;

    /* the queues whose status call Redis refused, with its answer */
    for (i = 0; i < op->queues.nelts; i++) {
        if (q[i].unread.len == 0) {
            continue;
        }

        ngx_http_deferred_out(&o, "%s{\"queue\":", n++ ? "," : "");
        ngx_http_deferred_out_json(&o, &q[i].name);
        ngx_http_deferred_out(&o, ",\"error\":");
        ngx_http_deferred_out_json(&o, &q[i].unread);
        ngx_http_deferred_out(&o, "}");
    }

    ngx_http_deferred_out(&o, "],\"queues\":[");
    n = 0;

    for (i = 0; i < op->queues.nelts; i++) {
        if (!q[i].ok) {
            continue;
        }

        ngx_http_deferred_out(&o, "%s{\"queue\":", n++ ? "," : "");
        ngx_http_deferred_out_json(&o, &q[i].name);
        ngx_http_deferred_out(&o, ",\"waiting\":%L,\"due\":%L,\"delayed\":%L,"
                              "\"running\":%L,\"dead\":%L,\"paused\":%s,"
                              "\"rate\":",
                              q[i].waiting, q[i].due, q[i].waiting - q[i].due,
                              q[i].running, q[i].dead,
                              q[i].paused ? "true" : "false");
        if (q[i].rate.len) {
            ngx_http_deferred_out_json(&o, &q[i].rate);
        } else {
            ngx_http_deferred_out(&o, "null");
        }

        ngx_http_deferred_out(&o, ",\"max_concurrent\":");
        if (q[i].max_concurrent.len) {
            ngx_http_deferred_out_json(&o, &q[i].max_concurrent);
        } else {
            ngx_http_deferred_out(&o, "null");
        }

        if (q[i].oldest >= 0) {
            ngx_http_deferred_out(&o, ",\"oldest_due_age_ms\":%L",
                                  q[i].oldest);
        } else {
            ngx_http_deferred_out(&o, ",\"oldest_due_age_ms\":null");
        }

        ngx_http_deferred_out(&o, ",\"v1_left\":%L,\"shards\":%ui",
                              q[i].v1_left,
                              q[i].shards > 1 ? q[i].shards : 1);

        for (k = 0; q[i].parts && k < q[i].shards; k++) {
            s = &q[i].parts[k];
            ngx_http_deferred_out(&o, "%s{\"shard\":%ui,\"waiting\":%L,"
                                  "\"due\":%L,\"running\":%L,\"dead\":%L,"
                                  "\"enqueued\":%L,\"done\":%L}",
                                  k ? "," : ",\"shard_stats\":[", k,
                                  s->waiting, s->due, s->running, s->dead,
                                  s->counters[0], s->counters[1]);
        }

        if (q[i].parts) {
            ngx_http_deferred_out(&o, "]");
        }

        ngx_http_deferred_out(&o, ",\"counters\":{");
        for (k = 0; k < 7; k++) {
            ngx_http_deferred_out(&o, "%s\"%s\":%L", k ? "," : "",
                                  ngx_http_deferred_counter_names[k],
                                  q[i].counters[k]);
        }

        ngx_http_deferred_out(&o, "},\"events\":{");
        for (k = 0; k < NGX_HTTP_DEFERRED_NEVENTS; k++) {
            ngx_http_deferred_out(&o, "%s\"%s\":%L", k ? "," : "",
                                  ngx_http_deferred_events[k].field,
                                  q[i].events[k]);
        }

        ngx_http_deferred_out(&o, "},\"lateness_ms\":{\"buckets\":[");
        cum = 0;
        for (k = 0; k <= DQ_LATENESS_NBOUNDS; k++) {
            cum += q[i].late[k];
            if (k < DQ_LATENESS_NBOUNDS) {
                ngx_http_deferred_out(&o, "%s[%L,%L]", k ? "," : "",
                                      ngx_http_deferred_late_bounds[k], cum);
            } else {
                ngx_http_deferred_out(&o, ",[\"+Inf\",%L]", cum);
            }
        }

        ngx_http_deferred_out(&o, "],\"sum\":%L,\"count\":%L},"
                              "\"dead_tasks\":[", q[i].late_sum,
                              q[i].late_count);

        d = q[i].dead_tasks.elts;
        for (k = 0; k < q[i].dead_tasks.nelts; k++) {
            ngx_http_deferred_out(&o, "%s{\"id\":", k ? "," : "");
            ngx_http_deferred_out_json(&o, &d[k].id);
            ngx_http_deferred_out(&o, ",\"died_ms\":%L,\"function\":",
                                  (int64_t) (d[k].died.len
                                      ? strtoll((char *) d[k].died.data,
                                                NULL, 10) : 0));
            ngx_http_deferred_out_json(&o, &d[k].func);
            ngx_http_deferred_out(&o, ",\"error\":");
            ngx_http_deferred_out_json(&o, &d[k].error);
            ngx_http_deferred_out(&o, "}");
        }

        ngx_http_deferred_out(&o, "]}");
    }

    ngx_http_deferred_out(&o, "],\"workers\":[");

    w = op->workers.elts;
    n = 0;

    for (i = 0; i < op->workers.nelts; i++) {
        if (w[i].fields.nelts == 0) {
            continue;   /* expired between the two reads */
        }

        ngx_http_deferred_out(&o, "%s{\"id\":", n++ ? "," : "");
        ngx_http_deferred_out_json(&o, &w[i].id);
        ngx_http_deferred_out(&o, ",\"host\":");
        v = ngx_http_deferred_wfield(&w[i], "host");
        ngx_http_deferred_out_json(&o, v ? v : &nul);
        ngx_http_deferred_out(&o, ",\"queues\":");
        v = ngx_http_deferred_wfield(&w[i], "queues");
        ngx_http_deferred_out_json(&o, v ? v : &nul);

        for (k = 0; k < sizeof(wnum) / sizeof(wnum[0]); k++) {
            ngx_http_deferred_out(&o, ",\"%s\":%L", wnum[k],
                                  ngx_http_deferred_wnum(&w[i], wnum[k]));
        }

        ngx_http_deferred_out(&o, "}");
    }

    ngx_http_deferred_out(&o, "]}\n");

    if (o.failed) {
        ngx_http_deferred_op_finish(op, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "application/json", NULL);
        return;
    }

    body.data = o.start;
    body.len = o.pos - o.start;

    ngx_http_deferred_op_finish(op, NGX_HTTP_OK, "application/json", &body);
}


void
ngx_http_deferred_render_metrics(ngx_http_deferred_op_t *op)
{
    u_char                      more[64], series[64];
    ngx_str_t                   body;
    ngx_uint_t                  i, k, s, live;
    int64_t                     cum, val;
    ngx_http_deferred_out_t     o;
    ngx_http_deferred_qstat_t  *q;
    ngx_http_deferred_wstat_t  *w;
    static const char          *states[] = { "due", "delayed", "running",
                                             "dead" };
    static const char          *chelp[7] = {
        "Tasks stored by enqueue.",
        "Tasks that ran and succeeded.",
        "Failed attempts given another try.",
        "Tasks moved to the dead set.",
        "Dead tasks run again by an operator.",
        "Tasks deleted by an operator.",
        "Expired leases taken back (a worker died or stalled)."
    };

    ngx_memzero(&o, sizeof(o));
    o.pool = op->pool;
    q = op->queues.elts;

    ngx_http_deferred_out(&o, "# HELP deferred_tasks Tasks in a queue by "
                          "state (due and delayed are waiting).\n"
                          "# TYPE deferred_tasks gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        for (s = 0; q[i].ok && s < 4; s++) {
            ngx_sprintf(more, ",state=\"%s\"%Z", states[s]);
            ngx_http_deferred_out_sample(&o, "deferred_tasks{queue=\"",
                                         &q[i].name, (char *) more,
                                         ngx_http_deferred_in_state(&q[i], s),
                                         0);
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_queue_shards Shards of a "
                          "queue (1: not sharded; deferred_tasks and the "
                          "counters are the sums over them).\n"
                          "# TYPE deferred_queue_shards gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        if (q[i].ok) {
            ngx_http_deferred_out_sample(&o, "deferred_queue_shards{queue=\"",
                                         &q[i].name, "",
                                         q[i].shards > 1 ? q[i].shards : 1,
                                         0);
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_shard_tasks Tasks in one "
                          "shard of a sharded queue by state.\n"
                          "# TYPE deferred_shard_tasks gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        for (k = 0; q[i].ok && q[i].parts && k < q[i].shards; k++) {
            for (s = 0; s < 4; s++) {
                ngx_sprintf(more, ",shard=\"%ui\",state=\"%s\"%Z", k,
                            states[s]);
                ngx_http_deferred_out_sample(&o,
                    "deferred_shard_tasks{queue=\"", &q[i].name,
                    (char *) more,
                    ngx_http_deferred_in_state(&q[i].parts[k], s), 0);
            }
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_v1_tasks Tasks still in "
                          "contract v1's keys (dq:{q}:*): the workers and "
                          "deferred-cli migrate move them.\n"
                          "# TYPE deferred_v1_tasks gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        if (q[i].ok) {
            ngx_http_deferred_out_sample(&o, "deferred_v1_tasks{queue=\"",
                                         &q[i].name, "", q[i].v1_left, 0);
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_queue_paused 1 if the queue "
                          "is paused.\n# TYPE deferred_queue_paused gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        if (q[i].ok) {
            ngx_http_deferred_out_sample(&o, "deferred_queue_paused{queue=\"",
                                         &q[i].name, "", q[i].paused, 0);
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_oldest_due_age_seconds How "
                          "long the oldest due task has waited past its "
                          "ETA (0: none due).\n"
                          "# TYPE deferred_oldest_due_age_seconds gauge\n");

    for (i = 0; i < op->queues.nelts; i++) {
        if (q[i].ok) {
            ngx_http_deferred_out_sample(&o,
                "deferred_oldest_due_age_seconds{queue=\"", &q[i].name, "",
                q[i].oldest > 0 ? q[i].oldest : 0, 1);
        }
    }

    for (k = 0; k < 7; k++) {
        ngx_http_deferred_out(&o, "# HELP deferred_tasks_%s_total %s\n"
                              "# TYPE deferred_tasks_%s_total counter\n",
                              ngx_http_deferred_counter_names[k], chelp[k],
                              ngx_http_deferred_counter_names[k]);

        ngx_sprintf(series, "deferred_tasks_%s_total{queue=\"%Z",
                    ngx_http_deferred_counter_names[k]);

        for (i = 0; i < op->queues.nelts; i++) {
            if (ngx_http_deferred_counted(&q[i])) {
                ngx_http_deferred_out_sample(&o, (char *) series, &q[i].name,
                                             "", q[i].counters[k], 0);
            }
        }
    }

    for (k = 0; k < NGX_HTTP_DEFERRED_NEVENTS; k++) {
        ngx_http_deferred_out(&o, "# HELP deferred_%s_total %s\n"
                              "# TYPE deferred_%s_total counter\n",
                              ngx_http_deferred_events[k].metric,
                              ngx_http_deferred_events[k].help,
                              ngx_http_deferred_events[k].metric);

        ngx_sprintf(series, "deferred_%s_total{queue=\"%Z",
                    ngx_http_deferred_events[k].metric);

        for (i = 0; i < op->queues.nelts; i++) {
            if (ngx_http_deferred_counted(&q[i])) {
                ngx_http_deferred_out_sample(&o, (char *) series, &q[i].name,
                                             "", q[i].events[k], 0);
            }
        }
    }

    ngx_http_deferred_out(&o, "# HELP deferred_task_lateness_seconds Time "
                          "from a task's ETA to its claim, for tasks that "
                          "ran.\n"
                          "# TYPE deferred_task_lateness_seconds histogram\n");

    for (i = 0; i < op->queues.nelts; i++) {
        if (!ngx_http_deferred_counted(&q[i])) {
            continue;
        }

        cum = 0;

        for (k = 0; k <= DQ_LATENESS_NBOUNDS; k++) {
            cum += q[i].late[k];

            if (k < DQ_LATENESS_NBOUNDS) {
                val = ngx_http_deferred_late_bounds[k];
                ngx_sprintf(more, ",le=\"%L.%03L\"%Z", val / 1000,
                            val % 1000);

            } else {
                ngx_sprintf(more, ",le=\"+Inf\"%Z");
            }

            ngx_http_deferred_out_sample(&o,
                "deferred_task_lateness_seconds_bucket{queue=\"",
                &q[i].name, (char *) more, cum, 0);
        }

        ngx_http_deferred_out_sample(&o,
            "deferred_task_lateness_seconds_sum{queue=\"", &q[i].name, "",
            q[i].late_sum, 1);
        ngx_http_deferred_out_sample(&o,
            "deferred_task_lateness_seconds_count{queue=\"", &q[i].name, "",
            cum, 0);
    }

    w = op->workers.elts;
    live = 0;

    for (i = 0; i < op->workers.nelts; i++) {
        live += w[i].fields.nelts != 0;
    }

    ngx_http_deferred_out(&o, "# HELP deferred_queues_not_shown Queues in "
                          "dq:queues past the %d reported (deferred-cli "
                          "forget drops empty ones).\n"
                          "# TYPE deferred_queues_not_shown gauge\n"
                          "deferred_queues_not_shown %ui\n",
                          NGX_HTTP_DEFERRED_MAX_QUEUES, op->dropped);

    ngx_http_deferred_out(&o, "# HELP deferred_queues_not_summed Sharded "
                          "queues shown with shard 0's numbers only (past "
                          "%d shard status calls per scrape): gauges; "
                          "their counters and lateness are left out.\n"
                          "# TYPE deferred_queues_not_summed gauge\n"
                          "deferred_queues_not_summed %ui\n",
                          NGX_HTTP_DEFERRED_MAX_SHARD_CALLS, op->unsummed);

    ngx_http_deferred_out(&o, "# HELP deferred_queues_not_read Queues left "
                          "out of this scrape: Redis refused their status "
                          "call (TRYAGAIN while their slot migrates; the "
                          "status page names them).\n"
                          "# TYPE deferred_queues_not_read gauge\n"
                          "deferred_queues_not_read %ui\n",
                          ngx_http_deferred_unread(op));

    ngx_http_deferred_out(&o, "# HELP deferred_workers Live worker children "
                          "(heartbeat younger than %d s).\n"
                          "# TYPE deferred_workers gauge\n"
                          "deferred_workers %ui\n",
                          DQ_WORKER_TTL_MS / 1000, live);

    ngx_http_deferred_out(&o, "# HELP deferred_worker_running_tasks Tasks a "
                          "worker child runs now.\n"
                          "# TYPE deferred_worker_running_tasks gauge\n");

    for (i = 0; i < op->workers.nelts; i++) {
        if (w[i].fields.nelts == 0) {
            continue;
        }

        ngx_http_deferred_out_sample(&o,
            "deferred_worker_running_tasks{worker=\"", &w[i].id, "",
            ngx_http_deferred_wnum(&w[i], "running"), 0);
    }

    ngx_http_deferred_out(&o, "# HELP deferred_redis_up 1 if Redis "
                          "answered this scrape.\n"
                          "# TYPE deferred_redis_up gauge\n"
                          "deferred_redis_up 1\n");

    if (o.failed) {
        ngx_http_deferred_op_finish(op, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "text/plain", NULL);
        return;
    }

    body.data = o.start;
    body.len = o.pos - o.start;

    ngx_http_deferred_op_finish(op, NGX_HTTP_OK,
                                NGX_HTTP_DEFERRED_METRICS_TYPE,
                                &body);
}
