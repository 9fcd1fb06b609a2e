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
 */
#ifndef HAVEN_BLOB_H
#define HAVEN_BLOB_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/hash.h"

struct blob_store;
struct blob_writer;

/* Opens (creating if needed) the store under data_dir. */
int blob_store_open(struct blob_store **out, const char *data_dir,
		    struct err *err);
void blob_store_free(struct blob_store *store);

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

/* Opens a blob for reading; the caller closes *fd. ERR_NOTFOUND if absent. */
int blob_open(struct blob_store *store, const char *sha, int *fd,
	      uint64_t *size, struct err *err);
bool blob_exists(struct blob_store *store, const char *sha);
/* Writes the blob's path into out. ERR_INVALID for a malformed sha. */
int blob_path(const struct blob_store *store, const char *sha, char *out,
	      size_t size);

/* Calls fn for every stored blob (in no particular order); a non-zero
 * return from fn stops the walk and is returned. */
typedef int (*blob_visit_fn)(const char *sha, const char *path, void *arg);
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
