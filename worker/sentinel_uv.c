/*
 * deferred-worker — a sentinel: address (redis_uv.c's connections): before
 * each connect, ask the sentinels in turn where the primary is
 * (SENTINEL get-master-addr-by-name), without blocking: numeric addresses
 * only, each question bounded by the connect timeout; after a whole round
 * without an answer, the usual reconnect backoff. Moved out of
 * redis_uv.c unchanged.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_uv_impl.h"

static void
dq__next_sentinel_cb(uv_timer_t *t)
{
    dq__ask_sentinel(t->data);
}

/* This sentinel gave no usable answer: ask the next one from the loop
 * (not from inside a hiredis callback of the context being freed). */
static void
dq__sentinel_failed(dq_conn_t *r, size_t i, const char *why)
{
    dq_log_warn("redis (%s): sentinel %s:%d, master \"%s\": %s", r->label,
                r->shost[i], r->sport[i], r->master, why);
    uv_timer_stop(&r->conn_timer);
    uv_timer_start(&r->conn_timer, dq__next_sentinel_cb, 0, 0);
}

static size_t
dq__sentinel_index(dq_conn_t *r)
{
    return (r->snext + r->nsentinels - 1) % r->nsentinels;
}

static void
dq__sentinel_on_connect(const redisAsyncContext *ac, int status)
{
    dq_conn_t *r = ac->data;

    if (status == REDIS_OK || r->sac != ac) {
        return;
    }
    r->sac = NULL;                  /* hiredis frees it when this returns */
    dq__sentinel_failed(r, dq__sentinel_index(r), ac->errstr);
}

static void
dq__sentinel_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    dq_conn_t   *r = ac->data;
    size_t       i = dq__sentinel_index(r);
    dq_error_t   err;
    char         host[INET6_ADDRSTRLEN], *h;
    unsigned char bin[sizeof(struct in6_addr)];
    int          port;

    (void) privdata;
    if (r->sac != ac || r->state != DQ_RS_SENTINEL) {
        return;                     /* dropped: already handled */
    }
    r->sac = NULL;
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    redisAsyncFree(ac);             /* once this callback returns */
    uv_timer_stop(&r->conn_timer);

    if (reply == NULL) {
        dq__sentinel_failed(r, i, ac->errstr[0] ? ac->errstr
                                                : "connection lost");
        return;
    }
    if (dq_sentinel_reply(reply, host, sizeof(host), &port, &err) != DQ_OK) {
        dq__sentinel_failed(r, i, err.msg);
        return;
    }
    if (inet_pton(AF_INET, host, bin) != 1
        && inet_pton(AF_INET6, host, bin) != 1)
    {
        /* resolving it would block the loop (announce-hostnames) */
        dq__sentinel_failed(r, i, "the answer is not a numeric address "
                                  "(set the sentinels' announce-hostnames "
                                  "no)");
        return;
    }
    if (r->host == NULL || strcmp(r->host, host) != 0 || r->port != port) {
        h = strdup(host);
        if (h == NULL) {
            dq__sentinel_failed(r, i, "out of memory");
            return;
        }
        if (r->host != NULL) {
            dq_log_warn("redis (%s): sentinel %s:%d names %s:%d the "
                        "primary \"%s\" (was %s:%d)", r->label, r->shost[i],
                        r->sport[i], host, port, r->master, r->host, r->port);
        } else {
            dq_log_info("redis (%s): sentinel %s:%d names %s:%d the "
                        "primary \"%s\"", r->label, r->shost[i], r->sport[i],
                        host, port, r->master);
        }
        free(r->host);
        r->host = h;
        r->port = port;
    }
    r->sasked = 0;
    dq__connect(r);                 /* state SENTINEL: straight to it */
}

static void
dq__sentinel_timeout_cb(uv_timer_t *t)
{
    dq_conn_t         *r = t->data;
    redisAsyncContext *ac = r->sac;
    char               why[64];

    r->sac = NULL;
    if (ac != NULL) {
        ac->onConnect = NULL;
        ac->onDisconnect = NULL;
        redisAsyncFree(ac);         /* its reply callback sees sac != ac */
    }
    snprintf(why, sizeof(why), "no answer within %lld ms",
             (long long) r->connect_timeout_ms);
    dq__sentinel_failed(r, dq__sentinel_index(r), why);
}

/* Ask the next sentinel where the primary is; after a whole round
 * without an answer, the usual reconnect backoff. Bounded by the connect
 * timeout; never blocks (numeric addresses, resolved at start). */
void
dq__ask_sentinel(dq_conn_t *r)
{
    redisAsyncContext *ac;
    size_t             i;

    if (r->state == DQ_RS_CLOSING) {
        return;
    }
    if (r->sasked == r->nsentinels) {
        dq_log_error("redis (%s): no sentinel named a usable primary for "
                     "\"%s\" (%zu asked)", r->label, r->master,
                     r->nsentinels);
        r->sasked = 0;
        dq__schedule_reconnect(r);
        return;
    }
    i = r->snext;
    r->snext = (r->snext + 1) % r->nsentinels;
    r->sasked++;
    r->state = DQ_RS_SENTINEL;

    ac = redisAsyncConnect(r->shost[i], r->sport[i]);
    if (ac == NULL || ac->err) {
        dq__sentinel_failed(r, i, ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }
        return;
    }
    if (dq__attach(r, ac) != 0) {
        redisAsyncFree(ac);
        dq__sentinel_failed(r, i, "cannot watch the socket");
        return;
    }
    ac->data = r;
    r->sac = ac;
    redisAsyncSetConnectCallback(ac, dq__sentinel_on_connect);
    if (redisAsyncCommand(ac, dq__sentinel_reply, NULL,
                          "SENTINEL get-master-addr-by-name %s", r->master)
        != REDIS_OK)
    {
        r->sac = NULL;
        redisAsyncFree(ac);
        dq__sentinel_failed(r, i, "cannot send the question");
        return;
    }
    uv_timer_stop(&r->conn_timer);
    uv_timer_start(&r->conn_timer, dq__sentinel_timeout_cb,
                   (uint64_t) r->connect_timeout_ms, 0);
}
