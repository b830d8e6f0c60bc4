/*
 * deferred-worker — per-task run time limit (timeout.c): a plain function
 * past its queue's `timeout` fails, and its child is replaced.
 */
#ifndef DQ_TIMEOUT_H
#define DQ_TIMEOUT_H

#include <stdint.h>

typedef struct dq_timeouts_s dq_timeouts_t;
typedef struct dq_child_s dq_child_t;

/* Monotonic ms, the clock run_start_ms is stamped with (any thread). */
uint64_t dq_timeout_clock_ms(void);

/* Start the check timer if a served queue has a timeout; 0 or -1. */
int dq_timeout_start(dq_child_t *ch);
void dq_timeout_close(dq_child_t *ch);

#endif /* DQ_TIMEOUT_H */
