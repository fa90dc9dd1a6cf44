/* SPDX-License-Identifier: MIT */
/*
 * fork() and the process-wide spinlocks. A fork while another thread holds
 * one (the task pool's, the IO state pool's) would leave it held for ever
 * in the child, whose first rook_run would then spin. A registered lock is
 * taken by pthread_atfork's prepare handler and released on both sides, so
 * the child gets it free and the list it guards whole. A runtime itself
 * does not survive fork (README); a new one can be started in the child.
 */
#ifndef ROOK_SCHED_FORK_H
#define ROOK_SCHED_FORK_H

#include "sched/lock.h"

/* Register l (a static lock, for the process's life); call from a
 * constructor. Leaf locks only: prepare takes them in registration order. */
void rook__fork_guard(struct rook__spin *l);

#endif
