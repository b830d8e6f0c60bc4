/*
 * Error replies that mean "Redis did not run this command; send it again
 * later, perhaps elsewhere" (issue 10, item 7): a demoted master
 * (READONLY), a server loading its data set (LOADING), a script or
 * module command past the busy threshold (BUSY), maxmemory reached
 * (OOM), a replica whose master is down (MASTERDOWN), a cluster slot in
 * migration (TRYAGAIN, CLUSTERDOWN). Redis raises each of them before
 * the command runs, or (READONLY) at a script's first write; only OOM can
 * stop a script without shebang flags between two writes, which is why
 * the scripts that free memory carry allow-oom. The caller keeps its
 * result and sends it again on a fresh connection (fencing makes a repeat
 * harmless); any other error is final.
 */
#include <string.h>

#include "dq_contract.h"

static const char *const dq__faults[] = {
    "READONLY", "LOADING", "BUSY", "OOM", "MASTERDOWN", "TRYAGAIN",
    "CLUSTERDOWN"
};

int
dq_reply_is_unavailable(const redisReply *r)
{
    size_t i, n;

    if (r == NULL || r->type != REDIS_REPLY_ERROR || r->str == NULL) {
        return 0;
    }
    for (i = 0; i < sizeof(dq__faults) / sizeof(dq__faults[0]); i++) {
        n = strlen(dq__faults[i]);
        if (r->len >= n && memcmp(r->str, dq__faults[i], n) == 0
            && (r->len == n || r->str[n] == ' '))
        {
            return 1;
        }
    }
    return 0;
}
