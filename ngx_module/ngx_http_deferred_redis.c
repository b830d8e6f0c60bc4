
/*
 * ngx_http_deferred_module: Redis on nginx's event loop.
 *
 * Owns the hiredis <-> nginx adapter (the Redis socket wrapped in an
 * ngx_connection_t, level-triggered read/write events, nginx closing the
 * fd), the per-worker connections set up at init_process and let go at
 * exit_process, and the commands of concurrent requests pipelined on a
 * connection: EVALSHA retried as EVAL on NOSCRIPT, WAIT for replicas when
 * configured, a Redis Cluster's commands routed by their key
 * (ngx_http_deferred_cluster.c: a slot map and a connection per master,
 * MOVED and ASK followed). Reaching a Redis and the setup pipelined ahead
 * of everything else (AUTH/SELECT/ROLE/INFO/SCRIPT LOAD, the connection
 * used only once all of them answered OK), reconnects and the question to
 * a helper server: ngx_http_deferred_connect.c. What comes while the
 * setup runs waits for it, and the back-off between attempts:
 * ngx_http_deferred_backoff.c.
 *
 * Invariants: hiredis runs each callback exactly once (a NULL reply on
 * disconnect); a command's handler runs exactly once (with NULL on
 * timeout of the connection, disconnect or failed send), except when the
 * worker exits; the command (and what its argv points to) must live until
 * then. Nothing here blocks.
 */


#include "ngx_http_deferred_module.h"
#include "ngx_http_deferred_redis.h"


static void ngx_http_deferred_redis_add_read(void *privdata);
static void ngx_http_deferred_redis_del_read(void *privdata);
static void ngx_http_deferred_redis_add_write(void *privdata);
static void ngx_http_deferred_redis_del_write(void *privdata);
static void ngx_http_deferred_redis_cleanup(void *privdata);
static void ngx_http_deferred_redis_read_handler(ngx_event_t *ev);
static void ngx_http_deferred_redis_write_handler(ngx_event_t *ev);



/* the first failure of a run is an error, the retries that follow info */

ngx_uint_t
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


/*
 * A command on a connected context is written from a posted event, later
 * in this loop iteration (the merged calls' flush is itself a posted
 * event), not once epoll has said the socket is writable: no epoll_ctl to
 * add the write event and none to remove it per command (two of the four
 * system calls an nginx worker made per merged call: strace,
 * docs/BENCHMARKS.md). Only a write that did not finish (hiredis asks
 * again from inside the write handler) or a connect in progress waits for
 * epoll, as before.
 */

static ngx_uint_t  ngx_http_deferred_redis_writing;


static void
ngx_http_deferred_redis_add_write(void *privdata)
{
    ngx_connection_t   *c = privdata;
    redisAsyncContext  *ac;

    ac = c->data;

    if (!c->write->active && !ngx_http_deferred_redis_writing
        && (ac->c.flags & REDIS_CONNECTED))
    {
        if (!c->write->posted) {
            ngx_post_event(c->write, &ngx_posted_events);
        }

        return;
    }

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

    /* c may be gone when this returns (a failed write disconnects) */
    ngx_http_deferred_redis_writing = 1;
    redisAsyncHandleWrite(c->data);
    ngx_http_deferred_redis_writing = 0;
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
        ngx_queue_init(&rs->waiters);

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

        if (rs->failed_ev.posted) {
            ngx_delete_posted_event(&rs->failed_ev);
        }

        /* their requests go with the process */
        while (!ngx_queue_empty(&rs->waiters)) {
            ngx_http_deferred_redis_await_cancel(
                ngx_queue_data(ngx_queue_head(&rs->waiters),
                               ngx_http_deferred_redis_waiter_t, link));
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

        ngx_http_deferred_shards_exit(rs);
    }
}


/* a context on nginx's loop: host and port, or rs->unix_path if host is
 * NULL; NULL (logged) when it cannot even start */

redisAsyncContext *
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


/* commands */

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


/* a command's record (ngx_free, or ngx_http_deferred_cluster_free) */

ngx_http_deferred_redis_cmd_t *
ngx_http_deferred_redis_cmd_new(ngx_log_t *log, dq_cmd_t *cmd,
    ngx_http_deferred_redis_handler_pt handler, void *data)
{
    ngx_http_deferred_redis_cmd_t  *rcmd;

    rcmd = ngx_alloc(sizeof(ngx_http_deferred_redis_cmd_t), log);
    if (rcmd == NULL) {
        return NULL;
    }

    ngx_memzero(rcmd, sizeof(ngx_http_deferred_redis_cmd_t));

    rcmd->handler = handler;
    rcmd->data = data;
    rcmd->cmd = cmd;

    /* not a script (a plain command): never re-sent as EVAL */
    rcmd->eval = (cmd == NULL || cmd->script == DQ_SCRIPT__COUNT);

    return rcmd;
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

    rcmd = ngx_http_deferred_redis_cmd_new(rs->log, cmd, handler, data);
    if (rcmd == NULL) {
        return NULL;
    }

    rcmd->redis = rs;

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


void
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
