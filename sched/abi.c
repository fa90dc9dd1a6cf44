/* SPDX-License-Identifier: MIT */
/*
 * Binary compatibility with 0.1. Its struct rook_config had no reserved
 * words, so a binary built against 0.1 passes a shorter struct: the ROOK_0
 * versions of rook_run and rook_rt_start (cmake/rook.map) copy it into a
 * zeroed current one. Only the shared library carries them: a static link
 * is always against the header it was built with.
 */
#include <rook.h>

#include <stddef.h>

struct config_0_1 {
	unsigned workers;
	size_t stack_size;
	unsigned ring_entries;
	unsigned flags;
};

static const struct rook_config *upgrade(const struct config_0_1 *old, struct rook_config *c)
{
	if (!old)
		return NULL;
	*c = (struct rook_config){.workers = old->workers,
				  .stack_size = old->stack_size,
				  .ring_entries = old->ring_entries,
				  .flags = old->flags};
	return c;
}

int rook__run_0_1(const struct config_0_1 *cfg, rook_fn main, void *arg);
int rook__rt_start_0_1(struct rook_rt **rt, const struct config_0_1 *cfg);

__attribute__((visibility("default"), symver("rook_run@ROOK_0"))) int
rook__run_0_1(const struct config_0_1 *cfg, rook_fn main, void *arg)
{
	struct rook_config c;
	return rook_run(upgrade(cfg, &c), main, arg);
}

__attribute__((visibility("default"), symver("rook_rt_start@ROOK_0"))) int
rook__rt_start_0_1(struct rook_rt **rt, const struct config_0_1 *cfg)
{
	struct rook_config c;
	return rook_rt_start(rt, upgrade(cfg, &c));
}
