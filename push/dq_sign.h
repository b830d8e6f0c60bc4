/*
 * push/ — request signing, interface 2 (X-Deferred-Signature). TEMPORARY:
 * replaced by lib/dq_sign.[ch] (helper 11) once that is in main.
 */
#ifndef DQ_PUSH_SIGN_H
#define DQ_PUSH_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define DQ_SIGN_HEADER_MAX 128

/* "t=<t>,v1=<hex HMAC-SHA256(secret, METHOD \n URI \n t \n body)>" into
 * buf; 0, or -1 (buffer too small, libcrypto failure). */
int dq_sign_header(char *buf, size_t size, const char *secret,
                   size_t secret_len, const char *method, const char *uri,
                   int64_t t, const char *body, size_t body_len);

#endif
