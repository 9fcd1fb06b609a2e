/*
 * mirror_state.c: the "mirrors" database (layout in meta_keys.h), one JSON
 * record per mirrored or pulled-through repository.
 */
#include "common/compat.h"

#include <jansson.h>

#include "common/util.h"
#include "storage/mirror_state.h"

static const char *mode_name(enum mirror_mode mode)
{
	return mode == MIRROR_MODE_PULL_THROUGH ? "pull-through" : "mirror";
}

static json_t *string_list(const char list[][256], size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(list[i]));
	return a;
}

static size_t read_list(char list[][256], size_t max, const json_t *a)
{
	size_t i, n = 0;
	json_t *v;

	json_array_foreach(a, i, v) {
		if (n < max && json_is_string(v))
			str_copy(list[n++], json_string_value(v), 256);
	}
	return n;
}

static char *state_to_json(const struct mirror_state *st)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:I, s:s, s:s, s:I}",
			      "type", st->type, "name", st->name,
			      "upstream", st->upstream,
			      "mode", mode_name(st->mode),
			      "upstream_private", st->upstream_private,
			      "upstream_gated", st->upstream_gated,
			      "last_attempt", (json_int_t)st->last_attempt,
			      "last_success", (json_int_t)st->last_success,
			      "status", st->status, "error", st->error,
			      "bytes_total", (json_int_t)st->bytes_total);
	char *text;

	if (!o)
		return NULL;
	json_object_set_new(o, "revisions",
			    string_list(st->revisions, st->nrevisions));
	json_object_set_new(o, "include", string_list(st->include, st->ninclude));
	json_object_set_new(o, "exclude", string_list(st->exclude, st->nexclude));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

static void copy_string(char *dst, size_t size, const json_t *o,
			const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	str_copy(dst, v ? v : "", size);
}

static int state_from_json(struct mirror_state *st, const char *repo_id,
			   const char *text)
{
	json_t *o = json_loads(text, 0, NULL);
	const char *mode;

	if (!json_is_object(o)) {
		json_decref(o);
		return ERR_CORRUPT;
	}
	memset(st, 0, sizeof(*st));
	str_copy(st->repo_id, repo_id, sizeof(st->repo_id));
	copy_string(st->type, sizeof(st->type), o, "type");
	copy_string(st->name, sizeof(st->name), o, "name");
	copy_string(st->upstream, sizeof(st->upstream), o, "upstream");
	mode = json_string_value(json_object_get(o, "mode"));
	st->mode = mode && !strcmp(mode, "pull-through") ?
		   MIRROR_MODE_PULL_THROUGH : MIRROR_MODE_MIRROR;
	st->upstream_private = json_is_true(json_object_get(o, "upstream_private"));
	copy_string(st->upstream_gated, sizeof(st->upstream_gated), o,
		    "upstream_gated");
	st->nrevisions = read_list(st->revisions, MIRROR_MAX_REVS,
				   json_object_get(o, "revisions"));
	st->ninclude = read_list(st->include, MIRROR_MAX_GLOBS,
				 json_object_get(o, "include"));
	st->nexclude = read_list(st->exclude, MIRROR_MAX_GLOBS,
				 json_object_get(o, "exclude"));
	st->last_attempt = json_integer_value(json_object_get(o, "last_attempt"));
	st->last_success = json_integer_value(json_object_get(o, "last_success"));
	copy_string(st->status, sizeof(st->status), o, "status");
	copy_string(st->error, sizeof(st->error), o, "error");
	st->bytes_total = (uint64_t)json_integer_value(json_object_get(o, "bytes_total"));
	json_decref(o);
	return 0;
}

int mirror_state_get(struct meta *meta, const char *repo_id,
		     struct mirror_state *out, struct err *err)
{
	struct meta_txn *txn = NULL;
	char *json = NULL;
	int rc;

	if ((rc = meta_txn_begin(&txn, meta, false, err)) < 0)
		return rc;
	rc = meta_kv_get(txn, META_KV_MIRRORS, repo_id, &json, err);
	meta_txn_abort(txn);
	if (rc == 0 && state_from_json(out, repo_id, json) < 0)
		rc = err_set(err, ERR_CORRUPT, "mirror record of %s is damaged",
			     repo_id);
	free(json);
	return rc;
}

int mirror_state_put(struct meta *meta, const struct mirror_state *st,
		     struct err *err)
{
	struct meta_txn *txn = NULL;
	char *json = state_to_json(st);
	int rc;

	if (!json)
		return err_set(err, ERR_FAIL, "out of memory");
	if ((rc = meta_txn_begin(&txn, meta, true, err)) == 0) {
		rc = meta_kv_put(txn, META_KV_MIRRORS, st->repo_id, json, false,
				 err);
		if (rc == 0)
			rc = meta_txn_commit(txn, err);
		else
			meta_txn_abort(txn);
	}
	free(json);
	return rc;
}

int mirror_state_del(struct meta *meta, const char *repo_id, struct err *err)
{
	struct meta_txn *txn = NULL;
	int rc;

	if ((rc = meta_txn_begin(&txn, meta, true, err)) < 0)
		return rc;
	if ((rc = meta_kv_del(txn, META_KV_MIRRORS, repo_id, err)) < 0) {
		meta_txn_abort(txn);
		return rc;
	}
	return meta_txn_commit(txn, err);
}

struct foreach_ctx {
	mirror_state_fn fn;
	void *arg;
};

static int visit(const char *key, const char *json, void *arg)
{
	struct foreach_ctx *ctx = arg;
	struct mirror_state st;

	if (state_from_json(&st, key, json) < 0)
		return 0;	/* a damaged record is fsck's to report */
	return ctx->fn(&st, ctx->arg);
}

int mirror_state_foreach(struct meta *meta, mirror_state_fn fn, void *arg,
			 struct err *err)
{
	struct foreach_ctx ctx = { fn, arg };
	struct meta_txn *txn = NULL;
	int rc;

	if ((rc = meta_txn_begin(&txn, meta, false, err)) < 0)
		return rc;
	rc = meta_kv_foreach(txn, META_KV_MIRRORS, "", visit, &ctx, err);
	meta_txn_abort(txn);
	return rc;
}
