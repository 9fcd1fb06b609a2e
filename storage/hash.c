/*
 * hash.c: SHA-256 through OpenSSL 3's EVP interface (the non-deprecated
 * one). Allocation failure of the digest context aborts: it is a few
 * hundred bytes and nothing sensible can continue without it.
 */
#include "common/compat.h"

#include <openssl/evp.h>

#include "common/util.h"
#include "storage/hash.h"

struct sha256_ctx {
	EVP_MD_CTX *md;
};

struct sha256_ctx *sha256_new(void)
{
	struct sha256_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->md = EVP_MD_CTX_new();
	if (!ctx->md || EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx->md);
		free(ctx);
		return NULL;
	}
	return ctx;
}

void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len)
{
	if (len)
		EVP_DigestUpdate(ctx->md, data, len);
}

void sha256_final_hex(struct sha256_ctx *ctx, char hex[SHA256_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_DigestFinal_ex(ctx->md, md, &n);
	hex_encode(hex, md, 32);
	sha256_free(ctx);
}

void sha256_free(struct sha256_ctx *ctx)
{
	if (!ctx)
		return;
	EVP_MD_CTX_free(ctx->md);
	free(ctx);
}

void sha256_hex(char hex[SHA256_HEX_LEN + 1], const void *data, size_t len)
{
	unsigned char md[32];

	EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL);
	hex_encode(hex, md, 32);
}
