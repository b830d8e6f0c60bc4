
/*
 * ngx_http_deferred_module: deferred_secret.
 *
 * A deferred POST must carry hex(HMAC-SHA256(secret, body)) in the
 * configured header (default X-Deferred-Signature), optionally prefixed
 * "sha256="; compared in constant time. OpenSSL's libcrypto does the
 * HMAC (Debian's nginx links OpenSSL already).
 */


#include "ngx_http_deferred_module.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>


ngx_int_t
ngx_http_deferred_hmac_check(ngx_http_request_t *r,
    ngx_http_deferred_loc_conf_t *dlcf, u_char *body, size_t len)
{
    u_char            mac[EVP_MAX_MD_SIZE], hex[2 * EVP_MAX_MD_SIZE];
    u_char            given[2 * EVP_MAX_MD_SIZE];
    size_t            n;
    ngx_str_t         v;
    ngx_uint_t        i;
    unsigned int      maclen;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;
    v.len = 0;
    v.data = NULL;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == dlcf->secret_header.len
            && ngx_strncasecmp(h[i].key.data, dlcf->secret_header.data,
                               h[i].key.len)
               == 0)
        {
            v = h[i].value;
            break;
        }
    }

    if (v.len > sizeof("sha256=") - 1
        && ngx_strncasecmp(v.data, (u_char *) "sha256=", 7) == 0)
    {
        v.data += 7;
        v.len -= 7;
    }

    if (HMAC(EVP_sha256(), dlcf->secret.data, (int) dlcf->secret.len,
             body, len, mac, &maclen)
        == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "deferred: HMAC failed");
        return NGX_ERROR;
    }

    n = ngx_hex_dump(hex, mac, maclen) - hex;

    if (v.len != n) {
        return NGX_DECLINED;
    }

    ngx_strlow(given, v.data, n);

    return CRYPTO_memcmp(given, hex, n) == 0 ? NGX_OK : NGX_DECLINED;
}
