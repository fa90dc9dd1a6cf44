/* SPDX-License-Identifier: MIT */
/*
 * rook_stats and rook_stats_write: counters match a known workload exactly
 * (N spawns -> N spawned and N finished, K sleeps -> K timers armed and
 * fired, K receives -> K IO operations submitted and completed), both
 * output formats carry them, and bad input gets its -errno.
 */
#include <errno.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers.h"

static int nothing(void *arg)
{
	(void)arg;
	return 0;
}

#define NSPAWN 1000
#define NSLEEP 20
#define NRECV  50

static struct rook_stats before, after;
static char text[1 << 16], prom[1 << 16];

static void read_fd(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
}

static int stats_main(void *arg)
{
	(void)arg;
	int sv[2];
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	char bytes[NRECV] = {0};
	T_CHECK_EQ(send(sv[1], bytes, sizeof(bytes), 0), NRECV);
	T_CHECK_EQ(rook_stats(&before, sizeof(before)), 0);
	struct rook_task *t[NSPAWN];
	for (int i = 0; i < NSPAWN; i++)
		T_CHECK_EQ(rook_spawn(&t[i], nothing, NULL), 0);
	for (int i = 0; i < NSPAWN; i++)
		T_CHECK_EQ(rook_join(t[i], NULL), 0);
	for (int i = 0; i < NSLEEP; i++)
		T_CHECK_EQ(rook_sleep(100 * ROOK_USEC), 0);
	for (int i = 0; i < NRECV; i++) {
		char c;
		T_CHECK_EQ(rook_recv(sv[0], &c, 1, 0), 1);
	}
	T_CHECK_EQ(rook_stats(&after, sizeof(after)), 0);
	int fd = memfd_create("stats", MFD_CLOEXEC);
	T_CHECK(rook_stats_write(fd, ROOK_STATS_TEXT) > 0);
	read_fd(fd, text, sizeof(text));
	T_CHECK_EQ(ftruncate(fd, 0), 0);
	T_CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	T_CHECK(rook_stats_write(fd, ROOK_STATS_PROMETHEUS) > 0);
	read_fd(fd, prom, sizeof(prom));
	close(fd);
	T_CHECK_EQ(rook_stats_write(-1, ROOK_STATS_TEXT), -EBADF);
	T_CHECK_EQ(rook_stats_write(1, 7), -EINVAL);
	T_CHECK_EQ(rook_stats(NULL, sizeof(after)), -EINVAL);
	T_CHECK_EQ(rook_stats(&after, 8), -EINVAL);
	/* An older, shorter struct: only its part is written. */
	struct rook_stats small;
	memset(&small, 0xab, sizeof(small));
	size_t cut = offsetof(struct rook_stats, workers);
	T_CHECK_EQ(rook_stats(&small, cut), 0);
	T_CHECK_EQ(small.size, cut);
	T_CHECK_EQ(small.workers[0].spawned, 0xababababababababull);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

Test(stats, counters_match_a_known_workload)
{
	int fds = fd_count();
	struct rook_stats st;
	cr_expect_eq(rook_stats(&st, sizeof(st)), -ESRCH);
	cr_expect_eq(rook_stats_write(1, ROOK_STATS_TEXT), -ESRCH);
	cr_assert_eq(run_with(1, 0, stats_main, NULL), 0);
	expect_clean_shutdown(fds);
	cr_expect_eq(after.size, sizeof(after));
	cr_expect_eq(after.nworkers, 1);
	cr_expect_eq(after.tasks_spawned - before.tasks_spawned, NSPAWN);
	cr_expect_eq(after.tasks_finished - before.tasks_finished, NSPAWN);
	cr_expect_eq(after.tasks_live, 1, "only main is live: %llu",
		     (unsigned long long)after.tasks_live);
	cr_expect_eq(after.timers_armed - before.timers_armed, NSLEEP);
	cr_expect_eq(after.timers_fired - before.timers_fired, NSLEEP);
	cr_expect_eq(after.io_submitted - before.io_submitted, NRECV);
	cr_expect_eq(after.io_completed - before.io_completed, NRECV);
	cr_expect_eq(after.io_cancelled, before.io_cancelled);
	cr_expect_eq(after.workers[0].spawned, after.tasks_spawned - 1, "main came from outside");
	cr_expect_gt(after.workers[0].rounds, before.workers[0].rounds);
	cr_expect_eq(after.workers[0].running, 1, "main was running when it asked");
	cr_expect_gt(after.stack_bytes_reserved, 0);
	char line[128];
	snprintf(line, sizeof(line), "rook_tasks_spawned_total %llu\n",
		 (unsigned long long)after.tasks_spawned);
	cr_expect(strstr(text, line), "%s not in:\n%s", line, text);
	cr_expect(strstr(text, "rook_tasks_spawned_total.worker0 "), "%s", text);
	cr_expect(strstr(prom, "# TYPE rook_tasks_spawned_total counter\n"), "%s", prom);
	cr_expect(strstr(prom, "# TYPE rook_tasks_live gauge\n"), "%s", prom);
	cr_expect(strstr(prom, line), "%s", prom);
	cr_expect(strstr(prom, "rook_timers_fired_total{worker=\"0\"} "), "%s", prom);
}

/* ROOK_STATS_SOCKET: each connection gets the metrics as Prometheus text
 * (from a plain thread, so while the workers are busy too), tools/rook-top
 * turns two of them into its table, and the socket goes at stop. */
static char sock_path[64], served[1 << 16], top_out[1 << 14];

static ssize_t read_socket(char *buf, size_t size)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = 0;
	ssize_t r = -1;

	strcpy(a.sun_path, sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto out;
	while (n < size - 1 && (r = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	r = r < 0 ? -1 : (ssize_t)n;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

static int served_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < NSPAWN; i++)
		T_CHECK_EQ(rook_spawn(NULL, nothing, NULL), 0);
	/* Blocking reads in a task: fine here, the server is its own thread. */
	T_CHECK(read_socket(served, sizeof(served)) > 0);
	if (system("python3 -c pass >/dev/null 2>&1") == 0) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "python3 %s/tools/rook-top --once --interval 0.05 %s",
			 ROOK_SOURCE_DIR, sock_path);
		FILE *p = popen(cmd, "r");
		T_CHECK(p != NULL);
		if (p) {
			size_t n = fread(top_out, 1, sizeof(top_out) - 1, p);
			top_out[n] = '\0';
			T_CHECK_EQ(pclose(p), 0);
		}
	}
	return 0;
}

Test(stats, stats_socket_serves_prometheus_text_and_rook_top_reads_it)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/rook-stats-%d.sock", (int)getpid());
	int fds = fd_count();
	setenv("ROOK_STATS_SOCKET", sock_path, 1);
	int r = run_with(2, ROOK_NO_PIN, served_main, NULL);
	unsetenv("ROOK_STATS_SOCKET");
	cr_assert_eq(r, 0);
	expect_clean_shutdown(fds);
	cr_expect(strstr(served, "# TYPE rook_tasks_spawned_total counter\n"), "%s", served);
	cr_expect(strstr(served, "rook_worker_running{worker=\"1\"} "), "%s", served);
	cr_expect_neq(access(sock_path, F_OK), 0, "the socket was left behind");
	if (top_out[0]) {
		cr_expect(strstr(top_out, "workers 2"), "%s", top_out);
		cr_expect(strstr(top_out, "rounds/s"), "%s", top_out);
	}
}

static int quiet_main(void *arg)
{
	(void)arg;
	return 0;
}

/* A path that names a regular file is left alone (one line, no server)
 * and the runtime runs on; a path another runtime serves on is not taken
 * from it, and its socket outlives the second runtime's stop. */
static int second_main(void *arg)
{
	(void)arg;
	struct rook_rt *rt2;
	T_CHECK_EQ(rook_rt_start(&rt2, NULL), 0);
	T_CHECK_EQ(rook_rt_stop(rt2), 0);
	struct stat st;
	T_CHECK_EQ(lstat(sock_path, &st), 0);
	T_CHECK(S_ISSOCK(st.st_mode));
	T_CHECK(read_socket(served, sizeof(served)) > 0);
	return 0;
}

Test(stats, stats_socket_never_removes_what_it_did_not_make)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/rook-stats-file-%d", (int)getpid());
	FILE *f = fopen(sock_path, "w");
	cr_assert(f);
	fputs("precious\n", f);
	fclose(f);
	setenv("ROOK_STATS_SOCKET", sock_path, 1);
	int r = run_with(1, ROOK_NO_PIN, quiet_main, NULL);
	cr_assert_eq(r, 0);
	struct stat st;
	cr_assert_eq(lstat(sock_path, &st), 0, "the file was removed");
	cr_expect(S_ISREG(st.st_mode) && st.st_size == 9);
	unlink(sock_path);

	snprintf(sock_path, sizeof(sock_path), "/tmp/rook-stats-two-%d.sock", (int)getpid());
	setenv("ROOK_STATS_SOCKET", sock_path, 1);
	served[0] = '\0';
	r = run_with(1, ROOK_NO_PIN, second_main, NULL);
	unsetenv("ROOK_STATS_SOCKET");
	cr_assert_eq(r, 0);
	cr_expect(strstr(served, "# TYPE rook_tasks_spawned_total counter\n"), "%s", served);
	cr_expect_neq(access(sock_path, F_OK), 0, "the socket was left behind");
}

/* Another user's live socket (connect: EACCES, not ECONNREFUSED) is not
 * taken over: a runtime started as nobody leaves it, with one line. */
static char uid_dir[40];

static void as_nobody(void *arg)
{
	(void)arg;
	if (setgid(65534) != 0 || setuid(65534) != 0)
		_exit(2);
	setenv("ROOK_STATS_SOCKET", sock_path, 1);
	struct rook_config cfg = {.workers = 1, .flags = ROOK_NO_PIN};
	_exit(rook_run(&cfg, quiet_main, NULL) == 0 ? 0 : 3);
}

Test(stats, stats_socket_leaves_another_users_live_socket)
{
	if (getuid() != 0)
		cr_skip_test("needs root, to run a runtime as another user");
	snprintf(uid_dir, sizeof(uid_dir), "/tmp/rook-stats-uid-XXXXXX");
	cr_assert(mkdtemp(uid_dir));
	cr_assert_eq(chmod(uid_dir, 0777), 0);
	snprintf(sock_path, sizeof(sock_path), "%s/s.sock", uid_dir);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
	mode_t um = umask(022); /* the socket 0755: others cannot connect */
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	umask(um);
	cr_assert_eq(listen(l, 4), 0);
	struct stat st0, st1;
	cr_assert_eq(lstat(sock_path, &st0), 0);
	int status;
	char *err = child_stderr(as_nobody, NULL, &status);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	cr_expect_eq(lstat(sock_path, &st1), 0, "the live socket was removed");
	cr_expect_eq(st1.st_ino, st0.st_ino, "the live socket was replaced");
	cr_expect_eq(count_in(err, "ROOK_STATS_SOCKET"), 1, "stderr: %s", err);
	free(err);
	close(l);
	unlink(sock_path);
	rmdir(uid_dir);
}
