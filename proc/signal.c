/* SPDX-License-Identifier: MIT */
/*
 * rook_signal_block / rook_signal_wait: signals as a blocking call.
 *
 * Signals are process-wide, so is this state. The signals that tasks wait
 * for are blocked in every thread (rook_signal_block before threads start)
 * and read through one signalfd, opened while some task waits and closed
 * (with what it held counted) when the last one leaves. Waiters form one
 * FIFO list under sig_lock. One of them, the leader, polls an epoll set of
 * the signalfd and a kick eventfd with rook_poll (an fd like any other, so
 * it works on either IO backend); the others sleep on their own rook_event.
 * Only the leader (or the last waiter leaving) reads the signalfd: it hands
 * each arrival to the first waiter whose set holds it (setting its event),
 * or, with none, adds it to sig_count[signo], from which the next matching
 * wait takes it. A wait for a signal the signalfd's mask lacks widens the
 * mask and kicks the leader, so a signal already pending is read too. A
 * leader that leaves wakes the list's head to take its seat.
 *
 * Invariants: a waiter is linked exactly while it has no signal; a signal
 * handed to a waiter that is cancelled at the same moment is handed on
 * (never lost); sig_lock is never held across a suspension.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "proc/proc.h"
#include "rook.h"
#include "sched/wait.h"

struct sig_waiter {
	sigset_t sw_set;
	int sw_signo; /* 0 while waiting; set by the one who hands it a signal */
	struct rook_event *sw_ev;
	struct sig_waiter *sw_next;
};

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sig_waiter *sig_head, *sig_tail;
static struct sig_waiter *sig_leader; /* polling sig_epfd, or NULL */
static int sig_fd = -1, sig_kick = -1, sig_epfd = -1;
static sigset_t sig_fd_mask;           /* the signalfd's mask */
static sigset_t sig_blocked;           /* what rook_signal_block blocked */
static unsigned long sig_count[_NSIG]; /* read, not yet taken */

/* Valid set for block/wait: non-empty, no SIGKILL/SIGSTOP. */
static bool set_ok(const sigset_t *set)
{
	if (!set || sigismember(set, SIGKILL) || sigismember(set, SIGSTOP))
		return false;
	/* Not sigisemptyset: glibc 2.36's misses signals 33-64 on 64-bit
	 * (the real-time ones), so a set of those alone looked empty. */
	for (int s = 1; s < _NSIG; s++)
		if (sigismember(set, s) == 1)
			return true;
	return false;
}

int rook_signal_block(const sigset_t *set)
{
	if (!set_ok(set))
		return -EINVAL;
	int r = pthread_sigmask(SIG_BLOCK, set, NULL);
	if (r)
		return -r;
	pthread_mutex_lock(&sig_lock);
	sigorset(&sig_blocked, &sig_blocked, set);
	pthread_mutex_unlock(&sig_lock);
	return 0;
}

void rook__signal_blocked(sigset_t *out)
{
	pthread_mutex_lock(&sig_lock);
	*out = sig_blocked;
	pthread_mutex_unlock(&sig_lock);
}

static void unlink_waiter(struct sig_waiter *w)
{
	struct sig_waiter **pp = &sig_head, *prev = NULL;
	while (*pp && *pp != w) {
		prev = *pp;
		pp = &(*pp)->sw_next;
	}
	if (!*pp)
		return;
	*pp = w->sw_next;
	if (sig_tail == w)
		sig_tail = prev;
	w->sw_next = NULL;
}

/* Hand signo to the first waiter that wants it, or count it. sig_lock held. */
static void dispatch(int signo)
{
	for (struct sig_waiter *w = sig_head; w; w = w->sw_next) {
		if (sigismember(&w->sw_set, signo)) {
			w->sw_signo = signo;
			unlink_waiter(w);
			if (w != sig_leader) {
				rook_event_set(w->sw_ev);
			} else {
				/* The leader polls the signalfd (a waiter that was
				 * interrupted hands it on): wake its poll. When the
				 * leader itself drains, it sees sw_signo anyway. */
				uint64_t one = 1;
				if (write(sig_kick, &one, sizeof(one)) < 0) {
					/* EAGAIN: already kicked */
				}
			}
			return;
		}
	}
	sig_count[signo]++;
}

/* Read every arrival the signalfd holds, and reset the kick. sig_lock held;
 * called by the leader or by the last waiter, never while another polls. */
static void drain(void)
{
	uint64_t k;
	if (read(sig_kick, &k, sizeof(k)) < 0) {
		/* EAGAIN: not kicked */
	}
	struct signalfd_siginfo si[16];
	for (;;) {
		ssize_t n = read(sig_fd, si, sizeof(si));
		if (n <= 0)
			return; /* EAGAIN: empty */
		for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++)
			if (si[i].ssi_signo > 0 && si[i].ssi_signo < _NSIG)
				dispatch((int)si[i].ssi_signo);
	}
}

/* A counted signal in set (lowest number first, as the kernel delivers). */
static int take_counted(const sigset_t *set)
{
	for (int s = 1; s < _NSIG; s++) {
		if (sig_count[s] && sigismember(set, s)) {
			sig_count[s]--;
			return s;
		}
	}
	return 0;
}

static void fds_close(void)
{
	close(sig_epfd);
	close(sig_kick);
	close(sig_fd);
	sig_fd = sig_kick = sig_epfd = -1;
	sigemptyset(&sig_fd_mask);
}

/* w leaves the list (if still on it). Keeps the leader's seat filled, or,
 * when nobody waits, counts what the signalfd holds and closes it.
 * sig_lock held. */
static void leave(struct sig_waiter *w)
{
	unlink_waiter(w);
	if (sig_leader == w)
		sig_leader = NULL;
	if (sig_leader)
		return;
	if (sig_head) {
		rook_event_set(sig_head->sw_ev);
	} else if (sig_fd >= 0) {
		drain();
		fds_close();
	}
}

static int fds_open(void)
{
	sig_fd = signalfd(-1, &sig_fd_mask, SFD_NONBLOCK | SFD_CLOEXEC);
	sig_kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	sig_epfd = epoll_create1(EPOLL_CLOEXEC);
	int r = sig_fd < 0 || sig_kick < 0 || sig_epfd < 0 ? -errno : 0;
	struct epoll_event ev = {.events = EPOLLIN};
	if (r == 0 && (epoll_ctl(sig_epfd, EPOLL_CTL_ADD, sig_fd, &ev) ||
		       epoll_ctl(sig_epfd, EPOLL_CTL_ADD, sig_kick, &ev)))
		r = -errno;
	if (r)
		fds_close();
	return r;
}

/* The signalfd's mask covers set (widened if need be). sig_lock held. */
static int fds_cover(const sigset_t *set)
{
	bool covered = sig_fd >= 0;
	for (int s = 1; covered && s < _NSIG; s++)
		covered = !sigismember(set, s) || sigismember(&sig_fd_mask, s);
	if (covered)
		return 0;
	sigset_t want;
	sigorset(&want, &sig_fd_mask, set);
	if (sig_fd < 0) {
		sig_fd_mask = want;
		return fds_open();
	}
	if (signalfd(sig_fd, &want, 0) < 0)
		return -errno;
	sig_fd_mask = want;
	if (sig_leader) {
		/* Its poll began with the old mask: make it read again. */
		uint64_t one = 1;
		if (write(sig_kick, &one, sizeof(one)) < 0) {
			/* EAGAIN: already kicked */
		}
	}
	return 0;
}

/* Every signal of set must be blocked in the calling thread, or the kernel
 * may run its default action instead of queueing it for the signalfd. */
static bool blocked_here(const sigset_t *set)
{
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (int s = 1; s < _NSIG; s++)
		if (sigismember(set, s) && !sigismember(&cur, s))
			return false;
	return true;
}

/* One turn, sig_lock held: the signal, or 0 to suspend (*lead: on the
 * signalfd, else on the waiter's event). */
static int turn(struct sig_waiter *w, bool *lead)
{
	if (w->sw_signo)
		return w->sw_signo;
	int s = take_counted(&w->sw_set);
	if (s) {
		unlink_waiter(w);
		return s;
	}
	*lead = !sig_leader;
	if (*lead) {
		sig_leader = w;
		drain();
		if (w->sw_signo) {
			sig_leader = NULL;
			return w->sw_signo;
		}
	}
	rook_event_clear(w->sw_ev);
	return 0;
}

int rook_signal_wait(const sigset_t *set)
{
	if (!set_ok(set) || !blocked_here(set))
		return -EINVAL;
	if (!rook_self())
		return -EPERM;
	int r = rook__wait_check();
	if (r)
		return r;
	struct sig_waiter w = {.sw_set = *set};
	r = rook_event_create(&w.sw_ev);
	if (r)
		return r;
	pthread_mutex_lock(&sig_lock);
	r = fds_cover(set);
	if (r == 0) {
		if (sig_tail)
			sig_tail->sw_next = &w;
		else
			sig_head = &w;
		sig_tail = &w;
	}
	while (r == 0) {
		bool lead = false;
		r = turn(&w, &lead);
		if (r)
			break;
		int fd = sig_epfd;
		pthread_mutex_unlock(&sig_lock);
		r = lead ? rook_poll(fd, POLLIN) : rook_event_wait(w.sw_ev);
		pthread_mutex_lock(&sig_lock);
		if (lead && sig_leader == &w)
			sig_leader = NULL;
		if (r > 0)
			r = 0; /* readiness: read it on the next turn */
		if (r < 0 && w.sw_signo) {
			/* Handed a signal as we were interrupted: pass it on. */
			int s = w.sw_signo;
			w.sw_signo = 0;
			dispatch(s);
		}
	}
	leave(&w);
	pthread_mutex_unlock(&sig_lock);
	rook_event_destroy(w.sw_ev);
	return r;
}
