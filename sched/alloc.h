/* SPDX-License-Identifier: MIT */
/*
 * The one allocation pair of the library. Tests inject failures through
 * rook__alloc_fail_nth (sched/testing.h).
 */
#ifndef ROOK_SCHED_ALLOC_H
#define ROOK_SCHED_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

void *rook__alloc(size_t n);
void *rook__calloc(size_t n, size_t size);
void rook__free(void *p);
/* align: a power of two, at least sizeof(void *). */
void *rook__alloc_aligned(size_t align, size_t n);

/* Consume one injected failure: true if the caller must fail as if out of
 * memory (for allocations served from caches, not malloc). */
bool rook__alloc_fail_now(void);

#endif
