/*
 * Coroutines for tasklets: stacks and the context switch.
 *
 * Stacks are mmap'd (MAP_NORESERVE: only touched pages become resident)
 * with a PROT_NONE guard page below them, so an overflow faults instead of
 * corrupting a neighbour. Ended coroutines keep their stack in a pool (up
 * to pool_max) for the next tasklet: no mmap/munmap per tasklet.
 *
 * Two switch backends: DQ_CORO_ASM (tasklet/coro_x86_64.S, x86-64 only:
 * callee-saved registers + MXCSR/x87 control word) and DQ_CORO_UCONTEXT
 * (makecontext/swapcontext, portable, but swapcontext makes a sigprocmask
 * system call on every switch). bench/micro/tasklet_bench.c measures both;
 * docs/TASKLETS.md has the figures behind the default.
 *
 * Coroutines are asymmetric: resume() switches from the running context to
 * a tasklet and records it as the tasklet's caller; yield() and exit()
 * switch back to that caller. A dead coroutine's stack is released by the
 * caller once it has switched away from it.
 *
 * Under AddressSanitizer every switch is announced with
 * __sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber (else
 * ASan reports false stack errors on foreign stacks), and a reused stack is
 * unpoisoned first (frames of the previous tasklet leave redzones behind).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tasklet_int.h"

#ifdef DQ__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__) && !defined(DQ_CORO_NO_ASM)
#define DQ__HAVE_ASM 1
void dq__coro_switch_asm(void **save_sp, void *load_sp);
void dq__coro_trampoline_asm(void);
#endif

const char *
dq__coro_backend_name(int backend)
{
    return backend == DQ_CORO_ASM ? "asm-x86_64" : "ucontext";
}

int
dq__coro_setup(dq__rt_t *rt, const dq_tasklet_opts_t *opts)
{
    const char *env;
    size_t      size;

    rt->page = (size_t) sysconf(_SC_PAGESIZE);
    size = opts && opts->stack_size ? opts->stack_size
                                    : DQ_TASKLET_STACK_DEFAULT;
#ifdef DQ__ASAN
    size *= 4;     /* ASan's redzones make every frame several times larger */
#endif
    if (size < 16 * 1024) {
        size = 16 * 1024;
    }
    rt->stack_size = (size + rt->page - 1) / rt->page * rt->page;
    rt->pool_max = opts && opts->stack_pool ? opts->stack_pool : 256;

    rt->backend = opts ? (int) opts->backend : DQ_CORO_DEFAULT;
    env = getenv("DQ_TASKLET_CORO");
    if (env && strcmp(env, "ucontext") == 0) {
        rt->backend = DQ_CORO_UCONTEXT;
    } else if (env && strcmp(env, "asm") == 0) {
        rt->backend = DQ_CORO_ASM;
    }
#ifdef DQ__HAVE_ASM
    if (rt->backend == DQ_CORO_DEFAULT) {
        rt->backend = DQ_CORO_ASM;
    }
#else
    if (rt->backend == DQ_CORO_ASM) {
        return DQ_EINVAL;
    }
    rt->backend = DQ_CORO_UCONTEXT;
#endif

    rt->main.state = DQ__CORO_RUNNING;
    if (rt->backend == DQ_CORO_UCONTEXT) {
        rt->main.uc = calloc(1, sizeof(ucontext_t));
        if (rt->main.uc == NULL) {
            return DQ_ENOMEM;
        }
    }
    rt->current = &rt->main;
    return DQ_OK;
}

static void
dq__coro_unmap(dq__rt_t *rt, dq__coro_t *c)
{
    munmap(c->map, c->map_size);
    free(c->uc);
    free(c);
    rt->stacks_mapped--;
}

void
dq__coro_teardown(dq__rt_t *rt)
{
    dq__coro_t *c;

    while ((c = rt->pool) != NULL) {
        rt->pool = c->pool_next;
        dq__coro_unmap(rt, c);
    }
    rt->npool = 0;
    free(rt->main.uc);
    rt->main.uc = NULL;
}

dq__coro_t *
dq__coro_get(dq__rt_t *rt)
{
    dq__coro_t *c;

    if (rt->pool) {
        c = rt->pool;
        rt->pool = c->pool_next;
        rt->npool--;
#ifdef DQ__ASAN
        ASAN_UNPOISON_MEMORY_REGION(c->stack_lo, c->stack_size);
#endif
        c->pool_next = NULL;
        return c;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    if (rt->backend == DQ_CORO_UCONTEXT) {
        c->uc = calloc(1, sizeof(ucontext_t));
        if (c->uc == NULL) {
            free(c);
            return NULL;
        }
    }
    c->map_size = rt->stack_size + rt->page;
    c->map = mmap(NULL, c->map_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                  -1, 0);
    if (c->map == MAP_FAILED) {
        free(c->uc);
        free(c);
        return NULL;
    }
    /* the guard page: stacks grow down, so it sits at the low end */
    if (mprotect(c->map, rt->page, PROT_NONE) != 0) {
        int e = errno;
        munmap(c->map, c->map_size);
        free(c->uc);
        free(c);
        errno = e;
        return NULL;
    }
    c->stack_lo = c->map + rt->page;
    c->stack_size = rt->stack_size;
#ifdef DQ__ASAN
    /* munmap does not clear ASan's shadow: a new mapping at the address
     * of a stack unmapped earlier would inherit its dead frames' redzones
     * (reproduced: rounds of 1,000 tasklets, "stack-buffer-overflow" in
     * __asan_handle_no_return at a tasklet's exit) */
    ASAN_UNPOISON_MEMORY_REGION(c->stack_lo, c->stack_size);
#endif
    rt->stacks_mapped++;
    return c;
}

static void
dq__coro_put(dq__rt_t *rt, dq__coro_t *c)
{
    c->state = DQ__CORO_FREE;
    c->fn = NULL;
    c->arg = NULL;
    c->future = NULL;
    c->ctx = NULL;
    c->home = NULL;
    c->caller = NULL;
    c->waiting_on = NULL;
    c->wake = 0;
    if (rt->npool >= rt->pool_max) {
        dq__coro_unmap(rt, c);
        return;
    }
    c->pool_next = rt->pool;
    rt->pool = c;
    rt->npool++;
}

/* ------------------------------------------------------------- switch */

static void
dq__coro_switch(dq__rt_t *rt, dq__coro_t *from, dq__coro_t *to, int ending)
{
#ifdef DQ__ASAN
    const void *lo;
    size_t      sz;
#endif

    rt->current = to;
    rt->switch_from = from;
    rt->switches++;
#ifdef DQ__ASAN
    __sanitizer_start_switch_fiber(ending ? NULL : &from->asan_fake,
                                   to->stack_lo, to->stack_size);
#else
    (void) ending;
#endif
#ifdef DQ__HAVE_ASM
    if (rt->backend == DQ_CORO_ASM) {
        dq__coro_switch_asm(&from->sp, to->sp);
    } else
#endif
    {
        swapcontext(from->uc, to->uc);
    }
    /* back in `from`, switched to by rt->switch_from */
#ifdef DQ__ASAN
    __sanitizer_finish_switch_fiber(from->asan_fake, &lo, &sz);
    if (rt->switch_from->stack_lo == NULL) {   /* the main stack */
        rt->switch_from->stack_lo = (char *) lo;
        rt->switch_from->stack_size = sz;
    }
#endif
}

static void
dq__coro_enter(dq__coro_t *c)
{
    dq__rt_t *rt = dq__rt;

#ifdef DQ__ASAN
    const void *lo;
    size_t      sz;

    __sanitizer_finish_switch_fiber(NULL, &lo, &sz);
    if (rt->switch_from->stack_lo == NULL) {
        rt->switch_from->stack_lo = (char *) lo;
        rt->switch_from->stack_size = sz;
    }
#endif
    rt->entry(c);
    /* the entry function ends with dq__coro_exit() */
    (void) rt;
    abort();
}

static void
dq__coro_enter_uc(unsigned hi, unsigned lo)
{
    dq__coro_enter((dq__coro_t *) (((uintptr_t) hi << 32) | (uintptr_t) lo));
}

void
dq__coro_start(dq__rt_t *rt, dq__coro_t *c, void (*entry)(dq__coro_t *))
{
    rt->entry = entry;
    c->state = DQ__CORO_SUSPENDED;
#ifdef DQ__HAVE_ASM
    if (rt->backend == DQ_CORO_ASM) {
        uint64_t *sp = (uint64_t *) (c->stack_lo + c->stack_size);

        /* what dq__coro_switch_asm pops, bottom-up: MXCSR + x87 CW,
         * r15, r14, r13 (entry), r12 (arg), rbx, rbp, return address */
        *--sp = (uint64_t) (uintptr_t) dq__coro_trampoline_asm;
        *--sp = 0;                                      /* rbp */
        *--sp = 0;                                      /* rbx */
        *--sp = (uint64_t) (uintptr_t) c;               /* r12 */
        *--sp = (uint64_t) (uintptr_t) dq__coro_enter;  /* r13 */
        *--sp = 0;                                      /* r14 */
        *--sp = 0;                                      /* r15 */
        *--sp = 0x1f80ull | (0x037full << 32);          /* MXCSR, CW */
        c->sp = sp;
        return;
    }
#endif
    uintptr_t p = (uintptr_t) c;

    getcontext(c->uc);
    c->uc->uc_stack.ss_sp = c->stack_lo;
    c->uc->uc_stack.ss_size = c->stack_size;
    c->uc->uc_link = NULL;
    makecontext(c->uc, (void (*)(void)) dq__coro_enter_uc, 2,
                (unsigned) (p >> 32), (unsigned) (p & 0xffffffffu));
}

void
dq__coro_resume(dq__rt_t *rt, dq__coro_t *c)
{
    dq__coro_t *from = rt->current;

    c->caller = from;
    c->state = DQ__CORO_RUNNING;
    if (from != &rt->main) {
        from->state = DQ__CORO_SUSPENDED;
    }
    dq__coro_switch(rt, from, c, 0);
    if (from != &rt->main) {
        from->state = DQ__CORO_RUNNING;
    }
    if (c->state == DQ__CORO_DEAD) {
        dq__coro_put(rt, c);
    }
}

void
dq__coro_yield(dq__rt_t *rt)
{
    dq__coro_t *c = rt->current;

    c->state = DQ__CORO_SUSPENDED;
    dq__coro_switch(rt, c, c->caller, 0);
    c->state = DQ__CORO_RUNNING;
}

void
dq__coro_exit(dq__rt_t *rt)
{
    dq__coro_t *c = rt->current;

    c->state = DQ__CORO_DEAD;
    dq__coro_switch(rt, c, c->caller, 1);
    abort();   /* a dead coroutine is never switched to */
}
