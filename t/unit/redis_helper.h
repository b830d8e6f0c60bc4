/*
 * The one helper for unit tests that talk to a real redis-server. The .t
 * wrapper is one line, DQTest::exec_unit('<name>', redis => 1): it starts a
 * fresh redis-server and passes its port (argv[1], $DQ_REDIS_PORT) and
 * unix socket (argv[2], $DQ_REDIS_SOCK). Header only: R is the test's
 * connection, run() a contract command with the NOSCRIPT fallback.
 */
#ifndef DQ_TEST_REDIS_HELPER_H
#define DQ_TEST_REDIS_HELPER_H

#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "dq_contract.h"
#include "tap.h"

static redisContext *R;

__attribute__((unused)) static int
redis_port(int argc, char **argv)
{
    const char *p = argc > 1 ? argv[1] : getenv("DQ_REDIS_PORT");
    return p ? atoi(p) : 0;
}

__attribute__((unused)) static void
redis_connect(int port)
{
    R = redisConnect("127.0.0.1", port);
    if (R == NULL || R->err) {
        printf("Bail out! cannot connect to redis on port %d\n", port);
        exit(1);
    }
}

/* Run a script command, EVAL on NOSCRIPT (as every real caller must). */
__attribute__((unused)) static redisReply *
run(dq_cmd_t *c)
{
    redisReply *r = redisCommandArgv(R, c->argc, c->argv, c->argvlen);
    if (dq_reply_is_noscript(r)) {
        freeReplyObject(r);
        dq_cmd_use_eval(c);
        r = redisCommandArgv(R, c->argc, c->argv, c->argvlen);
    }
    return r;
}

__attribute__((format(printf, 1, 2), unused)) static long long
rint_(const char *fmt, ...)
{
    va_list     ap;
    redisReply *r;
    long long   v = -999;

    va_start(ap, fmt);
    r = redisvCommand(R, fmt, ap);
    va_end(ap);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        v = r->integer;
    } else if (r && r->type == REDIS_REPLY_STRING) {
        v = strtoll(r->str, NULL, 10);
    } else if (r && r->type == REDIS_REPLY_NIL) {
        v = -1;
    }
    if (r) {
        freeReplyObject(r);
    }
    return v;
}

/* String reply copied into buf ("" for nil, "(err)" on error). */
__attribute__((format(printf, 3, 4), unused)) static const char *
rstr(char *buf, size_t size, const char *fmt, ...)
{
    va_list     ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(R, fmt, ap);
    va_end(ap);
    if (r && r->type == REDIS_REPLY_STRING) {
        snprintf(buf, size, "%.*s", (int) r->len, r->str);
    } else if (r && (r->type == REDIS_REPLY_NIL)) {
        snprintf(buf, size, "%s", "");
    } else {
        snprintf(buf, size, "(err)");
    }
    if (r) {
        freeReplyObject(r);
    }
    return buf;
}

__attribute__((unused)) static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) { }
}

#endif
