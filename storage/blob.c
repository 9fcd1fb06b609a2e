/*
 * blob.c: the blob store: its local-directory backend, the choice of
 * backend (<data>/blobs.conf) and the calls into the S3 one
 * (storage/blob_s3.c); see blob.h for the layout and the durability rule
 * both keep. The be_* functions act on one backend; the blob_* ones on
 * the store handle, which may switch backends while a server runs and
 * falls back to the previous one during a migration (struct blob_store).
 */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/blob.h"
#include "storage/blob_s3.h"

#define PATH_LEN 4096
/* Network reads arrive in small pieces (4 KiB from libevent 2.1); writes
 * are gathered so the disk sees large ones. */
#define WRITE_BUF (256 << 10)

/* One backend: the local directory or one S3 location. */
struct blob_be {
	char root[PATH_LEN];	/* <data>/blobs/sha256 */
	char tmp[PATH_LEN];	/* <data>/tmp */
	struct blob_s3 *s3;	/* NULL: the local directory */
	struct blob_location loc;
	atomic_int writers;	/* writes in flight (see enter_write) */
	struct blob_be *next;	/* in blob_store.all */
};

/* What one blobs.conf says: the backend that takes writes (cur) and,
 * while a migration is in progress, the one it moves away from (prev),
 * where reads that miss on cur look next. Never changed once published:
 * the two go together (publishing them one by one would let a reader see
 * a new cur with no fallback yet, or an old one without its own). */
struct blob_view {
	struct blob_be *cur, *prev;
	struct blob_view *next;	/* in blob_store.views */
};

/*
 * The store handle. A server follows <data>/blobs.conf
 * (blob_store_follow, blob_store_refresh): when it changes, the refresh
 * thread opens the backends it names and publishes a new view with one
 * atomic store. Requests load the view without a lock, once per call;
 * views and backends, once made, are freed only with the store (views,
 * all), so a request that loaded an old one may finish with it. Backends
 * are reused by location, so a store holds at most one per location it
 * was ever told, and one small view per change of blobs.conf.
 */
struct blob_store {
	char data_dir[PATH_LEN];
	struct blob_view *_Atomic view;
	struct blob_view *views;
	struct blob_be *all;
	pthread_mutex_t lock;	/* refresh: all, conf identity, acks */
	struct stat conf_st;	/* the blobs.conf last applied */
	unsigned long serial, acked;
	int follow_fd;		/* -1, or the shared lock on blobs.lock */
};

/* <data>/blobs.conf, "name value" lines. */
struct blob_conf {
	char url[600];
	char endpoint[1024];
	char region[64];
	char prev_url[600];
	char prev_endpoint[1024];
	char prev_region[64];
	unsigned long serial;
};

struct blob_writer {
	struct blob_be *store;
	struct sha256_ctx *hash;
	char tmp_path[PATH_LEN];
	int fd;
	uint64_t size;
	char *buf;	/* WRITE_BUF bytes not yet written */
	size_t buffered;
	struct blob_s3_writer *s3w;	/* streaming to S3 (no tmp file) */
	bool counted;	/* in store->writers */
};

static int be_open(struct blob_be *store, const char *sha, int *fd,
		   uint64_t *size, struct err *err);

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
		else if (!strcmp(name, "previous"))
			str_copy(c->prev_url, value, sizeof(c->prev_url));
		else if (!strcmp(name, "previous_s3_endpoint"))
			str_copy(c->prev_endpoint, value,
				 sizeof(c->prev_endpoint));
		else if (!strcmp(name, "previous_s3_region"))
			str_copy(c->prev_region, value, sizeof(c->prev_region));
		else if (!strcmp(name, "serial"))
			c->serial = strtoul(value, NULL, 10);
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
	if (c->prev_url[0] && strncmp(c->prev_url, "s3://", 5) &&
	    strcmp(c->prev_url, "local"))
		return err_set(err, ERR_INVALID, "%s: 'previous' must be local "
			       "or s3://BUCKET[/PREFIX]", path);
	return 0;
}

/* Written to tmp, synced and renamed: a crash leaves the old or the new. */
static int conf_write(const char *data_dir, const struct blob_conf *c,
		      struct err *err)
{
	char path[PATH_LEN], tmp[PATH_LEN + 8], text[6000];
	int fd, n;

	snprintf(path, sizeof(path), "%s/blobs.conf", data_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(text, sizeof(text), "# Where this data directory keeps "
		     "its LFS objects (haven serve --blobs).\nblobs %s\n%s%s%s"
		     "%s%s%s", c->url, c->endpoint[0] ? "s3_endpoint " : "",
		     c->endpoint, c->endpoint[0] ? "\n" : "",
		     c->region[0] ? "s3_region " : "", c->region,
		     c->region[0] ? "\n" : "");
	if (c->prev_url[0])
		n += snprintf(text + n, sizeof(text) - (size_t)n, "# A "
			      "migration (haven blobs migrate) is in progress: "
			      "reads that miss look here.\nprevious %s\n%s%s%s"
			      "%s%s%s", c->prev_url,
			      c->prev_endpoint[0] ?
			      "previous_s3_endpoint " : "",
			      c->prev_endpoint, c->prev_endpoint[0] ? "\n" : "",
			      c->prev_region[0] ? "previous_s3_region " : "",
			      c->prev_region, c->prev_region[0] ? "\n" : "");
	if (c->serial)
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			      "serial %lu\n", c->serial);
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
				       "blobs first (haven blobs migrate --to "
				       "%s)", data_dir, old.url, url, url);
	}
	if (!strcmp(url, "local"))
		return 0;
	c = old;
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

static int be_store_open(struct blob_be **out, const char *data_dir,
			 const struct blob_location *loc, struct err *err)
{
	struct blob_be *store = calloc(1, sizeof(*store));
	int rc;

	if (!store)
		return err_set(err, ERR_FAIL, "out of memory");
	store->loc = *loc;
	if (!strncmp(loc->url, "s3://", 5) &&
	    (rc = blob_s3_open(&store->s3, loc->url, loc->endpoint,
			       loc->region, err)) < 0) {
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

static void be_store_free(struct blob_be *store)
{
	if (store)
		blob_s3_free(store->s3);
	free(store);
}

static int be_path(const struct blob_be *store, const char *sha, char *out,
		   size_t size)
{
	if (!is_hex(sha, SHA256_HEX_LEN) || sha[SHA256_HEX_LEN] || store->s3)
		return ERR_INVALID;
	snprintf(out, size, "%s/%.2s/%.2s/%s", store->root, sha, sha + 2, sha);
	return 0;
}

static int be_writer_begin(struct blob_writer **out, struct blob_be *store,
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

static int be_writer_begin_sha(struct blob_writer **out, struct blob_be *store,
			       const char *sha, struct err *err)
{
	struct blob_writer *w;
	int rc;

	if (!store->s3)
		return be_writer_begin(out, store, err);
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
	if (w->counted)
		atomic_fetch_sub(&w->store->writers, 1);
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
static int make_fanout(struct blob_be *store, const char *sha)
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
	be_path(w->store, sha, final, sizeof(final));
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

static int be_adopt(struct blob_be *store, const char *tmp_path,
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
	if (be_path(store, sha, final, sizeof(final)) < 0)
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

static const char *be_tmp_dir(const struct blob_be *store)
{
	return store->tmp;
}

/* Hands the bytes of the file at path to sink, in 64 KiB pieces. */
static int file_each_chunk(const char *path,
			   int (*sink)(void *arg, const void *data, size_t len,
				       struct err *err),
			   void *arg, struct err *err)
{
	char buf[1 << 16];
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return err_set(err, ERR_FAIL, "cannot open '%s': %s", path,
			       strerror(errno));
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = err_set(err, ERR_FAIL, "cannot read '%s': %s",
				     path, strerror(errno));
		if (n <= 0 || (rc = sink(arg, buf, (size_t)n, err)) < 0)
			break;
	}
	close(fd);
	return rc;
}

static int hash_sink(void *arg, const void *data, size_t len,
		     struct err *err)
{
	(void)err;
	sha256_update(arg, data, len);
	return 0;
}

static int writer_sink(void *arg, const void *data, size_t len,
		       struct err *err)
{
	return blob_writer_write(arg, data, len, err);
}

static int be_put_file(struct blob_be *store, const char *path,
		       char sha_out[SHA256_HEX_LEN + 1], uint64_t *size_out,
		       struct err *err)
{
	struct blob_writer *w = NULL;
	struct sha256_ctx *ctx;
	int rc;

	if (store->s3) {
		/* Hashed first, so the bytes stream under their name. */
		if (!(ctx = sha256_new()))
			return err_set(err, ERR_FAIL, "out of memory");
		if ((rc = file_each_chunk(path, hash_sink, ctx, err)) < 0) {
			sha256_free(ctx);
			return rc;
		}
		sha256_final_hex(ctx, sha_out);
		return blob_s3_put_path(store->s3, path, sha_out, size_out, err);
	}
	if ((rc = be_writer_begin(&w, store, err)) < 0 ||
	    (rc = file_each_chunk(path, writer_sink, w, err)) < 0) {
		blob_writer_abort(w);
		return rc;
	}
	return blob_writer_commit(w, NULL, sha_out, size_out, err);
}

static int fd_sink(void *arg, const void *data, size_t len, struct err *err)
{
	if (write_full(*(int *)arg, data, len) < 0)
		return err_set(err, ERR_FAIL, "cannot write a copy of a blob: %s",
			       strerror(errno));
	return 0;
}

/* S3's be_open: the object copied into an unlinked file of tmp/. */
static int open_copy(struct blob_be *store, const char *sha, int *fd,
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

static int be_stat(struct blob_be *store, const char *sha,
		   struct blob_info *info, struct err *err)
{
	char path[PATH_LEN];
	struct stat st;

	if (!is_hex(sha, SHA256_HEX_LEN) || sha[SHA256_HEX_LEN])
		return err_set(err, ERR_INVALID, "malformed sha256 '%.80s'", sha);
	if (store->s3)
		return blob_s3_stat(store->s3, sha, info, err);
	be_path(store, sha, path, sizeof(path));
	if (stat(path, &st) < 0)
		return err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_FAIL,
			       "cannot stat blob '%s': %s", sha, strerror(errno));
	info->size = (uint64_t)st.st_size;
	info->mtime = st.st_mtime;
	return 0;
}

static int be_read(struct blob_be *store, const char *sha, uint64_t off,
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
	if ((rc = be_open(store, sha, &fd, &size, err)) < 0)
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

static int be_presign(struct blob_be *store, const char *sha, long expires_s,
		      char **url, struct err *err)
{
	if (!store->s3)
		return err_set(err, ERR_INVALID, "a local blob store has no "
			       "presigned URLs");
	return blob_s3_presign(store->s3, sha, expires_s, url, err);
}

static int be_open(struct blob_be *store, const char *sha, int *fd,
		   uint64_t *size, struct err *err)
{
	char path[PATH_LEN];
	struct stat st;

	if (store->s3)
		return open_copy(store, sha, fd, size, err);
	if (be_path(store, sha, path, sizeof(path)) < 0)
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

static bool be_exists(struct blob_be *store, const char *sha)
{
	char path[PATH_LEN];
	struct blob_info info;

	if (store->s3)
		return is_hex(sha, SHA256_HEX_LEN) &&
		       blob_s3_stat(store->s3, sha, &info, NULL) == 0;
	return be_path(store, sha, path, sizeof(path)) == 0 &&
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

static int be_foreach(struct blob_be *store, blob_visit_fn fn, void *arg,
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

static int be_verify(struct blob_be *store, const char *sha, struct err *err)
{
	struct sha256_ctx *ctx = NULL;
	char buf[1 << 16], got[SHA256_HEX_LEN + 1];
	uint64_t size;
	int fd = -1, rc;

	if (store->s3) {
		if (!(ctx = sha256_new()))
			return err_set(err, ERR_FAIL, "out of memory");
		if ((rc = be_read(store, sha, 0, 0, hash_sink, ctx, err)) < 0) {
			sha256_free(ctx);
			return rc;
		}
		goto check;
	}
	if ((rc = be_open(store, sha, &fd, &size, err)) < 0)
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
static int be_touch(struct blob_be *store, const char *sha, struct err *err)
{
	char path[PATH_LEN];

	if (store->s3 && is_hex(sha, SHA256_HEX_LEN))
		return blob_s3_touch(store->s3, sha, err);
	if (be_path(store, sha, path, sizeof(path)) < 0)
		return err_set(err, ERR_INVALID, "malformed sha256 '%.80s'", sha);
	if (utimensat(AT_FDCWD, path, NULL, 0) < 0)
		return err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_FAIL,
			       "cannot touch blob '%s': %s", sha, strerror(errno));
	return 0;
}

static int be_remove(struct blob_be *store, const char *sha, struct err *err)
{
	char path[PATH_LEN], dir[PATH_LEN];

	if (store->s3 && is_hex(sha, SHA256_HEX_LEN))
		return blob_s3_remove(store->s3, sha, err);
	if (be_path(store, sha, path, sizeof(path)) < 0)
		return err_set(err, ERR_INVALID, "malformed sha256 '%.80s'", sha);
	if (unlink(path) < 0)
		return err_set(err, ERR_FAIL, "cannot remove blob '%s': %s",
			       sha, strerror(errno));
	snprintf(dir, sizeof(dir), "%s/%.2s/%.2s", store->root, sha, sha + 2);
	fsync_dir(dir);
	return 0;
}

/* --- the store: its backends, the fallback and the switch --- */

static const struct blob_view *view_of(const struct blob_store *store)
{
	return atomic_load(&((struct blob_store *)store)->view);
}

static struct blob_be *cur_be(const struct blob_store *store)
{
	return view_of(store)->cur;
}

/* Publishes cur and prev (under store->lock, or before any sharing). */
static int view_publish(struct blob_store *store, struct blob_be *cur,
			struct blob_be *prev, struct err *err)
{
	struct blob_view *v = calloc(1, sizeof(*v));

	if (!v)
		return err_set(err, ERR_FAIL, "out of memory");
	v->cur = cur;
	v->prev = prev == cur ? NULL : prev;
	v->next = store->views;
	store->views = v;
	atomic_store(&store->view, v);
	return 0;
}

static bool same_location(const struct blob_location *a,
			  const struct blob_location *b)
{
	return !strcmp(a->url, b->url) && !strcmp(a->endpoint, b->endpoint) &&
	       !strcmp(a->region, b->region);
}

/* The backend for loc: one opened before, or a new one (under lock). */
static int be_get(struct blob_store *store, const struct blob_location *loc,
		  struct blob_be **out, struct err *err)
{
	struct blob_be *be;
	int rc;

	for (be = store->all; be; be = be->next) {
		if (same_location(&be->loc, loc)) {
			*out = be;
			return 0;
		}
	}
	if ((rc = be_store_open(&be, store->data_dir, loc, err)) < 0)
		return rc;
	be->next = store->all;
	store->all = be;
	*out = be;
	return 0;
}

static void conf_locations(const struct blob_conf *c, bool found,
			   struct blob_config *out)
{
	memset(out, 0, sizeof(*out));
	str_copy(out->cur.url, found ? c->url : "local", sizeof(out->cur.url));
	str_copy(out->cur.endpoint, c->endpoint, sizeof(out->cur.endpoint));
	str_copy(out->cur.region, c->region, sizeof(out->cur.region));
	str_copy(out->prev.url, c->prev_url, sizeof(out->prev.url));
	str_copy(out->prev.endpoint, c->prev_endpoint,
		 sizeof(out->prev.endpoint));
	str_copy(out->prev.region, c->prev_region, sizeof(out->prev.region));
	out->serial = c->serial;
}

int blob_config_read(const char *data_dir, struct blob_config *out,
		     struct err *err)
{
	struct blob_conf c;
	bool found;
	int rc;

	if ((rc = conf_read(data_dir, &c, &found, err)) < 0)
		return rc;
	conf_locations(&c, found, out);
	return 0;
}

int blob_config_write(const char *data_dir, const struct blob_config *bc,
		      struct err *err)
{
	struct blob_conf c;

	memset(&c, 0, sizeof(c));
	str_copy(c.url, bc->cur.url, sizeof(c.url));
	str_copy(c.endpoint, bc->cur.endpoint, sizeof(c.endpoint));
	str_copy(c.region, bc->cur.region, sizeof(c.region));
	str_copy(c.prev_url, bc->prev.url, sizeof(c.prev_url));
	str_copy(c.prev_endpoint, bc->prev.endpoint, sizeof(c.prev_endpoint));
	str_copy(c.prev_region, bc->prev.region, sizeof(c.prev_region));
	c.serial = bc->serial;
	return conf_write(data_dir, &c, err);
}

/* Opens what blobs.conf names and publishes it; store->lock held. */
static int apply_conf(struct blob_store *store, struct err *err)
{
	struct blob_config bc;
	struct blob_be *cur, *prev = NULL;
	char path[PATH_LEN];
	struct stat st;
	int rc;

	snprintf(path, sizeof(path), "%s/blobs.conf", store->data_dir);
	memset(&st, 0, sizeof(st));
	if (stat(path, &st) < 0 && errno != ENOENT)
		return err_set(err, ERR_FAIL, "cannot stat '%s': %s", path,
			       strerror(errno));
	if ((rc = blob_config_read(store->data_dir, &bc, err)) < 0 ||
	    (rc = be_get(store, &bc.cur, &cur, err)) < 0 ||
	    (bc.prev.url[0] && (rc = be_get(store, &bc.prev, &prev, err)) < 0))
		return rc;
	if ((rc = view_publish(store, cur, prev, err)) < 0)
		return rc;
	store->conf_st = st;
	store->serial = bc.serial;
	return 0;
}

int blob_store_open_at(struct blob_store **out, const char *data_dir,
		       const struct blob_location *loc, struct err *err)
{
	struct blob_store *store = calloc(1, sizeof(*store));
	int rc;

	if (!store)
		return err_set(err, ERR_FAIL, "out of memory");
	str_copy(store->data_dir, data_dir, sizeof(store->data_dir));
	pthread_mutex_init(&store->lock, NULL);
	store->follow_fd = -1;
	if (loc) {
		struct blob_be *be;
		if ((rc = be_get(store, loc, &be, err)) < 0 ||
		    (rc = view_publish(store, be, NULL, err)) < 0)
			goto fail;
	} else if ((rc = apply_conf(store, err)) < 0) {
		goto fail;
	}
	*out = store;
	return 0;
fail:
	blob_store_free(store);
	return rc;
}

int blob_store_open(struct blob_store **out, const char *data_dir,
		    struct err *err)
{
	return blob_store_open_at(out, data_dir, NULL, err);
}

void blob_store_free(struct blob_store *store)
{
	struct blob_view *v;
	struct blob_be *be;

	if (!store)
		return;
	while ((be = store->all)) {
		store->all = be->next;
		be_store_free(be);
	}
	while ((v = store->views)) {
		store->views = v->next;
		free(v);
	}
	if (store->follow_fd >= 0)
		close(store->follow_fd);
	pthread_mutex_destroy(&store->lock);
	free(store);
}

bool blob_is_local(const struct blob_store *store)
{
	return cur_be(store)->s3 == NULL;
}

const char *blob_store_location(const struct blob_store *store)
{
	struct blob_be *be = cur_be(store);

	return be->s3 ? blob_s3_url(be->s3) : "local";
}

int blob_location_check(const struct blob_location *loc, struct err *err)
{
	if (!strcmp(loc->url, "local"))
		return 0;
	return blob_s3_check(loc->url, loc->endpoint, loc->region, err);
}

bool blob_migrating(const struct blob_store *store)
{
	return view_of(store)->prev != NULL;
}

/* --- following blobs.conf (the server) --- */

static bool conf_changed(struct blob_store *store)
{
	char path[PATH_LEN];
	struct stat st;

	snprintf(path, sizeof(path), "%s/blobs.conf", store->data_dir);
	memset(&st, 0, sizeof(st));
	if (stat(path, &st) < 0 && errno != ENOENT)
		return false;
	return st.st_ino != store->conf_st.st_ino ||
	       st.st_size != store->conf_st.st_size ||
	       st.st_mtim.tv_sec != store->conf_st.st_mtim.tv_sec ||
	       st.st_mtim.tv_nsec != store->conf_st.st_mtim.tv_nsec;
}

/* Tells blob_config_wait that this process writes only to cur: no write
 * to another backend is in flight (enter_write keeps new ones off). */
static void maybe_ack(struct blob_store *store)
{
	char path[PATH_LEN], tmp[PATH_LEN + 8], text[32];
	struct blob_be *cur = cur_be(store);
	int fd, n;

	if (store->follow_fd < 0 || store->acked == store->serial)
		return;
	for (struct blob_be *be = store->all; be; be = be->next) {
		if (be != cur && atomic_load(&be->writers) > 0)
			return;
	}
	snprintf(path, sizeof(path), "%s/blobs.seen", store->data_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(text, sizeof(text), "%lu\n", store->serial);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_full(fd, text, (size_t)n) < 0 || close(fd) < 0 ||
	    rename(tmp, path) < 0) {
		log_msg(LOG_WARN, "event=blob_store_ack_failed path=%s "
			"error=%s", path, strerror(errno));
		return;
	}
	store->acked = store->serial;
}

int blob_store_refresh(struct blob_store *store, struct err *err)
{
	int rc = 0;

	pthread_mutex_lock(&store->lock);
	if (conf_changed(store)) {
		struct blob_be *was = cur_be(store);
		if ((rc = apply_conf(store, err)) == 0) {
			struct blob_be *prev = view_of(store)->prev;
			log_msg(LOG_INFO, "event=blob_store_switch location=%s "
				"previous=%s was=%s serial=%lu",
				blob_store_location(store),
				prev ? prev->loc.url : "none", was->loc.url,
				store->serial);
		}
	}
	if (rc == 0)
		maybe_ack(store);
	pthread_mutex_unlock(&store->lock);
	return rc;
}

int blob_store_follow(struct blob_store *store, struct err *err)
{
	char path[PATH_LEN];
	int fd;

	snprintf(path, sizeof(path), "%s/blobs.lock", store->data_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || flock(fd, LOCK_SH) < 0) {
		err_set(err, ERR_FAIL, "cannot lock '%s': %s", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return ERR_FAIL;
	}
	pthread_mutex_lock(&store->lock);
	store->follow_fd = fd;
	store->acked = (unsigned long)-1;
	pthread_mutex_unlock(&store->lock);
	/* blobs.conf may have changed between the open and the lock; a
	 * migration that found the lock free did not wait for this one. */
	memset(&store->conf_st, 0, sizeof(store->conf_st));
	return blob_store_refresh(store, err);
}

static int read_seen(const char *data_dir, unsigned long *serial)
{
	char path[PATH_LEN], text[32];
	FILE *f;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/blobs.seen", data_dir);
	if (!(f = fopen(path, "re")))
		return -1;
	if (fgets(text, sizeof(text), f)) {
		*serial = strtoul(text, NULL, 10);
		rc = 0;
	}
	fclose(f);
	return rc;
}

static int wait_timeout(int timeout_s, struct err *err)
{
	return err_set(err, ERR_TIMEOUT, "the running server did not take up "
		       "the new blobs.conf within %d s: its log says why (it "
		       "needs the S3 keys in its environment too); reads fall "
		       "back to the old store meanwhile, and the same command "
		       "run again finishes the move", timeout_s);
}

int blob_config_wait(const char *data_dir, unsigned long serial,
		     int timeout_s, bool *server, struct err *err)
{
	char path[PATH_LEN];
	time_t until = time(NULL) + timeout_s;
	int fd;

	*server = false;
	snprintf(path, sizeof(path), "%s/blobs.lock", data_dir);
	for (;;) {
		unsigned long seen;
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return err_set(err, ERR_FAIL, "cannot open '%s': %s",
				       path, strerror(errno));
		/* Free: no server follows this store now, and one that starts
		 * later takes the lock before it reads blobs.conf. */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			close(fd);
			return 0;
		}
		close(fd);
		*server = true;
		if (read_seen(data_dir, &seen) == 0 && seen == serial)
			return 0;
		if (time(NULL) >= until)
			return wait_timeout(timeout_s, err);
		usleep(100 * 1000);
	}
}

/* --- the calls, on cur (writes) or cur then prev (reads) --- */

/* The backend a write goes to, counted in its writers until the write
 * ends. The second look closes the race with a switch: a refresh that
 * saw writers == 0 on the old backend has already published the new one,
 * so this write backs off and goes there. */
static struct blob_be *enter_write(struct blob_store *store)
{
	for (;;) {
		struct blob_be *be = cur_be(store);
		atomic_fetch_add(&be->writers, 1);
		if (be == cur_be(store))
			return be;
		atomic_fetch_sub(&be->writers, 1);
	}
}

static void leave_write(struct blob_be *be)
{
	atomic_fetch_sub(&be->writers, 1);
}

int blob_writer_begin(struct blob_writer **out, struct blob_store *store,
		      struct err *err)
{
	struct blob_be *be = enter_write(store);
	int rc = be_writer_begin(out, be, err);

	if (rc < 0)
		leave_write(be);
	else
		(*out)->counted = true;
	return rc;
}

int blob_writer_begin_sha(struct blob_writer **out, struct blob_store *store,
			  const char *sha, struct err *err)
{
	struct blob_be *be = enter_write(store);
	int rc = be_writer_begin_sha(out, be, sha, err);

	if (rc < 0)
		leave_write(be);
	else
		(*out)->counted = true;
	return rc;
}

int blob_put_file(struct blob_store *store, const char *path,
		  char sha_out[SHA256_HEX_LEN + 1], uint64_t *size_out,
		  struct err *err)
{
	struct blob_be *be = enter_write(store);
	int rc = be_put_file(be, path, sha_out, size_out, err);

	leave_write(be);
	return rc;
}

int blob_adopt(struct blob_store *store, const char *tmp_path,
	       const char *sha, struct err *err)
{
	struct blob_be *be = enter_write(store);
	int rc = be_adopt(be, tmp_path, sha, err);

	leave_write(be);
	return rc;
}

const char *blob_tmp_dir(const struct blob_store *store)
{
	return be_tmp_dir(cur_be(store));
}

int blob_path(const struct blob_store *store, const char *sha, char *out,
	      size_t size)
{
	return be_path(cur_be(store), sha, out, size);
}

/* A miss on cur during a migration: the object may not have moved yet. */
static struct blob_be *fallback(const struct blob_view *v, int rc)
{
	return rc == ERR_NOTFOUND ? v->prev : NULL;
}

int blob_open(struct blob_store *store, const char *sha, int *fd,
	      uint64_t *size, struct err *err)
{
	const struct blob_view *v = view_of(store);
	struct blob_be *be;
	int rc = be_open(v->cur, sha, fd, size, err);

	if (rc < 0 && (be = fallback(v, rc)))
		rc = be_open(be, sha, fd, size, err);
	return rc;
}

bool blob_exists(struct blob_store *store, const char *sha)
{
	const struct blob_view *v = view_of(store);

	return be_exists(v->cur, sha) || (v->prev && be_exists(v->prev, sha));
}

int blob_stat(struct blob_store *store, const char *sha,
	      struct blob_info *info, struct err *err)
{
	const struct blob_view *v = view_of(store);
	struct blob_be *be;
	int rc = be_stat(v->cur, sha, info, err);

	if (rc < 0 && (be = fallback(v, rc)))
		rc = be_stat(be, sha, info, err);
	return rc;
}

int blob_read(struct blob_store *store, const char *sha, uint64_t off,
	      uint64_t len, blob_sink_fn sink, void *arg, struct err *err)
{
	const struct blob_view *v = view_of(store);
	struct blob_be *be;
	int rc = be_read(v->cur, sha, off, len, sink, arg, err);

	/* A missing object fails before its first byte reaches sink. */
	if (rc < 0 && (be = fallback(v, rc)))
		rc = be_read(be, sha, off, len, sink, arg, err);
	return rc;
}

int blob_presign(struct blob_store *store, const char *sha, long expires_s,
		 char **url, struct err *err)
{
	const struct blob_view *v = view_of(store);
	struct blob_be *cur = v->cur, *prev = v->prev;
	struct blob_info info;

	/* Mid-migration between two S3 stores, one HEAD says which holds
	 * it; a local previous store has no URL to give. */
	if (prev && prev->s3 && cur->s3 &&
	    be_stat(cur, sha, &info, NULL) == ERR_NOTFOUND)
		return be_presign(prev, sha, expires_s, url, err);
	return be_presign(cur, sha, expires_s, url, err);
}

int blob_foreach(struct blob_store *store, blob_visit_fn fn, void *arg,
		 struct err *err)
{
	return be_foreach(cur_be(store), fn, arg, err);
}

int blob_verify(struct blob_store *store, const char *sha, struct err *err)
{
	const struct blob_view *v = view_of(store);
	struct blob_be *be;
	int rc = be_verify(v->cur, sha, err);

	if (rc < 0 && (be = fallback(v, rc)))
		rc = be_verify(be, sha, err);
	return rc;
}

int blob_touch(struct blob_store *store, const char *sha, struct err *err)
{
	const struct blob_view *v = view_of(store);
	struct blob_be *be;
	int rc = be_touch(v->cur, sha, err);

	if (rc < 0 && (be = fallback(v, rc)))
		rc = be_touch(be, sha, err);
	return rc;
}

int blob_remove(struct blob_store *store, const char *sha, struct err *err)
{
	return be_remove(cur_be(store), sha, err);
}
