/* SPDX-License-Identifier: MIT */
/*
 * rook_serve at its edges: a client that resets mid-response (the sends see
 * -ECONNRESET or -EPIPE, never SIGPIPE), max_conns back-pressure (accept
 * waits, then resumes when a connection ends), EMFILE while serving (in a
 * forked child with a low RLIMIT_NOFILE: accept fails cleanly and serving
 * resumes once fds are freed), and rook_close of an fd another task is
 * rook_poll-ing (the poller wakes with -EBADF), and the drain at stop
 * (ROOK_SERVE_DRAIN: new connections refused, open ones finish, the bound
 * cancels the rest; without the flag drain_ns is not read).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rook.h>

#include "tests/helpers.h"

/* Inside a task: yield until the server has published its port. */
static int await_port(int *port)
{
	int p;
	while ((p = __atomic_load_n(port, __ATOMIC_ACQUIRE)) == 0)
		rook_yield();
	return p;
}

/* Send a line, read the echo of it (no deadline: the server must answer). */
static void ping(int fd)
{
	char in[8] = {0};
	T_CHECK_EQ(rook_send(fd, "ping\n", 5, 0), 5);
	T_CHECK_EQ(rook_read_full(fd, in, 5), 5);
	T_CHECK(memcmp(in, "ping\n", 5) == 0);
}

static int echo_conn(int fd, const struct sockaddr *peer, void *arg)
{
	(void)peer;
	_Atomic int *active = arg, *peak = active + 1;
	int now = atomic_fetch_add(active, 1) + 1;
	for (int p = atomic_load(peak); now > p && !atomic_compare_exchange_weak(peak, &p, now);)
		;
	struct rook_stream *s;
	char line[64];
	ssize_t n;
	if (rook_stream_open(&s, fd, 0) < 0) {
		atomic_fetch_sub(active, 1);
		return rook_close(fd);
	}
	while ((n = rook_stream_readline(s, line, sizeof(line))) > 0)
		if (rook_stream_write(s, line, (size_t)n) != n || rook_stream_flush(s) < 0)
			break;
	atomic_fetch_sub(active, 1);
	rook_stream_close(s);
	return 0;
}

struct srv {
	struct rook_serve_opts s_o;
	rook_conn_fn s_fn;
	void *s_arg;
	int s_port;
};

static int srv_task(void *arg)
{
	struct srv *sv = arg;
	sv->s_o.bound_port = &sv->s_port;
	return rook_serve(&sv->s_o, sv->s_fn, sv->s_arg);
}

/* Start sv as task *t; its port once bound. */
static int srv_start(struct srv *sv, struct rook_task **t)
{
	T_CHECK_EQ(rook_spawn(t, srv_task, sv), 0);
	return await_port(&sv->s_port);
}

/* A connection to 127.0.0.1:port that the server answered. */
static int connect_pinged(int port)
{
	int fd = rook_tcp_connect("127.0.0.1", (uint16_t)port);
	T_CHECK(fd >= 0);
	if (fd >= 0)
		ping(fd);
	return fd;
}

static void srv_stop(struct rook_task *t)
{
	int st = 0;
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
}

/* ---- a client that resets mid-response ------------------------------------ */

#define BIG (8u << 20) /* far more than the socket buffers hold */

static _Atomic int reset_res[3];
static struct rook_event *reset_seen;

/* Connection i answers any byte with BIG bytes: by rook_write_full, by
 * rook_stream_write + flush, or by rook_send; it records what the send said
 * once the peer reset. */
static int big_conn(int fd, const struct sockaddr *peer, void *arg)
{
	(void)peer;
	static _Atomic int next;
	(void)arg;
	int i = atomic_fetch_add(&next, 1) % 3;
	char *buf = calloc(1, BIG), c;
	ssize_t r = -ENOMEM;
	if (buf && rook_recv(fd, &c, 1, 0) == 1) {
		if (i == 0) {
			/* A short count first, as write(2); the next write errs. */
			if ((r = rook_write_full(fd, buf, BIG)) >= 0 && r < (ssize_t)BIG)
				r = rook_write_full(fd, buf, BIG - (size_t)r);
		} else if (i == 1) {
			struct rook_stream *s;
			if ((r = rook_stream_open(&s, fd, 0)) == 0) {
				for (size_t off = 0; off < BIG && r >= 0; off += 4096)
					r = rook_stream_write(s, buf + off, 4096);
				if (r >= 0)
					r = rook_stream_flush(s);
				rook_stream_close(s);
				fd = -1;
			}
		} else {
			size_t off = 0;
			while (off < BIG && (r = rook_send(fd, buf + off, BIG - off, 0)) > 0)
				off += (size_t)r;
		}
	}
	free(buf);
	atomic_store(&reset_res[i], r < 0 ? (int)r : 1);
	rook_event_set(reset_seen);
	return fd >= 0 ? rook_close(fd) : 0;
}

static int reset_main(void *arg)
{
	(void)arg;
	struct srv sv = {.s_o = {.host = "127.0.0.1"}, .s_fn = big_conn};
	struct rook_task *t;
	int port = srv_start(&sv, &t);
	for (int i = 0; i < 3; i++) {
		T_CHECK_EQ(rook_event_create(&reset_seen), 0);
		int fd = rook_tcp_connect("127.0.0.1", (uint16_t)port);
		T_CHECK(fd >= 0);
		char in[4096];
		T_CHECK_EQ(rook_send(fd, "x", 1, 0), 1);
		T_CHECK(rook_read_full(fd, in, sizeof(in)) == (ssize_t)sizeof(in));
		/* SO_LINGER 0: close sends RST with the response still unread. */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		T_CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
		T_CHECK_EQ(rook_close(fd), 0);
		T_CHECK_EQ(rook_event_wait(reset_seen), 0);
		rook_event_destroy(reset_seen);
	}
	for (int i = 0; i < 3; i++) {
		int r = atomic_load(&reset_res[i]);
		T_CHECK(r == -ECONNRESET || r == -EPIPE);
	}
	srv_stop(t);
	return 0;
}

Test(serve_edges, client_reset_mid_response_is_an_error_not_sigpipe, .timeout = 60)
{
	int fds = fd_count();
	cr_assert(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, reset_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- max_conns back-pressure ----------------------------------------------- */

static _Atomic int bp_count[2]; /* active, peak */

static int backpressure_main(void *arg)
{
	struct srv sv = {
	    .s_o = {.host = "127.0.0.1", .max_conns = 2, .flags = (unsigned)(intptr_t)arg},
	    .s_fn = echo_conn,
	    .s_arg = bp_count};
	atomic_store(&bp_count[0], 0);
	atomic_store(&bp_count[1], 0);
	struct rook_task *t;
	int port = srv_start(&sv, &t), fd[4];
	for (int i = 0; i < 2; i++) {
		fd[i] = connect_pinged(port);
	}
	/* The kernel completes the third and fourth handshakes (backlog), but
	 * the server must not take them while two connections are open. */
	for (int i = 2; i < 4; i++) {
		T_CHECK((fd[i] = rook_tcp_connect("127.0.0.1", (uint16_t)port)) >= 0);
		T_CHECK_EQ(rook_send(fd[i], "ping\n", 5, 0), 5);
	}
	char in[8];
	T_CHECK_EQ(rook_deadline_push(rook_now() + 200 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_recv(fd[2], in, sizeof(in), 0), -ETIMEDOUT);
	rook_deadline_pop();
	T_CHECK_EQ(atomic_load(&bp_count[1]), 2);
	/* One ends: exactly one of the waiting two is taken and answered. */
	T_CHECK_EQ(rook_close(fd[0]), 0);
	int got = -1;
	struct pollfd pf[2] = {{.fd = fd[2], .events = POLLIN}, {.fd = fd[3], .events = POLLIN}};
	while (got < 0) { /* wait for either answer without a deadline */
		T_CHECK_EQ(rook_yield(), 0);
		if (poll(pf, 2, 0) > 0)
			got = (pf[0].revents & POLLIN) ? 2 : 3;
	}
	T_CHECK_EQ(rook_read_full(fd[got], in, 5), 5);
	T_CHECK(memcmp(in, "ping\n", 5) == 0);
	int other = got == 2 ? 3 : 2;
	T_CHECK_EQ(rook_deadline_push(rook_now() + 100 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_recv(fd[other], in, sizeof(in), 0), -ETIMEDOUT);
	rook_deadline_pop();
	T_CHECK_EQ(rook_close(fd[1]), 0);
	T_CHECK_EQ(rook_read_full(fd[other], in, 5), 5); /* now its turn */
	T_CHECK_EQ(atomic_load(&bp_count[1]), 2);
	srv_stop(t);
	T_CHECK_EQ(rook_close(fd[2]), 0);
	T_CHECK_EQ(rook_close(fd[3]), 0);
	return 0;
}

Test(serve_edges, max_conns_makes_accept_wait_per_worker, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, backpressure_main, (void *)(intptr_t)0), 0);
	expect_clean_shutdown(fds);
}

Test(serve_edges, max_conns_makes_accept_wait_shared, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(
	    run_with(2, ROOK_NO_PIN, backpressure_main, (void *)(intptr_t)ROOK_SERVE_SHARED), 0);
	expect_clean_shutdown(fds);
}

/* ---- EMFILE while serving -------------------------------------------------- */

#define SPARE 64

/* Runs in a forked child whose RLIMIT_NOFILE is what was open plus SPARE,
 * lowered before rook_run: io_uring reads the limit when an accept is
 * submitted (io_accept_prep keeps rlimit(RLIMIT_NOFILE) for the call), so
 * a limit lowered while the server's accept is in flight would not apply
 * to it, and that accept would take an fd above the limit. */
static int emfile_main(void *arg)
{
	(void)arg;
	static _Atomic int cnt[2];
	struct srv sv = {.s_o = {.host = "127.0.0.1"}, .s_fn = echo_conn, .s_arg = cnt};
	struct rook_task *t;
	int port = srv_start(&sv, &t);
	int ok = connect_pinged(port);
	/* Fill all fds but one with dummies and connect with the last one:
	 * the server's accept has no fd to give. */
	int dummy[SPARE + 8], nd = 0, fd;
	while (nd < SPARE + 8 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		dummy[nd++] = fd;
	T_CHECK(nd > 1 && nd < SPARE + 8);
	T_CHECK_EQ(close(dummy[--nd]), 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	T_CHECK(c >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_CHECK_EQ(rook_connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	T_CHECK_EQ(rook_send(c, "ping\n", 5, 0), 5);
	char in[8];
	/* Not answered while the table is full (and the old connection is). */
	T_CHECK_EQ(rook_deadline_push(rook_now() + 200 * ROOK_MSEC), 0);
	ssize_t r = rook_recv(c, in, sizeof(in), 0);
	rook_deadline_pop();
	T_CHECK_EQ(r, -ETIMEDOUT);
	ping(ok);
	/* Free fds: the server takes the connection and answers it (unless it
	 * already did, which the check above reported). */
	while (nd > 0)
		T_CHECK_EQ(close(dummy[--nd]), 0);
	if (r == -ETIMEDOUT) {
		T_CHECK_EQ(rook_read_full(c, in, 5), 5);
		T_CHECK(memcmp(in, "ping\n", 5) == 0);
	}
	int d = connect_pinged(port);
	srv_stop(t);
	T_CHECK_EQ(rook_close(c), 0);
	T_CHECK_EQ(rook_close(d), 0);
	T_CHECK_EQ(rook_close(ok), 0);
	return 0;
}

Test(serve_edges, emfile_while_serving_then_resumes, .timeout = 60)
{
	int fds = fd_count();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* Not left behind, holding the test's pipes, if the test dies. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
			_exit(102);
		rl.rlim_cur = (rlim_t)(fd_count() + SPARE);
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			_exit(103);
		struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
		int rc = rook_run(&cfg, emfile_main, NULL);
		int f = atomic_load(&t_failures);
		if (f)
			fprintf(stderr, "%s\n", t_fail_msg);
		_exit(rc != 0 ? 100 : f ? 101 : 0);
	}
	int status = 0;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child died: status %d", status);
	cr_assert_eq(WEXITSTATUS(status), 0);
	cr_assert_eq(fd_count(), fds);
}

/* ---- rook_close wakes a task polling the fd -------------------------------- */

struct pl {
	int p_fd;
	_Atomic int p_armed;
};

static int poller(void *arg)
{
	struct pl *p = arg;
	atomic_store(&p->p_armed, 1);
	return rook_poll(p->p_fd, POLLIN);
}

static int close_poll_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200; i++) {
		int s[2];
		T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
		struct pl p = {.p_fd = s[0]};
		struct rook_task *t;
		T_CHECK_EQ(rook_spawn(&t, poller, &p), 0);
		await_flag(&p.p_armed);
		for (int y = 0; y < i % 8; y++)
			rook_yield(); /* let the poll reach the ring, most rounds */
		T_CHECK_EQ(rook_close(s[0]), 0);
		int st = 0;
		T_CHECK_EQ(rook_join(t, &st), 0);
		T_CHECK_EQ(st, -EBADF);
		T_CHECK_EQ(rook_close(s[1]), 0);
	}
	return 0;
}

Test(serve_edges, rook_close_wakes_a_task_polling_the_fd, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, close_poll_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- drain at stop ---------------------------------------------------------- */

static _Atomic int drain_count[2];

/* After the server task was cancelled: connect until the listeners are
 * closed. A connect that still lands in a backlog is reset, while its
 * handshake runs (-ECONNRESET) or after it (it connects): retry. */
static void await_refused(int port)
{
	for (;;) {
		int fd = rook_tcp_connect("127.0.0.1", (uint16_t)port);
		if (fd == -ECONNREFUSED)
			return;
		if (fd != -ECONNRESET) {
			T_CHECK_EQ(fd < 0 ? fd : 0, 0);
			if (fd < 0)
				return;
			T_CHECK_EQ(rook_close(fd), 0);
		}
		T_CHECK_EQ(rook_yield(), 0);
	}
}

static int drain_main(void *arg)
{
	struct srv sv = {.s_o = {.host = "127.0.0.1",
				 .flags = (unsigned)(intptr_t)arg | ROOK_SERVE_DRAIN,
				 .drain_ns = 3600 * ROOK_SEC},
			 .s_fn = echo_conn,
			 .s_arg = drain_count};
	struct rook_task *t;
	int port = srv_start(&sv, &t), fd[2];
	for (int i = 0; i < 2; i++) {
		fd[i] = connect_pinged(port);
	}
	T_CHECK_EQ(rook_cancel(t), 0);
	await_refused(port);
	/* Draining: both connections are still served, and the server waits
	 * for them (an hour's bound is never reached). */
	ping(fd[0]);
	T_CHECK_EQ(rook_close(fd[0]), 0);
	ping(fd[1]);
	T_CHECK(!rook_done(t));
	T_CHECK_EQ(rook_close(fd[1]), 0);
	int st = 0;
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK_EQ(atomic_load(&drain_count[0]), 0);
	return 0;
}

Test(serve_edges, drain_refuses_new_connections_and_lets_open_ones_finish, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, drain_main, (void *)(intptr_t)0), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, drain_main, (void *)(intptr_t)ROOK_SERVE_SHARED), 0);
	expect_clean_shutdown(fds);
}

static int drain_bound_main(void *arg)
{
	(void)arg;
	uint64_t bound = 50 * ROOK_MSEC;
	struct srv sv = {.s_o = {.host = "127.0.0.1", .flags = ROOK_SERVE_DRAIN, .drain_ns = bound},
			 .s_fn = echo_conn,
			 .s_arg = drain_count};
	struct rook_task *t;
	int port = srv_start(&sv, &t);
	int fd = connect_pinged(port);
	uint64_t t0 = rook_now();
	srv_stop(t); /* the idle connection outlives the bound: cancelled */
	T_CHECK(rook_now() - t0 >= bound);
	char c;
	T_CHECK_EQ(rook_recv(fd, &c, 1, 0), 0); /* its fn closed the stream */
	T_CHECK_EQ(rook_close(fd), 0);
	T_CHECK_EQ(atomic_load(&drain_count[0]), 0);
	return 0;
}

Test(serve_edges, drain_bound_cancels_connections_that_outlive_it, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, drain_bound_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* DESIGN.md's six fields assigned one by one over stack garbage: without
 * ROOK_SERVE_DRAIN, drain_ns is not read and the stop cancels at once. */
static int no_drain_flag_main(void *arg)
{
	(void)arg;
	struct srv sv;
	memset(&sv, 0xff, sizeof sv);
	sv.s_o.host = "127.0.0.1";
	sv.s_o.port = 0;
	sv.s_o.backlog = 0;
	sv.s_o.max_conns = 0;
	sv.s_o.flags = 0;
	sv.s_o.bound_port = NULL; /* srv_task sets it */
	sv.s_fn = echo_conn;
	sv.s_arg = drain_count;
	sv.s_port = 0;
	struct rook_task *t;
	int port = srv_start(&sv, &t);
	int fd = connect_pinged(port);
	srv_stop(t); /* returns: the idle connection is cancelled, not waited for */
	char c;
	T_CHECK_EQ(rook_recv(fd, &c, 1, 0), 0);
	T_CHECK_EQ(rook_close(fd), 0);
	return 0;
}

Test(serve_edges, drain_ns_is_not_read_without_its_flag, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, no_drain_flag_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- no IPv6 ------------------------------------------------------------- */

/* On a host without IPv6 (here: a seccomp filter makes socket(AF_INET6)
 * fail with EAFNOSUPPORT) a server on every address listens on 0.0.0.0,
 * and a second one on its port is -EADDRINUSE, as with IPv6: its
 * listeners must not join the first one's SO_REUSEPORT group. */
static _Atomic int v4_active[2];

static int dup_serve(void *arg)
{
	struct rook_serve_opts o = {.host = NULL, .port = (uint16_t)(*(int *)arg)};
	return rook_serve(&o, echo_conn, v4_active);
}

static int no_ipv6_main(void *arg)
{
	(void)arg;
	struct srv sv = {.s_o = {.host = NULL}, .s_fn = echo_conn, .s_arg = v4_active};
	struct rook_task *t;
	int port = srv_start(&sv, &t);
	int fd = connect_pinged(port);
	rook_close(fd);
	int st = 0;
	/* A gross bound: the old code served on for good. */
	T_CHECK_EQ(rook_wait_for(dup_serve, &port, 20 * ROOK_SEC, &st), 0);
	T_CHECK_EQ(st, -EADDRINUSE);
	srv_stop(t);
	return 0;
}

static void no_ipv6_child(void *arg)
{
	(void)arg;
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EAFNOSUPPORT & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		_exit(77);
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	int r = rook_run(&cfg, no_ipv6_main, NULL);
	int n = atomic_load(&t_failures);
	if (n)
		fprintf(stderr, "%d check(s) failed; first: %s\n", n, t_fail_msg);
	_exit(r == 0 && n == 0 ? 0 : 1);
}

Test(serve_edges, without_ipv6_a_second_server_on_the_port_is_eaddrinuse, .timeout = 60)
{
	int status;
	char *err = child_stderr(no_ipv6_child, NULL, &status);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		cr_skip_test("no seccomp filter here (qemu-user?)");
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d, stderr: %s", status,
		  err);
	free(err);
}
