/*
 * dq_args_t: positional (array) or keyword (map) task arguments built as
 * msgpack by a C program. The element bytes accumulate in a buffer; the
 * container header is written when the client packs the request (only then
 * is the count known). Part of the C client (not built into nginx).
 */
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

static dq_args_t *
dq__args_new(int is_map)
{
    dq_args_t *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        return NULL;
    }
    msgpack_sbuffer_init(&a->sb);
    msgpack_packer_init(&a->pk, &a->sb, msgpack_sbuffer_write);
    a->is_map = is_map;
    return a;
}

dq_args_t *
dq_args_new(void)
{
    return dq__args_new(0);
}

dq_args_t *
dq_kwargs_new(void)
{
    return dq__args_new(1);
}

void
dq_args_free(dq_args_t *a)
{
    if (a) {
        msgpack_sbuffer_destroy(&a->sb);
        free(a);
    }
}

void
dq_args_clear(dq_args_t *a)
{
    msgpack_sbuffer_clear(&a->sb);
    a->count = 0;
    a->key_pending = 0;
    a->broken = 0;
}

/* Before a value: in a map a key must be pending. */
static int
dq__value(dq_args_t *a)
{
    if (a->broken) {
        return DQ_EINVAL;
    }
    if (a->is_map && !a->key_pending) {
        a->broken = 1;      /* the map would be malformed: refuse it */
        return DQ_EINVAL;
    }
    return DQ_OK;
}

static int
dq__done(dq_args_t *a, int rc)
{
    if (rc != 0) {
        a->broken = 1;
        return DQ_ENOMEM;
    }
    a->key_pending = 0;
    a->count++;
    return DQ_OK;
}

int
dq_args_key(dq_args_t *a, const char *key)
{
    size_t n;

    if (!a->is_map || a->key_pending || a->broken || key == NULL) {
        a->broken = 1;
        return DQ_EINVAL;
    }
    n = strlen(key);
    if (msgpack_pack_str(&a->pk, n) || msgpack_pack_str_body(&a->pk, key, n)) {
        a->broken = 1;
        return DQ_ENOMEM;
    }
    a->key_pending = 1;
    return DQ_OK;
}

int
dq_args_int(dq_args_t *a, int64_t v)
{
    int rc = dq__value(a);
    return rc ? rc : dq__done(a, msgpack_pack_int64(&a->pk, v));
}

int
dq_args_double(dq_args_t *a, double v)
{
    int rc = dq__value(a);
    return rc ? rc : dq__done(a, msgpack_pack_double(&a->pk, v));
}

int
dq_args_bool(dq_args_t *a, int v)
{
    int rc = dq__value(a);
    return rc ? rc : dq__done(a, v ? msgpack_pack_true(&a->pk)
                                   : msgpack_pack_false(&a->pk));
}

int
dq_args_nil(dq_args_t *a)
{
    int rc = dq__value(a);
    return rc ? rc : dq__done(a, msgpack_pack_nil(&a->pk));
}

int
dq_args_str(dq_args_t *a, const char *s, size_t len)
{
    int rc = dq__value(a);
    if (rc) {
        return rc;
    }
    if (s == NULL && len) {
        a->broken = 1;
        return DQ_EINVAL;
    }
    return dq__done(a, msgpack_pack_str(&a->pk, len)
                       || msgpack_pack_str_body(&a->pk, s ? s : "", len));
}

int
dq_args_cstr(dq_args_t *a, const char *s)
{
    if (s == NULL) {
        return dq_args_nil(a);
    }
    return dq_args_str(a, s, strlen(s));
}

int
dq_args_bin(dq_args_t *a, const void *p, size_t len)
{
    int rc = dq__value(a);
    if (rc) {
        return rc;
    }
    if (p == NULL && len) {
        a->broken = 1;
        return DQ_EINVAL;
    }
    return dq__done(a, msgpack_pack_bin(&a->pk, len)
                       || msgpack_pack_bin_body(&a->pk, p ? p : "", len));
}

int
dq__args_pack(const dq_args_t *a, msgpack_packer *pk)
{
    int rc = a->is_map ? msgpack_pack_map(pk, a->count)
                       : msgpack_pack_array(pk, a->count);
    if (rc == 0 && a->sb.size) {
        rc = msgpack_sbuffer_write(pk->data, a->sb.data, a->sb.size);
    }
    return rc;
}
