/* SPDX-License-Identifier: MIT */
/*
 * Allocation-failure injection: each representative program (spawn/join
 * tree, gather and wait_any, a task group, queues with a backlog, deadline
 * scopes and wait_for, TCP with name resolution, the blocking pool) runs
 * once with the hook counting its injection points (sched/alloc.h: every
 * rook__alloc, the mmap of stack regions and task chunks, the caches of
 * tasks, stacks and rings), then once more for every N up to that count
 * with the N-th point failing. Each run is a forked child, so a hang is a
 * timeout and a crash is a status. Every run must end with 0 and the right
 * result or with -ENOMEM/-EAGAIN returned to the caller; leave no task,
 * stack or fd behind; pass LeakSanitizer (ASan build); and fail the site
 * it was asked to. Every site seen in the counting run must fail in some
 * run of the sweep.
 */
#include <errno.h>
#include <execinfo.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers.h"

/* A program found a wrong result (a lost or duplicated item, a bad byte). */
#define WRONG (-EBADMSG)

#define SITES_MAX 128
#define SITE_LEN  64

/* What a child reports through its pipe. */
struct report {
	int r_rc;                /* rook_run's return value */
	int r_clean;             /* no task, stack or fd left; LeakSanitizer quiet */
	long r_points;           /* injection points passed */
	char r_failed[SITE_LEN]; /* the site that failed, "" if none */
	int r_nsites;
	char r_sites[SITES_MAX][SITE_LEN];
};

/* LeakSanitizer's entry point, present only in sanitizer builds. */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

/* "…/sched/stack.c:190" -> "sched/stack.c:190" */
static void site_copy(char *dst, const char *site)
{
	const char *s = site, *p;
	int slashes = 0;
	for (p = site + strlen(site); p > site; p--)
		if (p[-1] == '/' && ++slashes == 2) {
			s = p;
			break;
		}
	snprintf(dst, SITE_LEN, "%s", s);
}

/* ---- the programs ------------------------------------------------------- */

/* Spawn/join tree: depth 3, fan-out 3; every leaf counted once. */
static _Atomic long leaves;

static int tree_node(void *arg)
{
	intptr_t depth = (intptr_t)arg;
	if (depth == 0) {
		atomic_fetch_add_explicit(&leaves, 1, memory_order_relaxed);
		return rook_yield();
	}
	struct rook_task *ts[3];
	int n = 0, rc = 0;
	for (; n < 3; n++) {
		rc = rook_spawn(&ts[n], tree_node, (void *)(depth - 1));
		if (rc < 0)
			break;
	}
	for (int i = 0; i < n; i++) {
		int st = 0;
		int r = rook_join(ts[i], &st);
		if (r < 0)
			return WRONG; /* nobody cancels us: join cannot fail */
		if (st < 0 && rc == 0)
			rc = st;
	}
	return rc;
}

static int prog_tree(void *arg)
{
	int rc = tree_node((void *)(intptr_t)3);
	if (rc == 0 && atomic_load(&leaves) != 27)
		return WRONG;
	return rc;
}

/* Gather and wait_any over 20 tasks (wait_any > 16 allocates its nodes). */
#define NGATHER 20
static long squares[NGATHER];

static int square(void *arg)
{
	intptr_t i = (intptr_t)arg;
	int r = rook_yield();
	if (r < 0)
		return r;
	squares[i] = (long)i * i;
	return (int)i;
}

static int prog_gather(void *arg)
{
	struct rook_task *ts[NGATHER];
	int st[NGATHER];
	int n = 0, rc = 0;
	for (; n < NGATHER; n++) {
		rc = rook_spawn(&ts[n], square, (void *)(intptr_t)n);
		if (rc < 0)
			break;
	}
	if (n > 0) {
		int any = rook_wait_any(ts, (size_t)n);
		if (any < 0 && any != -ENOMEM)
			return WRONG;
		if (any >= 0 && !rook_done(ts[any]))
			return WRONG;
		if (any < 0 && rc == 0)
			rc = any;
	}
	if (rook_gather(ts, (size_t)n, st) != 0)
		return WRONG;
	for (int i = 0; i < n; i++) {
		if (st[i] == -ENOMEM) {
			if (rc == 0)
				rc = st[i];
			continue;
		}
		if (st[i] != i || squares[i] != (long)i * i)
			return WRONG;
	}
	return rc;
}

/* A task group of 10 children; every finished child taken exactly once. */
#define NGROUP 10
static int group_vals[NGROUP];

static int group_child(void *arg)
{
	int *v = arg;
	int r = rook_yield();
	if (r < 0)
		return r;
	*v = (int)(v - group_vals) + 100;
	return 0;
}

static int prog_group(void *arg)
{
	struct rook_group *g;
	int rc = rook_group_create(&g);
	if (rc < 0)
		return rc;
	int spawned = 0;
	for (; spawned < NGROUP; spawned++) {
		rc = rook_group_spawn(g, group_child, &group_vals[spawned]);
		if (rc < 0)
			break;
	}
	int wait = rook_group_wait(g);
	bool seen[NGROUP] = {0};
	int taken = 0, enomem = 0, cancelled = 0;
	void *a;
	int st, r;
	while ((r = rook_group_next(g, &a, &st)) == 0) {
		int i = (int)((int *)a - group_vals);
		if (i < 0 || i >= spawned || seen[i])
			return WRONG;
		seen[i] = true;
		taken++;
		if (st == -ENOMEM)
			enomem++;
		else if (st == -ECANCELED)
			cancelled++;
		else if (st != 0 || group_vals[i] != i + 100)
			return WRONG;
	}
	rook_group_destroy(g);
	if (r != -ENOENT || taken != spawned)
		return WRONG;
	/* Siblings are cancelled only because one failed. */
	if (cancelled && !enomem && rc == 0)
		return WRONG;
	if (enomem && wait != -ENOMEM)
		return WRONG;
	return rc < 0 ? rc : wait;
}

/* Queues with a backlog (ring of 4 slots, capacity 32) and the sync
 * objects: every item put is got once, in order. */
#define NITEMS 100
struct qprog {
	struct rook_queue *q;
	struct rook_event *ev;
	long put, got;
};

static int producer(void *arg)
{
	struct qprog *p = arg;
	int r = rook_event_wait(p->ev);
	for (long i = 0; r == 0 && i < NITEMS; i++) {
		r = rook_queue_put(p->q, &i);
		if (r == 0)
			p->put++;
	}
	rook_queue_close(p->q);
	return r == -EPIPE ? 0 : r;
}

static int consumer(void *arg)
{
	struct qprog *p = arg;
	long v;
	int r;
	rook_event_set(p->ev);
	while ((r = rook_queue_get(p->q, &v)) == 0) {
		if (v != p->got)
			return WRONG;
		p->got++;
		rook_queue_task_done(p->q);
	}
	return r == -EPIPE ? 0 : r;
}

static int prog_queue(void *arg)
{
	struct qprog p = {0};
	struct rook_mutex *m;
	struct rook_cond *c;
	struct rook_sem *s;
	int rc = rook_queue_create(&p.q, sizeof(long), 32);
	if (rc < 0)
		return rc;
	if ((rc = rook_event_create(&p.ev)) < 0)
		goto out_q;
	if ((rc = rook_mutex_create(&m)) < 0)
		goto out_ev;
	if ((rc = rook_cond_create(&c)) < 0)
		goto out_m;
	if ((rc = rook_sem_create(&s, 1, 1)) < 0)
		goto out_c;
	struct rook_task *tp, *tc;
	if ((rc = rook_spawn(&tp, producer, &p)) < 0)
		goto out_s;
	if ((rc = rook_spawn(&tc, consumer, &p)) < 0) {
		rook_event_set(p.ev); /* the producer would wait for it */
		rook_queue_close(p.q);
		rook_join(tp, NULL);
		goto out_s;
	}
	/* One that ended without running (no stack) would leave the other
	 * waiting for it: whichever ends first with an error releases it. */
	struct rook_task *ts[2] = {tp, tc};
	int st[2] = {0, 0};
	int first = rook_wait_any(ts, 2);
	if (first < 0) /* -ENOMEM is not possible for 2 */
		first = 0;
	rook_join(ts[first], &st[first]);
	if (st[first] < 0) {
		rook_event_set(p.ev);
		rook_queue_close(p.q);
	}
	rook_join(ts[1 - first], &st[1 - first]);
	int stp = st[0], stc = st[1];
	rc = stc < 0 ? stc : stp;
	if (stc == WRONG || stp == WRONG)
		rc = WRONG;
	else if (stc == 0 && p.got != p.put) /* the consumer drained it: none lost */
		rc = WRONG;
	else if (rc == 0 && p.got != NITEMS)
		rc = WRONG;
out_s:
	rook_sem_destroy(s);
out_c:
	rook_cond_destroy(c);
out_m:
	rook_mutex_destroy(m);
out_ev:
	rook_event_destroy(p.ev);
out_q:
	rook_queue_destroy(p.q);
	return rc;
}

/* Deadline scopes (nested past the first scope array), sleep, wait_for. */
static int sleeper(void *arg)
{
	return rook_sleep(FOREVER);
}

static int seven(void *arg)
{
	return 7;
}

static int prog_deadline(void *arg)
{
	int rc, st = 0, depth = 0;
	for (; depth < 10; depth++) {
		rc = rook_deadline_push(rook_now() + (uint64_t)(20 - depth) * ROOK_MSEC);
		if (rc < 0)
			goto pop;
	}
	rc = rook_sleep(FOREVER);
	if (rc == 0)
		rc = WRONG;
	else if (rc == -ETIMEDOUT)
		rc = 0;
pop:
	while (depth-- > 0)
		rook_deadline_pop();
	if (rc < 0)
		return rc;
	rc = rook_wait_for(sleeper, NULL, 5 * ROOK_MSEC, &st);
	if (rc == 0 && st == -ENOMEM) /* the sleeper got no stack */
		return st;
	if (rc != -ETIMEDOUT)
		return rc == 0 ? WRONG : rc;
	rc = rook_wait_for(seven, NULL, FOREVER, &st);
	if (rc < 0)
		return rc;
	if (st == -ENOMEM)
		return st;
	return st == 7 ? 0 : WRONG;
}

/* TCP on "localhost" (resolved on the blocking pool): 4 KiB echoed. */
#define NBYTES 4096
struct tcp {
	int lfd;
	int rc;
};

static int echo_server(void *arg)
{
	struct tcp *s = arg;
	char buf[NBYTES];
	int fd = rook_accept(s->lfd, NULL, NULL);
	if (fd < 0)
		return fd;
	ssize_t n = rook_read_full(fd, buf, sizeof(buf));
	if (n == (ssize_t)sizeof(buf))
		n = rook_write_full(fd, buf, sizeof(buf));
	rook_close(fd);
	return n < 0 ? (int)n : 0;
}

static int prog_tcp(void *arg)
{
	struct tcp s = {0};
	char out[NBYTES], in[NBYTES];
	for (int i = 0; i < NBYTES; i++)
		out[i] = (char)(i * 7 + 1);
	s.lfd = rook_tcp_listen("localhost", 0, 8);
	if (s.lfd < 0)
		return s.lfd;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int rc = getsockname(s.lfd, (struct sockaddr *)&ss, &len) < 0 ? -errno : 0;
	uint16_t port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	struct rook_task *srv;
	if (rc == 0)
		rc = rook_spawn(&srv, echo_server, &s);
	if (rc < 0) {
		rook_close(s.lfd);
		return rc;
	}
	int fd = rook_tcp_connect("localhost", port);
	/* A server that got no stack never answers: bound the wait. */
	bool scoped = fd >= 0 && rook_deadline_push(rook_now() + 10 * ROOK_SEC) == 0;
	if (fd >= 0) {
		ssize_t n = rook_write_full(fd, out, sizeof(out));
		if (n == (ssize_t)sizeof(out))
			n = rook_read_full(fd, in, sizeof(in));
		if (n < 0)
			rc = (int)n;
		else if (n != (ssize_t)sizeof(in) || memcmp(in, out, sizeof(in)) != 0)
			rc = WRONG;
		rook_close(fd);
		if (scoped)
			rook_deadline_pop();
	} else {
		rc = fd;
		rook_cancel(srv); /* it waits in accept for a client that never came */
	}
	int st = 0;
	rook_join(srv, &st);
	rook_close(s.lfd);
	if (st == -ENOMEM)
		rc = st; /* rc may be the client's -ETIMEDOUT */
	else if (rc == 0 && st < 0)
		rc = st;
	return rc;
}

/* The blocking pool: 4 tasks, 2 jobs each. */
static int twice(void *arg)
{
	return 2 * (int)(intptr_t)arg;
}

static int pool_user(void *arg)
{
	intptr_t k = (intptr_t)arg;
	for (intptr_t j = 0; j < 2; j++) {
		int r = rook_blocking(twice, (void *)(k * 10 + j));
		if (r < 0)
			return r;
		if (r != 2 * (int)(k * 10 + j))
			return WRONG;
	}
	return 0;
}

static int prog_blocking(void *arg)
{
	struct rook_task *ts[4];
	int st[4], n = 0, rc = 0;
	for (; n < 4; n++) {
		rc = rook_spawn(&ts[n], pool_user, (void *)(intptr_t)n);
		if (rc < 0)
			break;
	}
	if (rook_gather(ts, (size_t)n, st) != 0)
		return WRONG;
	for (int i = 0; i < n; i++)
		if (st[i] < 0 && (rc == 0 || st[i] == WRONG))
			rc = st[i];
	return rc;
}

/* ---- the harness -------------------------------------------------------- */

struct prog {
	const char *p_name;
	rook_fn p_main;
	unsigned p_workers;
};

/* A crashing child prints where (addr2line -e test_alloc_fault ADDR). */
static void crash_trace(int sig)
{
	void *pcs[64];
	int n = backtrace(pcs, 64);
	backtrace_symbols_fd(pcs, n, 2);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void child(const struct prog *p, long nth, int wfd)
{
	signal(SIGSEGV, crash_trace);
	signal(SIGBUS, crash_trace);
	signal(SIGABRT, crash_trace);
	static struct report rep;
	int fds = fd_count();

	rook__queue_ring_limit(4);
	rook__alloc_trace(true);
	rook__alloc_fail_nth(nth);
	struct rook_config cfg = {.workers = p->p_workers, .flags = ROOK_NO_PIN};
	rep.r_rc = rook_run(&cfg, p->p_main, NULL);
	rook__alloc_fail_nth(0);
	rep.r_points = rook__alloc_points();
	const char *f = rook__alloc_failed_site();
	if (f)
		site_copy(rep.r_failed, f);
	const char *sites[SITES_MAX];
	size_t n = rook__alloc_sites(sites, SITES_MAX);
	rep.r_nsites = (int)(n < SITES_MAX ? n : SITES_MAX);
	for (int i = 0; i < rep.r_nsites; i++)
		site_copy(rep.r_sites[i], sites[i]);
	rook__alloc_trace(false);
	struct rook__stats st;
	rook__stats_get(&st);
	rep.r_clean = st.live_tasks == 0 && st.stacks_in_use == 0 && fd_count() == fds;
	if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check() != 0)
		rep.r_clean = 0;
	const char *b = (const char *)&rep;
	for (size_t off = 0; off < sizeof(rep);) {
		ssize_t w = write(wfd, b + off, sizeof(rep) - off);
		if (w <= 0)
			_exit(3);
		off += (size_t)w;
	}
	_exit(0);
}

/* Run p in a child with the nth point failing (0: none). 0, or -ETIME if it
 * hung, -ECHILD if it died or reported nothing. */
static int run_child(const struct prog *p, long nth, struct report *rep)
{
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		child(p, nth, pfd[1]);
	}
	close(pfd[1]);
	int timeout_ms = sanitized() ? 120000 : 30000;
	size_t off = 0;
	int res = 0;
	while (off < sizeof(*rep)) {
		struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
		int r = poll(&pf, 1, timeout_ms);
		if (r == 0) {
			res = -ETIME;
			kill(pid, SIGKILL);
			break;
		}
		if (r < 0 && errno == EINTR)
			continue;
		ssize_t n = read(pfd[0], (char *)rep + off, sizeof(*rep) - off);
		if (n <= 0) {
			res = -ECHILD;
			break;
		}
		off += (size_t)n;
	}
	close(pfd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (res == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		res = -ECHILD;
	if (res == -ECHILD && WIFSIGNALED(status))
		fprintf(stderr, "fault: %s nth=%ld: killed by signal %d\n", p->p_name, nth,
			WTERMSIG(status));
	return res;
}

static void *watchdog(void *arg)
{
	sleep(5);
	const char *f = rook__alloc_failed_site();
	fprintf(stderr, "fault: still running after 5 s; failed site: %s\n", f ? f : "none");
	return NULL;
}

static void sweep(const struct prog *p)
{
	static struct report rep;
	static char seen[SITES_MAX][SITE_LEN], failed[SITES_MAX][SITE_LEN];
	int nseen = 0, nfailed = 0;

	/* Not under TSan: its shim runs all tests in one process, so the
	 * children would fork a process holding other tests' threads (a tcp
	 * child hung there). The debug and ASan builds run the sweep. */
	const char *san = getenv("ROOK_SANITIZE");
	if (san && strstr(san, "thread"))
		return;

	/* ROOK_FAULT_NTH=n: run that one case in this process (for a debugger);
	 * after 5 s a watchdog names the site that failed (for hangs). */
	const char *only = getenv("ROOK_FAULT_NTH");
	if (only) {
		pthread_t wd;
		pthread_create(&wd, NULL, watchdog, NULL);
		int pfd[2];
		cr_assert_eq(pipe(pfd), 0);
		child(p, atol(only), pfd[1]);
	}

	cr_assert_eq(run_child(p, 0, &rep), 0, "%s: the clean run crashed or hung", p->p_name);
	cr_assert_eq(rep.r_rc, 0, "%s: the clean run returned %d", p->p_name, rep.r_rc);
	cr_assert(rep.r_clean, "%s: the clean run left a task, stack, fd or leak", p->p_name);
	long points = rep.r_points;
	cr_assert(points > 0, "%s: no injection point passed", p->p_name);
	nseen = rep.r_nsites;
	memcpy(seen, rep.r_sites, sizeof(seen));

	long runs = 0, ok = 0, enomem = 0, eagain = 0;
	/* Past the clean run's count too: with more than one worker the
	 * count varies a little from run to run. */
	for (long nth = 1; nth <= points + 8; nth++) {
		memset(&rep, 0, sizeof(rep));
		int r = run_child(p, nth, &rep);
		runs++;
		cr_assert_eq(r, 0, "%s nth=%ld: %s", p->p_name, nth,
			     r == -ETIME ? "hung" : "crashed or reported nothing");
		cr_assert(rep.r_rc == 0 || rep.r_rc == -ENOMEM || rep.r_rc == -EAGAIN,
			  "%s nth=%ld (failed %s): returned %d", p->p_name, nth, rep.r_failed,
			  rep.r_rc);
		cr_assert(rep.r_clean, "%s nth=%ld (failed %s): left a task, stack, fd or leak",
			  p->p_name, nth, rep.r_failed);
		if (rep.r_rc == 0)
			ok++;
		else if (rep.r_rc == -ENOMEM)
			enomem++;
		else
			eagain++;
		if (!rep.r_failed[0]) {
			cr_assert(nth > points - 8, "%s nth=%ld of %ld: nothing failed", p->p_name,
				  nth, points);
			continue;
		}
		int i = 0;
		while (i < nfailed && strcmp(failed[i], rep.r_failed) != 0)
			i++;
		if (i == nfailed && nfailed < SITES_MAX)
			snprintf(failed[nfailed++], SITE_LEN, "%s", rep.r_failed);
	}
	for (int i = 0; i < nseen; i++) {
		int j = 0;
		while (j < nfailed && strcmp(failed[j], seen[i]) != 0)
			j++;
		cr_expect(j < nfailed, "%s: site %s never failed", p->p_name, seen[i]);
	}
	fprintf(stderr,
		"fault: %-8s %ld points, %d sites seen, %d failed; %ld runs: %ld ok, %ld -ENOMEM, "
		"%ld -EAGAIN\n",
		p->p_name, points, nseen, nfailed, runs, ok, enomem, eagain);
	for (int i = 0; i < nfailed; i++)
		fprintf(stderr, "fault: %-8s   %s\n", p->p_name, failed[i]);
}

#define FAULT_TEST(name, workers, ...)                                                             \
	Test(fault, name, .timeout = 1800, ##__VA_ARGS__)                                          \
	{                                                                                          \
		static const struct prog p = {#name, prog_##name, workers};                        \
		sweep(&p);                                                                         \
	}

FAULT_TEST(tree, 1)
FAULT_TEST(gather, 1)
FAULT_TEST(deadline, 1)
/* Disabled until fixed (found by this sweep, 2026-12-03). group: a child
 * whose stack cannot be taken (sched/stack.c rook__stack_get, nth=35) ends
 * -ENOMEM without running group.c's child_main, so the group never counts
 * it as ended: rook_group_wait waits forever (and its gchild leaks).
 * blocking: hangs now and then (nth=29 with nothing failed, nth=23),
 * not reproduced in-process: the blocking pool under load, not found yet.
 * Run one case in-process with ROOK_FAULT_NTH=n --filter fault/NAME. */
FAULT_TEST(group, 1)
FAULT_TEST(queue, 1)
FAULT_TEST(tcp, 1)
FAULT_TEST(blocking, 1)

/* Regression (found by the blocking sweep above): a pool thread's wake
 * for a finished job is a request posted to the caller's ring. When two
 * jobs finished together, the second wake's 2 in i_park was consumed by
 * the worker's failed CAS for the first; the worker then took the second
 * request at its next park, made the task runnable and slept anyway
 * (io/ring.c, tools/models/ring_park.pml). One worker, many jobs
 * finishing at once: it hung in about one run of five. */
static int many_jobs(void *arg)
{
	for (int j = 0; j < 20; j++) {
		int r = rook_blocking(twice, (void *)(intptr_t)j);
		if (r != 2 * j)
			return r < 0 ? r : WRONG;
	}
	return 0;
}

static int prog_wakes(void *arg)
{
	struct rook_task *ts[8];
	int st[8];
	for (int i = 0; i < 8; i++)
		if (rook_spawn(&ts[i], many_jobs, NULL) != 0)
			return WRONG;
	if (rook_gather(ts, 8, st) != 0)
		return WRONG;
	for (int i = 0; i < 8; i++)
		if (st[i] != 0)
			return st[i];
	return 0;
}

Test(fault, blocking_wakes, .timeout = 120)
{
	struct rook_config cfg = {.workers = 1, .flags = ROOK_NO_PIN};
	for (int i = 0; i < 100; i++)
		cr_assert_eq(rook_run(&cfg, prog_wakes, NULL), 0, "run %d", i);
}
