
/*
 * ngx_http_deferred_module: reaching a Redis and setting its connection up.
 *
 * A worker's connection to one Redis: connected by numeric address or
 * unix socket (resolved at config time; for sentinels, after asking them
 * where the primary is), AUTH/SELECT/ROLE/INFO/SCRIPT LOAD pipelined ahead
 * of everything else and the connection used only once all of them
 * answered OK (a refused AUTH or SELECT must not let a command run
 * unauthenticated or in the wrong database; an older Redis than
 * DQ_REDIS_MIN_VERSION is refused, an evicting maxmemory-policy is warned
 * about), the connect timeout, the connection lost or dropped. Also the
 * question to a helper server on a short-lived connection
 * (ngx_http_deferred_redis_ask_at): the sentinels
 * (ngx_http_deferred_sentinel.c) and a Redis Cluster's nodes
 * (ngx_http_deferred_cluster.c). The adapter and the commands:
 * ngx_http_deferred_redis.c; the back-off between attempts and what waits
 * for the setup: ngx_http_deferred_backoff.c. Nothing here blocks.
 */


#include "ngx_http_deferred_module.h"
#include "ngx_http_deferred_redis.h"


static void ngx_http_deferred_redis_connect_cb(const redisAsyncContext *ac,
    int status);
static void ngx_http_deferred_redis_disconnect_cb(const redisAsyncContext *ac,
    int status);
static void ngx_http_deferred_redis_setup_cb(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_deferred_redis_auth(ngx_http_deferred_redis_t *rs,
    redisAsyncContext *ac, redisCallbackFn *fn);
static void ngx_http_deferred_redis_ask_connect_cb(
    const redisAsyncContext *ac, int status);
static void ngx_http_deferred_redis_answer_cb(redisAsyncContext *ac, void *r,
    void *privdata);


ngx_int_t
ngx_http_deferred_redis_connect(ngx_http_deferred_redis_t *rs)
{
    rs->last_attempt = ngx_current_msec;
    rs->soon = 0;

    if (rs->nsentinels) {
        /* where the primary is now: asked before every connect */
        rs->sasked = 0;
        ngx_http_deferred_sentinel_ask(rs);
        return NGX_OK;
    }

    return ngx_http_deferred_redis_connect_to(rs);
}


/* AUTH first when a password is set; its reply goes to fn with privdata
 * "AUTH" */

static void
ngx_http_deferred_redis_auth(ngx_http_deferred_redis_t *rs,
    redisAsyncContext *ac, redisCallbackFn *fn)
{
    size_t       argvlen[2];
    const char  *argv[2];

    if (rs->password.len == 0) {
        return;
    }

    argv[0] = "AUTH";
    argvlen[0] = 4;
    argv[1] = (const char *) rs->password.data;
    argvlen[1] = rs->password.len;

    (void) redisAsyncCommandArgv(ac, fn, (void *) "AUTH", 2, argv, argvlen);
}


/*
 * A question to a helper server (a sentinel: where the primary is; a
 * cluster node: its slot map) on a short-lived connection of its own
 * (rs->sac), AUTH first if "auth" and a password is set; the whole bounded
 * by connect_timeout (rs->timer: ngx_http_deferred_redis_ask_expired).
 * The answer goes to ngx_http_deferred_sentinel_answer or
 * ngx_http_deferred_cluster_answer once the connection is let go; no
 * usable answer to ngx_http_deferred_redis_ask_failed, after which the
 * timer asks the next server.
 */

void
ngx_http_deferred_redis_ask_at(ngx_http_deferred_redis_t *rs,
    const char *host, in_port_t port, ngx_uint_t auth, int argc,
    const char **argv, const size_t *argvlen)
{
    redisAsyncContext  *ac;

    rs->asked_host = host;
    rs->asked_port = port;

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    ngx_add_timer(&rs->timer, rs->connect_timeout);

    ac = ngx_http_deferred_redis_open(rs, host, port);
    if (ac == NULL) {
        ngx_http_deferred_redis_ask_failed(rs, "cannot connect");
        return;
    }

    rs->sac = ac;
    redisAsyncSetConnectCallback(ac, ngx_http_deferred_redis_ask_connect_cb);

    if (auth) {
        ngx_http_deferred_redis_auth(rs, ac, ngx_http_deferred_redis_answer_cb);
    }

    if (redisAsyncCommandArgv(ac, ngx_http_deferred_redis_answer_cb, NULL,
                              argc, argv, argvlen)
        != REDIS_OK)
    {
        rs->sac = NULL;
        ac->onConnect = NULL;
        redisAsyncFree(ac);
        ngx_http_deferred_redis_ask_failed(rs, "cannot send the question");
    }
}


/* this server did not answer usably: the next one, from the timer (not
 * from inside a callback of the context being freed) */

void
ngx_http_deferred_redis_ask_failed(ngx_http_deferred_redis_t *rs,
    const char *why)
{
    ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                  "deferred: redis %V: %s %s:%d: %s", &rs->name,
                  rs->nseeds ? "CLUSTER SLOTS on" : "sentinel",
                  rs->asked_host, (int) rs->asked_port, why);

    rs->sac = NULL;

    if (rs->exiting) {
        return;
    }

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    rs->state = rs->nseeds ? NGX_HTTP_DEFERRED_REDIS_SLOTS
                           : NGX_HTTP_DEFERRED_REDIS_SENTINEL;
    ngx_add_timer(&rs->timer, 1);
}


/* the timer: NGX_OK if a question was in flight (now failed) */

ngx_int_t
ngx_http_deferred_redis_ask_expired(ngx_http_deferred_redis_t *rs)
{
    redisAsyncContext  *ac;

    if (rs->sac == NULL) {
        return NGX_DECLINED;
    }

    /* no answer within connect_timeout */
    ac = rs->sac;
    ac->onConnect = NULL;
    rs->sac = NULL;
    redisAsyncFree(ac);

    ngx_http_deferred_redis_ask_failed(rs, "timed out");

    return NGX_OK;
}


static void
ngx_http_deferred_redis_ask_connect_cb(const redisAsyncContext *ac,
    int status)
{
    ngx_http_deferred_redis_t  *rs = ac->data;

    if (status == REDIS_OK || rs->sac != ac) {
        return;
    }

    /* hiredis frees the context when this returns */
    ngx_http_deferred_redis_ask_failed(rs, ac->errstr);
}


static void
ngx_http_deferred_redis_answer_cb(redisAsyncContext *ac, void *r,
    void *privdata)
{
    u_char                      why[256];
    redisReply                 *reply = r;
    ngx_http_deferred_redis_t  *rs = ac->data;

    if (rs->sac != ac || rs->exiting) {
        return;
    }

    if (privdata != NULL && (reply == NULL || reply->type != REDIS_REPLY_ERROR))
    {
        return;     /* AUTH went through: the answer follows */
    }

    rs->sac = NULL;
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    redisAsyncFree(ac);             /* once this callback returns */

    if (reply == NULL) {
        ngx_http_deferred_redis_ask_failed(rs, ac->errstr[0] ? ac->errstr
                                               : "connection lost");
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* refused: the question, or the AUTH before it */
        *ngx_snprintf(why, sizeof(why) - 1, "%s%*s",
                      privdata ? "AUTH refused: " : "refused: ",
                      (size_t) ngx_min(reply->len, 200), reply->str) = '\0';
        ngx_http_deferred_redis_ask_failed(rs, (const char *) why);
        return;
    }

    if (rs->nseeds) {
        ngx_http_deferred_cluster_answer(rs, reply);

    } else {
        ngx_http_deferred_sentinel_answer(rs, reply);
    }
}


/* the Redis itself: rs->host (for sentinel: what they named) */

ngx_int_t
ngx_http_deferred_redis_connect_to(ngx_http_deferred_redis_t *rs)
{
    int                 argc;
    char                db[NGX_INT_T_LEN + 1];
    size_t              argvlen[3];
    const char         *argv[3];
    redisAsyncContext  *ac;
    const dq_script_t  *script;

    rs->soon = 0;

    ac = ngx_http_deferred_redis_open(rs, rs->unix_path.len
                                          ? NULL : (char *) rs->host.data,
                                      rs->port);
    if (ac == NULL) {
        goto failed;
    }

    rs->ac = ac;
    rs->state = NGX_HTTP_DEFERRED_REDIS_CONNECTING;
    rs->generation++;

    redisAsyncSetConnectCallback(ac, ngx_http_deferred_redis_connect_cb);
    redisAsyncSetDisconnectCallback(ac, ngx_http_deferred_redis_disconnect_cb);

    /* pipelined ahead of any command a request sends on this connection */

    ngx_http_deferred_redis_auth(rs, ac, ngx_http_deferred_redis_setup_cb);

    if (rs->db) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = db;
        argvlen[1] = ngx_sprintf((u_char *) db, "%i", rs->db) - (u_char *) db;

        (void) redisAsyncCommandArgv(ac, ngx_http_deferred_redis_setup_cb,
                                     (void *) "SELECT", 2, argv, argvlen);
    }

    if (rs->nsentinels) {
        /* the sentinels' answer may be stale: only a master is used */
        argv[0] = "ROLE";
        argvlen[0] = 4;

        (void) redisAsyncCommandArgv(ac, ngx_http_deferred_redis_setup_cb,
                                     (void *) "ROLE", 1, argv, argvlen);
    }

    argv[0] = "INFO";
    argvlen[0] = 4;

    (void) redisAsyncCommandArgv(ac, ngx_http_deferred_redis_setup_cb,
                                 (void *) "INFO", 1, argv, argvlen);

    script = dq_script(DQ_SCRIPT_ENQUEUE);

    argc = 3;
    argv[0] = "SCRIPT";
    argvlen[0] = 6;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = script->source;
    argvlen[2] = script->len;

    (void) redisAsyncCommandArgv(ac, ngx_http_deferred_redis_setup_cb,
                                 (void *) "SCRIPT LOAD", argc, argv, argvlen);

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    ngx_add_timer(&rs->timer, rs->connect_timeout);

    return NGX_OK;

failed:

    rs->state = NGX_HTTP_DEFERRED_REDIS_BACKOFF;
    ngx_http_deferred_redis_schedule(rs);

    return NGX_ERROR;
}


/* forget the connection: every pending command gets a NULL reply */

void
ngx_http_deferred_redis_drop(ngx_http_deferred_redis_t *rs)
{
    redisAsyncContext  *ac;

    ac = rs->ac;
    rs->ac = NULL;
    rs->state = NGX_HTTP_DEFERRED_REDIS_BACKOFF;

    ngx_http_deferred_redis_schedule(rs);

    if (ac) {
        redisAsyncFree(ac);
    }

    ngx_http_deferred_redis_failed(rs, "Redis is not reachable");
}


void
ngx_http_deferred_redis_timer_handler(ngx_event_t *ev)
{
    ngx_http_deferred_redis_t  *rs = ev->data;

    if (rs->nseeds) {
        ngx_http_deferred_cluster_timer(rs);
        return;
    }

    switch (rs->state) {

    case NGX_HTTP_DEFERRED_REDIS_CONNECTING:
        ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                      "deferred: redis %V: connect timed out", &rs->name);
        rs->down_logged = 1;
        ngx_http_deferred_redis_drop(rs);
        break;

    case NGX_HTTP_DEFERRED_REDIS_BACKOFF:
    case NGX_HTTP_DEFERRED_REDIS_IDLE:
        if (rs->cluster) {
            /* a cluster node connects again when a command comes, or
             * here for the commands that came too soon after a failure */
            if (rs->soon) {
                rs->last_attempt = ngx_current_msec;

                if (ngx_http_deferred_redis_connect_to(rs) != NGX_OK) {
                    ngx_http_deferred_cluster_node_failed(rs);
                }
            }

            break;
        }

        if (ngx_http_deferred_redis_connect(rs) != NGX_OK) {
            /* failed at once: what waited for this attempt fails now */
            ngx_http_deferred_redis_failed(rs, "Redis is not reachable");
        }

        break;

    case NGX_HTTP_DEFERRED_REDIS_SENTINEL:
        if (ngx_http_deferred_redis_ask_expired(rs) != NGX_OK) {
            ngx_http_deferred_sentinel_ask(rs);
        }

        break;

    default:
        break;
    }
}


static void
ngx_http_deferred_redis_connect_cb(const redisAsyncContext *ac, int status)
{
    ngx_http_deferred_redis_t  *rs = ac->data;

    if (status == REDIS_OK || rs->ac != ac) {
        return;
    }

    /* hiredis frees the context when this returns */

    ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                  "deferred: redis %V: connect failed: %s",
                  &rs->name, ac->errstr);
    rs->down_logged = 1;

    rs->ac = NULL;
    rs->state = NGX_HTTP_DEFERRED_REDIS_BACKOFF;
    ngx_http_deferred_redis_schedule(rs);

    ngx_http_deferred_redis_failed(rs, "Redis is not reachable");
}


static void
ngx_http_deferred_redis_disconnect_cb(const redisAsyncContext *ac, int status)
{
    ngx_http_deferred_redis_t  *rs = ac->data;

    if (rs->ac != ac) {
        return;
    }

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: redis %V: connection lost: %s",
                      &rs->name, ac->errstr);
    } else {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: redis %V: connection closed", &rs->name);
    }

    rs->down_logged = 1;
    rs->ac = NULL;
    rs->state = NGX_HTTP_DEFERRED_REDIS_BACKOFF;
    rs->backoff = NGX_HTTP_DEFERRED_BACKOFF_MIN;
    ngx_http_deferred_redis_schedule(rs);

    ngx_http_deferred_redis_failed(rs, "Redis connection lost");
}


static void
ngx_http_deferred_redis_setup_cb(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                 *reply = r;
    dq_server_info_t            info;
    ngx_http_deferred_redis_t  *rs = ac->data;

    if (reply == NULL || rs->ac != ac) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                      "deferred: redis %V: %s failed: %*s; the connection "
                      "is not used", &rs->name, (char *) privdata,
                      (size_t) reply->len, reply->str);
        rs->down_logged = 1;
        ngx_http_deferred_redis_drop(rs);
        return;
    }

    if (ngx_strcmp((char *) privdata, "ROLE") == 0) {

        if (!dq_reply_is_master_role(reply)) {
            ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                          "deferred: redis %V: %V:%d, named by the sentinels "
                          "for \"%V\", is not a master; asking them again",
                          &rs->name, &rs->host, (int) rs->port, &rs->master);
            rs->down_logged = 1;
            ngx_http_deferred_redis_drop(rs);
        }

        return;
    }

    if (ngx_strcmp((char *) privdata, "INFO") == 0) {

        if (reply->type != REDIS_REPLY_STRING
            || dq_server_info(reply->str, reply->len, &info) != 0
            || info.too_old)
        {
            if (reply->type != REDIS_REPLY_STRING) {
                ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                              "deferred: redis %V: INFO did not answer a "
                              "text; the connection is not used",
                              &rs->name);

            } else {
                ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                              "deferred: redis %V: Redis %s is too old: "
                              DQ_REDIS_MIN_VERSION " or later is needed "
                              "(script flags, ZMSCORE); the connection is "
                              "not used", &rs->name,
                              info.version[0] ? info.version : "(unknown)");
            }
            rs->down_logged = 1;
            ngx_http_deferred_redis_drop(rs);
            return;
        }

        if (info.evicts) {
            ngx_log_error(NGX_LOG_WARN, rs->log, 0,
                          "deferred: redis %V: maxmemory-policy %s may "
                          "evict keys, and a queue's keys hold its tasks: "
                          "set maxmemory-policy noeviction",
                          &rs->name, info.policy);
        }

        return;
    }

    if (ngx_strcmp((char *) privdata, "SCRIPT LOAD") != 0) {
        return;
    }

    /* the last setup command: the connection is usable */

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    ngx_log_error((ngx_uint_t) (rs->down_logged ? NGX_LOG_NOTICE
                                                : NGX_LOG_INFO),
                  rs->log, 0,
                  "deferred: redis %V: connected", &rs->name);

    rs->down_logged = 0;
    rs->state = NGX_HTTP_DEFERRED_REDIS_READY;
    rs->backoff = NGX_HTTP_DEFERRED_BACKOFF_MIN;

    /* what waited for the setup goes now */
    if (rs->cluster) {
        ngx_http_deferred_cluster_node_ready(rs);
        return;
    }

    ngx_http_deferred_merge_ready(rs);
    ngx_http_deferred_redis_wake(rs, NGX_OK);
}
