/*
 * Signing HTTP requests to a deferred endpoint that has deferred_secret:
 * the public face of lib/dq_sign.c for C programs (and deferred-cli sign).
 * No I/O but the clock.
 */
#include <string.h>
#include <time.h>

#include <deferred/client.h>

#include "dq_sign.h"

int
dq_sign_request(const char *const *secrets, size_t nsecrets,
                const char *method, const char *uri, const void *body,
                size_t len, int64_t t, char *out, size_t outlen)
{
    dq_str_t   s[DQ_SIGN_MAX_SECRETS], piece;
    dq_error_t err;
    size_t     i;

    if (secrets == NULL || nsecrets == 0 || nsecrets > DQ_SIGN_MAX_SECRETS
        || method == NULL || uri == NULL || (body == NULL && len))
    {
        return DQ_EINVAL;
    }
    for (i = 0; i < nsecrets; i++) {
        if (secrets[i] == NULL) {
            return DQ_EINVAL;
        }
        s[i] = dq_str_c(secrets[i]);
    }
    piece.ptr = body;
    piece.len = len;
    if (t <= 0) {
        t = (int64_t) time(NULL);
    }
    return dq_sign_header(s, nsecrets, dq_str_c(method), dq_str_c(uri), t,
                          &piece, 1, out, outlen, &err);
}
