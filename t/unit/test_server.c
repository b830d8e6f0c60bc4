/*
 * lib/dq_server.c without Redis: which error replies mean "Redis did not
 * run this, send it again" (every one Redis 7 uses for that, and near
 * misses that must stay final), and reading INFO for the version and the
 * eviction policy.
 */
#include <string.h>

#include "dq_contract.h"
#include "tap.h"

static int
unavailable(int type, const char *s)
{
    redisReply r;

    memset(&r, 0, sizeof(r));
    r.type = type;
    r.str = (char *) s;
    r.len = strlen(s);
    return dq_reply_is_unavailable(&r);
}

static redisReply *
str_reply(redisReply *r, int type, const char *s)
{
    memset(r, 0, sizeof(*r));
    r->type = type;
    r->str = (char *) s;
    r->len = s ? strlen(s) : 0;
    return r;
}

/* ROLE and SENTINEL get-master-addr-by-name, as Redis 7 answers them */
static void
sentinel_replies(void)
{
    redisReply  a, h, p, *el[2] = { &h, &p };
    char        host[64];
    int         port = 0;
    dq_error_t  e;

    memset(&a, 0, sizeof(a));
    a.type = REDIS_REPLY_ARRAY;
    a.elements = 2;
    a.element = el;
    str_reply(&h, REDIS_REPLY_STRING, "127.0.0.1");
    str_reply(&p, REDIS_REPLY_STRING, "6390");
    ok(dq_sentinel_reply(&a, host, sizeof(host), &port, &e) == DQ_OK
       && strcmp(host, "127.0.0.1") == 0 && port == 6390,
       "sentinel answer [127.0.0.1, 6390] read");
    str_reply(&p, REDIS_REPLY_STRING, "0");
    ok(dq_sentinel_reply(&a, host, sizeof(host), &port, &e) == DQ_EREDIS,
       "port 0 refused: %s", e.msg);
    str_reply(&p, REDIS_REPLY_STRING, "63x");
    ok(dq_sentinel_reply(&a, host, sizeof(host), &port, &e) == DQ_EREDIS,
       "a port that is not a number refused");
    str_reply(&p, REDIS_REPLY_STRING, "6390");
    ok(dq_sentinel_reply(&a, host, 4, &port, &e) == DQ_EREDIS,
       "a host longer than the buffer refused");
    a.elements = 1;
    ok(dq_sentinel_reply(&a, host, sizeof(host), &port, &e) == DQ_EREDIS,
       "one element refused");
    ok(dq_sentinel_reply(str_reply(&h, REDIS_REPLY_NIL, NULL), host,
                         sizeof(host), &port, &e) == DQ_ENOTFOUND
       && strstr(e.msg, "master name") != NULL,
       "nil: the master name is unknown (%s)", e.msg);
    ok(dq_sentinel_reply(str_reply(&h, REDIS_REPLY_ERROR, "NOAUTH x"), host,
                         sizeof(host), &port, &e) == DQ_EREDIS
       && strcmp(e.msg, "NOAUTH x") == 0, "an error reply passed on");
    ok(dq_sentinel_reply(NULL, host, sizeof(host), &port, NULL) == DQ_EREDIS,
       "no reply, err NULL");

    a.elements = 2;
    str_reply(&h, REDIS_REPLY_STRING, "master");
    ok(dq_reply_is_master_role(&a), "ROLE master");
    str_reply(&h, REDIS_REPLY_STRING, "slave");
    ok(!dq_reply_is_master_role(&a), "ROLE slave is not");
    str_reply(&h, REDIS_REPLY_STRING, "sentinel");
    ok(!dq_reply_is_master_role(&a), "ROLE sentinel is not");
    ok(!dq_reply_is_master_role(str_reply(&h, REDIS_REPLY_ERROR, "master")),
       "an error is not");
    ok(!dq_reply_is_master_role(NULL), "no reply is not");
}

int
main(void)
{
    static const char *yes[] = {
        "READONLY You can't write against a read only replica. script: "
        "abc, on @user_script:12.",
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script. You can only call SCRIPT "
        "KILL or SHUTDOWN NOSAVE.",
        "OOM command not allowed when used memory > 'maxmemory'.",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data "
        "is set to 'no'.",
        "NOREPLICAS Not enough good replicas to write.",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down",
        "BUSY",
    };
    static const char *no[] = {
        "ERR unknown command", "NOSCRIPT No matching script",
        "BUSYGROUP Consumer Group name already exists", "OOMPH",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "readonly lower case is not Redis", "",
    };
    dq_server_info_t si;
    const char      *info;
    size_t           i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        ok(unavailable(REDIS_REPLY_ERROR, yes[i]), "not run: %.20s", yes[i]);
    }
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        ok(!unavailable(REDIS_REPLY_ERROR, no[i]), "final: \"%.20s\"", no[i]);
    }
    ok(!unavailable(REDIS_REPLY_STRING, "READONLY"), "a string reply is "
       "not an error");
    ok(!dq_reply_is_unavailable(NULL), "no reply is not this (the caller "
       "handles a lost connection)");
    sentinel_replies();

    info = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n"
           "# Memory\r\nmaxmemory_policy:noeviction\r\n";
    is_int(dq_server_info(info, strlen(info), &si), 0, "INFO read");
    is_str(si.version, "7.0.15", "version");
    is_str(si.policy, "noeviction", "policy");
    is_int(si.too_old, 0, "7.0.15 is recent enough");
    is_int(si.evicts, 0, "noeviction does not evict");

    is_int(si.loading, 0, "no loading field: not loading");
    info = "redis_version:7.0.15\r\n# Persistence\r\nloading:1\r\n";
    dq_server_info(info, strlen(info), &si);
    is_int(si.loading, 1, "loading:1 read");
    info = "redis_version:7.0.15\r\nloading:0\r\n";
    dq_server_info(info, strlen(info), &si);
    is_int(si.loading, 0, "loading:0 read");

    info = "redis_version:6.2.14\nmaxmemory_policy:allkeys-lru\n";
    is_int(dq_server_info(info, strlen(info), &si), 0, "LF-only lines");
    is_int(si.too_old, 1, "6.2.14 is too old (script flags need 7.0)");
    is_int(si.evicts, 1, "allkeys-lru evicts");

    info = "redis_version:7.2.4\r\n";
    dq_server_info(info, strlen(info), &si);
    is_int(si.too_old, 0, "7.2.4 is fine");
    is_str(si.policy, "", "no memory section: policy unknown");
    is_int(si.evicts, 0, "... and not reported as evicting");

    info = "redis_version:10.0.0\r\n";
    dq_server_info(info, strlen(info), &si);
    is_int(si.too_old, 0, "10.0.0 compares as a number, not text");

    info = "redis_version_x:1.0.0\r\nmaxmemory_policy:volatile-lru\r\n";
    is_int(dq_server_info(info, strlen(info), &si), -1, "no redis_version: "
           "-1");
    info = "redis_version:garbage\r\n";
    is_int(dq_server_info(info, strlen(info), &si), -1, "unparsable "
           "version: -1");
    return done_testing();
}
