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
    {
        char buf[8];

        dq_addr_parse(dq_str_c("localhost:7000"), &a, NULL);
        ok(dq_addr_format(&a, buf, sizeof(buf)) == -1,
           "format refuses a buffer too small");
    }

    return done_testing();
}
