/*
 * bundle_key.c: see bundle_key.h. Ed25519 through OpenSSL's EVP API: keys
 * are read and written as PEM, signatures made with EVP_DigestSign and no
 * digest (Ed25519 hashes the message itself).
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/util.h"
#include "ingest/bundle_key.h"
#include "storage/hash.h"

struct bundle_key {
	EVP_PKEY *pkey;
	bool private;
	char fpr[BUNDLE_KEY_FPR_LEN + 1];
};

/* The last OpenSSL error as text, for messages. */
static const char *ssl_reason(void)
{
	static __thread char buf[160];
	unsigned long e = ERR_get_error();

	if (!e)
		return "unknown error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static int set_fingerprint(struct bundle_key *key, struct err *err)
{
	unsigned char raw[32];
	size_t len = sizeof(raw);
	char hex[SHA256_HEX_LEN + 1];

	if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &len) != 1 ||
	    len != sizeof(raw))
		return err_set(err, ERR_INVALID, "cannot read the public key: %s",
			       ssl_reason());
	sha256_hex(hex, raw, len);
	snprintf(key->fpr, sizeof(key->fpr), "SHA256:%s", hex);
	return 0;
}

/* Writes the private or public half of pkey as a new PEM file (O_EXCL),
 * fsynced; removes it again on failure. */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *pkey,
		     bool private, struct err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	FILE *f;
	int ok;

	if (fd < 0)
		return err_set(err, errno == EEXIST ? ERR_EXISTS : ERR_FAIL,
			       "cannot create '%s': %s", path, strerror(errno));
	if (!(f = fdopen(fd, "w"))) {
		close(fd);
		unlink(path);
		return err_set(err, ERR_FAIL, "cannot write '%s'", path);
	}
	ok = private ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL)
		     : PEM_write_PUBKEY(f, pkey);
	ok = ok == 1 && fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok) {
		unlink(path);
		return err_set(err, ERR_FAIL, "cannot write '%s'", path);
	}
	return 0;
}

int bundle_key_generate(const char *priv_path, const char *pub_path,
			struct err *err)
{
	EVP_PKEY *pkey = NULL;
	int rc;

	if (access(pub_path, F_OK) == 0)
		return err_set(err, ERR_EXISTS, "'%s' already exists", pub_path);
	if (!(pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")))
		return err_set(err, ERR_FAIL, "cannot make an Ed25519 key: %s",
			       ssl_reason());
	if ((rc = write_pem(priv_path, 0600, pkey, true, err)) == 0 &&
	    (rc = write_pem(pub_path, 0644, pkey, false, err)) < 0)
		unlink(priv_path);
	EVP_PKEY_free(pkey);
	return rc;
}

static int load(struct bundle_key **out, const char *path, bool private,
		struct err *err)
{
	struct bundle_key *key;
	FILE *f = fopen(path, "re");
	int rc;

	*out = NULL;
	if (!f)
		return err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_FAIL,
			       "cannot read key '%s': %s", path, strerror(errno));
	if (!(key = calloc(1, sizeof(*key)))) {
		fclose(f);
		return err_set(err, ERR_FAIL, "out of memory");
	}
	key->private = private;
	key->pkey = private ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
			    : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (!key->pkey) {
		ERR_clear_error();
		rc = err_set(err, ERR_INVALID, "'%s' is not a PEM %s key", path,
			     private ? "private" : "public");
		goto fail;
	}
	if (EVP_PKEY_get_id(key->pkey) != EVP_PKEY_ED25519) {
		rc = err_set(err, ERR_INVALID, "'%s' is not an Ed25519 key", path);
		goto fail;
	}
	if ((rc = set_fingerprint(key, err)) < 0)
		goto fail;
	*out = key;
	return 0;
fail:
	bundle_key_free(key);
	return rc;
}

int bundle_key_load_private(struct bundle_key **out, const char *path,
			    struct err *err)
{
	return load(out, path, true, err);
}

int bundle_key_load_public(struct bundle_key **out, const char *path,
			   struct err *err)
{
	return load(out, path, false, err);
}

void bundle_key_free(struct bundle_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

const char *bundle_key_fingerprint(const struct bundle_key *key)
{
	return key->fpr;
}

int bundle_key_sign(const struct bundle_key *key, const void *msg, size_t len,
		    unsigned char sig[BUNDLE_SIG_LEN], struct err *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t sig_len = BUNDLE_SIG_LEN;
	int ok;

	if (!key->private)
		return err_set(err, ERR_INVALID, "signing needs a private key");
	if (!ctx)
		return err_set(err, ERR_FAIL, "out of memory");
	ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
	     EVP_DigestSign(ctx, sig, &sig_len, msg, len) == 1 &&
	     sig_len == BUNDLE_SIG_LEN;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return err_set(err, ERR_FAIL, "cannot sign: %s", ssl_reason());
	return 0;
}

bool bundle_key_verify(const struct bundle_key *key, const void *msg,
		       size_t len, const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx;
	bool ok;

	if (sig_len != BUNDLE_SIG_LEN || !(ctx = EVP_MD_CTX_new()))
		return false;
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
	     EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}
