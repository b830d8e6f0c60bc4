/*
 * Redis addresses (dq_addr_parse): the one parser the module, the worker,
 * the client and the CLI share. Every documented form, the refusals, and
 * that nothing is resolved here.
 */
#include <stdio.h>
#include <string.h>

#include "dq_contract.h"
#include "tap.h"

static void
accepts(const char *s, const char *host, const char *path, int port)
{
    dq_addr_t  a;
    dq_error_t e;
    char       h[300], p[300];
    int        rc = dq_addr_parse(dq_str_c(s), &a, &e);

    snprintf(h, sizeof(h), "%.*s", (int) a.host.len, a.host.ptr ? a.host.ptr : "");
    snprintf(p, sizeof(p), "%.*s", (int) a.path.len, a.path.ptr ? a.path.ptr : "");
    if (!ok(rc == DQ_OK && strcmp(h, host) == 0 && strcmp(p, path) == 0
            && (path[0] || a.port == port),
            "\"%s\" -> host \"%s\" path \"%s\" port %d", s, host, path, port))
    {
        diag("  got rc %d host \"%s\" path \"%s\" port %d (%s)", rc, h, p,
             a.port, rc ? e.msg : "");
    }
}

/* dq_addr_format: the normalized text (dq_worker_redis_address) */
static void
normalizes(const char *s, const char *want)
{
    dq_addr_t a;
    char      buf[300];
    int       n = -1;

    if (dq_addr_parse(dq_str_c(s), &a, NULL) == DQ_OK) {
        n = dq_addr_format(&a, buf, sizeof(buf));
    }
    if (!ok(n == (int) strlen(want) && strcmp(buf, want) == 0,
            "\"%s\" normalized to \"%s\"", s, want))
    {
        diag("  got %d \"%s\"", n, n >= 0 ? buf : "");
    }
}

static void
refuses(const char *s)
{
    dq_addr_t  a;
    dq_error_t e;
    int        rc = dq_addr_parse(dq_str_c(s), &a, &e);

    ok(rc == DQ_EINVAL && strstr(e.msg, "Redis address") != NULL,
       "\"%s\" refused: %s", s, rc == DQ_EINVAL ? e.msg : "(accepted)");
}

/* sentinel:MASTER@...: the master name and each sentinel */
static void
sentinel(const char *s, const char *master, size_t n, const char *h0,
         int p0, const char *hl, int pl)
{
    dq_addr_t  a;
    dq_error_t e;
    char       m[200], f[300], l[300];
    int        rc = dq_addr_parse(dq_str_c(s), &a, &e);

    m[0] = f[0] = l[0] = '\0';
    if (rc == DQ_OK && a.nsentinels > 0) {
        snprintf(m, sizeof(m), "%.*s", (int) a.master.len, a.master.ptr);
        snprintf(f, sizeof(f), "%.*s", (int) a.sentinel[0].host.len,
                 a.sentinel[0].host.ptr);
        snprintf(l, sizeof(l), "%.*s",
                 (int) a.sentinel[a.nsentinels - 1].host.len,
                 a.sentinel[a.nsentinels - 1].host.ptr);
    }
    if (!ok(rc == DQ_OK && a.host.len == 0 && a.path.len == 0
            && strcmp(m, master) == 0 && a.nsentinels == n
            && strcmp(f, h0) == 0 && a.sentinel[0].port == p0
            && strcmp(l, hl) == 0 && a.sentinel[n - 1].port == pl,
            "\"%s\" -> master \"%s\", %zu sentinels", s, master, n))
    {
        diag("  got rc %d master \"%s\" n %zu first %s:%d last %s (%s)",
             rc, m, a.nsentinels, f, a.sentinel[0].port, l,
             rc ? e.msg : "");
    }
}

int
main(void)
{
    dq_addr_t a;

    accepts("127.0.0.1:6380", "127.0.0.1", "", 6380);
    accepts("127.0.0.1", "127.0.0.1", "", 6379);            /* bare HOST */
    accepts("localhost", "localhost", "", 6379);            /* a name */
    accepts("redis.example.org:7000", "redis.example.org", "", 7000);
    accepts("[::1]:6390", "::1", "", 6390);
    accepts("[::1]", "::1", "", 6379);
    accepts("::1", "::1", "", 6379);                        /* bare IPv6 */
    accepts("fe80::1:2", "fe80::1:2", "", 6379);
    accepts("h:65535", "h", "", 65535);
    accepts("h:1", "h", "", 1);
    accepts("unix:/run/redis.sock", "", "/run/redis.sock", 0);
    accepts("unix:relative.sock", "", "relative.sock", 0);

    refuses("");
    refuses(":6379");
    refuses("host:");
    refuses("host:0");
    refuses("host:65536");
    refuses("host:99999999999999999999");
    refuses("host:12ab");
    refuses("host:-1");
    refuses("[::1");
    refuses("[]:6379");
    refuses("[::1]6379");
    refuses("[::1]:");
    refuses("unix:");
    refuses("a/b:6379");

    sentinel("sentinel:mymaster@127.0.0.1:26380", "mymaster", 1,
             "127.0.0.1", 26380, "127.0.0.1", 26380);
    sentinel("sentinel:m@10.0.0.1", "m", 1, "10.0.0.1", 26379, "10.0.0.1",
             26379);                                   /* default port */
    sentinel("sentinel:dq-main.1@a:1,[::1]:2,b", "dq-main.1", 3, "a", 1,
             "b", 26379);
    sentinel("sentinel:m@s1,s2,s3,s4,s5,s6,s7,s8", "m", 8, "s1", 26379,
             "s8", 26379);
    refuses("sentinel:");
    refuses("sentinel:m");
    refuses("sentinel:m@");
    refuses("sentinel:@h:1");
    refuses("sentinel:m@h:1,");                /* an empty sentinel */
    refuses("sentinel:m@h:1,,h:2");
    refuses("sentinel:m@h:0");
    refuses("sentinel:m@unix:/x");
    refuses("sentinel:a b@h:1");               /* a space in the name */
    refuses("sentinel:a,b@h:1");
    refuses("sentinel:m@s1,s2,s3,s4,s5,s6,s7,s8,s9");   /* too many */
    {
        char name[DQ_MAX_MASTER_NAME + 40];

        memset(name, 'n', sizeof(name));
        memcpy(name, "sentinel:", 9);
        snprintf(name + 9 + DQ_MAX_MASTER_NAME + 1, 10, "@h:1");
        refuses(name);                         /* name one byte too long */
        name[9 + DQ_MAX_MASTER_NAME] = '@';
        snprintf(name + 9 + DQ_MAX_MASTER_NAME + 1, 10, "h:1");
        ok(dq_addr_parse(dq_str_c(name), &a, NULL) == DQ_OK
           && a.master.len == DQ_MAX_MASTER_NAME && a.nsentinels == 1,
           "a name of DQ_MAX_MASTER_NAME bytes is taken");
    }

    /* cluster:HOST[:PORT][,...]: the seed nodes */
    ok(dq_addr_parse(dq_str_c("cluster:127.0.0.1:7000,[::1]:7001,h"), &a,
                     NULL) == DQ_OK
       && a.nseeds == 3 && a.seed[0].port == 7000 && a.seed[1].port == 7001
       && a.seed[1].host.len == 3 && a.seed[2].port == 6379
       && a.host.len == 0 && a.master.len == 0 && a.nsentinels == 0,
       "cluster: three seeds, IPv6 in brackets, default port 6379");
    ok(dq_addr_parse(dq_str_c("cluster:s1,s2,s3,s4,s5,s6,s7,s8"), &a, NULL)
       == DQ_OK && a.nseeds == DQ_MAX_SEEDS, "cluster: 8 seeds taken");
    refuses("cluster:");
    refuses("cluster:h:1,");
    refuses("cluster:h:1,,h:2");
    refuses("cluster:h:0");
    refuses("cluster:unix:/x");
    refuses("cluster:s1,s2,s3,s4,s5,s6,s7,s8,s9");
    normalizes("cluster:a,[::1]:7,b:9", "cluster:a:6379,[::1]:7,b:9");

    /* a length, not a C string: what nginx hands over */
    ok(dq_addr_parse((dq_str_t) { "10.0.0.1:6381junk", 13 }, &a, NULL)
       == DQ_OK && a.port == 6381 && a.host.len == 8,
       "parses exactly len bytes (10.0.0.1:6381 of a longer buffer)");
    ok(dq_addr_parse(dq_str_c("x:0"), &a, NULL) == DQ_EINVAL,
       "err may be NULL");

    normalizes("127.0.0.1", "127.0.0.1:6379");
    normalizes("localhost:7000", "localhost:7000");
    normalizes("[127.0.0.1]:7000", "127.0.0.1:7000");
    normalizes("::1", "[::1]:6379");
    normalizes("[::1]", "[::1]:6379");
    normalizes("[fe80::1]:6390", "[fe80::1]:6390");
    normalizes("unix:/run/redis.sock", "unix:/run/redis.sock");
    normalizes("sentinel:m@a,[::1]:7,b:9", "sentinel:m@a:26379,[::1]:7,b:9");
    {
        char buf[8];

        dq_addr_parse(dq_str_c("localhost:7000"), &a, NULL);
        ok(dq_addr_format(&a, buf, sizeof(buf)) == -1,
           "format refuses a buffer too small");
    }

    return done_testing();
}
