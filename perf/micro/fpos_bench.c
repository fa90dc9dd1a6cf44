/* SPDX-License-Identifier: MIT */
/*
 * Micro-benchmark of what io/ops.c pays per read and write to tell streams
 * from files and to keep the current position (perf/NOTES.md, 2026-12-03
 * fpos). One worker, one task, 4 KiB reads of a file in the page cache at
 * an offset and at the current position, 64-byte write+read pairs on a
 * pipe, and the bare system calls. Not part of the build:
 *   cc -O2 -D_GNU_SOURCE -Iinclude perf/micro/fpos_bench.c \
 *      BUILD/librook.a -luring -lhwloc -lpthread -o fpos_bench
 * Prints BENCH lines: name, ns per operation (best of 3 runs).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rook.h>

#define N          200000
#define FILE_BYTES (1 << 20)

static int file_fd, pipe_fd[2];

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double bench(const char *name, int (*fn)(void))
{
	double best = 1e30;
	for (int r = 0; r < 3; r++) {
		double t0 = now_ns();
		if (fn() < 0) {
			fprintf(stderr, "%s failed\n", name);
			exit(1);
		}
		double ns = (now_ns() - t0) / N;
		if (ns < best)
			best = ns;
	}
	printf("BENCH fpos %-24s %8.1f ns/op\n", name, best);
	return best;
}

static int read_at_offset(void)
{
	char buf[4096];
	for (int i = 0; i < N; i++)
		if (rook_read(file_fd, buf, sizeof(buf), (int64_t)(i % 256) * 4096) != 4096)
			return -1;
	return 0;
}

static int read_at_position(void)
{
	char buf[4096];
	for (int i = 0; i < N; i++) {
		if (i % 256 == 0)
			lseek(file_fd, 0, SEEK_SET);
		if (rook_read(file_fd, buf, sizeof(buf), -1) != 4096)
			return -1;
	}
	return 0;
}

static int pipe_pair(void)
{
	char buf[64] = {0};
	for (int i = 0; i < N; i++)
		if (rook_write(pipe_fd[1], buf, sizeof(buf), -1) != 64 ||
		    rook_read(pipe_fd[0], buf, sizeof(buf), -1) != 64)
			return -1;
	return 0;
}

static int sys_fstat(void)
{
	struct stat st;
	for (int i = 0; i < N; i++)
		fstat(file_fd, &st);
	return 0;
}

static int sys_lseek(void)
{
	for (int i = 0; i < N; i++)
		lseek(file_fd, 0, SEEK_CUR);
	return 0;
}

static int sys_pread(void)
{
	char buf[4096];
	for (int i = 0; i < N; i++)
		if (pread(file_fd, buf, sizeof(buf), (off_t)(i % 256) * 4096) != 4096)
			return -1;
	return 0;
}

static int main_task(void *arg)
{
	(void)arg;
	bench("read_4k_at_offset", read_at_offset);
	bench("read_4k_at_position", read_at_position);
	bench("pipe_write_read_64", pipe_pair);
	bench("sys_fstat", sys_fstat);
	bench("sys_lseek_cur", sys_lseek);
	bench("sys_pread_4k", sys_pread);
	return 0;
}

int main(void)
{
	char path[] = "/tmp/rook-fpos-bench-XXXXXX";
	file_fd = mkstemp(path);
	if (file_fd < 0 || pipe(pipe_fd) < 0)
		return 1;
	static char buf[FILE_BYTES];
	memset(buf, 'x', sizeof(buf));
	if (write(file_fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		return 1;
	unlink(path);
	struct rook_config cfg = {.workers = 1, .flags = ROOK_NO_PIN};
	return rook_run(&cfg, main_task, NULL) == 0 ? 0 : 1;
}
