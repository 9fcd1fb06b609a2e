/*
 * import.h: turns a local folder into one new commit of a repository.
 *
 * The folder becomes the whole tree of the new commit (the branch's
 * .gitattributes is kept when the folder has none). Files that match an
 * LFS pattern of .gitattributes, or are IMPORT_LFS_THRESHOLD bytes or
 * larger, are stored in the blob store with an LFS pointer in git; the rest
 * are git blobs. A large file that no pattern covers gets its own
 * .gitattributes line, as the Hub does, so git-lfs clients see it as LFS.
 *
 * Durability: every blob is durable before the git commit is written, and
 * the branch moves last, with a compare-and-swap on its old value.
 */
#ifndef HAVEN_IMPORT_H
#define HAVEN_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/gitrepo.h"
#include "storage/store.h"

#define IMPORT_LFS_THRESHOLD ((uint64_t)10 << 20)

struct import_options {
	const char *type;	/* "model" by default */
	const char *repo;	/* namespace/name */
	const char *branch;	/* "main" by default; created from main */
	const char *message;	/* commit title; a default names the folder */
	const char *author;	/* "haven" by default */
};

struct import_result {
	char commit[GIT_HEX_LEN + 1];
	bool changed;		/* false when the tree was already current */
	bool created_repo;
	size_t files;
	size_t lfs_files;
	uint64_t bytes;
};

int import_folder(struct store *store, const char *dir,
		  const struct import_options *opt, struct import_result *res,
		  struct err *err);

#endif
