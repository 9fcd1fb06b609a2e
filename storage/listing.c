/*
 * listing.c: builds a commit's listing with git_tree_walk and keeps it in
 * LMDB as JSON; see listing.h and meta_keys.h.
 */
#include "common/compat.h"

#include <jansson.h>

#include "common/util.h"
#include "storage/lfs_pointer.h"
#include "storage/listing.h"

struct walk_ctx {
	git_repository *repo;
	git_odb *odb;
	struct listing *l;
	size_t cap;
	int rc;
};

static struct listing_entry *push_entry(struct walk_ctx *w)
{
	struct listing *l = w->l;

	if (l->count == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		void *p = realloc(l->entries, cap * sizeof(*l->entries));
		if (!p)
			return NULL;
		l->entries = p;
		w->cap = cap;
	}
	memset(&l->entries[l->count], 0, sizeof(*l->entries));
	return &l->entries[l->count++];
}

/* Fills size and LFS details of a file entry from its blob. */
static int describe_blob(struct walk_ctx *w, struct listing_entry *e,
			 const git_oid *oid)
{
	git_odb_object *obj = NULL;
	git_object_t type;
	size_t len;

	if (git_odb_read_header(&len, &type, w->odb, oid) < 0)
		return -1;
	e->size = len;
	if (len >= LFS_POINTER_MAX)
		return 0;
	if (git_odb_read(&obj, w->odb, oid) < 0)
		return -1;
	if (lfs_pointer_parse(git_odb_object_data(obj), len, e->sha256, &e->size)) {
		e->lfs = true;
		e->pointer_size = (uint32_t)len;
	}
	git_odb_object_free(obj);
	return 0;
}

static int walk_cb(const char *root, const git_tree_entry *te, void *payload)
{
	struct walk_ctx *w = payload;
	git_object_t type = git_tree_entry_type(te);
	struct listing_entry *e;
	size_t plen;

	if (type != GIT_OBJECT_BLOB && type != GIT_OBJECT_TREE)
		return 0; /* submodules have no content here */
	if (!(e = push_entry(w)))
		goto fail;
	plen = strlen(root) + strlen(git_tree_entry_name(te)) + 1;
	if (!(e->path = malloc(plen)))
		goto fail;
	snprintf(e->path, plen, "%s%s", root, git_tree_entry_name(te));
	e->is_dir = type == GIT_OBJECT_TREE;
	gitrepo_oid_hex(e->oid, git_tree_entry_id(te));
	if (!e->is_dir && describe_blob(w, e, git_tree_entry_id(te)) < 0)
		goto fail;
	return 0;
fail:
	w->rc = ERR_FAIL;
	return -1;
}

static int cmp_entries(const void *a, const void *b)
{
	return strcmp(((const struct listing_entry *)a)->path,
		      ((const struct listing_entry *)b)->path);
}

static int build_from_git(struct listing *l, git_repository *repo,
			  const git_oid *commit_oid, struct err *err)
{
	struct walk_ctx w = { .repo = repo, .l = l };
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	int rc = ERR_FAIL;

	if (git_repository_odb(&w.odb, repo) < 0 ||
	    git_commit_lookup(&commit, repo, commit_oid) < 0 ||
	    git_commit_tree(&tree, commit) < 0) {
		gitrepo_fail(err, ERR_FAIL, "cannot read commit tree");
		goto out;
	}
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, walk_cb, &w) < 0 || w.rc) {
		gitrepo_fail(err, ERR_FAIL, "cannot list commit tree");
		goto out;
	}
	if (l->count)
		qsort(l->entries, l->count, sizeof(*l->entries), cmp_entries);
	rc = 0;
out:
	git_tree_free(tree);
	git_commit_free(commit);
	git_odb_free(w.odb);
	return rc;
}

static char *listing_to_json(const struct listing *l)
{
	json_t *arr = json_array();
	char *text;

	for (size_t i = 0; arr && i < l->count; i++) {
		const struct listing_entry *e = &l->entries[i];
		json_array_append_new(arr, json_pack(
			"[s, s, s, I, s?, i]", e->is_dir ? "d" : "f", e->path,
			e->oid, (json_int_t)e->size, e->lfs ? e->sha256 : NULL,
			(int)e->pointer_size));
	}
	text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	json_decref(arr);
	return text;
}

static int listing_from_json(struct listing *l, const char *text)
{
	json_t *arr = json_loads(text, 0, NULL);
	size_t i;
	json_t *row;
	int rc = ERR_CORRUPT;

	if (!json_is_array(arr))
		goto out;
	l->entries = calloc(json_array_size(arr) + 1, sizeof(*l->entries));
	if (!l->entries)
		goto out;
	json_array_foreach(arr, i, row) {
		struct listing_entry *e = &l->entries[i];
		const char *kind, *path, *oid, *sha;
		json_t *lfs;
		json_int_t size;
		int psize;
		/* "s?" is a pack-only format: unpack the sha256 as a value. */
		if (json_unpack(row, "[s, s, s, I, o, i]", &kind, &path, &oid,
				&size, &lfs, &psize) ||
		    (!json_is_null(lfs) && !json_is_string(lfs)))
			goto out;
		sha = json_string_value(lfs);
		e->path = strdup(path);
		e->is_dir = kind[0] == 'd';
		str_copy(e->oid, oid, sizeof(e->oid));
		e->size = (uint64_t)size;
		e->lfs = sha != NULL;
		if (sha)
			str_copy(e->sha256, sha, sizeof(e->sha256));
		e->pointer_size = (uint32_t)psize;
		l->count++;
		if (!e->path)
			goto out;
	}
	rc = 0;
out:
	json_decref(arr);
	return rc;
}

/* Stores a freshly built listing; a failure only costs a rebuild later. */
static void cache_listing(struct meta *meta, const struct listing *l)
{
	struct meta_txn *txn = NULL;
	char *text = listing_to_json(l);

	if (text && meta_txn_begin(&txn, meta, true, NULL) == 0) {
		if (meta_listing_put(txn, l->commit, text, NULL) == 0)
			meta_txn_commit(txn, NULL);
		else
			meta_txn_abort(txn);
	}
	free(text);
}

int listing_load(struct listing **out, struct meta *meta,
		 git_repository *repo, const git_oid *commit, struct err *err)
{
	struct listing *l = calloc(1, sizeof(*l));
	struct meta_txn *txn = NULL;
	char *text = NULL;
	int rc;

	if (!l)
		return err_set(err, ERR_FAIL, "out of memory");
	gitrepo_oid_hex(l->commit, commit);
	if ((rc = meta_txn_begin(&txn, meta, false, err)) < 0)
		goto out;
	rc = meta_listing_get(txn, l->commit, &text, err);
	meta_txn_abort(txn);
	if (rc == 0 && listing_from_json(l, text) == 0)
		goto out;
	for (size_t i = 0; i < l->count; i++)
		free(l->entries[i].path);
	free(l->entries);
	l->entries = NULL;
	l->count = 0;
	if ((rc = build_from_git(l, repo, commit, err)) == 0)
		cache_listing(meta, l);
out:
	free(text);
	if (rc < 0) {
		listing_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

void listing_free(struct listing *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->entries[i].path);
	free(l->entries);
	free(l);
}

size_t listing_lower_bound(const struct listing *l, const char *key)
{
	size_t lo = 0, hi = l->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(l->entries[mid].path, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct listing_entry *listing_find(const struct listing *l,
					 const char *path)
{
	size_t i = listing_lower_bound(l, path);

	if (i < l->count && !strcmp(l->entries[i].path, path))
		return &l->entries[i];
	return NULL;
}

bool listing_is_below(const struct listing_entry *e, const char *dir,
		      bool direct_only)
{
	size_t dlen = strlen(dir);
	const char *rest = e->path;

	if (dlen) {
		if (strncmp(e->path, dir, dlen) || e->path[dlen] != '/')
			return false;
		rest = e->path + dlen + 1;
	}
	return !direct_only || !strchr(rest, '/');
}
