/*
 * A JSON text packed as msgpack bytes, for the tests and fuzz/fuzz_json.c
 * only: the tree lib's dq_json_parse builds (what the module's request
 * parser walks) packed by msgpack-c, appended to out (nothing appended on
 * failure). Header only: one copy per binary.
 */
#ifndef DQ_TEST_JSON_PACK_H
#define DQ_TEST_JSON_PACK_H

#include "dq_contract.h"

__attribute__((unused)) static int
test_json_pack(const char *buf, size_t len, const dq_limits_t *lim,
          msgpack_sbuffer *out, dq_error_t *err)
{
    msgpack_zone   zone;
    msgpack_object root;
    msgpack_packer pk;
    size_t         start = out->size;
    int            rc;

    if (!msgpack_zone_init(&zone, 8192)) {
        return dq_error_set(err, DQ_ENOMEM, NULL,
                            "out of memory converting JSON");
    }
    rc = dq_json_parse(buf, len, lim, &zone, &root, err);
    if (rc == DQ_OK) {
        msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
        if (msgpack_pack_object(&pk, root) != 0) {
            out->size = start;
            rc = dq_error_set(err, DQ_ENOMEM, NULL,
                              "out of memory converting JSON");
        }
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

#endif
