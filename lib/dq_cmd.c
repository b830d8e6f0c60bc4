/*
 * Redis commands of the contract: the only code that knows the KEYS/ARGV
 * order of each Lua script (lib/lua/NAME.lua); their replies are read by
 * lib/dq_script_reply.c.
 *
 * A dq_cmd_t owns an argv array and "chunks" holding the strings it
 * formats (keys, numbers); chunks never move, so argv pointers into them
 * stay valid until dq_cmd_reset/dq_cmd_free. Payloads are not copied.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dq_contract.h"

struct dq_cmd_chunk_s {
    dq_cmd_chunk_t *next;
    size_t          used;
    size_t          size;
    char            data[];
};

#define DQ_CMD_CHUNK 2048

/* The KEYS of each script, in the order the script reads them. */
static const dq_key_kind_t dq__keys_enqueue[] = {
    DQ_KEY_TASKS, DQ_KEY_ETA, DQ_KEY_NAMES, DQ_KEY_STATS, DQ_KEY_WAKE,
    DQ_KEY_NAMES,       /* contract v1's (dq_key_format_v1) */
    DQ_KEY_COLD, DQ_KEY_DUE
};
#define DQ__ENQUEUE_V1_NAMES 5  /* the index of v1's names above */
/* claim (and cycle: claim with acks) */
static const dq_key_kind_t dq__keys_claim[] = {
    DQ_KEY_TASKS, DQ_KEY_ETA, DQ_KEY_LEASE, DQ_KEY_STATS, DQ_KEY_WAKE,
    DQ_KEY_ERRORS, DQ_KEY_CONF, DQ_KEY_BUCKET, DQ_KEY_NAMES, DQ_KEY_COLD,
    DQ_KEY_DUE
};
static const dq_key_kind_t dq__keys_pause[] = {
    DQ_KEY_CONF, DQ_KEY_WAKE
};
static const dq_key_kind_t dq__keys_ack[] = {
    DQ_KEY_TASKS, DQ_KEY_ETA, DQ_KEY_LEASE, DQ_KEY_STATS, DQ_KEY_WAKE,
    DQ_KEY_ERRORS, DQ_KEY_CONF, DQ_KEY_NAMES
};
static const dq_key_kind_t dq__keys_retry[] = {
    DQ_KEY_TASKS, DQ_KEY_ETA, DQ_KEY_LEASE, DQ_KEY_STATS, DQ_KEY_ERRORS,
    DQ_KEY_WAKE, DQ_KEY_CONF
};
static const dq_key_kind_t dq__keys_bury[] = {
    DQ_KEY_TASKS, DQ_KEY_LEASE, DQ_KEY_DEAD, DQ_KEY_ERRORS, DQ_KEY_NAMES,
    DQ_KEY_STATS, DQ_KEY_CONF, DQ_KEY_WAKE
};
static const dq_key_kind_t dq__keys_extend[] = {
    DQ_KEY_LEASE, DQ_KEY_STATS
};
/* release and release_claim */
static const dq_key_kind_t dq__keys_release[] = {
    DQ_KEY_TASKS, DQ_KEY_ETA, DQ_KEY_LEASE, DQ_KEY_STATS, DQ_KEY_WAKE,
    DQ_KEY_CONF, DQ_KEY_UNRUNNABLE
};
static const dq_key_kind_t dq__keys_requeue[] = {
    DQ_KEY_TASKS, DQ_KEY_ETA, DQ_KEY_DEAD, DQ_KEY_NAMES, DQ_KEY_STATS,
    DQ_KEY_WAKE, DQ_KEY_ERRORS
};

#define DQ__KEYS(a) a, sizeof(a) / sizeof(a[0])

void
dq_cmd_init(dq_cmd_t *c)
{
    memset(c, 0, sizeof(*c));
}

void
dq_cmd_reset(dq_cmd_t *c)
{
    dq_cmd_chunk_t *ch;

    for (ch = c->chunks; ch; ch = ch->next) {
        ch->used = 0;
    }
    c->argc = 0;
}

void
dq_cmd_free(dq_cmd_t *c)
{
    dq_cmd_chunk_t *ch, *next;

    for (ch = c->chunks; ch; ch = next) {
        next = ch->next;
        free(ch);
    }
    free(c->argv);
    free(c->argvlen);
    memset(c, 0, sizeof(*c));
}

/* Room for at least n arguments (one growth instead of a doubling
 * series when the count is known). */
static int
dq__reserve(dq_cmd_t *c, size_t n)
{
    const char **argv;
    size_t      *lens;
    int          cap;

    if (n <= (size_t) c->cap) {
        return 0;
    }
    if (n > (size_t) (INT32_MAX / 2)) {
        return -1;
    }
    cap = c->cap ? c->cap : 16;
    while ((size_t) cap < n) {
        cap *= 2;
    }
    argv = realloc(c->argv, (size_t) cap * sizeof(*argv));
    if (argv == NULL) {
        return -1;
    }
    c->argv = argv;
    lens = realloc(c->argvlen, (size_t) cap * sizeof(*lens));
    if (lens == NULL) {
        return -1;
    }
    c->argvlen = lens;
    c->cap = cap;
    return 0;
}

/* Append one argument pointing at caller memory. */
static int
dq__arg(dq_cmd_t *c, const char *p, size_t len)
{
    if (c->argc == c->cap && dq__reserve(c, (size_t) c->cap + 1)) {
        return -1;
    }
    c->argv[c->argc] = len ? p : "";
    c->argvlen[c->argc] = len;
    c->argc++;
    return 0;
}

/* Room for an argument of len bytes in the command's own storage, NUL
 * after it: the caller fills it and appends it with dq__arg. */
static char *
dq__arg_room(dq_cmd_t *c, size_t len)
{
    dq_cmd_chunk_t *ch;
    char           *dst;

    for (ch = c->chunks; ch; ch = ch->next) {
        if (ch->size - ch->used >= len + 1) {
            break;
        }
    }
    if (ch == NULL) {
        size_t size = len + 1 > DQ_CMD_CHUNK ? len + 1 : DQ_CMD_CHUNK;
        ch = malloc(sizeof(*ch) + size);
        if (ch == NULL) {
            return NULL;
        }
        ch->size = size;
        ch->used = 0;
        ch->next = c->chunks;
        c->chunks = ch;
    }
    dst = ch->data + ch->used;
    dst[len] = '\0';
    ch->used += len + 1;
    return dst;
}

/* Append one argument copied into the command's own storage. */
static int
dq__arg_copy(dq_cmd_t *c, const char *p, size_t len)
{
    char *dst = dq__arg_room(c, len);

    if (dst == NULL) {
        return -1;
    }
    memcpy(dst, p, len);
    return dq__arg(c, dst, len);
}

/* decimal after an optional one-character prefix (0: none), without
 * printf (several per task) */
static int
dq__arg_int_pfx(dq_cmd_t *c, char pfx, int64_t v)
{
    char     buf[24], *p = buf + sizeof(buf);
    uint64_t u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;

    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        *--p = '-';
    }
    if (pfx) {
        *--p = pfx;
    }
    return dq__arg_copy(c, p, (size_t) (buf + sizeof(buf) - p));
}

static int
dq__arg_int(dq_cmd_t *c, int64_t v)
{
    return dq__arg_int_pfx(c, 0, v);
}

static int
dq__arg_str(dq_cmd_t *c, dq_str_t s)
{
    return dq__arg(c, s.ptr, s.ptr ? s.len : 0);
}

/* A claim id as the scripts accept it: [A-Za-z0-9_-]{1,DQ_CLAIM_ID_MAX}. */
static int
dq__claim_valid(dq_str_t s)
{
    size_t i;

    if (s.ptr == NULL || s.len == 0 || s.len > DQ_CLAIM_ID_MAX) {
        return 0;
    }
    for (i = 0; i < s.len; i++) {
        char ch = s.ptr[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
        {
            return 0;
        }
    }
    return 1;
}

void
dq_claim_id_new(char out[DQ_ID_SIZE])
{
    dq_id_new(out);
}

/* id, claim id of one lease item (the claim id checked). */
static int
dq__arg_lease(dq_cmd_t *c, const dq_lease_item_t *it)
{
    if (!dq__claim_valid(it->claim)) {
        return DQ_EINVAL;
    }
    if (it->first_run_ms < 0) {
        return DQ_EINVAL;
    }
    if (dq__arg_str(c, it->id) || dq__arg_str(c, it->claim)
        || dq__arg_int(c, it->first_run_ms))
    {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}

/* The ack part of ack and cycle (the prelude's dq_ack_args_ok): tombstone_ms,
 * n, then n pairs "+inf", lease member "id|claim|first_run_ms"; the n ids;
 * n flags: the history digit (0/1) followed by the name. The script hands
 * the pairs to one ZADD and the ids to one HDEL as they are. */
static int
dq__arg_acks(dq_cmd_t *c, const dq_lease_item_t *items, size_t n,
             int64_t tombstone_ms)
{
    size_t   i, dl, len;
    char     buf[24], *p, *d;
    uint64_t u;

    if (dq__arg_int(c, tombstone_ms) || dq__arg_int(c, (int64_t) n)) {
        return DQ_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        const dq_lease_item_t *it = &items[i];

        if (!dq__claim_valid(it->claim) || it->first_run_ms < 0
            || it->id.ptr == NULL || it->id.len == 0)
        {
            return DQ_EINVAL;
        }
        p = buf + sizeof(buf);
        u = (uint64_t) it->first_run_ms;
        do {
            *--p = (char) ('0' + u % 10);
            u /= 10;
        } while (u);
        dl = (size_t) (buf + sizeof(buf) - p);
        len = it->id.len + 1 + it->claim.len + 1 + dl;
        if ((d = dq__arg_room(c, len)) == NULL) {
            return DQ_ENOMEM;
        }
        memcpy(d, it->id.ptr, it->id.len);
        d[it->id.len] = '|';
        memcpy(d + it->id.len + 1, it->claim.ptr, it->claim.len);
        d[it->id.len + 1 + it->claim.len] = '|';
        memcpy(d + len - dl, p, dl);
        if (dq__arg(c, "+inf", 4) || dq__arg(c, d, len)) {
            return DQ_ENOMEM;
        }
    }
    for (i = 0; i < n; i++) {
        if (dq__arg_str(c, items[i].id)) {
            return DQ_ENOMEM;
        }
    }
    for (i = 0; i < n; i++) {
        const dq_str_t *nm = &items[i].name;

        len = 1 + (nm->ptr ? nm->len : 0);
        if ((d = dq__arg_room(c, len)) == NULL) {
            return DQ_ENOMEM;
        }
        d[0] = items[i].history ? '1' : '0';
        if (len > 1) {
            memcpy(d + 1, nm->ptr, nm->len);
        }
        if (dq__arg(c, d, len)) {
            return DQ_ENOMEM;
        }
    }
    return DQ_OK;
}

/* "EVALSHA sha numkeys" for script id. */
static int
dq__script_start(dq_cmd_t *c, dq_script_id_t id, size_t nkeys)
{
    const dq_script_t *s = dq_script(id);

    if (s == NULL) {
        return DQ_EINVAL;
    }
    dq_cmd_reset(c);
    c->script = id;
    if (dq__arg(c, "EVALSHA", 7) || dq__arg(c, s->sha1, 40)
        || dq__arg_int(c, (int64_t) nkeys))
    {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}

/* "EVALSHA sha numkeys key..." for script id over queue. */
static int
dq__script_head(dq_cmd_t *c, dq_script_id_t id, dq_str_t queue,
                const dq_key_kind_t *keys, size_t nkeys)
{
    char   key[DQ_KEY_MAX];
    size_t i, len;
    int    rc;

    if (!dq_shard_name_valid(queue)) {
        return DQ_EINVAL;
    }
    rc = dq__script_start(c, id, nkeys);
    if (rc != DQ_OK) {
        return rc;
    }
    for (i = 0; i < nkeys; i++) {
        len = dq_key_format(key, sizeof(key), queue, keys[i]);
        if (len == 0) {
            return DQ_EINVAL;
        }
        if (dq__arg_copy(c, key, len)) {
            return DQ_ENOMEM;
        }
    }
    return DQ_OK;
}

/* After dq__script_head (its keys the last arguments): n more KEYS, the
 * kinds under contract v1's prefix (dq_key_format_v1, for the scripts
 * that read what v1 left), numkeys rewritten. */
static int
dq__keys_v1(dq_cmd_t *c, dq_str_t queue, const dq_key_kind_t *keys,
            size_t n)
{
    char   key[DQ_KEY_MAX];
    size_t i, len, nkeys = 0;

    for (i = 0; i < c->argvlen[2]; i++) {       /* numkeys so far */
        nkeys = nkeys * 10 + (size_t) (c->argv[2][i] - '0');
    }
    nkeys += n;
    for (i = 0; i < n; i++) {
        len = dq_key_format_v1(key, sizeof(key), queue, keys[i]);
        if (len == 0) {
            return DQ_EINVAL;
        }
        if (dq__arg_copy(c, key, len)) {
            return DQ_ENOMEM;
        }
    }
    len = (size_t) snprintf(key, sizeof(key), "%zu", nkeys);
    if (dq__arg_copy(c, key, len)) {
        return DQ_ENOMEM;
    }
    c->argv[2] = c->argv[c->argc - 1];      /* numkeys */
    c->argvlen[2] = len;
    c->argc--;
    return DQ_OK;
}

static size_t
dq__digits(size_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static char *
dq__resp_head(char *p, char type, size_t v)
{
    char  buf[24], *q = buf + sizeof(buf);

    do {
        *--q = (char) ('0' + v % 10);
        v /= 10;
    } while (v);
    *p++ = type;
    memcpy(p, q, (size_t) (buf + sizeof(buf) - q));
    p += buf + sizeof(buf) - q;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

size_t
dq_resp_size(int argc, const char **argv, const size_t *argvlen)
{
    size_t n = 1 + dq__digits((size_t) argc) + 2;
    int    i;

    (void) argv;
    for (i = 0; i < argc; i++) {
        n += 1 + dq__digits(argvlen[i]) + 2 + argvlen[i] + 2;
    }
    return n;
}

size_t
dq_resp_format(char *out, int argc, const char **argv, const size_t *argvlen)
{
    char *p = dq__resp_head(out, '*', (size_t) argc);
    int   i;

    for (i = 0; i < argc; i++) {
        p = dq__resp_head(p, '$', argvlen[i]);
        if (argvlen[i]) {
            memcpy(p, argv[i], argvlen[i]);
        }
        p += argvlen[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    return (size_t) (p - out);
}

void
dq_cmd_use_eval(dq_cmd_t *c)
{
    const dq_script_t *s = dq_script(c->script);

    if (c->argc < 2 || s == NULL || c->argvlen[0] != 7) {
        return;     /* not an EVALSHA we built, or already EVAL */
    }
    c->argv[0] = "EVAL";
    c->argvlen[0] = 4;
    c->argv[1] = s->source;
    c->argvlen[1] = s->len;
}

int
dq_reply_is_noscript(const redisReply *r)
{
    static const char *const  noscript[] = { "NOSCRIPT" };

    return dq_reply_error_is(r, noscript, 1);
}

/* -------------------------------------------------------------- builders */

typedef char dq__enqueue_nkeys_check[
    sizeof(dq__keys_enqueue) / sizeof(dq__keys_enqueue[0])
    == DQ_ENQUEUE_NKEYS ? 1 : -1];

int
dq_enqueue_keys_init(dq_enqueue_keys_t *k, dq_str_t queue)
{
    size_t i;

    for (i = 0; i < DQ_ENQUEUE_NKEYS; i++) {
        k->len[i] = i == DQ__ENQUEUE_V1_NAMES
                    ? dq_key_format_v1(k->key[i], DQ_KEY_MAX, queue,
                                       dq__keys_enqueue[i])
                    : dq_key_format(k->key[i], DQ_KEY_MAX, queue,
                                    dq__keys_enqueue[i]);
        if (k->len[i] == 0) {
            return DQ_EINVAL;
        }
    }
    return DQ_OK;
}

int
dq_cmd_enqueue(dq_cmd_t *c, dq_str_t queue, const dq_enqueue_item_t *items,
               size_t n, int64_t tombstone_ms)
{
    dq_enqueue_keys_t k;
    int               rc;

    rc = dq_enqueue_keys_init(&k, queue);
    if (rc != DQ_OK) {
        return rc;
    }
    return dq_cmd_enqueue_keys(c, &k, items, n, tombstone_ms);
}

/* A task with a name or a client's id: 3 more arguments */
static int
dq__special(const dq_enqueue_item_t *it)
{
    return it->keyed || (it->name.ptr != NULL && it->name.len > 0);
}

/* A task's "when" (lib/lua/enqueue.lua): "" due now, the absolute ETA,
 * or "+" and the countdown; the ETA wins over a countdown. */
static int
dq__arg_when(dq_cmd_t *c, const dq_enqueue_item_t *it)
{
    if (it->eta_ms >= 0) {
        return dq__arg_int(c, it->eta_ms);
    }
    if (it->countdown_ms > 0) {
        return dq__arg_int_pfx(c, '+', it->countdown_ms);
    }
    return dq__arg(c, "", 0);
}

int
dq_cmd_enqueue_keys(dq_cmd_t *c, const dq_enqueue_keys_t *k,
                    const dq_enqueue_item_t *items, size_t n,
                    int64_t tombstone_ms)
{
    size_t i, m = 0;
    int    rc, fresh = 1, when = 0;

    if (n == 0) {
        return DQ_EINVAL;
    }
    for (i = 0; i < n; i++) {
        m += dq__special(&items[i]);
        if (!items[i].fresh && !dq__special(&items[i])) {
            fresh = 0;
        }
        if (items[i].eta_ms >= 0 || items[i].countdown_ms > 0) {
            when = 1;
        }
    }
    if (m == n) {
        fresh = 0;      /* no plain task: -n would say nothing */
    }
    /* EVALSHA sha numkeys, the keys, tombstone, n, m, 3 per task (2 when
     * every task is due now: no when_i), 3 per named or keyed task */
    if (dq__reserve(c, 3 + DQ_ENQUEUE_NKEYS + 3 + (when ? 3 : 2) * n
                       + 3 * m))
    {
        return DQ_ENOMEM;
    }
    rc = dq__script_start(c, DQ_SCRIPT_ENQUEUE, DQ_ENQUEUE_NKEYS);
    if (rc != DQ_OK) {
        return rc;
    }
    for (i = 0; i < DQ_ENQUEUE_NKEYS; i++) {
        if (dq__arg_copy(c, k->key[i], k->len[i])) {
            return DQ_ENOMEM;
        }
    }
    /* -n: every plain task's id is new (lib/lua/enqueue.lua) */
    if (dq__arg_int(c, tombstone_ms)
        || dq__arg_int(c, fresh ? -(int64_t) n : (int64_t) n)
        || dq__arg_int(c, (int64_t) m))
    {
        return DQ_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        if (dq__arg_str(c, items[i].id) || dq__arg_str(c, items[i].envelope))
        {
            return DQ_ENOMEM;
        }
    }
    for (i = 0; when && i < n; i++) {
        if (dq__arg_when(c, &items[i])) {
            return DQ_ENOMEM;
        }
    }
    for (i = 0; m && i < n; i++) {
        if (!dq__special(&items[i])) {
            continue;
        }
        if (dq__arg_int(c, (int64_t) i + 1) || dq__arg_str(c, items[i].name)
            || dq__arg_int(c, !items[i].keyed ? 0
                              : items[i].key_window_ms > 0
                              ? items[i].key_window_ms : -1))
        {
            return DQ_ENOMEM;
        }
    }
    return DQ_OK;
}

int
dq_cmd_claim(dq_cmd_t *c, dq_str_t queue, const char *claim_id,
             int64_t max_n, int64_t lease_ms, int64_t reclaim_delay_ms)
{
    return dq_cmd_claim_limited(c, queue, claim_id, max_n, lease_ms,
                                reclaim_delay_ms, NULL, NULL);
}

int
dq_cmd_claim_limited(dq_cmd_t *c, dq_str_t queue, const char *claim_id,
                     int64_t max_n, int64_t lease_ms,
                     int64_t reclaim_delay_ms, const dq_retry_t *backoff,
                     const dq_claim_limits_t *lim)
{
    return dq_cmd_cycle(c, queue, claim_id, max_n, lease_ms,
                        reclaim_delay_ms, backoff, lim, NULL, 0, 0);
}

int
dq_cmd_cycle(dq_cmd_t *c, dq_str_t queue, const char *claim_id,
             int64_t max_n, int64_t lease_ms, int64_t reclaim_delay_ms,
             const dq_retry_t *backoff, const dq_claim_limits_t *lim,
             const dq_lease_item_t *acks, size_t n_acks,
             int64_t tombstone_ms)
{
    static const dq_retry_t unset = DQ_RETRY_UNSET;
    dq_retry_t bo;
    double     rate = 0;
    int64_t    bucket = 1, conc = 0;
    char       buf[32];
    int        n;
    int        rc = dq__script_head(c, DQ_SCRIPT_CLAIM, queue,
                                    DQ__KEYS(dq__keys_claim));
    if (rc != DQ_OK) {
        return rc;
    }
    if (max_n < 0 || max_n > DQ_MAX_LEASE_ITEMS || lease_ms <= 0
        || reclaim_delay_ms < 0 || claim_id == NULL
        || !dq__claim_valid(dq_str_c(claim_id))
        || n_acks > DQ_MAX_LEASE_ITEMS || (n_acks && acks == NULL))
    {
        return DQ_EINVAL;
    }
    dq_retry_merge(&bo, backoff ? backoff : &unset, NULL);
    if (lim) {
        if (!(lim->rate >= 0 && lim->rate <= 1e9) || lim->max_concurrent < 0)
        {
            return DQ_EINVAL;
        }
        rate = lim->rate;
        conc = lim->max_concurrent;
        bucket = lim->bucket_size;
        if (bucket < 1) {
            bucket = rate > 1 ? (int64_t) rate : 1;
        }
    }
    n = snprintf(buf, sizeof(buf), "%.9g", rate);
    if (dq__arg_int(c, max_n) || dq__arg_int(c, lease_ms)
        || dq__arg_int(c, reclaim_delay_ms)
        || dq__arg_copy(c, buf, (size_t) n) || dq__arg_int(c, bucket)
        || dq__arg_int(c, conc) || dq__arg_copy(c, claim_id, strlen(claim_id))
        || dq__arg_int(c, bo.min_backoff_ms)
        || dq__arg_int(c, bo.max_backoff_ms)
        || dq__arg_int(c, bo.max_doublings))
    {
        return DQ_ENOMEM;
    }
    return dq__arg_acks(c, acks, n_acks, tombstone_ms);
}

int
dq_cmd_pause(dq_cmd_t *c, dq_str_t queue, int paused)
{
    int rc = dq__script_head(c, DQ_SCRIPT_PAUSE, queue,
                             DQ__KEYS(dq__keys_pause));
    if (rc != DQ_OK) {
        return rc;
    }
    if (dq__arg(c, paused ? "1" : "0", 1)) {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}

static const dq_key_kind_t dq__keys_remove[] = {
    DQ_KEY_TASKS, DQ_KEY_ETA, DQ_KEY_LEASE, DQ_KEY_DEAD, DQ_KEY_ERRORS,
    DQ_KEY_NAMES, DQ_KEY_STATS, DQ_KEY_CONF, DQ_KEY_WAKE, DQ_KEY_COLD,
    DQ_KEY_DUE
};

int
dq_cmd_remove(dq_cmd_t *c, dq_str_t queue, const char *what, dq_str_t id,
              int64_t max, int64_t tombstone_ms)
{
    return dq_cmd_remove_from(c, queue, what, id, max, tombstone_ms, -1);
}

int
dq_cmd_remove_from(dq_cmd_t *c, dq_str_t queue, const char *what,
                   dq_str_t id, int64_t max, int64_t tombstone_ms,
                   int64_t cold_from)
{
    int rc;

    if (max < 1 || max > 1000) {
        return DQ_EINVAL;
    }
    rc = dq__script_head(c, DQ_SCRIPT_REMOVE, queue,
                         DQ__KEYS(dq__keys_remove));
    if (rc != DQ_OK) {
        return rc;
    }
    if (dq__arg_copy(c, what, strlen(what)) || dq__arg_str(c, id)
        || dq__arg_int(c, max) || dq__arg_int(c, tombstone_ms)
        || (cold_from >= 0 && dq__arg_int(c, cold_from)))
    {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}

static const dq_key_kind_t dq__keys_status[] = {
    DQ_KEY_ETA, DQ_KEY_LEASE, DQ_KEY_DEAD, DQ_KEY_CONF, DQ_KEY_STATS,
    DQ_KEY_ERRORS, DQ_KEY_TASKS, DQ_KEY_DUE
};
/* then contract v1's (dq_key_format_v1): the tasks left there */
static const dq_key_kind_t dq__keys_status_v1[] = {
    DQ_KEY_ETA, DQ_KEY_LEASE, DQ_KEY_V1_LEASE, DQ_KEY_DEAD
};

int
dq_cmd_status(dq_cmd_t *c, dq_str_t queue, int64_t dead_limit)
{
    int rc;

    if (dead_limit < 0 || dead_limit > 100) {
        return DQ_EINVAL;
    }
    rc = dq__script_head(c, DQ_SCRIPT_STATUS, queue,
                         DQ__KEYS(dq__keys_status));
    if (rc != DQ_OK) {
        return rc;
    }
    rc = dq__keys_v1(c, queue, DQ__KEYS(dq__keys_status_v1));
    if (rc != DQ_OK) {
        return rc;
    }
    return dq__arg_int(c, dead_limit) ? DQ_ENOMEM : DQ_OK;
}

static const dq_key_kind_t dq__keys_configure[] = {
    DQ_KEY_CONF, DQ_KEY_WAKE
};

int
dq_cmd_configure(dq_cmd_t *c, dq_str_t queue, const char *const *fields,
                 const char *const *values, size_t n)
{
    static const char *const all[DQ_QCONF_NFIELDS] = DQ_QCONF_FIELDS;
    size_t                   i;
    int                      rc;

    rc = dq__script_head(c, DQ_SCRIPT_CONFIGURE, queue,
                         DQ__KEYS(dq__keys_configure));
    if (rc != DQ_OK) {
        return rc;
    }
    if (dq__arg(c, n ? "set" : "clear", n ? 3 : 5)) {
        return DQ_ENOMEM;
    }
    for (i = 0; i < (n ? n : DQ_QCONF_NFIELDS); i++) {
        const char *f = n ? fields[i] : all[i];

        if (dq__arg_copy(c, f, strlen(f))
            || (n && dq__arg_copy(c, values[i], strlen(values[i]))))
        {
            return DQ_ENOMEM;
        }
    }
    /* a clear takes what the limits were split from with them: left
     * alone it kept the conf hash, and forget refused the queue */
    if (n == 0 && dq__arg(c, DQ_QCONF_SPLIT, sizeof(DQ_QCONF_SPLIT) - 1)) {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}

int
dq_cmd_ack(dq_cmd_t *c, dq_str_t queue, const dq_lease_item_t *items,
           size_t n, int64_t tombstone_ms)
{
    int rc;

    if (n == 0 || n > DQ_MAX_LEASE_ITEMS) {
        return DQ_EINVAL;
    }
    rc = dq__script_head(c, DQ_SCRIPT_ACK, queue, DQ__KEYS(dq__keys_ack));
    if (rc != DQ_OK) {
        return rc;
    }
    return dq__arg_acks(c, items, n, tombstone_ms);
}

int
dq_cmd_retry(dq_cmd_t *c, dq_str_t queue, const dq_lease_item_t *item,
             int64_t delay_ms, dq_str_t error, int ran)
{
    int rc = dq__script_head(c, DQ_SCRIPT_RETRY, queue,
                             DQ__KEYS(dq__keys_retry));
    if (rc != DQ_OK || (rc = dq__arg_lease(c, item)) != DQ_OK) {
        return rc;
    }
    if (dq__arg_int(c, delay_ms < 0 ? 0 : delay_ms)
        || dq__arg_str(c, error) || dq__arg(c, ran ? "1" : "0", 1))
    {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}

int
dq_cmd_bury(dq_cmd_t *c, dq_str_t queue, const dq_lease_item_t *item,
            dq_str_t error, int64_t dead_max, int64_t dead_age_ms,
            int64_t tombstone_ms, int ran)
{
    int rc = dq__script_head(c, DQ_SCRIPT_BURY, queue,
                             DQ__KEYS(dq__keys_bury));
    if (rc != DQ_OK || (rc = dq__arg_lease(c, item)) != DQ_OK) {
        return rc;
    }
    if (dq__arg_str(c, error) || dq__arg_int(c, dead_max)
        || dq__arg_int(c, dead_age_ms) || dq__arg_int(c, tombstone_ms)
        || dq__arg_str(c, item->name) || dq__arg(c, ran ? "1" : "0", 1))
    {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}

int
dq_cmd_extend(dq_cmd_t *c, dq_str_t queue, const dq_lease_item_t *items,
              size_t n, int64_t lease_ms)
{
    size_t i;
    int    rc;

    if (n == 0 || n > DQ_MAX_LEASE_ITEMS || lease_ms <= 0) {
        return DQ_EINVAL;
    }
    rc = dq__script_head(c, DQ_SCRIPT_EXTEND, queue,
                         DQ__KEYS(dq__keys_extend));
    if (rc != DQ_OK) {
        return rc;
    }
    if (dq__arg_int(c, lease_ms) || dq__arg_int(c, (int64_t) n)) {
        return DQ_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        if ((rc = dq__arg_lease(c, &items[i])) != DQ_OK) {
            return rc;
        }
    }
    return DQ_OK;
}

int
dq_cmd_release(dq_cmd_t *c, dq_str_t queue, const dq_lease_item_t *items,
               size_t n, int64_t delay_ms, const char *unrunnable)
{
    char   why[11 + DQ_FUNC_NAME_MAX + 1];
    size_t i;
    int    rc;

    if (n == 0 || n > DQ_MAX_LEASE_ITEMS) {
        return DQ_EINVAL;
    }
    rc = dq__script_head(c, DQ_SCRIPT_RELEASE, queue,
                         DQ__KEYS(dq__keys_release));
    if (rc != DQ_OK) {
        return rc;
    }
    if (dq__arg_int(c, (int64_t) n)
        || dq__arg_int(c, delay_ms < 0 ? 0 : delay_ms)
        || (unrunnable == NULL ? dq__arg(c, "stop", 4)
            : dq__arg_copy(c, why, (size_t) snprintf(why, sizeof(why),
                                                     "unrunnable:%.*s",
                                                     DQ_FUNC_NAME_MAX,
                                                     unrunnable))))
    {
        return DQ_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        if ((rc = dq__arg_lease(c, &items[i])) != DQ_OK) {
            return rc;
        }
    }
    return DQ_OK;
}

int
dq_cmd_release_claim(dq_cmd_t *c, dq_str_t queue, const char *claim_id,
                     const char *cursor)
{
    int rc = dq__script_head(c, DQ_SCRIPT_RELEASE_CLAIM, queue,
                             DQ__KEYS(dq__keys_release));
    if (rc != DQ_OK) {
        return rc;
    }
    if (claim_id == NULL || !dq__claim_valid(dq_str_c(claim_id))) {
        return DQ_EINVAL;
    }
    if (cursor == NULL || cursor[0] == '\0') {
        cursor = "0";
    }
    if (dq__arg_copy(c, claim_id, strlen(claim_id))
        || dq__arg_copy(c, cursor, strlen(cursor)))
    {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}

int
dq_cmd_requeue(dq_cmd_t *c, dq_str_t queue, dq_str_t id)
{
    int rc = dq__script_head(c, DQ_SCRIPT_REQUEUE, queue,
                             DQ__KEYS(dq__keys_requeue));
    if (rc != DQ_OK) {
        return rc;
    }
    if (id.ptr == NULL || id.len == 0) {
        return DQ_EINVAL;
    }
    return dq__arg_str(c, id) ? DQ_ENOMEM : DQ_OK;
}

int
dq_cmd_requeue_bulk(dq_cmd_t *c, dq_str_t queue, const char *match,
                    int64_t offset, int64_t limit)
{
    int rc = dq__script_head(c, DQ_SCRIPT_REQUEUE, queue,
                             DQ__KEYS(dq__keys_requeue));
    if (rc != DQ_OK) {
        return rc;
    }
    if (offset < 0 || limit < 1 || limit > DQ_MAX_LEASE_ITEMS) {
        return DQ_EINVAL;
    }
    if (match == NULL) {
        match = "";
    }
    if (dq__arg(c, "", 0) || dq__arg_copy(c, match, strlen(match))
        || dq__arg_int(c, offset) || dq__arg_int(c, limit))
    {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}

int
dq_cmd_ready(dq_cmd_t *c)
{
    /* no keys: the queue name only satisfies the common head */
    return dq__script_head(c, DQ_SCRIPT_READY, dq_str_c("default"), NULL, 0);
}

static const dq_key_kind_t dq__keys_forget[] = {
    DQ_KEY_TASKS, DQ_KEY_ETA, DQ_KEY_LEASE, DQ_KEY_DEAD, DQ_KEY_ERRORS,
    DQ_KEY_NAMES, DQ_KEY_CONF, DQ_KEY_STATS, DQ_KEY_WAKE, DQ_KEY_BUCKET,
    DQ_KEY_UNRUNNABLE, DQ_KEY_COLD, DQ_KEY_DUE
};

int
dq_cmd_forget(dq_cmd_t *c, dq_str_t queue)
{
    return dq__script_head(c, DQ_SCRIPT_FORGET, queue,
                           DQ__KEYS(dq__keys_forget));
}

/* tasks: read by the move back (its value check); declared so that a
 * Cluster slot migration refuses the call (TRYAGAIN) before it runs */
static const dq_key_kind_t dq__keys_unlist[] = {
    DQ_KEY_ETA, DQ_KEY_DUE, DQ_KEY_STATS, DQ_KEY_WAKE, DQ_KEY_TASKS
};

int
dq_cmd_unlist(dq_cmd_t *c, dq_str_t queue)
{
    return dq__script_head(c, DQ_SCRIPT_UNLIST, queue,
                           DQ__KEYS(dq__keys_unlist));
}

int
dq_cmd_beat(dq_cmd_t *c, const char *id, int64_t ttl_ms, int trim)
{
    const dq_script_t *s = dq_script(DQ_SCRIPT_BEAT);

    if (s == NULL || id == NULL || id[0] == '\0' || ttl_ms <= 0) {
        return DQ_EINVAL;
    }
    dq_cmd_reset(c);
    c->script = DQ_SCRIPT_BEAT;
    if (dq__arg(c, "EVALSHA", 7) || dq__arg(c, s->sha1, 40)
        || dq__arg_int(c, 1)
        || dq__arg(c, DQ_WORKERS_KEY, sizeof(DQ_WORKERS_KEY) - 1)
        || dq__arg_copy(c, id, strlen(id)) || dq__arg_int(c, ttl_ms)
        || dq__arg_int(c, trim ? 1 : 0))
    {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}

/* v2 keys, then the v1 keys (dq_key_format_v1) migrate.lua reads */
static const dq_key_kind_t dq__keys_migrate[] = {
    DQ_KEY_TASKS, DQ_KEY_ETA, DQ_KEY_LEASE, DQ_KEY_DEAD, DQ_KEY_ERRORS,
    DQ_KEY_NAMES, DQ_KEY_STATS, DQ_KEY_WAKE, DQ_KEY_CONF, DQ_KEY_UNRUNNABLE
};
static const dq_key_kind_t dq__keys_migrate_v1[] = {
    DQ_KEY_TASKS, DQ_KEY_ETA, DQ_KEY_LEASE, DQ_KEY_V1_STATE, DQ_KEY_DEAD,
    DQ_KEY_ERRORS, DQ_KEY_NAMES, DQ_KEY_STATS, DQ_KEY_CONF,
    DQ_KEY_UNRUNNABLE, DQ_KEY_V1_LEASE, DQ_KEY_WAKE, DQ_KEY_BUCKET
};

int
dq_cmd_migrate(dq_cmd_t *c, dq_str_t queue, const char *cursor, int64_t max)
{
    size_t n1 = sizeof(dq__keys_migrate) / sizeof(dq__keys_migrate[0]);
    size_t n2 = sizeof(dq__keys_migrate_v1) / sizeof(dq__keys_migrate_v1[0]);
    int    rc;

    if (max < 1 || max > DQ_MAX_LEASE_ITEMS) {
        return DQ_EINVAL;
    }
    if (cursor == NULL || cursor[0] == '\0') {
        cursor = "0";
    }
    if (strlen(cursor) > 23 || strspn(cursor, "0123456789") != strlen(cursor))
    {
        return DQ_EINVAL;
    }
    rc = dq__script_head(c, DQ_SCRIPT_MIGRATE, queue, dq__keys_migrate, n1);
    if (rc == DQ_OK) {
        rc = dq__keys_v1(c, queue, dq__keys_migrate_v1, n2);
    }
    if (rc != DQ_OK) {
        return rc;
    }
    if (dq__arg_copy(c, cursor, strlen(cursor)) || dq__arg_int(c, max)) {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}

int
dq_cmd_shards(dq_cmd_t *c, dq_str_t queue)
{
    char   key[DQ_KEY_MAX];
    size_t len;

    dq_cmd_reset(c);
    c->script = DQ_SCRIPT__COUNT;
    len = dq_key_format(key, sizeof(key), queue, DQ_KEY_CONF);
    if (len == 0 || !dq_queue_name_valid(queue)) {
        return DQ_EINVAL;
    }
    if (dq__arg(c, "HGET", 4) || dq__arg_copy(c, key, len)
        || dq__arg(c, DQ_QCONF_SHARDS, sizeof(DQ_QCONF_SHARDS) - 1))
    {
        return DQ_ENOMEM;
    }
    return DQ_OK;
}
