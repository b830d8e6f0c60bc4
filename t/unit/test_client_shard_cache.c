/*
 * The C client's shard-count cache (client/client_shards.c) against a
 * real redis-server, counted with INFO commandstats (review R4 finding 4).
 * Every dq_defer needs its queue's shard count; a miss is one blocking
 * HGET before the script call. The cache had 16 entries evicted round
 * robin, so a producer cycling through 17 queues missed on every call
 * (170 HGETs for 170 enqueues). It is sized like nginx's table (64) and
 * evicts the least recently used entry: 17 and 64 queues cost one HGET
 * each per DQ_SHARDS_TTL_MS, and a 65th queue evicts the entry used
 * longest ago, not one in use.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <deferred/client.h>

#include "redis_helper.h"

static dq_client_t *C;

static long long
hget_calls(void)
{
    redisReply *r = redisCommand(R, "INFO commandstats");
    char       *p = r && r->str ? strstr(r->str, "cmdstat_hget:calls=") : NULL;
    long long   n = p ? atoll(p + 19) : 0;

    freeReplyObject(r);
    return n;
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
defer_to(int i)
{
    dq_defer_opts_t o = DQ_DEFER_OPTS_INIT;
    char            q[32];

    snprintf(q, sizeof(q), "cq%d", i);
    o.queue = q;
    return dq_defer(C, "f", NULL, &o, NULL, NULL);
}

/* rounds over nq queues: HGETs made, *ms the time taken */
static long long
cycle(int nq, int rounds, long long *ms, int *failed)
{
    long long h0 = hget_calls(), t0 = now_ms();
    int       r, i;

    *failed = 0;
    for (r = 0; r < rounds; r++) {
        for (i = 0; i < nq; i++) {
            *failed += defer_to(i) != DQ_OK;
        }
    }
    *ms = now_ms() - t0;
    return hget_calls() - h0;
}

static void
test_cycle(int nq)
{
    long long h, ms, bound;
    int       failed;

    C = dq_client_new(getenv("DQ_ADDR"), NULL);
    h = cycle(nq, 10, &ms, &failed);
    /* one read per queue, again each DQ_SHARDS_TTL_MS */
    bound = (long long) nq * (ms / DQ_SHARDS_TTL_MS + 1);
    is_int(failed, 0, "%d queues x 10 rounds: every enqueue stored", nq);
    ok(h <= bound, "%d queues x 10 rounds: %lld HGETs in %lld ms (at most "
       "%lld: one per queue per %d ms)", nq, h, ms, bound, DQ_SHARDS_TTL_MS);
    dq_client_free(C);
}

/* 64 queues fill the cache; queue 0 used again; a 65th queue evicts the
 * least recently used (queue 1), not queue 0. Within one TTL, or the
 * entries expire on their own: tried again on a slow run. */
static void
test_lru(void)
{
    long long h0, t0, h_q0 = -1, h_q1 = -1;
    int       try, i;

    for (try = 0; try < 3; try++) {
        C = dq_client_new(getenv("DQ_ADDR"), NULL);
        t0 = now_ms();
        for (i = 0; i < 64; i++) {
            defer_to(i);
        }
        defer_to(0);
        defer_to(64);
        h0 = hget_calls();
        defer_to(0);
        h_q0 = hget_calls() - h0;
        h0 = hget_calls();
        defer_to(1);
        h_q1 = hget_calls() - h0;
        dq_client_free(C);
        if (now_ms() - t0 < DQ_SHARDS_TTL_MS / 2) {
            break;
        }
        diag("slow run (%lld ms), again", now_ms() - t0);
    }
    is_int(h_q0, 0, "queue 0, used again before a 65th queue came: "
           "still cached (no HGET)");
    is_int(h_q1, 1, "queue 1, the least recently used: evicted (one HGET)");
}

int
main(int argc, char **argv)
{
    int  port = redis_port(argc, argv);
    char addr[32];

    signal(SIGPIPE, SIG_IGN);
    if (port <= 0) {
        printf("1..0 # SKIP no redis port given\n");
        return 0;
    }
    redis_connect(port);
    freeReplyObject(redisCommand(R, "FLUSHALL"));
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    setenv("DQ_ADDR", addr, 1);

    test_cycle(16);
    test_cycle(17);
    test_cycle(64);
    test_lru();

    redisFree(R);
    return done_testing();
}
