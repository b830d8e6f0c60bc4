/*
 * deferred-worker — first entry point: command line -> dq_worker_conf_t,
 * then ONE child in this process (dq_child_main). The process manager
 * (master.c) takes over from here later; dq_main_parse_args() is the one
 * function that turns argv into a configuration.
 *
 *   deferred-worker [-c FILE] [-r ADDR] [-q QUEUE]... [-l LIBRARY]...
 *                   [--DIRECTIVE VALUE]...
 *
 * Every directive of the configuration file (config.c's table) is also a
 * flag: `--threads 8`, `--lease 5s`, `--log_level debug` ("-" and "_" are
 * the same in flag names).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"
#include "config.h"
#include "task_impl.h"

static void
dq__usage(FILE *out)
{
    fprintf(out,
        "usage: deferred-worker [options]\n"
        "  -c, --config FILE     read a configuration file first\n"
        "  -r, --redis ADDR      Redis: HOST:PORT or unix:PATH\n"
        "  -q, --queue NAME      serve this queue (repeatable; default: "
        "\"default\")\n"
        "  -l, --library PATH    load this task library (repeatable)\n"
        "  --DIRECTIVE VALUE     any configuration directive, e.g.\n"
        "                        --threads 8 --concurrency 16 --batch 16\n"
        "                        --lease 30s --grace 30s --log_level debug\n"
        "  -h, --help            this text and every directive\n\n");
}

/* argv -> conf (which holds the defaults). 0 ok, 1 = printed help, -1
 * error (printed). */
int
dq_main_parse_args(int argc, char **argv, dq_worker_conf_t *conf)
{
    char        err[DQ_CONF_ERR_SIZE];
    char        name[64];
    const char *a, *v;
    int         i;

    for (i = 1; i < argc; i++) {
        a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            dq__usage(stdout);
            dq_conf_help(stdout);
            return 1;
        }
        if (a[0] != '-' || i + 1 >= argc) {
            fprintf(stderr, "deferred-worker: unexpected argument \"%s\" "
                    "(options take a value; see --help)\n", a);
            return -1;
        }
        v = argv[++i];
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (dq_conf_load(conf, v, err, sizeof(err)) != 0) {
                fprintf(stderr, "deferred-worker: %s\n", err);
                return -1;
            }
            continue;
        }
        if (strcmp(a, "-q") == 0 || strcmp(a, "--queue") == 0) {
            if (dq_conf_add_queue(conf, v, err, sizeof(err)) == NULL) {
                fprintf(stderr, "deferred-worker: %s\n", err);
                return -1;
            }
            continue;
        }
        if (strcmp(a, "-r") == 0) {
            a = "--redis";
        } else if (strcmp(a, "-l") == 0) {
            a = "--library";
        }
        if (strncmp(a, "--", 2) != 0 || strlen(a + 2) >= sizeof(name)) {
            fprintf(stderr, "deferred-worker: unknown option \"%s\"\n", a);
            return -1;
        }
        snprintf(name, sizeof(name), "%s", a + 2);
        for (char *p = name; *p; p++) {
            if (*p == '-') {
                *p = '_';
            }
        }
        if (dq_conf_set(conf, name, v, err, sizeof(err)) != 0) {
            fprintf(stderr, "deferred-worker: %s\n", err);
            return -1;
        }
    }
    if (conf->nqueues == 0
        && dq_conf_add_queue(conf, DQ_DEFAULT_QUEUE, err, sizeof(err))
           == NULL)
    {
        fprintf(stderr, "deferred-worker: %s\n", err);
        return -1;
    }
    if (dq_conf_check(conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "deferred-worker: %s\n", err);
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    dq_worker_conf_t conf;
    int              rc;

    dq_conf_defaults(&conf);
    rc = dq_main_parse_args(argc, argv, &conf);
    if (rc != 0) {
        dq_conf_free(&conf);
        return rc > 0 ? 0 : 2;
    }
    if (dq_log_open(conf.log_file, conf.log_level) != 0) {
        dq_conf_free(&conf);
        return 1;
    }
    rc = dq_child_main(&conf, 0);
    dq_conf_free(&conf);
    dq_log_close();
    return rc;
}
