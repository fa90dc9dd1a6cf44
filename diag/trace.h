/* SPDX-License-Identifier: MIT */
/*
 * ROOK_TRACE=path.json: scheduler events in per-worker rings, written as
 * Chrome/Perfetto trace events (JSON array format) at rook_trace_flush()
 * and when the runtime stops. Each worker is a track; a task's run slices
 * are "X" events on it, flows join a spawn or a wake to the run that
 * follows; parks are slices, steals, IO and timer fires instants.
 *
 * A ring holds ROOK_TRACE_EVENTS events a worker (default 65536, 32 bytes
 * each) and overwrites its oldest when full: a flush that comes too late
 * writes a "dropped" instant with the count lost instead. Only the owning
 * worker writes its ring (relaxed stores, then a release of its head), so
 * a flush from any thread copies events, re-reads the head and discards
 * what may have been overwritten meanwhile. Off (w_trace NULL): one load
 * and branch at each hook.
 */
#ifndef ROOK_DIAG_TRACE_H
#define ROOK_DIAG_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct rook_rt;
struct rook_task;
struct rook__worker;
struct rook__trace;

enum rook__trace_kind {
	ROOK__TR_RUN = 1, /* a: task id, b: duration ns */
	ROOK__TR_SPAWN,   /* a: flow id */
	ROOK__TR_WAKE,    /* a: flow id */
	ROOK__TR_FLOW_IN, /* a: flow id, at a run slice's start */
	ROOK__TR_PARK,    /* b: duration ns */
	ROOK__TR_STEAL,   /* a: tasks taken, b: victim worker */
	ROOK__TR_IO,      /* a: 0 submitted, 1 completed, 2 cancelled */
	ROOK__TR_TIMERS,  /* a: timers fired */
};

/* Before the workers start / after they are joined. Best effort: without
 * memory or the file, the runtime runs untraced (one stderr line). */
void rook__trace_rt_init(struct rook_rt *rt);
void rook__trace_rt_fini(struct rook_rt *rt);

/* Record on w's ring (w->w_trace not NULL). */
void rook__trace_event(struct rook__worker *w, enum rook__trace_kind k, uint64_t ts, uint64_t a,
		       uint64_t b);
/* The worker switches from its current task (or the scheduler) to `to`
 * (NULL: the scheduler): ends one run slice, starts the next. */
void rook__trace_switch(struct rook__worker *w, struct rook_task *to);
/* A flow starts at t's spawn or wake, on worker w (NULL: the caller's, if
 * it is one). Callers test rook__trace_active first: runtimes tracing. */
extern _Atomic int rook__trace_active;
void rook__trace_flow(struct rook__worker *w, struct rook_task *t, enum rook__trace_kind k);

#endif
