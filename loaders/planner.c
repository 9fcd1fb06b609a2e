/*
 * planner.c: the placement arithmetic of planner.h. Pure: no device
 * calls, so it is tested with made-up numbers.
 */
#include "common/compat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/planner.h"

static uint64_t align_up(uint64_t n)
{
	return (n + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
}

static double gb(uint64_t n)
{
	return (double)n / 1e9;
}

const char *plan_kind_name(enum plan_kind k)
{
	return k == PLAN_IS_RESIDENT ? "resident" :
	       k == PLAN_IS_OFFLOAD ? "offload" : "refused";
}

int plan_mode_parse(const char *s)
{
	if (!strcmp(s, "auto"))
		return PLAN_AUTO;
	if (!strcmp(s, "resident"))
		return PLAN_RESIDENT;
	if (!strcmp(s, "offload"))
		return PLAN_OFFLOAD;
	return -1;
}

int plan_make(struct plan *p, const struct plan_input *in, struct err *err)
{
	uint64_t avail = in->free_vram, *blocks = NULL, left;

	memset(p, 0, sizeof(*p));
	if (in->nblocks < 0 || in->nblocks > 100000)
		return err_set(err, ERR_INVALID, "bad block count %d", in->nblocks);
	if (in->vram_limit && in->vram_limit < avail)
		avail = in->vram_limit;
	p->budget = avail > in->reserve + PLAN_HEADROOM ?
		    avail - in->reserve - PLAN_HEADROOM : 0;
	blocks = calloc((size_t)in->nblocks + 1, sizeof(*blocks));
	if (!blocks)
		return err_set(err, ERR_FAIL, "out of memory");
	for (size_t i = 0; i < in->count; i++) {
		uint64_t a = align_up(in->items[i].nbytes);
		int b = in->items[i].block;
		p->total += a;
		if (b >= 0 && b < in->nblocks)
			blocks[b] += a;
		else
			p->base += a;
	}
	for (int b = 0; b < in->nblocks; b++)
		if (blocks[b] > p->max_block)
			p->max_block = blocks[b];

	if (in->mode != PLAN_OFFLOAD && p->total <= p->budget) {
		p->kind = PLAN_IS_RESIDENT;
		p->resident_blocks = in->nblocks;
		p->device_bytes = p->total;
		snprintf(p->why, sizeof(p->why),
			 "%.3f GB of tensors fit in a %.3f GB budget (%.3f GB left)",
			 gb(p->total), gb(p->budget), gb(p->budget - p->total));
		goto out;
	}
	if (in->mode == PLAN_RESIDENT || in->nblocks == 0) {
		p->kind = PLAN_IS_REFUSED;
		snprintf(p->why, sizeof(p->why),
			 "%.3f GB of tensors do not fit in a %.3f GB budget%s",
			 gb(p->total), gb(p->budget),
			 in->nblocks ? "" : " and the model has no offload blocks");
		goto out;
	}
	/* Offload: base + two streaming buffers must fit; the rest of the
	 * budget keeps the first blocks resident. */
	if (p->base + 2 * p->max_block > p->budget) {
		p->kind = PLAN_IS_REFUSED;
		snprintf(p->why, sizeof(p->why),
			 "offload needs %.3f GB (%.3f GB resident + 2 x %.3f GB block buffers), the budget is %.3f GB",
			 gb(p->base + 2 * p->max_block), gb(p->base),
			 gb(p->max_block), gb(p->budget));
		goto out;
	}
	p->kind = PLAN_IS_OFFLOAD;
	left = p->budget - p->base - 2 * p->max_block;
	p->device_bytes = p->base + 2 * p->max_block;
	for (int b = 0; b < in->nblocks; b++) {
		/* A forced offload keeps at least one block streaming. */
		if (blocks[b] > left || (in->mode == PLAN_OFFLOAD &&
					 b == in->nblocks - 1))
			break;
		left -= blocks[b];
		p->device_bytes += blocks[b];
		p->resident_blocks++;
	}
	p->streamed_blocks = in->nblocks - p->resident_blocks;
	for (int b = p->resident_blocks; b < in->nblocks; b++)
		p->host_pinned += blocks[b];
	if (in->h2d_gbps > 0)
		p->pass_seconds = (double)p->host_pinned / (in->h2d_gbps * 1e9);
	snprintf(p->why, sizeof(p->why),
		 "%.3f GB do not fit in %.3f GB: %d of %d blocks resident, %d streamed (%.3f GB pinned on the host), peak %.3f GB",
		 gb(p->total), gb(p->budget), p->resident_blocks, in->nblocks,
		 p->streamed_blocks, gb(p->host_pinned), gb(p->device_bytes));
out:
	free(blocks);
	return 0;
}
