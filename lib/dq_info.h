/*
 * What a client of Redis checks on every (re)connect, from the reply to
 * INFO: the server version (ngx_deferred's scripts need Redis >=
 * DQ_REDIS_MIN_VERSION: ZMSCORE in ack.lua, script flags) and whether the
 * server may evict keys (an evicting maxmemory-policy can delete a whole
 * queue's hash: every task in it lost). One home for the nginx module,
 * the worker and the C client; no I/O.
 */
#ifndef DQ_INFO_H
#define DQ_INFO_H

#include <stddef.h>

#include "dq_contract.h"

#define DQ_REDIS_MIN_VERSION  "6.2.0"

typedef struct {
    char version[32];        /* "7.0.15", or "" when INFO has none */
    char maxmemory_policy[32];  /* "noeviction", ..., or "" */
    int  evicts;             /* 1: the policy may delete our keys */
} dq_redis_info_t;

/*
 * Read the text of an INFO reply (any sections; "redis_version" and
 * "maxmemory_policy" are looked for). DQ_OK when the version is at least
 * DQ_REDIS_MIN_VERSION; DQ_EINVAL (err: "Redis 6.0.16 is older than
 * 6.2.0 ...") when older or when INFO names no version.
 */
int dq_redis_info_check(const char *info, size_t len, dq_redis_info_t *out,
                        dq_error_t *err);

#endif /* DQ_INFO_H */
