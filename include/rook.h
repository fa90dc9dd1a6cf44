/* SPDX-License-Identifier: MIT */
/*
 * rook — an M:N runtime of green threads for C11.
 *
 * Conventions (every call below):
 * - A call that can fail returns int (or ssize_t): 0 or a non-negative count
 *   on success, a negative errno value on failure. errno is never the
 *   channel: a task can resume on another thread after any blocking call.
 * - Objects come back through out-parameters written only on success.
 * - Times are uint64_t nanoseconds on CLOCK_MONOTONIC.
 * - A "blocking call" may suspend the calling task (only the task, never its
 *   worker thread). Blocking calls are the only cancellation points.
 * - Pointers are borrowed for the duration of the call unless a contract
 *   says otherwise.
 *
 * This header needs only libc headers.
 */
#ifndef ROOK_H
#define ROOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ROOK_VERSION_MAJOR 0
#define ROOK_VERSION_MINOR 2

#define ROOK_USEC ((uint64_t)1000)
#define ROOK_MSEC ((uint64_t)1000 * 1000)
#define ROOK_SEC  ((uint64_t)1000 * 1000 * 1000)

#if defined(__GNUC__)
#define ROOK_API __attribute__((visibility("default")))
#else
#define ROOK_API
#endif

/* ------------------------------------------------------------------ */
/* Runtime                                                             */
/* ------------------------------------------------------------------ */

/* A task body: returns 0 or a negative errno value; that is its status. */
typedef int (*rook_fn)(void *arg);

/* Do not pin worker threads to cores (also: environment ROOK_NO_PIN=1). */
#define ROOK_NO_PIN    0x1u
#define ROOK_FLAGS_ALL (ROOK_NO_PIN)

/* Limits checked by rook_run / rook_rt_start (-EINVAL outside them). */
#define ROOK_MAX_WORKERS      1024u
#define ROOK_MIN_STACK        ((size_t)16 * 1024)
#define ROOK_MAX_STACK        ((size_t)256 * 1024 * 1024)
#define ROOK_MAX_RING_ENTRIES 32768u

struct rook_config {
	unsigned workers;      /* 0: one per usable core (hwloc); 1: single-threaded */
	size_t stack_size;     /* per task; 0: default 64 KiB (rounded up to pages) */
	unsigned ring_entries; /* io_uring SQ entries per worker; 0: default */
	unsigned flags;        /* ROOK_NO_PIN; unknown bits: -EINVAL */
	/* Room for fields added later without changing the struct's size.
	 * Ignored: a field added here will be read only when a new flags bit
	 * says it is set, so a struct whose four fields are assigned one by
	 * one, the rest left as they were, is valid. */
	uint64_t reserved[4];
};

struct rook_rt;
struct rook_task;

/*
 * rook_run — asyncio.run: start a runtime, run main(arg) as a task, and when
 * main returns cancel every task still running, wait for them, stop the
 * workers and return main's status.
 * cfg may be NULL (defaults). The environment variables ROOK_WORKERS,
 * ROOK_STACK_SIZE and ROOK_NO_PIN override it.
 * Call from a plain thread. Returns main's status, or:
 *   -EINVAL  main is NULL, unknown flag bits, a non-zero reserved word,
 *            sizes out of range, or a malformed environment variable;
 *   -EBUSY   called from inside a task;
 *   -ENOMEM  the runtime could not allocate its workers;
 *   -EAGAIN  the worker threads could not be created;
 *   -EMFILE, -ENFILE, -ENOMEM  a worker's io_uring ring, epoll instance or
 *            eventfd could not be made (after one line on stderr). There
 *            is no fallback for one worker or for the runtime (the backend
 *            is one per runtime, and the shortage would hit epoll too):
 *            the workers already up stop, no thread or fd is left, and a
 *            later start tries again;
 *   -ENOSYS  a worker's ring was refused for another reason (see IO).
 */
ROOK_API int rook_run(const struct rook_config *cfg, rook_fn main, void *arg);

/*
 * For programs that keep their own threads. rook_rt_start starts a runtime
 * and writes it to *rt (errors as rook_run). rook_rt_spawn may be called from
 * any thread, inside or outside the runtime; t may be NULL for a detached
 * task (-EINVAL: rt or fn NULL; -EPIPE: the runtime is stopping; -ENOMEM).
 * rook_rt_stop cancels every task, waits for all of them to end, stops the
 * workers and frees rt (-EINVAL: rt NULL; -EBUSY: called from a task of rt).
 */
ROOK_API int rook_rt_start(struct rook_rt **rt, const struct rook_config *cfg);
ROOK_API int rook_rt_spawn(struct rook_rt *rt, struct rook_task **t, rook_fn fn, void *arg);
ROOK_API int rook_rt_stop(struct rook_rt *rt);

/* ------------------------------------------------------------------ */
/* Tasks                                                               */
/* ------------------------------------------------------------------ */

/*
 * rook_spawn — start fn(arg) as a new task of the caller's runtime. With t
 * NULL the task is detached; otherwise *t is a handle that must be released
 * by a rook_join that returns 0 or by rook_detach. arg is borrowed by the
 * task until it returns. Never suspends.
 *   -EINVAL fn NULL; -EPERM not called from a task (use rook_rt_spawn);
 *   -EPIPE the runtime is stopping (main returned or rook_rt_stop was
 *   called: no new task starts; a spawn that races with the stop may
 *   instead succeed with a task that ends -ECANCELED without running);
 *   -ENOMEM no memory for the task.
 * A task whose stack cannot be allocated when it first runs ends with
 * status -ENOMEM without running fn; the runtime keeps going.
 */
ROOK_API int rook_spawn(struct rook_task **t, rook_fn fn, void *arg);

/*
 * rook_join — wait until t has finished; store its status (fn's return
 * value, or -ECANCELED if it was cancelled before it started) in *status
 * (may be NULL) and release the handle. Blocking call; also works from a
 * plain thread (blocks that thread).
 *   0           t finished, handle released;
 *   -EINVAL     t NULL, or a handle already released or detached (a
 *               stale handle: each handle carries its task's generation,
 *               so it never names a later task that reused the slot), or
 *               released by a concurrent join or gather (one of two joins
 *               of a handle wins);
 *   -EDEADLK    a task joining itself;
 *   -ECANCELED  the caller was cancelled (t keeps running, handle valid);
 *   -ETIMEDOUT  the caller's deadline passed (likewise).
 * A t that has not started and is the newest task queued on the caller's
 * worker runs at once, on its own stack, in the caller's place (fork-join
 * without a trip through the scheduler). A cancellation of the caller is
 * then seen when t ends, blocks or yields; a caller with a deadline never
 * joins this way.
 */
ROOK_API int rook_join(struct rook_task *t, int *status);

/*
 * rook_cancel — request cancellation of t and return at once. t sees it at
 * its current or next blocking call, which returns -ECANCELED, and so does
 * every later blocking call until t returns (level-triggered). A task
 * cancelled before it starts never runs (status -ECANCELED). Cancelling a
 * finished task, or cancelling twice, does nothing. Any thread.
 *   0 the request was recorded (or t was already finished); -EINVAL t NULL
 *   or stale (its task has ended and been released: a stale handle never
 *   cancels the task that reused its slot). A handle given up with
 *   rook_detach still cancels its task while it runs; once the task has
 *   ended, the answer is 0 until its slot is freed, then -EINVAL.
 */
ROOK_API int rook_cancel(struct rook_task *t);

/* Release the handle without waiting; the task keeps running. NULL, or a
 * handle already released: no-op. */
ROOK_API void rook_detach(struct rook_task *t);

/* True once t has finished (never blocks). NULL: false; a released handle
 * whose task is gone: true (it finished; never the state of a later task). */
ROOK_API bool rook_done(const struct rook_task *t);

/*
 * rook_yield — let other runnable tasks run, then continue (a checkpoint).
 *   0; -ECANCELED the caller was cancelled, or -ETIMEDOUT a deadline
 *   scope of the caller has expired (both return at once, as every
 *   blocking call does); -EPERM called outside a task.
 */
ROOK_API int rook_yield(void);

/* The calling task's handle (equal to the one rook_spawn gave), or NULL
 * outside a task. */
ROOK_API struct rook_task *rook_self(void);

/* Number of worker threads of the caller's runtime (0 outside a task). */
ROOK_API unsigned rook_workers(void);

/* ------------------------------------------------------------------ */
/* Time, deadlines, shielding                                          */
/* ------------------------------------------------------------------ */

/* Deadline scopes a task may nest (rook_deadline_push: -ENOSPC beyond). */
#define ROOK_MAX_SCOPES 64

/* CLOCK_MONOTONIC in nanoseconds. Any thread. */
ROOK_API uint64_t rook_now(void);

/*
 * rook_sleep — suspend the calling task for ns nanoseconds (0: a yield).
 * Blocking call.
 *   0 slept; -ECANCELED cancelled; -ETIMEDOUT a deadline scope expired
 *   first; -EPERM outside a task; -ENOMEM the timer could not be queued.
 */
ROOK_API int rook_sleep(uint64_t ns);

/*
 * rook_deadline_push — asyncio.timeout(): open a scope whose deadline is
 * abs_ns (rook_now() time). While it is open and its time has passed, every
 * blocking call of the task returns -ETIMEDOUT at once, without consuming
 * anything. Scopes nest; the earliest applicable deadline wins. A deadline
 * in the past (or 0) expires at once.
 *   0; -EPERM outside a task; -ENOSPC more than ROOK_MAX_SCOPES open;
 *   -ENOMEM.
 * rook_deadline_pop — close the innermost scope; true if its deadline has
 * passed (the scope expired). With no scope open at the current shield
 * depth it does nothing and returns false.
 */
ROOK_API int rook_deadline_push(uint64_t abs_ns);
ROOK_API bool rook_deadline_pop(void);

/*
 * rook_shield_push / rook_shield_pop — a shield for cleanup code: inside it,
 * cancellation is deferred (a cancel that arrives is delivered by the first
 * blocking call after the matching pop) and deadline scopes opened outside
 * it do not apply; scopes opened inside it do. Scopes still open at the
 * pop are closed with it. Shields nest. Outside a task, or a pop with no
 * shield open: no effect.
 */
ROOK_API void rook_shield_push(void);
ROOK_API void rook_shield_pop(void);

/* ------------------------------------------------------------------ */
/* Waiting on many                                                     */
/* ------------------------------------------------------------------ */

/*
 * rook_gather — wait until every task in ts[0..n) has finished, store each
 * status in statuses[i] (argument order; statuses may be NULL) and release
 * every handle. Blocking call; tasks or plain threads.
 *   0 all done, handles released; n == 0 returns 0 at once;
 *   -EINVAL ts NULL with n > 0, an invalid/released handle, or a handle
 *   listed twice (nothing released; the handles stay valid);
 *   -EDEADLK a task gathering itself;
 *   -ECANCELED / -ETIMEDOUT the caller was interrupted: no handle is
 *   released and the tasks keep running (cancel them if that is wanted).
 * While gather waits it holds the handles: a rook_join or rook_detach of
 * one of them meanwhile gets -EINVAL / does nothing.
 */
ROOK_API int rook_gather(struct rook_task **ts, size_t n, int *statuses);

/*
 * rook_wait_any — wait until at least one task of ts[0..n) has finished and
 * return the lowest index of a finished one, without releasing it (join it
 * next). The building block of as_completed (see README). Blocking call.
 *   >= 0 an index; -EINVAL ts NULL, n == 0 or an invalid handle;
 *   -EDEADLK a task waiting on itself; -ECANCELED / -ETIMEDOUT the caller
 *   was interrupted; -ENOMEM (n > 16 needs a node array).
 */
ROOK_API int rook_wait_any(struct rook_task **ts, size_t n);

/*
 * rook_wait_for — asyncio.wait_for: run fn(arg) as a task and wait at most
 * timeout_ns for it. On timeout, or if the caller is cancelled, the task is
 * cancelled and waited for (its cleanup included) before returning. A task
 * that still produced a result other than -ECANCELED after the timeout
 * (it finished as the timer fired, or swallowed the cancellation) has that
 * result returned: a computed result is never lost.
 *   0 and fn's status in *status (may be NULL); -ETIMEDOUT; -ECANCELED the
 *   caller was cancelled; -EINVAL fn NULL; -EPERM outside a task; spawn
 *   errors (-ENOMEM, -EPIPE); -ENOSPC / -ENOMEM from pushing its deadline
 *   scope (then nothing was spawned).
 */
ROOK_API int rook_wait_for(rook_fn fn, void *arg, uint64_t timeout_ns, int *status);

/* ------------------------------------------------------------------ */
/* Task groups (structured concurrency)                                */
/* ------------------------------------------------------------------ */

struct rook_group;

/*
 * asyncio.TaskGroup. The first child that fails (a status other than 0 and
 * -ECANCELED) cancels its running siblings; children that had not started
 * yet never run. rook_group_wait returns that first failure's status.
 *
 * rook_group_create: from a task (children run on its runtime).
 *   0; -EINVAL g NULL; -EPERM outside a task; -ENOMEM.
 * rook_group_spawn: any thread; arg is borrowed until the child ends.
 *   0; -EINVAL; -ECANCELED the group has failed; -ENOMEM; -EPIPE runtime
 *   stopping. A child spawned into a cancelled group ends -ECANCELED.
 * rook_group_next: blocking; the next finished child in completion order:
 *   0 with its arg and status (either may be NULL); -ENOENT none left
 *   (all finished children taken and none running); -ECANCELED/-ETIMEDOUT
 *   the caller was interrupted (nothing taken).
 * rook_group_wait: blocking; waits until every child has ended.
 *   0 none failed, else the first failure's status; -ECANCELED/-ETIMEDOUT
 *   the caller was interrupted: the group is then cancelled and its
 *   children waited for before returning (cancelling the owner cancels
 *   the group). Finished children stay available to rook_group_next.
 * rook_group_cancel: any thread; cancels every child, running or not yet
 *   started; their -ECANCELED is not a failure.
 * rook_group_destroy: cancels the children still running, waits for them
 *   (blocking, uninterruptible), then frees the group. Calls of
 *   rook_group_wait and rook_group_next blocked in it at that moment
 *   return first (wait with the group's result; next with a child that
 *   ended, else -ENOENT); a call made after destroy returned is a use
 *   after free. NULL: no-op.
 */
ROOK_API int rook_group_create(struct rook_group **g);
ROOK_API int rook_group_spawn(struct rook_group *g, rook_fn fn, void *arg);
ROOK_API int rook_group_next(struct rook_group *g, void **arg, int *status);
ROOK_API int rook_group_wait(struct rook_group *g);
ROOK_API void rook_group_cancel(struct rook_group *g);
ROOK_API void rook_group_destroy(struct rook_group *g);

/* ------------------------------------------------------------------ */
/* Queues across threads                                               */
/* ------------------------------------------------------------------ */

/*
 * A FIFO queue of fixed-size items, copied in and out, usable between tasks
 * on any workers and plain threads (a blocked plain thread blocks its OS
 * thread; a blocked task is suspended, never its worker).
 *
 * Waiters are served strictly FIFO by direct hand-off: a put that finds a
 * waiting getter gives the item to the oldest one, a get that frees a slot
 * takes the oldest waiting putter's item, and nobody overtakes a waiter.
 * A getter that is cancelled or times out consumes nothing; a putter that
 * is cancelled or times out puts nothing (the item stays the caller's); an
 * item or a slot is never lost to a waiter that has given up: it goes to
 * the next one. A call that returns 0 has moved its item even if the
 * caller was cancelled meanwhile (the cancel is then reported by the next
 * blocking call).
 *
 * Blocking calls (put, get, join) are cancellation points: in a task with
 * a cancellation pending, or past its deadline, they return -ECANCELED or
 * -ETIMEDOUT at once, before looking at the queue. Item pointers are
 * borrowed for the duration of the call.
 */
struct rook_queue;

/*
 * rook_queue_create — a queue of items of item_size bytes holding at most
 * capacity items (0: unbounded; its ring grows as needed). Any thread;
 * never suspends. *q is written only on success.
 *   0; -EINVAL q NULL or item_size 0 (or absurdly large); -ENOMEM.
 */
ROOK_API int rook_queue_create(struct rook_queue **q, size_t item_size, size_t capacity);

/*
 * rook_queue_put — copy *item in, waiting while a bounded queue is full.
 * Blocking call; any task or plain thread.
 *   0           the item was queued or handed to a waiting getter;
 *   -EPIPE      the queue is closed (also when it is closed while we wait);
 *               nothing was queued;
 *   -ECANCELED  the caller was cancelled; nothing was queued;
 *   -ETIMEDOUT  the caller's deadline passed; nothing was queued;
 *   -ENOMEM     an unbounded queue could not grow;
 *   -EINVAL     q or item NULL.
 */
ROOK_API int rook_queue_put(struct rook_queue *q, const void *item);

/*
 * rook_queue_get — copy the oldest item out to *item, waiting while the
 * queue is empty. After close it still returns what is left, then -EPIPE.
 * Blocking call; any task or plain thread. *item is written only on 0.
 *   0           an item was copied to *item;
 *   -EPIPE      the queue is closed and empty (at once, never waits);
 *   -ECANCELED  the caller was cancelled; nothing was consumed;
 *   -ETIMEDOUT  the caller's deadline passed; nothing was consumed;
 *   -EINVAL     q or item NULL.
 */
ROOK_API int rook_queue_get(struct rook_queue *q, void *item);

/*
 * rook_queue_try_put / rook_queue_try_get — as put and get, but never
 * suspend and are not cancellation points. Any thread.
 *   0; -EAGAIN full (put: also while putters wait) or empty (get);
 *   -EPIPE closed (put), closed and empty (get); -ENOMEM (put, unbounded);
 *   -EINVAL q or item NULL.
 */
ROOK_API int rook_queue_try_put(struct rook_queue *q, const void *item);
ROOK_API int rook_queue_try_get(struct rook_queue *q, void *item);

/*
 * rook_queue_close — refuse later puts (-EPIPE) and wake every waiting
 * putter and getter with -EPIPE; items already queued can still be got.
 * Waiters in rook_queue_join keep waiting for the task_done count (as
 * asyncio's graceful shutdown does). Idempotent. Any thread; never
 * suspends. NULL: no-op.
 */
ROOK_API void rook_queue_close(struct rook_queue *q);

/*
 * rook_queue_task_done — mark one item got as processed (asyncio's
 * task_done). When every item put has been marked, join returns. Any
 * thread; never suspends.
 *   0; -EINVAL q NULL, or more task_done calls than items got.
 */
ROOK_API int rook_queue_task_done(struct rook_queue *q);

/*
 * rook_queue_join — wait until every item put has been got and marked with
 * task_done (returns at once if none is outstanding). Blocking call; any
 * task or plain thread.
 *   0; -ECANCELED; -ETIMEDOUT; -EPIPE the queue was destroyed while we
 *   waited; -EINVAL q NULL.
 */
ROOK_API int rook_queue_join(struct rook_queue *q);

/* Items now in the queue (not counting waiting putters). NULL: 0. Any
 * thread; never suspends. */
ROOK_API size_t rook_queue_len(const struct rook_queue *q);

/*
 * rook_queue_destroy — close q, wake every call still waiting on it (put,
 * get and join return -EPIPE), wait until the last of them has left q, and
 * free it with any items left. May suspend briefly, shielded (not a
 * cancellation point). The caller guarantees that no call on q is running
 * other than calls blocked in put, get or join, and that none starts
 * afterwards. NULL: no-op.
 */
ROOK_API void rook_queue_destroy(struct rook_queue *q);

/* ------------------------------------------------------------------ */
/* Synchronization                                                     */
/* ------------------------------------------------------------------ */

/*
 * asyncio's Lock, Semaphore (bounded when max > 0), Event and Condition,
 * task-aware: a waiting task is suspended (not its worker), a waiting plain
 * thread blocks. Usable across workers and from plain threads. FIFO-fair by
 * direct hand-off: unlock and release give the mutex or the permit to the
 * oldest waiter, and try-calls never overtake a queued waiter. A waiter
 * that is cancelled or times out is skipped and holds nothing: the mutex or
 * the permit goes to the next one. lock, acquire and both waits are
 * cancellation points and honour deadlines; a call that returns 0 holds
 * what it waited for even if the caller was cancelled meanwhile.
 *
 * Destroying an object that is locked or has waiters is undefined: destroy
 * only after every call on it has returned. One exception: an event may be
 * destroyed as soon as a wait on it (or rook_event_is_set) saw it set, even
 * while the rook_event_set that set it is still returning. Destroy of NULL
 * is a no-op.
 */
struct rook_mutex;
struct rook_sem;
struct rook_event;
struct rook_cond;

/*
 * A mutex is owned by the task, or the plain thread, that locked it; only
 * that owner may unlock it (a task keeps ownership across workers).
 * create: 0, -EINVAL m NULL, -ENOMEM. Any thread; never suspends.
 */
ROOK_API int rook_mutex_create(struct rook_mutex **m);

/*
 * rook_mutex_lock — blocking call; any task or plain thread.
 *   0 the caller owns m; -EDEADLK the caller already owns it; -ECANCELED;
 *   -ETIMEDOUT (neither leaves the caller owning m); -EINVAL m NULL.
 */
ROOK_API int rook_mutex_lock(struct rook_mutex *m);

/* rook_mutex_trylock — never suspends. 0 owned; -EBUSY owned by another
 * (or waiters are queued); -EDEADLK owned by the caller; -EINVAL m NULL. */
ROOK_API int rook_mutex_trylock(struct rook_mutex *m);

/* rook_mutex_unlock — never suspends; hands m to the oldest waiter, if any.
 * 0; -EPERM the caller is not the owner (or m is unlocked); -EINVAL m NULL.
 * A mutex whose owning task ended without unlocking it stays locked (it is
 * not robust): no later task owns it, whatever slot it runs in. */
ROOK_API int rook_mutex_unlock(struct rook_mutex *m);

ROOK_API void rook_mutex_destroy(struct rook_mutex *m);

/*
 * rook_sem_create — a semaphore with value permits; max > 0 makes it
 * bounded (release above max fails), max 0 unbounded. Never suspends.
 *   0; -EINVAL s NULL, or max > 0 and value > max; -ENOMEM.
 */
ROOK_API int rook_sem_create(struct rook_sem **s, unsigned value, unsigned max);

/* rook_sem_acquire — take a permit, waiting for one. Blocking call.
 * 0 the caller holds a permit; -ECANCELED; -ETIMEDOUT (holding none);
 * -EINVAL s NULL. */
ROOK_API int rook_sem_acquire(struct rook_sem *s);

/* rook_sem_try_acquire — never suspends. 0; -EAGAIN no permit free (or
 * waiters are queued); -EINVAL s NULL. */
ROOK_API int rook_sem_try_acquire(struct rook_sem *s);

/* rook_sem_release — give a permit back: to the oldest waiter if any, else
 * to the value. Any thread (need not be an acquirer); never suspends.
 * 0; -EOVERFLOW the value would exceed max (or UINT_MAX when unbounded),
 * nothing changed; -EINVAL s NULL. */
ROOK_API int rook_sem_release(struct rook_sem *s);

ROOK_API void rook_sem_destroy(struct rook_sem *s);

/* rook_event_create — an event, initially clear. 0; -EINVAL; -ENOMEM. */
ROOK_API int rook_event_create(struct rook_event **e);

/* rook_event_set — set e and wake every current waiter (a later clear does
 * not re-park them). Any thread; never suspends. NULL: no-op. */
ROOK_API void rook_event_set(struct rook_event *e);

/* rook_event_clear — clear e; later waits block until the next set. Any
 * thread; never suspends. NULL: no-op. */
ROOK_API void rook_event_clear(struct rook_event *e);

/* Whether e is set now. Never suspends. NULL: false. */
ROOK_API bool rook_event_is_set(const struct rook_event *e);

/* rook_event_wait — return once e is set (at once if it is). Blocking call
 * (a checkpoint even when set). 0; -ECANCELED; -ETIMEDOUT; -EINVAL e NULL. */
ROOK_API int rook_event_wait(struct rook_event *e);

ROOK_API void rook_event_destroy(struct rook_event *e);

/* rook_cond_create — a condition variable. 0; -EINVAL; -ENOMEM. */
ROOK_API int rook_cond_create(struct rook_cond **c);

/*
 * rook_cond_wait — release m (which the caller must own), wait for a signal
 * or broadcast, and re-acquire m before returning, whatever it returns (the
 * re-acquire cannot be cancelled). Wake-ups may be spurious: re-check the
 * predicate in a loop. Blocking call; any task or plain thread.
 *   0 signalled; -ECANCELED; -ETIMEDOUT (a signal is then passed on to
 *   the next waiter, never lost); -EPERM the caller does not own m (m is
 *   untouched); -EINVAL c or m NULL.
 */
ROOK_API int rook_cond_wait(struct rook_cond *c, struct rook_mutex *m);

/* Wake the oldest waiter (signal) or all waiters (broadcast); they then
 * re-acquire their mutex one at a time. Any thread, with or without the
 * mutex; never suspends. NULL: no-op. */
ROOK_API void rook_cond_signal(struct rook_cond *c);
ROOK_API void rook_cond_broadcast(struct rook_cond *c);

ROOK_API void rook_cond_destroy(struct rook_cond *c);

/* ------------------------------------------------------------------ */
/* IO                                                                  */
/* ------------------------------------------------------------------ */

/*
 * Every call below is a blocking call: it submits the operation on the
 * calling worker's io_uring ring and suspends only the calling task until
 * the kernel completes it. They must be called from a task: from a plain
 * thread they return -EPERM at once (use the plain syscalls there), except
 * rook_blocking, which runs fn inline.
 *
 * Cancellation and deadlines: a cancelled task, or one whose deadline
 * passes, has its operation cancelled in the kernel, and the call returns
 * only after the kernel has let go of the caller's buffers (they are never
 * written after the call returned). It then returns -ECANCELED (or
 * -ETIMEDOUT), unless the operation completed anyway with bytes moved (the
 * byte count is returned: no bytes are lost) or an fd made (rook_open,
 * rook_accept: the fd is returned, never leaked); the next blocking call
 * then reports the cancellation. A call made while a cancellation or an
 * expired deadline is pending returns at once without doing anything.
 *
 * Other results are the kernel's: a negative errno value as the matching
 * syscall would set (-EBADF, -EAGAIN, -ECONNRESET, -EPIPE, ...). An
 * operation in flight on an fd that another task closes with rook_close
 * returns -EBADF. Buffers are borrowed until the call returns. Lengths above
 * 0x7ffff000 are clamped to it (as Linux does), so a transfer may be short.
 *
 * If io_uring cannot be set up (kernel without io_uring, blocked by a
 * seccomp profile such as Docker's default, kernel.io_uring_disabled, or
 * RLIMIT_MEMLOCK too low on kernels before 5.12), rook_run and rook_rt_start
 * print one line on stderr saying so and use the epoll backend ("IO
 * backends" below); with ROOK_IO=uring they return -ENOSYS instead.
 */

/*
 * rook_read / rook_write — like pread/pwrite at offset off, or read/write
 * at (and advancing) the current file position when off < 0. Returns the
 * bytes transferred: fewer than len is a short transfer (0 from rook_read:
 * end of file). -EINVAL buf NULL with len > 0; -EBADF fd not open; -ESPIPE
 * off >= 0 on a pipe, socket or tty (as pread/pwrite). At the current
 * position of a regular file or block device the calls keep read(2)/
 * write(2) semantics on every backend: the transfer and the position
 * update are atomic with respect to other rook calls in this process on
 * the same open file (fds that share it by dup included: a lock per inode,
 * held across the transfer), a short write moves the position by what it wrote,
 * and O_APPEND appends and leaves the position at the end. Plain read(2)/
 * lseek(2) from another thread meanwhile are not serialised with them.
 * rook_write to a socket whose peer is gone returns -EPIPE without SIGPIPE
 * (it is a send with MSG_NOSIGNAL); to a pipe whose reader is gone it
 * returns -EPIPE and raises SIGPIPE, as write(2) does. A buffered write of
 * 4 KiB or more to a regular file on a disk filesystem (not O_DIRECT or
 * O_DSYNC) is done by the calling worker without suspending (a page-cache
 * copy; the task yields after 2 ms of such writes in a row); every other
 * call suspends the task until the kernel completes it. A read from a tty
 * keeps its deadline and returns what is there (tasks reading one tty
 * never block each other's workers; a reader in another process may take
 * the input first, and the worker then waits in read(2) for more); a
 * write to a tty or another character device, once
 * begun, waits until the device has taken its bytes, past a deadline or a
 * cancellation (it has no nonblocking write that leaves alone the file
 * description it shares with the shell).
 */
ROOK_API ssize_t rook_read(int fd, void *buf, size_t len, int64_t off);
ROOK_API ssize_t rook_write(int fd, const void *buf, size_t len, int64_t off);

/* rook_readv / rook_writev — scatter/gather forms (preadv/pwritev, or the
 * current position when off < 0, kept as for rook_read). iov and the
 * buffers it names are borrowed until the call returns. -EINVAL iov NULL
 * with cnt > 0, or cnt outside [0, IOV_MAX]; -EBADF; -ESPIPE as above. A
 * readv of nothing (cnt 0, or only empty buffers) returns 0 at once.
 * rook_writev to a socket whose peer is gone raises SIGPIPE as writev(2)
 * does on io_uring (no flags to pass); the epoll backend sends with
 * MSG_NOSIGNAL and only returns -EPIPE. Use rook_send, or ignore SIGPIPE. */
ROOK_API ssize_t rook_readv(int fd, const struct iovec *iov, int cnt, int64_t off);
ROOK_API ssize_t rook_writev(int fd, const struct iovec *iov, int cnt, int64_t off);

/* rook_open — openat(AT_FDCWD, path, flags, mode): the new fd, or -errno
 * (-ENOENT, -EACCES, -EMFILE, ...). -EINVAL path NULL. Add O_CLOEXEC
 * yourself if you want it. A FIFO opened without O_NONBLOCK waits for its
 * other end, as open(2) does, on the blocking pool (rook_blocking): that
 * wait, once begun, outlasts a deadline or a cancellation. */
ROOK_API int rook_open(const char *path, int flags, mode_t mode);

/*
 * rook_close — cancel every operation still in flight on fd in this
 * runtime (those calls return -EBADF), then close it. Not cancellable: the
 * fd is closed even if the caller is cancelled (a pending cancellation is
 * reported by the next blocking call). 0, or -EBADF (not an open fd), -EIO.
 */
ROOK_API int rook_close(int fd);

/* rook_fsync — fsync(fd): 0 or -errno (-EIO, -EBADF, -EINVAL). */
ROOK_API int rook_fsync(int fd);

/*
 * rook_accept — accept a connection on listening socket fd; the new fd is
 * close-on-exec. addr/len as accept(2) (both NULL, or both set, *len in
 * and out). The new fd, or -errno (-EMFILE/-ENFILE: out of fds, the
 * listener keeps working; -EINVAL addr without len).
 */
ROOK_API int rook_accept(int fd, struct sockaddr *addr, socklen_t *len);

/* rook_connect — connect(2) on socket fd: 0 or -errno (-ECONNREFUSED,
 * -ETIMEDOUT (the kernel's), -ENETUNREACH, ...). -EINVAL addr NULL. */
ROOK_API int rook_connect(int fd, const struct sockaddr *addr, socklen_t len);

/*
 * rook_recv / rook_send — recv(2)/send(2) with flags (MSG_*). Returns the
 * bytes transferred; rook_recv returns 0 when the peer has closed, and
 * -ECONNRESET when it reset. rook_send adds MSG_NOSIGNAL: a closed peer is
 * -EPIPE, never SIGPIPE. -EINVAL buf NULL with len > 0.
 */
ROOK_API ssize_t rook_recv(int fd, void *buf, size_t len, int flags);
ROOK_API ssize_t rook_send(int fd, const void *buf, size_t len, int flags);

/*
 * rook_poll — wait until fd (one another library owns: libpq, libcurl, a
 * pipe) is ready for events (POLLIN, POLLOUT, ...; one-shot). Returns the
 * ready events (> 0; POLLERR and POLLHUP are always reported), or -errno.
 * -EINVAL events == 0.
 */
ROOK_API int rook_poll(int fd, short events);

/*
 * rook_tcp_listen — a TCP socket bound to host:port and listening with
 * backlog (<= 0: SOMAXCONN), SO_REUSEADDR set, close-on-exec. host NULL
 * or "" binds every address: "::" with IPV6_V6ONLY off, so IPv4 and IPv6
 * clients both connect, or 0.0.0.0 where the kernel has no IPv6; names are
 * resolved on the blocking pool, numeric addresses directly. Port 0 picks
 * a free port (read it back with getsockname). The fd, or -errno:
 * -ENOENT the name does not resolve, -EADDRINUSE, -EACCES, -EAGAIN
 * temporary resolver failure, -ENOMEM.
 */
ROOK_API int rook_tcp_listen(const char *host, uint16_t port, int backlog);

/*
 * rook_tcp_connect — resolve host (on the blocking pool unless numeric)
 * and connect to the first address that accepts, close-on-exec. The
 * connected fd, or the last address's error (-ECONNREFUSED, ...), -ENOENT
 * the name does not resolve, -EINVAL host NULL or "".
 */
ROOK_API int rook_tcp_connect(const char *host, uint16_t port);

/*
 * rook_read_full / rook_write_full — read (at the current position) until
 * len bytes or end of file; write until all len bytes are written. Return
 * the bytes transferred: len, or fewer only at end of file (read) or when
 * an error (or cancellation) stops a transfer that had moved bytes already
 * (the error then shows at the next call). With nothing transferred, the
 * error itself. Both work on files, pipes and sockets (rook_write_full uses
 * rook_write: a socket whose peer is gone is -EPIPE, with no SIGPIPE; a
 * pipe raises SIGPIPE unless it is ignored). -EINVAL len above SSIZE_MAX.
 */
ROOK_API ssize_t rook_read_full(int fd, void *buf, size_t len);
ROOK_API ssize_t rook_write_full(int fd, const void *buf, size_t len);

/*
 * rook_blocking — asyncio's run_in_executor: run fn(arg) on the blocking
 * pool (threads created on demand up to a limit, 64; an idle thread exits
 * after 10 s) while the calling task is suspended, and return fn's return
 * value. arg is borrowed until the call returns. fn runs on a pool thread:
 * it must not call rook's blocking calls expecting a task (it is a plain
 * thread there). Cancellation: a job not started yet is withdrawn and the
 * call returns -ECANCELED / -ETIMEDOUT; a running fn cannot be interrupted,
 * so the call waits for it and returns its value. From a plain thread fn
 * runs inline. -EINVAL fn NULL; -EAGAIN the pool has no thread and none
 * could be created.
 *
 * fork: a runtime does not survive fork (the child has only the thread
 * that forked; its workers, rings and tasks are the parent's), so the child
 * must not use one started before the fork. A new runtime can be started in
 * the child: the blocking pool and the file-position locks start afresh
 * there (pthread_atfork), so rook_blocking and name resolution work. Call
 * fork outside any task, or from one and then only exec or _exit.
 */
ROOK_API int rook_blocking(rook_fn fn, void *arg);

/* ------------------------------------------------------------------ */
/* IO backends                                                        */
/* ------------------------------------------------------------------ */

/*
 * Every IO call above has one contract and two implementations, chosen per
 * runtime by rook_rt_start / rook_run:
 * - "io_uring": one ring per worker (Linux >= 5.11), used when a ring can be
 *   set up and a NOP goes through io_uring_enter under the process's live
 *   seccomp filter;
 * - "epoll": one epoll instance per worker; sockets and pipes through
 *   nonblocking syscalls (MSG_DONTWAIT, RWF_NOWAIT) and readiness, regular
 *   files through the rook_blocking pool (page-cache reads and buffered
 *   writes inline where they cannot block). rook_accept and rook_connect set
 *   O_NONBLOCK on their socket (accept and connect have no per-call flag).
 * Selection: the environment variable ROOK_IO=uring|epoll|auto (default,
 * also when unset or empty). auto uses io_uring where it works, else epoll
 * with one line on stderr naming the reason (for example "rook: io_uring is
 * not available (Operation not permitted: denied by seccomp or
 * kernel.io_uring_disabled?); using epoll"). ROOK_IO=uring where io_uring is
 * denied makes the start fail with -ENOSYS (and one line); another value of
 * ROOK_IO fails with -EINVAL. The probe's answer is remembered for the
 * process, except a shortage (-EMFILE, -ENFILE, -ENOMEM, -EAGAIN): that
 * start uses epoll and a later start probes again.
 *
 * rook_io_backend: "io_uring" or "epoll" for the caller's runtime (called
 * from one of its tasks); NULL outside a runtime. The string is static.
 */
ROOK_API const char *rook_io_backend(void);

/* ------------------------------------------------------------------ */
/* Streams and servers                                                */
/* ------------------------------------------------------------------ */

/*
 * Buffered streams over a socket or pipe (asyncio's StreamReader and
 * StreamWriter, Go's bufio). A stream is used by one task at a time; every
 * call below except open is a blocking call with the IO calls' rules for
 * deadlines and cancellation. A read that fails (deadline, cancel, error,
 * a line that does not fit) consumes nothing the caller did not get: the
 * bytes received so far stay buffered for the next call. The read buffer
 * is taken only once data is ready (the stream polls for POLLIN first), so
 * an idle stream blocked in a read holds no buffer.
 *
 * rook_stream_open — a stream over fd (borrowed until rook_stream_close,
 * which closes it: use fd only through the stream meanwhile, and never
 * close(2) it, or a wait on the epoll backend may not end; rook_close from
 * another task ends the stream's waits with -EBADF) with bufsize bytes of
 * read and of write buffer (0: 8 KiB).
 * Any thread; never suspends. 0; -EINVAL s NULL or fd < 0; -EBADF; -ENOMEM.
 */
struct rook_stream;
ROOK_API int rook_stream_open(struct rook_stream **s, int fd, size_t bufsize);

/* rook_stream_read — what is buffered (up to len), else one receive.
 * > 0 bytes; 0 end of file (or len 0); -errno (-ECONNRESET, -ECANCELED,
 * -ETIMEDOUT ...); -EINVAL s NULL or buf NULL with len > 0. */
ROOK_API ssize_t rook_stream_read(struct rook_stream *s, void *buf, size_t len);

/*
 * rook_stream_readline — the next line with its '\n' (or the rest at end of
 * file), NUL-terminated when shorter than len. The byte count; 0 at end of
 * file; -EMSGSIZE the line does not fit in len (nothing consumed: drain
 * it with rook_stream_read); -EINVAL; -errno. A line longer than the
 * stream's buffer grows it, up to len, until the line is taken.
 * rook_stream_read_until — the same with the dlen-byte delimiter delim
 * (-EINVAL delim NULL or dlen 0).
 */
ROOK_API ssize_t rook_stream_readline(struct rook_stream *s, char *buf, size_t len);
ROOK_API ssize_t rook_stream_read_until(struct rook_stream *s, const void *delim, size_t dlen,
					void *buf, size_t len);

/* rook_stream_read_exactly — n bytes: n; -EPIPE end of file came first (the
 * bytes received stay readable by the next call); -EINVAL; -errno. */
ROOK_API ssize_t rook_stream_read_exactly(struct rook_stream *s, void *buf, size_t n);

/*
 * rook_stream_write — buffer buf (sending the buffer when it fills; writes
 * of a buffer's size or more go straight out). len, or -errno when nothing
 * of buf was taken, or the bytes taken before an error. On a socket it
 * sends with MSG_NOSIGNAL (-EPIPE, no SIGPIPE); on a pipe whose reader is
 * gone SIGPIPE is raised as by write(2). rook_stream_flush — send what is
 * buffered: 0 or -errno; on an error (a deadline, a cancel, -EPIPE) what
 * did not go out stays buffered, so a later flush sends exactly the rest.
 * rook_stream_close — flush, rook_close the fd and free s, whatever the
 * flush returned (bytes it could not send are dropped): 0, or the flush's
 * error, or close's. NULL: -EINVAL.
 */
ROOK_API ssize_t rook_stream_write(struct rook_stream *s, const void *buf, size_t len);
ROOK_API int rook_stream_flush(struct rook_stream *s);
ROOK_API int rook_stream_close(struct rook_stream *s);

/*
 * rook_serve — listen on host:port and run fn(fd, peer, arg) as its own
 * task for each connection accepted. fn owns fd and closes it (rook_close,
 * or rook_stream_close of a stream on it); peer is borrowed while fn runs;
 * fn's return value is ignored. Blocking call, from a task; o is read
 * before it returns its first suspension; arg is borrowed until it returns.
 *
 * host NULL or "": every address, IPv6 and IPv4 (dual-stack: an IPv4
 * client's peer is then AF_INET6, the v4-mapped ::ffff:a.b.c.d); else a
 * numeric address or a name (resolved on the blocking pool). port 0 picks
 * a free port, written to *bound_port (if set) before accepting (a
 * release store: another task may poll it with an acquire load). backlog 0:
 * 4096. max_conns > 0: at most that many connections at once; beyond it
 * accept waits (the kernel's backlog holds the rest). By default each
 * worker gets its own SO_REUSEPORT listener and accept loop (the kernel
 * spreads connections); ROOK_SERVE_SHARED uses one listener.
 * ROOK_SERVE_DEFER, for protocols where the client speaks first (HTTP,
 * RESP): a connection's task starts only once it is readable (data, or the
 * peer closed); until then it holds no task and no stack, about 100 bytes
 * and a kernel epoll entry. Connections still silent at the stop are
 * closed without fn. Do not set it for a server that greets. Out of fds
 * (EMFILE, ENFILE), accepting pauses 10 ms and resumes: the server keeps
 * serving once fds free up.
 *
 * It runs until its task is cancelled or its deadline passes: then it stops
 * accepting, cancels every connection task, waits for all of them
 * (shielded: a connection that ignores cancellation delays it), closes the
 * listeners and returns -ECANCELED (or -ETIMEDOUT). ROOK_SERVE_DRAIN with
 * drain_ns > 0 makes the stop graceful (without the flag drain_ns is not
 * read, so a struct filled field by field needs no zeroing): the
 * listeners are closed first (new connections are refused) and the open
 * connections get up to drain_ns (UINT64_MAX: no bound) to end by
 * themselves before the rest are cancelled; a connection spawned but not
 * yet run still runs. Every accepted fd is closed once: by fn, or by
 * rook_serve when shutdown came before fn ran.
 *   -EINVAL o or fn NULL, unknown flags, backlog < 0; -EPERM outside a
 *   task; bind/listen errors (-EADDRINUSE, -EACCES, -EADDRNOTAVAIL ...;
 *   EADDRINUSE only after about 0.3 s of retries: the listener of a
 *   process that just exited can outlive it by some milliseconds);
 *   -ENOENT host does not resolve; -ENOMEM; an unexpected accept error.
 */
#define ROOK_SERVE_SHARED 1u
#define ROOK_SERVE_DEFER  2u
#define ROOK_SERVE_DRAIN  4u /* read drain_ns */
typedef int (*rook_conn_fn)(int fd, const struct sockaddr *peer, void *arg);
struct rook_serve_opts {
	const char *host; /* NULL: every address, IPv6 and IPv4 */
	uint16_t port;
	int backlog;        /* 0: default */
	unsigned max_conns; /* 0: unlimited; beyond it accept waits */
	unsigned flags;     /* ROOK_SERVE_SHARED, ROOK_SERVE_DEFER, ROOK_SERVE_DRAIN */
	int *bound_port;    /* optional out: the port actually bound (port 0) */
	uint64_t drain_ns;  /* with ROOK_SERVE_DRAIN: wait so long at stop */
};
ROOK_API int rook_serve(const struct rook_serve_opts *o, rook_conn_fn fn, void *arg);

/* ------------------------------------------------------------------ */
/* Signals and subprocesses                                           */
/* ------------------------------------------------------------------ */

/* sigset_t: glibc's <signal.h> declares it only under a POSIX feature
 * macro, which a strict -std=c11 program need not define. */
#if defined(__has_include)
#if __has_include(<bits/types/sigset_t.h>)
#include <bits/types/sigset_t.h>
#endif
#endif
#include <signal.h>

/*
 * rook_signal_block — block the signals of set in the calling thread and
 * remember them for rook_signal_wait and spawned children. Call it in main
 * before rook_run / rook_rt_start and before any other thread exists:
 * threads inherit the mask from their creator, and a thread that did not
 * block a signal may take it (running its default action, e.g. killing the
 * process on SIGINT). Any thread. 0, or -EINVAL set NULL, empty, or holding
 * SIGKILL or SIGSTOP.
 */
ROOK_API int rook_signal_block(const sigset_t *set);

/*
 * rook_signal_wait — blocking call: suspend the calling task until one of
 * the signals in set arrives and return its number (> 0). Signals are read
 * through a signalfd (open only while some task waits). Each arrival goes
 * to exactly one waiter: the first, in FIFO order, whose set holds it. A
 * signal that arrives while no task waits for it is kept: it stays pending
 * in the kernel (a standard signal sent again while pending merges into
 * one, real-time signals queue), or, once read, is counted per signal
 * until a wait for it takes it. A wait that is cancelled (-ECANCELED) or
 * whose deadline passes (-ETIMEDOUT) consumes nothing. Signals sent to
 * the process (kill(2), a terminal's ^C, a child's SIGCHLD) are seen
 * whichever worker the waiter runs on; a signal sent to one thread
 * (raise(3), pthread_kill, tgkill) stays pending on that thread and is
 * seen only by a wait that runs there: send kill(getpid(), sig) instead.
 * -EINVAL set NULL, empty, holding SIGKILL/SIGSTOP, or a signal not
 * blocked in the calling thread (see rook_signal_block); -EPERM not in a
 * task; -EMFILE/-ENOMEM.
 */
ROOK_API int rook_signal_wait(const sigset_t *set);

struct rook_process;
enum { ROOK_STDIO_INHERIT, ROOK_STDIO_NULL, ROOK_STDIO_PIPE, ROOK_STDIO_FD };
struct rook_process_opts {
	const char *const *argv; /* argv[0] looked up in PATH */
	const char *const *envp; /* NULL: inherit */
	const char *cwd;         /* NULL: inherit */
	int stdio[3];            /* ROOK_STDIO_* for stdin, stdout, stderr */
	int stdio_fd[3];         /* for ROOK_STDIO_FD */
};

/*
 * rook_process_spawn — start argv[0] (looked up in the caller's PATH
 * unless it holds a '/') with posix_spawn (vfork semantics, never fork).
 * Any thread; does not suspend (the caller waits for the exec). o and what
 * it points to are borrowed. stdio[i]: INHERIT, NULL (/dev/null), PIPE
 * (our end: rook_process_fd, nonblocking and close-on-exec, owned by the
 * handle), FD (stdio_fd[i] is dup'd; still the caller's). The child gets
 * no other fd of ours, an empty signal mask, and the default action for
 * the signals rook_signal_block blocked and SIGPIPE/SIGXFSZ. *p on 0, or
 * -EINVAL p, o, argv or argv[0] NULL, or a stdio mode out of range;
 * -EBADF a stdio_fd not open; -ENOENT program (or cwd) missing; -EACCES;
 * -ENOMEM; -EMFILE.
 */
ROOK_API int rook_process_spawn(struct rook_process **p, const struct rook_process_opts *o);

/* rook_process_fd — our end of the pipe for which (0 stdin, 1 stdout, 2
 * stderr); -EBADF it is not a pipe; -EINVAL p NULL or which not 0..2. The
 * fd stays the handle's (rook_process_free closes it), but it may be
 * closed earlier with rook_close (EOF to the child's stdin). */
ROOK_API int rook_process_fd(const struct rook_process *p, int which);

/* rook_process_pid — the child's pid; -EINVAL p NULL. */
ROOK_API int rook_process_pid(const struct rook_process *p);

/*
 * rook_process_wait — blocking call: suspend until the child exits (a
 * pidfd polled with rook_poll; before Linux 5.3, waitpid retried after
 * sleeps of 0.1..20 ms), reap it and store its wait status (WIFEXITED...)
 * in *wstatus (may be NULL). Again after that: the same status at once.
 * From a plain thread it blocks the thread. 0, or -ECANCELED/-ETIMEDOUT
 * (the child keeps running, the handle stays valid), -EINVAL p NULL,
 * -ECHILD the child was reaped elsewhere (SIGCHLD ignored).
 */
ROOK_API int rook_process_wait(struct rook_process *p, int *wstatus);

/* rook_process_kill — send sig (0: probe) through the pidfd, never to a
 * reaped pid. 0, -ESRCH already reaped, -EINVAL p NULL or sig out of
 * range, -EPERM. */
ROOK_API int rook_process_kill(struct rook_process *p, int sig);

/* rook_process_free — close our pipe ends and free the handle; a child
 * that has exited is reaped, one still running is handed to a reaper
 * thread that reaps it when it exits (never killed): no zombie. NULL: no-op. */
ROOK_API void rook_process_free(struct rook_process *p);

/* ------------------------------------------------------------------ */
/* Diagnostics                                                        */
/* ------------------------------------------------------------------ */

/*
 * All off by default; each is cheap when on (numbers in perf/NOTES.md).
 * Environment, read when a runtime starts:
 *   ROOK_DUMP_SIGNAL=QUIT|USR1|USR2  that signal writes rook_dump's report
 *       to stderr; the process goes on (the handler only wakes a thread).
 *   ROOK_STALL_MS=N  (recommended: 100) a watchdog reports, once per stall,
 *       a worker that has run the same task for N ms without reaching a
 *       scheduling point (a blocking call, rook_yield), with the task's id,
 *       name and backtrace (taken on the worker's thread with signal
 *       SIGRTMAX-1), and a "stall ended" line with the total when it moves
 *       on; and a worker's timers overdue by N ms.
 * Backtraces follow frame pointers (librook is built with them); frames of
 * code built without them may be missing.
 */

/* Names the calling task; name is copied, truncated to 31 bytes. Shown by
 * rook_dump, the stall detector and tools/rook-gdb.py. 0; -EPERM outside a
 * task; -EINVAL if name is NULL. */
ROOK_API int rook_task_set_name(const char *name);

/* Writes every live task of the caller's runtime (from a plain thread:
 * of every running runtime) to fd: id, name, state (running on worker N;
 * runnable; not started; done, not joined; suspended in which call, on
 * which fd for IO, and for how long) and each suspended task's backtrace.
 * Any thread; does not suspend (the report is written with write(2)). To
 * a pipe or socket it raises no SIGPIPE (-EPIPE), and gives up with
 * -ETIMEDOUT when a write makes no progress for 1 s, signals or not (so
 * does a ROOK_DUMP_SIGNAL dump, which would otherwise hold up
 * rook_rt_stop); an end that cannot take output is its error at once (a
 * read end: -EBADF; a listening socket: -ENOTCONN).
 * Returns the number of tasks listed; -EBADF for a negative fd, -ENOMEM,
 * or the -errno of a failed write. */
ROOK_API int rook_dump(int fd);

#define ROOK_STATS_WORKERS 64 /* workers[] covers the first 64 workers */

struct rook_worker_stats {
	uint64_t spawned;        /* tasks spawned by tasks running on it */
	uint64_t finished;       /* tasks that ended on it */
	uint64_t rounds;         /* scheduling rounds (polls of IO and timers) */
	uint64_t steal_attempts; /* victims with queued work it tried */
	uint64_t stolen;         /* tasks it took from other workers */
	uint64_t parks;          /* times it went to sleep */
	uint64_t runq_depth;     /* tasks queued on it now */
	uint64_t io_submitted;   /* IO operations submitted to its ring */
	uint64_t io_completed;   /* ... whose result a task received */
	uint64_t io_cancelled;   /* ... cancelled (cancel, deadline, close) */
	uint64_t timers_armed;
	uint64_t timers_fired;
	uint64_t running; /* 1 if it is running a task now */
};

/* Counters of one runtime, summed over its workers, then per worker. They
 * are per-worker and unshared (no cost while nobody reads them), read
 * racily: each is exact once the counted work is done. */
struct rook_stats {
	size_t size;       /* bytes of this struct that were written */
	unsigned nworkers; /* all of them (workers[] holds the first 64) */
	uint64_t tasks_spawned;
	uint64_t tasks_finished;
	uint64_t tasks_live; /* spawned, not finished */
	uint64_t steal_attempts, stolen;
	uint64_t parks;
	uint64_t runq_depth;      /* queued on workers */
	uint64_t injection_depth; /* queued from outside the runtime */
	uint64_t io_submitted, io_completed, io_cancelled;
	uint64_t timers_armed, timers_fired;
	uint64_t blocking_threads; /* threads of the blocking pool (process) */
	uint64_t stacks_in_use;    /* task stacks handed out (process) */
	uint64_t stack_bytes_reserved;
	uint64_t longest_run_ns; /* longest stall seen (ROOK_STALL_MS only) */
	struct rook_worker_stats workers[ROOK_STATS_WORKERS];
};

/* Fills out with the counters of the caller's runtime (from a plain
 * thread: of the only running runtime). size: sizeof(*out) as the caller
 * knows it; fields past it are not written, so older callers keep
 * working; out->size says how much was. Any thread; does not suspend.
 * 0; -EINVAL (out NULL, or size below offsetof workers); -ESRCH (no
 * runtime, or several and the caller is in none). */
ROOK_API int rook_stats(struct rook_stats *out, size_t size);

#define ROOK_STATS_TEXT       0 /* "name value" lines */
#define ROOK_STATS_PROMETHEUS 1 /* the Prometheus text exposition format */
/* ROOK_STATS_SOCKET=path: a thread per runtime writes the Prometheus text
 * to each connection on a unix socket at path (tools/rook-top reads it). */

/* Writes rook_stats' counters to fd in format. Returns the bytes written;
 * -EINVAL (unknown format), -EBADF (fd < 0), -ESRCH as rook_stats, or the
 * -errno of a failed write (to a pipe or socket as rook_dump: -EPIPE with
 * no SIGPIPE, -ETIMEDOUT after 1 s without progress). */
ROOK_API int rook_stats_write(int fd, int format);

/* ROOK_TRACE=path.json: scheduler events (task run slices, spawn and wake
 * flows, parks, steals, IO, timer fires) in per-worker rings of
 * ROOK_TRACE_EVENTS (default 65536) that keep the newest, written to path
 * as Chrome/Perfetto JSON at stop and by rook_trace_flush (the caller's
 * runtime, or the only one running): 0 (also when tracing is off), -EIO
 * or the write's -errno, -EPERM outside a runtime. */
ROOK_API int rook_trace_flush(void);

#ifdef __cplusplus
}
#endif

#endif /* ROOK_H */
