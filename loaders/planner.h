/*
 * planner.h: where a model's tensors go on one GPU. Given the tensors (each
 * tagged with its offload block, or -1 for the always-resident rest) and
 * the free device memory, it picks one of:
 *
 *   resident  every tensor on the device, with headroom left;
 *   offload   the non-block tensors and the first K blocks stay resident,
 *             the other blocks stream in from pinned host memory, two
 *             block-sized device buffers (one in use, one being filled on
 *             a second stream) take them in turn;
 *   refuse    nothing fits: the numbers say by how much.
 *
 * Arithmetic: each tensor takes its size rounded up to 256 bytes (the
 * sub-allocation alignment); budget = min(free, limit) - reserve -
 * headroom.
 */
#ifndef HAVEN_PLANNER_H
#define HAVEN_PLANNER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define PLAN_ALIGN 256
#define PLAN_HEADROOM ((uint64_t)256 << 20)

enum plan_mode { PLAN_AUTO, PLAN_RESIDENT, PLAN_OFFLOAD };
enum plan_kind { PLAN_IS_RESIDENT, PLAN_IS_OFFLOAD, PLAN_IS_REFUSED };

struct plan_item {
	uint64_t nbytes;
	int block;		/* -1: not part of any block */
};

struct plan_input {
	const struct plan_item *items;
	size_t count;
	int nblocks;
	uint64_t free_vram;
	uint64_t vram_limit;	/* 0: none */
	uint64_t reserve;	/* runtime reserve the manifest asks for */
	double h2d_gbps;	/* for the per-pass estimate; 0: not given */
	enum plan_mode mode;
};

struct plan {
	enum plan_kind kind;
	uint64_t total;		/* all tensors, aligned */
	uint64_t budget;	/* what the plan may use */
	uint64_t base;		/* non-block tensors, aligned */
	uint64_t max_block;	/* largest block, aligned */
	int resident_blocks;	/* blocks 0..K-1 stay on the device */
	int streamed_blocks;
	uint64_t device_bytes;	/* peak device use of the plan */
	uint64_t host_pinned;	/* pinned host bytes the streamed blocks need */
	double pass_seconds;	/* streamed bytes / h2d_gbps per forward pass */
	char why[256];		/* one line: the reason, with numbers */
};

int plan_make(struct plan *out, const struct plan_input *in, struct err *err);
const char *plan_kind_name(enum plan_kind k);
/* "auto", "resident", "offload" -> mode; -1 when unknown. */
int plan_mode_parse(const char *s);

#endif
