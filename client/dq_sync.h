/*
 * The project's one synchronous Redis connect, in client/client.c: the C
 * client (hence deferred-cli), the worker's pause/resume, and task
 * libraries through dq_worker_redis_connect() all connect through it.
 * Blocking: never in nginx, never on a libuv loop.
 */
#ifndef DQ_SYNC_H
#define DQ_SYNC_H

#include <stddef.h>

#include <hiredis/hiredis.h>

/* address as dq_addr_parse takes it (a host name is resolved by hiredis,
 * now); timeout_ms bounds the connect and then every command; AUTH if
 * password, SELECT if db. The connection, or NULL with err filled. */
redisContext *dq_sync_connect(const char *address, const char *password,
                              int db, int timeout_ms, char *err,
                              size_t errlen);

#endif /* DQ_SYNC_H */
