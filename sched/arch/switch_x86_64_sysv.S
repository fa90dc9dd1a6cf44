/* SPDX-License-Identifier: MIT */
/*
 * rook__ctx_switch for x86-64, System V ABI.
 *
 *   void rook__ctx_switch(void **save_sp, void *load_sp);
 *
 * Saves the callee-saved registers and the FP control words of the caller
 * on its own stack, stores the stack pointer in *save_sp, loads load_sp and
 * restores the frame found there. No system call: the signal mask is
 * per thread and deliberately not switched.
 *
 * Saved frame (addresses grow upward; sp points at the lowest word):
 *
 *   sp+56  return address (rip to resume at)
 *   sp+48  rbp
 *   sp+40  rbx
 *   sp+32  r12
 *   sp+24  r13
 *   sp+16  r14
 *   sp+8   r15
 *   sp+0   mxcsr (low 4 bytes) | x87 control word (bytes 4-5)
 *
 * A new context (rook__ctx_make) has rip = rook__ctx_trampoline, r12 = the
 * argument and r13 = the entry function; sp+64 is 16-byte aligned so the
 * trampoline's call meets the ABI's alignment rule.
 */
	.text
	.globl	rook__ctx_switch
	.hidden	rook__ctx_switch
	.type	rook__ctx_switch, @function
	.p2align 4
rook__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	rook__ctx_switch, .-rook__ctx_switch

	.globl	rook__ctx_trampoline
	.hidden	rook__ctx_trampoline
	.type	rook__ctx_trampoline, @function
	.p2align 4
rook__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	xorl	%ebp, %ebp
	movq	%r12, %rdi
	callq	*%r13
	ud2		/* the entry function never returns */
	.cfi_endproc
	.size	rook__ctx_trampoline, .-rook__ctx_trampoline

	.section .note.GNU-stack,"",@progbits
