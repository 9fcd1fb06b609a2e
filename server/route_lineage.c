/*
 * route_lineage.c: GET /api/models/{ns}/{name}/lineage, Haven's view of
 * the Hub's "model tree": the ancestors and descendants of a model with
 * relation and depth, and how many direct children it has per relation.
 *
 *   ?direction=ancestors|descendants|both (default both)
 *   &depth=N (default 3, at most 10)
 *
 * Models the caller cannot see never appear; the walk does not pass
 * through them either.
 */
#include "common/compat.h"

#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "server/auth.h"
#include "server/hub_error.h"
#include "server/hub_json.h"
#include "server/hub_repo.h"
#include "server/routes.h"
#include "storage/lineage.h"

#define DEPTH_DEFAULT 3

static bool caller_sees(const struct repo_record *rec, void *arg)
{
	struct hub_call *call = arg;

	return auth_repo_role(call->app, &call->who, rec) != ROLE_NONE;
}

static void free_text(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

static int parse_direction(const char *s)
{
	if (!s || !strcmp(s, "both"))
		return LINEAGE_ANCESTORS | LINEAGE_DESCENDANTS;
	if (!strcmp(s, "ancestors"))
		return LINEAGE_ANCESTORS;
	if (!strcmp(s, "descendants"))
		return LINEAGE_DESCENDANTS;
	return -1;
}

/* depth: 1..LINEAGE_DEPTH_MAX; -1 for anything else. */
static int parse_depth(const char *s)
{
	char *end;
	long n;

	if (!s)
		return DEPTH_DEFAULT;
	n = strtol(s, &end, 10);
	if (!*s || *end || n < 1 || n > LINEAGE_DEPTH_MAX)
		return -1;
	return (int)n;
}

void route_lineage(struct hub_call *call)
{
	struct meta_txn *txn = NULL;
	struct err err = { 0 };
	struct hub_repo r;
	int dirs = parse_direction(query_get(&call->query, "direction"));
	int depth = parse_depth(query_get(&call->query, "depth"));
	struct evbuffer *body = NULL;
	size_t len = 0;
	char *doc;

	if (strcmp(call->type, "model")) {
		hub_error_replyf(call->req, ERR_NOTFOUND, "lineage is kept for "
				 "models only");
		return;
	}
	if (dirs < 0 || depth < 0) {
		hub_error_replyf(call->req, ERR_INVALID, "direction must be "
				 "ancestors, descendants or both, and depth a "
				 "number from 1 to %d", LINEAGE_DEPTH_MAX);
		return;
	}
	if (hub_repo_open(&r, call, NULL, &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	if (meta_txn_begin(&txn, call->app->store->meta, false, &err) < 0 ||
	    !(doc = lineage_tree_text(txn, &r.rec, dirs, depth, caller_sees,
				      call, &len, &err))) {
		meta_txn_abort(txn);
		hub_repo_close(&r);
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	meta_txn_abort(txn);
	hub_repo_close(&r);
	/* The text is handed over, not copied: the answer may be megabytes. */
	if (!(body = evbuffer_new()) ||
	    evbuffer_add_reference(body, doc, len, free_text, NULL) < 0) {
		evbuffer_free(body);
		free(doc);
		hub_error_replyf(call->req, ERR_FAIL, "cannot build the answer");
		return;
	}
	hub_common_headers(call->req);
	http_response_header(call->req, "Content-Type",
			     "application/json; charset=utf-8");
	http_response_send(call->req, 200, body);
	evbuffer_free(body);
}
