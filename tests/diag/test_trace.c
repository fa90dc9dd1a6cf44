/* SPDX-License-Identifier: MIT */
/*
 * ROOK_TRACE: the file a traced runtime writes parses as JSON (Chrome's
 * array format), holds a run slice for every task with slices on a worker
 * that never overlap, flows whose every end follows its start, and the
 * parks, wakes and IO the workload made; rook_trace_flush writes while the
 * runtime runs; a file that cannot be opened leaves the runtime running
 * untraced; malformed diagnostics variables get one stderr line each. The
 * JSON is checked by python3's parser (skipped without it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/helpers.h"

#define NTASKS 200

static const char checker[] =
    "import json, sys, collections\n"
    "ev = json.load(open(sys.argv[1]))\n"
    "n = int(sys.argv[2])\n"
    "tasks = [e for e in ev if e['ph'] == 'X' and e.get('cat') == 'task']\n"
    "ids = {e['args']['task'] for e in tasks}\n"
    "assert len(ids) >= n, ('tasks', len(ids))\n"
    "by_tid = collections.defaultdict(list)\n"
    "for e in ev:\n"
    "    if e['ph'] == 'X':\n"
    "        assert e['dur'] >= 0, e\n"
    "        by_tid[e['tid']].append((e['ts'], e['ts'] + e['dur']))\n"
    "for tid, sl in by_tid.items():\n"
    "    sl.sort()\n"
    "    for (a0, a1), (b0, b1) in zip(sl, sl[1:]):\n"
    "        assert b0 >= a1 - 0.002, ('overlap', tid, a0, a1, b0)\n"
    "started = collections.Counter()\n"
    "for e in sorted((e for e in ev if e['ph'] in 'sf'), key=lambda e: (e['ts'], e['ph'] == "
    "'f')):\n"
    "    if e['ph'] == 's':\n"
    "        started[e['id']] += 1\n"
    "    else:\n"
    "        assert started[e['id']] > 0, ('flow end without start', e)\n"
    "        started[e['id']] -= 1\n"
    "names = collections.Counter(e['name'] for e in ev)\n"
    "for k in ('spawn', 'wake', 'park', 'thread_name', 'io submit', 'io complete', "
    "'timers'):\n"
    "    assert names[k] > 0, ('no event', k, names)\n"
    "assert names['dropped'] == 0, names['dropped']\n";

static int sleeper(void *arg)
{
	(void)arg;
	return rook_sleep(ROOK_MSEC);
}

static int traced_main(void *arg)
{
	(void)arg;
	struct rook_task *t[NTASKS];
	int fds[2], st;
	char c = 'x';

	for (int i = 0; i < NTASKS; i++)
		T_CHECK_EQ(rook_spawn(&t[i], sleeper, NULL), 0);
	for (int i = 0; i < NTASKS; i++) {
		T_CHECK_EQ(rook_join(t[i], &st), 0);
		T_CHECK_EQ(st, 0);
	}
	T_CHECK_EQ(rook_trace_flush(), 0); /* mid-run: the file grows, stays valid */
	T_CHECK_EQ(pipe(fds), 0);
	T_CHECK_EQ(rook_write(fds[1], &c, 1, -1), 1);
	T_CHECK_EQ(rook_read(fds[0], &c, 1, -1), 1);
	T_CHECK_EQ(rook_close(fds[0]), 0);
	T_CHECK_EQ(rook_close(fds[1]), 0);
	return 0;
}

static bool have_python(void)
{
	return system("python3 -c pass >/dev/null 2>&1") == 0;
}

Test(trace, traced_runtime_writes_valid_json_with_every_tasks_slices, .timeout = 120)
{
	char path[] = "/tmp/rook-trace-XXXXXX", script[] = "/tmp/rook-trace-check-XXXXXX";
	int fd = mkstemp(path), sfd = mkstemp(script);
	cr_assert(fd >= 0 && sfd >= 0);
	close(fd);
	cr_assert_eq(write(sfd, checker, sizeof(checker) - 1), (ssize_t)sizeof(checker) - 1);
	close(sfd);
	int fds = fd_count();

	setenv("ROOK_TRACE", path, 1);
	int r = run_with(2, ROOK_NO_PIN, traced_main, NULL);
	unsetenv("ROOK_TRACE");
	cr_assert_eq(r, 0);
	expect_clean_shutdown(fds);
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_gt(sb.st_size, 1000, "trace of %lld bytes", (long long)sb.st_size);
	if (!have_python()) {
		unlink(path);
		unlink(script);
		cr_skip_test("python3 is not installed: the JSON was not parsed");
	}
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "python3 %s %s %d", script, path, NTASKS);
	int rc = system(cmd);
	unlink(script);
	if (rc == 0)
		unlink(path);
	cr_assert_eq(rc, 0, "the trace failed its check (kept: %s)", path);
}

static int flush_main(void *arg)
{
	(void)arg;
	return rook_trace_flush(); /* tracing off: nothing to write */
}

Test(trace, flush_without_tracing_is_0_and_outside_a_runtime_eperm, .timeout = 60)
{
	unsetenv("ROOK_TRACE");
	cr_assert_eq(rook_trace_flush(), -EPERM);
	cr_assert_eq(run_with(1, ROOK_NO_PIN, flush_main, NULL), 0);
}

Test(trace, unwritable_trace_file_leaves_the_runtime_running_untraced, .timeout = 60)
{
	setenv("ROOK_TRACE", "/nonexistent-dir/trace.json", 1);
	int r = run_with(1, ROOK_NO_PIN, flush_main, NULL);
	unsetenv("ROOK_TRACE");
	cr_assert_eq(r, 0);
}

/* Malformed diagnostics variables: one line each on stderr, and the
 * runtime runs (in a child whose stderr is a file). */
static int quiet_main(void *arg)
{
	(void)arg;
	return 0;
}

static void envlines_child(void *arg)
{
	setenv("ROOK_DUMP_SIGNAL", "FOO", 1);
	setenv("ROOK_STALL_MS", "abc", 1);
	setenv("ROOK_TRACE", arg, 1);
	setenv("ROOK_TRACE_EVENTS", "-1", 1);
	struct rook_config one = {.workers = 1, .flags = ROOK_NO_PIN};
	_exit(rook_run(&one, quiet_main, NULL));
}

Test(trace, malformed_diagnostics_variables_get_one_line_each, .timeout = 60)
{
	char trace[64];
	snprintf(trace, sizeof(trace), "/tmp/rook-envlines-%d.json", (int)getpid());
	int st;
	char *s = child_stderr(envlines_child, trace, &st);
	unlink(trace);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x:\n%s", st, s);
	cr_expect_eq(count_in(s, "ROOK_DUMP_SIGNAL=FOO is not one of"), 1, "%s", s);
	cr_expect_eq(count_in(s, "ROOK_STALL_MS=abc is not a number"), 1, "%s", s);
	cr_expect_eq(count_in(s, "ROOK_TRACE_EVENTS=-1 is not a count"), 1, "%s", s);
	free(s);
}

/* Out of range (past an hour, past a long) is as malformed, not clamped
 * in silence. */
static void stall_range_child(void *arg)
{
	setenv("ROOK_STALL_MS", arg, 1);
	struct rook_config one = {.workers = 1, .flags = ROOK_NO_PIN};
	_exit(rook_run(&one, quiet_main, NULL));
}

Test(trace, a_stall_bound_out_of_range_gets_its_line, .timeout = 60)
{
	const char *bad[] = {"3600001", "99999999999999999999999"};
	for (int i = 0; i < 2; i++) {
		int st;
		char *s = child_stderr(stall_range_child, (void *)bad[i], &st);
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x:\n%s", st, s);
		char want[96];
		snprintf(want, sizeof(want), "ROOK_STALL_MS=%s is not a number of ms in 1..3600000",
			 bad[i]);
		cr_expect_eq(count_in(s, want), 1, "%s", s);
		free(s);
	}
}
