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
#include <time.h>

#include "worker.h"

/* A child that exits with this status asks to be replaced at once (e.g. a
 * plain function ran past its timeout: its thread cannot be killed, so the
 * child handed its other work back and left). No respawn backoff. */
#define DQ_CHILD_EXIT_REPLACE 75

#define DQ_LOOP_FN_MAX 208      /* function names are <= 200 */

/* Counters of one child, in memory shared with the master. Updated with
 * __atomic builtins (relaxed): they are reports, not synchronisation. */
typedef struct {
    int64_t held;   /* tasks leased by this child right now */
    int64_t done;   /* tasks finished by this child (any result) */
    int64_t alive;  /* CLOCK_MONOTONIC ms its loop last ran a timer
                       (live.c, every 5 s; 0: not yet). The master kills
                       a child whose stamp is DQ_CHILD_STALL_MS old and
                       pings the systemd watchdog only while every
                       child's is fresh. */
    char    on_loop[DQ_LOOP_FN_MAX];   /* the DQ_FN_LOOP function on the loop thread
                               right now, "" if none (dq_loop_enter) */
} dq_child_stats_t;

/* This process's counters: its slot under a master, else a private one.
 * Never NULL. */
dq_child_stats_t *dq_child_stats(void);

/* ------------------------------------------- DQ_FN_LOOP functions demoted
 *
 * A DQ_FN_LOOP function that broke its promise (a call that blocked the
 * loop for longer than DQ_FN_LOOP_MAX_US, dispatch.c, or one that was
 * running on the loop thread when its child was killed) runs on the pool in every child
 * of this worker from then on: the set lives in memory shared by the
 * master and its children (a private one without a master), so a new
 * child does not run a hanging function on its loop again. Names are
 * kept as 64-bit hashes (a collision only moves another function to the
 * pool); the set holds DQ_LOOP_DEMOTED_MAX. */
#define DQ_LOOP_DEMOTED_MAX 64

/* Add func to the set (any process, any thread); 1 if it was new. */
int dq_loop_demote(const char *func);
/* 1 if func is in the set. */
int dq_loop_is_demoted(const char *func);
/* Child, loop thread: func is being called on the loop thread now (NULL:
 * the call returned). The master reads it when the child dies unasked. */
void dq_loop_enter(const char *func);

#define DQ_CHILD_STALL_MS 20000

static inline void
dq_child_stat_alive(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    __atomic_store_n(&dq_child_stats()->alive,
                     (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                     __ATOMIC_RELAXED);
}

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

/* ------------------------------------------------------- held tasks
 *
 * Which tasks a child holds, one entry per lease, in memory the master
 * maps (MAP_SHARED) before it forks the child (held.c). The child fills an
 * entry when a claim gives it a task, marks it started when the task's
 * function is entered (pool thread or tasklet), done when it finished OK,
 * and frees it when the task's last reply arrived. When the child dies
 * unasked, the master reads what is left: tasks never started are
 * released at once without charge, tasks that finished OK are acked (the
 * name is kept for the tombstone; their own ack may not have landed),
 * tasks the child decided to bury are buried (the error is kept), started
 * ones are failed with "child killed by signal N" (charged, after the
 * queue's backoff), and the leases of a claim call whose reply the child
 * never read are released (release_claim). Fencing
 * (the claim id) makes any of these harmless when the child's own report
 * landed first. */
enum {
    DQ_HELD_FREE = 0,
    DQ_HELD_CLAIMED,     /* leased, function not entered */
    DQ_HELD_STARTED,     /* function entered */
    DQ_HELD_DONE,        /* returned OK, ack maybe not delivered */
    DQ_HELD_CLAIMING,    /* a claim call in flight (id ""): its leases
                            are given back with release_claim */
    DQ_HELD_BURIED       /* to the dead set (permanent failure), the
                            bury maybe not delivered */
};

#define DQ_HELD_QUEUE_MAX 104   /* queue names are <= 100 */
#define DQ_HELD_ID_MAX    72
#define DQ_HELD_NAME_MAX  504   /* task names are <= 500 */
#define DQ_HELD_ERROR_MAX 512

typedef struct {
    uint32_t state;                   /* DQ_HELD_*, written last */
    uint32_t pad;
    int64_t  fail_delay_ms;           /* backoff if it fails now */
    int64_t  first_run_ms;            /* part of the lease member */
    int32_t  history;                 /* dq_lease_item_t.history */
    int32_t  pad2;
    char     claim[DQ_CLAIM_ID_MAX + 1];  /* the lease's claim id */
    char     queue[DQ_HELD_QUEUE_MAX];
    char     id[DQ_HELD_ID_MAX];
    int32_t  ran;                     /* BURIED: the run reached it */
    char     name[DQ_HELD_NAME_MAX];  /* DONE, BURIED: "" if unnamed */
    char     error[DQ_HELD_ERROR_MAX];    /* BURIED: the reason */
} dq_held_t;

/* Child side (no-ops outside a master's child): an entry for a new lease,
 * or with id NULL for a claim call in flight (0 = not tracked: table
 * full, or a string too long), then its steps. */
int  dq_held_add(const char *queue, const char *id, const char *claim,
                 int64_t first_run_ms, int history);
void dq_held_started(int h, int64_t fail_delay_ms);   /* any thread */
void dq_held_done(int h, const char *name);          /* any thread */
void dq_held_bury(int h, const char *name, const char *error, int ran);
void dq_held_remove(int h);

/* Master side: the table of a slot, sized for conf (mapped before the
 * fork); hand back what a dead child left (logs what it did, empties the
 * table). `how` says how the child ended ("killed by signal 11 ..."),
 * deadline_ms (CLOCK_MONOTONIC ms) when to stop calling Redis. */
dq_held_t *dq_held_map(size_t n);
void dq_held_unmap(dq_held_t *tab, size_t n);
size_t dq_held_size(const dq_worker_conf_t *conf);
void dq_held_use(dq_held_t *tab, size_t n);   /* in the child, after fork */
#define DQ_HELD_BUDGET_MS 2000  /* per reap, all dead children together */
void dq_held_recover(const dq_worker_conf_t *conf, dq_held_t *tab, size_t n,
                     int child, const char *how, uint64_t deadline_ms,
                     char *summary, size_t summary_len);

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
