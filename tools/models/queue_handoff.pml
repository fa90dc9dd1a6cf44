/*
 * sync/queue.c: the lock-free ring and the T_GETTERS hand-off (see the
 * file's top comment). A getter that finds the ring empty raises
 * T_GETTERS on q_tail, under q_lock, with a CAS that expects the tail it
 * saw empty; while the flag is up no put can CAS q_tail, so every put
 * takes q_lock and hands its item to the first getter whose claim it wins
 * (a cancelled getter is skipped); a put that finds no getter left lowers
 * the flag (flags_settle) and retries; a getter whose wait was cancelled
 * unlinks itself and settles the flags.
 *
 * Modelled: a ring of R slots with Vyukov stamps (claim by CAS on q_tail
 * or q_head, then write the item and the stamp: two steps), the flag as
 * part of q_tail (a CAS fails if it is up), q_lock, the getters' FIFO with
 * claims, and a canceller of getter 0. PUTTERS putters put one item each
 * (item ids 1..PUTTERS), GETTERS getters get one each. Not modelled: the
 * backlog and H_BEHIND (the ring never fills: PUTTERS <= R), close,
 * task_done/join.
 *
 * Checked: T_GETTERS up implies an empty ring whenever q_lock is free and
 * no put is under way; no item is lost or delivered twice (at quiescence
 * got + in the ring == put, each id once); a getter still waiting at
 * quiescence implies an empty ring (no lost wake-up); a cancelled getter
 * consumed nothing. spin is sequentially consistent; the C code orders
 * items with the stamps' release/acquire and the rest under q_lock.
 */
#ifndef R
#define R 2
#endif
#ifndef PUTTERS
#define PUTTERS 2
#endif
#ifndef GETTERS
#define GETTERS 2
#endif
#define NPOS (2 * R + 2)

byte tl = 0;              /* q_tail's position */
bool tget = 0;            /* q_tail's T_GETTERS */
byte hd = 0;              /* q_head's position */
byte stamp[R];
byte val[R];
bool qlock = 0;
/* getters' wait list: FIFO of getter ids */
byte wq[GETTERS];
byte wq_n = 0;
byte wstate[GETTERS];     /* 0 idle, 1 waiting, 3 claimed */
byte buf[GETTERS];        /* the item handed, by contract */
bool ndone[GETTERS];      /* granted (n_done) */
bool linked[GETTERS];
bool woken[GETTERS];      /* rook__wait_wake: after the claimer's writes */
byte got[PUTTERS + 1];    /* deliveries per item id */
byte waiting = 0;         /* getters parked, not yet claimed */
byte puts_under_way = 0;

inline lock() { atomic { qlock == 0 -> qlock = 1 } }
inline unlock() { qlock = 0 }

/* ring_push of item x: done = 1, or 0 if the flag is up */
inline ring_push(x, done) {
	do
	:: atomic {
		if
		:: tget -> done = 0; break
		:: else -> pos = tl
		fi
	   };
	   if
	   :: stamp[pos % R] == pos ->
		atomic {
			if
			:: tl == pos && !tget -> tl = pos + 1; ok = 1; puts_under_way++
			:: else -> ok = 0
			fi
		};
		if
		:: ok ->
			val[pos % R] = x;
			atomic { stamp[pos % R] = pos + 1; puts_under_way-- };
			done = 1; break
		:: else -> skip
		fi
	   :: else -> skip  /* a get of the last lap is under way: retry */
	   fi
	od
}

/* ring_pop into x: res = 1 ok, 0 empty (sawt/sawf: the tail seen) */
inline ring_pop(x, res) {
	do
	:: pos = hd;
	   if
	   :: stamp[pos % R] == pos + 1 ->
		atomic {
			if
			:: hd == pos -> hd = pos + 1; ok = 1
			:: else -> ok = 0
			fi
		};
		if
		:: ok ->
			x = val[pos % R]; val[pos % R] = 0;
			stamp[pos % R] = pos + R;
			res = 1; break
		:: else -> skip
		fi
	   :: stamp[pos % R] == pos ->
		atomic { sawt = tl; sawf = tget };
		if
		:: sawt == pos -> res = 0; break
		:: else -> skip  /* its put is under way */
		fi
	   :: else -> skip
	   fi
	od
}

inline flags_settle() {
	if
	:: wq_n == 0 && tget -> tget = 0
	:: else -> skip
	fi
}

proctype putter(byte x)
{
	byte pos, sawt, i, g, k;
	bool ok, done, sawf;
	ring_push(x, done);
	if
	:: done -> goto out
	:: else -> skip
	fi;
	/* put_slow */
	lock();
	do
	:: tget ->
		/* rook__waitq_claim_first: the first getter whose claim wins */
		g = 255;
		do
		:: wq_n > 0 ->
			i = wq[0];
			atomic {
				k = 0;
				do
				:: k + 1 < wq_n -> wq[k] = wq[k + 1]; k++
				:: else -> break
				od;
				wq_n--; k = 0
			};
			linked[i] = 0;
			atomic {
				if
				:: wstate[i] == 1 -> wstate[i] = 3; g = i; break
				:: else -> skip
				fi
			}
		:: wq_n == 0 -> break
		od;
		if
		:: g == 255 -> flags_settle()
		:: else ->
			buf[g] = x; ndone[g] = 1;
			unlock();
			atomic { waiting--; woken[g] = 1 }  /* the wake */
			goto out
		fi
	:: !tget ->
		ring_push(x, done);
		assert(done);            /* never full here */
		unlock();
		goto out
	od;
out:
	skip
}

proctype getter(byte me)
{
	byte pos, sawt, k, x = 0;
	bool ok, sawf;
	byte res;
	ring_pop(x, res);
	if
	:: res -> goto out
	:: else -> skip
	fi;
	/* get_slow */
	lock();
	do
	:: ring_pop(x, res);
	   if
	   :: res -> unlock(); goto out
	   :: else -> skip
	   fi;
	   /* empty at sawt: raise the flag by a CAS that expects it */
	   atomic {
		if
		:: sawf -> ok = 1
		:: !sawf && tl == sawt && !tget -> tget = 1; ok = 1
		:: else -> ok = 0
		fi
	   };
	   if
	   :: ok ->
		assert(hd == tl);
		/* wait_on: link, unlock, park */
		atomic { wstate[me] = 1; wq[wq_n] = me; wq_n++; linked[me] = 1; waiting++ };
		unlock();
end_park:	woken[me];
		if
		:: ndone[me] -> x = buf[me]; goto out
		:: else ->
			/* ended by the cancel: take q_lock, unlink, settle */
			lock();
			if
			:: linked[me] ->
				atomic {
					k = 0;
					do
					:: k < wq_n && wq[k] != me -> k++
					:: else -> break
					od;
					do
					:: k + 1 < wq_n -> wq[k] = wq[k + 1]; k++
					:: else -> break
					od;
					wq_n--; k = 0
				};
				linked[me] = 0
			:: else -> skip
			fi;
			flags_settle();
			unlock();
			x = 0;
			goto out
		fi
	   :: else -> skip
	   fi
	od;
out:
	if
	:: x != 0 -> got[x]++; assert(got[x] == 1)
	:: else -> skip
	fi;
	/* a cancelled wait consumed nothing */
	assert(!(woken[me] && !ndone[me]) || x == 0)
}

/* rook_cancel of getter 0, at any moment */
active proctype canceller()
{
	atomic {
		if
		:: wstate[0] == 1 -> wstate[0] = 3; waiting--; woken[0] = 1
		:: else -> skip
		fi
	}
}

init
{
	byte i;
	atomic {
		i = 0;
		do
		:: i < R -> stamp[i] = i; i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < GETTERS -> run getter(i); i++
		:: else -> break
		od;
		i = 1;
		do
		:: i <= PUTTERS -> run putter(i); i++
		:: else -> break
		od
	}
}

active proctype quiescent()
{
	byte i, n = 0;
	timeout ->
	assert(puts_under_way == 0 && qlock == 0);
	assert(!tget || hd == tl);
	/* every item got once or still in the ring */
	i = 1;
	do
	:: i <= PUTTERS -> n = n + got[i]; i++
	:: else -> break
	od;
	assert(n + (tl - hd) == PUTTERS);
	/* a getter still waiting: nothing was left for it */
	assert(waiting == 0 || tl == hd)
}
