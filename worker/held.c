/*
 * deferred-worker — the tasks each child holds, in memory shared with the
 * master, and what the master does with them when the child dies
 * (master.h has the contract).
 *
 * Child side: a table of dq_held_t mapped by the master before the fork;
 * entries are found by a first-free scan from a moving hint (the table is
 * a few times the child's concurrency), filled, then published by their
 * state (release store). Only the loop thread adds and removes; a pool
 * thread marks "started", and "done" as soon as the function returned OK
 * (a stalled loop must not leave a finished task to be charged again).
 *
 * Master side: after the child is reaped nothing writes the table any
 * more. The master opens one blocking client connection (1 s per call,
 * and the whole reap has a time budget, DQ_HELD_BUDGET_MS: the master
 * must not hang on a sick Redis; what it cannot hand back in time
 * returns when its lease expires, as before, and is logged), releases what never
 * started, acks what finished OK, buries what the child had decided to
 * bury, fails what started with the child's death as the error,
 * then empties the table for the next child in that slot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <time.h>

#include "client_impl.h"
#include "master.h"
#include "notify.h"

static uint64_t
dq__mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

#define DQ_HELD_TIMEOUT_MS 1000   /* each call; the whole reap has a
                                     budget (deadline_ms) */
#define DQ__HELD_FAILED_MAX 64    /* queues a hand-back remembers as
                                     failed (more: each entry is tried) */

static dq_held_t *dq__tab;      /* this child's table, or NULL */
static size_t     dq__cap;
static size_t     dq__hint;
static int        dq__full_logged;

/* ------------------------------------------------------------- the child */

void
dq_held_use(dq_held_t *tab, size_t n)
{
    dq__tab = tab;
    dq__cap = tab ? n : 0;
    dq__hint = 0;
}

int
dq_held_add(const char *queue, const char *id, const char *claim,
            int64_t first_run_ms, int history)
{
    size_t     i, k;
    dq_held_t *e;

    if (id == NULL) {
        id = "";
    }
    if (dq__tab == NULL || strlen(queue) >= DQ_HELD_QUEUE_MAX
        || strlen(id) >= DQ_HELD_ID_MAX || strlen(claim) > DQ_CLAIM_ID_MAX)
    {
        return 0;
    }
    for (k = 0; k < dq__cap; k++) {
        i = (dq__hint + k) % dq__cap;
        e = &dq__tab[i];
        if (__atomic_load_n(&e->state, __ATOMIC_RELAXED) != DQ_HELD_FREE) {
            continue;
        }
        e->fail_delay_ms = 0;
        e->first_run_ms = first_run_ms;
        e->history = history;
        memcpy(e->claim, claim, strlen(claim) + 1);
        memcpy(e->queue, queue, strlen(queue) + 1);
        memcpy(e->id, id, strlen(id) + 1);
        __atomic_store_n(&e->state, id[0] ? DQ_HELD_CLAIMED
                                           : DQ_HELD_CLAIMING,
                         __ATOMIC_RELEASE);
        dq__hint = (i + 1) % dq__cap;
        return (int) i + 1;
    }
    if (!dq__full_logged) {
        dq__full_logged = 1;
        dq_log_warn("held-task table full (%zu): a task not in it returns "
                    "only when its lease expires if this child dies",
                    dq__cap);
    }
    return 0;
}

void
dq_held_started(int h, int64_t fail_delay_ms)
{
    if (h > 0 && dq__tab != NULL) {
        dq__tab[h - 1].fail_delay_ms = fail_delay_ms;
        __atomic_store_n(&dq__tab[h - 1].state, DQ_HELD_STARTED,
                         __ATOMIC_RELEASE);
    }
}

/* The name (tombstone) an ack or bury by the master needs; 0 if it does
 * not fit (then the entry keeps its state). */
static int
dq__held_name(dq_held_t *e, const char *name)
{
    size_t len = name ? strlen(name) : 0;

    if (len >= DQ_HELD_NAME_MAX) {
        return 0;
    }
    memcpy(e->name, name ? name : "", len);
    e->name[len] = '\0';
    return 1;
}

void
dq_held_done(int h, const char *name)
{
    if (h > 0 && dq__tab != NULL && dq__held_name(&dq__tab[h - 1], name)) {
        __atomic_store_n(&dq__tab[h - 1].state, DQ_HELD_DONE,
                         __ATOMIC_RELEASE);
    }
}

void
dq_held_bury(int h, const char *name, const char *error, int ran)
{
    dq_held_t *e;

    if (h <= 0 || dq__tab == NULL) {
        return;
    }
    e = &dq__tab[h - 1];
    if (!dq__held_name(e, name)) {
        return;
    }
    snprintf(e->error, sizeof(e->error), "%s", error ? error : "");
    e->ran = ran ? 1 : 0;
    __atomic_store_n(&e->state, DQ_HELD_BURIED, __ATOMIC_RELEASE);
}

void
dq_held_remove(int h)
{
    if (h > 0 && dq__tab != NULL) {
        __atomic_store_n(&dq__tab[h - 1].state, DQ_HELD_FREE,
                         __ATOMIC_RELEASE);
    }
}

/* ------------------------------------------------------------ the master */

size_t
dq_held_size(const dq_worker_conf_t *conf)
{
    size_t c = (size_t) (conf->concurrency > 0 ? conf->concurrency
                                               : conf->threads);

    /* results still being reported sit next to new claims */
    c += conf->tasklet_concurrency > 0 ? (size_t) conf->tasklet_concurrency
                                       : 0;
    return 2 * c + 64;
}

dq_held_t *
dq_held_map(size_t n)
{
    void *p = mmap(NULL, n * sizeof(dq_held_t), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

void
dq_held_unmap(dq_held_t *tab, size_t n)
{
    if (tab != NULL) {
        munmap(tab, n * sizeof(dq_held_t));
    }
}

/* One script call on the client's connection (NOSCRIPT handled there).
 * Status of its single task: 1 done, 0 fenced, -1 failed (err set). */
static int
dq__run_one(dq_client_t *c, dq_cmd_t *cmd, char *err, size_t errlen)
{
    redisReply *r = NULL;
    dq_error_t  e;
    int         st = -1;

    if (dq__ready(c) != DQ_OK || dq__run(c, cmd, &r) != DQ_OK) {
        snprintf(err, errlen, "%s", dq_client_errstr(c));
        return -1;
    }
    memset(&e, 0, sizeof(e));
    if (dq_reply_statuses(r, 1, &st, &e) != DQ_OK) {
        snprintf(err, errlen, "%s", e.msg);
        st = -1;
    }
    freeReplyObject(r);
    return st;
}

/* Every lease a lost claim call still holds, given back: 1 (count in
 * *n), -1 failed (err set). */
static int
dq__release_claim(dq_client_t *c, const dq_held_t *e, int64_t *n, char *err,
                  size_t errlen)
{
    char        cursor[24] = "0";
    dq_cmd_t    cmd;
    redisReply *r;
    dq_error_t  er;
    int64_t     k;
    int         rc, rounds = 0;

    *n = 0;
    do {
        dq_cmd_init(&cmd);
        rc = dq_cmd_release_claim(&cmd, dq_str_c(e->queue), e->claim,
                                  cursor);
        r = NULL;
        if (rc != DQ_OK || dq__ready(c) != DQ_OK
            || dq__run(c, &cmd, &r) != DQ_OK)
        {
            snprintf(err, errlen, "%s", rc != DQ_OK ? "cannot build the "
                     "command" : dq_client_errstr(c));
            dq_cmd_free(&cmd);
            return -1;
        }
        dq_cmd_free(&cmd);
        memset(&er, 0, sizeof(er));
        k = 0;
        rc = dq_reply_release_claim(r, cursor, &k, &er);
        freeReplyObject(r);
        if (rc != DQ_OK) {
            snprintf(err, errlen, "%s", er.msg);
            return -1;
        }
        *n += k;
    } while (strcmp(cursor, "0") != 0 && ++rounds < 10000);
    return 1;
}

void
dq_held_recover(const dq_worker_conf_t *conf, dq_held_t *tab, size_t n,
                int child, const char *how, uint64_t deadline_ms,
                char *summary, size_t summary_len)
{
    dq_client_t     *c = NULL;
    dq_client_opts_t co;
    dq_held_t       *e;
    dq_lease_item_t  it;
    dq_cmd_t         cmd;
    char             err[256], why[256], error[300], q[DQ_LOG_QUOTE_MAX];
    size_t           i, nrel = 0, nfail = 0, nfenced = 0, nleft = 0;
    size_t           nclaimed = 0, nack = 0, nbury = 0;
    uint32_t         st;
    uint64_t         now;
    int              rc, spent = 0;
    /* the queues (shards) a call failed for: their other entries are
     * left too (on a cluster, one slot's master is down; its timeouts
     * must not spend the budget the other masters' entries need) */
    char             failed[DQ__HELD_FAILED_MAX][DQ_HELD_QUEUE_MAX];
    size_t           nfailed = 0, k;

    snprintf(summary, summary_len, "holding 0 leased tasks");
    if (tab == NULL) {
        return;
    }
    err[0] = '\0';
    snprintf(error, sizeof(error), "child %s", how);
    for (i = 0; i < n; i++) {
        e = &tab[i];
        st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
        if (st == DQ_HELD_FREE) {
            continue;
        }
        /* the master's loop waits meanwhile: keep systemd's watchdog fed,
         * and stop at the reap's time budget (a sick Redis must not get
         * the master killed); the rest returns at lease expiry */
        now = dq__mono_ms();
        (void) dq_notify_watchdog(now, 0);
        if (now >= deadline_ms && !spent) {
            dq_client_free(c);
            c = NULL;
            spent = 1;
            if (err[0] == '\0') {
                snprintf(err, sizeof(err), "the master's time budget for "
                         "handing back was spent");
            }
        }
        for (k = 0; k < nfailed && strcmp(failed[k], e->queue) != 0; k++) {
            /* a call for this queue failed already */
        }
        if (spent || k < nfailed) {
            nleft++;
            __atomic_store_n(&e->state, DQ_HELD_FREE, __ATOMIC_RELAXED);
            continue;
        }
        why[0] = '\0';
        if (c == NULL) {
            memset(&co, 0, sizeof(co));
            co.password = conf->redis_password;
            co.db = conf->redis_db;
            co.timeout_ms = DQ_HELD_TIMEOUT_MS;
            c = dq_client_new(conf->redis_address, &co);
            if (c == NULL) {
                snprintf(why, sizeof(why), "out of memory");
            }
        }
        rc = -1;
        if (c != NULL && st == DQ_HELD_CLAIMING) {
            int64_t nk = 0;

            rc = dq__release_claim(c, e, &nk, why, sizeof(why));
            if (rc == 1) {
                nclaimed += (size_t) nk;
                __atomic_store_n(&e->state, DQ_HELD_FREE, __ATOMIC_RELAXED);
                continue;
            }
        } else if (c != NULL) {
            memset(&it, 0, sizeof(it));
            it.id = dq_str_c(e->id);
            it.claim = dq_str_c(e->claim);
            it.first_run_ms = e->first_run_ms;
            it.history = e->history;
            dq_cmd_init(&cmd);
            if (st == DQ_HELD_STARTED) {
                rc = dq_cmd_retry(&cmd, dq_str_c(e->queue), &it,
                                  e->fail_delay_ms, dq_str_c(error), 1);
            } else if (st == DQ_HELD_DONE) {
                /* it ran OK: ack it (a second ack is fenced) */
                if (e->name[0]) {
                    it.name = dq_str_c(e->name);
                }
                rc = dq_cmd_ack(&cmd, dq_str_c(e->queue), &it, 1,
                                conf->tombstone_ms);
            } else if (st == DQ_HELD_BURIED) {
                if (e->name[0]) {
                    it.name = dq_str_c(e->name);
                }
                rc = dq_cmd_bury(&cmd, dq_str_c(e->queue), &it,
                                 dq_str_c(e->error), conf->dead_max,
                                 conf->dead_age_ms, conf->tombstone_ms,
                                 e->ran);
            } else {
                rc = dq_cmd_release(&cmd, dq_str_c(e->queue), &it, 1, 0, 0);
            }
            rc = rc == DQ_OK ? dq__run_one(c, &cmd, why, sizeof(why)) : -1;
            dq_cmd_free(&cmd);
        }
        if (rc < 0) {
            /* say why once; the next entry gets a fresh client (on a
             * cluster another master answers it), its queue's other
             * entries are left to their lease */
            dq_client_free(c);
            c = NULL;
            if (err[0] == '\0') {
                snprintf(err, sizeof(err), "%s", why[0] ? why
                         : "cannot build the command");
            }
            if (nfailed < DQ__HELD_FAILED_MAX) {
                snprintf(failed[nfailed++], DQ_HELD_QUEUE_MAX, "%s",
                         e->queue);
            }
        }
        if (rc == 1 && st == DQ_HELD_STARTED) {
            nfail++;
            dq_log_warn("task failed: queue=%s id=%s error=\"%s\" "
                        "retry_in_ms=%lld (it was running in child %d)",
                        e->queue, e->id, dq_log_quote(q, sizeof(q), error),
                        (long long) e->fail_delay_ms, child);
        } else if (rc == 1 && st == DQ_HELD_DONE) {
            nack++;
        } else if (rc == 1 && st == DQ_HELD_BURIED) {
            nbury++;
            dq_log_error("task dead: queue=%s id=%s reason=\"%s\" (buried "
                         "for child %d, which died before it could)",
                         e->queue, e->id, e->error, child);
        } else if (rc == 1) {
            nrel++;
        } else if (rc == 0) {
            nfenced++;               /* its own report landed, or expired */
        } else {
            nleft++;
        }
        __atomic_store_n(&e->state, DQ_HELD_FREE, __ATOMIC_RELAXED);
    }
    dq_client_free(c);
    if (nrel + nfail + nfenced + nleft + nclaimed + nack + nbury == 0) {
        return;
    }
    nrel += nclaimed;
    snprintf(summary, summary_len, "holding %zu leased tasks: %zu released "
             "at once (never started), %zu acked (finished OK), %zu buried "
             "(failed for good), %zu started and "
             "failed (charged, retried after backoff), %zu already settled, "
             "%zu left to their lease expiry%s%s%s",
             nrel + nack + nbury + nfail + nfenced + nleft, nrel, nack,
             nbury, nfail, nfenced, nleft,
             nleft ? " (" : "", nleft ? err : "", nleft ? ")" : "");
}
