/* SPDX-License-Identifier: MIT */
/*
 * files: write 300 files concurrently, one task per file (aiofiles'
 * classic), into a fresh temporary directory; then read them back and
 * check them, and remove them. rook_open and rook_close go through
 * io_uring: the tasks wait, their workers do not; rook_write to a file on
 * a disk filesystem is a page-cache copy the worker does itself
 * (io/uring.c).
 *
 *   demo-files [DIR]     (default: a new directory under $TMPDIR or /tmp)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rook.h>

#define FILES 300

struct file {
	char f_path[256];
	int f_id;
};

static void content(int id, char *buf, size_t len)
{
	snprintf(buf, len, "file %d of %d: %0*d\n", id, FILES, 64, id * 7919);
}

static int write_one(void *arg)
{
	struct file *f = arg;
	char buf[128];
	content(f->f_id, buf, sizeof(buf));
	int fd = rook_open(f->f_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return fd;
	ssize_t n = rook_write_full(fd, buf, strlen(buf));
	int rc = rook_close(fd);
	return n < 0 ? (int)n : (size_t)n != strlen(buf) ? -EIO : rc;
}

static int check_one(const struct file *f)
{
	char want[128], got[128] = {0};
	content(f->f_id, want, sizeof(want));
	int fd = open(f->f_path, O_RDONLY | O_CLOEXEC), ok;
	if (fd < 0)
		return 0;
	ok = read(fd, got, sizeof(got) - 1) == (ssize_t)strlen(want) && strcmp(got, want) == 0;
	close(fd);
	return ok;
}

static int main_task(void *arg)
{
	static struct file f[FILES];
	static struct rook_task *t[FILES];
	static int st[FILES];
	const char *dir = arg;
	uint64_t t0 = rook_now();
	int rc = 0, good = 0, failed = 0;

	for (int i = 0; i < FILES; i++) {
		f[i].f_id = i;
		snprintf(f[i].f_path, sizeof(f[i].f_path), "%s/file%03d.txt", dir, i);
		rc = rook_spawn(&t[i], write_one, &f[i]);
		if (rc < 0)
			return rc; /* rook_run cancels the ones started */
	}
	rc = rook_gather(t, FILES, st);
	if (rc < 0)
		return rc;
	for (int i = 0; i < FILES; i++)
		failed += st[i] != 0;
	printf("wrote %d files concurrently in %.3f s (%d failed)\n", FILES - failed,
	       (double)(rook_now() - t0) / 1e9, failed);
	for (int i = 0; i < FILES; i++) {
		good += check_one(&f[i]);
		unlink(f[i].f_path);
	}
	printf("checked %d files: %d correct\n", FILES, good);
	return good == FILES ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	char tmpl[256];
	const char *tmp = getenv("TMPDIR");
	int rc;

	if (argc > 1) {
		snprintf(tmpl, sizeof(tmpl), "%s", argv[1]);
	} else {
		snprintf(tmpl, sizeof(tmpl), "%s/rook-demo-files-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(tmpl)) {
			perror("demo-files: mkdtemp");
			return 1;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = rook_run(NULL, main_task, tmpl);
	if (argc == 1)
		rmdir(tmpl);
	return rc == 0 ? 0 : 1;
}
