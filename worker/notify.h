/*
 * deferred-worker — systemd notifications (worker/notify.c): READY,
 * RELOADING, STOPPING, STATUS and the watchdog, through libsystemd's
 * sd_notify. Without $NOTIFY_SOCKET (not under systemd Type=notify) every
 * call does nothing.
 */
#ifndef DQ_NOTIFY_H
#define DQ_NOTIFY_H

#include <stdint.h>

#include "worker.h"

/* "READY=1", "STOPPING=1", "STATUS=..." (several lines allowed). */
void dq_notify(const char *fmt, ...) DQ_PRINTF(1, 2);

/* The master's loop: sends WATCHDOG=1 when half the watchdog period has
 * passed since the last one (now_ms: the master's monotonic ms) and
 * returns the earlier of `deadline` (0 = none) and the next ping's time. */
uint64_t dq_notify_watchdog(uint64_t now_ms, uint64_t deadline);

#endif /* DQ_NOTIFY_H */
