/*
 * Request signing (see dq_sign.h for the format). HMAC-SHA256 through
 * OpenSSL 3's EVP_MAC, so the body can arrive in pieces; comparisons in
 * constant time (CRYPTO_memcmp). No I/O, no global state.
 */
#include "dq_sign.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

static int
dq__hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static int
dq__is_space(char c)
{
    return c == ' ' || c == '\t';
}

int
dq_sign_parse(const char *value, size_t len, dq_sign_header_t *out,
              dq_error_t *err)
{
    const char *p, *end, *e, *k, *v;
    size_t      klen, vlen, i;
    int         have_t = 0;

    memset(out, 0, sizeof(*out));

    if (value == NULL || len == 0) {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "missing " DQ_SIGN_HEADER " header");
    }

    p = value;
    end = value + len;

    while (p < end) {
        e = memchr(p, ',', (size_t) (end - p));
        if (e == NULL) {
            e = end;
        }

        k = p;
        while (k < e && dq__is_space(*k)) {
            k++;
        }
        v = memchr(k, '=', (size_t) (e - k));
        p = e + 1;

        if (v == NULL) {
            if (k == e) {
                continue;                       /* empty element: ",," */
            }
            return dq_error_set(err, DQ_EINVAL, NULL,
                                "malformed signature header: element "
                                "without '='");
        }

        klen = (size_t) (v - k);
        v++;
        while (v < e && dq__is_space(*v)) {
            v++;
        }
        vlen = (size_t) (e - v);
        while (vlen && dq__is_space(v[vlen - 1])) {
            vlen--;
        }
        while (klen && dq__is_space(k[klen - 1])) {
            klen--;
        }

        if (klen == 1 && k[0] == 't') {
            int64_t t = 0;

            if (have_t) {
                return dq_error_set(err, DQ_EINVAL, NULL,
                                    "malformed signature header: two t=");
            }
            if (vlen == 0 || vlen > 18) {
                return dq_error_set(err, DQ_EINVAL, NULL,
                                    "malformed signature header: t= is "
                                    "not unix seconds");
            }
            for (i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9') {
                    return dq_error_set(err, DQ_EINVAL, NULL,
                                        "malformed signature header: t= "
                                        "is not unix seconds");
                }
                t = t * 10 + (v[i] - '0');
            }
            out->t = t;
            memcpy(out->t_text, v, vlen);
            out->t_text[vlen] = '\0';
            have_t = 1;

        } else if (klen == 2 && k[0] == 'v' && k[1] == '1') {

            if (out->nv1 == DQ_SIGN_MAX_V1) {
                return dq_error_set(err, DQ_EINVAL, NULL,
                                    "malformed signature header: more "
                                    "than %d v1= values", DQ_SIGN_MAX_V1);
            }
            if (vlen != 2 * DQ_SIGN_MAC_LEN) {
                return dq_error_set(err, DQ_EINVAL, NULL,
                                    "malformed signature header: v1= is "
                                    "not 64 hex digits");
            }
            for (i = 0; i < DQ_SIGN_MAC_LEN; i++) {
                int hi = dq__hexval((unsigned char) v[2 * i]);
                int lo = dq__hexval((unsigned char) v[2 * i + 1]);

                if (hi < 0 || lo < 0) {
                    return dq_error_set(err, DQ_EINVAL, NULL,
                                        "malformed signature header: v1= "
                                        "is not 64 hex digits");
                }
                out->v1[out->nv1][i] = (unsigned char) (hi << 4 | lo);
            }
            out->nv1++;
        }
        /* other elements: ignored (a later scheme beside v1) */
    }

    if (!have_t) {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "malformed signature header: no t=");
    }
    if (out->nv1 == 0) {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "malformed signature header: no v1=");
    }

    return DQ_OK;
}

int
dq_sign_mac(dq_str_t secret, dq_str_t method, dq_str_t uri,
            const char *t_text, const dq_str_t *body, size_t nbody,
            unsigned char mac[DQ_SIGN_MAC_LEN])
{
    EVP_MAC      *m;
    EVP_MAC_CTX  *c = NULL;
    OSSL_PARAM    params[2];
    size_t        outl = 0, i;
    int           rc = DQ_ERR;
    char          digest[] = "SHA256";

    m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (m == NULL) {
        return DQ_ERR;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 digest, 0);
    params[1] = OSSL_PARAM_construct_end();

    c = EVP_MAC_CTX_new(m);
    if (c == NULL
        || !EVP_MAC_init(c, (const unsigned char *) secret.ptr, secret.len,
                         params)
        || !EVP_MAC_update(c, (const unsigned char *) method.ptr, method.len)
        || !EVP_MAC_update(c, (const unsigned char *) "\n", 1)
        || !EVP_MAC_update(c, (const unsigned char *) uri.ptr, uri.len)
        || !EVP_MAC_update(c, (const unsigned char *) "\n", 1)
        || !EVP_MAC_update(c, (const unsigned char *) t_text,
                           strlen(t_text))
        || !EVP_MAC_update(c, (const unsigned char *) "\n", 1))
    {
        goto done;
    }

    for (i = 0; i < nbody; i++) {
        if (body[i].len
            && !EVP_MAC_update(c, (const unsigned char *) body[i].ptr,
                               body[i].len))
        {
            goto done;
        }
    }

    if (EVP_MAC_final(c, mac, &outl, DQ_SIGN_MAC_LEN)
        && outl == DQ_SIGN_MAC_LEN)
    {
        rc = DQ_OK;
    }

done:
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    return rc;
}

int
dq_sign_header(const dq_str_t *secrets, size_t nsecrets, dq_str_t method,
               dq_str_t uri, int64_t t, const dq_str_t *body, size_t nbody,
               char *out, size_t outlen, dq_error_t *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char     mac[DQ_SIGN_MAC_LEN];
    char              t_text[24];
    size_t            n, i, j;

    if (nsecrets == 0 || nsecrets > DQ_SIGN_MAX_SECRETS || t < 0) {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "sign: 1 to %d secrets and t >= 0",
                            DQ_SIGN_MAX_SECRETS);
    }

    snprintf(t_text, sizeof(t_text), "%" PRId64, t);

    n = (size_t) snprintf(out, outlen, "t=%s", t_text);
    if (n >= outlen) {
        return dq_error_set(err, DQ_EINVAL, NULL, "sign: buffer too small");
    }

    for (i = 0; i < nsecrets; i++) {
        if (secrets[i].len == 0) {
            return dq_error_set(err, DQ_EINVAL, NULL, "sign: empty secret");
        }
        if (dq_sign_mac(secrets[i], method, uri, t_text, body, nbody, mac)
            != DQ_OK)
        {
            return dq_error_set(err, DQ_ERR, NULL, "sign: HMAC failed");
        }
        if (n + 4 + 2 * DQ_SIGN_MAC_LEN + 1 > outlen) {
            return dq_error_set(err, DQ_EINVAL, NULL,
                                "sign: buffer too small");
        }
        memcpy(out + n, ",v1=", 4);
        n += 4;
        for (j = 0; j < DQ_SIGN_MAC_LEN; j++) {
            out[n++] = hex[mac[j] >> 4];
            out[n++] = hex[mac[j] & 0xf];
        }
        out[n] = '\0';
    }

    return DQ_OK;
}

int
dq_sign_verify(const dq_str_t *secrets, size_t nsecrets, const char *value,
               size_t len, dq_str_t method, dq_str_t uri,
               const dq_str_t *body, size_t nbody, int64_t now_s,
               int64_t window_s, dq_error_t *err)
{
    return dq_sign_verify_mac(secrets, nsecrets, value, len, method, uri,
                              body, nbody, now_s, window_s, NULL, err);
}

int
dq_sign_verify_mac(const dq_str_t *secrets, size_t nsecrets,
                   const char *value, size_t len, dq_str_t method,
                   dq_str_t uri, const dq_str_t *body, size_t nbody,
                   int64_t now_s, int64_t window_s,
                   unsigned char matched[DQ_SIGN_MAC_LEN], dq_error_t *err)
{
    dq_sign_header_t  h;
    unsigned char     mac[DQ_SIGN_MAC_LEN];
    size_t            i, j;
    int               match = 0, rc;

    rc = dq_sign_parse(value, len, &h, err);
    if (rc != DQ_OK) {
        return rc;
    }

    if (h.t > now_s + window_s || h.t < now_s - window_s) {
        return dq_error_set(err, DQ_EINVAL, NULL,
                            "signature timestamp %" PRId64 " outside the "
                            "%" PRId64 " s window around %" PRId64,
                            h.t, window_s, now_s);
    }

    for (i = 0; i < nsecrets; i++) {
        if (dq_sign_mac(secrets[i], method, uri, h.t_text, body, nbody, mac)
            != DQ_OK)
        {
            return dq_error_set(err, DQ_ERR, NULL, "HMAC failed");
        }
        for (j = 0; j < h.nv1; j++) {
            /* no early exit: the time taken does not say which matched */
            int m = CRYPTO_memcmp(mac, h.v1[j], DQ_SIGN_MAC_LEN) == 0;

            match |= m;
        }
    }

    if (!match) {
        return dq_error_set(err, DQ_EINVAL, NULL, "no signature matches");
    }

    if (matched
        && dq_sign_digest(method, uri, h.t_text, body, nbody, matched)
           != DQ_OK)
    {
        return dq_error_set(err, DQ_ERR, NULL, "SHA-256 failed");
    }

    return DQ_OK;
}

int
dq_sign_digest(dq_str_t method, dq_str_t uri, const char *t_text,
               const dq_str_t *body, size_t nbody,
               unsigned char digest[DQ_SIGN_MAC_LEN])
{
    EVP_MD_CTX  *c;
    unsigned     outl = 0;
    size_t       i;
    int          rc = DQ_ERR;

    c = EVP_MD_CTX_new();
    if (c == NULL
        || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)
        || !EVP_DigestUpdate(c, method.ptr, method.len)
        || !EVP_DigestUpdate(c, "\n", 1)
        || !EVP_DigestUpdate(c, uri.ptr, uri.len)
        || !EVP_DigestUpdate(c, "\n", 1)
        || !EVP_DigestUpdate(c, t_text, strlen(t_text))
        || !EVP_DigestUpdate(c, "\n", 1))
    {
        goto done;
    }

    for (i = 0; i < nbody; i++) {
        if (body[i].len && !EVP_DigestUpdate(c, body[i].ptr, body[i].len)) {
            goto done;
        }
    }

    if (EVP_DigestFinal_ex(c, digest, &outl) && outl == DQ_SIGN_MAC_LEN) {
        rc = DQ_OK;
    }

done:
    EVP_MD_CTX_free(c);
    return rc;
}
