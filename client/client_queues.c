/*
 * The C client's record of the queues already added to `dq:queues` on the
 * current connection (client/client_enqueue.c sends `SADD dq:queues <q>`
 * once per queue per connection; dq__disconnect forgets them, so a
 * reconnect, maybe to another server after a failover, adds them again).
 * A small string set: open addressing, FNV-1a, grown at half full. Not
 * part of the nginx build.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

static size_t
dq__qset_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    while (*s) {
        h = (h ^ (unsigned char) *s++) * 1099511628211ULL;
    }
    return (size_t) h;
}

/* The slot holding q, or the empty slot where it would go. */
static char **
dq__qset_slot(char **slot, size_t cap, const char *q)
{
    size_t i = dq__qset_hash(q) & (cap - 1);

    while (slot[i] && strcmp(slot[i], q) != 0) {
        i = (i + 1) & (cap - 1);
    }
    return &slot[i];
}

int
dq__qset_has(const dq__qset_t *s, const char *q)
{
    return s->cap && *dq__qset_slot(s->slot, s->cap, q) != NULL;
}

int
dq__qset_add(dq__qset_t *s, const char *q)
{
    char   **slot, **p;
    size_t   cap, i;

    if ((s->n + 1) * 2 > s->cap) {
        cap = s->cap ? s->cap * 2 : 16;
        slot = calloc(cap, sizeof(*slot));
        if (slot == NULL) {
            return -1;
        }
        for (i = 0; i < s->cap; i++) {
            if (s->slot[i]) {
                *dq__qset_slot(slot, cap, s->slot[i]) = s->slot[i];
            }
        }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    p = dq__qset_slot(s->slot, s->cap, q);
    if (*p == NULL) {
        *p = strdup(q);
        if (*p == NULL) {
            return -1;
        }
        s->n++;
    }
    return 0;
}

void
dq__qset_clear(dq__qset_t *s)
{
    size_t i;

    for (i = 0; i < s->cap; i++) {
        free(s->slot[i]);
    }
    free(s->slot);
    s->slot = NULL;
    s->cap = 0;
    s->n = 0;
}
