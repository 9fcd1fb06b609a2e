/*
 * route_tree.c: GET /api/{types}/{repo}/tree/{rev}[/{path}] and
 * POST /api/{types}/{repo}/paths-info/{rev} (hub-api.md 2.4, 2.5).
 * Entries come from the commit's listing, sorted by path; a page ends
 * with an absolute Link whose cursor is the last path sent.
 */
#include "common/compat.h"

#include <event2/buffer.h>

#include "common/util.h"
#include "server/hub_error.h"
#include "server/hub_json.h"
#include "server/hub_repo.h"
#include "server/routes.h"

#define TREE_PAGE 1000
#define TREE_PAGE_EXPANDED 100
#define LAST_COMMIT_WALK_MAX 10000
#define PATHS_INFO_BODY_MAX (8 << 20)
#define PATHS_INFO_MAX 10000

/* The oid of path in a commit's tree, or false when it is absent. */
static bool path_oid(git_commit *c, const char *path, git_oid *out)
{
	git_tree *tree = NULL;
	git_tree_entry *te = NULL;
	bool found = false;

	if (git_commit_tree(&tree, c) == 0 &&
	    git_tree_entry_bypath(&te, tree, path) == 0) {
		git_oid_cpy(out, git_tree_entry_id(te));
		found = true;
	}
	git_tree_entry_free(te);
	git_tree_free(tree);
	return found;
}

/* The newest commit (first-parent history) that changed path. */
static int last_commit(git_repository *repo, const git_oid *head,
		       const char *path, struct commit_summary *out)
{
	git_commit *c = NULL, *parent = NULL;
	git_oid mine, theirs;
	int steps = 0;

	if (git_commit_lookup(&c, repo, head) < 0)
		return -1;
	while (steps++ < LAST_COMMIT_WALK_MAX) {
		bool has = path_oid(c, path, &mine);
		if (git_commit_parentcount(c) == 0 ||
		    git_commit_parent(&parent, c, 0) < 0)
			break;
		if (!has || !path_oid(parent, path, &theirs) ||
		    !git_oid_equal(&mine, &theirs))
			break;
		git_commit_free(c);
		c = parent;
		parent = NULL;
	}
	hub_commit_summary(out, c);
	git_commit_free(parent);
	git_commit_free(c);
	return 0;
}

static json_t *entry_json(const struct hub_repo *r,
			  const struct listing_entry *e, bool expand)
{
	struct commit_summary last;

	if (expand && last_commit(r->git, &r->commit, e->path, &last) == 0)
		return hub_json_tree_entry(e, &last);
	return hub_json_tree_entry(e, NULL);
}

/* Checks the folder the tree was asked for; "" is the root. */
static bool folder_exists(const struct listing *l, const char *dir)
{
	const struct listing_entry *e;

	if (!dir[0])
		return true;
	e = listing_find(l, dir);
	return e && e->is_dir;
}

void route_tree(struct hub_call *call)
{
	bool recursive = query_bool(&call->query, "recursive", false);
	bool expand = query_bool(&call->query, "expand", false);
	const char *cursor = query_get(&call->query, "cursor");
	size_t page = expand ? TREE_PAGE_EXPANDED : TREE_PAGE, sent = 0, i;
	const struct listing_entry *last = NULL;
	struct err err = { 0 };
	struct hub_repo r;
	json_t *arr;

	if (hub_repo_open(&r, call, call->rev, &err) < 0 ||
	    hub_repo_listing(&r, call, &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	if (!folder_exists(r.listing, call->path)) {
		err_set(&err, ERR_NOENTRY, "Entry not found: no folder '%.200s' "
			"at revision %s", call->path, r.commit_hex);
		hub_error_reply(call->req, &err, r.commit_hex);
		return;
	}
	arr = json_array();
	i = cursor ? listing_lower_bound(r.listing, cursor) : 0;
	if (cursor && i < r.listing->count && !strcmp(r.listing->entries[i].path, cursor))
		i++;
	for (; i < r.listing->count && arr; i++) {
		const struct listing_entry *e = &r.listing->entries[i];
		if (!listing_is_below(e, call->path, !recursive))
			continue;
		if (sent == page) {
			hub_link_next(call->req, call->app->public_url, last->path);
			break;
		}
		json_array_append_new(arr, entry_json(&r, e, expand));
		last = e;
		sent++;
	}
	http_response_header(call->req, "X-Repo-Commit", r.commit_hex);
	hub_reply_json(call->req, 200, arr);
	hub_repo_close(&r);
}

/* Reads the wanted paths from a JSON body or a form body. */
static int parse_paths_body(struct evbuffer *body, const char *ctype,
			    json_t **paths, bool *expand)
{
	size_t len = evbuffer_get_length(body);
	char *text = (char *)evbuffer_pullup(body, -1);
	struct query form;

	*paths = json_array();
	if (ctype && strstr(ctype, "application/json")) {
		json_t *doc = json_loadb(text ? text : "", len, 0, NULL);
		json_t *p = json_object_get(doc, "paths"), *v;
		size_t i;
		*expand = json_is_true(json_object_get(doc, "expand"));
		if (json_is_string(p))
			json_array_append(*paths, p);
		json_array_foreach(p, i, v) {
			if (json_is_string(v))
				json_array_append(*paths, v);
		}
		json_decref(doc);
		return doc ? 0 : ERR_INVALID;
	}
	if (query_parse(&form, text, len) < 0)
		return ERR_INVALID;
	for (size_t i = 0; i < query_count(&form, "paths"); i++)
		json_array_append_new(*paths, json_string(query_nth(&form, "paths", i)));
	*expand = query_bool(&form, "expand", false);
	query_release(&form);
	return 0;
}

/* Clients send paths with a leading "/" or "./" at times; the Hub strips
 * them, so do we. */
static const char *normal_path(const char *p)
{
	for (;;) {
		if (p[0] == '/')
			p++;
		else if (p[0] == '.' && p[1] == '/')
			p += 2;
		else
			return p;
	}
}

static void paths_info_body(struct http_request *req, struct evbuffer *body,
			    int rc, void *arg)
{
	struct hub_call *call = arg;
	struct err err = { 0 };
	struct hub_repo r;
	json_t *paths = NULL, *arr, *v;
	bool expand = false;
	size_t i;

	if (rc < 0) {
		hub_error_replyf(req, rc, rc == ERR_TOOBIG ? "request body too large"
				 : "request body incomplete");
		goto out;
	}
	if (parse_paths_body(body, http_request_header(req, "Content-Type"),
			     &paths, &expand) < 0 ||
	    json_array_size(paths) > PATHS_INFO_MAX) {
		hub_error_replyf(req, ERR_INVALID, "expected a list of paths "
				 "(form field 'paths' or JSON {\"paths\": [...]})");
		goto out;
	}
	if (hub_repo_open(&r, call, call->rev, &err) < 0 ||
	    hub_repo_listing(&r, call, &err) < 0) {
		hub_error_reply(req, &err, NULL);
		goto out;
	}
	arr = json_array();
	json_array_foreach(paths, i, v) {
		const struct listing_entry *e =
			listing_find(r.listing, normal_path(json_string_value(v)));
		if (e)
			json_array_append_new(arr, entry_json(&r, e, expand));
	}
	http_response_header(req, "X-Repo-Commit", r.commit_hex);
	hub_reply_json(req, 200, arr);
	hub_repo_close(&r);
out:
	json_decref(paths);
	hub_call_free(call);
}

void route_paths_info(struct hub_call *call)
{
	call->async = true;
	http_request_buffer_body(call->req, PATHS_INFO_BODY_MAX,
				 paths_info_body, call);
}
