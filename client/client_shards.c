/*
 * The C client's side of sharded queues (dq_contract.h "shards",
 * docs/SCALING.md): how many shards a queue has (read from its conf hash,
 * cached per client for DQ_SHARDS_TTL_MS), which shard an enqueue goes to,
 * and the queue settings call that grows N and splits the whole-queue
 * limits across the shards. Part of the C client (not built into nginx).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_impl.h"

static const char *const dq__fields[DQ_QCONF_NFIELDS] = DQ_QCONF_FIELDS;

static int64_t
dq__mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One field of shard i's conf into out ("" when absent). */
static int
dq__conf_get(dq_client_t *c, dq_str_t q, unsigned i, const char *field,
             char *out, size_t outlen)
{
    char        s[DQ_SHARD_NAME_MAX + 1], key[DQ_KEY_MAX];
    const char *argv[3];
    redisReply *r;
    int         rc = DQ_OK;

    if (dq_shard_name(s, sizeof(s), q, i) == 0
        || dq_key_format(key, sizeof(key), dq_str_c(s), DQ_KEY_CONF) == 0)
    {
        return dq__fail(c, DQ_EINVAL, "queue \"%.*s\": no shard %u",
                        (int) q.len, q.ptr, i);
    }
    argv[0] = "HGET";
    argv[1] = key;
    argv[2] = field;
    if ((rc = dq__append(c, 3, argv, NULL)) != DQ_OK) {
        return rc;
    }
    if (dq__get_reply(c, &r) != DQ_OK) {
        return DQ_EREDIS;
    }
    out[0] = '\0';
    if (r->type == REDIS_REPLY_ERROR) {
        c->refused = 1;
        rc = dq__fail(c, DQ_EREDIS, "redis: %s", r->str);
    } else if (r->type == REDIS_REPLY_STRING) {
        snprintf(out, outlen, "%s", r->str);
    }
    freeReplyObject(r);
    return rc;
}

/* The `shards` field of shard i's conf (1 when absent). */
static int
dq__shards_field(dq_client_t *c, dq_str_t q, unsigned i, unsigned *n)
{
    char v[8];
    int  rc;

    if ((rc = dq__conf_get(c, q, i, DQ_QCONF_SHARDS, v, sizeof(v)))
        == DQ_OK)
    {
        *n = dq_shards_parse(v, strlen(v));
    }
    return rc;
}

/* N as stored now (no cache): DQ_OK with *n, or an error. Shard 0's
 * `shards`; with probe, then the same field of shard N's conf while it
 * says more: every shard's conf holds N (dq_queue_set), so a shard 0
 * whose `shards` was lost (its master failed over before the write
 * reached a replica) is caught by the first shard it no longer names
 * (review R4 finding 4; one more HGET per read). The probe is the
 * readers' that must see every shard (stats, purge, settings: the CLI),
 * best effort (shard N's slot may sit on a node that is down: shard 0's
 * count stands); producers skip it: with N read low they put tasks in
 * served shards, and an enqueue must not hang on another node. */
static int
dq__shards_read(dq_client_t *c, dq_str_t q, unsigned *n, int probe)
{
    char     saved[sizeof(c->errstr)];
    unsigned m;
    int      rc;

    if ((rc = dq__ready(c)) != DQ_OK) {
        return rc;
    }
    if ((rc = dq__shards_field(c, q, 0, n)) != DQ_OK) {
        return rc;
    }
    memcpy(saved, c->errstr, sizeof(saved));
    while (probe && *n < DQ_MAX_SHARDS) {
        if (dq__shards_field(c, q, *n, &m) != DQ_OK || m <= *n) {
            break;
        }
        *n = m;
    }
    memcpy(c->errstr, saved, sizeof(saved));
    return DQ_OK;
}

/* N of queue q through the cache: its entry (NULL with *rc and errstr
 * set). A new queue takes a free entry, else an expired one, else the
 * least recently used (a producer cycling through up to
 * DQ__SHARD_CACHE queues reads each N once per DQ_SHARDS_TTL_MS). A read
 * Redis refused (an error reply: a wrong-type conf key, NOPERM, a node's
 * CLUSTERDOWN, told by c->refused, not by the connection: CLUSTERDOWN
 * drops the map, review RM finding 4) follows nginx's rule,
 * dq_shards_unread: a known N read at most DQ_SHARDS_KEEP_MS ago kept,
 * else 1 guessed; this queue's named and keyed tasks then fail alone,
 * the other queues' go (review R4 finding 9b). A lost connection fails
 * the call, as every command on it would. */
static dq__shard_cache_t *
dq__shards_entry(dq_client_t *c, dq_str_t q, int *rcp)
{
    dq__shard_cache_t *e, *slot = NULL, *lru = NULL;
    unsigned           n;
    int64_t            now = dq__mono_ms(), ttl = DQ_SHARDS_TTL_MS;
    size_t             i;
    int                rc, known = 0, guessed = 0;

    for (i = 0; i < DQ__SHARD_CACHE; i++) {
        e = &c->shards[i];
        if (e->name[0] != '\0' && strlen(e->name) == q.len
            && memcmp(e->name, q.ptr, q.len) == 0)
        {
            e->used = ++c->shard_tick;
            if (now < e->expires) {
                return e;
            }
            slot = e;           /* re-read; its round robin goes on */
            known = 1;
            break;
        }
        if (slot == NULL && (e->name[0] == '\0' || e->expires <= now)) {
            slot = e;
        }
        if (lru == NULL || e->used < lru->used) {
            lru = e;
        }
    }
    c->refused = 0;
    if ((rc = dq__shards_read(c, q, &n, 0)) != DQ_OK) {
        if (rc != DQ_EREDIS || !c->refused) {
            *rcp = rc;          /* not connected, or the connection lost */
            return NULL;
        }
        n = known ? slot->n : 0;
        guessed = known && slot->guessed;
        ttl = dq_shards_unread(&n, &guessed, known ? now - slot->known : 0);
    }
    if (slot == NULL) {
        slot = lru;
    }
    if (rc != DQ_OK) {
        snprintf(slot->why, sizeof(slot->why), "%.*s",
                 (int) sizeof(slot->why) - 1, c->errstr);
        c->errstr[0] = '\0';    /* told only to a task it refuses */
    }
    slot->used = ++c->shard_tick;
    if (strlen(slot->name) != q.len || memcmp(slot->name, q.ptr, q.len) != 0)
    {
        memcpy(slot->name, q.ptr, q.len);
        slot->name[q.len] = '\0';
        /* a new queue's round robin starts anywhere: producers that make
         * one enqueue each must not all fill shard 0 */
        slot->rr = (unsigned) now ^ (unsigned) getpid();
    }
    slot->n = n;
    slot->guessed = guessed;
    slot->expires = now + ttl;
    if (rc == DQ_OK) {
        slot->known = now;
    }
    return slot;
}

int
dq__shard_target(dq_client_t *c, const char *queue, const char *name,
                 char out[DQ_SHARD_NAME_MAX + 1], int *unplaced)
{
    dq__shard_cache_t *e;
    dq_str_t           q = dq_str_c(queue);
    unsigned           i;
    int                rc = DQ_OK;

    *unplaced = 0;
    if ((e = dq__shards_entry(c, q, &rc)) == NULL) {
        return rc;
    }
    if (!dq_shards_may_place(e->guessed, name != NULL)) {
        *unplaced = 1;
        return dq__fail(c, DQ_EREDIS, "queue \"%s\": its shard count could "
                        "not be read (%s): a named or keyed task is not "
                        "placed by a guess", queue, e->why);
    }
    /* unnamed: each queue's own round robin (one counter for all queues
     * put every task of two alternating queues in one shard each) */
    i = name ? dq_shard_of(dq_str_c(name), e->n)
             : e->n > 1 ? e->rr++ % e->n : 0;
    if (dq_shard_name(out, DQ_SHARD_NAME_MAX + 1, q, i) == 0) {
        return dq__fail(c, DQ_EINVAL, "queue \"%s\": no shard %u", queue, i);
    }
    return DQ_OK;
}

int
dq_queue_shards(dq_client_t *c, const char *queue, unsigned *n)
{
    dq_str_t q;
    int      rc;

    c->errstr[0] = '\0';
    if ((rc = dq__queue_arg(c, queue, &q)) != DQ_OK) {
        return rc;
    }
    return dq__shards_read(c, q, n, 1);
}

/* Run one configure script call on shard name s (fields/values, n pairs;
 * n 0: clear). */
static int
dq__configure(dq_client_t *c, const char *s, const char *const *f,
              const char *const *v, size_t n)
{
    dq_cmd_t    cmd;
    redisReply *r = NULL;
    int         rc;

    dq_cmd_init(&cmd);
    rc = dq_cmd_configure(&cmd, dq_str_c(s), n ? f : NULL, n ? v : NULL, n);
    if (rc != DQ_OK) {
        dq_cmd_free(&cmd);
        return dq__fail(c, rc, "queue \"%s\": cannot build the configure "
                        "command", s);
    }
    rc = dq__run(c, &cmd, &r);
    dq_cmd_free(&cmd);
    if (rc != DQ_OK) {
        return rc;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = dq__fail(c, strstr(r->str, "shards") ? DQ_EINVAL : DQ_EREDIS,
                      "queue \"%s\": %s", s, r->str);
    }
    freeReplyObject(r);
    return rc;
}

/* Every applied field of shard s into v ("" for absent). */
static int
dq__conf_read(dq_client_t *c, const char *s, char v[DQ_QCONF_NFIELDS][48])
{
    char        key[DQ_KEY_MAX];
    const char *argv[2 + DQ_QCONF_NFIELDS];
    redisReply *r;
    int         i, rc = DQ_OK;

    dq_key_format(key, sizeof(key), dq_str_c(s), DQ_KEY_CONF);
    argv[0] = "HMGET";
    argv[1] = key;
    for (i = 0; i < DQ_QCONF_NFIELDS; i++) {
        argv[2 + i] = dq__fields[i];
    }
    if ((rc = dq__append(c, 2 + DQ_QCONF_NFIELDS, argv, NULL)) != DQ_OK) {
        return rc;
    }
    if (dq__get_reply(c, &r) != DQ_OK) {
        return DQ_EREDIS;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != DQ_QCONF_NFIELDS) {
        rc = dq__fail(c, DQ_EREDIS, "redis: %s", r->type == REDIS_REPLY_ERROR
                      ? r->str : "unexpected reply to HMGET");
    }
    for (i = 0; rc == DQ_OK && i < DQ_QCONF_NFIELDS; i++) {
        snprintf(v[i], 48, "%s", r->element[i]->type == REDIS_REPLY_STRING
                 ? r->element[i]->str : "");
    }
    freeReplyObject(r);
    return rc;
}

/* Write the whole-queue settings v (fields DQ_QCONF_FIELDS, "" = not set)
 * to each of n shards, rate, bucket_size and max_concurrent split
 * (dq_shard_share), shard 0 last. */
static int
dq__conf_write(dq_client_t *c, dq_str_t q, unsigned n,
               char v[DQ_QCONF_NFIELDS][48])
{
    char        s[DQ_SHARD_NAME_MAX + 1], sv[DQ_QCONF_NFIELDS][48],
                split[120];
    const char *f[DQ_QCONF_NFIELDS + 1], *vals[DQ_QCONF_NFIELDS + 1];
    double      rate = atof(v[1]);
    int64_t     bucket = strtoll(v[2], NULL, 10),
                maxc = strtoll(v[3], NULL, 10), share;
    unsigned    i;
    size_t      k, m;
    int         rc;

    for (i = n; i-- > 0;) {
        dq_shard_name(s, sizeof(s), q, i);
        memcpy(sv, v, sizeof(sv));
        if (n > 1 && v[1][0] != '\0') {
            snprintf(sv[1], 48, "%.17g", rate / n);
        }
        if (n > 1 && v[2][0] != '\0' && bucket > 0) {
            share = dq_shard_share(bucket, n, i);
            snprintf(sv[2], 48, "%lld", (long long) (share > 0 ? share : 1));
        }
        if (n > 1 && v[3][0] != '\0' && maxc > 0) {
            snprintf(sv[3], 48, "%lld",
                     (long long) dq_shard_share(maxc, n, i));
        }
        for (k = 0, m = 0; k < DQ_QCONF_NFIELDS; k++) {
            if (sv[k][0] != '\0') {
                f[m] = dq__fields[k];
                vals[m++] = sv[k];
            }
        }
        if (i == 0 && m > 0) {
            /* what shard 0's values were split from (DQ_QCONF_SPLIT) */
            snprintf(split, sizeof(split), "%u %s %s", n,
                     v[3][0] ? v[3] : "-", v[1][0] ? v[1] : "-");
            f[m] = DQ_QCONF_SPLIT;
            vals[m++] = split;
        }
        if (m > 0 && (rc = dq__configure(c, s, f, vals, m)) != DQ_OK) {
            return rc;
        }
    }
    return DQ_OK;
}

/* The whole-queue settings now: shard 0's fields, rate, bucket_size and
 * max_concurrent summed over the n shards (0 in any shard: unlimited; in
 * none: "", the worker files' value). */
static int
dq__conf_total(dq_client_t *c, dq_str_t q, unsigned n,
               char v[DQ_QCONF_NFIELDS][48])
{
    char     s[DQ_SHARD_NAME_MAX + 1], sv[DQ_QCONF_NFIELDS][48];
    double   rate = 0;
    int64_t  bucket = 0, maxc = 0, x;
    int      unl_rate = 0, unl_maxc = 0, has[4] = { 0, 0, 0, 0 }, rc, k;
    unsigned i;

    for (i = 0; i < n; i++) {
        dq_shard_name(s, sizeof(s), q, i);
        if ((rc = dq__conf_read(c, s, i == 0 ? v : sv)) != DQ_OK) {
            return rc;
        }
        if (i == 0) {
            memcpy(sv, v, sizeof(sv));
        }
        for (k = 1; k <= 3; k++) {
            has[k] |= sv[k][0] != '\0';
        }
        rate += atof(sv[1]);
        unl_rate |= sv[1][0] != '\0' && atof(sv[1]) <= 0;
        bucket += strtoll(sv[2], NULL, 10);
        x = strtoll(sv[3], NULL, 10);
        unl_maxc |= x <= 0;
        maxc += x;
    }
    if (v[0][0] == '\0') {
        return DQ_OK;               /* nothing applied */
    }
    /* a field no shard has stays absent ("" : the worker files' value);
     * written back as 0 it would mean unlimited (review R4 finding 6) */
    if (has[1]) {
        snprintf(v[1], 48, "%.17g", unl_rate ? 0.0 : rate);
    }
    if (has[2]) {
        snprintf(v[2], 48, "%lld", (long long) bucket);
    }
    if (has[3]) {
        snprintf(v[3], 48, "%lld", (long long) (unl_maxc ? 0 : maxc));
    }
    return DQ_OK;
}

/* 1 if shard 0's max_concurrent or rate (s0: its fields) is not its
 * share of the whole-queue values its DQ_QCONF_SPLIT names for n shards:
 * a tool that does not split wrote it. */
static int
dq__unsplit(dq_client_t *c, dq_str_t q, unsigned n,
            char s0[DQ_QCONF_NFIELDS][48])
{
    char      split[120], wm[48], wr[48], want[48];
    unsigned  sn;
    long long m;

    if (s0[0][0] == '\0'
        || dq__conf_get(c, q, 0, DQ_QCONF_SPLIT, split, sizeof(split))
           != DQ_OK
        || sscanf(split, "%u %47s %47s", &sn, wm, wr) != 3 || sn < 1)
    {
        return 0;               /* nothing applied, or nothing to check */
    }
    if (sn != n && n > 1) {
        return 1;               /* split for another N */
    }
    if (strcmp(wm, "-") != 0) {
        m = strtoll(wm, NULL, 10);
        snprintf(want, sizeof(want), "%lld", sn > 1 && m > 0
                 ? (long long) dq_shard_share(m, sn, 0) : m);
        if (strcmp(s0[3], want) != 0) {
            return 1;
        }
    }
    if (strcmp(wr, "-") != 0) {
        snprintf(want, sizeof(want), "%.17g", sn > 1 ? atof(wr) / sn
                                                     : atof(wr));
        if (sn > 1 && strcmp(s0[1], want) != 0) {
            return 1;
        }
    }
    return 0;
}

int
dq__queue_settings(dq_client_t *c, dq_str_t q, char v[DQ_QCONF_NFIELDS][48],
                   unsigned *n, int *unsplit)
{
    char s0[DQ_QCONF_NFIELDS][48];
    int  rc;

    if ((rc = dq__shards_read(c, q, n, 1)) != DQ_OK) {
        return rc;
    }
    if (unsplit) {
        *unsplit = 0;
        if ((rc = dq__conf_read(c, q.ptr, s0)) != DQ_OK) {
            return rc;
        }
        *unsplit = dq__unsplit(c, q, *n, s0);
    }
    return dq__conf_total(c, q, *n, v);
}

int
dq__queue_apply(dq_client_t *c, dq_str_t q, char v[DQ_QCONF_NFIELDS][48])
{
    unsigned n = 1;
    int64_t  maxc = strtoll(v[3], NULL, 10);
    int      rc;

    if ((rc = dq__shards_read(c, q, &n, 1)) != DQ_OK) {
        return rc;
    }
    if (n > 1 && maxc > 0 && (int64_t) n > maxc) {
        return dq__fail(c, DQ_EINVAL, "queue \"%.*s\": max_concurrent %lld "
                        "cannot be split across its %u shards (each shard "
                        "needs at least 1)", (int) q.len, q.ptr,
                        (long long) maxc, n);
    }
    return dq__conf_write(c, q, n, v);
}

int
dq__queue_clear(dq_client_t *c, dq_str_t q)
{
    char     s[DQ_SHARD_NAME_MAX + 1];
    unsigned n = 1, i;
    int      rc;

    if ((rc = dq__shards_read(c, q, &n, 1)) != DQ_OK) {
        return rc;
    }
    for (i = n; i-- > 0;) {
        dq_shard_name(s, sizeof(s), q, i);
        if ((rc = dq__configure(c, s, dq__fields, NULL, 0)) != DQ_OK) {
            return rc;
        }
    }
    return DQ_OK;
}

/* A queue grown n0 -> n while paused: the new shards are paused too,
 * before N says they exist (claim reads `paused` per shard: a new shard
 * without it would run the tasks producers put there). */
static int
dq__pause_copy(dq_client_t *c, dq_str_t q, unsigned n0, unsigned n)
{
    char        s[DQ_SHARD_NAME_MAX + 1], v[8];
    dq_cmd_t    cmd;
    redisReply *r;
    unsigned    i;
    int         rc, paused;

    if ((rc = dq__conf_get(c, q, 0, "paused", v, sizeof(v))) != DQ_OK) {
        return rc;
    }
    paused = strcmp(v, "1") == 0;
    for (i = n0; paused && i < n; i++) {
        dq_shard_name(s, sizeof(s), q, i);
        dq_cmd_init(&cmd);
        if (dq_cmd_pause(&cmd, dq_str_c(s), 1) != DQ_OK) {
            dq_cmd_free(&cmd);
            return dq__fail(c, DQ_ENOMEM, "out of memory");
        }
        rc = dq__run(c, &cmd, &r);
        dq_cmd_free(&cmd);
        if (rc != DQ_OK) {
            return rc;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            rc = dq__fail(c, DQ_EREDIS, "queue \"%s\": pause: %s", s,
                          r->str);
        }
        freeReplyObject(r);
        if (rc != DQ_OK) {
            return rc;
        }
    }
    return DQ_OK;
}

int
dq_queue_set(dq_client_t *c, const char *queue, const dq_queue_set_t *set)
{
    char        v[DQ_QCONF_NFIELDS][48];
    const char *f[1] = { DQ_QCONF_SHARDS }, *val[1];
    char        nbuf[8], s[DQ_SHARD_NAME_MAX + 1];
    dq_str_t    q;
    unsigned    n0 = 1, n, i, raw0 = 1;
    int         rc, applied;
    int64_t     maxc;

    c->errstr[0] = '\0';
    if ((rc = dq__queue_arg(c, queue, &q)) != DQ_OK) {
        return rc;
    }
    if (set->shards > DQ_MAX_SHARDS) {
        return dq__fail(c, DQ_EINVAL, "shards: 1 to %d, not %u",
                        DQ_MAX_SHARDS, set->shards);
    }
    if (set->rate >= 0 && !isfinite(set->rate)) {
        return dq__fail(c, DQ_EINVAL, "rate: a number >= 0");
    }
    if ((rc = dq__queue_settings(c, q, v, &n0, NULL)) != DQ_OK) {
        return rc;
    }
    /* shard 0's own count: below n0 when a failover lost its copy (n0
     * came from another shard's conf); --shards N then writes it again */
    if (set->shards > 0 && (rc = dq__shards_read(c, q, &raw0, 0)) != DQ_OK) {
        return rc;
    }
    n = set->shards ? set->shards : n0;
    if (n < n0) {
        return dq__fail(c, DQ_EINVAL, "queue \"%s\": shards can only grow "
                        "(it has %u; a shard above %u could still hold "
                        "tasks)", q.ptr, n0, n);
    }
    applied = v[0][0] != '\0' || set->rate >= 0 || set->max_concurrent >= 0;
    if (set->rate >= 0) {
        snprintf(v[1], 48, "%.17g", set->rate);
    }
    if (set->max_concurrent >= 0) {
        snprintf(v[3], 48, "%lld", (long long) set->max_concurrent);
    }
    maxc = strtoll(v[3], NULL, 10);
    if (n > 1 && maxc > 0 && (int64_t) n > maxc) {
        return dq__fail(c, DQ_EINVAL, "queue \"%s\": max_concurrent %lld "
                        "cannot be split across %u shards (each shard needs "
                        "at least 1)", q.ptr, (long long) maxc, n);
    }
    if (applied) {
        if (v[0][0] == '\0') {
            /* nothing applied before: only what is given here; the rest
             * stays each worker's own */
            char nv[DQ_QCONF_NFIELDS][48];

            memset(nv, 0, sizeof(nv));
            snprintf(nv[0], 48, "1");
            memcpy(nv[1], v[1], 48);
            memcpy(nv[3], v[3], 48);
            memcpy(v, nv, sizeof(nv));
        }
        if (set->rate >= 0 || set->max_concurrent >= 0) {
            snprintf(v[10], 48, "%lld", (long long) dq_now_ms());
            snprintf(v[11], 48, "deferred-cli queue");
        }
        if ((rc = dq__conf_write(c, q, n, v)) != DQ_OK) {
            return rc;
        }
    }
    if (n != n0 || (set->shards > 0 && raw0 != n)) {
        if ((rc = dq__pause_copy(c, q, n0, n)) != DQ_OK) {
            return rc;
        }
        /* N in every shard's conf, shard 0's last: producers and workers
         * see N once every shard's share of the limits (and a pause) is
         * in place, and a reader finds N in shard n0.. even if shard 0's
         * write is lost in a failover (dq__shards_read) */
        snprintf(nbuf, sizeof(nbuf), "%u", n);
        val[0] = nbuf;
        for (i = n; i-- > 0;) {
            dq_shard_name(s, sizeof(s), q, i);
            if (i == 0 && c->cl) {
                dq__cl_wait_reset(c);     /* WAIT on shard 0's master */
            }
            if ((rc = dq__configure(c, s, f, val, 1)) != DQ_OK) {
                return rc;
            }
        }
        /* then a replica of shard 0's master has it, if it has one */
        return dq__wait_replicated(c, 1000, "the shard count");
    }
    return DQ_OK;
}
