/*
 * deferred-worker — the configuration file's syntax, both ways: the
 * nginx-like parser (dq_conf_load: `directive value;`, `queue NAME { }`
 * blocks, `#` comments, quoted words; errors name FILE:LINE and the bad
 * value) and the writers (dq_conf_dump, a valid file of the effective
 * settings; dq_conf_help). Both walk the one table of config.c.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_int.h"

/* --------------------------------------------------------------- file */

typedef struct {
    const char *file;
    const char *p, *end;
    int         line;
    char        word[4096];
} dq_cfp_t;

enum { DQ_TK_WORD, DQ_TK_SEMI, DQ_TK_OPEN, DQ_TK_CLOSE, DQ_TK_EOF,
       DQ_TK_ERR };

static int
dq__token(dq_cfp_t *cf, char *err, size_t errlen)
{
    size_t n = 0;
    char   quote;

    for (;;) {
        while (cf->p < cf->end && isspace((unsigned char) *cf->p)) {
            if (*cf->p == '\n') {
                cf->line++;
            }
            cf->p++;
        }
        if (cf->p < cf->end && *cf->p == '#') {
            while (cf->p < cf->end && *cf->p != '\n') {
                cf->p++;
            }
            continue;
        }
        break;
    }
    if (cf->p >= cf->end) {
        return DQ_TK_EOF;
    }
    switch (*cf->p) {
    case ';': cf->p++; return DQ_TK_SEMI;
    case '{': cf->p++; return DQ_TK_OPEN;
    case '}': cf->p++; return DQ_TK_CLOSE;
    }

    if (*cf->p == '"' || *cf->p == '\'') {
        quote = *cf->p++;
        while (cf->p < cf->end && *cf->p != quote) {
            if (*cf->p == '\\' && cf->p + 1 < cf->end) {
                cf->p++;
            }
            if (*cf->p == '\n') {
                cf->line++;
            }
            if (n + 1 >= sizeof(cf->word)) {
                goto long_word;
            }
            cf->word[n++] = *cf->p++;
        }
        if (cf->p >= cf->end) {
            dq__conf_err(err, errlen, "unterminated string in %s:%d", cf->file,
                    cf->line);
            return DQ_TK_ERR;
        }
        cf->p++;
    } else {
        while (cf->p < cf->end && !isspace((unsigned char) *cf->p)
               && *cf->p != ';' && *cf->p != '{' && *cf->p != '}'
               && *cf->p != '#')
        {
            if (n + 1 >= sizeof(cf->word)) {
                goto long_word;
            }
            cf->word[n++] = *cf->p++;
        }
    }
    cf->word[n] = '\0';
    return DQ_TK_WORD;

long_word:
    dq__conf_err(err, errlen, "word too long in %s:%d", cf->file, cf->line);
    return DQ_TK_ERR;
}

/* One directive's words up to ';' or '{'. Returns the terminator token. */
static int
dq__words(dq_cfp_t *cf, char words[][4096], int max, int *n, char *err,
          size_t errlen)
{
    int t;

    *n = 0;
    for (;;) {
        t = dq__token(cf, err, errlen);
        if (t != DQ_TK_WORD) {
            return t;
        }
        if (*n == max) {
            dq__conf_err(err, errlen, "too many arguments in \"%s\" directive in "
                    "%s:%d", words[0], cf->file, cf->line);
            return DQ_TK_ERR;
        }
        memcpy(words[(*n)++], cf->word, sizeof(cf->word));
    }
}

static int
dq__parse(dq_worker_conf_t *conf, dq_cfp_t *cf, char *err, size_t errlen)
{
    static char          words[3][4096];
    dq_queue_conf_t     *q = NULL;
    const dq_conf_cmd_t *cmd;
    int                  t, n, ctx, line;
    size_t               i;
    char                 e[DQ_CONF_ERR_SIZE];

    for (;;) {
        t = dq__words(cf, words, 3, &n, err, errlen);
        line = cf->line;
        if (t == DQ_TK_ERR) {
            return -1;
        }
        ctx = q ? DQ_CX_QUEUE : DQ_CX_MAIN;
        if (n == 0) {
            if (t == DQ_TK_EOF) {
                if (q) {
                    dq__conf_err(err, errlen, "unexpected end of file, expecting "
                            "\"}\" in %s:%d", cf->file, line);
                    return -1;
                }
                return 0;
            }
            if (t == DQ_TK_CLOSE && q) {
                q = NULL;
                continue;
            }
            dq__conf_err(err, errlen, "unexpected \"%s\" in %s:%d",
                    t == DQ_TK_SEMI ? ";" : t == DQ_TK_OPEN ? "{" : "}",
                    cf->file, line);
            return -1;
        }

        if (ctx == DQ_CX_MAIN && strcmp(words[0], "queue") == 0) {
            if (n != 2 || (t != DQ_TK_SEMI && t != DQ_TK_OPEN)) {
                dq__conf_err(err, errlen, "\"queue\" takes a name and a block or "
                        "\";\" in %s:%d", cf->file, line);
                return -1;
            }
            for (i = 0; i < conf->nqueues; i++) {
                if (strcmp(conf->queues[i].name, words[1]) == 0) {
                    dq__conf_err(err, errlen, "duplicate queue \"%s\" in %s:%d",
                            words[1], cf->file, line);
                    return -1;
                }
            }
            q = dq_conf_add_queue(conf, words[1], e, sizeof(e));
            if (q == NULL) {
                dq__conf_err(err, errlen, "%s in %s:%d", e, cf->file, line);
                return -1;
            }
            if (t == DQ_TK_SEMI) {
                q = NULL;
            }
            continue;
        }

        cmd = dq__conf_cmd(words[0], ctx);
        if (cmd == NULL) {
            dq__conf_err(err, errlen, "unknown directive \"%s\"%s in %s:%d",
                    words[0], dq__conf_cmd(words[0], DQ_CX_MAIN | DQ_CX_QUEUE)
                    ? (q ? " inside a queue block" : " outside a queue block")
                    : "", cf->file, line);
            return -1;
        }
        if (t != DQ_TK_SEMI) {
            dq__conf_err(err, errlen, "directive \"%s\" is not terminated by "
                    "\";\" in %s:%d", words[0], cf->file, line);
            return -1;
        }
        if (n != (cmd->type == DQ_CT_FNTIME ? 3 : 2)) {
            dq__conf_err(err, errlen, "invalid number of arguments in \"%s\" "
                    "directive in %s:%d", words[0], cf->file, line);
            return -1;
        }
        if (cmd->type == DQ_CT_FNTIME) {
            /* "FUNCTION TIME": the setter's one-string form */
            size_t l1 = strlen(words[1]);

            if (l1 + 1 + strlen(words[2]) >= sizeof(words[1])) {
                dq__conf_err(err, errlen, "value too long in %s:%d", cf->file,
                        line);
                return -1;
            }
            words[1][l1] = ' ';
            memcpy(words[1] + l1 + 1, words[2], strlen(words[2]) + 1);
        }
        if (dq__conf_set(cmd, q ? (void *) q : (void *) conf, words[1], e,
                    sizeof(e)) != 0)
        {
            dq__conf_err(err, errlen, "%s in %s:%d", e, cf->file, line);
            return -1;
        }
    }
}

int
dq_conf_load(dq_worker_conf_t *conf, const char *path, char *err,
             size_t errlen)
{
    FILE     *f;
    char     *buf = NULL;
    size_t    len = 0, cap = 0, r;
    dq_cfp_t  cf;
    int       rc;

    f = fopen(path, "r");
    if (f == NULL) {
        dq__conf_err(err, errlen, "cannot open configuration file %s: %s", path,
                strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            char *nb = realloc(buf, cap ? cap * 2 : 8192);
            if (nb == NULL || cap > (64u << 20)) {
                free(nb ? nb : buf);
                fclose(f);
                dq__conf_err(err, errlen, "configuration file %s too large", path);
                return -1;
            }
            buf = nb;
            cap = cap ? cap * 2 : 8192;
        }
        r = fread(buf + len, 1, cap - len, f);
        if (r == 0) {
            break;
        }
        len += r;
    }
    if (ferror(f)) {
        dq__conf_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);

    cf.file = path;
    cf.p = buf;
    cf.end = buf + len;
    cf.line = 1;
    rc = dq__parse(conf, &cf, err, errlen);
    free(buf);
    if (rc == 0) {
        free(conf->config_file);
        conf->config_file = strdup(path);
    }
    return rc;
}

/* --------------------------------------------------------------- dump */

static void
dq__time_str(int64_t ms, char *buf, size_t len)
{
    static const struct { int64_t ms; const char *u; } units[] = {
        { 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" }
    };
    size_t i;

    for (i = 0; i < 4; i++) {
        if (ms >= units[i].ms && ms % units[i].ms == 0) {
            snprintf(buf, len, "%lld%s", (long long) (ms / units[i].ms),
                     units[i].u);
            return;
        }
    }
    snprintf(buf, len, "%lldms", (long long) ms);
}

/* The value of one directive as file text; paths are printed one per line
 * by the caller. Strings that need it are quoted. */
static void
dq__value(const dq_conf_cmd_t *cmd, const void *base, char *buf, size_t len)
{
    const char *p = (const char *) base + cmd->off;
    int64_t     i;

    switch (cmd->type) {
    case DQ_CT_INT:
        snprintf(buf, len, "%d", *(const int *) p);
        return;
    case DQ_CT_FLAG:
        snprintf(buf, len, "%s", *(const int *) p ? "on" : "off");
        return;
    case DQ_CT_AUTO:
    case DQ_CT_LIMIT:
        if (*(const int *) p == 0) {
            snprintf(buf, len, "%s",
                     cmd->type == DQ_CT_AUTO ? "auto" : "unlimited");
        } else {
            snprintf(buf, len, "%d", *(const int *) p);
        }
        return;
    case DQ_CT_INT64:
    case DQ_CT_RINT:
        i = *(const int64_t *) p;
        if (i < 0) {
            snprintf(buf, len, "default");
        } else {
            snprintf(buf, len, "%lld", (long long) i);
        }
        return;
    case DQ_CT_TIME:
    case DQ_CT_RTIME:
        i = *(const int64_t *) p;
        if (i < 0) {
            snprintf(buf, len, "default");
        } else if (i == 0) {
            snprintf(buf, len, cmd->min == 0 && strcmp(cmd->dflt, "off") == 0
                     ? "off" : "0");
        } else {
            dq__time_str(i, buf, len);
        }
        return;
    case DQ_CT_SIZE:
        snprintf(buf, len, "%zu", *(const size_t *) p);
        return;
    case DQ_CT_RATE:
        if (*(const double *) p == 0) {
            snprintf(buf, len, "unlimited");
        } else {
            snprintf(buf, len, "%.6g/s", *(const double *) p);
        }
        return;
    case DQ_CT_LEVEL:
        i = *(const int *) p;
        snprintf(buf, len, "%s", dq__conf_levels[i >= 0 && i < 4 ? i : 2]);
        return;
    case DQ_CT_STR:
    case DQ_CT_ADDR:
        if (*(char *const *) p == NULL) {
            snprintf(buf, len, "%s", cmd->dflt ? cmd->dflt : "off");
        } else {
            snprintf(buf, len, "\"%s\"", *(char *const *) p);
        }
        return;
    default:
        snprintf(buf, len, "?");
    }
}

void
dq_conf_dump(const dq_worker_conf_t *conf, FILE *out)
{
    size_t i, k;
    char   v[4200];

    fprintf(out, "# deferred-worker effective configuration%s%s\n",
            conf->config_file ? " from " : "",
            conf->config_file ? conf->config_file : "");
    for (i = 0; i < dq__conf_ncmds; i++) {
        const dq_conf_cmd_t *cmd = &dq__conf_cmds[i];

        if (cmd->ctx != DQ_CX_MAIN) {
            continue;
        }
        if (cmd->type == DQ_CT_FNTIME) {
            for (k = 0; k < conf->nfunctions; k++) {
                if (conf->functions[k].timeout_ms > 0) {
                    dq__time_str(conf->functions[k].timeout_ms, v,
                                 sizeof(v));
                } else {
                    snprintf(v, sizeof(v), "off");
                }
                fprintf(out, "%s %s %s;\n", cmd->name,
                        conf->functions[k].function, v);
            }
            continue;
        }
        if (cmd->type == DQ_CT_PATHS) {
            char *const *list = *(char *const *const *)
                                ((const char *) conf + cmd->off);
            size_t n = *(const size_t *) ((const char *) conf
                                          + cmd->count_off);
            for (k = 0; k < n; k++) {
                fprintf(out, "%s \"%s\";\n", cmd->name, list[k]);
            }
            continue;
        }
        if (strcmp(cmd->name, "redis_password") == 0 && conf->redis_password)
        {
            fprintf(out, "redis_password \"********\";\n");
            continue;
        }
        dq__value(cmd, conf, v, sizeof(v));
        fprintf(out, "%s %s;\n", cmd->name, v);
    }
    for (k = 0; k < conf->nqueues; k++) {
        fprintf(out, "\nqueue %s {\n", conf->queues[k].name);
        for (i = 0; i < dq__conf_ncmds; i++) {
            if (dq__conf_cmds[i].ctx != DQ_CX_QUEUE) {
                continue;
            }
            dq__value(&dq__conf_cmds[i], &conf->queues[k], v, sizeof(v));
            fprintf(out, "    %s %s;\n", dq__conf_cmds[i].name, v);
        }
        fprintf(out, "}\n");
    }
}

void
dq_conf_help(FILE *out)
{
    size_t i;
    int    ctx;
    char   left[80];

    for (ctx = DQ_CX_MAIN; ctx <= DQ_CX_QUEUE; ctx++) {
        fprintf(out, ctx == DQ_CX_MAIN
                ? "Settings (config file `NAME VALUE;`, or command line "
                  "`--NAME VALUE`):\n"
                : "\nPer queue (config file `queue NAME { ... }`; "
                  "`--queue NAME` serves NAME):\n");
        for (i = 0; i < dq__conf_ncmds; i++) {
            if (dq__conf_cmds[i].ctx != ctx) {
                continue;
            }
            snprintf(left, sizeof(left), "%s %s", dq__conf_cmds[i].name,
                     dq__conf_cmds[i].arg);
            fprintf(out, "  %-36s %s", left, dq__conf_cmds[i].help);
            if (dq__conf_cmds[i].dflt) {
                fprintf(out, " [%s]", dq__conf_cmds[i].dflt);
            }
            fprintf(out, "\n");
        }
    }
}
