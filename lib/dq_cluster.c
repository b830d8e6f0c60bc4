/*
 * Redis Cluster, the parts every client shares: the slot of a key and of
 * a command, the slot map from CLUSTER SLOTS, MOVED/ASK parsed. Pure
 * functions over hiredis replies: no connection, no blocking (the module
 * compiles this into nginx). Who connects where is each client's own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dq_contract.h"

/* CRC16/XMODEM (polynomial 0x1021, initial 0), as Redis Cluster hashes. */
static const uint16_t dq__crc16_tab[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
    0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
    0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
    0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
    0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
    0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
    0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
    0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
    0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
    0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
    0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
    0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
    0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
    0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
    0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
    0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
    0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
    0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
    0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
    0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
    0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

unsigned
dq_cluster_slot(const char *key, size_t len)
{
    const char *open, *close;
    uint16_t    crc = 0;
    size_t      i;

    open = memchr(key, '{', len);
    if (open != NULL) {
        close = memchr(open + 1, '}', len - (size_t) (open + 1 - key));
        if (close != NULL && close > open + 1) {
            key = open + 1;
            len = (size_t) (close - key);
        }
    }
    for (i = 0; i < len; i++) {
        crc = (uint16_t) ((crc << 8)
                          ^ dq__crc16_tab[((crc >> 8) ^ (unsigned char) key[i])
                                          & 0xff]);
    }
    return crc & (DQ_CLUSTER_SLOTS - 1);
}

static int
dq__is(const char *s, size_t len, const char *name)
{
    return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

const char *
dq_cluster_cmd_key(int argc, const char *const *argv, const size_t *argvlen,
                   size_t *len)
{
    static const char *const keyless[] = {
        "PING", "INFO", "TIME", "SCRIPT", "CLUSTER", "ROLE", "AUTH",
        "SELECT", "ASKING", "READONLY", "CLIENT", "HELLO", "WAIT", "CONFIG",
        "COMMAND", "DBSIZE", "SCAN", "QUIT", "MULTI", "EXEC", "DISCARD"
    };
    size_t i, n;
    char   num[24];

    if (argc < 1) {
        return NULL;
    }
    for (i = 0; i < sizeof(keyless) / sizeof(keyless[0]); i++) {
        if (dq__is(argv[0], argvlen[0], keyless[i])) {
            return NULL;
        }
    }
    if (dq__is(argv[0], argvlen[0], "EVALSHA")
        || dq__is(argv[0], argvlen[0], "EVAL")
        || dq__is(argv[0], argvlen[0], "EVALSHA_RO")
        || dq__is(argv[0], argvlen[0], "EVAL_RO")
        || dq__is(argv[0], argvlen[0], "FCALL"))
    {
        if (argc < 4 || argvlen[2] == 0 || argvlen[2] >= sizeof(num)) {
            return NULL;
        }
        memcpy(num, argv[2], argvlen[2]);
        num[argvlen[2]] = '\0';
        n = strtoul(num, NULL, 10);
        if (n == 0) {
            return NULL;
        }
        *len = argvlen[3];
        return argv[3];
    }
    if (argc < 2) {
        return NULL;
    }
    *len = argvlen[1];
    return argv[1];
}

int
dq_cluster_cmd_slot(int argc, const char *const *argv, const size_t *argvlen)
{
    size_t      len;
    const char *key = dq_cluster_cmd_key(argc, argv, argvlen, &len);

    return key != NULL ? (int) dq_cluster_slot(key, len) : -1;
}

void
dq_cluster_map_init(dq_cluster_map_t *m)
{
    size_t i;

    m->nnodes = 0;
    m->nodes = NULL;
    for (i = 0; i < DQ_CLUSTER_SLOTS; i++) {
        m->slot[i] = -1;
    }
}

void
dq_cluster_map_free(dq_cluster_map_t *m)
{
    free(m->nodes);
    dq_cluster_map_init(m);
}

int
dq_cluster_map_find(const dq_cluster_map_t *m, const char *host, int port)
{
    size_t i;

    for (i = 0; i < m->nnodes; i++) {
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0) {
            return (int) i;
        }
    }
    return -1;
}

static int
dq__int_elem(const redisReply *e, long long *v)
{
    if (e->type != REDIS_REPLY_INTEGER) {
        return -1;
    }
    *v = e->integer;
    return 0;
}

int
dq_cluster_map_parse(dq_cluster_map_t *m, const redisReply *r,
                     const char *asked_host, dq_error_t *err)
{
    dq_cluster_node_t *nodes = NULL, *grown;
    const redisReply  *range, *master;
    size_t             i, nnodes = 0, cap = 0, hlen;
    long long          from, to, port;
    int16_t           *slot;
    long long          s;
    int                idx;
    const char        *host;

    if (r == NULL) {
        return dq_error_set(err, DQ_EREDIS, "cluster", "no reply");
    }
    if (r->type == REDIS_REPLY_ERROR) {
        return dq_error_set(err, DQ_EREDIS, "cluster", "CLUSTER SLOTS: %.*s",
                            (int) (r->len > 200 ? 200 : r->len), r->str);
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        return dq_error_set(err, DQ_EREDIS, "cluster",
                            "unexpected answer to CLUSTER SLOTS");
    }
    slot = malloc(sizeof(m->slot));
    if (slot == NULL) {
        return dq_error_set(err, DQ_ENOMEM, "cluster", "out of memory");
    }
    for (i = 0; i < DQ_CLUSTER_SLOTS; i++) {
        slot[i] = -1;
    }
    for (i = 0; i < r->elements; i++) {
        range = r->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3
            || dq__int_elem(range->element[0], &from) != 0
            || dq__int_elem(range->element[1], &to) != 0
            || from < 0 || to < from || to >= DQ_CLUSTER_SLOTS)
        {
            goto bad;
        }
        master = range->element[2];
        if (master->type != REDIS_REPLY_ARRAY || master->elements < 2
            || master->element[0]->type != REDIS_REPLY_STRING
            || dq__int_elem(master->element[1], &port) != 0
            || port < 1 || port > 65535)
        {
            goto bad;
        }
        host = master->element[0]->str;
        hlen = master->element[0]->len;
        if (hlen == 0 || (hlen == 1 && host[0] == '?')) {
            host = asked_host;
            hlen = strlen(asked_host);
        }
        if (hlen >= DQ_CLUSTER_HOST || memchr(host, '\0', hlen)) {
            goto bad;
        }
        idx = -1;
        for (size_t k = 0; k < nnodes; k++) {
            if (nodes[k].port == port && strlen(nodes[k].host) == hlen
                && memcmp(nodes[k].host, host, hlen) == 0)
            {
                idx = (int) k;
                break;
            }
        }
        if (idx < 0) {
            if (nnodes == INT16_MAX) {
                goto bad;
            }
            if (nnodes == cap) {
                cap = cap ? cap * 2 : 8;
                grown = realloc(nodes, cap * sizeof(*nodes));
                if (grown == NULL) {
                    free(nodes);
                    free(slot);
                    return dq_error_set(err, DQ_ENOMEM, "cluster",
                                        "out of memory");
                }
                nodes = grown;
            }
            memcpy(nodes[nnodes].host, host, hlen);
            nodes[nnodes].host[hlen] = '\0';
            nodes[nnodes].port = (int) port;
            idx = (int) nnodes++;
        }
        for (s = from; s <= to; s++) {
            slot[s] = (int16_t) idx;
        }
    }
    if (nnodes == 0) {
        /* a node reset or out of the cluster: installed, such a map
         * serves nothing and is asked of the same node again */
        free(slot);
        return dq_error_set(err, DQ_EREDIS, "cluster", "it names no master "
                            "(a node reset, or out of the cluster)");
    }
    free(m->nodes);
    m->nodes = nodes;
    m->nnodes = nnodes;
    memcpy(m->slot, slot, sizeof(m->slot));
    free(slot);
    return DQ_OK;

bad:
    free(nodes);
    free(slot);
    return dq_error_set(err, DQ_EREDIS, "cluster",
                        "malformed CLUSTER SLOTS answer (range %zu)", i);
}

int
dq_cluster_redirect_str(const char *s, size_t len, dq_cluster_redirect_t *rd)
{
    const char *p, *end = s + len, *sp, *colon;
    unsigned    slot = 0;
    long        port = 0;
    size_t      hlen;

    if (len > 6 && memcmp(s, "MOVED ", 6) == 0) {
        rd->ask = 0;
        p = s + 6;
    } else if (len > 4 && memcmp(s, "ASK ", 4) == 0) {
        rd->ask = 1;
        p = s + 4;
    } else {
        return 0;
    }
    if (p == end || *p < '0' || *p > '9') {
        return 0;
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        slot = slot * 10 + (unsigned) (*p - '0');
        if (slot >= DQ_CLUSTER_SLOTS) {
            return 0;
        }
    }
    if (p == end || *p != ' ') {
        return 0;
    }
    p++;
    sp = memchr(p, ' ', (size_t) (end - p));
    if (sp != NULL) {
        end = sp;
    }
    colon = NULL;
    for (sp = p; sp < end; sp++) {
        if (*sp == ':') {
            colon = sp;
        }
    }
    if (colon == NULL || colon + 1 == end) {
        return 0;
    }
    for (sp = colon + 1; sp < end; sp++) {
        if (*sp < '0' || *sp > '9' || port > 65535) {
            return 0;
        }
        port = port * 10 + (*sp - '0');
    }
    if (port < 1 || port > 65535) {
        return 0;
    }
    hlen = (size_t) (colon - p);
    if (hlen >= 2 && p[0] == '[' && p[hlen - 1] == ']') {
        p++;
        hlen -= 2;
    }
    if (hlen >= DQ_CLUSTER_HOST || memchr(p, '\0', hlen)) {
        return 0;
    }
    memcpy(rd->host, p, hlen);
    rd->host[hlen] = '\0';
    rd->port = (int) port;
    rd->slot = slot;
    return 1;
}

int
dq_cluster_redirect(const redisReply *r, dq_cluster_redirect_t *rd)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR
           && dq_cluster_redirect_str(r->str, r->len, rd);
}

int
dq_cluster_is_retry(const redisReply *r)
{
    static const char *const  names[] = { "TRYAGAIN", "CLUSTERDOWN" };

    return dq_reply_error_is(r, names, sizeof(names) / sizeof(names[0]));
}
