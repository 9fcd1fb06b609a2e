/*
 * s3_sigv4.h: AWS Signature Version 4 for S3 requests: the Authorization
 * header of a request, and the query string of a presigned URL. Pure
 * functions of their inputs (the time is a parameter), so they can be
 * checked against the published test vectors. docs/s3.md describes the
 * algorithm as Haven uses it.
 */
#ifndef HAVEN_S3_SIGV4_H
#define HAVEN_S3_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "common/err.h"

/* The payload hash of a body that is not hashed into the signature. */
#define S3_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* sha256 of the empty string: the payload hash of a request without body. */
#define S3_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* X-Amz-Date form, "20150830T123600Z", 16 characters and a NUL. */
#define S3_AMZ_DATE_LEN 17

struct s3_sigv4_key {
	const char *access_key;
	const char *secret_key;
	const char *region;  /* "us-east-1" */
	const char *service; /* "s3" */
};

/* A name/value pair: a query parameter or a header. */
struct s3_pair {
	const char *name;
	const char *value;
};

/*
 * The parts of a request that are signed. path and the query names and
 * values are raw (not percent-encoded): the signer encodes them as S3
 * does. headers are every header to sign, host and x-amz-date included,
 * in any order and case; the signer lower-cases names and trims values.
 */
struct s3_sigv4_request {
	const char *method;
	const char *path;
	const struct s3_pair *query;
	size_t nquery;
	const struct s3_pair *headers;
	size_t nheaders;
	const char *payload_hash; /* hex sha256, or S3_UNSIGNED_PAYLOAD */
};

/* A growable string; ptr stays NULL until the first byte. A failed
 * allocation latches "failed" and later adds do nothing. */
struct s3_str {
	char *ptr;
	size_t len;
	size_t cap;
	int failed;
};

#define S3_STR_INIT { NULL, 0, 0, 0 }

void s3_str_add(struct s3_str *s, const char *data, size_t len);
void s3_str_adds(struct s3_str *s, const char *str);
void s3_str_addf(struct s3_str *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends in percent-encoded: every byte but A-Z a-z 0-9 - . _ ~ (and
 * '/' when keep_slash) becomes %XX, upper-case hex. */
void s3_str_add_uri(struct s3_str *s, const char *in, int keep_slash);
/* The string (never NULL: "" when empty); borrowed from s. */
const char *s3_str_get(const struct s3_str *s);
void s3_str_release(struct s3_str *s);

/* Formats t (UTC) as an X-Amz-Date. */
void s3_amz_date(char out[S3_AMZ_DATE_LEN], time_t t);

/*
 * Writes to *out (malloc'd, the caller frees) the value of the
 * Authorization header for req, signed at amz_date (which must also be
 * the x-amz-date header in req->headers). With canonical non-NULL, the
 * canonical request is stored there too (malloc'd), for diagnostics.
 * ERR_INVALID for a malformed date or a header without a name.
 */
int s3_sigv4_authorization(char **out, char **canonical,
			   const struct s3_sigv4_key *key, const char *amz_date,
			   const struct s3_sigv4_request *req, struct err *err);

/*
 * Writes to *out (malloc'd) the query string of a presigned URL for req:
 * req's own query parameters and the X-Amz-Algorithm, -Credential, -Date,
 * -Expires and -SignedHeaders parameters, sorted and encoded, then
 * X-Amz-Signature. req->headers must hold the host header (and whatever
 * else the URL's user must send), and req->payload_hash is normally
 * S3_UNSIGNED_PAYLOAD. expires_s is 1 to 604800 (7 days), else ERR_INVALID.
 */
int s3_sigv4_presign(char **out, const struct s3_sigv4_key *key,
		     const char *amz_date, long expires_s,
		     const struct s3_sigv4_request *req, struct err *err);

#endif
