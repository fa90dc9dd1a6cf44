/* SPDX-License-Identifier: MIT */
/*
 * chain: chained coroutines, ported (Real Python's chained.py). For each n,
 * part1(n) then part2(n, result of part1), each sleeping a pseudo-random
 * while; the chains for all n run concurrently (gathered), so the program
 * takes about as long as the slowest chain.
 *
 * In asyncio part1 and part2 are coroutines awaited in turn; in rook a task
 * has its own stack, so they are plain functions that may block.
 *
 *   demo-chain [n ...]     (default: 9 6 3)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <rook.h>

#define MAX_CHAINS 16

struct chain {
	int c_n;
	unsigned c_seed;
	char c_part1[64];
	char c_part2[160];
};

/* 50..299 ms, deterministic per chain. */
static uint64_t pause_ns(struct chain *c)
{
	return (uint64_t)(50 + rand_r(&c->c_seed) % 250) * ROOK_MSEC;
}

static int part1(struct chain *c)
{
	uint64_t ns = pause_ns(c);
	printf("part1(%d) sleeping for %.2f seconds.\n", c->c_n, (double)ns / 1e9);
	int rc = rook_sleep(ns);
	snprintf(c->c_part1, sizeof(c->c_part1), "result%d-1", c->c_n);
	printf("Returning part1(%d) == %s.\n", c->c_n, c->c_part1);
	return rc;
}

static int part2(struct chain *c)
{
	uint64_t ns = pause_ns(c);
	printf("part2(%d, '%s') sleeping for %.2f seconds.\n", c->c_n, c->c_part1,
	       (double)ns / 1e9);
	int rc = rook_sleep(ns);
	snprintf(c->c_part2, sizeof(c->c_part2), "result%d-2 derived from %s", c->c_n, c->c_part1);
	printf("Returning part2(%d, '%s') == %s.\n", c->c_n, c->c_part1, c->c_part2);
	return rc;
}

static int chain(void *arg)
{
	struct chain *c = arg;
	uint64_t t0 = rook_now();
	int rc = part1(c);
	if (rc == 0)
		rc = part2(c);
	if (rc == 0)
		printf("-->Chained result%d => %s (took %.2f seconds).\n", c->c_n, c->c_part2,
		       (double)(rook_now() - t0) / 1e9);
	return rc;
}

struct args {
	struct chain a_chains[MAX_CHAINS];
	int a_count;
};

static int main_task(void *arg)
{
	struct args *a = arg;
	struct rook_task *t[MAX_CHAINS];
	int status[MAX_CHAINS], rc = 0, n = 0;
	uint64_t t0 = rook_now();

	for (; n < a->a_count && rc == 0; n++)
		rc = rook_spawn(&t[n], chain, &a->a_chains[n]);
	if (rc < 0)
		return rc;
	rc = rook_gather(t, (size_t)n, status);
	printf("Program finished in %.2f seconds.\n", (double)(rook_now() - t0) / 1e9);
	for (int i = 0; i < n && rc == 0; i++)
		rc = status[i];
	return rc;
}

int main(int argc, char **argv)
{
	static struct args a;
	static const int dflt[] = {9, 6, 3};
	int count = argc > 1 ? argc - 1 : 3;

	if (count > MAX_CHAINS) {
		fprintf(stderr, "demo-chain: at most %d chains\n", MAX_CHAINS);
		return 2;
	}
	for (int i = 0; i < count; i++) {
		int n = argc > 1 ? atoi(argv[i + 1]) : dflt[i];
		a.a_chains[i] = (struct chain){.c_n = n, .c_seed = (unsigned)n * 2654435761u};
	}
	a.a_count = count;
	setvbuf(stdout, NULL, _IOLBF, 0);
	return rook_run(NULL, main_task, &a) == 0 ? 0 : 1;
}
