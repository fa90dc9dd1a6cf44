/*
 * io/ring.c: the park point's wake protocol (i_park) with posted requests
 * (rook__ring_post: the blocking pool's wake of a task whose job is done).
 *
 * i_park: 0 awake, 1 asleep (or about to be), 2 wake pending. The sleeper
 * CASes 0 -> 1 and sleeps in io_uring_enter until a CQE (a kick: eventfd
 * write); a failed CAS consumes the pending 2. A waker pushes its request,
 * then exchanges i_park with 2 and kicks only if it read 1. The worker
 * takes requests at its park point (and every 16th poll, not modelled: it
 * is not guaranteed to come). A taken WAKE request makes a task runnable
 * on this worker.
 *
 * Checked: no lost wake-up. When nothing can move (timeout), every posted
 * request was taken and every woken task was run. -DOLD models the code
 * before the fix (sleep after taking requests): spin finds the hang the
 * blocking-pool sweep found (tests/fault: blocking_wakes).
 *
 * spin's interleavings are sequentially consistent: the C code's seq_cst
 * RMWs on i_park and the exchange after a failed CAS (which reads the
 * last waker's 2, ordering its push before the check) are what make that
 * valid.
 */
#ifndef WAKERS
#define WAKERS 2
#endif

byte park = 0;      /* i_park */
bool kicked = 0;    /* the eventfd holds a count: the armed read completes */
byte reqs = 0;      /* posted, not yet taken */
byte runnable = 0;  /* tasks woken on this worker, not yet run */
byte ran = 0;

proctype waker()
{
	byte old;
	reqs++;                      /* push, under i_req_lock */
	atomic { old = park; park = 2 };
	if
	:: old == 1 -> kicked = 1
	:: else -> skip
	fi
}

/* The worker: run what is runnable, else park. */
active proctype worker()
{
	bool ok;
	byte n;
end_loop:
	do
	:: runnable > 0 -> runnable--; ran++
	:: runnable == 0 ->
		/* rook__park_wait */
		atomic {
			if
			:: park == 0 -> park = 1; ok = 1
			:: else -> ok = 0
			fi
		}
		if
		:: !ok ->
			park = 0;                  /* consume the pending wake */
#ifndef OLD
			atomic { n = reqs; reqs = 0 }; runnable = runnable + n
#endif
		:: ok ->
			atomic { n = reqs; reqs = 0 };
			runnable = runnable + n;
#ifndef OLD
			if
			:: n > 0 -> park = 0       /* do not sleep: run them */
			:: n == 0 ->
#endif
end_sleep:			kicked == 1;           /* io_uring_enter: until a CQE */
				kicked = 0;
				park = 0
#ifndef OLD
			fi
#endif
		fi
	od
}

init
{
	byte i = 0;
	atomic {
		do
		:: i < WAKERS -> run waker(); i++
		:: else -> break
		od
	}
}

/* Nothing can move: every request taken, every woken task run. */
active proctype quiescent()
{
	timeout -> assert(reqs == 0 && runnable == 0 && ran == WAKERS)
}
