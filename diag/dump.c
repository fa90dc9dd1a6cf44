/* SPDX-License-Identifier: MIT */
/*
 * Task names and task dumps. A dump walks the type-stable task pool (every
 * slot ever allocated, sched/task.c) and lists the live tasks of one
 * runtime with their state; a suspended task's backtrace comes from its
 * saved context (sched/arch/switch_*.S: the saved frame holds the frame
 * pointer and the return address) along its frame-pointer chain, which is
 * why the library is built with -fno-omit-frame-pointer. Everything read
 * from other tasks is racy by nature (a task may resume while we look):
 * each read is bounded and checked (addresses inside the task's own stack,
 * a climbing chain), so a dump can show a stale frame but never faults.
 * Task stacks stay mapped until the runtime stops, and a runtime does not
 * stop during a dump (the registry lock, watch.c; or the dumping task
 * itself belongs to it).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diag/diag.h"
#include "diag/sym.h"
#include "diag/tdiag.h"
#include "sched/alloc.h"
#include "sched/runtime.h"
#include "sched/stack.h"
#include "sched/task.h"
#include "sched/worker.h"

_Thread_local struct rook__dcall rook__dcall __attribute__((tls_model("initial-exec")));

int rook_task_set_name(const char *name)
{
	struct rook__worker *w = rook__worker_self();
	struct rook_task *t = w ? w->w_current : NULL;
	if (!t)
		return -EPERM;
	if (!name)
		return -EINVAL;
	char *d = t->t_stack->s_diag.d_name;
	size_t n = strnlen(name, ROOK__NAME_MAX - 1);
	/* Readers copy byte by byte and stop at a NUL: terminate first so a
	 * dump racing with a rename sees a short name, never an unterminated
	 * one. */
	d[n] = '\0';
	memcpy(d, name, n);
	return 0;
}

/* ---- output -------------------------------------------------------------- */

/* A reader that takes nothing for so long loses the rest of the report:
 * a dump holds the registry lock, and rook_rt_stop waits for it. */
#define OUT_STALL_MS 1000

enum { OUT_PIPE = 1, OUT_SOCKET = 2 }; /* o_stream */

void rook__out_init(struct rook__out *o, int fd)
{
	struct stat st;
	o->o_fd = fd;
	o->o_stream = 0;
	/* A read-only end (a pipe's, a FIFO's) never polls writable: plain
	 * write(2) then gives its -EBADF at once. */
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_ACCMODE) != O_RDONLY && fstat(fd, &st) == 0)
		o->o_stream = S_ISSOCK(st.st_mode)   ? OUT_SOCKET
			      : S_ISFIFO(st.st_mode) ? OUT_PIPE
						     : 0;
	o->o_err = 0;
	o->o_n = 0;
	o->o_total = 0;
}

/* Wait until fd takes output, at most until the deadline (CLOCK_MONOTONIC
 * ns): 0, or -1 with errno ETIMEDOUT. Signals do not restart the bound. */
static int wait_writable(int fd, uint64_t deadline)
{
	for (;;) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		uint64_t t = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
		if (t >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		int ms = (int)((deadline - t + 999999u) / 1000000u);
		int r = poll(&pf, 1, ms);
		if (r > 0)
			return 0; /* room, or an error the write will return */
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/*
 * One write to a pipe or socket, never blocked for more than OUT_STALL_MS
 * and never raising SIGPIPE (a report to a reader that left is -EPIPE, not
 * death). A socket is tried first (MSG_DONTWAIT, MSG_NOSIGNAL), so that
 * one that cannot take output (listening, not connected) says why at once;
 * a pipe has no per-call flag, so it gets at most PIPE_BUF once poll says
 * there is room (that cannot block), with SIGPIPE held back and taken.
 */
static ssize_t stream_write(int fd, int kind, const char *p, size_t n)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t deadline = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec +
			    (uint64_t)OUT_STALL_MS * 1000000u;
	if (kind == OUT_SOCKET) {
		for (;;) {
			ssize_t k = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (k >= 0 || (errno != EAGAIN && errno != EINTR))
				return k;
			if (errno == EAGAIN && wait_writable(fd, deadline) < 0)
				return -1;
		}
	}
	if (wait_writable(fd, deadline) < 0)
		return -1;
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	bool was_pending = sigismember(&pending, SIGPIPE);
	ssize_t k = write(fd, p, n < PIPE_BUF ? n : PIPE_BUF);
	int e = errno;
	if (k < 0 && e == EPIPE && !was_pending) {
		struct timespec zero = {0, 0};
		(void)sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return k;
}

void rook__out_flush(struct rook__out *o)
{
	size_t off = 0;
	while (off < o->o_n && !o->o_err) {
		ssize_t k = o->o_stream
				? stream_write(o->o_fd, o->o_stream, o->o_buf + off, o->o_n - off)
				: write(o->o_fd, o->o_buf + off, o->o_n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			o->o_err = k < 0 ? -errno : -EIO;
		else
			off += (size_t)k;
	}
	o->o_total += off;
	o->o_n = 0;
}

void rook__out_printf(struct rook__out *o, const char *fmt, ...)
{
	if (sizeof(o->o_buf) - o->o_n < 512)
		rook__out_flush(o);
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(o->o_buf + o->o_n, sizeof(o->o_buf) - o->o_n, fmt, ap);
	va_end(ap);
	if (k > 0)
		o->o_n += (size_t)k < sizeof(o->o_buf) - o->o_n ? (size_t)k
								: sizeof(o->o_buf) - o->o_n - 1;
}

void rook__out_backtrace(struct rook__out *o, const uintptr_t *pcs, int n, bool first_exact)
{
	char line[320];
	for (int i = 0; i < n; i++) {
		uintptr_t pc = pcs[i] - (i == 0 && first_exact ? 0 : 1);
		rook__sym_lookup(pc, line, sizeof(line));
		rook__out_printf(o, "    #%d %s\n", i, line);
	}
}

/* ---- walking saved contexts --------------------------------------------- */

ROOK__DIAG_NOSAN int rook__diag_walk(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi,
				     uintptr_t *out, int max)
{
	int n = 0;
	if (max > 0 && pc)
		out[n++] = pc;
	while (n < max && fp >= lo && fp + 16 <= hi && (fp & 7) == 0) {
		const uintptr_t *f = (const uintptr_t *)fp;
		uintptr_t next = f[0], ret = f[1];
		if (!ret)
			break;
		out[n++] = ret;
		if (next <= fp)
			break;
		fp = next;
	}
	return n;
}

/* One task's state as read (racily) for the dump. */
struct snap {
	uint64_t id;
	char name[ROOK__NAME_MAX];
	int state, park, fd, worker; /* worker: running on it, or -1 */
	uint64_t since_ns;
	const char *call; /* recorded at the call's entry (tdiag.h), or NULL */
	uintptr_t ra;     /* the user's return address from that call */
	uintptr_t pcs[ROOK__BT_MAX];
	int npcs;
};

ROOK__DIAG_NOSAN static void snap_context(struct snap *s, const struct rook__stack *st,
					  const void *sp)
{
	uintptr_t lo = (uintptr_t)st->s_lo, hi = (uintptr_t)st->s_top;
	uintptr_t p = (uintptr_t)sp;
	if (p < lo || p + 96 > hi)
		return;
	const uintptr_t *f = (const uintptr_t *)p;
#if defined(__x86_64__)
	uintptr_t pc = f[7], fp = f[6];
#elif defined(__aarch64__)
	uintptr_t pc = f[11], fp = f[10];
#endif
	s->npcs = rook__diag_walk(pc, fp, lo, hi, s->pcs, ROOK__BT_MAX);
}

ROOK__DIAG_NOSAN static bool snap_task(struct rook_task *t, struct rook_rt *rt, struct snap *s)
{
	if (!(atomic_load_explicit(&t->t_gen, memory_order_acquire) & ROOK__GEN_LIVE) ||
	    t->t_rt != rt)
		return false;
	memset(s, 0, sizeof(*s));
	s->state = atomic_load_explicit(&t->t_state, memory_order_acquire);
	s->park = atomic_load_explicit(&t->t_park, memory_order_acquire);
	s->worker = -1;
	s->fd = -1;
	for (unsigned i = 0; i < rt->rt_nworkers; i++)
		if (__atomic_load_n(&rt->rt_workers[i].w_current, __ATOMIC_RELAXED) == t)
			s->worker = (int)i;
	struct rook__stack *st = __atomic_load_n(&t->t_stack, __ATOMIC_ACQUIRE);
	if (s->state != ROOK__T_STARTED || !st)
		return true;
	s->id = st->s_task_id;
	for (int i = 0; i < ROOK__NAME_MAX - 1; i++) {
		char c = __atomic_load_n(&st->s_diag.d_name[i], __ATOMIC_RELAXED);
		if (!c)
			break;
		s->name[i] = (c >= 0x20 && c < 0x7f && c != '"') ? c : '?';
	}
	s->since_ns = st->s_diag.d_since_ns;
	s->fd = st->s_diag.d_fd;
	s->call = st->s_diag.d_call;
	s->ra = st->s_diag.d_ra;
	if (s->worker < 0 && s->park == ROOK__P_PARKED)
		snap_context(s, st, __atomic_load_n(&t->t_sp, __ATOMIC_ACQUIRE));
	return true;
}

/* The blocking call: going outward from the switch, the outermost public
 * rook_ function before the first frame of other code that comes after
 * one (file-static helpers in between have other names), e.g.
 * "rook_queue_get". */
static const char *blocking_call(const struct snap *s, char *buf, size_t size)
{
	if (s->call) {
		snprintf(buf, size, "%s", s->call);
		return buf;
	}
	const char *call = NULL;
	char line[320];
	for (int i = 0; i < s->npcs; i++) {
		const char *name = rook__sym_lookup(s->pcs[i] - 1, line, sizeof(line));
		bool ours = name && strncmp(name, "rook_", 5) == 0;
		if (!ours && call)
			break;
		if (ours && name[5] != '_')
			call = name;
	}
	snprintf(buf, size, "%s", call ? call : "a rook call");
	return buf;
}

static void print_task(struct rook__out *o, const struct snap *s, uint64_t now)
{
	char idbuf[24] = "-";
	if (s->id)
		snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)s->id);
	rook__out_printf(o, "task %s \"%s\": ", idbuf, s->name);
	if (s->state == ROOK__T_NEW) {
		rook__out_printf(o, "runnable, not started\n");
	} else if (s->state == ROOK__T_DONE) {
		rook__out_printf(o, "done, not joined\n");
	} else if (s->worker >= 0) {
		rook__out_printf(o, "running on worker %d\n", s->worker);
	} else if (s->park == ROOK__P_PARKED) {
		char call[64];
		uint64_t ms = now > s->since_ns ? (now - s->since_ns) / 1000000u : 0;
		rook__out_printf(o, "suspended in %s", blocking_call(s, call, sizeof(call)));
		if (s->fd >= 0)
			rook__out_printf(o, " on fd %d", s->fd);
		rook__out_printf(o, " for %llu ms\n", (unsigned long long)ms);
		if (s->ra) {
			/* The user's call site, recorded explicitly: the walk
			 * below may have lost it to inlining. */
			char line[320];
			rook__sym_lookup(s->ra - 1, line, sizeof(line));
			rook__out_printf(o, "    called from %s\n", line);
		}
		rook__out_backtrace(o, s->pcs, s->npcs, false);
	} else {
		rook__out_printf(o, "runnable\n");
	}
}

struct dump_ctx {
	struct rook_rt *rt;
	struct rook__out *out;
	struct snap snap;
	uint64_t now;
	long n;
};

static void dump_one(struct rook_task *t, void *arg)
{
	struct dump_ctx *c = arg;
	if (!snap_task(t, c->rt, &c->snap))
		return;
	print_task(c->out, &c->snap, c->now);
	c->n++;
}

long rook__dump_rt(struct rook_rt *rt, struct rook__out *o)
{
	struct dump_ctx *c = rook__alloc(sizeof(*c));
	if (!c) {
		o->o_err = -ENOMEM;
		return 0;
	}
	c->rt = rt;
	c->out = o;
	c->now = rook__diag_coarse_ns();
	c->n = 0;
	rook__out_printf(o, "rook: tasks of runtime %p (%u workers)\n", (void *)rt,
			 rt->rt_nworkers);
	rook__task_foreach(dump_one, c);
	long n = c->n;
	rook__out_printf(o, "rook: %ld tasks\n", n);
	rook__free(c);
	return n;
}
