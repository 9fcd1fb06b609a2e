/*
 * reach.c: see reach.h. Trees already visited are remembered in a set of
 * oids (storage/oidset.c), so shared subtrees across commits are read
 * once and the walk stays linear in the number of distinct trees.
 */
#include "common/compat.h"

#include "storage/gitrepo.h"
#include "storage/lfs_pointer.h"
#include "storage/oidset.h"
#include "storage/reach.h"

struct reach_ctx {
	git_repository *repo;
	git_odb *odb;
	struct oidset trees;
	reach_lfs_fn fn;
	void *arg;
	struct err *err;
	int rc;
};

static int visit_blob(struct reach_ctx *rc, const git_tree_entry *te,
		      const char *path)
{
	char sha[SHA256_HEX_LEN + 1];
	git_odb_object *obj = NULL;
	git_object_t type;
	uint64_t size;
	size_t len;

	if (git_odb_read_header(&len, &type, rc->odb, git_tree_entry_id(te)) < 0)
		return gitrepo_fail(rc->err, ERR_CORRUPT, "missing git blob");
	if (len >= LFS_POINTER_MAX)
		return 0;
	if (git_odb_read(&obj, rc->odb, git_tree_entry_id(te)) < 0)
		return gitrepo_fail(rc->err, ERR_CORRUPT, "unreadable git blob");
	if (lfs_pointer_parse(git_odb_object_data(obj), len, sha, &size)) {
		int r = rc->fn(sha, size, path, rc->arg);
		git_odb_object_free(obj);
		return r;
	}
	git_odb_object_free(obj);
	return 0;
}

static int visit_tree(struct reach_ctx *rc, const git_oid *oid,
		      const char *prefix)
{
	git_tree *tree = NULL;
	int r = oidset_add(&rc->trees, oid);

	if (r <= 0)
		return r < 0 ? err_set(rc->err, ERR_FAIL, "out of memory") : 0;
	if (git_tree_lookup(&tree, rc->repo, oid) < 0)
		return gitrepo_fail(rc->err, ERR_CORRUPT, "missing git tree");
	r = 0;
	for (size_t i = 0; r == 0 && i < git_tree_entrycount(tree); i++) {
		const git_tree_entry *te = git_tree_entry_byindex(tree, i);
		char path[4096];
		snprintf(path, sizeof(path), "%s%s", prefix,
			 git_tree_entry_name(te));
		if (git_tree_entry_type(te) == GIT_OBJECT_BLOB) {
			r = visit_blob(rc, te, path);
		} else if (git_tree_entry_type(te) == GIT_OBJECT_TREE) {
			size_t n = strlen(path);
			if (n + 1 < sizeof(path))
				path[n] = '/', path[n + 1] = '\0';
			r = visit_tree(rc, git_tree_entry_id(te), path);
		}
	}
	git_tree_free(tree);
	return r;
}

static int walk_commits(struct reach_ctx *rc, git_revwalk *walk)
{
	git_oid oid;
	int r = 0, w;

	while (r == 0 && (w = git_revwalk_next(&oid, walk)) == 0) {
		git_commit *c = NULL;
		if (git_commit_lookup(&c, rc->repo, &oid) < 0)
			return gitrepo_fail(rc->err, ERR_CORRUPT,
					    "missing git commit");
		r = visit_tree(rc, git_commit_tree_id(c), "");
		git_commit_free(c);
	}
	if (r == 0 && w != GIT_ITEROVER)
		return gitrepo_fail(rc->err, ERR_CORRUPT, "broken history");
	return r;
}

int reach_lfs_objects(git_repository *repo, reach_lfs_fn fn, void *arg,
		      size_t *refs_out, struct err *err)
{
	struct reach_ctx rc = { .repo = repo, .fn = fn, .arg = arg, .err = err };
	git_reference_iterator *it = NULL;
	git_revwalk *walk = NULL;
	git_reference *ref;
	size_t refs = 0;
	int r = 0;

	if (git_repository_odb(&rc.odb, repo) < 0 ||
	    git_revwalk_new(&walk, repo) < 0 ||
	    git_reference_iterator_new(&it, repo) < 0) {
		r = gitrepo_fail(err, ERR_FAIL, "cannot walk repository");
		goto out;
	}
	while (r == 0 && git_reference_next(&ref, it) == 0) {
		git_object *obj = NULL;
		if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) < 0 ||
		    git_revwalk_push(walk, git_object_id(obj)) < 0)
			r = err_set(err, ERR_CORRUPT,
				    "ref '%s' points at a missing commit",
				    git_reference_name(ref));
		refs++;
		git_object_free(obj);
		git_reference_free(ref);
	}
	if (r == 0)
		r = walk_commits(&rc, walk);
out:
	if (refs_out)
		*refs_out = refs;
	git_reference_iterator_free(it);
	git_revwalk_free(walk);
	git_odb_free(rc.odb);
	oidset_release(&rc.trees);
	return r;
}
