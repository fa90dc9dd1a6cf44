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

#ifdef __cplusplus
extern "C" {
#endif

#define ROOK_VERSION_MAJOR 0
#define ROOK_VERSION_MINOR 1

#define ROOK_USEC ((uint64_t)1000)
#define ROOK_MSEC ((uint64_t)1000 * 1000)
#define ROOK_SEC ((uint64_t)1000 * 1000 * 1000)

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
#define ROOK_NO_PIN 0x1u
#define ROOK_FLAGS_ALL (ROOK_NO_PIN)

/* Limits checked by rook_run / rook_rt_start (-EINVAL outside them). */
#define ROOK_MAX_WORKERS 1024u
#define ROOK_MIN_STACK ((size_t)16 * 1024)
#define ROOK_MAX_STACK ((size_t)256 * 1024 * 1024)
#define ROOK_MAX_RING_ENTRIES 32768u

struct rook_config {
	unsigned workers;      /* 0: one per usable core (hwloc); 1: single-threaded */
	size_t stack_size;     /* per task; 0: default 64 KiB (rounded up to pages) */
	unsigned ring_entries; /* io_uring SQ entries per worker; 0: default */
	unsigned flags;        /* ROOK_NO_PIN; unknown bits: -EINVAL */
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
 *   -EINVAL  main is NULL, unknown flag bits, sizes out of range, or a
 *            malformed environment variable;
 *   -EBUSY   called from inside a task;
 *   -ENOMEM  the runtime could not allocate its workers;
 *   -EAGAIN  the worker threads could not be created.
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
 *   -EINVAL     t NULL, or a handle already released or detached;
 *   -EDEADLK    a task joining itself;
 *   -ECANCELED  the caller was cancelled (t keeps running, handle valid);
 *   -ETIMEDOUT  the caller's deadline passed (likewise).
 */
ROOK_API int rook_join(struct rook_task *t, int *status);

/*
 * rook_cancel — request cancellation of t and return at once. t sees it at
 * its current or next blocking call, which returns -ECANCELED, and so does
 * every later blocking call until t returns (level-triggered). A task
 * cancelled before it starts never runs (status -ECANCELED). Cancelling a
 * finished task, or cancelling twice, does nothing. Any thread.
 *   0 the request was recorded (or t was already finished); -EINVAL t NULL.
 */
ROOK_API int rook_cancel(struct rook_task *t);

/* Release the handle without waiting; the task keeps running. NULL: no-op. */
ROOK_API void rook_detach(struct rook_task *t);

/* True once t has finished (never blocks). NULL: false. */
ROOK_API bool rook_done(const struct rook_task *t);

/*
 * rook_yield — let other runnable tasks run, then continue (a checkpoint).
 *   0; -ECANCELED the caller was cancelled (returns at once);
 *   -EPERM called outside a task.
 */
ROOK_API int rook_yield(void);

/* The calling task, or NULL outside a task. */
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
 *   -EINVAL ts NULL with n > 0, or an invalid/released handle;
 *   -EDEADLK a task gathering itself;
 *   -ECANCELED / -ETIMEDOUT the caller was interrupted: no handle is
 *   released and the tasks keep running (cancel them if that is wanted).
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
 *   errors (-ENOMEM, -EPIPE).
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
 *   (blocking, uninterruptible), then frees the group. NULL: no-op.
 */
ROOK_API int rook_group_create(struct rook_group **g);
ROOK_API int rook_group_spawn(struct rook_group *g, rook_fn fn, void *arg);
ROOK_API int rook_group_next(struct rook_group *g, void **arg, int *status);
ROOK_API int rook_group_wait(struct rook_group *g);
ROOK_API void rook_group_cancel(struct rook_group *g);
ROOK_API void rook_group_destroy(struct rook_group *g);

#ifdef __cplusplus
}
#endif

#endif /* ROOK_H */
