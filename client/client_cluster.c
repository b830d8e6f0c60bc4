/*
 * The C client on a Redis Cluster (address "cluster:HOST[:PORT],..."):
 * include/deferred/client.h, docs/CLIENT.md "Redis Cluster".
 *
 * The slot map comes from CLUSTER SLOTS, asked of the seeds in turn (then
 * of the masters of the last map) when the client first talks and again
 * after a connection is lost; lib/dq_cluster.c parses it, computes every
 * command's slot (its first key; a script's first KEYS) and parses MOVED
 * and ASK. One blocking connection per master, opened (AUTH, version
 * check) when the first command for one of its slots comes, with the
 * client's timeout; SELECT is refused (a cluster has database 0 only).
 *
 * dq__cl_append formats a command, sends it to its slot's master and keeps
 * it in a FIFO; dq__cl_get_reply takes the FIFO's head and reads its reply
 * from the node it went to. The per-node order of replies is the append
 * order, so the head's reply is always the next one on its node, except
 * after a redirect: a command sent again to node X goes behind the later
 * commands already pipelined to X, whose replies are read first and kept
 * in their FIFO entries.
 *
 * Replies acted on here, at most DQ__CL_REDIRECTS redirects in a row per
 * command (then the call fails, saying so; a TRYAGAIN retry, itself
 * bounded, starts the count again: ASK then TRYAGAIN is the normal answer
 * to a script while its slot's keys move):
 *   MOVED  the command goes to the named node at once; the map is asked
 *          again (at most every DQ__CL_REFRESH_MS), of that node first: a
 *          seed may not have heard of the move yet.
 *   ASK    ASKING then the command to the named node, once; the map is
 *          left alone (the slot is being migrated).
 *   TRYAGAIN  (a multi-key command while its slot is half migrated) sent
 *          again to the slot's master after a short pause, up to
 *          DQ__CL_TRYAGAIN times; then the reply is the caller's: "not
 *          run", as the other unavailable replies.
 * Anything else, NOSCRIPT included, is the caller's: dq__run sends EVAL,
 * which goes to the same slot's node. A connection lost or timed out
 * drops every node connection and the map (the next call asks again);
 * its pending commands are "lost reply", as on one Redis.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_impl.h"

#define DQ__CL_REDIRECTS   5
#define DQ__CL_TRYAGAIN    40     /* 25 ms apart: about 1 s */
#define DQ__CL_TRYAGAIN_MS 25
#define DQ__CL_REFRESH_MS  200

int
dq__cl_new(dq_client_t *c)
{
    c->cl = calloc(1, sizeof(*c->cl));
    if (c->cl == NULL) {
        return DQ_ENOMEM;
    }
    dq_cluster_map_init(&c->cl->map);
    return DQ_OK;
}

void
dq__cl_free(dq_client_t *c)
{
    if (c->cl == NULL) {
        return;
    }
    dq__cl_disconnect(c);
    dq_cluster_map_free(&c->cl->map);
    free(c->cl->conn);
    free(c->cl->pend);
    free(c->cl);
    c->cl = NULL;
}

static void
dq__cl_clear_pending(dq__cluster_t *cl)
{
    size_t i;

    for (i = cl->head; i < cl->npend; i++) {
        redisFreeCommand(cl->pend[i].cmd);
        if (cl->pend[i].reply) {
            freeReplyObject(cl->pend[i].reply);
        }
    }
    cl->head = 0;
    cl->npend = 0;
}

/* Every node connection and the map dropped: the next call asks for the
 * map again and connects as commands come. */
void
dq__cl_disconnect(dq_client_t *c)
{
    dq__cluster_t *cl = c->cl;
    size_t         i;

    for (i = 0; i < cl->nconn; i++) {
        if (cl->conn[i].ctx) {
            redisFree(cl->conn[i].ctx);
            cl->conn[i].ctx = NULL;
        }
    }
    dq__cl_clear_pending(cl);
    cl->have_map = 0;
}

/* After a new map: the connections to nodes that master no slot now (an
 * old master demoted by a failover, a node removed) are closed, unless a
 * pending command still waits for its reply there. Such a node would
 * only answer MOVED, and a WAIT sent to it fails ("WAIT cannot be used
 * with replica instances"). */
static void
dq__cl_drop_stale(dq__cluster_t *cl)
{
    size_t i, j, k;
    int    busy;

    for (i = 0; i < cl->nconn; i++) {
        if (cl->conn[i].ctx == NULL) {
            continue;
        }
        for (j = 0; j < cl->map.nnodes; j++) {
            if (cl->map.nodes[j].port == cl->conn[i].port
                && strcmp(cl->map.nodes[j].host, cl->conn[i].host) == 0)
            {
                break;
            }
        }
        if (j < cl->map.nnodes) {
            continue;
        }
        busy = 0;
        for (k = cl->head; k < cl->npend; k++) {
            if (cl->pend[k].conn == i && cl->pend[k].reply == NULL) {
                busy = 1;
            }
        }
        if (!busy) {
            redisFree(cl->conn[i].ctx);
            cl->conn[i].ctx = NULL;
            cl->conn[i].wrote = 0;
        }
    }
}

/* CLUSTER SLOTS asked of one node (a connection of its own). */
static int
dq__cl_ask_map(dq_client_t *c, const char *host, int port, char *err,
               size_t errlen)
{
    redisContext     *ctx;
    redisReply       *r;
    dq_error_t        e;
    int               rc;

    ctx = dq__node_open(host, port, c->password, c->timeout_ms, err, errlen);
    if (ctx == NULL) {
        return DQ_EREDIS;
    }
    r = redisCommand(ctx, "CLUSTER SLOTS");
    if (r == NULL) {
        snprintf(err, errlen, "%s:%d: CLUSTER SLOTS: %s", host, port,
                 ctx->errstr[0] ? ctx->errstr : "no reply");
        redisFree(ctx);
        return DQ_EREDIS;
    }
    /* the map held stays on a refusal (an answer naming no master too) */
    rc = dq_cluster_map_parse(&c->cl->map, r, host, &e);
    if (rc == DQ_OK) {
        dq__cl_drop_stale(c->cl);
    } else {
        snprintf(err, errlen, "%s:%d: CLUSTER SLOTS: %s", host, port, e.msg);
    }
    freeReplyObject(r);
    redisFree(ctx);
    return rc;
}

/* The map asked of first (the node a MOVED named: it has the news; may be
 * NULL), then of the seeds in turn, then of the masters of the map held.
 * DQ_OK, or DQ_EREDIS with errstr saying what the last one said. */
static int
dq__cl_refresh(dq_client_t *c, const dq_cluster_node_t *first)
{
    dq__cluster_t     *cl = c->cl;
    dq_cluster_node_t *old = NULL;
    dq_addr_t          a;
    dq_error_t         e;
    char               host[DQ_CLUSTER_HOST], err[sizeof(c->errstr)];
    size_t             i, nold;
    int                rc = DQ_EREDIS;

    cl->refreshed_ms = dq_now_ms();
    err[0] = '\0';
    if (dq_addr_parse(dq_str_c(c->address), &a, &e) != DQ_OK) {
        return dq__fail(c, DQ_EINVAL, "%s", e.msg);
    }
    if (first
        && dq__cl_ask_map(c, first->host, first->port, err, sizeof(err))
           == DQ_OK)
    {
        cl->have_map = 1;
        return DQ_OK;
    }
    for (i = 0; i < a.nseeds; i++) {
        snprintf(host, sizeof(host), "%.*s", (int) a.seed[i].host.len,
                 a.seed[i].host.ptr);
        if (dq__cl_ask_map(c, host, a.seed[i].port, err, sizeof(err))
            == DQ_OK)
        {
            cl->have_map = 1;
            return DQ_OK;
        }
    }
    /* the seeds may all be gone: ask the masters last known */
    nold = cl->map.nnodes;
    if (nold > 0) {
        old = malloc(nold * sizeof(*old));
        if (old == NULL) {
            return dq__fail(c, DQ_ENOMEM, "out of memory");
        }
        memcpy(old, cl->map.nodes, nold * sizeof(*old));
    }
    for (i = 0; i < nold; i++) {
        if (dq__cl_ask_map(c, old[i].host, old[i].port, err, sizeof(err))
            == DQ_OK)
        {
            cl->have_map = 1;
            rc = DQ_OK;
            break;
        }
    }
    free(old);
    if (rc != DQ_OK) {
        dq__fail(c, DQ_EREDIS, "redis cluster: no node gave the slot map "
                 "(%zu seeds asked; the last: %s)", a.nseeds, err);
    }
    return rc;
}

int
dq__cl_ready(dq_client_t *c)
{
    if (c->db != 0) {
        return dq__fail(c, DQ_EINVAL, "database %d: a Redis Cluster has "
                        "only database 0 (SELECT is refused there)", c->db);
    }
    if (c->cl->have_map) {
        return DQ_OK;
    }
    return dq__cl_refresh(c, NULL);
}

/* The index of the connection to host:port (made now if needed), or -1
 * with errstr set. */
static long
dq__cl_conn(dq_client_t *c, const char *host, int port)
{
    dq__cluster_t *cl = c->cl;
    dq__cl_conn_t *grown;
    char           err[sizeof(c->errstr)];
    size_t         i;

    for (i = 0; i < cl->nconn; i++) {
        if (cl->conn[i].port == port && strcmp(cl->conn[i].host, host) == 0) {
            break;
        }
    }
    if (i == cl->nconn) {
        if (strlen(host) >= DQ_CLUSTER_HOST) {
            dq__fail(c, DQ_EREDIS, "redis cluster: node host too long");
            return -1;
        }
        grown = realloc(cl->conn, (cl->nconn + 1) * sizeof(*grown));
        if (grown == NULL) {
            dq__fail(c, DQ_ENOMEM, "out of memory");
            return -1;
        }
        cl->conn = grown;
        snprintf(cl->conn[i].host, sizeof(cl->conn[i].host), "%s", host);
        cl->conn[i].port = port;
        cl->conn[i].ctx = NULL;
        cl->conn[i].wrote = 0;
        cl->nconn++;
    }
    if (cl->conn[i].ctx && cl->conn[i].ctx->err) {
        redisFree(cl->conn[i].ctx);       /* a write failed on it */
        cl->conn[i].ctx = NULL;
    }
    if (cl->conn[i].ctx == NULL) {
        cl->conn[i].ctx = dq__node_open(host, port, c->password,
                                        c->timeout_ms, err, sizeof(err));
        if (cl->conn[i].ctx == NULL) {
            dq__fail(c, strstr(err, "out of memory") ? DQ_ENOMEM : DQ_EREDIS,
                     "redis cluster node %s:%d: %s", host, port, err);
            return -1;
        }
    }
    return (long) i;
}

/* The connection to the master of slot (any master for -1, or a slot no
 * master serves: that node answers CLUSTERDOWN). */
static long
dq__cl_slot_conn(dq_client_t *c, int slot)
{
    dq__cluster_t     *cl = c->cl;
    dq_cluster_node_t *n;
    int                idx = 0;

    if (!cl->have_map && dq__cl_refresh(c, NULL) != DQ_OK) {
        return -1;
    }
    if (slot >= 0 && cl->map.slot[slot] >= 0) {
        idx = cl->map.slot[slot];
    }
    n = &cl->map.nodes[idx];
    return dq__cl_conn(c, n->host, n->port);
}

static int
dq__cl_send(dq_client_t *c, long conn, const char *cmd, long long len)
{
    if (redisAppendFormattedCommand(c->cl->conn[conn].ctx, cmd, (size_t) len)
        != REDIS_OK)
    {
        dq__disconnect(c);
        return dq__fail(c, DQ_ENOMEM, "redis: cannot queue the command");
    }
    return DQ_OK;
}

int
dq__cl_append(dq_client_t *c, int argc, const char **argv,
              const size_t *argvlen)
{
    dq__cluster_t *cl = c->cl;
    dq__cl_pend_t *p, *grown;
    size_t        *lens = NULL;
    long           conn;
    char          *cmd = NULL;
    long long      len;
    int            slot, i;

    if (argvlen == NULL) {
        lens = malloc((size_t) argc * sizeof(*lens));
        if (lens == NULL) {
            return dq__fail(c, DQ_ENOMEM, "out of memory");
        }
        for (i = 0; i < argc; i++) {
            lens[i] = strlen(argv[i]);
        }
        argvlen = lens;
    }
    slot = dq_cluster_cmd_slot(argc, argv, argvlen);
    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    free(lens);
    if (len < 0) {
        return dq__fail(c, DQ_ENOMEM, "out of memory");
    }
    if (cl->npend == cl->cap) {
        size_t cap = cl->cap ? cl->cap * 2 : 16;

        grown = realloc(cl->pend, cap * sizeof(*grown));
        if (grown == NULL) {
            redisFreeCommand(cmd);
            return dq__fail(c, DQ_ENOMEM, "out of memory");
        }
        cl->pend = grown;
        cl->cap = cap;
    }
    if ((conn = dq__cl_slot_conn(c, slot)) < 0) {
        redisFreeCommand(cmd);
        dq__disconnect(c);
        return c->errstr[0] ? DQ_EREDIS : dq__fail(c, DQ_EREDIS, "redis "
                                                   "cluster: no node");
    }
    p = &cl->pend[cl->npend++];
    p->conn = (size_t) conn;
    p->cmd = cmd;
    p->len = len;
    p->slot = slot;
    p->reply = NULL;
    return dq__cl_send(c, conn, cmd, len);
}

/* The next reply on one node connection; an I/O error or a timeout drops
 * everything (as on one Redis: the pending commands' replies are lost). */
static int
dq__cl_read(dq_client_t *c, size_t conn, redisReply **r)
{
    dq__cl_conn_t *n = &c->cl->conn[conn];
    void          *p = NULL;

    if (redisGetReply(n->ctx, &p) == REDIS_OK && p != NULL) {
        *r = p;
        return DQ_OK;
    }
    if (n->ctx->err == REDIS_ERR_IO
        && (errno == EAGAIN || errno == EWOULDBLOCK))
    {
        dq__fail(c, DQ_EREDIS, "redis cluster node %s:%d: no reply within %d "
                 "ms (the command may still run)", n->host, n->port,
                 c->timeout_ms);
    } else {
        dq__fail(c, DQ_EREDIS, "redis cluster node %s:%d: %s", n->host,
                 n->port, n->ctx->errstr[0] ? n->ctx->errstr
                                            : "connection lost");
    }
    dq__disconnect(c);
    *r = NULL;
    return DQ_EREDIS;
}

/* Before the head command is sent again to conn: read (and keep) the
 * replies of the later commands already pipelined there. */
static int
dq__cl_drain(dq_client_t *c, size_t conn)
{
    dq__cluster_t *cl = c->cl;
    size_t         i;

    for (i = cl->head + 1; i < cl->npend; i++) {
        if (cl->pend[i].conn == conn && cl->pend[i].reply == NULL
            && dq__cl_read(c, conn, &cl->pend[i].reply) != DQ_OK)
        {
            return DQ_EREDIS;
        }
    }
    return DQ_OK;
}

/* Send the head command again to conn (after ASKING for an ASK). */
static int
dq__cl_resend(dq_client_t *c, long conn, int asking)
{
    dq__cluster_t *cl = c->cl;
    dq__cl_pend_t *p = &cl->pend[cl->head];
    const char    *argv[1] = { "ASKING" };
    redisReply    *r;
    int            rc;

    if (dq__cl_drain(c, (size_t) conn) != DQ_OK) {
        return DQ_EREDIS;
    }
    if (asking) {
        if (redisAppendCommandArgv(cl->conn[conn].ctx, 1, argv, NULL)
            != REDIS_OK)
        {
            dq__disconnect(c);
            return dq__fail(c, DQ_ENOMEM, "redis: cannot queue the command");
        }
    }
    if ((rc = dq__cl_send(c, conn, p->cmd, p->len)) != DQ_OK) {
        return rc;
    }
    p->conn = (size_t) conn;
    if (asking) {
        if (dq__cl_read(c, (size_t) conn, &r) != DQ_OK) {
            return DQ_EREDIS;
        }
        freeReplyObject(r);     /* +OK; an error shows in the command's */
    }
    return DQ_OK;
}

static int
dq__cl_is(const redisReply *r, const char *name)
{
    return dq_reply_error_is(r, &name, 1);
}

static void
dq__cl_nap(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* the rest of it */
    }
}

int
dq__cl_get_reply(dq_client_t *c, redisReply **r)
{
    dq__cluster_t         *cl = c->cl;
    dq__cl_pend_t         *p;
    dq_cluster_redirect_t  rd;
    dq_cluster_node_t      named;
    char                   last[128], saved[sizeof(c->errstr)];
    long                   conn;
    int                    redirects = 0, tries = 0;

    *r = NULL;
    if (cl->head == cl->npend) {
        return dq__fail(c, DQ_ERR, "redis cluster: no command pending");
    }
    for (;;) {
        p = &cl->pend[cl->head];
        if (p->reply) {
            *r = p->reply;
            p->reply = NULL;
        } else if (dq__cl_read(c, p->conn, r) != DQ_OK) {
            return DQ_EREDIS;
        }
        if (dq_cluster_redirect(*r, &rd)) {
            snprintf(last, sizeof(last), "%s", (*r)->str);
            if (++redirects > DQ__CL_REDIRECTS) {
                freeReplyObject(*r);
                *r = NULL;
                dq__disconnect(c);
                return dq__fail(c, DQ_EREDIS, "redis cluster: slot %d "
                                "still redirected after %d redirects (the "
                                "last: %s); the command was not run",
                                p->slot, DQ__CL_REDIRECTS, last);
            }
            freeReplyObject(*r);
            *r = NULL;
            if (rd.host[0] == '\0') {
                snprintf(rd.host, sizeof(rd.host), "%s",
                         cl->conn[p->conn].host);
            }
            p->conn = (size_t) -1;  /* its reply taken: not pending there */
            if (!rd.ask
                && dq_now_ms() - cl->refreshed_ms >= DQ__CL_REFRESH_MS)
            {
                /* a failure keeps the map held: the next MOVED asks again */
                memcpy(saved, c->errstr, sizeof(saved));
                snprintf(named.host, sizeof(named.host), "%s", rd.host);
                named.port = rd.port;
                (void) dq__cl_refresh(c, &named);
                memcpy(c->errstr, saved, sizeof(saved));
            }
            if ((conn = dq__cl_conn(c, rd.host, rd.port)) < 0) {
                dq__disconnect(c);
                return DQ_EREDIS;
            }
            if (dq__cl_resend(c, conn, rd.ask) != DQ_OK) {
                return DQ_EREDIS;
            }
            continue;
        }
        if (dq__cl_is(*r, "TRYAGAIN") && tries < DQ__CL_TRYAGAIN) {
            tries++;
            redirects = 0;      /* the ASK before it starts again */
            freeReplyObject(*r);
            *r = NULL;
            dq__cl_nap(DQ__CL_TRYAGAIN_MS);
            if ((conn = dq__cl_slot_conn(c, p->slot)) < 0
                || dq__cl_resend(c, conn, 0) != DQ_OK)
            {
                dq__disconnect(c);
                return DQ_EREDIS;
            }
            continue;
        }
        if (dq__cl_is(*r, "CLUSTERDOWN")) {
            cl->have_map = 0;          /* asked again by the next call */
        }
        if ((*r)->type != REDIS_REPLY_ERROR) {
            cl->conn[p->conn].wrote = 1;
        }
        break;
    }
    redisFreeCommand(p->cmd);
    if (++cl->head == cl->npend) {
        cl->head = 0;
        cl->npend = 0;
    }
    return DQ_OK;
}

void
dq__cl_wait_reset(dq_client_t *c)
{
    size_t i;

    for (i = 0; i < c->cl->nconn; i++) {
        c->cl->conn[i].wrote = 0;
    }
}

/* WAIT on the masters that answered this call's commands (after
 * redirects; each has replicas of its own), not on every connection
 * held: a master written to by an earlier call, or one demoted since,
 * is not asked. The call fails if one of them got fewer
 * acknowledgements; a node that says it is a replica now (a failover
 * between the write and the WAIT) makes the next call ask for the map. */
int
dq__cl_wait(dq_client_t *c, int replicas, int timeout_ms)
{
    dq__cluster_t  *cl = c->cl;
    dq__cl_conn_t  *n;
    redisReply     *r;
    long long       total = (long long) c->timeout_ms + timeout_ms;
    size_t          i;
    int             rc = DQ_OK;

    for (i = 0; i < cl->nconn && rc == DQ_OK; i++) {
        n = &cl->conn[i];
        if (n->ctx == NULL || !n->wrote) {
            continue;
        }
        n->wrote = 0;
        redisSetTimeout(n->ctx, dq__ms_tv(total));
        r = redisCommand(n->ctx, "WAIT %d %d", replicas, timeout_ms);
        if (r == NULL) {
            rc = dq__fail(c, DQ_EREDIS, "stored, but WAIT on %s:%d got no "
                          "reply: %s", n->host, n->port,
                          n->ctx->errstr[0] ? n->ctx->errstr : "no reply");
            dq__disconnect(c);
            return rc;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            rc = dq__fail(c, DQ_EREDIS, "stored, but WAIT on %s:%d failed: "
                          "%s", n->host, n->port, r->str);
            if (strstr(r->str, "replica") != NULL) {
                cl->have_map = 0;     /* demoted: the map is stale */
            }
        } else if (r->type != REDIS_REPLY_INTEGER || r->integer < replicas) {
            rc = dq__fail(c, DQ_EREDIS, "stored, but acknowledged by %lld of "
                          "%d replicas of %s:%d within %d ms",
                          r->type == REDIS_REPLY_INTEGER ? r->integer : -1LL,
                          replicas, n->host, n->port, timeout_ms);
        }
        freeReplyObject(r);
        redisSetTimeout(n->ctx, dq__ms_tv(c->timeout_ms));
    }
    return rc;
}

int
dq__cl_wait_replicated(dq_client_t *c, int timeout_ms, const char *what)
{
    dq__cluster_t *cl = c->cl;
    char           who[DQ_CLUSTER_HOST + 8];
    size_t         i;
    int            rc = DQ_OK;

    for (i = 0; i < cl->nconn && rc == DQ_OK; i++) {
        if (cl->conn[i].ctx == NULL || !cl->conn[i].wrote) {
            continue;
        }
        cl->conn[i].wrote = 0;
        snprintf(who, sizeof(who), "%s:%d", cl->conn[i].host,
                 cl->conn[i].port);
        rc = dq__wait_node(c, cl->conn[i].ctx, who, timeout_ms, what);
    }
    return rc;
}
