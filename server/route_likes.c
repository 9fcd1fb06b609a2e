/*
 * route_likes.c: likes. POST and DELETE /api/{types}/{repo}/like add and
 * remove the caller's like (DELETE is what huggingface_hub's unlike()
 * sends; the Hub's web page sends POST), and GET
 * /api/{types}/{repo}/likers lists who liked a repo (list_repo_likers),
 * GET /api/users/{user}/likes what a user liked (list_liked_repos).
 * One like per user and repo, kept in LMDB (storage/stats.h). A repo the
 * caller cannot see answers 404 as everywhere else.
 */
#include "common/compat.h"

#include <jansson.h>

#include "common/util.h"
#include "server/auth.h"
#include "server/hub_error.h"
#include "server/hub_json.h"
#include "server/hub_repo.h"
#include "server/routes.h"
#include "storage/accounts.h"
#include "storage/stats.h"

static int set_like(struct meta *meta, const char *repo_id, const char *user,
		    bool on, struct err *err)
{
	struct meta_txn *txn = NULL;
	int rc;

	if ((rc = meta_txn_begin(&txn, meta, true, err)) < 0)
		return rc;
	if ((rc = stats_like_set(txn, repo_id, user, on, err)) < 0) {
		meta_txn_abort(txn);
		return rc;
	}
	return meta_txn_commit(txn, err);
}

void route_like(struct hub_call *call)
{
	bool on = http_request_method(call->req) == HTTP_POST;
	struct err err = { 0 };
	struct hub_repo r;

	if (!call->who.authenticated) {
		hub_error_replyf(call->req, ERR_AUTH, "You must be authenticated "
				 "to like a repository: pass a token with "
				 "Authorization: Bearer");
		return;
	}
	if (hub_repo_open(&r, call, NULL, &err) < 0 ||
	    set_like(call->app->store->meta, r.rec.id, call->who.user, on,
		     &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		goto out;
	}
	hub_reply_json(call->req, 200, json_pack("{s:b}", "liked", on));
out:
	hub_repo_close(&r);
}

static int add_liker(const char *key, const char *json, void *arg)
{
	json_t *o = json_loads(json, 0, NULL);
	const char *user = json_string_value(json_object_get(o, "user"));

	(void)key;
	if (user)
		json_array_append_new(arg, json_pack("{s:s, s:s, s:s}", "user",
						     user, "fullname", user,
						     "type", "user"));
	json_decref(o);
	return 0;
}

void route_likers(struct hub_call *call)
{
	struct meta_txn *txn = NULL;
	struct err err = { 0 };
	struct hub_repo r;
	json_t *list = json_array();
	char prefix[REPO_ID_LEN + 2];

	if (hub_repo_open(&r, call, NULL, &err) < 0 ||
	    meta_txn_begin(&txn, call->app->store->meta, false, &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		goto out;
	}
	snprintf(prefix, sizeof(prefix), "%s/", r.rec.id);
	if (meta_kv_foreach(txn, META_KV_LIKES, prefix, add_liker, list,
			    &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		goto out;
	}
	hub_reply_json(call->req, 200, list);
	list = NULL;
out:
	json_decref(list);
	meta_txn_abort(txn);
	hub_repo_close(&r);
}

struct user_likes {
	struct hub_call *call;
	struct meta_txn *txn;
	json_t *list;
};

/* One like as the Hub lists it: {"createdAt", "repo": {"name", "type"}};
 * a repository gone or out of the caller's sight is left out. */
static int add_user_like(const char *repo_id, time_t when, void *arg)
{
	struct user_likes *u = arg;
	struct repo_record rec;
	char date[32];

	if (meta_repo_get_by_id(u->txn, repo_id, &rec, NULL) < 0 ||
	    auth_repo_role(u->call->app, &u->call->who, &rec) == ROLE_NONE)
		return 0;
	time_iso8601(date, when);
	if (json_array_append_new(u->list, json_pack("{s:s, s:{s:s, s:s}}",
			"createdAt", date, "repo", "name", rec.name,
			"type", rec.type)) < 0)
		return ERR_FAIL;
	return 0;
}

void route_user_likes(struct hub_call *call)
{
	struct user_likes u = { .call = call, .list = json_array() };
	struct meta *meta = call->app->store->meta;
	const char *user = call->path;
	struct user_record who;
	struct err err = { 0 };
	int rc;

	if (!u.list || meta_txn_begin(&u.txn, meta, false, &err) < 0) {
		if (!err.code)
			err_set(&err, ERR_FAIL, "out of memory");
		hub_error_reply(call->req, &err, NULL);
		goto out;
	}
	rc = stats_user_likes(u.txn, user, add_user_like, &u, &err);
	meta_txn_abort(u.txn);
	if (rc < 0) {
		if (!err.code)
			err_set(&err, ERR_FAIL, "cannot list likes");
		hub_error_reply(call->req, &err, NULL);
		goto out;
	}
	/* No likes and nobody of that name: 404, as for any missing
	 * account. An organisation likes nothing: an empty list. */
	if (!json_array_size(u.list) &&
	    (!account_name_valid(user) ||
	     (!account_is_org(meta, user) &&
	      account_user_get(meta, user, &who, NULL) < 0))) {
		hub_error_replyf(call->req, ERR_NOTFOUND, "User not found");
		goto out;
	}
	hub_reply_json(call->req, 200, u.list);
	u.list = NULL;
out:
	json_decref(u.list);
}
