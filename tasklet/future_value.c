/*
 * Values carried by futures (dq_value_t): integers and doubles inline;
 * strings, user pointers, Redis replies and lists in a shared,
 * reference-counted box, so a result can be handed from a dependent to a
 * MultiFuture, a queue's getq future and a reducer without deep copies.
 *
 * Redis replies: hiredis frees a reply as soon as its callback returns
 * (0.14 has no REDIS_NO_AUTO_FREE), so the reply is copied once into a
 * redisReply tree allocated here, freed by dq__reply_free.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "tasklet_int.h"

struct dq__box_s {
    unsigned   refs;
    void      *ptr;              /* PTR: the user's; REPLY: redisReply *;
                                    LIST: dq_value_t[]; STR: data */
    void     (*free_fn)(void *); /* PTR only */
    size_t     len;              /* STR bytes, LIST items */
    char       data[];           /* STR bytes + NUL */
};

static dq__box_t *
dq__box_new(size_t extra)
{
    dq__box_t *b = calloc(1, sizeof(*b) + extra);

    if (b) {
        b->refs = 1;
    }
    return b;
}

dq_value_t
dq_value_int(int64_t i)
{
    dq_value_t v = { DQ_VAL_INT, { .i = i } };
    return v;
}

dq_value_t
dq_value_double(double d)
{
    dq_value_t v = { DQ_VAL_DOUBLE, { .d = d } };
    return v;
}

dq_value_t
dq_value_str(const char *ptr, size_t len)
{
    dq_value_t v = DQ_VALUE_NONE;
    dq__box_t *b = dq__box_new(len + 1);

    if (b == NULL) {
        return v;
    }
    if (len) {
        memcpy(b->data, ptr, len);
    }
    b->data[len] = '\0';
    b->len = len;
    b->ptr = b->data;
    v.type = DQ_VAL_STR;
    v.u.box = b;
    return v;
}

dq_value_t
dq_value_cstr(const char *s)
{
    return dq_value_str(s, strlen(s));
}

dq_value_t
dq_value_ptr(void *ptr, void (*free_fn)(void *))
{
    dq_value_t v = DQ_VALUE_NONE;
    dq__box_t *b = dq__box_new(0);

    if (b == NULL) {
        if (free_fn) {
            free_fn(ptr);
        }
        return v;
    }
    b->ptr = ptr;
    b->free_fn = free_fn;
    v.type = DQ_VAL_PTR;
    v.u.box = b;
    return v;
}

dq_value_t
dq__value_list(dq_value_t *items, size_t n)
{
    dq_value_t v = DQ_VALUE_NONE;
    dq__box_t *b = dq__box_new(0);

    if (b == NULL) {
        size_t i;
        for (i = 0; i < n; i++) {
            dq_value_clear(&items[i]);
        }
        free(items);
        return v;
    }
    b->ptr = items;
    b->len = n;
    v.type = DQ_VAL_LIST;
    v.u.box = b;
    return v;
}

/* ------------------------------------------------------ Redis replies */

static void
dq__reply_free(redisReply *r)
{
    size_t i;

    if (r == NULL) {
        return;
    }
    for (i = 0; i < r->elements; i++) {
        dq__reply_free(r->element[i]);
    }
    free(r->element);
    free(r->str);
    free(r);
}

static redisReply *
dq__reply_copy(const redisReply *src, int depth)
{
    redisReply *r;
    size_t      i;

    if (depth > 64 || (r = calloc(1, sizeof(*r))) == NULL) {
        return NULL;
    }
    r->type = src->type;
    r->integer = src->integer;
    if (src->str) {
        r->str = malloc(src->len + 1);
        if (r->str == NULL) {
            goto fail;
        }
        memcpy(r->str, src->str, src->len);
        r->str[src->len] = '\0';
        r->len = src->len;
    }
    if (src->elements) {
        r->element = calloc(src->elements, sizeof(redisReply *));
        if (r->element == NULL) {
            goto fail;
        }
        r->elements = src->elements;
        for (i = 0; i < src->elements; i++) {
            if (src->element[i]
                && (r->element[i] = dq__reply_copy(src->element[i],
                                                   depth + 1)) == NULL)
            {
                goto fail;
            }
        }
    }
    return r;
fail:
    dq__reply_free(r);
    return NULL;
}

dq_value_t
dq__value_reply_dup(const redisReply *src)
{
    dq_value_t  v = DQ_VALUE_NONE;
    dq__box_t  *b;
    redisReply *r = dq__reply_copy(src, 0);

    if (r == NULL || (b = dq__box_new(0)) == NULL) {
        dq__reply_free(r);
        return v;
    }
    b->ptr = r;
    v.type = DQ_VAL_REPLY;
    v.u.box = b;
    return v;
}

/* --------------------------------------------------------- ownership */

static int
dq__boxed(const dq_value_t *v)
{
    return v->type == DQ_VAL_STR || v->type == DQ_VAL_PTR
           || v->type == DQ_VAL_REPLY || v->type == DQ_VAL_LIST;
}

dq_value_t
dq_value_copy(const dq_value_t *v)
{
    if (dq__boxed(v)) {
        v->u.box->refs++;
    }
    return *v;
}

void
dq_value_clear(dq_value_t *v)
{
    dq__box_t *b;
    size_t     i;

    if (dq__boxed(v) && (b = v->u.box) != NULL && --b->refs == 0) {
        switch (v->type) {
        case DQ_VAL_PTR:
            if (b->free_fn) {
                b->free_fn(b->ptr);
            }
            break;
        case DQ_VAL_REPLY:
            dq__reply_free(b->ptr);
            break;
        case DQ_VAL_LIST:
            for (i = 0; i < b->len; i++) {
                dq_value_clear(&((dq_value_t *) b->ptr)[i]);
            }
            free(b->ptr);
            break;
        default:
            break;
        }
        free(b);
    }
    *v = DQ_VALUE_NONE;
}

/* ---------------------------------------------------------- accessors */

const char *
dq_value_str_ptr(const dq_value_t *v, size_t *len)
{
    if (v == NULL || v->type != DQ_VAL_STR) {
        if (len) {
            *len = 0;
        }
        return NULL;
    }
    if (len) {
        *len = v->u.box->len;
    }
    return v->u.box->data;
}

void *
dq_value_ptr_get(const dq_value_t *v)
{
    return v && v->type == DQ_VAL_PTR ? v->u.box->ptr : NULL;
}

const struct redisReply *
dq_value_reply(const dq_value_t *v)
{
    return v && v->type == DQ_VAL_REPLY ? v->u.box->ptr : NULL;
}

size_t
dq_value_list_len(const dq_value_t *v)
{
    return v && v->type == DQ_VAL_LIST ? v->u.box->len : 0;
}

const dq_value_t *
dq_value_list_item(const dq_value_t *v, size_t i)
{
    if (v == NULL || v->type != DQ_VAL_LIST || i >= v->u.box->len) {
        return NULL;
    }
    return &((const dq_value_t *) v->u.box->ptr)[i];
}

static int
dq__fmt_reply(const redisReply *r, char *buf, size_t size)
{
    size_t i;
    int    n, total;

    switch (r->type) {
    case REDIS_REPLY_INTEGER:
        return snprintf(buf, size, "%lld", r->integer);
    case REDIS_REPLY_NIL:
        return snprintf(buf, size, "nil");
    case REDIS_REPLY_ARRAY:
        total = snprintf(buf, size, "[");
        for (i = 0; i < r->elements; i++) {
            size_t at = (size_t) total < size ? (size_t) total : size;
            n = dq__fmt_reply(r->element[i], buf ? buf + at : NULL,
                              buf ? size - at : 0);
            total += n;
            if (i + 1 < r->elements) {
                at = (size_t) total < size ? (size_t) total : size;
                total += snprintf(buf ? buf + at : NULL, buf ? size - at : 0,
                                  ", ");
            }
        }
        {
            size_t at = (size_t) total < size ? (size_t) total : size;
            total += snprintf(buf ? buf + at : NULL, buf ? size - at : 0, "]");
        }
        return total;
    case REDIS_REPLY_ERROR:
        return snprintf(buf, size, "(error) %.*s", (int) r->len, r->str);
    default:
        return snprintf(buf, size, "\"%.*s\"", (int) r->len, r->str);
    }
}

int
dq_value_format(const dq_value_t *v, char *buf, size_t size)
{
    size_t i;
    int    total;

    if (size == 0) {
        buf = NULL;
    }
    switch (v->type) {
    case DQ_VAL_INT:
        return snprintf(buf, size, "%" PRId64, v->u.i);
    case DQ_VAL_DOUBLE:
        return snprintf(buf, size, "%g", v->u.d);
    case DQ_VAL_STR:
        return snprintf(buf, size, "\"%.*s\"", (int) v->u.box->len,
                        v->u.box->data);
    case DQ_VAL_PTR:
        return snprintf(buf, size, "ptr:%p", v->u.box->ptr);
    case DQ_VAL_REPLY:
        return dq__fmt_reply(v->u.box->ptr, buf, size);
    case DQ_VAL_LIST:
        total = snprintf(buf, size, "[");
        for (i = 0; i < v->u.box->len; i++) {
            size_t at = (size_t) total < size ? (size_t) total : size;
            total += dq_value_format(&((dq_value_t *) v->u.box->ptr)[i],
                                     buf ? buf + at : NULL,
                                     buf ? size - at : 0);
            if (i + 1 < v->u.box->len) {
                at = (size_t) total < size ? (size_t) total : size;
                total += snprintf(buf ? buf + at : NULL, buf ? size - at : 0,
                                  ", ");
            }
        }
        {
            size_t at = (size_t) total < size ? (size_t) total : size;
            total += snprintf(buf ? buf + at : NULL, buf ? size - at : 0, "]");
        }
        return total;
    default:
        return snprintf(buf, size, "none");
    }
}
