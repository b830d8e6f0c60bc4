/*
 * Minimal TAP producer for the C unit tests (header only; one per binary).
 *
 *   int main(void) {
 *       ok(1 + 1 == 2, "arithmetic");
 *       is_int(f(), 3, "f returns 3");
 *       is_str(s, "x", "s is x");
 *       return done_testing();
 *   }
 *
 * done_testing() prints the plan and returns the exit status (0 if all
 * passed). diag() writes "# ..." to stderr.
 */
#ifndef DQ_TAP_H
#define DQ_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 1, 2), unused)) static void
diag(const char *fmt, ...)
{
    va_list ap;
    fputs("# ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

__attribute__((format(printf, 2, 3), unused)) static int
ok(int cond, const char *fmt, ...)
{
    va_list ap;
    tap_n++;
    if (!cond) tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    return cond;
}

#define is_int(got, want, ...)                                                \
    do {                                                                      \
        long long g_ = (long long) (got), w_ = (long long) (want);            \
        if (!ok(g_ == w_, __VA_ARGS__))                                       \
            diag("  got %lld, want %lld (%s:%d)", g_, w_, __FILE__, __LINE__); \
    } while (0)

#define is_str(got, want, ...)                                                \
    do {                                                                      \
        const char *g_ = (got), *w_ = (want);                                 \
        int eq_ = (g_ == NULL && w_ == NULL)                                  \
                  || (g_ && w_ && strcmp(g_, w_) == 0);                       \
        if (!ok(eq_, __VA_ARGS__))                                            \
            diag("  got \"%s\", want \"%s\" (%s:%d)", g_ ? g_ : "(null)",     \
                 w_ ? w_ : "(null)", __FILE__, __LINE__);                     \
    } while (0)

__attribute__((unused)) static int
done_testing(void)
{
    printf("1..%d\n", tap_n);
    if (tap_failed) diag("failed %d of %d", tap_failed, tap_n);
    return tap_failed ? 1 : 0;
}

#endif /* DQ_TAP_H */
