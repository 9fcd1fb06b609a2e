/*
 * route_history.c: GET /api/{types}/{repo}/refs and
 * GET /api/{types}/{repo}/commits/{rev} (hub-api.md 2.6, 2.7).
 */
#include "common/compat.h"

#include <event2/buffer.h>

#include "common/util.h"
#include "server/hub_error.h"
#include "server/hub_json.h"
#include "server/hub_repo.h"
#include "server/routes.h"

#define COMMITS_PAGE 50
#define COMMITS_PAGE_MAX 1000

/* Which array of the refs answer a full ref name belongs to. */
static const char *ref_group(const char *name, const char **short_name,
			     bool include_prs)
{
	static const char *const groups[][2] = {
		{ "refs/heads/", "branches" }, { "refs/tags/", "tags" },
		{ "refs/convert/", "converts" }, { "refs/pr/", "pullRequests" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(groups); i++) {
		size_t n = strlen(groups[i][0]);
		if (strncmp(name, groups[i][0], n))
			continue;
		if (i == 3 && !include_prs)
			return NULL;
		*short_name = name + n;
		return groups[i][1];
	}
	return NULL;
}

static json_t *refs_json(git_repository *repo, bool include_prs)
{
	json_t *doc = json_pack("{s:[], s:[], s:[]}", "branches", "tags", "converts");
	git_reference_iterator *it = NULL;
	git_reference *ref;

	if (include_prs)
		json_object_set_new(doc, "pullRequests", json_array());
	if (git_reference_iterator_new(&it, repo) < 0)
		return doc;
	while (git_reference_next(&ref, it) == 0) {
		const char *short_name, *group;
		git_object *obj = NULL;
		char hex[GIT_HEX_LEN + 1];
		group = ref_group(git_reference_name(ref), &short_name, include_prs);
		if (group && git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) == 0) {
			gitrepo_oid_hex(hex, git_object_id(obj));
			json_array_append_new(json_object_get(doc, group),
					      json_pack("{s:s, s:s, s:s}", "name",
							short_name, "ref",
							git_reference_name(ref),
							"targetCommit", hex));
		}
		git_object_free(obj);
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	return doc;
}

void route_refs(struct hub_call *call)
{
	struct err err = { 0 };
	struct hub_repo r;

	if (hub_repo_open(&r, call, NULL, &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	hub_reply_json(call->req, 200,
		       refs_json(r.git, query_bool(&call->query, "include_prs",
						   false)));
	hub_repo_close(&r);
}

/* Escapes text for the "formatted" HTML fields. */
static json_t *html_escaped(const char *s)
{
	struct evbuffer *b = evbuffer_new();
	json_t *out;
	size_t len;
	char *text;

	for (; *s; s++) {
		switch (*s) {
		case '<': evbuffer_add(b, "&lt;", 4); break;
		case '>': evbuffer_add(b, "&gt;", 4); break;
		case '&': evbuffer_add(b, "&amp;", 5); break;
		case '"': evbuffer_add(b, "&quot;", 6); break;
		default: evbuffer_add(b, s, 1);
		}
	}
	len = evbuffer_get_length(b);
	text = (char *)evbuffer_pullup(b, -1);
	out = json_stringn(text ? text : "", len);
	evbuffer_free(b);
	return out;
}

static json_t *commit_json(const git_commit *c, bool formatted)
{
	struct commit_summary sum;
	const char *msg = git_commit_message(c);
	const char *body = msg + strcspn(msg, "\n");
	const git_signature *author = git_commit_author(c);
	json_t *o;

	while (*body == '\n')
		body++;
	hub_commit_summary(&sum, c);
	o = json_pack("{s:s, s:s, s:s, s:[{s:s}], s:s}", "id", sum.id, "title",
		      sum.title, "message", body, "authors", "user",
		      author && author->name ? author->name : "", "date", sum.date);
	if (o && formatted)
		json_object_set_new(o, "formatted",
				    json_pack("{s:o, s:o}", "title",
					      html_escaped(sum.title), "message",
					      html_escaped(body)));
	return o;
}

static size_t page_size(const struct query *q)
{
	const char *v = query_get(q, "limit");
	long n = v ? strtol(v, NULL, 10) : 0;

	if (n <= 0)
		return COMMITS_PAGE;
	return n > COMMITS_PAGE_MAX ? COMMITS_PAGE_MAX : (size_t)n;
}

void route_commits(struct hub_call *call)
{
	const char *cursor = query_get(&call->query, "cursor");
	size_t skip = cursor ? strtoul(cursor, NULL, 10) : 0;
	size_t page = page_size(&call->query), total = 0;
	bool formatted = query_count(&call->query, "expand") &&
			 !strcmp(query_get(&call->query, "expand"), "formatted");
	struct err err = { 0 };
	git_revwalk *walk = NULL;
	struct hub_repo r;
	char count[32], next[32];
	json_t *arr;
	git_oid oid;

	if (hub_repo_open(&r, call, call->rev, &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	if (git_revwalk_new(&walk, r.git) < 0 ||
	    git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME) < 0 ||
	    git_revwalk_push(walk, &r.commit) < 0) {
		git_revwalk_free(walk);
		hub_error_replyf(call->req, ERR_FAIL, "cannot walk history");
		return;
	}
	arr = json_array();
	while (git_revwalk_next(&oid, walk) == 0) {
		git_commit *c = NULL;
		if (total >= skip && total < skip + page &&
		    git_commit_lookup(&c, r.git, &oid) == 0)
			json_array_append_new(arr, commit_json(c, formatted));
		git_commit_free(c);
		total++;
	}
	git_revwalk_free(walk);
	snprintf(count, sizeof(count), "%zu", total);
	http_response_header(call->req, "X-Total-Count", count);
	if (skip + page < total) {
		snprintf(next, sizeof(next), "%zu", skip + page);
		hub_link_next(call->req, call->app->public_url, next);
	}
	hub_reply_json(call->req, 200, arr);
	hub_repo_close(&r);
}
