/*
 * dq-bench-promote — the cold tier's promotion cost for bench/run.sh.
 *
 * Owns: moving QUEUE's clock AHEAD ms forward (its stats "clock": the
 * queue's scripts then see that time, as t/unit/test_cold.c does), then
 * calling the claim script with max_n 0 until it answers next_ms != 0,
 * i.e. every cold bucket whose window starts within the horizon of that
 * time has been promoted, each call timed with the monotonic clock.
 * Run it right after filling QUEUE with tasks due between AHEAD and AHEAD
 * + 20 s from now; run.sh measures Redis CPU around it.
 *
 *   dq-bench-promote -p PORT [-q QUEUE] [-A AHEAD_MS]
 * Output, one line: calls=<n> promoted=<tasks> seconds=<s>
 *   max_call_ms=<slowest claim call> mean_call_ms=<mean>
 * Exit status 0 if anything was promoted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "dq_contract.h"

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    const char        *queue = "default";
    long long          ahead = 40000, promoted = 0, now;
    int                port = 0, ch, calls = 0;
    char               stats[DQ_KEY_MAX], cid[DQ_ID_SIZE];
    double             t0, t, max = 0, sum = 0;
    redisContext      *ctx;
    redisReply        *r;
    dq_cmd_t           cmd;
    dq_claim_result_t  res;
    dq_claimed_t       none[1];
    dq_error_t         err;

    while ((ch = getopt(argc, argv, "p:q:A:")) != -1) {
        switch (ch) {
        case 'p': port = atoi(optarg); break;
        case 'q': queue = optarg; break;
        case 'A': ahead = strtoll(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: dq-bench-promote -p PORT [-q QUEUE] "
                    "[-A AHEAD_MS]\n");
            return 2;
        }
    }
    ctx = redisConnect("127.0.0.1", port);
    if (ctx == NULL || ctx->err) {
        fprintf(stderr, "dq-bench-promote: cannot connect to port %d\n",
                port);
        return 2;
    }
    r = redisCommand(ctx, "TIME");
    now = strtoll(r->element[0]->str, NULL, 10) * 1000
          + strtoll(r->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(r);
    dq_key_format(stats, sizeof(stats), dq_str_c(queue), DQ_KEY_STATS);
    freeReplyObject(redisCommand(ctx, "HSET %s clock %lld", stats,
                                 now + ahead));
    dq_cmd_init(&cmd);
    res.tasks = none;
    t0 = now_s();
    for (;;) {
        dq_claim_id_new(cid);
        dq_cmd_claim(&cmd, dq_str_c(queue), cid, 0, 30000, 0);
        t = now_s();
        r = redisCommandArgv(ctx, cmd.argc, cmd.argv, cmd.argvlen);
        if (dq_reply_is_noscript(r)) {
            freeReplyObject(r);
            dq_cmd_use_eval(&cmd);
            r = redisCommandArgv(ctx, cmd.argc, cmd.argv, cmd.argvlen);
        }
        t = now_s() - t;
        calls++;
        sum += t;
        if (t > max) {
            max = t;
        }
        if (dq_reply_claim(r, &res, 1, &err) != DQ_OK) {
            fprintf(stderr, "dq-bench-promote: claim: %s\n", err.msg);
            freeReplyObject(r);
            return 1;
        }
        freeReplyObject(r);
        if (res.next_ms != 0) {
            break;
        }
    }
    t = now_s() - t0;
    r = redisCommand(ctx, "HGET %s promoted", stats);
    if (r && r->type == REDIS_REPLY_STRING) {
        promoted = strtoll(r->str, NULL, 10);
    }
    freeReplyObject(r);
    freeReplyObject(redisCommand(ctx, "HDEL %s clock", stats));
    printf("calls=%d promoted=%lld seconds=%.6f max_call_ms=%.3f "
           "mean_call_ms=%.3f\n", calls, promoted, t, max * 1e3,
           sum * 1e3 / calls);
    dq_cmd_free(&cmd);
    redisFree(ctx);
    return promoted > 0 ? 0 : 1;
}
