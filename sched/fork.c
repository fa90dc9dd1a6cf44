/* SPDX-License-Identifier: MIT */
/* The spinlocks held across fork (sched/fork.h). */
#include "sched/fork.h"

#include <pthread.h>

#define GUARDS_MAX 8

static struct rook__spin *guards[GUARDS_MAX];
static unsigned nguards;

static void prepare(void)
{
	for (unsigned i = 0; i < nguards; i++)
		rook__spin_lock(guards[i]);
}

static void release(void)
{
	for (unsigned i = nguards; i-- > 0;)
		rook__spin_unlock(guards[i]);
}

/* Constructors run one at a time, before any thread of ours exists. */
void rook__fork_guard(struct rook__spin *l)
{
	if (nguards == 0 && pthread_atfork(prepare, release, release) != 0)
		return; /* ENOMEM at load: run without the guard */
	if (nguards < GUARDS_MAX)
		guards[nguards++] = l;
}
