/* SPDX-License-Identifier: MIT */
/*
 * File IO: writes read back at offsets and at the current position, short
 * reads at end of file, scatter/gather, 1,000 files open and written at
 * once, fsync, the full-transfer loops on a pipe, rook_poll on a pipe, the
 * choice between inline and io_uring writes (io/uring.c) and the time
 * budget of inline writes, and the -EPERM of IO calls made outside a task.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <rook.h>

#include "io/testing.h"
#include "tests/helpers.h"

static char dir[64];

static void mkdir_tmp(void)
{
	strcpy(dir, "/tmp/rook-io-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* ---- offsets and current position ---------------------------------------- */

static int offsets_main(void *arg)
{
	char p[128], buf[16] = {0};
	path_of(p, sizeof(p), "offsets");
	int fd = rook_open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	T_CHECK(fd >= 0);
	T_CHECK_EQ(rook_write(fd, "hello", 5, 0), 5);
	T_CHECK_EQ(rook_write(fd, "WORLD", 5, 10), 5); /* a hole at 5..9 */
	T_CHECK_EQ(rook_read(fd, buf, 15, 0), 15);
	T_CHECK(memcmp(buf, "hello\0\0\0\0\0WORLD", 15) == 0);
	T_CHECK_EQ(rook_read(fd, buf, 3, 11), 3);
	T_CHECK(memcmp(buf, "ORL", 3) == 0);
	/* Positional calls leave the file position alone: still 0. */
	T_CHECK_EQ(rook_write(fd, "ab", 2, -1), 2);
	T_CHECK_EQ(rook_write(fd, "cd", 2, -1), 2);
	T_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 4);
	T_CHECK_EQ(lseek(fd, 1, SEEK_SET), 1);
	T_CHECK_EQ(rook_read(fd, buf, 3, -1), 3);
	T_CHECK(memcmp(buf, "bcd", 3) == 0);
	T_CHECK_EQ(rook_read(fd, buf, 2, -1), 2); /* continues at 4 */
	T_CHECK(memcmp(buf, "o\0", 2) == 0);
	T_CHECK_EQ(rook_close(fd), 0);
	return 0;
}

Test(files, write_then_read_back_at_offsets_and_current_position, .timeout = 30)
{
	int fds = fd_count();
	mkdir_tmp();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, offsets_main, NULL), 0);
	rm_tmp();
	expect_clean_shutdown(fds);
}

static int eof_main(void *arg)
{
	char p[128], buf[64];
	path_of(p, sizeof(p), "eof");
	int fd = rook_open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	T_CHECK(fd >= 0);
	T_CHECK_EQ(rook_write(fd, "0123456789", 10, 0), 10);
	T_CHECK_EQ(rook_read(fd, buf, sizeof(buf), 4), 6);    /* short: 6 left */
	T_CHECK_EQ(rook_read(fd, buf, sizeof(buf), 10), 0);   /* at EOF */
	T_CHECK_EQ(rook_read(fd, buf, sizeof(buf), 100), 0);  /* past EOF */
	T_CHECK_EQ(rook_read_full(fd, buf, sizeof(buf)), 10); /* position 0 -> EOF */
	T_CHECK_EQ(rook_read_full(fd, buf, sizeof(buf)), 0);
	T_CHECK_EQ(rook_read(fd, NULL, 1, 0), -EINVAL);
	T_CHECK_EQ(rook_read(fd, NULL, 0, 0), 0);
	T_CHECK_EQ(rook_close(fd), 0);
	T_CHECK_EQ(rook_read(fd, buf, 1, 0), -EBADF);
	T_CHECK_EQ(rook_close(-1), -EBADF);
	T_CHECK_EQ(rook_open(NULL, O_RDONLY, 0), -EINVAL);
	path_of(p, sizeof(p), "missing/file");
	T_CHECK_EQ(rook_open(p, O_RDONLY, 0), -ENOENT);
	return 0;
}

Test(files, short_read_at_eof_and_errors, .timeout = 30)
{
	int fds = fd_count();
	mkdir_tmp();
	cr_assert_eq(run_with(1, ROOK_NO_PIN, eof_main, NULL), 0);
	rm_tmp();
	expect_clean_shutdown(fds);
}

static int vec_main(void *arg)
{
	char p[128], a[4], b[6];
	path_of(p, sizeof(p), "vec");
	int fd = rook_open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	T_CHECK(fd >= 0);
	struct iovec w[2] = {{"abcd", 4}, {"efghij", 6}};
	T_CHECK_EQ(rook_writev(fd, w, 2, 0), 10);
	struct iovec r[2] = {{b, 6}, {a, 4}};
	T_CHECK_EQ(rook_readv(fd, r, 2, 0), 10);
	T_CHECK(memcmp(b, "abcdef", 6) == 0 && memcmp(a, "ghij", 4) == 0);
	T_CHECK_EQ(rook_writev(fd, w, 1, -1), 4);
	T_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 4);
	T_CHECK_EQ(rook_readv(fd, NULL, 1, 0), -EINVAL);
	T_CHECK_EQ(rook_readv(fd, r, -1, 0), -EINVAL);
	T_CHECK_EQ(rook_close(fd), 0);
	return 0;
}

Test(files, readv_writev_scatter_gather, .timeout = 30)
{
	int fds = fd_count();
	mkdir_tmp();
	cr_assert_eq(run_with(1, ROOK_NO_PIN, vec_main, NULL), 0);
	rm_tmp();
	expect_clean_shutdown(fds);
}

/* ---- 1,000 files at once ----------------------------------------------------- */

#define NFILES     1000
#define FILE_BYTES 8192

static _Atomic int files_open_now, files_open_peak;
static _Atomic long files_opened;
static long files_total;

static int one_file(void *arg)
{
	long i = (long)(intptr_t)arg;
	char p[128], name[32], buf[FILE_BYTES], back[FILE_BYTES];
	snprintf(name, sizeof(name), "f%04ld", i);
	path_of(p, sizeof(p), name);
	memset(buf, (int)(i & 0xff), sizeof(buf));
	int fd = rook_open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	T_CHECK(fd >= 0);
	if (fd < 0)
		return fd;
	int now = atomic_fetch_add(&files_open_now, 1) + 1;
	int peak = atomic_load(&files_open_peak);
	while (now > peak && !atomic_compare_exchange_weak(&files_open_peak, &peak, now))
		;
	/* Every file is open before any is written: all 1,000 at once. */
	atomic_fetch_add(&files_opened, 1);
	while (atomic_load(&files_opened) < files_total)
		T_CHECK_EQ(rook_yield(), 0);
	T_CHECK_EQ(rook_write(fd, buf, FILE_BYTES / 2, 0), FILE_BYTES / 2);
	T_CHECK_EQ(rook_write(fd, buf + FILE_BYTES / 2, FILE_BYTES / 2, FILE_BYTES / 2),
		   FILE_BYTES / 2);
	T_CHECK_EQ(rook_fsync(fd), 0);
	T_CHECK_EQ(rook_read(fd, back, FILE_BYTES, 0), FILE_BYTES);
	T_CHECK(memcmp(buf, back, FILE_BYTES) == 0);
	atomic_fetch_sub(&files_open_now, 1);
	T_CHECK_EQ(rook_close(fd), 0);
	return 0;
}

static int thousand_main(void *arg)
{
	static struct rook_task *t[NFILES];
	long n = (long)(intptr_t)arg;
	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_spawn(&t[i], one_file, (void *)(intptr_t)i), 0);
	for (long i = 0; i < n; i++) {
		int st = -1;
		T_CHECK_EQ(rook_join(t[i], &st), 0);
		T_CHECK_EQ(st, 0);
	}
	return 0;
}

Test(files, thousand_files_open_and_written_concurrently, .timeout = 120)
{
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < NFILES + 64 && rl.rlim_max >= NFILES + 64) {
		rl.rlim_cur = NFILES + 64;
		cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if (rl.rlim_cur < NFILES + 64)
		cr_skip_test("RLIMIT_NOFILE %lu too low for 1,000 open files",
			     (unsigned long)rl.rlim_cur);
	int fds = fd_count();
	mkdir_tmp();
	long n = scaled(NFILES, 1);
	files_total = n;
	cr_assert_eq(run_with(2, ROOK_NO_PIN, thousand_main, (void *)(intptr_t)n), 0);
	rm_tmp();
	cr_expect((atomic_load(&files_open_peak)) == (n), "peak open files %d",
		  atomic_load(&files_open_peak));
	expect_clean_shutdown(fds);
}

/* ---- pipes: full transfers and poll ------------------------------------------ */

struct pipe_job {
	int pj_fd;
	size_t pj_len;
	_Atomic int pj_ready;
};

static int pipe_writer(void *arg)
{
	struct pipe_job *j = arg;
	char *buf = malloc(j->pj_len);
	for (size_t i = 0; i < j->pj_len; i++)
		buf[i] = (char)(i * 7);
	T_CHECK_EQ(rook_write_full(j->pj_fd, buf, j->pj_len), (long long)j->pj_len);
	free(buf);
	T_CHECK_EQ(rook_close(j->pj_fd), 0);
	return 0;
}

static int full_main(void *arg)
{
	int p[2];
	T_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	size_t len = 1 << 20; /* 16 pipe buffers: many short transfers */
	struct pipe_job j = {.pj_fd = p[1], .pj_len = len};
	struct rook_task *t;
	T_CHECK_EQ(rook_spawn(&t, pipe_writer, &j), 0);
	char *buf = malloc(len + 16);
	T_CHECK_EQ(rook_read_full(p[0], buf, len + 16), (long long)len); /* stops at EOF */
	for (size_t i = 0; i < len; i++)
		if (buf[i] != (char)(i * 7)) {
			T_CHECK(buf[i] == (char)(i * 7));
			break;
		}
	free(buf);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK_EQ(rook_close(p[0]), 0);
	return 0;
}

Test(files, read_full_and_write_full_loop_over_short_transfers, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, full_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int poll_writer(void *arg)
{
	struct pipe_job *j = arg;
	while (!atomic_load(&j->pj_ready))
		T_CHECK_EQ(rook_yield(), 0);
	/* A plain write: the fd belongs to "another library". */
	T_CHECK_EQ(write(j->pj_fd, "x", 1), 1);
	return 0;
}

static int poll_main(void *arg)
{
	int p[2];
	T_CHECK_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	T_CHECK_EQ(rook_poll(p[1], POLLOUT), POLLOUT);
	struct pipe_job j = {.pj_fd = p[1]};
	struct rook_task *t;
	T_CHECK_EQ(rook_spawn(&t, poll_writer, &j), 0);
	atomic_store(&j.pj_ready, 1);
	int r = rook_poll(p[0], POLLIN);
	T_CHECK_EQ(r, POLLIN);
	char c;
	T_CHECK_EQ(read(p[0], &c, 1), 1);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK_EQ(rook_close(p[1]), 0);
	T_CHECK_EQ(rook_poll(p[0], POLLIN) & POLLHUP, POLLHUP);
	T_CHECK_EQ(rook_poll(p[0], 0), -EINVAL);
	T_CHECK_EQ(rook_close(p[0]), 0);
	return 0;
}

Test(files, poll_on_a_pipe_reports_readiness, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, poll_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- inline or through the ring --------------------------------------------------- */

/* Inline writes need the test directory on a filesystem with a block device
 * behind it (io/uring.c); elsewhere (tmpfs, overlay) every write goes through
 * the ring and these tests have nothing to check. */
static bool dir_on_block_device(void)
{
	struct stat st;
	cr_assert_eq(stat(dir, &st), 0);
	return major(st.st_dev) != 0;
}

/* Inline writes the call made: 0 or 1. */
static long inline_delta(unsigned long before)
{
	return (long)(rook__io_inline_writes() - before);
}

static int choice_main(void *arg)
{
	enum { PAGE = 4096 };
	static char a[PAGE], b[PAGE], c[PAGE], back[3 * PAGE];
	char p[128];
	unsigned long n0;
	memset(a, 'a', PAGE);
	memset(b, 'b', PAGE);
	memset(c, 'c', PAGE);
	path_of(p, sizeof(p), "plain");
	int fd = rook_open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	T_CHECK(fd >= 0);
	/* A page or more to a regular file: inline. */
	n0 = rook__io_inline_writes();
	T_CHECK_EQ(rook_write(fd, a, PAGE, 0), PAGE);
	T_CHECK_EQ(inline_delta(n0), 1);
	struct iovec v[2] = {{b, PAGE / 2}, {b, PAGE / 2}};
	n0 = rook__io_inline_writes();
	T_CHECK_EQ(rook_writev(fd, v, 2, PAGE), PAGE);
	T_CHECK_EQ(inline_delta(n0), 1);
	n0 = rook__io_inline_writes();
	T_CHECK_EQ(rook_write(fd, c, PAGE, -1), PAGE); /* current position: 0 */
	T_CHECK_EQ(inline_delta(n0), 1);
	T_CHECK_EQ(lseek(fd, 0, SEEK_CUR), PAGE);
	/* Below a page: through the ring, same result. */
	n0 = rook__io_inline_writes();
	T_CHECK_EQ(rook_write(fd, "XY", 2, 0), 2);
	T_CHECK_EQ(inline_delta(n0), 0);
	/* Forced through the ring: same result. */
	int old = rook__io_set_file_write_mode(ROOK__FILE_WRITE_RING);
	n0 = rook__io_inline_writes();
	T_CHECK_EQ(rook_write(fd, a, PAGE, 2 * PAGE), PAGE);
	T_CHECK_EQ(inline_delta(n0), 0);
	rook__io_set_file_write_mode(old);
	T_CHECK_EQ(rook_read(fd, back, 3 * PAGE, 0), 3 * PAGE);
	T_CHECK(memcmp(back, "XY", 2) == 0);
	T_CHECK(memcmp(back + 2, c + 2, PAGE - 2) == 0);
	T_CHECK(memcmp(back + PAGE, b, PAGE) == 0);
	T_CHECK(memcmp(back + 2 * PAGE, a, PAGE) == 0);
	T_CHECK_EQ(rook_write(fd, NULL, 1, 0), -EINVAL);
	T_CHECK_EQ(rook_close(fd), 0);
	T_CHECK_EQ(rook_write(fd, "a", 1, 0), -EBADF);

	/* O_DSYNC waits for the disk: through the ring. */
	path_of(p, sizeof(p), "dsync");
	fd = rook_open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_DSYNC, 0600);
	T_CHECK(fd >= 0);
	n0 = rook__io_inline_writes();
	T_CHECK_EQ(rook_write(fd, a, PAGE, 0), PAGE);
	T_CHECK_EQ(inline_delta(n0), 0);
	T_CHECK_EQ(rook_read(fd, back, PAGE, 0), PAGE);
	T_CHECK(memcmp(back, a, PAGE) == 0);
	T_CHECK_EQ(rook_close(fd), 0);

	/* O_DIRECT (where the filesystem takes it): through the ring. */
	path_of(p, sizeof(p), "direct");
	fd = rook_open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0600);
	T_CHECK(fd >= 0 || fd == -EINVAL);
	if (fd >= 0) {
		char *blk = aligned_alloc(4096, 4096);
		memset(blk, 'd', 4096);
		n0 = rook__io_inline_writes();
		T_CHECK_EQ(rook_write(fd, blk, 4096, 0), 4096);
		T_CHECK_EQ(inline_delta(n0), 0);
		free(blk);
		T_CHECK_EQ(rook_close(fd), 0);
	}

	/* A pipe may block: through the ring. */
	int pp[2];
	T_CHECK_EQ(pipe2(pp, O_CLOEXEC), 0);
	n0 = rook__io_inline_writes();
	T_CHECK_EQ(rook_write(pp[1], b, PAGE, -1), PAGE);
	T_CHECK_EQ(inline_delta(n0), 0);
	T_CHECK_EQ(rook_read(pp[0], back, PAGE, -1), PAGE);
	T_CHECK(memcmp(back, b, PAGE) == 0);
	T_CHECK_EQ(rook_close(pp[0]), 0);
	T_CHECK_EQ(rook_close(pp[1]), 0);
	return 0;
}

Test(files, buffered_file_writes_run_inline_and_the_rest_through_the_ring, .timeout = 30)
{
	int fds = fd_count();
	mkdir_tmp();
	if (!dir_on_block_device()) {
		rm_tmp();
		cr_skip_test("%s has no block device behind it: no inline writes", dir);
	}
	cr_assert_eq(run_with(1, ROOK_NO_PIN, choice_main, NULL), 0);
	rm_tmp();
	expect_clean_shutdown(fds);
}

static _Atomic int writer_stop;
static _Atomic long writer_writes, yielder_rounds;

/* Never suspends: every write is inline. */
static int file_hog(void *arg)
{
	char p[128], buf[4096];
	memset(buf, 'w', sizeof(buf));
	path_of(p, sizeof(p), "hog");
	int fd = rook_open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	T_CHECK(fd >= 0);
	while (!atomic_load(&writer_stop)) {
		T_CHECK_EQ(rook_write(fd, buf, sizeof(buf), 0), (long)sizeof(buf));
		atomic_fetch_add(&writer_writes, 1);
	}
	T_CHECK_EQ(rook_close(fd), 0);
	return 0;
}

/* Counts its rounds once the hog writes: from then on it runs only when the
 * hog's inline-write budget makes it yield. */
static int yielder(void *arg)
{
	while (atomic_load(&writer_writes) == 0)
		T_CHECK_EQ(rook_yield(), 0);
	while (atomic_load(&yielder_rounds) < 100) {
		atomic_fetch_add(&yielder_rounds, 1);
		T_CHECK_EQ(rook_yield(), 0);
	}
	atomic_store(&writer_stop, 1);
	return 0;
}

static int hog_main(void *arg)
{
	struct rook_task *h, *y;
	unsigned long n0 = rook__io_inline_writes();
	T_CHECK_EQ(rook_spawn(&h, file_hog, NULL), 0);
	T_CHECK_EQ(rook_spawn(&y, yielder, NULL), 0);
	T_CHECK_EQ(rook_join(y, NULL), 0);
	T_CHECK_EQ(rook_join(h, NULL), 0);
	T_CHECK((long)(rook__io_inline_writes() - n0) >= atomic_load(&writer_writes));
	return 0;
}

Test(files, inline_writes_in_a_loop_do_not_starve_other_tasks, .timeout = 60)
{
	int fds = fd_count();
	mkdir_tmp();
	if (!dir_on_block_device()) {
		rm_tmp();
		cr_skip_test("%s has no block device behind it: no inline writes", dir);
	}
	cr_assert_eq(run_with(1, ROOK_NO_PIN, hog_main, NULL), 0);
	rm_tmp();
	cr_expect(atomic_load(&writer_writes) > 0);
	expect_clean_shutdown(fds);
}

/* ---- outside a task ------------------------------------------------------------ */

Test(files, io_calls_outside_a_task_return_eperm, .timeout = 30)
{
	char buf[4];
	struct iovec iov = {buf, sizeof(buf)};
	cr_expect_eq(rook_read(0, buf, 1, 0), -EPERM);
	cr_expect_eq(rook_write(1, buf, 1, 0), -EPERM);
	cr_expect_eq(rook_readv(0, &iov, 1, 0), -EPERM);
	cr_expect_eq(rook_writev(1, &iov, 1, 0), -EPERM);
	cr_expect_eq(rook_open("/dev/null", O_RDONLY, 0), -EPERM);
	cr_expect_eq(rook_close(0), -EPERM);
	cr_expect_eq(rook_fsync(0), -EPERM);
	cr_expect_eq(rook_accept(0, NULL, NULL), -EPERM);
	cr_expect_eq(rook_recv(0, buf, 1, 0), -EPERM);
	cr_expect_eq(rook_send(1, buf, 1, 0), -EPERM);
	cr_expect_eq(rook_poll(0, POLLIN), -EPERM);
	cr_expect_eq(rook_tcp_listen("127.0.0.1", 0, 1), -EPERM);
	cr_expect_eq(rook_tcp_connect("127.0.0.1", 1), -EPERM);
	cr_expect_eq(rook_read_full(0, buf, 1), -EPERM);
	cr_expect_eq(rook_write_full(1, buf, 1), -EPERM);
}
