/* SPDX-License-Identifier: MIT */
/*
 * The subprocess version of the crawler: 100 children (sh -c 'echo $0;
 * sleep 0.1' job-N), at most 10 at a time (a semaphore), each one's output
 * read through a pipe and checked against its name. Sequentially it would
 * take 10 s; bounded at 10 it takes about 1.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <rook.h>

#define JOBS     100
#define PARALLEL 10

static struct rook_sem *slots;
static _Atomic int running, most, right;

static int job(void *arg)
{
	int n = (int)(intptr_t)arg;
	char name[16], want[20], got[64];
	snprintf(name, sizeof(name), "job-%d", n);
	snprintf(want, sizeof(want), "%s\n", name);
	int r = rook_sem_acquire(slots);
	if (r)
		return r;
	int now = atomic_fetch_add(&running, 1) + 1;
	for (int m = atomic_load(&most);
	     now > m && !atomic_compare_exchange_weak(&most, &m, now);) {
	}
	const char *argv[] = {"sh", "-c", "echo $0; sleep 0.1", name, NULL};
	struct rook_process_opts o = {.argv = argv, .stdio = {ROOK_STDIO_NULL, ROOK_STDIO_PIPE, 0}};
	struct rook_process *p;
	r = rook_process_spawn(&p, &o);
	if (r == 0) {
		ssize_t len = rook_read_full(rook_process_fd(p, 1), got, sizeof(got) - 1);
		int st = -1;
		r = rook_process_wait(p, &st);
		rook_process_free(p);
		got[len > 0 ? len : 0] = '\0';
		if (r == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && strcmp(got, want) == 0)
			atomic_fetch_add(&right, 1);
		else
			printf("%s: wrong output '%s' or status %d\n", name, got, st);
	}
	atomic_fetch_sub(&running, 1);
	rook_sem_release(slots);
	return r;
}

static int procs_main(void *arg)
{
	(void)arg;
	int r = rook_sem_create(&slots, PARALLEL, 0);
	if (r)
		return r;
	uint64_t t0 = rook_now();
	struct rook_task *t[JOBS];
	int n = 0;
	for (; n < JOBS && (r = rook_spawn(&t[n], job, (void *)(intptr_t)n)) == 0; n++) {
	}
	int bad = r;
	for (int i = 0; i < n; i++) {
		int st = 0;
		if ((r = rook_join(t[i], &st)) != 0 || st != 0)
			bad = bad ? bad : (r ? r : st);
	}
	printf("%d of %d outputs right, at most %d at a time\n", atomic_load(&right), JOBS,
	       atomic_load(&most));
	printf("procs executed in %.2f seconds.\n", (double)(rook_now() - t0) / ROOK_SEC);
	rook_sem_destroy(slots);
	return bad;
}

int main(void)
{
	int r = rook_run(NULL, procs_main, NULL);
	if (r)
		fprintf(stderr, "procs: %s\n", strerror(-r));
	return r ? 1 : 0;
}
