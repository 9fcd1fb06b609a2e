/*
 * s3_client.h: a client for S3-compatible object stores (Ceph RGW, AWS
 * S3), on libcurl, signing with SigV4 (storage/s3_sigv4.h) and addressing
 * buckets path-style (ENDPOINT/BUCKET/KEY).
 *
 * One client is one connection cache: use it from one thread at a time
 * (make one per worker thread). Every call is blocking. Failures return a
 * negative enum err_code with the S3 error Code and Message in err:
 * ERR_NOTFOUND (NoSuchKey, NoSuchBucket), ERR_AUTH (bad key or signature),
 * ERR_FORBIDDEN (AccessDenied), ERR_RANGE, ERR_INVALID, ERR_CONFLICT,
 * ERR_UNAVAILABLE (5xx, connection refused), ERR_TIMEOUT (no progress),
 * ERR_CORRUPT (a transfer that does not add up), ERR_FAIL otherwise.
 */
#ifndef HAVEN_S3_CLIENT_H
#define HAVEN_S3_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/err.h"
#include "storage/hash.h"

/* Part size of multipart uploads: the memory one upload holds. */
#define S3_PART_SIZE_DEFAULT (32u << 20)
#define S3_PART_SIZE_MIN (5u << 20) /* S3's least, except the last part */
#define S3_PART_SIZE_MAX (512u << 20)

/*
 * Settings; a NULL string is taken from the environment:
 * endpoint from HAVEN_S3_ENDPOINT, access_key from AWS_ACCESS_KEY_ID,
 * secret_key from AWS_SECRET_ACCESS_KEY, region from AWS_REGION (then
 * "us-east-1"). Keys never come from the command line.
 */
struct s3_config {
	const char *endpoint;	/* "http://127.0.0.1:7480", no path */
	const char *access_key;
	const char *secret_key;
	const char *region;
	size_t part_size;	/* 0: S3_PART_SIZE_DEFAULT */
	unsigned list_page;	/* keys per ListObjectsV2 page, 0: 1000 */
	long stall_timeout_s;	/* no byte moved for this long: ERR_TIMEOUT (0: 60) */
};

struct s3_client;

/* What HEAD (and a completed upload) says about an object. */
struct s3_object_info {
	uint64_t size;
	char etag[80];		/* without quotes; multipart ones end in -N */
};

/* An upload's result: the info, and the sha256 of the bytes read. */
struct s3_put_result {
	struct s3_object_info info;
	char sha256[SHA256_HEX_LEN + 1];
	unsigned parts;		/* 0: a single PUT */
};

/*
 * Upload source: fill buf with up to len bytes, return how many (0 at the
 * end), or a negative err code with err set.
 */
typedef ssize_t (*s3_read_fn)(void *arg, void *buf, size_t len,
			      struct err *err);

/* Download sink: take len bytes; 0, or a negative err code with err set
 * (the transfer stops and the call returns that code and message). */
typedef int (*s3_write_fn)(void *arg, const void *data, size_t len,
			   struct err *err);

/* One listed object: 0 to go on, a negative err code to stop. */
typedef int (*s3_list_fn)(void *arg, const char *key, uint64_t size,
			  const char *etag, struct err *err);

/* ERR_INVALID for a malformed endpoint, ERR_AUTH when keys are missing. */
int s3_client_new(struct s3_client **out, const struct s3_config *cfg,
		  struct err *err);
void s3_client_free(struct s3_client *c);

/* Creates bucket; one that this user owns already is success. */
int s3_bucket_create(struct s3_client *c, const char *bucket, struct err *err);
/* Deletes an empty bucket. */
int s3_bucket_delete(struct s3_client *c, const char *bucket, struct err *err);

/*
 * Stores what read() yields at bucket/key. Up to one part of input goes
 * up as a single PUT; more becomes a multipart upload of part_size parts,
 * each sent with its sha256 as x-amz-content-sha256 (so the store checks
 * every part), aborted on any failure. Memory: one part. The final size is
 * checked with HEAD (RGW's CompleteMultipartUpload answer has no ETag).
 * res (may be NULL) gets the info, the sha256 of all bytes and the part
 * count.
 */
int s3_object_put(struct s3_client *c, const char *bucket, const char *key,
		  s3_read_fn read, void *arg, struct s3_put_result *res,
		  struct err *err);

/*
 * Streams bucket/key into write(): all of it when len is 0 and offset 0,
 * else bytes offset .. offset+len-1 (len 0: to the end). info (may be
 * NULL) gets the object's full size and ETag. ERR_RANGE when offset is
 * past the end.
 */
int s3_object_get(struct s3_client *c, const char *bucket, const char *key,
		  uint64_t offset, uint64_t len, s3_write_fn write, void *arg,
		  struct s3_object_info *info, struct err *err);

int s3_object_head(struct s3_client *c, const char *bucket, const char *key,
		   struct s3_object_info *info, struct err *err);

/* Deletes bucket/key; a missing key is success (as S3 answers). */
int s3_object_delete(struct s3_client *c, const char *bucket,
		     const char *key, struct err *err);

/* Calls each() for every key starting with prefix (NULL: all), in key
 * order, following continuation tokens. */
int s3_object_list(struct s3_client *c, const char *bucket,
		   const char *prefix, s3_list_fn each, void *arg,
		   struct err *err);

/* Inside an s3_object_list callback: the listed object's LastModified
 * (seconds since the epoch; 0 when the store sent none). */
time_t s3_object_list_mtime(const struct s3_client *c);

/* Writes to *url (malloc'd) a presigned GET URL for bucket/key, valid for
 * expires_s seconds (1 to 604800) from now. */
int s3_presign_get(struct s3_client *c, const char *bucket, const char *key,
		   long expires_s, char **url, struct err *err);

/*
 * The steps of a multipart upload, for callers that feed parts
 * themselves. begin writes the upload id (malloc'd) to *upload_id;
 * part_put sends part number n (1-based) of len bytes with its sha256
 * (hex, NULL: computed here) and writes its ETag to etag; complete takes
 * the ETags of parts 1..nparts in order.
 */
int s3_multipart_begin(struct s3_client *c, const char *bucket,
		       const char *key, char **upload_id, struct err *err);
int s3_multipart_part_put(struct s3_client *c, const char *bucket,
			  const char *key, const char *upload_id, unsigned n,
			  const void *data, size_t len, const char *sha256,
			  char etag[80], struct err *err);
int s3_multipart_complete(struct s3_client *c, const char *bucket,
			  const char *key, const char *upload_id,
			  char (*etags)[80], unsigned nparts, struct err *err);
int s3_multipart_abort(struct s3_client *c, const char *bucket,
		       const char *key, const char *upload_id,
		       struct err *err);

#endif
