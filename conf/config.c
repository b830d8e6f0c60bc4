/*
 * deferred-worker — configuration: ONE table of directives (dq__conf_cmds)
 * read by the file parser, the command-line setter, the defaults, the help
 * text and the dump (the last three in config_file.c).
 *
 * A default is written in the table as the text a user would write in the
 * file; dq_conf_defaults() feeds it through the same setter as the file,
 * so a default can never be a value the parser would refuse.
 *
 * Ownership: every string in dq_worker_conf_t is malloc'd and freed by
 * dq_conf_free(). Nothing here logs: errors go back in the caller's buffer
 * ("invalid value \"x\" in \"threads\" directive in FILE:LINE").
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_int.h"

/* --------------------------------------------------------------- table */


#define W(f) offsetof(dq_worker_conf_t, f)
#define Q(f) offsetof(dq_queue_conf_t, f)
#define R(f) (offsetof(dq_queue_conf_t, retry) + offsetof(dq_retry_t, f))
#define DAY  (24LL * 3600 * 1000)

const dq_conf_cmd_t dq__conf_cmds[] = {
    { "redis", DQ_CX_MAIN, DQ_CT_ADDR, W(redis_address), 0, 0, 0, 0,
      "127.0.0.1:6379", "ADDR",
      "Redis server holding the queues: HOST[:PORT], [IPV6][:PORT], "
      "unix:PATH, sentinel:MASTER@HOST[:PORT][,...] or "
      "cluster:HOST[:PORT][,...] (a name is resolved when a child starts "
      "and on every reconnect; the sentinels are asked for the primary "
      "before every connect; a cluster's slot map is asked of its seeds)" },
    { "redis_password", DQ_CX_MAIN, DQ_CT_STR, W(redis_password), 0, 0, 0,
      DQ_CF_OFF, "off", "PASSWORD|off", "AUTH password" },
    { "redis_db", DQ_CX_MAIN, DQ_CT_INT, W(redis_db), 0, 0, 1000000, 0,
      "0", "N", "Redis database number (SELECT)" },
    { "push_secret", DQ_CX_MAIN, DQ_CT_STR, W(push_secret), 0, 0, 0,
      DQ_CF_OFF, "off", "SECRET|off",
      "HMAC-SHA256 key signing the push library's requests (X-Deferred-"
      "Signature)" },
    { "library", DQ_CX_MAIN, DQ_CT_PATHS, W(libraries), W(nlibraries), 0, 0,
      0, NULL, "PATH", "task library to load (repeatable)" },
    { "function_timeout", DQ_CX_MAIN, DQ_CT_FNTIME, W(functions),
      W(nfunctions), 0, 7 * DAY, 0, NULL, "FUNCTION TIME|off",
      "run time limit of one function, overriding its queue's timeout "
      "(repeatable)" },
    { "master_process", DQ_CX_MAIN, DQ_CT_FLAG, W(master_process), 0, 0, 1,
      0, "on", "on|off",
      "off: run one child in this process, no master (debugging)" },
    { "processes", DQ_CX_MAIN, DQ_CT_AUTO, W(processes), 0, 0, 1024, 0,
      "auto", "N|auto", "child processes (auto: one per CPU)" },
    { "threads", DQ_CX_MAIN, DQ_CT_INT, W(threads), 0, 1, 1024, 0,
      "4", "N", "pool threads per child for plain functions" },
    { "concurrency", DQ_CX_MAIN, DQ_CT_INT, W(concurrency), 0, 1, 100000, 0,
      "64", "N", "plain tasks in flight per child" },
    { "tasklet_concurrency", DQ_CX_MAIN, DQ_CT_INT, W(tasklet_concurrency),
      0, 1, 100000, 0, "64", "N", "tasklet tasks in flight per child" },
    { "tasklet_stack", DQ_CX_MAIN, DQ_CT_SIZE, W(tasklet_stack), 0,
      16 * 1024, 64LL * 1024 * 1024, 0, "64k", "SIZE",
      "stack per tasklet (plus a guard page; x4 in sanitizer builds)" },
    { "claim_size", DQ_CX_MAIN, DQ_CT_INT, W(claim_size), 0, 1, 1000, 0,
      "64", "N", "max tasks taken by one claim" },
    { "lease", DQ_CX_MAIN, DQ_CT_TIME, W(lease_ms), 0, 100, 7 * DAY, 0,
      "30s", "TIME", "lease length (heartbeat every third)" },
    { "reclaim_delay", DQ_CX_MAIN, DQ_CT_TIME, W(reclaim_delay_ms), 0, 0,
      DAY, 0, "0", "TIME",
      "delay before re-running a task whose lease expired" },
    { "unrunnable_limit", DQ_CX_MAIN, DQ_CT_TIME, W(unrunnable_limit_ms), 0,
      0, 3650 * DAY, 0, "0", "TIME",
      "bury a task whose function no library here registers once the task "
      "is this old and the function was missing here this long (0: never; "
      "such tasks wait for a worker that has it)" },
    { "grace", DQ_CX_MAIN, DQ_CT_TIME, W(grace_ms), 0, 0, DAY, 0,
      "30s", "TIME", "on SIGTERM, time running tasks get to finish" },
    { "tombstone", DQ_CX_MAIN, DQ_CT_TIME, W(tombstone_ms), 0, 0, 365 * DAY,
      0, "7d", "TIME", "how long a used task name stays taken" },
    { "dead_max", DQ_CX_MAIN, DQ_CT_INT64, W(dead_max), 0, 1, 100000000, 0,
      "10000", "N", "dead tasks kept per queue" },
    { "dead_age", DQ_CX_MAIN, DQ_CT_TIME, W(dead_age_ms), 0, 1000,
      3650 * DAY, 0, "30d", "TIME", "how long dead tasks are kept" },
    { "max_envelope", DQ_CX_MAIN, DQ_CT_SIZE, W(limits.max_envelope), 0,
      DQ_MIN_ENVELOPE_LIMIT, DQ_MAX_ENVELOPE_LIMIT, 0, "1m", "SIZE",
      "largest task envelope accepted (>= deferred_max_envelope)" },
    { "log_file", DQ_CX_MAIN, DQ_CT_STR, W(log_file), 0, 0, 0, DQ_CF_OFF,
      "stderr", "PATH|stderr", "where the log goes (SIGUSR1 reopens it)" },
    { "log_level", DQ_CX_MAIN, DQ_CT_LEVEL, W(log_level), 0, 0, 0, 0,
      "info", "error|warn|info|debug", "least severe level logged" },
    { "log_format", DQ_CX_MAIN, DQ_CT_STR, W(log_format), 0, 0, 0, 0,
      "text", "text|json",
      "log lines as text or as one JSON object each (same fields)" },
    { "pid_file", DQ_CX_MAIN, DQ_CT_STR, W(pid_file), 0, 0, 0, DQ_CF_OFF,
      "off", "PATH|off", "the master's pid, for -s and init systems" },

    { "weight", DQ_CX_QUEUE, DQ_CT_INT, Q(weight), 0, 1, 1000, 0,
      "1", "N", "share of claims among this worker's queues" },
    { "rate", DQ_CX_QUEUE, DQ_CT_RATE, Q(rate), 0, 0, 0, 0,
      "unlimited", "N/s|N/m|N/h|N/d|unlimited",
      "tasks started per time unit across ALL workers" },
    { "bucket_size", DQ_CX_QUEUE, DQ_CT_AUTO, Q(bucket_size), 0, 0,
      1000000, 0, "auto", "N|auto", "burst allowed by rate (auto: max(1, rate/s))" },
    { "max_concurrent", DQ_CX_QUEUE, DQ_CT_LIMIT, Q(max_concurrent), 0, 0,
      1000000, 0, "unlimited", "N|unlimited",
      "tasks leased at once across ALL workers" },
    { "timeout", DQ_CX_QUEUE, DQ_CT_TIME, Q(timeout_ms), 0, 0, 7 * DAY, 0,
      "off", "TIME|off",
      "run time after which a task fails and its child is replaced" },
    { "push_target", DQ_CX_QUEUE, DQ_CT_STR, Q(push_target), 0, 0, 0,
      DQ_CF_OFF, "off", "URL|off",
      "push queue: every task is POSTed to URL + the task's url by the push "
      "library (push/libdq_push.so, function dq.push)" },
    { "push_deadline", DQ_CX_QUEUE, DQ_CT_TIME, Q(push_deadline_ms), 0, 100,
      DAY, 0, "10m", "TIME", "a push's request deadline (App Engine's)" },
    { "push_require_ack", DQ_CX_QUEUE, DQ_CT_FLAG, Q(push_require_ack), 0, 0,
      1, 0, "on", "on|off",
      "a push's 2xx counts as done only with X-Deferred-Result: ok (the "
      "deferred handler's answer); off: any 2xx" },
    { "retry_limit", DQ_CX_QUEUE, DQ_CT_RINT, R(retry_limit), 0, 0,
      1000000000, 0, "default", "N|default",
      "failed attempts before dead (default: task's, else 5)" },
    { "age_limit", DQ_CX_QUEUE, DQ_CT_RTIME, R(age_limit_ms), 0, 0,
      3650 * DAY, 0, "default", "TIME|default",
      "time since first run before dead (default: none)" },
    { "min_backoff", DQ_CX_QUEUE, DQ_CT_RTIME, R(min_backoff_ms), 0, 0,
      DAY, 0, "default", "TIME|default", "first retry delay (default 100ms)" },
    { "max_backoff", DQ_CX_QUEUE, DQ_CT_RTIME, R(max_backoff_ms), 0, 0,
      30 * DAY, 0, "default", "TIME|default",
      "largest retry delay (default 1h)" },
    { "max_doublings", DQ_CX_QUEUE, DQ_CT_RINT, R(max_doublings), 0, 0, 62,
      0, "default", "N|default", "times the delay doubles (default 16)" },
};

const size_t dq__conf_ncmds = sizeof(dq__conf_cmds) / sizeof(dq__conf_cmds[0]);

/* ------------------------------------------------------------ helpers */

void
dq__conf_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const dq_conf_cmd_t *
dq__conf_cmd(const char *name, int ctx)
{
    size_t i;

    /* earlier names, still accepted: a config file that worked keeps
     * working after an upgrade */
    if (strcmp(name, "batch") == 0) {
        name = "claim_size";
    }
    for (i = 0; i < dq__conf_ncmds; i++) {
        if ((dq__conf_cmds[i].ctx & ctx) && strcmp(dq__conf_cmds[i].name, name) == 0) {
            return &dq__conf_cmds[i];
        }
    }
    return NULL;
}

int
dq_conf_parse_time(const char *s, int64_t *out_ms)
{
    char   *end;
    double  v, mul;

    if (strcmp(s, "off") == 0) {
        *out_ms = 0;
        return 0;
    }
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno != 0 || !isfinite(v) || v < 0) {
        return -1;
    }
    if (*end == '\0' || strcmp(end, "s") == 0) {
        mul = 1000;
    } else if (strcmp(end, "ms") == 0) {
        mul = 1;
    } else if (strcmp(end, "m") == 0) {
        mul = 60e3;
    } else if (strcmp(end, "h") == 0) {
        mul = 3600e3;
    } else if (strcmp(end, "d") == 0) {
        mul = 86400e3;
    } else {
        return -1;
    }
    v *= mul;
    if (v > 9e15) {
        return -1;
    }
    *out_ms = (int64_t) llround(v);
    return 0;
}

int
dq_conf_parse_rate(const char *s, double *out)
{
    char   *end;
    double  v;

    if (strcmp(s, "unlimited") == 0 || strcmp(s, "off") == 0) {
        *out = 0;
        return 0;
    }
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno != 0 || !isfinite(v) || v < 0 || v > 1e7) {
        return -1;
    }
    if (*end == '\0' || strcmp(end, "/s") == 0) {
        *out = v;
    } else if (strcmp(end, "/m") == 0) {
        *out = v / 60;
    } else if (strcmp(end, "/h") == 0) {
        *out = v / 3600;
    } else if (strcmp(end, "/d") == 0) {
        *out = v / 86400;
    } else {
        return -1;
    }
    return 0;
}

static int
dq__parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char      *end;
    long long  v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int
dq__parse_size(const char *s, int64_t *out)
{
    char      *end;
    long long  v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || errno != 0 || v < 0) {
        return -1;
    }
    if (*end == 'k' || *end == 'K') {
        v *= 1024;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        v *= 1024 * 1024;
        end++;
    }
    if (*end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

/* Any form dq_addr_parse takes (HOST, HOST:PORT, [IPV6]:PORT, unix:PATH,
 * sentinel:MASTER@HOST:PORT,...). */
static int
dq__addr_valid(const char *s)
{
    dq_addr_t a;

    return dq_addr_parse(dq_str_c(s), &a, NULL) == DQ_OK;
}

const char *const dq__conf_levels[] = { "error", "warn", "info", "debug" };

/* Set one directive on `base` (the conf or a queue). */
int
dq__conf_set(const dq_conf_cmd_t *cmd, void *base, const char *v, char *err,
        size_t errlen)
{
    char    *p = (char *) base + cmd->off;
    int64_t  i;
    double   d;
    size_t   k;

    switch (cmd->type) {
    case DQ_CT_INT:
    case DQ_CT_AUTO:
    case DQ_CT_LIMIT:
        if (cmd->type == DQ_CT_AUTO && strcmp(v, "auto") == 0) {
            *(int *) p = 0;
            return 0;
        }
        if (cmd->type == DQ_CT_LIMIT && strcmp(v, "unlimited") == 0) {
            *(int *) p = 0;
            return 0;
        }
        if (dq__parse_int(v, cmd->type == DQ_CT_INT ? cmd->min : 0, cmd->max,
                          &i) != 0)
        {
            goto range;
        }
        *(int *) p = (int) i;
        return 0;

    case DQ_CT_INT64:
    case DQ_CT_RINT:
        if (cmd->type == DQ_CT_RINT && strcmp(v, "default") == 0) {
            *(int64_t *) p = -1;
            return 0;
        }
        if (dq__parse_int(v, cmd->min, cmd->max, &i) != 0) {
            goto range;
        }
        *(int64_t *) p = i;
        return 0;

    case DQ_CT_TIME:
    case DQ_CT_RTIME:
        if (cmd->type == DQ_CT_RTIME && strcmp(v, "default") == 0) {
            *(int64_t *) p = -1;
            return 0;
        }
        if (dq_conf_parse_time(v, &i) != 0 || i < cmd->min || i > cmd->max) {
            goto range;
        }
        *(int64_t *) p = i;
        return 0;

    case DQ_CT_SIZE:
        if (dq__parse_size(v, &i) != 0 || i < cmd->min || i > cmd->max) {
            goto range;
        }
        *(size_t *) p = (size_t) i;
        return 0;

    case DQ_CT_RATE:
        if (dq_conf_parse_rate(v, &d) != 0) {
            goto range;
        }
        *(double *) p = d;
        return 0;

    case DQ_CT_FLAG:
        if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
            *(int *) p = v[1] == 'n';
            return 0;
        }
        goto range;

    case DQ_CT_LEVEL:
        for (k = 0; k < 4; k++) {
            if (strcmp(v, dq__conf_levels[k]) == 0) {
                *(int *) p = (int) k;
                return 0;
            }
        }
        goto range;

    case DQ_CT_ADDR:
        if (!dq__addr_valid(v)) {
            goto range;
        }
        /* fall through */
    case DQ_CT_STR:
        free(*(char **) p);
        *(char **) p = NULL;
        if ((cmd->flags & DQ_CF_OFF)
            && (strcmp(v, "off") == 0 || strcmp(v, "stderr") == 0))
        {
            return 0;
        }
        if (*v == '\0') {
            goto range;
        }
        *(char **) p = strdup(v);
        return *(char **) p ? 0 : -1;

    case DQ_CT_FNTIME: {
        dq_fn_conf_t **list = (dq_fn_conf_t **) p;
        size_t        *n = (size_t *) ((char *) base + cmd->count_off);
        dq_fn_conf_t  *nl;
        const char    *sep = strpbrk(v, " =");
        char           fname[DQ_FUNC_NAME_MAX + 1];

        if (sep == NULL || sep == v || (size_t) (sep - v) > DQ_FUNC_NAME_MAX
            || dq_conf_parse_time(sep + 1, &i) != 0 || i > cmd->max)
        {
            goto range;
        }
        memcpy(fname, v, (size_t) (sep - v));
        fname[sep - v] = '\0';
        if (!dq_func_name_valid(dq_str_c(fname))) {
            goto range;
        }
        for (k = 0; k < *n; k++) {
            if (strcmp((*list)[k].function, fname) == 0) {
                (*list)[k].timeout_ms = i;
                return 0;
            }
        }
        nl = realloc(*list, (*n + 1) * sizeof(*nl));
        if (nl == NULL) {
            return -1;
        }
        *list = nl;
        nl[*n].function = strdup(fname);
        nl[*n].timeout_ms = i;
        if (nl[*n].function == NULL) {
            return -1;
        }
        (*n)++;
        return 0;
    }

    case DQ_CT_PATHS: {
        char  ***list = (char ***) p;
        size_t  *n = (size_t *) ((char *) base + cmd->count_off);
        char   **nl;

        if (*v == '\0') {
            goto range;
        }
        nl = realloc(*list, (*n + 1) * sizeof(char *));
        if (nl == NULL) {
            return -1;
        }
        *list = nl;
        nl[*n] = strdup(v);
        if (nl[*n] == NULL) {
            return -1;
        }
        (*n)++;
        return 0;
    }
    }

range:
    dq__conf_err(err, errlen, "invalid value \"%s\" in \"%s\" directive "
            "(expected %s)", v, cmd->name, cmd->arg);
    return -1;
}

static void
dq__queue_defaults(dq_queue_conf_t *q)
{
    size_t i;
    char   err[DQ_CONF_ERR_SIZE];

    for (i = 0; i < dq__conf_ncmds; i++) {
        if (dq__conf_cmds[i].ctx == DQ_CX_QUEUE && dq__conf_cmds[i].dflt) {
            (void) dq__conf_set(&dq__conf_cmds[i], q, dq__conf_cmds[i].dflt, err,
                           sizeof(err));
        }
    }
}

/* ------------------------------------------------------------- public */

void
dq_conf_defaults(dq_worker_conf_t *conf)
{
    size_t i;
    char   err[DQ_CONF_ERR_SIZE];

    memset(conf, 0, sizeof(*conf));
    dq_limits_default(&conf->limits);
    for (i = 0; i < dq__conf_ncmds; i++) {
        if (dq__conf_cmds[i].ctx == DQ_CX_MAIN && dq__conf_cmds[i].dflt) {
            (void) dq__conf_set(&dq__conf_cmds[i], conf, dq__conf_cmds[i].dflt, err,
                           sizeof(err));
        }
    }
}

void
dq_conf_free(dq_worker_conf_t *conf)
{
    size_t i;

    free(conf->redis_address);
    free(conf->redis_password);
    free(conf->push_secret);
    for (i = 0; i < conf->nqueues; i++) {
        free(conf->queues[i].name);
        free(conf->queues[i].push_target);
    }
    free(conf->queues);
    for (i = 0; i < conf->nlibraries; i++) {
        free(conf->libraries[i]);
    }
    free(conf->libraries);
    for (i = 0; i < conf->nfunctions; i++) {
        free(conf->functions[i].function);
    }
    free(conf->functions);
    free(conf->log_file);
    free(conf->log_format);
    free(conf->pid_file);
    free(conf->config_file);
    memset(conf, 0, sizeof(*conf));
}

const dq_queue_conf_t *
dq_conf_queue(const dq_worker_conf_t *conf, dq_str_t name)
{
    size_t i;

    for (i = 0; i < conf->nqueues; i++) {
        if (strlen(conf->queues[i].name) == name.len
            && memcmp(conf->queues[i].name, name.ptr, name.len) == 0)
        {
            return &conf->queues[i];
        }
    }
    return NULL;
}

dq_queue_conf_t *
dq_conf_add_queue(dq_worker_conf_t *conf, const char *name, char *err,
                  size_t errlen)
{
    dq_queue_conf_t *q, *nq;

    if (!dq_queue_name_valid(dq_str_c(name))) {
        dq__conf_err(err, errlen, "invalid queue name \"%s\" "
                "(expected [A-Za-z0-9_-]{1,%d})", name, DQ_QUEUE_NAME_MAX);
        return NULL;
    }
    q = (dq_queue_conf_t *) dq_conf_queue(conf, dq_str_c(name));
    if (q) {
        return q;
    }
    nq = realloc(conf->queues, (conf->nqueues + 1) * sizeof(*nq));
    if (nq == NULL) {
        dq__conf_err(err, errlen, "out of memory");
        return NULL;
    }
    conf->queues = nq;
    q = &nq[conf->nqueues];
    memset(q, 0, sizeof(*q));
    dq__queue_defaults(q);
    q->name = strdup(name);
    if (q->name == NULL) {
        dq__conf_err(err, errlen, "out of memory");
        return NULL;
    }
    conf->nqueues++;
    return q;
}

int
dq_conf_known(const char *name)
{
    return dq__conf_cmd(name, DQ_CX_MAIN) != NULL;
}

int
dq_conf_set(dq_worker_conf_t *conf, const char *name, const char *value,
            char *err, size_t errlen)
{
    const dq_conf_cmd_t *cmd = dq__conf_cmd(name, DQ_CX_MAIN);

    if (cmd == NULL) {
        dq__conf_err(err, errlen, "unknown directive \"%s\"", name);
        return -1;
    }
    return dq__conf_set(cmd, conf, value, err, errlen);
}

void
dq_conf_reset(dq_worker_conf_t *conf, const char *name)
{
    const dq_conf_cmd_t *cmd = dq__conf_cmd(name, DQ_CX_MAIN);
    char                 err[DQ_CONF_ERR_SIZE];
    size_t               i, *n;
    char              ***list;

    if (cmd == NULL) {
        return;
    }
    if (cmd->type == DQ_CT_FNTIME) {
        for (i = 0; i < conf->nfunctions; i++) {
            free(conf->functions[i].function);
        }
        free(conf->functions);
        conf->functions = NULL;
        conf->nfunctions = 0;
        return;
    }
    if (cmd->type == DQ_CT_PATHS) {
        list = (char ***) ((char *) conf + cmd->off);
        n = (size_t *) ((char *) conf + cmd->count_off);
        for (i = 0; i < *n; i++) {
            free((*list)[i]);
        }
        free(*list);
        *list = NULL;
        *n = 0;
        return;
    }
    if (cmd->dflt) {
        (void) dq__conf_set(cmd, conf, cmd->dflt, err, sizeof(err));
    }
}

int64_t
dq_conf_timeout(const dq_worker_conf_t *conf, const dq_queue_conf_t *q,
                const char *function)
{
    size_t i;

    for (i = 0; function && i < conf->nfunctions; i++) {
        if (strcmp(conf->functions[i].function, function) == 0) {
            return conf->functions[i].timeout_ms;
        }
    }
    return q ? q->timeout_ms : 0;
}

int
dq_conf_processes(const dq_worker_conf_t *conf)
{
    long n;

    if (conf->processes > 0) {
        return conf->processes;
    }
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int) n : 1;
}

int
dq_conf_check(const dq_worker_conf_t *conf, char *err, size_t errlen)
{
    if (conf->nqueues == 0) {
        dq__conf_err(err, errlen, "no queue to serve (add \"queue NAME;\")");
        return -1;
    }
    if (conf->redis_address == NULL || !dq__addr_valid(conf->redis_address))
    {
        dq__conf_err(err, errlen, "no valid \"redis\" address");
        return -1;
    }
    if (conf->redis_db != 0 && strncmp(conf->redis_address, "cluster:", 8)
        == 0)
    {
        dq__conf_err(err, errlen, "\"redis_db %d\" with a cluster address: "
                     "a Redis Cluster has database 0 only", conf->redis_db);
        return -1;
    }
    if (conf->log_format && strcmp(conf->log_format, "text") != 0
        && strcmp(conf->log_format, "json") != 0)
    {
        dq__conf_err(err, errlen, "invalid value \"%s\" in \"log_format\" "
                     "directive (expected text|json)", conf->log_format);
        return -1;
    }
    for (size_t i = 0; i < conf->nqueues; i++) {
        const char *t = conf->queues[i].push_target;
        size_t      n;

        if (t == NULL) {
            continue;
        }
        n = strncmp(t, "http://", 7) == 0 ? 7
            : strncmp(t, "https://", 8) == 0 ? 8 : 0;
        if (n == 0 || t[n] == '\0' || t[n] == '/' || strpbrk(t, " \t?#")) {
            dq__conf_err(err, errlen, "queue %s: invalid push_target \"%s\" "
                         "(expected http://HOST[:PORT][/PATH] or https://...)",
                         conf->queues[i].name, t);
            return -1;
        }
    }
    return 0;
}
