/*
 * card_lineage.c: from a model's card to its lineage edges. Git moves the
 * branch first (it is the source of truth); the edges follow it here in
 * the next LMDB transaction, read back from the branch itself so that a
 * later sync always converges on what git holds.
 */
#include "common/compat.h"

#include <stdlib.h>
#include <string.h>
#include <git2.h>

#include "common/util.h"
#include "ingest/card_lineage.h"
#include "storage/gitrepo.h"

#define CARD_MAX ((size_t)1 << 20)

static const char *relation_of(const json_t *card, size_t nbases,
			       const struct modelcard_files *files,
			       bool *inferred)
{
	static const char *const known[] = { "adapter", "merge", "quantized",
					     "finetune" };
	const char *rel = json_string_value(json_object_get(card,
							    "base_model_relation"));

	*inferred = false;
	for (size_t i = 0; rel && i < ARRAY_SIZE(known); i++) {
		if (!strcmp(rel, known[i]))
			return known[i];
	}
	*inferred = true;
	if (nbases >= 2)
		return "merge";
	if (files && files->has_adapter_config)
		return "adapter";
	if (files && files->has_gguf)
		return "quantized";
	return "finetune";
}

int card_lineage_edges(const json_t *card, const struct modelcard_files *files,
		       struct lineage_edge **out, size_t *n)
{
	const json_t *bases = json_object_get(card, "base_model");
	size_t count = json_is_array(bases) ? json_array_size(bases) :
		       json_is_string(bases) ? 1 : 0;
	const char *rel;
	bool inferred;

	*out = NULL;
	*n = 0;
	if (!count)
		return 0;
	rel = relation_of(card, count, files, &inferred);
	if (!(*out = calloc(count, sizeof(**out))))
		return ERR_FAIL;
	for (size_t i = 0; i < count; i++) {
		const char *id = json_is_array(bases) ?
			json_string_value(json_array_get(bases, i)) :
			json_string_value(bases);
		struct lineage_edge *e = &(*out)[*n];

		if (!id || !*id || strlen(id) >= sizeof(e->base))
			continue;
		str_copy(e->base, id, sizeof(e->base));
		str_copy(e->relation, rel, sizeof(e->relation));
		e->inferred = inferred;
		(*n)++;
	}
	return 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

struct scan {
	struct modelcard_files files;
	git_oid readme;
	bool has_readme;
};

static int scan_entry(const char *root, const git_tree_entry *entry,
		      void *arg)
{
	struct scan *s = arg;
	const char *name = git_tree_entry_name(entry);

	if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB)
		return 0;
	if (!root[0] && !strcmp(name, "adapter_config.json"))
		s->files.has_adapter_config = 1;
	if (has_suffix(name, ".gguf"))
		s->files.has_gguf = 1;
	if (!root[0] && !strcmp(name, "README.md")) {
		git_oid_cpy(&s->readme, git_tree_entry_id(entry));
		s->has_readme = true;
	}
	return 0;
}

/* Reads the card of the default branch: *card NULL with *why set when it
 * is malformed, both NULL when there is none. */
static int read_card(struct store *store, const struct repo_record *rec,
		     json_t **card, struct modelcard_files *files, char **why,
		     struct err *err)
{
	git_repository *git = NULL;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	git_blob *blob = NULL;
	struct scan s = { 0 };
	struct err perr = { 0 };
	git_oid oid;
	int rc;

	*card = NULL;
	*why = NULL;
	if ((rc = repo_open_git(&git, store, rec, err)) < 0)
		return rc;
	if (gitrepo_resolve(git, "HEAD", &oid, NULL, 0, NULL) < 0) {
		rc = 0;	/* an empty repository has no card */
		goto out;
	}
	if (git_commit_lookup(&commit, git, &oid) < 0 ||
	    git_commit_tree(&tree, commit) < 0 ||
	    git_tree_walk(tree, GIT_TREEWALK_PRE, scan_entry, &s) < 0) {
		rc = gitrepo_fail(err, ERR_FAIL, "cannot read the default branch");
		goto out;
	}
	*files = s.files;
	rc = 0;
	if (!s.has_readme || git_blob_lookup(&blob, git, &s.readme) < 0 ||
	    (size_t)git_blob_rawsize(blob) > CARD_MAX)
		goto out;
	if (modelcard_parse(card, git_blob_rawcontent(blob),
			    (size_t)git_blob_rawsize(blob), &perr) < 0)
		*why = strdup(perr.msg[0] ? perr.msg : "malformed front matter");
out:
	git_blob_free(blob);
	git_tree_free(tree);
	git_commit_free(commit);
	git_repository_free(git);
	return rc;
}

int card_lineage_sync(struct store *store, const struct repo_record *rec,
		      struct err *err)
{
	struct modelcard_files files = { 0 };
	struct lineage_edge *edges = NULL;
	struct meta_txn *txn = NULL;
	struct repo_record now;
	json_t *card = NULL;
	char *why = NULL;
	size_t n = 0;
	int rc;

	if (strcmp(rec->type, "model"))
		return 0;
	if ((rc = read_card(store, rec, &card, &files, &why, err)) < 0)
		goto out;
	if (card && card_lineage_edges(card, &files, &edges, &n) < 0) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	if ((rc = meta_txn_begin(&txn, store->meta, true, err)) < 0)
		goto out;
	/* Deleted meanwhile: nothing to describe. */
	if (meta_repo_get_by_id(txn, rec->id, &now, NULL) < 0) {
		meta_txn_abort(txn);
		rc = 0;
		goto out;
	}
	if ((rc = lineage_set(txn, &now, edges, n, why, err)) < 0) {
		meta_txn_abort(txn);
		goto out;
	}
	rc = meta_txn_commit(txn, err);
out:
	free(edges);
	free(why);
	json_decref(card);
	return rc;
}
