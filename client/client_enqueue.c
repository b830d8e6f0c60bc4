/*
 * The C client's enqueue (dq_defer, dq_defer_many): a task is built
 * exactly as an HTTP client's would be: the options become a public
 * request map (msgpack), which goes through the same strict decoder and
 * dq_request_parse as a POST body, then dq_envelope_encode and the enqueue
 * script. So a C program cannot store anything the nginx module would
 * refuse. The connection, the script calls and the replica waits are
 * client.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"


/* ------------------------------------------------------------ defer */

static int
dq__pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int
dq__pack_key(msgpack_packer *pk, const char *k)
{
    return dq__pack_cstr(pk, k);
}

/* The options as a public request map (what an HTTP client would POST). */
static int
dq__pack_request(msgpack_packer *pk, const char *func, const dq_args_t *args,
                 const dq_defer_opts_t *o)
{
    const dq_retry_t *r = &o->retry;
    uint32_t          n = 1, nr = 0;
    size_t            i;
    int               rc;

    n += args != NULL;
    n += o->kwargs != NULL;
    n += o->queue != NULL;
    n += o->name != NULL;
    n += o->id != NULL;
    n += o->url != NULL;
    n += o->countdown_ms >= 0;
    n += o->eta_ms >= 0;
    n += o->nheaders > 0;
    nr = (r->retry_limit >= 0) + (r->age_limit_ms >= 0)
         + (r->min_backoff_ms >= 0) + (r->max_backoff_ms >= 0)
         + (r->max_doublings >= 0);
    n += nr > 0;

    rc = msgpack_pack_map(pk, n) || dq__pack_key(pk, "func")
         || dq__pack_cstr(pk, func);
    if (!rc && args) {
        rc = dq__pack_key(pk, "args") || dq__args_pack(args, pk);
    }
    if (!rc && o->kwargs) {
        rc = dq__pack_key(pk, "kwargs") || dq__args_pack(o->kwargs, pk);
    }
    if (!rc && o->queue) {
        rc = dq__pack_key(pk, "queue") || dq__pack_cstr(pk, o->queue);
    }
    if (!rc && o->name) {
        rc = dq__pack_key(pk, "name") || dq__pack_cstr(pk, o->name);
    }
    if (!rc && o->id) {
        rc = dq__pack_key(pk, "id") || dq__pack_cstr(pk, o->id);
    }
    if (!rc && o->url) {
        rc = dq__pack_key(pk, "url") || dq__pack_cstr(pk, o->url);
    }
    if (!rc && o->countdown_ms >= 0) {
        rc = dq__pack_key(pk, "countdown")
             || msgpack_pack_double(pk, (double) o->countdown_ms / 1000.0);
    }
    if (!rc && o->eta_ms >= 0) {
        rc = dq__pack_key(pk, "eta")
             || msgpack_pack_double(pk, (double) o->eta_ms / 1000.0);
    }
    if (!rc && o->nheaders > 0) {
        rc = dq__pack_key(pk, "headers")
             || msgpack_pack_map(pk, o->nheaders);
        for (i = 0; !rc && i < o->nheaders; i++) {
            rc = dq__pack_cstr(pk, o->headers[i].name ? o->headers[i].name
                                                      : "")
                 || dq__pack_cstr(pk, o->headers[i].value
                                      ? o->headers[i].value : "");
        }
    }
    if (!rc && nr > 0) {
        rc = dq__pack_key(pk, "retry_options") || msgpack_pack_map(pk, nr);
        if (!rc && r->retry_limit >= 0) {
            rc = dq__pack_key(pk, "task_retry_limit")
                 || msgpack_pack_int64(pk, r->retry_limit);
        }
        if (!rc && r->age_limit_ms >= 0) {
            rc = dq__pack_key(pk, "task_age_limit")
                 || msgpack_pack_double(pk, r->age_limit_ms / 1000.0);
        }
        if (!rc && r->min_backoff_ms >= 0) {
            rc = dq__pack_key(pk, "min_backoff_seconds")
                 || msgpack_pack_double(pk, r->min_backoff_ms / 1000.0);
        }
        if (!rc && r->max_backoff_ms >= 0) {
            rc = dq__pack_key(pk, "max_backoff_seconds")
                 || msgpack_pack_double(pk, r->max_backoff_ms / 1000.0);
        }
        if (!rc && r->max_doublings >= 0) {
            rc = dq__pack_key(pk, "max_doublings")
                 || msgpack_pack_int64(pk, r->max_doublings);
        }
    }
    return rc ? -1 : 0;
}

/* One task prepared for the enqueue script. */
typedef struct {
    size_t   env_off, env_len;    /* in the shared envelope buffer */
    char     id[DQ_ID_SIZE];
    char     queue[DQ_QUEUE_NAME_MAX + 1];
    char     shard[DQ_SHARD_NAME_MAX + 1];   /* the queue's shard it goes
                                             to (client_shards.c) */
    char    *name;                /* malloc'd copy, or NULL */
    int64_t  eta_ms, countdown_ms;
    int      status;
    int64_t  result_eta;
    int      sent;
    int      answered;            /* its call's reply was read: status is
                                     Redis's answer */
    int      keyed;               /* id given by the caller */
} dq__prep_t;

/* err's text names the task as nginx's 413 does (review RLO finding 3):
 * "tasks[i]: ..." in a batch (the checks shared with the module, such as
 * dq_msgpack_unpack's size refusal, name none), and no "request: " for
 * one task (dq_envelope_encode's name for it; the client's own one-task
 * errors name the field alone: "func: required"). */
static void
dq__name_task(dq_error_t *err, const char *field)
{
    static const char  one[] = "request: ";
    char               msg[sizeof(err->msg)];
    size_t             fl = strlen(field);

    if (fl == 0) {
        if (strncmp(err->msg, one, sizeof(one) - 1) == 0) {
            memmove(err->msg, err->msg + sizeof(one) - 1,
                    strlen(err->msg + sizeof(one) - 1) + 1);
        }
    } else if (fl + 3 < sizeof(msg) && strncmp(err->msg, field, fl) != 0) {
        size_t ml = strlen(err->msg);

        if (fl + 2 + ml >= sizeof(msg)) {
            ml = sizeof(msg) - fl - 3;          /* cut at the end */
        }
        memcpy(msg, field, fl);
        memcpy(msg + fl, ": ", 2);
        memcpy(msg + fl + 2, err->msg, ml);
        msg[fl + 2 + ml] = '\0';
        memcpy(err->msg, msg, sizeof(msg));
    }
}

/* Validate one call and append its envelope to envs. field: "tasks[i]"
 * (task i of a batch) or "" (one task). */
static int
dq__prepare(dq_client_t *c, const char *func, const dq_args_t *args,
            const dq_defer_opts_t *opts, const char *field, long task,
            msgpack_sbuffer *envs, dq__prep_t *p)
{
    static const dq_defer_opts_t defaults = DQ_DEFER_OPTS_INIT;
    msgpack_sbuffer reqbuf;
    msgpack_packer  pk;
    msgpack_zone    zone;
    msgpack_object  root;
    dq_request_t    req;
    dq_error_t      err;
    int             rc;

    if (opts == NULL) {
        opts = &defaults;
    }
    if (func == NULL) {
        return dq__fail(c, DQ_EINVAL, "%s%sfunc: required", field,
                        field[0] ? "." : "");
    }
    if ((args && (args->broken || args->key_pending || args->is_map))
        || (opts->kwargs && (opts->kwargs->broken || opts->kwargs->key_pending
                             || !opts->kwargs->is_map)))
    {
        return dq__fail(c, DQ_EINVAL, "%s%s%s: incomplete or failed "
                        "arguments (args must come from dq_args_new, kwargs "
                        "from dq_kwargs_new with a value after every key)",
                        field, field[0] ? "." : "",
                        args && (args->broken || args->key_pending
                                 || args->is_map) ? "args" : "kwargs");
    }
    if (opts->nheaders && opts->headers == NULL) {
        return dq__fail(c, DQ_EINVAL, "%s%sheaders: NULL with nheaders %zu",
                        field, field[0] ? "." : "", opts->nheaders);
    }
    msgpack_sbuffer_init(&reqbuf);
    msgpack_packer_init(&pk, &reqbuf, msgpack_sbuffer_write);
    if (dq__pack_request(&pk, func, args, opts) != 0) {
        msgpack_sbuffer_destroy(&reqbuf);
        return dq__fail(c, DQ_ENOMEM, "out of memory building the task");
    }
    if (!msgpack_zone_init(&zone, 2048)) {
        msgpack_sbuffer_destroy(&reqbuf);
        return dq__fail(c, DQ_ENOMEM, "out of memory");
    }
    rc = dq_msgpack_unpack(reqbuf.data, reqbuf.size, &c->lim, &zone, &root,
                           &err);
    if (rc == DQ_OK) {
        rc = dq_request_parse(&root, field[0] ? field : NULL, &req, &err);
    }
    if (rc == DQ_OK && req.id.ptr && req.id.len > DQ_ID_LEN) {
        rc = dq_error_set(&err, DQ_EINVAL, "id", "%s%sid: at most %d "
                          "characters through the C client (it fits the "
                          "id_out buffers)", field, field[0] ? "." : "",
                          DQ_ID_LEN);
    }
    if (rc == DQ_OK) {
        if (req.id.ptr) {
            /* the caller's id: the enqueue is idempotent */
            memcpy(p->id, req.id.ptr, req.id.len);
            p->id[req.id.len] = '\0';
            p->keyed = 1;
        } else {
            dq_id_new(p->id);
        }
        p->env_off = envs->size;
        rc = dq_envelope_encode(&req, task, dq_now_ms(), &c->lim, envs,
                                &err);
        p->env_len = envs->size - p->env_off;
    }
    if (rc == DQ_OK) {
        memcpy(p->queue, req.queue.ptr, req.queue.len);
        p->queue[req.queue.len] = '\0';
        p->name = NULL;
        if (req.name.ptr) {
            p->name = strndup(req.name.ptr, req.name.len);
            if (p->name == NULL) {
                rc = DQ_ENOMEM;
                dq_error_set(&err, rc, NULL, "out of memory");
            }
        }
        p->eta_ms = req.eta_ms;
        p->countdown_ms = req.countdown_ms;
    }
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&reqbuf);
    if (rc != DQ_OK) {
        dq__name_task(&err, field);
        return dq__fail_err(c, &err);
    }
    return DQ_OK;
}

static void
dq__status_text(dq_client_t *c, const dq__prep_t *p)
{
    if (p->status == DQ_EDUPLICATE) {
        dq__fail(c, DQ_EDUPLICATE, "task name \"%s\" in queue \"%s\": a task "
                 "with this name is waiting or running", p->name, p->queue);
    } else if (p->status == DQ_ETOMBSTONE) {
        dq__fail(c, DQ_ETOMBSTONE, "task name \"%s\" in queue \"%s\": a task "
                 "with this name ran or died recently (tombstoned)", p->name,
                 p->queue);
    }
}

/* One enqueue call's reply r (freed here), for tasks [first, first + n)
 * of items and res. An error reply is the node refusing the call (TRYAGAIN, OOM,
 * CLUSTERDOWN, READONLY...): its tasks get DQ_EREDIS (the first such
 * reply is errstr, *refused set) and the other calls' results stand, so a
 * caller of dq_defer_many sees which tasks to send again. Either way the
 * call's results are final (kept even if a later call's reply is lost).
 * DQ_OK, or a malformed reply's error (errstr set, nothing answered). */
static int
dq__call_reply(dq_client_t *c, redisReply *r, dq__prep_t *preps,
               const size_t *idx, const dq_enqueue_item_t *items,
               dq_enqueue_result_t *res, size_t first, size_t n, int *refused)
{
    dq_error_t err;
    size_t     i;
    int        rc = DQ_OK;

    if (r->type == REDIS_REPLY_ERROR) {
        for (i = first; i < first + n; i++) {
            res[i].status = DQ_EREDIS;
        }
        if (!*refused) {
            dq__fail(c, DQ_EREDIS, "enqueue: %.*s", (int) r->len, r->str);
            *refused = 1;
        }
    } else if ((rc = dq_reply_enqueue(r, &items[first], n, &res[first],
                                      &err)) != DQ_OK)
    {
        dq__fail_err(c, &err);
    }
    freeReplyObject(r);
    for (i = first; rc == DQ_OK && i < first + n; i++) {
        preps[idx[i]].status = res[i].status;
        preps[idx[i]].result_eta = res[i].eta_ms;
        preps[idx[i]].answered = 1;
    }
    return rc;
}

/* Enqueue prepared tasks: one script call per queue per DQ__CHUNK tasks,
 * all pipelined, then all replies read. Each task whose call's reply was
 * read gets its result (answered); the others keep answered 0 and the
 * error returned is theirs. With dq_client_set_wait, the WAIT follows;
 * if it fails, or the calls stopped before it, the answered tasks that
 * were stored (DQ_OK) get DQ_EREDIS ("stored, but ..."); a duplicate or
 * tombstoned one keeps its status (nothing was written for it). */
static int
dq__enqueue(dq_client_t *c, dq__prep_t *preps, size_t n,
            const msgpack_sbuffer *envs)
{
    dq_enqueue_item_t   *items = NULL;
    dq_enqueue_result_t *res = NULL;
    size_t              *idx = NULL, ncalls = 0, i, j, k, m;
    dq_cmd_t            *cmds = NULL;
    size_t              *call_first = NULL, *call_n = NULL;
    unsigned char       *call_sadd = NULL;     /* SADD dq:queues follows */
    redisReply          *r;
    const char          *sadd[3];
    char                 qkey[DQ_SHARD_NAME_MAX + 1], why[sizeof(c->errstr)];
    int                  rc = DQ_OK, refused = 0, wrc, unplaced;

    items = calloc(n, sizeof(*items));
    res = calloc(n, sizeof(*res));
    idx = calloc(n, sizeof(*idx));
    cmds = calloc(n, sizeof(*cmds));        /* at most n calls */
    call_first = calloc(n, sizeof(*call_first));
    call_n = calloc(n, sizeof(*call_n));
    call_sadd = calloc(n, sizeof(*call_sadd));
    if (!items || !res || !idx || !cmds || !call_first || !call_n
        || !call_sadd)
    {
        rc = dq__fail(c, DQ_ENOMEM, "out of memory");
        goto done;
    }
    /* the shard of each task's queue (a sharded queue: by its name, else
     * by the id the caller chose, so a retry finds the stored task; else
     * round robin; docs/SCALING.md) */
    for (i = 0; i < n; i++) {
        if (preps[i].sent) {
            continue;
        }
        rc = dq__shard_target(c, preps[i].queue,
                              preps[i].name ? preps[i].name
                              : preps[i].keyed ? preps[i].id : NULL,
                              preps[i].shard, &unplaced);
        if (unplaced) {
            /* its queue's count unread, the task named or keyed: it
             * fails alone, nothing sent (the first such errstr kept) */
            if (!refused) {
                memcpy(why, c->errstr, sizeof(why));
                refused = 1;
            }
            preps[i].sent = 1;
            preps[i].status = DQ_EREDIS;
            preps[i].answered = 1;
            rc = DQ_OK;
            continue;
        }
        if (rc != DQ_OK) {
            goto done;
        }
    }
    if (refused) {
        memcpy(c->errstr, why, sizeof(why));
    }
    /* group by shard, keeping the callers' order inside a shard */
    m = 0;
    for (i = 0; i < n; i++) {
        if (preps[i].sent) {
            continue;
        }
        snprintf(qkey, sizeof(qkey), "%s", preps[i].shard);
        for (j = i; j < n; j++) {
            if (preps[j].sent || strcmp(preps[j].shard, qkey) != 0) {
                continue;
            }
            if (ncalls == 0 || call_n[ncalls - 1] == DQ__CHUNK
                || strcmp(preps[idx[call_first[ncalls - 1]]].shard, qkey) != 0)
            {
                call_first[ncalls] = m;
                call_n[ncalls] = 0;
                ncalls++;
            }
            preps[j].sent = 1;
            idx[m] = j;
            items[m].id = dq_str_c(preps[j].id);
            items[m].envelope.ptr = envs->data + preps[j].env_off;
            items[m].envelope.len = preps[j].env_len;
            items[m].name = dq_str_c(preps[j].name);
            items[m].eta_ms = preps[j].eta_ms;
            items[m].countdown_ms = preps[j].countdown_ms;
            items[m].fresh = !preps[j].keyed;   /* dq_id_new's */
            items[m].keyed = preps[j].keyed;
            call_n[ncalls - 1]++;
            m++;
        }
    }
    for (k = 0; k < ncalls; k++) {
        dq_cmd_init(&cmds[k]);
        rc = dq_cmd_enqueue(&cmds[k],
                            dq_str_c(preps[idx[call_first[k]]].shard),
                            &items[call_first[k]], call_n[k], c->tombstone_ms);
        if (rc != DQ_OK) {
            dq__fail(c, rc, "cannot build the enqueue command");
            ncalls = k + 1;
            goto done;
        }
    }
    if (c->cl) {
        /* WAIT where these calls are answered (not where N was read) */
        dq__cl_wait_reset(c);
    }
    /* pipeline: every call, plus the informational queue set once per
     * queue per connection (any I/O error drops the connection and the
     * record with it, so a queue is marked only once its SADD is queued on
     * a connection that then stays up or forgets) */
    for (k = 0; k < ncalls; k++) {
        rc = dq__append(c, cmds[k].argc, cmds[k].argv, cmds[k].argvlen);
        if (rc != DQ_OK) {
            goto done;
        }
        sadd[2] = preps[idx[call_first[k]]].queue;
        if (dq__qset_has(&c->queues, sadd[2])) {
            continue;
        }
        sadd[0] = "SADD";
        sadd[1] = DQ_QUEUES_KEY;
        if ((rc = dq__append(c, 3, sadd, NULL)) != DQ_OK) {
            goto done;
        }
        if (dq__qset_add(&c->queues, sadd[2]) != 0) {
            dq__disconnect(c);
            rc = dq__fail(c, DQ_ENOMEM, "redis: cannot queue the command");
            goto done;
        }
        call_sadd[k] = 1;
    }
    for (k = 0; k < ncalls; k++) {
        if (dq__get_reply(c, &r) != DQ_OK) {
            rc = DQ_EREDIS;
            goto done;
        }
        if (dq_reply_is_noscript(r)) {
            /* not run: send it again as EVAL once the pipeline drained */
            freeReplyObject(r);
            r = NULL;
        }
        if (r) {
            rc = dq__call_reply(c, r, preps, idx, items, res,
                                call_first[k], call_n[k], &refused);
            if (rc != DQ_OK) {
                goto drain;
            }
            call_n[k] = 0;      /* done: its tasks' status says so */
        }
        if (call_sadd[k]) {
            if (dq__get_reply(c, &r) != DQ_OK) {
                rc = DQ_EREDIS;
                goto done;
            }
            freeReplyObject(r);    /* SADD: informational, errors ignored */
        }
    }
    for (k = 0; k < ncalls; k++) {
        if (call_n[k] == 0) {
            continue;
        }
        rc = dq__run(c, &cmds[k], &r);
        if (rc != DQ_OK) {
            goto done;
        }
        rc = dq__call_reply(c, r, preps, idx, items, res, call_first[k],
                            call_n[k], &refused);
        if (rc != DQ_OK) {
            goto done;
        }
    }
    goto done;

drain:
    /* a malformed reply: read the rest so the connection stays in step
     * (this call's SADD, then every later call and its SADD) */
    for (i = call_sadd[k], k++; k < ncalls; k++) {
        i += 1 + call_sadd[k];
    }
    while (i-- > 0 && dq__get_reply(c, &r) == DQ_OK) {
        freeReplyObject(r);
    }
done:
    if (c->wait_replicas > 0) {
        /* stored is not enough: replicated, or the stored ones fail */
        wrc = rc == DQ_OK ? dq__wait(c) : rc;
        for (i = 0; wrc != DQ_OK && i < n; i++) {
            if (preps[i].answered && preps[i].status == DQ_OK) {
                preps[i].status = wrc;
            }
        }
    }
    if (cmds) {
        for (k = 0; k < ncalls; k++) {
            dq_cmd_free(&cmds[k]);
        }
    }
    free(items);
    free(res);
    free(idx);
    free(cmds);
    free(call_first);
    free(call_n);
    free(call_sadd);
    return rc;
}

static int
dq__defer_many(dq_client_t *c, const dq_defer_req_t *reqs, size_t n,
               int *statuses, char (*ids)[DQ_ID_SIZE], int64_t *etas)
{
    msgpack_sbuffer envs;
    dq__prep_t     *preps;
    char            field[32], first_err[sizeof(c->errstr)];
    size_t          i, j, first_bad = n, nvalid = 0;
    int             rc = DQ_OK;

    c->errstr[0] = '\0';
    if (n == 0) {
        return DQ_OK;
    }
    if (reqs == NULL || statuses == NULL) {
        return dq__fail(c, DQ_EINVAL, "dq_defer_many: NULL reqs or statuses");
    }
    preps = calloc(n, sizeof(*preps));
    if (preps == NULL) {
        return dq__fail(c, DQ_ENOMEM, "out of memory");
    }
    msgpack_sbuffer_init(&envs);
    for (i = 0; i < n; i++) {
        field[0] = '\0';
        if (n > 1) {
            snprintf(field, sizeof(field), "tasks[%zu]", i);
        }
        statuses[i] = dq__prepare(c, reqs[i].func, reqs[i].args,
                                  reqs[i].opts, field, n > 1 ? (long) i : -1,
                                  &envs, &preps[i]);
        if (statuses[i] != DQ_OK) {
            preps[i].sent = 1;      /* invalid: never sent */
            if (first_bad == n) {
                first_bad = i;
                rc = statuses[i];
                memcpy(first_err, c->errstr, sizeof(first_err));
            }
        } else {
            nvalid++;
        }
    }
    if (nvalid == 0) {
        memcpy(c->errstr, first_err, sizeof(first_err));
        goto done;
    }
    c->errstr[0] = '\0';
    rc = dq__ready(c);
    if (rc == DQ_OK) {
        rc = dq__enqueue(c, preps, n, &envs);
    }
    for (i = 0; i < n; i++) {
        if (statuses[i] != DQ_OK) {
            if (ids) {
                ids[i][0] = '\0';  /* refused before sending */
            }
            continue;
        }
        /* a call answered keeps its tasks' results when a later one's
         * reply is lost; only the unanswered ones get the error */
        statuses[i] = preps[i].answered ? preps[i].status
                      : rc != DQ_OK ? rc : DQ_EREDIS;
        if (ids) {
            memcpy(ids[i], preps[i].id, DQ_ID_SIZE);
        }
        if (etas) {
            etas[i] = preps[i].result_eta;
        }
    }
    if (rc == DQ_OK) {
        /* the calls were made (see statuses); errstr tells why the first
         * refused task was refused, but a Redis error (a node's refusal,
         * a failed WAIT) keeps its text: a duplicate says nothing new */
        for (i = 0; i < n && statuses[i] == DQ_OK; i++) {
            /* find it */
        }
        for (j = i; j < n && statuses[j] != DQ_EREDIS; j++) {
            /* a Redis error after it? */
        }
        if (i < n && i == first_bad) {
            memcpy(c->errstr, first_err, sizeof(first_err));
        } else if (i < n && j == n) {
            dq__status_text(c, &preps[i]);
        }
    }

done:
    for (i = 0; i < n; i++) {
        free(preps[i].name);
    }
    free(preps);
    msgpack_sbuffer_destroy(&envs);
    return rc;
}

int
dq_defer_many(dq_client_t *c, const dq_defer_req_t *reqs, size_t n,
              int *statuses, char (*ids)[DQ_ID_SIZE])
{
    return dq__defer_many(c, reqs, n, statuses, ids, NULL);
}

int
dq_defer(dq_client_t *c, const char *func, const dq_args_t *args,
         const dq_defer_opts_t *opts, char id_out[DQ_ID_SIZE],
         int64_t *eta_ms)
{
    dq_defer_req_t req;
    int            status = DQ_ERR, rc;
    char           ids[1][DQ_ID_SIZE];
    int64_t        eta = 0;

    req.func = func;
    req.args = args;
    req.opts = opts;
    rc = dq__defer_many(c, &req, 1, &status, ids, &eta);
    if (rc == DQ_OK) {
        rc = status;
    }
    if (rc != DQ_OK) {
        return rc;
    }
    if (id_out) {
        memcpy(id_out, ids[0], DQ_ID_SIZE);
    }
    if (eta_ms) {
        *eta_ms = eta;
    }
    return DQ_OK;
}
