/*
 * blob_send.h: answers HTTP requests with the bytes of a blob that is not
 * a local file (the S3 backend), without blocking the event loops.
 *
 * A small pool of threads fetches the object in ranged GETs of
 * BLOB_SEND_CHUNK bytes (each thread has its own S3 client, through the
 * blob store); each chunk is handed to the request's worker thread with
 * event_active(). The next chunk is fetched only while the bytes queued
 * for the client are few (http_response_on_drain), so a slow client
 * holds at most one chunk and a few MiB of socket queue, and no thread
 * waits on it. The answer begins once the first bytes arrived: a blob
 * missing from the object store is a clean error, not a cut answer.
 *
 * Local blobs keep their sendfile path (http_response_send_file); this
 * module is only started for the S3 backend.
 *
 * Shutdown: blob_send_stop() joins the pool (after the HTTP workers
 * stopped); blob_send_free() frees the streams left, whose requests the
 * HTTP layer has orphaned and frees itself.
 */
#ifndef HAVEN_BLOB_SEND_H
#define HAVEN_BLOB_SEND_H

#include <stdint.h>

#include "common/err.h"
#include "storage/blob.h"

struct http_request;
struct blob_send;

#define BLOB_SEND_CHUNK ((uint64_t)16 << 20)

int blob_send_new(struct blob_send **out, struct blob_store *blobs,
		  int threads, struct err *err);
void blob_send_stop(struct blob_send *bs);
void blob_send_free(struct blob_send *bs);

/*
 * Answers req with status (200 or 206) and len bytes of blob sha from
 * off; the handler has set the other headers. When the object cannot be
 * read before the first byte went out, the answer is the Hub's error for
 * it (ERR_NOTFOUND becomes "the stored object is unavailable", 500);
 * later, the connection is cut (the client sees a short body). commit
 * (may be NULL) goes on an error answer as X-Repo-Commit.
 */
void blob_send_range(struct blob_send *bs, struct http_request *req,
		     const char *sha, int status, uint64_t off, uint64_t len,
		     const char *commit);

#endif
