/*
 * sched/worker.c: the park/notify protocol (see its top comment) and the
 * rescue rule of nap_loop (while a running worker has IO pending, idle
 * workers nap and drive it instead of sleeping deeply).
 *
 * Each access to shared state is its own step, in the C code's order:
 * - rook__notify: load nspinning; load nidle; CAS 0 -> 1; pop an idle
 *   worker under rt_idle_lock (none: drop the 1, look again); nidle--;
 *   wake it (it counts as spinning).
 * - next_task: pick_local (worker_poll, own deque, injection queue);
 *   search (load nspinning, spin only while 2 * nspinning < W; add 1; each
 *   other deque, the injection queue); stop_spinning; park: join the idle
 *   set; nidle++; each queue; park_sleep (rescue; nap; woken, each queue;
 *   rescue; deep: ndeep++, rescue, each queue, sleep, ndeep--); idle_leave.
 *   DEEP_NAPS is 1 (more naps repeat the same steps); a nap may time out.
 * - rook__schedule of a child: push; load ndeep (our empty deque is not
 *   notified while no worker sleeps deeply), maybe notify.
 * - IO: a task submits an op (i_inflight++) and parks on it; worker_poll
 *   reaps the completion or, still pending, notifies if ndeep == W - 1;
 *   park_wait reaps it too. rook__park_rescue of a worker that runs with
 *   IO pending: WATCH, or drive it (reap: WORKED, the woken task goes to
 *   the rescuer, notified). A completion may come any time after a submit.
 * - Tasks: ITEMS from an outside publisher (inject, notify); a task may
 *   spawn a child (SPAWNS in all), submit an op (IOS), or (LONGS) keep its
 *   worker until its child was stolen or until a rescuer reaped that
 *   worker's IO: what the naps, the deep sleep's re-check and the rescue
 *   rule are for.
 *
 * Abstracted:
 * - Queues are counters; the LIFO slot and yield queue act as the deque (a
 *   push into them always notifies; a woken task goes to the waker's); the
 *   injection queue hands out one task at a time (C: a batch, notified). A
 *   search is one pass, its last (a lone task is stolen only then); steal
 *   victims in index order (C: nearest first). notify pops any idle worker.
 * - w_woken_spinning is "parked and not listed" (notify and idle_leave
 *   change both under the lock): not stored. Sections under rt_idle_lock
 *   are one step.
 * - The park point by its contract (sched/park.h; i_park: ring_park.pml):
 *   wp, a wake since the last return; a nap may keep a wake that came as
 *   it timed out. Only the owner reads wp: consuming it shares a step with
 *   the read of woken after a nap and with ndeep-- after the deep sleep.
 * - A rescue reads napping and i_inflight in one step (i_inflight rises
 *   only while its worker runs); i_park is not read (1 only while napping);
 *   polls/i_seen and the ring lock are the WATCH-or-drive choice. Posted
 *   requests, timers, rt_exit and spurious deep wake-ups are left out.
 * - Left out as they answer the same in every interleaving: reads of a
 *   queue that stays empty for good or of a worker that can have no IO
 *   any more, stores to napping nobody reads. Dead locals are reset.
 *
 * Checked at quiescence (timeout: no worker can move, so none naps): every
 * queue empty and no IO pending (no lost wake-up, no stranded IO), nobody
 * counted spinning, nidle matching the idle set. Safety only: a rescuer
 * that keeps answering WATCH is not shown to drive the IO in the end.
 * spin is sequentially consistent: the seq_cst fences and RMWs of the
 * Dekker pairs (notify / park's re-check, schedule / the deep sleep's
 * re-check, worker_poll's ndeep load / the rescue after ndeep++) make that
 * valid for the C code; the store of w_napping = false at park_sleep's end
 * and the rescue's load of it are seq_cst for the same reason (they were
 * relaxed, which C11 does not order against ndeep). No symmetry reduction:
 * spin has none, and the index-ordered scans make the workers unequal.
 *
 * spin must find the bug in: -DOLD_NOTIFY (notify gives up on an empty
 * idle set, before the fix), -DNO_WATCH_WAKE (worker_poll wakes no
 * watcher), -DNO_DEEP_RESCUE (no rescue after ndeep++). -DQUEUED: the
 * items are queued before the workers start, no publisher (3 workers with
 * IO and a publisher outgrow 12 GiB).
 */
#ifndef W
#define W 2
#endif
#ifndef ITEMS
#define ITEMS 1
#endif
#ifndef SPAWNS
#define SPAWNS 1
#endif
#ifndef LONGS
#define LONGS 1
#endif
#ifndef IOS
#define IOS 1
#endif
#if W < 2 || W > 3
#error "W: 2 or 3 workers"
#endif

#define me _pid
#define NONE   0
#define WATCH  1
#define WORKED 2

#ifdef QUEUED
byte inj = ITEMS;          /* injection queue */
byte published = ITEMS;    /* ghost: items pushed so far */
#else
byte inj;
byte published;
#endif
byte deq[W];              /* deques */
byte nspinning, ndeep;
short nidle;              /* transiently above W or below 0, as in C */
bit listed[W];            /* the idle set */
bit wp[W];                /* park point: woken since the last return */
byte spawns_left = SPAWNS, longs_left = LONGS;
#if IOS
bit io[W];                /* an op in flight, or its completion unreaped */
bit napping[W];           /* w_napping */
byte ios_left = IOS;
#endif

/*
 * Ghost conditions under which a queue stays empty for good. A read of it
 * then answers "empty" in every interleaving and is left out (the step
 * before jumps past it), which is exact.
 */
#define INJ_OVER (published == ITEMS && inj == 0)
#if IOS
#if W == 2
#define IO_OVER (ios_left == 0 && io[0] == 0 && io[1] == 0)
#else
#define IO_OVER (ios_left == 0 && io[0] == 0 && io[1] == 0 && io[2] == 0)
#endif
#define MINE mine
#else
#define IO_OVER 1
#define MINE 0
#endif
/* a spawn pushes into the spawner's deque, a reap into the reaper's */
#define DEQ_OVER(x) (spawns_left == 0 && IO_OVER && deq[x] == 0)

/*
 * work_visible: position k 0 is the injection queue, k 1..W the deque of
 * worker k - 1 (ours only after we pushed into it in this park: else it
 * is empty). One step per queue; SEEN when one is not empty, else NONE.
 * Continuations passed to macros here are jumps, taken in the same step.
 */
#define VQ(k) (k == 0 -> inj : deq[k - 1])
#define VDEAD(k) (k == 0 -> INJ_OVER : ((k - 1 == me && !MINE) || DEQ_OVER(k - 1)))
#define VSKIP do :: k <= W && VDEAD(k) -> k++ :: else -> break od
#define VSCAN(tag, NONE) k = 0; VSKIP; if :: k > W -> k = 0; NONE :: else -> goto tag fi
#define VSTEP(tag, SEEN, NONE) \
tag: \
	atomic { \
		if \
		:: VQ(k) > 0 -> k = 0; SEEN \
		:: else -> k++; VSKIP; if :: k > W -> k = 0; NONE :: else -> goto tag fi \
		fi \
	}

/* The steal pass: k 0..W-1 the other deques, k W the injection queue. */
#define SQ(k) (k == W -> inj : deq[k])
#define SDEAD(k) (k == W -> INJ_OVER : (k == me || DEQ_OVER(k)))
#define SSKIP do :: k <= W && SDEAD(k) -> k++ :: else -> break od
#define SSCAN(NONE) k = 0; SSKIP; if :: k > W -> k = 0; NONE :: else -> goto steal fi

#if W == 2
#define POP_IDLE \
	if \
	:: listed[0] -> listed[0] = 0; v = 0 \
	:: listed[1] -> listed[1] = 0; v = 1 \
	:: else -> v = W \
	fi
#else
#define POP_IDLE \
	if \
	:: listed[0] -> listed[0] = 0; v = 0 \
	:: listed[1] -> listed[1] = 0; v = 1 \
	:: listed[2] -> listed[2] = 0; v = 2 \
	:: else -> v = W \
	fi
#endif

#ifdef OLD_NOTIFY
#define AGAIN(tag, EXIT) EXIT
#else
/* Our 1 may have turned other notifies away meanwhile: look again. */
#define AGAIN(tag, EXIT) goto n1_##tag
#endif

/* rook__notify, then EXIT; tag makes its labels unique. */
#define NOTIFY(tag, EXIT) \
n1_##tag: \
	atomic { if :: nspinning != 0 -> EXIT :: else -> skip fi }; \
	atomic { if :: nidle == 0 -> EXIT :: else -> skip fi }; \
	atomic { if :: nspinning == 0 -> nspinning = 1 :: else -> EXIT fi }; \
	atomic { POP_IDLE; if :: v == W -> v = 0; goto n5_##tag :: else -> skip fi }; \
	atomic { nidle-- }; \
	atomic { wp[v] = 1; v = 0; EXIT }; \
n5_##tag: \
	atomic { nspinning--; AGAIN(tag, EXIT) }

#if IOS
/* A reap: napping is read only with i_inflight, so it is cleared too
 * (the owner's store of 0 at the end of its park_sleep is then left out). */
#define REAPED(x) io[x] = 0; napping[x] = 0

/* rescue_others: k 0..W-1 the other workers, left out once they cannot
 * have IO pending; the answer in rescue, then DISPATCH. */
#define RDEAD(k) (k == me || (ios_left == 0 && io[k] == 0))
#define RSKIP do :: k < W && RDEAD(k) -> k++ :: else -> break od
#define RSCAN(tag, DISPATCH) k = 0; RSKIP; if :: k >= W -> k = 0; DISPATCH :: else -> goto tag fi
#define RNEXT(tag, DISPATCH) k++; RSKIP; if :: k >= W -> k = 0; DISPATCH :: else -> goto tag fi
#define ATLEAST_WATCH rescue = (rescue == WORKED -> WORKED : WATCH)
/* rook__park_rescue of worker k: not napping with IO pending, it is
 * WATCH, or driven: its completion reaped (WORKED), the task it wakes goes
 * to our LIFO slot, notified. */
#define RSTEP(tag, DISPATCH) \
tag: \
	atomic { \
		if \
		:: !napping[k] && io[k] -> \
			if \
			:: ATLEAST_WATCH; RNEXT(tag, DISPATCH) \
			:: goto tag##_try \
			fi \
		:: else -> RNEXT(tag, DISPATCH) \
		fi \
	}; \
tag##_try: \
	atomic { \
		if \
		:: io[k] -> REAPED(k); rescue = WORKED \
		:: else -> ATLEAST_WATCH; RNEXT(tag, DISPATCH) \
		fi \
	}; \
	atomic { deq[me]++; mine = 1 }; \
	NOTIFY(tag, RNEXT(tag, DISPATCH))

#define LOOP if :: pib -> goto io_poll :: else -> PICK fi
/* the task submits an op (i_inflight++) and parks on it */
#define SUBMIT io[me] = 1; pib = 1; goto io_poll
/* park_sleep's end: napping = 0 if still set, then idle_leave */
#define TO_SLEEP_END if :: napping[me] -> goto sleep_end :: else -> goto leave fi
#else
#define LOOP PICK
#define TO_SLEEP_END goto leave
#endif

/* pick_local: our deque, the injection queue; then search */
#define PICK if :: !DEQ_OVER(me) -> goto loop :: else -> PICK_INJ fi
#define PICK_INJ if :: !INJ_OVER -> goto pick_inj :: else -> SEARCH fi
#define SEARCH if :: spinning -> SSCAN(goto stop_spin) :: else -> goto search fi

/* A task was found: it acts on shared state (task), or keeps its worker
 * while that worker's IO is pending (io_long), or does nothing shared and
 * is done at once. */
#if IOS
#define RUN_OR_LOOP \
	if \
	:: spawns_left > 0 || ios_left > 0 -> goto task \
	:: pib && longs_left > 0 -> longs_left--; goto io_long \
	:: LOOP \
	fi
#else
#define RUN_OR_LOOP if :: spawns_left > 0 -> goto task :: LOOP fi
#endif
#define FOUND if :: spinning -> goto found_spin :: else -> RUN_OR_LOOP fi
/* After a spawn the task keeps its worker until the child ran elsewhere,
 * or submits an op and parks on it, or ends. */
#if IOS
#define AFTER_SPAWN \
	if \
	:: longs_left > 0 -> longs_left--; goto child_long \
	:: ios_left > 0 -> ios_left--; goto submit \
	:: LOOP \
	fi
#else
#define AFTER_SPAWN if :: longs_left > 0 -> longs_left--; goto child_long :: LOOP fi
#endif

active [W] proctype worker()
{
	bit spinning;     /* w_spinning */
	byte v;           /* notify: the worker it pops */
	byte k;           /* a scan's position */
#if SPAWNS > 1
	bit first;        /* rook__schedule: the deque was empty */
#endif
#if IOS
	bit pib;          /* pi_busy */
	bit mine;         /* this park put a task into our own deque */
	byte rescue;      /* rescue_others' answer */
#endif

loop:	/* pick_local */
	atomic { if :: deq[me] > 0 -> deq[me]--; FOUND :: else -> PICK_INJ fi };
pick_inj:
	atomic { if :: inj > 0 -> inj--; FOUND :: else -> SEARCH fi };
search:	/* spin only while 2 * nspinning < W */
	atomic { if :: 2 * nspinning >= W -> goto park :: else -> skip fi };
	atomic { nspinning++; spinning = 1; SSCAN(goto stop_spin) };
steal:	/* one pass: steal_any, then the injection queue */
	atomic {
		if
		:: SQ(k) > 0 ->
			if :: k == W -> inj-- :: else -> deq[k]-- fi;
			k = 0; goto found_spin
		:: else -> k++; SSKIP; if :: k > W -> k = 0; goto stop_spin :: else -> goto steal fi
		fi
	};
stop_spin:	/* stop_spinning(w, false) */
	atomic { spinning = 0; nspinning--; goto park };

found_spin:	/* stop_spinning(w, true) */
	atomic {
		spinning = 0;
		if
		:: nspinning == 1 -> nspinning--; goto found_notify
		:: else -> nspinning--; RUN_OR_LOOP
		fi
	};
found_notify:
	NOTIFY(fs, RUN_OR_LOOP);

task:	/* the task's first shared step */
	atomic {
		if
#if SPAWNS > 1
		:: spawns_left > 0 -> spawns_left--; first = (deq[me] == 0); goto push
#else
		/* Our deque is empty here (we pop it before anything else and
		 * push at most one task between pops): the size read of
		 * rook__schedule is folded into the push. */
		:: spawns_left > 0 -> spawns_left--; assert(deq[me] == 0); deq[me]++; goto spawned
#endif
#if IOS
		:: ios_left > 0 -> ios_left--; SUBMIT
#endif
		:: else -> LOOP
		fi
	};
#if SPAWNS > 1
push:
	atomic { deq[me]++; if :: first -> first = 0 :: else -> first = 0; goto sp_notify fi };
#endif
spawned:	/* our deque was empty: notify only if somebody sleeps deeply */
	atomic { if :: ndeep == 0 -> AFTER_SPAWN :: else -> goto sp_notify fi };
sp_notify:
	NOTIFY(sp, AFTER_SPAWN);
child_long:	/* until the child was stolen; our deque stays empty */
#if IOS
	atomic { deq[me] == 0 -> if :: pib -> goto io_poll :: else -> PICK_INJ fi };
#else
	atomic { deq[me] == 0 -> PICK_INJ };
#endif

#if IOS
submit:
	atomic { SUBMIT };
io_long:	/* until a rescuer reaped our IO */
	atomic { io[me] == 0 -> pib = 0; LOOP };

io_poll:	/* rook__worker_poll while pi_busy: reap, or check ndeep */
	atomic {
		if
		:: io[me] -> if :: REAPED(me); pib = 0; goto reap_own :: skip fi
		:: else -> pib = 0; PICK
		fi
	};
#ifdef NO_WATCH_WAKE
	atomic { PICK };
#else
	atomic { if :: ndeep == W - 1 -> goto poll_notify :: else -> PICK fi };
#endif
poll_notify:
	NOTIFY(pn, PICK);
reap_own:	/* the woken task goes to our LIFO slot: notify */
	atomic { deq[me]++ };
	NOTIFY(ro, PICK);
#endif

park:
	atomic { listed[me] = 1 };
#if IOS
#define SLEEP if :: io[me] -> goto set_napping :: else -> RSCAN(r0, goto nap) fi
#else
#define SLEEP goto nap
#endif
	atomic { nidle++; VSCAN(pv, SLEEP) };
	VSTEP(pv, goto leave, SLEEP);
#if IOS
set_napping:	/* park_sleep: our own IO is pending, so napping is read */
	atomic { napping[me] = io[me]; RSCAN(r0, goto nap) };
	RSTEP(r0, if :: rescue == WORKED -> rescue = NONE; TO_SLEEP_END :: else -> rescue = NONE; goto nap fi);
#endif

nap:	/* park_wait(nap) ends (a wake is consumed, or kept if it came as
	 * the nap timed out; our own completion may be reaped), then:
	 * woken? work visible? */
#if IOS
#define AFTER_NAP RSCAN(r1, goto deep)
#else
#define AFTER_NAP goto deep
#endif
	atomic {
		if :: wp[me] -> wp[me] = 0 :: skip fi;
#if IOS
		if :: io[me] -> REAPED(me); pib = 0; goto nap_reap :: skip fi;
#endif
		if :: !listed[me] -> TO_SLEEP_END :: else -> VSCAN(nv, AFTER_NAP) fi
	};
	VSTEP(nv, TO_SLEEP_END, AFTER_NAP);
#if IOS
	RSTEP(r1,
		if
		:: rescue == WORKED -> rescue = NONE; TO_SLEEP_END
		:: rescue == WATCH -> rescue = NONE; goto nap
		:: else -> goto deep
		fi);
#endif

deep:
#if IOS
#ifdef NO_DEEP_RESCUE
	atomic { ndeep++; VSCAN(dv, goto end_deep) };
#else
	atomic { ndeep++; RSCAN(r2, VSCAN(dv, goto end_deep)) };
#endif
	RSTEP(r2, if :: rescue != NONE -> goto deep_up :: else -> VSCAN(dv, goto end_deep) fi);
#else
	atomic { ndeep++; VSCAN(dv, goto end_deep) };
#endif
	VSTEP(dv, goto deep_up, goto end_deep);
end_deep:	/* park_wait without timeout: a wake, or our own completion */
	atomic {
#if IOS
		if
		:: wp[me] -> wp[me] = 0; ndeep--; TO_SLEEP_END
		:: io[me] -> REAPED(me); pib = 0; goto deep_reap
		fi
#else
		wp[me] -> wp[me] = 0; ndeep--; TO_SLEEP_END
#endif
	};
deep_up:
#if IOS
	atomic {
		ndeep--;
		if
		:: rescue == NONE -> TO_SLEEP_END
		:: else -> rescue = NONE; goto nap
		fi
	};
deep_reap:	/* park_wait reaped our completion: its task to our LIFO slot */
	atomic { deq[me]++ };
	NOTIFY(dr, goto deep_reaped);
deep_reaped:
	atomic { ndeep--; TO_SLEEP_END };
nap_reap:	/* the same in a nap */
	atomic { deq[me]++; mine = 1 };
	NOTIFY(nr, goto nap_woken);
nap_woken:
	atomic { if :: !listed[me] -> TO_SLEEP_END :: else -> VSCAN(nv, AFTER_NAP) fi };
sleep_end:
	atomic { napping[me] = 0; goto leave };
#else
	atomic { ndeep--; goto leave };
#endif

leave:	/* idle_leave */
	atomic {
#if IOS
		mine = 0;
#endif
		if
		:: listed[me] -> listed[me] = 0; spinning = 0
		:: else -> spinning = 1; LOOP
		fi
	};
	atomic { nidle--; LOOP }
}

#ifndef QUEUED
active proctype publisher()
{
	byte v;
pub:
	atomic { inj++; published++ };
	NOTIFY(p, if :: published < ITEMS -> goto pub :: else -> goto end_pub fi);
end_pub:
	false
}
#endif

active proctype quiescent()
{
	timeout ->
		assert(inj == 0 && deq[0] == 0 && deq[1] == 0 && (W < 3 || deq[W - 1] == 0));
#if IOS
		assert(io[0] == 0 && io[1] == 0 && (W < 3 || io[W - 1] == 0));
#endif
		assert(nspinning == 0);
		assert(nidle == listed[0] + listed[1] + (W > 2 -> listed[W - 1] : 0))
}
