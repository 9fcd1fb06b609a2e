/*
 * commit_builder.c: see commit_builder.h.
 *
 * The tree being built is a libgit2 in-memory index filled from the
 * parent's tree (git_index_read_tree), so adding or removing a file is a
 * sorted-array update and the new tree is written in one pass at the
 * end; blobs are referenced by id and never read. The index is never
 * written to disk and has no work tree.
 */
#include "common/compat.h"

#include "common/util.h"
#include "storage/commit_builder.h"
#include "storage/gitrepo.h"

struct commit_builder {
	git_repository *repo;
	git_index *index;
	git_oid parent;
	bool has_parent;
};

bool commit_path_valid(const char *path)
{
	size_t len = strlen(path);
	const char *p = path;

	if (!len || len > COMMIT_PATH_MAX || !strncmp(path, "..", 2))
		return false;
	for (;;) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && !strncmp(p, "..", 2)) ||
		    (n == 4 && !strncmp(p, ".git", 4)))
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

int commit_builder_new(struct commit_builder **out, git_repository *repo,
		       const git_oid *parent, struct err *err)
{
	struct commit_builder *b = calloc(1, sizeof(*b));
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	int rc = 0;

	if (!b)
		return err_set(err, ERR_FAIL, "out of memory");
	b->repo = repo;
	if (git_index_new(&b->index) < 0) {
		rc = gitrepo_fail(err, ERR_FAIL, "cannot create index");
		goto out;
	}
	if (!parent)
		goto out;
	git_oid_cpy(&b->parent, parent);
	b->has_parent = true;
	if (git_commit_lookup(&commit, repo, parent) < 0 ||
	    git_commit_tree(&tree, commit) < 0 ||
	    git_index_read_tree(b->index, tree) < 0)
		rc = gitrepo_fail(err, ERR_FAIL, "cannot read the parent's tree");
out:
	git_tree_free(tree);
	git_commit_free(commit);
	if (rc < 0) {
		commit_builder_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

void commit_builder_free(struct commit_builder *b)
{
	if (!b)
		return;
	git_index_free(b->index);
	free(b);
}

/* True when some entry lies below folder dir (no trailing '/'). */
static bool has_below(git_index *index, const char *dir)
{
	char prefix[COMMIT_PATH_MAX + 2];
	size_t pos;

	snprintf(prefix, sizeof(prefix), "%s/", dir);
	return git_index_find_prefix(&pos, index, prefix) == 0;
}

/* ERR_INVALID when a folder of path is a file, or path is a folder. */
static int check_collision(git_index *index, const char *path,
			   struct err *err)
{
	char part[COMMIT_PATH_MAX + 1];
	const char *slash = path;

	while ((slash = strchr(slash, '/'))) {
		size_t n = (size_t)(slash - path);
		memcpy(part, path, n);
		part[n] = '\0';
		if (git_index_get_bypath(index, part, 0))
			return err_set(err, ERR_INVALID, "cannot add '%.200s': "
				       "'%.200s' is a file", path, part);
		slash++;
	}
	if (has_below(index, path))
		return err_set(err, ERR_INVALID, "cannot add '%.200s': it is a "
			       "folder", path);
	return 0;
}

int commit_builder_add(struct commit_builder *b, const char *path,
		       unsigned int mode, const git_oid *blob,
		       struct err *err)
{
	git_index_entry e;
	int rc;

	if (!commit_path_valid(path))
		return err_set(err, ERR_INVALID, "invalid path '%.200s'", path);
	if (mode != 0100644 && mode != 0100755)
		return err_set(err, ERR_INVALID, "invalid file mode %o", mode);
	if ((rc = check_collision(b->index, path, err)) < 0)
		return rc;
	memset(&e, 0, sizeof(e));
	e.path = path;
	e.mode = mode;
	git_oid_cpy(&e.id, blob);
	if (git_index_add(b->index, &e) < 0)
		return gitrepo_fail(err, ERR_INVALID, "cannot add file");
	return 0;
}

/* Copies path without trailing slashes into out; false when it does not
 * fit or is not a valid path then. */
static bool folder_path(char out[COMMIT_PATH_MAX + 1], const char *path)
{
	size_t n = strlen(path);

	while (n && path[n - 1] == '/')
		n--;
	if (n > COMMIT_PATH_MAX)
		return false;
	memcpy(out, path, n);
	out[n] = '\0';
	return commit_path_valid(out);
}

int commit_builder_remove_folder(struct commit_builder *b, const char *path,
				 struct err *err)
{
	char dir[COMMIT_PATH_MAX + 1];

	if (!folder_path(dir, path))
		return err_set(err, ERR_INVALID, "invalid path '%.200s'", path);
	if (!has_below(b->index, dir))
		return err_set(err, ERR_NOENTRY, "A file with this name doesn't "
			       "exist: no folder '%.200s'", dir);
	if (git_index_remove_directory(b->index, dir, 0) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot remove folder");
	return 0;
}

int commit_builder_remove(struct commit_builder *b, const char *path,
			  bool folders_too, struct err *err)
{
	if (!commit_path_valid(path) && !(folders_too && path[0] &&
					  path[strlen(path) - 1] == '/'))
		return err_set(err, ERR_INVALID, "invalid path '%.200s'", path);
	if (git_index_get_bypath(b->index, path, 0)) {
		if (git_index_remove(b->index, path, 0) < 0)
			return gitrepo_fail(err, ERR_FAIL, "cannot remove file");
		return 0;
	}
	if (folders_too)
		return commit_builder_remove_folder(b, path, err);
	return err_set(err, ERR_NOENTRY, "A file with this name doesn't exist: "
		       "'%.200s'", path);
}

bool commit_builder_get(const struct commit_builder *b, const char *path,
			git_oid *blob, unsigned int *mode)
{
	const git_index_entry *e = git_index_get_bypath(b->index, path, 0);

	if (!e)
		return false;
	if (blob)
		git_oid_cpy(blob, &e->id);
	if (mode)
		*mode = e->mode;
	return true;
}

static int write_commit(struct commit_builder *b, const git_oid *tree_oid,
			const struct commit_builder_info *info, git_oid *out,
			struct err *err)
{
	const char *author = info->author && info->author[0] ? info->author
							     : "anonymous";
	git_signature *sig = NULL;
	git_tree *tree = NULL;
	git_commit *parent = NULL;
	char email[256];
	int rc = 0;

	snprintf(email, sizeof(email), "%s@users.noreply.haven", author);
	if (git_signature_now(&sig, author, email) < 0 ||
	    git_tree_lookup(&tree, b->repo, tree_oid) < 0 ||
	    (b->has_parent && git_commit_lookup(&parent, b->repo, &b->parent) < 0)) {
		rc = gitrepo_fail(err, ERR_FAIL, "cannot prepare commit");
		goto out;
	}
	if (git_commit_create(out, b->repo, NULL, sig, sig, "UTF-8",
			      info->message ? info->message : "", tree,
			      parent ? 1 : 0, (const git_commit **)&parent) < 0)
		rc = gitrepo_fail(err, ERR_FAIL, "cannot write commit");
out:
	git_commit_free(parent);
	git_tree_free(tree);
	git_signature_free(sig);
	return rc;
}

/* The compare-and-swap: the one step that makes the commit visible. */
static int move_ref(git_repository *repo, const char *ref,
		    const git_oid *ref_old, const git_oid *commit,
		    struct err *err)
{
	git_reference *r = NULL;
	int rc;

	if (ref_old)
		rc = git_reference_create_matching(&r, repo, ref, commit, 1,
						   ref_old, "commit");
	else
		rc = git_reference_create(&r, repo, ref, commit, 0, "commit");
	git_reference_free(r);
	if (rc == GIT_EEXISTS && !ref_old)
		return err_set(err, ERR_EXISTS, "Reference %s already exists",
			       ref);
	if (rc == GIT_EMODIFIED || rc == GIT_EEXISTS || rc == GIT_ENOTFOUND ||
	    rc == GIT_ELOCKED)
		return gitrepo_fail(err, ERR_CONFLICT, "the branch was updated "
				    "meanwhile");
	if (rc < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot update ref");
	return 0;
}

int commit_builder_commit(struct commit_builder *b, const char *ref,
			  const git_oid *ref_old,
			  const struct commit_builder_info *info, git_oid *out,
			  struct err *err)
{
	git_oid tree;
	int rc;

	if (git_index_write_tree_to(&tree, b->index, b->repo) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot write tree");
	if ((rc = write_commit(b, &tree, info, out, err)) < 0)
		return rc;
	return move_ref(b->repo, ref, ref_old, out, err);
}
