/* SPDX-License-Identifier: MIT */
/*
 * The ROOK_STALL_MS watchdog, run in a child process whose stderr is a
 * file: a task spinning 300 ms with ROOK_STALL_MS=100 is reported exactly
 * once, with the spinning function in the backtrace, and a "stall ended"
 * line follows; a child that spins and then hands its worker straight to
 * a joiner that spins too makes two stalls, each with its end line; a
 * task that yields every 10 ms is never reported.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers.h"

static uint64_t mono_ms(void)
{
	return rook_now() / ROOK_MSEC;
}

/* noinline: the backtrace must show this function itself. */
__attribute__((noinline)) static int spin_300ms(void *arg)
{
	(void)arg;
	rook_task_set_name("spinner");
	uint64_t end = mono_ms() + 300;
	while (mono_ms() < end)
		;
	return 0;
}

__attribute__((noinline)) static int yield_every_10ms(void *arg)
{
	(void)arg;
	rook_task_set_name("yielder");
	uint64_t end = mono_ms() + 300;
	while (mono_ms() < end) {
		uint64_t slice = mono_ms() + 10;
		while (mono_ms() < slice)
			;
		rook_yield();
	}
	return 0;
}

/* The child spins, then its joiner does: the finishing child switches
 * straight to the joiner, with no scheduling round between them. */
static int spin_then_joiner_spins(void *arg)
{
	(void)arg;
	struct rook_task *t;
	if (rook_spawn(&t, spin_300ms, NULL) != 0 || rook_join(t, NULL) != 0)
		return 1;
	rook_task_set_name("joiner");
	uint64_t end = mono_ms() + 300;
	while (mono_ms() < end)
		;
	return 0;
}

static int stall_main(void *arg)
{
	rook_fn fn = arg;
	struct rook_task *t;
	if (rook_spawn(&t, fn, NULL) != 0 || rook_join(t, NULL) != 0)
		return 1;
	return 0;
}

static void stall_child(void *arg)
{
	setenv("ROOK_STALL_MS", "100", 1);
	struct rook_config cfg = {.workers = 1};
	_exit(rook_run(&cfg, stall_main, arg));
}

/* Runs fn in a child with ROOK_STALL_MS=100 (one worker); its stderr. */
static char *run_child(rook_fn fn)
{
	int st;
	char *s = child_stderr(stall_child, (void *)fn, &st);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x:\n%s", st, s);
	return s;
}

Test(stall, spinning_task_is_reported_once_with_its_backtrace, .timeout = 120)
{
	char *s = run_child(spin_300ms);
	bool once = count_in(s, "rook: stall: worker 0 has run task ") == 1;
	bool named = strstr(s, "\"spinner\" for ") != NULL;
	bool ended = count_in(s, "rook: stall ended: worker 0, ") == 1;
	cr_expect(once, "not reported once: %s", s);
	cr_expect(named, "%s", s);
	cr_expect(ended, "no single end line: %s", s);
	if (under_qemu() && once && named && ended) { /* a skip would hide a failure */
		free(s);
		cr_skip_test("the backtrace: qemu-user cannot deliver SIGRTMAX-1, the "
			     "backtrace signal (pthread_kill answers EINVAL: it has fewer "
			     "host RT signals than the guest's range)");
	}
	const char *bt = strstr(s, "without a scheduling point\n");
	cr_expect(bt && strstr(bt, "spin_300ms"), "no spin_300ms in the backtrace:\n%s", s);
	free(s);
}

Test(stall, a_direct_switch_ends_the_stall_and_the_next_task_starts_one, .timeout = 120)
{
	char *s = run_child(spin_then_joiner_spins);
	cr_expect_eq(count_in(s, "rook: stall: worker 0 has run task "), 2, "%s", s);
	cr_expect(strstr(s, "\"spinner\" for ") && strstr(s, "\"joiner\" for "), "%s", s);
	cr_expect_eq(count_in(s, "rook: stall ended: worker 0, "), 2, "%s", s);
	free(s);
}

Test(stall, task_yielding_every_10ms_is_not_reported, .timeout = 120)
{
	char *s = run_child(yield_every_10ms);
	cr_expect_eq(count_in(s, "rook: stall"), 0, "%s", s);
	free(s);
}
