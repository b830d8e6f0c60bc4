/*
 * deferred-worker — systemd notifications. The master is the unit's main
 * process (Type=notify, NotifyAccess=main): it says READY=1 once its
 * children are started, RELOADING=1 / READY=1 around a SIGHUP, STOPPING=1
 * on a stop request, and pings the watchdog (WatchdogSec=) at half its
 * period from its signal loop, which wakes for nothing else: a master
 * stuck anywhere stops pinging and systemd restarts the unit.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <systemd/sd-daemon.h>

#include "notify.h"

static uint64_t dq__wd_next;      /* next ping, master ms; 0 = not yet */
static uint64_t dq__wd_period;    /* half the watchdog period, ms */
static int      dq__wd_checked;

void
dq_notify(const char *fmt, ...)
{
    char    buf[512];
    va_list ap;

    if (getenv("NOTIFY_SOCKET") == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (sd_notify(0, buf) < 0) {
        dq_log_warn("sd_notify(\"%s\") failed", buf);
    }
}

uint64_t
dq_notify_watchdog(uint64_t now_ms, uint64_t deadline)
{
    uint64_t usec = 0;

    if (!dq__wd_checked) {
        dq__wd_checked = 1;
        if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000) {
            dq__wd_period = usec / 2000;
            dq_log_info("systemd watchdog: pinging every %llu ms",
                        (unsigned long long) dq__wd_period);
        }
    }
    if (dq__wd_period == 0) {
        return deadline;
    }
    if (now_ms >= dq__wd_next) {
        dq_notify("WATCHDOG=1");
        dq__wd_next = now_ms + dq__wd_period;
    }
    return deadline == 0 || dq__wd_next < deadline ? dq__wd_next : deadline;
}
