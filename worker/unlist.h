/*
 * deferred-worker — the due list handed back on a child's stop
 * (worker/unlist.c: lib/lua/unlist.lua via dq_cmd_unlist).
 */
#ifndef DQ_UNLIST_H
#define DQ_UNLIST_H

#include "child_impl.h"

/* Sends unlist for every served queue on the commands connection (logs
 * a warning and sends nothing if it is down); the replies call
 * dq_child_maybe_finish. Called once, when the child starts stopping. */
void dq_unlist_on_stop(dq_child_t *ch);

#endif /* DQ_UNLIST_H */
