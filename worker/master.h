/*
 * deferred-worker — the master process (master.c): starts N children,
 * respawns the ones that die, replaces them one at a time on SIGHUP, stops
 * them gracefully on SIGTERM/SIGINT, reopens logs on SIGUSR1, keeps the
 * pid file. It never loads a task library and never runs task code.
 *
 * Children report a few counters through a shared, anonymous mapping made
 * before the first fork (dq_child_stats), so the master can say how many
 * tasks a crashed child held.
 */
#ifndef DQ_MASTER_H
#define DQ_MASTER_H

#include <stdint.h>

#include "worker.h"

/* A child that exits with this status asks to be replaced at once (e.g. a
 * plain function ran past its timeout: its thread cannot be killed, so the
 * child handed its other work back and left). No respawn backoff. */
#define DQ_CHILD_EXIT_REPLACE 75

/* Counters of one child, in memory shared with the master. Updated with
 * __atomic builtins (relaxed): they are reports, not synchronisation. */
typedef struct {
    int64_t held;   /* tasks leased by this child right now */
    int64_t done;   /* tasks finished by this child (any result) */
} dq_child_stats_t;

/* This process's counters: its slot under a master, else a private one.
 * Never NULL. */
dq_child_stats_t *dq_child_stats(void);

static inline void
dq_child_stat_held(int64_t delta)
{
    __atomic_add_fetch(&dq_child_stats()->held, delta, __ATOMIC_RELAXED);
}

static inline void
dq_child_stat_done(int64_t n)
{
    __atomic_add_fetch(&dq_child_stats()->done, n, __ATOMIC_RELAXED);
}

/* How the master (re)reads its configuration: on start and on SIGHUP.
 * Fills `out` (from defaults) or returns -1 with err filled; `out` is then
 * freed by the master. */
typedef int (*dq_conf_loader_fn)(dq_worker_conf_t *out, void *udata,
                                 char *err, size_t errlen);

/* Run the master until SIGTERM/SIGINT/SIGQUIT and every child exited.
 * `conf` is the already-loaded configuration (the master takes ownership).
 * Returns the process exit status (0 after a clean stop). */
int dq_master_run(dq_worker_conf_t *conf, dq_conf_loader_fn reload,
                  void *udata);

#endif /* DQ_MASTER_H */
