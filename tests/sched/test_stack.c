/* SPDX-License-Identifier: MIT */
/*
 * Task stacks: a task may use most of its stack (default 64 KiB, or a
 * configured size), overflowing it aborts the process instead of corrupting
 * memory, and stacks are reserved rather than committed, so 100,000 live
 * tasks cost far less than 100,000 full stacks.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

#define KIB ((size_t)1024)

/* Uses about `bytes` of stack in one frame; returns a checksum of it. */
static __attribute__((noinline)) long use_stack(size_t bytes)
{
	volatile unsigned char *buf = __builtin_alloca(bytes);
	long sum = 0;

	for (size_t i = 0; i < bytes; i += 64)
		buf[i] = (unsigned char)(i / 64);
	for (size_t i = 0; i < bytes; i += 64)
		sum += buf[i];
	return sum;
}

static long expected_sum(size_t bytes)
{
	long sum = 0;
	for (size_t i = 0; i < bytes; i += 64)
		sum += (unsigned char)(i / 64);
	return sum;
}

static int stack_user(void *arg)
{
	size_t bytes = *(size_t *)arg;

	/* Twice: the second call reuses pages the first one committed. */
	if (use_stack(bytes) != expected_sum(bytes))
		return -EIO;
	if (rook_yield() != 0)
		return -ECANCELED;
	if (use_stack(bytes) != expected_sum(bytes))
		return -EIO;
	return 0;
}

static int stack_main(void *arg)
{
	struct rook_task *t = NULL;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&t, stack_user, arg), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 0);
	return 0;
}

/* Stack colouring: the same frame of tasks alive at once sits at different
 * offsets within its page, so their hot lines do not share a cache set. */
#define COLOR_TASKS 64

struct color_job {
	struct rook_event *cj_go;
	uintptr_t cj_off[COLOR_TASKS];
	atomic_int cj_next;
};

static int color_task(void *arg)
{
	struct color_job *job = arg;
	volatile char here = 0;
	int i = atomic_fetch_add_explicit(&job->cj_next, 1, memory_order_relaxed);

	job->cj_off[i] = (uintptr_t)&here & 4095;
	return rook_event_wait(job->cj_go); /* stay alive: keep the stack */
}

static int color_main(void *arg)
{
	struct color_job *job = arg;
	struct rook_task *t[COLOR_TASKS];

	T_CHECK_EQ(rook_event_create(&job->cj_go), 0);
	for (int i = 0; i < COLOR_TASKS; i++)
		T_CHECK_EQ(rook_spawn(&t[i], color_task, job), 0);
	while (atomic_load_explicit(&job->cj_next, memory_order_relaxed) < COLOR_TASKS)
		T_CHECK_EQ(rook_yield(), 0);
	rook_event_set(job->cj_go);
	for (int i = 0; i < COLOR_TASKS; i++) {
		int st = 1;
		T_CHECK_EQ(rook_join(t[i], &st), 0);
		T_CHECK_EQ(st, 0);
	}
	rook_event_destroy(job->cj_go);
	return 0;
}

Test(stack, live_stacks_put_the_same_frame_at_different_page_offsets, .timeout = 60)
{
	int fds = fd_count();
	static struct color_job job;

	cr_assert_eq(run_with(1, ROOK_NO_PIN, color_main, &job), 0);
	int distinct = 0;
	for (int i = 0; i < COLOR_TASKS; i++) {
		bool seen = false;
		for (int j = 0; j < i && !seen; j++)
			seen = job.cj_off[j] == job.cj_off[i];
		distinct += !seen;
	}
	cr_assert_geq(distinct, 16, "%d distinct offsets among %d live stacks", distinct,
		      COLOR_TASKS);
	expect_clean_shutdown(fds);
}

Test(stack, task_runs_when_using_32_kib_of_default_stack, .timeout = 60)
{
	int fds = fd_count();
	size_t bytes = 32 * KIB;

	cr_assert_eq(run_with(2, ROOK_NO_PIN, stack_main, &bytes), 0);
	expect_clean_shutdown(fds);
}

Test(stack, task_runs_when_using_200_kib_of_256_kib_stack, .timeout = 60)
{
	int fds = fd_count();
	struct rook_config cfg = {.workers = 2, .stack_size = 256 * KIB, .flags = ROOK_NO_PIN};
	size_t bytes = 200 * KIB;

	cr_assert_eq(rook_run(&cfg, stack_main, &bytes), 0);
	expect_clean_shutdown(fds);
}

/* ---- overflow ----------------------------------------------------------- */

static __attribute__((noinline)) long recurse(long depth, long limit)
{
	/* Small frames touched top first: no touch can skip a guard page. */
	volatile char frame[1024];

	frame[sizeof(frame) - 1] = (char)depth;
	frame[0] = (char)depth;
	if (depth >= limit)
		return frame[0];
	/* Use the result so the call is not a tail call. */
	return recurse(depth + 1, limit) + frame[sizeof(frame) - 1];
}

static int overflow(void *arg)
{
	/* 1 GiB of frames: far beyond any stack this test configures. */
	return (int)recurse(0, 1024 * 1024);
}

static int overflow_main(void *arg)
{
	struct rook_task *t = NULL;

	T_CHECK_EQ(rook_spawn(&t, overflow, NULL), 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	return 0;
}

/*
 * The overflow runs in a forked child so the test can be skipped under
 * sanitizers (Criterion's .signal = SIGABRT would count a skip as a failure)
 * and can tell SIGABRT from any other death.
 */
static void expect_overflow_abort(bool force_mprotect)
{
	if (sanitized()) {
		cr_skip_test("stack overflow death test is skipped under sanitizers (%s)",
			     getenv("ROOK_SANITIZE"));
		return;
	}
	struct rook_config cfg = {.workers = 1, .stack_size = 64 * KIB};
	int wstatus = 0;

	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		rook__stack_guard_force_mprotect(force_mprotect);
		rook_run(&cfg, overflow_main, NULL);
		/* Reaching here means the overflow went unnoticed. */
		_exit(3);
	}
	cr_assert_eq(waitpid(pid, &wstatus, 0), pid);
	cr_assert(WIFSIGNALED(wstatus), "child was not killed by a signal (exit status %d)",
		  WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
	cr_assert_eq(WTERMSIG(wstatus), SIGABRT, "child killed by signal %d (%s), want SIGABRT",
		     WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
}

/* The guard page is a guard marker where the kernel has them (Linux 6.13),
 * else an mprotect'ed page: both must catch an overflow. */
Test(stack, process_aborts_when_task_overflows_64_kib_stack, .timeout = 60)
{
	expect_overflow_abort(false);
}

Test(stack, process_aborts_when_task_overflows_stack_guarded_by_mprotect, .timeout = 60)
{
	expect_overflow_abort(true);
}

static int count_stacks_main(void *arg)
{
	static size_t bytes = 4 * KIB;
	struct rook__stats *before = arg;
	struct rook_task *t[64];

	rook__stats_get(before);
	for (int i = 0; i < 64; i++)
		T_CHECK_EQ(rook_spawn(&t[i], stack_user, &bytes), 0);
	for (int i = 0; i < 64; i++) {
		int st = 1;
		T_CHECK_EQ(rook_join(t[i], &st), 0);
		T_CHECK_EQ(st, 0);
	}
	return 0;
}

/* Stacks are set up when first handed out, one at a time by the worker
 * that hands them out: each is counted as guarded or not exactly once, and
 * a fresh runtime's first stacks are guarded (the budget is far from
 * spent in this process). */
Test(stack, every_stack_set_up_is_guarded_or_checked_on_switch, .timeout = 60)
{
	int fds = fd_count();
	struct rook__stats before, after;

	cr_assert_eq(run_with(2, ROOK_NO_PIN, count_stacks_main, &before), 0);
	t_no_failures();
	rook__stats_get(&after);
	uint64_t made = (after.guard_stacks + after.canary_stacks) -
			(before.guard_stacks + before.canary_stacks);
	cr_assert_gt(after.guard_stacks, before.guard_stacks);
	/* 64 tasks and main ran; stacks are reused, so at most 65 new ones. */
	cr_assert_leq(made, 65);
	expect_clean_shutdown(fds);
}

/* The guard budget is process-wide: a runtime that stops gives back the
 * guard pages of the stacks it set up (their regions are unmapped), so a
 * process that starts and stops runtimes keeps guarded stacks. */
Test(stack, stopped_runtime_returns_its_guard_pages_to_the_budget, .timeout = 60)
{
	struct rook__stats before;

	/* A first runtime reads the budget and sets up the probe's state. */
	cr_assert_eq(run_with(2, ROOK_NO_PIN, count_stacks_main, &before), 0);
	long budget = rook__stack_guard_budget();
	cr_assert_gt(budget, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(run_with(2, ROOK_NO_PIN, count_stacks_main, &before), 0);
	t_no_failures();
	cr_assert_eq(rook__stack_guard_budget(), budget,
		     "guard pages of stopped runtimes were not given back");
}

/* ---- memory of many live tasks ------------------------------------------ */

static _Atomic long started;
static _Atomic int release_all;

static int small_waiter(void *arg)
{
	volatile char touch[512];

	touch[0] = 1;
	touch[sizeof(touch) - 1] = touch[0];
	atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
	/* Pairs with the release store in rss_main. */
	while (!atomic_load_explicit(&release_all, memory_order_acquire))
		if (rook_yield() != 0)
			return -ECANCELED;
	return 0;
}

static int rss_main(void *arg)
{
	long n = *(long *)arg;
	struct rook_task **h = malloc((size_t)n * sizeof(*h));
	struct rook__stats st;

	T_CHECK(h != NULL);
	if (!h)
		return -ENOMEM;
	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_spawn(&h[i], small_waiter, NULL), 0);
	while (atomic_load_explicit(&started, memory_order_relaxed) < n)
		T_CHECK_EQ(rook_yield(), 0);
	rook__stats_get(&st);
	/* Stats are batched per worker (diag/stats.h): allow 64 per worker. */
	T_CHECK(st.peak_stacks + 64u * rook_workers() >= (uint64_t)n);
	atomic_store_explicit(&release_all, 1, memory_order_release);
	for (long i = 0; i < n; i++) {
		int s = 1;
		T_CHECK_EQ(rook_join(h[i], &s), 0);
		T_CHECK_EQ(s, 0);
	}
	free(h);
	return 0;
}

/* Peak resident set size of this process, in KiB (-1 if unreadable). */
static long vm_hwm_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

Test(stack, peak_rss_stays_far_below_full_stacks_when_100000_tasks_live, .timeout = 120)
{
	const char *san = getenv("ROOK_SANITIZE");
	if (san && strstr(san, "thread"))
		cr_skip_test(
		    "peak RSS under ThreadSanitizer is its own per-fiber state, not rook's");
	int fds = fd_count();
	long n = scaled(100000, 10);
	long full_kib = n * 64;

	cr_assert_eq(run_with(2, ROOK_NO_PIN, rss_main, &n), 0);
	cr_assert_eq(atomic_load(&started), n);
	long hwm = vm_hwm_kib();
	cr_assert_gt(hwm, 0, "VmHWM unreadable");
	cr_log_info("VmHWM %ld KiB for %ld tasks (full stacks: %ld KiB)", hwm, n, full_kib);
	/* 100,000 committed 64 KiB stacks would be 6.1 GiB. */
	cr_assert_lt(hwm, 2L * 1024 * 1024, "peak RSS %ld KiB", hwm);
	expect_clean_shutdown(fds);
}

/* ---- memory given back after a burst ------------------------------------ */

struct burst {
	struct rook_event *b_go;
	_Atomic long b_started;
	bool b_tsan;
};

static int deep_waiter(void *arg)
{
	struct burst *b = arg;

	if (use_stack(48 * KIB) != expected_sum(48 * KIB))
		return -EIO;
	atomic_fetch_add_explicit(&b->b_started, 1, memory_order_relaxed);
	return rook_event_wait(b->b_go);
}

/* Resident set size now, in KiB (-1 if unreadable). */
static long vm_rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size, pages = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &pages) != 2)
		pages = -1;
	fclose(f);
	return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static int burst_main(void *arg)
{
	long n = *(long *)arg, before = vm_rss_kib(), peak, after;
	struct rook_task **h = malloc((size_t)n * sizeof(*h));
	const char *san = getenv("ROOK_SANITIZE");
	struct burst b = {.b_tsan = san && strstr(san, "thread")};
	struct rook__stats st;

	T_CHECK(h != NULL && before > 0);
	if (!h)
		return -ENOMEM;
	T_CHECK_EQ(rook_event_create(&b.b_go), 0);
	rook__stats_get(&st);
	uint64_t released0 = st.stacks_released;
	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_spawn(&h[i], deep_waiter, &b), 0);
	while (atomic_load_explicit(&b.b_started, memory_order_relaxed) < n)
		T_CHECK_EQ(rook_yield(), 0);
	peak = vm_rss_kib();
	rook_event_set(b.b_go);
	for (long i = 0; i < n; i++) {
		int s = 1;
		T_CHECK_EQ(rook_join(h[i], &s), 0);
		T_CHECK_EQ(s, 0);
	}
	free(h);
	rook_event_destroy(b.b_go);
	/* Idle workers give the burst's stacks back within two trim periods
	 * (sched/stack.h); this task polls, so its worker parks in between.
	 * 10 s is a bound no healthy run comes near. */
	uint64_t t0 = rook_now();
	do {
		T_CHECK_EQ(rook_sleep(20 * ROOK_MSEC), 0);
		rook__stats_get(&st);
	} while (st.stacks_released - released0 < (uint64_t)n - 64 &&
		 rook_now() - t0 < 10 * ROOK_SEC);
	after = vm_rss_kib();
	cr_log_info("RSS %ld KiB before, %ld at the burst's peak, %ld after %lu ms idle; "
		    "%lu stacks released",
		    before, peak, after, (unsigned long)((rook_now() - t0) / ROOK_MSEC),
		    (unsigned long)(st.stacks_released - released0));
	/* All but the few kept warm per worker were released. */
	T_CHECK(st.stacks_released - released0 >= (uint64_t)n - 64);
	/* ThreadSanitizer's own shadow of the stacks stays. */
	if (!b.b_tsan) {
		long growth = peak - before;
		T_CHECK(growth > n * 40L); /* each task committed its 48 KiB */
		T_CHECK(after - before <= growth / 2);
	}
	return 0;
}

Test(stack, idle_runtime_gives_back_the_stack_memory_of_a_burst, .timeout = 120)
{
	int fds = fd_count();
	/* Not scaled down under ASan: its shadow (1/8 of the burst) must stay
	 * small beside the burst itself. TSan's shadow is 20 times the burst
	 * and stays, so there only the release count is checked. */
	const char *san = getenv("ROOK_SANITIZE");
	long n = san && strstr(san, "thread") ? 400 : 4000;

	cr_assert_eq(run_with(2, ROOK_NO_PIN, burst_main, &n), 0);
	expect_clean_shutdown(fds);
}
