/*
 * deferred-worker — the configuration file, command-line overrides,
 * defaults, `-t`, `--help` and the config dump (config.c).
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

#include "worker.h"

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
