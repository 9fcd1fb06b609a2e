/*
 * test_meta.c: the LMDB metadata environment (storage/meta.h).
 *
 * Each test opens a fresh environment in its own scratch folder with a
 * small map, fills it through short write transactions and reads it back
 * through read-only ones, the way the server uses it.
 */
#include "common/compat.h"

#include "common/err.h"
#include "common/util.h"
#include "storage/meta.h"
#include "tests/unit/test.h"
#include "tests/unit/test_tmp.h"

static const char commit_hex[] = "0123456789abcdef0123456789abcdef01234567";
static const char listing_json[] =
	"[[\"f\",\".gitattributes\","
	"\"0123456789abcdef0123456789abcdef01234567\",1519,null,0]]";

static void make_record(struct repo_record *rec, const char *id,
			const char *type, const char *name)
{
	memset(rec, 0, sizeof(*rec));
	str_copy(rec->id, id, sizeof(rec->id));
	str_copy(rec->type, type, sizeof(rec->type));
	str_copy(rec->name, name, sizeof(rec->name));
	rec->created = 1700000000;
}

/* Inserts one record in its own write transaction. */
static int insert(struct meta *meta, const struct repo_record *rec,
		  struct err *err)
{
	struct meta_txn *txn = NULL;
	int rc;

	if ((rc = meta_txn_begin(&txn, meta, true, err)) < 0)
		return rc;
	if ((rc = meta_repo_insert(txn, rec, err)) < 0) {
		meta_txn_abort(txn);
		return rc;
	}
	return meta_txn_commit(txn, err);
}

static int get(struct meta *meta, const char *type, const char *name,
	       struct repo_record *out, struct err *err)
{
	struct meta_txn *txn = NULL;
	int rc;

	if ((rc = meta_txn_begin(&txn, meta, false, err)) < 0)
		return rc;
	rc = meta_repo_get(txn, type, name, out, err);
	meta_txn_abort(txn);
	return rc;
}

static int test_meta_get_is_case_insensitive(void)
{
	struct meta *meta = NULL;
	struct repo_record rec, got;
	char dir[SCRATCH_LEN] = "";
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "meta") == 0);
	make_record(&rec, "0123456789abcdef0123456789abcdef", "model",
		    "Alice/Model");
	rec.private = true;
	str_copy(rec.gated, "manual", sizeof(rec.gated));
	CHECK(insert(meta, &rec, NULL) == 0);
	CHECK(get(meta, "model", "alice/model", &got, NULL) == 0);
	CHECK(!strcmp(got.name, "Alice/Model"));
	CHECK(!strcmp(got.id, rec.id) && !strcmp(got.type, "model"));
	CHECK(got.created == 1700000000 && got.private);
	CHECK(!strcmp(got.gated, "manual"));
	CHECK(get(meta, "model", "ALICE/MODEL", &got, NULL) == 0);
	CHECK(!strcmp(got.name, "Alice/Model"));
	CHECK(get(meta, "model", "Alice/Model", &got, NULL) == 0);
	rc = 0;
out:
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int test_meta_get_by_id(void)
{
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct repo_record rec, got;
	char dir[SCRATCH_LEN] = "";
	struct err e = { 0 };
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "meta") == 0);
	make_record(&rec, "00000000000000000000000000000001", "dataset",
		    "Org/Data");
	CHECK(insert(meta, &rec, NULL) == 0);
	CHECK(meta_txn_begin(&txn, meta, false, NULL) == 0);
	CHECK(meta_repo_get_by_id(txn, rec.id, &got, NULL) == 0);
	CHECK(!strcmp(got.name, "Org/Data") && !strcmp(got.type, "dataset"));
	CHECK(!strcmp(got.id, rec.id) && !got.private && !got.gated[0]);
	CHECK(meta_repo_get_by_id(txn, "ffffffffffffffffffffffffffffffff",
				  &got, &e) == ERR_NOREPO);
	CHECK(e.code == ERR_NOREPO);
	rc = 0;
out:
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int test_meta_insert_duplicate_is_refused(void)
{
	struct meta *meta = NULL;
	struct repo_record rec, dup, got;
	char dir[SCRATCH_LEN] = "";
	struct err e = { 0 };
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "meta") == 0);
	make_record(&rec, "00000000000000000000000000000001", "model",
		    "Alice/Model");
	CHECK(insert(meta, &rec, NULL) == 0);
	make_record(&dup, "00000000000000000000000000000002", "model",
		    "alice/MODEL");
	CHECK(insert(meta, &dup, &e) == ERR_EXISTS);
	CHECK(e.code == ERR_EXISTS);
	/* The refused insert changed nothing. */
	CHECK(get(meta, "model", "alice/model", &got, NULL) == 0);
	CHECK(!strcmp(got.id, rec.id) && !strcmp(got.name, "Alice/Model"));
	/* The same name under another type is another repository. */
	make_record(&dup, "00000000000000000000000000000003", "dataset",
		    "alice/model");
	CHECK(insert(meta, &dup, NULL) == 0);
	CHECK(get(meta, "dataset", "Alice/Model", &got, NULL) == 0);
	CHECK(!strcmp(got.id, dup.id));
	rc = 0;
out:
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int test_meta_missing_repo_is_norepo(void)
{
	struct meta *meta = NULL;
	struct repo_record rec, got;
	char dir[SCRATCH_LEN] = "";
	struct err e = { 0 };
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "meta") == 0);
	CHECK(get(meta, "model", "nobody/nothing", &got, &e) == ERR_NOREPO);
	CHECK(e.code == ERR_NOREPO);
	make_record(&rec, "00000000000000000000000000000001", "model", "a/b");
	CHECK(insert(meta, &rec, NULL) == 0);
	CHECK(get(meta, "dataset", "a/b", &got, NULL) == ERR_NOREPO);
	CHECK(get(meta, "model", "a/bc", &got, NULL) == ERR_NOREPO);
	CHECK(get(meta, "model", "a/", &got, NULL) == ERR_NOREPO);
	rc = 0;
out:
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

struct visit {
	char names[8][REPO_NAME_MAX];
	size_t count;
	size_t stop_after;	/* 0: never stop */
};

static int collect(const struct repo_record *rec, void *arg)
{
	struct visit *v = arg;

	if (v->count < ARRAY_SIZE(v->names))
		snprintf(v->names[v->count], sizeof(v->names[0]), "%s %s",
			 rec->type, rec->name);
	v->count++;
	return v->stop_after && v->count == v->stop_after ? 42 : 0;
}

static int test_meta_foreach_by_type_in_key_order(void)
{
	static const char *const repos[][3] = {
		{ "00000000000000000000000000000001", "model", "b/two" },
		{ "00000000000000000000000000000002", "space", "e/sp" },
		{ "00000000000000000000000000000003", "model", "C/three" },
		{ "00000000000000000000000000000004", "dataset", "d/data" },
		{ "00000000000000000000000000000005", "model", "a/one" },
	};
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct repo_record rec;
	struct visit v = { .count = 0 };
	char dir[SCRATCH_LEN] = "";
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "meta") == 0);
	for (size_t i = 0; i < ARRAY_SIZE(repos); i++) {
		make_record(&rec, repos[i][0], repos[i][1], repos[i][2]);
		CHECK(insert(meta, &rec, NULL) == 0);
	}
	CHECK(meta_txn_begin(&txn, meta, false, NULL) == 0);
	CHECK(meta_repo_foreach(txn, "model", collect, &v, NULL) == 0);
	CHECK(v.count == 3);
	CHECK(!strcmp(v.names[0], "model a/one"));
	CHECK(!strcmp(v.names[1], "model b/two"));
	CHECK(!strcmp(v.names[2], "model C/three"));

	memset(&v, 0, sizeof(v));
	CHECK(meta_repo_foreach(txn, "dataset", collect, &v, NULL) == 0);
	CHECK(v.count == 1 && !strcmp(v.names[0], "dataset d/data"));

	memset(&v, 0, sizeof(v));
	CHECK(meta_repo_foreach(txn, NULL, collect, &v, NULL) == 0);
	CHECK(v.count == 5);
	CHECK(!strcmp(v.names[0], "dataset d/data"));
	CHECK(!strcmp(v.names[1], "model a/one"));
	CHECK(!strcmp(v.names[2], "model b/two"));
	CHECK(!strcmp(v.names[3], "model C/three"));
	CHECK(!strcmp(v.names[4], "space e/sp"));

	memset(&v, 0, sizeof(v));
	v.stop_after = 2;
	CHECK(meta_repo_foreach(txn, NULL, collect, &v, NULL) == 42);
	CHECK(v.count == 2);
	rc = 0;
out:
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int test_meta_foreach_on_empty_env(void)
{
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct visit v = { .count = 0 };
	char dir[SCRATCH_LEN] = "";
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "meta") == 0);
	CHECK(meta_txn_begin(&txn, meta, false, NULL) == 0);
	CHECK(meta_repo_foreach(txn, NULL, collect, &v, NULL) == 0);
	CHECK(meta_repo_foreach(txn, "space", collect, &v, NULL) == 0);
	CHECK(v.count == 0);
	rc = 0;
out:
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int test_meta_listing_roundtrip(void)
{
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	char dir[SCRATCH_LEN] = "", *json = NULL;
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "meta") == 0);
	CHECK(meta_txn_begin(&txn, meta, true, NULL) == 0);
	CHECK(meta_listing_put(txn, commit_hex, listing_json, NULL) == 0);
	CHECK(meta_txn_commit(txn, NULL) == 0);
	txn = NULL;
	CHECK(meta_txn_begin(&txn, meta, false, NULL) == 0);
	CHECK(meta_listing_get(txn, commit_hex, &json, NULL) == 0);
	CHECK(json && !strcmp(json, listing_json));
	free(json);
	json = NULL;
	CHECK(meta_listing_get(txn, "1111111111111111111111111111111111111111",
			       &json, NULL) == ERR_NOTFOUND);
	CHECK(json == NULL);
	rc = 0;
out:
	free(json);
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int test_meta_aborted_txn_writes_nothing(void)
{
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct repo_record rec, got;
	char dir[SCRATCH_LEN] = "";
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "meta") == 0);
	make_record(&rec, "00000000000000000000000000000001", "model", "a/b");
	CHECK(meta_txn_begin(&txn, meta, true, NULL) == 0);
	CHECK(meta_repo_insert(txn, &rec, NULL) == 0);
	meta_txn_abort(txn);
	txn = NULL;
	meta_txn_abort(NULL);
	CHECK(get(meta, "model", "a/b", &got, NULL) == ERR_NOREPO);
	rc = 0;
out:
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int test_meta_reopen_keeps_data(void)
{
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct repo_record rec, got;
	char dir[SCRATCH_LEN] = "", *json = NULL;
	size_t map = 0, used = 0;
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "meta") == 0);
	make_record(&rec, "00000000000000000000000000000001", "model",
		    "Alice/Model");
	CHECK(insert(meta, &rec, NULL) == 0);
	CHECK(meta_txn_begin(&txn, meta, true, NULL) == 0);
	CHECK(meta_listing_put(txn, commit_hex, listing_json, NULL) == 0);
	CHECK(meta_txn_commit(txn, NULL) == 0);
	txn = NULL;
	meta_free(meta);
	meta = NULL;

	CHECK(meta_open(&meta, dir, SCRATCH_MAP_SIZE, NULL) == 0);
	CHECK(get(meta, "model", "alice/model", &got, NULL) == 0);
	CHECK(!strcmp(got.id, rec.id) && !strcmp(got.name, "Alice/Model"));
	CHECK(meta_txn_begin(&txn, meta, false, NULL) == 0);
	CHECK(meta_repo_get_by_id(txn, rec.id, &got, NULL) == 0);
	CHECK(meta_listing_get(txn, commit_hex, &json, NULL) == 0);
	CHECK(!strcmp(json, listing_json));
	CHECK(meta_stat(meta, &map, &used, NULL) == 0);
	CHECK(map == SCRATCH_MAP_SIZE && used > 0 && used <= map);
	rc = 0;
out:
	free(json);
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

int main(void)
{
	RUN(test_meta_get_is_case_insensitive);
	RUN(test_meta_get_by_id);
	RUN(test_meta_insert_duplicate_is_refused);
	RUN(test_meta_missing_repo_is_norepo);
	RUN(test_meta_foreach_by_type_in_key_order);
	RUN(test_meta_foreach_on_empty_env);
	RUN(test_meta_listing_roundtrip);
	RUN(test_meta_aborted_txn_writes_nothing);
	RUN(test_meta_reopen_keeps_data);
	return TEST_REPORT();
}
