/*
 * deferred-worker — entry point: command line + config file ->
 * dq_worker_conf_t, then the master (master.c) or, with
 * `master_process off`, one child in this process.
 *
 *   deferred-worker [-c FILE] [options]            run
 *   deferred-worker [-c FILE] [options] -t | -T    test the config (-T: and
 *                                                  print it), like nginx -t
 *   deferred-worker [-c FILE] -s stop|quit|reload|reopen
 *                                                  signal the running master
 *                                                  (pid file)
 *   deferred-worker [-c FILE] [-r ADDR] pause|resume QUEUE...
 *                                                  pause/resume queues for
 *                                                  every worker (Redis)
 *
 * The file is read first, whatever the order on the command line; flags
 * then override it. Every directive of the file (config.c's table) is also
 * a flag: `--threads 8`, `--lease 5s` ("-" and "_" are the same). A
 * command-line `--library` / `-l` replaces the file's libraries; `-q`
 * replaces the served queues (keeping the file's settings for a queue of
 * the same name). SIGHUP re-runs exactly this: file, then flags.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <deferred/client.h>

#include "config.h"
#include "master.h"
#include "task_impl.h"
#include "worker.h"

typedef struct {
    int          argc;
    char       **argv;
    const char  *config;     /* -c */
    int          test;       /* 1 = -t, 2 = -T */
    const char  *signal;     /* -s */
    int          cmd_at;     /* index of "pause"/"resume", or 0 */
} dq_args_ctx_t;

static void
dq__usage(FILE *out)
{
    fprintf(out,
        "usage: deferred-worker [-c FILE] [options]\n"
        "       deferred-worker [-c FILE] [options] -t|-T\n"
        "       deferred-worker [-c FILE] -s stop|quit|reload|reopen\n"
        "       deferred-worker [-c FILE] [-r ADDR] pause|resume QUEUE...\n"
        "\n"
        "  -c, --config FILE     configuration file (nginx-like; see "
        "docs/OPERATIONS.md)\n"
        "  -t                    test the configuration (and that the task "
        "libraries load), exit 0/1\n"
        "  -T                    the same, then print the effective "
        "configuration\n"
        "  -s SIGNAL             stop (SIGTERM, graceful), quit (SIGQUIT, "
        "fast), reload (SIGHUP),\n"
        "                        reopen (SIGUSR1, logs) to the master named "
        "by pid_file\n"
        "  pause QUEUE...        stop every worker from claiming QUEUE "
        "(tasks still accepted)\n"
        "  resume QUEUE...       let them claim again (wakes sleeping "
        "workers)\n"
        "  -r, --redis ADDR      Redis: HOST, HOST:PORT, [IPV6]:PORT, "
        "unix:PATH or\n"
        "                        sentinel:MASTER@HOST:PORT,...\n"
        "  -q, --queue NAME      serve this queue (repeatable; default: "
        "\"default\")\n"
        "  -l, --library PATH    load this task library (repeatable)\n"
        "  -p, --processes N     children (auto: one per CPU)\n"
        "  --DIRECTIVE VALUE     any directive below, e.g. --threads 8 "
        "--grace 30s\n"
        "  -h, --help            this text\n\n");
}

/* Normalised long name of a flag, or NULL if it takes no value. */
static const char *
dq__flag_name(const char *a, char *buf, size_t len)
{
    static const struct { const char *s, *l; } shorts[] = {
        { "-r", "redis" }, { "-l", "library" }, { "-q", "queue" },
        { "-p", "processes" }, { "-c", "config" }, { "-s", "signal" },
    };
    size_t i;
    char  *p;

    for (i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++) {
        if (strcmp(a, shorts[i].s) == 0) {
            snprintf(buf, len, "%s", shorts[i].l);
            return buf;
        }
    }
    if (strncmp(a, "--", 2) != 0 || strlen(a + 2) >= len || a[2] == '\0') {
        return NULL;
    }
    snprintf(buf, len, "%s", a + 2);
    for (p = buf; *p; p++) {
        if (*p == '-') {
            *p = '_';
        }
    }
    return buf;
}

/* First pass: find -c, -t, -s, -h and the subcommand; check the shape. */
static int
dq__scan(dq_args_ctx_t *a)
{
    char        name[64];
    const char *n;
    int         i;

    for (i = 1; i < a->argc; i++) {
        const char *s = a->argv[i];

        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            return 1;
        }
        if (strcmp(s, "-t") == 0) {
            a->test = a->test ? a->test : 1;
            continue;
        }
        if (strcmp(s, "-T") == 0) {
            a->test = 2;
            continue;
        }
        if (strcmp(s, "pause") == 0 || strcmp(s, "resume") == 0) {
            a->cmd_at = i;
            if (i + 1 >= a->argc) {
                fprintf(stderr, "deferred-worker: %s needs a queue name\n",
                        s);
                return -1;
            }
            return 0;             /* the rest are queue names */
        }
        n = dq__flag_name(s, name, sizeof(name));
        if (n == NULL) {
            fprintf(stderr, "deferred-worker: unexpected argument \"%s\" "
                    "(see --help)\n", s);
            return -1;
        }
        if (i + 1 >= a->argc) {
            fprintf(stderr, "deferred-worker: option \"%s\" needs a value\n",
                    s);
            return -1;
        }
        i++;
        if (strcmp(n, "config") == 0) {
            a->config = a->argv[i];
        } else if (strcmp(n, "signal") == 0) {
            a->signal = a->argv[i];
        } else if (strcmp(n, "queue") != 0 && !dq_conf_known(n)) {
            fprintf(stderr, "deferred-worker: unknown option \"%s\" "
                    "(see --help)\n", s);
            return -1;
        }
    }
    return 0;
}

/* defaults, file, flags -> conf. The loader for start and SIGHUP. */
static int
dq__load(dq_worker_conf_t *conf, void *udata, char *err, size_t errlen)
{
    dq_args_ctx_t    *a = udata;
    dq_worker_conf_t  file;
    char              name[64], e[DQ_CONF_ERR_SIZE];
    const char       *n;
    int               i, end, libs = 0, queues = 0;
    dq_queue_conf_t  *q;

    dq_conf_defaults(conf);
    if (a->config && dq_conf_load(conf, a->config, err, errlen) != 0) {
        dq_conf_free(conf);
        return -1;
    }
    /* keep the file's queues aside: -q chooses among them */
    file = *conf;
    end = a->cmd_at ? a->cmd_at : a->argc;
    for (i = 1; i < end; i++) {
        if (strcmp(a->argv[i], "-t") == 0 || strcmp(a->argv[i], "-T") == 0)
        {
            continue;
        }
        n = dq__flag_name(a->argv[i], name, sizeof(name));
        i++;
        if (n == NULL || strcmp(n, "config") == 0
            || strcmp(n, "signal") == 0)
        {
            continue;
        }
        if (strcmp(n, "queue") == 0) {
            if (queues++ == 0) {
                conf->queues = NULL;
                conf->nqueues = 0;
            }
            q = dq_conf_add_queue(conf, a->argv[i], e, sizeof(e));
            if (q == NULL) {
                snprintf(err, errlen, "%s (command line)", e);
                goto failed;
            }
            {
                const dq_queue_conf_t *fq =
                    dq_conf_queue(&file, dq_str_c(a->argv[i]));
                if (fq && fq != q) {
                    char *keep = q->name;
                    *q = *fq;
                    q->name = keep;
                }
            }
            continue;
        }
        if (strcmp(n, "library") == 0 && libs++ == 0) {
            dq_conf_reset(conf, "library");
        }
        if (dq_conf_set(conf, n, a->argv[i], e, sizeof(e)) != 0) {
            snprintf(err, errlen, "%s (command line)", e);
            goto failed;
        }
    }
    if (queues) {
        for (i = 0; i < (int) file.nqueues; i++) {
            free(file.queues[i].name);
        }
        free(file.queues);
    }
    if (conf->nqueues == 0
        && dq_conf_add_queue(conf, DQ_DEFAULT_QUEUE, e, sizeof(e)) == NULL)
    {
        snprintf(err, errlen, "%s", e);
        dq_conf_free(conf);
        return -1;
    }
    if (dq_conf_check(conf, err, errlen) != 0) {
        dq_conf_free(conf);
        return -1;
    }
    return 0;

failed:
    if (queues) {
        for (i = 0; i < (int) file.nqueues; i++) {
            free(file.queues[i].name);
        }
        free(file.queues);
    }
    dq_conf_free(conf);
    return -1;
}

/* -t / -T: like nginx -t, plus "the task libraries load". */
static int
dq__test(dq_args_ctx_t *a)
{
    dq_worker_conf_t  conf;
    dq_loader_t      *ld;
    const char       *le;
    const char       *file = a->config ? a->config : "(command line)";
    char              err[DQ_CONF_ERR_SIZE];

    if (dq__load(&conf, a, err, sizeof(err)) != 0) {
        fprintf(stderr, "deferred-worker: [emerg] %s\n"
                "deferred-worker: configuration file %s test failed\n",
                err, file);
        return 1;
    }
    fprintf(stderr, "deferred-worker: the configuration file %s syntax is "
            "ok\n", file);
    dq_log_open(NULL, DQ_LOG_ERROR);
    ld = dq_loader_new(conf.libraries, conf.nlibraries);
    le = ld ? dq_loader_errors(ld) : "out of memory";
    if (le != NULL) {
        fprintf(stderr, "deferred-worker: [emerg] task library failed to "
                "load: %s\n"
                "deferred-worker: configuration file %s test failed\n",
                le, file);
        dq_loader_free(ld);
        dq_conf_free(&conf);
        return 1;
    }
    dq_loader_free(ld);
    fprintf(stderr, "deferred-worker: configuration file %s test is "
            "successful\n", file);
    if (a->test == 2) {
        dq_conf_dump(&conf, stdout);
    }
    dq_conf_free(&conf);
    return 0;
}

/* -s: signal the master named by the pid file. */
static int
dq__signal(dq_args_ctx_t *a)
{
    static const struct { const char *name; int sig; } sigs[] = {
        { "stop", SIGTERM }, { "quit", SIGQUIT }, { "reload", SIGHUP },
        { "reopen", SIGUSR1 },
    };
    dq_worker_conf_t conf;
    char             err[DQ_CONF_ERR_SIZE], buf[32] = "";
    FILE            *f;
    long             pid;
    size_t           i;
    int              sig = 0;

    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (strcmp(a->signal, sigs[i].name) == 0) {
            sig = sigs[i].sig;
        }
    }
    if (sig == 0) {
        fprintf(stderr, "deferred-worker: invalid option: \"-s %s\" "
                "(stop|quit|reload|reopen)\n", a->signal);
        return 2;
    }
    if (dq__load(&conf, a, err, sizeof(err)) != 0) {
        fprintf(stderr, "deferred-worker: [emerg] %s\n", err);
        return 1;
    }
    if (conf.pid_file == NULL) {
        fprintf(stderr, "deferred-worker: no pid_file configured\n");
        dq_conf_free(&conf);
        return 1;
    }
    f = fopen(conf.pid_file, "r");
    if (f == NULL || fgets(buf, sizeof(buf), f) == NULL
        || (pid = strtol(buf, NULL, 10)) <= 1)
    {
        fprintf(stderr, "deferred-worker: cannot read pid file \"%s\": %s\n",
                conf.pid_file, f ? "empty or invalid" : strerror(errno));
        if (f) {
            fclose(f);
        }
        dq_conf_free(&conf);
        return 1;
    }
    fclose(f);
    dq_conf_free(&conf);
    if (kill((pid_t) pid, sig) != 0) {
        fprintf(stderr, "deferred-worker: kill(%ld, %s): %s\n", pid,
                a->signal, strerror(errno));
        return 1;
    }
    return 0;
}

/* pause / resume QUEUE...: the pause script on every named queue, through
 * the blocking client (the same connect, AUTH, SELECT and NOSCRIPT
 * fallback as every other synchronous caller). */
static int
dq__pause(dq_args_ctx_t *a)
{
    dq_worker_conf_t  conf;
    dq_client_opts_t  co;
    dq_client_t      *c;
    char              err[DQ_CONF_ERR_SIZE];
    int               i, paused, changed, st, rcode = 0;

    paused = strcmp(a->argv[a->cmd_at], "pause") == 0;
    if (dq__load(&conf, a, err, sizeof(err)) != 0) {
        fprintf(stderr, "deferred-worker: [emerg] %s\n", err);
        return 1;
    }
    memset(&co, 0, sizeof(co));
    co.password = conf.redis_password;
    co.db = conf.redis_db;
    c = dq_client_new(conf.redis_address, &co);
    if (c == NULL) {
        fprintf(stderr, "deferred-worker: out of memory\n");
        dq_conf_free(&conf);
        return 1;
    }
    for (i = a->cmd_at + 1; rcode == 0 && i < a->argc; i++) {
        st = dq_queue_pause(c, a->argv[i], paused, &changed);
        if (st == DQ_EINVAL) {
            fprintf(stderr, "deferred-worker: %s %s: %s\n",
                    a->argv[a->cmd_at], a->argv[i], dq_client_errstr(c));
            rcode = 2;
        } else if (st != DQ_OK) {
            fprintf(stderr, "deferred-worker: %s %s failed: %s\n",
                    a->argv[a->cmd_at], a->argv[i], dq_client_errstr(c));
            rcode = 1;
        } else {
            printf("queue %s %s%s\n", a->argv[i],
                   changed ? "" : "was already ",
                   paused ? "paused" : "running");
        }
    }
    dq_client_free(c);
    dq_conf_free(&conf);
    return rcode;
}

int
main(int argc, char **argv)
{
    dq_args_ctx_t    a;
    dq_worker_conf_t conf;
    char             err[DQ_CONF_ERR_SIZE];
    int              rc;

    memset(&a, 0, sizeof(a));
    a.argc = argc;
    a.argv = argv;
    rc = dq__scan(&a);
    if (rc != 0) {
        if (rc > 0) {
            dq__usage(stdout);
            dq_conf_help(stdout);
            return 0;
        }
        return 2;
    }
    if (a.test) {
        return dq__test(&a);
    }
    if (a.signal) {
        return dq__signal(&a);
    }
    if (a.cmd_at) {
        return dq__pause(&a);
    }

    if (dq__load(&conf, &a, err, sizeof(err)) != 0) {
        fprintf(stderr, "deferred-worker: [emerg] %s\n", err);
        return 1;
    }
    if (dq_log_open(conf.log_file, conf.log_level) != 0) {
        dq_conf_free(&conf);
        return 1;
    }
    (void) dq_log_set_format(conf.log_format);      /* checked by load */
    if (!conf.master_process) {
        rc = dq_child_main(&conf, 0);
        dq_conf_free(&conf);
    } else {
        rc = dq_master_run(&conf, dq__load, &a);   /* takes conf */
    }
    dq_log_close();
    return rc;
}
