
/*
 * ngx_http_deferred_module: Redis Cluster, over the connections of
 * ngx_http_deferred_redis.c and ngx_http_deferred_connect.c.
 */


#include "ngx_http_deferred_module.h"
#include "ngx_http_deferred_redis.h"


#define NGX_HTTP_DEFERRED_REDIRECTS         5   /* MOVED/ASK per command */
#define NGX_HTTP_DEFERRED_MAP_MIN           100 /* ms between questions */
#define NGX_HTTP_DEFERRED_MAX_NODES         1000


static void ngx_http_deferred_cluster_ask(ngx_http_deferred_redis_t *rs);
static ngx_int_t ngx_http_deferred_cluster_install(
    ngx_http_deferred_redis_t *rs, dq_cluster_map_t *m);
static ngx_int_t ngx_http_deferred_cluster_node(ngx_http_deferred_redis_t *rs,
    const char *host, int port);
static ngx_int_t ngx_http_deferred_cluster_route(
    ngx_http_deferred_redis_t *node, ngx_http_deferred_redis_cmd_t *rcmd);
static void ngx_http_deferred_cluster_masters(ngx_http_deferred_redis_t *rs);


/*
 * Redis Cluster. The configured redis_t routes; each master the slot map
 * names is a node: a redis_t of its own with the connection of
 * ngx_http_deferred_connect.c (same setup pipeline, AUTH on every node,
 * never SELECT), opened when a command for one of its slots comes and
 * again, after a failure, when the next one comes (at most once per
 * BACKOFF_MIN: ngx_http_deferred_backoff.c). The map is asked (AUTH,
 * CLUSTER SLOTS on a short-lived connection,
 * ngx_http_deferred_redis_ask_at: the seeds first, then the nodes known)
 * at init_process, and again on MOVED, on CLUSTERDOWN and
 * when a node's connection fails, at most once per MAP_MIN. A command
 * goes to the node of its slot (dq_cluster_cmd_slot); MOVED re-sends it
 * at once to the node named (and moves that slot in the map), ASK sends
 * ASKING and the command to the node named, without changing the map;
 * at most NGX_HTTP_DEFERRED_REDIRECTS of them per command. Both mean the
 * command did not run, so re-sending cannot store anything twice; a lost
 * reply is never re-sent (the caller sees NULL, as without a cluster).
 * Commands for a node still connecting wait in its waitq, in order.
 */

void
ngx_http_deferred_cluster_init(ngx_http_deferred_redis_t *rs)
{
    rs->slots = NULL;
    rs->masters = NULL;
    rs->nmasters = 0;
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


void
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

        if (n->failed_ev.posted) {
            ngx_delete_posted_event(&n->failed_ev);
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
        ngx_free(rs->slots);            /* and masters, in its block */
        rs->slots = NULL;
        rs->masters = NULL;
        rs->nmasters = 0;
    }
}


/* ask for the map now, or as soon as MAP_MIN allows; once if asking */

void
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

    /* snext goes on: from the node that answered last (a seed out of the
     * cluster is not asked first every time) */
    rs->state = NGX_HTTP_DEFERRED_REDIS_SLOTS;
    rs->sasked = 0;
    rs->map_asked = ngx_current_msec;
    rs->last_attempt = ngx_current_msec;
    rs->soon = 0;

    ngx_http_deferred_cluster_ask(rs);
}


void
ngx_http_deferred_cluster_timer(ngx_http_deferred_redis_t *rs)
{
    if (ngx_http_deferred_redis_ask_expired(rs) == NGX_OK) {
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
    size_t                       argvlen[2];
    const char                  *argv[2], *host;
    in_port_t                    port;
    ngx_uint_t                   total, k;
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
            ngx_http_deferred_redis_wake(rs, NGX_ERROR);
        }

        return;
    }

    k = rs->snext % total;
    rs->snext = k + 1;
    rs->sasked++;

    if (k < rs->nseeds) {
        host = (const char *) rs->seeds[k].host.data;
        port = rs->seeds[k].port;

    } else {
        node = rs->nodes.elts;
        host = (const char *) node[k - rs->nseeds]->host.data;
        port = node[k - rs->nseeds]->port;
    }

    argv[0] = "CLUSTER";
    argvlen[0] = 7;
    argv[1] = "SLOTS";
    argvlen[1] = 5;

    ngx_http_deferred_redis_ask_at(rs, host, port, 1, 2, argv, argvlen);
}


/* a node's CLUSTER SLOTS answer (the connection asked is gone) */

void
ngx_http_deferred_cluster_answer(ngx_http_deferred_redis_t *rs,
    redisReply *reply)
{
    dq_error_t         err;
    dq_cluster_map_t  *m;

    m = ngx_alloc(sizeof(dq_cluster_map_t), rs->log);
    if (m == NULL) {
        ngx_http_deferred_redis_ask_failed(rs, "out of memory");
        return;
    }

    dq_cluster_map_init(m);

    /* a map naming a node "" means the address asked */
    if (dq_cluster_map_parse(m, reply, rs->asked_host, &err) != DQ_OK) {
        ngx_free(m);
        ngx_http_deferred_redis_ask_failed(rs, err.msg);
        return;
    }

    /* the next question goes to this node first (the seeds, then the
     * nodes: an index stays the same node); before the install, which
     * may ask again at once */
    rs->snext--;

    if (ngx_http_deferred_cluster_install(rs, m) != NGX_OK) {
        dq_cluster_map_free(m);
        ngx_free(m);
        ngx_http_deferred_redis_ask_failed(rs, "out of memory");
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
        rs->slots = ngx_alloc((DQ_CLUSTER_SLOTS + NGX_HTTP_DEFERRED_MAX_NODES)
                              * sizeof(int16_t), rs->log);
        if (rs->slots == NULL) {
            ngx_free(idx);
            return NGX_ERROR;
        }

        rs->masters = rs->slots + DQ_CLUSTER_SLOTS;
        rs->nmasters = 0;
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
        ngx_http_deferred_cluster_masters(rs);
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
        ngx_http_deferred_redis_wake(rs, NGX_OK);
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

ngx_http_deferred_redis_cmd_t *
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

    rcmd = ngx_http_deferred_redis_cmd_new(rs->log, cmd, handler, data);
    if (rcmd == NULL) {
        return NULL;
    }

    rcmd->cluster = rs;

    if (ngx_http_deferred_cluster_format(rcmd, argc, argv, argvlen) != NGX_OK
        || ngx_http_deferred_cluster_route(n, rcmd) != NGX_OK)
    {
        ngx_http_deferred_cluster_free(rcmd);
        return NULL;
    }

    return rcmd;
}


/* the command in Redis' wire format, kept for a redirect */

ngx_int_t
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
         * per BACKOFF_MIN: a command sooner waits for that attempt
         * (ngx_http_deferred_redis_soon, the node's timer) */
        if (node->state == NGX_HTTP_DEFERRED_REDIS_IDLE
            || ngx_current_msec - node->last_attempt
               >= NGX_HTTP_DEFERRED_BACKOFF_MIN)
        {
            node->last_attempt = ngx_current_msec;
            (void) ngx_http_deferred_redis_connect_to(node);

            if (node->ac == NULL) {
                /* refused at once (logged): the map may have changed;
                 * the commands waiting for this attempt fail too */
                ngx_http_deferred_cluster_refresh(node->cluster);
                ngx_http_deferred_redis_failed_at_once(node);
                return NGX_ERROR;
            }

        } else if (ngx_http_deferred_redis_young(node)) {
            ngx_http_deferred_redis_soon(node);

        } else {
            /* a long outage: 503 at once, as before the window */
            ngx_http_deferred_cluster_refresh(node->cluster);
            return NGX_ERROR;
        }
    }

    ngx_queue_insert_tail(&node->waitq, &rcmd->link);

    return NGX_OK;
}


ngx_int_t
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

void
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

void
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

ngx_int_t
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

        if (rs->slots && rs->slots[rd.slot] != (int16_t) i) {
            rs->slots[rd.slot] = (int16_t) i;
            ngx_http_deferred_cluster_masters(rs);
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
    ngx_http_deferred_redis_t  **node;

    *count = rs->slots ? rs->nmasters : 0;

    if (nth >= *count) {
        return NULL;
    }

    node = rs->nodes.elts;

    return node[rs->masters[nth]];
}


/* the map changed: its distinct nodes, in slot order, kept once here
 * rather than found by a walk of every slot per question (the readiness
 * probe asks each master) */

static void
ngx_http_deferred_cluster_masters(ngx_http_deferred_redis_t *rs)
{
    u_char      seen[NGX_HTTP_DEFERRED_MAX_NODES];
    ngx_uint_t  i;

    ngx_memzero(seen, sizeof(seen));
    rs->nmasters = 0;

    for (i = 0; i < DQ_CLUSTER_SLOTS; i++) {
        if (rs->slots[i] < 0 || seen[rs->slots[i]]) {
            continue;
        }

        seen[rs->slots[i]] = 1;
        rs->masters[rs->nmasters++] = rs->slots[i];
    }
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


void
ngx_http_deferred_cluster_free(ngx_http_deferred_redis_cmd_t *rcmd)
{
    if (rcmd->buf) {
        ngx_free(rcmd->buf);
    }

    ngx_free(rcmd);
}
