/*
 * commit_builder.h: one new commit made of changes to a parent's tree, as
 * the commit API (hub-api.md 2.11) and branch creation need it.
 *
 * Calling sequence:
 *   commit_builder_new(parent)          the parent's tree, in memory
 *   commit_builder_add / _remove / _remove_folder ...   in request order
 *   commit_builder_commit(ref, ref_old) writes tree and commit, then moves
 *                                       ref with a compare-and-swap
 *   commit_builder_free
 *
 * Nothing is visible to readers before the ref moves: the tree and commit
 * objects written before are unreachable until then, so a refused or
 * failed commit leaves no trace but loose objects for git's gc. Paths are
 * checked against hub-api.md 8.1 before they reach the index.
 */
#ifndef HAVEN_COMMIT_BUILDER_H
#define HAVEN_COMMIT_BUILDER_H

#include <stdbool.h>
#include <git2.h>

#include "common/err.h"

#define COMMIT_PATH_MAX 4096

struct commit_builder;

/* True when path may name a file in a repository: at most
 * COMMIT_PATH_MAX bytes, split on '/' into parts none of which is empty,
 * ".", ".." or ".git", and not starting with "..". */
bool commit_path_valid(const char *path);

/* Starts from the tree of commit parent (NULL: an empty tree, for a root
 * commit). The builder borrows repo, which must outlive it. */
int commit_builder_new(struct commit_builder **out, git_repository *repo,
		       const git_oid *parent, struct err *err);
void commit_builder_free(struct commit_builder *b);

/* Adds or replaces the file at path with a blob already in the repo's
 * object database; mode is 0100644 or 0100755. ERR_INVALID for a bad
 * path, or when path or one of its folders is taken by the other kind
 * (a folder where a file goes, or a file where a folder goes). */
int commit_builder_add(struct commit_builder *b, const char *path,
		       unsigned int mode, const git_oid *blob,
		       struct err *err);

/* Removes the file at path; with folders_too, a folder at path (every
 * file below it) when there is no such file. ERR_NOENTRY when nothing
 * was there. */
int commit_builder_remove(struct commit_builder *b, const char *path,
			  bool folders_too, struct err *err);

/* Removes every file below folder path (a trailing '/' is allowed).
 * ERR_NOENTRY when the folder holds nothing. */
int commit_builder_remove_folder(struct commit_builder *b, const char *path,
				 struct err *err);

/* The blob at path in the tree being built; false when there is none. */
bool commit_builder_get(const struct commit_builder *b, const char *path,
			git_oid *blob, unsigned int *mode);

struct commit_builder_info {
	const char *author;	/* user name; the email is derived from it */
	const char *message;	/* whole commit message */
};

/* Writes the tree and a commit whose parent is the builder's parent, and
 * points ref at it: only if ref still names ref_old (ref_old NULL: only
 * if ref does not exist yet). ERR_CONFLICT when it moved meanwhile,
 * ERR_EXISTS when ref_old is NULL and ref exists. out gets the commit. */
int commit_builder_commit(struct commit_builder *b, const char *ref,
			  const git_oid *ref_old,
			  const struct commit_builder_info *info, git_oid *out,
			  struct err *err);

#endif
