/*
 * blob_migrate.h: moves a data directory's blobs from one backend to
 * another (the local directory, an S3 location) while a server may be
 * using them: `haven blobs migrate`.
 *
 * The steps, each safe to interrupt (a second run resumes):
 *   1. copy every object of the source that the destination lacks
 *      (same size: kept; the writers check each sha256 while streaming,
 *      and the size once stored);
 *   2. write blobs.conf naming the destination, with the source as
 *      `previous`: from now on writes go to the destination and reads
 *      that miss there look in the source;
 *   3. wait until the running server took it up and finished the writes
 *      it had begun on the source (or until none runs);
 *   4. copy again what arrived in between;
 *   5. write blobs.conf without `previous`.
 * Nothing is deleted: the source keeps its objects. gc.lock is held
 * throughout, and gc refuses to run while blobs.conf names a previous
 * store.
 */
#ifndef HAVEN_BLOB_MIGRATE_H
#define HAVEN_BLOB_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "storage/blob.h"

struct blob_migrate_report {
	char from[600], to[600];
	uint64_t objects;	/* in the source (both passes, counted once) */
	uint64_t copied, copied_bytes;
	uint64_t skipped, skipped_bytes;	/* already at the destination */
	bool noop;		/* already there, no migration in progress */
	bool server;		/* a running server switched over */
	double seconds;
};

/* Moves the blobs under data_dir to `to`. progress (may be NULL) gets
 * one line per object copied. wait_s bounds step 3 (and the wait for the
 * final blobs.conf). A missing bucket is refused unless create_bucket. */
int blob_migrate_run(const char *data_dir, const struct blob_location *to,
		     bool create_bucket, int wait_s, FILE *progress,
		     struct blob_migrate_report *rep, struct err *err);

#endif
