/*
 * deferred-worker — a Redis Cluster behind one dq_conn_t.
 *
 * The slot map comes from CLUSTER SLOTS (lib/dq_cluster.c parses it),
 * asked of any node this object is connected to, or else of the seeds and
 * then the nodes of the last map, in turn. Each command goes to the master
 * of its slot (dq_cluster_cmd_slot; a keyless one to any node) over that
 * node's own pipelined dq_conn_t, opened when the first command for it
 * comes: until it is up, the command waits here (at most its timeout, or
 * DQ_CCL_WAIT_MS), then the caller hears "redis not connected" (not sent).
 * A slot no master serves in the map: the command is refused at once
 * (dq_ccl_send -1) and counts as a lost reply (below).
 *
 * Redirects: MOVED sends the command to the node named at once and
 * updates that slot in the map (a full CLUSTER SLOTS follows, at most one
 * per DQ_CCL_REFRESH_MS); ASK sends ASKING and then the command to the
 * node named, once, the map untouched. More than DQ_CCL_REDIRECTS
 * redirects for one command: logged, and the caller gets the redirect
 * reply (an error: it is not run). TRYAGAIN (a multi-key command on a
 * slot being resharded): not run; sent again after a back-off, or "not
 * run" at once, by the command's mode (cluster_tryagain.c, with the
 * settle step and the probe). CLUSTERDOWN: not run; the caller gets NULL
 * with an errstr that says so (DQ_CONN_NOT_RUN, dq_conn_not_run()): a
 * claim refused so leased nothing.
 *
 * A lost reply (a node connection dropped, a command timed out, TRYAGAIN
 * after its tries, CLUSTERDOWN, a wait that ended, a slot unserved) is the
 * owner's "connection lost": its state callback hears up = 0, the map is asked
 * again, and once a map came (or a node connected) it hears up = 1, when
 * the worker sends its undelivered results again, exactly as after a
 * reconnect to one server. dq_conn_is_up() is 1 from the first map on:
 * the other nodes keep working while one is away. A CLUSTER SLOTS answer
 * that names no master (a node reset or out of the cluster) is refused:
 * the map in use stays, another node is asked.
 *
 * Scripts: each node connection loads them on connect and turns NOSCRIPT
 * into EVAL itself (redis_uv.c). AUTH on every node; no SELECT (a cluster
 * has database 0 only: the configuration refuses another).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"
#include "cluster_uv_impl.h"

#define DQ_CCL_REDIRECTS    5       /* per command */
#define DQ_CCL_REFRESH_MS   1000    /* at most one CLUSTER SLOTS a second */
#define DQ_CCL_WAIT_MS      10000   /* a command without a timeout waits at
                                       most this long for its node */
#define DQ_CCL_TICK_MS      250
#define DQ_CCL_SLOTS_TIMEOUT_MS 5000
#define DQ_CCL_IDLE_CLOSE_MS 2000   /* after a map: a master no command
                                       went to since is disconnected */
static void dq__ccl_refresh(dq_ccl_t *cl);
static void dq__ccl_tick_on(dq_ccl_t *cl);
static void dq__ccl_tick_at(dq_ccl_t *cl, uint64_t at);
static void dq__ccl_reply(dq_conn_t *sub, redisReply *rep,
                          const char *errstr, void *data);
static void dq__ccl_maybe_free(dq_ccl_t *cl);
static void dq__ccl_unwait(dq_ccl_t *cl, dq__creq_t *q);
static void dq__ccl_lost(dq_ccl_t *cl);

/* ---------------------------------------------------------------- nodes */

static void
dq__ccl_node_state(dq_conn_t *sub, int up, void *data)
{
    dq__cnode_t *n = data;
    dq_ccl_t    *cl = n->cl;
    dq__creq_t  *q, *next;

    (void) sub;
    n->up = up;
    if (cl->closing) {
        return;
    }
    if (!up) {
        dq__ccl_lost(cl);
        return;
    }
    /* what waited for this node goes now, in the order it came */
    for (q = cl->whead; q; q = next) {
        next = q->next;
        if (q->node != n || q->retry_at != 0) {
            continue;                   /* (a TRYAGAIN waits its time) */
        }
        dq__ccl_unwait(cl, q);
        if (q->asking) {
            const char *a[] = { "ASKING" };
            size_t      l[] = { 6 };

            q->asking = 0;
            (void) dq_conn_send(n->c, 1, a, l, q->timeout_ms, NULL, NULL);
        }
        if (dq_conn_send_fmt(n->c, &q->f, q->timeout_ms, dq__ccl_reply, q)
            != 0)
        {
            dq__ccl_finish(q, NULL, DQ_CONN_NOT_SENT);
            if (cl->closing) {
                return;                 /* closed from the callback */
            }
        }
    }
    if (cl->want_refresh || !cl->have_map) {
        dq__ccl_refresh(cl);
    } else if (cl->lost) {
        cl->lost = 0;
        if (cl->state_cb) {
            cl->state_cb(cl->owner, 1, cl->data);
        }
    }
}

/* The node host:port (numeric), created (not connected) if new. */
static dq__cnode_t *
dq__ccl_node(dq_ccl_t *cl, const char *host, int port)
{
    dq__cnode_t    *n;
    dq_conn_opts_t  o;
    char            addr[DQ_CLUSTER_HOST + 16], label[DQ_CLUSTER_HOST + 64];
    size_t          i;

    for (i = 0; i < cl->nnodes; i++) {
        if (cl->nodes[i]->port == port
            && strcmp(cl->nodes[i]->host, host) == 0)
        {
            return cl->nodes[i];
        }
    }
    if (cl->nnodes == cl->cap_nodes) {
        size_t        cap = cl->cap_nodes ? cl->cap_nodes * 2 : 8;
        dq__cnode_t **p = realloc(cl->nodes, cap * sizeof(*p));

        if (p == NULL) {
            return NULL;
        }
        cl->nodes = p;
        cl->cap_nodes = cap;
    }
    n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return NULL;
    }
    n->cl = cl;
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
             host, port);
    snprintf(label, sizeof(label), "%s %s", cl->label, addr);
    o = cl->o;
    o.address = addr;
    o.label = label;
    n->c = dq_conn_new(cl->loop, &o, dq__ccl_node_state, n);
    if (n->c == NULL) {
        free(n);
        return NULL;
    }
    cl->nodes[cl->nnodes++] = n;
    return n;
}

static void
dq__ccl_node_start(dq__cnode_t *n)
{
    if (!n->started) {
        n->started = 1;
        dq_conn_start(n->c);
    }
}

/* Close the connections to nodes the map does not name and nothing uses
 * (a seed that is a replica, a master gone, a node a MOVED named once);
 * unused_too: also to masters no command went to since the last map (the
 * seed the map was asked of, in a connection that only needs one slot's
 * master: a wake wait's). */
static void
dq__ccl_prune(dq_ccl_t *cl, int unused_too)
{
    dq__creq_t *q;
    size_t      i, k = 0;

    for (i = 0; i < cl->nnodes; i++) {
        dq__cnode_t *n = cl->nodes[i];
        int          used = (dq_cluster_map_find(&cl->map, n->host, n->port)
                             >= 0 && (n->used || !unused_too))
                            || dq_conn_pending(n->c) > 0;

        for (q = cl->whead; q && !used; q = q->next) {
            used = q->node == n;
        }
        if (used) {
            cl->nodes[k++] = n;
            continue;
        }
        dq_conn_close(n->c);           /* no callback of it comes again */
        free(n);
    }
    cl->nnodes = k;
    if (cl->rr >= k) {
        cl->rr = 0;
    }
}

/* The master of slot by the map (slot -1: any node connected, else the
 * map's first); NULL when no master serves it or no map yet. */
static dq__cnode_t *
dq__ccl_route(dq_ccl_t *cl, int slot)
{
    int i;

    if (!cl->have_map) {
        return NULL;
    }
    if (slot < 0) {
        for (size_t k = 0; k < cl->nnodes; k++) {
            if (cl->nodes[k]->up
                && dq_cluster_map_find(&cl->map, cl->nodes[k]->host,
                                       cl->nodes[k]->port) >= 0)
            {
                return cl->nodes[k];
            }
        }
        i = cl->map.nnodes > 0 ? 0 : -1;
    } else {
        i = cl->map.slot[slot];
    }
    if (i < 0) {
        return NULL;
    }
    return dq__ccl_node(cl, cl->map.nodes[i].host, cl->map.nodes[i].port);
}

/* ------------------------------------------------------------- requests */

static void
dq__ccl_unwait(dq_ccl_t *cl, dq__creq_t *q)
{
    if (q->prev) {
        q->prev->next = q->next;
    } else {
        cl->whead = q->next;
    }
    if (q->next) {
        q->next->prev = q->prev;
    } else {
        cl->wtail = q->prev;
    }
    q->prev = q->next = NULL;
    q->waiting = 0;
    cl->nwait--;
}

/* The owner's callback, once; the request freed. */
void
dq__ccl_finish(dq__creq_t *q, redisReply *rep, const char *errstr)
{
    dq_ccl_t *cl = q->cl;

    if (q->waiting) {
        dq__ccl_unwait(cl, q);
    }
    dq__ccl_settle_end(cl, q);
    if (q->internal) {
        cl->ninternal--;
    } else {
        cl->nreqs--;
        if (q->cb) {
            q->cb(cl->owner, rep, errstr, q->data);
        }
    }
    free(q);
    dq__ccl_maybe_free(cl);
}

/* A reply lost or a command not run: the owner hears "down" (once until
 * it hears "up"), and the map is asked again. */
static void
dq__ccl_lost(dq_ccl_t *cl)
{
    if (cl->closing) {
        return;
    }
    if (!cl->lost) {
        cl->lost = 1;
        if (cl->state_cb) {
            cl->state_cb(cl->owner, 0, cl->data);
        }
    }
    cl->want_refresh = 1;
    dq__ccl_refresh(cl);
}

/* q on the waiting list (for its node, or for its time: retry_at) */
void
dq__ccl_wait(dq__creq_t *q)
{
    dq_ccl_t *cl = q->cl;

    if (!q->waiting) {
        q->waiting = 1;
        q->wait_since = uv_now(cl->loop);
        q->prev = cl->wtail;
        q->next = NULL;
        if (cl->wtail) {
            cl->wtail->next = q;
        } else {
            cl->whead = q;
        }
        cl->wtail = q;
        cl->nwait++;
    }
    if (q->retry_at != 0) {
        dq__ccl_tick_at(cl, q->retry_at);
    } else {
        dq__ccl_tick_on(cl);
    }
}

/* Send q to node n now if it is up, else wait for it. */
static void
dq__ccl_go(dq__creq_t *q, dq__cnode_t *n)
{
    dq_ccl_t *cl = q->cl;

    q->node = n;
    q->retry_at = 0;
    q->follow = 0;
    n->used = 1;
    if (n->up) {
        if (q->asking) {
            const char *a[] = { "ASKING" };
            size_t      l[] = { 6 };

            if (dq_conn_send(n->c, 1, a, l, q->timeout_ms, NULL, NULL)
                == 0)
            {
                q->asking = 0;
            }
        }
        if (!q->asking
            && dq_conn_send_fmt(n->c, &q->f, q->timeout_ms, dq__ccl_reply, q)
               == 0)
        {
            if (q->waiting) {
                dq__ccl_unwait(cl, q);
            }
            return;
        }
    }
    dq__ccl_node_start(n);
    dq__ccl_wait(q);
}

static void
dq__ccl_slots_reply(dq__creq_t *q, redisReply *rep, const char *errstr)
{
    dq_ccl_t         *cl = q->cl;
    dq_error_t        err;
    dq__creq_t       *w, *next;
    const char       *why;
    int               first = !cl->have_map;

    cl->refreshing = 0;
    if (cl->closing) {
        dq__ccl_finish(q, NULL, NULL);
        return;
    }
    /* the map in use stays on a refusal (an answer naming no master: a
     * node just reset, or one that left the cluster) */
    why = NULL;
    if (rep == NULL) {
        why = errstr ? errstr : "no answer";
    } else if (dq_cluster_map_parse(&cl->map, rep, q->node->host, &err)
               != DQ_OK)
    {
        why = err.msg;
    }
    if (why != NULL) {
        dq_log_warn("redis (%s): CLUSTER SLOTS on %s:%d: %s; asking again",
                    cl->label, q->node->host, q->node->port, why);
        cl->want_refresh = 1;
        dq__ccl_finish(q, NULL, NULL);
        /* that node, if the map in use does not name it, is dropped: the
         * next map is asked of another node or the next candidate (else a
         * lone seed out of the cluster, the only node connected, was
         * asked again and again: t/189) */
        dq__ccl_prune(cl, 0);
        dq__ccl_tick_on(cl);
        return;
    }
    if (first) {
        dq_log_info("redis (%s): cluster map from %s:%d: %zu masters",
                    cl->label, q->node->host, q->node->port, cl->map.nnodes);
    } else {
        dq_log_debug("redis (%s): cluster map from %s:%d: %zu masters",
                     cl->label, q->node->host, q->node->port,
                     cl->map.nnodes);
    }
    cl->have_map = 1;
    dq__ccl_finish(q, NULL, NULL);
    /* what waits for a node goes where the map now says */
    for (w = cl->whead; w; w = next) {
        dq__cnode_t *n;

        next = w->next;
        if (w->slot >= 0 && !w->asking
            && (n = dq__ccl_route(cl, w->slot)) != NULL && n != w->node)
        {
            dq__ccl_go(w, n);
        }
    }
    dq__ccl_prune(cl, 0);
    for (size_t i = 0; i < cl->nnodes; i++) {
        cl->nodes[i]->used = 0;
    }
    cl->prune_at = uv_now(cl->loop) + DQ_CCL_IDLE_CLOSE_MS;
    dq__ccl_tick_on(cl);
    if (first || cl->lost) {
        cl->lost = 0;
        if (cl->state_cb) {
            cl->state_cb(cl->owner, 1, cl->data);
        }
    }
}

/* q refused unrun by its node (rep an error reply): its caller hears "not
 * run: ..." (dq_conn_not_run) */
void
dq__ccl_not_run(dq__creq_t *q, redisReply *rep)
{
    char why[200];

    snprintf(why, sizeof(why), DQ_CONN_NOT_RUN "%s answered: %.*s",
             q->f.name, (int) (rep->len > 120 ? 120 : rep->len), rep->str);
    dq_log_debug("redis (%s): %s", q->cl->label, why);   /* the caller
                                                           says it too */
    dq__ccl_finish(q, NULL, why);
}

/* q's TRYAGAIN back-off is over (or cut short): sent where the map now
 * says */
void
dq__ccl_retry(dq_ccl_t *cl, dq__creq_t *q)
{
    dq__cnode_t *n = q->slot >= 0 ? dq__ccl_route(cl, q->slot) : NULL;

    dq__ccl_go(q, n ? n : q->node);
}

static void
dq__ccl_reply(dq_conn_t *sub, redisReply *rep, const char *errstr,
              void *data)
{
    static const char *const  unblocked[] = { "UNBLOCKED" };
    dq__creq_t               *q = data;
    dq_ccl_t                 *cl = q->cl;
    dq_cluster_redirect_t     rd;
    dq__cnode_t              *n;

    (void) sub;
    if (q->internal) {
        dq__ccl_slots_reply(q, rep, errstr);
        return;
    }
    if (cl->closing) {
        dq__ccl_finish(q, rep, rep ? NULL : "connection closing");
        return;
    }
    if (rep != NULL && dq_cluster_redirect(rep, &rd)) {
        if (++q->redirects > DQ_CCL_REDIRECTS) {
            dq_log_error("redis (%s): %s after %d redirects for slot %u; "
                         "giving up on this command", cl->label,
                         rd.ask ? "ASK" : "MOVED", DQ_CCL_REDIRECTS, rd.slot);
            dq__ccl_finish(q, rep, NULL);
            return;
        }
        n = dq__ccl_node(cl, rd.host[0] ? rd.host : q->node->host, rd.port);
        if (n == NULL) {
            dq_log_error("redis (%s): out of memory", cl->label);
            dq__ccl_finish(q, NULL, DQ_CONN_NOT_SENT);
            return;
        }
        if (!rd.ask) {
            int i = dq_cluster_map_find(&cl->map, n->host, n->port);

            /* logged once per slot and node (the commands in flight to
             * the old node all come back MOVED) */
            if (i < 0 || cl->map.slot[rd.slot] != i) {
                dq_log_info("redis (%s): slot %u moved to %s:%d", cl->label,
                            rd.slot, n->host, n->port);
            }
            if (i >= 0) {
                cl->map.slot[rd.slot] = (int16_t) i;
            }
            cl->want_refresh = 1;
            dq__ccl_refresh(cl);
        }
        q->asking = rd.ask;
        dq__ccl_go(q, n);
        return;
    }
    if (dq__ccl_tryagain(q, rep)) {
        return;         /* not run, or sent again after its step */
    }
    if (rep != NULL
        && (dq_cluster_is_retry(rep)
            || dq_reply_error_is(rep, unblocked, 1)))
    {
        /* not run: as a command not sent (DQ_CONN_NOT_RUN: the worker
         * says it again, and a claim refused so is no lost claim);
         * UNBLOCKED: a blocked BLPOP whose master became a replica
         * (failover) */
        dq__ccl_not_run(q, rep);
        dq__ccl_lost(cl);
        return;
    }
    dq__ccl_finish(q, rep, errstr);
    if (rep == NULL) {
        dq__ccl_lost(cl);
    }
}

/* ------------------------------------------------------------- the map */

static void
dq__ccl_tick_cb(uv_timer_t *t)
{
    dq_ccl_t   *cl = t->data;
    uint64_t    now = uv_now(cl->loop);
    dq__creq_t *q, *next;
    int         expired = 0;

    for (q = cl->whead; q; q = next) {
        uint64_t most = q->timeout_ms > 0 ? (uint64_t) q->timeout_ms
                                          : DQ_CCL_WAIT_MS;

        next = q->next;
        if (q->retry_at != 0) {
            if (now >= q->retry_at) {   /* a TRYAGAIN's time came */
                dq__ccl_retry(cl, q);
            }
            continue;
        }
        if (now - q->wait_since >= most) {
            dq_log_warn("redis (%s): %s:%d not connected after %llu ms: "
                        "%s not sent", cl->label, q->node->host,
                        q->node->port, (unsigned long long) most,
                        q->f.name);
            dq__ccl_finish(q, NULL, DQ_CONN_NOT_SENT);
            expired = 1;
            if (cl->closing) {
                return;                 /* closed from the callback */
            }
        } else if (now - q->wait_since >= DQ_CCL_REFRESH_MS) {
            cl->want_refresh = 1;      /* its node may be gone for good */
        }
    }
    if (expired) {
        dq__ccl_lost(cl);
    }
    if (cl->want_refresh) {
        dq__ccl_refresh(cl);
    }
    if (cl->prune_at != 0 && now >= cl->prune_at && !cl->refreshing) {
        cl->prune_at = 0;
        dq__ccl_prune(cl, 1);
    }
    if (cl->nwait == 0 && !cl->want_refresh && cl->prune_at == 0) {
        uv_timer_stop(&cl->tick);
        return;
    }
    for (q = cl->whead; q; q = q->next) {
        if (q->retry_at != 0) {
            dq__ccl_tick_at(cl, q->retry_at);   /* sooner than a tick */
        }
    }
}

static void
dq__ccl_tick_on(dq_ccl_t *cl)
{
    if (!cl->closing && !uv_is_active((uv_handle_t *) &cl->tick)) {
        uv_timer_start(&cl->tick, dq__ccl_tick_cb, DQ_CCL_TICK_MS,
                       DQ_CCL_TICK_MS);
    }
}

/* The tick runs no later than at (a TRYAGAIN back-off's end), and every
 * DQ_CCL_TICK_MS after. */
static void
dq__ccl_tick_at(dq_ccl_t *cl, uint64_t at)
{
    uint64_t now = uv_now(cl->loop);
    uint64_t in = at > now ? at - now : 0;

    if (!cl->closing
        && (!uv_is_active((uv_handle_t *) &cl->tick)
            || uv_timer_get_due_in(&cl->tick) > in))
    {
        uv_timer_start(&cl->tick, dq__ccl_tick_cb, in, DQ_CCL_TICK_MS);
    }
}

/* CLUSTER SLOTS on a node connected (round robin), else connect the next
 * candidate (the seeds, then the map's masters) and ask it once it is up.
 * At most once per DQ_CCL_REFRESH_MS but for the first map. */
static void
dq__ccl_refresh(dq_ccl_t *cl)
{
    static const char *argv[] = { "CLUSTER", "SLOTS" };
    static const size_t len[] = { 7, 5 };
    uint64_t     now = uv_now(cl->loop);
    dq__cnode_t *n;
    dq__creq_t  *q;
    size_t       i, ncand;

    if (cl->closing || cl->refreshing) {
        return;
    }
    if (cl->last_refresh != 0 && now - cl->last_refresh < DQ_CCL_REFRESH_MS
        && cl->have_map)
    {
        cl->want_refresh = 1;
        dq__ccl_tick_on(cl);
        return;
    }
    /* a node connected (one whose connection is going right now, inside
     * its own callbacks, refuses the send: the next one is tried) */
    q = calloc(1, sizeof(*q));
    for (i = 0; q != NULL && i < cl->nnodes; i++) {
        n = cl->nodes[(cl->rr + i) % cl->nnodes];
        if (!n->up || !dq_conn_is_up(n->c)) {
            continue;
        }
        q->cl = cl;
        q->node = n;
        q->internal = 1;
        q->slot = -1;
        if (dq_conn_send(n->c, 2, argv, len, DQ_CCL_SLOTS_TIMEOUT_MS,
                         dq__ccl_reply, q) == 0)
        {
            cl->rr = (cl->rr + i + 1) % cl->nnodes;
            cl->ninternal++;
            cl->refreshing = 1;
            cl->want_refresh = 0;
            cl->last_refresh = now;
            return;
        }
    }
    free(q);
    /* nobody connected: the next candidate; asked once it is up */
    ncand = cl->nseeds + (cl->have_map ? cl->map.nnodes : 0);
    if (ncand > 0 && (cl->last_refresh == 0
                      || now - cl->last_refresh >= DQ_CCL_REFRESH_MS))
    {
        size_t k = cl->next_cand++ % ncand;

        n = k < cl->nseeds
            ? dq__ccl_node(cl, cl->seed_host[k], cl->seed_port[k])
            : dq__ccl_node(cl, cl->map.nodes[k - cl->nseeds].host,
                           cl->map.nodes[k - cl->nseeds].port);
        if (n != NULL) {
            dq__ccl_node_start(n);
        }
        cl->last_refresh = now;
    }
    cl->want_refresh = 1;
    dq__ccl_tick_on(cl);
}

/* ------------------------------------------------------------- the API */

dq_ccl_t *
dq_ccl_new(uv_loop_t *loop, dq_conn_t *owner, const dq_conn_opts_t *o,
           const dq_addr_t *a, dq_conn_state_cb cb, void *data)
{
    dq_ccl_t *cl = calloc(1, sizeof(*cl));
    size_t    i;

    if (cl == NULL) {
        return NULL;
    }
    cl->loop = loop;
    cl->owner = owner;
    cl->state_cb = cb;
    cl->data = data;
    cl->label = strdup(o->label ? o->label : "redis");
    cl->password = o->password ? strdup(o->password) : NULL;
    if (cl->label == NULL || (o->password && cl->password == NULL)) {
        goto fail;
    }
    cl->o = *o;
    cl->o.password = cl->password;
    cl->o.db = 0;
    cl->o.cluster_node = 1;
    dq_cluster_map_init(&cl->map);
    for (i = 0; i < a->nseeds; i++) {
        char *name = strndup(a->seed[i].host.ptr, a->seed[i].host.len);

        if (name == NULL
            || dq_conn_numeric(cl->label, name, cl->seed_host[i]) != 0)
        {
            free(name);
            goto fail;
        }
        free(name);
        cl->seed_port[i] = a->seed[i].port;
        cl->nseeds++;
    }
    uv_timer_init(loop, &cl->tick);
    cl->tick.data = cl;
    cl->tick_open = 1;
    return cl;

fail:
    dq_log_error("redis (%s): cannot set up the cluster connection",
                 o->label ? o->label : "redis");
    free(cl->label);
    free(cl->password);
    free(cl);
    return NULL;
}

void
dq_ccl_start(dq_ccl_t *cl)
{
    dq__ccl_refresh(cl);
}

int
dq_ccl_is_up(const dq_ccl_t *cl)
{
    return cl->have_map && !cl->closing;
}

size_t
dq_ccl_pending(const dq_ccl_t *cl)
{
    return cl->nreqs;
}

int
dq_ccl_routable(const dq_ccl_t *cl, int argc, const char **argv,
                const size_t *argvlen)
{
    int slot;

    if (!dq_ccl_is_up(cl) || argc < 1) {
        return 1;                   /* down: dq_ccl_send fails, quietly */
    }
    slot = dq_cluster_cmd_slot(argc, argv, argvlen);
    return slot < 0 || cl->map.slot[slot] >= 0;
}

int
dq_ccl_send(dq_ccl_t *cl, int argc, const char **argv,
            const size_t *argvlen, int64_t timeout_ms, int mode,
            dq_conn_reply_cb cb, void *data)
{
    dq__creq_t  *q;
    dq__cnode_t *n;
    const char  *key;
    size_t       total, klen = 0;
    uint64_t     keyh;
    int          slot;

    if (!dq_ccl_is_up(cl) || argc < 1) {
        return -1;
    }
    key = dq_cluster_cmd_key(argc, argv, argvlen, &klen);
    slot = key != NULL ? (int) dq_cluster_slot(key, klen) : -1;
    n = dq__ccl_route(cl, slot);
    if (n == NULL) {
        if (slot >= 0) {
            /* no master serves the slot: not sent; the owner hears
             * "down" and the map is asked again, so the "up" after the
             * next map sends its kept results again (without it they
             * waited for a reconnect that never came: t/186) */
            dq__ccl_lost(cl);
        }
        return -1;
    }
    /* formatted once: the node's connection borrows this RESP (review
     * R4 finding 8: the arguments were copied here, formatted again by
     * the node, then copied by hiredis) */
    total = dq_conn_fmt_size(argc, argv, argvlen);
    q = malloc(sizeof(*q) + total);
    if (q == NULL) {
        return -1;
    }
    memset(q, 0, sizeof(*q));
    dq_conn_fmt(&q->f, (char *) (q + 1), argc, argv, argvlen);
    q->cl = cl;
    q->cb = cb;
    q->data = data;
    q->timeout_ms = timeout_ms;
    q->slot = slot;
    q->mode = mode;
    for (keyh = 14695981039346656037ULL; key != NULL && klen > 0; klen--) {
        keyh = (keyh ^ (unsigned char) *key++) * 1099511628211ULL;
    }
    q->keyh = keyh;                     /* FNV-1a */
    cl->nreqs++;
    dq__ccl_go(q, n);
    return 0;
}

void
dq_ccl_stop_retries(dq_ccl_t *cl)
{
    dq__creq_t *q, *next;

    if (cl->closing || cl->no_retry) {
        return;
    }
    cl->no_retry = 1;
    /* what waits out a TRYAGAIN back-off goes now: an extend that lands
     * spares the task a second run; refused again it is "not run" (the
     * child keeps the result as undelivered). A call that settles leases
     * (DQ_CCL_SETTLE) keeps its DQ_CCL_SETTLE_MS step until it runs: the
     * owner's grace bounds the wait. */
    for (q = cl->whead; q; q = next) {
        next = q->next;
        if (q->retry_at != 0) {
            dq__ccl_retry(cl, q);
        }
    }
}

static void
dq__ccl_tick_closed(uv_handle_t *h)
{
    dq_ccl_t *cl = h->data;

    cl->tick_open = 0;
    dq__ccl_maybe_free(cl);
}

static void
dq__ccl_maybe_free(dq_ccl_t *cl)
{
    if (!cl->closing || cl->tick_open || cl->nreqs > 0 || cl->ninternal > 0
        || cl->nwait > 0)
    {
        return;
    }
    dq_cluster_map_free(&cl->map);
    free(cl->nodes);
    free(cl->label);
    free(cl->password);
    dq_conn_cluster_done(cl->owner);
    free(cl);
}

void
dq_ccl_close(dq_ccl_t *cl)
{
    size_t i;

    if (cl->closing) {
        return;
    }
    cl->closing = 1;
    uv_timer_stop(&cl->tick);
    while (cl->whead != NULL) {
        dq__ccl_finish(cl->whead, NULL, "connection closing");
    }
    /* the node connections run their pending callbacks (maybe later, if
     * this runs inside one): each finishes its request */
    for (i = 0; i < cl->nnodes; i++) {
        dq_conn_close(cl->nodes[i]->c);
        free(cl->nodes[i]);
    }
    cl->nnodes = 0;
    uv_close((uv_handle_t *) &cl->tick, dq__ccl_tick_closed);
}
