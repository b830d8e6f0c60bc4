/*
 * push/ — App Engine's push delivery as a task library (libdq_push.so).
 *
 * A queue with `push_target URL` in the worker's configuration hands every
 * task to the function this library registers, DQ_PUSH_FUNCTION
 * ("dq.push"). It POSTs the task to the app at push_target + the task's
 * url, with App Engine's X-AppEngine-* headers and the task's own headers,
 * the task's payload as the body, and waits for the answer:
 *
 *   2xx + X-Deferred-Result: ok          done (acked); any other 2xx is a
 *                                        failed attempt unless the queue
 *                                        sets push_require_ack off
 *   2xx + X-Deferred-Result: permanent   dead at once (PermanentTaskFailure)
 *   408 + X-Deferred-Result: singular    retried quietly (SingularTaskFailure)
 *   anything else, refused, timed out    failed: the queue's backoff
 *
 * The function is a tasklet (DQ_FN_TASKLET): it runs on the child's libuv
 * loop and suspends on a future while libcurl's multi socket interface,
 * driven by that same loop (uv_poll per socket, one uv_timer), moves the
 * bytes. Hundreds of pushes are in flight per child (tasklet_concurrency),
 * no thread per request; connections are kept alive and reused by the
 * multi handle's connection cache.
 *
 * The payload: a push task carries its body as its one positional argument
 * (a string or bin: the Python client's pickle). Anything else is a
 * permanent failure with the reason.
 *
 * Signing: with the worker's push_secret set, every push carries
 * X-Deferred-Signature (lib/dq_sign.h: t=<unix s>,v1=<hex HMAC>)
 * over "POST\n" URI "\n" t "\n" body, URI being the request target sent
 * (push_target's path + the task's url).
 *
 * Loop: this state is per process (the worker's children load libraries
 * after fork) and belongs to the loop thread. Every handle here is
 * unref'd, so it never keeps a stopping child alive; SIGTERM/SIGINT/SIGQUIT
 * watchers (unref'd too) close the idle connections once nothing is in
 * flight, and fini frees what is left without touching the loop.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <uv.h>

#include <deferred/task.h>
#include <deferred/tasklet.h>

#include "dq_contract.h"
#include "dq_sign.h"

#define DQ__PUSH_ERRBODY   200     /* bytes of an error answer kept */
#define DQ__PUSH_MAXCONN   1024    /* connection cache of the multi handle */

/* Where the module accepts enqueues in the documented layout
 * (docs/APPENGINE.md): never a push's URL. */
#define DQ_PUSH_ENQUEUE_PREFIX "/_ngx_deferred/"

typedef struct dq__push_rt_s dq__push_rt_t;

typedef struct {
    uv_poll_t        poll;
    curl_socket_t    fd;
    dq__push_rt_t   *rt;
} dq__push_sock_t;

#define DQ__PUSH_EASY_POOL 256       /* idle easy handles kept for reuse */

struct dq__push_rt_s {
    uv_loop_t       *loop;
    CURLM           *multi;
    CURL            *pool[DQ__PUSH_EASY_POOL];   /* reset, ready to use */
    size_t           npool;
    uv_timer_t       timer;
    uv_signal_t      sigs[3];
    size_t           inflight;
    int              stopping;      /* a stop signal came: close when idle */
    int              closed;        /* handles closed (or closing) */
};

typedef struct {
    dq_future_t     *f;             /* set when the transfer ends */
    CURL            *easy;
    CURLcode         code;
    int              done;
    char             errbuf[CURL_ERROR_SIZE];
    char             body[DQ__PUSH_ERRBODY + 1];
    size_t           body_len;
    char             result[32];    /* X-Deferred-Result */
    char             error[256];    /* X-Deferred-Error */
} dq__push_xfer_t;

static dq__push_rt_t *dq__rt;       /* this process's (the loop thread's) */

/* ---------------------------------------------------- curl <-> libuv glue */

static void dq__push_check(dq__push_rt_t *rt);
static void dq__push_close(dq__push_rt_t *rt);

/* Easy handles are reused (curl_easy_reset keeps their allocations): a
 * new one per push cost about a fifth of the worker's CPU per push in
 * malloc/free (perf). */
static CURL *
dq__push_easy_get(dq__push_rt_t *rt)
{
    return rt->npool ? rt->pool[--rt->npool] : curl_easy_init();
}

static void
dq__push_easy_put(dq__push_rt_t *rt, CURL *e)
{
    if (rt->npool < DQ__PUSH_EASY_POOL && !rt->closed) {
        curl_easy_reset(e);
        rt->pool[rt->npool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

static void
dq__push_pool_free(dq__push_rt_t *rt)
{
    while (rt->npool) {
        curl_easy_cleanup(rt->pool[--rt->npool]);
    }
}

static void
dq__push_sock_free(uv_handle_t *h)
{
    free(h->data);
}

static void
dq__push_poll_cb(uv_poll_t *p, int status, int events)
{
    dq__push_sock_t *sk = p->data;
    dq__push_rt_t   *rt = sk->rt;
    int              flags = 0, running;

    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        flags |= (events & UV_READABLE) ? CURL_CSELECT_IN : 0;
        flags |= (events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0;
    }
    curl_multi_socket_action(rt->multi, sk->fd, flags, &running);
    dq__push_check(rt);
}

static int
dq__push_sock_cb(CURL *e, curl_socket_t s, int what, void *userp,
                 void *socketp)
{
    dq__push_rt_t   *rt = userp;
    dq__push_sock_t *sk = socketp;
    int              ev = 0;

    (void) e;
    if (what == CURL_POLL_REMOVE) {
        if (sk != NULL) {
            curl_multi_assign(rt->multi, s, NULL);
            if (rt->closed == 2) {        /* fini: the loop is gone */
                free(sk);
            } else {
                uv_poll_stop(&sk->poll);
                uv_close((uv_handle_t *) &sk->poll, dq__push_sock_free);
            }
        }
        return 0;
    }
    if (rt->closed == 2) {
        return -1;
    }
    if (sk == NULL) {
        sk = calloc(1, sizeof(*sk));
        if (sk == NULL) {
            return -1;
        }
        sk->fd = s;
        sk->rt = rt;
        if (uv_poll_init_socket(rt->loop, &sk->poll, s) != 0) {
            free(sk);
            return -1;
        }
        sk->poll.data = sk;
        uv_unref((uv_handle_t *) &sk->poll);
        curl_multi_assign(rt->multi, s, sk);
    }
    ev |= (what & CURL_POLL_IN) ? UV_READABLE : 0;
    ev |= (what & CURL_POLL_OUT) ? UV_WRITABLE : 0;
    uv_poll_start(&sk->poll, ev, dq__push_poll_cb);
    return 0;
}

static void
dq__push_timer_cb(uv_timer_t *t)
{
    dq__push_rt_t *rt = t->data;
    int            running;

    curl_multi_socket_action(rt->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    dq__push_check(rt);
}

static int
dq__push_timer_fn(CURLM *m, long timeout_ms, void *userp)
{
    dq__push_rt_t *rt = userp;

    (void) m;
    if (rt->closed == 2) {
        return 0;
    }
    if (timeout_ms < 0) {
        uv_timer_stop(&rt->timer);
    } else {
        /* 0 = "now": from the loop, never from inside this callback */
        uv_timer_start(&rt->timer, dq__push_timer_cb, (uint64_t) timeout_ms,
                       0);
    }
    return 0;
}

/* Finished transfers wake their tasklets. */
static void
dq__push_check(dq__push_rt_t *rt)
{
    CURLMsg         *msg;
    int              left;
    dq__push_xfer_t *x;

    while ((msg = curl_multi_info_read(rt->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &x);
        curl_multi_remove_handle(rt->multi, msg->easy_handle);
        if (x == NULL) {
            continue;
        }
        x->code = msg->data.result;
        x->done = 1;
        rt->inflight--;
        dq_future_set_int(x->f, 0);
    }
    if (rt->stopping && rt->inflight == 0) {
        dq__push_close(rt);
    }
}

static void
dq__push_sig_cb(uv_signal_t *s, int signum)
{
    dq__push_rt_t *rt = s->data;

    (void) signum;
    rt->stopping = 1;
    if (rt->inflight == 0) {
        dq__push_close(rt);
    }
}

/* Close every idle connection and handle (a stopping child); a later push
 * (there is none once the child stops) would build them again. */
static void
dq__push_close(dq__push_rt_t *rt)
{
    size_t i;

    if (rt->closed) {
        return;
    }
    rt->closed = 1;
    curl_multi_cleanup(rt->multi);    /* REMOVE for every socket */
    rt->multi = NULL;
    dq__push_pool_free(rt);
    uv_close((uv_handle_t *) &rt->timer, NULL);
    for (i = 0; i < sizeof(rt->sigs) / sizeof(rt->sigs[0]); i++) {
        uv_close((uv_handle_t *) &rt->sigs[i], NULL);
    }
}

static dq__push_rt_t *
dq__push_runtime(void)
{
    static const int signums[] = { SIGTERM, SIGINT, SIGQUIT };
    dq__push_rt_t   *rt = dq__rt;
    size_t           i;

    if (rt != NULL && !rt->closed) {
        return rt;
    }
    if (rt != NULL) {
        return NULL;                   /* stopping: no new connections */
    }
    rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        return NULL;
    }
    rt->loop = dq_tasklet_loop();
    rt->multi = curl_multi_init();
    if (rt->loop == NULL || rt->multi == NULL) {
        if (rt->multi) {
            curl_multi_cleanup(rt->multi);
        }
        free(rt);
        return NULL;
    }
    curl_multi_setopt(rt->multi, CURLMOPT_SOCKETFUNCTION, dq__push_sock_cb);
    curl_multi_setopt(rt->multi, CURLMOPT_SOCKETDATA, rt);
    curl_multi_setopt(rt->multi, CURLMOPT_TIMERFUNCTION, dq__push_timer_fn);
    curl_multi_setopt(rt->multi, CURLMOPT_TIMERDATA, rt);
    curl_multi_setopt(rt->multi, CURLMOPT_MAXCONNECTS, (long) DQ__PUSH_MAXCONN);
    uv_timer_init(rt->loop, &rt->timer);
    rt->timer.data = rt;
    uv_unref((uv_handle_t *) &rt->timer);
    for (i = 0; i < sizeof(rt->sigs) / sizeof(rt->sigs[0]); i++) {
        uv_signal_init(rt->loop, &rt->sigs[i]);
        rt->sigs[i].data = rt;
        uv_signal_start(&rt->sigs[i], dq__push_sig_cb, signums[i]);
        uv_unref((uv_handle_t *) &rt->sigs[i]);
    }
    dq__rt = rt;
    return rt;
}

/* ------------------------------------------------------------ one push */

static size_t
dq__push_write_cb(char *ptr, size_t size, size_t n, void *data)
{
    dq__push_xfer_t *x = data;
    size_t           len = size * n, room = DQ__PUSH_ERRBODY - x->body_len;

    if (room > len) {
        room = len;
    }
    memcpy(x->body + x->body_len, ptr, room);
    x->body_len += room;
    x->body[x->body_len] = '\0';
    return len;                         /* the rest is read and dropped */
}

/* Copy the value of header `name` (with its colon) if line is it. */
static void
dq__push_header_value(const char *line, size_t len, const char *name,
                      char *out, size_t size)
{
    size_t nlen = strlen(name), k = 0, v;

    if (len <= nlen || strncasecmp(line, name, nlen) != 0) {
        return;
    }
    for (v = nlen; v < len && (line[v] == ' ' || line[v] == '\t'); v++) {
    }
    for (; v < len && k < size - 1 && line[v] != '\r' && line[v] != '\n';
         v++)
    {
        out[k++] = line[v];
    }
    out[k] = '\0';
}

static size_t
dq__push_header_cb(char *ptr, size_t size, size_t n, void *data)
{
    dq__push_xfer_t *x = data;
    size_t           len = size * n;

    dq__push_header_value(ptr, len, "X-Deferred-Result:", x->result,
                          sizeof(x->result));
    dq__push_header_value(ptr, len, "X-Deferred-Error:", x->error,
                          sizeof(x->error));
    return len;
}

/* A header the task may not set: App Engine's own (only the queue sets
 * those), the signature, and what HTTP framing owns. */
static int
dq__push_header_reserved(const char *name, size_t len)
{
    static const char *const reserved[] = {
        "Content-Length", "Host", "Transfer-Encoding", "Connection",
        "Expect", "X-Deferred-Signature", NULL
    };
    size_t i;

    if (len >= 12 && strncasecmp(name, "X-AppEngine-", 12) == 0) {
        return 1;
    }
    for (i = 0; reserved[i]; i++) {
        if (strlen(reserved[i]) == len
            && strncasecmp(name, reserved[i], len) == 0)
        {
            return 1;
        }
    }
    return 0;
}

static struct curl_slist *
dq__push_add(struct curl_slist *l, int *bad, const char *fmt, ...)
    DQ_PRINTF(3, 4);

static struct curl_slist *
dq__push_add(struct curl_slist *l, int *bad, const char *fmt, ...)
{
    char               buf[9000];
    struct curl_slist *n;
    va_list            ap;
    int                len;

    if (*bad) {
        return l;
    }
    va_start(ap, fmt);
    len = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t) len >= sizeof(buf)
        || (n = curl_slist_append(l, buf)) == NULL)
    {
        *bad = 1;
        return l;
    }
    return n;
}

/* The path part of push_target ("http://h:p/base" -> "/base", no trailing
 * slash; "" when none). */
static size_t
dq__push_base_path(const char *target, const char **path)
{
    const char *p = strstr(target, "://");
    size_t      len;

    p = p ? strchr(p + 3, '/') : NULL;
    if (p == NULL) {
        *path = "";
        return 0;
    }
    len = strlen(p);
    while (len > 0 && p[len - 1] == '/') {
        len--;
    }
    *path = p;
    return len;
}

static dq_task_result_t
dq__push(dq_task_t *task, void *udata)
{
    dq__push_rt_t      *rt;
    dq__push_xfer_t     x;
    struct curl_slist  *hdrs = NULL;
    const char         *target = dq_task_push_target(task);
    const char         *secret = dq_task_push_secret(task);
    const char         *url = dq_task_url(task);
    const char         *body = NULL, *base, *hn, *hv;
    const char         *name = dq_task_name(task);
    const msgpack_object *arg;
    size_t              body_len = 0, base_len, hnl, hvl, i;
    int64_t             deadline = dq_task_push_deadline_ms(task);
    int64_t             eta = dq_task_eta_ms(task);
    long                status = 0;
    int                 bad = 0, ctype = 0, rc;
    char               *full = NULL, *uri = NULL;
    char                sig[DQ_SIGN_HEADER_MAX];
    dq_task_result_t    res;

    (void) udata;
    if (target == NULL) {
        dq_task_set_error(task, "push: queue %s has no push_target",
                          dq_task_queue(task));
        return DQ_TASK_PERMANENT;
    }
    if (dq_task_nargs(task) != 1
        || ((arg = dq_task_arg(task, 0))->type != MSGPACK_OBJECT_BIN
            && arg->type != MSGPACK_OBJECT_STR))
    {
        dq_task_set_error(task, "push: a push task carries its body as its "
                          "one argument (string or bin), this one has %zu "
                          "arguments", dq_task_nargs(task));
        return DQ_TASK_PERMANENT;
    }
    if (arg->type == MSGPACK_OBJECT_BIN) {
        body = arg->via.bin.ptr;
        body_len = arg->via.bin.size;
    } else {
        body = arg->via.str.ptr;
        body_len = arg->via.str.size;
    }
    if (!dq_url_valid(dq_str_c(url))) {
        /* "//", '%', "." or ".." in the path: the app would route on a
         * normalised path the prefix check below never saw */
        dq_task_set_error(task, "push: refusing the task URL %.200s "
                          "(\"//\", '%%', \".\" or \"..\" in its path)", url);
        return DQ_TASK_PERMANENT;
    }
    if (strncmp(url, DQ_PUSH_ENQUEUE_PREFIX,
                sizeof(DQ_PUSH_ENQUEUE_PREFIX) - 1) == 0)
    {
        dq_task_set_error(task, "push: refusing to push to %s, under the "
                          "module's enqueue prefix " DQ_PUSH_ENQUEUE_PREFIX
                          " (a push must never enqueue itself again)", url);
        return DQ_TASK_PERMANENT;
    }

    rt = dq__push_runtime();
    if (rt == NULL) {
        dq_task_set_error(task, "push: no HTTP client (out of memory or "
                          "the child is stopping)");
        return DQ_TASK_FAIL;
    }

    base_len = dq__push_base_path(target, &base);
    full = malloc(strlen(target) + strlen(url) + 1);
    uri = malloc(base_len + strlen(url) + 1);
    if (full == NULL || uri == NULL) {
        free(full);
        free(uri);
        dq_task_set_error(task, "push: out of memory");
        return DQ_TASK_FAIL;
    }
    /* target without its trailing slashes, then the task's url */
    i = strlen(target);
    while (i > 0 && target[i - 1] == '/') {
        i--;
    }
    memcpy(full, target, i);
    strcpy(full + i, url);
    memcpy(uri, base, base_len);
    strcpy(uri + base_len, url);

    hdrs = dq__push_add(hdrs, &bad, "X-AppEngine-QueueName: %s",
                        dq_task_queue(task));
    hdrs = dq__push_add(hdrs, &bad, "X-AppEngine-TaskName: %s",
                        name ? name : dq_task_id(task));
    hdrs = dq__push_add(hdrs, &bad, "X-AppEngine-TaskRetryCount: %lld",
                        (long long) dq_task_retry_count(task));
    hdrs = dq__push_add(hdrs, &bad, "X-AppEngine-TaskExecutionCount: %lld",
                        (long long) dq_task_execution_count(task));
    hdrs = dq__push_add(hdrs, &bad, "X-AppEngine-TaskETA: %lld.%06lld",
                        (long long) (eta / 1000),
                        (long long) (eta % 1000) * 1000);
    for (i = 0; dq_task_header_at(task, i, &hn, &hnl, &hv, &hvl) == DQ_OK;
         i++)
    {
        if (dq__push_header_reserved(hn, hnl)) {
            continue;
        }
        if (hnl == 12 && strncasecmp(hn, "Content-Type", 12) == 0) {
            ctype = 1;
        }
        hdrs = dq__push_add(hdrs, &bad, "%.*s: %.*s", (int) hnl, hn,
                            (int) hvl, hv);
    }
    if (!ctype) {
        hdrs = dq__push_add(hdrs, &bad,
                            "Content-Type: application/octet-stream");
    }
    hdrs = dq__push_add(hdrs, &bad, "Expect:");   /* no 100-continue */
    if (secret != NULL && !bad) {
        dq_str_t   sec = dq_str_c(secret), b = { body, body_len };
        dq_error_t err;

        memset(&err, 0, sizeof(err));
        char       ctx[640];

        /* a push's signed string starts "push\n<task name>\n": never a
         * valid enqueue signature (whose method has no newline), and
         * bound to the task it names (X-AppEngine-TaskName) */
        if ((size_t) snprintf(ctx, sizeof(ctx), "push\n%s\nPOST",
                              name ? name : dq_task_id(task))
            >= sizeof(ctx))
        {
            dq_task_set_error(task, "push: task name too long to sign");
            res = DQ_TASK_PERMANENT;
            goto out;
        }
        if (dq_sign_header(&sec, 1, dq_str_c(ctx), dq_str_c(uri),
                           (int64_t) time(NULL), &b, 1, sig, sizeof(sig),
                           &err)
            != DQ_OK)
        {
            dq_task_set_error(task, "push: cannot sign: %s", err.msg);
            res = DQ_TASK_FAIL;
            goto out;
        }
        hdrs = dq__push_add(hdrs, &bad, DQ_SIGN_HEADER ": %s", sig);
    }
    if (bad) {
        res = DQ_TASK_FAIL;
        dq_task_set_error(task, "push: cannot build the request headers");
        goto out;
    }

    memset(&x, 0, sizeof(x));
    x.easy = dq__push_easy_get(rt);
    x.f = dq_future_new("push");
    if (x.easy == NULL || x.f == NULL) {
        res = DQ_TASK_FAIL;
        dq_task_set_error(task, "push: out of memory");
        if (x.easy) {
            dq__push_easy_put(rt, x.easy);
        }
        dq_future_unref(x.f);
        goto out;
    }
    curl_easy_setopt(x.easy, CURLOPT_URL, full);
    curl_easy_setopt(x.easy, CURLOPT_POST, 1L);
    curl_easy_setopt(x.easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(x.easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t) body_len);
    curl_easy_setopt(x.easy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(x.easy, CURLOPT_TIMEOUT_MS, (long) deadline);
    curl_easy_setopt(x.easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) (deadline < 10000 ? deadline : 10000));
    curl_easy_setopt(x.easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x.easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x.easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(x.easy, CURLOPT_ERRORBUFFER, x.errbuf);
    curl_easy_setopt(x.easy, CURLOPT_WRITEFUNCTION, dq__push_write_cb);
    curl_easy_setopt(x.easy, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(x.easy, CURLOPT_HEADERFUNCTION, dq__push_header_cb);
    curl_easy_setopt(x.easy, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(x.easy, CURLOPT_PRIVATE, &x);
    curl_easy_setopt(x.easy, CURLOPT_USERAGENT, "AppEngine-Google; "
                     "(+http://code.google.com/appengine) ngx_deferred-push");

    if (curl_multi_add_handle(rt->multi, x.easy) != CURLM_OK) {
        dq__push_easy_put(rt, x.easy);
        dq_future_unref(x.f);
        res = DQ_TASK_FAIL;
        dq_task_set_error(task, "push: cannot start the request");
        goto out;
    }
    rt->inflight++;

    rc = dq_future_wait(x.f);
    if (!x.done) {
        /* canceled (the queue's timeout, or the runtime stopping) */
        curl_multi_remove_handle(rt->multi, x.easy);
        rt->inflight--;
        dq__push_easy_put(rt, x.easy);
        dq_future_unref(x.f);
        if (rt->stopping && rt->inflight == 0) {
            dq__push_close(rt);
        }
        res = DQ_TASK_FAIL;
        dq_task_set_error(task, "push to %s canceled: %s", full,
                          dq_tasklet_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(x.easy, CURLINFO_RESPONSE_CODE, &status);
    dq__push_easy_put(rt, x.easy);
    dq_future_unref(x.f);

    if (x.code != CURLE_OK) {
        res = DQ_TASK_FAIL;
        dq_task_set_error(task, "push to %s failed: %s%s%s", full,
                          curl_easy_strerror(x.code), x.errbuf[0] ? ": " : "",
                          x.errbuf);
    } else if (status >= 200 && status < 300) {
        if (strcasecmp(x.result, "permanent") == 0) {
            res = DQ_TASK_PERMANENT;
            dq_task_set_error(task, "PermanentTaskFailure (%s answered "
                              "%ld): %s", full, status,
                              x.error[0] ? x.error : x.body);
        } else if (strcasecmp(x.result, "ok") != 0
                   && dq_task_push_require_ack(task))
        {
            /* push_require_ack: a 2xx from a route that is not the
             * deferred handler (a static page, a proxy's error page) ran
             * nothing */
            res = DQ_TASK_FAIL;
            dq_task_set_error(task, "push to %s: HTTP %ld without "
                              "X-Deferred-Result: ok: not the deferred "
                              "handler (push_require_ack)", full, status);
        } else {
            res = DQ_TASK_OK;
        }
    } else if (status == 408 && strcasecmp(x.result, "singular") == 0) {
        res = DQ_TASK_RETRY_QUIET;
        dq_task_set_error(task, "SingularTaskFailure: %s",
                          x.error[0] ? x.error : x.body);
    } else {
        res = DQ_TASK_FAIL;
        dq_task_set_error(task, "push to %s: HTTP %ld: %s", full, status,
                          x.body);
    }

out:
    curl_slist_free_all(hdrs);
    free(full);
    free(uri);
    return res;
}

/* ------------------------------------------------------------ library */

static int
dq__push_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        dq_log(NULL, DQ_LOG_ERROR, "push: curl_global_init failed");
        return 1;
    }
    return 0;
}

static void
dq__push_fini(void)
{
    dq__push_rt_t *rt = dq__rt;

    if (rt != NULL) {
        if (!rt->closed) {
            /* the loop has ended: free without running it (the stops
             * are synchronous; signal handles leave libuv's global list) */
            rt->closed = 2;
            curl_multi_cleanup(rt->multi);
            dq__push_pool_free(rt);
            uv_timer_stop(&rt->timer);
            for (size_t i = 0; i < sizeof(rt->sigs) / sizeof(rt->sigs[0]);
                 i++)
            {
                uv_signal_stop(&rt->sigs[i]);
            }
        }
        free(rt);
        dq__rt = NULL;
    }
    curl_global_cleanup();
}

static const dq_function_t dq__push_functions[] = {
    { DQ_PUSH_FUNCTION, dq__push, DQ_FN_TASKLET, NULL },
    { NULL, NULL, 0, NULL }
};

DQ_LIBRARY("push", dq__push_functions, NULL, dq__push_init, dq__push_fini);
