/*
 * deferred-cli internals shared by client/cli*.c: the invocation (client,
 * output mode), exit codes, Redis helpers on the client's connection,
 * tables for people and JSON for scripts.
 *
 * Exit codes (every command): 0 done, 1 error (Redis unreachable or
 * answered an error), 2 usage or invalid input, 3 duplicate task name,
 * 4 tombstoned task name, 5 not found (no such task, or not in the state
 * the command needs).
 */
#ifndef DQ_CLI_H
#define DQ_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <msgpack.h>

#include <deferred/client.h>
#include "dq_contract.h"

#define DQ_CLI_OK        0
#define DQ_CLI_ERROR     1
#define DQ_CLI_USAGE     2
#define DQ_CLI_DUPLICATE 3
#define DQ_CLI_TOMBSTONE 4
#define DQ_CLI_NOTFOUND  5

typedef struct {
    dq_client_t *c;
    int          json;        /* --json: one JSON document on stdout */
} dq_cli_t;

int dq_cli_exit_code(int rc);                 /* DQ_E* -> exit code */
int dq_cli_fail(dq_cli_t *cli, int rc);       /* prints, returns exit code */
int dq_cli_usage_error(const char *fmt, ...) DQ_PRINTF(1, 2);

/* One command on the client's connection (reconnecting as the client
 * does); NULL after printing the error. The reply is the caller's. */
redisReply *dq_cli_cmd(dq_cli_t *cli, int argc, const char **argv);
/* Redis TIME in ms (the clock the scripts use), or -1 after an error. */
int64_t dq_cli_now(dq_cli_t *cli);
/* A script call built by lib/dq_cmd.c (NOSCRIPT handled); built: the
 * builder's answer (not DQ_OK: not sent). cmd is freed; NULL after an
 * error (printed), its exit code (dq_cli_exit_code: a builder's DQ_EINVAL
 * is a usage error) in *code unless code is NULL. */
redisReply *dq_cli_script(dq_cli_t *cli, dq_cmd_t *cmd, int built,
                          int *code);

/* On stderr: queue (or shard) sq lists `listed` tasks while its due list
 * is off (stats "due_until", until: NULL or its reply, not in (now, now +
 * DQ_DUE_HOLD_MS]): old workers never take them. 1 when it warned. */
int dq_cli_due_warn(const char *sq, int64_t listed, const redisReply *until,
                    int64_t now);

int dq_cli_queue(const char *s);              /* 1 if a valid queue name */
/* "what QUEUE...": argv[first..argc) one or more valid queue names;
 * DQ_CLI_OK, or DQ_CLI_USAGE after printing why. */
int dq_cli_queue_args(int argc, char **argv, int first, const char *what);
/* The queues registered in dq:queues (SMEMBERS, in Redis' order): n names
 * in an array (NULL-terminated; the caller frees it) pointing into *reply
 * (the caller's, freed after the array). NULL after an error (printed,
 * but for out of memory). */
char **dq_cli_queue_names(dq_cli_t *cli, redisReply **reply, size_t *n);

/* A task's state as list and purge name it (cli_inspect.c says what each
 * means); dq_cli_states[] by dq_cli_state_t. */
typedef enum {
    DQ_ST_WAITING = 0, DQ_ST_DUE, DQ_ST_DELAYED, DQ_ST_RUNNING, DQ_ST_DEAD,
    DQ_ST_ALL
} dq_cli_state_t;

extern const char *const dq_cli_states[];
int dq_cli_state(const char *s, dq_cli_state_t *out);     /* 0 or -1 */

int dq_cli_cmp_str(const void *a, const void *b);    /* qsort of char * */

/* config apply: App Engine's queue.yaml text as this project's queue
 * blocks, appended to out (cli_yaml.c); 0, or -1 with err "line N: ..." */
int dq_cli_yaml_translate(const char *text, FILE *out, char *err,
                          size_t errlen);

/* "2026-11-30T05:00:00.123Z" into buf (>= 32 bytes); "-" for ms <= 0. */
const char *dq_cli_time(int64_t ms, char *buf);

/* A msgpack object as JSON (a string that is not UTF-8 shows each byte
 * as the code point of the same value). */
json_t *dq_cli_msgpack_json(const msgpack_object *o);
void dq_cli_print_json(json_t *doc);          /* dumps and decrefs */

/* A table: columns given once, then cells row by row, printed aligned. */
typedef struct {
    int     ncols;
    char  **cells;    /* ncols per row, header first */
    size_t  n, cap;
} dq_cli_table_t;

int  dq_cli_table_init(dq_cli_table_t *t, int ncols, ...);
void dq_cli_table_cell(dq_cli_table_t *t, const char *fmt, ...) DQ_PRINTF(2, 3);
void dq_cli_table_print(dq_cli_table_t *t);   /* prints and frees */

/* commands: argv[0] is the command name */
int dq_cli_queues(dq_cli_t *cli, int argc, char **argv);
int dq_cli_list(dq_cli_t *cli, int argc, char **argv);
int dq_cli_show(dq_cli_t *cli, int argc, char **argv);
int dq_cli_retry(dq_cli_t *cli, int argc, char **argv);
int dq_cli_delete(dq_cli_t *cli, int argc, char **argv);
int dq_cli_purge(dq_cli_t *cli, int argc, char **argv);
int dq_cli_pause(dq_cli_t *cli, int argc, char **argv);
int dq_cli_forget(dq_cli_t *cli, int argc, char **argv);
int dq_cli_migrate(dq_cli_t *cli, int argc, char **argv);
int dq_cli_unlist(dq_cli_t *cli, int argc, char **argv);
int dq_cli_workers(dq_cli_t *cli, int argc, char **argv);
int dq_cli_config(dq_cli_t *cli, int argc, char **argv);
int dq_cli_queue_cmd(dq_cli_t *cli, int argc, char **argv);

#endif /* DQ_CLI_H */
