/* SPDX-License-Identifier: MIT */
/*
 * The one allocation pair of the library, and its failure injection.
 *
 * Every place that can run out of memory (a malloc, an mmap of stacks or
 * task chunks, an object taken from a cache that tests want to see fail) is
 * an injection point named by its file:line. Built with ROOK_TESTING (the
 * CMake build sets it when it builds the tests) a point asks the hook
 * whether to fail; without it the check compiles away. Tests drive the hook
 * through sched/testing.h (rook__alloc_fail_nth and friends).
 */
#ifndef ROOK_SCHED_ALLOC_H
#define ROOK_SCHED_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

#define ROOK__STR_(x) #x
#define ROOK__STR(x)  ROOK__STR_(x)
/* The name of an injection point: a string literal, "file:line". */
#define ROOK__SITE __FILE__ ":" ROOK__STR(__LINE__)

void *rook__alloc_at(size_t n, const char *site);
void *rook__calloc_at(size_t n, size_t size, const char *site);
/* align: a power of two, at least sizeof(void *). */
void *rook__alloc_aligned_at(size_t align, size_t n, const char *site);
void rook__free(void *p);

#define rook__alloc(n)                rook__alloc_at((n), ROOK__SITE)
#define rook__calloc(n, size)         rook__calloc_at((n), (size), ROOK__SITE)
#define rook__alloc_aligned(align, n) rook__alloc_aligned_at((align), (n), ROOK__SITE)

#ifdef ROOK_TESTING
/* Pass an injection point: true if the caller must fail as if out of
 * memory. The fast path (hook idle) is one relaxed load. */
bool rook__fail_at(const char *site);
#define rook__alloc_fail_now() rook__fail_at(ROOK__SITE)
#define ROOK__FAULT_HOOKS      1
#else
#define rook__alloc_fail_now() false
#define ROOK__FAULT_HOOKS      0 /* an inline fast path may skip its slow path's point */
#endif

#endif
