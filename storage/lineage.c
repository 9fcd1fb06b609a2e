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

int lineage_orphan(struct meta_txn *txn, const struct repo_record *base,
		   struct err *err)
{
	struct key_list kl = { 0 };
	char oldk[LINEAGE_BASE_MAX], gone[LINEAGE_BASE_MAX], prefix[KEY_MAX];
	char key[KEY_MAX];
	int rc;

	lineage_key(oldk, sizeof(oldk), base->name);
	if (!oldk[0])
		return 0;
	snprintf(prefix, sizeof(prefix), "%s/", oldk);
	if ((rc = walk(txn, META_KV_LINEAGE_DOWN, prefix, &kl, err)) < 0)
		goto out;
	for (size_t i = 0; i < kl.n; i++) {
		const char *child_id = kl.keys[i] + strlen(prefix);
		struct lineage_edge e = kl.edges[i];
		char *json = NULL;

		snprintf(key, sizeof(key), "%s/%s", child_id, oldk);
		str_copy(e.base, base->name, sizeof(e.base));
		if (meta_kv_get(txn, META_KV_LINEAGE_UP, key, &json, NULL) == 0) {
			struct lineage_edge up;

			edge_from_json(json, &up);
			free(json);
			str_copy(e.base, up.base, sizeof(e.base));
		}
		/* Keyed by the name the card wrote (it may be an old name of
		 * the model), so a tag filter on that name still finds it. */
		lineage_key(gone, sizeof(gone), e.base);
		if (strlen(gone) + 1 + REPO_ID_LEN >= sizeof(gone))
			continue;
		snprintf(gone + strlen(gone), sizeof(gone) - strlen(gone),
			 LINEAGE_GONE_MARK "%s", base->id);
		if ((rc = meta_kv_del(txn, META_KV_LINEAGE_UP, key, err)) < 0 ||
		    (rc = meta_kv_del(txn, META_KV_LINEAGE_DOWN, kl.keys[i],
				      err)) < 0 ||
		    (rc = put_edge(txn, child_id, gone, &e, err)) < 0)
			goto out;
	}
	rc = 0;
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

/* Reads an edge value as put_edge wrote it (a flat object of strings
 * without escapes and booleans) without building a JSON tree: the walks
 * of a large model tree read one per model. Anything else goes to
 * jansson. */
static int edge_scan(const char *p, struct lineage_edge *e)
{
	memset(e, 0, sizeof(*e));
	if (*p++ != '{')
		return -1;
	while (*p == '"') {
		const char *key = ++p, *val;
		size_t klen, vlen;

		if (!(p = strchr(p, '"')))
			return -1;
		klen = (size_t)(p - key);
		if (*++p != ':')
			return -1;
		val = ++p;
		if (*p == '"') {
			val = ++p;
			p += strcspn(p, "\\\"");
			if (*p != '"')
				return -1;
			vlen = (size_t)(p++ - val);
			if (klen == 4 && !memcmp(key, "base", 4) && vlen < sizeof(e->base)) {
				memcpy(e->base, val, vlen);
				e->base[vlen] = '\0';
			} else if (klen == 8 && !memcmp(key, "relation", 8) &&
				   vlen < sizeof(e->relation)) {
				memcpy(e->relation, val, vlen);
				e->relation[vlen] = '\0';
			}
		} else if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
			if (klen == 8 && !memcmp(key, "inferred", 8))
				e->inferred = *p == 't';
			p += *p == 't' ? 4 : 5;
		} else {
			return -1;
		}
		if (*p == ',')
			p++;
		else
			break;
	}
	return (p[0] == '}' && !p[1]) ? 0 : -1;
}

struct visit_ctx {
	size_t plen;
	lineage_fn fn;
	void *arg;
};

static int visit_one(const char *key, const char *json, void *arg)
{
	struct visit_ctx *v = arg;
	struct lineage_edge e;

	if (edge_scan(json, &e) < 0)
		edge_from_json(json, &e);
	return v->fn(key + v->plen, &e, v->arg);
}

/* Read-only walks call fn from inside the cursor walk: fn must not write
 * to the lineage databases (the writers above collect keys first). */
static int visit_keys(struct meta_txn *txn, enum meta_kv db,
		      const char *prefix, size_t skip, lineage_fn fn,
		      void *arg, struct err *err)
{
	struct visit_ctx v = { skip, fn, arg };

	return meta_kv_foreach(txn, db, prefix, visit_one, &v, err);
}

/* fn gets the key after the prefix. */
static int visit(struct meta_txn *txn, enum meta_kv db, const char *prefix,
		 lineage_fn fn, void *arg, struct err *err)
{
	return visit_keys(txn, db, prefix, strlen(prefix), fn, arg, err);
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

struct visit_last_ctx {
	lineage_fn fn;
	void *arg;
};

static int visit_last_one(const char *key, const struct lineage_edge *e,
			  void *arg)
{
	struct visit_last_ctx *v = arg;

	return v->fn(strrchr(key, '/') + 1, e, v->arg);
}

/* fn gets the child id: the part of the key after its last '/'. */
static int visit_last(struct meta_txn *txn, const char *prefix,
		      lineage_fn fn, void *arg, struct err *err)
{
	struct visit_last_ctx v = { fn, arg };

	return visit_keys(txn, META_KV_LINEAGE_DOWN, prefix, 0, visit_last_one,
			  &v, err);
}

int lineage_named_by(struct meta_txn *txn, const char *base, lineage_fn fn,
		     void *arg, struct err *err)
{
	char key[LINEAGE_BASE_MAX], prefix[LINEAGE_BASE_MAX + 2];
	int rc;

	lineage_key(key, sizeof(key), base);
	if (!key[0])
		return 0;
	snprintf(prefix, sizeof(prefix), "%s/", key);
	if ((rc = visit_last(txn, prefix, fn, arg, err)) != 0)
		return rc;
	snprintf(prefix, sizeof(prefix), "%s" LINEAGE_GONE_MARK, key);
	return visit_last(txn, prefix, fn, arg, err);
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

/* The answer is written as JSON text as the walk goes: a tree of 20,000
 * descendants would otherwise be 20,000 jansson objects built, dumped and
 * freed again. */
struct text {
	char *s;
	size_t len, cap;
	bool failed;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		char *p;

		while (cap < t->len + n + 1)
			cap *= 2;
		if (!(p = realloc(t->s, cap))) {
			t->failed = true;
			return;
		}
		t->s = p;
		t->cap = cap;
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

static void text_lit(struct text *t, const char *s)
{
	text_add(t, s, strlen(s));
}

/* s as a JSON string (s is UTF-8: it came through jansson or a name). */
static void text_str(struct text *t, const char *s)
{
	text_add(t, "\"", 1);
	while (*s) {
		size_t n = strcspn(s, "\"\\\x01\x02\x03\x04\x05\x06\x07\x08\x09"
				      "\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13"
				      "\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d"
				      "\x1e\x1f");
		char esc[8];

		text_add(t, s, n);
		s += n;
		if (!*s)
			break;
		if (*s == '"' || *s == '\\')
			snprintf(esc, sizeof(esc), "\\%c", *s);
		else
			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char)*s);
		text_lit(t, esc);
		s++;
	}
	text_add(t, "\"", 1);
}

/* A set of names (open addressing, FNV-1a): the models already listed. */
struct name_set {
	char **slots;
	size_t cap, count;
};

static size_t name_hash(const char *s)
{
	size_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Adds name; returns its stored copy, or NULL when it was there already
 * (or on out of memory, *failed then set). */
static const char *name_set_add(struct name_set *set, const char *name,
				bool *failed)
{
	size_t i;

	if ((set->count + 1) * 2 > set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 64;
		char **slots = calloc(cap, sizeof(*slots));

		if (!slots) {
			*failed = true;
			return NULL;
		}
		for (size_t j = 0; j < set->cap; j++) {
			if (!set->slots[j])
				continue;
			for (i = name_hash(set->slots[j]) & (cap - 1); slots[i];
			     i = (i + 1) & (cap - 1))
				;
			slots[i] = set->slots[j];
		}
		free(set->slots);
		set->slots = slots;
		set->cap = cap;
	}
	for (i = name_hash(name) & (set->cap - 1); set->slots[i];
	     i = (i + 1) & (set->cap - 1)) {
		if (!strcmp(set->slots[i], name))
			return NULL;
	}
	if (!(set->slots[i] = strdup(name))) {
		*failed = true;
		return NULL;
	}
	set->count++;
	return set->slots[i];
}

static void name_set_release(struct name_set *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slots[i]);
	free(set->slots);
	memset(set, 0, sizeof(*set));
}

struct level_node {
	const char *key;		/* lower-cased name, owned by seen */
	char id[REPO_ID_LEN + 1];	/* "" for an external model */
};

struct tree_walk {
	struct meta_txn *txn;
	lineage_visible_fn visible;
	void *arg;
	struct name_set seen;	/* lower-cased names already listed */
	struct text *out;	/* the list being written */
	size_t listed;		/* entries in it */
	struct level_node *next;	/* the level being collected */
	size_t nnext, capnext;
	int depth;
	bool failed;
	int counts[4];		/* per relation, for the counts object */
	int children;
};

static const char *const relation_names[4] = { "adapter", "merge",
					       "quantized", "finetune" };

static bool may_see(struct tree_walk *w, const struct repo_record *rec)
{
	return !w->visible || w->visible(rec, w->arg);
}

static int add_node(struct tree_walk *w, const char *key, const char *id,
		    const char *shown, const struct lineage_edge *e,
		    bool external)
{
	const char *stored = name_set_add(&w->seen, key, &w->failed);
	char num[2];

	if (!stored)
		return w->failed ? ERR_FAIL : 0;
	if (w->nnext == w->capnext) {
		size_t cap = w->capnext ? w->capnext * 2 : 16;
		struct level_node *n = realloc(w->next, cap * sizeof(*n));

		if (!n) {
			w->failed = true;
			return ERR_FAIL;
		}
		w->next = n;
		w->capnext = cap;
	}
	w->next[w->nnext].key = stored;
	str_copy(w->next[w->nnext].id, id, sizeof(w->next[0].id));
	w->nnext++;
	text_lit(w->out, w->listed++ ? ",{\"id\":" : "{\"id\":");
	text_str(w->out, shown);
	text_lit(w->out, ",\"relation\":");
	text_str(w->out, e->relation);
	/* depth is 1..LINEAGE_DEPTH_MAX: no printf per model. */
	num[0] = (char)('0' + w->depth / 10);
	num[1] = (char)('0' + w->depth % 10);
	text_lit(w->out, ",\"depth\":");
	text_add(w->out, num + (w->depth < 10), w->depth < 10 ? 1 : 2);
	text_lit(w->out, e->inferred ? ",\"inferred\":true" : ",\"inferred\":false");
	text_lit(w->out, external ? ",\"external\":true}" : ",\"external\":false}");
	return w->out->failed ? ERR_FAIL : 0;
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

/* Breadth-first from root, one level per round, into w->out as the
 * elements of a JSON array. */
static int walk_tree(struct tree_walk *w, const struct repo_record *root,
		     bool up, int depth, struct err *err)
{
	struct level_node *cur = NULL;
	char self[LINEAGE_BASE_MAX];
	size_t ncur = 0;
	int rc = 0;

	name_set_release(&w->seen);
	w->listed = 0;
	w->next = NULL;
	w->nnext = w->capnext = 0;
	lineage_key(self, sizeof(self), root->name);
	if (!(cur = calloc(1, sizeof(*cur))) ||
	    !(cur[0].key = name_set_add(&w->seen, self, &w->failed)))
		goto fail;
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
	return 0;
fail:
	free(cur);
	free(w->next);
	w->next = NULL;
	if (rc >= 0 || (err && !err->code))
		rc = err_set(err, ERR_FAIL, "out of memory");
	return rc;
}

static int count_visit(const char *child_id, const struct lineage_edge *e,
		       void *arg)
{
	struct tree_walk *w = arg;
	struct repo_record rec;

	if (meta_repo_get_by_id(w->txn, child_id, &rec, NULL) < 0 ||
	    !may_see(w, &rec))
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(relation_names); i++) {
		if (!strcmp(e->relation, relation_names[i]))
			w->counts[i]++;
	}
	w->children++;
	return 0;
}

int lineage_children_count(struct meta_txn *txn, const char *root_name,
			   lineage_visible_fn visible, void *arg)
{
	struct tree_walk w = { .txn = txn, .visible = visible, .arg = arg };

	if (lineage_children(txn, root_name, count_visit, &w, NULL) < 0)
		return 0;
	return w.children;
}

char *lineage_tree_text(struct meta_txn *txn, const struct repo_record *root,
			int directions, int depth, lineage_visible_fn visible,
			void *arg, size_t *len, struct err *err)
{
	struct tree_walk w = { .txn = txn, .visible = visible, .arg = arg };
	struct text t = { 0 };
	char num[160];
	int rc = 0;

	if (depth < 1)
		depth = 1;
	if (depth > LINEAGE_DEPTH_MAX)
		depth = LINEAGE_DEPTH_MAX;
	w.out = &t;
	if ((rc = lineage_children(txn, root->name, count_visit, &w, err)) < 0)
		goto fail;
	text_lit(&t, "{\"id\":");
	text_str(&t, root->name);
	text_lit(&t, ",\"ancestors\":[");
	if ((directions & LINEAGE_ANCESTORS) &&
	    (rc = walk_tree(&w, root, true, depth, err)) < 0)
		goto fail;
	text_lit(&t, "],\"descendants\":[");
	if ((directions & LINEAGE_DESCENDANTS) &&
	    (rc = walk_tree(&w, root, false, depth, err)) < 0)
		goto fail;
	snprintf(num, sizeof(num), "],\"counts\":{\"adapter\":%d,\"merge\":%d,"
		 "\"quantized\":%d,\"finetune\":%d}}", w.counts[0], w.counts[1],
		 w.counts[2], w.counts[3]);
	text_lit(&t, num);
	if (t.failed)
		goto fail;
	name_set_release(&w.seen);
	*len = t.len;
	return t.s;
fail:
	name_set_release(&w.seen);
	free(t.s);
	if (rc >= 0 || (err && !err->code))
		err_set(err, ERR_FAIL, "out of memory");
	return NULL;
}

json_t *lineage_tree(struct meta_txn *txn, const struct repo_record *root,
		     int directions, int depth, lineage_visible_fn visible,
		     void *arg, struct err *err)
{
	size_t len = 0;
	char *text = lineage_tree_text(txn, root, directions, depth, visible,
				       arg, &len, err);
	json_t *doc;

	if (!text)
		return NULL;
	doc = json_loadb(text, len, 0, NULL);
	free(text);
	if (!doc)
		err_set(err, ERR_FAIL, "out of memory");
	return doc;
}
