/*
 * INFO reply checks on connect (see dq_info.h).
 */
#include "dq_info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the value of "key:" at the start of a line, copied into out */
static int
dq__info_field(const char *info, size_t len, const char *key, char *out,
               size_t outlen)
{
    const char *p = info, *end = info + len, *eol;
    size_t      klen = strlen(key), n;

    while (p < end) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }
        if ((size_t) (eol - p) > klen && memcmp(p, key, klen) == 0
            && p[klen] == ':')
        {
            p += klen + 1;
            n = (size_t) (eol - p);
            while (n && (p[n - 1] == '\r' || p[n - 1] == ' ')) {
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
    out[0] = '\0';
    return 0;
}

static void
dq__version(const char *s, long v[3])
{
    char *e;
    int   i;

    for (i = 0; i < 3; i++) {
        v[i] = strtol(s, &e, 10);
        s = (*e == '.') ? e + 1 : e;
    }
}

int
dq_redis_info_check(const char *info, size_t len, dq_redis_info_t *out,
                    dq_error_t *err)
{
    long have[3], need[3];
    int  i;

    dq__info_field(info, len, "maxmemory_policy", out->maxmemory_policy,
                   sizeof(out->maxmemory_policy));
    out->evicts = out->maxmemory_policy[0] != '\0'
                  && strcmp(out->maxmemory_policy, "noeviction") != 0;

    if (!dq__info_field(info, len, "redis_version", out->version,
                        sizeof(out->version)))
    {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "INFO names no redis_version: not a Redis "
                            "ngx_deferred can check (needs %s or later)",
                            DQ_REDIS_MIN_VERSION);
    }

    dq__version(out->version, have);
    dq__version(DQ_REDIS_MIN_VERSION, need);

    for (i = 0; i < 3; i++) {
        if (have[i] != need[i]) {
            break;
        }
    }
    if (i < 3 && have[i] < need[i]) {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "Redis %s is older than %s, which ngx_deferred "
                            "needs (ZMSCORE, script flags)", out->version,
                            DQ_REDIS_MIN_VERSION);
    }

    return DQ_OK;
}
