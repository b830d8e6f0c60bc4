/* push/ — see dq_sign.h (temporary until lib/dq_sign.c is in main). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "dq_sign.h"

int
dq_sign_header(char *buf, size_t size, const char *secret, size_t secret_len,
               const char *method, const char *uri, int64_t t,
               const char *body, size_t body_len)
{
    unsigned char  mac[EVP_MAX_MD_SIZE];
    unsigned int   mlen = 0, i;
    size_t         ml = strlen(method), ul = strlen(uri), len;
    char           ts[24], *msg;
    int            n;

    n = snprintf(ts, sizeof(ts), "%lld", (long long) t);
    len = ml + ul + (size_t) n + 3 + body_len;
    msg = malloc(len ? len : 1);
    if (msg == NULL) {
        return -1;
    }
    memcpy(msg, method, ml);
    msg[ml] = '\n';
    memcpy(msg + ml + 1, uri, ul);
    msg[ml + 1 + ul] = '\n';
    memcpy(msg + ml + ul + 2, ts, (size_t) n);
    msg[ml + ul + 2 + n] = '\n';
    if (body_len) {
        memcpy(msg + ml + ul + 3 + n, body, body_len);
    }
    if (HMAC(EVP_sha256(), secret, (int) secret_len, (unsigned char *) msg,
             len, mac, &mlen) == NULL
        || size < (size_t) n + 8 + 2 * mlen + 1)
    {
        free(msg);
        return -1;
    }
    free(msg);
    n = snprintf(buf, size, "t=%s,v1=", ts);
    for (i = 0; i < mlen; i++) {
        snprintf(buf + n + 2 * i, 3, "%02x", mac[i]);
    }
    return 0;
}
