/*
 * bundle_key.h: the Ed25519 keys that sign and verify bundle manifests
 * (OpenSSL 3 EVP). A private key is a PKCS#8 PEM file, a public key a
 * SubjectPublicKeyInfo PEM file (what `openssl pkey -pubout` writes). A
 * key's fingerprint is "SHA256:" and the hex SHA-256 of its 32 raw public
 * key bytes, the same for the private key and its public half.
 */
#ifndef HAVEN_BUNDLE_KEY_H
#define HAVEN_BUNDLE_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define BUNDLE_SIG_LEN 64
#define BUNDLE_KEY_FPR_LEN (7 + 64)

struct bundle_key;

/* Writes a new key pair: the private key to priv_path (mode 0600) and the
 * public key to pub_path (mode 0644). ERR_EXISTS when either file exists;
 * nothing is left behind on failure. */
int bundle_key_generate(const char *priv_path, const char *pub_path,
			struct err *err);

/* Loads a private (signing) or public (verifying) key. ERR_NOTFOUND for a
 * missing file, ERR_INVALID for a file that is not an Ed25519 key of that
 * kind. */
int bundle_key_load_private(struct bundle_key **out, const char *path,
			    struct err *err);
int bundle_key_load_public(struct bundle_key **out, const char *path,
			   struct err *err);
void bundle_key_free(struct bundle_key *key);

/* The key's fingerprint; the string lives as long as the key. */
const char *bundle_key_fingerprint(const struct bundle_key *key);

/* Signs msg with a private key (Ed25519, no pre-hash). */
int bundle_key_sign(const struct bundle_key *key, const void *msg, size_t len,
		    unsigned char sig[BUNDLE_SIG_LEN], struct err *err);

/* True when sig is a valid signature of msg by the key. */
bool bundle_key_verify(const struct bundle_key *key, const void *msg,
		       size_t len, const unsigned char *sig, size_t sig_len);

#endif
