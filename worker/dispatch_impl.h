/*
 * deferred-worker — what dispatch.c (check, run, result), claim.c (claims,
 * lost claims given back) and report.c (ack, retry, bury and release
 * calls, their replies, resends) share. Internal to the worker; loop
 * thread only.
 */
#ifndef DQ_DISPATCH_IMPL_H
#define DQ_DISPATCH_IMPL_H

#include "child_impl.h"

typedef enum { DQ_OP_ACK, DQ_OP_RETRY, DQ_OP_BURY, DQ_OP_RELEASE,
               DQ_OP_EXTEND, DQ_OP_UNRUNNABLE } dq_op_t;

/* A report: one ack, release, retry or bury call for its tasks, awaiting
 * its reply. */
typedef struct {
    dq_child_t *ch;
    dq_op_t     op;
    size_t      n;
    dq_task_t  *tasks[];
} dq__report_t;

static inline const char *
dq__s(const char *s)
{
    return s ? s : "-";
}

/* report.c */
dq__report_t *dq__report_new(dq_child_t *ch, dq_op_t op, size_t n);
dq__report_t *dq__report_one(dq_child_t *ch, dq_task_t *t, dq_op_t op,
                             dq_lease_item_t *it);
void dq__report_send(dq__report_t *b, dq_cmd_t *cmd, int built);
void dq__report_send_acks(dq__report_t *b, dq_cqueue_t *q);
void dq__report_done(dq__report_t *b, const int *st, const char *why);
void dq__report_unanswered(dq__report_t *b, const char *lost,
                           const char *why);
void dq__bury(dq_child_t *ch, dq_task_t *t, const char *reason);
void dq__bury_bad(dq_child_t *ch, dq_task_t *t, const char *reason);
void dq__retry(dq_child_t *ch, dq_task_t *t, int64_t delay_ms);
/* Append t to the growing array *arr of *n (capacity *cap, doubled from
 * 64): a queue's acks or releases. 0, or -1 when out of memory (t not
 * added). */
int  dq__push(dq_task_t ***arr, size_t *n, size_t *cap, dq_task_t *t);

/* dispatch.c */
int  dq__start(dq_child_t *ch, dq_task_t *t, int64_t now_ms);
/* runs and reports the n DQ_FN_LOOP tasks ts[] on the loop thread */
void dq__run_on_loop(dq_child_t *ch, dq_task_t **ts, size_t n);
void dq__unrunnable(dq_child_t *ch, dq_task_t *t);

/* claim.c */
void dq__release_lost(dq_child_t *ch, dq_cqueue_t *q);

#endif /* DQ_DISPATCH_IMPL_H */
