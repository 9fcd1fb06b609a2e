/*
 * pipeline.h: one pass over one checkpoint file. Reader threads pread
 * large chunks into a ring of staging buffers (pinned when a GPU is in
 * use) and sum each tensor's checksum piece as the bytes land; the calling
 * thread takes the chunks in file order to update the file's sha256 and
 * gives each slot back once its copies to the device have completed.
 * Copies run asynchronously on several streams, so disk or page cache,
 * host memory and PCIe all work at once.
 */
#ifndef HAVEN_PIPELINE_H
#define HAVEN_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "loaders/tensor.h"

struct cuda;

struct pipeline_opts {
	int readers;		/* reader threads, 1..32 */
	int slots;		/* staging buffers, >= readers, <= 64 */
	size_t chunk;		/* bytes per read */
	bool sha;		/* compute the file's sha256 */
	struct cuda *cuda;	/* NULL: host only (no device copies) */
	int streams;
};

/* Where each tensor goes: dev[i] (a device address, 0 = not to the
 * device) and host[i] (a host buffer, NULL = none), for tensors[i]. */
struct pipeline_dest {
	const uint64_t *dev;
	unsigned char *const *host;
};

struct pipeline_stats {
	uint64_t bytes;
	double seconds;
	char sha256[65];	/* "" unless opts.sha */
};

/* tensors: this file's tensors, sorted by offset, their host_sum
 * accumulated (callers zero them first). */
int pipeline_run(struct pipeline_stats *st, int fd, uint64_t size,
		 struct tensor_desc *tensors, size_t count,
		 const struct pipeline_dest *dest,
		 const struct pipeline_opts *opts, struct err *err);

#endif
