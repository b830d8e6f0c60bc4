/*
 * Task ids across threads and fork (dq_id_new buffers random bytes per
 * thread): ids made concurrently by threads, and by a parent and its
 * forked child (which inherits the parent's buffer), are all distinct.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dq_contract.h"
#include "tap.h"

#define PER_THREAD  4000
#define THREADS     4
#define FORKED      64

static char ids[THREADS * PER_THREAD + 2 * FORKED][DQ_ID_SIZE];

static int
cmp_id(const void *a, const void *b)
{
    return strcmp((const char *) a, (const char *) b);
}

static void *
make_ids(void *arg)
{
    char (*out)[DQ_ID_SIZE] = arg;
    int  i;

    for (i = 0; i < PER_THREAD; i++) {
        dq_id_new(out[i]);
    }
    return NULL;
}

/* The id's digits: base64url of 16 bytes, most significant bits first,
 * read back and written again the way dq_id_new did before its
 * three-bytes-at-a-time loop (issue #12): the same text. */
static void
test_format(void)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char          id[DQ_ID_SIZE], again[DQ_ID_SIZE];
    unsigned char r[17];
    unsigned      bits, acc, seen[64] = { 0 };
    size_t        i, k, n;
    int           good = 1, all = 1;
    const char   *c;

    for (n = 0; n < 2000 && good; n++) {
        dq_id_new(id);
        good = strlen(id) == DQ_ID_LEN && strspn(id, alpha) == DQ_ID_LEN
               && strchr("AQgw", id[DQ_ID_LEN - 1]) != NULL;
        memset(r, 0, sizeof(r));
        for (i = 0, bits = 0; good && i < DQ_ID_LEN; i++) {
            c = strchr(alpha, id[i]);
            seen[c - alpha]++;
            for (k = 0; k < 6; k++, bits++) {
                if ((c - alpha) >> (5 - k) & 1) {
                    r[bits / 8] |= (unsigned char) (0x80 >> (bits % 8));
                }
            }
        }
        r[16] = 0;
        for (i = 0, k = 0, bits = 0, acc = 0; i < 17 && k < DQ_ID_LEN; i++) {
            acc = (acc << 8) | r[i];
            bits += 8;
            while (bits >= 6 && k < DQ_ID_LEN) {
                bits -= 6;
                again[k++] = alpha[(acc >> bits) & 63];
            }
        }
        again[DQ_ID_LEN] = '\0';
        good = good && strcmp(id, again) == 0;
    }
    ok(good, "ids: 22 base64url digits, 128 bits, the former encoding (%s)",
       id);
    for (i = 0; i < 64; i++) {
        all = all && seen[i] > 0;
    }
    ok(all, "ids: every digit occurs");
}

static size_t
dups(size_t n)
{
    size_t i, d = 0;

    qsort(ids, n, DQ_ID_SIZE, cmp_id);
    for (i = 1; i < n; i++) {
        d += strcmp(ids[i - 1], ids[i]) == 0;
    }
    return d;
}

int
main(void)
{
    pthread_t t[THREADS];
    char      first[DQ_ID_SIZE];
    int       fd[2], i, status, started = 0;
    ssize_t   got = 0, n;
    pid_t     pid;

    for (i = 0; i < THREADS; i++) {
        started += pthread_create(&t[i], NULL, make_ids,
                                  ids[i * PER_THREAD]) == 0;
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    is_int(started, THREADS, "%d threads started", THREADS);
    is_int(dups(THREADS * PER_THREAD), 0,
           "%d ids made by %d threads at once: all distinct",
           THREADS * PER_THREAD, THREADS);

    /* the parent's buffer holds unused bytes when it forks */
    dq_id_new(first);
    if (pipe(fd) != 0 || (pid = fork()) < 0) {
        ok(0, "pipe/fork");
        return done_testing();
    }
    if (pid == 0) {
        close(fd[0]);
        for (i = 0; i < FORKED; i++) {
            dq_id_new(ids[i]);
        }
        _exit(write(fd[1], ids, FORKED * DQ_ID_SIZE)
              == FORKED * DQ_ID_SIZE ? 0 : 1);
    }
    close(fd[1]);
    for (i = 0; i < FORKED; i++) {
        dq_id_new(ids[FORKED + i]);
    }
    while (got < FORKED * DQ_ID_SIZE
           && (n = read(fd[0], (char *) ids + got,
                        FORKED * DQ_ID_SIZE - got)) > 0)
    {
        got += n;
    }
    close(fd[0]);
    waitpid(pid, &status, 0);
    ok(got == FORKED * DQ_ID_SIZE && WIFEXITED(status)
       && WEXITSTATUS(status) == 0, "child made %d ids", FORKED);
    ok(strcmp(ids[0], ids[FORKED]) != 0,
       "the child's first id is not the parent's next one");
    is_int(dups(2 * FORKED), 0,
           "%d ids of parent and child after fork: all distinct",
           2 * FORKED);
    test_format();
    return done_testing();
}
