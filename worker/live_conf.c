/*
 * deferred-worker — a child's copy of its queues' settings, kept to what
 * Redis says (worker/live.c's live tick sends the reads).
 *
 * Applied queue configuration (deferred-cli config apply: the queue's conf
 * hash, fields DQ_QCONF_FIELDS) is read every DQ_WORKER_TICK_MS (5 s; the
 * probe of the shard past the known count once per TTL, or every tick
 * while that count is unsure or the queue has a whole-queue limit) and
 * replaces
 * the settings this child took from its file for that queue (rate,
 * bucket, max_concurrent, retry options, timeout); when it is cleared the
 * file's settings come back. The child works on its own copy of the queue
 * settings for that (ch->qs[i].qc points into it). The claim script reads
 * the limits from Redis itself, so they hold from the first claim.
 * The same read, sent on every connect too, brings a queue's shard count
 * (shard 0's conf field "shards"): a queue with a limit in the file is
 * not claimed before it came (child.c conf_wait), as the file's limits
 * are split over the shards (one round trip of lateness at start).
 *
 * A shard above 0 saying more than shard 0's own conf: written back there
 * (dq__shards_heal); a queue with a whole-queue limit is probed every
 * tick (dq__whole_limit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live_impl.h"

static const char *const dq__qconf_fields[DQ_QCONF_NFIELDS] = DQ_QCONF_FIELDS;

static int64_t
dq__field_int(const redisReply *r, int64_t dflt)
{
    return r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10)
                                              : dflt;
}

/* Shard i's part of the settings of a queue of n shards (its file's):
 * rate / n, max_concurrent and bucket_size split to sum to the whole
 * (dq_shard_share). A max_concurrent share of 0 (the file's
 * max_concurrent below n) is DQ_LIVE_NO_CLAIMS: the shard is not claimed
 * from (logged once per change), so the whole queue never runs more than
 * the file says; its tasks wait until max_concurrent >= n. A bucket
 * share of 0 is 1. Applied settings (deferred-cli config apply / queue)
 * come split already (the CLI refuses n above an applied
 * max_concurrent). */
static void
dq__shard_conf(dq_queue_conf_t *out, const dq_queue_conf_t *orig, unsigned i,
               unsigned n)
{
    int64_t v;

    *out = *orig;
    if (n <= 1) {
        return;
    }
    out->rate = orig->rate / n;
    if (orig->max_concurrent > 0) {
        /* a share of 0 (the file's max_concurrent below n): no claims
         * from this shard (DQ_LIVE_NO_CLAIMS), not 1 each, which let n
         * run at once (review R4 finding 8) */
        v = dq_shard_share(orig->max_concurrent, n, i);
        out->max_concurrent = v > 0 ? (int) v : DQ_LIVE_NO_CLAIMS;
    }
    if (orig->bucket_size > 0) {
        v = dq_shard_share(orig->bucket_size, n, i);
        out->bucket_size = v > 0 ? (int) v : 1;
    }
}

/* Log a shard that starts (or stops) getting no claims. */
static void
dq__no_claims_log(dq_str_t name, const dq_queue_conf_t *was,
                  const dq_queue_conf_t *now, unsigned n)
{
    int before = was && was->max_concurrent == DQ_LIVE_NO_CLAIMS;

    if (now->max_concurrent == DQ_LIVE_NO_CLAIMS && !before) {
        dq_log_warn("queue %.*s: no claims from this shard: the worker "
                    "file's max_concurrent is below the queue's %u shards "
                    "(each needs at least 1); its tasks wait until "
                    "max_concurrent >= %u (deferred-cli queue QUEUE "
                    "--max-concurrent M, or the file)", (int) name.len,
                    name.ptr, n, n);
    } else if (before && now->max_concurrent != DQ_LIVE_NO_CLAIMS) {
        dq_log_info("queue %.*s: claims again (max_concurrent %d)",
                    (int) name.len, name.ptr, now->max_concurrent);
    }
}

/* What the file's limits of the queue at base are split by: its known
 * shard count, or the bound above it while a probe past it is lost. */
static unsigned
dq__split_n(dq_child_t *ch, size_t base)
{
    unsigned hi = ch->live->refs[base].hi;

    return hi > ch->qs[base].nshards ? hi : ch->qs[base].nshards;
}

/* The file's limits of the queue at base's shards below upto, split
 * again (dq__split_n changed); applied settings come split already. */
static void
dq__split_again(dq_child_t *ch, size_t base, unsigned upto)
{
    dq_live_t       *lv = ch->live;
    dq_queue_conf_t  nq;
    unsigned         n = dq__split_n(ch, base);
    size_t           k;

    for (k = 0; k < ch->nq; k++) {
        if (ch->qs[k].base != base || ch->qs[k].shard >= upto
            || lv->applied[k])
        {
            continue;
        }
        dq__shard_conf(&nq, lv->orig[k], ch->qs[k].shard, n);
        dq__no_claims_log(ch->qs[k].name, &lv->qconf[k], &nq, n);
        lv->qconf[k] = nq;
    }
}

int
dq_live_add_shard(dq_child_t *ch, size_t k, size_t base, unsigned n)
{
    dq_live_t *lv = ch->live;

    if (lv == NULL || k >= ch->cap_q) {
        return -1;
    }
    if (lv->refs[base].hi > n) {
        n = lv->refs[base].hi;          /* a probe past N lost */
    }
    lv->orig[k] = lv->orig[base];
    dq__shard_conf(&lv->qconf[k], lv->orig[base], ch->qs[k].shard, n);
    dq__no_claims_log(dq_str_c(ch->qs[k].sname), NULL, &lv->qconf[k], n);
    lv->applied[k] = 0;
    memset(&lv->hist[k], 0, sizeof(lv->hist[k]));
    lv->refs[k].ch = ch;
    lv->refs[k].i = k;
    ch->qs[k].qc = &lv->qconf[k];
    return 0;
}

/* The reply to the write of N back into shard 0's conf. Refused: shard
 * 0 says more by now (configure.lua: N only grows), or the script is not
 * allowed; lost: it is read again next tick and, still low, written
 * again. */
static void
dq__heal_reply(dq_conn_t *c, redisReply *r, const char *errstr, void *data)
{
    dq__qref_t  *ref = data;
    dq_child_t  *ch = ref->ch;
    dq_cqueue_t *b;

    (void) c;
    if (ch->live != NULL && !ch->stopping) {
        b = &ch->qs[ref->i];
        if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
            dq_log_info("queue %.*s: wrote %u back into shard 0's conf "
                        "(its count was behind: lost, or a change still "
                        "being written): every worker and producer reads "
                        "it there now", (int) b->name.len, b->name.ptr,
                        b->nshards);
            ref->heal_failed = 0;
        } else {
            if (!ref->heal_failed) {    /* once, not every tick */
                dq_log_warn("queue %.*s: writing the shard count back "
                            "into shard 0's conf failed (%s); tried again "
                            "every tick", (int) b->name.len, b->name.ptr,
                            r != NULL && r->type == REDIS_REPLY_ERROR
                            ? r->str : errstr ? errstr : "lost");
            }
            ref->heal_failed = 1;
            ref->s0 = 0;            /* read again, written again */
        }
    }
    dq_child_maybe_finish(ch);
}

/* Shard `from` (not 0) of the queue at base says n, more than shard 0's
 * own conf said at its last read: shard 0's copy was lost (the CLI
 * killed between its writes, shard 0's last; an AOF or a failover that
 * lost it). Write n back there through configure.lua, which never lowers
 * it, so every other worker and producer reads n with its next read of
 * shard 0 instead of claiming shard 0 with a limit split by a lower
 * count until its own probe (review RW finding 1). Safe: the CLI writes
 * N into the shards from the top down after every share and pause, so a
 * shard above 0 saying n means the rest of the change is in place. */
static void
dq__shards_heal(dq_child_t *ch, size_t base, unsigned n)
{
    dq__qref_t  *ref = &ch->live->refs[base];
    dq_cqueue_t *b = &ch->qs[base];
    dq_cmd_t     cmd;
    char         nbuf[16];
    const char  *f[1] = { DQ_QCONF_SHARDS }, *v[1] = { nbuf };

    snprintf(nbuf, sizeof(nbuf), "%u", n);
    dq_cmd_init(&cmd);
    if (dq_cmd_configure(&cmd, b->name, f, v, 1) == DQ_OK
        && dq_conn_send_cmd(ch->cmd_conn, &cmd, DQ_CMD_TIMEOUT_MS,
                            dq__heal_reply, ref) == 0)
    {
        ref->s0 = n;                /* once, not with every read */
    }
    dq_cmd_free(&cmd);
}

/* Shard `from` of the queue at base says it has n shards: serve them. A
 * shard other than 0 saying more than is known means shard 0's `shards`
 * was lost (a failover before its write reached a replica): logged, and
 * written back there (dq__shards_heal). */
static void
dq__shards_seen(dq_child_t *ch, size_t base, unsigned from, unsigned n)
{
    dq_cqueue_t     *b = &ch->qs[base];
    dq_live_t       *lv = ch->live;
    unsigned         old = b->nshards;

    if (from != 0 && lv->refs[base].s0 != 0 && n > lv->refs[base].s0) {
        dq__shards_heal(ch, base, n);
    }
    if (n <= b->nshards) {
        return;
    }
    if (from != 0) {
        dq_log_warn("queue %.*s: shard %u's conf says %u shards, more than "
                    "shard 0's (%u): serving %u (shard 0's count was lost, "
                    "e.g. in a failover; deferred-cli queue %.*s --shards "
                    "%u writes it again)", (int) b->name.len, b->name.ptr,
                    from, n, b->nshards, n, (int) b->name.len, b->name.ptr,
                    n);
    }
    dq_child_shards(ch, base, n);
    if (b->nshards == old) {
        return;
    }
    if (lv->refs[base].hi <= b->nshards) {
        lv->refs[base].hi = 0;          /* the bound reached: N known */
    }
    /* the shards served before split the file's limits by the old count:
     * by the new one now (review R5: shard 0 kept the whole limit after
     * the probe of shard N found more shards) */
    dq__split_again(ch, base, old);
}

/* The probe of shard k (k >= N, the count known) of the queue at base:
 * answered (its conf's `shards`, n, 0 for nil) or lost/not sent. Every
 * shard's conf holds N: n > k is N. Nil (or n <= k): shard k is not
 * there, N <= k. Lost: N may be more than k; until a probe answers, the
 * file's limits are split by a bound of N (DQ_MAX_SHARDS, then the
 * lowest shard found absent), never by N alone, and the next live tick
 * (5 s) probes k + 1 (review RF finding 1: a lost probe counted as "no
 * more shards" gave shard 0 the file's whole limit, the shards past k
 * none). */
static void
dq__probe_done(dq_child_t *ch, size_t base, unsigned k, int answered,
               unsigned n)
{
    dq__qref_t  *ref = &ch->live->refs[base];
    dq_cqueue_t *b = &ch->qs[base];
    unsigned     was = dq__split_n(ch, base);

    if (answered && n > k) {
        ref->hi = 0;
        dq__shards_seen(ch, base, k, n);
        ref->next = b->nshards;

    } else if (answered) {
        if (k <= b->nshards) {
            ref->hi = 0;                /* N <= k <= N: N known */
        } else if (ref->hi != 0 && k < ref->hi) {
            ref->hi = k;
        }
        ref->next = b->nshards;         /* the lost ones below k again */

    } else if (k >= b->nshards) {       /* below N (it grew meanwhile):
                                           nothing to learn */
        if (ref->hi == 0) {
            ref->hi = DQ_MAX_SHARDS;
        }
        ref->next = k + 1;
    }
    if (ref->hi == 0 || ref->next >= ref->hi || ref->next < b->nshards) {
        ref->next = b->nshards;
    }
    if (dq__split_n(ch, base) != was) {
        if (ref->hi != 0) {
            dq_log_warn("queue %.*s: %u shards known, a probe past them "
                        "lost (shard %u probed): the queue may have up to "
                        "%u shards; this worker file's limits are split "
                        "by %u until a probe answers", (int) b->name.len,
                        b->name.ptr, b->nshards, k, ref->hi, ref->hi);
        } else {
            dq_log_info("queue %.*s: %u shards, a probe answered: the "
                        "file's limits are split by %u again",
                        (int) b->name.len, b->name.ptr, b->nshards,
                        b->nshards);
        }
        dq__split_again(ch, base, b->nshards);
    }
}

/* One of the replies shard 0 waits for before its shards claim came
 * (conf_wait counts them: its conf and the probe of shard N, review R5:
 * ending on shard 0's conf alone let a low `shards` there claim with the
 * file's whole limit until the probe answered). */
static void
dq__conf_waited(dq_child_t *ch, dq_cqueue_t *q)
{
    if (q->conf_wait > 0 && --q->conf_wait == 0) {
        dq_child_kick(ch);          /* N known: its shards may claim */
    }
}

/* The `shards` field of shard k's conf (k >= N, the count known): more
 * than N there means shard 0's was lost (dq__shards_seen). Best effort:
 * shard k's slot may be on a master this worker has nothing else on, so
 * a probe lost, timed out or not sent does not hold the claims (review
 * R4 finding 10: a hung node there held every shard's claims); it splits
 * the limits by a bound instead and the next live tick (5 s) probes k + 1
 * (dq__probe_done). */
static void
dq__probe_reply(dq_conn_t *c, redisReply *r, const char *errstr, void *data)
{
    dq__qref_t  *ref = data;
    dq_child_t  *ch = ref->ch;
    dq_cqueue_t *b;
    unsigned     probed = ref->probing;

    (void) c;
    ref->probing = 0;
    if (ch->live == NULL) {
        dq_child_maybe_finish(ch);
        return;
    }
    b = &ch->qs[ref->i];
    if (!ch->stopping && r != NULL && r->type != REDIS_REPLY_ERROR) {
        /* `probed`, not b->nshards: N may have grown while it was out
         * (review RF finding 4: the warning named the wrong shard) */
        dq__probe_done(ch, ref->i, probed, 1,
                       r->type == REDIS_REPLY_STRING
                       ? dq_shards_parse(r->str, r->len) : 0);
    } else if (!ch->stopping) {
        if (r == NULL) {
            dq_log_warn("queue %.*s: the probe of shard %u's conf got no "
                        "answer (%s)", (int) b->name.len, b->name.ptr,
                        probed, errstr ? errstr : "lost");
        }
        dq__probe_done(ch, ref->i, probed, 0, 0);
    }
    dq__conf_waited(ch, b);         /* answered (nil too), or not */
    dq_child_maybe_finish(ch);
}

/* The queue's applied configuration, or none: the child's settings follow. */
static void
dq__conf_reply(dq_conn_t *c, redisReply *r, const char *errstr, void *data)
{
    dq__qref_t      *ref = data;
    dq_child_t      *ch = ref->ch;
    dq_live_t       *lv = ch->live;
    dq_queue_conf_t  nq, *cur;
    dq_cqueue_t     *q;
    redisReply     **e;

    (void) c;
    (void) errstr;
    if (lv == NULL || r == NULL || r->type != REDIS_REPLY_ARRAY
        || r->elements != DQ_QCONF_NFIELDS + 1)
    {
        q = lv != NULL ? &ch->qs[ref->i] : NULL;
        if (q != NULL && q->conf_wait && r != NULL) {
            /* Redis answered, but not the conf (an ACL refusing HMGET?):
             * waiting would never end; the file's limits, whole */
            dq_log_warn("queue %.*s: reading its configuration failed "
                        "(%s): it is claimed with this worker's settings, "
                        "whole (a sharded queue's limit may be exceeded)",
                        (int) q->name.len, q->name.ptr,
                        r->type == REDIS_REPLY_ERROR ? r->str
                                                     : "unexpected reply");
            q->conf_wait = 0;
            dq_child_kick(ch);
        }                           /* lost: read again on reconnect */
        dq_child_maybe_finish(ch);
        return;
    }
    e = r->element;
    q = &ch->qs[ref->i];
    if (!ch->stopping) {
        /* the queue's shard count: every shard's conf holds it (the C
         * client writes N into each, shard 0's last); the most any of
         * them says wins, as a failover may lose shard 0's (dq_child_
         * shards only grows) */
        unsigned n = e[DQ_QCONF_NFIELDS]->type == REDIS_REPLY_STRING
                     ? dq_shards_parse(e[DQ_QCONF_NFIELDS]->str,
                                       e[DQ_QCONF_NFIELDS]->len)
                     : 1;

        if (q->shard == 0) {
            lv->refs[ref->i].s0 = n;    /* shard 0's own, for the heal */
        }
        dq__shards_seen(ch, q->base, q->shard, n);
    }
    dq__conf_waited(ch, q);
    cur = &lv->qconf[ref->i];
    dq__shard_conf(&nq, lv->orig[ref->i], q->shard,
                   dq__split_n(ch, q->base));
    if (e[0]->type == REDIS_REPLY_STRING) {
        nq.rate = e[1]->type == REDIS_REPLY_STRING ? strtod(e[1]->str, NULL)
                                                   : nq.rate;
        nq.bucket_size = (int) dq__field_int(e[2], nq.bucket_size);
        nq.max_concurrent = (int) dq__field_int(e[3], nq.max_concurrent);
        nq.retry.retry_limit = dq__field_int(e[4], nq.retry.retry_limit);
        nq.retry.age_limit_ms = dq__field_int(e[5], nq.retry.age_limit_ms);
        nq.retry.min_backoff_ms = dq__field_int(e[6],
                                                nq.retry.min_backoff_ms);
        nq.retry.max_backoff_ms = dq__field_int(e[7],
                                                nq.retry.max_backoff_ms);
        nq.retry.max_doublings = dq__field_int(e[8], nq.retry.max_doublings);
        nq.timeout_ms = dq__field_int(e[9], nq.timeout_ms);
        if (!lv->applied[ref->i] || memcmp(&nq, cur, sizeof(nq)) != 0) {
            dq_log_info("queue %s: applied configuration from %s: "
                        "rate=%g bucket_size=%d max_concurrent=%d "
                        "retry_limit=%lld age_limit_ms=%lld "
                        "min_backoff_ms=%lld max_backoff_ms=%lld "
                        "max_doublings=%lld timeout_ms=%lld", nq.name,
                        e[11]->type == REDIS_REPLY_STRING ? e[11]->str : "?",
                        nq.rate, nq.bucket_size, nq.max_concurrent,
                        (long long) nq.retry.retry_limit,
                        (long long) nq.retry.age_limit_ms,
                        (long long) nq.retry.min_backoff_ms,
                        (long long) nq.retry.max_backoff_ms,
                        (long long) nq.retry.max_doublings,
                        (long long) nq.timeout_ms);
        }
        lv->applied[ref->i] = 1;
    } else if (lv->applied[ref->i]) {
        dq_log_info("queue %s: applied configuration cleared: this "
                    "worker's own settings apply", nq.name);
        lv->applied[ref->i] = 0;
    }
    dq__no_claims_log(q->name, cur, &nq, dq__split_n(ch, q->base));
    *cur = nq;
    dq_child_maybe_finish(ch);
}

/* 1 if the queue at i has a whole-queue limit (rate, bucket_size or
 * max_concurrent, from its worker file or applied to Redis): one split by
 * a count too low runs the queue above it (review RW finding 1), so such
 * a queue is probed past its count every tick; the others once per ttl
 * (an idle fleet's commands, docs/BENCHMARKS.md "8. idle cost"). */
static int
dq__whole_limit(const dq_live_t *lv, size_t i)
{
    const dq_queue_conf_t *f = lv->orig[i], *c = &lv->qconf[i];

    return f->rate > 0 || f->bucket_size > 0 || f->max_concurrent > 0
           || (lv->applied[i]
               && (c->rate > 0 || c->bucket_size > 0
                   || c->max_concurrent > 0));
}

/* The conf of every queue; the probe past the known shard count of the
 * queues that need one now: all of them when `all`, else those whose
 * count is unsure (a probe lost), that wait for it to claim or that have
 * a whole-queue limit (dq__whole_limit). */
void
dq__conf_refresh(dq_child_t *ch, int all)
{
    dq_live_t  *lv = ch->live;
    char        key[DQ_KEY_MAX];
    const char *argv[3 + DQ_QCONF_NFIELDS];
    size_t      len[3 + DQ_QCONF_NFIELDS], i;
    int         k;

    argv[0] = "HMGET";
    argv[1] = key;
    for (k = 0; k < DQ_QCONF_NFIELDS; k++) {
        argv[2 + k] = dq__qconf_fields[k];
    }
    argv[2 + DQ_QCONF_NFIELDS] = DQ_QCONF_SHARDS;   /* not an applied
                                                       setting: never
                                                       cleared */
    for (i = 0; i < ch->nq; i++) {
        if (dq_key_format(key, sizeof(key), ch->qs[i].name, DQ_KEY_CONF)
            == 0)
        {
            continue;
        }
        for (k = 0; k < 3 + DQ_QCONF_NFIELDS; k++) {
            len[k] = strlen(argv[k]);
        }
        if (dq_conn_send(ch->cmd_conn, 3 + DQ_QCONF_NFIELDS, argv, len,
                         DQ_CMD_TIMEOUT_MS, dq__conf_reply, &lv->refs[i])
            == 0
            && ch->qs[i].conf_wait > 0)
        {
            ch->qs[i].conf_wait = 1;    /* this round's replies counted */
        }
    }
    /* the first shard past the known count: does its conf say more?
     * One probe in flight per queue (a hung node is not probed again
     * before the last one timed out); shard 0 waits for it too */
    for (i = 0; i < ch->nq; i++) {
        const char *pv[3];
        size_t      pl[3];
        char        s[DQ_SHARD_NAME_MAX + 1];
        unsigned    at;

        if (lv->refs[i].probing) {
            if (ch->qs[i].conf_wait > 0) {
                ch->qs[i].conf_wait++;  /* its reply still counts */
            }
            continue;
        }
        if (!all && lv->refs[i].hi == 0 && ch->qs[i].conf_wait == 0
            && !dq__whole_limit(lv, i))
        {
            continue;               /* N known, no limit split by it:
                                       probed once per ttl */
        }
        at = lv->refs[i].next > ch->qs[i].nshards ? lv->refs[i].next
                                                  : ch->qs[i].nshards;
        if (ch->qs[i].shard != 0 || at >= DQ_MAX_SHARDS
            || dq_shard_name(s, sizeof(s), ch->qs[i].name, at) == 0
            || dq_key_format(key, sizeof(key), dq_str_c(s), DQ_KEY_CONF)
               == 0)
        {
            continue;
        }
        pv[0] = "HGET";
        pv[1] = key;
        pv[2] = DQ_QCONF_SHARDS;
        for (k = 0; k < 3; k++) {
            pl[k] = strlen(pv[k]);
        }
        /* routable first: shard k's slot unserved must not make the
         * whole cluster "lost" (map re-read, results resent) at every
         * tick (review RF finding 3); it counts as a lost probe */
        if (!dq_conn_routable(ch->cmd_conn, 3, pv, pl)) {
            dq__probe_done(ch, i, at, 0, 0);
            continue;
        }
        if (dq_conn_send(ch->cmd_conn, 3, pv, pl, DQ_CMD_TIMEOUT_MS,
                         dq__probe_reply, &lv->refs[i]) != 0)
        {
            continue;                   /* not up: sent on reconnect */
        }
        lv->refs[i].probing = at;
        if (ch->qs[i].conf_wait > 0) {
            ch->qs[i].conf_wait++;
        }
    }
}

void
dq_live_conf_now(dq_child_t *ch)
{
    if (ch->live != NULL && !ch->live->left && !ch->stopping) {
        dq__conf_refresh(ch, 1);
    }
}
