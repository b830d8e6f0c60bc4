/*
 * What Redis tells about itself: the version and eviction policy in an
 * INFO reply (checked on every connect by the worker, the module and the
 * C client), and the error replies that mean "Redis did not run this
 * command; send it again later, perhaps elsewhere" (issue 10, item 7): a demoted master
 * (READONLY), a server loading its data set (LOADING), a script or
 * module command past the busy threshold (BUSY), maxmemory reached
 * (OOM), a replica whose master is down (MASTERDOWN), a master without
 * enough good replicas for min-replicas-to-write (NOREPLICAS), a cluster
 * slot in migration (TRYAGAIN, CLUSTERDOWN). Redis raises each of them
 * before the command runs, or (READONLY, NOREPLICAS) at a script's first
 * write; only OOM can stop a script without shebang flags between two
 * writes, which is why the scripts that free memory carry allow-oom. The
 * caller keeps its result and sends it again on a fresh connection
 * (fencing makes a repeat harmless). The worker keeps its results on any
 * other error reply too (worker/report.c: resent with back-off): only the
 * per-task statuses of a script that ran settle a result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dq_contract.h"

static const char *const dq__faults[] = {
    "READONLY", "LOADING", "BUSY", "OOM", "MASTERDOWN", "NOREPLICAS",
    "TRYAGAIN", "CLUSTERDOWN"
};

static const char *const dq__elsewhere[] = {
    "READONLY", "LOADING", "MASTERDOWN"
};

int
dq_reply_error_is(const redisReply *r, const char *const *names, size_t nn)
{
    size_t i, n;

    if (r == NULL || r->type != REDIS_REPLY_ERROR || r->str == NULL) {
        return 0;
    }
    for (i = 0; i < nn; i++) {
        n = strlen(names[i]);
        if (r->len >= n && memcmp(r->str, names[i], n) == 0
            && (r->len == n || r->str[n] == ' '))
        {
            return 1;
        }
    }
    return 0;
}

int
dq_reply_is_unavailable(const redisReply *r)
{
    return dq_reply_error_is(r, dq__faults,
                               sizeof(dq__faults) / sizeof(dq__faults[0]));
}

int
dq_reply_is_elsewhere(const redisReply *r)
{
    return dq_reply_error_is(r, dq__elsewhere,
                               sizeof(dq__elsewhere) / sizeof(dq__elsewhere[0]));
}

int
dq_reply_is_master_role(const redisReply *r)
{
    const redisReply *e;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        return 0;
    }
    e = r->element[0];
    return (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS)
           && e->len == 6 && memcmp(e->str, "master", 6) == 0;
}

int
dq_sentinel_reply(const redisReply *r, char *host, size_t hostlen,
                  int *port, dq_error_t *err)
{
    const redisReply *h, *p;
    char              num[8];
    char             *end;
    long              n;

    if (r == NULL) {
        return dq_error_set(err, DQ_EREDIS, "sentinel", "no reply");
    }
    if (r->type == REDIS_REPLY_NIL) {
        return dq_error_set(err, DQ_ENOTFOUND, "sentinel",
                            "the sentinel does not know this master name");
    }
    if (r->type == REDIS_REPLY_ERROR) {
        return dq_error_set(err, DQ_EREDIS, "sentinel", "%.*s",
                            (int) (r->len > 200 ? 200 : r->len), r->str);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING)
    {
        return dq_error_set(err, DQ_EREDIS, "sentinel",
                            "unexpected answer to SENTINEL "
                            "get-master-addr-by-name");
    }
    h = r->element[0];
    p = r->element[1];
    if (h->len == 0 || h->len >= hostlen || memchr(h->str, '\0', h->len)
        || p->len == 0 || p->len >= sizeof(num))
    {
        return dq_error_set(err, DQ_EREDIS, "sentinel",
                            "unusable master address in the answer");
    }
    memcpy(num, p->str, p->len);
    num[p->len] = '\0';
    n = strtol(num, &end, 10);
    if (*end != '\0' || n < 1 || n > 65535) {
        return dq_error_set(err, DQ_EREDIS, "sentinel",
                            "unusable master port \"%s\" in the answer",
                            num);
    }
    memcpy(host, h->str, h->len);
    host[h->len] = '\0';
    *port = (int) n;
    return DQ_OK;
}

/* "field:value\r\n" of an INFO text, copied into out (NUL-terminated);
 * 0 when absent. */
static int
dq__info_field(const char *info, size_t len, const char *field, char *out,
               size_t outlen)
{
    size_t      flen = strlen(field), n;
    const char *p = info, *end = info + len, *eol;

    while (p < end) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }
        if ((size_t) (eol - p) > flen && memcmp(p, field, flen) == 0
            && p[flen] == ':')
        {
            p += flen + 1;
            n = (size_t) (eol - p);
            if (n > 0 && p[n - 1] == '\r') {
                n--;
            }
            if (n >= outlen) {
                n = outlen - 1;
            }
            memcpy(out, p, n);
            out[n] = '\0';
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}

int
dq_server_info(const char *info, size_t len, dq_server_info_t *out)
{
    unsigned a = 0, b = 0, c = 0, ma = 0, mb = 0, mc = 0;

    memset(out, 0, sizeof(*out));
    if (!dq__info_field(info, len, "redis_version", out->version,
                        sizeof(out->version))
        || sscanf(out->version, "%u.%u.%u", &a, &b, &c) < 2)
    {
        return -1;
    }
    (void) dq__info_field(info, len, "maxmemory_policy", out->policy,
                          sizeof(out->policy));
    sscanf(DQ_REDIS_MIN_VERSION, "%u.%u.%u", &ma, &mb, &mc);
    out->too_old = a < ma || (a == ma && (b < mb || (b == mb && c < mc)));
    {
        char l[8];

        out->loading = dq__info_field(info, len, "loading", l, sizeof(l))
                       && strcmp(l, "1") == 0;
    }
    out->evicts = out->policy[0] != '\0'
                  && strcmp(out->policy, "noeviction") != 0;
    return 0;
}
