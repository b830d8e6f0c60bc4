/*
 * libFuzzer: what an nginx endpoint does with an untrusted body. The first
 * byte picks JSON (even) or msgpack (odd); the rest is the body. JSON is
 * parsed into a tree (dq_json_parse, its strings pointing into the body),
 * msgpack strictly unpacked (dq_msgpack_unpack), the requests parsed
 * (dq_request_parse_body), each encoded as an envelope (the bytes must be
 * the ones msgpack-c's packer writes: t/unit/ref_envelope.h) and decoded
 * back (dq_envelope_decode), whose fields must equal the request's. The
 * envelope is written and read with tighter limits than the body (as the
 * module does): refused only as too big, else it decodes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dq_contract.h"
#include "../t/unit/ref_envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dq_limits_t      lim, enc;
    dq_error_t       err;
    msgpack_sbuffer  env, ref;
    msgpack_zone     zone, zone2;
    msgpack_object   root;
    dq_request_t     reqs[16];
    dq_envelope_t    e;
    const char      *buf;
    size_t           len, n, i;
    int              json, rc;

    if (size < 1) {
        return 0;
    }
    json = !(data[0] & 1);
    buf = (const char *) data + 1;
    len = size - 1;

    dq_limits_default(&lim);
    lim.max_envelope = 64 * 1024;
    lim.max_items = 4096;
    lim.max_batch = 16;

    /* each task is encoded and decoded with tighter limits than the body
     * was read with (the module reads a batch with max_items raised and
     * deferred_max_body, encodes with the worker's max_items and
     * deferred_max_envelope): what is encoded must decode */
    enc = lim;
    enc.max_items = 1024;
    enc.max_envelope = 16 * 1024;

    msgpack_zone_init(&zone, 2048);
    if ((json ? dq_json_parse(buf, len, &lim, &zone, &root, &err)
              : dq_msgpack_unpack(buf, len, &lim, &zone, &root, &err))
        == DQ_OK)
    {
        n = 0;
        if (dq_request_parse_body(&root, &lim, reqs, &n, &err) == DQ_OK) {
            for (i = 0; i < n; i++) {
                msgpack_sbuffer_init(&env);
                rc = dq_envelope_encode(&reqs[i], (long) i,
                                        1700000000000LL, &enc, &env, &err);
                if (rc != DQ_OK && (rc != DQ_ETOOBIG || env.size != 0)) {
                    abort();    /* refused only for size, nothing written */
                }
                if (rc == DQ_OK) {
                    msgpack_sbuffer_init(&ref);
                    if (ref_envelope(&reqs[i], 1700000000000LL, &ref) != 0
                        || ref.size != env.size
                        || memcmp(ref.data, env.data, env.size) != 0)
                    {
                        abort();    /* not msgpack-c's bytes */
                    }
                    msgpack_sbuffer_destroy(&ref);
                    msgpack_zone_init(&zone2, 2048);
                    if (dq_envelope_decode(env.data, env.size,
                                           dq_str_lit("AAAAAAAAAAAAAAAAAAAAAA"),
                                           reqs[i].queue, &enc, &zone2,
                                           &e, &err)
                        != DQ_OK)
                    {
                        abort();    /* we wrote it: it must decode */
                    }
                    if (e.func.len != reqs[i].func.len
                        || memcmp(e.func.ptr, reqs[i].func.ptr, e.func.len)
                        || e.queue.len != reqs[i].queue.len
                        || memcmp(e.queue.ptr, reqs[i].queue.ptr,
                                  e.queue.len))
                    {
                        abort();
                    }
                    msgpack_zone_destroy(&zone2);
                }
                msgpack_sbuffer_destroy(&env);
            }
        }
    }
    msgpack_zone_destroy(&zone);
    return 0;
}
