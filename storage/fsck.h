/*
 * fsck.h: integrity checks and garbage collection of a data directory.
 *
 * fsck checks that every reference resolves: each repository record has
 * its git directory, every ref reaches whole commits and trees, and every
 * LFS pointer in any reachable tree names a blob that exists with the
 * pointer's size. With deep, every blob is re-hashed as well.
 *
 * gc removes blobs that no reachable tree of any repository names, and
 * stale temporaries, but only those older than the grace period: a write
 * in flight stores its blob before anything references it, and the grace
 * period covers that window. One gc runs at a time (a lock file).
 */
#ifndef HAVEN_FSCK_H
#define HAVEN_FSCK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "storage/store.h"

struct fsck_report {
	size_t repos, refs, lfs_refs, blobs_checked;
	size_t problems;	/* damage found; each is printed to out */
	size_t warnings;	/* harmless oddities, e.g. stray git dirs */
};

int fsck_run(struct store *store, bool deep, FILE *out,
	     struct fsck_report *rep, struct err *err);

struct gc_report {
	size_t blobs_kept, blobs_removed, tmp_removed;
	uint64_t bytes_removed;
};

int gc_run(struct store *store, int64_t grace_seconds, bool dry_run,
	   FILE *out, struct gc_report *rep, struct err *err);

#endif
