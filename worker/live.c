/*
 * deferred-worker — live state in Redis (the queues' applied
 * configuration and shard counts, read with the live tick: live_conf.c).
 *
 * Every DQ_WORKER_TTL_MS / 3 (10 s) a child runs lib/lua/beat.lua, which
 * scores its member "<host>:<boot>:<pid>" (boot: random per child, so
 * containers sharing a host name never collide) of DQ_WORKERS_KEY with
 * Redis now + DQ_WORKER_TTL_MS and, once per TTL, trims stale members, on
 * Redis' clock (never the host's); with the reply (Redis now) it writes
 * its heartbeat hash
 * DQ_WORKER_KEY_PREFIX "<id>" (host, pid, child, queues, running, done,
 * failed, started_ms, beat_ms: Redis times, version) and PEXPIREs it after
 * DQ_WORKER_TTL_MS, so readers see exactly the children whose last
 * heartbeat is younger than the TTL. A
 * child that stops leaves the list at once; one that crashes drops out
 * when its heartbeat expires.
 *
 * Per task that ran (dq_child_unlink hook): done or failed, and its
 * lateness (Redis time of the claim - ETA) into a per-queue histogram
 * kept in this process and added to the queue's stats hash with the next
 * live tick (HINCRBY: a few commands per queue that ran tasks every 5 s,
 * none per task, none while idle; on a beat tick after the hash).
 *
 * Fire and forget: the commands go on the child's commands connection;
 * a failed heartbeat is simply sent again next time (the counts are kept
 * until a send succeeds... or lost with the child: they are statistics; a
 * child killed -9 loses at most the last tick's, 5 s, of them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "live_impl.h"
#include "master.h"

static const int64_t dq__bounds[DQ_LATENESS_NBOUNDS] = DQ_LATENESS_BOUNDS_MS;

/* Every DQ_WORKER_TICK_MS the conf read; every DQ__BEAT_TICKS-th tick the
 * heartbeat; every DQ__TRIM_TICKS-th (once per ttl) the live list's trim
 * and the shard probe (docs/BENCHMARKS.md "8. idle cost"). */
#define DQ__BEAT_TICKS  (DQ_WORKER_TTL_MS / 3 / DQ_WORKER_TICK_MS)
#define DQ__TRIM_TICKS  (DQ_WORKER_TTL_MS / DQ_WORKER_TICK_MS)

/* Exact and non-zero: a TTL that is not a multiple of 3 ticks would
 * silently change the beat period, one below 3 ticks make `tick % 0`
 * (review RW finding 4). */
_Static_assert(DQ__BEAT_TICKS >= 1
               && DQ_WORKER_TTL_MS % (3 * DQ_WORKER_TICK_MS) == 0,
               "DQ_WORKER_TTL_MS: a multiple of 3 * DQ_WORKER_TICK_MS");
_Static_assert(DQ__TRIM_TICKS >= 1
               && DQ_WORKER_TTL_MS % DQ_WORKER_TICK_MS == 0,
               "DQ_WORKER_TTL_MS: a multiple of DQ_WORKER_TICK_MS");

/* The reply is not needed; but a stopping child waits for its last
 * command before it exits, so let it look again. */
static void
dq__sent(dq_conn_t *r, redisReply *reply, const char *errstr, void *data)
{
    (void) r;
    (void) reply;
    (void) errstr;
    dq_child_maybe_finish(data);
}

/* argv of C strings (dq_redis_send wants the lengths); 0 if sent. */
static int
dq__send(dq_child_t *ch, int argc, const char **argv)
{
    size_t len[32];
    int    i;

    for (i = 0; i < argc && i < 32; i++) {
        len[i] = strlen(argv[i]);
    }
    return dq_conn_send(ch->cmd_conn, argc, argv, len, 0, dq__sent, ch);
}

/* The histogram counts of one queue, sent (and zeroed when sent). */
static void
dq__flush_hist(dq_child_t *ch, size_t qi)
{
    dq__hist_t *h = &ch->live->hist[qi];
    char        key[DQ_KEY_MAX], field[32], val[24];
    const char *argv[4];
    size_t      i;

    if (h->count == 0
        || dq_key_format(key, sizeof(key), ch->qs[qi].name, DQ_KEY_STATS)
           == 0)
    {
        return;
    }
    argv[0] = "HINCRBY";
    argv[1] = key;
    argv[2] = field;
    argv[3] = val;
    for (i = 0; i <= DQ_LATENESS_NBOUNDS; i++) {
        if (h->n[i] == 0) {
            continue;
        }
        if (i < DQ_LATENESS_NBOUNDS) {
            snprintf(field, sizeof(field), "late_le_%lld",
                     (long long) dq__bounds[i]);
        } else {
            snprintf(field, sizeof(field), "late_le_inf");
        }
        snprintf(val, sizeof(val), "%lld", (long long) h->n[i]);
        if (dq__send(ch, 4, argv) != 0) {
            return;                  /* not up: keep the counts */
        }
        h->n[i] = 0;
    }
    snprintf(field, sizeof(field), "late_sum_ms");
    snprintf(val, sizeof(val), "%lld", (long long) h->sum_ms);
    if (dq__send(ch, 4, argv) == 0) {
        h->sum_ms = 0;
    }
    snprintf(field, sizeof(field), "late_count");
    snprintf(val, sizeof(val), "%lld", (long long) h->count);
    if (dq__send(ch, 4, argv) == 0) {
        h->count = 0;
    }
}


/* The beat script's reply: Redis now. The hash gets it as beat_ms (and
 * started_ms, the first time), then its expiry (Redis' clock too). */
static void
dq__beat_reply(dq_conn_t *c, redisReply *r, const char *errstr, void *data)
{
    dq_child_t *ch = data;
    dq_live_t  *lv = ch->live;
    char        pid[16], child[16], running[24], done[24], failed[24],
                started[24], beat[24], ttl[24];
    int64_t     now;
    size_t      i;

    (void) c;
    (void) errstr;
    if (lv == NULL || lv->left || r == NULL || r->type != REDIS_REPLY_INTEGER
        || (now = (int64_t) r->integer) <= 0)
    {
        dq_child_maybe_finish(ch);
        return;
    }
    if (lv->started_ms == 0) {
        lv->started_ms = now;
    }
    snprintf(pid, sizeof(pid), "%d", (int) getpid());
    snprintf(child, sizeof(child), "%d", ch->index);
    snprintf(running, sizeof(running), "%zu", ch->used);
    snprintf(done, sizeof(done), "%lld", (long long) lv->done);
    snprintf(failed, sizeof(failed), "%lld", (long long) lv->failed);
    snprintf(started, sizeof(started), "%lld", (long long) lv->started_ms);
    snprintf(beat, sizeof(beat), "%lld", (long long) now);
    snprintf(ttl, sizeof(ttl), "%d", DQ_WORKER_TTL_MS);
    {
        const char *hset[] = { "HSET", lv->key, "host", lv->host,
                               "pid", pid, "child", child,
                               "queues", lv->queues, "running", running,
                               "done", done, "failed", failed,
                               "started_ms", started, "beat_ms", beat,
                               "version", DQ_VERSION };
        const char *pexpire[] = { "PEXPIRE", lv->key, ttl };

        dq__send(ch, (int) (sizeof(hset) / sizeof(hset[0])), hset);
        dq__send(ch, 3, pexpire);
    }
    /* after the hash: a reader that sees these counts sees this beat */
    for (i = 0; i < ch->nq; i++) {
        dq__flush_hist(ch, i);
    }
    dq_child_maybe_finish(ch);
}

/* The live tick: the loop-alive mark, the conf read and, every
 * DQ__BEAT_TICKS-th, the heartbeat (the first as soon as Redis is up). An
 * idle fleet's commands are mostly these (docs/BENCHMARKS.md). */
static void
dq__tick(uv_timer_t *timer)
{
    dq_child_t *ch = timer->data;
    dq_live_t  *lv = ch->live;
    dq_cmd_t    cmd;
    unsigned    tick;
    size_t      i;

    if (lv->left) {
        return;
    }
    dq_child_stat_alive();          /* the loop runs (master.c checks) */
    if (!dq_conn_is_up(ch->cmd_conn)) {
        if (!lv->beaten) {          /* the first one as soon as it can */
            uv_timer_start(&lv->timer, dq__tick, 200,
                           (uint64_t) DQ_WORKER_TICK_MS);
        }
        return;
    }
    tick = lv->beaten ? lv->tick : 0;
    lv->beaten = 1;
    lv->tick = tick + 1;
    if (tick % DQ__BEAT_TICKS == 0) {
        /* lib/lua/beat.lua: the member scored (and, once per ttl, stale
         * ones trimmed) on Redis' clock; the hash follows in its reply */
        dq_cmd_init(&cmd);
        if (dq_cmd_beat(&cmd, lv->id, DQ_WORKER_TTL_MS,
                        tick % DQ__TRIM_TICKS == 0) == DQ_OK)
        {
            (void) dq_conn_send_cmd(ch->cmd_conn, &cmd, DQ_CMD_TIMEOUT_MS,
                                    dq__beat_reply, ch);
        }
        dq_cmd_free(&cmd);
    } else {
        /* the counts of the tasks run since the last tick (the beat's
         * reply flushes them on a beat tick): a child killed -9 loses one
         * tick's, not a beat's (review RW finding 2); idle: nothing to
         * send */
        for (i = 0; i < ch->nq; i++) {
            dq__flush_hist(ch, i);
        }
    }
    dq__conf_refresh(ch, tick % DQ__TRIM_TICKS == 0);
}

int
dq_live_start(dq_child_t *ch)
{
    dq_live_t *lv = calloc(1, sizeof(*lv));
    size_t     i, len = 1;
    int64_t    period = DQ_WORKER_TICK_MS;

    if (lv == NULL) {
        return -1;
    }
    for (i = 0; i < ch->nq; i++) {
        len += ch->qs[i].name.len + 1;
    }
    lv->queues = calloc(1, len);
    /* room for the shards the queues may get (child.c) */
    lv->hist = calloc(ch->cap_q ? ch->cap_q : 1, sizeof(*lv->hist));
    lv->qconf = calloc(ch->cap_q ? ch->cap_q : 1, sizeof(*lv->qconf));
    lv->orig = calloc(ch->cap_q ? ch->cap_q : 1, sizeof(*lv->orig));
    lv->applied = calloc(ch->cap_q ? ch->cap_q : 1, sizeof(*lv->applied));
    lv->refs = calloc(ch->cap_q ? ch->cap_q : 1, sizeof(*lv->refs));
    if (lv->queues == NULL || lv->hist == NULL || lv->qconf == NULL
        || lv->orig == NULL || lv->applied == NULL || lv->refs == NULL)
    {
        ch->live = lv;
        dq_live_free(ch);
        return -1;
    }
    for (i = 0; i < ch->nq; i++) {
        lv->orig[i] = ch->qs[i].qc;
        lv->qconf[i] = *ch->qs[i].qc;
        ch->qs[i].qc = &lv->qconf[i];
        lv->refs[i].ch = ch;
        lv->refs[i].i = i;
    }
    for (i = 0; i < ch->nq; i++) {
        if (i) {
            strcat(lv->queues, ",");
        }
        strncat(lv->queues, ch->qs[i].name.ptr, ch->qs[i].name.len);
    }
    if (gethostname(lv->host, sizeof(lv->host) - 1) != 0) {
        snprintf(lv->host, sizeof(lv->host), "unknown");
    }
    /* host:boot:pid; boot, random per child, keeps apart two containers
     * that share a host name and a pid */
    {
        char boot[DQ_ID_SIZE];

        dq_id_new(boot);
        snprintf(lv->id, sizeof(lv->id), "%s:%.8s:%d", lv->host, boot,
                 (int) getpid());
    }
    snprintf(lv->key, sizeof(lv->key), "%s%s", DQ_WORKER_KEY_PREFIX, lv->id);
    lv->started_ms = 0;             /* Redis now at the first beat */
    ch->live = lv;
    dq_child_stat_alive();
    uv_timer_init(&ch->loop, &lv->timer);
    lv->timer.data = ch;
    /* the first beat soon after connecting, then a tick every
     * DQ_WORKER_TICK_MS, a beat every ttl / 3 */
    uv_timer_start(&lv->timer, dq__tick, 200, (uint64_t) period);
    uv_unref((uv_handle_t *) &lv->timer);
    return 0;
}

void
dq_live_task_end(dq_child_t *ch, const dq_task_t *t)
{
    dq_live_t  *lv = ch->live;
    dq__hist_t *h;
    int64_t     late;
    size_t      i;

    if (lv == NULL || t->start_loop_ms == 0) {
        return;                     /* never ran (released, or buried) */
    }
    if (t->result == DQ_TASK_OK) {
        lv->done++;
    } else {
        lv->failed++;
    }
    h = &lv->hist[t->q ? (size_t) (t->q - ch->qs) : 0];
    late = t->claim_now_ms - t->eta_ms;
    if (late < 0) {
        late = 0;
    }
    for (i = 0; i < DQ_LATENESS_NBOUNDS && late > dq__bounds[i]; i++) {
        /* the first bound that holds it */
    }
    h->n[i]++;
    h->sum_ms += late;
    h->count++;
}

void
dq_live_leave(dq_child_t *ch)
{
    dq_live_t  *lv = ch->live;
    const char *del[3], *zrem[3];
    size_t      i;

    if (lv == NULL || lv->left) {
        return;
    }
    lv->left = 1;
    uv_timer_stop(&lv->timer);
    if (!dq_conn_is_up(ch->cmd_conn)) {
        return;
    }
    for (i = 0; i < ch->nq; i++) {
        dq__flush_hist(ch, i);
    }
    del[0] = "DEL";
    del[1] = lv->key;
    zrem[0] = "ZREM";
    zrem[1] = DQ_WORKERS_KEY;
    zrem[2] = lv->id;
    dq__send(ch, 2, del);
    dq__send(ch, 3, zrem);
}

void
dq_live_close(dq_child_t *ch)
{
    if (ch->live && !uv_is_closing((uv_handle_t *) &ch->live->timer)) {
        uv_close((uv_handle_t *) &ch->live->timer, NULL);
    }
}

void
dq_live_free(dq_child_t *ch)
{
    dq_live_t *lv = ch->live;

    /* called last (child.c): ch->qs, which point into qconf, are gone */
    if (lv) {
        free(lv->queues);
        free(lv->hist);
        free(lv->qconf);
        free(lv->orig);
        free(lv->applied);
        free(lv->refs);
        free(lv);
        ch->live = NULL;
    }
}
