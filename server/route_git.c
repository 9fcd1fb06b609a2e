/*
 * route_git.c: git smart HTTP (hub-api.md 7.1) for every repository type,
 * with or without ".git" (the router strips it):
 *
 *   GET  <url>/info/refs?service=git-upload-pack    clone, fetch
 *   POST <url>/git-upload-pack
 *   GET  <url>/info/refs?service=git-receive-pack   push
 *   POST <url>/git-receive-pack
 *
 * Authorisation is the API's: reading needs file access (private repos
 * are invisible, gated ones need an accepted request), pushing needs the
 * write role. An anonymous caller refused for want of credentials gets
 * 401 with WWW-Authenticate, so git asks its credential helper; a caller
 * whose credentials are not enough gets 403. The protocol itself is
 * git's own, run by git_backend. Dumb HTTP is not served.
 */
#include "common/compat.h"

#include "server/git_backend.h"
#include "server/hub_error.h"
#include "server/routes.h"

/* Checks the caller and hands the request to git http-backend. */
static void git_serve(struct hub_call *call, bool receive, bool advertise)
{
	struct git_backend_call gc = { 0 };
	struct repo_record rec;
	struct err err = { 0 };
	int rc;

	rc = repo_lookup(call->app->store, call->type, call->repo, &rec, &err);
	if (rc == 0)
		rc = receive ? auth_check_write(call->app, &call->who, &rec, &err)
			     : auth_check_files(call->app, &call->who, &rec, &err);
	if (rc < 0) {
		if (rc == ERR_FORBIDDEN && hub_call_anonymous(call))
			err_set(&err, ERR_AUTH, "authentication required: "
				"use a token with the write role as the password");
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	gc.repo_id = rec.id;
	gc.receive = receive;
	gc.advertise = advertise;
	gc.remote_user = call->who.authenticated ? call->who.user : NULL;
	git_backend_run(call->req, &gc);
}

void route_git_info_refs(struct hub_call *call)
{
	const char *service = query_get(&call->query, "service");

	if (!service) {
		hub_error_replyf(call->req, ERR_FORBIDDEN, "dumb HTTP is not "
				 "supported: use a git client that speaks smart "
				 "HTTP (git 1.6.6 or later)");
		return;
	}
	if (strcmp(service, "git-upload-pack") &&
	    strcmp(service, "git-receive-pack")) {
		hub_error_replyf(call->req, ERR_INVALID, "unknown git service "
				 "'%.64s': expected git-upload-pack or "
				 "git-receive-pack", service);
		return;
	}
	git_serve(call, !strcmp(service, "git-receive-pack"), true);
}

void route_git_service(struct hub_call *call)
{
	const char *path = http_request_path(call->req);
	const char *slash = strrchr(path, '/');

	/* The route table sends only these two names here. */
	git_serve(call, slash && !strcmp(slash, "/git-receive-pack"), false);
}
