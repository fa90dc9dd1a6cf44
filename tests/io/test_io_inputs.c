/* SPDX-License-Identifier: MIT */
/*
 * Bad inputs to the IO calls get a clear -errno, never a crash, a hang or
 * a silent success: NULL buffers and addresses, negative and closed fds,
 * out-of-range counts, lengths too large for the return value, an empty
 * host to connect to; and zero-length transfers return 0. Out of fds,
 * rook_run and a name lookup are -EMFILE.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#include <rook.h>

#include "tests/helpers.h"

static int inputs_main(void *arg)
{
	(void)arg;
	char c = 0;
	struct iovec iov = {&c, 1};
	/* NULL with a length, bad counts. */
	T_CHECK_EQ(rook_read(0, NULL, 1, -1), -EINVAL);
	T_CHECK_EQ(rook_write(1, NULL, 1, 0), -EINVAL);
	T_CHECK_EQ(rook_readv(0, NULL, 1, -1), -EINVAL);
	T_CHECK_EQ(rook_readv(0, &iov, -1, -1), -EINVAL);
	T_CHECK_EQ(rook_writev(1, &iov, IOV_MAX + 1, -1), -EINVAL);
	T_CHECK_EQ(rook_recv(0, NULL, 1, 0), -EINVAL);
	T_CHECK_EQ(rook_send(1, NULL, 1, 0), -EINVAL);
	T_CHECK_EQ(rook_open(NULL, O_RDONLY, 0), -EINVAL);
	T_CHECK_EQ(rook_connect(0, NULL, 0), -EINVAL);
	struct sockaddr_storage ss;
	T_CHECK_EQ(rook_accept(0, (struct sockaddr *)&ss, NULL), -EINVAL);
	T_CHECK_EQ(rook_poll(0, 0), -EINVAL);
	T_CHECK_EQ(rook_tcp_connect(NULL, 80), -EINVAL);
	T_CHECK_EQ(rook_tcp_connect("", 80), -EINVAL);
	T_CHECK_EQ(rook_read_full(0, &c, (size_t)SSIZE_MAX + 1), -EINVAL);
	T_CHECK_EQ(rook_write_full(1, &c, SIZE_MAX), -EINVAL);
	/* Negative fds and fds not open. */
	int bad[] = {-1, INT_MIN, INT_MAX};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = bad[i];
		T_CHECK_EQ(rook_read(fd, &c, 1, -1), -EBADF);
		T_CHECK_EQ(rook_read(fd, &c, 1, 0), -EBADF);
		T_CHECK_EQ(rook_write(fd, &c, 1, -1), -EBADF);
		T_CHECK_EQ(rook_readv(fd, &iov, 1, -1), -EBADF);
		T_CHECK_EQ(rook_writev(fd, &iov, 1, 3), -EBADF);
		T_CHECK_EQ(rook_recv(fd, &c, 1, 0), -EBADF);
		T_CHECK_EQ(rook_send(fd, &c, 1, 0), -EBADF);
		T_CHECK_EQ(rook_fsync(fd), -EBADF);
		T_CHECK_EQ(rook_close(fd), -EBADF);
		T_CHECK_EQ(rook_accept(fd, NULL, NULL), -EBADF);
		T_CHECK_EQ(rook_read_full(fd, &c, 1), -EBADF);
		T_CHECK_EQ(rook_write_full(fd, &c, 1), -EBADF);
	}
	/* Zero lengths: 0, NULL allowed. */
	int p[2];
	T_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	T_CHECK_EQ(rook_write(p[1], NULL, 0, -1), 0);
	T_CHECK_EQ(rook_writev(p[1], NULL, 0, -1), 0);
	T_CHECK_EQ(rook_read_full(p[1], NULL, 0), 0);
	T_CHECK_EQ(rook_write_full(p[1], NULL, 0), 0);
	T_CHECK_EQ(rook_close(p[0]), 0);
	T_CHECK_EQ(rook_close(p[1]), 0);
	/* A huge length on a pipe is clamped, not refused: a short transfer. */
	T_CHECK_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	T_CHECK_EQ(rook_write(p[1], "ab", 2, -1), 2);
	char *buf = malloc(8); /* heap: a stack address + 2 GiB may pass the top */
	T_CHECK(buf != NULL);
	/* qemu-user checks the whole buffer's range before the syscall (its
	 * lock_user) and answers EFAULT; the kernel only faults on what it
	 * copies. */
	if (!under_qemu())
		T_CHECK_EQ(rook_read(p[0], buf, SIZE_MAX, -1), 2);
	free(buf);
	T_CHECK_EQ(rook_close(p[0]), 0);
	T_CHECK_EQ(rook_close(p[1]), 0);
	return 0;
}

Test(io_inputs, bad_inputs_get_a_clear_errno, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, ROOK_NO_PIN, inputs_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Out of fds: rook_run is -EMFILE, not -ENOSYS, and says nothing about
 * io_uring; a name resolved with no fd left is -EMFILE, not -ENOENT. Run
 * in a child, whose stderr is a file and whose limits are its own. */
static int noop_main(void *arg)
{
	(void)arg;
	return 0;
}

static int highest_fd(void);

static int resolve_main(void *arg)
{
	(void)arg;
	static int dummy[4096];
	struct rlimit old, low;
	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	low.rlim_cur = (rlim_t)highest_fd() + 64;
	setrlimit(RLIMIT_NOFILE, &low);
	int n = 0;
	while (n < 4096 && (dummy[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		n++;
	int r = rook_tcp_connect("localhost", 9);
	while (n > 0)
		close(dummy[--n]);
	setrlimit(RLIMIT_NOFILE, &old);
	return r == -EMFILE ? 0 : 100 + (r < 0 ? -r : 99);
}

static int highest_fd(void)
{
	int hi = -1;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			hi = fd;
	return hi;
}

static void emfile_child(void *arg)
{
	(void)arg;
	struct rlimit old, none;
	getrlimit(RLIMIT_NOFILE, &old);
	none = old;
	none.rlim_cur = (rlim_t)highest_fd() + 1;       /* no number left above */
	for (int fd = 0; fd < (int)none.rlim_cur; fd++) /* nor below */
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDONLY) < 0)
			_exit(90);
	setrlimit(RLIMIT_NOFILE, &none);
	int r = rook_run(NULL, noop_main, NULL);
	setrlimit(RLIMIT_NOFILE, &old);
	if (r != -EMFILE)
		_exit(r < 0 ? -r : 91);
	struct rook_config one = {.workers = 1};
	_exit(rook_run(&one, resolve_main, NULL));
}

Test(io_inputs, out_of_fds_is_emfile_at_start_and_in_name_lookup, .timeout = 60)
{
	int st;
	char *s = child_stderr(emfile_child, NULL, &st);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x:\n%s", st, s);
	/* Where io_uring works, running out of fds must not be blamed on it
	 * (where it does not exist at all, qemu-user, the line is right). */
	cr_expect(uring_missing() || !strstr(s, "io_uring is not available"), "%s", s);
	free(s);
}
