/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics shared inside diag/ and the runtime's hooks into it: the
 * registry of running runtimes (for signal-driven dumps), the stall
 * watchdog's lifetime, frame-pointer walks and backtrace printing.
 */
#ifndef ROOK_DIAG_DIAG_H
#define ROOK_DIAG_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rook_rt;

/* Sanitizers must not look at the racy reads of other tasks' stacks and
 * fields that diagnostics make (each read is validated instead). */
#define ROOK__DIAG_NOSAN                                                                           \
	__attribute__((no_sanitize_address, no_sanitize_thread, no_sanitize_undefined, noinline))

#define ROOK__BT_MAX 48

/* Runtime start (workers running) and stop (before anything is torn down):
 * registers rt for ROOK_DUMP_SIGNAL, starts and stops the ROOK_STALL_MS
 * watchdog and the ROOK_TRACE writer. Never fails the runtime. */
void rook__diag_rt_start(struct rook_rt *rt);
void rook__diag_rt_stop(struct rook_rt *rt);

/* Return addresses along a frame-pointer chain that stays inside [lo, hi)
 * and climbs; pc is the first entry. Returns the number stored. */
int rook__diag_walk(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *out,
		    int max);

/* Buffered output to an fd for dumps and reports (heap buffer: dumps may
 * run on a small task stack). */
struct rook__out {
	int o_fd;
	int o_stream; /* a pipe or socket (dump.c): writes bounded in time, no SIGPIPE */
	int o_err;    /* first write error (-errno), sticky */
	size_t o_n;
	size_t o_total; /* bytes written so far */
	char o_buf[16384];
};
void rook__out_init(struct rook__out *o, int fd);
void rook__out_printf(struct rook__out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void rook__out_flush(struct rook__out *o);

/* Print pcs symbolized, one "    #i name+off (object)" line each; the
 * first is an exact pc if first_exact (an interrupted instruction), else
 * every one is a return address. */
void rook__out_backtrace(struct rook__out *o, const uintptr_t *pcs, int n, bool first_exact);

/* Call fn on the caller's runtime (a worker's own), or from a plain thread
 * on the only running runtime under the registry lock (it cannot stop
 * meanwhile). Returns fn's result, or -ESRCH. */
int rook__diag_with_rt(int (*fn)(struct rook_rt *rt, void *ctx), void *ctx);

/* The longest stall the watchdog has seen on rt (0 without one). */
uint64_t rook__diag_longest_ns(struct rook_rt *rt);

/* rook_stats_write for rt (NULL: the caller's runtime). */
int rook__stats_write_rt(struct rook_rt *rt, int fd, int format);

/* ROOK_STATS_SOCKET=path: a thread that answers each connection to a unix
 * socket at path with rt's metrics (Prometheus text), for tools/rook-top
 * or a scraper. Started and stopped with the diagnostics of rt; NULL if
 * not asked for or not possible (one stderr line). */
struct rook__serve;
struct rook__serve *rook__serve_start(struct rook_rt *rt);
void rook__serve_stop(struct rook__serve *s);

/* Dump rt's tasks to o; returns the number of tasks listed. */
long rook__dump_rt(struct rook_rt *rt, struct rook__out *o);

#endif
