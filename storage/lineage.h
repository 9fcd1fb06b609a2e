/*
 * lineage.h: the model lineage graph (which models a model is derived
 * from), kept in LMDB with edges both ways; the layout is in
 * meta_keys.h. Edges describe the default branch of each child and are
 * rewritten whenever that branch moves. A base is named by its
 * lower-cased repository id as the card wrote it (or the current name of
 * the model Haven holds under it); a base Haven does not hold is
 * "external". A child is named by its stable 32-hex repository id, so a
 * move of the child changes nothing here.
 */
#ifndef HAVEN_LINEAGE_H
#define HAVEN_LINEAGE_H

#include <stdbool.h>
#include <jansson.h>

#include "common/err.h"
#include "storage/meta.h"

#define LINEAGE_BASE_MAX 256

struct lineage_edge {
	char base[LINEAGE_BASE_MAX];	/* as written in the card */
	char relation[16];		/* adapter|merge|quantized|finetune */
	bool inferred;
};

/* Replaces the edges of child (a model) with edges[0..n): its old
 * up and down entries are removed first. card_error, when not NULL,
 * records why the card could not be read (n is then 0); NULL clears it. */
int lineage_set(struct meta_txn *txn, const struct repo_record *child,
		const struct lineage_edge *edges, size_t n,
		const char *card_error, struct err *err);

/* Removes child's own edges and card error (on delete); edges of its
 * children stay, now pointing at an external id. */
int lineage_remove(struct meta_txn *txn, const char *child_id,
		   struct err *err);

/* On delete of the model base: the edges that point at it are kept,
 * now external, under the key <lower base as the card wrote it>
 * LINEAGE_GONE_MARK <its id>,
 * which no name can take, so a model created later under the same name
 * does not inherit the old one's children (until their cards are read
 * again: a commit or `haven lineage --rebuild`). */
#define LINEAGE_GONE_MARK "#"
int lineage_orphan(struct meta_txn *txn, const struct repo_record *base,
		   struct err *err);

/* Re-keys the edges that point at a model renamed from old_name to
 * new_name (the children keep their place in the tree). */
int lineage_rename(struct meta_txn *txn, const char *old_name,
		   const char *new_name, struct err *err);

/* The edges of child. fn gets the lower-cased key of the base and the
 * edge; non-zero stops the walk and is returned. */
typedef int (*lineage_fn)(const char *key, const struct lineage_edge *e,
			  void *arg);
int lineage_parents(struct meta_txn *txn, const char *child_id,
		    lineage_fn fn, void *arg, struct err *err);

/* The direct children of a base (any case): fn gets the child's 32-hex
 * repository id in key and the edge (base is the lower-cased name). */
int lineage_children(struct meta_txn *txn, const char *base,
		     lineage_fn fn, void *arg, struct err *err);

/* The children whose card may name base (any case) in base_model: the
 * edges keyed by it and those left under it by a deleted model. A
 * superset for the tag filter base_model:<base> (a moved base's edges
 * are under its current name: ask for that one too). fn gets the
 * child's id in key; a child may come more than once. */
int lineage_named_by(struct meta_txn *txn, const char *base, lineage_fn fn,
		     void *arg, struct err *err);

/* Why child's card could not be read: a malloc'd string, or NULL when
 * it could. */
char *lineage_card_error(struct meta_txn *txn, const char *child_id);

/* Whether the caller may see a repository; NULL sees everything. */
typedef bool (*lineage_visible_fn)(const struct repo_record *rec, void *arg);

enum { LINEAGE_ANCESTORS = 1, LINEAGE_DESCENDANTS = 2 };
#define LINEAGE_DEPTH_MAX 10

/* The model tree around root (a model Haven holds):
 *   {"id", "ancestors": [...], "descendants": [...], "counts": {...}}
 * with entries {"id", "relation", "depth", "inferred", "external"} in
 * breadth-first order, each model once (so cycles end), at most depth
 * levels away. counts are per relation over root's direct children.
 * Models the caller cannot see never appear, and nothing is reached
 * through them. NULL when out of memory or LMDB fails (err set). */
json_t *lineage_tree(struct meta_txn *txn, const struct repo_record *root,
		     int directions, int depth, lineage_visible_fn visible,
		     void *arg, struct err *err);

/* The same as compact JSON text, malloc'd, its length in *len: what the
 * lineage endpoint sends, without a jansson object per model. */
char *lineage_tree_text(struct meta_txn *txn, const struct repo_record *root,
			int directions, int depth, lineage_visible_fn visible,
			void *arg, size_t *len, struct err *err);

/* The number of root's direct children the caller can see. */
int lineage_children_count(struct meta_txn *txn, const char *root_name,
			   lineage_visible_fn visible, void *arg);

/* The key a base name gets: its lower-cased form. */
void lineage_key(char *out, size_t size, const char *base);

#endif
