/* SPDX-License-Identifier: MIT */
/*
 * first_wins: ask several mirrors for the same thing, take the first
 * answer, cancel the others (asyncio.wait(..., return_when=FIRST_COMPLETED)
 * followed by cancelling the pending set).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rook.h>

#define MIRRORS 4

struct mirror {
	const char *m_name;
	unsigned m_ms; /* how long it takes to answer */
	char m_answer[64];
};

static int query(void *arg)
{
	struct mirror *m = arg;
	int rc = rook_sleep((uint64_t)m->m_ms * ROOK_MSEC);
	if (rc < 0)
		return rc; /* -ECANCELED: we lost the race */
	snprintf(m->m_answer, sizeof(m->m_answer), "v1.2.3 from %s", m->m_name);
	return 0;
}

static int main_task(void *arg)
{
	static struct mirror m[MIRRORS] = {
	    {.m_name = "eu.mirror", .m_ms = 2000},
	    {.m_name = "us.mirror", .m_ms = 150},
	    {.m_name = "asia.mirror", .m_ms = 3000},
	    {.m_name = "nas.mirror", .m_ms = 5000},
	};
	struct rook_task *t[MIRRORS];
	int st[MIRRORS], rc, win;
	uint64_t t0 = rook_now();

	for (int i = 0; i < MIRRORS; i++) {
		rc = rook_spawn(&t[i], query, &m[i]);
		if (rc < 0)
			return rc; /* rook_run cancels the ones started */
	}
	win = rook_wait_any(t, MIRRORS);
	if (win < 0)
		return win;
	printf("%.2f s: first answer: %s\n", (double)(rook_now() - t0) / 1e9, m[win].m_answer);
	for (int i = 0; i < MIRRORS; i++)
		if (i != win)
			rook_cancel(t[i]);
	rc = rook_gather(t, MIRRORS, st); /* the losers' cleanup included */
	if (rc < 0)
		return rc;
	for (int i = 0; i < MIRRORS; i++)
		printf("%-12s %s\n", m[i].m_name,
		       i == win              ? "won"
		       : st[i] == -ECANCELED ? "cancelled"
					     : strerror(-st[i]));
	printf("done in %.2f s\n", (double)(rook_now() - t0) / 1e9);
	return st[win];
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	return rook_run(NULL, main_task, NULL) == 0 ? 0 : 1;
}
