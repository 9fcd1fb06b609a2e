/*
 * test_accounts.c: users, organisations, tokens and access requests
 * (storage/accounts.h), and the repo-record update settings rely on
 * (meta_repo_update). Each test opens a fresh environment in its own
 * scratch folder, the way the admin commands and the server share one.
 */
#include "common/compat.h"

#include "common/err.h"
#include "common/util.h"
#include "storage/accounts.h"
#include "storage/hash.h"
#include "storage/meta.h"
#include "tests/unit/test.h"
#include "tests/unit/test_tmp.h"

#define REPO_A "0123456789abcdef0123456789abcdef"
#define REPO_B "fedcba9876543210fedcba9876543210"

static int test_roles_and_names(void)
{
	int rc = -1;

	CHECK(role_parse("read") == ROLE_READ && role_parse("write") == ROLE_WRITE);
	CHECK(role_parse("admin") == ROLE_ADMIN && role_parse("Admin") == ROLE_NONE);
	CHECK(role_parse("") == ROLE_NONE && role_parse(NULL) == ROLE_NONE);
	CHECK(!strcmp(role_name(ROLE_WRITE), "write"));
	CHECK(ROLE_READ < ROLE_WRITE && ROLE_WRITE < ROLE_ADMIN);
	CHECK(access_status_parse("accepted") == ACCESS_ACCEPTED);
	CHECK(access_status_parse("nope") == ACCESS_NONE);
	CHECK(!strcmp(access_status_name(ACCESS_PENDING), "pending"));
	CHECK(account_name_valid("alice") && account_name_valid("Acme-Corp_1.x"));
	CHECK(!account_name_valid("") && !account_name_valid("a/b"));
	CHECK(!account_name_valid("-a") && !account_name_valid("a..b"));
	CHECK(!account_name_valid("a b") && !account_name_valid("a\n"));
	CHECK(!account_name_valid("0123456789012345678901234567890123456789"
				  "012345678901234567890123"));
	rc = 0;
out:
	return rc;
}

static int test_users_and_orgs_share_names(void)
{
	struct meta *meta = NULL;
	struct user_record u;
	char dir[SCRATCH_LEN] = "";
	struct err e = { 0 };
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "accounts") == 0);
	CHECK(account_user_create(meta, "Alice", false, NULL) == 0);
	CHECK(account_user_create(meta, "root", true, NULL) == 0);
	CHECK(account_org_create(meta, "acme", NULL) == 0);
	CHECK(account_user_create(meta, "alice", false, &e) == ERR_EXISTS);
	CHECK(strstr(e.msg, "alice"));
	CHECK(account_org_create(meta, "ALICE", NULL) == ERR_EXISTS);
	CHECK(account_user_create(meta, "Acme", false, NULL) == ERR_EXISTS);
	CHECK(account_user_create(meta, "no/slash", false, NULL) == ERR_INVALID);
	CHECK(account_user_get(meta, "alice", &u, NULL) == 0);
	CHECK(!strcmp(u.name, "Alice") && !u.admin && u.created > 0);
	CHECK(account_user_get(meta, "ROOT", &u, NULL) == 0 && u.admin);
	CHECK(account_user_get(meta, "acme", &u, NULL) == ERR_NOTFOUND);
	CHECK(account_user_get(meta, "nobody", &u, NULL) == ERR_NOTFOUND);
	CHECK(account_user_get(meta, "bad name", &u, NULL) == ERR_NOTFOUND);
	CHECK(account_is_org(meta, "Acme") && !account_is_org(meta, "alice"));
	CHECK(!account_is_org(meta, "nobody"));
	rc = 0;
out:
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

struct org_seen {
	char names[4][ACCOUNT_NAME_MAX];
	enum role roles[4];
	int count;
};

static int collect_org(const char *org, enum role role, void *arg)
{
	struct org_seen *s = arg;

	if (s->count < 4) {
		str_copy(s->names[s->count], org, ACCOUNT_NAME_MAX);
		s->roles[s->count] = role;
	}
	s->count++;
	return 0;
}

static int test_members(void)
{
	struct meta *meta = NULL;
	struct org_seen seen = { 0 };
	char dir[SCRATCH_LEN] = "";
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "accounts") == 0);
	CHECK(account_user_create(meta, "alice", false, NULL) == 0);
	CHECK(account_user_create(meta, "alic", false, NULL) == 0);
	CHECK(account_org_create(meta, "Acme", NULL) == 0);
	CHECK(account_org_create(meta, "beta", NULL) == 0);
	CHECK(account_org_set_member(meta, "acme", "Alice", ROLE_READ, NULL) == 0);
	CHECK(account_member_role(meta, "ACME", "alice") == ROLE_READ);
	CHECK(account_org_set_member(meta, "acme", "alice", ROLE_ADMIN, NULL) == 0);
	CHECK(account_member_role(meta, "acme", "alice") == ROLE_ADMIN);
	CHECK(account_org_set_member(meta, "beta", "alice", ROLE_WRITE, NULL) == 0);
	CHECK(account_org_set_member(meta, "beta", "alic", ROLE_READ, NULL) == 0);
	CHECK(account_member_role(meta, "acme", "alic") == ROLE_NONE);
	CHECK(account_member_role(meta, "nothing", "alice") == ROLE_NONE);
	/* Unknown org, unknown user, a user as org, a bad role. */
	CHECK(account_org_set_member(meta, "gamma", "alice", ROLE_READ, NULL) ==
	      ERR_NOTFOUND);
	CHECK(account_org_set_member(meta, "acme", "bob", ROLE_READ, NULL) ==
	      ERR_NOTFOUND);
	CHECK(account_org_set_member(meta, "alic", "alice", ROLE_READ, NULL) ==
	      ERR_NOTFOUND);
	CHECK(account_org_set_member(meta, "acme", "alice", ROLE_NONE, NULL) ==
	      ERR_INVALID);
	/* "alic" is a prefix of "alice": the walk must not mix them up. */
	CHECK(account_user_orgs(meta, "ALICE", collect_org, &seen, NULL) == 0);
	CHECK(seen.count == 2);
	CHECK(!strcmp(seen.names[0], "Acme") && seen.roles[0] == ROLE_ADMIN);
	CHECK(!strcmp(seen.names[1], "beta") && seen.roles[1] == ROLE_WRITE);
	memset(&seen, 0, sizeof(seen));
	CHECK(account_user_orgs(meta, "alic", collect_org, &seen, NULL) == 0);
	CHECK(seen.count == 1 && seen.roles[0] == ROLE_READ);
	memset(&seen, 0, sizeof(seen));
	CHECK(account_user_orgs(meta, "nobody", collect_org, &seen, NULL) == 0);
	CHECK(seen.count == 0);
	rc = 0;
out:
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int token_format_ok(const char *t)
{
	if (strlen(t) != 37 || strncmp(t, "hf_", 3))
		return 0;
	for (const char *p = t + 3; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9')))
			return 0;
	}
	return 1;
}

static int count_token(const struct token_record *rec, void *arg)
{
	(void)rec;
	(*(int *)arg)++;
	return 0;
}

static int test_tokens(void)
{
	struct meta *meta = NULL;
	struct token_record rec, got;
	char dir[SCRATCH_LEN] = "", t1[TOKEN_MAX], t2[TOKEN_MAX];
	char hash[SHA256_HEX_LEN + 1];
	struct err e = { 0 };
	int rc = -1, n = 0;

	CHECK(scratch_meta(&meta, dir, "accounts") == 0);
	CHECK(account_user_create(meta, "Alice", false, NULL) == 0);
	CHECK(account_user_create(meta, "bob", false, NULL) == 0);
	CHECK(account_org_create(meta, "acme", NULL) == 0);
	CHECK(account_token_create(meta, "alice", ROLE_WRITE, "laptop", t1, &rec,
				   NULL) == 0);
	CHECK(token_format_ok(t1));
	sha256_hex(hash, t1, strlen(t1));
	CHECK(strlen(rec.id) == TOKEN_ID_LEN && !strncmp(rec.id, hash, TOKEN_ID_LEN));
	CHECK(!strcmp(rec.user, "Alice") && !strcmp(rec.name, "laptop"));
	CHECK(rec.role == ROLE_WRITE && !rec.revoked && rec.created > 0);
	CHECK(account_token_create(meta, "bob", ROLE_READ, NULL, t2, &rec,
				   NULL) == 0);
	CHECK(token_format_ok(t2) && strcmp(t1, t2));
	CHECK(rec.name[0]);	/* a default label */
	/* No token for an organisation, an unknown user, or without a role. */
	CHECK(account_token_create(meta, "acme", ROLE_READ, NULL, t2, &rec,
				   NULL) == ERR_NOTFOUND);
	CHECK(account_token_create(meta, "carol", ROLE_READ, NULL, t2, &rec,
				   NULL) == ERR_NOTFOUND);
	CHECK(account_token_create(meta, "bob", ROLE_NONE, NULL, t2, &rec,
				   NULL) == ERR_INVALID);
	CHECK(account_token_create(meta, "bob", ROLE_READ, "bad\nlabel", t2,
				   &rec, NULL) == ERR_INVALID);

	CHECK(account_token_lookup(meta, t1, &got, NULL) == 0);
	CHECK(!strcmp(got.user, "Alice") && got.role == ROLE_WRITE);
	CHECK(!strcmp(got.name, "laptop") && !strncmp(got.id, hash, TOKEN_ID_LEN));
	CHECK(account_token_lookup(meta, "hf_nothing", &got, &e) == ERR_AUTH);
	CHECK(!strcmp(e.msg, "Invalid credentials in Authorization header"));
	CHECK(account_token_lookup(meta, "", &got, NULL) == ERR_AUTH);

	CHECK(account_token_list(meta, NULL, count_token, &n, NULL) == 0 && n == 2);
	n = 0;
	CHECK(account_token_list(meta, "ALICE", count_token, &n, NULL) == 0 && n == 1);
	n = 0;
	CHECK(account_token_list(meta, "nobody", count_token, &n, NULL) == 0 && n == 0);

	/* Revoke by a prefix of the id; a short or non-hex id is refused. */
	CHECK(account_token_revoke(meta, "abc", NULL) == ERR_INVALID);
	CHECK(account_token_revoke(meta, "zzzzzzzz", NULL) == ERR_INVALID);
	hash[8] = '\0';
	CHECK(account_token_revoke(meta, hash, NULL) == 0);
	CHECK(account_token_lookup(meta, t1, &got, &e) == ERR_AUTH);
	CHECK(account_token_lookup(meta, t2, &got, NULL) == 0);
	rc = 0;
out:
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int test_revoke_unknown_id(void)
{
	struct meta *meta = NULL;
	struct token_record rec;
	char dir[SCRATCH_LEN] = "", t[TOKEN_MAX], hex[2] = "0";
	int rc = -1, made = 0;

	CHECK(scratch_meta(&meta, dir, "accounts") == 0);
	CHECK(account_user_create(meta, "alice", false, NULL) == 0);
	/* Among 40 random ids, "000000" and "ffffff" cannot both be
	 * prefixes (odds about 1e-12). */
	for (int i = 0; i < 40; i++)
		made += account_token_create(meta, "alice", ROLE_READ, NULL, t,
					     &rec, NULL) == 0;
	CHECK(made == 40);
	CHECK(account_token_revoke(meta, "000000", NULL) == ERR_NOTFOUND ||
	      account_token_revoke(meta, "ffffff", NULL) == ERR_NOTFOUND);
	/* Revoking with fewer than 6 digits is refused outright. */
	CHECK(account_token_revoke(meta, hex, NULL) == ERR_INVALID);
	rc = 0;
out:
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

struct access_seen {
	int count;
	char last_user[ACCOUNT_NAME_MAX];
	enum access_status last;
};

static int collect_access(const char *user, enum access_status st,
			  int64_t time, void *arg)
{
	struct access_seen *s = arg;

	s->count += time > 0;
	str_copy(s->last_user, user, sizeof(s->last_user));
	s->last = st;
	return 0;
}

static int test_access_requests(void)
{
	struct meta *meta = NULL;
	struct access_seen seen = { 0 };
	char dir[SCRATCH_LEN] = "";
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "accounts") == 0);
	CHECK(account_user_create(meta, "Bob", false, NULL) == 0);
	CHECK(account_user_create(meta, "carol", false, NULL) == 0);
	CHECK(account_access_get(meta, REPO_A, "bob") == ACCESS_NONE);
	CHECK(account_access_set(meta, REPO_A, "bob", ACCESS_PENDING, NULL) == 0);
	CHECK(account_access_get(meta, REPO_A, "BOB") == ACCESS_PENDING);
	CHECK(account_access_get(meta, REPO_B, "bob") == ACCESS_NONE);
	CHECK(account_access_set(meta, REPO_A, "bob", ACCESS_ACCEPTED, NULL) == 0);
	CHECK(account_access_get(meta, REPO_A, "bob") == ACCESS_ACCEPTED);
	CHECK(account_access_set(meta, REPO_A, "carol", ACCESS_REJECTED, NULL) == 0);
	CHECK(account_access_set(meta, REPO_B, "carol", ACCESS_PENDING, NULL) == 0);
	CHECK(account_access_set(meta, REPO_A, "dave", ACCESS_PENDING, NULL) ==
	      ERR_NOTFOUND);
	CHECK(account_access_set(meta, REPO_A, "bob", ACCESS_NONE, NULL) ==
	      ERR_INVALID);
	CHECK(account_access_set(meta, "not-an-id", "bob", ACCESS_PENDING, NULL) < 0);
	CHECK(account_access_list(meta, REPO_A, collect_access, &seen, NULL) == 0);
	CHECK(seen.count == 2 && !strcmp(seen.last_user, "carol"));
	CHECK(seen.last == ACCESS_REJECTED);
	memset(&seen, 0, sizeof(seen));
	CHECK(account_access_list(meta, REPO_B, collect_access, &seen, NULL) == 0);
	CHECK(seen.count == 1 && seen.last == ACCESS_PENDING);
	rc = 0;
out:
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

static int test_repo_update(void)
{
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct repo_record rec, got;
	char dir[SCRATCH_LEN] = "";
	int rc = -1;

	CHECK(scratch_meta(&meta, dir, "accounts") == 0);
	memset(&rec, 0, sizeof(rec));
	str_copy(rec.id, REPO_A, sizeof(rec.id));
	str_copy(rec.type, "model", sizeof(rec.type));
	str_copy(rec.name, "Acme/Model", sizeof(rec.name));
	rec.created = 1700000000;
	CHECK(meta_txn_begin(&txn, meta, true, NULL) == 0);
	CHECK(meta_repo_insert(txn, &rec, NULL) == 0);
	rec.private = true;
	str_copy(rec.gated, "manual", sizeof(rec.gated));
	CHECK(meta_repo_update(txn, &rec, NULL) == 0);
	CHECK(meta_txn_commit(txn, NULL) == 0);
	txn = NULL;
	CHECK(meta_txn_begin(&txn, meta, false, NULL) == 0);
	CHECK(meta_repo_get(txn, "model", "acme/model", &got, NULL) == 0);
	CHECK(got.private && !strcmp(got.gated, "manual"));
	CHECK(meta_repo_get_by_id(txn, REPO_A, &got, NULL) == 0 && got.private);
	meta_txn_abort(txn);
	txn = NULL;
	/* No record: nothing to update. */
	str_copy(rec.name, "Acme/Other", sizeof(rec.name));
	CHECK(meta_txn_begin(&txn, meta, true, NULL) == 0);
	CHECK(meta_repo_update(txn, &rec, NULL) == ERR_NOREPO);
	rc = 0;
out:
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return rc;
}

int main(void)
{
	RUN(test_roles_and_names);
	RUN(test_users_and_orgs_share_names);
	RUN(test_members);
	RUN(test_tokens);
	RUN(test_revoke_unknown_id);
	RUN(test_access_requests);
	RUN(test_repo_update);
	return TEST_REPORT();
}
