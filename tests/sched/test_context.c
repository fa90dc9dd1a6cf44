/* SPDX-License-Identifier: MIT */
/*
 * The context switch keeps each task's floating-point control state (the
 * SSE MXCSR and the x87 control word on x86-64, FPCR on aarch64): a task
 * that changes its rounding mode keeps it across yields and migrations
 * between workers, and tasks that did not change it never see it.
 */
#include <criterion/criterion.h>
#include <fenv.h>
#include <stdatomic.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include <rook.h>

#include "tests/helpers.h"

enum { TASKS = 16, YIELDS = 2000 };

static const int modes[] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};

static _Atomic int wrong;

/* The rounding mode in force: the x87 control word's (fegetround), and on
 * x86-64 also checked against the SSE MXCSR's rounding field (-1 if the
 * two disagree, i.e. one of them was not switched with the task). */
static int rounding_seen(void)
{
	int mode = fegetround();
#if defined(__x86_64__)
	if ((int)((_mm_getcsr() >> 13) & 3) != mode >> 10)
		return -1;
#endif
	return mode;
}

static int keeper(void *arg)
{
	int mode = modes[(long)arg % 4];
	if (fesetround(mode) != 0)
		return -1;
	for (int i = 0; i < YIELDS; i++) {
		if (rounding_seen() != mode)
			atomic_fetch_add(&wrong, 1);
		rook_yield();
	}
	int ok = rounding_seen() == mode;
	fesetround(FE_TONEAREST);
	return ok ? 0 : -1;
}

static int fp_main(void *arg)
{
	(void)arg;
	struct rook_task *t[TASKS];

	for (long i = 0; i < TASKS; i++)
		T_CHECK_EQ(rook_spawn(&t[i], keeper, (void *)i), 0);
	for (int i = 0; i < TASKS; i++) {
		int st = 1;
		T_CHECK_EQ(rook_join(t[i], &st), 0);
		T_CHECK_EQ(st, 0);
	}
	T_CHECK_EQ(fegetround(), FE_TONEAREST);
	return 0;
}

Test(context, rounding_mode_stays_with_its_task_across_switches_and_workers, .timeout = 60)
{
	cr_assert_eq(run_with(2, ROOK_NO_PIN, fp_main, NULL), 0);
	cr_assert_eq(atomic_load(&wrong), 0, "a task saw another task's rounding mode");
	cr_assert_eq(fegetround(), FE_TONEAREST, "the caller's rounding mode changed");
}
