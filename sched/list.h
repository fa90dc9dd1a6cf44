/* SPDX-License-Identifier: MIT */
/*
 * An intrusive doubly-linked list with NULL ends (libuv's queue.h is the
 * model; NULL ends instead of a sentinel, so a zeroed list is empty and
 * needs no init). A struct embeds a struct rook__link and is reached from
 * it with rook__list_entry. No locking: the owner of the list serialises.
 */
#ifndef ROOK_SCHED_LIST_H
#define ROOK_SCHED_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct rook__link {
	struct rook__link *l_prev, *l_next;
};

struct rook__list {
	struct rook__link *l_first, *l_last;
};

#define rook__list_entry(link, type, field) ((type *)((char *)(link)-offsetof(type, field)))

static inline bool rook__list_empty(const struct rook__list *l)
{
	return l->l_first == NULL;
}

static inline void rook__list_push_back(struct rook__list *l, struct rook__link *n)
{
	n->l_next = NULL;
	n->l_prev = l->l_last;
	if (l->l_last)
		l->l_last->l_next = n;
	else
		l->l_first = n;
	l->l_last = n;
}

/* n must be on l. */
static inline void rook__list_remove(struct rook__list *l, struct rook__link *n)
{
	if (n->l_prev)
		n->l_prev->l_next = n->l_next;
	else
		l->l_first = n->l_next;
	if (n->l_next)
		n->l_next->l_prev = n->l_prev;
	else
		l->l_last = n->l_prev;
	n->l_prev = n->l_next = NULL;
}

/* The first element, unlinked, or NULL if l is empty. */
static inline struct rook__link *rook__list_pop_front(struct rook__list *l)
{
	struct rook__link *n = l->l_first;
	if (n)
		rook__list_remove(l, n);
	return n;
}

#endif
