/*
 * The replies of the contract's scripts (lib/lua/NAME.lua), read and
 * checked: the other half of lib/dq_cmd.c, which builds their KEYS/ARGV.
 * Nothing here talks to Redis.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dq_contract.h"

/* --------------------------------------------------------------- replies */

/* NULL, error and wrong-shape replies become DQ_EREDIS with the text. */
static int
dq__reply_check(const redisReply *r, int type, const char *what,
                dq_error_t *err)
{
    if (r == NULL) {
        return dq_error_set(err, DQ_EREDIS, NULL, "%s: no reply from redis",
                            what);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        return dq_error_set(err, DQ_EREDIS, NULL, "%s: %.*s", what,
                            (int) (r->len > 200 ? 200 : r->len), r->str);
    }
    if (r->type != type) {
        return dq_error_set(err, DQ_EREDIS, NULL,
                            "%s: unexpected reply type %d", what, r->type);
    }
    return DQ_OK;
}

/* An integer, or a score's text (a whole number of ms as Redis formats it:
 * "%.17g" of an integral double up to 2^53 prints its digits). */
static int
dq__score_at(const redisReply *r, size_t i, int64_t *v)
{
    const redisReply *e = r->element[i];
    char              buf[32], *end;
    double            d;

    if (e->type == REDIS_REPLY_INTEGER) {
        *v = (int64_t) e->integer;
        return 0;
    }
    if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len >= sizeof(buf))
    {
        return -1;
    }
    memcpy(buf, e->str, e->len);
    buf[e->len] = '\0';
    d = strtod(buf, &end);
    if (*end != '\0' || !(d >= -9e15 && d <= 9e15)) {
        return -1;
    }
    *v = (int64_t) d;
    return 0;
}

static int
dq__int_at(const redisReply *r, size_t i, int64_t *v)
{
    if (r->element[i]->type != REDIS_REPLY_INTEGER) {
        return -1;
    }
    *v = (int64_t) r->element[i]->integer;
    return 0;
}

/* The ETA enqueue.lua gives a task it stored, from the call's now */
static int64_t
dq__eta_stored(const dq_enqueue_item_t *it, int64_t now)
{
    if (it->eta_ms >= 0) {
        return it->eta_ms;
    }
    return it->countdown_ms > 0 ? now + it->countdown_ms : now;
}

int
dq_reply_enqueue(const redisReply *r, const dq_enqueue_item_t *items,
                 size_t n, dq_enqueue_result_t *out, dq_error_t *err)
{
    int64_t status, eta, now;
    size_t  i;
    int     rc = dq__reply_check(r, REDIS_REPLY_ARRAY, "enqueue", err);

    if (rc != DQ_OK) {
        return rc;
    }
    if (r->elements == 1 && n > 0 && items && dq__int_at(r, 0, &now) == 0) {
        /* { now_ms }: every task stored now */
        for (i = 0; i < n; i++) {
            out[i].status = DQ_OK;
            out[i].existed = 0;
            out[i].eta_ms = dq__eta_stored(&items[i], now);
        }
        return DQ_OK;
    }
    if (r->elements != 1 + 2 * n || dq__int_at(r, 0, &now)) {
        return dq_error_set(err, DQ_EREDIS, NULL,
                            "enqueue: reply of %zu elements for %zu tasks",
                            (size_t) r->elements, n);
    }
    for (i = 0; i < n; i++) {
        if (dq__int_at(r, 1 + 2 * i, &status)
            || dq__int_at(r, 2 + 2 * i, &eta))
        {
            return dq_error_set(err, DQ_EREDIS, NULL,
                                "enqueue: malformed reply");
        }
        out[i].existed = status == 1;
        out[i].eta_ms = eta;
        switch (status) {
        case 0:
        case 1:
            out[i].status = DQ_OK;
            break;
        case 2:
            out[i].status = DQ_EDUPLICATE;
            break;
        case 3:
            out[i].status = DQ_ETOMBSTONE;
            break;
        default:
            return dq_error_set(err, DQ_EREDIS, NULL,
                                "enqueue: unknown status %" PRId64, status);
        }
    }
    return DQ_OK;
}

int
dq_reply_claim(const redisReply *r, dq_claim_result_t *out, size_t cap,
               dq_error_t *err)
{
    return dq_reply_cycle(r, 0, NULL, out, cap, err);
}

/* A claimed task's state (claim.lua): the integer 0 (no history: the first
 * run is the claim's now), or "retries:first_run_ms:runs:failed_ms". */
static int
dq__state_at(const redisReply *r, size_t i, int64_t now, dq_claimed_t *t)
{
    const redisReply *e = r->element[i];
    int64_t           v[4];
    size_t            k, j;

    if (e->type == REDIS_REPLY_INTEGER && e->integer == 0) {
        t->retries = 0;
        t->first_run_ms = now;
        t->runs = 0;
        t->failed_ms = 0;
        return 0;
    }
    if (e->type != REDIS_REPLY_STRING) {
        return -1;
    }
    for (k = 0, j = 0; k < 4; k++, j++) {
        size_t start = j;

        v[k] = 0;
        while (j < e->len && e->str[j] >= '0' && e->str[j] <= '9') {
            if (j - start >= 16) {
                return -1;
            }
            v[k] = v[k] * 10 + (e->str[j] - '0');
            j++;
        }
        if (j == start || (k < 3 ? j >= e->len || e->str[j] != ':'
                                 : j != e->len))
        {
            return -1;
        }
    }
    t->retries = v[0];
    t->first_run_ms = v[1];
    t->runs = v[2];
    t->failed_ms = v[3];
    return 0;
}

/* { now_ms, next_ms, claim id, { ack status... }, then 4 values a task:
 * id, envelope, eta, state } */
int
dq_reply_cycle(const redisReply *r, size_t n_acks, int *ack_status,
               dq_claim_result_t *out, size_t cap, dq_error_t *err)
{
    size_t        i, n;
    dq_claimed_t *t;
    redisReply   *e, *cid, *acks;
    int           rc = dq__reply_check(r, REDIS_REPLY_ARRAY, "claim", err);

    if (rc != DQ_OK) {
        return rc;
    }
    if (r->elements < 4 || (r->elements - 4) % 4 != 0
        || dq__int_at(r, 0, &out->now_ms) || dq__int_at(r, 1, &out->next_ms)
        || r->element[2]->type != REDIS_REPLY_STRING
        || r->element[2]->len > DQ_CLAIM_ID_MAX
        || r->element[3]->type != REDIS_REPLY_ARRAY)
    {
        return dq_error_set(err, DQ_EREDIS, NULL, "claim: malformed reply");
    }
    cid = r->element[2];
    acks = r->element[3];
    if (acks->elements != n_acks) {
        return dq_error_set(err, DQ_EREDIS, NULL,
                            "claim: %zu ack statuses for %zu acks",
                            (size_t) acks->elements, n_acks);
    }
    for (i = 0; i < n_acks; i++) {
        if (acks->element[i]->type != REDIS_REPLY_INTEGER) {
            return dq_error_set(err, DQ_EREDIS, NULL,
                                "claim: malformed ack status");
        }
        ack_status[i] = acks->element[i]->integer != 0;
    }
    n = (r->elements - 4) / 4;
    if (n > cap) {
        return dq_error_set(err, DQ_ERR, NULL,
                            "claim: %zu tasks claimed, room for %zu", n, cap);
    }
    for (i = 0; i < n; i++) {
        t = &out->tasks[i];
        e = r->element[4 + i * 4];
        if (e->type != REDIS_REPLY_STRING) {
            return dq_error_set(err, DQ_EREDIS, NULL, "claim: malformed id");
        }
        t->id.ptr = e->str;
        t->id.len = e->len;
        t->claim.ptr = cid->str;
        t->claim.len = cid->len;
        e = r->element[5 + i * 4];
        if (e->type == REDIS_REPLY_STRING) {
            t->envelope.ptr = e->str;
            t->envelope.len = e->len;
        } else if (e->type == REDIS_REPLY_NIL) {
            t->envelope.ptr = NULL;
            t->envelope.len = 0;
        } else {
            return dq_error_set(err, DQ_EREDIS, NULL,
                                "claim: malformed envelope");
        }
        if (dq__score_at(r, 6 + i * 4, &t->eta_ms)
            || dq__state_at(r, 7 + i * 4, out->now_ms, t))
        {
            return dq_error_set(err, DQ_EREDIS, NULL, "claim: malformed task");
        }
    }
    out->n = n;
    return DQ_OK;
}

int
dq_reply_release_claim(const redisReply *r, char *cursor, int64_t *released,
                       dq_error_t *err)
{
    int rc = dq__reply_check(r, REDIS_REPLY_ARRAY, "release_claim", err);

    if (rc != DQ_OK) {
        return rc;
    }
    if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[0]->len > 23 || dq__int_at(r, 1, released))
    {
        return dq_error_set(err, DQ_EREDIS, NULL,
                            "release_claim: malformed reply");
    }
    memcpy(cursor, r->element[0]->str, r->element[0]->len);
    cursor[r->element[0]->len] = '\0';
    return DQ_OK;
}

int
dq_reply_requeue(const redisReply *r, int *requeued, dq_error_t *err)
{
    int rc = dq__reply_check(r, REDIS_REPLY_INTEGER, "requeue", err);

    *requeued = 0;
    if (rc != DQ_OK) {
        return rc;
    }
    if (r->integer == 2) {
        return dq_error_set(err, DQ_EDUPLICATE, "name", "requeue: the "
                            "task's name is held by a live task now");
    }
    *requeued = r->integer == 1;
    return DQ_OK;
}

int
dq_reply_requeue_bulk(const redisReply *r, int64_t *next_offset,
                      int64_t *requeued, int64_t *conflicts, dq_error_t *err)
{
    int rc = dq__reply_check(r, REDIS_REPLY_ARRAY, "requeue", err);

    if (rc != DQ_OK) {
        return rc;
    }
    if (r->elements != 3 || dq__int_at(r, 0, next_offset)
        || dq__int_at(r, 1, requeued) || dq__int_at(r, 2, conflicts))
    {
        return dq_error_set(err, DQ_EREDIS, NULL, "requeue: malformed reply");
    }
    return DQ_OK;
}

int
dq_reply_statuses(const redisReply *r, size_t n, int *out, dq_error_t *err)
{
    int64_t v;
    size_t  i;
    int     rc;

    if (r && r->type == REDIS_REPLY_INTEGER && n == 1) {
        out[0] = r->integer != 0;
        return DQ_OK;
    }
    rc = dq__reply_check(r, REDIS_REPLY_ARRAY, "script", err);
    if (rc != DQ_OK) {
        return rc;
    }
    if (r->elements != n) {
        return dq_error_set(err, DQ_EREDIS, NULL,
                            "script: %zu statuses for %zu tasks",
                            (size_t) r->elements, n);
    }
    for (i = 0; i < n; i++) {
        if (dq__int_at(r, i, &v)) {
            return dq_error_set(err, DQ_EREDIS, NULL,
                                "script: malformed status");
        }
        out[i] = v != 0;
    }
    return DQ_OK;
}

int
dq_reply_migrate(const redisReply *r, char *cursor, int64_t *moved,
                 int64_t *left, dq_error_t *err)
{
    int rc = dq__reply_check(r, REDIS_REPLY_ARRAY, "migrate", err);

    if (rc != DQ_OK) {
        return rc;
    }
    if (r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[0]->len > 23 || dq__int_at(r, 1, moved)
        || dq__int_at(r, 2, left))
    {
        return dq_error_set(err, DQ_EREDIS, NULL, "migrate: malformed reply");
    }
    memcpy(cursor, r->element[0]->str, r->element[0]->len);
    cursor[r->element[0]->len] = '\0';
    return DQ_OK;
}
