/* SPDX-License-Identifier: MIT */
/*
 * Recursive fan-out workloads: skynet and fib (shared/bench/WORKLOADS.md).
 * A rook task's status is only an int, so every child gets a frame in its
 * parent's stack (the task argument) and writes its result there; the parent
 * reads it after rook_join, which orders the child's writes before it.
 * A frame therefore lives exactly as long as the parent waits for the child.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "perf/perf.h"

/* ---- skynet --------------------------------------------------------- */

#define SKYNET_FANOUT 10

struct skynet_node {
	int64_t sn_num;  /* first leaf number below this node */
	int64_t sn_size; /* leaves below this node */
	int64_t sn_sum;  /* result: sum of the leaf numbers */
};

static int skynet_task(void *arg)
{
	struct skynet_node *node = arg;
	struct skynet_node kids[SKYNET_FANOUT];
	struct rook_task *handles[SKYNET_FANOUT];
	int64_t part = node->sn_size / SKYNET_FANOUT;
	int n = 0, rc = 0;

	if (node->sn_size == 1) {
		node->sn_sum = node->sn_num;
		return 0;
	}
	for (; n < SKYNET_FANOUT && rc == 0; n++) {
		kids[n] = (struct skynet_node){.sn_num = node->sn_num + n * part, .sn_size = part};
		rc = rook_spawn(&handles[n], skynet_task, &kids[n]);
	}
	if (rc < 0)
		n--; /* the last spawn failed: no handle */
	int jrc = perf_join_all(handles, (size_t)n);
	if (rc == 0)
		rc = jrc;
	node->sn_sum = 0;
	for (int i = 0; i < n; i++)
		node->sn_sum += kids[i].sn_sum;
	return rc;
}

static int skynet_run(struct perf_run *run, int64_t leaves)
{
	struct skynet_node root = {.sn_num = 0, .sn_size = leaves};
	struct rook_task *t;
	int status = 0;
	int rc;

	rc = rook_spawn(&t, skynet_task, &root);
	if (rc < 0)
		return rc;
	rc = rook_join(t, &status);
	if (rc < 0) {
		rook_detach(t);
		return rc;
	}
	if (status < 0)
		return status;
	perf_check(run, "skynet sum", root.sn_sum, leaves * (leaves - 1) / 2);
	/* Every node of the tree is a task: leaves * (1 + 1/10 + ...). */
	run->pr_ops = 0;
	for (int64_t level = leaves; level >= 1; level /= SKYNET_FANOUT)
		run->pr_ops += (uint64_t)level;
	return 0;
}

int perf_skynet(struct perf_run *run)
{
	return skynet_run(run, run->pr_quick ? 10000 : 1000000);
}

/* The fork-join leaders' size (issue 19, ../shared/peers/forkjoin). */
int perf_skynet_big(struct perf_run *run)
{
	return skynet_run(run, run->pr_quick ? 100000 : 100000000);
}

/* ---- fib ------------------------------------------------------------ */

struct fib_frame {
	int ff_n;
	int64_t ff_result;
};

static int fib_task(void *arg);

/*
 * fib(n) as the workload defines it: for n >= 2 spawn fib(n-1) as a task,
 * compute fib(n-2) here (which spawns in turn), then join the child.
 */
static int fib_compute(int n, int64_t *out)
{
	struct fib_frame child = {.ff_n = n - 1};
	struct rook_task *t;
	int64_t here;
	int status = 0;
	int rc;

	if (n < 2) {
		*out = n;
		return 0;
	}
	rc = rook_spawn(&t, fib_task, &child);
	if (rc < 0)
		return rc;
	int crc = fib_compute(n - 2, &here);
	rc = rook_join(t, &status);
	if (rc < 0) {
		/* Only a cancelled caller gets here, and nothing cancels a
		 * workload's tasks: rook_run cancels at shutdown, after the
		 * workload has joined everything. */
		rook_detach(t);
		return rc;
	}
	if (crc < 0 || status < 0)
		return crc < 0 ? crc : status;
	*out = child.ff_result + here;
	return 0;
}

static int fib_task(void *arg)
{
	struct fib_frame *f = arg;

	return fib_compute(f->ff_n, &f->ff_result);
}

/* Calls with n >= 2 in the call tree of fib(n): fib(n+1) - 1. */
static uint64_t fib_spawns(int n)
{
	uint64_t a = 0, b = 1;

	for (int i = 0; i < n + 1; i++) {
		uint64_t next = a + b;
		a = b;
		b = next;
	}
	return a - 1;
}

static int fib_run(struct perf_run *run, int n)
{
	int64_t want = 0, a = 0, b = 1, got = 0;
	for (int i = 0; i < n; i++) {
		int64_t next = a + b;
		a = b;
		b = next;
	}
	want = a;
	int rc = fib_compute(n, &got);

	if (rc < 0)
		return rc;
	char what[16];
	snprintf(what, sizeof(what), "fib(%d)", n);
	perf_check(run, what, got, want);
	run->pr_ops = fib_spawns(n);
	return 0;
}

int perf_fib(struct perf_run *run)
{
	return fib_run(run, run->pr_quick ? 20 : 30);
}

int perf_fib39(struct perf_run *run)
{
	return fib_run(run, run->pr_quick ? 25 : 39);
}
