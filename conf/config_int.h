/*
 * deferred-worker — configuration internals shared by config.c (the table,
 * the setters, the public API) and config_file.c (the file syntax: parser,
 * dump, help). Not for other parts: they use config.h.
 */
#ifndef DQ_CONFIG_INT_H
#define DQ_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum {
    DQ_CT_INT = 0,   /* int, range min..max */
    DQ_CT_INT64,     /* int64_t, range min..max */
    DQ_CT_TIME,      /* int64_t ms; "off" = 0 when min allows */
    DQ_CT_SIZE,      /* size_t bytes: 512, 64k, 1m */
    DQ_CT_STR,       /* char *; "off" = NULL when DQ_CF_OFF */
    DQ_CT_ADDR,      /* char * "host:port" | "unix:/path" */
    DQ_CT_PATHS,     /* char ** + count: repeatable */
    DQ_CT_LEVEL,     /* int: error|warn|info|debug */
    DQ_CT_AUTO,      /* int; "auto" = 0 */
    DQ_CT_LIMIT,     /* int; "unlimited" = 0 */
    DQ_CT_RATE,      /* double tasks/s; "unlimited" = 0 */
    DQ_CT_RINT,      /* int64_t of dq_retry_t; "default" = -1 */
    DQ_CT_RTIME,     /* int64_t ms of dq_retry_t; "default" = -1 */
    DQ_CT_FLAG,      /* int: on|off */
    DQ_CT_FNTIME     /* dq_fn_conf_t list: "FUNCTION TIME" (repeatable) */
};

#define DQ_CX_MAIN   1
#define DQ_CX_QUEUE  2

#define DQ_CF_OFF    1   /* DQ_CT_STR: "off" -> NULL */

typedef struct {
    const char *name;
    int         ctx;
    int         type;
    size_t      off;       /* into dq_worker_conf_t or dq_queue_conf_t */
    size_t      count_off; /* DQ_CT_PATHS: the size_t count */
    int64_t     min, max;
    unsigned    flags;
    const char *dflt;      /* default, in file syntax */
    const char *arg;       /* argument form for --help */
    const char *help;
} dq_conf_cmd_t;

/* THE table: every directive, read by the parser, the command line, the
 * defaults, the help and the dump. */
extern const dq_conf_cmd_t dq__conf_cmds[];
extern const size_t        dq__conf_ncmds;
extern const char *const   dq__conf_levels[];   /* error warn info debug */

/* The directive `name` allowed in context ctx (DQ_CX_*), or NULL. */
const dq_conf_cmd_t *dq__conf_cmd(const char *name, int ctx);

/* Set one directive on `base` (the conf or a queue): 0, or -1 with err. */
int dq__conf_set(const dq_conf_cmd_t *cmd, void *base, const char *v,
                 char *err, size_t errlen);

void dq__conf_err(char *err, size_t errlen, const char *fmt, ...)
    DQ_PRINTF(3, 4);

#endif /* DQ_CONFIG_INT_H */
