/*
 * The C client end to end against a real redis-server: dq_defer with every
 * option (checked by decoding the stored envelope), names (duplicate,
 * tombstone), bad input naming its field, the size limit, dq_defer_many
 * (pipelined, one script call per queue per 1000 tasks), stats, requeue,
 * last error, dq:queues (one SADD per queue per connection), NOSCRIPT
 * recovery, reconnect, timeout, unix socket,
 * SELECT/AUTH, Redis down.
 * Usage: test_client PORT [UNIX_SOCKET]
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <deferred/client.h>

#include "dq_contract.h"
#include "redis_helper.h"

static int         port;
static const char *sock;     /* unix socket path (argv[2]), or NULL */

/* Decode the stored envelope of a task. */
static int
stored(const char *queue, const char *id, msgpack_zone *zone,
       dq_envelope_t *env, char *buf, size_t size)
{
    char        key[DQ_KEY_MAX];
    redisReply *r;
    dq_error_t  err;
    size_t      len = 0;

    dq_key_format(key, sizeof(key), dq_str_c(queue), DQ_KEY_TASKS);
    r = redisCommand(R, "HGET %s %s", key, id);
    if (r && r->type == REDIS_REPLY_STRING && r->len <= size) {
        memcpy(buf, r->str, r->len);
        len = r->len;
    }
    freeReplyObject(r);
    if (len == 0) {
        return DQ_ENOTFOUND;
    }
    return dq_envelope_decode(buf, len, dq_str_c(id), dq_str_c(queue), NULL,
                              zone, env, &err);
}

/* Play the worker: claim everything due in queue, then ack or bury. */
static int
work(const char *queue, int bury, const char *error)
{
    dq_cmd_t          c;
    dq_claimed_t      t[16];
    dq_claim_result_t res;
    dq_lease_item_t   it;
    dq_error_t        err;
    redisReply       *r;
    size_t            i;
    int               st, done = 0;
    char              cid[DQ_ID_SIZE];

    dq_cmd_init(&c);
    res.tasks = t;
    dq_claim_id_new(cid);
    dq_cmd_claim(&c, dq_str_c(queue), cid, 16, 5000, 0);
    r = run(&c);
    if (dq_reply_claim(r, &res, 16, &err) == DQ_OK) {
        for (i = 0; i < res.n; i++) {
            it.id = t[i].id;
            it.claim = t[i].claim;
            it.name = dq_str_lit("");
            it.first_run_ms = t[i].first_run_ms;
            it.history = dq_claimed_history(&t[i]);
            {
                /* the name comes from the envelope */
                msgpack_zone  z;
                dq_envelope_t env;
                redisReply   *r2;
                msgpack_zone_init(&z, 1024);
                if (dq_envelope_decode(t[i].envelope.ptr, t[i].envelope.len,
                                       t[i].id, dq_str_c(queue), NULL, &z,
                                       &env, &err) == DQ_OK)
                {
                    it.name = env.name;
                }
                if (bury) {
                    dq_cmd_bury(&c, dq_str_c(queue), &it, dq_str_c(error), 0,
                                0, 200, 1);
                } else {
                    dq_cmd_ack(&c, dq_str_c(queue), &it, 1, 200);
                }
                r2 = run(&c);
                if (dq_reply_statuses(r2, 1, &st, &err) == DQ_OK && st) {
                    done++;
                }
                freeReplyObject(r2);
                msgpack_zone_destroy(&z);
            }
        }
    }
    freeReplyObject(r);
    dq_cmd_free(&c);
    return done;
}

static void
test_defer(dq_client_t *c)
{
    dq_args_t      *a = dq_args_new(), *kw = dq_kwargs_new();
    dq_defer_opts_t o = DQ_DEFER_OPTS_INIT;
    dq_header_t     h[2] = { { "X-Trace", "abc" }, { "X-Other", "" } };
    msgpack_zone    zone;
    dq_envelope_t   env;
    static char     buf[1 << 20];
    char            id[DQ_ID_SIZE], id2[DQ_ID_SIZE];
    int64_t         eta = 0, before;
    int             rc;

    msgpack_zone_init(&zone, 4096);
    dq_args_str(a, "key", 3);
    dq_args_int(a, 10);
    dq_args_double(a, 0.5);
    dq_args_bool(a, 1);
    dq_args_nil(a);
    dq_args_bin(a, "\0\1", 2);
    dq_args_cstr(a, "c");
    before = dq_now_ms();
    rc = dq_defer(c, "counter.add", a, NULL, id, &eta);
    is_int(rc, DQ_OK, "dq_defer with defaults (%s)", dq_client_errstr(c));
    is_int(strlen(id), DQ_ID_LEN, "task id returned");
    ok(eta >= before - 1000 && eta <= dq_now_ms() + 1000,
       "eta = now (%lld)", (long long) (eta - before));
    is_int(stored("default", id, &zone, &env, buf, sizeof(buf)), DQ_OK,
           "stored envelope decodes");
    ok(dq_str_eq(env.func, "counter.add") && dq_str_eq(env.queue, "default")
       && dq_str_eq(env.url, DQ_DEFAULT_URL) && env.kwargs == NULL,
       "func, default queue and URL");
    ok(env.args->via.array.size == 7
       && env.args->via.array.ptr[0].type == MSGPACK_OBJECT_STR
       && env.args->via.array.ptr[1].via.u64 == 10
       && env.args->via.array.ptr[2].via.f64 == 0.5
       && env.args->via.array.ptr[3].via.boolean
       && env.args->via.array.ptr[4].type == MSGPACK_OBJECT_NIL
       && env.args->via.array.ptr[5].type == MSGPACK_OBJECT_BIN
       && env.args->via.array.ptr[6].type == MSGPACK_OBJECT_STR,
       "positional args of every type");
    ok(env.created_ms >= before && env.created_ms <= dq_now_ms(), "created");

    dq_args_key(kw, "who");
    dq_args_cstr(kw, "me");
    o.queue = "q-opts";
    o.url = "/custom/path";
    o.countdown_ms = 15000;   /* hot: inside the cold horizon */
    o.headers = h;
    o.nheaders = 2;
    o.retry.retry_limit = 3;
    o.retry.min_backoff_ms = 250;
    o.retry.max_doublings = 2;
    o.kwargs = kw;
    before = dq_now_ms();
    rc = dq_defer(c, "mod:fn", NULL, &o, id, &eta);
    is_int(rc, DQ_OK, "dq_defer with every option (%s)", dq_client_errstr(c));
    ok(eta - before >= 14000 && eta - before <= 16000,
       "countdown 15 s -> eta now + 15 s (%lld)", (long long) (eta - before));
    stored("q-opts", id, &zone, &env, buf, sizeof(buf));
    ok(dq_str_eq(env.queue, "q-opts") && dq_str_eq(env.url, "/custom/path")
       && env.args->via.array.size == 0
       && dq_map_get(env.kwargs, "who") != NULL
       && dq_map_get(env.headers, "X-Trace") != NULL
       && env.headers->via.map.size == 2,
       "queue, url, kwargs, headers stored");
    ok(env.retry.retry_limit == 3 && env.retry.min_backoff_ms == 250
       && env.retry.max_doublings == 2 && env.retry.max_backoff_ms == -1,
       "retry options stored, unset ones -1");

    o = (dq_defer_opts_t) DQ_DEFER_OPTS_INIT;
    o.eta_ms = 1790000000123LL;
    rc = dq_defer(c, "f", NULL, &o, id2, &eta);
    ok(rc == DQ_OK && eta == 1790000000123LL, "absolute eta kept to the ms");
    stored("default", id2, &zone, &env, buf, sizeof(buf));
    is_int(env.eta_ms, 1790000000123LL, "requested eta in the envelope");

    dq_args_free(a);
    dq_args_free(kw);
    msgpack_zone_destroy(&zone);
}

static void
bad(dq_client_t *c, const char *func, const dq_args_t *a,
    const dq_defer_opts_t *o, int code, const char *field)
{
    int rc = dq_defer(c, func, a, o, NULL, NULL);
    ok(rc == code && strstr(dq_client_errstr(c), field) != NULL,
       "refused naming '%s': %s", field, dq_client_errstr(c));
}

static void
test_bad_input(dq_client_t *c)
{
    dq_defer_opts_t o = DQ_DEFER_OPTS_INIT;
    dq_args_t      *a = dq_args_new(), *kw = dq_kwargs_new();
    dq_header_t     h = { "Bad Header", "x" };
    static char     big[3000];
    long long       before = rint_("DBSIZE");

    bad(c, "a b", NULL, NULL, DQ_EINVAL, "func");
    bad(c, NULL, NULL, NULL, DQ_EINVAL, "func");
    o.queue = "x y";
    bad(c, "f", NULL, &o, DQ_EINVAL, "queue");
    o = (dq_defer_opts_t) DQ_DEFER_OPTS_INIT;
    o.name = "a.b";
    bad(c, "f", NULL, &o, DQ_EINVAL, "name");
    o = (dq_defer_opts_t) DQ_DEFER_OPTS_INIT;
    o.url = "relative";
    bad(c, "f", NULL, &o, DQ_EINVAL, "url");
    o = (dq_defer_opts_t) DQ_DEFER_OPTS_INIT;
    o.countdown_ms = 1000;
    o.eta_ms = 5000;
    bad(c, "f", NULL, &o, DQ_EINVAL, "eta");
    o = (dq_defer_opts_t) DQ_DEFER_OPTS_INIT;
    o.headers = &h;
    o.nheaders = 1;
    bad(c, "f", NULL, &o, DQ_EINVAL, "headers");
    o = (dq_defer_opts_t) DQ_DEFER_OPTS_INIT;
    o.retry.max_doublings = 100;
    bad(c, "f", NULL, &o, DQ_EINVAL, "retry_options.max_doublings");
    o = (dq_defer_opts_t) DQ_DEFER_OPTS_INIT;
    o.retry.min_backoff_ms = 5000;
    o.retry.max_backoff_ms = 10;
    bad(c, "f", NULL, &o, DQ_EINVAL, "retry_options");

    is_int(dq_args_key(a, "k"), DQ_EINVAL, "dq_args_key on an array refused");
    bad(c, "f", a, NULL, DQ_EINVAL, "args");
    dq_args_clear(a);
    is_int(dq_args_int(kw, 1), DQ_EINVAL, "a map value without key refused");
    o = (dq_defer_opts_t) DQ_DEFER_OPTS_INIT;
    o.kwargs = kw;
    bad(c, "f", NULL, &o, DQ_EINVAL, "kwargs");
    dq_args_clear(kw);
    dq_args_key(kw, "k");
    bad(c, "f", NULL, &o, DQ_EINVAL, "kwargs");
    o.kwargs = a;
    bad(c, "f", NULL, &o, DQ_EINVAL, "kwargs");
    is_int(rint_("DBSIZE"), before, "nothing was written for bad input");

    memset(big, 'x', sizeof(big));
    dq_args_str(a, big, sizeof(big));
    {
        dq_client_opts_t co = { NULL, 0, 0, 0, 1000 };
        char             addr[32];
        dq_client_t     *small;

        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        small = dq_client_new(addr, &co);
        is_int(dq_defer(small, "f", a, NULL, NULL, NULL), DQ_ETOOBIG,
               "envelope over max_envelope refused: %s",
               dq_client_errstr(small));
        dq_client_free(small);
    }
    /* more elements than a worker's decoder takes (DQ_DEFAULT_MAX_ITEMS):
     * refused before anything is sent */
    {
        int i;

        dq_args_clear(a);
        for (i = 0; i < DQ_DEFAULT_MAX_ITEMS + 1; i++) {
            dq_args_int(a, 0);
        }
        is_int(dq_defer(c, "f", a, NULL, NULL, NULL), DQ_ETOOBIG,
               "a task of %d args refused: %s", DQ_DEFAULT_MAX_ITEMS + 1,
               dq_client_errstr(c));
    }
    is_int(rint_("DBSIZE"), before, "nothing was written for big tasks");
    dq_args_free(a);
    dq_args_free(kw);
}

static void
test_names(dq_client_t *c)
{
    dq_defer_opts_t o = DQ_DEFER_OPTS_INIT;

    o.queue = "names";
    o.name = "only-once";
    is_int(dq_defer(c, "f", NULL, &o, NULL, NULL), DQ_OK, "named task");
    is_int(dq_defer(c, "f", NULL, &o, NULL, NULL), DQ_EDUPLICATE,
           "same name while waiting: DQ_EDUPLICATE");
    ok(strstr(dq_client_errstr(c), "only-once") != NULL, "errstr: %s",
       dq_client_errstr(c));
    o.name = "another";
    is_int(dq_defer(c, "f", NULL, &o, NULL, NULL), DQ_OK, "other name passes");
    is_int(work("names", 0, NULL), 2, "both run (acked)");
    o.name = "only-once";
    is_int(dq_defer(c, "f", NULL, &o, NULL, NULL), DQ_ETOMBSTONE,
           "after it ran: DQ_ETOMBSTONE");
    ok(strstr(dq_client_errstr(c), "tombstoned") != NULL, "errstr: %s",
       dq_client_errstr(c));
    sleep_ms(250);
    is_int(dq_defer(c, "f", NULL, &o, NULL, NULL), DQ_OK,
           "after the (200 ms) window: accepted");
}

static void
test_many(dq_client_t *c)
{
    static dq_defer_req_t  reqs[2500];
    static int             st[2500];
    static char            ids[2500][DQ_ID_SIZE];
    dq_defer_opts_t        oa = DQ_DEFER_OPTS_INIT, ob = DQ_DEFER_OPTS_INIT;
    dq_defer_opts_t        on = DQ_DEFER_OPTS_INIT;
    dq_queue_stats_t       s;
    char                  *p;
    size_t                 i, nok = 0;
    long long              calls;
    int                    rc;

    oa.queue = "many-a";
    ob.queue = "many-b";
    on.queue = "many-a";
    on.name = "dup";
    for (i = 0; i < 2500; i++) {
        reqs[i].func = "f";
        reqs[i].args = NULL;
        reqs[i].opts = i % 5 < 3 ? &oa : &ob;    /* 1500 a, 1000 b */
    }
    reqs[10].opts = &on;
    reqs[20].opts = &on;                        /* duplicate in the batch */
    reqs[30].func = "bad func";
    freeReplyObject(redisCommand(R, "CONFIG RESETSTAT"));
    rc = dq_defer_many(c, reqs, 2500, st, ids);
    is_int(rc, DQ_OK, "dq_defer_many made its calls");
    for (i = 0; i < 2500; i++) {
        nok += st[i] == DQ_OK;
    }
    is_int(nok, 2498, "2498 stored");
    is_int(st[20], DQ_EDUPLICATE, "the duplicate name reported");
    is_int(st[30], DQ_EINVAL, "the invalid one reported");
    ok(strstr(dq_client_errstr(c), "\"dup\"") != NULL,
       "errstr tells about the first refused task: %s", dq_client_errstr(c));
    ok(ids[30][0] == '\0', "no id for the invalid one");
    ok(strlen(ids[0]) == DQ_ID_LEN && strcmp(ids[0], ids[1]) != 0, "ids");
    {
        redisReply *r = redisCommand(R, "INFO commandstats");
        p = r && r->str ? strstr(r->str, "cmdstat_evalsha:calls=") : NULL;
        calls = p ? atoll(p + 22) : -1;
        freeReplyObject(r);
    }
    is_int(calls, 3, "3 script calls: 2 for 1500 tasks of a, 1 for b");
    dq_queue_stats(c, "many-a", &s);
    is_int(s.waiting, 1498, "queue a holds 1498 (1500 less a duplicate and an invalid one)");
    dq_queue_stats(c, "many-b", &s);
    is_int(s.waiting, 1000, "queue b holds 1000");
    is_int(rint_("SISMEMBER dq:queues many-b"), 1, "queue listed in dq:queues");
    reqs[5].func = "bad func";
    dq_defer_many(c, reqs, 25, st, ids);
    ok(st[5] == DQ_EINVAL && st[20] == DQ_EDUPLICATE
       && strstr(dq_client_errstr(c), "tasks[5].func") != NULL,
       "an invalid task first: errstr names its field: %s",
       dq_client_errstr(c));
}

static long long
sadd_calls(void)
{
    redisReply *r = redisCommand(R, "INFO commandstats");
    char       *p = r && r->str ? strstr(r->str, "cmdstat_sadd:calls=") : NULL;
    long long   n = p ? atoll(p + 19) : 0;

    freeReplyObject(r);
    return n;
}

/* dq:queues gets one SADD per queue per connection, again after a
 * reconnect. */
static void
test_queue_set(dq_client_t *c)
{
    static dq_defer_req_t reqs[3];
    dq_defer_opts_t       oa = DQ_DEFER_OPTS_INIT, ob = DQ_DEFER_OPTS_INIT;
    dq_defer_opts_t       oc = DQ_DEFER_OPTS_INIT;
    int                   st[3], i;

    oa.queue = "qs-a";
    ob.queue = "qs-b";
    oc.queue = "qs-c";
    freeReplyObject(redisCommand(R, "CONFIG RESETSTAT"));
    for (i = 0; i < 3; i++) {
        dq_defer(c, "f", NULL, &oa, NULL, NULL);
    }
    is_int(sadd_calls(), 1, "3 tasks on a queue: one SADD dq:queues");
    is_int(rint_("SISMEMBER dq:queues qs-a"), 1, "queue listed");
    dq_defer(c, "f", NULL, &ob, NULL, NULL);
    is_int(sadd_calls(), 2, "a new queue: its SADD");
    for (i = 0; i < 3; i++) {
        reqs[i].func = "f";
        reqs[i].args = NULL;
    }
    reqs[0].opts = &oa;
    reqs[1].opts = &oc;
    reqs[2].opts = &ob;
    is_int(dq_defer_many(c, reqs, 3, st, NULL), DQ_OK, "dq_defer_many");
    ok(st[0] == DQ_OK && st[1] == DQ_OK && st[2] == DQ_OK, "all stored");
    is_int(sadd_calls(), 3, "dq_defer_many: SADD for the new queue only");
    is_int(rint_("SISMEMBER dq:queues qs-c"), 1, "the new queue listed");

    freeReplyObject(redisCommand(R, "CLIENT KILL TYPE normal SKIPME yes"));
    ok(dq_defer(c, "f", NULL, &oa, NULL, NULL) == DQ_EREDIS,
       "connection killed");
    rint_("DEL dq:queues");
    is_int(dq_defer(c, "f", NULL, &oa, NULL, NULL), DQ_OK, "reconnected");
    is_int(rint_("SISMEMBER dq:queues qs-a"), 1,
           "a new connection adds its queue again");
}

static void
test_admin(dq_client_t *c)
{
    dq_defer_opts_t  o = DQ_DEFER_OPTS_INIT;
    dq_queue_stats_t s;
    char             id[DQ_ID_SIZE], buf[64];

    o.queue = "adm";
    o.name = "dead-one";
    dq_defer(c, "f", NULL, &o, id, NULL);
    is_int(dq_requeue_dead(c, "adm", id), DQ_ENOTFOUND,
           "requeue of a waiting task: DQ_ENOTFOUND");
    is_int(dq_task_last_error(c, "adm", id, buf, sizeof(buf)), DQ_ENOTFOUND,
           "no error yet");
    is_int(work("adm", 1, "it broke"), 1, "the task dies");
    is_int(dq_queue_stats(c, "adm", &s), DQ_OK, "stats");
    ok(s.waiting == 0 && s.running == 0 && s.dead == 1 && s.enqueued == 1
       && s.dead_total == 1 && s.done == 0, "stats: 1 dead");
    is_int(dq_task_last_error(c, "adm", id, buf, sizeof(buf)), DQ_OK,
           "last error");
    is_str(buf, "it broke", "the reason");
    is_int(dq_defer(c, "f", NULL, &o, NULL, NULL), DQ_ETOMBSTONE,
           "dead task's name tombstoned");
    is_int(dq_requeue_dead(c, "adm", id), DQ_OK, "requeue the dead task");
    dq_queue_stats(c, "adm", &s);
    ok(s.waiting == 1 && s.dead == 0, "waiting again");
    is_int(dq_defer(c, "f", NULL, &o, NULL, NULL), DQ_EDUPLICATE,
           "its name is live again");
    is_int(work("adm", 0, NULL), 1, "it runs");
    dq_queue_stats(c, "adm", &s);
    is_int(s.done, 1, "done 1");
    is_int(dq_queue_stats(c, "a b", &s), DQ_EINVAL, "bad queue name refused");
    is_int(dq_requeue_dead(c, "adm", ""), DQ_EINVAL, "empty id refused");

    /* bulk requeue: by error text, then all */
    {
        dq_defer_opts_t o2 = DQ_DEFER_OPTS_INIT;
        int64_t         n = -1, k = -1;
        int             i;

        o2.queue = "adm2";
        for (i = 0; i < 2; i++) {
            dq_defer(c, "f", NULL, &o2, NULL, NULL);
        }
        is_int(work("adm2", 1, "boom: disk full"), 2, "two die of one error");
        for (i = 0; i < 3; i++) {
            dq_defer(c, "f", NULL, &o2, NULL, NULL);
        }
        is_int(work("adm2", 1, "boom: timeout"), 3, "three of another");
        is_int(dq_requeue_dead_all(c, "adm2", "disk", &n, &k), DQ_OK,
               "requeue the dead whose error contains \"disk\"");
        ok(n == 2 && k == 0, "2 requeued (%lld), 0 left for names",
           (long long) n);
        dq_queue_stats(c, "adm2", &s);
        ok(s.waiting == 2 && s.dead == 3, "2 waiting, 3 still dead");
        is_int(dq_requeue_dead_all(c, "adm2", NULL, &n, NULL), DQ_OK,
               "requeue all");
        is_int(n, 3, "the other 3");
        dq_queue_stats(c, "adm2", &s);
        ok(s.waiting == 5 && s.dead == 0, "all 5 waiting");
    }
}

static void
test_connection(dq_client_t *c)
{
    dq_client_opts_t co = { NULL, 3, 0, 0, 0 };
    dq_client_t     *c2;
    char             addr[32];
    int              rc;

    freeReplyObject(redisCommand(R, "SCRIPT FLUSH"));
    is_int(dq_defer(c, "f", NULL, NULL, NULL, NULL), DQ_OK,
           "works after SCRIPT FLUSH (NOSCRIPT -> EVAL)");
    is_int(dq_defer(c, "f", NULL, NULL, NULL, NULL), DQ_OK, "and after it");

    freeReplyObject(redisCommand(R, "CLIENT KILL TYPE normal SKIPME yes"));
    rc = dq_defer(c, "f", NULL, NULL, NULL, NULL);
    ok(rc == DQ_EREDIS, "connection killed: DQ_EREDIS (%s)",
       dq_client_errstr(c));
    is_int(dq_defer(c, "f", NULL, NULL, NULL, NULL), DQ_OK,
           "the next call reconnects");

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    c2 = dq_client_new(addr, &co);
    is_int(dq_defer(c2, "f", NULL, NULL, NULL, NULL), DQ_OK, "SELECT 3");
    freeReplyObject(redisCommand(R, "SELECT 3"));
    is_int(rint_("ZCARD dq2:{default}:eta"), 1, "the task is in db 3");
    freeReplyObject(redisCommand(R, "SELECT 0"));
    dq_client_free(c2);

    c2 = dq_client_new("127.0.0.1:1", NULL);
    ok(c2 != NULL, "a client to a closed port is still made");
    rc = dq_defer(c2, "f", NULL, NULL, NULL, NULL);
    ok(rc == DQ_EREDIS && strstr(dq_client_errstr(c2), "127.0.0.1:1"),
       "Redis down: DQ_EREDIS (%s)", dq_client_errstr(c2));
    dq_client_free(c2);
    c2 = dq_client_new("127.0.0.1:notaport", NULL);
    is_int(dq_defer(c2, "f", NULL, NULL, NULL, NULL), DQ_EINVAL,
           "bad address: DQ_EINVAL (%s)", dq_client_errstr(c2));
    dq_client_free(c2);

    /* a command that times out: DQ_EREDIS, and the next call reconnects
     * (the timed-out enqueue may still land: Redis only paused it) */
    {
        dq_client_opts_t to = { NULL, 0, 200, 0, 0 };
        dq_defer_opts_t  o = DQ_DEFER_OPTS_INIT;
        dq_queue_stats_t s;
        long long        t0;

        c2 = dq_client_new(addr, &to);
        o.queue = "slow";
        freeReplyObject(redisCommand(R, "CLIENT PAUSE 600 ALL"));
        t0 = dq_now_ms();
        rc = dq_defer(c2, "f", NULL, &o, NULL, NULL);
        ok(rc == DQ_EREDIS && dq_now_ms() - t0 < 550,
           "command timeout (200 ms) while Redis is paused: DQ_EREDIS "
           "after %lld ms (%s)", dq_now_ms() - t0, dq_client_errstr(c2));
        ok(strstr(dq_client_errstr(c2), "within 200 ms") != NULL,
           "the error says it timed out");
        sleep_ms(700);
        is_int(dq_defer(c2, "f", NULL, &o, NULL, NULL), DQ_OK,
               "the next call reconnects");
        dq_queue_stats(c2, "slow", &s);
        ok(s.waiting >= 1, "%lld task(s) stored (the timed-out one may "
           "have landed too)", (long long) s.waiting);
        dq_client_free(c2);
    }
    if (sock) {
        char unixaddr[300];
        snprintf(unixaddr, sizeof(unixaddr), "unix:%s", sock);
        c2 = dq_client_new(unixaddr, NULL);
        is_int(dq_defer(c2, "f", NULL, NULL, NULL, NULL), DQ_OK,
               "over a unix socket (%s)", dq_client_errstr(c2));
        dq_client_free(c2);
    }

    freeReplyObject(redisCommand(R, "CONFIG SET requirepass s3cret"));
    co.db = 0;
    co.password = "s3cret";
    c2 = dq_client_new(addr, &co);
    is_int(dq_defer(c2, "f", NULL, NULL, NULL, NULL), DQ_OK, "AUTH");
    dq_client_free(c2);
    co.password = "wrong";
    c2 = dq_client_new(addr, &co);
    rc = dq_defer(c2, "f", NULL, NULL, NULL, NULL);
    ok(rc == DQ_EREDIS && strstr(dq_client_errstr(c2), "AUTH"),
       "wrong password: %s", dq_client_errstr(c2));
    dq_client_free(c2);
    freeReplyObject(redisCommand(R, "AUTH s3cret"));
    freeReplyObject(redisCommand(R, "CONFIG SET requirepass \"\""));
}

int
main(int argc, char **argv)
{
    dq_client_opts_t co = { NULL, 0, 0, 200, 0 };
    dq_client_t     *c;
    char             addr[32];

    port = redis_port(argc, argv);
    sock = argc > 2 ? argv[2] : NULL;
    signal(SIGPIPE, SIG_IGN);      /* as client.h asks of programs */
    if (port <= 0) {
        printf("1..0 # SKIP no redis port given\n");
        return 0;
    }
    redis_connect(port);
    freeReplyObject(redisCommand(R, "FLUSHALL"));
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    c = dq_client_new(addr, &co);

    test_defer(c);
    test_bad_input(c);
    test_names(c);
    test_many(c);
    test_queue_set(c);
    test_admin(c);
    test_connection(c);

    dq_client_free(c);
    redisFree(R);
    return done_testing();
}
