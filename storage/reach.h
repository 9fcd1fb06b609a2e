/*
 * reach.h: what a repository references. Walks every commit reachable
 * from every ref and reports each LFS pointer found in their trees, once
 * per distinct tree. Missing git objects are reported as errors, so the
 * walk doubles as the git half of fsck.
 */
#ifndef HAVEN_REACH_H
#define HAVEN_REACH_H

#include <stdint.h>
#include <git2.h>

#include "common/err.h"
#include "storage/hash.h"

/* Called for each LFS object a reachable tree names (possibly more than
 * once for the same object); a non-zero return stops the walk. */
typedef int (*reach_lfs_fn)(const char *sha256, uint64_t size,
			    const char *path, void *arg);

/* refs_out, when not NULL, receives the number of refs walked. */
int reach_lfs_objects(git_repository *repo, reach_lfs_fn fn, void *arg,
		      size_t *refs_out, struct err *err);

#endif
