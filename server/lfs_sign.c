/*
 * lfs_sign.c: HMAC-SHA256 signed URLs for LFS transfers and the secret
 * file that keys them; see lfs_sign.h for the URL form.
 *
 * The signed message lists every field on its own line behind a version
 * tag, so no two grants share a message: fields are validated (hex ids,
 * decimal numbers) before they are signed or trusted.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/util.h"
#include "server/app.h"
#include "server/lfs_sign.h"

_Static_assert(LFS_SECRET_LEN == APP_SECRET_LEN,
	       "the app secret signs LFS URLs");

static const char *const op_names[] = {
	[LFS_OP_UPLOAD] = "upload",
	[LFS_OP_PART] = "part",
	[LFS_OP_COMPLETE] = "complete",
	[LFS_OP_VERIFY] = "verify",
	[LFS_OP_DOWNLOAD] = "download",
};

const char *lfs_op_name(enum lfs_op op)
{
	return (size_t)op < ARRAY_SIZE(op_names) ? op_names[op] : "?";
}

static bool grant_valid(const struct lfs_grant *g)
{
	return (size_t)g->op < ARRAY_SIZE(op_names) &&
	       is_hex(g->repo_id, REPO_ID_LEN) &&
	       is_hex(g->oid, SHA256_HEX_LEN) &&
	       (g->op == LFS_OP_PART) == (g->part > 0) && g->expires >= 0;
}

/* The MAC of g as 64 hex digits. */
static int grant_mac(char out[LFS_SIG_HEX_LEN + 1],
		     const unsigned char secret[LFS_SECRET_LEN],
		     const struct lfs_grant *g)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char msg[512];
	int n;

	n = snprintf(msg, sizeof(msg),
		     "haven-lfs-v1\n%s\n%s\n%s\n%" PRIu64 "\n%" PRIu32 "\n%" PRId64,
		     op_names[g->op], g->repo_id, g->oid, g->size, g->part,
		     g->expires);
	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    !HMAC(EVP_sha256(), secret, LFS_SECRET_LEN,
		  (const unsigned char *)msg, (size_t)n, mac, &mac_len) ||
	    mac_len * 2 != LFS_SIG_HEX_LEN)
		return ERR_FAIL;
	hex_encode(out, mac, mac_len);
	return 0;
}

int lfs_sign_url(char *out, size_t size,
		 const unsigned char secret[LFS_SECRET_LEN],
		 const struct lfs_grant *g, struct err *err)
{
	char sig[LFS_SIG_HEX_LEN + 1], part[16] = "";
	int n;

	if (!grant_valid(g))
		return err_set(err, ERR_INVALID, "malformed LFS grant");
	if (grant_mac(sig, secret, g) < 0)
		return err_set(err, ERR_FAIL, "cannot sign the LFS URL");
	if (g->part)
		snprintf(part, sizeof(part), "/%" PRIu32, g->part);
	n = snprintf(out, size, "/api/lfs/%s/%s/%s/%" PRIu64 "%s?exp=%" PRId64
		     "&sig=%s", op_names[g->op], g->repo_id, g->oid, g->size,
		     part, g->expires, sig);
	if (n < 0 || (size_t)n >= size)
		return err_set(err, ERR_TOOBIG, "LFS URL too long");
	return 0;
}

/* Parses a decimal number of at most 19 digits (no sign, no spaces). */
static bool parse_dec(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* Splits "<op>/<repo id>/<oid>/<size>[/<part>]" into g. */
static bool parse_path(struct lfs_grant *g, const char *path)
{
	const char *parts[6];
	size_t lens[6], count = 0;
	const char *p = path;
	uint64_t v;

	while (count < ARRAY_SIZE(parts)) {
		size_t n = strcspn(p, "/");
		parts[count] = p;
		lens[count++] = n;
		if (!p[n])
			break;
		p += n + 1;
	}
	if (count < 4 || count > 5)
		return false;
	g->op = ARRAY_SIZE(op_names);
	for (size_t i = 0; i < ARRAY_SIZE(op_names); i++) {
		if (lens[0] == strlen(op_names[i]) &&
		    !memcmp(parts[0], op_names[i], lens[0]))
			g->op = (enum lfs_op)i;
	}
	if ((size_t)g->op == ARRAY_SIZE(op_names) ||
	    lens[1] != REPO_ID_LEN || lens[2] != SHA256_HEX_LEN ||
	    (count == 5) != (g->op == LFS_OP_PART))
		return false;
	memcpy(g->repo_id, parts[1], REPO_ID_LEN);
	g->repo_id[REPO_ID_LEN] = '\0';
	memcpy(g->oid, parts[2], SHA256_HEX_LEN);
	g->oid[SHA256_HEX_LEN] = '\0';
	if (!is_hex(g->repo_id, REPO_ID_LEN) || !is_hex(g->oid, SHA256_HEX_LEN) ||
	    !parse_dec(parts[3], lens[3], &g->size))
		return false;
	g->part = 0;
	if (count == 5) {
		if (!parse_dec(parts[4], lens[4], &v) || v == 0 || v > UINT32_MAX)
			return false;
		g->part = (uint32_t)v;
	}
	return true;
}

int lfs_sign_verify(struct lfs_grant *out,
		    const unsigned char secret[LFS_SECRET_LEN],
		    const char *path, const char *exp, const char *sig,
		    int64_t now, struct err *err)
{
	char want[LFS_SIG_HEX_LEN + 1];
	struct lfs_grant g;
	uint64_t e;

	memset(&g, 0, sizeof(g));
	if (!parse_path(&g, path))
		return err_set(err, ERR_NOTFOUND, "no such LFS transfer URL");
	if (!exp || !sig)
		return err_set(err, ERR_FORBIDDEN, "this LFS transfer URL is not "
			       "signed; use the href the batch API returned");
	if (!parse_dec(exp, strlen(exp), &e) || e > INT64_MAX ||
	    strlen(sig) != LFS_SIG_HEX_LEN)
		return err_set(err, ERR_FORBIDDEN, "malformed signature on the "
			       "LFS transfer URL");
	g.expires = (int64_t)e;
	if (grant_mac(want, secret, &g) < 0)
		return err_set(err, ERR_FAIL, "cannot check the LFS URL");
	if (CRYPTO_memcmp(want, sig, LFS_SIG_HEX_LEN) != 0)
		return err_set(err, ERR_FORBIDDEN, "invalid signature on the LFS "
			       "transfer URL");
	if (g.expires < now)
		return err_set(err, ERR_FORBIDDEN, "this LFS transfer URL expired "
			       "%" PRId64 " seconds ago; ask the batch API for "
			       "a new one", now - g.expires);
	*out = g;
	return 0;
}

static int read_secret(unsigned char out[LFS_SECRET_LEN], const char *path,
		       struct err *err)
{
	unsigned char buf[LFS_SECRET_LEN + 1];
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_FAIL,
			       "cannot open '%s': %s", path, strerror(errno));
	while (got < sizeof(buf)) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_set(err, ERR_FAIL, "cannot read '%s': %s", path,
				strerror(errno));
			close(fd);
			OPENSSL_cleanse(buf, sizeof(buf));
			return ERR_FAIL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != LFS_SECRET_LEN) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return err_set(err, ERR_CORRUPT, "'%s' holds %zu%s bytes, not %d: "
			       "remove it to make a new secret (upload URLs "
			       "handed out before become invalid)", path, got,
			       got > LFS_SECRET_LEN ? " or more" : "",
			       LFS_SECRET_LEN);
	}
	memcpy(out, buf, LFS_SECRET_LEN);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

/* Writes a secret (given, or new when given is NULL) to a temporary file
 * and links it into place; link (unlike rename) never replaces a secret
 * another process made first. A given secret replaces the old one. */
static int create_secret(const char *data_dir, const char *path,
			 const unsigned char *given, struct err *err)
{
	unsigned char raw[LFS_SECRET_LEN];
	char tmp[4200];
	int fd = -1, rc = ERR_FAIL;

	snprintf(tmp, sizeof(tmp), "%s/secret.tmp-XXXXXX", data_dir);
	if (given)
		memcpy(raw, given, sizeof(raw));
	else if (RAND_bytes(raw, sizeof(raw)) != 1)
		return err_set(err, ERR_FAIL, "cannot draw random bytes for "
			       "the server secret");
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		tmp[0] = '\0';
		err_set(err, ERR_FAIL, "cannot create a temporary file in "
			"'%s': %s", data_dir, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) < 0 || write_full(fd, raw, sizeof(raw)) < 0 ||
	    fsync(fd) < 0) {
		err_set(err, ERR_FAIL, "cannot write '%s': %s", tmp,
			strerror(errno));
		goto out;
	}
	if (given ? rename(tmp, path) < 0 :
		    (link(tmp, path) < 0 && errno != EEXIST)) {
		err_set(err, ERR_FAIL, "cannot create '%s': %s", path,
			strerror(errno));
		goto out;
	}
	fsync_dir(data_dir);
	rc = 0;
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	return rc;
}

int lfs_secret_load(unsigned char out[LFS_SECRET_LEN], const char *data_dir,
		    struct err *err)
{
	char path[4200];
	int rc;

	snprintf(path, sizeof(path), "%s/secret", data_dir);
	rc = read_secret(out, path, err);
	if (rc != ERR_NOTFOUND)
		return rc;
	if ((rc = create_secret(data_dir, path, NULL, err)) < 0)
		return rc;
	return read_secret(out, path, err);
}

int lfs_secret_store(const char *data_dir,
		     const unsigned char secret[LFS_SECRET_LEN],
		     struct err *err)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/secret", data_dir);
	return create_secret(data_dir, path, secret, err);
}
