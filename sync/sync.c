/* SPDX-License-Identifier: MIT */
/*
 * Task-aware mutex, semaphore, event and condition variable, usable from
 * tasks on any worker and from plain threads. Each object has a spinlock
 * over a FIFO list of waiters (sync/waitq.h); a waiting task is suspended,
 * a waiting plain thread blocks on its futex.
 *
 * Fairness is by direct hand-off: unlock and release give the lock or the
 * permit to the first waiter whose claim succeeds, so nobody barges past a
 * queued waiter, and a waiter that was cancelled or timed out (its claim
 * fails) is skipped without losing the lock, the permit or the notify.
 * Invariants under each object's lock: a mutex with linked waiters is owned;
 * a semaphore with linked waiters has value 0.
 *
 * The mutex owner word m_owner holds the owner's waiter address (a task's
 * embedded waiter or a plain thread's thread-local one: both unique while
 * the owner lives) with bit 0 set while waiters may be linked. Lock and
 * unlock without contention are one compare-and-swap on it; bit 0 is set
 * and cleared only under m_lock and sends both to the slow path, where the
 * hand-off happens.
 */
#include "sync/sync.h"

#include "sched/check.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>

#include "sched/alloc.h"
#include "sched/lock.h"
#include "sched/task.h"
#include "sched/wait.h"
#include "sync/waitq.h"
#include "diag/tdiag.h"

#define M_WAITERS ((uintptr_t)1)

struct rook_mutex {
	_Atomic uintptr_t m_owner;    /* owner's waiter | M_WAITERS, 0 unlocked */
	_Atomic uint32_t m_owner_gen; /* the owning task's generation (0: a thread) */
	struct rook__spin m_lock;
	struct rook__waitq m_waiters;
};

struct rook_sem {
	struct rook__spin s_lock;
	unsigned s_value;
	unsigned s_max; /* 0: unbounded */
	struct rook__waitq s_waiters;
};

struct rook_event {
	struct rook__spin e_lock;
	_Atomic bool e_set;
	struct rook__waitq e_waiters;
};

struct rook_cond {
	struct rook__spin c_lock;
	struct rook__waitq c_waiters;
};

/*
 * Called with *lock held: wait on wq, unlocking. Returns the wait's result
 * (0 granted, -ECANCELED, -ETIMEDOUT). A waiter that was not granted
 * unlinks itself under the lock again.
 */
static int wait_on(struct rook__spin *lock, struct rook__waitq *wq, bool cancellable)
{
	struct rook__waiter *w = rook__waiter_self();
	struct rook__wnode n;

	rook__waitq_push(wq, &n, w, cancellable, NULL);
	rook__spin_unlock(lock);
	int r = rook__wait_park(w, n.n_token);
	if (n.n_done)
		return r;
	rook__spin_lock(lock);
	if (n.n_linked)
		rook__waitq_unlink(wq, &n);
	rook__spin_unlock(lock);
	return r;
}

/* ---- mutex ------------------------------------------------------------- */

int rook_mutex_create(struct rook_mutex **mp)
{
	if (!mp)
		return -EINVAL;
	struct rook_mutex *m = rook__calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	*mp = m;
	return 0;
}

void rook_mutex_destroy(struct rook_mutex *m)
{
	rook__free(m);
}

static inline uintptr_t self_id(void)
{
	return (uintptr_t)rook__waiter_self();
}

/* A task's waiter address outlives it (the slot is reused), so ownership
 * is the address plus the generation: a task in a dead owner's slot does
 * not own its mutexes. A plain thread's generation is a number of its own
 * (a new thread's waiter may take an exited one's address). It is written
 * by whoever makes a task the owner; read only where m_owner names the
 * reader, so either the reader wrote it or the owner it names is gone. */
static uint32_t gen_of(uintptr_t w)
{
	struct rook_task *t = ((struct rook__waiter *)w)->w_task;
	return t ? atomic_load_explicit(&t->t_gen, memory_order_relaxed) / ROOK__GEN_ONE
		 : ((struct rook__waiter *)w)->w_thread_gen;
}

static void own(struct rook_mutex *m, uintptr_t me)
{
	atomic_store_explicit(&m->m_owner_gen, gen_of(me), memory_order_relaxed);
}

static bool owned_by(struct rook_mutex *m, uintptr_t o, uintptr_t me)
{
	return (o & ~M_WAITERS) == me &&
	       atomic_load_explicit(&m->m_owner_gen, memory_order_relaxed) == gen_of(me);
}

/* The slow path of lock: queue behind the owner, or take it if it left. */
static int lock_slow(struct rook_mutex *m, uintptr_t me, bool cancellable)
{
	rook__spin_lock(&m->m_lock);
	for (;;) {
		uintptr_t o = atomic_load_explicit(&m->m_owner, memory_order_relaxed);
		if (o == 0) {
			/* Acquire: pairs with the release in unlock. */
			if (atomic_compare_exchange_weak_explicit(
				&m->m_owner, &o, me, memory_order_acquire, memory_order_relaxed)) {
				own(m, me);
				rook__spin_unlock(&m->m_lock);
				return 0;
			}
			continue;
		}
		/* Relaxed: the bit only routes the owner's unlock to m_lock,
		 * which orders everything else. */
		if ((o & M_WAITERS) ||
		    atomic_compare_exchange_weak_explicit(
			&m->m_owner, &o, o | M_WAITERS, memory_order_relaxed, memory_order_relaxed))
			break;
	}
	/* Granted means unlock already made us the owner. */
	return wait_on(&m->m_lock, &m->m_waiters, cancellable);
}

static int lock(struct rook_mutex *m, uintptr_t me, bool cancellable)
{
	uintptr_t o = 0;

	/* Acquire: pairs with the release in unlock. */
	if (atomic_compare_exchange_strong_explicit(&m->m_owner, &o, me, memory_order_acquire,
						    memory_order_relaxed)) {
		own(m, me);
		return 0;
	}
	if (owned_by(m, o, me))
		return -EDEADLK;
	return lock_slow(m, me, cancellable);
}

int rook_mutex_lock(struct rook_mutex *m)
{
	ROOK__DIAG_CALL("rook_mutex_lock");
	if (!m)
		return -EINVAL;
	int r = rook__wait_check_fast();
	if (r)
		return r;
	return lock(m, self_id(), rook__wait_cancellable());
}

int rook_mutex_trylock(struct rook_mutex *m)
{
	if (!m)
		return -EINVAL;
	uintptr_t me = self_id(), o = 0;
	if (atomic_compare_exchange_strong_explicit(&m->m_owner, &o, me, memory_order_acquire,
						    memory_order_relaxed)) {
		own(m, me);
		return 0;
	}
	return owned_by(m, o, me) ? -EDEADLK : -EBUSY;
}

static int unlock(struct rook_mutex *m, uintptr_t me)
{
	struct rook__waiter *wake = NULL;
	uintptr_t o = atomic_load_explicit(&m->m_owner, memory_order_relaxed);

	if (!owned_by(m, o, me))
		return -EPERM;
	/* Release: pairs with the acquire of the next lock. */
	if (o == me && atomic_compare_exchange_strong_explicit(
			   &m->m_owner, &o, 0, memory_order_release, memory_order_relaxed))
		return 0;
	/* M_WAITERS is set (it cannot clear without m_lock): hand off. */
	rook__spin_lock(&m->m_lock);
	struct rook__wnode *n = rook__waitq_claim_first(&m->m_waiters, 0);
	uintptr_t next = 0;
	if (n) {
		next = (uintptr_t)n->n_w;
		own(m, next);
		if (!rook__waitq_empty(&m->m_waiters))
			next |= M_WAITERS;
		rook__waitq_grant(n, &wake);
	}
	/* Release: pairs with the acquire of a later lock; the new owner
	 * itself is ordered by its claim and wake. */
	atomic_store_explicit(&m->m_owner, next, memory_order_release);
	rook__spin_unlock(&m->m_lock);
	rook__waitq_wake_all(wake);
	return 0;
}

int rook_mutex_unlock(struct rook_mutex *m)
{
	if (!m)
		return -EINVAL;
	return unlock(m, self_id());
}

size_t rook__mutex_waiters(struct rook_mutex *m)
{
	rook__spin_lock(&m->m_lock);
	size_t n = m->m_waiters.wq_len;
	rook__spin_unlock(&m->m_lock);
	return n;
}

/* ---- semaphore ----------------------------------------------------------- */

int rook_sem_create(struct rook_sem **sp, unsigned value, unsigned max)
{
	if (!sp || (max && value > max))
		return -EINVAL;
	struct rook_sem *s = rook__calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->s_value = value;
	s->s_max = max;
	*sp = s;
	return 0;
}

void rook_sem_destroy(struct rook_sem *s)
{
	rook__free(s);
}

int rook_sem_acquire(struct rook_sem *s)
{
	ROOK__DIAG_CALL("rook_sem_acquire");
	if (!s)
		return -EINVAL;
	int r = rook__wait_check_fast();
	if (r)
		return r;
	rook__spin_lock(&s->s_lock);
	if (s->s_value > 0) {
		s->s_value--;
		rook__spin_unlock(&s->s_lock);
		return 0;
	}
	/* Granted means a release handed its permit to us. */
	return wait_on(&s->s_lock, &s->s_waiters, rook__wait_cancellable());
}

int rook_sem_try_acquire(struct rook_sem *s)
{
	if (!s)
		return -EINVAL;
	rook__spin_lock(&s->s_lock);
	int r = -EAGAIN;
	if (s->s_value > 0) {
		s->s_value--;
		r = 0;
	}
	rook__spin_unlock(&s->s_lock);
	return r;
}

int rook_sem_release(struct rook_sem *s)
{
	struct rook__waiter *wake = NULL;
	int r = 0;

	if (!s)
		return -EINVAL;
	rook__spin_lock(&s->s_lock);
	struct rook__wnode *n = rook__waitq_claim_first(&s->s_waiters, 0);
	if (n)
		rook__waitq_grant(n, &wake);
	else if (s->s_value == (s->s_max ? s->s_max : UINT_MAX))
		r = -EOVERFLOW;
	else
		s->s_value++;
	rook__spin_unlock(&s->s_lock);
	rook__waitq_wake_all(wake);
	return r;
}

size_t rook__sem_waiters(struct rook_sem *s)
{
	rook__spin_lock(&s->s_lock);
	size_t n = s->s_waiters.wq_len;
	rook__spin_unlock(&s->s_lock);
	return n;
}

unsigned rook__sem_value(struct rook_sem *s)
{
	rook__spin_lock(&s->s_lock);
	unsigned v = s->s_value;
	rook__spin_unlock(&s->s_lock);
	return v;
}

/* ---- event --------------------------------------------------------------- */

int rook_event_create(struct rook_event **ep)
{
	if (!ep)
		return -EINVAL;
	struct rook_event *e = rook__calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	*ep = e;
	return 0;
}

void rook_event_destroy(struct rook_event *e)
{
	rook__free(e);
}

void rook_event_set(struct rook_event *e)
{
	struct rook__waiter *wake = NULL;

	if (!e)
		return;
	rook__spin_lock(&e->e_lock);
	/* Release: pairs with the acquire load in wait and is_set. */
	atomic_store_explicit(&e->e_set, true, memory_order_release);
	rook__waitq_claim_all(&e->e_waiters, 0, &wake);
	rook__spin_unlock(&e->e_lock);
	rook__waitq_wake_all(wake);
}

void rook_event_clear(struct rook_event *e)
{
	if (!e)
		return;
	/* Waiters claimed by an earlier set stay woken: clear only affects
	 * later waits. Relaxed: m_lock orders it against waits and sets. */
	rook__spin_lock(&e->e_lock);
	atomic_store_explicit(&e->e_set, false, memory_order_relaxed);
	rook__spin_unlock(&e->e_lock);
}

/* e was seen set: return only once the set that did it has let go of e
 * (it unlocks after its store), so that the caller may destroy e at once,
 * as a waiter woken by it may. Acquire: pairs with that unlock. */
static void set_done(const struct rook_event *e)
{
	struct rook_event *m = (struct rook_event *)e;
	while (atomic_load_explicit(&m->e_lock.s_held, memory_order_acquire))
		rook__cpu_relax();
}

bool rook_event_is_set(const struct rook_event *e)
{
	/* Acquire: pairs with the release store in set. */
	if (!e || !atomic_load_explicit(&((struct rook_event *)e)->e_set, memory_order_acquire))
		return false;
	set_done(e);
	return true;
}

int rook_event_wait(struct rook_event *e)
{
	if (!e)
		return -EINVAL;
	int r = rook__wait_check_fast();
	if (r)
		return r;
	/* Acquire: pairs with the release store in set. */
	if (atomic_load_explicit(&e->e_set, memory_order_acquire)) {
		set_done(e);
		return 0;
	}
	rook__spin_lock(&e->e_lock);
	if (atomic_load_explicit(&e->e_set, memory_order_relaxed)) {
		rook__spin_unlock(&e->e_lock);
		return 0;
	}
	return wait_on(&e->e_lock, &e->e_waiters, rook__wait_cancellable());
}

size_t rook__event_waiters(struct rook_event *e)
{
	rook__spin_lock(&e->e_lock);
	size_t n = e->e_waiters.wq_len;
	rook__spin_unlock(&e->e_lock);
	return n;
}

/* ---- condition variable -------------------------------------------------- */

int rook_cond_create(struct rook_cond **cp)
{
	if (!cp)
		return -EINVAL;
	struct rook_cond *c = rook__calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	*cp = c;
	return 0;
}

void rook_cond_destroy(struct rook_cond *c)
{
	rook__free(c);
}

int rook_cond_wait(struct rook_cond *c, struct rook_mutex *m)
{
	ROOK__DIAG_CALL("rook_cond_wait");
	struct rook__waiter *w = rook__waiter_self();
	uintptr_t me = (uintptr_t)w;
	struct rook__wnode n;

	if (!c || !m)
		return -EINVAL;
	if (!owned_by(m, atomic_load_explicit(&m->m_owner, memory_order_relaxed), me))
		return -EPERM;
	int r = rook__wait_check_fast();
	if (r)
		return r; /* still holding m */
	/* Linked before m is released, so a signal after the release finds
	 * us; a signal whose claim loses to a cancel goes to the next waiter
	 * instead, so no notify is lost. */
	rook__spin_lock(&c->c_lock);
	rook__waitq_push(&c->c_waiters, &n, w, rook__wait_cancellable(), NULL);
	rook__spin_unlock(&c->c_lock);
	unlock(m, me);
	r = rook__wait_park(w, n.n_token);
	if (!n.n_done) {
		rook__spin_lock(&c->c_lock);
		if (n.n_linked)
			rook__waitq_unlink(&c->c_waiters, &n);
		rook__spin_unlock(&c->c_lock);
	}
	/* Re-acquire shielded, whatever the wait returned; a deadline that
	 * still ends the re-lock's wait only makes us queue again. */
	while (lock(m, me, false) != 0)
		;
	return r;
}

void rook_cond_signal(struct rook_cond *c)
{
	struct rook__waiter *wake = NULL;

	if (!c)
		return;
	rook__spin_lock(&c->c_lock);
	struct rook__wnode *n = rook__waitq_claim_first(&c->c_waiters, 0);
	if (n)
		rook__waitq_grant(n, &wake);
	rook__spin_unlock(&c->c_lock);
	rook__waitq_wake_all(wake);
}

void rook_cond_broadcast(struct rook_cond *c)
{
	struct rook__waiter *wake = NULL;

	if (!c)
		return;
	rook__spin_lock(&c->c_lock);
	rook__waitq_claim_all(&c->c_waiters, 0, &wake);
	rook__spin_unlock(&c->c_lock);
	rook__waitq_wake_all(wake);
}

size_t rook__cond_waiters(struct rook_cond *c)
{
	rook__spin_lock(&c->c_lock);
	size_t n = c->c_waiters.wq_len;
	rook__spin_unlock(&c->c_lock);
	return n;
}
