
/*
 * ngx_http_deferred_module: Redis Sentinel, for the connection of
 * ngx_http_deferred_redis.c: before every connect the sentinels are asked
 * where the primary is.
 */


#include "ngx_http_deferred_module.h"
#include "ngx_http_deferred_redis.h"


static void ngx_http_deferred_redis_sentinel_connect_cb(
    const redisAsyncContext *ac, int status);
static void ngx_http_deferred_redis_sentinel_cb(redisAsyncContext *ac,
    void *r, void *privdata);


/* ask the next sentinel where the primary is (a numeric address,
 * resolved at config time; the whole question bounded by
 * connect_timeout); after a round of them without an answer, back off */

void
ngx_http_deferred_redis_ask(ngx_http_deferred_redis_t *rs)
{
    ngx_http_deferred_sentinel_t  *sn;
    redisAsyncContext             *ac;

    if (rs->exiting) {
        return;
    }

    if (rs->sasked == rs->nsentinels) {
        ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                      "deferred: redis %V: no sentinel named a usable "
                      "primary for \"%V\"", &rs->name, &rs->master);
        rs->down_logged = 1;
        rs->sasked = 0;
        rs->state = NGX_HTTP_DEFERRED_REDIS_BACKOFF;
        ngx_http_deferred_redis_schedule(rs);
        ngx_http_deferred_redis_failed(rs, "Redis is not reachable");
        return;
    }

    sn = &rs->sentinels[rs->snext];
    rs->snext = (rs->snext + 1) % rs->nsentinels;
    rs->sasked++;
    rs->state = NGX_HTTP_DEFERRED_REDIS_SENTINEL;

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    ngx_add_timer(&rs->timer, rs->connect_timeout);

    ac = ngx_http_deferred_redis_open(rs, (char *) sn->host.data, sn->port);
    if (ac == NULL) {
        ngx_http_deferred_redis_ask_failed(rs, "cannot connect");
        return;
    }

    rs->sac = ac;
    redisAsyncSetConnectCallback(ac,
                                 ngx_http_deferred_redis_sentinel_connect_cb);

    if (redisAsyncCommand(ac, ngx_http_deferred_redis_sentinel_cb, NULL,
                          "SENTINEL get-master-addr-by-name %s",
                          rs->master.data)
        != REDIS_OK)
    {
        rs->sac = NULL;
        redisAsyncFree(ac);
        ngx_http_deferred_redis_ask_failed(rs, "cannot send the question");
    }
}


/* this sentinel did not answer usably: the next one, from the timer (not
 * from inside a callback of the context being freed) */

void
ngx_http_deferred_redis_ask_failed(ngx_http_deferred_redis_t *rs,
    const char *why)
{
    ngx_http_deferred_sentinel_t  *sn;

    sn = &rs->sentinels[(rs->snext + rs->nsentinels - 1) % rs->nsentinels];

    ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                  "deferred: redis %V: sentinel %V:%d: %s",
                  &rs->name, &sn->host, (int) sn->port, why);

    if (rs->exiting) {
        return;
    }

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    rs->state = NGX_HTTP_DEFERRED_REDIS_SENTINEL;
    ngx_add_timer(&rs->timer, 1);
    rs->sac = NULL;
}


static void
ngx_http_deferred_redis_sentinel_connect_cb(const redisAsyncContext *ac,
    int status)
{
    ngx_http_deferred_redis_t  *rs = ac->data;

    if (status == REDIS_OK || rs->sac != ac) {
        return;
    }

    /* hiredis frees the context when this returns */
    rs->sac = NULL;
    ngx_http_deferred_redis_ask_failed(rs, ac->errstr);
}


static void
ngx_http_deferred_redis_sentinel_cb(redisAsyncContext *ac, void *r,
    void *privdata)
{
    int                         port;
    u_char                      bin[sizeof(struct in6_addr)];
    char                        host[NGX_SOCKADDR_STRLEN + 1];
    size_t                      len;
    dq_error_t                  err;
    ngx_http_deferred_redis_t  *rs = ac->data;

    if (rs->sac != ac || rs->exiting) {
        return;
    }

    rs->sac = NULL;
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    redisAsyncFree(ac);             /* once this callback returns */

    if (r == NULL) {
        ngx_http_deferred_redis_ask_failed(rs, ac->errstr[0] ? ac->errstr
                                               : "connection lost");
        return;
    }

    if (dq_sentinel_reply(r, host, sizeof(host), &port, &err) != DQ_OK) {
        ngx_http_deferred_redis_ask_failed(rs, err.msg);
        return;
    }

    if (inet_pton(AF_INET, host, bin) != 1
        && inet_pton(AF_INET6, host, bin) != 1)
    {
        /* resolving a name here would block the worker */
        ngx_http_deferred_redis_ask_failed(rs, "the answer is not a numeric "
                                           "address (set the sentinels' "
                                           "announce-hostnames no)");
        return;
    }

    len = ngx_strlen(host);

    if (len != rs->host.len || ngx_strncmp(host, rs->host.data, len) != 0
        || port != rs->port)
    {
        /* a move is worth a warning; the first answer is not */
        ngx_log_error((ngx_uint_t) (rs->host.len ? NGX_LOG_WARN
                                                 : NGX_LOG_INFO),
                      rs->log, 0,
                      "deferred: redis %V: the sentinels name %s:%d the "
                      "primary \"%V\"", &rs->name, host, port, &rs->master);

        ngx_memcpy(rs->host.data, host, len + 1);
        rs->host.len = len;
        rs->port = (in_port_t) port;
    }

    rs->sasked = 0;

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    (void) ngx_http_deferred_redis_connect_to(rs);
}
