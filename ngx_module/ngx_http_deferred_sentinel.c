
/*
 * ngx_http_deferred_module: Redis Sentinel, for the connection of
 * ngx_http_deferred_connect.c: before every connect the sentinels are asked
 * where the primary is, one at a time, each question on a short-lived
 * connection of its own (ngx_http_deferred_redis_ask_at).
 */


#include "ngx_http_deferred_module.h"
#include "ngx_http_deferred_redis.h"


/* ask the next sentinel where the primary is (a numeric address,
 * resolved at config time; the whole question bounded by
 * connect_timeout); after a round of them without an answer, back off */

void
ngx_http_deferred_sentinel_ask(ngx_http_deferred_redis_t *rs)
{
    size_t                         argvlen[3];
    const char                    *argv[3];
    ngx_http_deferred_sentinel_t  *sn;

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

    argv[0] = "SENTINEL";
    argvlen[0] = 8;
    argv[1] = "get-master-addr-by-name";
    argvlen[1] = 23;
    argv[2] = (const char *) rs->master.data;
    argvlen[2] = rs->master.len;

    /* no AUTH: the password is the data Redis' (docs/OPERATIONS.md) */
    ngx_http_deferred_redis_ask_at(rs, (const char *) sn->host.data, sn->port,
                                   0, 3, argv, argvlen);
}


/* a sentinel's answer (the connection asked is gone): connect there */

void
ngx_http_deferred_sentinel_answer(ngx_http_deferred_redis_t *rs,
    redisReply *reply)
{
    int          port;
    u_char       bin[sizeof(struct in6_addr)];
    char         host[NGX_SOCKADDR_STRLEN + 1];
    size_t       len;
    dq_error_t   err;

    if (dq_sentinel_reply(reply, host, sizeof(host), &port, &err) != DQ_OK) {
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

    if (ngx_http_deferred_redis_connect_to(rs) != NGX_OK) {
        /* the connect failed at once (an unreachable network, no
         * descriptor left): what waits for this setup fails now, as for a
         * connect that fails later (review RM; t/155) */
        ngx_http_deferred_redis_failed(rs, "Redis is not reachable");
    }
}
