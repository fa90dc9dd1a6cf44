/* SPDX-License-Identifier: MIT */
/*
 * Subprocesses: rook_process_spawn / wait / kill / free.
 *
 * Children are started with posix_spawnp, which glibc implements with
 * clone(CLONE_VM | CLONE_VFORK): never a fork of the multi-threaded
 * runtime, and an exec failure (a missing program: ENOENT) comes back as
 * spawn's error, the failed child already reaped by glibc. Every fd the
 * runtime opens is close-on-exec; the child gets only its three stdio fds,
 * an empty signal mask, and the default action for the signals
 * rook_signal_block blocked (and SIGPIPE, SIGXFSZ, as Python does).
 *
 * Waiting polls a pidfd (Linux 5.3) with rook_poll, so it works on either
 * IO backend; without pidfd_open, waitpid(WNOHANG) is retried after
 * growing sleeps. Only this file reaps the pid, under p_lock, so kill never
 * signals a reaped (reusable) pid. A handle freed while its child runs is
 * handed to a detached reaper thread: no zombie is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc/proc.h"
#include "rook.h"
#include "sched/alloc.h"
#include "sched/cpus.h"
#include "sched/wait.h"

extern char **environ;

struct rook_process {
	pid_t p_pid;
	int p_pidfd;    /* -1: no pidfd (kernel before 5.3, or forced off) */
	int p_fd[3];    /* our pipe ends, -1 where not a pipe */
	dev_t p_dev[3]; /* which pipe p_fd[i] named, to skip one closed early */
	ino_t p_ino[3];
	pthread_mutex_t p_lock; /* p_reaped, p_status, and reaping itself */
	bool p_reaped;
	bool p_lost; /* reaped elsewhere: its status is gone (-ECHILD) */
	int p_status;
};

/* 1 pidfd works, 0 not, -1 not probed. ROOK_PROC_NO_PIDFD=1 (tests)
 * forces the waitpid fallback. */
static _Atomic int pidfd_ok = -1;

static int pidfd_for(pid_t pid)
{
	int ok = atomic_load_explicit(&pidfd_ok, memory_order_relaxed);
	if (ok == 0)
		return -1;
	if (ok < 0) {
		const char *e = getenv("ROOK_PROC_NO_PIDFD");
		if (e && *e == '1') {
			atomic_store_explicit(&pidfd_ok, 0, memory_order_relaxed);
			return -1;
		}
	}
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		/* pidfd_open's fd is close-on-exec (pidfd_open(2)). */
		atomic_store_explicit(&pidfd_ok, 1, memory_order_relaxed);
		return fd;
	}
	if (errno != ENOSYS)
		return -1; /* e.g. EMFILE: this child falls back, others may not */
#endif
	atomic_store_explicit(&pidfd_ok, 0, memory_order_relaxed);
	return -1;
}

static int check_opts(struct rook_process **p, const struct rook_process_opts *o)
{
	if (!p || !o || !o->argv || !o->argv[0])
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		int m = o->stdio[i];
		if (m < ROOK_STDIO_INHERIT || m > ROOK_STDIO_FD)
			return -EINVAL;
		if (m == ROOK_STDIO_FD && fcntl(o->stdio_fd[i], F_GETFD) < 0)
			return -EBADF;
	}
	return 0;
}

/* The fds the child's stdio is dup2'd from. Each is a fresh close-on-exec
 * fd >= 3, so no dup2 of the file actions overwrites another's source. */
struct spawn_fds {
	int sf_src[3]; /* -1: inherit or /dev/null */
};

static int stdio_prepare(struct rook_process *p, const struct rook_process_opts *o,
			 struct spawn_fds *sf)
{
	for (int i = 0; i < 3; i++) {
		sf->sf_src[i] = -1;
		if (o->stdio[i] == ROOK_STDIO_FD) {
			sf->sf_src[i] = fcntl(o->stdio_fd[i], F_DUPFD_CLOEXEC, 3);
			if (sf->sf_src[i] < 0)
				return -errno;
		} else if (o->stdio[i] == ROOK_STDIO_PIPE) {
			int pp[2];
			if (pipe2(pp, O_CLOEXEC))
				return -errno;
			int child = i == 0 ? pp[0] : pp[1], ours = i == 0 ? pp[1] : pp[0];
			/* Our end's identity first: pipes_close closes only a
			 * number that still names it, on every error below too. */
			struct stat st;
			if (fstat(ours, &st)) {
				int e = errno;
				close(pp[0]);
				close(pp[1]);
				return -e;
			}
			p->p_fd[i] = ours;
			p->p_dev[i] = st.st_dev;
			p->p_ino[i] = st.st_ino;
			sf->sf_src[i] = fcntl(child, F_DUPFD_CLOEXEC, 3);
			int e = errno;
			close(child);
			if (sf->sf_src[i] < 0)
				return -e;
			int fl = fcntl(ours, F_GETFL);
			if (fl < 0 || fcntl(ours, F_SETFL, fl | O_NONBLOCK))
				return -errno;
		}
	}
	return 0;
}

static int actions_build(posix_spawn_file_actions_t *fa, const struct rook_process_opts *o,
			 const struct spawn_fds *sf)
{
	int r = 0;
	for (int i = 0; i < 3 && !r; i++) {
		if (o->stdio[i] == ROOK_STDIO_NULL)
			r = posix_spawn_file_actions_addopen(fa, i, "/dev/null",
							     i == 0 ? O_RDONLY : O_WRONLY, 0);
		else if (sf->sf_src[i] >= 0)
			r = posix_spawn_file_actions_adddup2(fa, sf->sf_src[i], i);
	}
	if (!r && o->cwd)
		r = posix_spawn_file_actions_addchdir_np(fa, o->cwd); /* glibc 2.29 */
	return -r;
}

static int attr_build(posix_spawnattr_t *at)
{
	sigset_t none, dfl;
	sigemptyset(&none);
	rook__signal_blocked(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGXFSZ);
	int r = posix_spawnattr_setsigmask(at, &none);
	if (!r)
		r = posix_spawnattr_setsigdefault(at, &dfl);
	if (!r)
		r = posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	return -r;
}

static void pipes_close(struct rook_process *p)
{
	for (int i = 0; i < 3; i++) {
		if (p->p_fd[i] < 0)
			continue;
		/* The caller may have closed it already (EOF for the child's
		 * stdin): close the number only if it still names our pipe. */
		struct stat st;
		if (fstat(p->p_fd[i], &st) == 0 && st.st_dev == p->p_dev[i] &&
		    st.st_ino == p->p_ino[i])
			close(p->p_fd[i]);
		p->p_fd[i] = -1;
	}
}

static void unreaped_sweep(void);

int rook_process_spawn(struct rook_process **pp, const struct rook_process_opts *o)
{
	int r = check_opts(pp, o);
	if (r)
		return r;
	unreaped_sweep();
	struct rook_process *p = rook__alloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = (struct rook_process){.p_pidfd = -1, .p_fd = {-1, -1, -1}};
	pthread_mutex_init(&p->p_lock, NULL);
	struct spawn_fds sf = {{-1, -1, -1}};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	r = stdio_prepare(p, o, &sf);
	if (r)
		goto out_fds;
	if ((r = -posix_spawn_file_actions_init(&fa)))
		goto out_fds;
	if ((r = -posix_spawnattr_init(&at)))
		goto out_fa;
	r = actions_build(&fa, o, &sf);
	if (!r)
		r = attr_build(&at);
	char *const *envp = o->envp ? (char *const *)o->envp : environ;
	if (!r) {
		/* The child inherits this thread's affinity: not one pinned core. */
		cpu_set_t pinned;
		bool unpinned = rook__cpus_unpin(&pinned);
		r = -posix_spawnp(&p->p_pid, o->argv[0], &fa, &at, (char *const *)o->argv, envp);
		if (unpinned)
			rook__cpus_restore(&pinned);
	}
	posix_spawnattr_destroy(&at);
out_fa:
	posix_spawn_file_actions_destroy(&fa);
out_fds:
	for (int i = 0; i < 3; i++)
		if (sf.sf_src[i] >= 0)
			close(sf.sf_src[i]);
	if (r) {
		pipes_close(p);
		pthread_mutex_destroy(&p->p_lock);
		rook__free(p);
		return r;
	}
	p->p_pidfd = pidfd_for(p->p_pid);
	*pp = p;
	return 0;
}

int rook_process_fd(const struct rook_process *p, int which)
{
	if (!p || which < 0 || which > 2)
		return -EINVAL;
	return p->p_fd[which] >= 0 ? p->p_fd[which] : -EBADF;
}

int rook_process_pid(const struct rook_process *p)
{
	return p ? p->p_pid : -EINVAL;
}

/* Reap if it has exited: 1 reaped (now or before), 0 running, -errno. */
static int try_reap(struct rook_process *p, int *wstatus)
{
	int r = 1;
	pthread_mutex_lock(&p->p_lock);
	if (!p->p_reaped) {
		int st;
		pid_t got = waitpid(p->p_pid, &st, WNOHANG);
		if (got == p->p_pid) {
			p->p_reaped = true;
			p->p_status = st;
		} else if (got < 0) {
			/* ECHILD: reaped behind our back (SIGCHLD set to SIG_IGN);
			 * the pid is no longer ours to signal. */
			r = -errno;
			p->p_reaped = p->p_lost = r == -ECHILD;
		} else {
			r = 0;
		}
	} else if (p->p_lost) {
		r = -ECHILD; /* every wait after it too: no status to give */
	}
	if (r == 1 && wstatus)
		*wstatus = p->p_status;
	pthread_mutex_unlock(&p->p_lock);
	return r;
}

static void nap_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / ROOK_SEC), (long)(ns % ROOK_SEC)};
	while (nanosleep(&ts, &ts) && errno == EINTR) {
	}
}

int rook_process_wait(struct rook_process *p, int *wstatus)
{
	if (!p)
		return -EINVAL;
	bool task = rook_self() != NULL;
	int r = task ? rook__wait_check() : 0;
	uint64_t nap = 100 * ROOK_USEC;
	while (r == 0) {
		r = try_reap(p, wstatus);
		if (r)
			break;
		if (p->p_pidfd >= 0) {
			/* Readable once the child has exited (pidfd_open(2)). */
			if (task) {
				r = rook_poll(p->p_pidfd, POLLIN);
			} else {
				struct pollfd pf = {.fd = p->p_pidfd, .events = POLLIN};
				r = poll(&pf, 1, -1) < 0 && errno != EINTR ? -errno : 0;
			}
		} else {
			if (task)
				r = rook_sleep(nap);
			else
				nap_ns(nap);
			nap = nap < 20 * ROOK_MSEC ? nap * 2 : nap;
		}
		r = r > 0 ? 0 : r;
	}
	return r < 0 ? r : 0;
}

int rook_process_kill(struct rook_process *p, int sig)
{
	if (!p || sig < 0 || sig >= _NSIG)
		return -EINVAL;
	int r = 0;
	pthread_mutex_lock(&p->p_lock);
	if (p->p_reaped)
		r = -ESRCH;
#ifdef SYS_pidfd_send_signal
	else if (p->p_pidfd >= 0)
		r = syscall(SYS_pidfd_send_signal, p->p_pidfd, sig, NULL, 0) ? -errno : 0;
#endif
	else
		r = kill(p->p_pid, sig) ? -errno : 0; /* unreaped: the pid is still ours */
	pthread_mutex_unlock(&p->p_lock);
	return r;
}

struct orphan {
	pid_t o_pid;
	int o_pidfd;
	struct orphan *o_next; /* on unreaped, while no reaper could start */
};

/* Children whose reaper thread could not start (out of threads): swept
 * with WNOHANG by every later spawn and free. */
static pthread_mutex_t unreaped_lock = PTHREAD_MUTEX_INITIALIZER;
static struct orphan *unreaped;

static void unreaped_sweep(void)
{
	pthread_mutex_lock(&unreaped_lock);
	for (struct orphan **pp = &unreaped, *o; (o = *pp);) {
		/* By the pidfd where there is one: with SIGCHLD ignored the
		 * kernel reaps, and the pid may already name a new child. */
		bool gone;
		if (o->o_pidfd >= 0) {
			siginfo_t si = {0};
			int r = waitid(P_PIDFD, (id_t)o->o_pidfd, &si, WEXITED | WNOHANG);
			gone = (r == 0 && si.si_pid != 0) || (r < 0 && errno == ECHILD);
		} else {
			pid_t got = waitpid(o->o_pid, NULL, WNOHANG);
			gone = got == o->o_pid || (got < 0 && errno == ECHILD);
		}
		if (gone) {
			*pp = o->o_next;
			if (o->o_pidfd >= 0)
				close(o->o_pidfd);
			free(o);
		} else {
			pp = &o->o_next;
		}
	}
	pthread_mutex_unlock(&unreaped_lock);
}

static void *reaper_main(void *arg)
{
	struct orphan *o = arg;
	(void)pthread_setname_np(pthread_self(), "rook-reaper");
	while (waitpid(o->o_pid, NULL, 0) < 0 && errno == EINTR) {
	}
	if (o->o_pidfd >= 0)
		close(o->o_pidfd);
	free(o);
	return NULL;
}

static int reaper_create(pthread_t *t, struct orphan *o, size_t stack)
{
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (stack)
		pthread_attr_setstacksize(&a, stack);
	rook__cpus_attr(&a);
	int r = pthread_create(t, &a, reaper_main, o);
	pthread_attr_destroy(&a);
	return r;
}

/* A reaper thread for a child still running. It blocks every signal, so it
 * never takes one meant for rook_signal_wait. Without a thread (a small
 * stack refused, as glibc does when static TLS needs more; then no thread
 * at all) the child waits on the unreaped list instead. */
static void reaper_start(pid_t pid, int pidfd)
{
	struct orphan *o = malloc(sizeof(*o));
	if (!o) {
		/* Not even that: the child stays a zombie until we exit. */
		if (pidfd >= 0)
			close(pidfd);
		return;
	}
	*o = (struct orphan){pid, pidfd, NULL};
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	int r = reaper_create(&t, o, 64 * 1024);
	if (r)
		r = reaper_create(&t, o, 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		pthread_mutex_lock(&unreaped_lock);
		o->o_next = unreaped;
		unreaped = o;
		pthread_mutex_unlock(&unreaped_lock);
	}
}

void rook_process_free(struct rook_process *p)
{
	if (!p)
		return;
	pipes_close(p);
	unreaped_sweep();
	if (try_reap(p, NULL) == 0) {
		reaper_start(p->p_pid, p->p_pidfd);
		p->p_pidfd = -1; /* the reaper's now */
	}
	if (p->p_pidfd >= 0)
		close(p->p_pidfd);
	pthread_mutex_destroy(&p->p_lock);
	rook__free(p);
}
