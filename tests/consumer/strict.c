/* SPDX-License-Identifier: MIT */
/*
 * rook.h in a strict ISO C11 program: no feature macro, -pedantic, every
 * warning an error. Built with the tests; the build is the check.
 */
#include <rook.h>

int rook_strict_c11_check(void);

int rook_strict_c11_check(void)
{
	struct rook_config cfg = {.workers = 1};
	sigset_t *set = 0;
	return (int)cfg.workers + (set != 0);
}
