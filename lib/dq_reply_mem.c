/*
 * Where hiredis puts the replies it reads: one block of memory per reply
 * (dq_reply_functions, a redisReplyObjectFunctions for a reader: the
 * worker's connections (worker/redis_uv.c) and the nginx module's
 * (ngx_http_deferred_redis.c) install it).
 *
 * hiredis' own functions make two allocations per element (a calloc'd
 * redisReply and a malloc'd string copy): a claim reply of 32 tasks was
 * some 450 malloc/free pairs. Here every object of one reply is carved
 * from chunks chained to that reply (2 KiB first, doubling to 64 KiB, a
 * string larger than that in a chunk of its own), and the reply's root
 * object frees them all. The objects are ordinary redisReply structs, so
 * everything that reads replies (lib/dq_reply_*) is unchanged.
 *
 * Each object is preceded by the address of its reply's block. hiredis
 * 0.14 frees only root objects (after the callback, on a reader error, or
 * with the reader); freeObject on a child is a no-op, its memory goes with
 * the root. The parent chain of a read task reaches the root task, whose
 * object (the root array) exists before any of its children.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "dq_contract.h"

typedef struct dq__rchunk_s dq__rchunk_t;

struct dq__rchunk_s {
    dq__rchunk_t *next;
    size_t        used;
    size_t        size;
    char          mem[] __attribute__((aligned(16)));
};

typedef struct {
    dq__rchunk_t *chunks;        /* newest first */
    void         *root;
} dq__rblock_t;

#define DQ__RCHUNK_MIN  2048
#define DQ__RCHUNK_MAX  65536
#define DQ__RHDR        16       /* the block pointer, kept aligned */

static dq__rchunk_t *
dq__rchunk_new(size_t size)
{
    dq__rchunk_t *c = malloc(sizeof(*c) + size);

    if (c != NULL) {
        c->next = NULL;
        c->used = 0;
        c->size = size;
    }
    return c;
}

static void *
dq__ralloc(dq__rblock_t *b, size_t n)
{
    dq__rchunk_t *c = b->chunks;
    size_t        size;
    void         *p;

    n = (n + 15) & ~(size_t) 15;
    if (c == NULL || c->size - c->used < n) {
        size = c ? c->size * 2 : DQ__RCHUNK_MIN;
        size = size > DQ__RCHUNK_MAX ? DQ__RCHUNK_MAX : size;
        size = size < n ? n : size;
        if ((c = dq__rchunk_new(size)) == NULL) {
            return NULL;
        }
        c->next = b->chunks;
        b->chunks = c;
    }
    p = c->mem + c->used;
    c->used += n;
    return p;
}

/* A new object of the reply task belongs to (n extra bytes after it),
 * attached to its parent array. NULL: out of memory (hiredis fails the
 * read with an OOM error). */
static redisReply *
dq__robj(const redisReadTask *task, int type, size_t extra)
{
    const redisReadTask *t = task;
    dq__rblock_t        *b;
    dq__rchunk_t        *c;
    redisReply          *o;
    char                *p;

    while (t->parent != NULL) {
        t = t->parent;
    }
    if (t == task) {
        /* the root: its block, in its own first chunk */
        c = dq__rchunk_new(DQ__RCHUNK_MIN > extra + 256 ? DQ__RCHUNK_MIN
                                                        : extra + 256);
        if (c == NULL) {
            return NULL;
        }
        b = (dq__rblock_t *) c->mem;
        c->used = (sizeof(*b) + 15) & ~(size_t) 15;
        b->chunks = c;
        b->root = NULL;
    } else {
        b = *(dq__rblock_t **) ((char *) t->obj - DQ__RHDR);
    }
    p = dq__ralloc(b, DQ__RHDR + sizeof(redisReply) + extra);
    if (p == NULL) {
        return NULL;                  /* the root's block stays: freed by
                                         the reader with the root */
    }
    *(dq__rblock_t **) p = b;
    o = (redisReply *) (p + DQ__RHDR);
    memset(o, 0, sizeof(*o));
    o->type = type;
    if (t == task) {
        b->root = o;
    } else {
        redisReply *parent = task->parent->obj;

        parent->element[task->idx] = o;
    }
    return o;
}

static void *
dq__rstring(const redisReadTask *task, char *str, size_t len)
{
    redisReply *o = dq__robj(task, task->type, len + 1);

    if (o == NULL) {
        return NULL;
    }
    o->str = (char *) (o + 1);
    memcpy(o->str, str, len);
    o->str[len] = '\0';
    o->len = len;
    return o;
}

/* hiredis >= 1.0 passes the count as size_t (0.14: int) and has RESP3
 * aggregates (map, set, push) built by the same function: keep the type */
#if HIREDIS_MAJOR >= 1
static void *
dq__rarray(const redisReadTask *task, size_t elements)
{
    size_t      n = elements;
    redisReply *o = dq__robj(task, task->type, n * sizeof(redisReply *));
#else
static void *
dq__rarray(const redisReadTask *task, int elements)
{
    size_t      n = elements > 0 ? (size_t) elements : 0;
    redisReply *o = dq__robj(task, REDIS_REPLY_ARRAY,
                             n * sizeof(redisReply *));
#endif

    if (o == NULL) {
        return NULL;
    }
    o->element = n ? (redisReply **) (o + 1) : NULL;
    if (n) {
        memset(o->element, 0, n * sizeof(redisReply *));
    }
    o->elements = n;
    return o;
}

static void *
dq__rinteger(const redisReadTask *task, long long value)
{
    redisReply *o = dq__robj(task, REDIS_REPLY_INTEGER, 0);

    if (o != NULL) {
        o->integer = value;
    }
    return o;
}

static void *
dq__rnil(const redisReadTask *task)
{
    return dq__robj(task, REDIS_REPLY_NIL, 0);
}

#if HIREDIS_MAJOR >= 1
/* RESP3 only (the worker speaks RESP2 and never sends HELLO 3): kept so
 * that hiredis >= 1.0 never sees a NULL member here */
static void *
dq__rdouble(const redisReadTask *task, double value, char *str, size_t len)
{
    redisReply *o = dq__rstring(task, str, len);

    if (o != NULL) {
        o->dval = value;
    }
    return o;
}

static void *
dq__rbool(const redisReadTask *task, int value)
{
    redisReply *o = dq__robj(task, REDIS_REPLY_BOOL, 0);

    if (o != NULL) {
        o->integer = value != 0;
    }
    return o;
}
#endif

static void
dq__rfree(void *obj)
{
    dq__rblock_t *b;
    dq__rchunk_t *c, *next;

    if (obj == NULL) {
        return;
    }
    b = *(dq__rblock_t **) ((char *) obj - DQ__RHDR);
    if (b->root != obj) {
        return;                 /* a child: it goes with its root */
    }
    /* the block header lives in the oldest chunk: free that one last */
    for (c = b->chunks; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
}

/* By name, not position: hiredis 0.14 has 5 members, >= 1.0 has 7
 * (createDouble and createBool before freeObject). */
const redisReplyObjectFunctions dq_reply_functions = {
    .createString = dq__rstring,
    .createArray = dq__rarray,
    .createInteger = dq__rinteger,
#if HIREDIS_MAJOR >= 1
    .createDouble = dq__rdouble,
    .createBool = dq__rbool,
#endif
    .createNil = dq__rnil,
    .freeObject = dq__rfree
};
