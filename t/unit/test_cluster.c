/*
 * Redis Cluster pieces every client shares (lib/dq_cluster.c): the slot of
 * a key and of a command, CLUSTER SLOTS parsed into a slot map, MOVED and
 * ASK parsed. Replies are built by hiredis' own reader from RESP bytes.
 * Given a port (t/115 starts a cluster-enabled redis-server there), the
 * slots of 3,000 generated keys are also checked against the server's own
 * CLUSTER KEYSLOT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dq_contract.h"
#include "tap.h"

static redisReply *
resp(const char *s)
{
    redisReader *rd = redisReaderCreate();
    void        *r = NULL;

    redisReaderFeed(rd, s, strlen(s));
    if (redisReaderGetReply(rd, &r) != REDIS_OK) {
        r = NULL;
    }
    redisReaderFree(rd);
    return r;
}

static int
slot_of(const char *k)
{
    return (int) dq_cluster_slot(k, strlen(k));
}

static int
cmd_slot(int argc, const char **argv)
{
    size_t len[8];
    int    i;

    for (i = 0; i < argc; i++) {
        len[i] = strlen(argv[i]);
    }
    return dq_cluster_cmd_slot(argc, argv, len);
}

/* keys of every shape: plain, tagged, empty tags, nested and unclosed
 * braces, binary bytes */
static void
against_redis(int port)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    redisReply   *r;
    char          key[64];
    unsigned      seed = 12345;
    int           i, j, len, bad = 0, n = 3000;
    static const char alphabet[] = "ab{}c:#\x00\xff{}q";

    if (c == NULL || c->err) {
        ok(0, "connect to the cluster-enabled redis-server on %d", port);
        return;
    }
    for (i = 0; i < n; i++) {
        len = (int) ((seed = seed * 1103515245u + 12345u) >> 16) % 24;
        for (j = 0; j < len; j++) {
            seed = seed * 1103515245u + 12345u;
            key[j] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        if (i % 7 == 0) {
            len = snprintf(key, sizeof(key), "dq2:{q%d}:eta", i);
        }
        r = redisCommand(c, "CLUSTER KEYSLOT %b", key, (size_t) len);
        if (r == NULL || r->type != REDIS_REPLY_INTEGER
            || r->integer != (long long) dq_cluster_slot(key, (size_t) len))
        {
            if (bad++ < 5) {
                diag("key of %d bytes: redis %lld, ours %u", len,
                     r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1,
                     dq_cluster_slot(key, (size_t) len));
            }
        }
        freeReplyObject(r);
    }
    ok(bad == 0, "%d keys: our slot is CLUSTER KEYSLOT's (%d differ)", n, bad);
    redisFree(c);
}

int
main(int argc, char **argv)
{
    dq_cluster_map_t      m;
    dq_cluster_redirect_t rd;
    dq_error_t            e;
    redisReply           *r;
    size_t                i;
    static const struct {
        const char *resp;
        int         is;
        const char *what;
    } retry[] = {
        { "-TRYAGAIN Multiple keys request during rehashing of slot\r\n", 1,
          "TRYAGAIN is not run" },
        { "-CLUSTERDOWN The cluster is down\r\n", 1,
          "CLUSTERDOWN is not run" },
        { "-TRYAGAINX\r\n", 0, "TRYAGAINX is another error" },
        { "+TRYAGAIN\r\n", 0, "a status reply is not" },
        { "-MOVED 1 a:1\r\n", 0, "MOVED is a redirect, not this" },
    };

    /* Redis Cluster's specification: CRC16/XMODEM mod 16384 */
    is_int(slot_of("123456789"), 12739, "slot of 123456789 (CRC 0x31c3)");
    is_int(slot_of("foo"), 12182, "slot of foo");
    is_int(slot_of("bar"), 5061, "slot of bar");
    is_int(slot_of("{foo}.x"), 12182, "{foo}.x: the hash tag only");
    is_int(slot_of("dq2:{foo}:eta"), slot_of("dq2:{foo}:tasks"),
           "one queue's keys share one slot");
    is_int(slot_of("dq2:{foo}:eta"), 12182, "dq2:{foo}:eta is foo's slot");
    is_int(slot_of("foo{}{bar}"), (int) dq_cluster_slot("foo{}{bar}", 10),
           "an empty tag {} hashes the whole key");
    ok(slot_of("foo{}{bar}") != 5061, "  (not bar's slot)");
    is_int(slot_of("foo{{bar}}zap"), slot_of("{bar"),
           "foo{{bar}}zap hashes \"{bar\"");
    is_int(slot_of("foo{bar}{zap}"), 5061, "the first tag wins");
    is_int(slot_of("{"), (int) dq_cluster_slot("{", 1), "an open brace alone");
    is_int((int) dq_cluster_slot("", 0), 0, "the empty key is slot 0");

    {
        const char *ev[] = { "EVALSHA", "abc", "2", "dq2:{foo}:tasks", "x" };
        const char *ev0[] = { "EVALSHA", "abc", "0", "a" };
        const char *bl[] = { "BLPOP", "dq2:{bar}:wake", "5" };
        const char *sadd[] = { "sadd", "dq:queues", "q" };
        const char *ping[] = { "PING" };
        const char *info[] = { "info", "server" };
        const char *script[] = { "SCRIPT", "LOAD", "return 1" };

        is_int(cmd_slot(5, ev), 12182, "EVALSHA: the first key's slot");
        is_int(cmd_slot(4, ev0), -1, "EVALSHA with no keys: any node");
        is_int(cmd_slot(3, bl), 5061, "BLPOP: argv[1]");
        is_int(cmd_slot(3, sadd), slot_of("dq:queues"), "SADD (any case)");
        is_int(cmd_slot(1, ping), -1, "PING: any node");
        is_int(cmd_slot(2, info), -1, "INFO: any node");
        is_int(cmd_slot(3, script), -1, "SCRIPT LOAD: any node");
        {
            size_t      l5[] = { 7, 3, 1, 15, 1 }, l3[] = { 5, 14, 1 };
            size_t      l4[] = { 7, 3, 1, 1 }, len = 0;
            const char *k;

            k = dq_cluster_cmd_key(5, ev, l5, &len);
            ok(k == ev[3] && len == 15, "cmd_key: EVALSHA's first key");
            k = dq_cluster_cmd_key(3, bl, l3, &len);
            ok(k == bl[1] && len == 14, "cmd_key: BLPOP's argv[1]");
            ok(dq_cluster_cmd_key(4, ev0, l4, &len) == NULL,
               "cmd_key: EVALSHA with no keys: none");
        }
    }

    /* CLUSTER SLOTS: three masters with a replica each; one master says
     * "" for its host (it does not know its own address) */
    dq_cluster_map_init(&m);
    r = resp("*3\r\n"
             "*4\r\n:0\r\n:5460\r\n"
             "*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n"
             "*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$2\r\nid\r\n"
             "*4\r\n:5461\r\n:10922\r\n"
             "*3\r\n$0\r\n\r\n:7001\r\n$2\r\nid\r\n"
             "*3\r\n$9\r\n127.0.0.1\r\n:7004\r\n$2\r\nid\r\n"
             "*3\r\n:10923\r\n:16383\r\n"
             "*2\r\n$3\r\n::1\r\n:7002\r\n");
    ok(r != NULL, "a CLUSTER SLOTS reply built");
    is_int(dq_cluster_map_parse(&m, r, "seed.example", &e), DQ_OK,
           "parsed");
    is_int((int) m.nnodes, 3, "three masters (replicas not kept)");
    is_int(m.slot[0], 0, "slot 0 -> node 0");
    is_int(m.slot[5460], 0, "slot 5460 -> node 0");
    is_int(m.slot[5461], 1, "slot 5461 -> node 1");
    is_int(m.slot[16383], 2, "slot 16383 -> node 2");
    ok(strcmp(m.nodes[1].host, "seed.example") == 0 && m.nodes[1].port == 7001,
       "an empty host is the host asked");
    is_int(dq_cluster_map_find(&m, "::1", 7002), 2, "find ::1:7002");
    is_int(dq_cluster_map_find(&m, "127.0.0.1", 7003), -1,
           "a replica is not in the map");
    freeReplyObject(r);

    /* a map with a hole and one master owning two ranges */
    r = resp("*2\r\n"
             "*3\r\n:0\r\n:99\r\n*2\r\n$1\r\na\r\n:1\r\n"
             "*3\r\n:200\r\n:300\r\n*2\r\n$1\r\na\r\n:1\r\n");
    is_int(dq_cluster_map_parse(&m, r, "x", &e), DQ_OK, "a map with a hole");
    ok(m.nnodes == 1 && m.slot[99] == 0 && m.slot[100] == -1
       && m.slot[200] == 0 && m.slot[301] == -1,
       "one node for two ranges; slots in the hole are -1");
    freeReplyObject(r);

    /* malformed answers leave the map as it was */
    r = resp("*1\r\n*3\r\n:5\r\n:2\r\n*2\r\n$1\r\nb\r\n:1\r\n");
    is_int(dq_cluster_map_parse(&m, r, "x", &e), DQ_EREDIS,
           "a range ending before it starts is refused");
    ok(m.nnodes == 1 && m.slot[0] == 0, "the old map is kept");
    freeReplyObject(r);
    r = resp("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nb\r\n:1\r\n");
    is_int(dq_cluster_map_parse(&m, r, "x", &e), DQ_EREDIS,
           "slot 16384 is refused");
    freeReplyObject(r);
    r = resp("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nb\r\n:0\r\n");
    is_int(dq_cluster_map_parse(&m, r, "x", &e), DQ_EREDIS,
           "port 0 is refused");
    freeReplyObject(r);
    r = resp("-ERR This instance has cluster support disabled\r\n");
    is_int(dq_cluster_map_parse(&m, r, "x", &e), DQ_EREDIS,
           "an error reply is refused");
    ok(strstr(e.msg, "cluster support disabled") != NULL,
       "  and the error says Redis' words: %s", e.msg);
    freeReplyObject(r);
    is_int(dq_cluster_map_parse(&m, NULL, "x", &e), DQ_EREDIS, "no reply");
    r = resp("*0\r\n");
    is_int(dq_cluster_map_parse(&m, r, "x", &e), DQ_EREDIS,
           "an answer naming no master (a node reset) is refused");
    ok(strstr(e.msg, "names no master") != NULL && m.nnodes == 1
       && m.slot[0] == 0, "  saying so, the old map kept: %s", e.msg);
    freeReplyObject(r);
    dq_cluster_map_free(&m);

    /* MOVED / ASK */
    r = resp("-MOVED 3999 127.0.0.1:6381\r\n");
    ok(dq_cluster_redirect(r, &rd) == 1 && rd.ask == 0 && rd.slot == 3999
       && strcmp(rd.host, "127.0.0.1") == 0 && rd.port == 6381, "MOVED");
    freeReplyObject(r);
    r = resp("-ASK 12182 [::1]:7002\r\n");
    ok(dq_cluster_redirect(r, &rd) == 1 && rd.ask == 1 && rd.slot == 12182
       && strcmp(rd.host, "::1") == 0 && rd.port == 7002,
       "ASK to an IPv6 node in brackets");
    freeReplyObject(r);
    ok(dq_cluster_redirect_str("MOVED 1 ::1:7", 13, &rd) == 1
       && strcmp(rd.host, "::1") == 0 && rd.port == 7,
       "an unbracketed IPv6 host: the port after the last colon");
    ok(dq_cluster_redirect_str("MOVED 1 :7000", 13, &rd) == 1
       && rd.host[0] == '\0' && rd.port == 7000,
       "an empty host (the node asked) is kept empty");
    ok(dq_cluster_redirect_str("MOVED 16384 a:1", 15, &rd) == 0,
       "slot 16384 is not a redirect");
    ok(dq_cluster_redirect_str("MOVED 1 a", 9, &rd) == 0, "no port");
    ok(dq_cluster_redirect_str("MOVED 1 a:70000", 15, &rd) == 0,
       "port out of range");
    ok(dq_cluster_redirect_str("MOVEDX 1 a:1", 12, &rd) == 0, "MOVEDX");
    r = resp("-ERR unknown\r\n");
    ok(dq_cluster_redirect(r, &rd) == 0, "another error is not a redirect");
    freeReplyObject(r);
    r = resp("+MOVED 1 a:1\r\n");
    ok(dq_cluster_redirect(r, &rd) == 0, "a status reply is not a redirect");
    freeReplyObject(r);
    ok(dq_cluster_redirect(NULL, &rd) == 0, "no reply is not a redirect");

    /* TRYAGAIN / CLUSTERDOWN: not run */
    for (i = 0; i < sizeof(retry) / sizeof(retry[0]); i++) {
        r = resp(retry[i].resp);
        ok(dq_cluster_is_retry(r) == retry[i].is, "%s", retry[i].what);
        freeReplyObject(r);
    }
    ok(dq_cluster_is_retry(NULL) == 0, "no reply is not");

    if (argc > 1) {
        against_redis(atoi(argv[1]));
    }

    return done_testing();
}
