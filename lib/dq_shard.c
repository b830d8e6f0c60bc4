/*
 * Sharded queues: shard names, the shard of a task name, limit shares
 * (dq_contract.h, "shards"; docs/SCALING.md). No I/O.
 */
#include <string.h>

#include "dq_contract.h"

int
dq_shard_name_valid(dq_str_t s)
{
    const char *hash;
    size_t      i, nd;
    unsigned    v = 0;

    if (s.ptr == NULL) {
        return 0;
    }
    hash = memchr(s.ptr, '#', s.len);
    if (hash == NULL) {
        return dq_queue_name_valid(s);
    }
    if (!dq_queue_name_valid((dq_str_t) { s.ptr, (size_t) (hash - s.ptr) })) {
        return 0;
    }
    nd = s.len - (size_t) (hash - s.ptr) - 1;
    if (nd == 0 || nd > 2 || hash[1] == '0') {
        return 0;
    }
    for (i = 1; i <= nd; i++) {
        if (hash[i] < '0' || hash[i] > '9') {
            return 0;
        }
        v = v * 10 + (unsigned) (hash[i] - '0');
    }
    return v >= 1 && v < DQ_MAX_SHARDS;
}

dq_str_t
dq_shard_base(dq_str_t name)
{
    const char *hash;

    hash = name.ptr != NULL ? memchr(name.ptr, '#', name.len) : NULL;
    if (hash != NULL) {
        name.len = (size_t) (hash - name.ptr);
    }
    return name;
}

size_t
dq_shard_name(char *buf, size_t size, dq_str_t queue, unsigned i)
{
    size_t n;

    if (!dq_queue_name_valid(queue) || i >= DQ_MAX_SHARDS) {
        return 0;
    }
    n = queue.len + (i == 0 ? 0 : i < 10 ? 2 : 3);
    if (n >= size) {
        return 0;
    }
    memcpy(buf, queue.ptr, queue.len);
    if (i >= 10) {
        buf[queue.len] = '#';
        buf[queue.len + 1] = (char) ('0' + i / 10);
        buf[queue.len + 2] = (char) ('0' + i % 10);
    } else if (i > 0) {
        buf[queue.len] = '#';
        buf[queue.len + 1] = (char) ('0' + i);
    }
    buf[n] = '\0';
    return n;
}

unsigned
dq_shard_of(dq_str_t name, unsigned n)
{
    uint32_t h = 2166136261u;        /* FNV-1a 32 */
    size_t   i;

    if (n <= 1) {
        return 0;
    }
    for (i = 0; i < name.len; i++) {
        h ^= (unsigned char) name.ptr[i];
        h *= 16777619u;
    }
    return h % n;
}

int64_t
dq_shard_share(int64_t total, unsigned n, unsigned i)
{
    if (n <= 1) {
        return total;
    }
    return total / n + ((int64_t) i < total % (int64_t) n ? 1 : 0);
}

int64_t
dq_shards_unread(unsigned *n, int *guessed, int64_t age_ms)
{
    if (*n > 0 && !*guessed && age_ms <= DQ_SHARDS_KEEP_MS) {
        return DQ_SHARDS_RETRY_MS;
    }
    *n = 1;
    *guessed = 1;
    return DQ_SHARDS_TTL_MS;
}

int
dq_shards_may_place(int guessed, int placed)
{
    return !guessed || !placed;
}

unsigned
dq_shards_parse(const char *s, size_t len)
{
    unsigned v = 0;
    size_t   i;

    if (s == NULL || len == 0 || len > 2) {
        return 1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 1;
        }
        v = v * 10 + (unsigned) (s[i] - '0');
    }
    return v >= 1 && v <= DQ_MAX_SHARDS ? v : 1;
}
