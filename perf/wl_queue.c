/* SPDX-License-Identifier: MIT */
/*
 * Queue workloads: ping_pong and mpmc_queue (shared/bench/WORKLOADS.md),
 * in the peers' shape. ping_pong: P pairs, each passing a counter back and
 * forth R times over two one-slot queues (capacity 1); the ponger echoes
 * value + 1 until its queue is closed. mpmc_queue: 4 producers put the
 * integers 1..N (a quarter each) into one queue of capacity 1,024 while 4
 * consumers sum them until the queue is closed and drained.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "perf/perf.h"

/* ---- ping_pong ------------------------------------------------------- */

struct pp_pair {
	struct rook_queue *pp_ping, *pp_pong;
	long pp_rounds;
	long pp_last; /* the pinger's final value */
};

static int pp_ponger(void *arg)
{
	struct pp_pair *p = arg;
	long v;
	int rc;

	while ((rc = rook_queue_get(p->pp_ping, &v)) == 0) {
		v++;
		rc = rook_queue_put(p->pp_pong, &v);
		if (rc < 0)
			return rc;
	}
	return rc == -EPIPE ? 0 : rc;
}

static int pp_pinger(void *arg)
{
	struct pp_pair *p = arg;
	long v = 0;
	int rc = 0;

	for (long r = 0; r < p->pp_rounds && rc == 0; r++) {
		rc = rook_queue_put(p->pp_ping, &v);
		if (rc == 0)
			rc = rook_queue_get(p->pp_pong, &v);
	}
	rook_queue_close(p->pp_ping);
	p->pp_last = v;
	return rc;
}

int perf_ping_pong(struct perf_run *run)
{
	size_t pairs = run->pr_quick ? 100 : 1000;
	long rounds = run->pr_quick ? 100 : 1000;
	struct pp_pair *p = calloc(pairs, sizeof(*p));
	struct rook_task **h = calloc(2 * pairs, sizeof(*h));
	size_t made = 0, spawned = 0;
	int rc = p && h ? 0 : -ENOMEM;

	for (; rc == 0 && made < pairs; made++) {
		p[made].pp_rounds = rounds;
		rc = rook_queue_create(&p[made].pp_ping, sizeof(long), 1);
		if (rc == 0) {
			rc = rook_queue_create(&p[made].pp_pong, sizeof(long), 1);
			if (rc < 0)
				rook_queue_destroy(p[made].pp_ping);
		}
		if (rc < 0)
			break;
	}
	for (size_t i = 0; rc == 0 && i < 2 * made; i++) {
		rc = rook_spawn(&h[spawned], i % 2 ? pp_pinger : pp_ponger, &p[i / 2]);
		if (rc == 0)
			spawned++;
	}
	if (rc < 0) /* let the spawned pongers end */
		for (size_t i = 0; i < made; i++)
			rook_queue_close(p[i].pp_ping);
	int jrc = perf_join_all(h, spawned);
	if (rc == 0)
		rc = jrc;
	if (rc == 0) {
		int64_t total = 0;
		for (size_t i = 0; i < pairs; i++) {
			if (!perf_check(run, "ping_pong pair round trips", p[i].pp_last, rounds))
				break;
			total += p[i].pp_last;
		}
		perf_check(run, "ping_pong total", total, (int64_t)pairs * rounds);
	}
	for (size_t i = 0; i < made; i++) {
		rook_queue_destroy(p[i].pp_ping);
		rook_queue_destroy(p[i].pp_pong);
	}
	free(h);
	free(p);
	run->pr_ops = (uint64_t)pairs * (uint64_t)rounds;
	return rc;
}

/* ---- mpmc_queue ------------------------------------------------------ */

enum { MPMC_PROD = 4, MPMC_CONS = 4, MPMC_CAP = 1024 };

struct mpmc {
	struct rook_queue *m_q;
	int64_t m_per; /* items per producer */
	struct {
		_Alignas(64) int64_t c_sum;
	} m_sums[MPMC_CONS];
	_Atomic int m_next_prod, m_next_cons;
};

static int mpmc_producer(void *arg)
{
	struct mpmc *m = arg;
	int64_t p = atomic_fetch_add_explicit(&m->m_next_prod, 1, memory_order_relaxed);

	for (int64_t i = p * m->m_per; i < (p + 1) * m->m_per; i++) {
		int64_t v = i + 1;
		int rc = rook_queue_put(m->m_q, &v);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int mpmc_consumer(void *arg)
{
	struct mpmc *m = arg;
	int c = atomic_fetch_add_explicit(&m->m_next_cons, 1, memory_order_relaxed);
	int64_t s = 0, v;
	int rc;

	while ((rc = rook_queue_get(m->m_q, &v)) == 0)
		s += v;
	/* Read by the main task after joining this one. */
	m->m_sums[c].c_sum = s;
	return rc == -EPIPE ? 0 : rc;
}

int perf_mpmc_queue(struct perf_run *run)
{
	int64_t n = run->pr_quick ? 100000 : 10000000;
	struct mpmc m = {.m_per = n / MPMC_PROD};
	struct rook_task *prod[MPMC_PROD], *cons[MPMC_CONS];
	size_t np = 0, nc = 0;
	int rc = rook_queue_create(&m.m_q, sizeof(int64_t), MPMC_CAP);

	if (rc < 0)
		return rc;
	while (rc == 0 && nc < MPMC_CONS) {
		rc = rook_spawn(&cons[nc], mpmc_consumer, &m);
		if (rc == 0)
			nc++;
	}
	while (rc == 0 && np < MPMC_PROD) {
		rc = rook_spawn(&prod[np], mpmc_producer, &m);
		if (rc == 0)
			np++;
	}
	int jrc = perf_join_all(prod, np);
	rook_queue_close(m.m_q);
	int crc = perf_join_all(cons, nc);
	if (rc == 0)
		rc = jrc ? jrc : crc;
	if (rc == 0) {
		int64_t total = 0;
		for (int c = 0; c < MPMC_CONS; c++)
			total += m.m_sums[c].c_sum;
		perf_check(run, "mpmc_queue sum", total, n * (n + 1) / 2);
	}
	rook_queue_destroy(m.m_q);
	run->pr_ops = (uint64_t)n;
	return rc;
}
