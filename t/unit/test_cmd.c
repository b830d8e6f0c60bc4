/*
 * Command builders and reply parsers without Redis: argv layout (EVALSHA,
 * build-time SHA1, key order with hash tags), NOSCRIPT fallback rewrite,
 * invalid input, and the parsers over malformed replies built by hand.
 */
#include <stdlib.h>
#include <string.h>

#include "dq_contract.h"
#include "tap.h"

static int
arg_is(const dq_cmd_t *c, int i, const char *want)
{
    return i < c->argc && c->argvlen[i] == strlen(want)
           && memcmp(c->argv[i], want, c->argvlen[i]) == 0;
}

static redisReply *
mk(int type)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = type;
    return r;
}

static redisReply *
mk_int(long long v)
{
    redisReply *r = mk(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *
mk_str(const char *s, int type)
{
    redisReply *r = mk(type);
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *
mk_arr(size_t n)
{
    redisReply *r = mk(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*r->element));
    return r;
}

int
main(void)
{
    dq_cmd_t            c;
    dq_enqueue_item_t   it[2];
    dq_enqueue_result_t res[2];
    dq_lease_item_t     li = { dq_str_lit("id1"), dq_str_lit("c7"),
                               dq_str_lit(""), 1000, 0 };
    dq_claimed_t        tasks[1];
    dq_claim_result_t   cr;
    dq_error_t          err;
    const dq_script_t  *s;
    redisReply         *r;
    int                 st[2], i;

    /* scripts are all there, with a SHA1 */
    for (i = 0; i < DQ_SCRIPT__COUNT; i++) {
        s = dq_script((dq_script_id_t) i);
        ok(s && s->len == strlen(s->source) && strlen(s->sha1) == 40
           && s->source[s->len - 1] == '\n', "script %s embedded",
           s ? s->name : "?");
    }
    ok(dq_script(DQ_SCRIPT__COUNT) == NULL, "no script past the end");

    dq_cmd_init(&c);
    memset(it, 0, sizeof(it));
    it[0].id = dq_str_lit("a");
    it[0].envelope = dq_str_lit("ENV");
    it[0].name = dq_str_c(NULL);
    it[0].eta_ms = -1;
    it[0].countdown_ms = 1500;
    it[1] = it[0];
    it[1].id = dq_str_lit("b");
    it[1].name = dq_str_lit("nm");
    it[1].eta_ms = 1790000000000LL;
    it[1].keyed = 1;
    is_int(dq_cmd_enqueue(&c, dq_str_lit("q"), it, 2, 1000), DQ_OK,
           "enqueue built");
    s = dq_script(DQ_SCRIPT_ENQUEUE);
    ok(arg_is(&c, 0, "EVALSHA") && arg_is(&c, 1, s->sha1) && arg_is(&c, 2, "8"),
       "EVALSHA <sha1> 8");
    ok(arg_is(&c, 3, "dq2:{q}:tasks") && arg_is(&c, 4, "dq2:{q}:eta")
       && arg_is(&c, 5, "dq2:{q}:names") && arg_is(&c, 6, "dq2:{q}:stats")
       && arg_is(&c, 7, "dq2:{q}:wake") && arg_is(&c, 8, "dq:{q}:names")
       && arg_is(&c, 9, "dq2:{q}:cold") && arg_is(&c, 10, "dq2:{q}:due"),
       "keys in the script's order (contract v1's names, the cold index, "
       "the due list)");
    ok(arg_is(&c, 11, "1000") && arg_is(&c, 12, "2") && arg_is(&c, 13, "1"),
       "tombstone, n, m (named or keyed tasks)");
    ok(arg_is(&c, 14, "a") && arg_is(&c, 15, "ENV") && arg_is(&c, 16, "b")
       && arg_is(&c, 17, "ENV"), "id, envelope of each task");
    ok(arg_is(&c, 18, "+1500") && arg_is(&c, 19, "1790000000000"),
       "when of each task: +countdown, absolute ETA");
    ok(arg_is(&c, 20, "2") && arg_is(&c, 21, "nm") && arg_is(&c, 22, "-1")
       && c.argc == 23, "task 2 (named, keyed): index, name, window");
    ok(c.argv[15] == it[0].envelope.ptr, "payloads are not copied");
    dq_cmd_use_eval(&c);
    ok(arg_is(&c, 0, "EVAL") && c.argv[1] == s->source
       && c.argvlen[1] == s->len && arg_is(&c, 2, "8"),
       "use_eval: EVAL <source> 8 ...");
    dq_cmd_use_eval(&c);
    ok(arg_is(&c, 0, "EVAL") && c.argv[1] == s->source, "use_eval twice: same");

    {
        /* keys formatted once (the module's per-queue table): the same
         * command, the keys copied into it */
        dq_enqueue_keys_t k;
        dq_cmd_t          c2;
        int               same;

        is_int(dq_enqueue_keys_init(&k, dq_str_lit("a b")), DQ_EINVAL,
               "keys of a bad queue refused");
        is_int(dq_enqueue_keys_init(&k, dq_str_lit("q")), DQ_OK,
               "keys of q formatted");
        dq_cmd_init(&c2);
        is_int(dq_cmd_enqueue(&c, dq_str_lit("q"), it, 2, 1000), DQ_OK,
               "enqueue built again");
        is_int(dq_cmd_enqueue_keys(&c2, &k, it, 2, 1000), DQ_OK,
               "enqueue built from the keys");
        same = c.argc == c2.argc;
        for (i = 0; same && i < c.argc; i++) {
            same = c.argvlen[i] == c2.argvlen[i]
                   && memcmp(c.argv[i], c2.argv[i], c.argvlen[i]) == 0;
        }
        ok(same, "the same %d arguments", c2.argc);
        {
            char tasks[DQ_KEY_MAX], wake[DQ_KEY_MAX];

            dq_key_format(tasks, sizeof(tasks), dq_str_lit("q"),
                          DQ_KEY_TASKS);
            dq_key_format(wake, sizeof(wake), dq_str_lit("q"), DQ_KEY_WAKE);
            memset(&k, 'x', sizeof(k));
            ok(arg_is(&c2, 3, tasks) && arg_is(&c2, 7, wake),
               "the keys are the command's own copy");
        }
        dq_cmd_free(&c2);
    }
    {
        /* the wire format, byte for byte what hiredis formats (an empty
         * argument, a binary one, 22 arguments) */
        char   *want = NULL, *got;
        int     wlen;
        size_t  size;

        it[0].envelope.ptr = "E\0\r\n";
        it[0].envelope.len = 4;
        is_int(dq_cmd_enqueue(&c, dq_str_lit("q"), it, 2, 1000), DQ_OK,
               "enqueue with a binary envelope");
        wlen = redisFormatCommandArgv(&want, c.argc, c.argv, c.argvlen);
        size = dq_resp_size(c.argc, c.argv, c.argvlen);
        got = malloc(size);
        ok(dq_resp_format(got, c.argc, c.argv, c.argvlen) == size
           && wlen > 0 && (size_t) wlen == size
           && memcmp(want, got, size) == 0,
           "dq_resp_format: the %zu bytes hiredis formats", size);
        free(got);
        redisFreeCommand(want);
        it[0].envelope = dq_str_lit("ENV");
    }
    is_int(dq_cmd_enqueue(&c, dq_str_lit("a b"), it, 1, 0), DQ_EINVAL,
           "bad queue refused");
    is_int(dq_cmd_enqueue(&c, dq_str_lit("q"), it, 0, 0), DQ_EINVAL,
           "empty batch refused");
    is_int(dq_cmd_claim(&c, dq_str_lit("q"), "c1", 1, 0, 0), DQ_EINVAL,
           "lease 0 refused");
    is_int(dq_cmd_claim(&c, dq_str_lit("q"), "c|1", 1, 100, 0), DQ_EINVAL,
           "a claim id outside [A-Za-z0-9_-] refused");
    is_int(dq_cmd_claim(&c, dq_str_lit("q"), "", 1, 100, 0), DQ_EINVAL,
           "an empty claim id refused");
    is_int(dq_cmd_ack(&c, dq_str_lit("q"), &li, 0, 0), DQ_EINVAL,
           "empty ack refused");
    is_int(dq_cmd_retry(&c, dq_str_lit("q"), &li, -5, dq_str_lit("e"), 1),
           DQ_OK, "retry built");
    ok(arg_is(&c, 3 + 7, "id1") && arg_is(&c, 11, "c7")
       && arg_is(&c, 12, "1000") && arg_is(&c, 13, "0")
       && arg_is(&c, 14, "e") && arg_is(&c, 15, "1"),
       "retry: id, claim id, first_run_ms, negative delay -> 0, error, ran");
    li.history = 1;
    is_int(dq_cmd_cycle(&c, dq_str_lit("q"), "c8", 5, 1000, 0, NULL, NULL,
                        &li, 1, 60000), DQ_OK, "cycle built");
    ok(c.argc == 3 + 11 + 12 + 4 && arg_is(&c, 2, "11")
       && arg_is(&c, 3, "dq2:{q}:tasks") && arg_is(&c, 11, "dq2:{q}:names")
       && arg_is(&c, 12, "dq2:{q}:cold") && arg_is(&c, 13, "dq2:{q}:due")
       && arg_is(&c, 14, "5") && arg_is(&c, 20, "c8")
       && arg_is(&c, 24, "60000") && arg_is(&c, 25, "1")
       && arg_is(&c, 26, "+inf") && arg_is(&c, 27, "id1|c7|1000")
       && arg_is(&c, 28, "id1") && arg_is(&c, 29, "1"),
       "cycle: 11 keys, claim arguments, tombstone, n, then \"+inf\", lease "
       "member, id, history digit and name");
    li.name = dq_str_lit("nm");
    is_int(dq_cmd_ack(&c, dq_str_lit("q"), &li, 1, 0), DQ_OK, "ack built");
    ok(c.argc == 3 + 8 + 2 + 4 && arg_is(&c, 13, "+inf")
       && arg_is(&c, 14, "id1|c7|1000") && arg_is(&c, 15, "id1")
       && arg_is(&c, 16, "1nm"), "ack: the name follows the history digit");
    li.name = dq_str_lit("");
    li.history = 0;
    li.first_run_ms = -1;
    is_int(dq_cmd_ack(&c, dq_str_lit("q"), &li, 1, 0), DQ_EINVAL,
           "a negative first_run_ms refused");
    li.first_run_ms = 1000;
    is_int(dq_cmd_requeue(&c, dq_str_lit("q"), dq_str_lit("x")), DQ_OK,
           "requeue built");
    ok(arg_is(&c, 2, "7") && arg_is(&c, c.argc - 1, "x"), "requeue: 7 keys, id");
    dq_cmd_free(&c);

    /* replies */
    is_int(dq_reply_enqueue(NULL, it, 1, res, &err), DQ_EREDIS, "NULL reply");
    r = mk_str("ERR something", REDIS_REPLY_ERROR);
    is_int(dq_reply_enqueue(r, it, 1, res, &err), DQ_EREDIS, "error reply");
    ok(strstr(err.msg, "ERR something") != NULL, "carries the text: %s",
       err.msg);
    ok(!dq_reply_is_noscript(r), "not NOSCRIPT");
    freeReplyObject(r);
    r = mk_str("NOSCRIPT No matching script", REDIS_REPLY_ERROR);
    ok(dq_reply_is_noscript(r), "NOSCRIPT recognised");
    freeReplyObject(r);
    /* the name matched whole, as every error name (dq_reply_error_is) */
    r = mk_str("NOSCRIPTX", REDIS_REPLY_ERROR);
    ok(!dq_reply_is_noscript(r), "NOSCRIPTX is another error");
    freeReplyObject(r);
    r = mk_str("NOSCRIPT", REDIS_REPLY_STATUS);
    ok(!dq_reply_is_noscript(r), "a status reply is not NOSCRIPT");
    freeReplyObject(r);

    r = mk_arr(5);
    r->element[0] = mk_int(1000);
    r->element[1] = mk_int(0);
    r->element[2] = mk_int(1500);
    r->element[3] = mk_int(3);
    r->element[4] = mk_int(0);
    is_int(dq_reply_enqueue(r, it, 2, res, &err), DQ_OK, "enqueue reply");
    ok(res[0].status == DQ_OK && res[0].eta_ms == 1500 && !res[0].existed
       && res[1].status == DQ_ETOMBSTONE, "statuses and eta");
    is_int(dq_reply_enqueue(r, it, 1, res, &err), DQ_EREDIS,
           "wrong task count refused");
    r->element[3]->integer = 9;
    is_int(dq_reply_enqueue(r, it, 2, res, &err), DQ_EREDIS,
           "unknown status refused");
    freeReplyObject(r);

    /* { now_ms }: every task stored now, each ETA from its item */
    r = mk_arr(1);
    r->element[0] = mk_int(5000);
    it[1].keyed = 0;
    it[1].countdown_ms = -1;
    is_int(dq_reply_enqueue(r, it, 2, res, &err), DQ_OK, "compact reply");
    ok(res[0].status == DQ_OK && !res[0].existed && res[0].eta_ms == 6500
       && res[1].status == DQ_OK && !res[1].existed
       && res[1].eta_ms == 1790000000000LL,
       "compact: stored, ETA = now + countdown / the given ETA");
    it[1].eta_ms = -1;
    it[1].countdown_ms = 0;
    is_int(dq_reply_enqueue(r, it, 2, res, &err), DQ_OK, "compact again");
    ok(res[1].eta_ms == 5000, "compact: no ETA, no countdown: now");
    is_int(dq_reply_enqueue(r, NULL, 2, res, &err), DQ_EREDIS,
           "compact reply without the items refused");
    freeReplyObject(r);

    r = mk_arr(8);
    r->element[0] = mk_int(1000);
    r->element[1] = mk_int(-1);
    r->element[2] = mk_str("cid", REDIS_REPLY_STRING);
    r->element[3] = mk_arr(0);
    r->element[4] = mk_str("id9", REDIS_REPLY_STRING);
    r->element[5] = mk(REDIS_REPLY_NIL);
    r->element[6] = mk_int(5);
    r->element[7] = mk_str("6:7:8:9", REDIS_REPLY_STRING);
    cr.tasks = tasks;
    is_int(dq_reply_claim(r, &cr, 1, &err), DQ_OK, "claim reply");
    ok(cr.n == 1 && cr.now_ms == 1000 && cr.next_ms == -1
       && dq_str_eq(tasks[0].id, "id9") && tasks[0].envelope.ptr == NULL
       && dq_str_eq(tasks[0].claim, "cid")
       && tasks[0].eta_ms == 5 && tasks[0].retries == 6
       && tasks[0].first_run_ms == 7 && tasks[0].runs == 8
       && tasks[0].failed_ms == 9, "every field, nil envelope");
    {
        static const char *bad[] = { "6:7:8", "6:7:8:9:", ":7:8:9", "6:7:8:x",
                                     "6:7:8:12345678901234567", "-6:7:8:9",
                                     "" };

        for (i = 0; i < (int) (sizeof(bad) / sizeof(bad[0])); i++) {
            freeReplyObject(r->element[7]);
            r->element[7] = mk_str(bad[i], REDIS_REPLY_STRING);
            is_int(dq_reply_claim(r, &cr, 1, &err), DQ_EREDIS,
                   "state \"%s\" refused", bad[i]);
        }
        freeReplyObject(r->element[7]);
        r->element[7] = mk_int(1);
        is_int(dq_reply_claim(r, &cr, 1, &err), DQ_EREDIS,
               "state 1 (not 0, not a string) refused");
        freeReplyObject(r->element[7]);
        r->element[7] = mk_int(0);
        is_int(dq_reply_claim(r, &cr, 1, &err), DQ_OK, "state 0");
        ok(tasks[0].retries == 0 && tasks[0].first_run_ms == 1000
           && tasks[0].runs == 0 && tasks[0].failed_ms == 0,
           "state 0: no history, first run the reply's now");
    }
    is_int(dq_reply_claim(r, &cr, 0, &err), DQ_ERR,
           "more tasks than room: error, not overflow");
    r->elements = 7;
    is_int(dq_reply_claim(r, &cr, 1, &err), DQ_EREDIS, "ragged reply refused");
    r->elements = 8;
    r->element[4]->type = REDIS_REPLY_INTEGER;
    is_int(dq_reply_claim(r, &cr, 1, &err), DQ_EREDIS, "integer id refused");
    r->element[4]->type = REDIS_REPLY_STRING;
    r->element[2]->type = REDIS_REPLY_INTEGER;
    is_int(dq_reply_claim(r, &cr, 1, &err), DQ_EREDIS,
           "integer claim id refused");
    r->element[2]->type = REDIS_REPLY_STRING;
    freeReplyObject(r->element[6]);
    r->element[6] = mk_str("1764480000123", REDIS_REPLY_STRING);
    is_int(dq_reply_claim(r, &cr, 1, &err), DQ_OK, "eta as the score's text");
    is_int(tasks[0].eta_ms, 1764480000123LL, "eta read from it");
    freeReplyObject(r->element[6]);
    r->element[6] = mk_str("12x", REDIS_REPLY_STRING);
    is_int(dq_reply_claim(r, &cr, 1, &err), DQ_EREDIS, "a non-number eta refused");
    freeReplyObject(r->element[6]);
    r->element[6] = mk_int(5);
    is_int(dq_reply_cycle(r, 1, st, &cr, 1, &err), DQ_EREDIS,
           "cycle: 0 ack statuses for 1 ack refused");
    freeReplyObject(r->element[3]);
    r->element[3] = mk_arr(2);
    r->element[3]->element[0] = mk_int(1);
    r->element[3]->element[1] = mk_int(0);
    st[0] = st[1] = 7;
    is_int(dq_reply_cycle(r, 2, st, &cr, 1, &err), DQ_OK, "cycle reply");
    ok(st[0] == 1 && st[1] == 0 && cr.n == 1 && dq_str_eq(tasks[0].id, "id9"),
       "cycle: ack statuses, then the claimed task");
    is_int(dq_reply_claim(r, &cr, 1, &err), DQ_EREDIS,
           "a cycle reply with acks is not a plain claim reply");
    freeReplyObject(r);

    r = mk_int(1);
    is_int(dq_reply_statuses(r, 1, st, &err), DQ_OK, "integer status");
    is_int(st[0], 1, "1");
    is_int(dq_reply_statuses(r, 2, st, &err), DQ_EREDIS,
           "integer for 2 statuses refused");
    freeReplyObject(r);
    r = mk_arr(2);
    r->element[0] = mk_int(0);
    r->element[1] = mk_int(1);
    is_int(dq_reply_statuses(r, 2, st, &err), DQ_OK, "array statuses");
    ok(st[0] == 0 && st[1] == 1, "0 and 1");
    is_int(dq_reply_statuses(r, 3, st, &err), DQ_EREDIS, "count mismatch");
    freeReplyObject(r);
    return done_testing();
}
