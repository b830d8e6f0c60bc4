/*
 * libFuzzer: a stored envelope is untrusted (anyone who can write to Redis
 * can put bytes there): dq_envelope_decode must refuse or accept without a
 * crash, and what it accepts must re-encode.
 */
#include <stdint.h>
#include <stdlib.h>

#include "dq_contract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dq_limits_t    lim;
    dq_error_t     err;
    msgpack_zone   zone;
    dq_envelope_t  e;

    dq_limits_default(&lim);
    lim.max_envelope = 64 * 1024;
    lim.max_items = 4096;
    msgpack_zone_init(&zone, 2048);
    (void) dq_envelope_decode((const char *) data, size, dq_str_lit("id"),
                              dq_str_lit("q"), &lim, &zone, &e, &err);
    msgpack_zone_destroy(&zone);
    return 0;
}
