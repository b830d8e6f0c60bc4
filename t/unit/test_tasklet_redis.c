/*
 * Redis futures against a real redis-server (port in argv[1]; the wrapper
 * t/64-tasklet-redis.t starts one), on hiredis' own libuv adapter: replies
 * as values, error replies and lost connections as DQ_EREDIS exceptions,
 * binary-safe argv, and 100 concurrent commands from one tasklet reduced
 * by a ReducingFuture and a MultiFuture.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>

#include <deferred/tasklet.h>

#include "tap.h"

static void
t_hundred(dq_future_t *self, void *arg)
{
    dq_future_t *rf = dq_reducing_future_new(dq_reducer_sum, NULL, 10);
    dq_future_t *mf = dq_multi_future_new();
    int          i, rc;

    (void) arg;
    for (i = 0; i < 100; i++) {
        dq_future_t *f = dq_redis_command("INCRBY t:counter %d", i);

        dq_multi_add_dependent(rf, f);
        dq_multi_add_dependent(mf, f);
        dq_future_unref(f);
    }
    dq_multi_complete(rf);
    dq_multi_complete(mf);
    if ((rc = dq_future_wait(mf)) != DQ_OK) {
        dq_future_propagate(self, mf);
    } else if ((rc = dq_future_wait(rf)) != DQ_OK) {
        dq_future_propagate(self, rf);
    } else {
        is_int(dq_value_list_len(dq_future_result(mf)), 100,
               "MultiFuture: 100 replies in order");
        dq_future_propagate(self, rf);
    }
    dq_future_unref(rf);
    dq_future_unref(mf);
}

int
main(int argc, char **argv)
{
    redisAsyncContext *ac;
    const redisReply  *r;
    dq_future_t       *f;
    const char        *av[3] = { "SET", "t:bin", "a\0b" };
    size_t             al[3] = { 3, 5, 3 };
    int64_t            v = 0;

    if (argc < 2) {
        printf("1..0 # SKIP needs a redis port\n");
        return 0;
    }
    dq_tasklet_init(NULL, NULL);
    ac = redisAsyncConnect("127.0.0.1", atoi(argv[1]));
    if (ac == NULL || ac->err) {
        printf("1..0 # SKIP cannot connect\n");
        return 0;
    }
    redisLibuvAttach(ac, dq_tasklet_loop());
    dq_tasklet_set_redis(ac);

    f = dq_redis_command("SET %s %s", "t:k", "hello");
    is_int(dq_future_wait(f), DQ_OK, "SET");
    r = dq_value_reply(dq_future_result(f));
    ok(r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0,
       "status reply OK");
    dq_future_unref(f);

    f = dq_redis_command("GET t:k");
    dq_future_wait(f);
    r = dq_value_reply(dq_future_result(f));
    ok(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "hello") == 0,
       "GET returns the string");
    dq_future_unref(f);

    f = dq_redis_command_argv(3, av, al);
    is_int(dq_future_wait(f), DQ_OK, "argv SET with a NUL in the value");
    dq_future_unref(f);
    f = dq_redis_command("STRLEN t:bin");
    dq_future_wait(f);
    r = dq_value_reply(dq_future_result(f));
    is_int(r ? r->integer : -1, 3, "binary-safe: 3 bytes stored");
    dq_future_unref(f);

    f = dq_redis_command("INCR t:k");
    is_int(dq_future_wait(f), DQ_EREDIS, "an error reply is DQ_EREDIS");
    ok(strstr(dq_future_exception_message(f), "not an integer") != NULL,
       "with Redis' text: %s", dq_future_exception_message(f));
    dq_future_unref(f);

    f = dq_synctasklet(t_hundred, NULL);
    is_int(dq_future_get_int(f, &v), DQ_OK, "100 concurrent INCRBY in one "
           "tasklet");
    /* INCRBY replies are running totals: sum of i(i+1)/2 for i < 100 */
    is_int(v, 166650, "ReducingFuture summed the 100 integer replies");
    dq_future_unref(f);

    f = dq_redis_command("BLPOP t:nothing 5");
    redisAsyncFree(ac);
    is_int(dq_future_check_success(f), DQ_EREDIS,
           "a command in flight when the connection goes: DQ_EREDIS");
    dq_future_unref(f);
    dq_tasklet_set_redis(NULL);
    f = dq_redis_command("PING");
    is_int(dq_future_check_success(f), DQ_EREDIS, "no connection: DQ_EREDIS");
    ok(strstr(dq_future_exception_message(f), "not connected") != NULL,
       "says not connected");
    dq_future_unref(f);

    dq_tasklet_shutdown();
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    uv_loop_close(uv_default_loop());
    return done_testing();
}
