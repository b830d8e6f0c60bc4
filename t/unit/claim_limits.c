/*
 * The claim script's queue limits against a real redis-server (port in
 * argv[1], started by t/70-claim-limits.t): token bucket rate,
 * max_concurrent over the lease set, pause/resume, and what next_ms and
 * the wake list tell a sleeping worker. Tasks are placed by hand (the
 * claim script does not read envelopes), so only the script is tested.
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "redis_helper.h"

static dq_str_t      q;
static char          last_id[64];     /* first task of the last claim */
static char          last_claim[DQ_ID_SIZE];
static int64_t       last_first;      /* its first_run_ms */
static int64_t       last_now;        /* Redis' time of the last claim */

static void
add_due(int n, const char *prefix)
{
    char key_t[DQ_KEY_MAX], key_e[DQ_KEY_MAX], id[64];
    int  i;

    dq_key_format(key_t, sizeof(key_t), q, DQ_KEY_TASKS);
    dq_key_format(key_e, sizeof(key_e), q, DQ_KEY_ETA);
    for (i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s%d", prefix, i);
        freeReplyObject(redisCommand(R, "HSET %s %s x", key_t, id));
        freeReplyObject(redisCommand(R, "ZADD %s 1 %s", key_e, id));
    }
}

/* Redis' clock (the one the bucket refills by), in ms. */
static int64_t
redis_ms(void)
{
    redisReply *r = redisCommand(R, "TIME");
    int64_t     ms = 0;

    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        ms = atoll(r->element[0]->str) * 1000
             + atoll(r->element[1]->str) / 1000;
    }
    freeReplyObject(r);
    return ms;
}

/* Claim with limits; returns the number claimed, next_ms in *next. */
static long
claim(int64_t max_n, const dq_claim_limits_t *lim, int64_t *next)
{
    dq_cmd_t          c;
    redisReply       *r;
    dq_claimed_t      tasks[64];
    dq_claim_result_t res = { 0, 0, 0, tasks };
    dq_error_t        err;
    long              n = -1;
    char              cid[DQ_ID_SIZE];

    dq_cmd_init(&c);
    dq_claim_id_new(cid);
    if (dq_cmd_claim_limited(&c, q, cid, max_n, 60000, 0, NULL, lim)
        != DQ_OK)
    {
        return -2;
    }
    r = run(&c);
    if (r && dq_reply_claim(r, &res, 64, &err) == DQ_OK) {
        n = (long) res.n;
        *next = res.next_ms;
        last_now = res.now_ms;
        if (n > 0 && res.tasks[0].id.len < sizeof(last_id)) {
            memcpy(last_id, res.tasks[0].id.ptr, res.tasks[0].id.len);
            last_id[res.tasks[0].id.len] = '\0';
            memcpy(last_claim, cid, sizeof(cid));
            last_first = res.tasks[0].first_run_ms;
        }
    } else {
        diag("claim failed: %s", r && r->type == REDIS_REPLY_ERROR ? r->str
                                                                   : err.msg);
    }
    freeReplyObject(r);
    dq_cmd_free(&c);
    return n;
}

static long long
llen_wake(void)
{
    char        key[DQ_KEY_MAX];
    redisReply *r;
    long long   n;

    dq_key_format(key, sizeof(key), q, DQ_KEY_WAKE);
    r = redisCommand(R, "LLEN %s", key);
    n = r ? r->integer : -1;
    freeReplyObject(r);
    r = redisCommand(R, "DEL %s", key);
    freeReplyObject(r);
    return n;
}

static int
pause_q(int on)
{
    dq_cmd_t    c;
    redisReply *r;
    int         st = -1;
    dq_error_t  err;

    dq_cmd_init(&c);
    dq_cmd_pause(&c, q, on);
    r = run(&c);
    if (r == NULL || dq_reply_statuses(r, 1, &st, &err) != DQ_OK) {
        st = -1;
    }
    freeReplyObject(r);
    dq_cmd_free(&c);
    return st;
}

int
main(int argc, char **argv)
{
    int                port = redis_port(argc, argv);
    dq_claim_limits_t  lim;
    int64_t            next = 0;
    long               n, total;
    int                i;

    redis_connect(port);

    /* ---- no limits: same as dq_cmd_claim */
    q = dq_str_lit("free");
    add_due(5, "f");
    is_int(claim(10, NULL, &next), 5, "no limits: all 5 due tasks claimed");

    /* ---- rate: bucket 3 at 10/s */
    q = dq_str_lit("rated");
    add_due(20, "r");
    memset(&lim, 0, sizeof(lim));
    lim.rate = 10;
    lim.bucket_size = 3;
    llen_wake();
    is_int(claim(10, &lim, &next), 3, "rate: a full bucket gives its 3");
    ok(next >= 1 && next <= 100, "rate: next_ms %lld is the next token "
       "(<= 100 ms at 10/s)", (long long) next);
    {
        int64_t t_full = last_now, gap;

        is_int(llen_wake(), 0, "rate: no wake token passed on while "
               "limited");
        /* nothing, unless the next claim came 100 ms (Redis time) or more
         * later (a loaded machine): then what refilled, by the rule */
        n = claim(10, &lim, &next);
        gap = last_now - t_full;
        is_int(n, gap >= 300 ? 3 : gap / 100, "rate: the emptied bucket "
               "gives only what refilled since: none within 100 ms (%lld ms "
               "later)", (long long) gap);
    }
    usleep(250 * 1000);
    n = claim(10, &lim, &next);
    ok(n == 2 || n == 3, "rate: 250 ms later 2 tokens refilled (got %ld)",
       n);
    usleep(2000 * 1000);
    n = claim(10, &lim, &next);
    is_int(n, 3, "rate: the bucket never holds more than bucket_size");

    /* rate over time: claims every 10 ms for ~1 s at 10/s, bucket 1: the
     * bucket's 1 plus 10 per second of (Redis) time elapsed, measured
     * rather than assumed (a loaded machine sleeps longer). A gap between
     * two claims longer than a token's 100 ms refills the bucket only to
     * its 1 (what came past that is lost, as the rate says): so the tasks
     * due are counted by the bucket's own rule (claim.lua) at the Redis
     * time of each claim (its reply's now_ms), not as 1 + 10/s of the
     * whole time (t/70 failed so on a loaded machine: 10 claimed where
     * that said 12.2, the 10 ms sleeps had overslept past 100 ms) */
    q = dq_str_lit("rated2");
    add_due(100, "s");
    lim.bucket_size = 1;
    total = 0;
    {
        int64_t t0 = redis_ms(), t1, ts = 0, lost = 0, gap;
        double  want, tokens = 1, sim = 0;

        for (i = 0; i < 100; i++) {
            n = claim(10, &lim, &next);
            total += n > 0 ? n : 0;
            if (i > 0) {
                gap = last_now - ts;
                lost += gap > 100 ? gap - 100 : 0;
                tokens += (double) gap * 10 / 1000;
                if (tokens > 1) {
                    tokens = 1;
                }
            }
            ts = last_now;
            if (tokens >= 1) {
                tokens -= 1;
                sim += 1;
            }
            usleep(10 * 1000);
        }
        t1 = redis_ms();
        want = 1 + (double) (t1 - t0) * 10 / 1000;
        ok(total >= sim - 1 && total <= sim + 1, "rate: %lld ms of claims "
           "at 10/s took %ld, the bucket's rule at each claim's time %.0f "
           "(1 + 10/s = %.1f; %lld ms of gaps past 100 ms)",
           (long long) (t1 - t0), total, sim, want, (long long) lost);
        ok(total <= want + 1, "rate: never more than 1 + 10/s (%ld <= "
           "%.1f + 1)", total, want);
    }

    /* ---- concurrency: at most 2 leased */
    q = dq_str_lit("conc");
    add_due(6, "c");
    memset(&lim, 0, sizeof(lim));
    lim.max_concurrent = 2;
    is_int(claim(10, &lim, &next), 2, "concurrency: 2 of 6 claimed");
    ok(next > 1000 && next <= 60000, "concurrency: next_ms %lld waits for "
       "the earliest lease deadline", (long long) next);
    is_int(claim(10, &lim, &next), 0, "concurrency: none while 2 leased");
    is_int(llen_wake(), 0, "concurrency: no wake token passed on");
    {
        dq_cmd_t        c;
        dq_lease_item_t it = { dq_str_c(last_id), dq_str_c(last_claim),
                               { NULL, 0 }, last_first, 0 };
        redisReply     *r;
        int             st = -1;
        dq_error_t      err;

        dq_cmd_init(&c);
        dq_cmd_ack(&c, q, &it, 1, 1000);           /* one finished */
        r = run(&c);
        ok(r && dq_reply_statuses(r, 1, &st, &err) == DQ_OK && st == 1,
           "concurrency: ack of a held task");
        freeReplyObject(r);
        dq_cmd_free(&c);
    }
    is_int(llen_wake(), 1, "concurrency: the ack that freed a slot woke a "
           "sleeper (one wake token)");
    is_int(claim(10, &lim, &next), 1, "concurrency: a freed slot gives one");
    is_int(claim(10, &lim, &next), 0, "concurrency: full again");
    llen_wake();
    {
        char        key[DQ_KEY_MAX];
        redisReply *r;

        dq_key_format(key, sizeof(key), q, DQ_KEY_CONF);
        r = redisCommand(R, "HGET %s waiting", key);
        ok(r && r->type == REDIS_REPLY_STRING, "concurrency: held-back claim "
           "marks the queue waiting");
        freeReplyObject(r);
    }

    /* ---- pause / resume */
    q = dq_str_lit("paused");
    add_due(3, "p");
    is_int(pause_q(1), 1, "pause: state changed");
    is_int(pause_q(1), 0, "pause again: no change");
    is_int(claim(10, NULL, &next), 0, "paused: nothing claimed");
    is_int(next, -1, "paused: next_ms -1 (sleep until woken)");
    llen_wake();
    is_int(pause_q(0), 1, "resume: state changed");
    is_int(llen_wake(), 1, "resume pushed one wake token");
    is_int(claim(10, NULL, &next), 3, "resumed: all 3 claimed");

    redisFree(R);
    return done_testing();
}
