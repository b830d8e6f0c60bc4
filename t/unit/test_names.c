/*
 * Names, ids, keys, limits and error strings of the contract.
 */
#include <stdlib.h>
#include <string.h>

#include "dq_contract.h"
#include "tap.h"

static int
cmp_id(const void *a, const void *b)
{
    return strcmp((const char *) a, (const char *) b);
}

static char *
repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* every byte alone and inside a name: the table behind the validators
 * (lib/dq_util.c) holds exactly [A-Za-z0-9_-], plus ".:" for functions */
static void
every_byte(void)
{
    char     name[3];
    dq_str_t one = { name + 1, 1 }, mid = { name, 3 };
    int      c, base, good = 1;

    name[0] = 'a';
    name[2] = 'z';
    for (c = 0; c < 256; c++) {
        name[1] = (char) c;
        base = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
               || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (dq_queue_name_valid(one) != base
            || dq_task_name_valid(mid) != base
            || dq_func_name_valid(one) != (base || c == '.' || c == ':')
            || dq_func_name_valid(mid) != (base || c == '.' || c == ':'))
        {
            diag("byte 0x%02x", c);
            good = 0;
        }
    }
    ok(good, "every byte: queue, task and function name characters");
}

int
main(void)
{
    every_byte();
    char           key[DQ_KEY_MAX], small[8];
    static char    ids[10000][DQ_ID_SIZE];
    dq_limits_t    lim;
    dq_error_t     err;
    char          *s;
    size_t         i, j, dups = 0, bad = 0;
    int            seen[64] = { 0 }, nseen = 0;

    /* queue names: App Engine's [A-Za-z0-9_-]{1,100} */
    ok(dq_queue_name_valid(dq_str_lit("default")), "queue default");
    ok(dq_queue_name_valid(dq_str_lit("a-Z_09")), "queue a-Z_09");
    ok(!dq_queue_name_valid(dq_str_lit("")), "empty queue refused");
    ok(!dq_queue_name_valid(dq_str_c(NULL)), "NULL queue refused");
    ok(!dq_queue_name_valid(dq_str_lit("a b")), "space refused");
    ok(!dq_queue_name_valid(dq_str_lit("a.b")), "dot refused in queue");
    ok(!dq_queue_name_valid(dq_str_lit("a}b")), "brace refused (hash tag)");
    ok(!dq_queue_name_valid(dq_str_lit("\xc3\xa9")), "non-ASCII refused");
    ok(!dq_queue_name_valid((dq_str_t) { "a\0b", 3 }), "NUL refused");
    s = repeat('q', 100);
    ok(dq_queue_name_valid(dq_str_c(s)), "queue of 100 chars");
    free(s);
    s = repeat('q', 101);
    ok(!dq_queue_name_valid(dq_str_c(s)), "queue of 101 chars refused");
    free(s);

    /* task names: 500 */
    s = repeat('t', 500);
    ok(dq_task_name_valid(dq_str_c(s)), "task name of 500 chars");
    free(s);
    s = repeat('t', 501);
    ok(!dq_task_name_valid(dq_str_c(s)), "task name of 501 refused");
    free(s);
    ok(!dq_task_name_valid(dq_str_lit("a:b")), "colon refused in task name");

    /* function names allow . and : */
    ok(dq_func_name_valid(dq_str_lit("counter.add")), "func counter.add");
    ok(dq_func_name_valid(dq_str_lit("mod:fn-1_x")), "func mod:fn-1_x");
    ok(!dq_func_name_valid(dq_str_lit("a/b")), "slash refused in func");
    ok(!dq_func_name_valid(dq_str_lit("")), "empty func refused");
    s = repeat('f', 201);
    ok(!dq_func_name_valid(dq_str_c(s)), "func of 201 refused");
    free(s);

    /* URLs */
    ok(dq_url_valid(dq_str_lit("/_ah/queue/deferred")), "default url");
    ok(dq_url_valid(dq_str_lit("/a?b=c&d=%20")), "url with query");
    ok(!dq_url_valid(dq_str_lit("http://x/")), "absolute URL refused");
    ok(!dq_url_valid(dq_str_lit("/a b")), "space refused in url");
    ok(!dq_url_valid(dq_str_lit("/a\r\nX: y")), "CRLF refused in url");
    ok(!dq_url_valid(dq_str_lit("")), "empty url refused");
    ok(!dq_url_valid(dq_str_lit("//_ngx_deferred/enqueue")), "// refused");
    ok(!dq_url_valid(dq_str_lit("/a//b")), "// inside refused");
    ok(!dq_url_valid(dq_str_lit("/%5Fngx_deferred/enqueue")),
       "%% in the path refused");
    ok(!dq_url_valid(dq_str_lit("/_ngx_deferred/./enqueue")), "/./ refused");
    ok(!dq_url_valid(dq_str_lit("/a/../_ngx_deferred/enqueue")),
       "/../ refused");
    ok(!dq_url_valid(dq_str_lit("/a/.")), "trailing /. refused");
    ok(!dq_url_valid(dq_str_lit("/a/..?x=1")), "trailing /.. refused");
    ok(!dq_url_valid(dq_str_lit("/.")), "/. refused");
    ok(dq_url_valid(dq_str_lit("/a/.b/..c/x.y")), "dots inside names kept");
    ok(dq_url_valid(dq_str_lit("/")), "/ kept");
    ok(dq_url_valid(dq_str_lit("/a?next=//x/../y")),
       "the query is not a path");
    s = repeat('/', DQ_URL_MAX + 1);
    ok(!dq_url_valid(dq_str_c(s)), "url over DQ_URL_MAX refused");
    free(s);

    /* ids: 22 chars of base64url, unique */
    for (i = 0; i < 10000; i++) {
        dq_id_new(ids[i]);
        if (strlen(ids[i]) != DQ_ID_LEN
            || strspn(ids[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                              "qrstuvwxyz0123456789-_") != DQ_ID_LEN)
        {
            bad++;
        }
        for (j = 0; j < DQ_ID_LEN - 1; j++) {
            int c = (unsigned char) ids[i][j] % 64;
            if (!seen[c]) {
                seen[c] = 1;
                nseen++;
            }
        }
    }
    is_int(bad, 0, "10000 ids: 22 chars of [A-Za-z0-9_-]");
    qsort(ids, 10000, DQ_ID_SIZE, cmp_id);
    for (i = 1; i < 10000; i++) {
        dups += strcmp(ids[i - 1], ids[i]) == 0;
    }
    is_int(dups, 0, "10000 ids all distinct");
    ok(nseen > 50, "ids use the whole alphabet (%d residues)", nseen);
    ok(dq_task_name_valid(dq_str_c(ids[0])), "an id is a valid task name");

    /* keys */
    is_int(dq_key_format(key, sizeof(key), dq_str_lit("q1"), DQ_KEY_ETA), 12,
           "key length");
    is_str(key, "dq2:{q1}:eta", "eta key with hash tag");
    dq_key_format(key, sizeof(key), dq_str_lit("default"), DQ_KEY_TASKS);
    is_str(key, "dq2:{default}:tasks", "tasks key");
    dq_key_format(key, sizeof(key), dq_str_lit("q"), DQ_KEY_BUCKET);
    is_str(key, "dq2:{q}:bucket", "last kind");
    is_int(dq_key_format(small, sizeof(small), dq_str_lit("q1"), DQ_KEY_ETA),
           0, "too small a buffer: 0");
    is_int(dq_key_format(key, sizeof(key), dq_str_lit("a b"), DQ_KEY_ETA), 0,
           "invalid queue: 0");
    is_int(dq_key_format(key, sizeof(key), dq_str_lit("q"), DQ_KEY__COUNT),
           0, "invalid kind: 0");
    is_int(dq_key_format(key, sizeof(key), dq_str_lit("q"), DQ_KEY_V1_STATE),
           0, "a v1-only kind has no v2 name");
    dq_key_format_v1(key, sizeof(key), dq_str_lit("q"), DQ_KEY_V1_STATE);
    is_str(key, "dq:{q}:state", "v1 state key (the migration's)");
    dq_key_format_v1(key, sizeof(key), dq_str_lit("q"), DQ_KEY_LEASE);
    is_str(key, "dq:{q}:leases", "v1 lease set");
    s = repeat('q', 100);
    ok(dq_key_format(key, sizeof(key), dq_str_c(s), DQ_KEY_ERRORS) > 0,
       "DQ_KEY_MAX fits the longest queue and kind");
    free(s);

    /* limits, errors, strings */
    dq_limits_default(&lim);
    is_int(lim.max_envelope, 1024 * 1024, "default envelope limit 1 MiB");
    is_int(lim.max_depth, 32, "default depth 32");
    is_int(lim.max_batch, 1000, "default batch 1000");
    is_int(dq_error_set(&err, DQ_EINVAL, "tasks[1].queue", "bad %d", 7),
           DQ_EINVAL, "dq_error_set returns the code");
    is_str(err.field, "tasks[1].queue", "field kept");
    is_str(err.msg, "bad 7", "message formatted");
    dq_error_set(&err, DQ_ETOMBSTONE, NULL, NULL);
    is_str(err.msg, "task name tombstoned", "default message");
    is_int(dq_error_set(NULL, DQ_ERR, NULL, "x"), DQ_ERR, "NULL err is fine");
    is_str(dq_strerror(DQ_EDUPLICATE), "duplicate task name", "strerror");
    is_str(dq_strerror(12345), "unknown error", "strerror of junk");
    ok(dq_str_eq(dq_str_lit("abc"), "abc") && !dq_str_eq(dq_str_lit("ab"),
                                                         "abc"),
       "dq_str_eq");
    ok(dq_now_ms() > 1700000000000LL, "dq_now_ms is epoch ms");
    return done_testing();
}
