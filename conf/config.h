/*
 * The worker's settings (conf/): the configuration file, command-line
 * overrides, defaults, `-t`, `--help` and the config dump (config.c,
 * config_file.c). A library of its own (libdqconf.a): deferred-worker and
 * deferred-cli (`config apply` reads queue blocks with this parser) both
 * link it; it depends only on lib/ and the public headers, never on
 * worker/ or client/ code. Blocking file reads: never linked into nginx.
 *
 * Every setting is one row of ONE table in config.c: the file parser, the
 * command-line parser, the defaults (dq_conf_defaults), the help text and
 * the dump all read that table, so they cannot drift apart.
 *
 * The file format is nginx-like: `directive value;`, `queue NAME { ... }`
 * blocks, `#` comments, "quoted" words. Errors name the file, the line, the
 * directive and the bad value, like `nginx -t`.
 */
#ifndef DQ_CONFIG_H
#define DQ_CONFIG_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include <deferred/common.h>
#include <deferred/task.h>
#include "dq_contract.h"

/* ------------------------------------------------------------- settings */

typedef struct {
    char      *name;            /* valid queue name */
    int        weight;          /* share of claims among queues, >= 1 */
    dq_retry_t retry;           /* queue defaults; -1 = built-in default */
    double     rate;            /* tasks/s across the fleet; 0 = unlimited */
    int        bucket_size;     /* burst; 0 = max(1, rate) */
    int        max_concurrent;  /* running at once across the fleet; 0 = no
                                   limit */
    int64_t    timeout_ms;      /* per-task run time limit; 0 = none */
    char      *push_target;     /* push queue: tasks go to the push
                                   library (DQ_PUSH_FUNCTION), POSTed to
                                   this base URL; NULL = not a push queue */
    int64_t    push_deadline_ms;/* a push's request deadline */
    int        push_require_ack;/* a 2xx counts only with
                                   X-Deferred-Result: ok */
} dq_queue_conf_t;

typedef struct {
    char      *function;        /* a function name (dq_func_name_valid) */
    int64_t    timeout_ms;      /* its run time limit, overriding its
                                   queue's; 0 = none */
} dq_fn_conf_t;

typedef struct {
    char            *redis_address;   /* "host:port" | "unix:/path" */
    char            *redis_password;  /* or NULL */
    int              redis_db;
    char            *push_secret;     /* signs pushes; NULL = unsigned */

    dq_queue_conf_t *queues;
    size_t           nqueues;
    char           **libraries;       /* paths of task libraries */
    size_t           nlibraries;
    dq_fn_conf_t    *functions;       /* per-function settings */
    size_t           nfunctions;

    int              master_process;  /* 1: a master supervises the
                                         children; 0: one child runs in
                                         this process (nginx's
                                         master_process off) */
    int              processes;       /* children; 0 = one per CPU */
    int              threads;         /* pool threads per child */
    int              concurrency;     /* plain tasks in flight per child */
    int              tasklet_concurrency; /* tasklet tasks per child */
    size_t           tasklet_stack;   /* usable bytes per tasklet stack */
    int              claim_size;      /* max tasks per claim */

    int64_t          lease_ms;        /* lease length; heartbeat at 1/3 */
    int64_t          reclaim_delay_ms;/* delay before re-running a task
                                         whose lease expired */
    int64_t          unrunnable_limit_ms; /* bury a task no library here
                                         registers once it and the missing
                                         function are this old; 0 = never */
    int64_t          tombstone_ms;
    int64_t          dead_max;
    int64_t          dead_age_ms;
    int64_t          grace_ms;        /* SIGTERM: time for running tasks */

    char            *log_file;        /* NULL = stderr */
    int              log_level;
    char            *log_format;      /* "text" (NULL) or "json" */
    char            *pid_file;        /* NULL = none */
    char            *config_file;     /* where this came from, or NULL */

    dq_limits_t      limits;
} dq_worker_conf_t;

/* Built-in defaults (one queue "default", Redis 127.0.0.1:6379, ...). */
void dq_conf_defaults(dq_worker_conf_t *conf);
void dq_conf_free(dq_worker_conf_t *conf);

/* The queue's settings, or NULL if the worker does not serve it. */
const dq_queue_conf_t *dq_conf_queue(const dq_worker_conf_t *conf,
                                     dq_str_t name);


#define DQ_CONF_ERR_SIZE 512

/* Read `path` into conf (which holds defaults or earlier settings).
 * Returns 0, or -1 with "message in FILE:LINE" in err. */
int dq_conf_load(dq_worker_conf_t *conf, const char *path, char *err,
                 size_t errlen);

/* Apply one main-context directive given as name + value (command line:
 * `--threads 8`); a list-valued one (library) adds to the list. Returns 0
 * or -1 with err filled. */
int dq_conf_set(dq_worker_conf_t *conf, const char *name, const char *value,
                char *err, size_t errlen);

/* Empty a list-valued directive (a command-line `--library` replaces the
 * file's list) or reset a single value to its default. */
void dq_conf_reset(dq_worker_conf_t *conf, const char *name);

/* 1 if `name` is a main-context directive taking a value. */
int dq_conf_known(const char *name);

/* Checks that need the whole configuration (at least one queue, queue
 * names valid, address parses). 0 or -1 with err. */
int dq_conf_check(const dq_worker_conf_t *conf, char *err, size_t errlen);

/* The effective configuration, in the file's own syntax (a valid file). */
void dq_conf_dump(const dq_worker_conf_t *conf, FILE *out);

/* Every directive with its argument form, default and meaning. */
void dq_conf_help(FILE *out);

/* The run time limit of `function` in queue q: its function_timeout if
 * configured, else the queue's timeout; 0 = none. */
int64_t dq_conf_timeout(const dq_worker_conf_t *conf,
                        const dq_queue_conf_t *q, const char *function);

/* Number of children to start: conf->processes, or one per CPU. */
int dq_conf_processes(const dq_worker_conf_t *conf);

/* Find or add a queue with default settings. NULL on a bad name (err). */
dq_queue_conf_t *dq_conf_add_queue(dq_worker_conf_t *conf, const char *name,
                                   char *err, size_t errlen);

/* Parse "5/s", "300/m", "10/h", "1/d", "unlimited" -> tasks per second. */
int dq_conf_parse_rate(const char *s, double *out);
/* Parse "100ms", "30s", "5m", "1h", "7d", "1.5s" (bare number: seconds). */
int dq_conf_parse_time(const char *s, int64_t *out_ms);

#endif /* DQ_CONFIG_H */
