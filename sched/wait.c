/* SPDX-License-Identifier: MIT */
/*
 * Waiters (see wait.h for the protocol). A task's wait ends with exactly one
 * successful rook__wait_claim; the winner writes the result and calls
 * rook__wait_wake, which unparks the task (task.c) or sets the plain
 * thread's futex word. A cancellation is delivered by the canceller's claim
 * (rook_cancel) or, if it came before the wait was published, by the
 * waiter's own claim in rook__wait_park: the seq_cst store of w_state in
 * wait_begin and the seq_cst load of t_cancel in park pair with the
 * seq_cst store of t_cancel and load of w_state in rook_cancel, so at least
 * one side sees the other.
 */
#include "sched/wait.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sched/check.h"
#include "sched/task.h"
#include "time/timer.h"
#include "sched/worker.h"

static _Thread_local struct rook__waiter tls_waiter __attribute__((tls_model("initial-exec")));

struct rook__waiter *rook__waiter_self(void)
{
	struct rook_task *t = rook_self();
	if (t)
		return &t->t_waiter;
	/* A thread's waiter may sit where an exited thread's was: a number of
	 * its own tells them apart (a mutex it owned is not the new one's). */
	if (!tls_waiter.w_thread_gen) {
		static _Atomic uint32_t thread_gens;
		uint32_t g;
		while (!(g = atomic_fetch_add_explicit(&thread_gens, 1, memory_order_relaxed) + 1))
			;
		tls_waiter.w_thread_gen = g;
	}
	return &tls_waiter;
}

uint32_t rook__wait_begin(struct rook__waiter *w, bool cancellable)
{
	uint32_t s = atomic_load_explicit(&w->w_state, memory_order_relaxed);
	uint32_t token = (((s >> 2) + 1) << 2) | (cancellable ? ROOK__W_WAITING : ROOK__W_SHIELDED);
	if (w->w_task)
		atomic_store_explicit(&w->w_task->t_park, ROOK__P_PARKING, memory_order_relaxed);
	else
		atomic_store_explicit(&w->w_wake, 0, memory_order_relaxed);
	/* Publishes the wait; see the file comment for its pairing. */
	atomic_store_explicit(&w->w_state, token, memory_order_seq_cst);
	return token;
}

bool rook__wait_claim(struct rook__waiter *w, uint32_t token, int result)
{
	uint32_t expect = token;
	uint32_t claimed = (token & ~3u) | ROOK__W_CLAIMED;
	/* acq_rel: the winner orders its later writes (result, wake) after the
	 * decision, and sees the waiter's setup. */
	if (!atomic_compare_exchange_strong_explicit(&w->w_state, &expect, claimed,
						     memory_order_acq_rel, memory_order_relaxed))
		return false;
	w->w_result = result;
	return true;
}

static long futex(_Atomic uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, (uint32_t *)uaddr, op, val, NULL, NULL, 0);
}

void rook__wait_wake(struct rook__waiter *w)
{
	struct rook_task *t = w->w_task;
	if (t) {
		rook__task_unpark(t);
		return;
	}
	/* Pairs with the acquire load in park; a wake on a word whose owner
	 * already returned is harmless (futex wakes are advisory). */
	atomic_store_explicit(&w->w_wake, 1, memory_order_release);
	futex(&w->w_wake, FUTEX_WAKE_PRIVATE, 1);
}

int rook__wait_park(struct rook__waiter *w, uint32_t token)
{
	return rook__wait_park_until(w, token, UINT64_MAX, 0);
}

int rook__wait_park_until(struct rook__waiter *w, uint32_t token, uint64_t wake_at, int wake_result)
{
	struct rook_task *t = w->w_task;
	if (!t) {
		while (atomic_load_explicit(&w->w_wake, memory_order_acquire) == 0)
			futex(&w->w_wake, FUTEX_WAIT_PRIVATE, 0);
		return w->w_result;
	}
	bool interruptible = (token & 3u) == ROOK__W_WAITING;
	if (interruptible && atomic_load_explicit(&t->t_cancel, memory_order_seq_cst) &&
	    atomic_load_explicit(&t->t_shield, memory_order_relaxed) == 0 &&
	    rook__wait_claim(w, token, -ECANCELED)) {
		atomic_store_explicit(&t->t_park, ROOK__P_RUNNING, memory_order_relaxed);
		return -ECANCELED;
	}
	/* One timer ends the wait: the sleep's end or the deadline, whichever
	 * comes first (an uninterruptible wait ignores deadlines). */
	uint64_t at = wake_at;
	int res = wake_result;
	if (interruptible && rook__task_deadline(t) < at) {
		at = rook__task_deadline(t);
		res = -ETIMEDOUT;
	}
	/* The timer lives in this frame: the task disarms it (under the heap
	 * lock) before the frame goes away, and a firer touches it only under
	 * that lock. */
	struct rook__timer tm = {.tm_index = -1};
	bool armed = false;
	if (at != UINT64_MAX) {
		if (rook__now() >= at) {
			if (rook__wait_claim(w, token, res)) {
				atomic_store_explicit(&t->t_park, ROOK__P_RUNNING,
						      memory_order_relaxed);
				return res;
			}
		} else {
			tm.tm_deadline = at;
			tm.tm_w = w;
			tm.tm_token = token;
			tm.tm_result = res;
			if (rook__worker_timer_arm(&tm) < 0) {
				if (rook__wait_claim(w, token, -ENOMEM)) {
					atomic_store_explicit(&t->t_park, ROOK__P_RUNNING,
							      memory_order_relaxed);
					return -ENOMEM;
				}
			} else {
				armed = true;
			}
		}
	}
	/* Fast path: already woken (pairs with the exchange in unpark). */
	if (atomic_load_explicit(&t->t_park, memory_order_acquire) != ROOK__P_WOKEN) {
		rook__tdiag_park(&t->t_stack->s_diag);
		rook__task_switch_out(ROOK__POST_PARK);
	}
	atomic_store_explicit(&t->t_park, ROOK__P_RUNNING, memory_order_relaxed);
	if (armed)
		rook__timer_disarm(&tm);
	return w->w_result;
}

int rook__wait_check(void)
{
	return rook__wait_check_fast();
}

bool rook__wait_cancellable(void)
{
	return rook_self() != NULL;
}
