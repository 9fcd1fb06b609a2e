/*
 * router.c: the route table and the matcher; see router.h.
 */
#include "common/compat.h"

#include <event2/buffer.h>

#include "common/log.h"
#include "common/util.h"
#include "server/hub_error.h"
#include "server/metrics.h"
#include "server/pull_through.h"
#include "server/replica.h"
#include "server/replication.h"
#include "server/router.h"
#include "server/routes.h"

#define MAX_SEGMENTS 256

enum { M_GET = 1, M_HEAD = 2, M_POST = 4, M_PUT = 8, M_DELETE = 16 };
#define M_READ (M_GET | M_HEAD)

typedef void (*route_fn)(struct hub_call *call);

static void route_xet_token(struct hub_call *call);
static void route_health(struct hub_call *call);

/* IDENTIFY: the caller is identified from its token before the handler
 * runs. SELF_AUTH: served as is: health checks, metrics (aggregates only,
 * for scrapers without a token) and signed transfer URLs, which carry
 * their own authorisation. */
enum route_auth { IDENTIFY, SELF_AUTH };

static const struct route {
	unsigned methods;
	const char *pattern;
	route_fn handler;
	enum route_auth auth;
} routes[] = {
	{ M_READ, "/api/health", route_health, SELF_AUTH },
	{ M_READ, "/metrics", route_metrics, SELF_AUTH },
	{ M_GET, "/api/replication/changes", route_replication_changes,
	  SELF_AUTH },
	{ M_GET, "/api/replication/snapshot", route_replication_snapshot,
	  SELF_AUTH },
	{ M_GET, "/api/replication/secret", route_replication_secret,
	  SELF_AUTH },
	{ M_POST, "/api/replication/leave", route_replication_leave,
	  SELF_AUTH },
	{ M_POST, "/api/replication/downloads", route_replication_downloads,
	  SELF_AUTH },
	{ M_GET, "/api/whoami-v2", route_whoami, IDENTIFY },
	{ M_POST, "/api/repos/create", route_repo_create, IDENTIFY },
	{ M_DELETE, "/api/repos/delete", route_repo_delete, IDENTIFY },
	{ M_POST, "/api/repos/move", route_repo_move, IDENTIFY },
	{ M_POST, "/api/validate-yaml", route_validate_yaml, IDENTIFY },
	{ M_READ | M_PUT | M_POST, "/api/lfs/{path*}", route_lfs_transfer,
	  SELF_AUTH },
	{ M_READ, "/api/{types}", route_repo_list, IDENTIFY },
	{ M_READ, "/api/{types}/{repo}", route_repo_info, IDENTIFY },
	{ M_READ, "/api/{types}/{repo}/revision/{rev*}", route_repo_info, IDENTIFY },
	{ M_READ, "/api/{types}/{repo}/tree/{rev}/{path*}", route_tree, IDENTIFY },
	{ M_POST, "/api/{types}/{repo}/paths-info/{rev*}", route_paths_info, IDENTIFY },
	{ M_READ, "/api/{types}/{repo}/refs", route_refs, IDENTIFY },
	{ M_GET, "/api/{types}/{repo}/lineage", route_lineage, IDENTIFY },
	{ M_POST | M_DELETE, "/api/{types}/{repo}/like", route_like, IDENTIFY },
	{ M_GET, "/api/{types}/{repo}/likers", route_likers, IDENTIFY },
	{ M_GET, "/api/users/{user}/likes", route_user_likes, IDENTIFY },
	{ M_READ, "/api/{types}/{repo}/commits/{rev*}", route_commits, IDENTIFY },
	{ M_GET, "/api/{types}/{repo}/xet-read-token/{rev*}", route_xet_token, IDENTIFY },
	{ M_GET, "/api/{types}/{repo}/xet-write-token/{rev*}", route_xet_token, IDENTIFY },
	{ M_PUT, "/api/{types}/{repo}/settings", route_repo_settings, IDENTIFY },
	{ M_GET | M_POST, "/api/{types}/{repo}/user-access-request/{rev*}",
	  route_access_requests, IDENTIFY },
	{ M_POST, "/api/{types}/{repo}/ask-access", route_access_requests, IDENTIFY },
	{ M_POST | M_DELETE, "/api/{types}/{repo}/branch/{rev*}", route_branch, IDENTIFY },
	{ M_POST | M_DELETE, "/api/{types}/{repo}/tag/{rev*}", route_tag, IDENTIFY },
	{ M_POST, "/api/{types}/{repo}/preupload/{rev*}", route_preupload, IDENTIFY },
	{ M_POST, "/api/{types}/{repo}/commit/{rev*}", route_commit, IDENTIFY },
	{ M_GET | M_POST, "/api/{types}/{repo}/discussions", route_discussions, IDENTIFY },
	{ M_GET, "/api/{types}/{repo}/discussions/{rev*}", route_discussions, IDENTIFY },
	{ M_READ, "/{prefix}{repo}/resolve/{rev}/{path*}", route_resolve, IDENTIFY },
	{ M_READ, "/{prefix}{repo}/raw/{rev}/{path*}", route_raw, IDENTIFY },
	{ M_POST, "/{prefix}{gitrepo}/info/lfs/objects/batch", route_lfs_batch, IDENTIFY },
	{ M_POST | M_GET, "/{prefix}{gitrepo}/info/lfs/locks/{path*}", route_lfs_locks, IDENTIFY },
	{ M_POST | M_GET, "/{prefix}{gitrepo}/info/lfs/locks", route_lfs_locks, IDENTIFY },
	{ M_GET, "/{prefix}{gitrepo}/info/refs", route_git_info_refs, IDENTIFY },
	{ M_POST, "/{prefix}{gitrepo}/git-upload-pack", route_git_service, IDENTIFY },
	{ M_POST, "/{prefix}{gitrepo}/git-receive-pack", route_git_service, IDENTIFY },
};

struct segments {
	char *items[MAX_SEGMENTS];
	size_t count;
};

static void segments_release(struct segments *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->items[i]);
	s->count = 0;
}

/* Splits and decodes the raw path; -1 for a malformed or hostile one. */
static int segments_split(struct segments *s, const char *path)
{
	const char *p = path + 1;

	s->count = 0;
	for (;;) {
		size_t len = strcspn(p, "/");
		char *seg;
		if (s->count == MAX_SEGMENTS || !(seg = malloc(len + 1)))
			goto fail;
		s->items[s->count++] = seg;
		if (url_decode(seg, p, len) < 0)
			goto fail;
		if (!p[len])
			return 0;
		p += len + 1;
	}
fail:
	segments_release(s);
	return -1;
}

/* True when a decoded segment has a "." or ".." component (it may hold
 * slashes that were sent as %2F). No route needs one, and refusing them
 * here keeps every handler away from relative paths. */
static bool has_dot_component(const char *seg)
{
	while (*seg) {
		size_t n = strcspn(seg, "/");
		if ((n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return true;
		seg += n + (seg[n] == '/');
	}
	return false;
}

static bool segments_hostile(const struct segments *s)
{
	for (size_t i = 0; i < s->count; i++) {
		if (has_dot_component(s->items[i]))
			return true;
	}
	return false;
}

static bool is_raw_special_ref(const struct segments *s, size_t i)
{
	return i + 2 < s->count && !strcmp(s->items[i], "refs") &&
	       (!strcmp(s->items[i + 1], "pr") ||
		!strcmp(s->items[i + 1], "convert"));
}

/* Joins segments [from, count) with '/' into out; -1 if a part is "." or
 * ".." or empty (a path never needs those), or it does not fit. */
static int join_rest(char *out, size_t size, const struct segments *s,
		     size_t from, bool allow_empty)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = from; i < s->count; i++) {
		const char *seg = s->items[i];
		size_t len = strlen(seg);
		if (!strcmp(seg, ".") || !strcmp(seg, ".."))
			return -1;
		if (!len) {
			/* Only a trailing slash may leave an empty part. */
			if (i + 1 == s->count && (allow_empty || i > from))
				break;
			return -1;
		}
		if (o + len + 2 > size)
			return -1;
		if (o)
			out[o++] = '/';
		memcpy(out + o, seg, len);
		o += len;
	}
	out[o] = '\0';
	return 0;
}

static bool type_from_plural(char *out, const char *plural)
{
	static const char *const names[][2] = {
		{ "models", "model" }, { "datasets", "dataset" },
		{ "spaces", "space" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!strcmp(plural, names[i][0])) {
			str_copy(out, names[i][1], 8);
			return true;
		}
	}
	return false;
}

/* Matches one {token} at segment *i; advances *i. */
static bool match_token(struct hub_call *call, const char *tok, size_t toklen,
			const struct segments *s, size_t *i)
{
	if (!strncmp(tok, "{types}", toklen))
		return *i < s->count && type_from_plural(call->type, s->items[(*i)++]);
	if (!strncmp(tok, "{prefix}", toklen)) {
		str_copy(call->type, "model", sizeof(call->type));
		/* Only a prefix when a repo and more follow it. */
		if (*i + 3 < s->count && (!strcmp(s->items[*i], "datasets") ||
					  !strcmp(s->items[*i], "spaces"))) {
			type_from_plural(call->type, s->items[*i]);
			(*i)++;
		}
		return true;
	}
	if (!strncmp(tok, "{repo}", toklen) || !strncmp(tok, "{gitrepo}", toklen)) {
		size_t n;
		if (*i + 2 > s->count)
			return false;
		snprintf(call->repo, sizeof(call->repo), "%s/%s", s->items[*i],
			 s->items[*i + 1]);
		n = strlen(call->repo);
		if (tok[1] == 'g' && n > 4 && !strcmp(call->repo + n - 4, ".git"))
			call->repo[n - 4] = '\0';
		*i += 2;
		return true;
	}
	if (!strncmp(tok, "{user}", toklen)) {
		/* One account name, kept in path. */
		if (*i >= s->count || !s->items[*i][0])
			return false;
		str_copy(call->path, s->items[(*i)++], sizeof(call->path));
		return true;
	}
	if (!strncmp(tok, "{rev}", toklen)) {
		if (*i >= s->count || !s->items[*i][0])
			return false;
		if (is_raw_special_ref(s, *i)) {
			snprintf(call->rev, sizeof(call->rev), "refs/%s/%s",
				 s->items[*i + 1], s->items[*i + 2]);
			*i += 3;
		} else {
			str_copy(call->rev, s->items[(*i)++], sizeof(call->rev));
		}
		return true;
	}
	if (!strncmp(tok, "{rev*}", toklen)) {
		bool ok = *i < s->count &&
			  join_rest(call->rev, sizeof(call->rev), s, *i, false) == 0 &&
			  call->rev[0];
		*i = s->count;
		return ok;
	}
	if (!strncmp(tok, "{path*}", toklen)) {
		bool ok = join_rest(call->path, sizeof(call->path), s, *i, true) == 0;
		*i = s->count;
		return ok;
	}
	return false;
}

/* Matches a pattern against the segments, filling call on success. */
static bool match(const char *pattern, const struct segments *s,
		  struct hub_call *call)
{
	const char *p = pattern + 1;
	size_t i = 0;

	call->rev[0] = call->path[0] = call->repo[0] = '\0';
	while (*p) {
		size_t len = strcspn(p, "/");
		if (p[0] == '{') {
			/* "{prefix}{repo}" is two tokens in one part. */
			const char *close = strchr(p, '}');
			len = (size_t)(close - p + 1);
			if (!match_token(call, p, len, s, &i))
				return false;
		} else {
			if (i >= s->count || strncmp(s->items[i], p, len) ||
			    s->items[i][len])
				return false;
			i++;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	/* A path* at the end may be empty when the URL ends at the rev. */
	return i == s->count;
}

static unsigned method_bit(enum http_method m)
{
	switch (m) {
	case HTTP_GET: return M_GET;
	case HTTP_HEAD: return M_HEAD;
	case HTTP_POST: return M_POST;
	case HTTP_PUT: return M_PUT;
	case HTTP_DELETE: return M_DELETE;
	default: return 0;
	}
}

void hub_call_free(struct hub_call *call)
{
	if (!call)
		return;
	query_release(&call->query);
	free(call);
}

bool hub_call_anonymous(const struct hub_call *call)
{
	return !call->who.authenticated;
}

/* Identifies the caller; answers 401 itself and returns false when the
 * credentials are bad, or missing where the deployment requires them. */
static bool identify(struct hub_call *call)
{
	struct err err = { 0 };

	if (auth_identify(call->app, call->req, &call->who, &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		return false;
	}
	if (call->app->require_auth && !call->who.authenticated &&
	    !call->who.upstream_token) {
		hub_error_replyf(call->req, ERR_AUTH, "this server requires a "
				 "token: pass one with Authorization: Bearer");
		return false;
	}
	return true;
}

static void reply_options(struct http_request *req)
{
	hub_common_headers(req);
	http_response_header(req, "Access-Control-Allow-Methods",
			     "GET, HEAD, POST, PUT, DELETE, OPTIONS");
	http_response_header(req, "Access-Control-Allow-Headers",
			     "Authorization, Content-Type, Range, X-Request-Id");
	http_response_header(req, "Access-Control-Max-Age", "86400");
	http_response_send(req, 204, NULL);
}

static void route_health(struct hub_call *call)
{
	struct evbuffer *body = evbuffer_new();

	evbuffer_add_printf(body, "{\"status\":\"ok\"}");
	hub_common_headers(call->req);
	http_response_header(call->req, "Content-Type", "application/json");
	http_response_send(call->req, 200, body);
	evbuffer_free(body);
}

static void route_xet_token(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND,
			 "This server does not speak Xet: set HF_HUB_DISABLE_XET=1 "
			 "so huggingface_hub uploads and downloads over LFS");
}

/* Finds the route; *path_matched tells 405 from 404 when none fits. */
static const struct route *find_route(const struct segments *s,
				      struct hub_call *call, unsigned mbit,
				      bool *path_matched)
{
	*path_matched = false;
	for (size_t r = 0; r < ARRAY_SIZE(routes); r++) {
		if (!match(routes[r].pattern, s, call))
			continue;
		*path_matched = true;
		if (routes[r].methods & mbit)
			return &routes[r];
	}
	return NULL;
}

static struct hub_call *call_new(struct http_request *req, struct app *app)
{
	struct hub_call *call = calloc(1, sizeof(*call));
	const char *q = http_request_query(req);

	if (!call)
		return NULL;
	call->magic = HUB_CALL_MAGIC;
	call->req = req;
	call->app = app;
	if (query_parse(&call->query, q, q ? strlen(q) : 0) < 0) {
		free(call);
		return NULL;
	}
	return call;
}

/* True for a request that may change what Haven holds: every method but
 * GET and HEAD, except the reads that are POSTs (paths-info, a git
 * fetch's upload-pack), and the GET that begins a git push (its answer
 * must be the primary's refs). A replica forwards these; a primary holds
 * their answers for its replicas. */
static bool route_writes(const struct route *route, struct http_request *req)
{
	enum http_method m = http_request_method(req);
	const char *q = http_request_query(req);

	if (route->handler == route_replication_leave ||
	    route->handler == route_replication_downloads)
		return false;
	if (route->handler == route_git_info_refs)
		return q && strstr(q, "service=git-receive-pack");
	if (m == HTTP_GET || m == HTTP_HEAD)
		return false;
	if (route->handler == route_paths_info ||
	    route->handler == route_validate_yaml)
		return false;
	if (route->handler == route_git_service)
		return !strstr(http_request_path(req), "/git-upload-pack");
	return true;
}

void router_handle(struct http_request *req, void *app)
{
	struct segments segs;
	struct hub_call *call;
	const struct route *route;
	bool path_matched;

	if (http_request_method(req) == HTTP_OPTIONS) {
		reply_options(req);
		return;
	}
	if (!(call = call_new(req, app))) {
		hub_error_replyf(req, ERR_INVALID, "malformed query string");
		return;
	}
	if (segments_split(&segs, http_request_path(req)) < 0) {
		hub_error_replyf(req, ERR_INVALID, "malformed request path");
		hub_call_free(call);
		return;
	}
	if (segments_hostile(&segs)) {
		segments_release(&segs);
		hub_error_replyf(req, ERR_INVALID, "invalid path: '.' and '..' "
				 "are not allowed in a path");
		hub_call_free(call);
		return;
	}
	route = find_route(&segs, call, method_bit(http_request_method(req)),
			   &path_matched);
	segments_release(&segs);
	if (!route) {
		if (path_matched)
			hub_error_replyf(req, ERR_INVALID, "method %s not allowed "
					 "here", http_request_method_name(req));
		else
			hub_error_replyf(req, ERR_NOTFOUND, "no such endpoint");
		hub_call_free(call);
		return;
	}
	if (route_writes(route, req)) {
		if (call->app->replica) {
			replica_forward(call);	/* the primary answers */
			return;
		}
		if (call->app->replication)
			replication_hold_write(call);
	}
	if (route->auth == SELF_AUTH)
		route->handler(call);
	else if (identify(call))
		pull_through_dispatch(call, route->handler);
	else
		call->async = false;
	if (!call->async)
		hub_call_free(call);
}
