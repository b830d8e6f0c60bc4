
/*
 * ngx_http_deferred_module: deferred_dashboard, an HTML page (embedded,
 * no CDN: dashboard.html, cut in two by gen_dashboard.sh) that polls the
 * status location and posts to the admin one. Nothing is asked of Redis
 * here: the page's script asks the other locations.
 */


#include "ngx_http_deferred_ops.h"
#include "ngx_http_deferred_dashboard.h"


/* the page, with the two URLs it talks to put in */

ngx_int_t
ngx_http_deferred_dashboard_send(ngx_http_request_t *r,
    ngx_http_deferred_ops_conf_t *oc)
{
    u_char     *p;
    ngx_str_t   body;
    size_t      head, tail;

    head = sizeof(ngx_http_deferred_dashboard_head) - 1;
    tail = sizeof(ngx_http_deferred_dashboard_tail) - 1;

    body.len = head + tail + oc->status_url.len * 6 + oc->admin_url.len * 6
               + sizeof("<script>var DQ_STATUS=\"\",DQ_ADMIN=\"\";</script>");
    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body.data, ngx_http_deferred_dashboard_head, head);
    p = ngx_cpymem(p, "<script>var DQ_STATUS=\"", 23);
    p = (u_char *) ngx_escape_html(p, oc->status_url.data,
                                   oc->status_url.len);
    p = ngx_cpymem(p, "\",DQ_ADMIN=\"", 12);
    p = (u_char *) ngx_escape_html(p, oc->admin_url.data, oc->admin_url.len);
    p = ngx_cpymem(p, "\";</script>", 11);
    p = ngx_cpymem(p, ngx_http_deferred_dashboard_tail, tail);

    body.len = p - body.data;

    return ngx_http_deferred_ops_send(r, NGX_HTTP_OK,
                                      "text/html; charset=utf-8", &body);
}
