/* SPDX-License-Identifier: MIT */
/*
 * rook-perf: runs one workload of shared/bench/WORKLOADS.md (or all of them)
 * on rook and prints one BENCH line per workload:
 *
 *   BENCH workload=<name> impl=rook threads=<n> ops=<count> wall_s=<s> ops_per_s=<rate> [extras]
 *
 * Only the workload is timed: it runs inside rook_run's main task, after the
 * workers have started and before they stop. Every workload checks its own
 * answer; a wrong one prints "CHECK FAILED: ..." and exits 1 (set
 * PEERBENCH_WRONG=1 to perturb every answer and see the checks fire, as the
 * peers do). Exit status: 0 ok, 1 wrong answer or runtime error, 2 usage
 * error or a workload not implemented yet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "perf/perf.h"
#include "sched/testing.h"

#define EXIT_USAGE 2

/* In WORKLOADS.md order; a NULL body prints "not implemented yet". */
static const struct perf_workload perf_workloads[] = {
    {"spawn_many", perf_spawn_many, 0},
    {"yield_many", perf_yield_many, 0},
    {"ping_pong", perf_ping_pong, 0},
    {"chained_spawn", perf_chained_spawn, 0},
    {"skynet", perf_skynet, PERF_REPORT_MEM},
    {"fib", perf_fib, PERF_REPORT_MEM},
    {"fib39", perf_fib39, PERF_REPORT_MEM},
    {"skynet_big", perf_skynet_big, PERF_REPORT_MEM},
    {"sleep_fanout", perf_sleep_fanout, 0},
    {"mpmc_queue", perf_mpmc_queue, 0},
    {"tcp_echo", perf_tcp_echo, 0},
    {"file_io", perf_file_io, 0},
    /* rook's own, beyond WORKLOADS.md */
    {"timer_lateness", perf_timer_lateness, 0},
    {"sleep_million", perf_sleep_million, 0},
    {"wake_ping", perf_wake_ping, 0}, /* the wake-path probe of io/ring.c */
    {"proc_spawn", perf_proc_spawn, 0},
    {"http_hello", perf_http_hello, 0},
    {"idle_conns", perf_idle_conns, 0},
    {"io_stuck", perf_io_stuck, 0}, /* IO behind a long task (issue 11) */
};
#define NWORKLOADS (sizeof(perf_workloads) / sizeof(perf_workloads[0]))

struct perf_opts {
	const char *po_workload; /* NULL with --all */
	unsigned po_threads;
	bool po_quick;
	bool po_all;
};

/* One workload run: what the main task is given and what it leaves. */
struct perf_job {
	const struct perf_workload *pj_wl;
	struct perf_run pj_run;
	double pj_wall_s;
	unsigned pj_workers;    /* rook_workers() as the workload saw it */
	uint64_t pj_peak_tasks; /* rook__stats peak_live_tasks */
	long pj_peak_rss_kib;   /* VmHWM, -1 if unreadable */
};

/* ---- helpers shared with the workload files ------------------------- */

bool perf_check(struct perf_run *run, const char *what, int64_t got, int64_t want)
{
	got += run->pr_wrong;
	if (got == want)
		return true;
	if (!run->pr_check_failed)
		snprintf(run->pr_check_msg, sizeof(run->pr_check_msg), "%s: got %lld want %lld",
			 what, (long long)got, (long long)want);
	run->pr_check_failed = true;
	return false;
}

int perf_join_all(struct rook_task **h, size_t n)
{
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		int status = 0;
		int rc = rook_join(h[i], &status);

		/* A failed join leaves the handle valid (-EINVAL: it never was). */
		if (rc < 0 && rc != -EINVAL)
			rook_detach(h[i]);
		if (first == 0)
			first = rc < 0 ? rc : status;
	}
	return first;
}

int perf_spawn_join(size_t n, rook_fn fn, void *arg)
{
	struct rook_task **h = malloc(n * sizeof(*h));
	size_t spawned = 0;
	int rc = 0;

	if (!h)
		return -ENOMEM;
	while (spawned < n && rc == 0) {
		rc = rook_spawn(&h[spawned], fn, arg);
		if (rc == 0)
			spawned++;
	}
	int jrc = perf_join_all(h, spawned);
	free(h);
	return rc ? rc : jrc;
}

/* ---- measurement ------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A "Key: N kB" line of /proc/self/status, or -1. */
static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t klen = strlen(key);
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':' &&
		    sscanf(line + klen + 1, " %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

long perf_rss_kib(void)
{
	return status_kib("VmRSS");
}

long perf_peak_rss_kib(void)
{
	return status_kib("VmHWM");
}

/* Reset VmHWM to the current RSS (Linux >= 4.0); best effort. */
static void peak_rss_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	if (!f)
		return;
	fputs("5", f);
	fclose(f);
}

static int perf_main_task(void *arg)
{
	struct perf_job *job = arg;
	struct rook__stats st;
	double t0;
	int rc;

	job->pj_workers = rook_workers();
	rook__stats_reset_peaks();
	peak_rss_reset();
	t0 = now_s();
	rc = job->pj_wl->pw_fn(&job->pj_run);
	job->pj_wall_s = now_s() - t0;
	if (job->pj_run.pr_cleanup)
		job->pj_run.pr_cleanup(&job->pj_run);
	rook__stats_get(&st);
	job->pj_peak_tasks = st.peak_live_tasks;
	job->pj_peak_rss_kib = perf_peak_rss_kib();
	return rc;
}

/* ---- one workload ----------------------------------------------------- */

static void print_bench(const struct perf_job *job)
{
	double rate = job->pj_wall_s > 0 ? (double)job->pj_run.pr_ops / job->pj_wall_s : 0;

	printf("BENCH workload=%s impl=rook threads=%u ops=%llu wall_s=%.6f ops_per_s=%.1f",
	       job->pj_wl->pw_name, job->pj_workers, (unsigned long long)job->pj_run.pr_ops,
	       job->pj_wall_s, rate);
	if (job->pj_wl->pw_report & PERF_REPORT_MEM)
		printf(" peak_live_tasks=%llu peak_rss_kib=%ld",
		       (unsigned long long)job->pj_peak_tasks, job->pj_peak_rss_kib);
	if (job->pj_run.pr_extra[0])
		printf(" %s", job->pj_run.pr_extra);
	if (job->pj_run.pr_quick)
		printf(" quick=1");
	printf("\n");
	fflush(stdout);
}

static int64_t wrong_offset(void)
{
	const char *e = getenv("PEERBENCH_WRONG");

	return e && strcmp(e, "1") == 0 ? 1 : 0;
}

/* Run wl once; returns the process exit status it deserves. */
static int run_workload(const struct perf_workload *wl, const struct perf_opts *o)
{
	struct rook_config cfg = {.workers = o->po_threads};
	struct perf_job job = {.pj_wl = wl};
	int rc;

	if (!wl->pw_fn) {
		fprintf(stderr, "workload %s not implemented yet\n", wl->pw_name);
		return EXIT_USAGE;
	}
	job.pj_run.pr_quick = o->po_quick;
	job.pj_run.pr_wrong = wrong_offset();
	rc = rook_run(&cfg, perf_main_task, &job);
	if (rc == -ENOEXEC)
		return EXIT_USAGE; /* a tool it drives is missing (said on stderr) */
	if (rc < 0) {
		fprintf(stderr, "rook-perf: %s: runtime error: %s (%d)\n", wl->pw_name,
			strerror(-rc), rc);
		return EXIT_FAILURE;
	}
	if (job.pj_run.pr_check_failed) {
		fprintf(stderr, "CHECK FAILED: %s\n", job.pj_run.pr_check_msg);
		return EXIT_FAILURE;
	}
	print_bench(&job);
	return EXIT_SUCCESS;
}

static int run_all(const struct perf_opts *o)
{
	int worst = EXIT_SUCCESS;

	for (size_t i = 0; i < NWORKLOADS; i++) {
		if (!perf_workloads[i].pw_fn) {
			fprintf(stderr, "skipping %s: not implemented yet\n",
				perf_workloads[i].pw_name);
			continue;
		}
		if (run_workload(&perf_workloads[i], o) != EXIT_SUCCESS)
			worst = EXIT_FAILURE;
	}
	return worst;
}

/* ---- command line ----------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: rook-perf --workload NAME [--threads N] [--quick]\n"
	       "       rook-perf --all [--threads N] [--quick]\n"
	       "       rook-perf --list\n"
	       "  --threads N  rook workers (default 1; 0 = one per core)\n"
	       "  --quick      10x-100x smaller sizes, for smoke tests\n"
	       "  --list       list the workloads: 'yes NAME' if implemented, 'no  NAME' if not\n");
}

static const struct perf_workload *find_workload(const char *name)
{
	for (size_t i = 0; i < NWORKLOADS; i++)
		if (strcmp(perf_workloads[i].pw_name, name) == 0)
			return &perf_workloads[i];
	return NULL;
}

static void list_workloads(void)
{
	for (size_t i = 0; i < NWORKLOADS; i++)
		printf("%s %s\n", perf_workloads[i].pw_fn ? "yes" : "no ",
		       perf_workloads[i].pw_name);
}

static int parse_threads(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > ROOK_MAX_WORKERS)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* Returns 0, or EXIT_USAGE after printing why. */
static int parse_args(int argc, char **argv, struct perf_opts *o)
{
	*o = (struct perf_opts){.po_threads = 1};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_value = i + 1 < argc;

		if (strcmp(a, "--workload") == 0 && has_value) {
			o->po_workload = argv[++i];
		} else if (strcmp(a, "--threads") == 0 && has_value) {
			if (parse_threads(argv[++i], &o->po_threads) < 0) {
				fprintf(stderr, "rook-perf: bad --threads '%s'\n", argv[i]);
				return EXIT_USAGE;
			}
		} else if (strcmp(a, "--quick") == 0) {
			o->po_quick = true;
		} else if (strcmp(a, "--all") == 0) {
			o->po_all = true;
		} else {
			fprintf(stderr, "rook-perf: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (o->po_all == (o->po_workload != NULL)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct perf_workload *wl;
	struct perf_opts o;
	int rc;

	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		list_workloads();
		return EXIT_SUCCESS;
	}
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (o.po_all)
		return run_all(&o);
	wl = find_workload(o.po_workload);
	if (!wl) {
		fprintf(stderr, "rook-perf: unknown workload '%s' (see --list)\n", o.po_workload);
		return EXIT_USAGE;
	}
	return run_workload(wl, &o);
}
