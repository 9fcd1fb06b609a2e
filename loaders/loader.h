/*
 * loader.h: `haven load` as a library call. Steps, each reported:
 *   1. the files of the revision and their integrity (sha256 = LFS oid,
 *      computed while the bytes are read, once);
 *   2. structure: strict safetensors headers and sharded indexes, torch
 *      zip checkpoints through the restricted pickle reader;
 *   3. the manifests of loaders/manifests/ that name the repository:
 *      missing, extra and different tensors;
 *   4. the placement plan (planner.h);
 *   5-7. with a CUDA driver and no dry run: the pipelined copy, the device
 *      checksums against the host ones, one BF16 GEMV against the CPU, and
 *      the throughput against the pinned PCIe ceiling measured in the run.
 * Without a driver steps 5-7 are skipped with the reason in the report.
 */
#ifndef HAVEN_LOADER_H
#define HAVEN_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "loaders/tensor.h"

struct load_opts {
	const char *repo, *rev;		/* rev NULL: "main" */
	const char *endpoint;		/* one of endpoint and data_dir */
	const char *data_dir;
	const char *token;		/* for endpoint; may be NULL */
	const char *cache_dir;		/* downloads (endpoint) */
	const char *manifest_dir;	/* NULL: the installed manifests */
	const char *manifest_file;	/* use only this manifest */
	const char *only;		/* only the component of that name */
	int device;
	int mode;			/* enum plan_mode */
	uint64_t vram_limit;		/* 0: none */
	bool dry_run;			/* steps 1-4 only */
	bool require_gpu;		/* no driver is an error */
	bool keep;			/* keep tensors on the device */
	bool manifest_soft;		/* report mismatches, do not fail */
	bool trust_blobs;		/* --data: skip the sha256 at load (the
					 * blob store is content-addressed and
					 * was hashed at ingest; haven fsck
					 * re-checks); device checksums stay */
	int readers, parallel;
	size_t chunk;
};

struct load;

/* Runs the load. Returns 0 when every check passed (or the GPU steps were
 * skipped for want of a driver); ERR_CORRUPT for a failed integrity or
 * device check, ERR_INVALID for a malformed checkpoint or a manifest
 * mismatch, ERR_TOOBIG when the plan refuses. *out is set in every case
 * where a report exists, failures included. */
int load_run(struct load **out, const struct load_opts *opts, struct err *err);

/* The tensors of a torch.save zip checkpoint open on fd (size bytes),
 * read without running its pickle; each is added to out as lying in file
 * fidx. Big-endian checkpoints and missing or short storages are refused,
 * naming path. */
int loader_torch_tensors(struct tensor_list *out, int fidx, int fd,
			 uint64_t size, const char *path, struct err *err);
/* The report (borrowed; see docs/loaders.md for its fields). */
json_t *load_report(const struct load *l);
/* Tensors kept on the device (opts.keep): count, then each one's
 * description (borrowed) and device address. */
size_t load_tensor_count(const struct load *l);
int load_tensor_at(const struct load *l, size_t i,
		   const struct tensor_desc **desc, uint64_t *dptr);
void load_free(struct load *l);

/* The manifests folder when none is given. */
const char *load_default_manifest_dir(void);

#endif
