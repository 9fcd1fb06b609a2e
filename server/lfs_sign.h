/*
 * lfs_sign.h: the self-authorising URLs of the LFS batch API, and the
 * server secret that signs them.
 *
 * The Hub's clients send no credentials when they PUT an object or a part,
 * or when they complete a multipart upload (hub-api.md 2.12), so each URL
 * the batch endpoint hands out carries its own authority: what it allows
 * (operation, repository id, object id, size, part number) and until when,
 * signed with HMAC-SHA256 under a 32-byte secret kept in <data>/secret.
 * The form is
 *
 *   /api/lfs/<op>/<repo id>/<oid>/<size>[/<part>]?exp=<unix time>&sig=<hex>
 *
 * with <op> one of upload, part, complete, verify, download. Changing any
 * part of the path or the expiry invalidates the signature; a URL past its
 * expiry is refused even with a good signature.
 */
#ifndef HAVEN_LFS_SIGN_H
#define HAVEN_LFS_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/hash.h"
#include "storage/meta.h"

#define LFS_SECRET_LEN 32
#define LFS_SIG_HEX_LEN 64

enum lfs_op {
	LFS_OP_UPLOAD,		/* PUT the whole object */
	LFS_OP_PART,		/* PUT one part of a multipart upload */
	LFS_OP_COMPLETE,	/* POST: join the parts into the object */
	LFS_OP_VERIFY,		/* POST: is the object stored? */
	LFS_OP_DOWNLOAD,	/* GET or HEAD the object */
};

/* What one signed URL allows. */
struct lfs_grant {
	enum lfs_op op;
	char repo_id[REPO_ID_LEN + 1];
	char oid[SHA256_HEX_LEN + 1];
	uint64_t size;
	uint32_t part;		/* LFS_OP_PART: 1-based; 0 otherwise */
	int64_t expires;	/* unix seconds */
};

/* The name of an operation in the URL ("upload", ...). */
const char *lfs_op_name(enum lfs_op op);

/* Writes the signed path and query of g into out (no scheme or host).
 * ERR_TOOBIG when it does not fit, ERR_INVALID for a malformed grant. */
int lfs_sign_url(char *out, size_t size,
		 const unsigned char secret[LFS_SECRET_LEN],
		 const struct lfs_grant *g, struct err *err);

/* Checks a signed URL: path is what follows "/api/lfs/" (decoded), exp and
 * sig the query values (may be NULL). Fills out on success. ERR_NOTFOUND
 * when the path is not one of ours, ERR_FORBIDDEN for a missing or wrong
 * signature or an expired URL. The signature is compared in constant
 * time. */
int lfs_sign_verify(struct lfs_grant *out,
		    const unsigned char secret[LFS_SECRET_LEN],
		    const char *path, const char *exp, const char *sig,
		    int64_t now, struct err *err);

/* Reads <data_dir>/secret, creating it (random bytes, mode 0600, written
 * to a temporary file, synced and linked into place) on first start. Two
 * servers starting at once agree on one secret. ERR_CORRUPT when the file
 * is not exactly LFS_SECRET_LEN bytes. */
int lfs_secret_load(unsigned char out[LFS_SECRET_LEN], const char *data_dir,
		    struct err *err);

/* Replaces <data_dir>/secret with the given one (a read replica takes
 * its primary's, so that URLs either signed verify on both). */
int lfs_secret_store(const char *data_dir,
		     const unsigned char secret[LFS_SECRET_LEN],
		     struct err *err);

#endif
