/*
 * lfs_claims.h: which LFS objects a repository may name (db "lfs_claims",
 * see meta_keys.h). The blob store is shared by every repository, so
 * knowing an object's sha256 must not be enough to reach its bytes: an
 * object enters a repository only through an upload whose bytes were
 * verified for that repository, an import into it, or its own history.
 */
#ifndef HAVEN_LFS_CLAIMS_H
#define HAVEN_LFS_CLAIMS_H

#include <stdbool.h>

#include "common/err.h"
#include "storage/meta.h"

/* Records that repo_id may name sha256 (idempotent). */
int lfs_claim_add(struct meta *meta, const char *repo_id, const char *sha256,
		  struct err *err);

/* True when repo_id may name sha256. */
bool lfs_claim_has(struct meta *meta, const char *repo_id, const char *sha256);

#endif
