/*
 * auth.h: who is calling, and what they may do with a repository.
 *
 * The router identifies every request once (auth_identify) before any
 * handler runs: a Bearer token, or Basic credentials whose password is a
 * token (git and git-lfs send those). No Authorization header means an
 * anonymous caller; a token that is unknown or revoked is refused with
 * 401 "Invalid credentials in Authorization header", as on the Hub.
 *
 * Access to a repository: public repositories are readable by everyone;
 * private ones only by the namespace's owner, its organisation's members
 * and site administrators, and are invisible (RepoNotFound) to everyone
 * else. Writing needs the write role in the namespace, capped by the
 * token's own role. Gated repositories answer GatedRepo on file access
 * until the user's access request is accepted.
 */
#ifndef HAVEN_AUTH_H
#define HAVEN_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/accounts.h"
#include "storage/meta.h"

struct app;
struct http_request;

struct principal {
	bool authenticated;
	char user[ACCOUNT_NAME_MAX];
	bool site_admin;
	enum role token_role;
	char token_name[ACCOUNT_NAME_MAX];
	char token_id[TOKEN_ID_LEN + 1];
	int64_t token_created;	/* unix seconds, for whoami */
	/* Pull-through (server/pull_through.h): a token Haven does not know,
	 * accepted only as an upstream token for a pulled-through
	 * repository; and the upstream's answer for the one repository the
	 * request names (pt_repo_id), settled before the handler runs. */
	bool upstream_token;
	char pt_repo_id[REPO_ID_LEN + 1];
	bool pt_read, pt_files;
};

/* Fills who from the request's Authorization header; ERR_AUTH for bad
 * credentials. */
int auth_identify(struct app *app, struct http_request *req,
		  struct principal *who, struct err *err);

/* The token in the request's Authorization header (Bearer, or Basic
 * with the token as password), copied into out; ERR_NOTFOUND without one,
 * ERR_AUTH when malformed. The caller wipes out after use. */
int auth_request_token(struct http_request *req, char *out, size_t size,
		       struct err *err);

/* The caller's role on a namespace (a user's own name, or an org). */
enum role auth_namespace_role(struct app *app, const struct principal *who,
			      const char *ns);

/* The caller's role on a repository: ROLE_READ at least for a public one,
 * ROLE_NONE for a private one the caller cannot see. */
enum role auth_repo_role(struct app *app, const struct principal *who,
			 const struct repo_record *rec);

/* ERR_NOREPO ("Repository not found") when the caller cannot see it. */
int auth_check_read(struct app *app, const struct principal *who,
		    const struct repo_record *rec, struct err *err);
/* Also ERR_GATED until an access request is accepted (owners and
 * members pass). For file content: resolve, raw, git, LFS downloads. */
int auth_check_files(struct app *app, const struct principal *who,
		     const struct repo_record *rec, struct err *err);
/* ERR_NOREPO when invisible, ERR_FORBIDDEN when readable only. */
int auth_check_write(struct app *app, const struct principal *who,
		     const struct repo_record *rec, struct err *err);
/* For creating repositories in a namespace. */
int auth_check_namespace_write(struct app *app, const struct principal *who,
			       const char *ns, struct err *err);

#endif
