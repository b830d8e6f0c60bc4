/*
 * deferred-cli helpers: exit codes, Redis calls on the C client's own
 * connection (so -r, --password, --db and unix sockets work the same for
 * every command), task states, times, msgpack -> JSON, aligned tables.
 */
#define _GNU_SOURCE     /* vasprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "client_impl.h"

int
dq_cli_exit_code(int rc)
{
    switch (rc) {
    case DQ_OK:         return DQ_CLI_OK;
    case DQ_EINVAL:
    case DQ_ETOOBIG:    return DQ_CLI_USAGE;
    case DQ_EDUPLICATE: return DQ_CLI_DUPLICATE;
    case DQ_ETOMBSTONE: return DQ_CLI_TOMBSTONE;
    case DQ_ENOTFOUND:  return DQ_CLI_NOTFOUND;
    default:            return DQ_CLI_ERROR;
    }
}

int
dq_cli_fail(dq_cli_t *cli, int rc)
{
    const char *detail = dq_client_errstr(cli->c);

    fprintf(stderr, "deferred-cli: %s%s%s\n", dq_strerror(rc),
            detail && detail[0] ? ": " : "", detail ? detail : "");
    return dq_cli_exit_code(rc);
}

int
dq_cli_usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("deferred-cli: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (deferred-cli --help)\n", stderr);
    return DQ_CLI_USAGE;
}

redisReply *
dq_cli_cmd(dq_cli_t *cli, int argc, const char **argv)
{
    dq_client_t *c = cli->c;
    redisReply  *r;
    int          rc;

    if ((rc = dq__ready(c)) != DQ_OK) {
        dq_cli_fail(cli, rc);
        return NULL;
    }
    if ((rc = dq__append(c, argc, argv, NULL)) != DQ_OK) {
        dq_cli_fail(cli, rc);
        return NULL;
    }
    if (dq__get_reply(c, &r) != DQ_OK) {
        dq_cli_fail(cli, DQ_EREDIS);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        dq__fail(c, DQ_EREDIS, "redis: %s: %s", argv[0], r->str);
        fprintf(stderr, "deferred-cli: %s\n", dq_client_errstr(c));
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisReply *
dq_cli_script(dq_cli_t *cli, dq_cmd_t *cmd, int built, int *code)
{
    redisReply *r = NULL;
    int         rc = built, ec;

    if (rc == DQ_OK && (rc = dq__ready(cli->c)) == DQ_OK) {
        rc = dq__run(cli->c, cmd, &r);
    }
    dq_cmd_free(cmd);
    if (rc != DQ_OK) {
        ec = dq_cli_fail(cli, rc);
        if (code != NULL) {
            *code = ec;
        }
        return NULL;
    }
    if (code != NULL) {
        *code = DQ_CLI_ERROR;           /* an error reply, if NULL below */
    }
    if (r->type == REDIS_REPLY_ERROR) {
        dq__fail(cli->c, DQ_EREDIS, "redis: %s", r->str);
        fprintf(stderr, "deferred-cli: %s\n", dq_client_errstr(cli->c));
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

int64_t
dq_cli_now(dq_cli_t *cli)
{
    const char *argv[] = { "TIME" };
    redisReply *r = dq_cli_cmd(cli, 1, argv);
    int64_t     now = -1;

    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        now = dq_reply_int(r->element[0]) * 1000
              + dq_reply_int(r->element[1]) / 1000;
    }
    freeReplyObject(r);
    return now;
}

int
dq_cli_queue(const char *s)
{
    if (dq_queue_name_valid(dq_str_c(s))) {
        return 1;
    }
    dq_cli_usage_error("invalid queue name \"%s\" (1 to %d characters of "
                       "[A-Za-z0-9_-])", s, DQ_QUEUE_NAME_MAX);
    return 0;
}

int
dq_cli_queue_args(int argc, char **argv, int first, const char *what)
{
    int i;

    if (argc <= first) {
        return dq_cli_usage_error("%s QUEUE...", what);
    }
    for (i = first; i < argc; i++) {
        if (!dq_cli_queue(argv[i])) {
            return DQ_CLI_USAGE;
        }
    }
    return DQ_CLI_OK;
}

char **
dq_cli_queue_names(dq_cli_t *cli, redisReply **reply, size_t *n)
{
    const char  *smembers[] = { "SMEMBERS", DQ_QUEUES_KEY };
    char       **q;
    size_t       i;

    if ((*reply = dq_cli_cmd(cli, 2, smembers)) == NULL) {
        return NULL;
    }
    *n = (*reply)->type == REDIS_REPLY_ARRAY ? (*reply)->elements : 0;
    if ((q = calloc(*n + 1, sizeof(*q))) == NULL) {
        freeReplyObject(*reply);
        *reply = NULL;
        return NULL;
    }
    for (i = 0; i < *n; i++) {
        q[i] = (*reply)->element[i]->str;
    }
    return q;
}

const char *const dq_cli_states[] = {
    "waiting", "due", "delayed", "running", "dead", "all"
};

int
dq_cli_state(const char *s, dq_cli_state_t *out)
{
    int i;

    for (i = 0; i <= DQ_ST_ALL; i++) {
        if (strcmp(s, dq_cli_states[i]) == 0) {
            *out = (dq_cli_state_t) i;
            return 0;
        }
    }
    return -1;
}

int
dq_cli_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

const char *
dq_cli_time(int64_t ms, char *buf)
{
    time_t    s = (time_t) (ms / 1000);
    struct tm tm;

    if (ms <= 0 || gmtime_r(&s, &tm) == NULL) {
        return strcpy(buf, "-");
    }
    strftime(buf, 24, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + strlen(buf), 8, ".%03dZ", (int) (ms % 1000));
    return buf;
}

json_t *
dq_cli_msgpack_json(const msgpack_object *o)
{
    json_t   *j;
    uint32_t  i;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_integer((json_int_t) o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t) o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        j = json_stringn(o->via.str.ptr, o->via.str.size);
        if (j == NULL) {
            /* not UTF-8: each byte as a code point, visibly escaped */
            char  *s = malloc((size_t) o->via.str.size * 2 + 1);
            size_t n = 0;

            for (i = 0; s && i < o->via.str.size; i++) {
                unsigned char b = (unsigned char) o->via.str.ptr[i];
                if (b < 0x80) {
                    s[n++] = (char) b;
                } else {
                    s[n++] = (char) (0xC0 | (b >> 6));
                    s[n++] = (char) (0x80 | (b & 0x3F));
                }
            }
            j = s ? json_stringn(s, n) : json_null();
            free(s);
        }
        return j;
    case MSGPACK_OBJECT_ARRAY:
        j = json_array();
        for (i = 0; i < o->via.array.size; i++) {
            json_array_append_new(j, dq_cli_msgpack_json(&o->via.array.ptr[i]));
        }
        return j;
    case MSGPACK_OBJECT_MAP:
        j = json_object();
        for (i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char                  key[256];

            if (k->type == MSGPACK_OBJECT_STR) {
                snprintf(key, sizeof(key), "%.*s", (int) k->via.str.size,
                         k->via.str.ptr);
            } else {
                json_t *kj = dq_cli_msgpack_json(k);
                char   *ks = json_dumps(kj, JSON_ENCODE_ANY | JSON_COMPACT);
                snprintf(key, sizeof(key), "%s", ks ? ks : "?");
                free(ks);
                json_decref(kj);
            }
            json_object_set_new(j, key,
                                dq_cli_msgpack_json(&o->via.map.ptr[i].val));
        }
        return j;
    default:
        return json_null();
    }
}

void
dq_cli_print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER
                              | JSON_ENCODE_ANY);

    if (s) {
        puts(s);
        free(s);
    }
    json_decref(doc);
}

static void
dq__table_push(dq_cli_table_t *t, char *s)
{
    if (t->n == t->cap) {
        size_t  cap = t->cap ? t->cap * 2 : 64;
        char  **p = realloc(t->cells, cap * sizeof(*p));

        if (p == NULL) {
            free(s);
            return;
        }
        t->cells = p;
        t->cap = cap;
    }
    t->cells[t->n++] = s;
}

int
dq_cli_table_init(dq_cli_table_t *t, int ncols, ...)
{
    va_list ap;
    int     i;

    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    va_start(ap, ncols);
    for (i = 0; i < ncols; i++) {
        dq__table_push(t, strdup(va_arg(ap, const char *)));
    }
    va_end(ap);
    return 0;
}

void
dq_cli_table_cell(dq_cli_table_t *t, const char *fmt, ...)
{
    va_list  ap;
    char    *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
    }
    va_end(ap);
    /* one line per row: control characters would break the columns */
    for (char *p = s; p && *p; p++) {
        if ((unsigned char) *p < 0x20) {
            *p = ' ';
        }
    }
    dq__table_push(t, s ? s : strdup("?"));
}

void
dq_cli_table_print(dq_cli_table_t *t)
{
    size_t w[16] = { 0 }, i;
    int    col;

    for (i = 0; i < t->n; i++) {
        size_t len = t->cells[i] ? strlen(t->cells[i]) : 0;
        col = (int) (i % (size_t) t->ncols);
        if (col < 16 && len > w[col]) {
            w[col] = len;
        }
    }
    for (i = 0; i < t->n; i++) {
        col = (int) (i % (size_t) t->ncols);
        if (col == t->ncols - 1) {
            printf("%s\n", t->cells[i] ? t->cells[i] : "");
        } else {
            printf("%-*s  ", (int) w[col < 16 ? col : 15],
                   t->cells[i] ? t->cells[i] : "");
        }
        free(t->cells[i]);
    }
    free(t->cells);
    memset(t, 0, sizeof(*t));
}
