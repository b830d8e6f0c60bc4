/*
 * deferred-worker — the master: nginx's process model for the worker.
 *
 * The master forks N children (dq_child_main), then sits in one loop of
 * sigtimedwait(): every signal it cares about stays blocked and is taken
 * synchronously, so there are no signal handlers at all and no race
 * between "flag set" and "go to sleep". The loop's timeout is the nearest
 * deadline it owns (a respawn after backoff, the end of the stop grace).
 * It runs no event loop, loads no task library and opens no Redis
 * connection: a child builds all of that itself after fork, from a
 * configuration the master only ever replaces, never edits.
 *
 *   SIGCHLD          reap; what a dead child held goes back at once
 *                    (held.c: never-started tasks released uncharged,
 *                    started ones failed "child killed by signal N"); a
 *                    child that died unasked is logged (signal or
 *                    status, tasks it held) and respawned — at once if it
 *                    lived long enough or asked to be replaced, else after
 *                    a doubling backoff (100 ms .. 10 s)
 *   SIGTERM, SIGINT  graceful stop: children stop claiming, finish within
 *                    `grace`, release unstarted leases; SIGKILL after
 *                    grace + 5 s; exit 0 when all are gone
 *   SIGQUIT          fast stop: SIGQUIT to children (they release and go)
 *   SIGHUP           reload: read the config again (a bad one is logged
 *                    and ignored), then for each old child: start a new
 *                    one, SIGTERM the old one, wait for it to exit
 *   SIGUSR1          reopen the master's log, pass SIGUSR1 on
 *
 * Slots: one per child process, alive or waiting for respawn. A slot
 * belongs to a generation (bumped by each reload); old-generation slots are
 * drained one at a time and never respawned.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "master.h"
#include "notify.h"

#define DQ_MAX_SLOTS        (2 * 1024 + 8)
#define DQ_BACKOFF_MIN_MS   100
#define DQ_BACKOFF_MAX_MS   10000
#define DQ_STABLE_MS        5000     /* lived this long: no backoff */
#define DQ_KILL_MARGIN_MS   5000     /* after grace, before SIGKILL */

/* A configuration shared by the master (the current one) and the children
 * spawned with it: a child of an older generation is recovered with the
 * Redis address, password and db it was spawned with (held.c), not with
 * those of a reload since. */
typedef struct {
    dq_worker_conf_t *conf;
    int               refs;
} dq__cref_t;

typedef struct {
    int       used;
    pid_t     pid;          /* 0: waiting to be (re)spawned */
    dq__cref_t *cref;       /* the configuration it was spawned with */
    unsigned  gen;
    int       number;       /* child number for logs, unique per master */
    int       stopping;     /* we asked it to stop */
    uint64_t  started;      /* monotonic ms */
    pid_t     stalled;      /* SIGKILLed for a stalled loop */
    uint64_t  respawn_at;   /* when pid == 0 */
    int       backoff_ms;
    dq_held_t *held;        /* tasks the child holds (shared, held.c) */
    size_t    nheld;
} dq_slot_t;

typedef struct {
    dq_worker_conf_t  *conf;          /* == cref->conf */
    dq__cref_t        *cref;
    dq_conf_loader_fn  reload;
    void              *udata;
    dq_slot_t         *slots;
    unsigned           gen;
    int                numbers;
    int                stopping;      /* 0, SIGTERM or SIGQUIT */
    int                stop_sig;      /* the signal that asked it */
    uint64_t           stop_at;       /* when (dq__now) */
    int                killed;        /* children SIGKILLed at the stop */
    uint64_t           kill_at;
    pid_t              draining;      /* old child being replaced */
    uint64_t           drain_kill_at; /* SIGKILL it if still there */
    sigset_t           sigs;
    sigset_t           oldmask;
} dq_master_t;

static dq_child_stats_t  dq__private_stats;
static dq_child_stats_t *dq__stats_base;   /* shared, DQ_MAX_SLOTS */
static dq_child_stats_t *dq__my_stats = &dq__private_stats;

dq_child_stats_t *
dq_child_stats(void)
{
    return dq__my_stats;
}

/* The demoted DQ_FN_LOOP functions (master.h): hashes, filled in order
 * with compare-and-swap, never emptied; shared when a master runs. */
static uint64_t  dq__private_demoted[DQ_LOOP_DEMOTED_MAX];
static uint64_t *dq__demoted = dq__private_demoted;

static uint64_t
dq__fn_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;      /* FNV-1a */

    while (*s) {
        h = (h ^ (unsigned char) *s++) * 1099511628211ULL;
    }
    return h ? h : 1;                           /* 0 marks a free slot */
}

int
dq_loop_demote(const char *func)
{
    uint64_t h = dq__fn_hash(func), cur;
    size_t   i;

    for (i = 0; i < DQ_LOOP_DEMOTED_MAX; i++) {
        cur = 0;
        if (__atomic_compare_exchange_n(&dq__demoted[i], &cur, h, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        {
            return 1;
        }
        if (cur == h) {
            return 0;
        }
    }
    return 0;                   /* full: this child's own flag still holds */
}

int
dq_loop_is_demoted(const char *func)
{
    uint64_t h = dq__fn_hash(func), cur;
    size_t   i;

    for (i = 0; i < DQ_LOOP_DEMOTED_MAX; i++) {
        cur = __atomic_load_n(&dq__demoted[i], __ATOMIC_RELAXED);
        if (cur == h) {
            return 1;
        }
        if (cur == 0) {
            return 0;
        }
    }
    return 0;
}

void
dq_loop_enter(const char *func)
{
    char   *d = dq__my_stats->on_loop;
    size_t  n;

    if (func == NULL) {
        d[0] = '\0';
        return;
    }
    n = strlen(func);
    n = n < DQ_LOOP_FN_MAX - 1 ? n : DQ_LOOP_FN_MAX - 1;
    memcpy(d, func, n);
    d[n] = '\0';
}

static uint64_t
dq__now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* ----------------------------------------------------------- pid file */

static int
dq__pid_write(const char *path)
{
    char  tmp[4096], buf[32];
    int   fd, n;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp)) {
        dq_log_error("pid file path too long: %s", path);
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        dq_log_error("cannot create pid file \"%s\": %s", tmp,
                     strerror(errno));
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long) getpid());
    if (write(fd, buf, (size_t) n) != n || close(fd) != 0) {
        dq_log_error("cannot write pid file \"%s\": %s", tmp,
                     strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        dq_log_error("cannot rename \"%s\" to \"%s\": %s", tmp, path,
                     strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Remove the pid file only if it still names us. */
static void
dq__pid_remove(const char *path)
{
    char  buf[32] = "";
    FILE *f;

    if (path == NULL) {
        return;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    if (fgets(buf, sizeof(buf), f) && atol(buf) == (long) getpid()) {
        unlink(path);
    }
    fclose(f);
}

/* -------------------------------------------------------------- slots */

static dq_slot_t *
dq__slot_new(dq_master_t *m)
{
    int i;

    for (i = 0; i < DQ_MAX_SLOTS; i++) {
        if (!m->slots[i].used) {
            dq_held_t *held = m->slots[i].held;
            size_t     nheld = m->slots[i].nheld;

            memset(&m->slots[i], 0, sizeof(m->slots[i]));
            m->slots[i].held = held;        /* mapped once, kept */
            m->slots[i].nheld = nheld;
            m->slots[i].used = 1;
            m->slots[i].gen = m->gen;
            m->slots[i].number = ++m->numbers;
            return &m->slots[i];
        }
    }
    dq_log_error("no free child slot (more than %d children)", DQ_MAX_SLOTS);
    return NULL;
}

static void
dq__cref_put(dq__cref_t *c)
{
    if (c != NULL && --c->refs == 0) {
        dq_conf_free(c->conf);
        free(c->conf);
        free(c);
    }
}

static int
dq__spawn(dq_master_t *m, dq_slot_t *s)
{
    pid_t             pid;
    int               idx = (int) (s - m->slots);
    dq_child_stats_t *st = &dq__stats_base[idx];
    char              prefix[32];

    __atomic_store_n(&st->held, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&st->done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&st->alive, 0, __ATOMIC_RELAXED);
    st->on_loop[0] = '\0';
    if (s->held == NULL || s->nheld < dq_held_size(m->conf)) {
        dq_held_unmap(s->held, s->nheld);
        s->nheld = dq_held_size(m->conf);
        s->held = dq_held_map(s->nheld);
        if (s->held == NULL) {
            dq_log_warn("cannot map the held-task table of child %d: if it "
                        "dies, its tasks return when their leases expire",
                        s->number);
            s->nheld = 0;
        }
    }
    if (s->held != NULL) {
        memset(s->held, 0, s->nheld * sizeof(dq_held_t));
    }

    pid = fork();
    if (pid < 0) {
        dq_log_error("fork: %s", strerror(errno));
        s->pid = 0;
        s->respawn_at = dq__now() + DQ_BACKOFF_MAX_MS;
        return -1;
    }
    if (pid == 0) {
        struct sigaction sa;
        int              sig;
        pid_t            master = getppid();

        /* the child starts from a clean signal state: libuv installs its
         * own handlers for what it watches */
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (sig = 1; sig < NSIG; sig++) {
            if (sigismember(&m->sigs, sig) == 1) {
                sigaction(sig, &sa, NULL);
            }
        }
        sigprocmask(SIG_SETMASK, &m->oldmask, NULL);
        /* a master killed with -9 takes its children down gracefully */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != master) {
            _exit(0);
        }
        dq__my_stats = st;
        dq_held_use(s->held, s->nheld);
        snprintf(prefix, sizeof(prefix), "child %d", s->number);
        dq_log_set_prefix(prefix);
        exit(dq_child_main(m->conf, s->number));
    }

    s->pid = pid;
    s->started = dq__now();
    dq__cref_put(s->cref);
    s->cref = m->cref;
    m->cref->refs++;
    s->respawn_at = 0;
    s->stopping = 0;
    dq_log_info("started child %d (pid %ld)", s->number, (long) pid);
    return 0;
}

static int
dq__count(dq_master_t *m, unsigned gen, int alive_only)
{
    int i, n = 0;

    for (i = 0; i < DQ_MAX_SLOTS; i++) {
        if (m->slots[i].used && m->slots[i].gen == gen
            && (!alive_only || m->slots[i].pid > 0))
        {
            n++;
        }
    }
    return n;
}

static int
dq__alive(dq_master_t *m)
{
    int i, n = 0;

    for (i = 0; i < DQ_MAX_SLOTS; i++) {
        if (m->slots[i].used && m->slots[i].pid > 0) {
            n++;
        }
    }
    return n;
}

static void
dq__signal_all(dq_master_t *m, int sig)
{
    int i;

    for (i = 0; i < DQ_MAX_SLOTS; i++) {
        if (m->slots[i].used && m->slots[i].pid > 0) {
            kill(m->slots[i].pid, sig);
            if (sig == SIGTERM || sig == SIGQUIT) {
                m->slots[i].stopping = 1;
            }
        }
    }
}

static void
dq__describe(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status)) {
        snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
    } else if (WIFEXITED(status)) {
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    } else {
        snprintf(buf, len, "ended with wait status %d", status);
    }
}

static void
dq__reap(dq_master_t *m)
{
    pid_t             pid;
    int               status, i, clean;
    dq_slot_t        *s;
    dq_child_stats_t *st;
    uint64_t          now, lived, deadline = 0;  /* of handing back */
    char              how[128], what[640];
    long long         done;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        s = NULL;
        for (i = 0; i < DQ_MAX_SLOTS; i++) {
            if (m->slots[i].used && m->slots[i].pid == pid) {
                s = &m->slots[i];
                break;
            }
        }
        if (s == NULL) {
            continue;
        }
        st = &dq__stats_base[i];
        done = (long long) __atomic_load_n(&st->done, __ATOMIC_RELAXED);
        now = dq__now();
        lived = now - s->started;
        dq__describe(status, how, sizeof(how));
        clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!clean && st->on_loop[0] != '\0') {
            /* it died inside a DQ_FN_LOOP call (a call that never
             * returned stalls the loop until dq__check_stalls kills the
             * child): no child runs that function on its loop again */
            st->on_loop[DQ_LOOP_FN_MAX - 1] = '\0';
            dq_log_error("child %d (pid %ld) died while function \"%s\" "
                         "(flagged DQ_FN_LOOP) was running on its loop "
                         "thread: it runs on the pool in every child from "
                         "now on", s->number, (long) pid, st->on_loop);
            (void) dq_loop_demote(st->on_loop);
            st->on_loop[0] = '\0';
        }
        /* what it held goes back now, not when the leases expire */
        if (deadline == 0) {
            deadline = dq__now() + DQ_HELD_BUDGET_MS;
        }
        dq_held_recover(s->cref ? s->cref->conf : m->conf, s->held,
                        s->nheld, s->number, how, deadline, what,
                        sizeof(what));
        dq__cref_put(s->cref);
        s->cref = NULL;
        s->pid = 0;
        if (pid == m->draining) {
            m->draining = 0;
        }

        if (s->stopping || m->stopping || s->gen != m->gen) {
            if (clean) {
                dq_log_info("child %d (pid %ld) %s after %lld tasks",
                            s->number, (long) pid, how, done);
            } else {
                dq_log_warn("child %d (pid %ld) %s while stopping, %s, "
                            "after %lld tasks", s->number, (long) pid, how,
                            what, done);
            }
            s->used = 0;
            continue;
        }

        if (WIFEXITED(status) && WEXITSTATUS(status) == DQ_CHILD_EXIT_REPLACE)
        {
            dq_log_warn("child %d (pid %ld) asked to be replaced (a task ran "
                        "past its timeout), after %lld tasks; respawning",
                        s->number, (long) pid, done);
            s->backoff_ms = 0;
        } else {
            if (lived >= DQ_STABLE_MS) {
                s->backoff_ms = 0;
            } else {
                s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2
                                              : DQ_BACKOFF_MIN_MS;
                if (s->backoff_ms > DQ_BACKOFF_MAX_MS) {
                    s->backoff_ms = DQ_BACKOFF_MAX_MS;
                }
            }
            dq_log_error("child %d (pid %ld) %s, %s, after %lld tasks; "
                         "respawning in %d ms", s->number, (long) pid, how,
                         what, done, s->backoff_ms);
        }
        s->respawn_at = now + (uint64_t) s->backoff_ms;
        if (s->respawn_at == 0) {
            s->respawn_at = 1;
        }
    }
}

/* Respawn due slots of the current generation. */
/* Children whose loop stopped running (their live timer's stamp is
 * DQ_CHILD_STALL_MS old: a tasklet that never yields, a deadlock, SIGSTOP)
 * are SIGKILLed; reaping hands their tasks back and respawns them. 1 while
 * every child is fresh (the systemd watchdog is pinged only then). */
static int
dq__check_stalls(dq_master_t *m, uint64_t now)
{
    int               i, fresh = 1;
    int64_t           alive;
    uint64_t          last;
    dq_slot_t        *s;

    for (i = 0; i < DQ_MAX_SLOTS; i++) {
        s = &m->slots[i];
        if (!s->used || s->pid <= 0 || s->stopping) {
            continue;
        }
        alive = __atomic_load_n(&dq__stats_base[i].alive, __ATOMIC_RELAXED);
        last = alive > 0 && (uint64_t) alive > s->started ? (uint64_t) alive
                                                          : s->started;
        if (now < last + DQ_CHILD_STALL_MS) {
            continue;
        }
        fresh = 0;
        if (s->stalled != s->pid) {
            dq_log_error("child %d (pid %ld): its loop has not run for "
                         "%llu ms: SIGKILL (its tasks are handed back, a "
                         "new child starts)", s->number, (long) s->pid,
                         (unsigned long long) (now - last));
            kill(s->pid, SIGKILL);
            s->stalled = s->pid;
        }
    }
    return fresh;
}

static void
dq__respawn(dq_master_t *m, uint64_t now)
{
    int i;

    for (i = 0; i < DQ_MAX_SLOTS; i++) {
        dq_slot_t *s = &m->slots[i];

        if (s->used && s->pid == 0 && s->gen == m->gen
            && s->respawn_at <= now)
        {
            s->number = ++m->numbers;
            dq__spawn(m, s);
        }
    }
}

/* Rolling replacement after a reload: while an old child is alive, make
 * sure a new one runs in its place, then stop the old one and wait. */
static void
dq__roll(dq_master_t *m)
{
    int        i, want = dq_conf_processes(m->conf);
    dq_slot_t *s, *old = NULL;

    if (m->stopping) {
        return;
    }
    if (m->draining) {
        if (dq__now() >= m->drain_kill_at) {
            dq_log_error("reload: old child (pid %ld) still running past "
                         "its grace: SIGKILL", (long) m->draining);
            kill(m->draining, SIGKILL);
            m->drain_kill_at = dq__now() + 60000;
        }
        return;
    }
    for (i = 0; i < DQ_MAX_SLOTS; i++) {
        s = &m->slots[i];
        if (s->used && s->gen != m->gen) {
            if (s->pid == 0) {
                s->used = 0;          /* was waiting for respawn: drop */
                continue;
            }
            if (old == NULL && !s->stopping) {
                old = s;
            }
        }
    }
    if (old == NULL) {
        /* reload done (or none): top up / trim to the configured number */
        while (dq__count(m, m->gen, 0) < want) {
            s = dq__slot_new(m);
            if (s == NULL || dq__spawn(m, s) != 0) {
                break;
            }
        }
        for (i = DQ_MAX_SLOTS - 1; i >= 0 && dq__count(m, m->gen, 0) > want;
             i--)
        {
            s = &m->slots[i];
            if (s->used && s->gen == m->gen && s->pid > 0 && !s->stopping) {
                dq_log_info("stopping child %d (pid %ld): fewer processes "
                            "configured", s->number, (long) s->pid);
                kill(s->pid, SIGTERM);
                s->stopping = 1;
                s->gen = m->gen - 1;   /* no longer counted */
            }
        }
        return;
    }
    if (dq__count(m, m->gen, 0) < want) {
        s = dq__slot_new(m);
        if (s) {
            dq__spawn(m, s);
        }
    }
    dq_log_info("reload: stopping old child %d (pid %ld)", old->number,
                (long) old->pid);
    kill(old->pid, SIGTERM);
    old->stopping = 1;
    m->draining = old->pid;
    m->drain_kill_at = dq__now() + (uint64_t) m->conf->grace_ms
                       + DQ_KILL_MARGIN_MS;
}

static void
dq__reload(dq_master_t *m)
{
    dq_worker_conf_t *nc;
    dq__cref_t       *cr;
    char              err[DQ_CONF_ERR_SIZE];

    if (m->reload == NULL) {
        dq_log_warn("SIGHUP: no configuration to reload");
        return;
    }
    nc = calloc(1, sizeof(*nc));
    if (nc == NULL) {
        dq_log_error("reload: out of memory");
        return;
    }
    err[0] = '\0';
    if (m->reload(nc, m->udata, err, sizeof(err)) != 0) {
        dq_log_error("reload failed, keeping the running configuration: %s",
                     err);
        dq_conf_free(nc);
        free(nc);
        return;
    }
    if (nc->pid_file && (m->conf->pid_file == NULL
                         || strcmp(nc->pid_file, m->conf->pid_file) != 0))
    {
        if (dq__pid_write(nc->pid_file) == 0) {
            dq__pid_remove(m->conf->pid_file);
        }
    }
    if (dq_log_open(nc->log_file, nc->log_level) != 0) {
        dq_log_error("reload: keeping the old log");
    }
    (void) dq_log_set_format(nc->log_format);
    /* children hold their own copy (fork); the master keeps the old one
     * while a child spawned with it lives (its recovery uses it) */
    cr = malloc(sizeof(*cr));
    if (cr == NULL) {
        dq_log_error("reload: out of memory");
        dq_conf_free(nc);
        free(nc);
        return;
    }
    cr->conf = nc;
    cr->refs = 1;
    dq__cref_put(m->cref);
    m->cref = cr;
    m->conf = nc;
    m->gen++;
    m->draining = 0;
    dq_log_info("reload: configuration %s read; replacing children one at "
                "a time (%d wanted)", nc->config_file ? nc->config_file
                                                      : "(command line)",
                dq_conf_processes(nc));
}

int
dq_master_run(dq_worker_conf_t *conf, dq_conf_loader_fn reload, void *udata)
{
    dq_master_t       m;
    siginfo_t         si;
    struct timespec   ts, *tsp;
    uint64_t          now, next;
    int               sig, i, n;
    struct sigaction  sa;
    size_t            maplen = DQ_MAX_SLOTS * sizeof(dq_child_stats_t);

    memset(&m, 0, sizeof(m));
    m.reload = reload;
    m.udata = udata;
    m.conf = malloc(sizeof(*conf));
    m.cref = malloc(sizeof(*m.cref));
    m.slots = calloc(DQ_MAX_SLOTS, sizeof(dq_slot_t));
    dq__stats_base = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    dq__demoted = mmap(NULL, sizeof(dq__private_demoted),
                       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                       -1, 0);
    if (m.conf == NULL || m.cref == NULL || m.slots == NULL
        || dq__stats_base == MAP_FAILED || dq__demoted == MAP_FAILED)
    {
        dq_log_error("master: out of memory");
        return 1;
    }
    *m.conf = *conf;              /* take ownership */
    m.cref->conf = m.conf;
    m.cref->refs = 1;
    memset(conf, 0, sizeof(*conf));

    dq_log_set_prefix("master");

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    sigemptyset(&m.sigs);
    sigaddset(&m.sigs, SIGCHLD);
    sigaddset(&m.sigs, SIGTERM);
    sigaddset(&m.sigs, SIGINT);
    sigaddset(&m.sigs, SIGQUIT);
    sigaddset(&m.sigs, SIGHUP);
    sigaddset(&m.sigs, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m.sigs, &m.oldmask);

    if (m.conf->pid_file && dq__pid_write(m.conf->pid_file) != 0) {
        return 1;
    }

    n = dq_conf_processes(m.conf);
    dq_log_info("master pid %ld starting %d children (config %s)",
                (long) getpid(), n,
                m.conf->config_file ? m.conf->config_file : "none");
    for (i = 0; i < n; i++) {
        dq_slot_t *s = dq__slot_new(&m);
        if (s) {
            dq__spawn(&m, s);
        }
    }
    dq_notify("READY=1\nSTATUS=%d children", n);

    for (;;) {
        now = dq__now();
        if (m.stopping) {
            if (dq__alive(&m) == 0) {
                break;
            }
            if (now >= m.kill_at) {
                dq_log_error("children still running %lld ms after the "
                             "stop request: SIGKILL (their leased tasks run "
                             "again after the lease)",
                             (long long) (m.conf->grace_ms
                                          + DQ_KILL_MARGIN_MS));
                dq__signal_all(&m, SIGKILL);
                m.killed = 1;
                m.kill_at = now + 60000;
            }
            next = m.kill_at;
        } else {
            dq__respawn(&m, now);
            dq__roll(&m);
            next = m.draining ? m.drain_kill_at : 0;
            for (i = 0; i < DQ_MAX_SLOTS; i++) {
                dq_slot_t *s = &m.slots[i];
                if (s->used && s->pid == 0 && s->gen == m.gen
                    && (next == 0 || s->respawn_at < next))
                {
                    next = s->respawn_at;
                }
            }
        }

        now = dq__now();
        if (!m.stopping && !dq__check_stalls(&m, now)) {
            /* no watchdog ping while a child is stalled */
        } else {
            next = dq_notify_watchdog(now, next);
        }
        /* look at the children's loops at least every second */
        if (!m.stopping && (next == 0 || next > now + 1000)) {
            next = now + 1000;
        }
        if (next) {
            next = next > now ? next - now : 0;
            ts.tv_sec = (time_t) (next / 1000);
            ts.tv_nsec = (long) (next % 1000) * 1000000;
            tsp = &ts;
        } else {
            tsp = NULL;
        }
        sig = sigtimedwait(&m.sigs, &si, tsp);
        if (sig < 0) {
            continue;              /* EAGAIN (deadline) or EINTR */
        }

        switch (sig) {
        case SIGCHLD:
            dq__reap(&m);
            break;
        case SIGTERM:
        case SIGINT:
        case SIGQUIT:
            if (!m.stopping) {
                dq_notify("STOPPING=1\nSTATUS=stopping (%s)", strsignal(sig));
                m.stop_sig = sig;
                m.stop_at = dq__now();
                dq_log_info("%s: stopping %d children (%s, grace %lld ms)",
                            strsignal(sig), dq__alive(&m),
                            sig == SIGQUIT ? "fast" : "graceful",
                            (long long) m.conf->grace_ms);
                m.kill_at = dq__now() + (uint64_t) m.conf->grace_ms
                            + DQ_KILL_MARGIN_MS;
            }
            m.stopping = sig == SIGQUIT ? SIGQUIT : SIGTERM;
            dq__signal_all(&m, m.stopping);
            break;
        case SIGHUP:
            if (!m.stopping) {
                dq_notify("RELOADING=1");
                dq_log_info("SIGHUP: reloading");
                dq__reload(&m);
                dq_notify("READY=1");
            }
            break;
        case SIGUSR1:
            dq_log_reopen();
            dq_log_info("SIGUSR1: log reopened");
            dq__signal_all(&m, SIGUSR1);
            break;
        }
    }

    /* why it stops, in one line (the exit status is 0: a requested stop) */
    dq_log_info("all children exited; master exits with status 0: stopped "
                "by %s (%s) after %lld ms%s",
                m.stop_sig == SIGQUIT ? "SIGQUIT"
                : m.stop_sig == SIGINT ? "SIGINT" : "SIGTERM",
                m.stop_sig == SIGQUIT ? "fast" : "graceful",
                (long long) (dq__now() - m.stop_at),
                m.killed ? ", children SIGKILLed past the grace period "
                           "(their tasks run again after the lease)" : "");
    dq__pid_remove(m.conf->pid_file);
    for (i = 0; i < DQ_MAX_SLOTS; i++) {
        dq_held_unmap(m.slots[i].held, m.slots[i].nheld);
        dq__cref_put(m.slots[i].cref);
    }
    dq__cref_put(m.cref);
    free(m.slots);
    munmap(dq__stats_base, maplen);
    dq__stats_base = NULL;
    munmap(dq__demoted, sizeof(dq__private_demoted));
    dq__demoted = dq__private_demoted;
    sigprocmask(SIG_SETMASK, &m.oldmask, NULL);
    return 0;
}
