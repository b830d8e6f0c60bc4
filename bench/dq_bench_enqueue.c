/*
 * dq-bench-enqueue — the C-client side of the benchmarks (bench/run.sh).
 *
 * Owns: enqueueing N tasks through include/deferred/client.h, one
 * dq_defer() per task or dq_defer_many() in batches, timed with the
 * monotonic clock, bounded by a task count and a time limit. It is also
 * how run.sh fills a queue before the worker, lateness and memory runs
 * (countdown or absolute ETAs spread over a window).
 *
 * Every task is func(args) with args = [<short string>, <i>] unless -s
 * gives the string (the lateness workload passes a file path there); -d
 * delays every n-th task (the 90/10 mix).
 *
 * Output, one line on stdout, parsed by run.sh:
 *   tasks=<stored> errors=<failed> seconds=<s> tasks_per_s=<r>
 *   cpu_us_per_task=<user+system CPU of this process per stored task>
 * Exit status 0 if every task was stored, 1 otherwise.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include <deferred/client.h>

typedef struct {
    const char *address;
    const char *func;
    const char *queue;
    const char *str;          /* first argument */
    long        n;            /* tasks */
    long        batch;        /* 0: dq_defer per task; else per call */
    double      max_seconds;  /* stop early past this */
    long long   countdown_ms; /* -1: none */
    long long   spread_ms;    /* > 0: absolute ETAs over [first, first+spread) */
    long long   first_ms;     /* offset of the first ETA from now */
    long        every;        /* > 0: every every-th task gets delay_ms */
    long long   delay_ms;     /* its countdown (the mix workloads) */
} bench_opts_t;

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long
realtime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double
cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: dq-bench-enqueue -a host:port -n N [options]\n"
        "  -a ADDR    Redis address (host:port or unix:/path)\n"
        "  -n N       tasks to enqueue\n"
        "  -b B       batch size for dq_defer_many (0 = one dq_defer per task)\n"
        "  -f FUNC    function name (default bench.noop)\n"
        "  -q QUEUE   queue (default: default)\n"
        "  -s STR     first argument (default \"hello\")\n"
        "  -c MS      countdown in ms for every task\n"
        "  -e FIRST:SPREAD  absolute ETAs from now+FIRST ms, evenly over SPREAD ms\n"
        "  -d EVERY:MS every EVERY-th task (i %% EVERY == EVERY - 1)\n"
        "             gets a countdown of MS ms, the others none\n"
        "             (-d 10:3600000: 90 %% due, 10 %% an hour ahead)\n"
        "  -t SEC     stop after SEC seconds (default 60)\n");
}

static int
parse_opts(int argc, char **argv, bench_opts_t *o)
{
    int   ch;
    char *end;

    memset(o, 0, sizeof(*o));
    o->func = "bench.noop";
    o->str = "hello";
    o->max_seconds = 60;
    o->countdown_ms = -1;

    while ((ch = getopt(argc, argv, "a:n:b:f:q:s:c:e:d:t:h")) != -1) {
        switch (ch) {
        case 'a': o->address = optarg; break;
        case 'n': o->n = strtol(optarg, NULL, 10); break;
        case 'b': o->batch = strtol(optarg, NULL, 10); break;
        case 'f': o->func = optarg; break;
        case 'q': o->queue = optarg; break;
        case 's': o->str = optarg; break;
        case 'c': o->countdown_ms = strtoll(optarg, NULL, 10); break;
        case 'e':
            o->first_ms = strtoll(optarg, &end, 10);
            if (*end != ':') {
                fprintf(stderr, "-e wants FIRST:SPREAD in ms\n");
                return -1;
            }
            o->spread_ms = strtoll(end + 1, NULL, 10);
            break;
        case 'd':
            o->every = strtol(optarg, &end, 10);
            if (*end != ':' || o->every < 1) {
                fprintf(stderr, "-d wants EVERY:MS\n");
                return -1;
            }
            o->delay_ms = strtoll(end + 1, NULL, 10);
            break;
        case 't': o->max_seconds = strtod(optarg, NULL); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (o->address == NULL || o->n <= 0 || o->batch < 0) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Per-task options: countdown, or an ETA spread evenly over the window. */
static void
task_opts(const bench_opts_t *o, long long base_ms, long i,
          dq_defer_opts_t *d)
{
    dq_defer_opts_t init = DQ_DEFER_OPTS_INIT;

    *d = init;
    d->queue = o->queue;
    d->countdown_ms = o->countdown_ms;
    if (o->spread_ms > 0)
        d->eta_ms = base_ms + o->first_ms + o->spread_ms * i / o->n;
    if (o->every > 0 && i % o->every == o->every - 1)
        d->countdown_ms = o->delay_ms;
}

int
main(int argc, char **argv)
{
    bench_opts_t     o;
    dq_client_t     *c;
    dq_args_t      **args = NULL;
    dq_defer_opts_t *dopts = NULL;
    dq_defer_req_t  *reqs = NULL;
    int             *st = NULL;
    long             i, j, stored = 0, errors = 0, chunk;
    long long        base_ms;
    double           t0, t1, c0, c1;
    int              rc;

    if (parse_opts(argc, argv, &o) != 0)
        return 2;

    c = dq_client_new(o.address, NULL);
    if (c == NULL) {
        fprintf(stderr, "dq-bench-enqueue: out of memory\n");
        return 2;
    }

    chunk = o.batch > 0 ? o.batch : 1;
    args = calloc(chunk, sizeof(*args));
    dopts = calloc(chunk, sizeof(*dopts));
    reqs = calloc(chunk, sizeof(*reqs));
    st = calloc(chunk, sizeof(*st));
    if (args == NULL || dopts == NULL || reqs == NULL || st == NULL) {
        fprintf(stderr, "dq-bench-enqueue: out of memory\n");
        return 2;
    }
    for (j = 0; j < chunk; j++) {
        args[j] = dq_args_new();
        if (args[j] == NULL) {
            fprintf(stderr, "dq-bench-enqueue: out of memory\n");
            return 2;
        }
    }

    base_ms = realtime_ms();
    c0 = cpu_s();
    t0 = now_s();

    for (i = 0; i < o.n; i += chunk) {
        long m = o.n - i < chunk ? o.n - i : chunk;

        /* argument building is part of the measured cost: a caller pays it */
        for (j = 0; j < m; j++) {
            dq_args_clear(args[j]);
            if (dq_args_cstr(args[j], o.str) != DQ_OK
                || dq_args_int(args[j], i + j) != DQ_OK)
            {
                fprintf(stderr, "dq-bench-enqueue: args failed\n");
                return 2;
            }
            task_opts(&o, base_ms, i + j, &dopts[j]);
        }

        if (o.batch == 0) {
            rc = dq_defer(c, o.func, args[0], &dopts[0], NULL, NULL);
            if (rc == DQ_OK) {
                stored++;
            } else {
                if (errors++ < 5)
                    fprintf(stderr, "dq_defer: %s: %s\n", dq_strerror(rc),
                            dq_client_errstr(c));
            }

        } else {
            for (j = 0; j < m; j++) {
                reqs[j].func = o.func;
                reqs[j].args = args[j];
                reqs[j].opts = &dopts[j];
            }
            rc = dq_defer_many(c, reqs, m, st, NULL);
            if (rc != DQ_OK) {
                if (errors < 5)
                    fprintf(stderr, "dq_defer_many: %s: %s\n",
                            dq_strerror(rc), dq_client_errstr(c));
                errors += m;
            } else {
                for (j = 0; j < m; j++) {
                    if (st[j] == DQ_OK)
                        stored++;
                    else if (errors++ < 5)
                        fprintf(stderr, "task %ld: %s\n", i + j,
                                dq_strerror(st[j]));
                }
            }
        }

        /* checking the clock every 64 tasks keeps it off the profile */
        if ((i & 63) == 0 || o.batch > 0) {
            if (now_s() - t0 > o.max_seconds)
                break;
        }
    }

    t1 = now_s();
    c1 = cpu_s();
    printf("tasks=%ld errors=%ld seconds=%.6f tasks_per_s=%.0f "
           "cpu_us_per_task=%.2f\n",
           stored, errors, t1 - t0,
           t1 > t0 ? stored / (t1 - t0) : 0.0,
           stored > 0 ? (c1 - c0) * 1e6 / stored : 0.0);

    for (j = 0; j < chunk; j++)
        dq_args_free(args[j]);
    free(args);
    free(dopts);
    free(reqs);
    free(st);
    dq_client_free(c);
    return errors == 0 && stored == o.n ? 0 : 1;
}
