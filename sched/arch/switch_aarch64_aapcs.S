/* SPDX-License-Identifier: MIT */
/*
 * rook__ctx_switch for aarch64, AAPCS64.
 *
 *   void rook__ctx_switch(void **save_sp, void *load_sp);
 *
 * Saves the callee-saved registers x19-x30, d8-d15 and FPCR on the caller's
 * stack, stores sp in *save_sp, loads load_sp and restores that frame. No
 * system call on the way.
 *
 * Saved frame (176 bytes, sp 16-byte aligned, sp points at the lowest word):
 *
 *   sp+160 fpcr           sp+168 (pad)
 *   sp+144 d14 d15        sp+128 d12 d13
 *   sp+112 d10 d11        sp+96  d8  d9
 *   sp+80  x29 x30(lr)    sp+64  x27 x28
 *   sp+48  x25 x26        sp+32  x23 x24
 *   sp+16  x21 x22        sp+0   x19 x20
 *
 * A new context (rook__ctx_make) has x30 = rook__ctx_trampoline,
 * x19 = the argument and x20 = the entry function.
 */
	.text
	.globl	rook__ctx_switch
	.hidden	rook__ctx_switch
	.type	rook__ctx_switch, %function
	.p2align 4
rook__ctx_switch:
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	ret
	.size	rook__ctx_switch, .-rook__ctx_switch

	.globl	rook__ctx_trampoline
	.hidden	rook__ctx_trampoline
	.type	rook__ctx_trampoline, %function
	.p2align 4
rook__ctx_trampoline:
	mov	x29, #0
	mov	x0, x19
	blr	x20
	brk	#0		/* the entry function never returns */
	.size	rook__ctx_trampoline, .-rook__ctx_trampoline

	.section .note.GNU-stack,"",%progbits
