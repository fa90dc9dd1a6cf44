/* SPDX-License-Identifier: MIT */
/*
 * Internal interface of the rook-perf benchmark driver (perf/rook_perf.c)
 * and its workload files (perf/wl_*.c). A workload runs inside rook's main
 * task, does the work named in shared/bench/WORKLOADS.md, records its op
 * count and checks its own answer through perf_check. The driver does the
 * timing and prints the BENCH line; workloads never print.
 */
#ifndef ROOK_PERF_H
#define ROOK_PERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rook.h"

/* Extras a workload asks the driver to append to its BENCH line. */
#define PERF_REPORT_MEM 0x1u /* peak_live_tasks= and peak_rss_kib= */

struct perf_run {
	bool pr_quick;          /* smoke-test sizes (10x-100x smaller) */
	int64_t pr_wrong;       /* added to every checked answer (PEERBENCH_WRONG=1) */
	uint64_t pr_ops;        /* set by the workload: ops done, unit per WORKLOADS.md */
	bool pr_check_failed;   /* set by perf_check */
	char pr_check_msg[160]; /* the first failed check */
	char pr_extra[160];     /* set by the workload: appended to its BENCH line */
	void (*pr_cleanup)(struct perf_run *run); /* set by the workload: run untimed */
};

/*
 * A workload body. Runs in a task; returns 0, or a negative errno value when
 * the runtime failed it (spawn or join error). A wrong answer is not an
 * error here: it is recorded by perf_check and the body returns 0.
 */
typedef int (*perf_fn)(struct perf_run *run);

struct perf_workload {
	const char *pw_name;
	perf_fn pw_fn;      /* NULL: not implemented yet */
	unsigned pw_report; /* PERF_REPORT_* bits */
};

/*
 * Compare got (+ run->pr_wrong) with want; on a mismatch record
 * "what: got X want Y" (first failure only) and return false.
 */
bool perf_check(struct perf_run *run, const char *what, int64_t got, int64_t want);

/*
 * Join the n handles in h (every one, even after a failure) and return 0,
 * the first failing rook_join result, or the first non-zero task status.
 * Handles that fail to join are detached so none leaks.
 */
int perf_join_all(struct rook_task **h, size_t n);

/* Spawn n tasks of fn(arg), all in flight before any is joined, then join
 * them all: 0, the first spawn error, or the first failed join or status. */
int perf_spawn_join(size_t n, rook_fn fn, void *arg);

/* VmRSS / VmHWM of this process in KiB (-1 if unreadable). The driver
 * resets VmHWM to the current RSS just before a workload starts. */
long perf_rss_kib(void);
long perf_peak_rss_kib(void);

/* Workload bodies, one file per family. */
int perf_spawn_many(struct perf_run *run);     /* wl_tasks.c */
int perf_yield_many(struct perf_run *run);     /* wl_tasks.c */
int perf_chained_spawn(struct perf_run *run);  /* wl_tasks.c */
int perf_skynet(struct perf_run *run);         /* wl_tree.c */
int perf_fib(struct perf_run *run);            /* wl_tree.c */
int perf_fib39(struct perf_run *run);          /* wl_tree.c (issue 19) */
int perf_skynet_big(struct perf_run *run);     /* wl_tree.c (issue 19) */
int perf_sleep_fanout(struct perf_run *run);   /* wl_time.c */
int perf_timer_lateness(struct perf_run *run); /* wl_time.c */
int perf_sleep_million(struct perf_run *run);  /* wl_time.c */
int perf_ping_pong(struct perf_run *run);      /* wl_queue.c */
int perf_mpmc_queue(struct perf_run *run);     /* wl_queue.c */
int perf_tcp_echo(struct perf_run *run);       /* wl_io.c */
int perf_file_io(struct perf_run *run);        /* wl_io.c */
int perf_io_stuck(struct perf_run *run);       /* wl_io.c (issue 11) */
int perf_wake_ping(struct perf_run *run);      /* wl_io.c (not in WORKLOADS.md) */
int perf_proc_spawn(struct perf_run *run);     /* wl_proc.c (not in WORKLOADS.md) */
int perf_http_hello(struct perf_run *run);     /* wl_net.c (issue 14) */
int perf_idle_conns(struct perf_run *run);     /* wl_net.c (issue 14) */

#endif
