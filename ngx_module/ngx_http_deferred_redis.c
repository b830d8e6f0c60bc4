
/*
 * ngx_http_deferred_module: Redis on nginx's event loop.
 *
 * Owns the hiredis <-> nginx adapter (the Redis socket wrapped in an
 * ngx_connection_t, level-triggered read/write events, nginx closing the
 * fd) and the per-worker connection of each configured Redis: connected at
 * init_process by numeric address or unix socket (resolved at config
 * time), AUTH/SELECT/INFO/SCRIPT LOAD pipelined ahead of everything else
 * and the connection used only once all of them answered OK (a refused
 * AUTH or SELECT must not let a command run unauthenticated or in the
 * wrong database; an older Redis than DQ_REDIS_MIN_VERSION is refused, an
 * evicting maxmemory-policy is warned about), commands of concurrent
 * requests pipelined on it, reconnect with backoff, EVALSHA retried as
 * EVAL on NOSCRIPT, WAIT for replicas when configured. A Redis Cluster
 * (the end of this file): a slot map and a connection per master, each
 * command routed by its key, MOVED and ASK followed.
 *
 * Invariants: hiredis runs each callback exactly once (a NULL reply on
 * disconnect); a command's handler runs exactly once (with NULL on
 * timeout of the connection, disconnect or failed send), except when the
 * worker exits; the command (and what its argv points to) must live until
 * then. Nothing here blocks.
 */


#include "ngx_http_deferred_module.h"


#define NGX_HTTP_DEFERRED_REDIS_IDLE        0
#define NGX_HTTP_DEFERRED_REDIS_CONNECTING  1
#define NGX_HTTP_DEFERRED_REDIS_READY       2
#define NGX_HTTP_DEFERRED_REDIS_BACKOFF     3
#define NGX_HTTP_DEFERRED_REDIS_SENTINEL    4
#define NGX_HTTP_DEFERRED_REDIS_SLOTS       5   /* a cluster: asking */

#define NGX_HTTP_DEFERRED_BACKOFF_MIN       100
#define NGX_HTTP_DEFERRED_BACKOFF_MAX       2000

#define NGX_HTTP_DEFERRED_REDIRECTS         5   /* MOVED/ASK per command */
#define NGX_HTTP_DEFERRED_MAP_MIN           100 /* ms between questions */
#define NGX_HTTP_DEFERRED_MAX_NODES         1000


struct ngx_http_deferred_redis_cmd_s {
    ngx_http_deferred_redis_handler_pt   handler;   /* once; never while exiting */
    void                                *data;
    dq_cmd_t                            *cmd;       /* for the EVAL retry */
    ngx_http_deferred_redis_t           *redis;     /* a cluster: the node */
    ngx_http_deferred_redis_t           *cluster;   /* NULL: not routed */
    u_char                              *buf;       /* cluster: as sent */
    size_t                               size;
    ngx_queue_t                          link;      /* in a node's waitq */
    ngx_uint_t                           redirects;
    unsigned                             eval:1;
    unsigned                             asking:1;  /* ASKING before it */
};


static ngx_int_t ngx_http_deferred_redis_connect(ngx_http_deferred_redis_t *rs);
static ngx_int_t ngx_http_deferred_redis_connect_to(
    ngx_http_deferred_redis_t *rs);
static redisAsyncContext *ngx_http_deferred_redis_open(
    ngx_http_deferred_redis_t *rs, const char *host, in_port_t port);
static void ngx_http_deferred_redis_ask(ngx_http_deferred_redis_t *rs);
static void ngx_http_deferred_redis_ask_failed(ngx_http_deferred_redis_t *rs,
    const char *why);
static void ngx_http_deferred_redis_sentinel_connect_cb(
    const redisAsyncContext *ac, int status);
static void ngx_http_deferred_redis_sentinel_cb(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_deferred_redis_drop(ngx_http_deferred_redis_t *rs);
static void ngx_http_deferred_redis_schedule(ngx_http_deferred_redis_t *rs);
static void ngx_http_deferred_redis_timer_handler(ngx_event_t *ev);
static void ngx_http_deferred_redis_connect_cb(const redisAsyncContext *ac,
    int status);
static void ngx_http_deferred_redis_disconnect_cb(const redisAsyncContext *ac,
    int status);
static void ngx_http_deferred_redis_setup_cb(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_deferred_redis_reply_cb(redisAsyncContext *ac, void *r,
    void *privdata);

static void ngx_http_deferred_redis_add_read(void *privdata);
static void ngx_http_deferred_redis_del_read(void *privdata);
static void ngx_http_deferred_redis_add_write(void *privdata);
static void ngx_http_deferred_redis_del_write(void *privdata);
static void ngx_http_deferred_redis_cleanup(void *privdata);
static void ngx_http_deferred_redis_read_handler(ngx_event_t *ev);
static void ngx_http_deferred_redis_write_handler(ngx_event_t *ev);

static void ngx_http_deferred_redis_failed(ngx_http_deferred_redis_t *rs,
    const char *failure);
static void ngx_http_deferred_cluster_init(ngx_http_deferred_redis_t *rs);
static void ngx_http_deferred_cluster_exit(ngx_http_deferred_redis_t *rs);
static void ngx_http_deferred_cluster_ask(ngx_http_deferred_redis_t *rs);
static void ngx_http_deferred_cluster_ask_failed(
    ngx_http_deferred_redis_t *rs, const char *why);
static void ngx_http_deferred_cluster_timer(ngx_http_deferred_redis_t *rs);
static void ngx_http_deferred_cluster_refresh(ngx_http_deferred_redis_t *rs);
static void ngx_http_deferred_cluster_connect_cb(const redisAsyncContext *ac,
    int status);
static void ngx_http_deferred_cluster_slots_cb(redisAsyncContext *ac,
    void *r, void *privdata);
static ngx_int_t ngx_http_deferred_cluster_install(
    ngx_http_deferred_redis_t *rs, dq_cluster_map_t *m);
static ngx_int_t ngx_http_deferred_cluster_node(ngx_http_deferred_redis_t *rs,
    const char *host, int port);
static ngx_http_deferred_redis_cmd_t *ngx_http_deferred_cluster_send(
    ngx_http_deferred_redis_t *rs, ngx_http_deferred_redis_cmd_t *after,
    dq_cmd_t *cmd, int argc, const char **argv, const size_t *argvlen,
    ngx_http_deferred_redis_handler_pt handler, void *data);
static ngx_int_t ngx_http_deferred_cluster_format(
    ngx_http_deferred_redis_cmd_t *rcmd, int argc, const char **argv,
    const size_t *argvlen);
static ngx_int_t ngx_http_deferred_cluster_route(
    ngx_http_deferred_redis_t *node, ngx_http_deferred_redis_cmd_t *rcmd);
static ngx_int_t ngx_http_deferred_cluster_append(
    ngx_http_deferred_redis_t *node, ngx_http_deferred_redis_cmd_t *rcmd);
static void ngx_http_deferred_cluster_node_ready(
    ngx_http_deferred_redis_t *node);
static void ngx_http_deferred_cluster_node_failed(
    ngx_http_deferred_redis_t *node);
static ngx_int_t ngx_http_deferred_cluster_redirect(
    ngx_http_deferred_redis_cmd_t *rcmd, redisReply *reply);
static void ngx_http_deferred_cluster_free(ngx_http_deferred_redis_cmd_t *rcmd);


/* the first failure of a run is an error, the retries that follow info */

static ngx_uint_t
ngx_http_deferred_redis_level(ngx_http_deferred_redis_t *rs)
{
    return rs->down_logged ? NGX_LOG_INFO : NGX_LOG_ERR;
}


/* the adapter: maps hiredis' event hooks to nginx events, nothing else */

static void
ngx_http_deferred_redis_add_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "deferred: cannot add redis read event");
        }
    }
}


static void
ngx_http_deferred_redis_del_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_deferred_redis_add_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "deferred: cannot add redis write event");
        }
    }
}


static void
ngx_http_deferred_redis_del_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


static void
ngx_http_deferred_redis_cleanup(void *privdata)
{
    ngx_connection_t   *c = privdata;
    redisAsyncContext  *ac;

    ac = c->data;

    /* nginx closes the socket: hiredis must not close it again */
    ac->c.fd = -1;
    ac->ev.data = NULL;

    ngx_close_connection(c);
}


static void
ngx_http_deferred_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleRead(c->data);
}


static void
ngx_http_deferred_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleWrite(c->data);
}


/* the connection of one worker to one Redis */

ngx_int_t
ngx_http_deferred_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_deferred_main_conf_t *dmcf)
{
    ngx_uint_t                   i;
    ngx_http_deferred_redis_t  **rsp, *rs;

    rsp = dmcf->servers.elts;

    for (i = 0; i < dmcf->servers.nelts; i++) {
        rs = rsp[i];

        rs->log = cycle->log;
        rs->ac = NULL;
        rs->state = NGX_HTTP_DEFERRED_REDIS_IDLE;
        rs->backoff = NGX_HTTP_DEFERRED_BACKOFF_MIN;

        rs->pending = 0;
        ngx_http_deferred_merge_init(rs);

        ngx_memzero(&rs->timer, sizeof(ngx_event_t));
        rs->timer.handler = ngx_http_deferred_redis_timer_handler;
        rs->timer.data = rs;
        rs->timer.log = cycle->log;
        rs->timer.cancelable = 1;

        if (rs->nseeds) {
            ngx_http_deferred_cluster_init(rs);
            continue;
        }

        (void) ngx_http_deferred_redis_connect(rs);
    }

    return NGX_OK;
}


void
ngx_http_deferred_redis_exit_process(ngx_http_deferred_main_conf_t *dmcf)
{
    ngx_uint_t                   i;
    redisAsyncContext           *ac;
    ngx_http_deferred_redis_t  **rsp, *rs;

    rsp = dmcf->servers.elts;

    for (i = 0; i < dmcf->servers.nelts; i++) {
        rs = rsp[i];

        if (rs->nseeds) {
            ngx_http_deferred_cluster_exit(rs);
        }

        rs->exiting = 1;

        if (rs->timer.timer_set) {
            ngx_del_timer(&rs->timer);
        }

        ac = rs->ac;
        rs->ac = NULL;
        rs->state = NGX_HTTP_DEFERRED_REDIS_IDLE;

        if (ac) {
            redisAsyncFree(ac);
        }

        ac = rs->sac;
        rs->sac = NULL;

        if (ac) {
            ac->onConnect = NULL;
            redisAsyncFree(ac);
        }
    }
}


static ngx_int_t
ngx_http_deferred_redis_connect(ngx_http_deferred_redis_t *rs)
{
    rs->last_attempt = ngx_current_msec;

    if (rs->nsentinels) {
        /* where the primary is now: asked before every connect */
        rs->sasked = 0;
        ngx_http_deferred_redis_ask(rs);
        return NGX_OK;
    }

    return ngx_http_deferred_redis_connect_to(rs);
}


/* a context on nginx's loop: host and port, or rs->unix_path if host is
 * NULL; NULL (logged) when it cannot even start */

static redisAsyncContext *
ngx_http_deferred_redis_open(ngx_http_deferred_redis_t *rs,
    const char *host, in_port_t port)
{
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    if (host == NULL) {
        ac = redisAsyncConnectUnix((char *) rs->unix_path.data);

    } else {
        ac = redisAsyncConnect(host, port);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: redis %V: out of memory", &rs->name);
        return NULL;
    }

    if (ac->err) {
        ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                      "deferred: redis %V: connect failed (%s): %s",
                      &rs->name, host ? host : "unix socket", ac->errstr);
        rs->down_logged = 1;
        redisAsyncFree(ac);
        return NULL;
    }

    c = ngx_get_connection(ac->c.fd, rs->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        return NULL;
    }

    /* a reply's objects in one block (lib/dq_reply_mem.c), not two
     * allocations per element */
    ac->c.reader->fn = (redisReplyObjectFunctions *) &dq_reply_functions;

    if (host != NULL) {
        /* a peer that vanished (host down, NAT dropped the flow) is
         * noticed even on an idle connection */
        int  on = 1;

        if (setsockopt(ac->c.fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on))
            == -1)
        {
            ngx_log_error(NGX_LOG_INFO, rs->log, ngx_socket_errno,
                          "deferred: redis %V: SO_KEEPALIVE failed",
                          &rs->name);
        }
    }

    c->data = ac;
    c->read->handler = ngx_http_deferred_redis_read_handler;
    c->write->handler = ngx_http_deferred_redis_write_handler;
    c->read->log = rs->log;
    c->write->log = rs->log;

    ac->data = rs;
    ac->ev.data = c;
    ac->ev.addRead = ngx_http_deferred_redis_add_read;
    ac->ev.delRead = ngx_http_deferred_redis_del_read;
    ac->ev.addWrite = ngx_http_deferred_redis_add_write;
    ac->ev.delWrite = ngx_http_deferred_redis_del_write;
    ac->ev.cleanup = ngx_http_deferred_redis_cleanup;

    return ac;
}


/* the Redis itself: rs->host (for sentinel: what they named) */

static ngx_int_t
ngx_http_deferred_redis_connect_to(ngx_http_deferred_redis_t *rs)
{
    int                 argc;
    char                db[NGX_INT_T_LEN + 1];
    size_t              argvlen[3];
    const char         *argv[3];
    redisAsyncContext  *ac;
    const dq_script_t  *script;

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

    if (rs->password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (const char *) rs->password.data;
        argvlen[1] = rs->password.len;

        (void) redisAsyncCommandArgv(ac, ngx_http_deferred_redis_setup_cb,
                                     (void *) "AUTH", 2, argv, argvlen);
    }

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


/* ask the next sentinel where the primary is (a numeric address,
 * resolved at config time; the whole question bounded by
 * connect_timeout); after a round of them without an answer, back off */

static void
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

static void
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


static void
ngx_http_deferred_redis_schedule(ngx_http_deferred_redis_t *rs)
{
    if (rs->exiting) {
        return;
    }

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    ngx_add_timer(&rs->timer, rs->backoff);

    rs->backoff *= 2;

    if (rs->backoff > NGX_HTTP_DEFERRED_BACKOFF_MAX) {
        rs->backoff = NGX_HTTP_DEFERRED_BACKOFF_MAX;
    }
}


/* forget the connection: every pending command gets a NULL reply */

static void
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


static void
ngx_http_deferred_redis_timer_handler(ngx_event_t *ev)
{
    redisAsyncContext          *ac;
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
            /* a cluster node connects again when a command comes */
            break;
        }

        (void) ngx_http_deferred_redis_connect(rs);
        break;

    case NGX_HTTP_DEFERRED_REDIS_SENTINEL:
        if (rs->sac) {
            /* no answer within connect_timeout */
            ac = rs->sac;
            ac->onConnect = NULL;
            rs->sac = NULL;
            redisAsyncFree(ac);

            ngx_http_deferred_redis_ask_failed(rs, "timed out");
            break;
        }

        ngx_http_deferred_redis_ask(rs);
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
}


/* a connection failed before its setup answered, or was lost: what
 * waited for it fails (503) */

static void
ngx_http_deferred_redis_failed(ngx_http_deferred_redis_t *rs,
    const char *failure)
{
    if (rs->cluster) {
        ngx_http_deferred_cluster_node_failed(rs);
        return;
    }

    ngx_http_deferred_merge_fail_queued(rs, failure);
}


/* commands */

ngx_int_t
ngx_http_deferred_redis_usable(ngx_http_deferred_redis_t *rs)
{
    if (rs->nseeds) {
        if (rs->slots == NULL
            && !rs->exiting
            && rs->state == NGX_HTTP_DEFERRED_REDIS_BACKOFF
            && ngx_current_msec - rs->last_attempt
               >= NGX_HTTP_DEFERRED_BACKOFF_MIN)
        {
            /* no map yet: the next request asks, at most once per
             * BACKOFF_MIN, without waiting for the backoff timer */
            if (rs->timer.timer_set) {
                ngx_del_timer(&rs->timer);
            }

            ngx_http_deferred_cluster_refresh(rs);
        }

        return ngx_http_deferred_redis_connecting(rs);
    }

    if (rs->ac == NULL
        && !rs->exiting
        && rs->state == NGX_HTTP_DEFERRED_REDIS_BACKOFF
        && ngx_current_msec - rs->last_attempt >= NGX_HTTP_DEFERRED_BACKOFF_MIN)
    {
        /* the next request reconnects, at most once per BACKOFF_MIN */
        (void) ngx_http_deferred_redis_connect(rs);
    }

    return ngx_http_deferred_redis_connecting(rs);
}


/* connected, connecting, or asking the sentinels (between two of them
 * too): what is queued waits for it */

ngx_int_t
ngx_http_deferred_redis_connecting(ngx_http_deferred_redis_t *rs)
{
    if (rs->nseeds) {
        /* a cluster: a map, or asking for the first one */
        return (rs->slots || rs->state == NGX_HTTP_DEFERRED_REDIS_SLOTS)
               ? NGX_OK : NGX_DECLINED;
    }

    return (rs->ac || rs->state == NGX_HTTP_DEFERRED_REDIS_SENTINEL)
           ? NGX_OK : NGX_DECLINED;
}


/* commands go only on a connection whose setup answered OK */

ngx_int_t
ngx_http_deferred_redis_ready(ngx_http_deferred_redis_t *rs)
{
    if (rs->nseeds) {
        /* a cluster: each command waits for its own node */
        return rs->slots ? NGX_OK : NGX_DECLINED;
    }

    return (rs->ac && rs->state == NGX_HTTP_DEFERRED_REDIS_READY)
           ? NGX_OK : NGX_DECLINED;
}


/* a script command in Redis' wire format, formatted by dq_resp_format
 * (hiredis' sdscatfmt per argument was ~10 % of a worker's instructions
 * for one task per request); other commands as hiredis formats them */

static int
ngx_http_deferred_redis_append(redisAsyncContext *ac,
    ngx_http_deferred_redis_cmd_t *rcmd, int argc, const char **argv,
    const size_t *argvlen)
{
    int      rc;
    char    *buf;
    size_t   size;

    if (rcmd->cmd == NULL) {
        return redisAsyncCommandArgv(ac, ngx_http_deferred_redis_reply_cb,
                                     rcmd, argc, argv, argvlen);
    }

    size = dq_resp_size(argc, argv, argvlen);

    buf = ngx_alloc(size, rcmd->redis->log);
    if (buf == NULL) {
        return REDIS_ERR;
    }

    (void) dq_resp_format(buf, argc, argv, argvlen);

    rc = redisAsyncFormattedCommand(ac, ngx_http_deferred_redis_reply_cb,
                                    rcmd, buf, size);
    ngx_free(buf);

    return rc;
}


/* one command on a ready connection; its handler runs exactly once */

static ngx_http_deferred_redis_cmd_t *
ngx_http_deferred_redis_send(ngx_http_deferred_redis_t *rs, dq_cmd_t *cmd,
    int argc, const char **argv, const size_t *argvlen,
    ngx_http_deferred_redis_handler_pt handler, void *data)
{
    ngx_http_deferred_redis_cmd_t  *rcmd;

    if (ngx_http_deferred_redis_ready(rs) != NGX_OK) {
        return NULL;
    }

    if (rs->nseeds) {
        return ngx_http_deferred_cluster_send(rs, NULL, cmd, argc, argv,
                                              argvlen, handler, data);
    }

    rcmd = ngx_alloc(sizeof(ngx_http_deferred_redis_cmd_t), rs->log);
    if (rcmd == NULL) {
        return NULL;
    }

    ngx_memzero(rcmd, sizeof(ngx_http_deferred_redis_cmd_t));

    rcmd->handler = handler;
    rcmd->data = data;
    rcmd->cmd = cmd;
    rcmd->redis = rs;
    rcmd->eval = (cmd == NULL);     /* not a script: never re-sent */

    if (ngx_http_deferred_redis_append(rs->ac, rcmd, argc, argv, argvlen)
        != REDIS_OK)
    {
        ngx_free(rcmd);
        return NULL;
    }

    if (rs->pending++ == 0) {
        rs->waiting_since = ngx_current_msec;
    }

    return rcmd;
}


ngx_http_deferred_redis_cmd_t *
ngx_http_deferred_redis_eval(ngx_http_deferred_redis_t *rs, dq_cmd_t *cmd,
    ngx_http_deferred_redis_handler_pt handler, void *data)
{
    return ngx_http_deferred_redis_send(rs, cmd, cmd->argc, cmd->argv,
                                        cmd->argvlen, handler, data);
}


/* SADD dq:queues queue; nobody waits for its reply: handler sees it */

ngx_int_t
ngx_http_deferred_redis_register(ngx_http_deferred_redis_t *rs,
    dq_str_t queue, ngx_http_deferred_redis_handler_pt handler, void *data)
{
    size_t       argvlen[3];
    const char  *argv[3];

    argv[0] = "SADD";
    argvlen[0] = 4;
    argv[1] = DQ_QUEUES_KEY;
    argvlen[1] = sizeof(DQ_QUEUES_KEY) - 1;
    argv[2] = queue.ptr;
    argvlen[2] = queue.len;

    return ngx_http_deferred_redis_send(rs, NULL, 3, argv, argvlen,
                                        handler, data)
           ? NGX_OK : NGX_ERROR;
}


/* WAIT replicas timeout, right behind the commands already sent (a
 * cluster: behind "after", on the node it went to) */

ngx_int_t
ngx_http_deferred_redis_wait(ngx_http_deferred_redis_t *rs,
    ngx_http_deferred_redis_cmd_t *after,
    ngx_http_deferred_redis_handler_pt handler, void *data)
{
    u_char       n[NGX_INT_T_LEN], ms[NGX_INT_T_LEN];
    size_t       argvlen[3];
    const char  *argv[3];

    argv[0] = "WAIT";
    argvlen[0] = 4;
    argv[1] = (const char *) n;
    argvlen[1] = ngx_sprintf(n, "%i", rs->replicas) - n;
    argv[2] = (const char *) ms;
    argvlen[2] = ngx_sprintf(ms, "%M", rs->replicas_timeout) - ms;

    if (rs->nseeds) {
        if (after == NULL || after->redis == NULL) {
            return NGX_ERROR;
        }

        return ngx_http_deferred_cluster_send(rs, after, NULL, 3, argv,
                                              argvlen, handler, data)
               ? NGX_OK : NGX_ERROR;
    }

    return ngx_http_deferred_redis_send(rs, NULL, 3, argv, argvlen, handler,
                                        data)
           ? NGX_OK : NGX_ERROR;
}


/*
 * A request's deferred_timeout passed. The connection is dropped (and
 * every command on it failed) only when it is stuck: commands are waiting
 * and nothing has come back for the longest deferred_timeout of any
 * location using this Redis. One location's short timeout does not cut
 * the others' requests off.
 */

void
ngx_http_deferred_redis_timed_out(ngx_http_deferred_redis_t *rs)
{
    ngx_uint_t                   i;
    ngx_http_deferred_redis_t  **node;

    if (rs->nseeds) {
        /* each node by its own commands */
        node = rs->nodes.elts;

        for (i = 0; i < rs->nodes.nelts; i++) {
            ngx_http_deferred_redis_timed_out(node[i]);
        }

        return;
    }

    if (rs->ac == NULL) {
        return;
    }

    if (rs->pending == 0
        || ngx_current_msec - rs->waiting_since < rs->max_timeout)
    {
        ngx_log_error(NGX_LOG_INFO, rs->log, 0,
                      "deferred: redis %V: slow, the connection is kept "
                      "(%ui commands waiting)", &rs->name, rs->pending);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                  "deferred: redis %V: command timed out, reconnecting",
                  &rs->name);

    rs->down_logged = 1;
    ngx_http_deferred_redis_drop(rs);
}


static void
ngx_http_deferred_redis_reply_cb(redisAsyncContext *ac, void *r,
    void *privdata)
{
    void                                *data;
    redisReply                          *reply = r;
    ngx_http_deferred_redis_t           *rs;
    ngx_http_deferred_redis_cmd_t       *rcmd = privdata;
    ngx_http_deferred_redis_handler_pt   handler;

    if (rcmd->redis->exiting) {
        ngx_http_deferred_cluster_free(rcmd);
        return;
    }

    /* one reply (or the loss of the connection) for one command */
    rcmd->redis->pending--;
    rcmd->redis->waiting_since = ngx_current_msec;

    if (reply && !rcmd->eval && dq_reply_is_noscript(reply)) {
        ngx_log_error(NGX_LOG_INFO, rcmd->redis->log, 0,
                      "deferred: redis %V: NOSCRIPT, retrying with EVAL",
                      &rcmd->redis->name);

        dq_cmd_use_eval(rcmd->cmd);
        rcmd->eval = 1;

        if (rcmd->cluster) {
            /* the same node, ASKING again if it was asked */
            if (ngx_http_deferred_cluster_format(rcmd, rcmd->cmd->argc,
                                                 rcmd->cmd->argv,
                                                 rcmd->cmd->argvlen)
                == NGX_OK
                && ngx_http_deferred_cluster_append(rcmd->redis, rcmd)
                   == NGX_OK)
            {
                return;
            }

        } else if (ngx_http_deferred_redis_append(ac, rcmd, rcmd->cmd->argc,
                                                  rcmd->cmd->argv,
                                                  rcmd->cmd->argvlen)
                   == REDIS_OK)
        {
            rcmd->redis->pending++;
            return;
        }

        reply = NULL;
    }

    if (reply && rcmd->cluster && reply->type == REDIS_REPLY_ERROR
        && ngx_http_deferred_cluster_redirect(rcmd, reply) == NGX_OK)
    {
        return;     /* re-sent where MOVED or ASK said */
    }

    handler = rcmd->handler;
    data = rcmd->data;
    rs = rcmd->redis;

    ngx_http_deferred_cluster_free(rcmd);

    handler(data, reply);

    if (reply && rs->nsentinels && rs->ac == ac
        && dq_reply_is_elsewhere(reply))
    {
        /* a demoted primary (READONLY) or one going away: ask the
         * sentinels again; the commands behind this one fail now */
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: redis %V: %*s; asking the sentinels again",
                      &rs->name, (size_t) (reply->len > 80 ? 80 : reply->len),
                      reply->str);
        rs->down_logged = 1;
        ngx_http_deferred_redis_drop(rs);
    }
}


/*
 * Redis Cluster. The configured redis_t routes; each master the slot map
 * names is a node: a redis_t of its own with the connection above (same
 * setup pipeline, AUTH on every node, never SELECT), opened when a
 * command for one of its slots comes and again, after a failure, when the
 * next one comes (at most once per BACKOFF_MIN). The map is asked (AUTH,
 * CLUSTER SLOTS on a short-lived connection: the seeds first, then the
 * nodes known) at init_process, and again on MOVED, on CLUSTERDOWN and
 * when a node's connection fails, at most once per MAP_MIN. A command
 * goes to the node of its slot (dq_cluster_cmd_slot); MOVED re-sends it
 * at once to the node named (and moves that slot in the map), ASK sends
 * ASKING and the command to the node named, without changing the map;
 * at most NGX_HTTP_DEFERRED_REDIRECTS of them per command. Both mean the
 * command did not run, so re-sending cannot store anything twice; a lost
 * reply is never re-sent (the caller sees NULL, as without a cluster).
 * Commands for a node still connecting wait in its waitq, in order.
 */

static void
ngx_http_deferred_cluster_init(ngx_http_deferred_redis_t *rs)
{
    rs->slots = NULL;
    rs->sac = NULL;
    rs->snext = 0;
    rs->sasked = 0;
    rs->map_again = 0;

    if (ngx_array_init(&rs->nodes, ngx_cycle->pool, 8,
                       sizeof(ngx_http_deferred_redis_t *))
        != NGX_OK)
    {
        rs->state = NGX_HTTP_DEFERRED_REDIS_BACKOFF;
        return;
    }

    ngx_http_deferred_cluster_refresh(rs);
}


static void
ngx_http_deferred_cluster_exit(ngx_http_deferred_redis_t *rs)
{
    ngx_uint_t                      i;
    ngx_queue_t                    *q;
    redisAsyncContext              *ac;
    ngx_http_deferred_redis_t     **node, *n;
    ngx_http_deferred_redis_cmd_t  *rcmd;

    node = rs->nodes.elts;

    for (i = 0; i < rs->nodes.nelts; i++) {
        n = node[i];
        n->exiting = 1;

        if (n->timer.timer_set) {
            ngx_del_timer(&n->timer);
        }

        /* never sent: freed without their handlers (the worker exits) */
        while (!ngx_queue_empty(&n->waitq)) {
            q = ngx_queue_head(&n->waitq);
            ngx_queue_remove(q);
            rcmd = ngx_queue_data(q, ngx_http_deferred_redis_cmd_t, link);
            ngx_http_deferred_cluster_free(rcmd);
        }

        ac = n->ac;
        n->ac = NULL;

        if (ac) {
            redisAsyncFree(ac);
        }
    }

    if (rs->slots) {
        ngx_free(rs->slots);
        rs->slots = NULL;
    }
}


/* ask for the map now, or as soon as MAP_MIN allows; once if asking */

static void
ngx_http_deferred_cluster_refresh(ngx_http_deferred_redis_t *rs)
{
    ngx_msec_t  since;

    if (rs->exiting) {
        return;
    }

    if (rs->state == NGX_HTTP_DEFERRED_REDIS_SLOTS) {
        rs->map_again = 1;
        return;
    }

    if (rs->timer.timer_set) {
        return;         /* a question is due already */
    }

    since = ngx_current_msec - rs->map_asked;

    if (rs->map_asked && since < NGX_HTTP_DEFERRED_MAP_MIN) {
        ngx_add_timer(&rs->timer, NGX_HTTP_DEFERRED_MAP_MIN - since);
        return;
    }

    rs->state = NGX_HTTP_DEFERRED_REDIS_SLOTS;
    rs->sasked = 0;
    rs->snext = 0;
    rs->map_asked = ngx_current_msec;
    rs->last_attempt = ngx_current_msec;

    ngx_http_deferred_cluster_ask(rs);
}


static void
ngx_http_deferred_cluster_timer(ngx_http_deferred_redis_t *rs)
{
    redisAsyncContext  *ac;

    if (rs->sac) {
        /* no answer within connect_timeout */
        ac = rs->sac;
        ac->onConnect = NULL;
        rs->sac = NULL;
        redisAsyncFree(ac);

        ngx_http_deferred_cluster_ask_failed(rs, "timed out");
        return;
    }

    if (rs->state == NGX_HTTP_DEFERRED_REDIS_SLOTS) {
        ngx_http_deferred_cluster_ask(rs);      /* the next node */
        return;
    }

    ngx_http_deferred_cluster_refresh(rs);
}


/* the next node to ask: the seeds, then every node known; after a round
 * of them without an answer, back off */

static void
ngx_http_deferred_cluster_ask(ngx_http_deferred_redis_t *rs)
{
    int                          argc;
    size_t                       argvlen[2];
    const char                  *argv[2], *host;
    in_port_t                    port;
    ngx_uint_t                   total, k;
    redisAsyncContext           *ac;
    ngx_http_deferred_redis_t  **node;

    if (rs->exiting) {
        return;
    }

    total = rs->nseeds + rs->nodes.nelts;

    if (rs->sasked >= total) {
        ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                      "deferred: redis %V: no cluster node answered "
                      "CLUSTER SLOTS%s", &rs->name,
                      rs->slots ? "; the last map is kept" : "");
        rs->down_logged = 1;
        rs->sasked = 0;
        rs->map_again = 0;
        rs->state = NGX_HTTP_DEFERRED_REDIS_BACKOFF;
        ngx_http_deferred_redis_schedule(rs);

        if (rs->slots == NULL) {
            ngx_http_deferred_merge_fail_queued(rs, "Redis is not reachable");
        }

        return;
    }

    k = rs->snext++ % total;
    rs->sasked++;

    if (k < rs->nseeds) {
        host = (const char *) rs->seeds[k].host.data;
        port = rs->seeds[k].port;

    } else {
        node = rs->nodes.elts;
        host = (const char *) node[k - rs->nseeds]->host.data;
        port = node[k - rs->nseeds]->port;
    }

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    ngx_add_timer(&rs->timer, rs->connect_timeout);

    ac = ngx_http_deferred_redis_open(rs, host, port);
    if (ac == NULL) {
        ngx_http_deferred_cluster_ask_failed(rs, "cannot connect");
        return;
    }

    rs->sac = ac;
    redisAsyncSetConnectCallback(ac, ngx_http_deferred_cluster_connect_cb);

    if (rs->password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (const char *) rs->password.data;
        argvlen[1] = rs->password.len;

        (void) redisAsyncCommandArgv(ac, ngx_http_deferred_cluster_slots_cb,
                                     (void *) "AUTH", 2, argv, argvlen);
    }

    argc = 2;
    argv[0] = "CLUSTER";
    argvlen[0] = 7;
    argv[1] = "SLOTS";
    argvlen[1] = 5;

    if (redisAsyncCommandArgv(ac, ngx_http_deferred_cluster_slots_cb,
                              (void *) "CLUSTER SLOTS", argc, argv, argvlen)
        != REDIS_OK)
    {
        rs->sac = NULL;
        ac->onConnect = NULL;
        redisAsyncFree(ac);
        ngx_http_deferred_cluster_ask_failed(rs, "cannot send the question");
    }
}


/* this node did not answer usably: the next one, from the timer (not from
 * inside a callback of the context being freed) */

static void
ngx_http_deferred_cluster_ask_failed(ngx_http_deferred_redis_t *rs,
    const char *why)
{
    ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                  "deferred: redis %V: CLUSTER SLOTS: %s", &rs->name, why);

    rs->sac = NULL;

    if (rs->exiting) {
        return;
    }

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    rs->state = NGX_HTTP_DEFERRED_REDIS_SLOTS;
    ngx_add_timer(&rs->timer, 1);
}


static void
ngx_http_deferred_cluster_connect_cb(const redisAsyncContext *ac, int status)
{
    ngx_http_deferred_redis_t  *rs = ac->data;

    if (status == REDIS_OK || rs->sac != ac) {
        return;
    }

    /* hiredis frees the context when this returns */
    ngx_http_deferred_cluster_ask_failed(rs, ac->errstr);
}


static void
ngx_http_deferred_cluster_slots_cb(redisAsyncContext *ac, void *r,
    void *privdata)
{
    char                       *host;
    dq_error_t                  err;
    redisReply                 *reply = r;
    dq_cluster_map_t           *m;
    ngx_http_deferred_redis_t  *rs = ac->data;
    u_char                      text[NGX_SOCKADDR_STRLEN + 1];

    if (rs->sac != ac || rs->exiting) {
        return;
    }

    if (ngx_strcmp((char *) privdata, "AUTH") == 0
        && (reply == NULL || reply->type != REDIS_REPLY_ERROR))
    {
        return;     /* CLUSTER SLOTS' answer follows */
    }

    /* the address asked, for a map naming a node "" (itself) */
    host = "";

    if (ac->c.tcp.host) {
        (void) ngx_cpystrn(text, (u_char *) ac->c.tcp.host, sizeof(text));
        host = (char *) text;
    }

    rs->sac = NULL;
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    redisAsyncFree(ac);             /* once this callback returns */

    if (reply == NULL) {
        ngx_http_deferred_cluster_ask_failed(rs, ac->errstr[0] ? ac->errstr
                                                 : "connection lost");
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(ngx_http_deferred_redis_level(rs), rs->log, 0,
                      "deferred: redis %V: %s refused: %*s", &rs->name,
                      (char *) privdata,
                      (size_t) (reply->len > 200 ? 200 : reply->len),
                      reply->str);
        ngx_http_deferred_cluster_ask_failed(rs, "refused");
        return;
    }

    m = ngx_alloc(sizeof(dq_cluster_map_t), rs->log);
    if (m == NULL) {
        ngx_http_deferred_cluster_ask_failed(rs, "out of memory");
        return;
    }

    dq_cluster_map_init(m);

    if (dq_cluster_map_parse(m, reply, host, &err) != DQ_OK) {
        ngx_free(m);
        ngx_http_deferred_cluster_ask_failed(rs, err.msg);
        return;
    }

    if (ngx_http_deferred_cluster_install(rs, m) != NGX_OK) {
        dq_cluster_map_free(m);
        ngx_free(m);
        ngx_http_deferred_cluster_ask_failed(rs, "out of memory");
        return;
    }

    dq_cluster_map_free(m);
    ngx_free(m);
}


/* the map answered: slots to our nodes (made when new) */

static ngx_int_t
ngx_http_deferred_cluster_install(ngx_http_deferred_redis_t *rs,
    dq_cluster_map_t *m)
{
    size_t       i;
    ngx_int_t   *idx;
    ngx_uint_t   first, missing, changed;

    idx = ngx_alloc((m->nnodes + 1) * sizeof(ngx_int_t), rs->log);
    if (idx == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < m->nnodes; i++) {
        /* -1 (logged) for a node named by a host name */
        idx[i] = ngx_http_deferred_cluster_node(rs, m->nodes[i].host,
                                                m->nodes[i].port);
    }

    first = (rs->slots == NULL);

    if (first) {
        rs->slots = ngx_alloc(DQ_CLUSTER_SLOTS * sizeof(int16_t), rs->log);
        if (rs->slots == NULL) {
            ngx_free(idx);
            return NGX_ERROR;
        }
    }

    missing = 0;
    changed = 0;

    for (i = 0; i < DQ_CLUSTER_SLOTS; i++) {
        int16_t  n = m->slot[i] < 0 ? -1 : (int16_t) idx[m->slot[i]];

        if (n < 0) {
            missing++;
        }

        if (first || rs->slots[i] != n) {
            changed++;
            rs->slots[i] = n;
        }
    }

    ngx_free(idx);

    if (changed) {
        ngx_log_error((ngx_uint_t) (first ? NGX_LOG_INFO : NGX_LOG_NOTICE),
                      rs->log, 0,
                      "deferred: redis %V: slot map: %uz masters, "
                      "%ui slots changed, %ui without a master",
                      &rs->name, m->nnodes, changed, missing);
    }

    rs->state = NGX_HTTP_DEFERRED_REDIS_READY;
    rs->down_logged = 0;
    rs->backoff = NGX_HTTP_DEFERRED_BACKOFF_MIN;
    rs->sasked = 0;

    if (rs->timer.timer_set) {
        ngx_del_timer(&rs->timer);
    }

    if (rs->map_again) {
        rs->map_again = 0;
        ngx_http_deferred_cluster_refresh(rs);
    }

    if (first) {
        /* what waited for the map goes now */
        ngx_http_deferred_merge_ready(rs);
    }

    return NGX_OK;
}


/* the node HOST:PORT (numeric), made when new; its index, or -1 */

static ngx_int_t
ngx_http_deferred_cluster_node(ngx_http_deferred_redis_t *rs,
    const char *host, int port)
{
    u_char                       bin[sizeof(struct in6_addr)];
    size_t                       len;
    ngx_uint_t                   i;
    ngx_http_deferred_redis_t  **node, *n;

    node = rs->nodes.elts;
    len = ngx_strlen(host);

    for (i = 0; i < rs->nodes.nelts; i++) {
        if (node[i]->port == port && node[i]->host.len == len
            && ngx_strncmp(node[i]->host.data, host, len) == 0)
        {
            return i;
        }
    }

    if (inet_pton(AF_INET, host, bin) != 1
        && inet_pton(AF_INET6, host, bin) != 1)
    {
        /* resolving a name here would block the worker */
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: redis %V: cluster node \"%s:%d\" is not a "
                      "numeric address; its slots are not served (set "
                      "cluster-preferred-endpoint-type ip)",
                      &rs->name, host, port);
        return -1;
    }

    if (rs->nodes.nelts >= NGX_HTTP_DEFERRED_MAX_NODES) {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: redis %V: more than %d cluster nodes; "
                      "\"%s:%d\" is not served", &rs->name,
                      NGX_HTTP_DEFERRED_MAX_NODES, host, port);
        return -1;
    }

    /* the cycle's pool: freed when the worker process exits */
    n = ngx_pcalloc(ngx_cycle->pool, sizeof(ngx_http_deferred_redis_t));
    node = ngx_array_push(&rs->nodes);

    if (n == NULL || node == NULL) {
        return -1;
    }

    n->host.data = ngx_pnalloc(ngx_cycle->pool, len + 1);
    n->name.data = ngx_pnalloc(ngx_cycle->pool,
                               sizeof("cluster node :65535") + len);

    if (n->host.data == NULL || n->name.data == NULL) {
        rs->nodes.nelts--;
        return -1;
    }

    ngx_memcpy(n->host.data, host, len + 1);
    n->host.len = len;
    n->port = (in_port_t) port;
    n->name.len = ngx_sprintf(n->name.data, "cluster node %s:%d", host, port)
                  - n->name.data;

    n->password = rs->password;
    n->connect_timeout = rs->connect_timeout;
    n->replicas = rs->replicas;
    n->replicas_timeout = rs->replicas_timeout;
    n->max_timeout = rs->max_timeout;
    n->cluster = rs;
    n->log = rs->log;
    n->state = NGX_HTTP_DEFERRED_REDIS_IDLE;
    n->backoff = NGX_HTTP_DEFERRED_BACKOFF_MIN;
    ngx_queue_init(&n->waitq);

    n->timer.handler = ngx_http_deferred_redis_timer_handler;
    n->timer.data = n;
    n->timer.log = rs->log;
    n->timer.cancelable = 1;

    *node = n;

    return rs->nodes.nelts - 1;
}


/* a command routed by its slot (or, for WAIT, behind "after") */

static ngx_http_deferred_redis_cmd_t *
ngx_http_deferred_cluster_send(ngx_http_deferred_redis_t *rs,
    ngx_http_deferred_redis_cmd_t *after, dq_cmd_t *cmd, int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_deferred_redis_handler_pt handler, void *data)
{
    int                              slot;
    ngx_int_t                        i;
    ngx_http_deferred_redis_t      **node, *n;
    ngx_http_deferred_redis_cmd_t   *rcmd;

    if (rs->slots == NULL || rs->exiting) {
        return NULL;
    }

    node = rs->nodes.elts;

    if (after) {
        n = after->redis;

    } else {
        slot = dq_cluster_cmd_slot(argc, argv, argvlen);

        /* a command without a key: the master of slot 0 */
        i = rs->slots[slot < 0 ? 0 : slot];

        if (i < 0) {
            ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                          "deferred: redis %V: slot %d has no master in "
                          "the map", &rs->name, slot < 0 ? 0 : slot);
            ngx_http_deferred_cluster_refresh(rs);
            return NULL;
        }

        n = node[i];
    }

    rcmd = ngx_alloc(sizeof(ngx_http_deferred_redis_cmd_t), rs->log);
    if (rcmd == NULL) {
        return NULL;
    }

    ngx_memzero(rcmd, sizeof(ngx_http_deferred_redis_cmd_t));

    rcmd->handler = handler;
    rcmd->data = data;
    rcmd->cmd = cmd;
    rcmd->cluster = rs;
    rcmd->eval = (cmd == NULL || cmd->script == DQ_SCRIPT__COUNT);

    if (ngx_http_deferred_cluster_format(rcmd, argc, argv, argvlen) != NGX_OK
        || ngx_http_deferred_cluster_route(n, rcmd) != NGX_OK)
    {
        ngx_http_deferred_cluster_free(rcmd);
        return NULL;
    }

    return rcmd;
}


/* the command in Redis' wire format, kept for a redirect */

static ngx_int_t
ngx_http_deferred_cluster_format(ngx_http_deferred_redis_cmd_t *rcmd,
    int argc, const char **argv, const size_t *argvlen)
{
    size_t   size;
    u_char  *buf;

    size = dq_resp_size(argc, argv, argvlen);

    buf = ngx_alloc(size, rcmd->cluster->log);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    (void) dq_resp_format((char *) buf, argc, argv, argvlen);

    if (rcmd->buf) {
        ngx_free(rcmd->buf);
    }

    rcmd->buf = buf;
    rcmd->size = size;

    return NGX_OK;
}


/* on the node's connection, or in its waitq while it connects */

static ngx_int_t
ngx_http_deferred_cluster_route(ngx_http_deferred_redis_t *node,
    ngx_http_deferred_redis_cmd_t *rcmd)
{
    rcmd->redis = node;

    if (node->exiting) {
        return NGX_ERROR;
    }

    if (ngx_http_deferred_redis_ready(node) == NGX_OK) {
        return ngx_http_deferred_cluster_append(node, rcmd);
    }

    if (node->ac == NULL) {
        /* opened when a command needs it; after a failure, at most once
         * per BACKOFF_MIN */
        if (node->state == NGX_HTTP_DEFERRED_REDIS_IDLE
            || ngx_current_msec - node->last_attempt
               >= NGX_HTTP_DEFERRED_BACKOFF_MIN)
        {
            node->last_attempt = ngx_current_msec;
            (void) ngx_http_deferred_redis_connect_to(node);
        }

        if (node->ac == NULL) {
            /* refused at once (logged): the map may have changed */
            ngx_http_deferred_cluster_refresh(node->cluster);
            return NGX_ERROR;
        }
    }

    ngx_queue_insert_tail(&node->waitq, &rcmd->link);

    return NGX_OK;
}


static ngx_int_t
ngx_http_deferred_cluster_append(ngx_http_deferred_redis_t *node,
    ngx_http_deferred_redis_cmd_t *rcmd)
{
    size_t       argvlen[1];
    const char  *argv[1];

    rcmd->redis = node;

    if (rcmd->asking) {
        argv[0] = "ASKING";
        argvlen[0] = 6;

        /* its +OK is not waited for */
        if (redisAsyncCommandArgv(node->ac, NULL, NULL, 1, argv, argvlen)
            != REDIS_OK)
        {
            return NGX_ERROR;
        }
    }

    if (redisAsyncFormattedCommand(node->ac, ngx_http_deferred_redis_reply_cb,
                                   rcmd, (char *) rcmd->buf, rcmd->size)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    if (node->pending++ == 0) {
        node->waiting_since = ngx_current_msec;
    }

    return NGX_OK;
}


/* the node's setup answered OK: what waited for it goes, in order */

static void
ngx_http_deferred_cluster_node_ready(ngx_http_deferred_redis_t *node)
{
    void                                *data;
    ngx_queue_t                         *q;
    ngx_http_deferred_redis_cmd_t       *rcmd;
    ngx_http_deferred_redis_handler_pt   handler;

    /* a queue's SADD goes again once per connection (merge.c) */
    node->cluster->generation++;

    while (!ngx_queue_empty(&node->waitq)
           && ngx_http_deferred_redis_ready(node) == NGX_OK)
    {
        q = ngx_queue_head(&node->waitq);
        ngx_queue_remove(q);
        rcmd = ngx_queue_data(q, ngx_http_deferred_redis_cmd_t, link);

        if (ngx_http_deferred_cluster_append(node, rcmd) == NGX_OK) {
            continue;
        }

        handler = rcmd->handler;
        data = rcmd->data;
        ngx_http_deferred_cluster_free(rcmd);

        handler(data, NULL);
    }
}


/* the node's connection failed or was lost (its sent commands had their
 * NULL replies already): the waiting ones were not sent, they fail the
 * same way; the map may have changed */

static void
ngx_http_deferred_cluster_node_failed(ngx_http_deferred_redis_t *node)
{
    void                                *data;
    ngx_queue_t                         *q;
    ngx_http_deferred_redis_cmd_t       *rcmd;
    ngx_http_deferred_redis_handler_pt   handler;

    while (!ngx_queue_empty(&node->waitq)) {
        q = ngx_queue_head(&node->waitq);
        ngx_queue_remove(q);
        rcmd = ngx_queue_data(q, ngx_http_deferred_redis_cmd_t, link);

        handler = rcmd->handler;
        data = rcmd->data;
        ngx_http_deferred_cluster_free(rcmd);

        handler(data, NULL);
    }

    ngx_http_deferred_cluster_refresh(node->cluster);
}


/* MOVED or ASK: NGX_OK when the command went where it was told */

static ngx_int_t
ngx_http_deferred_cluster_redirect(ngx_http_deferred_redis_cmd_t *rcmd,
    redisReply *reply)
{
    ngx_int_t                    i;
    dq_cluster_redirect_t        rd;
    ngx_http_deferred_redis_t   *rs, **node;
    static const char *const     clusterdown[] = { "CLUSTERDOWN" };

    rs = rcmd->cluster;

    if (!dq_cluster_redirect(reply, &rd)) {
        if (dq_reply_error_is(reply, clusterdown, 1)) {
            ngx_http_deferred_cluster_refresh(rs);
        }

        return NGX_DECLINED;    /* the caller sees the error */
    }

    if (rcmd->redirects++ == NGX_HTTP_DEFERRED_REDIRECTS) {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "deferred: redis %V: more than %d redirects for one "
                      "command, the last: %*s; it fails", &rs->name,
                      NGX_HTTP_DEFERRED_REDIRECTS,
                      (size_t) (reply->len > 80 ? 80 : reply->len),
                      reply->str);
        ngx_http_deferred_cluster_refresh(rs);
        return NGX_DECLINED;
    }

    i = ngx_http_deferred_cluster_node(rs, rd.host, rd.port);
    if (i < 0) {
        return NGX_DECLINED;
    }

    node = rs->nodes.elts;

    ngx_log_error(NGX_LOG_INFO, rs->log, 0,
                  "deferred: redis %V: %s %ud: to %s:%d", &rs->name,
                  rd.ask ? "ASK" : "MOVED", rd.slot, rd.host, rd.port);

    if (rd.ask) {
        /* this command only: the map stays */
        rcmd->asking = 1;

    } else {
        rcmd->asking = 0;

        if (rs->slots) {
            rs->slots[rd.slot] = (int16_t) i;
        }

        ngx_http_deferred_cluster_refresh(rs);
    }

    return ngx_http_deferred_cluster_route(node[i], rcmd);
}


/* a cluster's masters, as its map names them now: how many, and a command
 * sent to the i-th, whatever its keys (the readiness probe asks each) */

static ngx_http_deferred_redis_t *
ngx_http_deferred_cluster_master(ngx_http_deferred_redis_t *rs,
    ngx_uint_t nth, ngx_uint_t *count)
{
    u_char                       seen[NGX_HTTP_DEFERRED_MAX_NODES];
    ngx_uint_t                   i, n;
    ngx_http_deferred_redis_t  **node;

    n = 0;

    if (rs->slots == NULL) {
        *count = 0;
        return NULL;
    }

    ngx_memzero(seen, sizeof(seen));
    node = rs->nodes.elts;

    for (i = 0; i < DQ_CLUSTER_SLOTS; i++) {
        if (rs->slots[i] < 0 || seen[rs->slots[i]]) {
            continue;
        }

        seen[rs->slots[i]] = 1;

        if (n++ == nth) {
            return node[rs->slots[i]];
        }
    }

    *count = n;

    return NULL;
}


ngx_uint_t
ngx_http_deferred_redis_masters(ngx_http_deferred_redis_t *rs)
{
    ngx_uint_t  n;

    if (!rs->nseeds) {
        return 1;
    }

    (void) ngx_http_deferred_cluster_master(rs, (ngx_uint_t) -1, &n);

    return n;
}


ngx_http_deferred_redis_cmd_t *
ngx_http_deferred_redis_eval_at(ngx_http_deferred_redis_t *rs,
    ngx_uint_t nth, dq_cmd_t *cmd, ngx_http_deferred_redis_handler_pt handler,
    void *data)
{
    ngx_uint_t                      n;
    ngx_http_deferred_redis_t      *node;
    ngx_http_deferred_redis_cmd_t   after;

    if (!rs->nseeds) {
        return ngx_http_deferred_redis_eval(rs, cmd, handler, data);
    }

    node = ngx_http_deferred_cluster_master(rs, nth, &n);
    if (node == NULL || rs->exiting) {
        return NULL;
    }

    /* sent as if behind a command on that node */
    after.redis = node;

    return ngx_http_deferred_cluster_send(rs, &after, cmd, cmd->argc,
                                          cmd->argv, cmd->argvlen, handler,
                                          data);
}


static void
ngx_http_deferred_cluster_free(ngx_http_deferred_redis_cmd_t *rcmd)
{
    if (rcmd->buf) {
        ngx_free(rcmd->buf);
    }

    ngx_free(rcmd);
}
