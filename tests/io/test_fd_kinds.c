/* SPDX-License-Identifier: MIT */
/*
 * Calls on kinds of fd where the two backends once differed from poll(2)
 * and read(2): rook_poll for POLLWRBAND wakes when room comes (epoll
 * dropped the bit), rook_poll reports what poll(2) does (io_uring added
 * POLLRDHUP), a read of 0 bytes from a tty returns 0 at once (io_uring
 * waited for input), and an offset on an eventfd is -ESPIPE (pread's).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rook.h>

#include "sched/testing.h"
#include "tests/helpers.h"

static char big[64 << 10];

struct band {
	int fd;
	int res;
};

static int band_waiter(void *arg)
{
	struct band *b = arg;
	b->res = rook_poll(b->fd, POLLWRBAND);
	return 0;
}

static int wrband_main(void *arg)
{
	(void)arg;
	int sv[2];
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	while (send(sv[0], big, sizeof(big), MSG_DONTWAIT) > 0)
		;
	struct band b = {.fd = sv[0]};
	struct rook_task *t;
	T_CHECK_EQ(rook_spawn(&t, band_waiter, &b), 0);
	await_parked(t);
	while (recv(sv[1], big, sizeof(big), MSG_DONTWAIT) > 0)
		; /* room again */
	T_CHECK_EQ(join_or_dump(t, 20 * ROOK_SEC), 0);
	T_CHECK(b.res > 0 && (b.res & POLLWRBAND));
	T_CHECK_EQ(rook_close(sv[0]), 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	return 0;
}

Test(fd_kinds, a_poll_for_wrband_wakes_when_room_comes, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, wrband_main, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, wrband_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* The peer gone: poll(2) says POLLIN | POLLHUP (no POLLRDHUP unasked). */
static int mask_main(void *arg)
{
	(void)arg;
	int sv[2];
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	struct pollfd p = {.fd = sv[0], .events = POLLIN};
	T_CHECK_EQ(poll(&p, 1, 0), 1);
	T_CHECK_EQ(rook_poll(sv[0], POLLIN), p.revents);
	T_CHECK_EQ(rook_close(sv[0]), 0);
	return 0;
}

Test(fd_kinds, a_poll_reports_what_poll_2_reports)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, mask_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int tty_main(void *arg)
{
	(void)arg;
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	T_CHECK(m >= 0);
	if (m < 0)
		return 0;
	T_CHECK_EQ(grantpt(m), 0);
	T_CHECK_EQ(unlockpt(m), 0);
	int s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	T_CHECK(s >= 0);
	char c;
	/* A gross bound: the old io_uring path waited for input for good. */
	T_CHECK_EQ(rook_deadline_push(rook_now() + 20 * ROOK_SEC), 0);
	T_CHECK_EQ(rook_read(s, &c, 0, -1), 0);
	T_CHECK(!rook_deadline_pop());
	T_CHECK_EQ(rook_read(s, &c, 1, 0), -ESPIPE);
	close(s);
	close(m);
	return 0;
}

Test(fd_kinds, a_read_of_nothing_from_a_tty_returns_at_once, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, tty_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int efd_main(void *arg)
{
	(void)arg;
	int e = eventfd(1, EFD_CLOEXEC);
	T_CHECK(e >= 0);
	uint64_t v = 0;
	T_CHECK_EQ(pread(e, &v, sizeof(v), 0), -1);
	T_CHECK_EQ(errno, ESPIPE);
	T_CHECK_EQ(rook_read(e, &v, sizeof(v), 0), -ESPIPE);
	T_CHECK_EQ(rook_write(e, &v, sizeof(v), 0), -ESPIPE);
	T_CHECK_EQ(rook_read(e, &v, sizeof(v), -1), (ssize_t)sizeof(v)); /* untouched */
	T_CHECK_EQ(v, 1);
	close(e);
	return 0;
}

Test(fd_kinds, an_offset_on_an_eventfd_is_espipe)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, efd_main, NULL), 0);
	expect_clean_shutdown(fds);
}
