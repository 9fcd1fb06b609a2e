/*
 * stats.c: see stats.h. Values are small JSON objects ({"n": count},
 * {"user", "time"}) so that mdb_dump stays readable, like every other
 * record in meta_keys.h.
 */
#include "common/compat.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/util.h"
#include "storage/stats.h"

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcasecmp(s + n - m, suffix);
}

bool stats_counts_download(const char *type, const char *path, bool diffusers)
{
	static const char *const query_files[] = {
		"config.json", "config.yaml", "hyperparams.yaml",
		"params.json", "meta.yaml",
	};
	bool top = strchr(path, '/') == NULL;

	if (!strcmp(type, "dataset"))
		return true;
	if (strcmp(type, "model"))
		return false;
	if (ends_with(path, ".gguf"))
		return true;
	if (top) {
		for (size_t i = 0; i < ARRAY_SIZE(query_files); i++)
			if (!strcmp(path, query_files[i]))
				return true;
	}
	if (diffusers && top)
		return !strcmp(path, "model_index.json") ||
		       !strcmp(path, "modular_model_index.json") ||
		       ends_with(path, ".safetensors") ||
		       ends_with(path, ".ckpt") || ends_with(path, ".bin");
	return false;
}

void stats_day(char out[STATS_DAY_LEN + 1], time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, STATS_DAY_LEN + 1, "%04d-%02d-%02d", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday);
}

/* Reads {"n": count}; an absent record is 0. */
static int read_count(struct meta_txn *txn, const char *key, uint64_t *n,
		      struct err *err)
{
	char *text = NULL;
	json_t *o;
	int rc;

	*n = 0;
	rc = meta_kv_get(txn, META_KV_DOWNLOADS, key, &text, NULL);
	if (rc == ERR_NOTFOUND)
		return 0;
	if (rc < 0)
		return err_set(err, rc, "cannot read the counter '%s'", key);
	o = json_loads(text, 0, NULL);
	free(text);
	if (json_integer_value(json_object_get(o, "n")) > 0)
		*n = (uint64_t)json_integer_value(json_object_get(o, "n"));
	json_decref(o);
	return 0;
}

static int add_count(struct meta_txn *txn, const char *key, uint64_t n,
		     struct err *err)
{
	char val[48];
	uint64_t old;
	int rc;

	if ((rc = read_count(txn, key, &old, err)) < 0)
		return rc;
	snprintf(val, sizeof(val), "{\"n\":%" PRIu64 "}", old + n);
	return meta_kv_put(txn, META_KV_DOWNLOADS, key, val, false, err);
}

int stats_add(struct meta_txn *txn, const char *repo_id, const char *day,
	      uint64_t n, struct err *err)
{
	char key[128];
	int rc;

	snprintf(key, sizeof(key), "%s/%s", repo_id, day);
	if ((rc = add_count(txn, key, n, err)) < 0)
		return rc;
	snprintf(key, sizeof(key), "%s/total", repo_id);
	return add_count(txn, key, n, err);
}

int stats_downloads(struct meta_txn *txn, const char *repo_id, time_t now,
		    int days, uint64_t *recent, uint64_t *all_time,
		    struct err *err)
{
	char key[128], day[STATS_DAY_LEN + 1];
	uint64_t n;
	int rc;

	*recent = 0;
	/* One exact read per day: cheaper than a range over the whole
	 * history of a long-lived repository. */
	for (int i = 0; i < days; i++) {
		stats_day(day, now - (time_t)i * 86400);
		snprintf(key, sizeof(key), "%s/%s", repo_id, day);
		if ((rc = read_count(txn, key, &n, err)) < 0)
			return rc;
		*recent += n;
	}
	snprintf(key, sizeof(key), "%s/total", repo_id);
	return read_count(txn, key, all_time, err);
}

struct day_walk {
	stats_day_fn fn;
	void *arg;
};

static int visit_day(const char *key, const char *json, void *arg)
{
	struct day_walk *w = arg;
	char id[REPO_ID_LEN + 1];
	const char *slash = strchr(key, '/');
	json_t *o;
	json_int_t n;

	if (!slash || (size_t)(slash - key) != REPO_ID_LEN ||
	    strlen(slash + 1) != STATS_DAY_LEN)
		return 0;	/* the "total" records */
	memcpy(id, key, REPO_ID_LEN);
	id[REPO_ID_LEN] = '\0';
	o = json_loads(json, 0, NULL);
	n = json_integer_value(json_object_get(o, "n"));
	json_decref(o);
	return w->fn(id, slash + 1, n > 0 ? (uint64_t)n : 0, w->arg);
}

int stats_foreach_day(struct meta_txn *txn, stats_day_fn fn, void *arg,
		      struct err *err)
{
	struct day_walk w = { fn, arg };

	return meta_kv_foreach(txn, META_KV_DOWNLOADS, "", visit_day, &w, err);
}

int stats_like_set(struct meta_txn *txn, const char *repo_id,
		   const char *user, bool on, struct err *err)
{
	char key[300], by_user[300], lower[256], val[64];
	json_int_t now;
	json_t *o;
	char *text;
	int rc;

	if (str_lower(lower, sizeof(lower), user) < 0)
		return err_set(err, ERR_INVALID, "user name too long");
	snprintf(key, sizeof(key), "%s/%s", repo_id, lower);
	snprintf(by_user, sizeof(by_user), "%s/%s", lower, repo_id);
	if (!on) {
		if ((rc = meta_kv_del(txn, META_KV_LIKES, key, err)) < 0)
			return rc;
		return meta_kv_del(txn, META_KV_USER_LIKES, by_user, err);
	}
	now = (json_int_t)time(NULL);
	o = json_pack("{s:s, s:I}", "user", user, "time", now);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return err_set(err, ERR_FAIL, "out of memory");
	rc = meta_kv_put(txn, META_KV_LIKES, key, text, true, err);
	free(text);
	if (rc == ERR_EXISTS)
		return 0;	/* liked before: keep the first time */
	if (rc < 0)
		return rc;
	snprintf(val, sizeof(val), "{\"time\":%" PRId64 "}", (int64_t)now);
	return meta_kv_put(txn, META_KV_USER_LIKES, by_user, val, false, err);
}

struct user_like_walk {
	stats_user_like_fn fn;
	void *arg;
};

static int visit_user_like(const char *key, const char *json, void *arg)
{
	struct user_like_walk *w = arg;
	const char *id = strrchr(key, '/');
	json_t *o;
	json_int_t t;

	if (!id || strlen(id + 1) != REPO_ID_LEN)
		return 0;
	o = json_loads(json, 0, NULL);
	t = json_integer_value(json_object_get(o, "time"));
	json_decref(o);
	return w->fn(id + 1, (time_t)t, w->arg);
}

int stats_user_likes(struct meta_txn *txn, const char *user,
		     stats_user_like_fn fn, void *arg, struct err *err)
{
	struct user_like_walk w = { fn, arg };
	char lower[256], prefix[260];

	if (str_lower(lower, sizeof(lower), user) < 0)
		return err_set(err, ERR_INVALID, "user name too long");
	snprintf(prefix, sizeof(prefix), "%s/", lower);
	return meta_kv_foreach(txn, META_KV_USER_LIKES, prefix, visit_user_like,
			       &w, err);
}

/* The keys under a prefix, collected before any is deleted: a cursor
 * walk and deletes in the same database do not mix. */
struct key_bag {
	char **keys;
	size_t n, cap;
};

static int bag_add(const char *key, const char *json, void *arg)
{
	struct key_bag *b = arg;

	(void)json;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		char **k = realloc(b->keys, cap * sizeof(*k));

		if (!k)
			return ERR_FAIL;
		b->keys = k;
		b->cap = cap;
	}
	if (!(b->keys[b->n] = strdup(key)))
		return ERR_FAIL;
	b->n++;
	return 0;
}

static void bag_release(struct key_bag *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->keys[i]);
	free(b->keys);
	memset(b, 0, sizeof(*b));
}

static int bag_fill(struct meta_txn *txn, enum meta_kv db, const char *prefix,
		    struct key_bag *b, struct err *err)
{
	int rc = meta_kv_foreach(txn, db, prefix, bag_add, b, err);

	if (rc > 0 || rc == ERR_FAIL)
		return err_set(err, ERR_FAIL, "out of memory");
	return rc;
}

int stats_remove(struct meta_txn *txn, const char *repo_id, struct err *err)
{
	struct key_bag b = { 0 };
	char prefix[REPO_ID_LEN + 2], by_user[300];
	int rc;

	snprintf(prefix, sizeof(prefix), "%s/", repo_id);
	if ((rc = bag_fill(txn, META_KV_DOWNLOADS, prefix, &b, err)) < 0)
		goto out;
	for (size_t i = 0; i < b.n; i++) {
		if ((rc = meta_kv_del(txn, META_KV_DOWNLOADS, b.keys[i], err)) < 0)
			goto out;
	}
	bag_release(&b);
	if ((rc = bag_fill(txn, META_KV_LIKES, prefix, &b, err)) < 0)
		goto out;
	for (size_t i = 0; i < b.n; i++) {
		snprintf(by_user, sizeof(by_user), "%s/%s",
			 b.keys[i] + strlen(prefix), repo_id);
		if ((rc = meta_kv_del(txn, META_KV_USER_LIKES, by_user, err)) < 0 ||
		    (rc = meta_kv_del(txn, META_KV_LIKES, b.keys[i], err)) < 0)
			goto out;
	}
	rc = 0;
out:
	bag_release(&b);
	return rc;
}

struct like_walk {
	time_t since;
	uint64_t count, recent;
};

static int visit_like(const char *key, const char *json, void *arg)
{
	struct like_walk *w = arg;
	json_t *o = json_loads(json, 0, NULL);

	(void)key;
	w->count++;
	if (json_integer_value(json_object_get(o, "time")) >= (json_int_t)w->since)
		w->recent++;
	json_decref(o);
	return 0;
}

int stats_likes(struct meta_txn *txn, const char *repo_id, time_t since,
		uint64_t *count, uint64_t *recent, struct err *err)
{
	struct like_walk w = { since, 0, 0 };
	char prefix[64];
	int rc;

	snprintf(prefix, sizeof(prefix), "%s/", repo_id);
	rc = meta_kv_foreach(txn, META_KV_LIKES, prefix, visit_like, &w, err);
	*count = w.count;
	if (recent)
		*recent = w.recent;
	return rc;
}

int stats_counts_get(struct meta *meta, const char *repo_id, time_t now,
		     struct stats_counts *out, struct err *err)
{
	struct meta_txn *txn = NULL;
	uint64_t week, all, likes_week;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = meta_txn_begin(&txn, meta, false, err)) < 0)
		return rc;
	if ((rc = stats_downloads(txn, repo_id, now, STATS_RECENT_DAYS,
				  &out->downloads, &out->downloads_all_time,
				  err)) < 0 ||
	    (rc = stats_downloads(txn, repo_id, now, STATS_TRENDING_DAYS,
				  &week, &all, err)) < 0 ||
	    (rc = stats_likes(txn, repo_id,
			      now - (time_t)STATS_TRENDING_DAYS * 86400,
			      &out->likes, &likes_week, err)) < 0)
		goto out;
	out->trending = week + STATS_TRENDING_LIKE_WEIGHT * likes_week;
out:
	meta_txn_abort(txn);
	return rc;
}
