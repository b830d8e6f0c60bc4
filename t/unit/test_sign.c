/*
 * Request signing (lib/dq_sign.c): a known vector computed with
 * `openssl dgst -sha256 -hmac`, the body in pieces, rotation (two v1=
 * values, two secrets), the window, another URI or method, malformed
 * headers.
 */
#include <stdio.h>
#include <string.h>

#include "dq_sign.h"
#include "tap.h"

#define URI   "/_ah/queue/deferred"
#define BODY  "{\"func\":\"f\"}"
#define MAC_S3CRET \
    "66156a8e9ff88790f98415fa50f046f04ed8455c9a50d0f8ba18449f3e6f8c54"
#define MAC_NEW \
    "154c19848334dcf039b7370d433d5721bc01c780b049dabce3af050c7c1ba31f"

static int
verify(const char *hdr, const dq_str_t *secrets, size_t n, const char *uri,
       const char *method, int64_t now, dq_error_t *err)
{
    dq_str_t body = dq_str_lit(BODY);

    return dq_sign_verify(secrets, n, hdr, hdr ? strlen(hdr) : 0,
                          dq_str_c(method), dq_str_c(uri), &body, 1, now,
                          DQ_SIGN_WINDOW_S, err);
}

int
main(void)
{
    dq_str_t    s3 = dq_str_lit("s3cret"), nw = dq_str_lit("new");
    dq_str_t    both[2], pieces[3];
    char        out[DQ_SIGN_HEADER_MAX];
    dq_error_t  err;
    dq_sign_header_t h;

    both[0] = nw;
    both[1] = s3;

    /* the header a caller sends equals openssl's */
    pieces[0] = dq_str_lit("{\"fu");
    pieces[1] = dq_str_lit("");
    pieces[2] = dq_str_lit("nc\":\"f\"}");
    is_int(dq_sign_header(&s3, 1, dq_str_lit("POST"), dq_str_lit(URI),
                          1700000000, pieces, 3, out, sizeof(out), &err),
           DQ_OK, "sign in pieces");
    is_str(out, "t=1700000000,v1=" MAC_S3CRET, "same HMAC as openssl");

    is_int(dq_sign_header(both, 2, dq_str_lit("POST"), dq_str_lit(URI),
                          1700000000, pieces, 3, out, sizeof(out), &err),
           DQ_OK, "sign with two secrets");
    is_str(out, "t=1700000000,v1=" MAC_NEW ",v1=" MAC_S3CRET,
           "one v1 per secret");

    /* verify */
    is_int(verify("t=1700000000,v1=" MAC_S3CRET, &s3, 1, URI, "POST",
                  1700000000, &err), DQ_OK, "valid");
    is_int(verify(" t=1700000000 , v1=" MAC_S3CRET " ", &s3, 1, URI, "POST",
                  1700000100, &err), DQ_OK, "spaces, 100 s later");
    is_int(verify("t=1700000000,v1=" MAC_S3CRET, both, 2, URI, "POST",
                  1700000000, &err), DQ_OK, "old signature, two secrets");
    is_int(verify("t=1700000000,v1=" MAC_NEW, both, 2, URI, "POST",
                  1700000000, &err), DQ_OK, "new signature, two secrets");
    is_int(verify("t=1700000000,v0=zz,v1=" MAC_NEW ",v1=" MAC_S3CRET, &s3, 1,
                  URI, "POST", 1700000000, &err), DQ_OK,
           "two v1, one matches; unknown element ignored");
    is_int(verify("t=1700000000,v1=" MAC_NEW, &s3, 1, URI, "POST",
                  1700000000, &err), DQ_EINVAL, "wrong secret refused");
    is_str(err.msg, "no signature matches", "says so");
    is_int(verify("t=1700000000,v1=" MAC_S3CRET, &s3, 1, URI, "POST",
                  1700000301, &err), DQ_EINVAL, "301 s later: stale");
    ok(strstr(err.msg, "window") != NULL, "says window: %s", err.msg);
    is_int(verify("t=1700000000,v1=" MAC_S3CRET, &s3, 1, URI, "POST",
                  1699999699, &err), DQ_EINVAL, "301 s early: refused");
    is_int(verify("t=1700000000,v1=" MAC_S3CRET, &s3, 1, "/other", "POST",
                  1700000000, &err), DQ_EINVAL, "another URI refused");
    is_int(verify("t=1700000000,v1=" MAC_S3CRET, &s3, 1, URI, "PUT",
                  1700000000, &err), DQ_EINVAL, "another method refused");
    is_int(verify("t=1700000001,v1=" MAC_S3CRET, &s3, 1, URI, "POST",
                  1700000000, &err), DQ_EINVAL, "another t refused");

    /* malformed */
    is_int(verify(NULL, &s3, 1, URI, "POST", 1700000000, &err), DQ_EINVAL,
           "missing header");
    is_int(verify("v1=" MAC_S3CRET, &s3, 1, URI, "POST", 1700000000, &err),
           DQ_EINVAL, "no t");
    is_int(verify("t=1700000000", &s3, 1, URI, "POST", 1700000000, &err),
           DQ_EINVAL, "no v1");
    is_int(verify("t=17e8,v1=" MAC_S3CRET, &s3, 1, URI, "POST", 1700000000,
                  &err), DQ_EINVAL, "t not digits");
    is_int(verify("t=-1,v1=" MAC_S3CRET, &s3, 1, URI, "POST", 1700000000,
                  &err), DQ_EINVAL, "negative t");
    is_int(verify("t=1700000000,v1=66156a8e", &s3, 1, URI, "POST",
                  1700000000, &err), DQ_EINVAL, "short v1");
    is_int(verify("t=1700000000,v1=" MAC_S3CRET "00", &s3, 1, URI, "POST",
                  1700000000, &err), DQ_EINVAL, "long v1");
    is_int(verify("t=1,t=1700000000,v1=" MAC_S3CRET, &s3, 1, URI, "POST",
                  1700000000, &err), DQ_EINVAL, "two t");
    is_int(verify("sha256=" MAC_S3CRET, &s3, 1, URI, "POST",
                  1700000000, &err), DQ_EINVAL, "the old body-only format");
    is_int(verify("t=99999999999999999999,v1=" MAC_S3CRET, &s3, 1, URI,
                  "POST", 1700000000, &err), DQ_EINVAL, "t overflow");
    {
        static const char nine[] = "t=1,v1=" MAC_S3CRET ",v1=" MAC_S3CRET
            ",v1=" MAC_S3CRET ",v1=" MAC_S3CRET ",v1=" MAC_S3CRET ",v1="
            MAC_S3CRET ",v1=" MAC_S3CRET ",v1=" MAC_S3CRET ",v1=" MAC_S3CRET;
        static const char empty[] = "t=1,,v1=" MAC_S3CRET ",";

        is_int(dq_sign_parse(nine, sizeof(nine) - 1, &h, &err), DQ_EINVAL,
               "nine v1 refused");
        is_int(dq_sign_parse(empty, sizeof(empty) - 1, &h, &err), DQ_OK,
               "empty elements skipped");
    }
    is_int(dq_sign_header(&s3, 1, dq_str_lit("POST"), dq_str_lit(URI), 1,
                          pieces, 3, out, 20, &err), DQ_EINVAL,
           "small buffer refused");

    return done_testing();
}
