/*
 * test_bundle_manifest.c: the bundle manifest (ingest/bundle_manifest.h)
 * and keys (ingest/bundle_key.h): object names that could leave the
 * bundle, malformed fields and duplicates are refused; a manifest
 * survives formatting and parsing; a signature fails on any changed byte.
 */
#include "common/compat.h"

#include "ingest/bundle_key.h"
#include "ingest/bundle_manifest.h"
#include "tests/unit/test.h"
#include "tests/unit/test_tmp.h"

#define SHA_A "6f8d1ebc62020a1c5dbff28277976b00cfee6e15e21998c64436b1834588f1c5"
#define OID_A "ea260cb6d4ab0a7b9325594502fffe0ef087a4fd"

static int test_object_paths(void)
{
	int rc = -1;

	CHECK(bundle_object_path_valid("git/0.pack"));
	CHECK(bundle_object_path_valid("git/123456789.pack"));
	CHECK(bundle_object_path_valid("lfs/" SHA_A));
	CHECK(!bundle_object_path_valid("git/1234567890.pack"));
	CHECK(!bundle_object_path_valid("git/.pack"));
	CHECK(!bundle_object_path_valid("git/../0.pack"));
	CHECK(!bundle_object_path_valid("git/0.pack/"));
	CHECK(!bundle_object_path_valid("/git/0.pack"));
	CHECK(!bundle_object_path_valid("lfs/../../../../etc/passwd"));
	CHECK(!bundle_object_path_valid("lfs/" SHA_A "/x"));
	CHECK(!bundle_object_path_valid("lfs/6F8D1EBC62020A1C5DBFF28277976B00CFEE6E15E21998C64436B1834588F1C5"));
	CHECK(!bundle_object_path_valid("manifest.json"));
	CHECK(!bundle_object_path_valid(""));
	rc = 0;
out:
	return rc;
}

static int parse_text(const char *text, struct bundle_manifest **m,
		      struct err *err)
{
	return bundle_manifest_parse(m, text, strlen(text), err);
}

static const char good[] =
	"{\"format\": \"haven-bundle\", \"version\": 1, \"created\": \"x\","
	" \"key\": \"SHA256:00\", \"since\": null,"
	" \"repos\": [{\"type\": \"model\", \"name\": \"ns/m\", \"private\": true,"
	"  \"gated\": \"manual\", \"head\": \"refs/heads/main\","
	"  \"refs\": {\"refs/heads/main\": \"" OID_A "\"},"
	"  \"requires\": [], \"pack\": \"git/0.pack\", \"lfs\": [\"" SHA_A "\"]}],"
	" \"objects\": [{\"path\": \"git/0.pack\", \"size\": 10, \"sha256\": \"" SHA_A "\"},"
	"  {\"path\": \"lfs/" SHA_A "\", \"size\": 5, \"sha256\": \"" SHA_A "\"}]}";

static int test_parse_and_format(void)
{
	struct bundle_manifest *m = NULL, *m2 = NULL;
	struct err err = { 0 };
	char *text = NULL;
	size_t len;
	int rc = -1;

	CHECK(parse_text(good, &m, &err) == 0);
	CHECK(m->nrepos == 1 && m->nobjects == 2);
	CHECK(m->repos[0].private && !strcmp(m->repos[0].gated, "manual"));
	CHECK(!strcmp(m->repos[0].refs[0].name, "refs/heads/main"));
	CHECK(!strcmp(m->repos[0].pack, "git/0.pack"));
	CHECK(m->repos[0].nlfs == 1 && bundle_manifest_object(m, "lfs/" SHA_A));
	CHECK(bundle_manifest_format(&text, &len, m, &err) == 0);
	CHECK(bundle_manifest_parse(&m2, text, len, &err) == 0);
	CHECK(m2->objects[1].size == 5 && !strcmp(m2->repos[0].name, "ns/m"));
	rc = 0;
out:
	free(text);
	bundle_manifest_free(m);
	bundle_manifest_free(m2);
	return rc;
}

/* Replaces the first occurrence of from in good with to and parses. */
static int parse_changed(const char *from, const char *to)
{
	char buf[4096];
	const char *at = strstr(good, from);
	struct bundle_manifest *m = NULL;
	int rc;

	if (!at)
		return 1;
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - good), good, to,
		 at + strlen(from));
	rc = parse_text(buf, &m, NULL);
	bundle_manifest_free(m);
	return rc;
}

static int test_parse_refusals(void)
{
	int rc = -1;

	CHECK(parse_changed("\"version\": 1", "\"version\": 2") == ERR_INVALID);
	CHECK(parse_changed("haven-bundle", "other") == ERR_INVALID);
	CHECK(parse_changed("\"path\": \"git/0.pack\"", "\"path\": \"git/../x\"") == ERR_INVALID);
	CHECK(parse_changed("\"path\": \"lfs/", "\"path\": \"lfs/../") == ERR_INVALID);
	CHECK(parse_changed("\"name\": \"ns/m\"", "\"name\": \"../etc\"") == ERR_INVALID);
	CHECK(parse_changed("\"type\": \"model\"", "\"type\": \"kernel\"") == ERR_INVALID);
	CHECK(parse_changed("{\"refs/heads/main\"", "{\"refs/heads/../../config\"") == ERR_INVALID);
	CHECK(parse_changed("{\"refs/heads/main\"", "{\"refs/remotes/x\"") == ERR_INVALID);
	CHECK(parse_changed("\"refs/heads/main\": \"ea", "\"refs/heads/main\": \"EA") == ERR_INVALID);
	CHECK(parse_changed("\"head\": \"refs/heads/main\"", "\"head\": \"refs/tags/x\"") == ERR_INVALID);
	CHECK(parse_changed("\"pack\": \"git/0.pack\"", "\"pack\": \"git/1.pack\"") == ERR_INVALID);
	CHECK(parse_changed("\"size\": 10", "\"size\": -1") == ERR_INVALID);
	CHECK(parse_changed("\"gated\": \"manual\"", "\"gated\": true") == ERR_INVALID);
	/* An LFS object listed under another sha256. */
	CHECK(parse_changed("\"size\": 5, \"sha256\": \"6f", "\"size\": 5, \"sha256\": \"7f") == ERR_INVALID);
	/* Listed twice. */
	CHECK(parse_changed("\"objects\": [", "\"objects\": [{\"path\": \"git/0.pack\", \"size\": 1, \"sha256\": \"" SHA_A "\"}, ") == ERR_INVALID);
	/* Duplicate JSON keys. */
	CHECK(parse_changed("\"version\": 1", "\"version\": 1, \"version\": 1") == ERR_INVALID);
	CHECK(parse_text("not json", &(struct bundle_manifest *){ NULL }, NULL) == ERR_INVALID);
	rc = 0;
out:
	return rc;
}

static int test_sign_verify(void)
{
	struct bundle_key *priv = NULL, *pub = NULL, *other = NULL;
	unsigned char sig[BUNDLE_SIG_LEN];
	char dir[SCRATCH_LEN] = "", k1[300], p1[300], k2[300], p2[300];
	struct err err = { 0 };
	char msg[] = "manifest bytes";
	int rc = -1;

	CHECK(scratch_dir(dir, "bundle") == 0);
	snprintf(k1, sizeof(k1), "%s/k1", dir);
	snprintf(p1, sizeof(p1), "%s/k1.pub", dir);
	snprintf(k2, sizeof(k2), "%s/k2", dir);
	snprintf(p2, sizeof(p2), "%s/k2.pub", dir);
	CHECK(bundle_key_generate(k1, p1, &err) == 0);
	CHECK(bundle_key_generate(k1, p1, &err) == ERR_EXISTS);
	CHECK(bundle_key_generate(k2, p2, &err) == 0);
	CHECK(bundle_key_load_private(&priv, k1, &err) == 0);
	CHECK(bundle_key_load_public(&pub, p1, &err) == 0);
	CHECK(bundle_key_load_public(&other, p2, &err) == 0);
	CHECK(!strcmp(bundle_key_fingerprint(priv), bundle_key_fingerprint(pub)));
	CHECK(strcmp(bundle_key_fingerprint(pub), bundle_key_fingerprint(other)));
	CHECK(bundle_key_load_public(&(struct bundle_key *){ NULL }, k1, &err) == ERR_INVALID);
	CHECK(bundle_key_sign(priv, msg, strlen(msg), sig, &err) == 0);
	CHECK(bundle_key_verify(pub, msg, strlen(msg), sig, sizeof(sig)));
	CHECK(!bundle_key_verify(other, msg, strlen(msg), sig, sizeof(sig)));
	CHECK(!bundle_key_verify(pub, msg, strlen(msg), sig, sizeof(sig) - 1));
	msg[0] ^= 1;
	CHECK(!bundle_key_verify(pub, msg, strlen(msg), sig, sizeof(sig)));
	msg[0] ^= 1;
	sig[5] ^= 1;
	CHECK(!bundle_key_verify(pub, msg, strlen(msg), sig, sizeof(sig)));
	rc = 0;
out:
	bundle_key_free(priv);
	bundle_key_free(pub);
	bundle_key_free(other);
	rm_rf(dir);
	return rc;
}

int main(void)
{
	int rc;

	gitrepo_global_init();	/* ref names are checked by libgit2 */
	RUN(test_object_paths);
	RUN(test_parse_and_format);
	RUN(test_parse_refusals);
	RUN(test_sign_verify);
	rc = TEST_REPORT();
	gitrepo_global_shutdown();
	return rc;
}
