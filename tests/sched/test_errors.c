/* SPDX-License-Identifier: MIT */
/*
 * Error codes of the runtime and task calls: misuse (-EINVAL, -EPERM,
 * -EBUSY), configuration and environment validation, injected allocation
 * and stack failures (-ENOMEM, after which the runtime keeps going), and
 * released handles. Out-parameters must stay untouched on failure.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

#define SENTINEL ((void *)(uintptr_t)0x5a5a5a5a)

static _Atomic int body_ran;

static int mark_ran(void *arg)
{
	atomic_fetch_add(&body_ran, 1);
	return (int)(intptr_t)arg;
}

Test(errors, run_fails_with_einval_when_main_is_null, .timeout = 30)
{
	int fds = fd_count();

	cr_assert_eq(rook_run(NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(run_with(1, 0, NULL, NULL), -EINVAL);
	expect_clean_shutdown(fds);
}

Test(errors, task_calls_fail_when_called_outside_a_task, .timeout = 30)
{
	struct rook_task *t = SENTINEL;
	int st = 77;

	cr_assert_eq(rook_spawn(&t, mark_ran, NULL), -EPERM);
	cr_assert_eq(rook_spawn(NULL, mark_ran, NULL), -EPERM);
	cr_assert_eq(t, SENTINEL, "out-parameter written on failure");
	cr_assert_eq(rook_yield(), -EPERM);
	cr_assert_eq(rook_join(NULL, &st), -EINVAL);
	cr_assert_eq(st, 77);
	cr_assert_eq(rook_cancel(NULL), -EINVAL);
	cr_assert_eq(rook_rt_spawn(NULL, &t, mark_ran, NULL), -EINVAL);
	cr_assert_eq(t, SENTINEL);
	cr_assert_eq(rook_rt_stop(NULL), -EINVAL);
	cr_assert(!rook_done(NULL));
	rook_detach(NULL);
	cr_assert_eq(atomic_load(&body_ran), 0);
}

static int misuse_main(void *arg)
{
	struct rook_task *t = SENTINEL;
	int st = 77;

	T_CHECK_EQ(rook_spawn(&t, NULL, NULL), -EINVAL);
	T_CHECK(t == SENTINEL);
	T_CHECK_EQ(rook_spawn(NULL, NULL, NULL), -EINVAL);
	T_CHECK_EQ(rook_join(NULL, &st), -EINVAL);
	T_CHECK_EQ(st, 77);
	T_CHECK_EQ(rook_cancel(NULL), -EINVAL);
	T_CHECK_EQ(rook_run(NULL, mark_ran, NULL), -EBUSY);
	T_CHECK_EQ(atomic_load(&body_ran), 0);
	T_CHECK_EQ(rook_yield(), 0);
	return 0;
}

Test(errors, task_calls_fail_when_arguments_misused_inside_a_task, .timeout = 30)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, misuse_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- configuration ----------------------------------------------------- */

static void expect_config_rejected(struct rook_config cfg, const char *what)
{
	struct rook_rt *rt = SENTINEL;

	cr_assert_eq(rook_run(&cfg, mark_ran, NULL), -EINVAL, "rook_run: %s", what);
	cr_assert_eq(rook_rt_start(&rt, &cfg), -EINVAL, "rook_rt_start: %s", what);
	cr_assert_eq(rt, SENTINEL, "rt written on failure: %s", what);
	cr_assert_eq(atomic_load(&body_ran), 0, "main ran: %s", what);
}

Test(errors, start_fails_with_einval_when_config_out_of_range, .timeout = 30)
{
	int fds = fd_count();
	struct rook_config ok = {.workers = 1};
	struct rook_config c;

	c = ok, c.flags = 0x2;
	expect_config_rejected(c, "flag bit 1");
	c = ok, c.flags = ROOK_NO_PIN | 0x80000000u;
	expect_config_rejected(c, "flag bit 31");
	c = ok, c.workers = ROOK_MAX_WORKERS + 1;
	expect_config_rejected(c, "workers > max");
	c = ok, c.stack_size = ROOK_MAX_STACK + 1;
	expect_config_rejected(c, "stack > max");
	c = ok, c.stack_size = ROOK_MIN_STACK - 1;
	expect_config_rejected(c, "stack < min");
	c = ok, c.stack_size = 1;
	expect_config_rejected(c, "stack 1 byte");
	c = ok, c.ring_entries = ROOK_MAX_RING_ENTRIES + 1;
	expect_config_rejected(c, "ring entries > max");
	/* The boundaries themselves are accepted. */
	c = ok, c.stack_size = ROOK_MIN_STACK;
	cr_assert_eq(rook_run(&c, mark_ran, (void *)(intptr_t)-EXDEV), -EXDEV);
	cr_assert_eq(atomic_load(&body_ran), 1);
	expect_clean_shutdown(fds);
}

Test(errors, start_fails_with_einval_when_environment_malformed, .timeout = 30)
{
	int fds = fd_count();
	struct rook_rt *rt = SENTINEL;

	cr_assert_eq(setenv("ROOK_WORKERS", "abc", 1), 0);
	cr_assert_eq(rook_run(NULL, mark_ran, NULL), -EINVAL);
	cr_assert_eq(rook_rt_start(&rt, NULL), -EINVAL);
	cr_assert_eq(rt, SENTINEL);
	cr_assert_eq(setenv("ROOK_WORKERS", "2x", 1), 0);
	cr_assert_eq(rook_run(NULL, mark_ran, NULL), -EINVAL);
	cr_assert_eq(unsetenv("ROOK_WORKERS"), 0);
	cr_assert_eq(setenv("ROOK_STACK_SIZE", "abc", 1), 0);
	cr_assert_eq(rook_run(NULL, mark_ran, NULL), -EINVAL);
	cr_assert_eq(unsetenv("ROOK_STACK_SIZE"), 0);
	cr_assert_eq(atomic_load(&body_ran), 0);
	/* Unset again, the defaults work. */
	cr_assert_eq(rook_run(NULL, mark_ran, NULL), 0);
	cr_assert_eq(atomic_load(&body_ran), 1);
	expect_clean_shutdown(fds);
}

static int report_workers(void *arg)
{
	return rook_workers() == 1 ? 0 : -EDOM;
}

Test(errors, environment_overrides_config_when_rook_workers_set, .timeout = 30)
{
	int fds = fd_count();

	cr_assert_eq(setenv("ROOK_WORKERS", "1", 1), 0);
	cr_assert_eq(run_with(2, 0, report_workers, NULL), 0);
	cr_assert_eq(unsetenv("ROOK_WORKERS"), 0);
	expect_clean_shutdown(fds);
}

/* ---- injected failures -------------------------------------------------- */

static int alloc_fail_main(void *arg)
{
	struct rook_task *t = SENTINEL;
	int st = 1;

	/* One worker: nothing else allocates between the two calls. */
	rook__alloc_fail_nth(1);
	T_CHECK_EQ(rook_spawn(&t, mark_ran, NULL), -ENOMEM);
	rook__alloc_fail_nth(0);
	T_CHECK(t == SENTINEL);
	T_CHECK_EQ(rook_yield(), 0);
	T_CHECK_EQ(atomic_load(&body_ran), 0);
	/* The runtime keeps going. */
	T_CHECK_EQ(rook_spawn(&t, mark_ran, (void *)(intptr_t)-ERANGE), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ERANGE);
	T_CHECK_EQ(atomic_load(&body_ran), 1);
	return 0;
}

Test(errors, spawn_fails_with_enomem_when_task_allocation_fails, .timeout = 30)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, 0, alloc_fail_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int stack_fail_main(void *arg)
{
	struct rook_task *t = NULL;
	int st = 1;

	rook__stack_fail_next(1);
	T_CHECK_EQ(rook_spawn(&t, mark_ran, NULL), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ENOMEM);
	T_CHECK_EQ(atomic_load(&body_ran), 0);
	/* The next spawn gets a stack and runs. */
	T_CHECK_EQ(rook_spawn(&t, mark_ran, (void *)(intptr_t)-ERANGE), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ERANGE);
	T_CHECK_EQ(atomic_load(&body_ran), 1);
	return 0;
}

Test(errors, task_ends_with_enomem_without_running_when_stack_allocation_fails, .timeout = 30)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, 0, stack_fail_main, NULL), 0);
	cr_assert_eq(atomic_load(&body_ran), 1);
	expect_clean_shutdown(fds);
}

/* ---- released handles and runtime misuse -------------------------------- */

static int double_join_main(void *arg)
{
	struct rook_task *t = NULL;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&t, mark_ran, (void *)(intptr_t)-EDOM), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -EDOM);
	st = 77;
	T_CHECK_EQ(rook_join(t, &st), -EINVAL);
	T_CHECK_EQ(st, 77);
	return 0;
}

Test(errors, second_join_fails_with_einval_when_handle_released, .timeout = 30)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, double_join_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int stop_from_task(void *arg)
{
	return rook_rt_stop(arg);
}

Test(errors, rt_calls_fail_when_misused, .timeout = 30)
{
	int fds = fd_count();
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	struct rook_rt *rt = NULL;
	struct rook_task *t = SENTINEL;
	int st = 1;

	cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
	cr_assert_eq(rook_rt_spawn(rt, &t, NULL, NULL), -EINVAL);
	cr_assert_eq(t, SENTINEL);
	cr_assert_eq(rook_rt_spawn(NULL, &t, mark_ran, NULL), -EINVAL);
	/* A task may not stop its own runtime. */
	cr_assert_eq(rook_rt_spawn(rt, &t, stop_from_task, rt), 0);
	cr_assert_eq(rook_join(t, &st), 0);
	cr_assert_eq(st, -EBUSY);
	cr_assert_eq(rook_rt_stop(rt), 0);
	cr_assert_eq(atomic_load(&body_ran), 0);
	expect_clean_shutdown(fds);
}

/* A task cancelled by shutdown cannot spawn more work. */
static _Atomic int late_spawn_rc = 1;
static _Atomic int late_started;

static int spawn_after_cancel(void *arg)
{
	atomic_store_explicit(&late_started, 1, memory_order_release);
	while (rook_yield() == 0)
		;
	atomic_store(&late_spawn_rc, rook_spawn(NULL, mark_ran, NULL));
	return 0;
}

static int late_main(void *arg)
{
	T_CHECK_EQ(rook_spawn(NULL, spawn_after_cancel, NULL), 0);
	while (!atomic_load_explicit(&late_started, memory_order_acquire))
		T_CHECK_EQ(rook_yield(), 0);
	return 0;
}

Test(errors, spawn_fails_with_epipe_when_runtime_shutting_down, .timeout = 30)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, late_main, NULL), 0);
	int rc = atomic_load(&late_spawn_rc);
	cr_assert_eq(atomic_load(&body_ran), 0, "a task spawned during shutdown ran");
	cr_assert_eq(rc, -EPIPE, "rook_spawn after shutdown began returned %d", rc);
	expect_clean_shutdown(fds);
}
