/* SPDX-License-Identifier: MIT */
/*
 * rook-perf --quick for every workload `rook-perf --list` marks as
 * implemented: each must exit 0 and print one well-formed BENCH line
 * (shared/bench/WORKLOADS.md) for its workload and thread count. Speed is
 * not checked; each workload checks its own answer (exit 1 with "CHECK
 * FAILED" otherwise), and PEERBENCH_WRONG=1 must make that check fire.
 * rook-perf is found in the build folder (tests/demo/child.h).
 */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/demo/child.h"

#define THREADS "2"

static struct child c;
static char perf[PATH_MAX];

static void find_perf(void)
{
	if (!child_find("perf/rook-perf", perf, sizeof(perf)))
		cr_skip_test("perf/rook-perf not built (ROOK_BUILD_PERF=OFF?)");
}

/* ThreadSanitizer models every task stack as a thread and dies past 8128
 * of them: workloads that keep thousands of tasks alive at once are left
 * out under it (they run in the debug and ASan builds). */
static bool skip_under_tsan(const char *w)
{
	const char *s = getenv("ROOK_SANITIZE");
	return s && strstr(s, "thread") &&
	       (strcmp(w, "sleep_fanout") == 0 || strcmp(w, "sleep_million") == 0);
}

static bool bench_line_ok(const char *out, const char *w)
{
	static const char *const re_src =
	    "^BENCH workload=([a-z_0-9]+) impl=rook threads=" THREADS " ops=[1-9][0-9]* "
	    "wall_s=[0-9]+\\.[0-9]+ ops_per_s=[0-9]+\\.[0-9]+( [a-z_0-9]+=[^ \n]+)*\n";
	regex_t re;
	regmatch_t m[2];
	const char *line = strstr(out, "BENCH ");
	bool ok = false;
	if (!line || (line != out && line[-1] != '\n'))
		return false;
	cr_assert_eq(regcomp(&re, re_src, REG_EXTENDED | REG_NEWLINE), 0);
	if (regexec(&re, line, 2, m, 0) == 0)
		ok = (size_t)(m[1].rm_eo - m[1].rm_so) == strlen(w) &&
		     strncmp(line + m[1].rm_so, w, strlen(w)) == 0;
	regfree(&re);
	return ok;
}

Test(perf_quick, every_workload_runs_and_prints_a_bench_line, .timeout = 600)
{
	static char list[sizeof(c.c_out)];
	char *argv_list[] = {perf, "--list", NULL}, *save, *line;
	int ran = 0;

	find_perf();
	cr_assert_eq(child_run(argv_list, 30, &c), 0);
	cr_assert_eq(c.c_status, 0, "rook-perf --list exited %d", c.c_status);
	memcpy(list, c.c_out, sizeof(list));
	for (line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char w[64];
		if (sscanf(line, "yes %63s", w) != 1 || skip_under_tsan(w))
			continue;
		char *argv[] = {perf, "--workload", w, "--threads", THREADS, "--quick", NULL};
		cr_assert_eq(child_run(argv, 240, &c), 0);
		cr_expect_not(c.c_timed_out, "%s: timed out", w);
		if (c.c_status == 2) { /* a tool it drives is missing here (wrk) */
			cr_log_info("%s: not run here (exit 2: see its stderr)", w);
			continue;
		}
		cr_expect_eq(c.c_status, 0, "%s: exit %d, stdout:\n%s", w, c.c_status, c.c_out);
		cr_expect(bench_line_ok(c.c_out, w), "%s: malformed BENCH line:\n%s", w, c.c_out);
		ran++;
	}
	cr_expect_geq(ran, 10, "only %d workloads listed as implemented", ran);
}

Test(perf_quick, a_wrong_answer_fails_the_check, .timeout = 120)
{
	char *argv[] = {perf, "--workload", "fib", "--threads", THREADS, "--quick", NULL};

	find_perf();
	cr_assert_eq(setenv("PEERBENCH_WRONG", "1", 1), 0);
	cr_assert_eq(child_run(argv, 60, &c), 0);
	unsetenv("PEERBENCH_WRONG");
	cr_expect_eq(c.c_status, 1, "exit %d with a perturbed answer", c.c_status);
	cr_expect_eq(child_find_str(&c, "BENCH "), -1, "a failed check printed a BENCH line");
}
