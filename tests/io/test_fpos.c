/* SPDX-License-Identifier: MIT */
/*
 * The current file position (off < 0) keeps read(2)/write(2) semantics:
 * tasks on two workers sharing one fd read each chunk once and write
 * without overlap; a short write on a full filesystem moves the position
 * by what was written, so rook_write_full reports what the file holds;
 * O_APPEND and dup'ed fds; an offset on a pipe or socket is -ESPIPE.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rook.h>

#include "io/testing.h"
#include "tests/helpers.h"

#define CHUNK   4096u
#define NCHUNKS 2048u /* 8 MiB */
#define NTASKS  4u

static char path[128];

/* A file under dir whose chunk i starts with i. */
static void make_tagged_file(const char *dir)
{
	snprintf(path, sizeof(path), "%s/rook-fpos-XXXXXX", dir);
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	static char buf[CHUNK];
	for (uint32_t i = 0; i < NCHUNKS; i++) {
		memset(buf, (int)(i & 0xff), sizeof(buf));
		memcpy(buf, &i, sizeof(i));
		cr_assert_eq(pwrite(fd, buf, CHUNK, (off_t)i * CHUNK), (ssize_t)CHUNK);
	}
	close(fd);
}

/* ---- shared reads ---------------------------------------------------------- */

struct shared {
	int sh_fd;
	_Atomic unsigned sh_seen[NCHUNKS];
	_Atomic uint64_t sh_bytes;
	_Atomic unsigned sh_bad;
};

static int reader(void *arg)
{
	struct shared *sh = arg;
	char buf[CHUNK];
	for (;;) {
		ssize_t n = rook_read(sh->sh_fd, buf, CHUNK, -1);
		if (n <= 0) {
			T_CHECK_EQ(n, 0);
			return 0;
		}
		atomic_fetch_add_explicit(&sh->sh_bytes, (uint64_t)n, memory_order_relaxed);
		uint32_t i;
		memcpy(&i, buf, sizeof(i));
		if (n != CHUNK || i >= NCHUNKS)
			atomic_fetch_add_explicit(&sh->sh_bad, 1, memory_order_relaxed);
		else
			atomic_fetch_add_explicit(&sh->sh_seen[i], 1, memory_order_relaxed);
	}
}

static void spawn_and_join(rook_fn fn, void *const *args)
{
	struct rook_task *t[NTASKS];
	for (unsigned i = 0; i < NTASKS; i++)
		T_CHECK_EQ(rook_spawn(&t[i], fn, args[i]), 0);
	for (unsigned i = 0; i < NTASKS; i++)
		T_CHECK_EQ(rook_join(t[i], NULL), 0);
}

static int readers_main(void *arg)
{
	void *args[NTASKS] = {arg, arg, arg, arg};
	spawn_and_join(reader, args);
	return 0;
}

Test(fpos, tasks_sharing_a_position_read_each_chunk_once, .timeout = 120)
{
	int fds = fd_count();
	make_tagged_file("/tmp");
	static struct shared sh;
	int rounds = (int)scaled(10, 5);
	for (int r = 0; r < rounds; r++) {
		memset(&sh, 0, sizeof(sh));
		sh.sh_fd = open(path, O_RDONLY | O_CLOEXEC);
		cr_assert(sh.sh_fd >= 0);
		cr_assert_eq(run_with(2, ROOK_NO_PIN, readers_main, &sh), 0);
		close(sh.sh_fd);
		unsigned twice = 0, missed = 0;
		for (unsigned i = 0; i < NCHUNKS; i++) {
			unsigned s = atomic_load(&sh.sh_seen[i]);
			twice += s > 1;
			missed += s == 0;
		}
		cr_assert_eq(atomic_load(&sh.sh_bytes), (uint64_t)NCHUNKS * CHUNK,
			     "round %d: %llu bytes read from an 8 MiB file (%u chunks twice)", r,
			     (unsigned long long)atomic_load(&sh.sh_bytes), twice);
		cr_assert_eq(twice + missed + atomic_load(&sh.sh_bad), 0,
			     "round %d: %u chunks twice, %u missed, %u torn", r, twice, missed,
			     atomic_load(&sh.sh_bad));
	}
	unlink(path);
	expect_clean_shutdown(fds);
}

/* ---- shared writes --------------------------------------------------------- */

#define WCHUNKS 512u /* per task */

struct writer {
	int wr_fd;
	uint32_t wr_first;
};

static int writer(void *arg)
{
	struct writer *wr = arg;
	char buf[CHUNK];
	for (uint32_t i = wr->wr_first; i < wr->wr_first + WCHUNKS; i++) {
		memset(buf, (int)(i & 0xff), sizeof(buf));
		memcpy(buf, &i, sizeof(i));
		T_CHECK_EQ(rook_write(wr->wr_fd, buf, CHUNK, -1), CHUNK);
	}
	return 0;
}

static int writers_main(void *arg)
{
	struct writer *wr = arg;
	void *args[NTASKS];
	for (unsigned i = 0; i < NTASKS; i++)
		args[i] = &wr[i];
	spawn_and_join(writer, args);
	return 0;
}

/* /dev/shm is tmpfs: writes go through io_uring (not inline), as they do
 * everywhere with the mode forced to the ring. */
Test(fpos, tasks_sharing_a_position_write_without_overlap, .timeout = 120)
{
	int fds = fd_count();
	struct stat st;
	if (stat("/dev/shm", &st) < 0 || !S_ISDIR(st.st_mode))
		cr_skip_test("no /dev/shm");
	int old = rook__io_set_file_write_mode(ROOK__FILE_WRITE_RING);
	int rounds = (int)scaled(10, 5);
	static unsigned seen[NTASKS * WCHUNKS];
	for (int r = 0; r < rounds; r++) {
		snprintf(path, sizeof(path), "/dev/shm/rook-fpos-XXXXXX");
		int fd = mkstemp(path);
		cr_assert(fd >= 0);
		struct writer wr[NTASKS];
		for (unsigned i = 0; i < NTASKS; i++)
			wr[i] = (struct writer){.wr_fd = fd, .wr_first = i * WCHUNKS};
		cr_assert_eq(run_with(2, ROOK_NO_PIN, writers_main, wr), 0);
		cr_assert_eq(fstat(fd, &st), 0);
		cr_assert_eq(st.st_size, (off_t)NTASKS * WCHUNKS * CHUNK,
			     "round %d: file of %lld bytes, %u written", r, (long long)st.st_size,
			     NTASKS * WCHUNKS * CHUNK);
		cr_assert_eq(lseek(fd, 0, SEEK_CUR), st.st_size);
		memset(seen, 0, sizeof(seen));
		char buf[CHUNK];
		unsigned bad = 0;
		for (unsigned c = 0; c < NTASKS * WCHUNKS; c++) {
			cr_assert_eq(pread(fd, buf, CHUNK, (off_t)c * CHUNK), (ssize_t)CHUNK);
			uint32_t i;
			memcpy(&i, buf, sizeof(i));
			if (i >= NTASKS * WCHUNKS || seen[i]++)
				bad++;
		}
		cr_assert_eq(bad, 0, "round %d: %u chunks overwritten", r, bad);
		close(fd);
		unlink(path);
	}
	rook__io_set_file_write_mode(old);
	expect_clean_shutdown(fds);
}

/* ---- a full filesystem ----------------------------------------------------- */

#define BIG   (16u << 20)
#define SMALL (1u << 20)

static int full_main(void *arg)
{
	const char *dir = arg;
	char p[160];
	snprintf(p, sizeof(p), "%s/f", dir);
	char *buf = malloc(BIG);
	if (!buf)
		return 10;
	memset(buf, 'x', BIG);
	int fd = rook_open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return 11;
	/* A short write moves the position by what it wrote. */
	ssize_t n = rook_write(fd, buf, BIG, -1);
	if (n <= 0 || n > (ssize_t)SMALL)
		return 12;
	if (lseek(fd, 0, SEEK_CUR) != n)
		return 13;
	if (rook_write(fd, buf, BIG, -1) != -ENOSPC)
		return 14;
	/* write_full reports what the file holds. */
	if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) != 0)
		return 15;
	n = rook_write_full(fd, buf, BIG);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 16;
	if (n <= 0 || n != st.st_size || n > (ssize_t)SMALL)
		return 17;
	if (rook_close(fd) != 0)
		return 18;
	free(buf);
	return 0;
}

/* In a child: a private mount namespace with a 1 MiB tmpfs. 77: cannot. */
static int full_child(void)
{
	char dir[] = "/tmp/rook-full-XXXXXX";
	if (!mkdtemp(dir))
		return 77;
	int r = 77;
	if (unshare(CLONE_NEWNS) == 0 && mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	    mount("rook", dir, "tmpfs", 0, "size=1m") == 0) {
		r = run_with(2, ROOK_NO_PIN, full_main, dir);
		if (r < 0)
			r = 20;
		umount(dir);
	}
	rmdir(dir);
	return r;
}

Test(fpos, short_write_on_a_full_filesystem_moves_the_position, .timeout = 120)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(full_child());
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child died (status %#x)", status);
	if (WEXITSTATUS(status) == 77)
		cr_skip_test("cannot mount a tmpfs in a private mount namespace (not root?)");
	cr_assert_eq(WEXITSTATUS(status), 0, "child failed check %d (see full_main)",
		     WEXITSTATUS(status));
}

/* ---- O_APPEND and dup ------------------------------------------------------ */

static int append_main(void *arg)
{
	(void)arg;
	int fd = rook_open(path, O_RDWR | O_APPEND | O_CLOEXEC, 0);
	T_CHECK(fd >= 0);
	T_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
	/* Appends land at the end and leave the position there. */
	T_CHECK_EQ(rook_write(fd, "abc", 3, -1), 3);
	T_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 8);
	T_CHECK_EQ(rook_write(fd, "de", 2, -1), 2);
	T_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 10);
	char buf[16] = {0};
	T_CHECK_EQ(rook_read(fd, buf, sizeof(buf), 0), 10);
	T_CHECK(memcmp(buf, "01234abcde", 10) == 0);
	/* A dup shares the position, with rook_read and read(2) mixed. */
	T_CHECK_EQ(lseek(fd, 2, SEEK_SET), 2);
	int fd2 = dup(fd);
	T_CHECK(fd2 >= 0);
	T_CHECK_EQ(rook_read(fd2, buf, 3, -1), 3);
	T_CHECK(memcmp(buf, "234", 3) == 0);
	T_CHECK_EQ(read(fd, buf, 2), 2);
	T_CHECK(memcmp(buf, "ab", 2) == 0);
	T_CHECK_EQ(rook_read(fd, buf, 2, -1), 2);
	T_CHECK(memcmp(buf, "cd", 2) == 0);
	T_CHECK_EQ(lseek(fd2, 0, SEEK_CUR), 9);
	struct iovec iov[2] = {{buf, 1}, {buf + 1, 4}};
	T_CHECK_EQ(rook_readv(fd2, iov, 2, -1), 1);
	T_CHECK_EQ(buf[0], 'e');
	T_CHECK_EQ(rook_read(fd, buf, 4, -1), 0);
	T_CHECK_EQ(rook_close(fd2), 0);
	T_CHECK_EQ(rook_close(fd), 0);
	return 0;
}

Test(fpos, o_append_and_dup_keep_read_write_semantics, .timeout = 30)
{
	int fds = fd_count();
	snprintf(path, sizeof(path), "/tmp/rook-fpos-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "01234", 5), 5);
	close(fd);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, append_main, NULL), 0);
	unlink(path);
	expect_clean_shutdown(fds);
}

/* ---- offsets on streams ---------------------------------------------------- */

static void espipe_on(int rfd, int wfd)
{
	char buf[8] = {0};
	struct iovec iov = {buf, sizeof(buf)};
	T_CHECK_EQ(rook_read(rfd, buf, sizeof(buf), 0), -ESPIPE);
	T_CHECK_EQ(rook_write(wfd, "hello", 5, 5), -ESPIPE);
	T_CHECK_EQ(rook_readv(rfd, &iov, 1, 0), -ESPIPE);
	T_CHECK_EQ(rook_writev(wfd, &iov, 1, 0), -ESPIPE);
	/* Nothing moved: the stream still works at its current position. */
	T_CHECK_EQ(rook_write(wfd, "hello", 5, -1), 5);
	T_CHECK_EQ(rook_read(rfd, buf, sizeof(buf), -1), 5);
	T_CHECK(memcmp(buf, "hello", 5) == 0);
}

static int espipe_main(void *arg)
{
	(void)arg;
	int p[2], s[2];
	T_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	espipe_on(p[0], p[1]);
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	espipe_on(s[0], s[1]);
	for (int i = 0; i < 2; i++) {
		T_CHECK_EQ(rook_close(p[i]), 0);
		T_CHECK_EQ(rook_close(s[i]), 0);
	}
	/* A bad fd is -EBADF, with or without an offset. */
	char c;
	T_CHECK_EQ(rook_read(-1, &c, 1, -1), -EBADF);
	T_CHECK_EQ(rook_write(-1, &c, 1, 0), -EBADF);
	return 0;
}

Test(fpos, offset_on_a_pipe_or_socket_is_espipe, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, ROOK_NO_PIN, espipe_main, NULL), 0);
	expect_clean_shutdown(fds);
}
