/* SPDX-License-Identifier: MIT */
/*
 * rook_task_set_name and rook_dump: a dump lists a task blocked in each
 * kind of call with its state and a backtrace holding the function that
 * blocked; bad input gets its -errno; ROOK_DUMP_SIGNAL dumps to stderr and
 * the process goes on; ten thousand tasks dump quickly.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers.h"

/* The whole of fd (a memfd or file) as a NUL-terminated heap string. */
static char *slurp(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	char *s = malloc((size_t)len + 1);
	if (!s)
		return NULL;
	ssize_t n = pread(fd, s, (size_t)len, 0);
	s[n > 0 ? n : 0] = '\0';
	return s;
}

static char *dump_text(void)
{
	int fd = memfd_create("dump", MFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	int r = rook_dump(fd);
	char *s = r >= 0 ? slurp(fd) : NULL;
	close(fd);
	return s;
}

/* The dump's entry for the task named name: its header line and its
 * backtrace (up to the next task), or NULL. Heap string. */
static char *entry_of(const char *dump, const char *name)
{
	char key[64];
	snprintf(key, sizeof(key), "\"%s\": ", name);
	const char *p = strstr(dump, key);
	if (!p)
		return NULL;
	while (p > dump && p[-1] != '\n')
		p--;
	const char *end = strstr(p + 1, "\ntask ");
	size_t n = end ? (size_t)(end - p) : strlen(p);
	char *e = malloc(n + 1);
	memcpy(e, p, n);
	e[n] = '\0';
	return e;
}

/* The user's frame must exist to be named: a user function that ends in
 * "return rook_sleep(...)" is tail-called away by an optimising compiler
 * (its caller's return address is what the call records). The barrier
 * after the call keeps each blocked function's frame, as real code that
 * does anything after its call has one. */
#define NO_TAIL(call)                                                                              \
	({                                                                                         \
		int r_ = (int)(call);                                                              \
		__asm__ volatile("" ::: "memory");                                                 \
		r_;                                                                                \
	})

struct blocked {
	struct rook_queue *q;
	struct rook_mutex *m;
	int sv[2];
	struct rook_task *target;
};

static int blocked_target(void *arg)
{
	(void)arg;
	rook_task_set_name("target");
	return NO_TAIL(rook_sleep(FOREVER));
}

static int blocked_sleeper(void *arg)
{
	(void)arg;
	rook_task_set_name("sleeper");
	return NO_TAIL(rook_sleep(FOREVER));
}

static int blocked_joiner(void *arg)
{
	struct blocked *b = arg;
	rook_task_set_name("joiner");
	return NO_TAIL(rook_join(b->target, NULL));
}

static int blocked_getter(void *arg)
{
	struct blocked *b = arg;
	int x;
	rook_task_set_name("getter");
	return NO_TAIL(rook_queue_get(b->q, &x));
}

static int blocked_locker(void *arg)
{
	struct blocked *b = arg;
	rook_task_set_name("locker");
	int r = rook_mutex_lock(b->m);
	if (r == 0)
		rook_mutex_unlock(b->m);
	return r;
}

static int blocked_receiver(void *arg)
{
	struct blocked *b = arg;
	char c;
	rook_task_set_name("receiver");
	return NO_TAIL(rook_recv(b->sv[0], &c, 1, 0));
}

static const struct {
	const char *name, *call, *fn;
} expected[] = {
    {"sleeper", "suspended in rook_sleep for ", "blocked_sleeper"},
    {"joiner", "suspended in rook_join for ", "blocked_joiner"},
    {"getter", "suspended in rook_queue_get for ", "blocked_getter"},
    {"locker", "suspended in rook_mutex_lock for ", "blocked_locker"},
    {"receiver", "suspended in rook_recv on fd ", "blocked_receiver"},
};
#define NEXPECTED (sizeof(expected) / sizeof(expected[0]))

static char final_dump[65536];

/* True once every expected task shows up suspended. */
static bool all_suspended(const char *dump)
{
	for (size_t i = 0; i < NEXPECTED; i++) {
		char *e = entry_of(dump, expected[i].name);
		bool ok = e && strstr(e, "suspended in ");
		free(e);
		if (!ok)
			return false;
	}
	return true;
}

static int dump_main(void *arg)
{
	(void)arg;
	struct blocked b;
	T_CHECK_EQ(rook_queue_create(&b.q, sizeof(int), 4), 0);
	T_CHECK_EQ(rook_mutex_create(&b.m), 0);
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b.sv), 0);
	T_CHECK_EQ(rook_mutex_lock(b.m), 0);
	T_CHECK_EQ(rook_task_set_name("main"), 0);
	T_CHECK_EQ(rook_spawn(&b.target, blocked_target, NULL), 0);
	rook_fn fns[] = {blocked_sleeper, blocked_joiner, blocked_getter, blocked_locker,
			 blocked_receiver};
	struct rook_task *t[NEXPECTED];
	for (size_t i = 0; i < NEXPECTED; i++)
		T_CHECK_EQ(rook_spawn(&t[i], fns[i], &b), 0);
	/* Poll the dump itself until every task has suspended. */
	uint64_t t0 = rook_now();
	char *d = NULL;
	for (;;) {
		free(d);
		d = dump_text();
		T_CHECK(d != NULL);
		if (!d || all_suspended(d) || ms_since(t0) > 30000)
			break;
		rook_sleep(ROOK_MSEC);
	}
	if (d)
		snprintf(final_dump, sizeof(final_dump), "%s", d);
	free(d);
	for (size_t i = 0; i < NEXPECTED; i++)
		rook_cancel(t[i]);
	rook_mutex_unlock(b.m);
	for (size_t i = 0; i < NEXPECTED; i++)
		T_CHECK(rook_join(t[i], NULL) == 0);
	rook_cancel(b.target);
	T_CHECK_EQ(rook_join(b.target, NULL), 0);
	rook_queue_destroy(b.q);
	rook_mutex_destroy(b.m);
	close(b.sv[0]);
	close(b.sv[1]);
	return 0;
}

Test(dump, lists_each_blocking_call_with_its_backtrace, .timeout = 120)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, 0, dump_main, NULL), 0);
	expect_clean_shutdown(fds);
	for (size_t i = 0; i < NEXPECTED; i++) {
		char *e = entry_of(final_dump, expected[i].name);
		cr_assert(e, "no task \"%s\" in the dump:\n%s", expected[i].name, final_dump);
		cr_expect(strstr(e, "suspended in "), "\"%s\" not suspended:\n%s", expected[i].name,
			  e);
		cr_expect(strstr(e, expected[i].call), "\"%s\" not %s...:\n%s", expected[i].name,
			  expected[i].call, e);
		cr_expect(strstr(e, expected[i].fn), "no %s in the backtrace:\n%s", expected[i].fn,
			  e);
		free(e);
	}
	char *m = entry_of(final_dump, "main");
	cr_assert(m, "%s", final_dump);
	cr_expect(strstr(m, "running on worker "), "%s", m);
	free(m);
}

static int names_main(void *arg)
{
	(void)arg;
	T_CHECK_EQ(rook_task_set_name(NULL), -EINVAL);
	T_CHECK_EQ(rook_task_set_name("a-name-that-is-much-longer-than-31-bytes"), 0);
	char *d = dump_text();
	T_CHECK(d && strstr(d, "\"a-name-that-is-much-longer-than\": running on worker 0"));
	free(d);
	T_CHECK_EQ(rook_dump(-1), -EBADF);
	T_CHECK(rook_dump(-5) == -EBADF);
	int p[2];
	T_CHECK_EQ(pipe(p), 0);
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	T_CHECK_EQ(rook_dump(p[1]), -EPIPE);
	close(p[1]);
	return 0;
}

Test(dump, names_truncate_and_bad_input_gets_errno)
{
	int fds = fd_count();
	cr_expect_eq(rook_task_set_name("x"), -EPERM);
	cr_assert_eq(run_with(1, 0, names_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int parked(void *arg)
{
	return rook_event_wait(arg);
}

static double dump_ms;
static long dump_tasks;

static int many_main(void *arg)
{
	long n = *(long *)arg;
	struct rook_event *e;
	T_CHECK_EQ(rook_event_create(&e), 0);
	struct rook_task **t = calloc((size_t)n, sizeof(*t));
	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_spawn(&t[i], parked, e), 0);
	for (long i = 0; i < n; i++) /* let every task start and park */
		rook_yield();
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	uint64_t t0 = rook_now();
	int r = rook_dump(fd);
	dump_ms = (double)(rook_now() - t0) / 1e6;
	dump_tasks = r;
	close(fd);
	rook_event_set(e);
	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_join(t[i], NULL), 0);
	free(t);
	rook_event_destroy(e);
	return 0;
}

Test(dump, ten_thousand_tasks_dump_quickly, .timeout = 120)
{
	int fds = fd_count();
	long n = scaled(10000, 4);
	cr_assert_eq(run_with(1, 0, many_main, &n), 0);
	expect_clean_shutdown(fds);
	cr_expect_geq(dump_tasks, n, "listed %ld of %ld", dump_tasks, n);
	/* Gross bound only (sanitizers); the number itself is in perf/NOTES.md. */
	cr_expect_lt(dump_ms, sanitized() ? 20000.0 : 10000.0, "%ld tasks dumped in %.1f ms", n,
		     dump_ms);
	fprintf(stderr, "dump: %ld tasks in %.1f ms\n", dump_tasks, dump_ms);
}

static int sig_sleeper(void *arg)
{
	(void)arg;
	rook_task_set_name("sig-sleeper");
	return NO_TAIL(rook_sleep(FOREVER));
}

/* Child: raise the dump signal, wait until the dump is in the file (our
 * own stderr), then end normally: the signal did not stop the process. */
static int sig_main(void *arg)
{
	(void)arg;
	struct rook_task *t;
	if (rook_spawn(&t, sig_sleeper, NULL) != 0)
		return 1;
	for (;;) { /* until it has parked */
		char *d = dump_text();
		bool ok = d && strstr(d, "\"sig-sleeper\": suspended");
		free(d);
		if (ok)
			break;
		rook_sleep(ROOK_MSEC);
	}
	raise(SIGUSR1);
	uint64_t t0 = rook_now();
	for (;;) {
		char *s = slurp(STDERR_FILENO);
		bool done = s && strstr(s, " tasks\n");
		free(s);
		if (done || ms_since(t0) > 30000)
			break;
		rook_sleep(ROOK_MSEC);
	}
	rook_cancel(t);
	rook_join(t, NULL);
	return 7;
}

static void sig_child(void *arg)
{
	(void)arg;
	setenv("ROOK_DUMP_SIGNAL", "USR1", 1);
	struct rook_config cfg = {.workers = 2};
	_exit(rook_run(&cfg, sig_main, NULL));
}

Test(dump, signal_dumps_to_stderr_and_the_process_goes_on, .timeout = 120)
{
	int st;
	char *s = child_stderr(sig_child, NULL, &st);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7, "child status %#x:\n%s", st, s);
	cr_expect(strstr(s, "rook: tasks of runtime "), "%s", s);
	cr_expect(strstr(s, "\"sig-sleeper\": suspended in rook_sleep for "), "%s", s);
	cr_expect(strstr(s, "sig_sleeper"), "%s", s);
	free(s);
}

/* PARKED tasks blocked on one event: a report longer than a small pipe
 * holds. */
#define PARKED 200

static struct rook_event *park_many(struct rook_task **t)
{
	struct rook_event *e;
	T_CHECK_EQ(rook_event_create(&e), 0);
	for (int i = 0; i < PARKED; i++)
		T_CHECK_EQ(rook_spawn(&t[i], parked, e), 0);
	for (int i = 0; i < PARKED; i++)
		rook_yield();
	return e;
}

static void release_many(struct rook_task **t, struct rook_event *e)
{
	rook_event_set(e);
	for (int i = 0; i < PARKED; i++)
		T_CHECK_EQ(rook_join(t[i], NULL), 0);
	rook_event_destroy(e);
}

/* A dump to a pipe whose reader left is -EPIPE, with no SIGPIPE (the
 * default action would kill this process); one to a pipe nobody reads
 * gives up (-ETIMEDOUT) rather than holding its worker for good. */
static int pipes_main(void *arg)
{
	(void)arg;
	int p[2];
	T_CHECK_EQ(pipe(p), 0);
	close(p[0]);
	T_CHECK_EQ(rook_dump(p[1]), -EPIPE);
	T_CHECK_EQ(rook_stats_write(p[1], ROOK_STATS_TEXT), -EPIPE);
	close(p[1]);
	struct rook_task *t[PARKED];
	struct rook_event *e = park_many(t);
	T_CHECK_EQ(pipe(p), 0);
	T_CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) > 0); /* less than the report */
	uint64_t t0 = rook_now();
	T_CHECK_EQ(rook_dump(p[1]), -ETIMEDOUT);
	T_CHECK(rook_now() - t0 < 60 * ROOK_SEC); /* gross: not for good */
	close(p[0]);
	close(p[1]);
	release_many(t, e);
	return 0;
}

Test(dump, a_pipe_that_left_or_stalls_is_an_error_not_a_signal_or_a_hang, .timeout = 120)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, pipes_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Ends that can never take output are their error at once, not a second's
 * wait and -ETIMEDOUT: a pipe's read end (-EBADF, as write(2)), a
 * listening socket (-ENOTCONN). */
static int unwritable_main(void *arg)
{
	(void)arg;
	int p[2];
	T_CHECK_EQ(pipe(p), 0);
	T_CHECK_EQ(rook_dump(p[0]), -EBADF);
	T_CHECK_EQ(rook_stats_write(p[0], ROOK_STATS_TEXT), -EBADF);
	close(p[0]);
	close(p[1]);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "/tmp/rook-dump-l-%d", (int)getpid());
	unlink(a.sun_path);
	T_CHECK_EQ(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	T_CHECK_EQ(listen(l, 1), 0);
	T_CHECK_EQ(rook_dump(l), -ENOTCONN);
	T_CHECK_EQ(rook_stats_write(l, ROOK_STATS_TEXT), -ENOTCONN);
	close(l);
	unlink(a.sun_path);
	return 0;
}

Test(dump, an_end_that_cannot_take_output_is_its_error_at_once)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, unwritable_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* The second without progress after which a stalled pipe gives up is one
 * second of the whole write: signals that interrupt the wait (here every
 * 100 ms, for up to 30 s) do not start it again. */
struct pester {
	pthread_t target;
	_Atomic bool done, gave_up;
};

static void on_usr1(int sig)
{
	(void)sig;
}

static void *pester_thread(void *arg)
{
	struct pester *ps = arg;
	for (int i = 0; i < 300 && !atomic_load(&ps->done); i++) {
		pthread_kill(ps->target, SIGUSR1);
		usleep(100 * 1000); /* the signals' pace, not a wait for an event */
	}
	atomic_store(&ps->gave_up, !atomic_load(&ps->done));
	return NULL;
}

static int pestered_main(void *arg)
{
	(void)arg;
	struct rook_task *t[PARKED];
	struct rook_event *e = park_many(t);
	int p[2];
	T_CHECK_EQ(pipe(p), 0);
	T_CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) > 0);       /* less than the report */
	struct sigaction sa = {.sa_handler = on_usr1}, old; /* no SA_RESTART */
	T_CHECK_EQ(sigaction(SIGUSR1, &sa, &old), 0);
	struct pester ps = {.target = pthread_self()}; /* one worker: this thread */
	pthread_t th;
	T_CHECK_EQ(pthread_create(&th, NULL, pester_thread, &ps), 0);
	T_CHECK_EQ(rook_dump(p[1]), -ETIMEDOUT);
	atomic_store(&ps.done, true);
	pthread_join(th, NULL);
	T_CHECK(!atomic_load(&ps.gave_up)); /* it ended while signals came */
	sigaction(SIGUSR1, &old, NULL);
	close(p[0]);
	close(p[1]);
	release_many(t, e);
	return 0;
}

Test(dump, signals_do_not_restart_the_stall_bound, .timeout = 120)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, pestered_main, NULL), 0);
	expect_clean_shutdown(fds);
}
