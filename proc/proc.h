/* SPDX-License-Identifier: MIT */
/*
 * Internal interface between proc/signal.c and proc/process.c: a spawned
 * child must not inherit the signals rook_signal_block blocked, blocked.
 */
#ifndef ROOK_PROC_PROC_H
#define ROOK_PROC_PROC_H

#include <signal.h>

/* The union of every set passed to rook_signal_block so far. */
void rook__signal_blocked(sigset_t *out);

#endif
