/*
 * test_lfs_sign.c: signed LFS transfer URLs (every signed field is bound,
 * expiry is enforced) and the server secret file.
 */
#include "common/compat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/lfs_sign.h"
#include "tests/unit/test.h"

#define OID "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
#define RID "0123456789abcdef0123456789abcdef"

static const unsigned char secret[LFS_SECRET_LEN] = "0123456789abcdef0123456789abcde";

static struct lfs_grant grant(enum lfs_op op, uint32_t part, int64_t exp)
{
	struct lfs_grant g;

	memset(&g, 0, sizeof(g));
	g.op = op;
	memcpy(g.repo_id, RID, sizeof(RID));
	memcpy(g.oid, OID, sizeof(OID));
	g.size = 123456789;
	g.part = part;
	g.expires = exp;
	return g;
}

/* Splits a signed URL into the path after /api/lfs/ and exp, sig. */
static int split(const char *url, char *path, char *exp, char *sig)
{
	const char *q = strchr(url, '?'), *e, *s;

	if (strncmp(url, "/api/lfs/", 9) || !q)
		return -1;
	memcpy(path, url + 9, (size_t)(q - url - 9));
	path[q - url - 9] = '\0';
	e = strstr(q, "exp=");
	s = strstr(q, "&sig=");
	if (!e || !s)
		return -1;
	memcpy(exp, e + 4, (size_t)(s - e - 4));
	exp[s - e - 4] = '\0';
	snprintf(sig, 80, "%s", s + 5);
	return 0;
}

static int test_lfs_sign_roundtrip(void)
{
	struct lfs_grant g = grant(LFS_OP_PART, 7, 1000), got;
	char url[1024], path[512], exp[32], sig[80];
	struct err err = { 0 };

	CHECK(lfs_sign_url(url, sizeof(url), secret, &g, &err) == 0);
	CHECK(strstr(url, "/api/lfs/part/" RID "/" OID "/123456789/7?exp=1000&sig="));
	CHECK(split(url, path, exp, sig) == 0);
	CHECK(lfs_sign_verify(&got, secret, path, exp, sig, 999, &err) == 0);
	CHECK(got.op == LFS_OP_PART && got.part == 7 && got.size == 123456789);
	CHECK(!strcmp(got.oid, OID) && !strcmp(got.repo_id, RID));
	CHECK(got.expires == 1000);
	/* The last second still counts. */
	CHECK(lfs_sign_verify(&got, secret, path, exp, sig, 1000, &err) == 0);
	return 0;
out:
	return 1;
}

static int test_lfs_sign_expired(void)
{
	struct lfs_grant g = grant(LFS_OP_UPLOAD, 0, 1000), got;
	char url[1024], path[512], exp[32], sig[80];
	struct err err = { 0 };

	CHECK(lfs_sign_url(url, sizeof(url), secret, &g, &err) == 0);
	CHECK(split(url, path, exp, sig) == 0);
	CHECK(lfs_sign_verify(&got, secret, path, exp, sig, 1001, &err) ==
	      ERR_FORBIDDEN);
	CHECK(strstr(err.msg, "expired 1 seconds ago"));
	/* Moving the expiry forward breaks the signature. */
	CHECK(lfs_sign_verify(&got, secret, path, "999999", sig, 1001, &err) ==
	      ERR_FORBIDDEN);
	CHECK(strstr(err.msg, "invalid signature"));
	return 0;
out:
	return 1;
}

/* Every field of the path is covered by the signature. */
static int test_lfs_sign_fields_bound(void)
{
	struct lfs_grant g = grant(LFS_OP_UPLOAD, 0, 5000), got;
	char url[1024], path[512], exp[32], sig[80];
	const char *forged[] = {
		"download/" RID "/" OID "/123456789",
		"verify/" RID "/" OID "/123456789",
		"upload/" RID "/" OID "/123456788",
		"upload/1123456789abcdef0123456789abcdef/" OID "/123456789",
		"upload/" RID "/5d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393/123456789",
	};
	struct err err = { 0 };

	CHECK(lfs_sign_url(url, sizeof(url), secret, &g, &err) == 0);
	CHECK(split(url, path, exp, sig) == 0);
	CHECK(lfs_sign_verify(&got, secret, path, exp, sig, 10, &err) == 0);
	for (size_t i = 0; i < ARRAY_SIZE(forged); i++)
		CHECK(lfs_sign_verify(&got, secret, forged[i], exp, sig, 10,
				      &err) == ERR_FORBIDDEN);
	/* A different secret, a flipped digit, a short or missing sig. */
	{
		unsigned char other[LFS_SECRET_LEN];
		memcpy(other, secret, sizeof(other));
		other[0] ^= 1;
		CHECK(lfs_sign_verify(&got, other, path, exp, sig, 10, &err) ==
		      ERR_FORBIDDEN);
	}
	sig[10] = sig[10] == '0' ? '1' : '0';
	CHECK(lfs_sign_verify(&got, secret, path, exp, sig, 10, &err) ==
	      ERR_FORBIDDEN);
	sig[63] = '\0';
	CHECK(lfs_sign_verify(&got, secret, path, exp, sig, 10, &err) ==
	      ERR_FORBIDDEN);
	CHECK(lfs_sign_verify(&got, secret, path, exp, NULL, 10, &err) ==
	      ERR_FORBIDDEN);
	CHECK(lfs_sign_verify(&got, secret, path, NULL, sig, 10, &err) ==
	      ERR_FORBIDDEN);
	CHECK(lfs_sign_verify(&got, secret, path, "-5", sig, 10, &err) ==
	      ERR_FORBIDDEN);
	return 0;
out:
	return 1;
}

static int test_lfs_sign_bad_paths(void)
{
	const char *bad[] = {
		"", "upload", "upload/" RID "/" OID, "nope/" RID "/" OID "/1",
		"upload/" RID "/" OID "/1/2", "part/" RID "/" OID "/1",
		"part/" RID "/" OID "/1/0", "upload/" RID "/" OID "/-1",
		"upload/" RID "/" OID "/1x", "upload/" RID "/" OID "/",
		"upload/" RID "/4D7A214614AB2935C943F9E0FF69D22EADBB8F32B1258DAAA5E2CA24D17E2393/1",
		"upload/" RID "x/" OID "/1", "upload/" RID "/" OID "/1/",
		"upload/" RID "/" OID "/99999999999999999999",
	};
	struct lfs_grant got;
	struct err err = { 0 };
	char sig[LFS_SIG_HEX_LEN + 1];

	memset(sig, 'a', LFS_SIG_HEX_LEN);
	sig[LFS_SIG_HEX_LEN] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (lfs_sign_verify(&got, secret, bad[i], "10", sig, 1, &err) !=
		    ERR_NOTFOUND) {
			fprintf(stderr, "  accepted path '%s'\n", bad[i]);
			goto out;
		}
	}
	return 0;
out:
	return 1;
}

static int test_lfs_sign_rejects_bad_grant(void)
{
	struct lfs_grant g = grant(LFS_OP_UPLOAD, 3, 10);
	char url[1024];

	/* A part number only goes with a part URL, and vice versa. */
	CHECK(lfs_sign_url(url, sizeof(url), secret, &g, NULL) == ERR_INVALID);
	g = grant(LFS_OP_PART, 0, 10);
	CHECK(lfs_sign_url(url, sizeof(url), secret, &g, NULL) == ERR_INVALID);
	g = grant(LFS_OP_UPLOAD, 0, 10);
	CHECK(lfs_sign_url(url, 40, secret, &g, NULL) == ERR_TOOBIG);
	return 0;
out:
	return 1;
}

static int test_lfs_secret_file(void)
{
	char dir[] = "/tmp/haven-test-lfs-sign-XXXXXX", path[256];
	unsigned char a[LFS_SECRET_LEN], b[LFS_SECRET_LEN];
	static const unsigned char zero[LFS_SECRET_LEN];
	struct err err = { 0 };
	struct stat st;
	FILE *f;
	int rc = 1;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/secret", dir);
	CHECK(lfs_secret_load(a, dir, &err) == 0);
	CHECK(memcmp(a, zero, sizeof(a)) != 0);
	CHECK(stat(path, &st) == 0 && st.st_size == LFS_SECRET_LEN);
	CHECK((st.st_mode & 0777) == 0600);
	/* A restart reads the same secret back. */
	CHECK(lfs_secret_load(b, dir, &err) == 0);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	/* A damaged file is an error, not a silent new secret. */
	CHECK((f = fopen(path, "ab")) != NULL);
	fputc('x', f);
	fclose(f);
	CHECK(lfs_secret_load(b, dir, &err) == ERR_CORRUPT);
	CHECK(strstr(err.msg, "secret"));
	CHECK(truncate(path, 5) == 0);
	CHECK(lfs_secret_load(b, dir, &err) == ERR_CORRUPT);
	rc = 0;
out:
	unlink(path);
	rmdir(dir);
	return rc;
}

int main(void)
{
	RUN(test_lfs_sign_roundtrip);
	RUN(test_lfs_sign_expired);
	RUN(test_lfs_sign_fields_bound);
	RUN(test_lfs_sign_bad_paths);
	RUN(test_lfs_sign_rejects_bad_grant);
	RUN(test_lfs_secret_file);
	return TEST_REPORT();
}
