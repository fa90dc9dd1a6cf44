/* SPDX-License-Identifier: MIT */
/*
 * The tools/demo programs (the asyncio tutorial classics, ported): each is
 * run from the build folder and its output checked, orderings included.
 * Time bounds are gross: they tell "concurrent" from "one after another",
 * and are looser under sanitizers.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/demo/child.h"

#define DEMO_TIMEOUT_S 60.0

/* Runs tools/demo/demo-NAME with up to two arguments; asserts it exits 0. */
static void demo(struct child *c, const char *name, const char *a1, const char *a2)
{
	char path[PATH_MAX], rel[128];
	snprintf(rel, sizeof(rel), "tools/demo/demo-%s", name);
	if (!child_find(rel, path, sizeof(path)))
		cr_skip_test("%s not built (ROOK_BUILD_PERF=OFF?)", rel);
	char *argv[] = {path, (char *)a1, (char *)a2, NULL};
	if (!a1)
		argv[1] = NULL;
	cr_assert_eq(child_run(argv, DEMO_TIMEOUT_S, c), 0, "could not start %s", path);
	cr_assert_not(c->c_timed_out, "%s timed out; output:\n%s", name, c->c_out);
	cr_assert_eq(c->c_status, 0, "%s exited %d; output:\n%s", name, c->c_status, c->c_out);
}

/* The number after `key` in the output (key must be present). */
static double after(const struct child *c, const char *key)
{
	long i = child_find_str(c, key);
	cr_assert_geq(i, 0, "'%s' missing from:\n%s", key, c->c_out);
	return strtod(c->c_out + i + strlen(key), NULL);
}

static double slack(void)
{
	return child_sanitized() ? 2.0 : 1.0;
}

static struct child c; /* 64 KiB: not on the test's stack */

Test(demos, counters_sleep_concurrently, .timeout = 60)
{
	demo(&c, "counters", NULL, NULL);
	cr_expect_eq(child_count(&c, "One (counter"), 3);
	cr_expect_eq(child_count(&c, "Two (counter"), 3);
	char *last_one = strstr(c.c_out, "One (counter");
	for (char *p; (p = strstr(last_one + 1, "One (counter"));)
		last_one = p;
	cr_expect_lt(last_one - c.c_out, child_find_str(&c, "Two (counter"), "%s", c.c_out);
	double s = after(&c, "counters executed in ");
	cr_expect(s >= 0.99 && s < 1.9 * slack(), "took %.2f s, not about 1:\n%s", s, c.c_out);
}

Test(demos, chain_runs_part1_then_part2_and_chains_concurrently, .timeout = 60)
{
	demo(&c, "chain", NULL, NULL);
	double longest = 0;
	for (int n = 3; n <= 9; n += 3) {
		char k[4][96];
		snprintf(k[0], sizeof(k[0]), "part1(%d) sleeping", n);
		snprintf(k[1], sizeof(k[1]), "Returning part1(%d) == result%d-1.", n, n);
		snprintf(k[2], sizeof(k[2]), "part2(%d, 'result%d-1') sleeping", n, n);
		snprintf(k[3], sizeof(k[3]),
			 "-->Chained result%d => result%d-2 derived from result%d-1 (took ", n, n,
			 n);
		for (int i = 0; i < 4; i++)
			cr_assert_geq(child_find_str(&c, k[i]), 0, "'%s' missing:\n%s", k[i],
				      c.c_out);
		for (int i = 0; i < 3; i++)
			cr_expect_lt(child_find_str(&c, k[i]), child_find_str(&c, k[i + 1]), "%s",
				     c.c_out);
		double took = after(&c, k[3]);
		longest = took > longest ? took : longest;
	}
	double total = after(&c, "Program finished in ");
	cr_expect_lt(total, longest + 0.25 * slack(), "chains did not overlap:\n%s", c.c_out);
}

Test(demos, prodcons_does_every_job_once_then_cancels_consumers, .timeout = 60)
{
	demo(&c, "prodcons", NULL, NULL);
	for (int p = 1; p <= 2; p++)
		for (int i = 0; i < 10; i++) {
			char k[32];
			snprintf(k, sizeof(k), "did job %d\n", p * 100 + i);
			cr_expect_eq(child_count(&c, k), 1, "'%s':\n%s", k, c.c_out);
		}
	cr_expect_eq(child_count(&c, ": cancelled"), 3, "%s", c.c_out);
	cr_expect_lt(child_find_str(&c, "all 20 jobs done"), child_find_str(&c, ": cancelled"));
	cr_expect_geq(child_find_str(&c, "consumers cancelled"), 0);
	double work = after(&c, "jobs done: "), wall = after(&c, "s of work in ");
	cr_expect_lt(wall, work, "3 consumers did not work in parallel:\n%s", c.c_out);
}

static double chores_gap(const char *mode)
{
	demo(&c, "chores", mode, NULL);
	cr_expect_eq(child_count(&c, "kettle: tick"), 20, "%s", c.c_out);
	cr_expect_eq(child_count(&c, "laundry:"), 3, "%s", c.c_out);
	cr_expect_lt(child_find_str(&c, "dishes: start"), child_find_str(&c, "dishes: done"));
	return after(&c, "longest gap between ticks: ");
}

Test(demos, chores_cpu_bound_chore_does_not_block_on_another_worker, .timeout = 60)
{
	double gap = chores_gap("worker");
	cr_expect_lt(gap, 250 * slack(), "kettle stalled %.0f ms:\n%s", gap, c.c_out);
}

Test(demos, chores_cpu_bound_chore_does_not_block_on_the_blocking_pool, .timeout = 60)
{
	double gap = chores_gap("blocking");
	cr_expect_lt(gap, 250 * slack(), "kettle stalled %.0f ms:\n%s", gap, c.c_out);
}

Test(demos, chores_cpu_bound_task_blocks_a_single_worker, .timeout = 60)
{
	double gap = chores_gap("single"); /* asyncio's behaviour: the loop is stuck */
	cr_expect_geq(gap, 450, "kettle ticked during the dishes?\n%s", c.c_out);
}

Test(demos, as_completed_yields_in_completion_order, .timeout = 60)
{
	static const char *const order[] = {"b.tar done", "d.pdf done", "a.iso done", "e.mp4 done",
					    "c.zip done"};
	demo(&c, "as_completed", NULL, NULL);
	for (int i = 0; i < 5; i++)
		cr_assert_geq(child_find_str(&c, order[i]), 0, "%s missing:\n%s", order[i],
			      c.c_out);
	for (int i = 0; i < 4; i++)
		cr_expect_lt(child_find_str(&c, order[i]), child_find_str(&c, order[i + 1]), "%s",
			     c.c_out);
}

Test(demos, first_wins_cancels_the_slower_mirrors, .timeout = 60)
{
	demo(&c, "first_wins", NULL, NULL);
	cr_expect_geq(child_find_str(&c, "first answer: v1.2.3 from us.mirror"), 0, "%s", c.c_out);
	cr_expect_geq(child_find_str(&c, "us.mirror    won"), 0, "%s", c.c_out);
	cr_expect_eq(child_count(&c, " cancelled"), 3, "%s", c.c_out);
	cr_expect_lt(after(&c, "done in "), 1.5, "the losers ran on:\n%s", c.c_out);
}

Test(demos, timeout_cancels_the_slow_query_and_expires_the_scope, .timeout = 60)
{
	demo(&c, "timeout", NULL, NULL);
	cr_expect_geq(child_find_str(&c, "wait_for(query(50 ms), 0.2 s): answered 42"), 0, "%s",
		      c.c_out);
	cr_expect_geq(child_find_str(&c, "query(10000 ms): interrupted"), 0, "%s", c.c_out);
	cr_expect_lt(child_find_str(&c, "query(10000 ms): interrupted"),
		     child_find_str(&c, "0.2 s): timed out"), "cleanup before wait_for returned");
	cr_expect_geq(child_find_str(&c, "step 1 done"), 0, "%s", c.c_out);
	cr_expect_eq(child_count(&c, ": Connection timed out"), 1, "%s", c.c_out);
	cr_expect_lt(child_find_str(&c, "step 1 done"),
		     child_find_str(&c, ": Connection timed out"));
	cr_expect_eq(child_find_str(&c, "step 10 done"), -1, "the scope never expired");
	cr_expect_geq(child_find_str(&c, "deadline scope expired"), 0, "%s", c.c_out);
	cr_expect_lt(c.c_wall_s, 5.0 * slack(), "the 10 s query was not cut short");
}

Test(demos, gather_errors_reports_each_and_the_group_cancels_siblings, .timeout = 60)
{
	demo(&c, "gather_errors", NULL, NULL);
	long group = child_find_str(&c, "task group:");
	cr_assert_gt(group, 0, "%s", c.c_out);
	static const char *const gathered[] = {
	    "fetch-users    ok",
	    "fetch-orders   Input/output error",
	    "fetch-stock    No such file or directory",
	    "fetch-prices   ok",
	    "rebuild-index  ok",
	};
	for (int i = 0; i < 5; i++) {
		long at = child_find_str(&c, gathered[i]);
		cr_expect(at >= 0 && at < group, "'%s' not in gather's part:\n%s", gathered[i],
			  c.c_out);
	}
	const char *g = c.c_out + group;
	cr_expect(strstr(g, "group failed with: Input/output error"), "%s", c.c_out);
	cr_expect(strstr(g, "rebuild-index  cancelled"), "%s", c.c_out);
	cr_expect(strstr(g, "fetch-stock    cancelled"), "%s", c.c_out);
	cr_expect(strstr(g, "fetch-users    ok"), "%s", c.c_out);
}

Test(demos, files_writes_300_files_concurrently, .timeout = 60)
{
	char dir[] = "/tmp/rook-test-demo-files-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	demo(&c, "files", dir, NULL);
	cr_expect_geq(child_find_str(&c, "wrote 300 files concurrently"), 0, "%s", c.c_out);
	cr_expect_geq(child_find_str(&c, "(0 failed)"), 0, "%s", c.c_out);
	cr_expect_geq(child_find_str(&c, "checked 300 files: 300 correct"), 0, "%s", c.c_out);
	cr_expect_eq(rmdir(dir), 0, "the demo left files in %s", dir);
}

Test(demos, echo_server_echoes_every_line_then_stops, .timeout = 60)
{
	demo(&c, "echo", NULL, NULL);
	cr_expect_geq(child_find_str(&c, "serving on 127.0.0.1:"), 0, "%s", c.c_out);
	for (int cl = 1; cl <= 3; cl++)
		for (int i = 1; i <= 3; i++) {
			char k[96];
			snprintf(k, sizeof(k),
				 "sent 'hello %d from client %d', got 'hello %d from client %d'", i,
				 cl, i, cl);
			cr_expect_eq(child_count(&c, k), 1, "'%s':\n%s", k, c.c_out);
		}
	/* SIGTERM: the listener closes, the open connection is still served
	 * and finishes within the grace period. */
	long sig = child_find_str(&c, "got SIGTERM: closing the listener");
	long late = child_find_str(&c, "sent 'hello 2 from client 4', got 'hello 2 from client 4'");
	cr_expect_geq(sig, 0, "%s", c.c_out);
	cr_expect_gt(late, sig, "%s", c.c_out);
	cr_expect_geq(child_find_str(&c, "open connections finished"), 0, "%s", c.c_out);
	cr_expect_geq(child_find_str(&c, "server stopped"), 0, "%s", c.c_out);
}

Test(demos, crawler_fetches_every_page_with_bounded_parallelism, .timeout = 60)
{
	char dir[] = "/tmp/rook-test-demo-crawler-XXXXXX", path[128], line[256];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/links.txt", dir);
	demo(&c, "crawler", path, NULL);
	cr_expect_geq(child_find_str(&c, "crawled 63 pages, wrote 64 distinct links"), 0, "%s",
		      c.c_out);
	double most = after(&c, "at most ");
	cr_expect(most >= 1 && most <= 4, "%.0f fetches at once (limit 4)", most);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	int lines = 0, local = 0, away = 0;
	while (fgets(line, sizeof(line), f)) {
		lines++;
		local += strncmp(line, "http://127.0.0.1:", 17) == 0 && strstr(line, "/p/");
		away += strcmp(line, "http://example.com/\n") == 0;
	}
	fclose(f);
	unlink(path);
	rmdir(dir);
	cr_expect_eq(lines, 64);
	cr_expect_eq(local, 63);
	cr_expect_eq(away, 1);
}

Test(demos, procs_runs_a_hundred_children_ten_at_a_time, .timeout = 120)
{
	demo(&c, "procs", NULL, NULL);
	cr_expect_geq(child_find_str(&c, "100 of 100 outputs right, at most 10 at a time"), 0, "%s",
		      c.c_out);
	double s = after(&c, "procs executed in ");
	cr_expect(s >= 0.99 && s < 6.0 * slack(), "took %.2f s, not about 1:\n%s", s, c.c_out);
}
