/*
 * test_planner.c: the placement arithmetic with made-up and real sizes:
 * resident with headroom, block offload with the resident-block count,
 * refusals with their numbers, and the Helios transformer under 6 GiB.
 */
#include "common/compat.h"

#include <stdlib.h>
#include <string.h>

#include "loaders/planner.h"
#include "tests/unit/test.h"

#define GiB ((uint64_t)1 << 30)
#define MiB ((uint64_t)1 << 20)

static int test_resident(void)
{
	struct plan_item it[3] = { { 1000, -1 }, { 100, 0 }, { 256, 1 } };
	struct plan_input in = { .items = it, .count = 3, .nblocks = 2,
				 .free_vram = GiB, .mode = PLAN_AUTO };
	struct plan p;
	int rc = -1;

	CHECK(plan_make(&p, &in, NULL) == 0);
	CHECK(p.kind == PLAN_IS_RESIDENT);
	/* 1000 -> 1024, 100 -> 256, 256 -> 256 */
	CHECK(p.total == 1536 && p.base == 1024 && p.max_block == 256);
	CHECK(p.budget == GiB - PLAN_HEADROOM);
	CHECK(p.device_bytes == 1536 && p.resident_blocks == 2);
	rc = 0;
out:
	return rc;
}

static int test_offload_and_refuse(void)
{
	/* 1 GiB base + 10 blocks of 1 GiB, 6 GiB free, no reserve:
	 * budget 5.75 GiB; base + 2 buffers = 3 GiB; 2 more blocks stay. */
	struct plan_item it[11];
	struct plan_input in = { .items = it, .count = 11, .nblocks = 10,
				 .free_vram = 6 * GiB, .mode = PLAN_AUTO,
				 .h2d_gbps = 50 };
	struct plan p;
	int rc = -1;

	it[0].nbytes = GiB, it[0].block = -1;
	for (int i = 1; i <= 10; i++)
		it[i].nbytes = GiB, it[i].block = i - 1;
	CHECK(plan_make(&p, &in, NULL) == 0);
	CHECK(p.kind == PLAN_IS_OFFLOAD);
	CHECK(p.resident_blocks == 2 && p.streamed_blocks == 8);
	CHECK(p.device_bytes == 5 * GiB && p.device_bytes <= p.budget);
	CHECK(p.host_pinned == 8 * GiB);
	CHECK(p.pass_seconds > 0.17 && p.pass_seconds < 0.18);
	/* The limit wins over free memory. */
	in.free_vram = 80 * GiB;
	in.vram_limit = 6 * GiB;
	CHECK(plan_make(&p, &in, NULL) == 0 && p.kind == PLAN_IS_OFFLOAD &&
	      p.resident_blocks == 2);
	/* Forced resident: refused with the numbers. */
	in.mode = PLAN_RESIDENT;
	CHECK(plan_make(&p, &in, NULL) == 0 && p.kind == PLAN_IS_REFUSED);
	CHECK(strstr(p.why, "11.811 GB") && strstr(p.why, "do not fit"));
	/* Forced offload when everything fits still streams one block. */
	in.mode = PLAN_OFFLOAD;
	in.vram_limit = 0;
	CHECK(plan_make(&p, &in, NULL) == 0 && p.kind == PLAN_IS_OFFLOAD &&
	      p.streamed_blocks == 1);
	/* Too small even for offload: refused. */
	in.mode = PLAN_AUTO;
	in.vram_limit = 2 * GiB;
	CHECK(plan_make(&p, &in, NULL) == 0 && p.kind == PLAN_IS_REFUSED);
	CHECK(strstr(p.why, "offload needs 3.221 GB"));
	/* No blocks and no room: refused. */
	in.nblocks = 0;
	for (int i = 1; i <= 10; i++)
		it[i].block = -1;
	CHECK(plan_make(&p, &in, NULL) == 0 && p.kind == PLAN_IS_REFUSED &&
	      strstr(p.why, "no offload blocks"));
	/* The reserve counts. */
	in.vram_limit = 0;
	in.free_vram = 12 * GiB;
	in.reserve = 0;
	CHECK(plan_make(&p, &in, NULL) == 0 && p.kind == PLAN_IS_RESIDENT);
	in.reserve = GiB;
	CHECK(plan_make(&p, &in, NULL) == 0 && p.kind == PLAN_IS_REFUSED);
	rc = 0;
out:
	return rc;
}

/* The Helios transformer in BF16 (from the manifest's shapes): 40 blocks
 * of 702,788,608 bytes and 513,310,848 bytes outside them, under
 * --vram-limit 6G with its 2 GiB reserve. */
static int test_helios_6g(void)
{
	struct plan_item it[41];
	struct plan_input in = { .items = it, .count = 41, .nblocks = 40,
				 .free_vram = 80 * GiB, .vram_limit = 6 * GiB,
				 .reserve = 2 * GiB, .mode = PLAN_OFFLOAD };
	struct plan p;
	int rc = -1;

	it[0].nbytes = 513310848, it[0].block = -1;
	for (int i = 1; i <= 40; i++)
		it[i].nbytes = 702788608, it[i].block = i - 1;
	CHECK(plan_make(&p, &in, NULL) == 0);
	CHECK(p.kind == PLAN_IS_OFFLOAD);
	CHECK(p.device_bytes <= 6 * GiB - 2 * GiB - PLAN_HEADROOM);
	CHECK(p.resident_blocks == 2 && p.streamed_blocks == 38);
	rc = 0;
out:
	return rc;
}

static int test_mode_parse(void)
{
	int rc = -1;

	CHECK(plan_mode_parse("auto") == PLAN_AUTO);
	CHECK(plan_mode_parse("offload") == PLAN_OFFLOAD);
	CHECK(plan_mode_parse("resident") == PLAN_RESIDENT);
	CHECK(plan_mode_parse("fast") == -1);
	rc = 0;
out:
	return rc;
}

int main(void)
{
	RUN(test_resident);
	RUN(test_offload_and_refuse);
	RUN(test_helios_6g);
	RUN(test_mode_parse);
	return TEST_REPORT();
}
