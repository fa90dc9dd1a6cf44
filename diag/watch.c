/* SPDX-License-Identifier: MIT */
/*
 * The registry of running runtimes, rook_dump, the ROOK_DUMP_SIGNAL dumper
 * and the ROOK_STALL_MS watchdog.
 *
 * Signal dumps: the handler only posts a semaphore (async-signal-safe); a
 * detached thread started with the first runtime waits on it and dumps
 * every registered runtime to stderr under the registry lock, which
 * rook_rt_stop also takes (rook__diag_rt_stop) before it tears anything
 * down, so a dump never reads a freed runtime or an unmapped stack.
 *
 * Stall watchdog: one thread per runtime wakes every N/4 ms and reads each
 * worker's heartbeat (d_hb, bumped by worker_poll (sched/worker.c), which a
 * yield and the scheduler's own loop pass) and its current task (a switch
 * from task to task passes no poll). A worker that has run the same task
 * with no heartbeat for N ms is reported once, with the task's backtrace
 * taken on the worker's own thread (ROOK__STALL_SIGNAL, whose handler
 * walks the interrupted frame pointers), and again when either moves (the
 * stall's total). Cost
 * on the workers: one add per scheduling round, watched or not.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#if defined(__SANITIZE_THREAD__)
#include <execinfo.h>
#endif
#include <unistd.h>

#include <rook.h>

#include "diag/diag.h"
#include "diag/sym.h"
#include "diag/tdiag.h"
#include "sched/alloc.h"
#include "sched/cpus.h"
#include "sched/runtime.h"
#include "sched/stack.h"
#include "sched/task.h"
#include "sched/worker.h"

#define ROOK__STALL_SIGNAL (SIGRTMAX - 1)

struct rtdiag {
	struct rtdiag *d_next;
	struct rook_rt *d_rt;
	/* watchdog */
	bool d_watching;
	unsigned d_stall_ms;
	pthread_t d_thread;
	pthread_mutex_t d_lock;
	pthread_cond_t d_cv;
	bool d_stop;
	uint64_t *d_last_hb, *d_since;
	struct rook_task **d_task; /* the task seen running since d_since */
	bool *d_stalled, *d_timers_late;
	_Atomic uint64_t d_longest_ns; /* longest stall seen (a lower bound) */
	struct rook__serve *d_serve;   /* ROOK_STATS_SOCKET */
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rtdiag *reg_head;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- rook_dump --------------------------------------------------------- */

static long dump_all(struct rook__out *o)
{
	long n = 0;
	pthread_mutex_lock(&reg_lock);
	for (struct rtdiag *d = reg_head; d; d = d->d_next)
		n += rook__dump_rt(d->d_rt, o);
	pthread_mutex_unlock(&reg_lock);
	return n;
}

int rook_dump(int fd)
{
	if (fd < 0)
		return -EBADF;
	struct rook__out *o = rook__alloc(sizeof(*o));
	if (!o)
		return -ENOMEM;
	rook__out_init(o, fd);
	struct rook__worker *w = rook__worker_self();
	/* A task's own runtime cannot stop under it: no registry lock (a
	 * signal dump may hold it, and would wait for nothing). */
	long n = w ? rook__dump_rt(w->w_rt, o) : dump_all(o);
	rook__out_flush(o);
	int r = o->o_err ? o->o_err : (int)(n > 0x7fffffff ? 0x7fffffff : n);
	rook__free(o);
	return r;
}

/* ---- ROOK_DUMP_SIGNAL ---------------------------------------------------- */

static sem_t dump_sem;
static bool dump_installed; /* under reg_lock */

static void dump_handler(int sig)
{
	(void)sig;
	int e = errno;
	sem_post(&dump_sem);
	errno = e;
}

static void *dump_main(void *arg)
{
	(void)arg;
	(void)pthread_setname_np(pthread_self(), "rook-dump");
	for (;;) {
		while (sem_wait(&dump_sem) != 0)
			;
		(void)rook_dump(STDERR_FILENO);
	}
	return NULL;
}

static int dump_signal_parse(const char *s)
{
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	if (strcmp(s, "QUIT") == 0)
		return SIGQUIT;
	if (strcmp(s, "USR1") == 0)
		return SIGUSR1;
	if (strcmp(s, "USR2") == 0)
		return SIGUSR2;
	return 0;
}

/* reg_lock held. Checked at every runtime start, not once per process: a
 * process may set the variable after an earlier runtime ran. */
static void dump_signal_setup(void)
{
	const char *env = getenv("ROOK_DUMP_SIGNAL");
	int sig = env && *env ? dump_signal_parse(env) : 0;
	static bool bad_said; /* under reg_lock */
	if (env && *env && !sig && !bad_said) {
		fprintf(stderr,
			"rook: ROOK_DUMP_SIGNAL=%s is not one of QUIT, USR1, USR2; no dumps\n",
			env);
		bad_said = true;
	}
	if (!sig || dump_installed)
		return;
	if (sem_init(&dump_sem, 0, 0) != 0)
		return;
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rook__cpus_attr(&attr);
	int r = pthread_create(&th, &attr, dump_main, NULL);
	pthread_attr_destroy(&attr);
	if (r != 0)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = dump_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
	dump_installed = true;
}

/* ---- stall backtraces ---------------------------------------------------- */

/* One request at a time (bt_lock): the worker it targets fills it in. */
struct bt_req {
	struct rook__worker *b_w;
	uintptr_t b_pcs[ROOK__BT_MAX];
	int b_n;
	uintptr_t b_entry_ret; /* the return address if pc is a function's first byte */
	_Atomic int b_done;
};
static pthread_mutex_t bt_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct bt_req *) bt_pending;
static pthread_once_t bt_once = PTHREAD_ONCE_INIT;

/* The return address of a function interrupted before its frame is set up
 * (or after it was torn down): the frame-pointer chain would skip its
 * caller. 0 when pc is inside a body, where the chain is right. */
ROOK__DIAG_NOSAN __attribute__((unused)) static uintptr_t prologue_ret(const ucontext_t *uc,
								       uintptr_t lo, uintptr_t hi)
{
#if defined(__x86_64__)
	const uint8_t *ip = (const uint8_t *)uc->uc_mcontext.gregs[REG_RIP];
	uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
	size_t slot = 9; /* none */
	if ((ip[0] == 0xf3 && ip[1] == 0x0f && ip[2] == 0x1e && ip[3] == 0xfa) || ip[0] == 0x55 ||
	    ip[0] == 0xc3)
		slot = 0; /* endbr64, push %rbp, ret: the return address is at sp */
	else if (ip[0] == 0x48 && ip[1] == 0x89 && ip[2] == 0xe5)
		slot = 1; /* mov %rsp,%rbp: just above the pushed rbp */
	if (slot == 9 || sp < lo || sp + 16 > hi)
		return 0;
	return ((const uintptr_t *)sp)[slot];
#elif defined(__aarch64__)
	uint32_t insn = *(const uint32_t *)uc->uc_mcontext.pc;
	(void)lo;
	(void)hi;
	/* stp x29, x30, [sp, #-n]!: the frame record is not stored yet. */
	return (insn & 0xffc07fffu) == 0xa9807bfdu ? (uintptr_t)uc->uc_mcontext.regs[30] : 0;
#endif
}

ROOK__DIAG_NOSAN static void bt_handler(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	(void)si;
	/* Pairs with the release store in stall_backtrace. */
	struct bt_req *r = atomic_load_explicit(&bt_pending, memory_order_acquire);
	struct rook__worker *w = rook__tls_worker;
	if (!r || !w || r->b_w != w)
		return;
	struct rook_task *t = w->w_current;
	struct rook__stack *st = t ? t->t_stack : NULL;
	ucontext_t *uc = ucv;
	int n = 0;
#if defined(__SANITIZE_THREAD__)
	/* TSan defers an async signal and runs this handler later, from its
	 * interceptors (here: the spinning task's next clock_gettime), with
	 * the context saved on arrival, whose pc and fp lie in TSan's runtime
	 * (no frame pointers), so the walk below ends at once. The handler
	 * then runs synchronously on the task's stack, where the unwinder
	 * (eh_frame, async-signal-safety moot) reaches the task's frames. */
	(void)uc;
	/* Into a local array, copied by plain stores: TSan intercepts
	 * backtrace's writes but cannot see this uninstrumented function's
	 * acquire of bt_pending, and would report a race on r. */
	void *pcs[ROOK__BT_MAX];
	int saved_errno = errno;
	if (st)
		n = backtrace(pcs, ROOK__BT_MAX);
	errno = saved_errno;
	for (int i = 0; i < n; i++)
		__atomic_store_n(&r->b_pcs[i], (uintptr_t)pcs[i], __ATOMIC_RELAXED);
#else
	if (st) {
#if defined(__x86_64__)
		uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
		uintptr_t fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
		uintptr_t pc = (uintptr_t)uc->uc_mcontext.pc;
		uintptr_t fp = (uintptr_t)uc->uc_mcontext.regs[29];
#endif
		uintptr_t lo = (uintptr_t)st->s_lo, hi = (uintptr_t)st->s_top;
		uintptr_t ret = prologue_ret(uc, lo, hi);
		/* Kept for stall_backtrace, which can tell a function's first
		 * byte (a tail jump there, like rook_now's, is no prologue). */
		if (!ret) {
#if defined(__x86_64__)
			uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
			r->b_entry_ret = sp >= lo && sp + 8 <= hi ? *(const uintptr_t *)sp : 0;
#elif defined(__aarch64__)
			r->b_entry_ret = (uintptr_t)uc->uc_mcontext.regs[30];
#endif
		}
		r->b_pcs[0] = pc;
		n = ret ? 1 : 0;
		if (ret)
			r->b_pcs[n++] = ret;
		n += rook__diag_walk(n ? 0 : pc, fp, lo, hi, r->b_pcs + n, ROOK__BT_MAX - n);
	}
#endif
	r->b_n = n;
	/* Pairs with the acquire load in stall_backtrace. */
	atomic_store_explicit(&r->b_done, 1, memory_order_release);
}

static void bt_install(void)
{
#if defined(__SANITIZE_THREAD__)
	/* The first backtrace loads libgcc_s (malloc): not in the handler. */
	void *pc[2];
	backtrace(pc, 2);
#endif
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = bt_handler;
	sa.sa_flags = SA_RESTART | SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(ROOK__STALL_SIGNAL, &sa, NULL);
}

/* The running task's backtrace on w, taken on w's thread (up to 200 ms). */
static int stall_backtrace(struct rook__worker *w, uintptr_t *pcs)
{
	/* Static, under bt_lock: a handler that runs later than both waits
	 * below writes here, never into a dead frame (at worst it garbles the
	 * next request's backtrace). */
	static struct bt_req r;
	int n = 0;
	pthread_mutex_lock(&bt_lock);
	r.b_w = w;
	r.b_n = 0;
	r.b_entry_ret = 0;
	atomic_store_explicit(&r.b_done, 0, memory_order_relaxed);
	atomic_store_explicit(&bt_pending, &r, memory_order_release);
	if (pthread_kill(w->w_thread, ROOK__STALL_SIGNAL) == 0) {
		struct timespec nap = {0, 1000000};
		for (int i = 0; i < 200; i++) {
			if (atomic_load_explicit(&r.b_done, memory_order_acquire)) {
				n = r.b_n;
				memcpy(pcs, r.b_pcs, (size_t)n * sizeof(*pcs));
				/* Stopped on a function's first byte: its caller is
				 * the return address, which the frame chain skips. */
				if (r.b_entry_ret && n >= 1 && n < ROOK__BT_MAX &&
				    rook__sym_is_start(pcs[0])) {
					memmove(pcs + 2, pcs + 1, (size_t)(n - 1) * sizeof(*pcs));
					pcs[1] = r.b_entry_ret;
					n++;
				}
				break;
			}
			nanosleep(&nap, NULL);
		}
	}
	atomic_store_explicit(&bt_pending, NULL, memory_order_release);
	/* A late handler finds no request; one that already read it may
	 * still write r: give it time before the next request reuses r. */
	if (!atomic_load_explicit(&r.b_done, memory_order_acquire)) {
		struct timespec nap = {0, 1000000};
		for (int i = 0; i < 50 && !atomic_load_explicit(&r.b_done, memory_order_acquire);
		     i++)
			nanosleep(&nap, NULL);
	}
	pthread_mutex_unlock(&bt_lock);
	return n;
}

/* ---- the watchdog -------------------------------------------------------- */

ROOK__DIAG_NOSAN static void task_ident(struct rook_task *t, uint64_t *id, char *name)
{
	*id = 0;
	name[0] = '\0';
	struct rook__stack *st = t ? __atomic_load_n(&t->t_stack, __ATOMIC_RELAXED) : NULL;
	if (!st)
		return;
	*id = st->s_task_id;
	int i = 0;
	for (; i < ROOK__NAME_MAX - 1; i++) {
		char c = __atomic_load_n(&st->s_diag.d_name[i], __ATOMIC_RELAXED);
		if (!c)
			break;
		name[i] = (c >= 0x20 && c < 0x7f && c != '"') ? c : '?';
	}
	name[i] = '\0';
}

ROOK__DIAG_NOSAN static struct rook_task *worker_current(struct rook__worker *w)
{
	return __atomic_load_n(&w->w_current, __ATOMIC_RELAXED);
}

static void stall_report(struct rtdiag *d, unsigned i, struct rook_task *t, uint64_t ns)
{
	struct rook__out *o = rook__alloc(sizeof(*o));
	uintptr_t *pcs = rook__alloc(ROOK__BT_MAX * sizeof(*pcs));
	if (!o || !pcs)
		goto out;
	rook__out_init(o, STDERR_FILENO);
	uint64_t id;
	char name[ROOK__NAME_MAX];
	task_ident(t, &id, name);
	int n = stall_backtrace(&d->d_rt->rt_workers[i], pcs);
	rook__out_printf(o,
			 "rook: stall: worker %u has run task %llu \"%s\" for %llu ms without a "
			 "scheduling point\n",
			 i, (unsigned long long)id, name, (unsigned long long)(ns / 1000000u));
	rook__out_backtrace(o, pcs, n, true);
	rook__out_flush(o);
out:
	rook__free(pcs);
	rook__free(o);
}

static void stall_check(struct rtdiag *d, unsigned i, uint64_t now)
{
	struct rook__worker *w = &d->d_rt->rt_workers[i];
	uint64_t hb = atomic_load_explicit(&w->w_ds.d_hb, memory_order_relaxed);
	struct rook_task *t = worker_current(w);
	uint64_t limit = (uint64_t)d->d_stall_ms * 1000000u;
	/* A task that hands its worker straight to another one (a finishing
	 * child to its joiner) passes no poll: a new task ends a stall too. */
	if (hb != d->d_last_hb[i] || !t || t != d->d_task[i]) {
		if (d->d_stalled[i]) {
			uint64_t ns = now - d->d_since[i];
			fprintf(stderr, "rook: stall ended: worker %u, %llu ms in all\n", i,
				(unsigned long long)(ns / 1000000u));
			if (ns > atomic_load_explicit(&d->d_longest_ns, memory_order_relaxed))
				atomic_store_explicit(&d->d_longest_ns, ns, memory_order_relaxed);
		}
		d->d_stalled[i] = false;
		d->d_last_hb[i] = hb;
		d->d_task[i] = t;
		d->d_since[i] = now;
	} else if (!d->d_stalled[i] && now - d->d_since[i] >= limit) {
		d->d_stalled[i] = true;
		stall_report(d, i, t, now - d->d_since[i]);
	}
	/* A timer heap nobody has looked at for N ms (its worker stalled and
	 * no idle worker took its timers over). */
	uint64_t next = atomic_load_explicit(&w->w_timers.h_next, memory_order_relaxed);
	bool late = next != UINT64_MAX && rook__now() > next + limit;
	if (late && !d->d_timers_late[i])
		fprintf(stderr, "rook: stall: the timers of worker %u are %llu ms overdue\n", i,
			(unsigned long long)((rook__now() - next) / 1000000u));
	d->d_timers_late[i] = late;
}

static void *watch_main(void *arg)
{
	struct rtdiag *d = arg;
	(void)pthread_setname_np(pthread_self(), "rook-watch");
	unsigned period_ms = d->d_stall_ms / 4 ? d->d_stall_ms / 4 : 1;
	pthread_mutex_lock(&d->d_lock);
	while (!d->d_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)period_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&d->d_cv, &d->d_lock, &ts);
		if (d->d_stop)
			break;
		pthread_mutex_unlock(&d->d_lock);
		uint64_t now = mono_ns();
		for (unsigned i = 0; i < d->d_rt->rt_nworkers; i++)
			stall_check(d, i, now);
		pthread_mutex_lock(&d->d_lock);
	}
	pthread_mutex_unlock(&d->d_lock);
	return NULL;
}

/* An hour: a longer run without a scheduling point is no stall to watch. */
#define STALL_MS_MAX 3600000

static void watch_start(struct rtdiag *d)
{
	const char *env = getenv("ROOK_STALL_MS");
	char *end = NULL;
	errno = 0;
	long ms = env && *env ? strtol(env, &end, 10) : 0;
	if (env && *env && (ms <= 0 || ms > STALL_MS_MAX || *end || errno)) {
		fprintf(stderr,
			"rook: ROOK_STALL_MS=%s is not a number of ms in 1..%d; no stall watch\n",
			env, STALL_MS_MAX);
		return;
	}
	if (ms <= 0)
		return;
	unsigned n = d->d_rt->rt_nworkers;
	d->d_stall_ms = (unsigned)ms;
	d->d_last_hb = rook__calloc(n, sizeof(uint64_t));
	d->d_since = rook__calloc(n, sizeof(uint64_t));
	d->d_task = rook__calloc(n, sizeof(*d->d_task));
	d->d_stalled = rook__calloc(n, sizeof(bool));
	d->d_timers_late = rook__calloc(n, sizeof(bool));
	if (!d->d_last_hb || !d->d_since || !d->d_task || !d->d_stalled || !d->d_timers_late)
		return;
	pthread_once(&bt_once, bt_install);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->d_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&d->d_lock, NULL);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	rook__cpus_attr(&attr);
	d->d_watching = pthread_create(&d->d_thread, &attr, watch_main, d) == 0;
	pthread_attr_destroy(&attr);
	if (!d->d_watching) {
		pthread_cond_destroy(&d->d_cv);
		pthread_mutex_destroy(&d->d_lock);
	}
}

static void watch_stop(struct rtdiag *d)
{
	if (d->d_watching) {
		pthread_mutex_lock(&d->d_lock);
		d->d_stop = true;
		pthread_cond_signal(&d->d_cv);
		pthread_mutex_unlock(&d->d_lock);
		pthread_join(d->d_thread, NULL);
		pthread_cond_destroy(&d->d_cv);
		pthread_mutex_destroy(&d->d_lock);
		/* A stall that ended since the last look still gets its end line. */
		uint64_t now = mono_ns();
		for (unsigned i = 0; i < d->d_rt->rt_nworkers; i++)
			if (d->d_stalled[i])
				stall_check(d, i, now);
	}
	rook__free(d->d_last_hb);
	rook__free(d->d_since);
	rook__free(d->d_task);
	rook__free(d->d_stalled);
	rook__free(d->d_timers_late);
}

/* ---- runtime hooks ------------------------------------------------------- */

void rook__diag_rt_start(struct rook_rt *rt)
{
	struct rtdiag *d = rook__calloc(1, sizeof(*d));
	if (!d)
		return; /* diagnostics are best effort: the runtime runs on */
	d->d_rt = rt;
	watch_start(d);
	d->d_serve = rook__serve_start(rt);
	rt->rt_diag = d;
	pthread_mutex_lock(&reg_lock);
	dump_signal_setup();
	d->d_next = reg_head;
	reg_head = d;
	pthread_mutex_unlock(&reg_lock);
}

void rook__diag_rt_stop(struct rook_rt *rt)
{
	struct rtdiag *d = rt->rt_diag;
	if (!d)
		return;
	pthread_mutex_lock(&reg_lock);
	for (struct rtdiag **p = &reg_head; *p; p = &(*p)->d_next)
		if (*p == d) {
			*p = d->d_next;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
	rook__serve_stop(d->d_serve);
	watch_stop(d);
	rt->rt_diag = NULL;
	rook__free(d);
}

int rook__diag_with_rt(int (*fn)(struct rook_rt *rt, void *ctx), void *ctx)
{
	struct rook__worker *w = rook__worker_self();
	if (w)
		return fn(w->w_rt, ctx);
	int r = -ESRCH;
	pthread_mutex_lock(&reg_lock);
	if (reg_head && !reg_head->d_next)
		r = fn(reg_head->d_rt, ctx);
	pthread_mutex_unlock(&reg_lock);
	return r;
}

uint64_t rook__diag_longest_ns(struct rook_rt *rt)
{
	struct rtdiag *d = rt->rt_diag;
	return d ? atomic_load_explicit(&d->d_longest_ns, memory_order_relaxed) : 0;
}
