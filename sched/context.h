/* SPDX-License-Identifier: MIT */
/*
 * Machine contexts: a saved stack pointer whose stack holds the callee-saved
 * registers (see sched/arch/switch_*.S for the frame). rook__ctx_make lays a
 * first frame on a fresh stack so that switching to it calls entry(arg) on
 * that stack; entry must never return.
 */
#ifndef ROOK_SCHED_CONTEXT_H
#define ROOK_SCHED_CONTEXT_H

#include <stdint.h>
#include <string.h>

void rook__ctx_switch(void **save_sp, void *load_sp);
void rook__ctx_trampoline(void);

/* Returns the stack pointer to pass to rook__ctx_switch. top: the highest
 * usable address of the stack (exclusive). */
static inline void *rook__ctx_make(void *top, void (*entry)(void *), void *arg)
{
	uintptr_t sp = (uintptr_t)top & ~(uintptr_t)15;
#if defined(__x86_64__)
	/* 8 words: control words, r15, r14, r13, r12, rbx, rbp, rip; plus a
	 * zero word above as a fake return address for unwinders. */
	sp -= 16; /* keeps sp+64 16-byte aligned and leaves the zero word */
	sp -= 64;
	uint64_t *f = (uint64_t *)sp;
	memset(f, 0, 80);
	f[0] = 0x1F80u | ((uint64_t)0x037Fu << 32); /* default MXCSR, x87 CW */
	f[3] = (uint64_t)(uintptr_t)entry;          /* r13 */
	f[4] = (uint64_t)(uintptr_t)arg;            /* r12 */
	f[7] = (uint64_t)(uintptr_t)rook__ctx_trampoline;
#elif defined(__aarch64__)
	sp -= 176;
	uint64_t *f = (uint64_t *)sp;
	memset(f, 0, 176);
	f[0] = (uint64_t)(uintptr_t)arg;                   /* x19 */
	f[1] = (uint64_t)(uintptr_t)entry;                 /* x20 */
	f[11] = (uint64_t)(uintptr_t)rook__ctx_trampoline; /* x30 */
#else
#error "unsupported architecture"
#endif
	return (void *)sp;
}

#endif
