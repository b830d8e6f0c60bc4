
/*
 * ngx_http_deferred_module: deferred_admin, an operator's actions.
 *
 *   POST ?action=retry|delete|pause|resume&queue=Q[&id=ID] with the
 *   header X-Deferred-Admin: 1 (a cross-site form or fetch cannot send it
 *   without a CORS preflight, which this location never grants)
 *
 * The op (ngx_http_deferred_status.c) first asks the queue's shard count,
 * then runs the action on every shard (a queue that is not sharded: one)
 * and answers with the largest result.
 */


#include "ngx_http_deferred_ops.h"


static ngx_int_t ngx_http_deferred_admin_send(ngx_http_deferred_op_t *op);


/* the admin action on each shard of the queue (1 when not sharded) */

static ngx_int_t
ngx_http_deferred_admin_send(ngx_http_deferred_op_t *op)
{
    int                            rc;
    u_char                         name[DQ_SHARD_NAME_MAX + 1];
    dq_str_t                       q;
    ngx_str_t                      v;
    ngx_uint_t                     i;
    ngx_http_deferred_op_cmd_t    *oc;
    ngx_http_deferred_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(op->request,
                                        ngx_http_deferred_module);
    v = op->action;

    for (i = 0; i < op->nshards; i++) {
        q.len = dq_shard_name((char *) name, sizeof(name),
                              (dq_str_t) { (char *) op->queue.data,
                                           op->queue.len }, i);
        q.ptr = (const char *) name;

        if (q.len == 0) {
            return NGX_ERROR;
        }

        oc = ngx_http_deferred_op_cmd(op, NGX_HTTP_DEFERRED_OP_ACTION, 0);
        if (oc == NULL) {
            return NGX_ERROR;
        }

        if (v.len == 5 && ngx_strncmp(v.data, "retry", 5) == 0) {
            rc = dq_cmd_requeue(&oc->cmd, q,
                                (dq_str_t) { (char *) op->id.data,
                                             op->id.len });

        } else if (v.len == 6 && ngx_strncmp(v.data, "delete", 6) == 0) {
            rc = dq_cmd_remove(&oc->cmd, q, "id",
                               (dq_str_t) { (char *) op->id.data,
                                            op->id.len },
                               1, (int64_t) dlcf->tombstone);

        } else {
            rc = dq_cmd_pause(&oc->cmd, q, v.len == 5);
        }

        if (ngx_http_deferred_op_script(op, oc, rc) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_deferred_admin_start(ngx_http_deferred_op_t *op)
{
    ngx_str_t                      v, hdr = ngx_string("X-Deferred-Admin");
    ngx_uint_t                     found;
    ngx_http_request_t            *r;

    r = op->request;

    /* a custom header: a cross-site form or fetch cannot send it without
     * a CORS preflight, which this location never grants */

    found = ngx_http_deferred_header(r, &hdr, &v) == NGX_OK
            && v.len == 1 && v.data[0] == '1';

    if (!found) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "deferred: admin request without "
                      "\"X-Deferred-Admin: 1\"");
        return NGX_HTTP_FORBIDDEN;
    }

    if (ngx_http_arg(r, (u_char *) "action", 6, &op->action) != NGX_OK
        || ngx_http_arg(r, (u_char *) "queue", 5, &v) != NGX_OK)
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    if (!dq_queue_name_valid((dq_str_t) { (char *) v.data, v.len })) {
        return NGX_HTTP_BAD_REQUEST;
    }

    op->queue.data = ngx_pstrdup(op->pool, &v);
    op->queue.len = v.len;

    if (ngx_http_arg(r, (u_char *) "id", 2, &v) == NGX_OK) {
        if (v.len == 0 || v.len > 64
            || !dq_task_name_valid((dq_str_t) { (char *) v.data, v.len }))
        {
            return NGX_HTTP_BAD_REQUEST;
        }

        op->id.data = ngx_pstrdup(op->pool, &v);
        op->id.len = v.len;
    }

    if (op->queue.data == NULL || (op->id.len && op->id.data == NULL)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v = op->action;

    if (!((v.len == 5 && ngx_strncmp(v.data, "retry", 5) == 0 && op->id.len)
          || (v.len == 6 && ngx_strncmp(v.data, "delete", 6) == 0
              && op->id.len)
          || (v.len == 5 && ngx_strncmp(v.data, "pause", 5) == 0)
          || (v.len == 6 && ngx_strncmp(v.data, "resume", 6) == 0)))
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    if (v.data[0] == 'p' || (v.data[0] == 'r' && v.len == 6)) {
        op->id.len = 0;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "deferred: admin %V queue=%V id=%V", &op->action,
                  &op->queue, &op->id);

    return NGX_OK;
}


/* once Redis is ready: first the queue's shard count (a sharded queue:
 * the action goes to every shard, ngx_http_deferred_admin_send); nothing
 * sent: op->pending stays 0 */

void
ngx_http_deferred_admin_shards(ngx_http_deferred_op_t *op)
{
    ngx_http_deferred_op_cmd_t  *oc;

    oc = ngx_http_deferred_op_cmd(op, NGX_HTTP_DEFERRED_OP_NSHARDS, 0);
    if (oc == NULL) {
        return;
    }

    op->nshards = 1;

    (void) ngx_http_deferred_op_script(op, oc,
               dq_cmd_shards(&oc->cmd, (dq_str_t) { (char *) op->queue.data,
                                                    op->queue.len }));
}


/* after each stage: the action once the shard count is in, then the
 * answer */

void
ngx_http_deferred_admin_next(ngx_http_deferred_op_t *op)
{
    ngx_str_t  body;

    if (op->stage == 0 && !op->failed) {
        /* the shard count is in: the action on every shard */
        op->stage = 1;

        if (ngx_http_deferred_admin_send(op) != NGX_OK) {
            op->failed = 1;
        }

        if (op->pending) {
            return;
        }
    }

    if (op->failed) {
        if (op->error.len) {
            ngx_str_set(&body, "{\"error\":\"RedisError\","
                               "\"message\":\"Redis answered an error\"}\n");

        } else {
            ngx_str_set(&body, "{\"error\":\"RedisError\","
                               "\"message\":\"Redis is not reachable\"}\n");
        }

        ngx_http_deferred_op_finish(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "application/json", &body);
        return;
    }

    body.data = ngx_pnalloc(op->pool, op->queue.len + op->id.len
                                      + op->action.len + 128);
    if (body.data == NULL) {
        ngx_http_deferred_op_finish(op, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "application/json", NULL);
        return;
    }

    /* queue and id were checked: no characters to escape */
    body.len = ngx_sprintf(body.data, "{\"action\":\"%V\",\"queue\":\"%V\","
                           "\"id\":\"%V\",\"done\":%s}\n",
                           &op->action, &op->queue, &op->id,
                           op->result > 0 ? "true" : "false")
               - body.data;

    ngx_http_deferred_op_finish(op, op->result > 0 || op->id.len == 0
                                    ? NGX_HTTP_OK : NGX_HTTP_NOT_FOUND,
                                "application/json", &body);
}
