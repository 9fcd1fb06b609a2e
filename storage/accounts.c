/*
 * accounts.c: users, organisations, members, tokens and access requests
 * (see accounts.h), stored through meta.h's key/value calls in the
 * databases described in meta_keys.h. Each public function is one short
 * transaction, so the admin commands and a running server can share the
 * data directory: LMDB serialises the writers.
 */
#include "common/compat.h"

#include <jansson.h>
#include <strings.h>
#include <time.h>
#include <openssl/rand.h>

#include "common/util.h"
#include "storage/accounts.h"
#include "storage/hash.h"
#include "storage/store.h"

#define TOKEN_PREFIX "hf_"
#define TOKEN_RANDOM_LEN 34
#define LABEL_DEFAULT "haven"
/* Room for the longest role or access-status name, and then some. */
#define FIELD_MAX 16

static const char token_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

enum role role_parse(const char *name)
{
	if (!name)
		return ROLE_NONE;
	if (!strcmp(name, "read"))
		return ROLE_READ;
	if (!strcmp(name, "write"))
		return ROLE_WRITE;
	if (!strcmp(name, "admin"))
		return ROLE_ADMIN;
	return ROLE_NONE;
}

const char *role_name(enum role role)
{
	switch (role) {
	case ROLE_READ: return "read";
	case ROLE_WRITE: return "write";
	case ROLE_ADMIN: return "admin";
	default: return "none";
	}
}

const char *access_status_name(enum access_status s)
{
	switch (s) {
	case ACCESS_PENDING: return "pending";
	case ACCESS_ACCEPTED: return "accepted";
	case ACCESS_REJECTED: return "rejected";
	default: return "none";
	}
}

enum access_status access_status_parse(const char *name)
{
	if (!name)
		return ACCESS_NONE;
	if (!strcmp(name, "pending"))
		return ACCESS_PENDING;
	if (!strcmp(name, "accepted"))
		return ACCESS_ACCEPTED;
	if (!strcmp(name, "rejected"))
		return ACCESS_REJECTED;
	return ACCESS_NONE;
}

bool account_name_valid(const char *name)
{
	char probe[ACCOUNT_NAME_MAX + 2];
	size_t n = strlen(name);

	/* The rules of a repository namespace: check "name/x" as a repo id. */
	if (n == 0 || n >= ACCOUNT_NAME_MAX)
		return false;
	snprintf(probe, sizeof(probe), "%s/x", name);
	return repo_name_valid(probe);
}

/* Lower-cases a name for a key; ERR_INVALID when it is not a valid name. */
static int name_key(char out[ACCOUNT_NAME_MAX], const char *name,
		    struct err *err)
{
	if (!name || !account_name_valid(name) ||
	    str_lower(out, ACCOUNT_NAME_MAX, name) < 0)
		return err_set(err, ERR_INVALID, "invalid name '%.64s': use "
			       "letters, digits, '-', '_' and '.' (at most %d)",
			       name ? name : "", ACCOUNT_NAME_MAX - 1);
	return 0;
}

/* Writes doc (stolen) under key in one write transaction. */
static int put_json(struct meta_txn *txn, enum meta_kv db, const char *key,
		    json_t *doc, bool create_only, struct err *err)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	int rc;

	json_decref(doc);
	if (!text)
		return err_set(err, ERR_FAIL, "out of memory");
	rc = meta_kv_put(txn, db, key, text, create_only, err);
	free(text);
	return rc;
}

/* Reads a JSON object; ERR_NOTFOUND when absent, ERR_CORRUPT when the
 * stored text does not parse. */
static int get_json(struct meta_txn *txn, enum meta_kv db, const char *key,
		    json_t **out, struct err *err)
{
	char *text = NULL;
	int rc;

	*out = NULL;
	if ((rc = meta_kv_get(txn, db, key, &text, err)) < 0)
		return rc;
	*out = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return err_set(err, ERR_CORRUPT, "malformed account record '%s'",
			       key);
	}
	return 0;
}

static const char *jstr(json_t *doc, const char *field)
{
	const char *s = json_string_value(json_object_get(doc, field));

	return s ? s : "";
}

/* Copies a string field of the record under key into out, in a read
 * transaction of its own; "" when the record or the field is absent or
 * unreadable, which the callers take as "no role" or "no request". */
static void field_lookup(struct meta *meta, enum meta_kv db, const char *key,
			 const char *field, char *out, size_t size)
{
	struct meta_txn *txn = NULL;
	json_t *doc = NULL;

	out[0] = '\0';
	if (meta_txn_begin(&txn, meta, false, NULL) < 0)
		return;
	if (get_json(txn, db, key, &doc, NULL) == 0)
		str_copy(out, jstr(doc, field), size);
	json_decref(doc);
	meta_txn_abort(txn);
}

/* Calls visit for each record of db under prefix, in a read transaction. */
static int kv_walk(struct meta *meta, enum meta_kv db, const char *prefix,
		   meta_kv_fn visit, void *arg, struct err *err)
{
	struct meta_txn *txn = NULL;
	int rc;

	if ((rc = meta_txn_begin(&txn, meta, false, err)) < 0)
		return rc;
	rc = meta_kv_foreach(txn, db, prefix, visit, arg, err);
	meta_txn_abort(txn);
	return rc;
}

/* --- users and organisations ---------------------------------------------- */

static int account_create(struct meta *meta, const char *name, bool org,
			  bool admin, struct err *err)
{
	struct meta_txn *txn = NULL;
	char key[ACCOUNT_NAME_MAX];
	json_t *doc;
	int rc;

	if ((rc = name_key(key, name, err)) < 0 ||
	    (rc = meta_txn_begin(&txn, meta, true, err)) < 0)
		return rc;
	doc = json_pack("{s:s, s:s, s:b, s:I}", "type", org ? "org" : "user",
			"name", name, "admin", admin && !org, "created",
			(json_int_t)time(NULL));
	rc = put_json(txn, META_KV_ACCOUNTS, key, doc, true, err);
	if (rc == ERR_EXISTS)
		err_set(err, ERR_EXISTS, "the name '%s' is already taken by a "
			"user or an organisation", name);
	if (rc < 0) {
		meta_txn_abort(txn);
		return rc;
	}
	return meta_txn_commit(txn, err);
}

int account_user_create(struct meta *meta, const char *name, bool admin,
			struct err *err)
{
	return account_create(meta, name, false, admin, err);
}

int account_org_create(struct meta *meta, const char *name, struct err *err)
{
	return account_create(meta, name, true, false, err);
}

/* Reads the account record of name in txn; ERR_NOTFOUND when absent or of
 * the other kind. */
static int account_read(struct meta_txn *txn, const char *name, bool org,
			json_t **out, struct err *err)
{
	char key[ACCOUNT_NAME_MAX];
	int rc;

	*out = NULL;
	if (name_key(key, name, NULL) < 0)
		return err_set(err, ERR_NOTFOUND, "no %s named '%.64s'",
			       org ? "organisation" : "user", name ? name : "");
	rc = get_json(txn, META_KV_ACCOUNTS, key, out, err);
	if (rc == ERR_NOTFOUND ||
	    (rc == 0 && strcmp(jstr(*out, "type"), org ? "org" : "user"))) {
		json_decref(*out);
		*out = NULL;
		return err_set(err, ERR_NOTFOUND, "no %s named '%s'",
			       org ? "organisation" : "user", name);
	}
	return rc;
}

static void user_from_json(struct user_record *out, json_t *doc)
{
	memset(out, 0, sizeof(*out));
	str_copy(out->name, jstr(doc, "name"), sizeof(out->name));
	out->admin = json_is_true(json_object_get(doc, "admin"));
	out->created = json_integer_value(json_object_get(doc, "created"));
}

static int account_get(struct meta *meta, const char *name, bool org,
		       struct user_record *out, struct err *err)
{
	struct meta_txn *txn = NULL;
	json_t *doc = NULL;
	int rc;

	if ((rc = meta_txn_begin(&txn, meta, false, err)) < 0)
		return rc;
	if ((rc = account_read(txn, name, org, &doc, err)) == 0)
		user_from_json(out, doc);
	json_decref(doc);
	meta_txn_abort(txn);
	return rc;
}

int account_user_get(struct meta *meta, const char *name,
		     struct user_record *out, struct err *err)
{
	return account_get(meta, name, false, out, err);
}

int account_org_get(struct meta *meta, const char *name,
		    struct user_record *out, struct err *err)
{
	return account_get(meta, name, true, out, err);
}

bool account_is_org(struct meta *meta, const char *name)
{
	struct user_record rec;

	return account_org_get(meta, name, &rec, NULL) == 0;
}

/* --- members ----------------------------------------------------------------- */

/* "<lower user>/<lower org>" */
static int member_key(char *out, size_t size, const char *org,
		      const char *user)
{
	char lu[ACCOUNT_NAME_MAX], lo[ACCOUNT_NAME_MAX];

	if (name_key(lu, user, NULL) < 0 || name_key(lo, org, NULL) < 0)
		return ERR_INVALID;
	snprintf(out, size, "%s/%s", lu, lo);
	return 0;
}

int account_org_set_member(struct meta *meta, const char *org,
			   const char *user, enum role role, struct err *err)
{
	struct meta_txn *txn = NULL;
	json_t *o = NULL, *u = NULL;
	char key[2 * ACCOUNT_NAME_MAX + 2];
	int rc;

	if (role < ROLE_READ || role > ROLE_ADMIN)
		return err_set(err, ERR_INVALID, "a member's role is read, "
			       "write or admin");
	if ((rc = meta_txn_begin(&txn, meta, true, err)) < 0)
		return rc;
	if ((rc = account_read(txn, org, true, &o, err)) < 0 ||
	    (rc = account_read(txn, user, false, &u, err)) < 0)
		goto out;
	member_key(key, sizeof(key), org, user);
	rc = put_json(txn, META_KV_MEMBERS, key,
		      json_pack("{s:s, s:s, s:s}", "user", jstr(u, "name"),
				"org", jstr(o, "name"), "role", role_name(role)),
		      false, err);
out:
	json_decref(o);
	json_decref(u);
	if (rc < 0) {
		meta_txn_abort(txn);
		return rc;
	}
	return meta_txn_commit(txn, err);
}

enum role account_member_role(struct meta *meta, const char *org,
			      const char *user)
{
	char key[2 * ACCOUNT_NAME_MAX + 2], role[FIELD_MAX];

	if (member_key(key, sizeof(key), org, user) < 0)
		return ROLE_NONE;
	field_lookup(meta, META_KV_MEMBERS, key, "role", role, sizeof(role));
	return role_parse(role);
}

struct orgs_walk {
	account_org_fn fn;
	void *arg;
	struct err *err;
};

static int orgs_visit(const char *key, const char *json, void *arg)
{
	struct orgs_walk *w = arg;
	json_t *doc = json_loads(json, 0, NULL);
	int rc;

	if (!json_is_object(doc)) {
		json_decref(doc);
		return err_set(w->err, ERR_CORRUPT, "malformed member record "
			       "'%s'", key);
	}
	rc = w->fn(jstr(doc, "org"), role_parse(jstr(doc, "role")), w->arg);
	json_decref(doc);
	return rc;
}

int account_user_orgs(struct meta *meta, const char *user, account_org_fn fn,
		      void *arg, struct err *err)
{
	struct orgs_walk w = { fn, arg, err };
	char prefix[ACCOUNT_NAME_MAX + 1];
	char lower[ACCOUNT_NAME_MAX];

	if (name_key(lower, user, NULL) < 0)
		return 0;	/* no such user: no organisations */
	snprintf(prefix, sizeof(prefix), "%s/", lower);
	return kv_walk(meta, META_KV_MEMBERS, prefix, orgs_visit, &w, err);
}

/* --- tokens --------------------------------------------------------------------- */

/* hf_ and 34 characters of [A-Za-z0-9], drawn without modulo bias. */
static int token_generate(char out[TOKEN_MAX], struct err *err)
{
	unsigned char pool[64];
	size_t n = 0;

	memcpy(out, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
	while (n < TOKEN_RANDOM_LEN) {
		if (RAND_bytes(pool, sizeof(pool)) != 1)
			return err_set(err, ERR_FAIL, "cannot draw random bytes "
				       "for a token");
		for (size_t i = 0; i < sizeof(pool) && n < TOKEN_RANDOM_LEN; i++) {
			/* 248 = 4 * 62: bytes above it would favour some
			 * characters. */
			if (pool[i] < 248)
				out[sizeof(TOKEN_PREFIX) - 1 + n++] =
					token_alphabet[pool[i] % 62];
		}
	}
	out[sizeof(TOKEN_PREFIX) - 1 + n] = '\0';
	OPENSSL_cleanse(pool, sizeof(pool));
	return 0;
}

static bool label_valid(const char *label)
{
	size_t n = strlen(label);

	if (n == 0 || n >= ACCOUNT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)label[i];
		if (c < 0x20 || c >= 0x7f)
			return false;
	}
	return true;
}

static void token_from_json(struct token_record *out, const char *hash,
			    json_t *doc)
{
	memset(out, 0, sizeof(*out));
	str_copy(out->id, hash, sizeof(out->id));
	str_copy(out->user, jstr(doc, "user"), sizeof(out->user));
	str_copy(out->name, jstr(doc, "name"), sizeof(out->name));
	out->role = role_parse(jstr(doc, "role"));
	out->created = json_integer_value(json_object_get(doc, "created"));
	out->revoked = json_is_true(json_object_get(doc, "revoked"));
}

static json_t *token_to_json(const struct token_record *rec)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:b}", "user", rec->user,
			 "role", role_name(rec->role), "name", rec->name,
			 "created", (json_int_t)rec->created, "revoked",
			 rec->revoked);
}

int account_token_create(struct meta *meta, const char *user, enum role role,
			 const char *label, char token_out[TOKEN_MAX],
			 struct token_record *rec, struct err *err)
{
	struct meta_txn *txn = NULL;
	char token[TOKEN_MAX], hash[SHA256_HEX_LEN + 1];
	json_t *u = NULL;
	int rc;

	if (!label || !label[0])
		label = LABEL_DEFAULT;
	if (role < ROLE_READ || role > ROLE_ADMIN)
		return err_set(err, ERR_INVALID, "a token's role is read, write "
			       "or admin");
	if (!label_valid(label))
		return err_set(err, ERR_INVALID, "a token's name is 1 to %d "
			       "printable ASCII characters",
			       ACCOUNT_NAME_MAX - 1);
	if ((rc = token_generate(token, err)) < 0)
		return rc;
	sha256_hex(hash, token, strlen(token));
	if ((rc = meta_txn_begin(&txn, meta, true, err)) < 0)
		goto out;
	if ((rc = account_read(txn, user, false, &u, err)) < 0)
		goto out;
	memset(rec, 0, sizeof(*rec));
	str_copy(rec->id, hash, sizeof(rec->id));
	str_copy(rec->user, jstr(u, "name"), sizeof(rec->user));
	str_copy(rec->name, label, sizeof(rec->name));
	rec->role = role;
	rec->created = time(NULL);
	if ((rc = put_json(txn, META_KV_TOKENS, hash, token_to_json(rec), true,
			   err)) < 0)
		goto out;
	rc = meta_txn_commit(txn, err);
	txn = NULL;
	if (rc == 0)
		str_copy(token_out, token, TOKEN_MAX);
out:
	meta_txn_abort(txn);
	json_decref(u);
	OPENSSL_cleanse(token, sizeof(token));
	return rc;
}

int account_token_lookup(struct meta *meta, const char *token,
			 struct token_record *out, struct err *err)
{
	struct meta_txn *txn = NULL;
	char hash[SHA256_HEX_LEN + 1];
	json_t *doc = NULL;
	int rc;

	/* Hash first: the lookup costs the same whatever the token is, and
	 * what reaches the database is never the secret itself. */
	sha256_hex(hash, token, strlen(token));
	if ((rc = meta_txn_begin(&txn, meta, false, err)) < 0)
		return rc;
	rc = get_json(txn, META_KV_TOKENS, hash, &doc, err);
	meta_txn_abort(txn);
	if (rc == 0) {
		token_from_json(out, hash, doc);
		if (out->revoked || out->role == ROLE_NONE)
			rc = ERR_AUTH;
	}
	json_decref(doc);
	if (rc == ERR_NOTFOUND || rc == ERR_AUTH)
		return err_set(err, ERR_AUTH, "Invalid credentials in "
			       "Authorization header");
	return rc;
}

struct token_walk {
	const char *user;
	account_token_fn fn;
	void *arg;
	struct err *err;
	/* revoke: the hash that matched, and how many did */
	char match[SHA256_HEX_LEN + 1];
	int matches;
};

static int token_visit(const char *key, const char *json, void *arg)
{
	struct token_walk *w = arg;
	struct token_record rec;
	json_t *doc = json_loads(json, 0, NULL);

	if (!json_is_object(doc)) {
		json_decref(doc);
		return err_set(w->err, ERR_CORRUPT, "malformed token record");
	}
	token_from_json(&rec, key, doc);
	json_decref(doc);
	if (w->user && strcasecmp(w->user, rec.user))
		return 0;
	return w->fn(&rec, w->arg);
}

int account_token_list(struct meta *meta, const char *user,
		       account_token_fn fn, void *arg, struct err *err)
{
	struct token_walk w = { .user = user, .fn = fn, .arg = arg, .err = err };

	return kv_walk(meta, META_KV_TOKENS, "", token_visit, &w, err);
}

static int revoke_visit(const char *key, const char *json, void *arg)
{
	struct token_walk *w = arg;

	(void)json;
	if (w->matches++ == 0)
		str_copy(w->match, key, sizeof(w->match));
	return 0;
}

int account_token_revoke(struct meta *meta, const char *id_prefix,
			 struct err *err)
{
	struct token_walk w = { .err = err };
	struct meta_txn *txn = NULL;
	struct token_record rec;
	char prefix[SHA256_HEX_LEN + 1];
	json_t *doc = NULL;
	int rc;

	if (str_lower(prefix, sizeof(prefix), id_prefix) < 0 ||
	    strlen(prefix) < 6 || !is_hex(prefix, strlen(prefix)))
		return err_set(err, ERR_INVALID, "a token id is 6 to 64 hex "
			       "digits (see haven token list)");
	if ((rc = meta_txn_begin(&txn, meta, true, err)) < 0)
		return rc;
	if ((rc = meta_kv_foreach(txn, META_KV_TOKENS, prefix, revoke_visit, &w,
				  err)) < 0)
		goto out;
	if (w.matches == 0) {
		rc = err_set(err, ERR_NOTFOUND, "no token with id '%s'", prefix);
		goto out;
	}
	if (w.matches > 1) {
		rc = err_set(err, ERR_INVALID, "token id '%s' is ambiguous: give "
			     "more digits", prefix);
		goto out;
	}
	if ((rc = get_json(txn, META_KV_TOKENS, w.match, &doc, err)) < 0)
		goto out;
	token_from_json(&rec, w.match, doc);
	rec.revoked = true;
	if ((rc = put_json(txn, META_KV_TOKENS, w.match, token_to_json(&rec),
			   false, err)) < 0)
		goto out;
	rc = meta_txn_commit(txn, err);
	txn = NULL;
out:
	json_decref(doc);
	meta_txn_abort(txn);
	return rc;
}

/* --- access requests -------------------------------------------------------------- */

/* "<repo id>/<lower user>" */
static int access_key(char *out, size_t size, const char *repo_id,
		      const char *user)
{
	char lu[ACCOUNT_NAME_MAX];

	if (!is_hex(repo_id, REPO_ID_LEN) || name_key(lu, user, NULL) < 0)
		return ERR_INVALID;
	snprintf(out, size, "%s/%s", repo_id, lu);
	return 0;
}

int account_access_set(struct meta *meta, const char *repo_id,
		       const char *user, enum access_status status,
		       struct err *err)
{
	struct meta_txn *txn = NULL;
	char key[REPO_ID_LEN + ACCOUNT_NAME_MAX + 2];
	json_t *u = NULL;
	int rc;

	if (status == ACCESS_NONE)
		return err_set(err, ERR_INVALID, "an access request is pending, "
			       "accepted or rejected");
	if (access_key(key, sizeof(key), repo_id, user) < 0)
		return err_set(err, ERR_NOTFOUND, "no user named '%.64s'", user);
	if ((rc = meta_txn_begin(&txn, meta, true, err)) < 0)
		return rc;
	if ((rc = account_read(txn, user, false, &u, err)) < 0 ||
	    (rc = put_json(txn, META_KV_ACCESS, key,
			   json_pack("{s:s, s:s, s:I}", "user", jstr(u, "name"),
				     "status", access_status_name(status),
				     "time", (json_int_t)time(NULL)),
			   false, err)) < 0)
		goto out;
	rc = meta_txn_commit(txn, err);
	txn = NULL;
out:
	json_decref(u);
	meta_txn_abort(txn);
	return rc;
}

enum access_status account_access_get(struct meta *meta, const char *repo_id,
				      const char *user)
{
	char key[REPO_ID_LEN + ACCOUNT_NAME_MAX + 2], status[FIELD_MAX];

	if (access_key(key, sizeof(key), repo_id, user) < 0)
		return ACCESS_NONE;
	field_lookup(meta, META_KV_ACCESS, key, "status", status,
		     sizeof(status));
	return access_status_parse(status);
}

struct access_walk {
	account_access_fn fn;
	void *arg;
	struct err *err;
};

static int access_visit(const char *key, const char *json, void *arg)
{
	struct access_walk *w = arg;
	json_t *doc = json_loads(json, 0, NULL);
	int rc;

	if (!json_is_object(doc)) {
		json_decref(doc);
		return err_set(w->err, ERR_CORRUPT, "malformed access record "
			       "'%s'", key);
	}
	rc = w->fn(jstr(doc, "user"), access_status_parse(jstr(doc, "status")),
		   json_integer_value(json_object_get(doc, "time")), w->arg);
	json_decref(doc);
	return rc;
}

int account_access_list(struct meta *meta, const char *repo_id,
			account_access_fn fn, void *arg, struct err *err)
{
	struct access_walk w = { fn, arg, err };
	char prefix[REPO_ID_LEN + 2];

	if (!is_hex(repo_id, REPO_ID_LEN))
		return 0;
	snprintf(prefix, sizeof(prefix), "%s/", repo_id);
	return kv_walk(meta, META_KV_ACCESS, prefix, access_visit, &w, err);
}
