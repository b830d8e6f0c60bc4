/*
 * deferred-worker — the interfaces between the worker's parts.
 *
 *   main.c        command line + config file -> dq_worker_conf_t, then master
 *   ../conf/      the settings: directive table, setters, defaults, file
 *                 syntax, -T dump, --help (libdqconf.a, conf/config.h;
 *                 deferred-cli links it too)
 *   master.c      process manager: N children, respawn, signals, pid file
 *   notify.c      systemd: READY/RELOADING/STOPPING, the watchdog
 *   child.c       one child: libuv loop, Redis connections, stop
 *   claim.c       claims (the acks ride them), lost claims given back
 *   unlist.c      the due list handed back on a child's stop
 *   dispatch.c    checks before running, run, a task's result
 *   report.c      ack/retry/bury/release calls, their replies, resend
 *   heartbeat.c   lease extension of the tasks a child holds
 *   live.c        the child's heartbeat, lateness histogram, live tick
 *   live_conf.c   applied queue configuration and shard counts (Redis)
 *   timeout.c     per-task run time limits
 *   redis_uv.c    the hiredis <-> libuv adapter (errors passed through, timers)
 *   sentinel_uv.c a sentinel: address: the primary asked of the sentinels
 *   loader.c      dlopen of task libraries, the function and handler index
 *   task.c        the dq_task_* accessors of include/deferred/task.h
 *   log.c         levels, stderr or file, reopen on SIGUSR1, thread-safe
 *   future*.c, coro*, tasklet*.c   futures and tasklets (tasklet.h)
 *
 * Configuration is read once per process (the master reads it; children
 * inherit it across fork) and never changes under a running child: a
 * reload replaces children.
 */
#ifndef DQ_WORKER_H
#define DQ_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <deferred/common.h>
#include <deferred/task.h>
#include "dq_contract.h"

/* ------------------------------------------------------------------ log */

/* Levels: DQ_LOG_ERROR .. DQ_LOG_DEBUG (task.h). */
int  dq_log_open(const char *path, int level);  /* path NULL: stderr */
int  dq_log_reopen(void);                       /* SIGUSR1 */
void dq_log_set_prefix(const char *prefix);     /* "child 3" */
int  dq_log_set_format(const char *format);     /* "text" | "json"; -1 */
void dq_logf(int level, const char *fmt, ...) DQ_PRINTF(2, 3);
int  dq_log_level(void);
/* Lines this thread logs between hold and release are written together
 * (in writes of at most PIPE_BUF bytes, whole lines, so they never
 * interleave with other writers): the loop thread holds while it drains a
 * batch of finished tasks (one "task finished" line each). */
void dq_log_hold(void);
void dq_log_release(void);
/* text for a k="..." field: '\\', '"' and control bytes escaped into buf
 * (truncated to size); returns buf. Every quoted log value goes through it
 * (log_format json parses the line back into fields). */
#define DQ_LOG_QUOTE_MAX 2048
const char *dq_log_quote(char *buf, size_t size, const char *s);

#define dq_log_error(...) dq_logf(DQ_LOG_ERROR, __VA_ARGS__)
#define dq_log_warn(...)  dq_logf(DQ_LOG_WARN, __VA_ARGS__)
#define dq_log_info(...)  dq_logf(DQ_LOG_INFO, __VA_ARGS__)
#define dq_log_debug(...)                                                     \
    do { if (dq_log_level() >= DQ_LOG_DEBUG) dq_logf(DQ_LOG_DEBUG, __VA_ARGS__); } \
    while (0)

/* --------------------------------------------------------------- config */

/* the settings types and their parser: conf/config.h (shared with
 * deferred-cli, which must not link worker code) */
#include "config.h"

/* --------------------------------------------------------------- loader */

typedef struct dq_loader_s dq_loader_t;

typedef struct {
    const dq_function_t *fn;
    const char          *library;   /* which library registered it */
    int                  loop_demoted; /* DQ_FN_LOOP function demoted
                                        (here or in the worker's shared
                                        set, dq_loop_demote): pool from
                                        now on (loop thread only) */
} dq_fn_entry_t;

/* Load every library; a library that fails to load is logged with the
 * dlerror()/init reason and skipped (its functions stay unknown, so their
 * tasks go dead with that reason); the worker keeps running. */
dq_loader_t *dq_loader_new(char *const *paths, size_t n);
void dq_loader_free(dq_loader_t *ld);
const dq_fn_entry_t *dq_loader_function(const dq_loader_t *ld, dq_str_t name);
const dq_handler_t *dq_loader_handler(const dq_loader_t *ld, dq_str_t url);
/* Why a library failed to load ("libfoo.so: cannot open shared object..."),
 * for the dead-task reason; NULL if all loaded. */
const char *dq_loader_errors(const dq_loader_t *ld);

/* ---------------------------------------------------------------- child */

/* Run one child until it is told to stop (SIGTERM/SIGINT: graceful, within
 * conf->grace_ms; SIGQUIT: fast). Returns the process exit status. */
int dq_child_main(const dq_worker_conf_t *conf, int index);

#endif /* DQ_WORKER_H */
