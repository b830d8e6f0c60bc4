/*
 * libFuzzer: the X-Deferred-Signature header parser and verifier
 * (lib/dq_sign.c) with any header bytes; a header the signer made must
 * verify.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dq_sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dq_str_t          secrets[2] = { dq_str_lit("0123456789abcdef"),
                                     dq_str_lit("fedcba9876543210") };
    dq_str_t          body = { (const char *) data, size };
    dq_sign_header_t  h;
    dq_error_t        err;
    char              out[DQ_SIGN_HEADER_MAX];
    int64_t           t;

    (void) dq_sign_parse((const char *) data, size, &h, &err);
    (void) dq_sign_verify(secrets, 2, (const char *) data, size,
                          dq_str_lit("POST"), dq_str_lit("/x"), &body, 1,
                          1700000000, DQ_SIGN_WINDOW_S, &err);

    t = size ? (int64_t) data[0] * 1000000 : 0;
    if (dq_sign_header(secrets, 2, dq_str_lit("POST"), dq_str_lit("/x"), t,
                       &body, 1, out, sizeof(out), &err) != DQ_OK
        || dq_sign_verify(secrets + 1, 1, out, strlen(out),
                          dq_str_lit("POST"), dq_str_lit("/x"), &body, 1, t,
                          DQ_SIGN_WINDOW_S, &err) != DQ_OK)
    {
        abort();
    }
    return 0;
}
