/*
 * blob.h: the content-addressed blob store (LFS objects), named by the
 * SHA-256 of their bytes and shared by every repository.
 *
 * Layout: <data>/blobs/sha256/ab/cd/<64 hex>, temporaries in <data>/tmp/.
 * Writes follow the durability rule: bytes are hashed while they stream
 * in, written to tmp/, fsynced, renamed into place and the directory
 * fsynced; only then may anything reference the blob. Readers never see a
 * partial blob. A blob that already exists is a successful write.
 *
 * Calling sequence for a write:
 *   blob_writer_begin -> blob_writer_write ... -> blob_writer_commit
 *   (or blob_writer_abort at any point). Both end the writer.
 *
 * The store handle is safe to share between threads; a writer is not.
 *
 * Backends: the local directory above (the default), or an S3 object
 * store (storage/blob_s3.h) when <data>/blobs.conf says so:
 *
 *   blobs s3://BUCKET[/PREFIX]
 *   s3_endpoint http://HOST:PORT
 *   s3_region us-east-1          (optional)
 *
 * written by blob_config_record (`haven serve --blobs ...`) and read by
 * every command that opens the store; keys come from the environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Nothing above storage/
 * needs to know which backend holds the bytes, except that only a local
 * blob has a file (blob_open, blob_path): code that serves bytes asks
 * blob_is_local and otherwise reads with blob_read.
 *
 * Moving the blobs (`haven blobs migrate`, cli/cmd_blobs.c) rewrites
 * blobs.conf while a server runs: a `previous` location names the store
 * the objects come from, where reads that miss on the new one look next,
 * and `serial` counts the changes. The server follows the file
 * (blob_store_follow, then blob_store_refresh once a second) and switches
 * backends without a restart; blob_config_wait tells the migration when
 * it has, and when no write to the old store is in flight any more.
 */
#ifndef HAVEN_BLOB_H
#define HAVEN_BLOB_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"
#include "storage/hash.h"

struct blob_store;
struct blob_writer;

/* What a listing or stat says of one blob. mtime: the later of its
 * write and its last blob_touch (0 from an S3 blob_stat). */
struct blob_info {
	uint64_t size;
	time_t mtime;
};

/* Takes len bytes of a blob being read; 0, or a negative err code that
 * stops the read. */
typedef int (*blob_sink_fn)(void *arg, const void *data, size_t len,
			    struct err *err);

/* One backend: url "local" or "s3://BUCKET[/PREFIX]", with the S3
 * endpoint and region ("" for the environment's). */
struct blob_location {
	char url[600];
	char endpoint[1024];
	char region[64];
};

/* What blobs.conf says: cur takes the writes; prev.url is "" unless a
 * migration from prev is in progress. */
struct blob_config {
	struct blob_location cur, prev;
	unsigned long serial;
};

/* Reads <data>/blobs.conf (no file: local). */
int blob_config_read(const char *data_dir, struct blob_config *out,
		     struct err *err);
/* Replaces it: written to a temporary, fsynced and renamed. */
int blob_config_write(const char *data_dir, const struct blob_config *c,
		      struct err *err);
/* Waits until every server following data_dir's store uses the
 * blobs.conf of that serial, with no write to another backend in flight,
 * or until none runs (*server says whether one did). ERR_TIMEOUT after
 * timeout_s. */
int blob_config_wait(const char *data_dir, unsigned long serial,
		     int timeout_s, bool *server, struct err *err);

/* Records the backend of the store under data_dir: url is "s3://..."
 * (endpoint and region, may be NULL, go with it). Recording what is
 * recorded already is success (a new endpoint or region replaces the
 * old); naming another backend than the recorded one, or S3 for a data
 * directory that holds local blobs, is ERR_CONFLICT. */
int blob_config_record(const char *data_dir, const char *url,
		       const char *endpoint, const char *region,
		       struct err *err);

/* True for the local-directory backend; "local" or "s3://..." for
 * messages. */
bool blob_is_local(const struct blob_store *store);
const char *blob_store_location(const struct blob_store *store);

/* Opens (creating if needed) the store under data_dir. */
int blob_store_open(struct blob_store **out, const char *data_dir,
		    struct err *err);
/* The store at loc alone (no fallback), whatever blobs.conf says; loc
 * NULL: as blob_store_open. */
int blob_store_open_at(struct blob_store **out, const char *data_dir,
		       const struct blob_location *loc, struct err *err);
void blob_store_free(struct blob_store *store);

/* Checks, creating nothing, that an S3 location's bucket exists and
 * that the keys may list it (local: nothing to check). */
int blob_location_check(const struct blob_location *loc, struct err *err);

/* True while blobs.conf names a previous store (a migration). */
bool blob_migrating(const struct blob_store *store);

/* For a long-running process: takes a shared lock on <data>/blobs.lock
 * for the store's life and applies blobs.conf as it is now. Then call
 * blob_store_refresh about once a second, from one thread: when
 * blobs.conf changed it opens and publishes the backends it names
 * (requests in flight finish on the ones they hold), and it acknowledges
 * the change in <data>/blobs.seen once no write to an older backend is
 * in flight. An error (the new store unreachable) keeps the old backends
 * and is retried on the next call. */
int blob_store_follow(struct blob_store *store, struct err *err);
int blob_store_refresh(struct blob_store *store, struct err *err);

int blob_writer_begin(struct blob_writer **out, struct blob_store *store,
		      struct err *err);
int blob_writer_write(struct blob_writer *w, const void *data, size_t len,
		      struct err *err);
/* Finishes the blob: sha_out gets its hash, size_out its length. When
 * expect_sha is not NULL and differs, the bytes are discarded and
 * ERR_INVALID is returned. Frees the writer in every case. */
int blob_writer_commit(struct blob_writer *w, const char *expect_sha,
		       char sha_out[SHA256_HEX_LEN + 1], uint64_t *size_out,
		       struct err *err);
void blob_writer_abort(struct blob_writer *w);

/* blob_writer_begin for bytes that must hash to sha (commit checks it
 * again): the S3 backend streams them to the object store as they come,
 * where a writer without it first spools them to tmp/. */
int blob_writer_begin_sha(struct blob_writer **out, struct blob_store *store,
			  const char *sha, struct err *err);

/* Streams a local file into the store. */
int blob_put_file(struct blob_store *store, const char *path,
		  char sha_out[SHA256_HEX_LEN + 1], uint64_t *size_out,
		  struct err *err);

/* Moves a finished file (in <data>/tmp, on the store's file system) into
 * the store as blob sha: fsync, rename, directory fsync. The caller has
 * already checked that the bytes hash to sha while it wrote them. */
int blob_adopt(struct blob_store *store, const char *tmp_path,
	       const char *sha, struct err *err);

/* The directory for temporary files that blob_adopt can take. */
const char *blob_tmp_dir(const struct blob_store *store);

/* Opens a local blob for reading; the caller closes *fd. ERR_NOTFOUND if
 * absent. On S3 it copies the object into an unlinked file of tmp/
 * first (for tools; servers stream with blob_read). */
int blob_open(struct blob_store *store, const char *sha, int *fd,
	      uint64_t *size, struct err *err);
bool blob_exists(struct blob_store *store, const char *sha);
/* Size (and mtime) of a stored blob; ERR_NOTFOUND when absent. */
int blob_stat(struct blob_store *store, const char *sha,
	      struct blob_info *info, struct err *err);
/* Streams len bytes from off (len 0: to the end) of a blob into sink;
 * blocks (S3: one GET with a Range). */
int blob_read(struct blob_store *store, const char *sha, uint64_t off,
	      uint64_t len, blob_sink_fn sink, void *arg, struct err *err);
/* A URL that GETs the blob for expires_s seconds without credentials:
 * S3 only (ERR_INVALID on the local backend). */
int blob_presign(struct blob_store *store, const char *sha, long expires_s,
		 char **url, struct err *err);
/* Writes the blob's path into out. ERR_INVALID for a malformed sha, or
 * when the backend has no files (S3). */
int blob_path(const struct blob_store *store, const char *sha, char *out,
	      size_t size);

/* Calls fn for every stored blob (in no particular order); a non-zero
 * return from fn stops the walk and is returned. */
typedef int (*blob_visit_fn)(const char *sha, const struct blob_info *info,
			     void *arg);
int blob_foreach(struct blob_store *store, blob_visit_fn fn, void *arg,
		 struct err *err);

/* Re-hashes a stored blob; ERR_CORRUPT if its bytes no longer match. */
int blob_verify(struct blob_store *store, const char *sha, struct err *err);

/* Sets a blob's mtime to now. The LFS batch API calls it when it tells a
 * client that an object is already stored (so the client skips the
 * upload): gc spares blobs younger than its grace period, so the blob
 * then survives until the commit that references it lands. ERR_NOTFOUND
 * when absent. */
int blob_touch(struct blob_store *store, const char *sha, struct err *err);

/* Removes a blob (used by gc only). */
int blob_remove(struct blob_store *store, const char *sha, struct err *err);

#endif
