/*
 * route_account.c: who the caller is (GET /api/whoami-v2, hub-api.md
 * 2.1), repository settings (PUT /api/{types}/{repo}/settings: private
 * and gated), and access requests to gated repositories: users ask with
 * POST .../ask-access, namespace writers list them with GET
 * .../user-access-request/{pending|accepted|rejected} and decide with POST
 * .../user-access-request/handle {"user","status"} or .../grant {"user"},
 * the shapes huggingface_hub's HfApi reads and sends.
 */
#include "common/compat.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <strings.h>

#include "common/util.h"
#include "server/hub_error.h"
#include "server/hub_json.h"
#include "server/routes.h"
#include "storage/hash.h"

#define SETTINGS_BODY_MAX (64 * 1024)
#define ACCESS_BODY_MAX (64 * 1024)

/* A stable 24-hex id for an account, in the form of the Hub's ids. */
static void account_id(char out[25], const char *kind, const char *name)
{
	char lower[ACCOUNT_NAME_MAX], text[ACCOUNT_NAME_MAX + 8];
	char hex[SHA256_HEX_LEN + 1];

	if (str_lower(lower, sizeof(lower), name) < 0)
		lower[0] = '\0';
	snprintf(text, sizeof(text), "%s:%s", kind, lower);
	sha256_hex(hex, text, strlen(text));
	str_copy(out, hex, 25);
}

static json_t *org_json(const char *org, enum role role)
{
	char id[25];

	account_id(id, "org", org);
	return json_pack("{s:s, s:s, s:s, s:s, s:n, s:b, s:s, s:n, s:s}",
			 "type", "org", "id", id, "name", org, "fullname", org,
			 "email", "canPay", 0, "avatarUrl", "", "periodEnd",
			 "roleInOrg", role_name(role));
}

static int add_org(const char *org, enum role role, void *arg)
{
	json_array_append_new(arg, org_json(org, role));
	return 0;
}

void route_whoami(struct hub_call *call)
{
	const struct principal *who = &call->who;
	struct user_record user;
	struct err err = { 0 };
	json_t *orgs = json_array(), *doc;
	char id[25], created[32];

	if (!who->authenticated) {
		json_decref(orgs);
		hub_error_replyf(call->req, ERR_AUTH, "You must be authenticated: "
				 "pass a token with Authorization: Bearer");
		return;
	}
	if (account_user_get(call->app->store->meta, who->user, &user, &err) < 0 ||
	    account_user_orgs(call->app->store->meta, who->user, add_org, orgs,
			      &err) < 0) {
		json_decref(orgs);
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	account_id(id, "user", user.name);
	doc = json_pack("{s:s, s:s, s:s, s:s, s:n, s:b, s:s, s:b, s:b, s:n, "
			"s:s, s:b, s:o}",
			"type", "user", "id", id, "name", user.name,
			"fullname", user.name, "email", "emailVerified", 0,
			"avatarUrl", "", "isPro", 0, "canPay", 0,
			"periodEnd", "billingMode", "prepaid",
			"siteAdmin", user.admin, "orgs", orgs);
	time_iso8601(created, (time_t)who->token_created);
	if (doc)
		json_object_set_new(doc, "auth", json_pack(
			"{s:s, s:{s:s, s:s, s:s}}", "type", "access_token",
			"accessToken", "displayName", who->token_name, "role",
			role_name(who->token_role), "createdAt", created));
	hub_reply_json(call->req, 200, doc);
}

/* --- settings ------------------------------------------------------------------ */

/* Applies the fields of a settings body to rec; ERR_INVALID for a value
 * the Hub would refuse. Unknown fields are ignored, as the Hub does. */
static int settings_apply(struct repo_record *rec, json_t *doc,
			  struct err *err)
{
	json_t *gated = json_object_get(doc, "gated");
	json_t *priv = json_object_get(doc, "private");
	json_t *vis = json_object_get(doc, "visibility");

	if (gated) {
		const char *g = json_string_value(gated);
		if (json_is_false(gated))
			rec->gated[0] = '\0';
		else if (g && (!strcmp(g, "auto") || !strcmp(g, "manual")))
			str_copy(rec->gated, g, sizeof(rec->gated));
		else
			return err_set(err, ERR_INVALID, "invalid 'gated': "
				       "expected \"auto\", \"manual\" or false");
	}
	if (priv && !json_is_null(priv)) {
		if (!json_is_boolean(priv))
			return err_set(err, ERR_INVALID, "invalid 'private': "
				       "expected true or false");
		rec->private = json_is_true(priv);
	}
	if (vis && !json_is_null(vis)) {
		const char *v = json_string_value(vis);
		if (v && !strcmp(v, "public"))
			rec->private = false;
		else if (v && !strcmp(v, "private"))
			rec->private = true;
		else
			return err_set(err, ERR_INVALID, "invalid 'visibility': "
				       "expected \"public\" or \"private\"");
	}
	return 0;
}

/* Re-reads the record inside a write transaction, so two settings calls
 * never undo each other's fields, and stores the change. */
static int settings_store(struct hub_call *call, json_t *doc, struct err *err)
{
	struct meta_txn *txn = NULL;
	struct repo_record rec;
	int rc;

	if ((rc = meta_txn_begin(&txn, call->app->store->meta, true, err)) < 0)
		return rc;
	if ((rc = meta_repo_get(txn, call->type, call->repo, &rec, err)) < 0 ||
	    (rc = auth_check_write(call->app, &call->who, &rec, err)) < 0 ||
	    (rc = settings_apply(&rec, doc, err)) < 0 ||
	    (rc = meta_repo_update(txn, &rec, err)) < 0) {
		meta_txn_abort(txn);
		return rc;
	}
	return meta_txn_commit(txn, err);
}

/* The buffered request body as a JSON object; NULL once the error has
 * been answered, saying expected when the body is not an object. */
static json_t *body_object(struct http_request *req, struct evbuffer *body,
			   int rc, const char *expected)
{
	json_t *doc;

	if (rc < 0) {
		hub_error_replyf(req, rc == ERR_TOOBIG ? ERR_TOOBIG : ERR_INVALID,
				 rc == ERR_TOOBIG ? "request body too large" :
				 "request body incomplete");
		return NULL;
	}
	doc = json_loadb((const char *)evbuffer_pullup(body, -1),
			 evbuffer_get_length(body), 0, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		hub_error_replyf(req, ERR_INVALID, "%s", expected);
		return NULL;
	}
	return doc;
}

static void settings_body(struct http_request *req, struct evbuffer *body,
			  int rc, void *arg)
{
	struct hub_call *call = arg;
	struct err err = { 0 };
	json_t *doc;

	if (!(doc = body_object(req, body, rc, "expected a JSON object with "
				"'gated', 'private' or 'visibility'")))
		goto out;
	if (settings_store(call, doc, &err) < 0) {
		hub_error_reply(req, &err, NULL);
		goto out;
	}
	hub_reply_json(req, 200, json_object());
out:
	json_decref(doc);
	hub_call_free(call);
}

void route_repo_settings(struct hub_call *call)
{
	struct repo_record rec;
	struct err err = { 0 };

	/* Refuse before reading a body the caller has no right to send. */
	if (repo_lookup(call->app->store, call->type, call->repo, &rec, &err) < 0 ||
	    auth_check_write(call->app, &call->who, &rec, &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	call->async = true;
	http_request_buffer_body(call->req, SETTINGS_BODY_MAX, settings_body,
				 call);
}

/* --- access requests --------------------------------------------------------------- */

static int access_fail_not_gated(struct err *err, const struct repo_record *rec)
{
	return err_set(err, ERR_INVALID, "%s %s is not gated", rec->type,
		       rec->name);
}

/* POST .../ask-access: files the caller's request; "auto" gating accepts
 * it at once. A decision already made stands. */
static void ask_access(struct hub_call *call, const struct repo_record *rec)
{
	struct meta *meta = call->app->store->meta;
	struct err err = { 0 };
	enum access_status st;

	if (!call->who.authenticated) {
		hub_error_replyf(call->req, ERR_AUTH, "You must be authenticated "
				 "to ask for access: pass a token");
		return;
	}
	if (!rec->gated[0]) {
		access_fail_not_gated(&err, rec);
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	st = account_access_get(meta, rec->id, call->who.user);
	if (st != ACCESS_ACCEPTED && st != ACCESS_REJECTED) {
		st = !strcmp(rec->gated, "auto") ? ACCESS_ACCEPTED : ACCESS_PENDING;
		if (account_access_set(meta, rec->id, call->who.user, st, &err) < 0) {
			hub_error_reply(call->req, &err, NULL);
			return;
		}
	}
	hub_reply_json(call->req, 200, json_pack("{s:s}", "status",
						 access_status_name(st)));
}

struct access_listing {
	enum access_status want;
	json_t *arr;
};

static int access_add(const char *user, enum access_status status,
		      int64_t time, void *arg)
{
	struct access_listing *l = arg;
	char when[32];

	if (status != l->want)
		return 0;
	time_iso8601(when, (time_t)time);
	json_array_append_new(l->arr, json_pack(
		"{s:{s:s, s:s, s:n, s:s, s:s}, s:s, s:s, s:{}}",
		"user", "user", user, "fullname", user, "email", "avatarUrl", "",
		"type", "user", "status", access_status_name(status),
		"timestamp", when, "fields"));
	return 0;
}

/* GET .../user-access-request/{pending|accepted|rejected} */
static void list_access(struct hub_call *call, const struct repo_record *rec,
			enum access_status want)
{
	struct access_listing l = { want, json_array() };
	struct err err = { 0 };

	if (account_access_list(call->app->store->meta, rec->id, access_add, &l,
				&err) < 0) {
		json_decref(l.arr);
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	hub_reply_json(call->req, 200, l.arr);
}

/* Acts on a handle or grant body; the caller may write to the repo. */
static int access_decide(struct hub_call *call, json_t *doc, bool grant,
			 struct repo_record *rec, struct err *err)
{
	struct meta *meta = call->app->store->meta;
	const char *user = json_string_value(json_object_get(doc, "user"));
	const char *sname = json_string_value(json_object_get(doc, "status"));
	enum access_status now, want = grant ? ACCESS_ACCEPTED :
					      access_status_parse(sname);
	struct user_record u;
	int rc;

	if (!rec->gated[0])
		return access_fail_not_gated(err, rec);
	if (!user || want == ACCESS_NONE)
		return err_set(err, ERR_INVALID, grant ? "expected {\"user\": "
			       "NAME}" : "expected {\"user\": NAME, \"status\": "
			       "\"accepted\"|\"rejected\"|\"pending\"}");
	if ((rc = account_user_get(meta, user, &u, err)) < 0)
		return rc;
	now = account_access_get(meta, rec->id, u.name);
	if (grant && now == ACCESS_ACCEPTED)
		return err_set(err, ERR_INVALID, "user '%s' already has access "
			       "to %s", u.name, rec->name);
	if (!grant && now == ACCESS_NONE)
		return err_set(err, ERR_NOTFOUND, "no access request from '%s' "
			       "for %s", u.name, rec->name);
	return account_access_set(meta, rec->id, u.name, want, err);
}

static void access_body(struct http_request *req, struct evbuffer *body,
			int rc, void *arg)
{
	struct hub_call *call = arg;
	struct repo_record rec;
	struct err err = { 0 };
	json_t *doc;

	if (!(doc = body_object(req, body, rc, "expected a JSON object")))
		goto out;
	/* Looked up again: the repo may have changed while the body came. */
	if (repo_lookup(call->app->store, call->type, call->repo, &rec, &err) < 0 ||
	    auth_check_write(call->app, &call->who, &rec, &err) < 0 ||
	    access_decide(call, doc, !strcmp(call->rev, "grant"), &rec, &err) < 0) {
		hub_error_reply(req, &err, NULL);
		goto out;
	}
	hub_reply_json(req, 200, json_object());
out:
	json_decref(doc);
	hub_call_free(call);
}

void route_access_requests(struct hub_call *call)
{
	bool post = http_request_method(call->req) == HTTP_POST;
	enum access_status want = access_status_parse(call->rev);
	struct repo_record rec;
	struct err err = { 0 };

	if (repo_lookup(call->app->store, call->type, call->repo, &rec, &err) < 0 ||
	    auth_check_read(call->app, &call->who, &rec, &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	if (!call->rev[0]) {	/* the ask-access route has no {rev*} */
		ask_access(call, &rec);
		return;
	}
	if (auth_check_write(call->app, &call->who, &rec, &err) < 0) {
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	if (!post && want != ACCESS_NONE) {
		if (!rec.gated[0]) {
			access_fail_not_gated(&err, &rec);
			hub_error_reply(call->req, &err, NULL);
			return;
		}
		list_access(call, &rec, want);
		return;
	}
	if (post && (!strcmp(call->rev, "handle") || !strcmp(call->rev, "grant"))) {
		call->async = true;
		http_request_buffer_body(call->req, ACCESS_BODY_MAX, access_body,
					 call);
		return;
	}
	hub_error_replyf(call->req, ERR_NOTFOUND, "no such endpoint: "
			 "user-access-request/%.64s with %s", call->rev,
			 post ? "POST" : "GET");
}
