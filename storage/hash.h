/*
 * hash.h: streaming SHA-256 (OpenSSL EVP), the content address of blobs.
 */
#ifndef HAVEN_HASH_H
#define HAVEN_HASH_H

#include <stddef.h>

#include "common/err.h"

#define SHA256_HEX_LEN 64

struct sha256_ctx;

/* Returns a new context, or NULL when out of memory. */
struct sha256_ctx *sha256_new(void);
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
/* Writes 64 hex digits and a NUL into hex, and frees the context. */
void sha256_final_hex(struct sha256_ctx *ctx, char hex[SHA256_HEX_LEN + 1]);
void sha256_free(struct sha256_ctx *ctx);

/* One-shot convenience. */
void sha256_hex(char hex[SHA256_HEX_LEN + 1], const void *data, size_t len);

#endif
