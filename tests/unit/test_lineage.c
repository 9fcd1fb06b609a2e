/*
 * test_lineage.c: the lineage graph in LMDB (storage/lineage.h): edges
 * both ways, replacement, removal, moves, the model tree with depth,
 * external bases, cycles and visibility.
 */
#include "common/compat.h"

#include <string.h>
#include <jansson.h>

#include "common/err.h"
#include "common/util.h"
#include "storage/lineage.h"
#include "storage/meta.h"
#include "tests/unit/test.h"
#include "tests/unit/test_tmp.h"

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccc"

static void make_record(struct repo_record *rec, const char *id,
			const char *name)
{
	memset(rec, 0, sizeof(*rec));
	str_copy(rec->id, id, sizeof(rec->id));
	str_copy(rec->type, "model", sizeof(rec->type));
	str_copy(rec->name, name, sizeof(rec->name));
	rec->created = 1700000000;
}

static struct lineage_edge edge(const char *base, const char *rel,
				bool inferred)
{
	struct lineage_edge e = { .inferred = inferred };

	str_copy(e.base, base, sizeof(e.base));
	str_copy(e.relation, rel, sizeof(e.relation));
	return e;
}

static int count_fn(const char *key, const struct lineage_edge *e, void *arg)
{
	(void)key;
	(void)e;
	(*(int *)arg)++;
	return 0;
}

static int count_parents(struct meta_txn *txn, const char *id)
{
	int n = 0;

	lineage_parents(txn, id, count_fn, &n, NULL);
	return n;
}

static int count_children(struct meta_txn *txn, const char *base)
{
	int n = 0;

	lineage_children(txn, base, count_fn, &n, NULL);
	return n;
}

/* A (Org/Mid, finetune of External/Root) <- B (Org/Leaf, adapter of
 * org/mid) <- C (Org/Quant, quantized of Org/Leaf). */
static int fill(struct meta *meta, struct repo_record r[3])
{
	struct meta_txn *txn = NULL;
	struct lineage_edge e;
	int rc;

	make_record(&r[0], ID_A, "Org/Mid");
	make_record(&r[1], ID_B, "Org/Leaf");
	make_record(&r[2], ID_C, "Org/Quant");
	if ((rc = meta_txn_begin(&txn, meta, true, NULL)) < 0)
		return rc;
	for (int i = 0; i < 3; i++) {
		if ((rc = meta_repo_insert(txn, &r[i], NULL)) < 0)
			goto fail;
	}
	e = edge("External/Root", "finetune", true);
	if ((rc = lineage_set(txn, &r[0], &e, 1, NULL, NULL)) < 0)
		goto fail;
	e = edge("org/mid", "adapter", false);
	if ((rc = lineage_set(txn, &r[1], &e, 1, NULL, NULL)) < 0)
		goto fail;
	e = edge("Org/Leaf", "quantized", false);
	if ((rc = lineage_set(txn, &r[2], &e, 1, NULL, NULL)) < 0)
		goto fail;
	return meta_txn_commit(txn, NULL);
fail:
	meta_txn_abort(txn);
	return rc;
}

static int test_lineage_edges_both_ways(void)
{
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct repo_record r[3];
	struct lineage_edge e[2];
	char dir[SCRATCH_LEN] = "", *why = NULL;
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "lineage") == 0);
	CHECK(fill(meta, r) == 0);
	CHECK(meta_txn_begin(&txn, meta, true, NULL) == 0);
	CHECK(count_parents(txn, ID_A) == 1);
	CHECK(count_children(txn, "external/root") == 1);
	CHECK(count_children(txn, "ORG/MID") == 1);
	/* Replacing drops the old edges in both directions. */
	e[0] = edge("x/one", "merge", true);
	e[1] = edge("x/two", "merge", true);
	CHECK(lineage_set(txn, &r[1], e, 2, NULL, NULL) == 0);
	CHECK(count_parents(txn, ID_B) == 2);
	CHECK(count_children(txn, "org/mid") == 0);
	CHECK(count_children(txn, "x/two") == 1);
	/* A malformed card: no edges, the reason kept. */
	CHECK(lineage_set(txn, &r[1], NULL, 0, "bad yaml", NULL) == 0);
	CHECK(count_parents(txn, ID_B) == 0 && count_children(txn, "x/one") == 0);
	CHECK((why = lineage_card_error(txn, ID_B)) && !strcmp(why, "bad yaml"));
	CHECK(lineage_set(txn, &r[1], NULL, 0, NULL, NULL) == 0);
	free(why);
	why = lineage_card_error(txn, ID_B);
	CHECK(why == NULL);
	/* A card naming the model itself is no edge. */
	e[0] = edge("org/leaf", "finetune", true);
	CHECK(lineage_set(txn, &r[1], e, 1, NULL, NULL) == 0);
	CHECK(count_parents(txn, ID_B) == 0);
	rc = 0;
out:
	free(why);
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static bool hide_leaf(const struct repo_record *rec, void *arg)
{
	(void)arg;
	return strcmp(rec->id, ID_B) != 0;
}

static int test_lineage_tree_depth_and_visibility(void)
{
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct repo_record r[3];
	char dir[SCRATCH_LEN] = "";
	json_t *doc = NULL, *d;
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "lineage") == 0);
	CHECK(fill(meta, r) == 0);
	CHECK(meta_txn_begin(&txn, meta, false, NULL) == 0);
	doc = lineage_tree(txn, &r[0], LINEAGE_ANCESTORS | LINEAGE_DESCENDANTS,
			   3, NULL, NULL, NULL);
	CHECK(doc);
	CHECK(json_array_size(json_object_get(doc, "ancestors")) == 1);
	d = json_array_get(json_object_get(doc, "ancestors"), 0);
	CHECK(!strcmp(json_string_value(json_object_get(d, "id")), "External/Root"));
	CHECK(json_is_true(json_object_get(d, "external")));
	CHECK(json_is_true(json_object_get(d, "inferred")));
	CHECK(json_array_size(json_object_get(doc, "descendants")) == 2);
	d = json_array_get(json_object_get(doc, "descendants"), 1);
	CHECK(!strcmp(json_string_value(json_object_get(d, "id")), "Org/Quant"));
	CHECK(json_integer_value(json_object_get(d, "depth")) == 2);
	CHECK(json_integer_value(json_object_get(json_object_get(doc, "counts"),
						 "adapter")) == 1);
	json_decref(doc);
	doc = lineage_tree(txn, &r[0], LINEAGE_DESCENDANTS, 1, NULL, NULL, NULL);
	CHECK(doc && json_array_size(json_object_get(doc, "descendants")) == 1);
	CHECK(json_array_size(json_object_get(doc, "ancestors")) == 0);
	json_decref(doc);
	/* A hidden model neither appears nor leads anywhere. */
	doc = lineage_tree(txn, &r[0], LINEAGE_DESCENDANTS, 3, hide_leaf, NULL,
			   NULL);
	CHECK(doc && json_array_size(json_object_get(doc, "descendants")) == 0);
	CHECK(lineage_children_count(txn, "org/mid", hide_leaf, NULL) == 0);
	CHECK(lineage_children_count(txn, "org/mid", NULL, NULL) == 1);
	rc = 0;
out:
	json_decref(doc);
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int test_lineage_cycle_ends(void)
{
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct repo_record r[3];
	struct lineage_edge e;
	char dir[SCRATCH_LEN] = "";
	json_t *doc = NULL;
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "lineage") == 0);
	CHECK(fill(meta, r) == 0);
	CHECK(meta_txn_begin(&txn, meta, true, NULL) == 0);
	e = edge("org/quant", "merge", false);	/* Mid now derives from Quant */
	CHECK(lineage_set(txn, &r[0], &e, 1, NULL, NULL) == 0);
	doc = lineage_tree(txn, &r[0], LINEAGE_ANCESTORS | LINEAGE_DESCENDANTS,
			   10, NULL, NULL, NULL);
	CHECK(doc);
	CHECK(json_array_size(json_object_get(doc, "ancestors")) == 2);
	CHECK(json_array_size(json_object_get(doc, "descendants")) == 2);
	rc = 0;
out:
	json_decref(doc);
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int test_lineage_remove_and_rename(void)
{
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct repo_record r[3];
	char dir[SCRATCH_LEN] = "";
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "lineage") == 0);
	CHECK(fill(meta, r) == 0);
	CHECK(meta_txn_begin(&txn, meta, true, NULL) == 0);
	/* The base Org/Leaf moves: its child follows it. */
	CHECK(lineage_rename(txn, "Org/Leaf", "Org/Leaf2", NULL) == 0);
	CHECK(count_children(txn, "org/leaf") == 0);
	CHECK(count_children(txn, "org/leaf2") == 1);
	CHECK(count_parents(txn, ID_C) == 1);
	/* Org/Leaf (id B) is deleted: its own edge goes, its child's stays. */
	CHECK(lineage_remove(txn, ID_B, NULL) == 0);
	CHECK(count_parents(txn, ID_B) == 0);
	CHECK(count_children(txn, "org/mid") == 0);
	CHECK(count_children(txn, "org/leaf2") == 1);
	rc = 0;
out:
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int count_named_by(struct meta_txn *txn, const char *base)
{
	int n = 0;

	lineage_named_by(txn, base, count_fn, &n, NULL);
	return n;
}

static int test_lineage_orphan_on_delete(void)
{
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct repo_record r[3], again;
	json_t *doc = NULL, *up;
	char dir[SCRATCH_LEN] = "";
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "lineage") == 0);
	CHECK(fill(meta, r) == 0);
	CHECK(meta_txn_begin(&txn, meta, true, NULL) == 0);
	/* Org/Leaf (id B) is deleted as repo_delete does it. */
	CHECK(lineage_remove(txn, ID_B, NULL) == 0);
	CHECK(lineage_orphan(txn, &r[1], NULL) == 0);
	CHECK(meta_repo_delete(txn, &r[1], NULL) == 0);
	CHECK(count_children(txn, "org/leaf") == 0);
	CHECK(count_named_by(txn, "Org/Leaf") == 1);
	CHECK(count_parents(txn, ID_C) == 1);
	/* A new Org/Leaf inherits no child; Quant's base shows external. */
	make_record(&again, "dddddddddddddddddddddddddddddddd", "Org/Leaf");
	CHECK(meta_repo_insert(txn, &again, NULL) == 0);
	CHECK(count_children(txn, "org/leaf") == 0);
	CHECK(lineage_children_count(txn, "Org/Leaf", NULL, NULL) == 0);
	doc = lineage_tree(txn, &r[2], LINEAGE_ANCESTORS, 3, NULL, NULL, NULL);
	CHECK(doc);
	up = json_array_get(json_object_get(doc, "ancestors"), 0);
	CHECK(!strcmp(json_string_value(json_object_get(up, "id")), "Org/Leaf"));
	CHECK(json_is_true(json_object_get(up, "external")));
	/* Removing the child drops the orphaned edge both ways. */
	CHECK(lineage_remove(txn, ID_C, NULL) == 0);
	CHECK(count_named_by(txn, "org/leaf") == 0);
	rc = 0;
out:
	json_decref(doc);
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

int main(void)
{
	RUN(test_lineage_edges_both_ways);
	RUN(test_lineage_tree_depth_and_visibility);
	RUN(test_lineage_cycle_ends);
	RUN(test_lineage_remove_and_rename);
	RUN(test_lineage_orphan_on_delete);
	return TEST_REPORT();
}
