/* SPDX-License-Identifier: MIT */
/*
 * Stack guards and the SIGSEGV handler (issue 11, items 3, 7 and 12), each
 * in a forked child whose death is checked: a frame larger than a page
 * must hit the guard (a stack overflow report, SIGABRT) rather than the
 * neighbouring stack; an unguarded stack that overflowed and then yields
 * with nothing else to run must be reported too; a SIGSEGV sent with kill
 * must kill the process with SIGSEGV, and with SIGSEGV ignored a sent one
 * is discarded while a real fault still kills (no loop at 100% CPU).
 * Skipped under sanitizers (they own SIGSEGV).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

#define KIB 1024

/* Wait at most 20 s for pid; -1 (and the child killed) if it hangs. */
static int wait_child(pid_t pid)
{
	int ws = 0;
	for (int i = 0; i < 2000; i++) {
		pid_t r = waitpid(pid, &ws, WNOHANG);
		if (r == pid)
			return ws;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &ws, 0);
	return -1;
}

static void expect_death(int ws, int sig)
{
	cr_assert_neq(ws, -1, "child hung (killed after 20 s)");
	cr_assert(WIFSIGNALED(ws), "child was not killed by a signal (exit status %d)",
		  WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
	cr_assert_eq(WTERMSIG(ws), sig, "child killed by signal %d (%s), want %d", WTERMSIG(ws),
		     strsignal(WTERMSIG(ws)), sig);
}

#define SKIP_SANITIZED()                                                                           \
	do {                                                                                       \
		if (sanitized()) {                                                                 \
			cr_skip_test("death test skipped under sanitizers");                       \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* ---- a frame larger than a page ------------------------------------- */

static _Atomic int a_go;

static int neighbour(void *arg)
{
	(void)arg;
	while (!atomic_load(&a_go))
		if (rook_yield() != 0)
			return 1;
	return 0;
}

__attribute__((noinline)) static int big_frame(void)
{
	/* 24 KiB of locals on a 16 KiB stack: the lowest byte lies past a
	 * one-page guard, in the stack below (the neighbour's top). */
	volatile char buf[24 * KIB];
	buf[0] = 1;
	return buf[0] + buf[sizeof(buf) - 1];
}

static int big_frame_task(void *arg)
{
	(void)arg;
	return big_frame();
}

static int big_frame_main(void *arg)
{
	(void)arg;
	struct rook_task *a, *b;
	rook_spawn(&a, neighbour, NULL);
	rook_yield(); /* a takes the first stack, b the one above it */
	rook_spawn(&b, big_frame_task, NULL);
	rook_join(b, NULL);
	atomic_store(&a_go, 1);
	rook_join(a, NULL);
	return 0;
}

Test(guard, frame_larger_than_a_page_hits_the_guard_not_the_neighbour, .timeout = 60)
{
	SKIP_SANITIZED();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct rook_config cfg = {.workers = 1, .stack_size = 16 * KIB};
		rook_run(&cfg, big_frame_main, NULL);
		_exit(3); /* the overflow went unnoticed */
	}
	expect_death(wait_child(pid), SIGABRT);
}

/* ---- an unguarded overflow, then a yield with nothing else to run ---- */

__attribute__((noinline)) static int deep(int n)
{
	volatile char frame[1024];
	frame[0] = (char)n;
	if (n == 0)
		return rook_yield() + frame[0]; /* 96 KiB down a 64 KiB stack */
	return deep(n - 1) + frame[0];
}

static int deep_task(void *arg)
{
	(void)arg;
	return deep(96);
}

static int deep_main(void *arg)
{
	(void)arg;
	struct rook_task *t;
	rook_spawn(&t, deep_task, NULL);
	rook_join(t, NULL); /* main parks: the yield finds nothing to run */
	return 0;
}

Test(guard, unguarded_overflow_is_reported_at_a_lone_yield, .timeout = 60)
{
	SKIP_SANITIZED();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		rook__stack_guard_force_off(true);
		struct rook_config cfg = {.workers = 1, .stack_size = 64 * KIB};
		rook_run(&cfg, deep_main, NULL);
		_exit(3);
	}
	expect_death(wait_child(pid), SIGABRT);
}

/* ---- SIGSEGV sent, not faulted --------------------------------------- */

static int send_segv(void *arg)
{
	(void)arg;
	kill(getpid(), SIGSEGV);
	rook_sleep(200 * ROOK_MSEC);
	return 0;
}

Test(guard, sigsegv_sent_with_kill_kills_the_process, .timeout = 60)
{
	SKIP_SANITIZED();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		run_with(2, 0, send_segv, NULL);
		_exit(3); /* survived a SIGSEGV with the default disposition */
	}
	expect_death(wait_child(pid), SIGSEGV);
}

static int pipe_w = -1;

static int ignored_then_fault(void *arg)
{
	(void)arg;
	raise(SIGSEGV); /* ignored: discarded */
	char c = 'y';
	if (write(pipe_w, &c, 1) != 1)
		return 1;
	volatile uintptr_t bad = 16; /* hidden from the compiler's bounds check */
	*(volatile int *)bad = 1;    /* a real fault still kills */
	return 0;
}

Test(guard, ignored_sigsegv_discards_sent_ones_but_a_fault_kills, .timeout = 60)
{
	SKIP_SANITIZED();
	int p[2];
	cr_assert_eq(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		pipe_w = p[1];
		signal(SIGSEGV, SIG_IGN);
		run_with(1, 0, ignored_then_fault, NULL);
		_exit(3);
	}
	close(p[1]);
	int ws = wait_child(pid);
	char c = 0;
	cr_assert_eq(read(p[0], &c, 1), 1, "the ignored SIGSEGV was not survived");
	close(p[0]);
	expect_death(ws, SIGSEGV);
}
