/*
 * sched/worker.c: the park/notify protocol (see its top comment).
 *
 * Modelled: rt_nspinning, rt_nidle and the idle set under rt_idle_lock;
 * w_woken_spinning; rook__notify (nobody spinning and somebody idle: CAS
 * nspinning 0 -> 1, pop an idle worker, wake it counted as spinning);
 * search (spin only while 2 * nspinning < W) and stop_spinning (the last
 * spinner that found work notifies); park (join the idle set, nidle++,
 * re-check every queue, sleep); park_sleep's naps (a nap may end by its
 * timeout, then re-check) and, after DEEP_NAPS naps, the deep sleep
 * (ndeep++, re-check, sleep without timeout); the exception for a push
 * into the worker's own empty deque (no notify while ndeep == 0); the
 * park point itself as in ring_park.pml (i_park 0/1/2 and a kick).
 * Queues are counters: the injection queue (an outside thread publishes
 * ITEMS tasks there, and notifies), and each worker's deque (a task run
 * may spawn one child into it, SPAWNS in all; LONGS of those parents
 * then keep their worker until the child ran elsewhere, the case the
 * naps and the deep sleep's Dekker pair exist for); a spinning worker
 * steals.
 *
 * Checked at quiescence (timeout: nothing can move): every task ran (no
 * lost wake-up: no task left queued while every worker sleeps), nobody is
 * counted spinning, and nidle matches the idle set. spin's interleavings
 * are sequentially consistent: the seq_cst fences of the Dekker pairs
 * (notify / park's re-check; schedule / deep sleep's re-check) are what
 * make that valid for the C code.
 */
#ifndef W
#define W 2
#endif
#ifndef ITEMS
#define ITEMS 1
#endif
#ifndef SPAWNS
#define SPAWNS 2
#endif
#ifndef LONGS
#define LONGS 1
#endif
#define DEEP_NAPS 1

byte inj = 0;             /* injection queue */
byte deq[W];            /* deques */
byte spawns_left = SPAWNS;
byte longs_left = LONGS;
byte ran = 0;
byte nspinning = 0, nidle = 0, ndeep = 0;
bool idle_lock = 0;
byte idle_n = 0;
byte idle[W];
bool listed[W], woken[W];
byte park[W];             /* i_park */
bool kicked[W];

#define visible() (inj > 0 || deq[0] > 0 || deq[1] > 0 || (W > 2 && deq[W - 1] > 0))

inline lock() { atomic { idle_lock == 0 -> idle_lock = 1 } }
inline unlock() { idle_lock = 0 }

inline wake(v) {
	atomic {
		if
		:: park[v] == 1 -> kicked[v] = 1
		:: else -> skip
		fi;
		park[v] = 2
	}
}

inline notify() {
	do
	:: nspinning == 0 && nidle > 0 ->
		atomic {
			if
			:: nspinning == 0 -> nspinning = 1; ok = 1
			:: else -> ok = 0
			fi
		};
		if
		:: ok ->
			lock();
			if
			:: idle_n == 0 ->
				unlock(); nspinning--;
#ifdef OLD_NOTIFY
				break
#else
				/* Our 1 may have turned other notifies away
				 * meanwhile: look again. */
				skip
#endif
			:: else ->
				idle_n--; v = idle[idle_n]; listed[v] = 0; woken[v] = 1;
				unlock(); nidle--; wake(v);
				break
			fi
		:: else -> break
		fi
	:: else -> break
	od
}

/* rook__park_wait; nap: may end by its timeout. */
inline park_wait(nap) {
	atomic {
		if
		:: park[me] == 0 -> park[me] = 1; ok = 1
		:: else -> park[me] = 0; ok = 0
		fi
	};
	if
	:: ok ->
		if
		:: nap ->
			if
			:: kicked[me] -> kicked[me] = 0
			:: skip /* the nap's timeout */
			fi
		:: !nap ->
end_deep:		kicked[me];
			kicked[me] = 0
		fi;
		park[me] = 0
	:: else -> skip
	fi
}

proctype publisher()
{
	bool ok;
	byte v;
	byte i = 0;
	do
	:: i < ITEMS -> inj++; i++; notify()
	:: else -> break
	od
}

proctype worker(byte me)
{
	bool ok, found, spinning = 0, removed, first;
	byte v, naps, k;
end_loop:
	do
	::
		/* pick_local: own deque, then the injection queue */
		found = 0;
		atomic {
			if
			:: deq[me] > 0 -> deq[me]--; found = 1
			:: deq[me] == 0 && inj > 0 -> inj--; found = 1
			:: else -> skip
			fi
		};
		/* search: spin (steal) within the budget */
		if
		:: !found && !spinning && 2 * nspinning < W -> nspinning++; spinning = 1
		:: else -> skip
		fi;
		if
		:: !found && spinning ->
			/* steal_any, then the injection queue: one step each
			 * (queues are counters here) */
			atomic {
				if
				:: me != 0 && deq[0] > 0 -> deq[0]--; found = 1
				:: me != 1 && deq[1] > 0 -> deq[1]--; found = 1
				:: W > 2 && me != W - 1 && deq[W - 1] > 0 -> deq[W - 1]--; found = 1
				:: else -> skip
				fi
			};
			atomic {
				if
				:: !found && inj > 0 -> inj--; found = 1
				:: else -> skip
				fi
			}
		:: else -> skip
		fi;
		if
		:: spinning ->
			spinning = 0;
			atomic { v = nspinning; nspinning-- };
			if
			:: v == 1 && found -> notify()
			:: else -> skip
			fi
		:: else -> skip
		fi;
		if
		:: found ->
			ran++;
			/* the task may spawn a child into our deque */
			if
			:: spawns_left > 0 ->
				spawns_left--;
				atomic { first = (deq[me] == 0); deq[me]++ };
				if
				:: first && ndeep == 0 -> skip
				:: else -> notify()
				fi;
				/* A long task (LONGS in all) keeps its worker until
				 * its child ran elsewhere: the child then needs
				 * another worker, woken or back from a nap. */
				if
				:: longs_left > 0 ->
					longs_left--;
					deq[me] == 0
				:: skip
				fi
			:: skip
			fi
		:: !found ->
			/* park */
			lock(); idle[idle_n] = me; idle_n++; listed[me] = 1; unlock();
			nidle++;
			if
			:: !visible() ->
				naps = 0;
				do
				:: naps == DEEP_NAPS ->
					ndeep++;
					if
					:: !visible() ->
					park_wait(0)
					:: else -> skip
					fi;
					ndeep--;
					break
				:: naps < DEEP_NAPS ->
					park_wait(1);
					if
					:: woken[me] || visible() -> break
					:: else -> naps++
					fi
				od
			:: else -> skip
			fi;
			/* idle_leave */
			lock();
			removed = 0;
			if
			:: listed[me] ->
				k = 0;
				do
				:: k < idle_n && idle[k] == me -> idle_n--; idle[k] = idle[idle_n]; break
				:: k < idle_n && idle[k] != me -> k++
				:: k >= idle_n -> break
				od;
				listed[me] = 0; removed = 1
			:: else -> skip
			fi;
			spinning = woken[me]; woken[me] = 0;
			unlock();
			if
			:: removed -> nidle--
			:: else -> skip
			fi
		fi;
		/* dead locals: reset, so they do not multiply the states */
		atomic { ok = 0; v = 0; k = 0; naps = 0; first = 0; removed = 0; found = 0 }
	od
}

init
{
	byte i = 0;
	atomic {
		do
		:: i < W -> run worker(i); i++
		:: else -> break
		od;
		run publisher()
	}
}

active proctype quiescent()
{
	timeout ->
		assert(inj == 0 && deq[0] == 0 && deq[1] == 0 && (W < 3 || deq[W - 1] == 0));
		assert(nspinning == 0);
		assert(nidle == idle_n);
		assert(ran == ITEMS + SPAWNS - spawns_left)
}
