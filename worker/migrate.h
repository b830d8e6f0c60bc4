/*
 * deferred-worker — contract v1 -> v2 migration of the queues a child
 * serves (worker/migrate.c: lib/lua/migrate.lua via dq_cmd_migrate).
 */
#ifndef DQ_MIGRATE_H
#define DQ_MIGRATE_H

#include "child_impl.h"

typedef struct dq_migrate_s dq_migrate_t;

int  dq_migrate_start(dq_child_t *ch);       /* 0 or -1 (out of memory) */
void dq_migrate_close(dq_child_t *ch);       /* closes the timer */
void dq_migrate_free(dq_child_t *ch);        /* after the loop ended */

#endif /* DQ_MIGRATE_H */
