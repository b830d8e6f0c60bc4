/*
 * JSON request bodies -> msgpack, so one validator (dq_request_parse) and
 * one envelope format serve both. Parsing is jansson's (Debian's
 * libjansson): duplicate object keys are refused (which value would win is
 * a guess), "\u0000" is allowed (msgpack strings are binary-safe), integers
 * stay integers (beyond int64 jansson refuses them), reals become float64.
 * Size, depth and element limits are the msgpack decoder's.
 */
#include <jansson.h>
#include <string.h>

#include "dq_contract.h"

typedef struct {
    msgpack_packer     pk;
    const dq_limits_t *lim;
    size_t             items;
    dq_error_t        *err;
} dq__json_t;

static int
dq__pack_json(dq__json_t *j, const json_t *v, unsigned depth)
{
    const char *key;
    json_t     *val;
    size_t      i, n;
    int         rc;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth + 1 > j->lim->max_depth || depth + 1 > 32) {
            return dq_error_set(j->err, DQ_EDECODE, NULL,
                                "JSON nested deeper than %u levels",
                                j->lim->max_depth < 32 ? j->lim->max_depth
                                                       : 32);
        }
        n = json_is_object(v) ? json_object_size(v) : json_array_size(v);
        if (n > j->lim->max_items - j->items
            || (json_is_object(v) && n > (j->lim->max_items - j->items) / 2))
        {
            return dq_error_set(j->err, DQ_ETOOBIG, NULL,
                                "JSON holds more than %zu elements",
                                j->lim->max_items);
        }
        j->items += json_is_object(v) ? 2 * n : n;
        if (json_is_array(v)) {
            if (msgpack_pack_array(&j->pk, n)) {
                goto nomem;
            }
            for (i = 0; i < n; i++) {
                rc = dq__pack_json(j, json_array_get(v, i), depth + 1);
                if (rc != DQ_OK) {
                    return rc;
                }
            }
            return DQ_OK;
        }
        if (msgpack_pack_map(&j->pk, n)) {
            goto nomem;
        }
        json_object_foreach((json_t *) v, key, val) {
            n = strlen(key);
            if (msgpack_pack_str(&j->pk, n)
                || msgpack_pack_str_body(&j->pk, key, n))
            {
                goto nomem;
            }
            rc = dq__pack_json(j, val, depth + 1);
            if (rc != DQ_OK) {
                return rc;
            }
        }
        return DQ_OK;
    case JSON_STRING:
        n = json_string_length(v);
        if (msgpack_pack_str(&j->pk, n)
            || msgpack_pack_str_body(&j->pk, json_string_value(v), n))
        {
            goto nomem;
        }
        return DQ_OK;
    case JSON_INTEGER:
        rc = msgpack_pack_int64(&j->pk, (int64_t) json_integer_value(v));
        break;
    case JSON_REAL:
        rc = msgpack_pack_double(&j->pk, json_real_value(v));
        break;
    case JSON_TRUE:
        rc = msgpack_pack_true(&j->pk);
        break;
    case JSON_FALSE:
        rc = msgpack_pack_false(&j->pk);
        break;
    default:
        rc = msgpack_pack_nil(&j->pk);
        break;
    }
    if (rc == 0) {
        return DQ_OK;
    }
nomem:
    return dq_error_set(j->err, DQ_ENOMEM, NULL,
                        "out of memory converting JSON");
}

/*
 * Before jansson builds a tree: nesting depth, and a lower bound on the
 * container elements (one per comma, one per non-empty container), so a
 * hostile body cannot make the parser allocate half a million values just
 * to be refused afterwards. Strings are skipped with their escapes;
 * malformed text is left to jansson, which reports where.
 */
static int
dq__json_prescan(const char *buf, size_t len, const dq_limits_t *lim,
                 unsigned max_depth, dq_error_t *err)
{
    size_t   i, items = 0;
    unsigned depth = 0;
    int      in_str = 0, opened = 0;

    for (i = 0; i < len; i++) {
        char ch = buf[i];

        if (in_str) {
            if (ch == '\\') {
                i++;
            } else if (ch == '"') {
                in_str = 0;
            }
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            continue;
        }
        if (opened && ch != ']' && ch != '}') {
            items++;                    /* a container's first element */
        }
        opened = 0;
        switch (ch) {
        case '[':
        case '{':
            if (++depth > max_depth) {
                return dq_error_set(err, DQ_EDECODE, NULL,
                                    "JSON nested deeper than %u levels",
                                    max_depth);
            }
            opened = 1;
            break;
        case ']':
        case '}':
            if (depth > 0) {
                depth--;
            }
            break;
        case ',':
            items++;
            break;
        case '"':
            in_str = 1;
            break;
        default:
            break;
        }
        if (items > lim->max_items) {
            return dq_error_set(err, DQ_ETOOBIG, NULL,
                                "JSON holds more than %zu elements",
                                lim->max_items);
        }
    }
    return DQ_OK;
}

int
dq_json_to_msgpack(const char *buf, size_t len, const dq_limits_t *lim,
                   msgpack_sbuffer *out, dq_error_t *err)
{
    dq_limits_t  def;
    json_error_t jerr;
    json_t      *root;
    dq__json_t   j;
    size_t       start = out->size;
    int          rc;

    if (lim == NULL) {
        dq_limits_default(&def);
        lim = &def;
    }
    if (len > lim->max_envelope) {
        return dq_error_set(err, DQ_ETOOBIG, NULL,
                            "%zu bytes over the limit of %zu", len,
                            lim->max_envelope);
    }
    rc = dq__json_prescan(buf, len, lim,
                          lim->max_depth < 32 ? lim->max_depth : 32, err);
    if (rc != DQ_OK) {
        return rc;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL
                                | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        return dq_error_set(err, DQ_EDECODE, NULL,
                            "JSON at line %d column %d (byte %d): %s",
                            jerr.line, jerr.column, jerr.position, jerr.text);
    }
    msgpack_packer_init(&j.pk, out, msgpack_sbuffer_write);
    j.lim = lim;
    j.items = 0;
    j.err = err;
    rc = dq__pack_json(&j, root, 0);
    json_decref(root);
    if (rc != DQ_OK) {
        out->size = start;
    }
    return rc;
}
