/*
 * App Engine's retry arithmetic (queue.yaml retry_parameters):
 *   - the delay before the next attempt starts at min_backoff, doubles
 *     max_doublings times, then grows linearly by min_backoff *
 *     2^max_doublings per attempt, never above max_backoff;
 *   - a task is exhausted when it failed more than task_retry_limit times;
 *     with task_age_limit set too, only when BOTH limits are reached (App
 *     Engine: "retries until both limits are reached").
 */
#include "dq_contract.h"

static int64_t
dq__pick(int64_t task, int64_t queue, int64_t def)
{
    return task >= 0 ? task : queue >= 0 ? queue : def;
}

void
dq_retry_merge(dq_retry_t *out, const dq_retry_t *task,
               const dq_retry_t *queue)
{
    static const dq_retry_t unset = DQ_RETRY_UNSET;

    if (task == NULL) {
        task = &unset;
    }
    if (queue == NULL) {
        queue = &unset;
    }
    out->retry_limit = dq__pick(task->retry_limit, queue->retry_limit,
                                DQ_DEFAULT_RETRY_LIMIT);
    out->age_limit_ms = dq__pick(task->age_limit_ms, queue->age_limit_ms,
                                 DQ_DEFAULT_AGE_LIMIT_MS);
    out->min_backoff_ms = dq__pick(task->min_backoff_ms,
                                   queue->min_backoff_ms,
                                   DQ_DEFAULT_MIN_BACKOFF_MS);
    out->max_backoff_ms = dq__pick(task->max_backoff_ms,
                                   queue->max_backoff_ms,
                                   DQ_DEFAULT_MAX_BACKOFF_MS);
    out->max_doublings = dq__pick(task->max_doublings, queue->max_doublings,
                                  DQ_DEFAULT_MAX_DOUBLINGS);
    if (out->max_backoff_ms < out->min_backoff_ms) {
        out->max_backoff_ms = out->min_backoff_ms;
    }
}

int64_t
dq_backoff_ms(const dq_retry_t *r, int64_t retries)
{
    int64_t min = r->min_backoff_ms > 0 ? r->min_backoff_ms : 0;
    int64_t max = r->max_backoff_ms > min ? r->max_backoff_ms : min;
    int64_t k = retries > 1 ? retries - 1 : 0;    /* doublings wanted */
    int64_t dbl = r->max_doublings > 0 ? r->max_doublings : 0;
    int64_t d, step;

    if (min == 0) {
        return 0;
    }
    /* min * 2^e, saturating at max (never overflows) */
    step = min;
    for (d = 0; d < k && d < dbl; d++) {
        if (step > max / 2) {
            return max;
        }
        step *= 2;
    }
    if (step >= max) {
        return max;
    }
    if (k <= dbl) {
        return step;
    }
    /* linear after max_doublings: step * (1 + attempts past them) */
    if (k - dbl >= max / step) {
        return max;
    }
    d = step * (1 + (k - dbl));
    return d < max ? d : max;
}

int
dq_retry_exhausted(const dq_retry_t *r, int64_t retries,
                   int64_t first_run_ms, int64_t now_ms)
{
    int count_done = r->retry_limit >= 0 && retries > r->retry_limit;
    int age_done;

    if (r->age_limit_ms <= 0) {
        return count_done;
    }
    age_done = first_run_ms > 0 && now_ms - first_run_ms >= r->age_limit_ms;
    if (r->retry_limit < 0) {
        return age_done;
    }
    return count_done && age_done;
}
