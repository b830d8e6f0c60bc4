/*
 * The cold tier (lib/lua/cold.lua) against a real redis-server, through
 * the dq_cmd_* builders: which tasks go cold (only unnamed, un-keyed tasks
 * whose ETA window starts past the horizon), the bucket layout (listpack,
 * at most DQ_COLD_BUCKET per bucket, 1000s in one window), promotion at
 * the exact ETA, bounded per claim, next_ms from the index, the queue's
 * clock stepped forward and back (the stats clock, as test_scripts_claim), wake
 * tokens, remove by id (in bounded steps) and by state, status and
 * forget, big envelopes, and
 * the hot path's batched dedup.
 * Usage: test_cold PORT
 */
#include <stdio.h>
#include <string.h>

#include "redis_helper.h"

#define TOMB 300
#define DAY  86400000LL

static dq_cmd_t C;
static char     kb[8][DQ_KEY_MAX + 64];

static const char *
key(const char *q, dq_key_kind_t k)
{
    dq_key_format(kb[k % 8], sizeof(kb[0]), dq_str_c(q), k);
    return kb[k % 8];
}

/* the cold index key of q */
static const char *
idx(const char *q)
{
    static char b[DQ_KEY_MAX + 8];
    size_t      n = dq_key_format(b, sizeof(b), dq_str_c(q), DQ_KEY_TASKS);
    snprintf(b + n - 5, sizeof(b) - n + 5, "cold");
    return b;
}

/* bucket i (rank in the index) of q, "" if none */
static const char *
bucket(const char *q, int i)
{
    static char b[DQ_KEY_MAX + 64];
    char        m[64];
    redisReply *r = redisCommand(R, "ZRANGE %s %d %d", idx(q), i, i);

    m[0] = '\0';
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        snprintf(m, sizeof(m), "%s", r->element[0]->str);
    }
    freeReplyObject(r);
    if (m[0] == '\0') {
        return "";
    }
    snprintf(b, sizeof(b), "%s:%s", idx(q), m);
    return b;
}

static int64_t
rnow(void)
{
    redisReply *r = redisCommand(R, "TIME");
    int64_t     v = strtoll(r->element[0]->str, NULL, 10) * 1000
                    + strtoll(r->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(r);
    return v;
}

static char ids[1000][16];

/* Enqueue n tasks "<pfx><i>" (i from first) in one call; returns the number
 * stored (status 0, not existed); etas[i] gets each ETA when non-NULL. */
static int
enq(const char *q, const char *pfx, int first, int n, int64_t eta,
    int64_t countdown, const char *name, int keyed, const char *env,
    int64_t *etas)
{
    static dq_enqueue_item_t it[1000];
    static dq_enqueue_result_t res[1000];
    dq_error_t  err;
    redisReply *r;
    int         i, stored = 0;

    for (i = 0; i < n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%s%d", pfx, first + i);
        memset(&it[i], 0, sizeof(it[i]));
        it[i].id = dq_str_c(ids[i]);
        it[i].envelope = dq_str_c(env ? env : ids[i]);
        it[i].name = dq_str_c(name);
        it[i].eta_ms = eta;
        it[i].countdown_ms = countdown;
        it[i].keyed = keyed;
    }
    if (dq_cmd_enqueue(&C, dq_str_c(q), it, (size_t) n, TOMB) != DQ_OK) {
        return -100;
    }
    r = run(&C);
    if (dq_reply_enqueue(r, it, (size_t) n, res, &err) != DQ_OK) {
        diag("enqueue: %s", err.msg);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    for (i = 0; i < n; i++) {
        if (res[i].status == DQ_OK && !res[i].existed) {
            stored++;
        }
        if (etas) {
            etas[i] = res[i].eta_ms;
        }
    }
    return stored;
}

static int64_t claim_now, claim_next, claim_eta[64];
static char    claim_id[64][16];

/* Claim up to max_n; returns how many (ids/etas in claim_id/claim_eta). */
static int
claim(const char *q, int64_t max_n)
{
    dq_claimed_t      t[64];
    dq_claim_result_t res;
    dq_error_t        err;
    redisReply       *r;
    char              cid[DQ_ID_SIZE];
    size_t            i;

    res.tasks = t;
    dq_claim_id_new(cid);
    dq_cmd_claim(&C, dq_str_c(q), cid, max_n, 60000, 0);
    r = run(&C);
    if (dq_reply_claim(r, &res, 64, &err) != DQ_OK) {
        diag("claim: %s", err.msg);
        freeReplyObject(r);
        return -1;
    }
    claim_now = res.now_ms;
    claim_next = res.next_ms;
    for (i = 0; i < res.n && i < 64; i++) {
        snprintf(claim_id[i], sizeof(claim_id[i]), "%.*s",
                 (int) t[i].id.len, t[i].id.ptr);
        claim_eta[i] = t[i].eta_ms;
    }
    freeReplyObject(r);
    return (int) res.n;
}

/* a bulk remove's "more" (its reply { removed, more }) */
static long long remove_more = -999;

static long long
remove_(const char *q, const char *what, const char *id, int64_t max)
{
    redisReply *r;
    long long   v = -999;

    dq_cmd_remove(&C, dq_str_c(q), what, dq_str_c(id), max, TOMB);
    r = run(&C);
    remove_more = -999;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        v = r->integer;
    } else if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        v = r->element[0]->integer;
        remove_more = r->element[1]->integer;
    }
    freeReplyObject(r);
    return v;
}

/* the queue's clock (stats "clock") set to Redis now + ahead ms, or
 * dropped (ahead < 0): its scripts see that time (dq_now) */
static void
clock_at(const char *q, int64_t ahead)
{
    if (ahead < 0) {
        rint_("HDEL %s clock", key(q, DQ_KEY_STATS));
    } else {
        rint_("HSET %s clock %lld", key(q, DQ_KEY_STATS),
              (long long) (rnow() + ahead));
    }
}

static int
all_listpack(const char *q, int *buckets, long long *sum)
{
    char        enc[32];
    const char *b;
    int         i, ok_ = 1;

    *sum = 0;
    for (i = 0; *(b = bucket(q, i)); i++) {
        long long n = rint_("HLEN %s", b);
        *sum += n;
        rstr(enc, sizeof(enc), "OBJECT ENCODING %s", b);
        if (strcmp(enc, "listpack") != 0 || n > DQ_COLD_BUCKET || n < 1) {
            diag("%s: %s, %lld tasks", b, enc, n);
            ok_ = 0;
        }
    }
    *buckets = i;
    return ok_;
}

static void
test_goes_cold(void)
{
    char    v[64], want[64];
    int64_t eta, now, ws;

    is_int(enq("c1", "a", 0, 1, -1, DAY, NULL, 0, NULL, &eta), 1,
           "a task due in a day is stored");
    now = rnow();
    ok(eta > now + DAY - 2000 && eta <= now + DAY, "its ETA is now + a day");
    is_int(rint_("HEXISTS %s a0", key("c1", DQ_KEY_TASKS)), 0,
           "not in the tasks hash");
    is_int(rint_("ZCARD %s", key("c1", DQ_KEY_ETA)), 0, "not in the eta set");
    is_int(rint_("ZCARD %s", idx("c1")), 1, "one bucket in the index");
    ws = eta - eta % DQ_COLD_WINDOW_MS;
    is_int(rint_("ZSCORE %s %lld", idx("c1"), (long long) ws), ws,
           "the open bucket's member is its window start");
    is_int(rint_("ZSCORE %s %s", idx("c1"), strrchr(bucket("c1", 0), ':') + 1),
           ws, "scored by the window start");
    is_str(rstr(v, sizeof(v), "OBJECT ENCODING %s", bucket("c1", 0)),
           "listpack", "the bucket is a listpack");
    snprintf(want, sizeof(want), "%04lld%s", (long long) (eta - ws), "a0");
    is_str(rstr(v, sizeof(v), "HGET %s a0", bucket("c1", 0)), want,
           "value: the ETA offset in 4 digits, then the envelope");
    is_int(rint_("HGET %s cold", key("c1", DQ_KEY_STATS)), 1,
           "stats cold = 1");
    is_int(rint_("HGET %s enqueued", key("c1", DQ_KEY_STATS)), 1,
           "enqueued counts it");
    is_int(claim("c1", 10), 0, "nothing to claim");
    is_int(claim_next, ws - DQ_COLD_AFTER_MS - claim_now,
           "next_ms = until the bucket's promotion (its window - 20 s)");
    is_int(rint_("ZCARD %s", idx("c1")), 1, "a claim leaves it cold");
}

static void
test_stays_hot(void)
{
    int64_t now = rnow();

    is_int(enq("c2", "due", 0, 1, -1, 0, NULL, 0, NULL, NULL), 1, "due now");
    is_int(enq("c2", "soon", 0, 1, -1, 5000, NULL, 0, NULL, NULL), 1,
           "due in 5 s");
    is_int(enq("c2", "hor", 0, 1, -1, DQ_COLD_AFTER_MS, NULL, 0, NULL, NULL),
           1, "due at the horizon");
    is_int(enq("c2", "past", 0, 1, now - DAY, -1, NULL, 0, NULL, NULL), 1,
           "an ETA a day ago");
    is_int(enq("c2", "named", 0, 1, -1, DAY, "nm", 0, NULL, NULL), 1,
           "a named task due in a day");
    is_int(enq("c2", "keyed", 0, 1, -1, DAY, NULL, 1, NULL, NULL), 1,
           "a keyed task due in a day");
    is_int(enq("c2", "abs", 0, 1, now + DAY, -1, NULL, 0, NULL, NULL), 1,
           "an absolute ETA a day ahead");
    is_int(rint_("ZCARD %s", key("c2", DQ_KEY_ETA)), 6,
           "due, soon, horizon, past, named, keyed tasks are hot");
    is_int(rint_("HGET %s cold", key("c2", DQ_KEY_STATS)), 1,
           "only the plain one a day ahead is cold");
    is_int(rint_("EXISTS %s", idx("c2")), 1, "index exists");
}

static void
test_promote_exact(void)
{
    int64_t etas[3], now = rnow(), first;
    int     i, n;

    is_int(enq("c3", "p", 0, 1, now + 45000, -1, NULL, 0, NULL, etas), 1,
           "eta now + 45 s");
    is_int(enq("c3", "p", 1, 1, now + 45001, -1, NULL, 0, NULL, etas + 1), 1,
           "eta now + 45.001 s");
    is_int(enq("c3", "p", 2, 1, now + 52999, -1, NULL, 0, NULL, etas + 2), 1,
           "eta now + 52.999 s");
    is_int(rint_("HGET %s cold", key("c3", DQ_KEY_STATS)), 3, "all cold");
    clock_at("c3", 40000);
    /* the ETAs span two windows when now + 45 s is not in the window of
     * now + 52.999 s: one claim a window (DQ_COLD_PROMOTE buckets a call),
     * next_ms 0 while a promotable bucket is left */
    n = rint_("ZCARD %s", idx("c3"));
    for (i = 0; i < n; i += DQ_COLD_PROMOTE) {
        is_int(claim("c3", 10), 0, "40 s later: promoted, not yet due");
    }
    is_int(rint_("HGET %s cold", key("c3", DQ_KEY_STATS)), 0, "cold 0");
    is_int(rint_("HGET %s promoted", key("c3", DQ_KEY_STATS)), 3,
           "promoted 3");
    is_int(rint_("EXISTS %s", idx("c3")), 0, "index gone");
    for (i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "p%d", i);
        is_int(rint_("ZSCORE %s %s", key("c3", DQ_KEY_ETA), id), etas[i],
               "%s: exact ETA in the eta set", id);
        is_int(rint_("HEXISTS %s %s", key("c3", DQ_KEY_TASKS), id), 1,
               "%s: envelope in the tasks hash", id);
    }
    first = etas[0] - claim_now;
    is_int(claim_next, first, "next_ms = until the earliest promoted ETA");
    clock_at("c3", 59000);
    n = claim("c3", 10);
    is_int(n, 3, "59 s later all three are claimed");
    for (i = 0; i < n; i++) {
        int k = claim_id[i][1] - '0';
        is_int(claim_eta[i], etas[k], "%s claimed with its exact ETA",
               claim_id[i]);
    }
    is_int(claim("c3", 10), 0, "never twice");
    clock_at("c3", -1);
}

static void
test_window_overflow(void)
{
    int       buckets, i;
    long long sum;
    int64_t   eta = rnow() + DAY;
    char      enc[32];

    for (i = 0; i < 3; i++) {
        is_int(enq("c4", "o", i * 1000, 1000, eta, -1, NULL, 0, NULL, NULL),
               1000, "1000 tasks, one ETA, call %d", i + 1);
    }
    for (i = 0; i < 100; i++) {
        enq("c4", "s", i, 1, eta + DQ_COLD_WINDOW_MS, -1, NULL, 0, NULL,
            NULL);
    }
    ok(all_listpack("c4", &buckets, &sum),
       "every bucket is a listpack of 1..%d tasks", DQ_COLD_BUCKET);
    is_int(sum, 3100, "3100 tasks in the buckets");
    is_int(buckets, 3000 / DQ_COLD_BUCKET + 1 + 1,
           "3000 in one window: %d buckets; 100 one per call: 1",
           3000 / DQ_COLD_BUCKET + 1);
    is_int(rint_("HGET %s cold", key("c4", DQ_KEY_STATS)), 3100,
           "stats cold = 3100");
    is_int(rint_("HLEN %s:%lld", idx("c4"),
                 (long long) (eta + DQ_COLD_WINDOW_MS
                              - (eta + DQ_COLD_WINDOW_MS) % DQ_COLD_WINDOW_MS)),
           100, "the next window's open bucket holds the 100");
    /* a big envelope: the bucket turns into a hashtable, nothing breaks */
    memset(enc, 'x', sizeof(enc) - 1);
    enc[sizeof(enc) - 1] = '\0';
    {
        char big[200];
        memset(big, 'y', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        is_int(enq("c4b", "big", 0, 1, -1, DAY, NULL, 0, big, NULL), 1,
               "a 199-byte envelope goes cold");
        is_str(rstr(enc, sizeof(enc), "OBJECT ENCODING %s", bucket("c4b", 0)),
               "hashtable", "its bucket is a hashtable (value > 64 B)");
    }
}

static void
test_promote_bounded(void)
{
    int     i, calls = 0;
    int64_t now = rnow();
    long long prev = 0, hot, buckets;

    for (i = 0; i < 3; i++) {
        enq("c5", "b", i * 1000, 1000, now + 45000, -1, NULL, 0, NULL, NULL);
    }
    is_int(rint_("HGET %s cold", key("c5", DQ_KEY_STATS)), 3000, "3000 cold");
    buckets = rint_("ZCARD %s", idx("c5"));
    clock_at("c5", 40000);
    for (;;) {
        claim("c5", 0);
        calls++;
        if (calls == 1) {
            is_int(rint_("ZCARD %s", idx("c5")), buckets - DQ_COLD_PROMOTE,
                   "the first claim promoted %d of the %lld buckets",
                   DQ_COLD_PROMOTE, buckets);
        }
        hot = rint_("ZCARD %s", key("c5", DQ_KEY_ETA));
        ok(hot - prev <= DQ_COLD_PROMOTE * DQ_COLD_BUCKET && hot > prev,
           "claim %d promoted %lld (at most %d)", calls, hot - prev,
           DQ_COLD_PROMOTE * DQ_COLD_BUCKET);
        prev = hot;
        if (hot >= 3000 || calls > 3000 / (DQ_COLD_PROMOTE * DQ_COLD_BUCKET) + 2) {
            break;
        }
        is_int(claim_next, 0, "next_ms 0 while buckets wait for promotion");
    }
    is_int(hot, 3000, "all 3000 promoted");
    is_int(rint_("HLEN %s", key("c5", DQ_KEY_TASKS)), 3000,
           "3000 envelopes, no duplicate");
    is_int(rint_("HGET %s cold", key("c5", DQ_KEY_STATS)), 0, "cold 0");
    is_int(rint_("EXISTS %s", idx("c5")), 0, "the index is gone");
    is_int(rint_("EXISTS %s", bucket("c5", 0)), 0, "no bucket left");
    clock_at("c5", -1);
}

static void
test_clock_steps(void)
{
    int64_t eta, now;

    /* the queue's clock 59 s ahead, then back to Redis time */
    clock_at("c6", 59000);
    now = rnow() + 59000;
    is_int(enq("c6", "k", 0, 1, -1, 40000, NULL, 0, NULL, &eta), 1,
           "stored with the clock 59 s ahead");
    is_int(rint_("HGET %s cold", key("c6", DQ_KEY_STATS)), 1, "cold");
    clock_at("c6", -1);
    is_int(claim("c6", 10), 0, "clock stepped back: nothing due");
    is_int(rint_("HGET %s cold", key("c6", DQ_KEY_STATS)), 1,
           "still cold (not promoted early)");
    ok(claim_next > 59000, "next_ms counts from the stepped-back clock (%lld)",
       (long long) claim_next);
    /* forward past a cold ETA (a fleet down for a while): promoted and
     * claimed in the same call, with its ETA */
    now = rnow();
    is_int(enq("c6b", "f", 0, 1, now + 40000, -1, NULL, 0, NULL, &eta), 1,
           "eta now + 40 s");
    is_int(rint_("HGET %s cold", key("c6b", DQ_KEY_STATS)), 1, "cold");
    clock_at("c6b", 59000);
    is_int(claim("c6b", 10), 1, "clock 59 s ahead: claimed at once");
    is_int(claim_eta[0], eta, "with its ETA");
    clock_at("c6b", -1);
}

static void
test_remove(void)
{
    int64_t   eta = rnow() + DAY;
    int       buckets;
    long long sum;

    enq("c7", "r", 0, 300, eta, -1, NULL, 0, NULL, NULL);
    is_int(remove_("c7", "id", "r5", 1), 1, "remove a cold task by id");
    is_int(remove_("c7", "id", "r5", 1), 0, "gone");
    is_int(remove_("c7", "id", "nope", 1), 0, "unknown id: 0");
    is_int(rint_("HGET %s cold", key("c7", DQ_KEY_STATS)), 299, "cold 299");
    ok(all_listpack("c7", &buckets, &sum) && sum == 299, "299 in buckets");
    is_int(remove_("c7", "delayed", "", 200), 200, "remove 200 delayed");
    is_int(remove_more, 1, "... more may be left (it took max)");
    is_int(rint_("HGET %s cold", key("c7", DQ_KEY_STATS)), 99, "cold 99");
    ok(all_listpack("c7", &buckets, &sum) && sum == 99, "99 in buckets");
    is_int(remove_("c7", "due", "", 1000), 0, "none due");
    is_int(remove_("c7", "waiting", "", 1000), 99, "remove the waiting 99");
    is_int(remove_more, 0, "... none left");
    is_int(rint_("EXISTS %s", idx("c7")), 0, "index gone");
    is_int(rint_("HGET %s deleted", key("c7", DQ_KEY_STATS)), 300,
           "deleted 300");
    /* the last task of a bucket removed by id: bucket and member go */
    enq("c7", "one", 0, 1, -1, DAY, NULL, 0, NULL, NULL);
    is_int(remove_("c7", "id", "one0", 1), 1, "the only cold task");
    is_int(rint_("EXISTS %s", idx("c7")), 0, "its bucket's member is gone");
    is_int(rint_("HGET %s cold", key("c7", DQ_KEY_STATS)), 0, "cold 0");
}

static long long
remove_from(const char *q, const char *id, int64_t from)
{
    redisReply *r;
    long long   v;

    dq_cmd_remove_from(&C, dq_str_c(q), "id", dq_str_c(id), 1, TOMB, from);
    r = run(&C);
    v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
    freeReplyObject(r);
    return v;
}

/* remove by id looks at the tier in bounded steps (about 1000 buckets a
 * call, whole windows) */
static void
test_remove_steps(void)
{
    int64_t   base = rnow() + DAY, from;
    long long v;
    int       i, calls;

    for (i = 0; i < 1200; i++) {
        enq("cb", "w", i, 1, base + (int64_t) i * DQ_COLD_WINDOW_MS, -1, NULL,
            0, NULL, NULL);
    }
    is_int(rint_("ZCARD %s", idx("cb")), 1200, "1200 windows, one bucket each");
    v = remove_from("cb", "w1199", 0);
    ok(v < 0, "the last window's task: not found in the first call (%lld)",
       v);
    ok(-v > base && -v <= base + 1200LL * DQ_COLD_WINDOW_MS,
       "it says which window to go on from");
    is_int(remove_from("cb", "w1199", -v), 1, "found by the next call");
    for (from = 0, calls = 0; calls < 10; calls++) {
        v = remove_from("cb", "nope", from);
        if (v >= 0) {
            break;
        }
        from = -v;
    }
    is_int(v, 0, "an unknown id: 0 after %d calls", calls + 1);
    is_int(calls, 1, "two calls for 1199 buckets");
    is_int(remove_("cb", "id", "w3", 1), 1, "dq_cmd_remove: all in one call");
    /* one window of more than 1000 buckets is looked at whole */
    for (i = 0; i < 129; i++) {
        enq("cg", "g", i * 1000, 1000, base, -1, NULL, 0, NULL, NULL);
    }
    is_int(rint_("ZCARD %s", idx("cg")), 1008, "129,000 tasks: 1008 buckets");
    enq("cg", "late", 0, 1, base + DQ_COLD_WINDOW_MS, -1, NULL, 0, NULL,
        NULL);
    v = remove_from("cg", "late0", 0);
    is_int(-v, base - base % DQ_COLD_WINDOW_MS + 1,
           "a 1008-bucket window in one call, then on after it");
    is_int(remove_from("cg", "late0", -v), 1, "found there");
    is_int(remove_from("cg", "g128999", 0), 1,
           "a task of the big window's last bucket: found in one call");
}

static void
test_status_forget(void)
{
    redisReply *r;

    enq("c8", "w", 0, 1, -1, DAY, NULL, 0, NULL, NULL);
    enq("c8", "d", 0, 1, -1, 0, NULL, 0, NULL, NULL);
    dq_cmd_status(&C, dq_str_lit("c8"), 0);
    r = run(&C);
    ok(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3,
       "status replies");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
        is_int(r->element[1]->integer, 2, "waiting counts the cold task");
        is_int(r->element[2]->integer, 1, "due: the hot one");
    }
    freeReplyObject(r);
    remove_("c8", "due", "", 10);
    dq_cmd_forget(&C, dq_str_lit("c8"));
    r = run(&C);
    is_int(r->integer, 0, "forget refuses a queue with a cold task");
    freeReplyObject(r);
    remove_("c8", "waiting", "", 10);
    dq_cmd_forget(&C, dq_str_lit("c8"));
    r = run(&C);
    is_int(r->integer, 1, "and forgets it once it is removed");
    freeReplyObject(r);
}

static void
test_wake(void)
{
    int64_t now = rnow();

    enq("c9", "a", 0, 1, now + DAY, -1, NULL, 0, NULL, NULL);
    is_int(rint_("LLEN %s", key("c9", DQ_KEY_WAKE)), 1,
           "first cold task: a wake token (a sleeper learns its next_ms)");
    enq("c9", "b", 0, 1, now + DAY + 1, -1, NULL, 0, NULL, NULL);
    enq("c9", "c", 0, 1, now + 2 * DAY, -1, NULL, 0, NULL, NULL);
    is_int(rint_("LLEN %s", key("c9", DQ_KEY_WAKE)), 1,
           "same or later window: none");
    enq("c9", "d", 0, 1, now + DAY / 2, -1, NULL, 0, NULL, NULL);
    is_int(rint_("LLEN %s", key("c9", DQ_KEY_WAKE)), 2,
           "an earlier window: one");
}

static void
test_hot_dedup(void)
{
    int64_t etas[2];

    /* plain hot tasks are written by one variadic HSET after a HMGET:
     * the same id still answers "existed" */
    is_int(enq("ca", "x", 0, 1, -1, 0, NULL, 0, "first", etas), 1, "x0");
    is_int(enq("ca", "x", 0, 1, -1, 0, NULL, 0, "second", etas), 0,
           "x0 again: existed");
    {
        char v[32];
        is_str(rstr(v, sizeof(v), "HGET %s x0", key("ca", DQ_KEY_TASKS)),
               "first", "the first envelope kept");
    }
    is_int(enq("ca", "y", 0, 1, -1, 5000, NULL, 0, NULL, NULL), 1, "y0");
    /* a batch repeating an id: the second is "existed", same ETA */
    {
        dq_enqueue_item_t   it[2];
        dq_enqueue_result_t res[2];
        dq_error_t          err;
        redisReply         *r;

        memset(it, 0, sizeof(it));
        it[0].id = it[1].id = dq_str_lit("z");
        it[0].envelope = dq_str_lit("one");
        it[1].envelope = dq_str_lit("two");
        it[0].eta_ms = it[1].eta_ms = -1;
        it[0].countdown_ms = 3000;
        it[1].countdown_ms = 9000;
        dq_cmd_enqueue(&C, dq_str_lit("ca"), it, 2, TOMB);
        r = run(&C);
        is_int(dq_reply_enqueue(r, it, 2, res, &err), DQ_OK, "batch reply");
        freeReplyObject(r);
        ok(!res[0].existed && res[1].existed, "second of the batch existed");
        is_int(res[1].eta_ms, res[0].eta_ms, "with the first's ETA");
        is_int(rint_("HGET %s enqueued", key("ca", DQ_KEY_STATS)), 3,
               "enqueued 3");
    }
}

int
main(int argc, char **argv)
{
    int port = redis_port(argc, argv);

    if (port <= 0) {
        printf("1..0 # SKIP no redis port given\n");
        return 0;
    }
    redis_connect(port);
    freeReplyObject(redisCommand(R, "FLUSHALL"));
    dq_cmd_init(&C);

    test_goes_cold();
    test_stays_hot();
    test_promote_exact();
    test_window_overflow();
    test_promote_bounded();
    test_clock_steps();
    test_remove();
    test_remove_steps();
    test_status_forget();
    test_wake();
    test_hot_dedup();

    dq_cmd_free(&C);
    redisFree(R);
    return done_testing();
}
