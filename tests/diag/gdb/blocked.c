/* SPDX-License-Identifier: MIT */
/*
 * A program for tests/diag/gdb/run.sh: a task named "gdb-sleeper" blocks in
 * rook_sleep inside gdb_blocked_fn, then main stops the process with
 * SIGTRAP (under gdb: a stop to inspect; the script also saves a core).
 */
#include <rook.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sched/testing.h"

__attribute__((noinline)) static int gdb_blocked_fn(void)
{
	int r = rook_sleep(UINT64_MAX);
	__asm__ volatile("" ::: "memory"); /* keep this frame: no tail call */
	return r;
}

static int sleeper(void *arg)
{
	(void)arg;
	rook_task_set_name("gdb-sleeper");
	return gdb_blocked_fn();
}

/* True once the dump shows the sleeper suspended (waits on its state, not
 * on time). */
static int parked(void)
{
	int fd = memfd_create("dump", 0);
	char buf[8192] = {0};
	if (fd < 0 || rook_dump(fd) < 0)
		exit(2);
	if (pread(fd, buf, sizeof(buf) - 1, 0) < 0)
		exit(2);
	close(fd);
	return strstr(buf, "\"gdb-sleeper\": suspended in rook_sleep") != NULL;
}

static int main_task(void *arg)
{
	(void)arg;
	struct rook_task *t;
	if (rook_spawn(&t, sleeper, NULL) != 0)
		return 1;
	while (!parked())
		rook_yield();
	raise(SIGTRAP);
	_exit(0); /* the sleeper never wakes */
}

int main(void)
{
	/* gdb's generate-core-file reads a mapping in one piece and drops a
	 * stack whose guard is a MADV_GUARD_INSTALL marker inside it (the
	 * kernel's own core dump keeps it); mprotect guards split the
	 * mapping, so the gcore of the live run keeps the stacks. */
	if (getenv("ROOK_GDB_MPROTECT_GUARDS"))
		rook__stack_guard_force_mprotect(true);
	return rook_run(NULL, main_task, NULL);
}
