/* SPDX-License-Identifier: MIT */
/*
 * The blocking pool behind rook_blocking (internal hooks for tests).
 */
#ifndef ROOK_IO_BLOCKING_H
#define ROOK_IO_BLOCKING_H

/* Threads of the pool now (running or idle). */
unsigned rook__blocking_threads(void);

/* Set the pool's limit and how long an idle thread waits for work before
 * it exits; 0 keeps the current value. Returns 0. */
int rook__blocking_configure(unsigned max_threads, unsigned long idle_ms);

#endif
