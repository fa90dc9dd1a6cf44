/* SPDX-License-Identifier: MIT */
/*
 * The task object. A task is created NEW, gets a stack when it first runs,
 * and ends DONE; its memory lives until both references are gone: the
 * handle's (released by join or detach) and the execution's (dropped by the
 * worker once the task has switched away for the last time).
 *
 * Task memory is type-stable: released tasks go back to a pool and are
 * never returned to malloc, so a stale handle always points at a task slot.
 * A slot is reused by later spawns, so a handle also carries the slot's
 * generation (see rook__handle_make): every use checks it against t_gen
 * and a stale handle gets -EINVAL instead of naming the slot's next task.
 */
#ifndef ROOK_SCHED_TASK_H
#define ROOK_SCHED_TASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rook.h>

#include "sched/lock.h"
#include "sched/san.h"
#include "time/timer.h"
#include "sched/wait.h"

/* t_gen: bit 0 the slot holds a task, bit 1 its handle is held, the rest
 * a generation counter bumped each time the slot is freed. */
#define ROOK__GEN_LIVE   1u
#define ROOK__GEN_HANDLE 2u
#define ROOK__GEN_ONE    4u

/* A handle is the task's address with the low 22 bits of its generation in
 * the bits an address of a task never uses: 6 low bits (tasks are 64-byte
 * aligned) and 16 high bits (user addresses are below 2^48 on x86-64 and
 * aarch64 unless mmap is given a higher hint; the pool checks). Tag 0 is
 * never a generation's: it marks a plain pointer (rook__self()), which is
 * checked for liveness only. A stale handle aliases a live one only if its
 * slot was reused a multiple of 2^22 times while the handle was kept. */
#define ROOK__TAG_LOW   6
#define ROOK__TAG_SHIFT 48
#define ROOK__TAG_MASK  ((1u << 22) - 1)
_Static_assert(sizeof(uintptr_t) == 8, "handle tags need 64-bit pointers");

enum {
	ROOK__T_NEW = 0,
	ROOK__T_STARTED = 1,
	ROOK__T_DONE = 2,
};

/* t_park: the handshake between a task that suspends and its waker. */
enum {
	ROOK__P_RUNNING = 0,
	ROOK__P_PARKING = 1, /* decided to suspend, context not yet saved */
	ROOK__P_PARKED = 2,  /* context saved; the waker must schedule it */
	ROOK__P_WOKEN = 3,   /* woken before or while parking */
};

struct rook__stack;
struct rook__jnode;

/* A deadline scope: its deadline and the shield depth it was pushed at
 * (only scopes pushed at the current shield depth apply). */
struct rook__scope {
	uint64_t sc_deadline;
	int sc_shield;
};

/* A task's deadline scopes, allocated by its first rook_deadline_push (most
 * tasks never push one, so the task itself keeps only a pointer). */
struct rook__scopes {
	uint64_t ss_dl_eff; /* effective deadline, UINT64_MAX: none */
	int ss_n, ss_cap;
	struct rook__scope ss_items[];
};

/* Cache-line aligned: a task polled by one worker (its cancel flag, its
 * deadline) must not share a line with tasks another worker writes. Two
 * lines exactly (checked below): spawn_many keeps a million tasks live, and
 * their first touch (page faults and zeroing) is most of its cost, so rare
 * data lives elsewhere (scopes behind a pointer, the task's id in its
 * stack) and the small fields are bytes. */
struct rook_task {
	_Alignas(64) _Atomic uint32_t t_gen; /* ROOK__GEN_* */
	_Atomic int t_refs;
	_Atomic int t_status;     /* relaxed: t_state's release/acquire orders it */
	_Atomic int t_shield;     /* shield depth; written by the owner only */
	struct rook__spin t_lock; /* guards t_joiners and the DONE edge */
	_Atomic uint8_t t_state;  /* ROOK__T_* */
	_Atomic uint8_t t_park;   /* ROOK__P_* */
	_Atomic uint8_t t_cancel; /* cancellation requested (sticky) */
	_Atomic uint8_t t_flow;   /* ROOK_TRACE: a spawn or wake flow awaits its run */
	rook_fn t_fn;
	void *t_arg;
	struct rook_rt *t_rt;
	void *t_sp;                  /* saved context while not running */
	struct rook__stack *t_stack; /* NULL until first run */
	struct rook_task *t_next;    /* run queues (injection, yield) */
	struct rook__jnode *t_joiners;
	struct rook__scopes *t_scopes; /* NULL until a deadline is pushed */
	struct rook__waiter t_waiter;  /* this task's own blocking calls */
#ifdef ROOK_ASAN
	void *t_asan_fake; /* ASan fake stack while switched out */
#endif
};
#ifndef ROOK_ASAN
_Static_assert(sizeof(struct rook_task) == 128, "struct rook_task grew past two lines");
#endif

/* The task's effective deadline (UINT64_MAX: none); owner only. */
static inline uint64_t rook__task_deadline(const struct rook_task *t)
{
	return t->t_scopes ? t->t_scopes->ss_dl_eff : UINT64_MAX;
}

/* A joiner's entry on a task's t_joiners list (lives on the joiner's stack). */
struct rook__jnode {
	struct rook__waiter *j_w;
	uint32_t j_token;
	bool j_linked;
	struct rook__jnode *j_prev, *j_next;
};

/* t_lock held: put n on t's joiner list / take it off if still there. */
static inline void rook__jnode_push(struct rook_task *t, struct rook__jnode *n)
{
	n->j_linked = true;
	n->j_prev = NULL;
	n->j_next = t->t_joiners;
	if (n->j_next)
		n->j_next->j_prev = n;
	t->t_joiners = n;
}

static inline void rook__jnode_remove(struct rook_task *t, struct rook__jnode *n)
{
	if (!n->j_linked)
		return;
	if (n->j_prev)
		n->j_prev->j_next = n->j_next;
	else
		t->t_joiners = n->j_next;
	if (n->j_next)
		n->j_next->j_prev = n->j_prev;
	n->j_linked = false;
}

/* The calling task's slot, NULL outside a task. The public rook_self()
 * returns the task's handle (its address plus its generation tag, which
 * rook_spawn's handle equals); the library's own code dereferences the
 * task, so the macro sends its calls here for the plain pointer. */
struct rook_task *rook__self(void);
#define rook_self() rook__self()

void rook__task_put(struct rook_task *t); /* drop one reference */

/* Body of every task (runs on its stack); never returns. */
void rook__task_entry(void *arg);

/* Mark t DONE with status and wake its joiners. */
void rook__task_finish(struct rook_task *t, int status);

/* A wrapper that keeps books on the tasks it spawns (a group's children)
 * must hear of a task that ends without running: no stack for its first
 * run (-ENOMEM), or cancelled before it (-ECANCELED, rook_rt_stop). For a
 * task whose body is fn, rook__task_finish then calls unrun(arg, status)
 * on the finishing worker, before the joiners are woken: it must not
 * block. At most ROOK__UNRUN_MAX registrations, made before any such
 * task is spawned (a constructor); false if the table is full. */
#define ROOK__UNRUN_MAX 4
bool rook__task_on_unrun(rook_fn fn, void (*unrun)(void *arg, int status));

/* Make a parked task runnable again (exactly once per park). */
void rook__task_unpark(struct rook_task *t);
/* The same, but t goes to the back of the FIFO yield queue (IO wake-ups). */
void rook__task_unpark_fifo(struct rook_task *t);

/* Request cancellation of t (no handle needed: the caller guarantees t is
 * alive, e.g. by holding a reference). See rook_cancel. */
void rook__task_cancel(struct rook_task *t);

/* True if the caller (a task) has a cancellation to deliver now. */
bool rook__task_cancel_pending(const struct rook_task *t);

/* Take a reference only if the task is still referenced (type-stable
 * memory makes this safe on a stale pointer). */
bool rook__task_tryget(struct rook_task *t);

/* Call fn on every task slot ever allocated (live or not). */
void rook__task_foreach(void (*fn)(struct rook_task *t, void *ctx), void *ctx);

/* Wait until t is DONE without releasing it: 0, -ECANCELED, -ETIMEDOUT. */
int rook__task_wait_done(struct rook_task *t);
/* The same for the task of generation tag (rook__gen_tag; 0: any): 0 at
 * once if the slot has moved on (that task finished). */
int rook__task_wait_gen(struct rook_task *t, uint32_t tag);

/* Called first thing on a task's new stack (sanitizer bookkeeping). */
void rook__task_started(void);

struct rook__task_cache;
void rook__task_cache_drain(struct rook__task_cache *c);

static inline uint32_t rook__gen_tag(uint32_t gen)
{
	return (gen / ROOK__GEN_ONE) & ROOK__TAG_MASK;
}

static inline struct rook_task *rook__handle_make(struct rook_task *t, uint32_t gen)
{
	uint32_t tag = rook__gen_tag(gen);
	uintptr_t lo = tag & ((1u << ROOK__TAG_LOW) - 1), hi = tag >> ROOK__TAG_LOW;
	return (struct rook_task *)((uintptr_t)t | lo | (hi << ROOK__TAG_SHIFT));
}

/* The slot a handle points at, and its tag in *tag (0: a plain pointer). */
static inline struct rook_task *rook__handle_slot(const struct rook_task *h, uint32_t *tag)
{
	uintptr_t p = (uintptr_t)h;
	*tag = (uint32_t)(p & ((1u << ROOK__TAG_LOW) - 1)) | (uint32_t)(p >> ROOK__TAG_SHIFT)
								 << ROOK__TAG_LOW;
	return (struct rook_task *)(p & ((((uintptr_t)1 << ROOK__TAG_SHIFT) - 1) &
					 ~(uintptr_t)((1u << ROOK__TAG_LOW) - 1)));
}

/* Does t_gen value g belong to the task handle tag names (and is it live)? */
static inline bool rook__gen_match(uint32_t g, uint32_t tag)
{
	return (g & ROOK__GEN_LIVE) && (tag == 0 || rook__gen_tag(g) == tag);
}

/* A live task (its slot holds a task: a handle, or rook__self()). */
static inline bool rook__task_alive(const struct rook_task *t)
{
	return t && (atomic_load_explicit(&((struct rook_task *)t)->t_gen, memory_order_relaxed) &
		     ROOK__GEN_LIVE);
}

/*
 * The task handle h names while its handle is held, else NULL (NULL, stale,
 * released). The answer stays true only for a caller that holds the handle
 * (nobody else may release it meanwhile but a concurrent join, which
 * rook__handle_release settles): a held handle keeps the slot from being
 * freed. *gen gets the generation word seen, for rook__handle_release.
 */
static inline struct rook_task *rook__handle_get(const struct rook_task *h, uint32_t *gen)
{
	if (!h)
		return NULL;
	uint32_t tag;
	struct rook_task *t = rook__handle_slot(h, &tag);
	uint32_t g = atomic_load_explicit(&t->t_gen, memory_order_acquire);
	if (!rook__gen_match(g, tag) || !(g & ROOK__GEN_HANDLE))
		return NULL;
	*gen = g;
	return t;
}

/* Give up the handle's reference exactly once: false if it was already
 * released (a second join or detach) or the slot moved on from gen (what
 * rook__handle_get saw). The CAS on the whole word makes two concurrent
 * joins, or a join racing a reuse of the slot, release at most once and
 * only the incarnation they checked. _n drops n references in one step:
 * the handle's and n - 1 the caller holds (an adopted child's run). */
bool rook__handle_release_n(struct rook_task *t, uint32_t gen, int n);

static inline bool rook__handle_release(struct rook_task *t, uint32_t gen)
{
	return rook__handle_release_n(t, gen, 1);
}

/* Take a reference on the task h names (any thread, any handle state, even
 * a stale one): NULL if that incarnation is gone. With the reference held
 * the slot cannot be freed or reused; drop it with rook__task_put. */
struct rook_task *rook__handle_ref(const struct rook_task *h);

#endif
