/*
 * blob_s3.h: the S3 backend of the blob store (storage/blob.h), private
 * to storage/blob.c, which chooses the backend. Objects live at
 * BUCKET/PREFIX sha256/<64 hex>; BUCKET/PREFIX touch/<64 hex> is an empty
 * marker whose LastModified stands for the local backend's mtime (gc's
 * grace period). Every call blocks; each thread gets its own S3 client.
 *
 * Durability: a writer knows the sha256 it must produce before the first
 * byte. Small objects are held in memory and PUT only once their hash
 * matches; larger ones stream into a multipart upload under the final
 * key whose parts stay invisible until CompleteMultipartUpload, which is
 * sent only when the sha256 of every byte matches (else the upload is
 * aborted). So an object under sha256/ always holds the bytes its name
 * says, and nothing references it before the writer returns.
 */
#ifndef HAVEN_BLOB_S3_H
#define HAVEN_BLOB_S3_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "storage/blob.h"

struct blob_s3;
struct blob_s3_writer;

/* url is "s3://BUCKET" or "s3://BUCKET/PREFIX"; endpoint and region may
 * be NULL (then HAVEN_S3_ENDPOINT, AWS_REGION). Keys come from the
 * environment. Creates the bucket when this user can (checks that the
 * store answers and the keys work). */
int blob_s3_open(struct blob_s3 **out, const char *url, const char *endpoint,
		 const char *region, struct err *err);
void blob_s3_free(struct blob_s3 *b);
/* Checks that the bucket of url exists and that the keys may list it,
 * without creating anything. ERR_NOTFOUND for a missing bucket. */
int blob_s3_check(const char *url, const char *endpoint, const char *region,
		  struct err *err);
const char *blob_s3_url(const struct blob_s3 *b);

int blob_s3_writer_begin(struct blob_s3_writer **out, struct blob_s3 *b,
			 const char *sha, struct err *err);
int blob_s3_writer_write(struct blob_s3_writer *w, const void *data,
			 size_t len, struct err *err);
/* Checks the sha256 and publishes the object; frees the writer. */
int blob_s3_writer_commit(struct blob_s3_writer *w, char sha_out[65],
			  uint64_t *size_out, struct err *err);
void blob_s3_writer_abort(struct blob_s3_writer *w);

/* Uploads a local file that must hash to sha. */
int blob_s3_put_path(struct blob_s3 *b, const char *path, const char *sha,
		     uint64_t *size_out, struct err *err);

int blob_s3_stat(struct blob_s3 *b, const char *sha, struct blob_info *info,
		 struct err *err);
int blob_s3_read(struct blob_s3 *b, const char *sha, uint64_t off,
		 uint64_t len, blob_sink_fn sink, void *arg, struct err *err);
int blob_s3_foreach(struct blob_s3 *b, blob_visit_fn fn, void *arg,
		    struct err *err);
int blob_s3_touch(struct blob_s3 *b, const char *sha, struct err *err);
int blob_s3_remove(struct blob_s3 *b, const char *sha, struct err *err);
int blob_s3_presign(struct blob_s3 *b, const char *sha, long expires_s,
		    char **url, struct err *err);

#endif
