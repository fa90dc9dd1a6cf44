/*
 * sched/wait.c and the t_park handshake of sched/task.c: the single-claim
 * waiter protocol.
 *
 * One task makes two waits in a row. A wait begins (wait_begin: a new
 * sequence, phase WAITING, t_park PARKING) and publishes its token; it is
 * ended by exactly one successful rook__wait_claim (a CAS of w_state from
 * the token to CLAIMED), whose winner writes the result and wakes the task
 * (rook__task_unpark: exchange t_park with WOKEN; schedule it only if it
 * read PARKED). The task parks (wait_park: a pending cancel claims its own
 * wait; else it switches out unless already WOKEN, and the scheduler's
 * CAS PARKING -> PARKED decides whether it really suspends).
 *
 * Claimers: a granter (the object: it takes the token published for
 * wait 1 and may claim late, when wait 2 is under way: a stale token), a
 * timer on wait 1, and a canceller (rook_cancel: store t_cancel, then read
 * w_state and claim a WAITING wait). Wait 2 has no granter and no timer:
 * only the cancel can end it, so a cancel lost between the canceller's
 * store/load and the waiter's store/load (the Dekker pair) would hang it.
 *
 * Checked: at most one claim wins per wait, and one did when the task
 * resumes from it; a stale token never ends a later wait; the task is
 * scheduled only while suspended, at most once (no double wake, no lost
 * wake); at quiescence both waits are done and nothing is queued. spin is
 * sequentially consistent: the C code's seq_cst store/load pairs (w_state
 * and t_cancel) and the acq_rel RMWs on w_state and t_park justify it.
 */
#define WAITING 1
#define CLAIMED 3
#define RUNNING 0
#define PARKING 1
#define PARKED  2
#define WOKEN   3
#define ECANCELED 1
#define ETIMEDOUT 2

byte ws_seq = 0, ws_phase = 0;  /* w_state */
byte t_park = RUNNING;
bool t_cancel = 0;
byte wins[3];                   /* successful claims per wait (sequence) */
byte result = 255;
bool suspended = 0;             /* switched out, not yet scheduled */
byte runq = 0;                  /* times scheduled and not yet run */
byte published = 0;             /* token of wait 1 once published */
byte done = 0;                  /* waits finished */
byte cur = 0;

/* rook__wait_claim(w, (seq, WAITING), res); ok: won */
inline claim(seq, res, ok) {
	atomic {
		if
		:: ws_seq == seq && ws_phase == WAITING ->
			ws_phase = CLAIMED; wins[seq]++; ok = 1
		:: else -> ok = 0
		fi
	};
	if
	:: ok -> result = res
	:: else -> skip
	fi
}

/* rook__wait_wake -> rook__task_unpark */
inline wake() {
	atomic {
		old = t_park; t_park = WOKEN;
		if
		:: old == PARKED -> assert(suspended && runq == 0); runq++
		:: else -> skip
		fi
	}
}

active proctype task()
{
	bool ok;
	byte i = 1;
	do
	:: i <= 2 ->
		/* wait_begin (seq_cst store of w_state) */
		atomic { cur = i; t_park = PARKING; ws_seq = i; ws_phase = WAITING };
		if
		:: i == 1 -> published = 1
		:: else -> skip
		fi;
		/* wait_park: a pending cancel (seq_cst load of t_cancel) */
		if
		:: t_cancel ->
			claim(i, ECANCELED, ok);
			if
			:: ok -> t_park = RUNNING; goto ended
			:: else -> skip
			fi
		:: else -> skip
		fi;
		if
		:: t_park != WOKEN ->
			/* switch out; the scheduler: CAS PARKING -> PARKED */
			atomic {
				if
				:: t_park == PARKING -> t_park = PARKED; suspended = 1
				:: else -> skip
				fi
			};
			/* suspended until scheduled */
			atomic {
				if
				:: suspended -> runq > 0; runq--; suspended = 0
				:: else -> skip
				fi
			}
		:: else -> skip
		fi;
		t_park = RUNNING;
ended:
		assert(wins[i] == 1 && ws_seq == i && ws_phase == CLAIMED && result != 255);
		result = 255;
		done++;
		i++
	:: else -> break
	od
}

/* The object granting wait 1: may claim late, with the stale token. */
active proctype granter()
{
	bool ok;
	byte old;
	published == 1;
	claim(1, 0, ok);
	if
	:: ok -> wake()
	:: else -> skip
	fi
}

active proctype timer()
{
	bool ok;
	byte old;
	published == 1;
	claim(1, ETIMEDOUT, ok);
	if
	:: ok -> wake()
	:: else -> skip
	fi
}

/* rook_cancel at any moment */
active proctype canceller()
{
	bool ok;
	byte old, s, p;
	t_cancel = 1;                   /* seq_cst store */
	atomic { s = ws_seq; p = ws_phase };  /* seq_cst load of w_state */
	if
	:: p == WAITING ->
		claim(s, ECANCELED, ok);
		if
		:: ok -> wake()
		:: else -> skip
		fi
	:: else -> skip
	fi
}

active proctype quiescent()
{
	timeout -> assert(done == 2 && runq == 0 && !suspended && wins[1] == 1 && wins[2] == 1)
}
