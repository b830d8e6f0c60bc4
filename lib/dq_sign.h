/*
 * Request signing: one home for the signature every HTTP hop of
 * ngx_deferred carries (a client's POST to the module's endpoint, the
 * worker's push to an application). Non-blocking, no I/O, no global
 * state; OpenSSL libcrypto computes HMAC-SHA256. Safe inside nginx.
 *
 * The header (DQ_SIGN_HEADER):
 *
 *     X-Deferred-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]
 *
 *     <hex> = lowercase hex of HMAC-SHA256(secret,
 *                 METHOD "\n" URI "\n" t "\n" BODY)
 *
 * METHOD is the request method as sent ("POST"), URI the request target
 * as sent in the request line (path and query, "/_ah/queue/deferred"),
 * t the same decimal digits as in the header, BODY the raw body bytes.
 * Several v1= values may appear (a signer holding the old and the new
 * secret during a rotation signs with both); the verifier accepts the
 * request when any v1 matches any of its secrets, in constant time per
 * comparison, and only when |now - t| <= window. Elements are separated
 * by ',' (spaces around them are ignored); unknown elements ("v0=...",
 * "x=...") are ignored so a later scheme can be added beside v1.
 *
 * Shell recipe (what docs/MODULE.md shows):
 *
 *     t=$(date +%s)
 *     sig=$( { printf 'POST\n/_ah/queue/deferred\n%s\n' "$t"; cat body; } |
 *            openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
 *     curl -H "X-Deferred-Signature: t=$t,v1=$sig" --data-binary @body ...
 */
#ifndef DQ_SIGN_H
#define DQ_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "dq_contract.h"

#define DQ_SIGN_HEADER        "X-Deferred-Signature"
#define DQ_SIGN_WINDOW_S      300       /* default accepted clock skew/age */
#define DQ_SIGN_MAC_LEN       32        /* SHA-256 */
#define DQ_SIGN_MAX_V1        8         /* v1= values read from one header */
#define DQ_SIGN_MAX_SECRETS   8         /* secrets one verifier holds */
#define DQ_SIGN_HEADER_MAX    (sizeof("t=,") + 20 \
                               + DQ_SIGN_MAX_SECRETS * (4 + 64))

/* A parsed header value. */
typedef struct {
    int64_t        t;
    char           t_text[21];          /* the digits as sent, NUL-ended */
    size_t         nv1;
    unsigned char  v1[DQ_SIGN_MAX_V1][DQ_SIGN_MAC_LEN];
} dq_sign_header_t;

/* Parse a header value. DQ_EINVAL (err says why) when t is missing or not
 * a decimal number, when there is no v1, when a v1 is not 64 hex digits,
 * or when there are more than DQ_SIGN_MAX_V1 of them. */
int dq_sign_parse(const char *value, size_t len, dq_sign_header_t *out,
                  dq_error_t *err);

/*
 * HMAC-SHA256(secret, method "\n" uri "\n" t "\n" body) into mac.
 * The body may come in pieces (an nginx chain): body[0..nbody).
 * DQ_OK, or DQ_ERR when libcrypto fails.
 */
int dq_sign_mac(dq_str_t secret, dq_str_t method, dq_str_t uri,
                const char *t_text, const dq_str_t *body, size_t nbody,
                unsigned char mac[DQ_SIGN_MAC_LEN]);

/*
 * SHA-256(method "\n" uri "\n" t "\n" body): what a signature covers,
 * without a secret. DQ_OK, or DQ_ERR when libcrypto fails.
 */
int dq_sign_digest(dq_str_t method, dq_str_t uri, const char *t_text,
                   const dq_str_t *body, size_t nbody,
                   unsigned char digest[DQ_SIGN_MAC_LEN]);

/*
 * The header value a caller sends: "t=<t>,v1=<hex>" with one v1 per secret
 * (secrets[0..nsecrets), at most DQ_SIGN_MAX_SECRETS), NUL-terminated into
 * out (DQ_SIGN_HEADER_MAX bytes are always enough). t is the caller's
 * clock in unix seconds. DQ_OK, DQ_EINVAL (no secret, too many, empty
 * secret, out too small) or DQ_ERR (libcrypto).
 */
int dq_sign_header(const dq_str_t *secrets, size_t nsecrets, dq_str_t method,
                   dq_str_t uri, int64_t t, const dq_str_t *body,
                   size_t nbody, char *out, size_t outlen, dq_error_t *err);

/*
 * Verify a header value against every configured secret. DQ_OK when a
 * v1 matches a secret and |now - t| <= window_s; DQ_EINVAL otherwise, err
 * naming the reason ("malformed signature header: ...", "signature
 * timestamp outside the 300 s window", "no signature matches"). A missing
 * header is the caller's to report (value NULL gives DQ_EINVAL too).
 */
int dq_sign_verify(const dq_str_t *secrets, size_t nsecrets,
                   const char *value, size_t len, dq_str_t method,
                   dq_str_t uri, const dq_str_t *body, size_t nbody,
                   int64_t now_s, int64_t window_s, dq_error_t *err);

/*
 * dq_sign_verify, and on DQ_OK the SHA-256 of the signed content
 * (dq_sign_digest) into matched: the same bytes for every replay of the
 * request, whatever v1= values were added, dropped or reordered and
 * whichever secret matched. The module derives replay-proof task ids
 * from it.
 */
int dq_sign_verify_mac(const dq_str_t *secrets, size_t nsecrets,
                       const char *value, size_t len, dq_str_t method,
                       dq_str_t uri, const dq_str_t *body, size_t nbody,
                       int64_t now_s, int64_t window_s,
                       unsigned char matched[DQ_SIGN_MAC_LEN],
                       dq_error_t *err);

#endif /* DQ_SIGN_H */
