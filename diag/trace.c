/* SPDX-License-Identifier: MIT */
/*
 * ROOK_TRACE: not implemented yet; rook_trace_flush exists so programs
 * written against the documented API link and run.
 */
#include <rook.h>

int rook_trace_flush(void)
{
	return 0;
}
