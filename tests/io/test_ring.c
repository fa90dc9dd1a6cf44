/* SPDX-License-Identifier: MIT */
/*
 * The ring and park point: a runtime falls back to epoll with one line on
 * stderr when io_uring cannot be set up (and refuses to start, -ENOSYS,
 * where ROOK_IO=uring forces it); wake-ups of parked
 * workers are never lost (plain-thread spawns through the eventfd, worker
 * to worker through eventfd and MSG_RING); a task whose IO always completes
 * at once does not starve the others on its worker.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rook.h>

#include "io/testing.h"
#include "tests/helpers.h"

static int nop_main(void *arg)
{
	return 0;
}

/* Run fn with stderr captured into buf. */
static int with_stderr(char *buf, size_t n, int (*fn)(void *), void *arg)
{
	char path[] = "/tmp/rook-stderr-XXXXXX";
	int tmp = mkstemp(path);
	cr_assert_geq(tmp, 0);
	unlink(path);
	fflush(stderr);
	int saved = dup(2);
	dup2(tmp, 2);
	int rc = fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t got = pread(tmp, buf, n - 1, 0);
	buf[got > 0 ? got : 0] = '\0';
	close(tmp);
	return rc;
}

static int start_stop(void *arg)
{
	struct rook_rt *rt = NULL;
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	int rc = rook_rt_start(&rt, &cfg);
	if (rc == 0)
		rook_rt_stop(rt);
	return rc;
}

static int run2(void *arg)
{
	return run_with(2, ROOK_NO_PIN, nop_main, NULL);
}

static const char *seen_backend;

static int backend_main(void *arg)
{
	seen_backend = rook_io_backend();
	return 0;
}

static int run2_backend(void *arg)
{
	seen_backend = NULL;
	return run_with(2, ROOK_NO_PIN, backend_main, NULL);
}

static void expect_one_line(const char *msg, const char *has, const char *has2)
{
	cr_expect(strstr(msg, "rook: io_uring is not available") != NULL, "stderr: %s", msg);
	cr_expect(strstr(msg, has) != NULL, "no \"%s\" in stderr: %s", has, msg);
	cr_expect(strstr(msg, has2) != NULL, "no \"%s\" in stderr: %s", has2, msg);
	cr_expect_eq(strchr(msg, '\n'), msg + strlen(msg) - 1, "not one line: %s", msg);
}

Test(ring, io_uring_unavailable_falls_back_to_epoll_with_one_line, .timeout = 30)
{
	if (uring_missing())
		cr_skip_test("io_uring is not available here (io_uring_setup: ENOSYS; qemu-user "
			     "does not emulate it)");
	int fds = fd_count();
	char msg[1024];
	int errs[] = {-ENOSYS, -EPERM, -ENOMEM};
	unsetenv("ROOK_IO");
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		rook__io_force_unavailable(errs[i]);
		cr_expect_eq(with_stderr(msg, sizeof(msg), run2_backend, NULL), 0);
		expect_one_line(msg, strerror(-errs[i]), "using epoll");
		cr_expect_str_eq(seen_backend ? seen_backend : "(null)", "epoll");
		cr_expect_eq(with_stderr(msg, sizeof(msg), start_stop, NULL), 0);
	}
	rook__io_force_unavailable(0);
	cr_expect_eq(with_stderr(msg, sizeof(msg), run2_backend, NULL), 0);
	cr_expect_eq(msg[0], '\0', "unexpected stderr: %s", msg);
	cr_expect_str_eq(seen_backend ? seen_backend : "(null)", "io_uring");
	cr_expect_null(rook_io_backend(), "outside a runtime");
	expect_clean_shutdown(fds);
}

Test(ring, rook_io_uring_where_denied_fails_start_with_enosys, .timeout = 30)
{
	if (uring_missing())
		cr_skip_test("io_uring is not available here (io_uring_setup: ENOSYS; qemu-user "
			     "does not emulate it)");
	int fds = fd_count();
	char msg[1024];
	setenv("ROOK_IO", "uring", 1);
	rook__io_force_unavailable(-EPERM);
	cr_expect_eq(with_stderr(msg, sizeof(msg), run2, NULL), -ENOSYS);
	expect_one_line(msg, strerror(EPERM), "ROOK_IO=uring");
	cr_expect_eq(with_stderr(msg, sizeof(msg), start_stop, NULL), -ENOSYS);
	rook__io_force_unavailable(0);
	cr_expect_eq(with_stderr(msg, sizeof(msg), run2_backend, NULL), 0);
	cr_expect_str_eq(seen_backend ? seen_backend : "(null)", "io_uring");
	setenv("ROOK_IO", "epoll", 1);
	cr_expect_eq(with_stderr(msg, sizeof(msg), run2_backend, NULL), 0);
	cr_expect_eq(msg[0], '\0', "forcing epoll is silent: %s", msg);
	cr_expect_str_eq(seen_backend ? seen_backend : "(null)", "epoll");
	setenv("ROOK_IO", "kqueue", 1);
	cr_expect_eq(with_stderr(msg, sizeof(msg), run2, NULL), -EINVAL);
	cr_expect(strstr(msg, "ROOK_IO=kqueue") != NULL, "stderr: %s", msg);
	setenv("ROOK_IO", "", 1);
	cr_expect_eq(with_stderr(msg, sizeof(msg), run2_backend, NULL), 0);
	cr_expect_str_eq(seen_backend ? seen_backend : "(null)", "io_uring");
	unsetenv("ROOK_IO");
	expect_clean_shutdown(fds);
}

/* ---- no lost wake-ups --------------------------------------------------------- */

static _Atomic long done_count;

static int bump(void *arg)
{
	atomic_fetch_add(&done_count, 1);
	return 0;
}

Test(ring, plain_thread_spawns_always_wake_a_parked_worker_stress, .timeout = 120)
{
	int fds = fd_count();
	struct rook_rt *rt;
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
	long n = scaled(20000, 10);
	for (long i = 0; i < n; i++) {
		struct rook_task *t;
		cr_assert_eq(rook_rt_spawn(rt, &t, bump, NULL), 0);
		int st = -1;
		cr_assert_eq(rook_join(t, &st), 0);
		cr_assert_eq(st, 0);
		if (i % 1000 == 999)
			usleep(200); /* let the workers park for real */
	}
	cr_assert_eq(rook_rt_stop(rt), 0);
	cr_expect_eq(atomic_load(&done_count), n);
	expect_clean_shutdown(fds);
}

static int spin_us(void *arg)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) <
	       (long)(intptr_t)arg * 1000);
	return 0;
}

/* Each round parks one worker and wakes it from the other. */
static int ping_main(void *arg)
{
	long n = (long)(intptr_t)arg;
	for (long i = 0; i < n; i++) {
		struct rook_task *t;
		T_CHECK_EQ(rook_spawn(&t, spin_us, (void *)(intptr_t)100), 0);
		T_CHECK_EQ(rook_join(t, NULL), 0);
	}
	return 0;
}

static void worker_wakes(int mode)
{
	int fds = fd_count();
	int old = rook__io_set_wake_mode(mode);
	unsigned long e0, m0, e1, m1;
	rook__io_wake_counts(&e0, &m0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, ping_main, (void *)(intptr_t)scaled(2000, 4)), 0);
	rook__io_wake_counts(&e1, &m1);
	rook__io_set_wake_mode(old);
	if (mode == ROOK__WAKE_MSG_RING)
		cr_expect((m1 - m0) > (0), "no MSG_RING wake-up was sent");
	else
		cr_expect_eq(m1 - m0, 0, "MSG_RING used in eventfd mode");
	expect_clean_shutdown(fds);
}

Test(ring, worker_to_worker_wakes_through_eventfd_stress, .timeout = 120)
{
	worker_wakes(ROOK__WAKE_EVENTFD);
}

Test(ring, worker_to_worker_wakes_through_msg_ring_stress, .timeout = 120)
{
	if (on_epoll())
		cr_skip_test("MSG_RING wake-ups are io_uring's (ROOK_IO=epoll)");
	if (uring_missing())
		cr_skip_test("io_uring is not available here (io_uring_setup: ENOSYS; qemu-user "
			     "does not emulate it)");
	worker_wakes(ROOK__WAKE_MSG_RING);
}

/* ---- the cooperative budget ---------------------------------------------------- */

static _Atomic int hog_stop;
static _Atomic long hog_reads, other_rounds;

static int io_hog(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[64];
	while (!atomic_load(&hog_stop)) {
		T_CHECK_EQ(rook_read(fd, buf, sizeof(buf), -1), (long)sizeof(buf));
		atomic_fetch_add(&hog_reads, 1);
	}
	T_CHECK_EQ(rook_close(fd), 0);
	return 0;
}

static int other(void *arg)
{
	while (atomic_load(&other_rounds) < 1000) {
		atomic_fetch_add(&other_rounds, 1);
		T_CHECK_EQ(rook_yield(), 0);
	}
	atomic_store(&hog_stop, 1);
	return 0;
}

static int budget_main(void *arg)
{
	struct rook_task *h, *o;
	/* Opened here: an open may go to a helper thread (epoll: the blocking
	 * pool), and the hog must be reading while the other task counts. */
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	T_CHECK(fd >= 0);
	T_CHECK_EQ(rook_spawn(&h, io_hog, (void *)(intptr_t)fd), 0);
	T_CHECK_EQ(rook_spawn(&o, other, NULL), 0);
	T_CHECK_EQ(rook_join(o, NULL), 0);
	T_CHECK_EQ(rook_join(h, NULL), 0);
	return 0;
}

Test(ring, fast_io_does_not_starve_other_tasks, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, ROOK_NO_PIN, budget_main, NULL), 0);
	cr_expect((atomic_load(&hog_reads)) > (0));
	expect_clean_shutdown(fds);
}
