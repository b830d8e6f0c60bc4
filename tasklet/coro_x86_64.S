/*
 * The hand-written coroutine switch for x86-64 (System V ABI), used by
 * tasklet/coro.c when the DQ_CORO_ASM backend is selected.
 *
 *   void dq__coro_switch_asm(void **save_sp, void *load_sp);
 *
 * Saves the callee-saved registers (rbx, rbp, r12-r15), MXCSR and the x87
 * control word on the current stack, stores the stack pointer in *save_sp,
 * loads load_sp and restores the same set from there. Everything else is
 * caller-saved by the ABI, so this is the whole context: no signal mask
 * (unlike swapcontext, which makes a sigprocmask system call each time).
 *
 * A fresh stack is prepared by coro.c so that the first switch to it
 * "returns" into dq__coro_trampoline_asm with r12 = argument, r13 = entry
 * function and the stack pointer 16-byte aligned.
 */
#if defined(__x86_64__)
    .text
    .globl  dq__coro_switch_asm
    .hidden dq__coro_switch_asm
    .type   dq__coro_switch_asm, @function
dq__coro_switch_asm:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   dq__coro_switch_asm, .-dq__coro_switch_asm

    .globl  dq__coro_trampoline_asm
    .hidden dq__coro_trampoline_asm
    .type   dq__coro_trampoline_asm, @function
dq__coro_trampoline_asm:
    .cfi_startproc
    .cfi_undefined rip
    xorl    %ebp, %ebp
    movq    %r12, %rdi
    call    *%r13
    ud2                     /* the entry function never returns */
    .cfi_endproc
    .size   dq__coro_trampoline_asm, .-dq__coro_trampoline_asm
#endif
    .section .note.GNU-stack,"",@progbits
