/*
 * blob.c: the local-directory backend of the blob store; see blob.h for
 * the layout and the durability rule it keeps.
 */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/blob.h"

#define PATH_LEN 4096
/* Network reads arrive in small pieces (4 KiB from libevent 2.1); writes
 * are gathered so the disk sees large ones. */
#define WRITE_BUF (256 << 10)

struct blob_store {
	char root[PATH_LEN];	/* <data>/blobs/sha256 */
	char tmp[PATH_LEN];	/* <data>/tmp */
};

struct blob_writer {
	struct blob_store *store;
	struct sha256_ctx *hash;
	char tmp_path[PATH_LEN];
	int fd;
	uint64_t size;
	char *buf;	/* WRITE_BUF bytes not yet written */
	size_t buffered;
};

int blob_store_open(struct blob_store **out, const char *data_dir,
		    struct err *err)
{
	struct blob_store *store = calloc(1, sizeof(*store));

	if (!store)
		return err_set(err, ERR_FAIL, "out of memory");
	snprintf(store->root, sizeof(store->root), "%s/blobs/sha256", data_dir);
	snprintf(store->tmp, sizeof(store->tmp), "%s/tmp", data_dir);
	if (mkdir_p(store->root) < 0 || mkdir_p(store->tmp) < 0) {
		err_set(err, ERR_FAIL, "cannot create blob store in '%s': %s",
			data_dir, strerror(errno));
		free(store);
		return ERR_FAIL;
	}
	*out = store;
	return 0;
}

void blob_store_free(struct blob_store *store)
{
	free(store);
}

int blob_path(const struct blob_store *store, const char *sha, char *out,
	      size_t size)
{
	if (!is_hex(sha, SHA256_HEX_LEN))
		return ERR_INVALID;
	snprintf(out, size, "%s/%.2s/%.2s/%s", store->root, sha, sha + 2, sha);
	return 0;
}

int blob_writer_begin(struct blob_writer **out, struct blob_store *store,
		      struct err *err)
{
	struct blob_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return err_set(err, ERR_FAIL, "out of memory");
	w->store = store;
	w->hash = sha256_new();
	w->buf = malloc(WRITE_BUF);	/* without it, writes go straight out */
	snprintf(w->tmp_path, sizeof(w->tmp_path), "%s/blob-XXXXXX", store->tmp);
	w->fd = w->hash ? mkostemp(w->tmp_path, O_CLOEXEC) : -1;
	if (w->fd < 0) {
		err_set(err, ERR_FAIL, "cannot create temporary blob in '%s': %s",
			store->tmp, strerror(errno));
		sha256_free(w->hash);
		free(w->buf);
		free(w);
		return ERR_FAIL;
	}
	*out = w;
	return 0;
}

static int flush_buffer(struct blob_writer *w, struct err *err)
{
	if (w->buffered && write_full(w->fd, w->buf, w->buffered) < 0)
		return err_set(err, ERR_FAIL, "cannot write blob: %s",
			       strerror(errno));
	w->buffered = 0;
	return 0;
}

int blob_writer_write(struct blob_writer *w, const void *data, size_t len,
		      struct err *err)
{
	sha256_update(w->hash, data, len);
	w->size += len;
	if (!w->buf || len >= WRITE_BUF) {
		if (flush_buffer(w, err) < 0 || write_full(w->fd, data, len) < 0)
			return err_set(err, ERR_FAIL, "cannot write blob: %s",
				       strerror(errno));
		return 0;
	}
	if (w->buffered + len > WRITE_BUF && flush_buffer(w, err) < 0)
		return ERR_FAIL;
	memcpy(w->buf + w->buffered, data, len);
	w->buffered += len;
	return 0;
}

void blob_writer_abort(struct blob_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	unlink(w->tmp_path);
	sha256_free(w->hash);
	free(w->buf);
	free(w);
}

/* Creates ab/ and ab/cd/ below the root, fsyncing each parent that gained
 * a directory so the final rename cannot be lost with its directory. */
static int make_fanout(struct blob_store *store, const char *sha)
{
	char dir[PATH_LEN];

	snprintf(dir, sizeof(dir), "%s/%.2s", store->root, sha);
	if (mkdir(dir, 0755) == 0)
		fsync_dir(store->root);
	else if (errno != EEXIST)
		return ERR_FAIL;
	snprintf(dir, sizeof(dir), "%s/%.2s/%.2s", store->root, sha, sha + 2);
	if (mkdir(dir, 0755) == 0) {
		char parent[PATH_LEN];
		snprintf(parent, sizeof(parent), "%s/%.2s", store->root, sha);
		fsync_dir(parent);
	} else if (errno != EEXIST) {
		return ERR_FAIL;
	}
	return 0;
}

int blob_writer_commit(struct blob_writer *w, const char *expect_sha,
		       char sha_out[SHA256_HEX_LEN + 1], uint64_t *size_out,
		       struct err *err)
{
	char sha[SHA256_HEX_LEN + 1], final[PATH_LEN], dir[PATH_LEN];
	int rc = ERR_FAIL;

	sha256_final_hex(w->hash, sha);
	w->hash = NULL;
	if (expect_sha && strcmp(expect_sha, sha)) {
		rc = err_set(err, ERR_INVALID,
			     "content hashes to sha256 '%s', expected '%s'",
			     sha, expect_sha);
		goto out;
	}
	if (flush_buffer(w, err) < 0)
		goto out;
	if (fsync(w->fd) < 0 || close(w->fd) < 0) {
		w->fd = -1;
		err_set(err, ERR_FAIL, "cannot sync blob: %s", strerror(errno));
		goto out;
	}
	w->fd = -1;
	blob_path(w->store, sha, final, sizeof(final));
	if (make_fanout(w->store, sha) < 0 || rename(w->tmp_path, final) < 0) {
		err_set(err, ERR_FAIL, "cannot store blob '%s': %s", sha,
			strerror(errno));
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/%.2s/%.2s", w->store->root, sha, sha + 2);
	if (fsync_dir(dir) < 0) {
		err_set(err, ERR_FAIL, "cannot sync blob directory: %s",
			strerror(errno));
		goto out;
	}
	memcpy(sha_out, sha, sizeof(sha));
	if (size_out)
		*size_out = w->size;
	rc = 0;
out:
	blob_writer_abort(w);
	return rc;
}

int blob_adopt(struct blob_store *store, const char *tmp_path,
	       const char *sha, struct err *err)
{
	char final[PATH_LEN], dir[PATH_LEN];
	int fd;

	if (blob_path(store, sha, final, sizeof(final)) < 0)
		return err_set(err, ERR_INVALID, "malformed sha256 '%s'", sha);
	fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		err_set(err, ERR_FAIL, "cannot sync '%s': %s", tmp_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return ERR_FAIL;
	}
	close(fd);
	if (make_fanout(store, sha) < 0 || rename(tmp_path, final) < 0)
		return err_set(err, ERR_FAIL, "cannot store blob '%s': %s",
			       sha, strerror(errno));
	snprintf(dir, sizeof(dir), "%s/%.2s/%.2s", store->root, sha, sha + 2);
	if (fsync_dir(dir) < 0)
		return err_set(err, ERR_FAIL, "cannot sync blob directory: %s",
			       strerror(errno));
	return 0;
}

const char *blob_tmp_dir(const struct blob_store *store)
{
	return store->tmp;
}

int blob_put_file(struct blob_store *store, const char *path,
		  char sha_out[SHA256_HEX_LEN + 1], uint64_t *size_out,
		  struct err *err)
{
	struct blob_writer *w = NULL;
	char buf[1 << 16];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return err_set(err, ERR_FAIL, "cannot open '%s': %s", path,
			       strerror(errno));
	if ((rc = blob_writer_begin(&w, store, err)) < 0)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_set(err, ERR_FAIL, "cannot read '%s': %s",
				     path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if ((rc = blob_writer_write(w, buf, (size_t)n, err)) < 0)
			goto out;
	}
	rc = blob_writer_commit(w, NULL, sha_out, size_out, err);
	w = NULL;
out:
	blob_writer_abort(w);
	close(fd);
	return rc;
}

int blob_open(struct blob_store *store, const char *sha, int *fd,
	      uint64_t *size, struct err *err)
{
	char path[PATH_LEN];
	struct stat st;

	if (blob_path(store, sha, path, sizeof(path)) < 0)
		return err_set(err, ERR_INVALID, "malformed sha256 '%.80s'", sha);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_FAIL,
			       "cannot open blob '%s': %s", sha, strerror(errno));
	if (fstat(*fd, &st) < 0) {
		close(*fd);
		*fd = -1;
		return err_set(err, ERR_FAIL, "cannot stat blob '%s'", sha);
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

bool blob_exists(struct blob_store *store, const char *sha)
{
	char path[PATH_LEN];

	return blob_path(store, sha, path, sizeof(path)) == 0 &&
	       access(path, F_OK) == 0;
}

static int visit_dir(const char *dir, int depth, blob_visit_fn fn, void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : ERR_FAIL;
	while (rc == 0 && (e = readdir(d))) {
		char path[PATH_LEN];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (depth < 2)
			rc = visit_dir(path, depth + 1, fn, arg);
		else if (is_hex(e->d_name, SHA256_HEX_LEN))
			rc = fn(e->d_name, path, arg);
	}
	closedir(d);
	return rc;
}

int blob_foreach(struct blob_store *store, blob_visit_fn fn, void *arg,
		 struct err *err)
{
	int rc = visit_dir(store->root, 0, fn, arg);

	if (rc == ERR_FAIL)
		err_set(err, ERR_FAIL, "cannot list blobs: %s", strerror(errno));
	return rc;
}

int blob_verify(struct blob_store *store, const char *sha, struct err *err)
{
	struct sha256_ctx *ctx = NULL;
	char buf[1 << 16], got[SHA256_HEX_LEN + 1];
	uint64_t size;
	int fd = -1, rc;

	if ((rc = blob_open(store, sha, &fd, &size, err)) < 0)
		return rc;
	if (!(ctx = sha256_new())) {
		close(fd);
		return err_set(err, ERR_FAIL, "out of memory");
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sha256_free(ctx);
			close(fd);
			return err_set(err, ERR_FAIL, "cannot read blob '%s'", sha);
		}
		if (n == 0)
			break;
		sha256_update(ctx, buf, (size_t)n);
	}
	close(fd);
	sha256_final_hex(ctx, got);
	if (strcmp(got, sha))
		return err_set(err, ERR_CORRUPT,
			       "blob '%s' is corrupt: its bytes hash to '%s'",
			       sha, got);
	return 0;
}

/* gc compares mtimes with its cutoff; see blob.h for why this exists. */
int blob_touch(struct blob_store *store, const char *sha, struct err *err)
{
	char path[PATH_LEN];

	if (blob_path(store, sha, path, sizeof(path)) < 0)
		return err_set(err, ERR_INVALID, "malformed sha256 '%.80s'", sha);
	if (utimensat(AT_FDCWD, path, NULL, 0) < 0)
		return err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_FAIL,
			       "cannot touch blob '%s': %s", sha, strerror(errno));
	return 0;
}

int blob_remove(struct blob_store *store, const char *sha, struct err *err)
{
	char path[PATH_LEN], dir[PATH_LEN];

	if (blob_path(store, sha, path, sizeof(path)) < 0)
		return err_set(err, ERR_INVALID, "malformed sha256 '%.80s'", sha);
	if (unlink(path) < 0)
		return err_set(err, ERR_FAIL, "cannot remove blob '%s': %s",
			       sha, strerror(errno));
	snprintf(dir, sizeof(dir), "%s/%.2s/%.2s", store->root, sha, sha + 2);
	fsync_dir(dir);
	return 0;
}
