/*
 * The tasklet runtime as an embedding program sees it: the few calls the
 * worker (worker/tasklet_task.c) makes beyond include/deferred/tasklet.h.
 * Nothing here knows the worker: the runtime keeps an opaque host pointer
 * per thread, takes its Redis transport as a function, and can cancel a
 * tree of tasklets. Tests and the microbenchmark use the same calls.
 */
#ifndef DQ_TASKLET_HOST_H
#define DQ_TASKLET_HOST_H

#include <deferred/tasklet.h>

/*
 * Cancel the tasklets started in ctx (the worker's run time limit): the
 * ones suspended in a wait resume with `code` (the futures they wait on
 * are left alone: others may share them), the sleeps started in ctx end
 * with `code` (a flow exception: the caller reports the cancellation
 * itself), and from now on any wait of theirs on a future that is not
 * done returns `code` at once. Commands already sent still complete (or
 * time out); the tree's toplevel completes once they have.
 */
void dq__context_cancel(dq_context_t *ctx, int code, const char *msg);
/* A toplevel tasklet, also handing back its context (one reference). */
dq_future_t *dq__toplevel_start(dq_tasklet_fn fn, void *arg, const char *name,
                                const char *file, int line, const char *func,
                                dq_context_t **ctx_out);

/*
 * A Redis transport other than a raw redisAsyncContext (the worker's
 * dq_conn_t, with its timeouts and reconnects): send returns 0 if the
 * command went out (arguments copied), and then calls dq__redis_reply(op,
 * reply or NULL, error text) exactly once; non-zero if not connected.
 */
struct redisReply;
typedef int (*dq__redis_send_fn)(void *conn, int argc, const char **argv,
                                 const size_t *argvlen, void *op);
void dq__tasklet_set_redis_sender(dq__redis_send_fn fn, void *conn);
void dq__redis_reply(void *op, const struct redisReply *reply,
                     const char *errstr);

/* The embedding program's per-thread state (NULL until set; the runtime
 * never looks inside). Setting it needs the thread's runtime to exist. */
void *dq__tasklet_host(void);
void dq__tasklet_set_host(void *host);

#endif /* DQ_TASKLET_HOST_H */
