/*
 * mirror.h: copies repositories from an upstream Hub into the store with
 * their exact commit ids: git history through libgit2's smart-HTTP fetch,
 * then the LFS objects of the wanted revisions, each verified by size and
 * sha256 before it is accepted. Refs become visible only after every LFS
 * object they need is stored (blobs, then git objects, then refs, then
 * LMDB), so a client never sees a commit whose files are missing, and an
 * interrupted run resumes where it stopped.
 */
#ifndef HAVEN_MIRROR_H
#define HAVEN_MIRROR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "ingest/upstream.h"
#include "storage/store.h"

struct mirror_progress {
	const char *repo;
	uint64_t files_done, files_total;
	uint64_t bytes_done, bytes_total;
};
typedef void (*mirror_progress_fn)(const struct mirror_progress *p,
				   void *arg);

struct mirror_options {
	const char *type;		/* "model" (default), "dataset", "space" */
	const char *name;		/* namespace/name upstream and here */
	const char *const *revisions;	/* NULL: every branch and tag */
	size_t nrevisions;
	const char *const *include;	/* globs on repo paths; NULL: all */
	size_t ninclude;
	const char *const *exclude;
	size_t nexclude;
	const char *token;		/* NULL: the upstream's configured one */
	bool history_only;		/* git only, no LFS objects (pull-through) */
	int parallel;			/* concurrent LFS downloads; 0: 4 */
	mirror_progress_fn progress;
	void *progress_arg;
	const atomic_bool *cancel;	/* set: stop soon, as a failure */
};

struct mirror_result {
	uint64_t refs_updated;
	uint64_t lfs_fetched, lfs_present;
	uint64_t bytes_fetched;
	bool created_repo;
	bool upstream_private;
	char gated[8];			/* the upstream's gating, "" when none */
};

int mirror_repo(struct store *store, const struct upstream_config *cfg,
		const struct mirror_options *opt, struct mirror_result *res,
		struct err *err);

#endif
