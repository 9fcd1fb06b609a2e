/*
 * accounts.h: users, organisations and their members, access tokens, and
 * access requests to gated repositories, kept in LMDB (layout in
 * meta_keys.h).
 *
 * Users and organisations share one namespace: a name is either. Tokens
 * look like the Hub's ("hf_" and 34 letters and digits); only their
 * SHA-256 is stored, so a token is shown once, when it is made. Every
 * function runs its own short transaction and may be called while a
 * server uses the same data directory.
 */
#ifndef HAVEN_ACCOUNTS_H
#define HAVEN_ACCOUNTS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/meta.h"

#define ACCOUNT_NAME_MAX 64
#define TOKEN_MAX 64
#define TOKEN_ID_LEN 16	/* hex prefix of the token's hash, for list/revoke */

/* Roles, ordered: a higher one includes the lower ones. */
enum role { ROLE_NONE = 0, ROLE_READ = 1, ROLE_WRITE = 2, ROLE_ADMIN = 3 };

/* "read", "write", "admin" -> role; ROLE_NONE for anything else. */
enum role role_parse(const char *name);
const char *role_name(enum role role);

struct user_record {
	char name[ACCOUNT_NAME_MAX];	/* original case */
	bool admin;			/* site administrator */
	int64_t created;
};

struct token_record {
	char id[TOKEN_ID_LEN + 1];
	char user[ACCOUNT_NAME_MAX];
	char name[ACCOUNT_NAME_MAX];	/* the label */
	enum role role;
	int64_t created;
	bool revoked;
};

/* True when name may be a user or organisation: the rules of a repository
 * namespace (see repo_name_valid), shorter than ACCOUNT_NAME_MAX. */
bool account_name_valid(const char *name);

/* Names follow the rules of a repository namespace (see repo_name_valid).
 * ERR_EXISTS when a user or organisation has the name already. */
int account_user_create(struct meta *meta, const char *name, bool admin,
			struct err *err);
int account_org_create(struct meta *meta, const char *name, struct err *err);

/* ERR_NOTFOUND when absent. */
int account_user_get(struct meta *meta, const char *name,
		     struct user_record *out, struct err *err);
/* The organisation's record (admin is false); ERR_NOTFOUND when absent. */
int account_org_get(struct meta *meta, const char *name,
		    struct user_record *out, struct err *err);
/* True when name is an organisation. */
bool account_is_org(struct meta *meta, const char *name);

/* Adds or changes a member's role (ERR_NOTFOUND for an unknown user or
 * organisation). */
int account_org_set_member(struct meta *meta, const char *org,
			   const char *user, enum role role, struct err *err);
/* The user's role in the organisation, ROLE_NONE when not a member. */
enum role account_member_role(struct meta *meta, const char *org,
			      const char *user);

/* Calls fn for each organisation the user belongs to, with the role. */
typedef int (*account_org_fn)(const char *org, enum role role, void *arg);
int account_user_orgs(struct meta *meta, const char *user, account_org_fn fn,
		      void *arg, struct err *err);

/* Makes a token for user with a role and a label; token_out receives the
 * secret (the only time it exists outside the caller). */
int account_token_create(struct meta *meta, const char *user, enum role role,
			 const char *label, char token_out[TOKEN_MAX],
			 struct token_record *rec, struct err *err);
/* Finds a live token: ERR_AUTH when unknown or revoked. */
int account_token_lookup(struct meta *meta, const char *token,
			 struct token_record *out, struct err *err);
/* Lists tokens (of one user, or all when user is NULL). */
typedef int (*account_token_fn)(const struct token_record *rec, void *arg);
int account_token_list(struct meta *meta, const char *user,
		       account_token_fn fn, void *arg, struct err *err);
/* Revokes the token whose id starts with id_prefix (at least 6 hex
 * digits; ERR_INVALID when ambiguous, ERR_NOTFOUND when none). */
int account_token_revoke(struct meta *meta, const char *id_prefix,
			 struct err *err);

/* Access requests to gated repositories. */
enum access_status { ACCESS_NONE = 0, ACCESS_PENDING, ACCESS_ACCEPTED,
		     ACCESS_REJECTED };
const char *access_status_name(enum access_status s);
/* "pending", "accepted", "rejected" -> status; ACCESS_NONE otherwise. */
enum access_status access_status_parse(const char *name);

/* Records the user's request (ERR_NOTFOUND for an unknown user). */
int account_access_set(struct meta *meta, const char *repo_id,
		       const char *user, enum access_status status,
		       struct err *err);
enum access_status account_access_get(struct meta *meta, const char *repo_id,
				      const char *user);
typedef int (*account_access_fn)(const char *user, enum access_status status,
				 int64_t time, void *arg);
int account_access_list(struct meta *meta, const char *repo_id,
			account_access_fn fn, void *arg, struct err *err);

#endif
