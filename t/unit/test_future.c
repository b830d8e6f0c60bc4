/*
 * Futures on a plain libuv loop (no tasklets): results and exceptions,
 * tracebacks, callbacks (immediate vs loop, order), wait / wait_any /
 * wait_all from plain code, sleep, deadlock detection and the dump, and
 * that unhandled errors are logged but flow errors are not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <deferred/tasklet.h>

#include "tap.h"

static char logged[4096];
static int  nlogged;

static void
capture_log(int level, const char *msg)
{
    (void) level;
    nlogged++;
    snprintf(logged, sizeof(logged), "%s", msg);
}

/* ------------------------------------------------------------------ */

static void
test_result(void)
{
    dq_future_t *f = dq_future_new("answer");
    int64_t      i = 0;
    size_t       len;

    is_int(dq_future_state(f), DQ_FUTURE_PENDING, "new future is pending");
    ok(!dq_future_done(f), "not done");
    is_int(dq_future_check_success(f), DQ_EPENDING,
           "check_success on a pending future: DQ_EPENDING");
    ok(dq_future_result(f) == NULL, "no result while pending");
    dq_future_set_running(f);
    is_int(dq_future_state(f), DQ_FUTURE_RUNNING, "set_running: running");
    is_int(dq_future_set_int(f, 42), DQ_OK, "set_result");
    ok(dq_future_done(f), "done");
    is_int(dq_future_get_int(f, &i), DQ_OK, "get_int ok");
    is_int(i, 42, "result is 42");
    is_int(dq_future_set_int(f, 43), DQ_ESTATE,
           "second set_result: DQ_ESTATE");
    is_int(dq_future_get_int(f, &i), DQ_OK, "still ok");
    is_int(i, 42, "result unchanged");
    dq_future_unref(f);

    f = dq_future_new(NULL);
    dq_future_set_result(f, dq_value_cstr("hello"));
    is_str(dq_value_str_ptr(dq_future_result(f), &len), "hello",
           "string result");
    is_int(len, 5, "string length");
    is_int(dq_future_get_int(f, &i), DQ_EINVAL, "get_int on a string");
    dq_future_unref(f);
}

static int freed_ptr;
static void free_ptr(void *p) { freed_ptr++; free(p); }

static void
test_values(void)
{
    dq_value_t  v = dq_value_ptr(malloc(16), free_ptr), c;
    char        buf[64];
    dq_future_t *f;

    c = dq_value_copy(&v);
    dq_value_clear(&v);
    is_int(freed_ptr, 0, "a shared pointer survives while a copy lives");
    f = dq_future_new(NULL);
    dq_future_set_result(f, c);
    dq_future_unref(f);
    is_int(freed_ptr, 1, "the destructor runs once, with the last copy");

    v = dq_value_int(-7);
    dq_value_format(&v, buf, sizeof(buf));
    is_str(buf, "-7", "format int");
    v = dq_value_str("a\0b", 3);
    ok(memcmp(dq_value_str_ptr(&v, NULL), "a\0b", 4) == 0,
       "strings are binary-safe and NUL-terminated");
    dq_value_clear(&v);
}

static void
raiser(dq_future_t *f)
{
    dq_future_set_exception(f, DQ_ENOTFOUND, "no such thing: %d", 7);
}

static void
test_exception(void)
{
    dq_future_t     *f = dq_future_new("fails"), *g;
    const dq_site_t *tb;
    char             buf[512];
    size_t           n;

    raiser(f);
    ok(dq_future_done(f), "exception: done");
    is_int(dq_future_check_success(f), DQ_ENOTFOUND,
           "check_success returns the exception code");
    ok(dq_future_result(f) == NULL, "no result");
    is_str(dq_future_exception_message(f), "no such thing: 7", "message");
    n = dq_future_traceback(f, &tb);
    is_int(n, 1, "one frame");
    is_str(tb[0].func, "raiser", "raised in raiser()");
    ok(strstr(tb[0].file, "test_future.c") != NULL, "file recorded");

    g = dq_future_new("caller");
    is_int(dq_future_propagate(g, f), DQ_OK, "propagate");
    n = dq_future_traceback(g, &tb);
    is_int(n, 2, "propagation adds a frame");
    is_str(tb[1].func, "test_exception", "second frame is the propagator");
    is_int(dq_future_exception_code(g), DQ_ENOTFOUND, "same code");
    dq_future_format_exception(g, buf, sizeof(buf));
    ok(strstr(buf, "raised at") && strstr(buf, "passed on at"),
       "formatted traceback names both sites");
    diag("%s", buf);
    dq_future_unref(f);
    dq_future_unref(g);
}

/* ------------------------------------------------------------------ */

static char order[64];

static void
note(dq_future_t *f, void *arg)
{
    (void) f;
    strcat(order, arg);
}

static void
test_callbacks(void)
{
    dq_future_t *f = dq_future_new("cb");

    order[0] = '\0';
    dq_future_add_callback(f, note, "L1");
    dq_future_add_immediate_callback(f, note, "I1");
    dq_future_add_callback(f, note, "L2");
    dq_future_add_immediate_callback(f, note, "I2");
    dq_future_add_callback(f, note, "X");
    is_int(dq_future_remove_callback(f, note, "X"), DQ_OK, "remove a callback");
    is_int(dq_future_remove_callback(f, note, "X"), DQ_ENOTFOUND,
           "removing it twice: DQ_ENOTFOUND");
    dq_future_set_int(f, 1);
    is_str(order, "I1I2", "immediate callbacks ran inside set_result, "
           "in order; loop callbacks not yet");
    uv_run(dq_tasklet_loop(), UV_RUN_NOWAIT);
    is_str(order, "I1I2L1L2", "loop callbacks ran from the loop, in order");

    order[0] = '\0';
    dq_future_add_callback(f, note, "L3");
    dq_future_add_immediate_callback(f, note, "I3");
    is_str(order, "I3", "on a done future: immediate runs at once, loop "
           "callback is queued");
    uv_run(dq_tasklet_loop(), UV_RUN_NOWAIT);
    is_str(order, "I3L3", "queued loop callback ran");
    dq_future_unref(f);
}

/* ------------------------------------------------------------------ */

static void
complete_on_timer(uv_timer_t *t)
{
    dq_future_set_int(t->data, 5);
    uv_close((uv_handle_t *) t, NULL);
}

static void
test_wait(void)
{
    dq_future_t *f = dq_future_new("by timer"), *s, *fs[3];
    uv_timer_t   t;
    int64_t      i = 0;
    uint64_t     t0;

    uv_timer_init(dq_tasklet_loop(), &t);
    t.data = f;
    uv_timer_start(&t, complete_on_timer, 20, 0);
    is_int(dq_future_wait(f), DQ_OK, "wait runs the loop until done");
    dq_future_get_int(f, &i);
    is_int(i, 5, "the timer's result");
    dq_future_unref(f);

    uv_update_time(dq_tasklet_loop());
    t0 = uv_now(dq_tasklet_loop());
    s = dq_sleep(0.05);
    is_int(dq_future_state(s), DQ_FUTURE_RUNNING, "sleep is running");
    is_int(dq_future_wait(s), DQ_OK, "sleep completes");
    ok(uv_now(dq_tasklet_loop()) - t0 >= 49, "sleep(0.05) took >= 50 ms "
       "(%llu)", (unsigned long long) (uv_now(dq_tasklet_loop()) - t0));
    ok(dq_future_result(s)->type == DQ_VAL_NONE, "sleep's result is none");
    dq_future_unref(s);

    fs[0] = dq_sleep(0.3);
    fs[1] = dq_sleep(0.01);
    fs[2] = dq_sleep(0.2);
    is_int(dq_future_wait_any(fs, 3), 1, "wait_any returns the first done");
    ok(!dq_future_done(fs[0]) && !dq_future_done(fs[2]),
       "the others are still running");
    is_int(dq_future_wait_all(fs, 3), DQ_OK, "wait_all");
    ok(dq_future_done(fs[0]) && dq_future_done(fs[2]), "all done");
    dq_future_unref(fs[0]);
    dq_future_unref(fs[1]);
    dq_future_unref(fs[2]);

    fs[0] = dq_future_new("ok");
    fs[1] = dq_future_new("bad");
    dq_future_set_int(fs[0], 1);
    dq_future_set_exception(fs[1], DQ_EINVAL, "bad one");
    is_int(dq_future_wait_all(fs, 2), DQ_EINVAL,
           "wait_all returns the first exception");
    dq_future_unref(fs[0]);
    dq_future_unref(fs[1]);
    is_int(dq_future_wait_any(fs, 0), DQ_EINVAL, "wait_any of nothing");
}

static void
test_deadlock(void)
{
    dq_future_t *a = dq_future_new("never"), *b = dq_future_new("other");
    char        *text = NULL;
    size_t       len = 0, n;
    FILE        *mem = open_memstream(&text, &len);

    n = dq_future_dump(mem);
    fclose(mem);
    is_int(n, 2, "dump lists the two pending futures");
    ok(text && strstr(text, "never") && strstr(text, "test_future.c:")
       && strstr(text, "test_deadlock"),
       "dump names what and where each was created");
    free(text);

    is_int(dq_future_wait(a), DQ_EDEADLOCK,
           "waiting on a future nothing can complete: DQ_EDEADLOCK, no hang");
    ok(dq_future_done(a), "the future is failed");
    is_int(dq_future_exception_code(a), DQ_EDEADLOCK, "with DQ_EDEADLOCK");
    ok(strstr(dq_future_exception_message(a), "never created at")
       && strstr(dq_future_exception_message(a), "other"),
       "the message names the futures and their creation sites");
    diag("%s", dq_future_exception_message(a));
    dq_future_unref(a);
    dq_future_unref(b);
}

static void
test_log(void)
{
    dq_future_t *f;

    nlogged = 0;
    dq_tasklet_set_log(capture_log);
    f = dq_future_new("ignored");
    dq_future_set_exception(f, DQ_EINVAL, "nobody looked");
    dq_future_unref(f);
    is_int(nlogged, 1, "an exception nobody looked at is logged when freed");
    ok(strstr(logged, "nobody looked") != NULL, "log line: %s", logged);

    nlogged = 0;
    f = dq_future_new("flow");
    dq_future_set_flow_exception(f, DQ_EINVAL, "expected");
    ok(dq_future_exception_is_flow(f)
       && dq_future_exception_code(f) == DQ_EINVAL,
       "the flow exception is set (is_flow, code DQ_EINVAL)");
    dq_future_unref(f);
    is_int(nlogged, 0, "a flow exception is not logged");

    is_int(dq_tasklet_add_flow_exception(DQ_ENOTFOUND), DQ_OK,
           "add_flow_exception(DQ_ENOTFOUND)");
    is_int(dq_tasklet_add_flow_exception(0), DQ_EINVAL, "not code 0");
    f = dq_future_new("registered flow");
    dq_future_set_exception(f, DQ_ENOTFOUND, "a miss is expected here");
    ok(dq_future_exception_is_flow(f), "a registered code is a flow "
       "exception wherever it is raised");
    dq_future_unref(f);
    is_int(nlogged, 0, "and is not logged");

    f = dq_future_new("handled");
    dq_future_set_exception(f, DQ_EINVAL, "seen");
    (void) dq_future_check_success(f);
    dq_future_unref(f);
    is_int(nlogged, 0, "a handled exception is not logged");
    dq_tasklet_set_log(NULL);
}

int
main(void)
{
    dq_tasklet_stats_t st;

    is_int(dq_tasklet_init(NULL, NULL), DQ_OK, "init");
    is_int(dq_tasklet_init(NULL, NULL), DQ_ESTATE, "init twice: DQ_ESTATE");
    test_result();
    test_values();
    test_exception();
    test_callbacks();
    test_wait();
    test_deadlock();
    test_log();
    dq_tasklet_stats(&st);
    is_int(st.futures_pending, 0, "no future left pending");
    dq_tasklet_shutdown();
    uv_loop_close(uv_default_loop());
    return done_testing();
}
