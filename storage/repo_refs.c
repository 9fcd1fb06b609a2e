/*
 * repo_refs.c: the refs record of a repository; see repo_refs.h.
 */
#include "common/compat.h"

#include "storage/gitrepo.h"
#include "storage/repo_refs.h"

static int add_refs(json_t *refs, git_repository *git, const char *glob)
{
	git_reference_iterator *it;
	git_reference *ref;
	char hex[GIT_OID_HEXSZ + 1];
	int rc = 0;

	if (git_reference_iterator_glob_new(&it, git, glob) < 0)
		return -1;
	while (rc == 0 && git_reference_next(&ref, it) == 0) {
		const git_oid *target = git_reference_target(ref);
		if (target) {
			git_oid_tostr(hex, sizeof(hex), target);
			rc = json_object_set_new(refs, git_reference_name(ref),
						 json_string(hex));
		}
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	return rc;
}

json_t *repo_refs_of_git(git_repository *git)
{
	json_t *refs = json_object();

	if (!refs || add_refs(refs, git, "refs/heads/*") < 0 ||
	    add_refs(refs, git, "refs/tags/*") < 0 ||
	    add_refs(refs, git, "refs/pr/*") < 0) {
		json_decref(refs);
		return NULL;
	}
	return refs;
}

int repo_refs_put(struct meta_txn *txn, const char *repo_id,
		  git_repository *git, struct err *err)
{
	json_t *refs = repo_refs_of_git(git);
	char *text = refs ? json_dumps(refs, JSON_COMPACT | JSON_SORT_KEYS)
			  : NULL;
	char *old = NULL;
	int rc;

	json_decref(refs);
	if (!text)
		return err_set(err, ERR_FAIL, "cannot list the refs");
	rc = meta_kv_get(txn, META_KV_GIT_REFS, repo_id, &old, NULL);
	if (rc == 0 && !strcmp(old, text))
		rc = 0;	/* unchanged: no log entry */
	else
		rc = meta_kv_put(txn, META_KV_GIT_REFS, repo_id, text, false,
				 err);
	free(old);
	free(text);
	return rc;
}

int repo_refs_record(struct store *store, const struct repo_record *rec,
		     struct err *err)
{
	struct meta_txn *txn = NULL;
	git_repository *git = NULL;
	struct repo_record now;
	int rc;

	if ((rc = repo_open_git(&git, store, rec, err)) < 0 ||
	    (rc = meta_txn_begin(&txn, store->meta, true, err)) < 0)
		goto out;
	if (meta_repo_get_by_id(txn, rec->id, &now, NULL) < 0) {
		meta_txn_abort(txn);	/* deleted meanwhile */
		goto out;
	}
	if ((rc = repo_refs_put(txn, rec->id, git, err)) < 0) {
		meta_txn_abort(txn);
		goto out;
	}
	rc = meta_txn_commit(txn, err);
out:
	git_repository_free(git);
	return rc;
}
