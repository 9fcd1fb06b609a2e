/*
 * gitrepo.h: the bare git repositories, through libgit2. git is the source
 * of truth for content, history and refs. libgit2 errors are translated to
 * Haven's codes here, with git_error_last()'s text in the message.
 *
 * A git_repository handle must stay in one thread at a time.
 */
#ifndef HAVEN_GITREPO_H
#define HAVEN_GITREPO_H

#include <stdbool.h>
#include <git2.h>

#include "common/err.h"

#define GIT_HEX_LEN 40

/* Call once from main (and gitrepo_global_shutdown at exit). Turns on
 * fsync of objects and refs so a written commit survives a crash. */
void gitrepo_global_init(void);
void gitrepo_global_shutdown(void);

int gitrepo_init_bare(git_repository **out, const char *path,
		      struct err *err);
int gitrepo_open(git_repository **out, const char *path, struct err *err);

/* Resolves a Hub revision to a commit: "HEAD" (the default branch), a
 * branch, a tag (annotated tags peeled), a full ref name such as
 * refs/pr/1, a full or an abbreviated (>= 7 hex) commit id. ref_out, when
 * not NULL, receives the full ref name ("" for a commit id).
 * ERR_NOREV when nothing matches. */
int gitrepo_resolve(git_repository *repo, const char *rev, git_oid *out,
		    char *ref_out, size_t ref_size, struct err *err);

/* One file of a new tree: its repo path, mode (0100644 or 0100755) and
 * the git blob that holds it (content, or an LFS pointer). */
struct gitrepo_file {
	const char *path;
	unsigned int mode;
	git_oid blob;
};

/* What a commit is made of. parent is NULL for a root commit. ref moves to
 * the new commit only if it still points at ref_old (NULL: ref must not
 * exist yet); ERR_CONFLICT otherwise. */
struct gitrepo_commit_spec {
	const char *ref;
	const git_oid *ref_old;
	const git_oid *parent;
	const struct gitrepo_file *files;	/* the whole new tree */
	size_t nfiles;
	const char *author;
	const char *message;
};

/* Writes the commit and moves the ref. When the tree equals the parent's,
 * no commit is written: *unchanged is set (if not NULL) and ref is only
 * created (when it did not exist) at the parent. */
int gitrepo_commit_tree(git_repository *repo,
			const struct gitrepo_commit_spec *spec, git_oid *out,
			bool *unchanged, struct err *err);

/* Creates a branch or tag ref (full name) at a commit; ERR_EXISTS if it
 * exists. */
int gitrepo_ref_create(git_repository *repo, const char *ref,
		       const git_oid *target, struct err *err);

/* Checks a short branch or tag name with git's ref-name rules. */
bool gitrepo_ref_name_valid(const char *kind, const char *name);

/* Hex of an oid into a 41-byte buffer. */
void gitrepo_oid_hex(char out[GIT_HEX_LEN + 1], const git_oid *oid);

/* Turns the last libgit2 error into an err (code as given). */
int gitrepo_fail(struct err *err, int code, const char *what);

#endif
