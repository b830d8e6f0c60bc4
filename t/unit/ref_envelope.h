/*
 * The reference for lib's direct msgpack writers: an envelope packed by
 * msgpack-c's packer, element by element, as dq_envelope_encode did before
 * it wrote the bytes itself (issue #12). t/unit/test_envelope.c and
 * fuzz/fuzz_request.c compare the two byte for byte.
 */
#ifndef REF_ENVELOPE_H
#define REF_ENVELOPE_H

#include "dq_contract.h"

static int
ref_str(msgpack_packer *pk, dq_str_t s)
{
    if (s.ptr == NULL) {
        return msgpack_pack_nil(pk);
    }
    return msgpack_pack_str(pk, s.len) || msgpack_pack_str_body(pk, s.ptr,
                                                                 s.len);
}

static int
ref_part(msgpack_packer *pk, msgpack_sbuffer *sb, const msgpack_object *o,
         dq_str_t raw, int array)
{
    if (o) {
        return msgpack_pack_object(pk, *o);
    }
    if (raw.len) {
        return msgpack_sbuffer_write(sb, raw.ptr, raw.len);
    }
    return array ? msgpack_pack_array(pk, 0) : msgpack_pack_nil(pk);
}

/* 0, or -1 if msgpack-c failed */
static int
ref_envelope(const dq_request_t *req, int64_t created_ms,
             msgpack_sbuffer *sb)
{
    msgpack_packer    pk;
    const dq_retry_t *r = &req->retry;
    dq_str_t          none = { NULL, 0 };

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (msgpack_pack_array(&pk, 10)
        || msgpack_pack_uint32(&pk, DQ_ENVELOPE_VERSION)
        || ref_str(&pk, req->func)
        || ref_part(&pk, sb, req->args, req->args_raw, 1)
        || ref_part(&pk, sb, req->kwargs, req->kwargs_raw, 0)
        || ref_str(&pk, req->name) || ref_str(&pk, req->url)
        || msgpack_pack_int64(&pk, created_ms)
        || msgpack_pack_int64(&pk, req->eta_ms >= 0 ? req->eta_ms : 0)
        || ref_part(&pk, sb, req->headers, none, 0))
    {
        return -1;
    }
    if (r->retry_limit < 0 && r->age_limit_ms < 0 && r->min_backoff_ms < 0
        && r->max_backoff_ms < 0 && r->max_doublings < 0)
    {
        return msgpack_pack_nil(&pk);
    }
    return msgpack_pack_array(&pk, 5) || msgpack_pack_int64(&pk, r->retry_limit)
           || msgpack_pack_int64(&pk, r->age_limit_ms)
           || msgpack_pack_int64(&pk, r->min_backoff_ms)
           || msgpack_pack_int64(&pk, r->max_backoff_ms)
           || msgpack_pack_int64(&pk, r->max_doublings);
}

#endif
