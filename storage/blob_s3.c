/*
 * blob_s3.c: the S3 backend of the blob store; see blob_s3.h for the
 * object layout and why an object appears under its final key only once
 * its sha256 is checked.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/blob_s3.h"
#include "storage/hash.h"
#include "storage/s3_client.h"

/* Memory one upload holds; S3 wants at least 5 MiB per part but the last. */
#define PART_SIZE ((size_t)16 << 20)
#define KEY_LEN 700

/* The clients of the threads that used this store; freed at thread exit
 * (the key's destructor) or with the store. */
struct client_slot {
	struct blob_s3 *b;
	struct s3_client *c;
	struct client_slot *next;
};

struct blob_s3 {
	char url[600];
	char bucket[64];
	char prefix[512];	/* "" or "some/path/" */
	char endpoint[1024];
	char region[64];
	struct s3_config cfg;
	pthread_key_t key;
	pthread_mutex_t lock;
	struct client_slot *slots;
};

struct blob_s3_writer {
	struct blob_s3 *b;
	struct s3_client *c;
	struct sha256_ctx *hash;
	char sha[SHA256_HEX_LEN + 1];
	char key[KEY_LEN];
	char *buf;
	size_t len;
	uint64_t size;
	char *upload_id;
	char (*etags)[80];
	unsigned nparts, cap;
};

static void slot_unlink_locked(struct blob_s3 *b, struct client_slot *s)
{
	for (struct client_slot **p = &b->slots; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			return;
		}
	}
}

static void slot_destroy(void *arg)
{
	struct client_slot *s = arg;

	pthread_mutex_lock(&s->b->lock);
	slot_unlink_locked(s->b, s);
	pthread_mutex_unlock(&s->b->lock);
	s3_client_free(s->c);
	free(s);
}

/* The code client() failed with (err may be NULL). */
static int fail_code(const struct err *err)
{
	return err && err->code ? err->code : ERR_FAIL;
}

/* This thread's client, made on first use. */
static struct s3_client *client(struct blob_s3 *b, struct err *err)
{
	struct client_slot *s = pthread_getspecific(b->key);

	if (s)
		return s->c;
	if (!(s = calloc(1, sizeof(*s)))) {
		err_set(err, ERR_FAIL, "out of memory");
		return NULL;
	}
	if (s3_client_new(&s->c, &b->cfg, err) < 0) {
		free(s);
		return NULL;
	}
	s->b = b;
	pthread_mutex_lock(&b->lock);
	s->next = b->slots;
	b->slots = s;
	pthread_mutex_unlock(&b->lock);
	pthread_setspecific(b->key, s);
	return s->c;
}

static void object_key(const struct blob_s3 *b, const char *dir,
		       const char *sha, char out[KEY_LEN])
{
	snprintf(out, KEY_LEN, "%s%s/%s", b->prefix, dir, sha);
}

/* "s3://bucket[/prefix]" into bucket and prefix ("p/" with its slash). */
static int parse_url(struct blob_s3 *b, const char *url, struct err *err)
{
	const char *p = url + 5, *slash;
	size_t n;

	if (strncmp(url, "s3://", 5))
		return err_set(err, ERR_INVALID, "invalid blob store '%.200s': "
			       "expected s3://BUCKET[/PREFIX]", url);
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n < 3 || n >= sizeof(b->bucket))
		return err_set(err, ERR_INVALID, "invalid bucket in '%.200s': "
			       "3 to 63 characters", url);
	memcpy(b->bucket, p, n);
	b->bucket[n] = '\0';
	for (const char *c = b->bucket; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
		      *c == '-' || *c == '.'))
			return err_set(err, ERR_INVALID, "invalid bucket '%s': "
				       "a-z, 0-9, '.' and '-' only", b->bucket);
	}
	if (slash && slash[1]) {
		const char *pre = slash + 1;
		size_t l = strlen(pre);
		while (l && pre[l - 1] == '/')
			l--;
		if (l + 2 > sizeof(b->prefix) || strstr(pre, ".."))
			return err_set(err, ERR_INVALID, "invalid prefix in "
				       "'%.200s'", url);
		snprintf(b->prefix, sizeof(b->prefix), "%.*s/", (int)l, pre);
	}
	str_copy(b->url, url, sizeof(b->url));
	return 0;
}

int blob_s3_open(struct blob_s3 **out, const char *url, const char *endpoint,
		 const char *region, struct err *err)
{
	struct blob_s3 *b = calloc(1, sizeof(*b));
	struct s3_client *c;
	int rc;

	if (!b)
		return err_set(err, ERR_FAIL, "out of memory");
	pthread_mutex_init(&b->lock, NULL);
	if (pthread_key_create(&b->key, slot_destroy) != 0) {
		pthread_mutex_destroy(&b->lock);
		free(b);
		return err_set(err, ERR_FAIL, "cannot create a thread key");
	}
	if ((rc = parse_url(b, url, err)) < 0)
		goto fail;
	if (endpoint && endpoint[0]) {
		str_copy(b->endpoint, endpoint, sizeof(b->endpoint));
		b->cfg.endpoint = b->endpoint;
	}
	if (region && region[0]) {
		str_copy(b->region, region, sizeof(b->region));
		b->cfg.region = b->region;
	}
	b->cfg.part_size = PART_SIZE;
	if (!(c = client(b, err))) {
		rc = fail_code(err);
		goto fail;
	}
	/* A bucket made by another account (or keys that may not create
	 * buckets) answers 409 or 403: the store answered and the keys are
	 * valid, which is what this checks; object calls say the rest. */
	rc = s3_bucket_create(c, b->bucket, err);
	if (rc == ERR_CONFLICT || rc == ERR_FORBIDDEN) {
		if (err)
			memset(err, 0, sizeof(*err));
		rc = 0;
	}
	if (rc < 0) {
		char why[ERR_MSG_LEN];
		str_copy(why, err ? err->msg : "", sizeof(why));
		err_set(err, rc, "blob store %s is not usable: %s", url, why);
		goto fail;
	}
	*out = b;
	return 0;
fail:
	blob_s3_free(b);
	return rc;
}

static int stop_listing(void *arg, const char *key, uint64_t size,
			const char *etag, struct err *err)
{
	(void)key;
	(void)size;
	(void)etag;
	*(bool *)arg = true;
	return err_set(err, ERR_FAIL, "stop");
}

int blob_s3_check(const char *url, const char *endpoint, const char *region,
		  struct err *err)
{
	struct blob_s3 b;
	struct s3_config cfg = { 0 };
	struct s3_client *c = NULL;
	bool any = false;
	int rc;

	memset(&b, 0, sizeof(b));
	if ((rc = parse_url(&b, url, err)) < 0)
		return rc;
	cfg.endpoint = endpoint && endpoint[0] ? endpoint : NULL;
	cfg.region = region && region[0] ? region : NULL;
	cfg.list_page = 1;
	if ((rc = s3_client_new(&c, &cfg, err)) < 0)
		return rc;
	/* One page of one key says that the bucket exists and the keys may
	 * read it; the first key stops the listing. */
	rc = s3_object_list(c, b.bucket, b.prefix[0] ? b.prefix : NULL,
			    stop_listing, &any, err);
	if (any) {
		rc = 0;
		if (err)
			memset(err, 0, sizeof(*err));
	}
	if (rc == ERR_NOTFOUND)
		err_set(err, rc, "bucket '%s' does not exist at %s; create it "
			"first (or pass --create-bucket)", b.bucket,
			cfg.endpoint ? cfg.endpoint : "$HAVEN_S3_ENDPOINT");
	else if (rc < 0) {
		char why[ERR_MSG_LEN];
		str_copy(why, err ? err->msg : "", sizeof(why));
		err_set(err, rc, "blob store %s is not usable: %s", url, why);
	}
	s3_client_free(c);
	return rc;
}

void blob_s3_free(struct blob_s3 *b)
{
	struct client_slot *s;

	if (!b)
		return;
	/* After the key is gone no thread runs its destructor on exit. */
	pthread_key_delete(b->key);
	while ((s = b->slots)) {
		b->slots = s->next;
		s3_client_free(s->c);
		free(s);
	}
	pthread_mutex_destroy(&b->lock);
	free(b);
}

const char *blob_s3_url(const struct blob_s3 *b)
{
	return b->url;
}

/* --- writes --- */

int blob_s3_writer_begin(struct blob_s3_writer **out, struct blob_s3 *b,
			 const char *sha, struct err *err)
{
	struct blob_s3_writer *w;

	if (!sha || !is_hex(sha, SHA256_HEX_LEN))
		return err_set(err, ERR_INVALID, "malformed sha256 '%.80s'",
			       sha ? sha : "");
	if (!(w = calloc(1, sizeof(*w))))
		return err_set(err, ERR_FAIL, "out of memory");
	w->b = b;
	memcpy(w->sha, sha, sizeof(w->sha));
	object_key(b, "sha256", sha, w->key);
	w->hash = sha256_new();
	w->buf = malloc(PART_SIZE);
	if (!w->hash || !w->buf || !(w->c = client(b, err))) {
		blob_s3_writer_abort(w);
		return err && err->code ? err->code :
		       err_set(err, ERR_FAIL, "out of memory");
	}
	*out = w;
	return 0;
}

static int send_part(struct blob_s3_writer *w, struct err *err)
{
	int rc;

	if (!w->upload_id &&
	    (rc = s3_multipart_begin(w->c, w->b->bucket, w->key, &w->upload_id,
				     err)) < 0)
		return rc;
	if (w->nparts == w->cap) {
		unsigned cap = w->cap ? w->cap * 2 : 16;
		void *p = realloc(w->etags, cap * sizeof(*w->etags));
		if (!p)
			return err_set(err, ERR_FAIL, "out of memory");
		w->etags = p;
		w->cap = cap;
	}
	if ((rc = s3_multipart_part_put(w->c, w->b->bucket, w->key,
					w->upload_id, w->nparts + 1, w->buf,
					w->len, NULL, w->etags[w->nparts],
					err)) < 0)
		return rc;
	w->nparts++;
	w->len = 0;
	return 0;
}

int blob_s3_writer_write(struct blob_s3_writer *w, const void *data,
			 size_t len, struct err *err)
{
	const char *p = data;
	int rc;

	sha256_update(w->hash, data, len);
	w->size += len;
	while (len) {
		size_t n = PART_SIZE - w->len;
		if (n > len)
			n = len;
		memcpy(w->buf + w->len, p, n);
		w->len += n;
		p += n;
		len -= n;
		/* A full buffer goes out only when more follows: the last
		 * part must wait for the hash check. */
		if (w->len == PART_SIZE && len && (rc = send_part(w, err)) < 0)
			return rc;
	}
	return 0;
}

struct mem_src {
	const char *data;
	size_t len;
};

static ssize_t mem_read(void *arg, void *buf, size_t len, struct err *err)
{
	struct mem_src *m = arg;
	size_t n = len < m->len ? len : m->len;

	(void)err;
	memcpy(buf, m->data, n);
	m->data += n;
	m->len -= n;
	return (ssize_t)n;
}

int blob_s3_writer_commit(struct blob_s3_writer *w, char sha_out[65],
			  uint64_t *size_out, struct err *err)
{
	char got[SHA256_HEX_LEN + 1];
	struct s3_object_info info;
	int rc;

	sha256_final_hex(w->hash, got);
	w->hash = NULL;
	if (strcmp(got, w->sha)) {
		rc = err_set(err, ERR_INVALID, "content hashes to sha256 '%s', "
			     "expected '%s'", got, w->sha);
		goto out;
	}
	if (!w->upload_id) {
		/* All of it is in memory: one PUT of verified bytes. */
		struct mem_src m = { w->buf, w->len };
		if ((rc = s3_object_put(w->c, w->b->bucket, w->key, mem_read, &m,
					NULL, err)) < 0)
			goto out;
	} else {
		if (w->len && (rc = send_part(w, err)) < 0)
			goto out;
		if ((rc = s3_multipart_complete(w->c, w->b->bucket, w->key,
						w->upload_id, w->etags,
						w->nparts, err)) < 0)
			goto out;
		free(w->upload_id);
		w->upload_id = NULL;
		/* The parts' ETags say nothing of the whole; the size does. */
		if ((rc = s3_object_head(w->c, w->b->bucket, w->key, &info,
					 err)) < 0)
			goto out;
		if (info.size != w->size) {
			rc = err_set(err, ERR_CORRUPT, "object store kept %llu "
				     "bytes of blob %s, not %llu",
				     (unsigned long long)info.size, w->sha,
				     (unsigned long long)w->size);
			s3_object_delete(w->c, w->b->bucket, w->key, NULL);
			goto out;
		}
	}
	memcpy(sha_out, got, sizeof(got));
	if (size_out)
		*size_out = w->size;
	rc = 0;
out:
	blob_s3_writer_abort(w);
	return rc;
}

void blob_s3_writer_abort(struct blob_s3_writer *w)
{
	if (!w)
		return;
	if (w->upload_id)
		s3_multipart_abort(w->c, w->b->bucket, w->key, w->upload_id, NULL);
	free(w->upload_id);
	free(w->etags);
	sha256_free(w->hash);
	free(w->buf);
	free(w);
}

int blob_s3_put_path(struct blob_s3 *b, const char *path, const char *sha,
		     uint64_t *size_out, struct err *err)
{
	struct blob_s3_writer *w = NULL;
	char buf[1 << 16], got[SHA256_HEX_LEN + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return err_set(err, ERR_FAIL, "cannot open '%s': %s", path,
			       strerror(errno));
	if ((rc = blob_s3_writer_begin(&w, b, sha, err)) < 0)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_set(err, ERR_FAIL, "cannot read '%s': %s", path,
				     strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if ((rc = blob_s3_writer_write(w, buf, (size_t)n, err)) < 0)
			goto out;
	}
	rc = blob_s3_writer_commit(w, got, size_out, err);
	w = NULL;
out:
	blob_s3_writer_abort(w);
	close(fd);
	return rc;
}

/* --- reads --- */

int blob_s3_stat(struct blob_s3 *b, const char *sha, struct blob_info *info,
		 struct err *err)
{
	struct s3_client *c = client(b, err);
	struct s3_object_info oi;
	char key[KEY_LEN];
	int rc;

	if (!c)
		return fail_code(err);
	object_key(b, "sha256", sha, key);
	if ((rc = s3_object_head(c, b->bucket, key, &oi, err)) < 0) {
		if (rc == ERR_NOTFOUND)
			err_set(err, ERR_NOTFOUND, "blob '%s' is not stored", sha);
		return rc;
	}
	info->size = oi.size;
	info->mtime = 0;	/* HEAD does not say; listings do */
	return 0;
}

int blob_s3_read(struct blob_s3 *b, const char *sha, uint64_t off,
		 uint64_t len, blob_sink_fn sink, void *arg, struct err *err)
{
	struct s3_client *c = client(b, err);
	char key[KEY_LEN];

	if (!c)
		return fail_code(err);
	object_key(b, "sha256", sha, key);
	return s3_object_get(c, b->bucket, key, off, len, sink, arg, NULL, err);
}

int blob_s3_presign(struct blob_s3 *b, const char *sha, long expires_s,
		    char **url, struct err *err)
{
	struct s3_client *c = client(b, err);
	char key[KEY_LEN];

	if (!c)
		return fail_code(err);
	object_key(b, "sha256", sha, key);
	return s3_presign_get(c, b->bucket, key, expires_s, url, err);
}

/* --- gc's helpers --- */

struct touch_mark {
	char sha[SHA256_HEX_LEN + 1];
	time_t mtime;
};

struct walk {
	struct blob_s3 *b;
	struct s3_client *c;
	size_t plen;		/* strlen(prefix "sha256/" or "touch/") */
	struct touch_mark *marks;
	size_t nmarks, cap;
	blob_visit_fn fn;
	void *arg;
	int stop;		/* fn's non-zero return */
};

static int cmp_mark(const void *a, const void *b)
{
	return strcmp(((const struct touch_mark *)a)->sha,
		      ((const struct touch_mark *)b)->sha);
}

static int collect_mark(void *arg, const char *key, uint64_t size,
			const char *etag, struct err *err)
{
	struct walk *wk = arg;
	const char *sha = key + wk->plen;

	(void)size;
	(void)etag;
	if (strlen(key) <= wk->plen || !is_hex(sha, SHA256_HEX_LEN) ||
	    sha[SHA256_HEX_LEN])
		return 0;
	if (wk->nmarks == wk->cap) {
		size_t cap = wk->cap ? wk->cap * 2 : 64;
		void *p = realloc(wk->marks, cap * sizeof(*wk->marks));
		if (!p)
			return err_set(err, ERR_FAIL, "out of memory");
		wk->marks = p;
		wk->cap = cap;
	}
	memcpy(wk->marks[wk->nmarks].sha, sha, SHA256_HEX_LEN + 1);
	wk->marks[wk->nmarks++].mtime = s3_object_list_mtime(wk->c);
	return 0;
}

static int visit_object(void *arg, const char *key, uint64_t size,
			const char *etag, struct err *err)
{
	struct walk *wk = arg;
	const char *sha = key + wk->plen;
	struct blob_info info = { size, s3_object_list_mtime(wk->c) };
	struct touch_mark probe, *m;

	(void)etag;
	(void)err;
	if (strlen(key) <= wk->plen || !is_hex(sha, SHA256_HEX_LEN) ||
	    sha[SHA256_HEX_LEN])
		return 0;
	memcpy(probe.sha, sha, sizeof(probe.sha));
	m = wk->nmarks ? bsearch(&probe, wk->marks, wk->nmarks,
				 sizeof(*wk->marks), cmp_mark) : NULL;
	if (m && m->mtime > info.mtime)
		info.mtime = m->mtime;
	if ((wk->stop = wk->fn(sha, &info, wk->arg)) != 0)
		return ERR_FAIL;	/* stops the listing; see below */
	return 0;
}

int blob_s3_foreach(struct blob_s3 *b, blob_visit_fn fn, void *arg,
		    struct err *err)
{
	struct walk wk = { .b = b, .fn = fn, .arg = arg };
	char prefix[KEY_LEN];
	int rc;

	if (!(wk.c = client(b, err)))
		return fail_code(err);
	snprintf(prefix, sizeof(prefix), "%stouch/", b->prefix);
	wk.plen = strlen(prefix);
	if ((rc = s3_object_list(wk.c, b->bucket, prefix, collect_mark, &wk,
				 err)) < 0)
		goto out;
	if (wk.nmarks)
		qsort(wk.marks, wk.nmarks, sizeof(*wk.marks), cmp_mark);
	snprintf(prefix, sizeof(prefix), "%ssha256/", b->prefix);
	wk.plen = strlen(prefix);
	rc = s3_object_list(wk.c, b->bucket, prefix, visit_object, &wk, err);
	if (wk.stop)
		rc = wk.stop;
	else if (rc < 0) {
		char why[ERR_MSG_LEN];
		str_copy(why, err ? err->msg : "", sizeof(why));
		err_set(err, rc, "cannot list blobs: %s", why);
	}
out:
	free(wk.marks);
	return rc;
}

static ssize_t empty_read(void *arg, void *buf, size_t len, struct err *err)
{
	(void)arg;
	(void)buf;
	(void)len;
	(void)err;
	return 0;
}

int blob_s3_touch(struct blob_s3 *b, const char *sha, struct err *err)
{
	struct s3_client *c = client(b, err);
	struct blob_info info;
	char key[KEY_LEN];
	int rc;

	if (!c)
		return fail_code(err);
	if ((rc = blob_s3_stat(b, sha, &info, err)) < 0)
		return rc;
	object_key(b, "touch", sha, key);
	return s3_object_put(c, b->bucket, key, empty_read, NULL, NULL, err);
}

int blob_s3_remove(struct blob_s3 *b, const char *sha, struct err *err)
{
	struct s3_client *c = client(b, err);
	char key[KEY_LEN];
	int rc;

	if (!c)
		return fail_code(err);
	object_key(b, "sha256", sha, key);
	if ((rc = s3_object_delete(c, b->bucket, key, err)) < 0)
		return rc;
	object_key(b, "touch", sha, key);
	s3_object_delete(c, b->bucket, key, NULL);
	return 0;
}
