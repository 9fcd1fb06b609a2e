/*
 * listing.h: the flat listing of one commit (every file and folder with its
 * git oid, real size and LFS details), so repo info, tree and paths-info
 * are one read. Built from git the first time a commit is asked for and
 * cached in LMDB (db "listings"); see meta_keys.h.
 */
#ifndef HAVEN_LISTING_H
#define HAVEN_LISTING_H

#include <stdbool.h>
#include <stdint.h>
#include <git2.h>

#include "common/err.h"
#include "storage/gitrepo.h"
#include "storage/hash.h"
#include "storage/meta.h"

struct listing_entry {
	char *path;		/* repo-relative, no leading slash */
	bool is_dir;
	char oid[GIT_HEX_LEN + 1];	/* git blob (pointer for LFS) or tree */
	uint64_t size;		/* real size; 0 for folders */
	bool lfs;
	char sha256[SHA256_HEX_LEN + 1];	/* LFS object, when lfs */
	uint32_t pointer_size;	/* size of the pointer blob, when lfs */
};

struct listing {
	char commit[GIT_HEX_LEN + 1];
	struct listing_entry *entries;	/* sorted by path (strcmp) */
	size_t count;
};

/* Loads the listing of a commit, building and caching it if needed. */
int listing_load(struct listing **out, struct meta *meta,
		 git_repository *repo, const git_oid *commit, struct err *err);
void listing_free(struct listing *l);

/* The entry for path, or NULL. */
const struct listing_entry *listing_find(const struct listing *l,
					 const char *path);

/* Index of the first entry whose path is >= key (binary search). */
size_t listing_lower_bound(const struct listing *l, const char *key);

/* True when entry e lies below folder dir ("" = root); with direct_only,
 * only its immediate children count. */
bool listing_is_below(const struct listing_entry *e, const char *dir,
		      bool direct_only);

#endif
