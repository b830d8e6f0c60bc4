/*
 * dq-bench-wait — wait until a Redis hash counter reaches a value, and say
 * when (bench/run.sh times the worker workloads with it).
 *
 * Polls `HGET key field` every -i ms over one connection (a few hundred
 * cheap commands per second: negligible next to the work measured, and
 * counted in the Redis CPU figures, which say so). Prints, on reaching -n:
 *   first_s=<realtime s when the counter first moved from its start value>
 *   done_s=<realtime s when it reached n> value=<v>
 * Realtime (not monotonic) so that run.sh can compare it with the time it
 * started the worker ($EPOCHREALTIME). With -x FIELD (repeatable), gives up
 * as soon as one of those counters of the same hash moves (e.g. "dead",
 * "retried": the tasks are failing, waiting longer shows nothing).
 * Exit 0 when reached, 1 on timeout or a failure counter moving (still
 * printing the last value and "failed=<field>"), 2 on a Redis error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

static double
realtime_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
get_counter(redisContext *ctx, const char *key, const char *field,
            long long *out)
{
    redisReply *r;

    r = redisCommand(ctx, "HGET %s %s", key, field);
    if (r == NULL) {
        fprintf(stderr, "dq-bench-wait: %s\n", ctx->errstr);
        return -1;
    }
    if (r->type == REDIS_REPLY_NIL) {
        *out = 0;
    } else if (r->type == REDIS_REPLY_STRING) {
        *out = strtoll(r->str, NULL, 10);
    } else {
        fprintf(stderr, "dq-bench-wait: unexpected reply type %d\n",
                r->type);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

int
main(int argc, char **argv)
{
    const char     *host = "127.0.0.1", *key = NULL, *field = "done";
    const char     *fail[8];
    long long       fail0[8], fv;
    int             port = 6379, ch, interval_ms = 5, nfail = 0, i;
    long long       n = 0, v = 0, start;
    double          timeout = 120, t0, first = 0, now;
    redisContext   *ctx;
    struct timespec nap;

    while ((ch = getopt(argc, argv, "p:k:f:n:i:t:x:")) != -1) {
        switch (ch) {
        case 'x':
            if (nfail < 8)
                fail[nfail++] = optarg;
            break;
        case 'p': port = atoi(optarg); break;
        case 'k': key = optarg; break;
        case 'f': field = optarg; break;
        case 'n': n = strtoll(optarg, NULL, 10); break;
        case 'i': interval_ms = atoi(optarg); break;
        case 't': timeout = strtod(optarg, NULL); break;
        default:
            fprintf(stderr, "usage: dq-bench-wait -p PORT -k KEY [-f FIELD] "
                    "-n N [-i MS] [-t SEC] [-x FAILFIELD]...\n");
            return 2;
        }
    }
    if (key == NULL || n <= 0) {
        fprintf(stderr, "dq-bench-wait: -k KEY and -n N are required\n");
        return 2;
    }

    ctx = redisConnect(host, port);
    if (ctx == NULL || ctx->err) {
        fprintf(stderr, "dq-bench-wait: connect: %s\n",
                ctx ? ctx->errstr : "out of memory");
        return 2;
    }

    t0 = realtime_s();
    if (get_counter(ctx, key, field, &start) != 0)
        return 2;
    v = start;
    for (i = 0; i < nfail; i++)
        if (get_counter(ctx, key, fail[i], &fail0[i]) != 0)
            return 2;
    nap.tv_sec = interval_ms / 1000;
    nap.tv_nsec = (long) (interval_ms % 1000) * 1000000;

    for ( ;; ) {
        if (get_counter(ctx, key, field, &v) != 0)
            return 2;
        now = realtime_s();
        if (first == 0 && v != start)
            first = now;
        if (v >= n)
            break;
        for (i = 0; i < nfail; i++) {
            if (get_counter(ctx, key, fail[i], &fv) != 0)
                return 2;
            if (fv != fail0[i]) {
                printf("first_s=%.6f done_s=0 value=%lld failed=%s\n",
                       first, v, fail[i]);
                redisFree(ctx);
                return 1;
            }
        }
        if (now - t0 > timeout) {
            printf("first_s=%.6f done_s=0 value=%lld\n", first, v);
            redisFree(ctx);
            return 1;
        }
        nanosleep(&nap, NULL);
    }

    printf("first_s=%.6f done_s=%.6f value=%lld\n", first, now, v);
    redisFree(ctx);
    return 0;
}
