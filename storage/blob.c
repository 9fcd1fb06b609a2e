/*
 * blob.c: the blob store: its local-directory backend, the choice of
 * backend (<data>/blobs.conf) and the calls into the S3 one
 * (storage/blob_s3.c); see blob.h for the layout and the durability rule
 * both keep.
 */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/blob.h"
#include "storage/blob_s3.h"

#define PATH_LEN 4096
/* Network reads arrive in small pieces (4 KiB from libevent 2.1); writes
 * are gathered so the disk sees large ones. */
#define WRITE_BUF (256 << 10)

struct blob_store {
	char root[PATH_LEN];	/* <data>/blobs/sha256 */
	char tmp[PATH_LEN];	/* <data>/tmp */
	struct blob_s3 *s3;	/* NULL: the local directory */
};

/* <data>/blobs.conf, "name value" lines. */
struct blob_conf {
	char url[600];
	char endpoint[1024];
	char region[64];
};

struct blob_writer {
	struct blob_store *store;
	struct sha256_ctx *hash;
	char tmp_path[PATH_LEN];
	int fd;
	uint64_t size;
	char *buf;	/* WRITE_BUF bytes not yet written */
	size_t buffered;
	struct blob_s3_writer *s3w;	/* streaming to S3 (no tmp file) */
};

static int conf_read(const char *data_dir, struct blob_conf *c, bool *found,
		     struct err *err)
{
	char path[PATH_LEN], line[2048];
	unsigned lineno = 0;
	FILE *f;

	memset(c, 0, sizeof(*c));
	*found = false;
	snprintf(path, sizeof(path), "%s/blobs.conf", data_dir);
	if (!(f = fopen(path, "re"))) {
		if (errno == ENOENT)
			return 0;
		return err_set(err, ERR_FAIL, "cannot read '%s': %s", path,
			       strerror(errno));
	}
	*found = true;
	while (fgets(line, sizeof(line), f)) {
		char name[32], value[1100];
		lineno++;
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (sscanf(line, "%31s %1099s", name, value) != 2) {
			fclose(f);
			return err_set(err, ERR_INVALID, "%s:%u: expected "
				       "\"name value\"", path, lineno);
		}
		if (!strcmp(name, "blobs"))
			str_copy(c->url, value, sizeof(c->url));
		else if (!strcmp(name, "s3_endpoint"))
			str_copy(c->endpoint, value, sizeof(c->endpoint));
		else if (!strcmp(name, "s3_region"))
			str_copy(c->region, value, sizeof(c->region));
		else {
			fclose(f);
			return err_set(err, ERR_INVALID, "%s:%u: unknown setting "
				       "'%.40s'", path, lineno, name);
		}
	}
	fclose(f);
	if (strncmp(c->url, "s3://", 5) && strcmp(c->url, "local"))
		return err_set(err, ERR_INVALID, "%s: 'blobs' must be local or "
			       "s3://BUCKET[/PREFIX]", path);
	return 0;
}

/* Written to tmp, synced and renamed: a crash leaves the old or the new. */
static int conf_write(const char *data_dir, const struct blob_conf *c,
		      struct err *err)
{
	char path[PATH_LEN], tmp[PATH_LEN + 8], text[2048];
	int fd, n;

	snprintf(path, sizeof(path), "%s/blobs.conf", data_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(text, sizeof(text), "# Where this data directory keeps "
		     "its LFS objects (haven serve --blobs).\nblobs %s\n%s%s%s"
		     "%s%s%s", c->url, c->endpoint[0] ? "s3_endpoint " : "",
		     c->endpoint, c->endpoint[0] ? "\n" : "",
		     c->region[0] ? "s3_region " : "", c->region,
		     c->region[0] ? "\n" : "");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_full(fd, text, (size_t)n) < 0 || fsync(fd) < 0 ||
	    close(fd) < 0 || rename(tmp, path) < 0 || fsync_dir(data_dir) < 0) {
		err_set(err, ERR_FAIL, "cannot write '%s': %s", path,
			strerror(errno));
		unlink(tmp);
		return ERR_FAIL;
	}
	return 0;
}

static bool dir_has_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool any = false;

	while (d && !any && (e = readdir(d)))
		any = e->d_name[0] != '.';
	if (d)
		closedir(d);
	return any;
}

int blob_config_record(const char *data_dir, const char *url,
		       const char *endpoint, const char *region,
		       struct err *err)
{
	struct blob_conf old, c;
	char root[PATH_LEN];
	bool found;
	int rc;

	memset(&c, 0, sizeof(c));
	if (!url || !url[0])
		return 0;
	if (strncmp(url, "s3://", 5) && strcmp(url, "local"))
		return err_set(err, ERR_INVALID, "invalid --blobs '%.200s': "
			       "expected local or s3://BUCKET[/PREFIX]", url);
	if ((rc = conf_read(data_dir, &old, &found, err)) < 0)
		return rc;
	if (!found)
		str_copy(old.url, "local", sizeof(old.url));
	if (strcmp(old.url, url)) {
		snprintf(root, sizeof(root), "%s/blobs/sha256", data_dir);
		if (found || dir_has_entries(root))
			return err_set(err, ERR_CONFLICT, "the data directory "
				       "'%s' keeps its blobs in %s, not %s; "
				       "start with an empty one or move the "
				       "blobs first", data_dir,
				       old.url, url);
	}
	if (!strcmp(url, "local"))
		return 0;
	str_copy(c.url, url, sizeof(c.url));
	str_copy(c.endpoint, endpoint && endpoint[0] ? endpoint : old.endpoint,
		 sizeof(c.endpoint));
	str_copy(c.region, region && region[0] ? region : old.region,
		 sizeof(c.region));
	if (found && !strcmp(c.endpoint, old.endpoint) &&
	    !strcmp(c.region, old.region))
		return 0;
	if (mkdir_p(data_dir) < 0)
		return err_set(err, ERR_FAIL, "cannot create '%s': %s",
			       data_dir, strerror(errno));
	return conf_write(data_dir, &c, err);
}

bool blob_is_local(const struct blob_store *store)
{
	return store->s3 == NULL;
}

const char *blob_store_location(const struct blob_store *store)
{
	return store->s3 ? blob_s3_url(store->s3) : "local";
}

int blob_store_open(struct blob_store **out, const char *data_dir,
		    struct err *err)
{
	struct blob_store *store = calloc(1, sizeof(*store));
	struct blob_conf conf;
	bool found;
	int rc;

	if (!store)
		return err_set(err, ERR_FAIL, "out of memory");
	if ((rc = conf_read(data_dir, &conf, &found, err)) < 0) {
		free(store);
		return rc;
	}
	if (found && !strncmp(conf.url, "s3://", 5) &&
	    (rc = blob_s3_open(&store->s3, conf.url, conf.endpoint,
			       conf.region, err)) < 0) {
		free(store);
		return rc;
	}
	snprintf(store->root, sizeof(store->root), "%s/blobs/sha256", data_dir);
	snprintf(store->tmp, sizeof(store->tmp), "%s/tmp", data_dir);
	if (mkdir_p(store->root) < 0 || mkdir_p(store->tmp) < 0) {
		err_set(err, ERR_FAIL, "cannot create blob store in '%s': %s",
			data_dir, strerror(errno));
		blob_s3_free(store->s3);
		free(store);
		return ERR_FAIL;
	}
	*out = store;
	return 0;
}

void blob_store_free(struct blob_store *store)
{
	if (store)
		blob_s3_free(store->s3);
	free(store);
}

int blob_path(const struct blob_store *store, const char *sha, char *out,
	      size_t size)
{
	if (!is_hex(sha, SHA256_HEX_LEN) || sha[SHA256_HEX_LEN] || store->s3)
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

int blob_writer_begin_sha(struct blob_writer **out, struct blob_store *store,
			  const char *sha, struct err *err)
{
	struct blob_writer *w;
	int rc;

	if (!store->s3)
		return blob_writer_begin(out, store, err);
	if (!(w = calloc(1, sizeof(*w))))
		return err_set(err, ERR_FAIL, "out of memory");
	w->store = store;
	w->fd = -1;
	if ((rc = blob_s3_writer_begin(&w->s3w, store->s3, sha, err)) < 0) {
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

int blob_writer_write(struct blob_writer *w, const void *data, size_t len,
		      struct err *err)
{
	if (w->s3w)
		return blob_s3_writer_write(w->s3w, data, len, err);
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
	blob_s3_writer_abort(w->s3w);
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp_path[0])
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

	if (w->s3w) {
		struct blob_s3_writer *s3w = w->s3w;
		w->s3w = NULL;
		rc = blob_s3_writer_commit(s3w, sha, size_out, err);
		if (rc == 0 && expect_sha && strcmp(expect_sha, sha))
			rc = err_set(err, ERR_INVALID, "content hashes to "
				     "sha256 '%s', expected '%s'", sha,
				     expect_sha);
		else if (rc == 0)
			memcpy(sha_out, sha, sizeof(sha));
		goto out;
	}
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
	if (w->store->s3) {
		/* Spooled: now that the name is known, up it goes. */
		if ((rc = blob_s3_put_path(w->store->s3, w->tmp_path, sha,
					   size_out, err)) < 0)
			goto out;
		memcpy(sha_out, sha, sizeof(sha));
		goto out;
	}
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
	int fd, rc;

	if (store->s3) {
		if ((rc = blob_s3_put_path(store->s3, tmp_path, sha, NULL,
					   err)) == 0)
			unlink(tmp_path);
		return rc;
	}
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

/* The sha256 of a file's bytes. */
static int hash_path(const char *path, char sha[SHA256_HEX_LEN + 1],
		     struct err *err)
{
	struct sha256_ctx *ctx = sha256_new();
	char buf[1 << 16];
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0 || !ctx) {
		rc = err_set(err, ERR_FAIL, "cannot open '%s': %s", path,
			     strerror(errno));
		goto out;
	}
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
		sha256_update(ctx, buf, (size_t)n);
	}
	sha256_final_hex(ctx, sha);
	ctx = NULL;
out:
	sha256_free(ctx);
	if (fd >= 0)
		close(fd);
	return rc;
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
	if (store->s3) {
		/* Hashed first, so the bytes stream under their name. */
		close(fd);
		if ((rc = hash_path(path, sha_out, err)) < 0)
			return rc;
		return blob_s3_put_path(store->s3, path, sha_out, size_out, err);
	}
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

static int fd_sink(void *arg, const void *data, size_t len, struct err *err)
{
	if (write_full(*(int *)arg, data, len) < 0)
		return err_set(err, ERR_FAIL, "cannot write a copy of a blob: %s",
			       strerror(errno));
	return 0;
}

/* S3's blob_open: the object copied into an unlinked file of tmp/. */
static int open_copy(struct blob_store *store, const char *sha, int *fd,
		     uint64_t *size, struct err *err)
{
	char path[PATH_LEN];
	struct blob_info info;
	int rc;

	*fd = -1;
	if (!is_hex(sha, SHA256_HEX_LEN) || sha[SHA256_HEX_LEN])
		return err_set(err, ERR_INVALID, "malformed sha256 '%.80s'", sha);
	if ((rc = blob_s3_stat(store->s3, sha, &info, err)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/copy-XXXXXX", store->tmp);
	if ((*fd = mkostemp(path, O_CLOEXEC)) < 0)
		return err_set(err, ERR_FAIL, "cannot create a file in '%s': %s",
			       store->tmp, strerror(errno));
	unlink(path);
	if ((rc = blob_s3_read(store->s3, sha, 0, 0, fd_sink, fd, err)) < 0) {
		close(*fd);
		*fd = -1;
		return rc;
	}
	*size = info.size;
	return 0;
}

int blob_stat(struct blob_store *store, const char *sha,
	      struct blob_info *info, struct err *err)
{
	char path[PATH_LEN];
	struct stat st;

	if (!is_hex(sha, SHA256_HEX_LEN) || sha[SHA256_HEX_LEN])
		return err_set(err, ERR_INVALID, "malformed sha256 '%.80s'", sha);
	if (store->s3)
		return blob_s3_stat(store->s3, sha, info, err);
	blob_path(store, sha, path, sizeof(path));
	if (stat(path, &st) < 0)
		return err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_FAIL,
			       "cannot stat blob '%s': %s", sha, strerror(errno));
	info->size = (uint64_t)st.st_size;
	info->mtime = st.st_mtime;
	return 0;
}

int blob_read(struct blob_store *store, const char *sha, uint64_t off,
	      uint64_t len, blob_sink_fn sink, void *arg, struct err *err)
{
	char buf[1 << 16];
	uint64_t size;
	int fd, rc;

	if (store->s3) {
		if (!is_hex(sha, SHA256_HEX_LEN) || sha[SHA256_HEX_LEN])
			return err_set(err, ERR_INVALID, "malformed sha256 "
				       "'%.80s'", sha);
		return blob_s3_read(store->s3, sha, off, len, sink, arg, err);
	}
	if ((rc = blob_open(store, sha, &fd, &size, err)) < 0)
		return rc;
	if (off > size) {
		close(fd);
		return err_set(err, ERR_RANGE, "offset past the end of blob '%s'",
			       sha);
	}
	if (!len || len > size - off)
		len = size - off;
	while (len) {
		size_t want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = err_set(err, ERR_FAIL, "cannot read blob '%s'", sha);
			break;
		}
		if ((rc = sink(arg, buf, (size_t)n, err)) < 0)
			break;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	close(fd);
	return rc < 0 ? rc : 0;
}

int blob_presign(struct blob_store *store, const char *sha, long expires_s,
		 char **url, struct err *err)
{
	if (!store->s3)
		return err_set(err, ERR_INVALID, "a local blob store has no "
			       "presigned URLs");
	return blob_s3_presign(store->s3, sha, expires_s, url, err);
}

int blob_open(struct blob_store *store, const char *sha, int *fd,
	      uint64_t *size, struct err *err)
{
	char path[PATH_LEN];
	struct stat st;

	if (store->s3)
		return open_copy(store, sha, fd, size, err);
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
	struct blob_info info;

	if (store->s3)
		return is_hex(sha, SHA256_HEX_LEN) &&
		       blob_s3_stat(store->s3, sha, &info, NULL) == 0;
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
		else if (is_hex(e->d_name, SHA256_HEX_LEN)) {
			struct stat st;
			struct blob_info info;
			if (stat(path, &st) < 0)
				continue;	/* removed meanwhile */
			info.size = (uint64_t)st.st_size;
			info.mtime = st.st_mtime;
			rc = fn(e->d_name, &info, arg);
		}
	}
	closedir(d);
	return rc;
}

int blob_foreach(struct blob_store *store, blob_visit_fn fn, void *arg,
		 struct err *err)
{
	int rc;

	if (store->s3)
		return blob_s3_foreach(store->s3, fn, arg, err);
	rc = visit_dir(store->root, 0, fn, arg);
	if (rc == ERR_FAIL)
		err_set(err, ERR_FAIL, "cannot list blobs: %s", strerror(errno));
	return rc;
}

static int hash_sink(void *arg, const void *data, size_t len, struct err *err)
{
	(void)err;
	sha256_update(arg, data, len);
	return 0;
}

int blob_verify(struct blob_store *store, const char *sha, struct err *err)
{
	struct sha256_ctx *ctx = NULL;
	char buf[1 << 16], got[SHA256_HEX_LEN + 1];
	uint64_t size;
	int fd = -1, rc;

	if (store->s3) {
		if (!(ctx = sha256_new()))
			return err_set(err, ERR_FAIL, "out of memory");
		if ((rc = blob_read(store, sha, 0, 0, hash_sink, ctx, err)) < 0) {
			sha256_free(ctx);
			return rc;
		}
		goto check;
	}
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
check:
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

	if (store->s3 && is_hex(sha, SHA256_HEX_LEN))
		return blob_s3_touch(store->s3, sha, err);
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

	if (store->s3 && is_hex(sha, SHA256_HEX_LEN))
		return blob_s3_remove(store->s3, sha, err);
	if (blob_path(store, sha, path, sizeof(path)) < 0)
		return err_set(err, ERR_INVALID, "malformed sha256 '%.80s'", sha);
	if (unlink(path) < 0)
		return err_set(err, ERR_FAIL, "cannot remove blob '%s': %s",
			       sha, strerror(errno));
	snprintf(dir, sizeof(dir), "%s/%.2s/%.2s", store->root, sha, sha + 2);
	fsync_dir(dir);
	return 0;
}
