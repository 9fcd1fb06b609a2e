/*
 * route_repo.c: repo info, GET /api/{types}/{repo}[/revision/{rev}], and
 * listings, GET /api/{types} (hub-api.md 2.2, 2.3).
 *
 * Each property of a repo object is one row of a table, so `expand`
 * (return only what was asked, plus _id and id) and the default shapes
 * are the same code. Listings are sorted by (value descending, id
 * ascending) and paged with a cursor holding the last (value, id) sent,
 * so a page stays correct while repositories are added.
 */
#include "common/compat.h"

#include <inttypes.h>
#include <strings.h>

#include "common/util.h"
#include "server/hub_error.h"
#include "server/hub_json.h"
#include "server/hub_repo.h"
#include "server/routes.h"
#include "ingest/modelcard.h"
#include "server/auth.h"
#include "storage/lineage.h"
#include "storage/stats.h"

#define LIST_PAGE_MAX 1000
#define CARD_MAX (1 << 20)

/* What a property may need to build its value. */
struct repo_view {
	struct hub_call *call;
	struct hub_repo *repo;
	bool blobs;		/* siblings with size, blobId and lfs */
	int64_t last_modified;	/* head commit time */
	bool card_loaded;
	json_t *card;		/* README front matter, or NULL */
	json_t *tags;		/* tags derived from it */
	bool counts_loaded;
	struct stats_counts counts;	/* downloads, likes */
};

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* Reads README.md of the revision (a regular file of reasonable size). */
static char *read_readme(struct hub_repo *r, size_t *len)
{
	const struct listing_entry *e = listing_find(r->listing, "README.md");
	git_blob *blob = NULL;
	char *text = NULL;
	git_oid oid;

	if (!e || e->lfs || e->size > CARD_MAX || git_oid_fromstr(&oid, e->oid) < 0 ||
	    git_blob_lookup(&blob, r->git, &oid) < 0)
		return NULL;
	*len = (size_t)git_blob_rawsize(blob);
	if ((text = malloc(*len + 1))) {
		memcpy(text, git_blob_rawcontent(blob), *len);
		text[*len] = '\0';
	}
	git_blob_free(blob);
	return text;
}

/* Loads the card and its tags once per view. A malformed card leaves
 * cardData null, as the Hub does; it never fails the request. */
static void load_card(struct repo_view *v)
{
	struct modelcard_files files = { 0 };
	struct err err = { 0 };
	char *text;
	size_t len = 0;

	if (v->card_loaded)
		return;
	v->card_loaded = true;
	if (hub_repo_listing(v->repo, v->call, &err) < 0)
		return;
	for (size_t i = 0; i < v->repo->listing->count; i++) {
		const char *path = v->repo->listing->entries[i].path;
		files.has_adapter_config |= !strcmp(path, "adapter_config.json");
		files.has_gguf |= has_suffix(path, ".gguf");
	}
	if ((text = read_readme(v->repo, &len))) {
		modelcard_parse(&v->card, text, len, &err);
		free(text);
	}
	v->tags = modelcard_tags(v->card, &files);
}

static void view_release(struct repo_view *v)
{
	json_decref(v->card);
	json_decref(v->tags);
	v->card = v->tags = NULL;
	v->card_loaded = false;
}

static json_t *card_field(struct repo_view *v, const char *name)
{
	json_t *value;

	load_card(v);
	value = json_object_get(v->card, name);
	return json_is_string(value) ? json_copy(value) : json_null();
}

enum { T_MODEL = 1, T_DATASET = 2, T_SPACE = 4, T_ALL = 7 };
/* Which default shape includes a property. */
enum { D_INFO = 1, D_LIST = 2, D_FULL = 4 };

typedef json_t *(*prop_fn)(struct repo_view *v);

static json_t *p_id(struct repo_view *v) { return json_string(v->repo->rec.name); }
static json_t *p_uid(struct repo_view *v) { return json_string(v->repo->rec.id); }
static json_t *p_null(struct repo_view *v) { return json_null(); }
static json_t *p_false(struct repo_view *v) { return json_false(); }
static json_t *p_empty_list(struct repo_view *v) { return json_array(); }
static json_t *p_sha(struct repo_view *v) { return json_string(v->repo->commit_hex); }
static json_t *p_private(struct repo_view *v) { return json_boolean(v->repo->rec.private); }
static json_t *p_library(struct repo_view *v) { return card_field(v, "library_name"); }
static json_t *p_pipeline(struct repo_view *v) { return card_field(v, "pipeline_tag"); }

static json_t *p_card(struct repo_view *v)
{
	load_card(v);
	return v->card ? json_deep_copy(v->card) : json_null();
}

static json_t *p_tags(struct repo_view *v)
{
	load_card(v);
	return v->tags ? json_copy(v->tags) : json_array();
}

static json_t *p_author(struct repo_view *v)
{
	const char *name = v->repo->rec.name;

	return json_stringn(name, strcspn(name, "/"));
}

static json_t *p_date(int64_t t)
{
	char buf[32];

	time_iso8601(buf, (time_t)t);
	return json_string(buf);
}

static json_t *p_created(struct repo_view *v) { return p_date(v->repo->rec.created); }
static json_t *p_modified(struct repo_view *v) { return p_date(v->last_modified); }

static json_t *p_gated(struct repo_view *v)
{
	const char *g = v->repo->rec.gated;

	return g[0] ? json_string(g) : json_false();
}

static json_t *p_siblings(struct repo_view *v)
{
	struct err err = { 0 };
	json_t *arr;

	if (hub_repo_listing(v->repo, v->call, &err) < 0)
		return json_array();
	arr = json_array();
	for (size_t i = 0; i < v->repo->listing->count; i++) {
		const struct listing_entry *e = &v->repo->listing->entries[i];
		if (!e->is_dir)
			json_array_append_new(arr, hub_json_sibling(e, v->blobs));
	}
	return arr;
}

/* --- lineage (storage/lineage.h): the edges of the default branch --- */

static bool caller_sees(const struct repo_record *rec, void *arg)
{
	struct hub_call *call = arg;

	return auth_repo_role(call->app, &call->who, rec) != ROLE_NONE;
}

struct base_list {
	json_t *models;
	const char *relation;
};

static int base_add(const char *key, const struct lineage_edge *e, void *arg)
{
	struct base_list *b = arg;

	(void)key;
	if (!b->relation)
		b->relation = strdup(e->relation);
	json_array_append_new(b->models, json_pack("{s:s}", "id", e->base));
	return 0;
}

/* The Hub's shape: {"relation", "models": [{"id"}]} (one relation per
 * card), null when the card names no base. */
static json_t *p_base_models(struct repo_view *v)
{
	struct base_list b = { .models = json_array() };
	struct meta_txn *txn = NULL;
	json_t *out = json_null();

	if (meta_txn_begin(&txn, v->call->app->store->meta, false, NULL) == 0 &&
	    lineage_parents(txn, v->repo->rec.id, base_add, &b, NULL) == 0 &&
	    json_array_size(b.models) && b.relation) {
		json_decref(out);
		out = json_pack("{s:s,s:O}", "relation", b.relation,
				"models", b.models);
	}
	meta_txn_abort(txn);
	free((char *)b.relation);
	json_decref(b.models);
	return out ? out : json_null();
}

static json_t *p_children_count(struct repo_view *v)
{
	struct meta_txn *txn = NULL;
	int n = 0;

	if (meta_txn_begin(&txn, v->call->app->store->meta, false, NULL) == 0)
		n = lineage_children_count(txn, v->repo->rec.name, caller_sees,
					   v->call);
	meta_txn_abort(txn);
	return json_integer(n);
}

/* Why the card of the default branch could not be read, else null. */
static json_t *p_card_error(struct repo_view *v)
{
	struct meta_txn *txn = NULL;
	json_t *out = NULL;
	char *why = NULL;

	if (meta_txn_begin(&txn, v->call->app->store->meta, false, NULL) == 0)
		why = lineage_card_error(txn, v->repo->rec.id);
	meta_txn_abort(txn);
	if (why)
		out = json_string(why);
	free(why);
	return out ? out : json_null();
}

static json_t *p_used_storage(struct repo_view *v)
{
	struct err err = { 0 };
	uint64_t total = 0;

	if (hub_repo_listing(v->repo, v->call, &err) == 0) {
		for (size_t i = 0; i < v->repo->listing->count; i++)
			total += v->repo->listing->entries[i].size;
	}
	return json_integer((json_int_t)total);
}

/* Counters from LMDB, read once per repo object; zero if unreadable. */
static const struct stats_counts *view_counts(struct repo_view *v)
{
	if (!v->counts_loaded) {
		v->counts_loaded = true;
		stats_counts_get(v->call->app->store->meta, v->repo->rec.id,
				 time(NULL), &v->counts, NULL);
	}
	return &v->counts;
}

static json_t *p_downloads(struct repo_view *v)
{
	return json_integer((json_int_t)view_counts(v)->downloads);
}

static json_t *p_downloads_all(struct repo_view *v)
{
	return json_integer((json_int_t)view_counts(v)->downloads_all_time);
}

static json_t *p_likes(struct repo_view *v)
{
	return json_integer((json_int_t)view_counts(v)->likes);
}

static json_t *p_trending(struct repo_view *v)
{
	return json_integer((json_int_t)view_counts(v)->trending);
}

static const struct property {
	const char *name;
	unsigned types;
	unsigned defaults;
	prop_fn fn;
} properties[] = {
	{ "_id", T_ALL, D_INFO | D_LIST | D_FULL, p_uid },
	{ "id", T_ALL, D_INFO | D_LIST | D_FULL, p_id },
	{ "modelId", T_MODEL, D_INFO | D_LIST | D_FULL, p_id },
	{ "author", T_ALL, D_INFO | D_LIST | D_FULL, p_author },
	{ "sha", T_ALL, D_INFO | D_LIST | D_FULL, p_sha },
	{ "lastModified", T_ALL, D_INFO | D_LIST | D_FULL, p_modified },
	{ "createdAt", T_ALL, D_INFO | D_LIST | D_FULL, p_created },
	{ "private", T_ALL, D_INFO | D_LIST | D_FULL, p_private },
	{ "gated", T_ALL, D_INFO | D_LIST | D_FULL, p_gated },
	{ "disabled", T_ALL, D_INFO | D_LIST | D_FULL, p_false },
	{ "downloads", T_ALL, D_INFO | D_LIST | D_FULL, p_downloads },
	{ "downloadsAllTime", T_MODEL | T_DATASET, 0, p_downloads_all },
	{ "likes", T_ALL, D_INFO | D_LIST | D_FULL, p_likes },
	{ "trendingScore", T_ALL, D_INFO | D_LIST | D_FULL, p_trending },
	{ "tags", T_ALL, D_INFO | D_LIST | D_FULL, p_tags },
	{ "pipeline_tag", T_MODEL, D_INFO | D_LIST | D_FULL, p_pipeline },
	{ "library_name", T_MODEL, D_INFO | D_LIST | D_FULL, p_library },
	{ "siblings", T_ALL, D_INFO | D_FULL, p_siblings },
	{ "cardData", T_ALL, D_INFO | D_FULL, p_card },
	{ "usedStorage", T_ALL, 0, p_used_storage },
	{ "xetEnabled", T_ALL, 0, p_false },
	/* Accepted so stock clients never get a 400; Haven has no value. */
	{ "baseModels", T_MODEL, 0, p_base_models },
	{ "childrenModelCount", T_MODEL, 0, p_children_count },
	{ "cardError", T_MODEL, D_INFO, p_card_error },
	{ "config", T_MODEL, 0, p_null },
	{ "evalResults", T_MODEL, 0, p_null },
	{ "gguf", T_MODEL, 0, p_null },
	{ "inference", T_MODEL, 0, p_null },
	{ "inferenceProviderMapping", T_MODEL, 0, p_null },
	{ "mask_token", T_MODEL, 0, p_null },
	{ "model-index", T_MODEL, 0, p_null },
	{ "resourceGroup", T_ALL, 0, p_null },
	{ "safetensors", T_MODEL, 0, p_null },
	{ "spaces", T_MODEL, 0, p_empty_list },
	{ "transformersInfo", T_MODEL, 0, p_null },
	{ "widgetData", T_MODEL, 0, p_null },
	{ "citation", T_DATASET, 0, p_null },
	{ "description", T_DATASET, 0, p_null },
	{ "mainSize", T_DATASET, 0, p_null },
	{ "paperswithcode_id", T_DATASET, 0, p_null },
	{ "datasets", T_SPACE, 0, p_empty_list },
	{ "models", T_SPACE, 0, p_empty_list },
	{ "region", T_SPACE, 0, p_null },
	{ "runtime", T_SPACE, 0, p_null },
	{ "sdk", T_SPACE, 0, p_null },
	{ "subdomain", T_SPACE, 0, p_null },
	{ "gitalyUid", T_ALL, 0, p_null },
};

static unsigned type_bit(const char *type)
{
	return !strcmp(type, "model") ? T_MODEL :
	       !strcmp(type, "dataset") ? T_DATASET : T_SPACE;
}

static const struct property *find_property(const char *name, unsigned tbit)
{
	for (size_t i = 0; i < ARRAY_SIZE(properties); i++) {
		if (!strcmp(properties[i].name, name) && (properties[i].types & tbit))
			return &properties[i];
	}
	return NULL;
}

/* Checks every expand value; ERR_INVALID names the first unknown one. */
static int check_expand(const struct hub_call *call, struct err *err)
{
	unsigned tbit = type_bit(call->type);

	for (size_t i = 0; i < query_count(&call->query, "expand"); i++) {
		const char *name = query_nth(&call->query, "expand", i);
		if (!find_property(name, tbit))
			return err_set(err, ERR_INVALID,
				       "\"expand\" contains an unexpected value "
				       "'%.100s'", name);
	}
	return 0;
}

static void set_prop(json_t *o, const struct property *p, struct repo_view *v)
{
	if (!json_object_get(o, p->name))
		json_object_set_new(o, p->name, p->fn(v));
}

/* Builds the object: the expand list if any, else the default shape. */
static json_t *repo_object(struct repo_view *v, unsigned shape)
{
	const struct query *q = &v->call->query;
	unsigned tbit = type_bit(v->repo->rec.type);
	size_t nexpand = query_count(q, "expand");
	json_t *o = json_object();

	set_prop(o, find_property("_id", tbit), v);
	set_prop(o, find_property("id", tbit), v);
	for (size_t i = 0; i < nexpand; i++)
		set_prop(o, find_property(query_nth(q, "expand", i), tbit), v);
	if (nexpand)
		return o;
	for (size_t i = 0; i < ARRAY_SIZE(properties); i++) {
		if ((properties[i].types & tbit) && (properties[i].defaults & shape))
			set_prop(o, &properties[i], v);
	}
	if (query_bool(q, "cardData", false))
		set_prop(o, find_property("cardData", tbit), v);
	if (query_bool(q, "config", false) && (tbit & T_MODEL))
		set_prop(o, find_property("config", tbit), v);
	return o;
}

static int64_t commit_time(git_repository *git, const git_oid *oid)
{
	git_commit *c = NULL;
	int64_t t = 0;

	if (git_commit_lookup(&c, git, oid) == 0)
		t = (int64_t)git_commit_time(c);
	git_commit_free(c);
	return t;
}

void route_repo_info(struct hub_call *call)
{
	struct repo_view v = { .call = call };
	struct err err = { 0 };
	struct hub_repo r;

	v.repo = &r;
	v.blobs = query_bool(&call->query, "blobs", false);
	if (check_expand(call, &err) < 0 ||
	    hub_repo_open(&r, call, call->rev, &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	v.last_modified = commit_time(r.git, &r.commit);
	hub_reply_json(call->req, 200, repo_object(&v, D_INFO));
	view_release(&v);
	hub_repo_close(&r);
}

/* --- listings --- */

struct list_item {
	struct repo_record rec;
	int64_t value;		/* the sort value */
	char key[REPO_NAME_MAX];	/* lower-case id, the tie-breaker */
};

struct list_ctx {
	struct hub_call *call;
	bool bases_checked;	/* base_model filters already met (edges) */
	const char *sort;
	struct list_item *items;
	size_t count, cap;
	int rc;
};

static bool contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++) {
		if (!strncasecmp(hay, needle, n))
			return true;
	}
	return n == 0;
}

static bool list_matches(const struct hub_call *call, const struct repo_record *rec)
{
	const struct query *q = &call->query;
	const char *author = query_get(q, "author");
	const char *gated = query_get(q, "gated");
	size_t nslash = strcspn(rec->name, "/");

	if (author && (strlen(author) != nslash ||
		       strncasecmp(author, rec->name, nslash)))
		return false;
	for (size_t i = 0; i < query_count(q, "search"); i++) {
		if (!contains_nocase(rec->name, query_nth(q, "search", i)))
			return false;
	}
	if (gated && query_bool(q, "gated", false) != (rec->gated[0] != '\0'))
		return false;
	return true;
}

static bool has_tag(const json_t *tags, const char *tag)
{
	size_t i;
	json_t *v;

	json_array_foreach(tags, i, v) {
		if (!strcmp(json_string_value(v), tag))
			return true;
	}
	return false;
}

/* Tag and pipeline filters need the card of the default branch. */
static bool is_base_filter(const char *f)
{
	return !strncmp(f, "base_model:", 11);
}

/* With bases_checked, base_model filters were met through the lineage
 * edges, which hold the very strings those tags are made of. */
static bool card_matches(struct hub_call *call, const struct repo_record *rec,
			 bool bases_checked)
{
	const struct query *q = &call->query;
	const char *pipeline = query_get(q, "pipeline_tag");
	struct repo_view v = { .call = call };
	struct err err = { 0 };
	struct hub_repo r;
	bool ok = true, need = pipeline != NULL;

	for (size_t i = 0; !need && i < query_count(q, "filter"); i++)
		need = !bases_checked || !is_base_filter(query_nth(q, "filter", i));
	if (!need)
		return true;
	str_copy(call->repo, rec->name, sizeof(call->repo));
	if (hub_repo_open(&r, call, "", &err) < 0)
		return false;
	v.repo = &r;
	load_card(&v);
	for (size_t i = 0; ok && i < query_count(q, "filter"); i++) {
		const char *f = query_nth(q, "filter", i);
		ok = (bases_checked && is_base_filter(f)) || has_tag(v.tags, f);
	}
	if (ok && pipeline) {
		const char *p = json_string_value(json_object_get(v.card, "pipeline_tag"));
		ok = p && !strcmp(p, pipeline);
	}
	view_release(&v);
	hub_repo_close(&r);
	return ok;
}

static int sort_value(struct list_ctx *lc, struct list_item *it)
{
	struct hub_repo r;
	struct err err = { 0 };
	int64_t t;

	if (!strcmp(lc->sort, "createdAt")) {
		it->value = it->rec.created;
		return 0;
	}
	if (!strcmp(lc->sort, "id")) {
		it->value = 0;
		return 0;
	}
	if (strcmp(lc->sort, "lastModified")) {
		struct stats_counts c;
		stats_counts_get(lc->call->app->store->meta, it->rec.id,
				 time(NULL), &c, NULL);
		it->value = !strcmp(lc->sort, "downloads") ? (int64_t)c.downloads :
			    !strcmp(lc->sort, "downloadsAllTime") ?
			    (int64_t)c.downloads_all_time :
			    !strcmp(lc->sort, "likes") ? (int64_t)c.likes :
			    !strcmp(lc->sort, "trendingScore") ?
			    (int64_t)c.trending : 0;
		return 0;
	}
	str_copy(lc->call->repo, it->rec.name, sizeof(lc->call->repo));
	if (hub_repo_open(&r, lc->call, "", &err) < 0)
		return 0;
	t = commit_time(r.git, &r.commit);
	it->value = t;
	hub_repo_close(&r);
	return 0;
}

static int collect_item(const struct repo_record *rec, void *arg)
{
	struct list_ctx *lc = arg;
	struct list_item *it;

	if (auth_repo_role(lc->call->app, &lc->call->who, rec) == ROLE_NONE ||
	    !list_matches(lc->call, rec) ||
	    !card_matches(lc->call, rec, lc->bases_checked))
		return 0;
	if (lc->count == lc->cap) {
		size_t cap = lc->cap ? lc->cap * 2 : 64;
		void *p = realloc(lc->items, cap * sizeof(*lc->items));
		if (!p)
			return ERR_FAIL;
		lc->items = p;
		lc->cap = cap;
	}
	it = &lc->items[lc->count++];
	it->rec = *rec;
	str_lower(it->key, sizeof(it->key), rec->name);
	return sort_value(lc, it);
}

static int cmp_items(const void *pa, const void *pb)
{
	const struct list_item *a = pa, *b = pb;

	if (a->value != b->value)
		return a->value > b->value ? -1 : 1;
	return strcmp(a->key, b->key);
}

/* Maps the client's sort names to ours; NULL for an unknown one. */
static const char *sort_name(const char *s)
{
	static const char *const names[][2] = {
		{ "lastModified", "lastModified" }, { "last_modified", "lastModified" },
		{ "createdAt", "createdAt" }, { "created_at", "createdAt" },
		{ "downloads", "downloads" }, { "likes", "likes" },
		{ "likes30d", "likes" }, { "trendingScore", "trendingScore" },
		{ "trending_score", "trendingScore" }, { "id", "id" },
		{ "modelId", "id" }, { "downloadsAllTime", "downloadsAllTime" },
	};

	if (!s || !s[0])
		return "trendingScore";
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!strcmp(s, names[i][0]))
			return names[i][1];
	}
	return NULL;
}

/* Index of the first item after the cursor "<value>:<key>". */
static size_t after_cursor(const struct list_ctx *lc, const char *cursor)
{
	struct list_item probe;
	char *colon;

	if (!cursor)
		return 0;
	probe.value = strtoll(cursor, &colon, 10);
	if (*colon != ':')
		return 0;
	str_copy(probe.key, colon + 1, sizeof(probe.key));
	for (size_t i = 0; i < lc->count; i++) {
		if (cmp_items(&lc->items[i], &probe) > 0)
			return i;
	}
	return lc->count;
}

static size_t list_limit(const struct query *q)
{
	const char *v = query_get(q, "limit");
	long n = v ? strtol(v, NULL, 10) : 0;

	return (n <= 0 || n > LIST_PAGE_MAX) ? LIST_PAGE_MAX : (size_t)n;
}

static json_t *list_page(struct list_ctx *lc, unsigned shape)
{
	size_t start = after_cursor(lc, query_get(&lc->call->query, "cursor"));
	size_t limit = list_limit(&lc->call->query), n = 0;
	json_t *arr = json_array();
	char cursor[REPO_NAME_MAX + 32];

	for (size_t i = start; i < lc->count && n < limit; i++, n++) {
		struct repo_view v = { .call = lc->call };
		struct hub_repo r;
		struct err err = { 0 };
		str_copy(lc->call->repo, lc->items[i].rec.name, sizeof(lc->call->repo));
		if (hub_repo_open(&r, lc->call, "", &err) < 0)
			continue;
		v.repo = &r;
		v.last_modified = commit_time(r.git, &r.commit);
		json_array_append_new(arr, repo_object(&v, shape));
		view_release(&v);
		hub_repo_close(&r);
	}
	if (start + n < lc->count && n > 0) {
		const struct list_item *last = &lc->items[start + n - 1];
		snprintf(cursor, sizeof(cursor), "%" PRId64 ":%s", last->value,
			 last->key);
		hub_link_next(lc->call->req, lc->call->app->public_url, cursor);
	}
	return arr;
}

/* --- filter=base_model:[<relation>:]<id> through the lineage index --- */

static const char *const relations[] = { "adapter", "merge", "quantized",
					 "finetune" };

/* The <id> of the first base_model filter, else NULL. */
static const char *base_filter(const struct query *q)
{
	for (size_t i = 0; i < query_count(q, "filter"); i++) {
		const char *f = query_nth(q, "filter", i), *colon;
		if (strncmp(f, "base_model:", 11))
			continue;
		f += 11;
		if ((colon = strchr(f, ':'))) {
			for (size_t r = 0; r < ARRAY_SIZE(relations); r++) {
				if (strlen(relations[r]) == (size_t)(colon - f) &&
				    !strncmp(f, relations[r], colon - f))
					return colon + 1;
			}
		}
		return f;
	}
	return NULL;
}

struct candidates {
	struct list_ctx *lc;
	struct meta_txn *txn;
	json_t *seen;		/* repo ids already offered */
};

/* Offers one model to collect_item, which applies the other filters (and
 * the tag itself, unless bases_checked), once. */
static int offer(struct candidates *c, const struct repo_record *rec)
{
	if (strcmp(rec->type, "model") || json_object_get(c->seen, rec->id))
		return 0;
	if (json_object_set_new(c->seen, rec->id, json_true()) < 0)
		return ERR_FAIL;
	return collect_item(rec, c->lc);
}

struct base_check {
	const char *filter;	/* after "base_model:" */
	bool found;
};

/* The tags an edge stands for: base_model:<base> and
 * base_model:<relation>:<base>, <base> as the card wrote it. */
static int edge_tag(const char *key, const struct lineage_edge *e, void *arg)
{
	struct base_check *b = arg;
	size_t rl = strlen(e->relation);

	(void)key;
	if (!strcmp(b->filter, e->base) ||
	    (!strncmp(b->filter, e->relation, rl) && b->filter[rl] == ':' &&
	     !strcmp(b->filter + rl + 1, e->base)))
		b->found = true;
	return 0;
}

/* Whether the edges of a model meet every base_model filter. */
static bool edges_match(struct candidates *c, const char *id)
{
	const struct query *q = &c->lc->call->query;

	for (size_t i = 0; i < query_count(q, "filter"); i++) {
		const char *f = query_nth(q, "filter", i);
		struct base_check b = { NULL, false };

		if (!is_base_filter(f))
			continue;
		b.filter = f + 11;	/* after "base_model:" */
		if (lineage_parents(c->txn, id, edge_tag, &b, NULL) < 0 || !b.found)
			return false;
	}
	return true;
}

static int offer_child(const char *child_id, const struct lineage_edge *e,
		       void *arg)
{
	struct candidates *c = arg;
	struct repo_record rec;
	int rc;

	(void)e;
	if (json_object_get(c->seen, child_id) ||
	    meta_repo_get_by_id(c->txn, child_id, &rec, NULL) < 0 ||
	    !edges_match(c, child_id))
		return 0;
	c->lc->bases_checked = true;
	rc = offer(c, &rec);
	c->lc->bases_checked = false;
	return rc;
}

/* The models whose card may name base: its children in the lineage graph
 * (under the name and, for a moved base, under its current name), and
 * the model of that name itself (a card naming its own model is no
 * edge). The graph is kept with every commit (card_lineage.h), so this
 * reads a few keys instead of every card. */
static int collect_named_by(struct list_ctx *lc, struct meta_txn *txn,
			    const char *base, struct err *err)
{
	struct candidates c = { .lc = lc, .txn = txn, .seen = json_object() };
	struct repo_record rec;
	int rc;

	if (!c.seen)
		return err_set(err, ERR_FAIL, "out of memory");
	rc = lineage_named_by(txn, base, offer_child, &c, err);
	if (rc == 0 && meta_redirect_get(txn, "model", base, &rec, NULL) == 0)
		rc = lineage_named_by(txn, rec.name, offer_child, &c, err);
	if (rc == 0 && meta_repo_get(txn, "model", base, &rec, NULL) == 0)
		rc = offer(&c, &rec);
	json_decref(c.seen);
	if (rc > 0 || (rc < 0 && !err->code))
		rc = err_set(err, ERR_FAIL, "out of memory");
	return rc;
}

void route_repo_list(struct hub_call *call)
{
	struct list_ctx lc = { .call = call };
	struct meta_txn *txn = NULL;
	struct err err = { 0 };
	bool full = query_bool(&call->query, "full", false);
	const char *base;

	lc.sort = sort_name(query_get(&call->query, "sort"));
	if (!lc.sort) {
		hub_error_replyf(call->req, ERR_INVALID, "invalid sort '%.100s'",
				 query_get(&call->query, "sort"));
		return;
	}
	base = !strcmp(call->type, "model") ? base_filter(&call->query) : NULL;
	if (check_expand(call, &err) < 0 ||
	    meta_txn_begin(&txn, call->app->store->meta, false, &err) < 0 ||
	    (base ? collect_named_by(&lc, txn, base, &err) :
	     meta_repo_foreach(txn, call->type, collect_item, &lc, &err)) < 0) {
		meta_txn_abort(txn);
		free(lc.items);
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	meta_txn_abort(txn);
	if (lc.count)
		qsort(lc.items, lc.count, sizeof(*lc.items), cmp_items);
	hub_reply_json(call->req, 200, list_page(&lc, full ? D_FULL : D_LIST));
	free(lc.items);
}
