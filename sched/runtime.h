/* SPDX-License-Identifier: MIT */
/*
 * The runtime: its workers, the injection queue for spawns from outside,
 * the idle set used by parking, the registry of live tasks (for cancel-all
 * at stop) and the stack pool.
 */
#ifndef ROOK_SCHED_RUNTIME_H
#define ROOK_SCHED_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <rook.h>

#include "sched/lock.h"
#include "sched/stack.h"
#include "sched/worker.h"

struct rook_rt {
	unsigned rt_nworkers;
	struct rook__worker *rt_workers; /* array of rt_nworkers */
	size_t rt_stack_size;
	unsigned rt_flags;
	unsigned rt_ring_entries;  /* io_uring SQ entries per worker; 0: default */
	struct rook__io_rt *rt_io; /* the IO layer's state (sched/park.h) */

	/* Injection queue: tasks spawned or woken from outside the runtime. */
	_Alignas(64) struct rook__spin rt_inj_lock;
	struct rook_task *rt_inj_head, *rt_inj_tail;
	_Atomic size_t rt_inj_len;

	/* Idle set and spinning count (see the protocol in worker.c). */
	_Alignas(64) _Atomic int rt_nspinning;
	_Atomic int rt_nidle;
	_Atomic int rt_ndeep;              /* parked past their naps (worker.c) */
	_Atomic uint64_t rt_idle_deadline; /* earliest timed wake of a parked worker */
	struct rook__spin rt_idle_lock;
	unsigned *rt_idle; /* stack of parked worker indices */
	unsigned rt_idle_n;

	/* Lifecycle. */
	_Alignas(64) _Atomic bool rt_stopping;
	_Atomic bool rt_exit;            /* workers leave their loops */
	_Atomic uint64_t rt_ext_spawned; /* spawns from outside the workers */

	struct rook__stack_pool rt_stacks;
	_Atomic unsigned rt_started;  /* workers that entered their loop */
	void *rt_diag;                /* diag/watch.c: registry entry, watchdog */
	struct rook__trace *rt_trace; /* ROOK_TRACE writer (diag/trace.c), or NULL */
};

/* Common spawn path (sched/task.c). w: the spawning worker or NULL. */
int rook__spawn(struct rook_rt *rt, struct rook__worker *w, struct rook_task **out, rook_fn fn,
		void *arg);

/* Configuration and topology (sched/topo.c). */
int rook__config_resolve(const struct rook_config *in, struct rook_config *out);
int rook__topo_plan(struct rook_rt *rt, bool pin);
/* Pin w's thread to its PU (no-op when not pinning). */
void rook__topo_pin(struct rook_rt *rt, struct rook__worker *w);
/* Owner, when about to park: lift w's pinning while another thread keeps
 * its core busy (its run-queue wait), and pin it again once that stops. */
void rook__topo_contention(struct rook__worker *w);
void rook__topo_worker_start(struct rook__worker *w);
void rook__topo_worker_stop(struct rook__worker *w);
/* Usable CPUs: affinity and cgroup quota (at least 1). */
unsigned rook__topo_ncpus(void);

#endif
