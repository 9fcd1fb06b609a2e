/*
 * auth.c: identifies callers from their token and decides what they may
 * do with a repository (see auth.h).
 *
 * The namespace role is the only source of rights: a user is admin of
 * their own namespace, an organisation's members have the role they were
 * given, site administrators are admin everywhere; the token's role caps
 * all of it. A public repository adds read for everyone. Gating only
 * guards file content, for callers outside the namespace.
 */
#include "common/compat.h"

#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/util.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/http.h"
#include "server/replication.h"

/* Longest credentials looked at: far above a real token, small enough to
 * sit on the stack. Longer ones are refused, never truncated. */
#define CRED_MAX 512

#define BAD_CREDENTIALS "Invalid credentials in Authorization header"

static const char *skip_spaces(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Copies s without trailing blanks into out; -1 when empty or too long. */
static int copy_trimmed(char *out, size_t size, const char *s, size_t len)
{
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= size)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* The password of Basic credentials (the username when the password is
 * empty: some tools put the token there). */
static int basic_token(char *out, size_t size, const char *b64)
{
	unsigned char raw[CRED_MAX];
	size_t len = strlen(b64), pad = 0;
	const char *colon;
	int n;

	while (len && (b64[len - 1] == ' ' || b64[len - 1] == '\t'))
		len--;
	if (len == 0 || len % 4 || len / 4 * 3 >= sizeof(raw))
		return -1;
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
	if (n < 0)
		return -1;
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	pad = (b64[len - 1] == '=') + (b64[len - 2] == '=');
	n -= (int)pad;
	raw[n] = '\0';
	if (memchr(raw, '\0', (size_t)n))
		n = -1;
	else if (!(colon = memchr(raw, ':', (size_t)n)))
		n = copy_trimmed(out, size, (char *)raw, (size_t)n);
	else if (colon[1])
		n = copy_trimmed(out, size, colon + 1, strlen(colon + 1));
	else
		n = copy_trimmed(out, size, (char *)raw, (size_t)(colon - (char *)raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	return n < 0 ? -1 : 0;
}

/* The token in an Authorization header value; -1 when malformed. */
static int header_token(char *out, size_t size, const char *value)
{
	value = skip_spaces(value);
	if (!strncasecmp(value, "Bearer ", 7)) {
		value = skip_spaces(value + 7);
		return copy_trimmed(out, size, value, strlen(value));
	}
	if (!strncasecmp(value, "Basic ", 6))
		return basic_token(out, size, skip_spaces(value + 6));
	return -1;
}

int auth_request_token(struct http_request *req, char *out, size_t size,
		       struct err *err)
{
	const char *value = http_request_header(req, "Authorization");

	if (!value)
		return err_set(err, ERR_NOTFOUND, "no credentials");
	if (header_token(out, size, value) < 0)
		return err_set(err, ERR_AUTH, BAD_CREDENTIALS);
	return 0;
}

int auth_identify(struct app *app, struct http_request *req,
		  struct principal *who, struct err *err)
{
	const char *value = http_request_header(req, "Authorization");
	char token[CRED_MAX];
	struct token_record tok;
	struct user_record user;
	int rc;

	memset(who, 0, sizeof(*who));
	if (!value)
		return 0;
	if (header_token(token, sizeof(token), value) < 0)
		return err_set(err, ERR_AUTH, BAD_CREDENTIALS);
	if (app->replication && replication_token_is(app->replication, token)) {
		/* A replica fetching git: it reads every repository. */
		OPENSSL_cleanse(token, sizeof(token));
		who->authenticated = true;
		str_copy(who->user, "haven-replica", sizeof(who->user));
		who->site_admin = true;
		who->token_role = ROLE_READ;
		str_copy(who->token_name, "replication", sizeof(who->token_name));
		return 0;
	}
	rc = account_token_lookup(app->store->meta, token, &tok, err);
	OPENSSL_cleanse(token, sizeof(token));
	if (rc == ERR_AUTH && app->pull) {
		/* Perhaps the upstream's: good for pulled-through repositories
		 * only, where the upstream judges it; anything else refuses
		 * it as before (auth_check_*, pull_through_dispatch). */
		who->upstream_token = true;
		return 0;
	}
	if (rc < 0)
		return rc == ERR_AUTH ? rc : err_set(err, ERR_UNAVAILABLE,
			"cannot check credentials now, try again");
	/* A token outlives nothing: its user must still exist. */
	if (account_user_get(app->store->meta, tok.user, &user, NULL) < 0)
		return err_set(err, ERR_AUTH, BAD_CREDENTIALS);
	who->authenticated = true;
	str_copy(who->user, user.name, sizeof(who->user));
	who->site_admin = user.admin;
	who->token_role = tok.role;
	str_copy(who->token_name, tok.name, sizeof(who->token_name));
	str_copy(who->token_id, tok.id, sizeof(who->token_id));
	who->token_created = tok.created;
	return 0;
}

enum role auth_namespace_role(struct app *app, const struct principal *who,
			      const char *ns)
{
	enum role role;

	if (!who->authenticated)
		return ROLE_NONE;
	if (who->site_admin || !strcasecmp(ns, who->user))
		role = ROLE_ADMIN;
	else
		role = account_member_role(app->store->meta, ns, who->user);
	return role < who->token_role ? role : who->token_role;
}

/* The namespace part of "ns/name". */
static void repo_namespace(char out[ACCOUNT_NAME_MAX],
			   const struct repo_record *rec)
{
	size_t n = strcspn(rec->name, "/");

	if (n >= ACCOUNT_NAME_MAX)
		n = 0;	/* longer than any account: nobody's namespace */
	memcpy(out, rec->name, n);
	out[n] = '\0';
}

enum role auth_repo_role(struct app *app, const struct principal *who,
			 const struct repo_record *rec)
{
	char ns[ACCOUNT_NAME_MAX];
	enum role role;

	repo_namespace(ns, rec);
	role = ns[0] ? auth_namespace_role(app, who, ns) : ROLE_NONE;
	if (!rec->private && role < ROLE_READ)
		role = ROLE_READ;
	return role;
}

/* The request's pulled-through repository: the upstream decided. */
static bool pulled_through(const struct principal *who,
			   const struct repo_record *rec)
{
	return who->pt_repo_id[0] && !strcmp(who->pt_repo_id, rec->id);
}

int auth_check_read(struct app *app, const struct principal *who,
		    const struct repo_record *rec, struct err *err)
{
	if (pulled_through(who, rec))
		return who->pt_read ? 0 : err_set(err, ERR_NOREPO,
						  "Repository not found");
	if (who->upstream_token)
		return err_set(err, ERR_AUTH, BAD_CREDENTIALS);
	if (auth_repo_role(app, who, rec) == ROLE_NONE)
		return err_set(err, ERR_NOREPO, "Repository not found");
	return 0;
}

/* "model", "dataset" or "space" and the repo's page on this server. */
static void repo_page(char *out, size_t size, struct app *app,
		      const struct repo_record *rec)
{
	const char *prefix = !strcmp(rec->type, "dataset") ? "datasets/" :
			     !strcmp(rec->type, "space") ? "spaces/" : "";

	snprintf(out, size, "%s/%s%s", app->public_url, prefix, rec->name);
}

int auth_check_files(struct app *app, const struct principal *who,
		     const struct repo_record *rec, struct err *err)
{
	char ns[ACCOUNT_NAME_MAX], page[1300];
	int rc;

	if ((rc = auth_check_read(app, who, rec, err)) < 0)
		return rc;
	if (pulled_through(who, rec))
		return who->pt_files ? 0 : err_set(err, ERR_GATED,
			"Access to %s %s is restricted. You must have access "
			"to it on the upstream Hub and pass your token for it "
			"to access it.", rec->type, rec->name);
	if (!rec->gated[0])
		return 0;
	repo_namespace(ns, rec);
	if (auth_namespace_role(app, who, ns) >= ROLE_READ)
		return 0;
	if (!who->authenticated)
		return err_set(err, ERR_GATED, "Access to %s %s is restricted. "
			       "You must have access to it and be authenticated "
			       "to access it. Please log in.", rec->type,
			       rec->name);
	if (account_access_get(app->store->meta, rec->id, who->user) ==
	    ACCESS_ACCEPTED)
		return 0;
	repo_page(page, sizeof(page), app, rec);
	return err_set(err, ERR_GATED, "Access to %s %s is restricted and you "
		       "are not in the authorized list. Visit %s to ask for "
		       "access.", rec->type, rec->name, page);
}

int auth_check_write(struct app *app, const struct principal *who,
		     const struct repo_record *rec, struct err *err)
{
	enum role role = auth_repo_role(app, who, rec);
	int rc;

	if (pulled_through(who, rec) || who->upstream_token) {
		if ((rc = auth_check_read(app, who, rec, err)) < 0)
			return rc;
		return err_set(err, ERR_FORBIDDEN, "%s is a read-only copy of "
			       "an upstream repository", rec->name);
	}
	if (role == ROLE_NONE)
		return err_set(err, ERR_NOREPO, "Repository not found");
	if (role >= ROLE_WRITE)
		return 0;
	if (!who->authenticated)
		return err_set(err, ERR_AUTH, "You must be authenticated to "
			       "write to %s: pass a token with the write role",
			       rec->name);
	return err_set(err, ERR_FORBIDDEN, "You don't have the rights to write "
		       "to %s: make sure your token has the write role",
		       rec->name);
}

int auth_check_namespace_write(struct app *app, const struct principal *who,
			       const char *ns, struct err *err)
{
	if (!who->authenticated)
		return err_set(err, ERR_AUTH, "You must be authenticated to "
			       "create a repository: pass a token with the "
			       "write role");
	if (auth_namespace_role(app, who, ns) >= ROLE_WRITE)
		return 0;
	return err_set(err, ERR_FORBIDDEN, "You don't have the rights to create "
		       "a repository under the namespace '%.64s': make sure "
		       "your token has the write role", ns);
}
