/*
 * App Engine's retry arithmetic: backoff table, linear growth after
 * max_doublings, caps, overflow safety, exhaustion rules, merging.
 */
#include <stdint.h>

#include "dq_contract.h"
#include "tap.h"

int
main(void)
{
    dq_retry_t unset = DQ_RETRY_UNSET, task = DQ_RETRY_UNSET;
    dq_retry_t queue = DQ_RETRY_UNSET, r;
    static const int64_t want[] = { 1000, 2000, 4000, 8000, 16000, 24000,
                                    32000, 40000 };
    int64_t    i;

    dq_retry_merge(&r, NULL, NULL);
    is_int(r.retry_limit, DQ_DEFAULT_RETRY_LIMIT, "default retry limit");
    is_int(r.min_backoff_ms, 100, "default min backoff");
    is_int(r.max_backoff_ms, 3600000, "default max backoff");
    is_int(r.max_doublings, 16, "default doublings");
    is_int(r.age_limit_ms, 0, "no default age limit");
    is_int(dq_backoff_ms(&r, 1), 100, "first retry after min backoff");
    is_int(dq_backoff_ms(&r, 2), 200, "doubles");
    is_int(dq_backoff_ms(&r, 3), 400, "doubles again");
    is_int(dq_backoff_ms(&r, 16), 100LL << 15, "2^15 x min");
    is_int(dq_backoff_ms(&r, 17), 3600000, "capped at max backoff");
    is_int(dq_backoff_ms(&r, 1000000), 3600000, "stays capped");
    is_int(dq_backoff_ms(&r, INT64_MAX), 3600000, "no overflow at INT64_MAX");
    is_int(dq_backoff_ms(&r, 0), 100, "retries 0 treated as the first");

    /* min 1 s, 3 doublings, then linear by 8 s */
    r.min_backoff_ms = 1000;
    r.max_backoff_ms = 1000000000;
    r.max_doublings = 3;
    for (i = 0; i < 8; i++) {
        is_int(dq_backoff_ms(&r, i + 1), want[i],
               "min 1s, 3 doublings: retry %lld", (long long) i + 1);
    }
    r.max_backoff_ms = 30000;
    is_int(dq_backoff_ms(&r, 8), 30000, "linear part capped too");
    r.max_doublings = 0;
    r.max_backoff_ms = 1000000000;
    is_int(dq_backoff_ms(&r, 5), 5000, "0 doublings: linear from the start");
    r.min_backoff_ms = 0;
    is_int(dq_backoff_ms(&r, 5), 0, "min 0: no backoff");
    r.min_backoff_ms = INT64_MAX / 2;
    r.max_backoff_ms = INT64_MAX;
    r.max_doublings = 62;
    is_int(dq_backoff_ms(&r, 40), INT64_MAX, "huge values saturate");
    r.max_doublings = 0;
    is_int(dq_backoff_ms(&r, INT64_MAX), INT64_MAX,
           "huge linear values saturate");

    /* merge: task over queue over built-in */
    task.min_backoff_ms = 5;
    queue.min_backoff_ms = 50;
    queue.retry_limit = 9;
    queue.max_backoff_ms = 2;
    dq_retry_merge(&r, &task, &queue);
    is_int(r.min_backoff_ms, 5, "task option wins");
    is_int(r.retry_limit, 9, "queue option next");
    is_int(r.max_doublings, 16, "built-in last");
    is_int(r.max_backoff_ms, 5, "max below min raised to min");
    dq_retry_merge(&r, &unset, &unset);
    is_int(r.retry_limit, 5, "all unset: defaults");

    /* exhaustion */
    dq_retry_merge(&r, NULL, NULL);
    r.retry_limit = 2;
    ok(!dq_retry_exhausted(&r, 1, 0, 0), "limit 2: 1 failure retried");
    ok(!dq_retry_exhausted(&r, 2, 0, 0), "limit 2: 2 failures retried");
    ok(dq_retry_exhausted(&r, 3, 0, 0), "limit 2: third failure is final");
    r.retry_limit = 0;
    ok(dq_retry_exhausted(&r, 1, 0, 0), "limit 0: no retry");
    r.retry_limit = 2;
    r.age_limit_ms = 1000;
    ok(!dq_retry_exhausted(&r, 3, 1000, 1500),
       "both limits: count reached, age not -> retry");
    ok(!dq_retry_exhausted(&r, 1, 1000, 9000),
       "both limits: age reached, count not -> retry");
    ok(dq_retry_exhausted(&r, 3, 1000, 2000), "both reached -> exhausted");
    r.retry_limit = -1;
    ok(dq_retry_exhausted(&r, 1, 1000, 2000), "age limit alone");
    ok(!dq_retry_exhausted(&r, 100, 1000, 1999), "age limit alone, young");
    return done_testing();
}
