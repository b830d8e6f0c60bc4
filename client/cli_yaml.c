/*
 * deferred-cli config apply's reading of App Engine's queue.yaml: the
 * subset App Engine documents, translated into this project's queue
 * blocks, which cli_config.c then reads with the worker's own parser
 * (conf/config_file.c; its time and rate parsers check the values here
 * too). Text to text: no Redis, no file opened here.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"

static int
dq__yaml_err(char *err, size_t n, int line, const char *fmt, const char *a)
{
    char msg[300];

    snprintf(msg, sizeof(msg), fmt, a);
    snprintf(err, n, "line %d: %s", line, msg);
    return -1;
}

static char *
dq__trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    e = s + strlen(s);
    while (e > s && isspace((unsigned char) e[-1])) {
        *--e = '\0';
    }
    if ((*s == '"' || *s == '\'') && e - s >= 2 && e[-1] == *s) {
        e[-1] = '\0';
        s++;
    }
    return s;
}

/* "key: value" at *k split in place into the trimmed *k and *v; -1 (and
 * *k untouched) without a colon */
static int
dq__ykv(char **k, char **v)
{
    char *c = strchr(*k, ':');

    if (c == NULL) {
        return -1;
    }
    *c++ = '\0';
    *v = dq__trim(c);
    *k = dq__trim(*k);
    return 0;
}

/* frees the parser's copy after the message (which may point into it)
 * was written */
static int
dq__yfail(char *copy, int rc)
{
    free(copy);
    return rc;
}

#define DQ__YFAIL(...)                                                  \
    return dq__yfail(copy, dq__yaml_err(err, errlen, ln, __VA_ARGS__))

/* seconds (float) -> "NNNms"; below 1 ms is 1 ms (the finest backoff the
 * scripts keep; 0 would retry in a hot loop) */
static int
dq__secs(const char *v, char *out, size_t n)
{
    char      *end;
    double     d = strtod(v, &end);
    long long  ms;

    if (end == v || *end || !(d >= 0) || d > 1e9) {
        return -1;
    }
    ms = llround(d * 1000);
    snprintf(out, n, "%lldms", ms < 1 ? 1 : ms);
    return 0;
}

/* a decimal integer in [min, max] (the queue.yaml counts) */
static int
dq__yint(const char *v, long long min, long long max)
{
    char      *end;
    long long  n;

    if (!isdigit((unsigned char) v[0]) && v[0] != '-') {
        return -1;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    return (end == v || *end || errno || n < min || n > max) ? -1 : 0;
}

/*
 * The queue.yaml subset App Engine documents, translated into this
 * project's queue blocks (appended to out). Refused: target (a worker
 * serving the queue runs its tasks, there is no service to route to),
 * mode: pull, acl, total_storage_limit, anything unknown.
 */
typedef struct dq__yentry_s dq__yentry_t;
static int dq__yaml_translate_entries(const char *text, FILE *out,
    dq__yentry_t *e, char *err, size_t errlen);

/* one queue entry: its settings are collected until its name is known */
struct dq__yentry_s {
    FILE   *m;
    char   *buf;
    size_t  len;
    char    name[DQ_QUEUE_NAME_MAX + 1];
    int     line;
};

static int
dq__yentry_end(dq__yentry_t *e, FILE *out, char *err, size_t errlen)
{
    int rc = 0;

    if (e->m == NULL) {
        return 0;
    }
    fclose(e->m);
    e->m = NULL;
    if (e->name[0] == '\0') {
        rc = dq__yaml_err(err, errlen, e->line, "queue entry without a "
                          "name%s", "");
    } else {
        fprintf(out, "queue %s {\n%.*s}\n", e->name, (int) e->len,
                e->buf ? e->buf : "");
    }
    free(e->buf);
    e->buf = NULL;
    e->len = 0;
    e->name[0] = '\0';
    return rc;
}

int
dq_cli_yaml_translate(const char *text, FILE *out, char *err, size_t errlen)
{
    dq__yentry_t entry = { NULL, NULL, 0, "", 0 };
    FILE       *eo;
    int         rc;

    rc = dq__yaml_translate_entries(text, out, &entry, err, errlen);
    if (rc == 0) {
        rc = dq__yentry_end(&entry, out, err, errlen);
    } else if (entry.m) {
        eo = entry.m;
        fclose(eo);
        free(entry.buf);
    }
    return rc;
}

static int
dq__yaml_translate_entries(const char *text, FILE *out, dq__yentry_t *e,
    char *err, size_t errlen)
{
    char       *copy = strdup(text), *line, *save = NULL, *k, *v, *c;
    int         ln = 0, in_queue = 0, in_retry = 0, open = 0;
    int         item_indent = -1, retry_indent = -1, indent;
    char        val[64];
    double      rate;
    int64_t     ms;

    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
    {
        ln++;
        /* comments: a '#' outside quotes */
        for (c = line; *c; c++) {
            if (*c == '"' || *c == '\'') {
                char q = *c;
                while (c[1] && c[1] != q) {
                    c++;
                }
                if (c[1]) {
                    c++;
                }
            } else if (*c == '#') {
                *c = '\0';
                break;
            }
        }
        for (indent = 0; line[indent] == ' '; indent++) {
        }
        if (line[indent] == '\t') {
            DQ__YFAIL("tabs are not YAML "
                                "indentation%s", "");
        }
        if (line[indent] == '\0') {
            continue;
        }
        k = line + indent;
        /* App Engine writes the list at column 0: "queue:\n- name: x" */
        if (indent == 0 && !(in_queue && k[0] == '-'
                             && (k[1] == ' ' || k[1] == '\0')))
        {
            in_queue = in_retry = 0;
            if (strncmp(k, "queue:", 6) == 0 && *dq__trim(k + 6) == '\0') {
                in_queue = 1;
                continue;
            }
            if (strncmp(k, "total_storage_limit:", 20) == 0) {
                DQ__YFAIL("total_storage_limit "
                                    "cannot be honoured (Redis' maxmemory "
                                    "bounds storage)%s", "");
            }
            DQ__YFAIL("unknown top-level key "
                                "\"%s\" (expected queue:)", k);
        }
        if (!in_queue) {
            DQ__YFAIL("unexpected \"%s\"", k);
        }
        if (k[0] == '-' && (k[1] == ' ' || k[1] == '\0')) {
            /* a new queue entry */
            if (dq__yentry_end(e, out, err, errlen) != 0) {
                free(copy);
                return -1;
            }
            k = k + 1;
            while (*k == ' ') {
                k++;
            }
            item_indent = (int) (k - line);
            in_retry = 0;
            e->m = open_memstream(&e->buf, &e->len);
            e->line = ln;
            if (e->m == NULL) {
                free(copy);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            open = 1;
            if (*k == '\0') {
                continue;
            }
            indent = item_indent;
        } else if (in_retry && indent > retry_indent) {
            /* a retry_parameters field */
            if (dq__ykv(&k, &v) != 0) {
                DQ__YFAIL("expected key: value, not \"%s\"", k);
            }
            if (strcmp(k, "task_retry_limit") == 0) {
                if (dq__yint(v, 0, 1000000000) != 0) {
                    DQ__YFAIL("task_retry_limit: a count >= 0, not \"%s\"",
                              v);
                }
                fprintf(e->m, "    retry_limit %s;\n", v);
            } else if (strcmp(k, "task_age_limit") == 0) {
                if (dq_conf_parse_time(v, &ms) != 0) {
                    DQ__YFAIL("task_age_limit: "
                                        "not a time: \"%s\"", v);
                }
                fprintf(e->m, "    age_limit %lldms;\n", (long long) ms);
            } else if (strcmp(k, "min_backoff_seconds") == 0
                       || strcmp(k, "max_backoff_seconds") == 0)
            {
                if (dq__secs(v, val, sizeof(val)) != 0) {
                    DQ__YFAIL("not a number of "
                                        "seconds: \"%s\"", v);
                }
                fprintf(e->m, "    %s %s;\n", k[1] == 'i' ? "min_backoff"
                                                          : "max_backoff",
                        val);
            } else if (strcmp(k, "max_doublings") == 0) {
                if (dq__yint(v, 0, 1000) != 0) {
                    DQ__YFAIL("max_doublings: a count >= 0, not \"%s\"", v);
                }
                fprintf(e->m, "    max_doublings %s;\n", v);
            } else {
                DQ__YFAIL("unknown "
                                    "retry_parameters key \"%s\"", k);
            }
            continue;
        }
        if (!open || indent != item_indent) {
            DQ__YFAIL("unexpected indentation at "
                                "\"%s\"", k);
        }
        in_retry = 0;
        if (dq__ykv(&k, &v) != 0) {
            DQ__YFAIL("expected key: value, not \"%s\"", k);
        }
        if (strcmp(k, "name") == 0) {
            if (!dq_queue_name_valid(dq_str_c(v))) {
                DQ__YFAIL("invalid queue name "
                                    "\"%s\"", v);
            }
            snprintf(e->name, sizeof(e->name), "%s", v);
        } else if (strcmp(k, "rate") == 0) {
            /* only numbers: "unlimited"/"off" are this project's words */
            if (!isdigit((unsigned char) v[0])
                || dq_conf_parse_rate(v, &rate) != 0)
            {
                DQ__YFAIL("rate: expected N/s, "
                                    "N/m, N/h or N/d, not \"%s\"", v);
            }
            if (rate <= 0) {
                /* App Engine: a queue with rate 0 runs nothing (paused);
                 * here rate 0 would mean unlimited */
                DQ__YFAIL("rate %s pauses the queue in App Engine: remove "
                          "the rate and pause it (deferred-cli pause "
                          "QUEUE) instead", v);
            }
            fprintf(e->m, "    rate %s;\n", v);
        } else if (strcmp(k, "bucket_size") == 0) {
            if (dq__yint(v, 1, 1000000) != 0) {
                DQ__YFAIL("bucket_size: an integer >= 1, not \"%s\"", v);
            }
            fprintf(e->m, "    bucket_size %s;\n", v);
        } else if (strcmp(k, "max_concurrent_requests") == 0) {
            if (dq__yint(v, 1, 1000000) != 0) {
                DQ__YFAIL("max_concurrent_requests: an integer >= 1 (App "
                          "Engine has no \"unlimited\" value: leave it "
                          "out), not \"%s\"", v);
            }
            fprintf(e->m, "    max_concurrent %s;\n", v);
        } else if (strcmp(k, "retry_parameters") == 0 && *v == '\0') {
            in_retry = 1;
            retry_indent = indent;
        } else if (strcmp(k, "mode") == 0 && strcmp(v, "push") == 0) {
            /* the only mode there is */
        } else if (strcmp(k, "mode") == 0) {
            DQ__YFAIL("mode %s cannot be honoured "
                                "(only push queues: workers run the tasks)",
                                v);
        } else if (strcmp(k, "target") == 0) {
            DQ__YFAIL("target \"%s\" cannot be "
                                "honoured: every worker that serves the "
                                "queue runs its tasks (serve the queue only "
                                "from the workers you mean)", v);
        } else if (strcmp(k, "acl") == 0) {
            DQ__YFAIL("acl cannot be honoured "
                                "(restrict the module's locations and "
                                "Redis instead)%s", "");
        } else {
            DQ__YFAIL("unknown queue key \"%s\"",
                                k);
        }
    }
    free(copy);
    return 0;
}
