/*
 * lineage.c: the edges of the model lineage graph, both ways (layout in
 * meta_keys.h). Every change goes through the caller's write transaction,
 * so the two directions never disagree.
 */
#include "common/compat.h"

#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "common/util.h"
#include "storage/lineage.h"

#define KEY_MAX (LINEAGE_BASE_MAX + REPO_ID_LEN + 2)

void lineage_key(char *out, size_t size, const char *base)
{
	if (str_lower(out, size, base) < 0)
		out[0] = '\0';
}

static int edge_from_json(const char *json, struct lineage_edge *e)
{
	json_t *o = json_loads(json, 0, NULL);
	const char *s;

	memset(e, 0, sizeof(*e));
	if (!o)
		return -1;
	if ((s = json_string_value(json_object_get(o, "base"))))
		str_copy(e->base, s, sizeof(e->base));
	if ((s = json_string_value(json_object_get(o, "relation"))))
		str_copy(e->relation, s, sizeof(e->relation));
	e->inferred = json_is_true(json_object_get(o, "inferred"));
	json_decref(o);
	return 0;
}

static int put_json(struct meta_txn *txn, enum meta_kv db, const char *key,
		    json_t *o, struct err *err)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int rc;

	json_decref(o);
	if (!text)
		return err_set(err, ERR_FAIL, "out of memory");
	rc = meta_kv_put(txn, db, key, text, false, err);
	free(text);
	return rc;
}

static int put_edge(struct meta_txn *txn, const char *child_id,
		    const char *base_key, const struct lineage_edge *e,
		    struct err *err)
{
	char up[KEY_MAX], down[KEY_MAX];
	int rc;

	snprintf(up, sizeof(up), "%s/%s", child_id, base_key);
	snprintf(down, sizeof(down), "%s/%s", base_key, child_id);
	if ((rc = put_json(txn, META_KV_LINEAGE_UP, up,
			   json_pack("{s:s,s:s,s:b}", "base", e->base,
				     "relation", e->relation,
				     "inferred", e->inferred), err)) < 0)
		return rc;
	return put_json(txn, META_KV_LINEAGE_DOWN, down,
			json_pack("{s:s,s:b}", "relation", e->relation,
				  "inferred", e->inferred), err);
}

/* The keys of a walk, collected first: LMDB cursors and deletes of the
 * same database do not mix well in one pass. */
struct key_list {
	char **keys;
	struct lineage_edge *edges;
	size_t n, cap;
};

static int collect(const char *key, const char *json, void *arg)
{
	struct key_list *kl = arg;

	if (kl->n == kl->cap) {
		size_t cap = kl->cap ? kl->cap * 2 : 8;
		char **k = realloc(kl->keys, cap * sizeof(*k));
		struct lineage_edge *e;

		if (!k)
			return ERR_FAIL;
		kl->keys = k;
		if (!(e = realloc(kl->edges, cap * sizeof(*e))))
			return ERR_FAIL;
		kl->edges = e;
		kl->cap = cap;
	}
	if (!(kl->keys[kl->n] = strdup(key)))
		return ERR_FAIL;
	edge_from_json(json, &kl->edges[kl->n]);
	kl->n++;
	return 0;
}

static void key_list_release(struct key_list *kl)
{
	for (size_t i = 0; i < kl->n; i++)
		free(kl->keys[i]);
	free(kl->keys);
	free(kl->edges);
	memset(kl, 0, sizeof(*kl));
}

static int walk(struct meta_txn *txn, enum meta_kv db, const char *prefix,
		struct key_list *kl, struct err *err)
{
	int rc = meta_kv_foreach(txn, db, prefix, collect, kl, err);

	if (rc > 0 || rc == ERR_FAIL)
		return err_set(err, ERR_FAIL, "out of memory");
	return rc;
}

int lineage_remove(struct meta_txn *txn, const char *child_id,
		   struct err *err)
{
	struct key_list kl = { 0 };
	char prefix[REPO_ID_LEN + 2], down[KEY_MAX];
	int rc;

	snprintf(prefix, sizeof(prefix), "%s/", child_id);
	if ((rc = walk(txn, META_KV_LINEAGE_UP, prefix, &kl, err)) < 0)
		goto out;
	for (size_t i = 0; i < kl.n; i++) {
		const char *base_key = kl.keys[i] + strlen(prefix);

		snprintf(down, sizeof(down), "%s/%s", base_key, child_id);
		if ((rc = meta_kv_del(txn, META_KV_LINEAGE_DOWN, down, err)) < 0 ||
		    (rc = meta_kv_del(txn, META_KV_LINEAGE_UP, kl.keys[i],
				      err)) < 0)
			goto out;
	}
	rc = meta_kv_del(txn, META_KV_CARD_ERRORS, child_id, err);
out:
	key_list_release(&kl);
	return rc;
}

/* The key of a base: the current name of the model Haven holds under it
 * (directly or through a move), else the name as written. */
static void base_key(struct meta_txn *txn, const char *base, char *out,
		     size_t size)
{
	struct repo_record rec;

	if (meta_repo_get(txn, "model", base, &rec, NULL) == 0 ||
	    meta_redirect_get(txn, "model", base, &rec, NULL) == 0)
		lineage_key(out, size, rec.name);
	else
		lineage_key(out, size, base);
}

int lineage_set(struct meta_txn *txn, const struct repo_record *child,
		const struct lineage_edge *edges, size_t n,
		const char *card_error, struct err *err)
{
	char key[LINEAGE_BASE_MAX], self[LINEAGE_BASE_MAX];
	int rc;

	lineage_key(self, sizeof(self), child->name);
	if ((rc = lineage_remove(txn, child->id, err)) < 0)
		return rc;
	if (card_error)
		return put_json(txn, META_KV_CARD_ERRORS, child->id,
				json_pack("{s:s}", "error", card_error), err);
	for (size_t i = 0; i < n; i++) {
		base_key(txn, edges[i].base, key, sizeof(key));
		/* A card naming the model itself is no edge (and no cycle). */
		if (!key[0] || !strcmp(self, key))
			continue;
		if ((rc = put_edge(txn, child->id, key, &edges[i], err)) < 0)
			return rc;
	}
	return 0;
}

int lineage_rename(struct meta_txn *txn, const char *old_name,
		   const char *new_name, struct err *err)
{
	struct key_list kl = { 0 };
	char oldk[LINEAGE_BASE_MAX], newk[LINEAGE_BASE_MAX], prefix[KEY_MAX];
	char key[KEY_MAX];
	int rc;

	lineage_key(oldk, sizeof(oldk), old_name);
	lineage_key(newk, sizeof(newk), new_name);
	if (!strcmp(oldk, newk) || !oldk[0] || !newk[0])
		return 0;
	snprintf(prefix, sizeof(prefix), "%s/", oldk);
	if ((rc = walk(txn, META_KV_LINEAGE_DOWN, prefix, &kl, err)) < 0)
		goto out;
	for (size_t i = 0; i < kl.n; i++) {
		const char *child_id = kl.keys[i] + strlen(prefix);
		struct lineage_edge e = kl.edges[i];
		char *json = NULL;

		snprintf(key, sizeof(key), "%s/%s", child_id, oldk);
		str_copy(e.base, old_name, sizeof(e.base));
		if (meta_kv_get(txn, META_KV_LINEAGE_UP, key, &json, NULL) == 0) {
			struct lineage_edge up;

			edge_from_json(json, &up);
			free(json);
			str_copy(e.base, up.base, sizeof(e.base));
		}
		if ((rc = meta_kv_del(txn, META_KV_LINEAGE_UP, key, err)) < 0 ||
		    (rc = meta_kv_del(txn, META_KV_LINEAGE_DOWN, kl.keys[i],
				      err)) < 0 ||
		    (rc = put_edge(txn, child_id, newk, &e, err)) < 0)
			goto out;
	}
	rc = 0;
out:
	key_list_release(&kl);
	return rc;
}

static int visit(struct meta_txn *txn, enum meta_kv db, const char *prefix,
		 lineage_fn fn, void *arg, struct err *err)
{
	struct key_list kl = { 0 };
	size_t plen = strlen(prefix);
	int rc;

	if ((rc = walk(txn, db, prefix, &kl, err)) < 0)
		goto out;
	for (size_t i = 0; i < kl.n; i++) {
		if ((rc = fn(kl.keys[i] + plen, &kl.edges[i], arg)) != 0)
			goto out;
	}
	rc = 0;
out:
	key_list_release(&kl);
	return rc;
}

int lineage_parents(struct meta_txn *txn, const char *child_id,
		    lineage_fn fn, void *arg, struct err *err)
{
	char prefix[REPO_ID_LEN + 2];

	snprintf(prefix, sizeof(prefix), "%s/", child_id);
	return visit(txn, META_KV_LINEAGE_UP, prefix, fn, arg, err);
}

int lineage_children(struct meta_txn *txn, const char *base,
		     lineage_fn fn, void *arg, struct err *err)
{
	char key[LINEAGE_BASE_MAX], prefix[LINEAGE_BASE_MAX + 2];

	lineage_key(key, sizeof(key), base);
	if (!key[0])
		return 0;
	snprintf(prefix, sizeof(prefix), "%s/", key);
	return visit(txn, META_KV_LINEAGE_DOWN, prefix, fn, arg, err);
}

char *lineage_card_error(struct meta_txn *txn, const char *child_id)
{
	char *json = NULL, *out = NULL;
	json_t *o;

	if (meta_kv_get(txn, META_KV_CARD_ERRORS, child_id, &json, NULL) < 0)
		return NULL;
	if ((o = json_loads(json, 0, NULL))) {
		const char *s = json_string_value(json_object_get(o, "error"));
		out = s ? strdup(s) : NULL;
		json_decref(o);
	}
	free(json);
	return out;
}

/* --- the model tree --- */

struct level_node {
	char key[LINEAGE_BASE_MAX];	/* lower-cased name */
	char id[REPO_ID_LEN + 1];	/* "" for an external model */
};

struct tree_walk {
	struct meta_txn *txn;
	lineage_visible_fn visible;
	void *arg;
	json_t *seen;		/* lower-cased names already listed */
	json_t *out;		/* the list being filled */
	struct level_node *next;	/* the level being collected */
	size_t nnext, capnext;
	int depth;
	int failed;
};

static bool may_see(struct tree_walk *w, const struct repo_record *rec)
{
	return !w->visible || w->visible(rec, w->arg);
}

static int add_node(struct tree_walk *w, const char *key, const char *id,
		    const char *shown, const struct lineage_edge *e,
		    bool external)
{
	json_t *item;

	if (json_object_get(w->seen, key))
		return 0;
	if (w->nnext == w->capnext) {
		size_t cap = w->capnext ? w->capnext * 2 : 16;
		struct level_node *n = realloc(w->next, cap * sizeof(*n));

		if (!n)
			return w->failed = ERR_FAIL;
		w->next = n;
		w->capnext = cap;
	}
	str_copy(w->next[w->nnext].key, key, sizeof(w->next[0].key));
	str_copy(w->next[w->nnext].id, id, sizeof(w->next[0].id));
	w->nnext++;
	item = json_pack("{s:s,s:s,s:i,s:b,s:b}", "id", shown,
			 "relation", e->relation, "depth", w->depth,
			 "inferred", e->inferred, "external", external);
	if (!item || json_object_set_new(w->seen, key, json_true()) < 0 ||
	    json_array_append_new(w->out, item) < 0)
		return w->failed = ERR_FAIL;
	return 0;
}

static int up_visit(const char *key, const struct lineage_edge *e, void *arg)
{
	struct tree_walk *w = arg;
	struct repo_record rec;

	if (meta_repo_get(w->txn, "model", key, &rec, NULL) == 0) {
		if (!may_see(w, &rec))
			return 0;
		return add_node(w, key, rec.id, rec.name, e, false);
	}
	return add_node(w, key, "", e->base[0] ? e->base : key, e, true);
}

static int down_visit(const char *child_id, const struct lineage_edge *e,
		      void *arg)
{
	struct tree_walk *w = arg;
	struct repo_record rec;
	char key[LINEAGE_BASE_MAX];

	if (meta_repo_get_by_id(w->txn, child_id, &rec, NULL) < 0 ||
	    !may_see(w, &rec))
		return 0;
	lineage_key(key, sizeof(key), rec.name);
	return add_node(w, key, rec.id, rec.name, e, false);
}

/* Breadth-first from root, one level per round. */
static json_t *walk_tree(struct tree_walk *w, const struct repo_record *root,
			 bool up, int depth, struct err *err)
{
	struct level_node *cur = NULL;
	size_t ncur = 0;
	int rc = 0;

	w->out = json_array();
	w->next = NULL;
	w->nnext = w->capnext = 0;
	if (!w->out || !(cur = calloc(1, sizeof(*cur))))
		goto fail;
	lineage_key(cur[0].key, sizeof(cur[0].key), root->name);
	str_copy(cur[0].id, root->id, sizeof(cur[0].id));
	ncur = 1;
	for (w->depth = 1; w->depth <= depth && ncur; w->depth++) {
		for (size_t i = 0; i < ncur && rc == 0; i++) {
			if (up && !cur[i].id[0])
				continue;	/* an external model has no card here */
			rc = up ? lineage_parents(w->txn, cur[i].id, up_visit, w, err)
				: lineage_children(w->txn, cur[i].key, down_visit,
						   w, err);
		}
		if (rc < 0 || w->failed)
			goto fail;
		free(cur);
		cur = w->next;
		ncur = w->nnext;
		w->next = NULL;
		w->nnext = w->capnext = 0;
	}
	free(cur);
	return w->out;
fail:
	free(cur);
	free(w->next);
	json_decref(w->out);
	if (rc >= 0)
		err_set(err, ERR_FAIL, "out of memory");
	return NULL;
}

static int count_visit(const char *child_id, const struct lineage_edge *e,
		       void *arg)
{
	struct tree_walk *w = arg;
	struct repo_record rec;
	json_t *n;

	if (meta_repo_get_by_id(w->txn, child_id, &rec, NULL) < 0 ||
	    !may_see(w, &rec))
		return 0;
	if (w->out && (n = json_object_get(w->out, e->relation)))
		json_integer_set(n, json_integer_value(n) + 1);
	w->depth++;
	return 0;
}

int lineage_children_count(struct meta_txn *txn, const char *root_name,
			   lineage_visible_fn visible, void *arg)
{
	struct tree_walk w = { .txn = txn, .visible = visible, .arg = arg };

	if (lineage_children(txn, root_name, count_visit, &w, NULL) < 0)
		return 0;
	return w.depth;
}

json_t *lineage_tree(struct meta_txn *txn, const struct repo_record *root,
		     int directions, int depth, lineage_visible_fn visible,
		     void *arg, struct err *err)
{
	struct tree_walk w = { .txn = txn, .visible = visible, .arg = arg };
	json_t *doc = NULL, *up = NULL, *down = NULL, *counts;
	char self[LINEAGE_BASE_MAX];

	if (depth < 1)
		depth = 1;
	if (depth > LINEAGE_DEPTH_MAX)
		depth = LINEAGE_DEPTH_MAX;
	lineage_key(self, sizeof(self), root->name);
	counts = json_pack("{s:i,s:i,s:i,s:i}", "adapter", 0, "merge", 0,
			   "quantized", 0, "finetune", 0);
	if (!counts)
		goto fail;
	w.out = counts;
	if (lineage_children(txn, root->name, count_visit, &w, err) < 0)
		goto fail;
	if ((directions & LINEAGE_ANCESTORS)) {
		if (!(w.seen = json_pack("{s:b}", self, 1)) ||
		    !(up = walk_tree(&w, root, true, depth, err)))
			goto fail;
		json_decref(w.seen);
		w.seen = NULL;
	}
	if ((directions & LINEAGE_DESCENDANTS)) {
		if (!(w.seen = json_pack("{s:b}", self, 1)) ||
		    !(down = walk_tree(&w, root, false, depth, err)))
			goto fail;
		json_decref(w.seen);
		w.seen = NULL;
	}
	doc = json_pack("{s:s,s:o,s:o,s:o}", "id", root->name,
			"ancestors", up ? up : json_array(),
			"descendants", down ? down : json_array(),
			"counts", counts);
	if (!doc)
		err_set(err, ERR_FAIL, "out of memory");
	return doc;
fail:
	json_decref(w.seen);
	json_decref(up);
	json_decref(counts);
	if (err && !err->code)
		err_set(err, ERR_FAIL, "out of memory");
	return NULL;
}
