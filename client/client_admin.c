/*
 * The C client's inspection and administration calls: queue statistics,
 * requeue of a dead task, a task's last error. Part of the C client (not
 * built into nginx).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

/* A call on a whole queue: the last error cleared, a valid name and its
 * shard count n. */
static int
dq__queue_args(dq_client_t *c, const char *queue, dq_str_t *q, unsigned *n)
{
    int rc;

    c->errstr[0] = '\0';
    if ((rc = dq__queue_arg(c, queue, q)) != DQ_OK) {
        return rc;
    }
    return dq_queue_shards(c, q->ptr, n);
}

/* A call on one task: the last error cleared, valid queue and id,
 * connected, and the queue's shard count n. */
static int
dq__task_args(dq_client_t *c, const char *queue, const char *id, dq_str_t *q,
              unsigned *n)
{
    int rc;

    c->errstr[0] = '\0';
    if ((rc = dq__queue_arg(c, queue, q)) != DQ_OK) {
        return rc;
    }
    if (id == NULL || id[0] == '\0') {
        return dq__fail(c, DQ_EINVAL, "id: required");
    }
    if ((rc = dq__ready(c)) != DQ_OK) {
        return rc;
    }
    return dq_queue_shards(c, q->ptr, n);
}

/* One shard's (or an unsharded queue's) counts into out. */
static int
dq__stats_one(dq_client_t *c, dq_str_t q, dq_queue_stats_t *out)
{
    static const dq_key_kind_t zsets[3] = { DQ_KEY_ETA, DQ_KEY_LEASE,
                                             DQ_KEY_DEAD };
    const char *argv[12];
    char        keys[4][DQ_KEY_MAX];
    redisReply *r;
    int64_t     v[3];
    int         i, rc = DQ_OK;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < 3; i++) {
        dq_key_format(keys[i], sizeof(keys[i]), q, zsets[i]);
        argv[0] = "ZCARD";
        argv[1] = keys[i];
        if ((rc = dq__append(c, 2, argv, NULL)) != DQ_OK) {
            return rc;
        }
    }
    dq_key_format(keys[3], sizeof(keys[3]), q, DQ_KEY_STATS);
    argv[0] = "HMGET";
    argv[1] = keys[3];
    argv[2] = "enqueued";
    argv[3] = "done";
    argv[4] = "retried";
    argv[5] = "dead";
    argv[6] = "reclaimed";
    argv[7] = "released";
    argv[8] = "unrunnable";
    argv[9] = "dead_over_max";
    argv[10] = "cold";             /* the cold tier's tasks: waiting */
    argv[11] = "due_n";            /* the due list's tasks: waiting */
    if ((rc = dq__append(c, 12, argv, NULL)) != DQ_OK) {
        return rc;
    }
    for (i = 0; i < 4; i++) {
        if (dq__get_reply(c, &r) != DQ_OK) {
            return DQ_EREDIS;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            rc = dq__fail(c, DQ_EREDIS, "redis: %s", r->str);
        } else if (i < 3) {
            v[i] = dq_reply_int(r);
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 10) {
            out->enqueued = dq_reply_int(r->element[0]);
            out->done = dq_reply_int(r->element[1]);
            out->retried = dq_reply_int(r->element[2]);
            out->dead_total = dq_reply_int(r->element[3]);
            out->reclaimed = dq_reply_int(r->element[4]);
            out->released = dq_reply_int(r->element[5]);
            out->unrunnable = dq_reply_int(r->element[6]);
            out->dead_over_max = dq_reply_int(r->element[7]);
            v[0] += dq_reply_off_eta(r->element[8], r->element[9], NULL);
        }
        freeReplyObject(r);
    }
    if (rc != DQ_OK) {
        return rc;
    }
    out->waiting = v[0];
    out->running = v[1];
    out->dead = v[2];
    return DQ_OK;
}

/* Into out: shard `shard`'s counts (all 0), or the sums over every shard
 * (all 1: a sharded queue is one queue). */
static int
dq__stats(dq_client_t *c, const char *queue, int all, unsigned shard,
          dq_queue_stats_t *out)
{
    dq_queue_stats_t one;
    char             s[DQ_SHARD_NAME_MAX + 1];
    dq_str_t         q;
    unsigned         n = 1, i, end;
    int              rc;

    memset(out, 0, sizeof(*out));
    if ((rc = dq__queue_args(c, queue, &q, &n)) != DQ_OK) {
        return rc;
    }
    if (!all && shard >= n) {
        return dq__fail(c, DQ_EINVAL, "queue \"%s\" has %u shards, no "
                        "shard %u", q.ptr, n, shard);
    }
    end = all ? n : shard + 1;
    for (i = all ? 0 : shard; i < end; i++) {
        dq_shard_name(s, sizeof(s), q, i);
        if ((rc = dq__stats_one(c, dq_str_c(s), &one)) != DQ_OK) {
            return rc;
        }
        out->waiting += one.waiting;
        out->running += one.running;
        out->dead += one.dead;
        out->enqueued += one.enqueued;
        out->done += one.done;
        out->retried += one.retried;
        out->dead_total += one.dead_total;
        out->reclaimed += one.reclaimed;
        out->released += one.released;
        out->unrunnable += one.unrunnable;
        out->dead_over_max += one.dead_over_max;
    }
    return DQ_OK;
}

int
dq_queue_stats_shard(dq_client_t *c, const char *queue, unsigned shard,
                     dq_queue_stats_t *out)
{
    return dq__stats(c, queue, 0, shard, out);
}

int
dq_queue_stats(dq_client_t *c, const char *queue, dq_queue_stats_t *out)
{
    return dq__stats(c, queue, 1, 0, out);
}

static int
dq__one_status(const redisReply *r, int *status, dq_error_t *err)
{
    return dq_reply_statuses(r, 1, status, err);
}

/* Run a built script command whose reply is one status, read by parse. */
static int
dq__status_call(dq_client_t *c, dq_cmd_t *cmd, int built, const char *what,
                int (*parse)(const redisReply *, int *, dq_error_t *),
                int *status)
{
    redisReply *r;
    dq_error_t  err;
    int         rc = built;

    if (rc == DQ_OK) {
        rc = dq__run(c, cmd, &r);
        if (rc == DQ_OK) {
            rc = parse(r, status, &err);
            if (rc != DQ_OK) {
                dq__fail_err(c, &err);
            }
            freeReplyObject(r);
        }
    } else {
        dq__fail(c, rc, "cannot build the %s command", what);
    }
    dq_cmd_free(cmd);
    return rc;
}

int
dq_requeue_dead(dq_client_t *c, const char *queue, const char *id)
{
    dq_cmd_t    cmd;
    dq_str_t    q;
    int         rc, ok = 0;

    char        s[DQ_SHARD_NAME_MAX + 1];
    unsigned    n = 1, i;

    if ((rc = dq__task_args(c, queue, id, &q, &n)) != DQ_OK) {
        return rc;
    }
    /* a sharded queue: the shard whose dead set holds it */
    for (i = 0; rc == DQ_OK && !ok && i < n; i++) {
        dq_shard_name(s, sizeof(s), q, i);
        dq_cmd_init(&cmd);
        rc = dq__status_call(c, &cmd,
                             dq_cmd_requeue(&cmd, dq_str_c(s), dq_str_c(id)),
                             "requeue", dq_reply_requeue, &ok);
    }
    if (rc == DQ_OK && !ok) {
        rc = dq__fail(c, DQ_ENOTFOUND, "task %s is not in the dead set of "
                      "queue \"%.*s\"", id, (int) q.len, q.ptr);
    }
    return rc;
}

int
dq_requeue_dead_all(dq_client_t *c, const char *queue, const char *match,
                    int64_t *requeued, int64_t *conflicts)
{
    dq_cmd_t    cmd;
    redisReply *r;
    dq_error_t  err;
    dq_str_t    q;
    int64_t     off = 0, n, k, done = 0, conf = 0;
    int         rc;
    char        s[DQ_SHARD_NAME_MAX + 1];
    unsigned    ns = 1, i;

    c->errstr[0] = '\0';
    if (requeued) {
        *requeued = 0;
    }
    if (conflicts) {
        *conflicts = 0;
    }
    if ((rc = dq__queue_arg(c, queue, &q)) != DQ_OK
        || (rc = dq__ready(c)) != DQ_OK
        || (rc = dq_queue_shards(c, q.ptr, &ns)) != DQ_OK)
    {
        return rc;
    }
    dq_cmd_init(&cmd);
    /* every shard of a sharded queue in turn */
    dq_shard_name(s, sizeof(s), q, 0);
    for (i = 0; off >= 0 || ++i < ns;) {
        if (off < 0) {
            off = 0;
            dq_shard_name(s, sizeof(s), q, i);
        }
        rc = dq_cmd_requeue_bulk(&cmd, dq_str_c(s), match, off,
                                 DQ_MAX_LEASE_ITEMS);
        if (rc != DQ_OK) {
            dq__fail(c, rc, "cannot build the requeue command");
            break;
        }
        if ((rc = dq__run(c, &cmd, &r)) != DQ_OK) {
            break;
        }
        rc = dq_reply_requeue_bulk(r, &off, &n, &k, &err);
        freeReplyObject(r);
        if (rc != DQ_OK) {
            dq__fail_err(c, &err);
            break;
        }
        done += n;
        conf += k;
    }
    dq_cmd_free(&cmd);
    if (requeued) {
        *requeued = done;
    }
    if (conflicts) {
        *conflicts = conf;
    }
    return rc;
}

int
dq_task_last_error(dq_client_t *c, const char *queue, const char *id,
                   char *buf, size_t size)
{
    const char *argv[3];
    char        key[DQ_KEY_MAX], s[DQ_SHARD_NAME_MAX + 1];
    redisReply *r = NULL;
    dq_str_t    q;
    unsigned    n = 1, i;
    int         rc;

    if (size) {
        buf[0] = '\0';
    }
    if ((rc = dq__task_args(c, queue, id, &q, &n)) != DQ_OK) {
        return rc;
    }
    /* a sharded queue: the first shard that has it */
    argv[0] = "HGET";
    argv[1] = key;
    argv[2] = id;
    for (i = 0; i < n; i++) {
        dq_shard_name(s, sizeof(s), q, i);
        dq_key_format(key, sizeof(key), dq_str_c(s), DQ_KEY_ERRORS);
        if ((rc = dq__append(c, 3, argv, NULL)) != DQ_OK) {
            return rc;
        }
        if (dq__get_reply(c, &r) != DQ_OK) {
            return DQ_EREDIS;
        }
        if (r->type != REDIS_REPLY_NIL || i + 1 == n) {
            break;
        }
        freeReplyObject(r);
    }
    if (r->type == REDIS_REPLY_STRING) {
        if (size) {
            snprintf(buf, size, "%.*s", (int) r->len, r->str);
        }
    } else if (r->type == REDIS_REPLY_NIL) {
        rc = dq__fail(c, DQ_ENOTFOUND, "no error recorded for task %s", id);
    } else {
        rc = dq__fail(c, DQ_EREDIS, "redis: %s",
                      r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
    }
    freeReplyObject(r);
    return rc;
}

int
dq_queue_pause(dq_client_t *c, const char *queue, int paused, int *changed)
{
    dq_cmd_t cmd;
    dq_str_t q;
    char     s[DQ_SHARD_NAME_MAX + 1];
    unsigned n = 1, i;
    int      rc = DQ_OK, st = 0, any = 0;

    if ((rc = dq__queue_args(c, queue, &q, &n)) != DQ_OK) {
        return rc;
    }
    /* every shard of a sharded queue, shard 0 last */
    for (i = n; rc == DQ_OK && i-- > 0;) {
        dq_shard_name(s, sizeof(s), q, i);
        dq_cmd_init(&cmd);
        rc = dq__status_call(c, &cmd,
                             dq_cmd_pause(&cmd, dq_str_c(s), paused != 0),
                             "pause", dq__one_status, &st);
        any |= st;
    }
    if (rc == DQ_OK && changed) {
        *changed = any;
    }
    return rc;
}
