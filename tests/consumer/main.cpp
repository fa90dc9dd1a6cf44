// SPDX-License-Identifier: MIT
// rook.h from C++: the header compiles as C++ and links with C linkage.
#include <rook.h>

#include <atomic>

static std::atomic<int> ran{0};

static int child(void *arg)
{
	ran.fetch_add(*static_cast<int *>(arg));
	return 0;
}

static int main_task(void *)
{
	int one = 1;
	struct rook_task *ts[8];
	for (auto &t : ts)
		if (rook_spawn(&t, child, &one) < 0)
			return -1;
	int statuses[8];
	if (rook_gather(ts, 8, statuses) < 0)
		return -1;
	return ran.load() == 8 ? 0 : -1;
}

int main()
{
	rook_config cfg{};
	cfg.workers = 2;
	cfg.flags = ROOK_NO_PIN;
	return rook_run(&cfg, main_task, nullptr) == 0 ? 0 : 1;
}
