/*
 * Small reply readers shared by the blocking client, deferred-cli and the
 * module (non-blocking: nothing here talks to Redis).
 */
#include <stdlib.h>

#include "dq_contract.h"

int64_t
dq_reply_int(const redisReply *r)
{
    if (r == NULL) {
        return 0;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        return (int64_t) r->integer;
    }
    if (r->type == REDIS_REPLY_STRING) {
        return strtoll(r->str, NULL, 10);
    }
    return 0;
}

int64_t
dq_reply_off_eta(const redisReply *cold, const redisReply *due_n,
                 int64_t *listed)
{
    int64_t n = dq_reply_int(due_n);

    if (n < 0) {
        n = 0;
    }
    if (listed) {
        *listed = n;
    }
    return dq_reply_int(cold) + n;
}
