/*
 * repo_files.c: listing and fetching the files of a revision, from the
 * blob store or over HTTP (repo_files.h).
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <git2.h>
#include <jansson.h>

#include "common/util.h"
#include "loaders/repo_files.h"
#include "storage/hash.h"
#include "storage/listing.h"
#include "storage/store.h"

#define LIST_MAX ((size_t)64 << 20)
#define RANGE_CHUNK ((size_t)8 << 20)

struct repo_files_src {
	/* --data */
	struct store *store;
	git_repository *git;
	/* --endpoint */
	char *endpoint, *repo, *token, *cache;
	int parallel;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int add_file(struct repo_files *rf, const char *path, uint64_t size,
		    bool lfs, const char *sha, struct err *err)
{
	struct repo_file *f;
	void *p = realloc(rf->v, (rf->count + 1) * sizeof(*rf->v));

	if (!p)
		return err_set(err, ERR_FAIL, "out of memory");
	rf->v = p;
	f = &rf->v[rf->count];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	if (!f->path)
		return err_set(err, ERR_FAIL, "out of memory");
	f->size = size;
	f->lfs = lfs;
	if (lfs)
		str_copy(f->sha256, sha, sizeof(f->sha256));
	rf->count++;
	return 0;
}

static int new_rf(struct repo_files **out, struct err *err)
{
	*out = calloc(1, sizeof(**out));
	if (*out)
		(*out)->src = calloc(1, sizeof(*(*out)->src));
	if (!*out || !(*out)->src) {
		free(*out);
		*out = NULL;
		return err_set(err, ERR_FAIL, "out of memory");
	}
	return 0;
}

int repo_files_open_data(struct repo_files **out, const char *data_dir,
			 const char *repo, const char *rev, struct err *err)
{
	struct repo_files *rf;
	struct repo_record rec;
	struct listing *l = NULL;
	git_oid oid;
	int rc;

	*out = NULL;
	if ((rc = new_rf(&rf, err)) < 0)
		return rc;
	if ((rc = store_open(&rf->src->store, data_dir, false, err)) < 0 ||
	    (rc = repo_lookup(rf->src->store, "model", repo, &rec, err)) < 0 ||
	    (rc = repo_open_git(&rf->src->git, rf->src->store, &rec, err)) < 0 ||
	    (rc = gitrepo_resolve(rf->src->git, rev, &oid, NULL, 0, err)) < 0 ||
	    (rc = listing_load(&l, rf->src->store->meta, rf->src->git, &oid,
			       err)) < 0)
		goto out;
	gitrepo_oid_hex(rf->commit, &oid);
	for (size_t i = 0; i < l->count; i++) {
		const struct listing_entry *e = &l->entries[i];
		if (e->is_dir)
			continue;
		if ((rc = add_file(rf, e->path, e->size, e->lfs, e->sha256, err)) < 0)
			goto out;
		str_copy(rf->v[rf->count - 1].sha256, e->lfs ? e->sha256 : e->oid,
			 sizeof(rf->v[0].sha256));
	}
out:
	listing_free(l);
	if (rc < 0) {
		struct err e2 = { 0 };
		err_set(&e2, rc, "'%s@%s' in %s: %s", repo, rev, data_dir,
			err ? err->msg : "failed");
		if (err)
			*err = e2;
		repo_files_free(rf);
		return rc;
	}
	*out = rf;
	return 0;
}

/* --- HTTP ------------------------------------------------------------------ */

struct membuf {
	char *p;
	size_t len, max;
	char link[2048];
};

static size_t mem_write(char *data, size_t sz, size_t n, void *arg)
{
	struct membuf *b = arg;
	size_t len = sz * n;
	char *p;

	if (b->len + len > b->max)
		return 0;
	p = realloc(b->p, b->len + len + 1);
	if (!p)
		return 0;
	b->p = p;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return len;
}

/* Keeps the rel="next" target of a Link header. */
static size_t link_header(char *data, size_t sz, size_t n, void *arg)
{
	struct membuf *b = arg;
	size_t len = sz * n;

	if (len > 5 && !strncasecmp(data, "link:", 5)) {
		const char *lt = memchr(data, '<', len), *gt;
		if (lt && (gt = memchr(lt, '>', len - (size_t)(lt - data))) &&
		    memmem(gt, len - (size_t)(gt - data), "rel=\"next\"", 10) &&
		    (size_t)(gt - lt - 1) < sizeof(b->link)) {
			memcpy(b->link, lt + 1, (size_t)(gt - lt - 1));
			b->link[gt - lt - 1] = '\0';
		}
	}
	return len;
}

static CURL *easy_new(struct repo_files_src *s, struct curl_slist **hdrs)
{
	CURL *c = curl_easy_init();
	char auth[4096];

	if (!c)
		return NULL;
	*hdrs = NULL;
	if (s->token && s->token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->token);
		*hdrs = curl_slist_append(NULL, auth);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "haven-load/" PACKAGE_VERSION);
	return c;
}

static int http_get(struct repo_files_src *s, const char *url,
		    struct membuf *b, struct err *err)
{
	struct curl_slist *hdrs;
	CURL *c = easy_new(s, &hdrs);
	long status = 0;
	CURLcode cc;

	if (!c)
		return err_set(err, ERR_FAIL, "curl: cannot make a handle");
	b->link[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, link_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	if (cc != CURLE_OK)
		return err_set(err, ERR_UNAVAILABLE, "GET %s: %s", url,
			       curl_easy_strerror(cc));
	/* Like the Hub, a registry answers 401 for a repository it does not
	 * show to this caller, whether or not it exists. */
	if (status == 404 || status == 401 || status == 403)
		return err_set(err, status == 404 ? ERR_NOTFOUND : ERR_AUTH,
			       "GET %s: HTTP %ld: not found or not readable%s", url,
			       status, status == 404 ? "" : " (HF_TOKEN?)");
	if (status != 200)
		return err_set(err, ERR_FAIL, "GET %s: HTTP %ld", url, status);
	return 0;
}

static char *escape_path(const char *path)
{
	size_t cap = strlen(path) * 3 + 1, n = 0;
	char *out = malloc(cap);
	static const char hex[] = "0123456789ABCDEF";

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p)) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	out[n] = '\0';
	return out;
}

static int parse_tree(struct repo_files *rf, const char *body, size_t len,
		      struct err *err)
{
	json_error_t jerr;
	json_t *arr = json_loadb(body, len, 0, &jerr), *e;
	size_t i;
	int rc = 0;

	if (!json_is_array(arr)) {
		json_decref(arr);
		return err_set(err, ERR_INVALID, "tree listing is not a JSON array");
	}
	json_array_foreach(arr, i, e) {
		const char *type = json_string_value(json_object_get(e, "type"));
		const char *path = json_string_value(json_object_get(e, "path"));
		json_t *lfs = json_object_get(e, "lfs");
		const char *oid = json_string_value(json_object_get(lfs, "oid"));
		json_int_t size = json_integer_value(json_object_get(e, "size"));

		if (!type || strcmp(type, "file"))
			continue;
		if (!path || size < 0 || (lfs && (!oid || !is_hex(oid, 64)))) {
			rc = err_set(err, ERR_INVALID, "tree listing has a malformed entry");
			break;
		}
		if ((rc = add_file(rf, path, (uint64_t)size, lfs != NULL, oid, err)) < 0)
			break;
	}
	json_decref(arr);
	return rc;
}

int repo_files_open_http(struct repo_files **out, const char *endpoint,
			 const char *token, const char *repo, const char *rev,
			 const char *cache_dir, int parallel, struct err *err)
{
	struct repo_files *rf;
	struct membuf b = { .max = LIST_MAX };
	char url[8192];
	char *erev = NULL;
	json_t *j = NULL;
	int rc;

	*out = NULL;
	pthread_once(&curl_once, curl_init_once);
	if (strncmp(endpoint, "http://", 7) && strncmp(endpoint, "https://", 8))
		return err_set(err, ERR_INVALID, "endpoint '%s' is not an http(s) URL",
			       endpoint);
	if ((rc = new_rf(&rf, err)) < 0)
		return rc;
	rf->src->endpoint = strdup(endpoint);
	rf->src->repo = strdup(repo);
	rf->src->token = token ? strdup(token) : NULL;
	rf->src->cache = strdup(cache_dir);
	rf->src->parallel = parallel < 1 ? 1 : parallel > 32 ? 32 : parallel;
	erev = curl_easy_escape(NULL, rev, 0);
	if (!rf->src->endpoint || !rf->src->repo || !rf->src->cache || !erev) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	{
		size_t n = strlen(rf->src->endpoint);
		while (n && rf->src->endpoint[n - 1] == '/')
			rf->src->endpoint[--n] = '\0';
	}
	snprintf(url, sizeof(url), "%s/api/models/%s/revision/%s",
		 rf->src->endpoint, repo, erev);
	if ((rc = http_get(rf->src, url, &b, err)) < 0)
		goto out;
	j = json_loadb(b.p, b.len, 0, NULL);
	if (!json_is_string(json_object_get(j, "sha")) ||
	    !is_hex(json_string_value(json_object_get(j, "sha")), 40)) {
		rc = err_set(err, ERR_INVALID, "%s: no commit sha in the answer", url);
		goto out;
	}
	str_copy(rf->commit, json_string_value(json_object_get(j, "sha")),
		 sizeof(rf->commit));
	snprintf(url, sizeof(url), "%s/api/models/%s/tree/%s?recursive=true&expand=false",
		 rf->src->endpoint, repo, rf->commit);
	for (int page = 0; page < 10000; page++) {
		free(b.p);
		b.p = NULL;
		b.len = 0;
		if ((rc = http_get(rf->src, url, &b, err)) < 0 ||
		    (rc = parse_tree(rf, b.p ? b.p : "", b.len, err)) < 0)
			goto out;
		if (!b.link[0])
			break;
		str_copy(url, b.link, sizeof(url));
	}
	if (mkdir_p(cache_dir) < 0) {
		rc = err_set(err, ERR_FAIL, "cannot create cache folder '%s'", cache_dir);
		goto out;
	}
out:
	json_decref(j);
	free(b.p);
	curl_free(erev);
	if (rc < 0) {
		repo_files_free(rf);
		return rc;
	}
	*out = rf;
	return 0;
}

void repo_files_free(struct repo_files *rf)
{
	if (!rf)
		return;
	for (size_t i = 0; i < rf->count; i++) {
		free(rf->v[i].path);
		free(rf->v[i].local);
	}
	free(rf->v);
	if (rf->src) {
		if (rf->src->git)
			git_repository_free(rf->src->git);
		store_free(rf->src->store);
		free(rf->src->endpoint);
		free(rf->src->repo);
		free(rf->src->token);
		free(rf->src->cache);
		free(rf->src);
	}
	free(rf);
}

struct repo_file *repo_files_find(struct repo_files *rf, const char *path)
{
	for (size_t i = 0; i < rf->count; i++)
		if (!strcmp(rf->v[i].path, path))
			return &rf->v[i];
	return NULL;
}

/* One in-flight ranged GET of a parallel download. */
struct slot {
	CURL *c;
	struct curl_slist *hdrs;
	char *buf;
	size_t len, want;
	uint64_t chunk;
	bool busy, done;
	char range[64];
};

static size_t slot_write(char *data, size_t sz, size_t n, void *arg)
{
	struct slot *s = arg;
	size_t len = sz * n;

	if (s->len + len > s->want)
		return 0;	/* more than asked for: fail the transfer */
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	return len;
}

static int slot_start(struct repo_files_src *src, CURLM *m, struct slot *s,
		      const char *url, uint64_t chunk, uint64_t size,
		      struct err *err)
{
	uint64_t start = chunk * RANGE_CHUNK;
	uint64_t end = start + RANGE_CHUNK < size ? start + RANGE_CHUNK : size;

	if (!s->c && !(s->c = easy_new(src, &s->hdrs)))
		return err_set(err, ERR_FAIL, "curl: cannot make a handle");
	s->chunk = chunk;
	s->len = 0;
	s->want = (size_t)(end - start);
	s->busy = true;
	s->done = false;
	snprintf(s->range, sizeof(s->range), "%llu-%llu",
		 (unsigned long long)start, (unsigned long long)end - 1);
	curl_easy_setopt(s->c, CURLOPT_URL, url);
	curl_easy_setopt(s->c, CURLOPT_RANGE, s->range);
	curl_easy_setopt(s->c, CURLOPT_WRITEFUNCTION, slot_write);
	curl_easy_setopt(s->c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->c, CURLOPT_PRIVATE, s);
	if (curl_multi_add_handle(m, s->c) != CURLM_OK)
		return err_set(err, ERR_FAIL, "curl: cannot start a transfer");
	return 0;
}

/* Downloads url (size bytes) into fd with parallel ranged GETs; the pieces
 * are hashed and written in file order as they complete. */
static int download(struct repo_files_src *src, const char *url, int fd,
		    uint64_t size, char sha[65], struct err *err)
{
	uint64_t nchunks = (size + RANGE_CHUNK - 1) / RANGE_CHUNK, next = 0, hashed = 0;
	int k = src->parallel, running = 0, rc = 0;
	struct sha256_ctx *ctx = sha256_new();
	struct slot *slots = calloc((size_t)k, sizeof(*slots));
	CURLM *m = curl_multi_init();

	if (!ctx || !slots || !m) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	for (int i = 0; i < k; i++)
		if (!(slots[i].buf = malloc(RANGE_CHUNK))) {
			rc = err_set(err, ERR_FAIL, "out of memory");
			goto out;
		}
	for (int i = 0; i < k && next < nchunks; i++)
		if ((rc = slot_start(src, m, &slots[i], url, next++, size, err)) < 0)
			goto out;
	while (hashed < nchunks) {
		CURLMsg *msg;
		int left;

		if (curl_multi_perform(m, &running) != CURLM_OK) {
			rc = err_set(err, ERR_FAIL, "curl: transfer failed");
			goto out;
		}
		while ((msg = curl_multi_info_read(m, &left))) {
			struct slot *s = NULL;
			long status = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			curl_multi_remove_handle(m, msg->easy_handle);
			if (msg->data.result != CURLE_OK || (status != 206 &&
			    !(status == 200 && s->want == size)) || s->len != s->want) {
				rc = err_set(err, ERR_FAIL,
					     "GET %s range %s: %s (HTTP %ld, %zu of %zu bytes)",
					     url, s->range,
					     curl_easy_strerror(msg->data.result),
					     status, s->len, s->want);
				goto out;
			}
			s->done = true;
		}
		/* Hash and write in order; refill freed slots. */
		for (bool progress = true; progress;) {
			progress = false;
			for (int i = 0; i < k; i++) {
				struct slot *s = &slots[i];
				if (!s->busy || !s->done || s->chunk != hashed)
					continue;
				sha256_update(ctx, s->buf, s->len);
				if (pwrite(fd, s->buf, s->len,
					   (off_t)(s->chunk * RANGE_CHUNK)) != (ssize_t)s->len) {
					rc = err_set(err, ERR_FAIL, "write: %s", strerror(errno));
					goto out;
				}
				hashed++;
				s->busy = false;
				progress = true;
				if (next < nchunks &&
				    (rc = slot_start(src, m, s, url, next++, size, err)) < 0)
					goto out;
			}
		}
		if (hashed < nchunks &&
		    curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK) {
			rc = err_set(err, ERR_FAIL, "curl: poll failed");
			goto out;
		}
	}
	sha256_final_hex(ctx, sha);
	ctx = NULL;
out:
	if (ctx)
		sha256_free(ctx);
	for (int i = 0; slots && i < k; i++) {
		if (slots[i].c) {
			curl_multi_remove_handle(m, slots[i].c);
			curl_easy_cleanup(slots[i].c);
		}
		curl_slist_free_all(slots[i].hdrs);
		free(slots[i].buf);
	}
	free(slots);
	if (m)
		curl_multi_cleanup(m);
	return rc;
}

static char *resolve_url(struct repo_files *rf, const struct repo_file *f)
{
	char *ep = escape_path(f->path), *url;
	size_t n;

	if (!ep)
		return NULL;
	n = strlen(rf->src->endpoint) + strlen(rf->src->repo) + strlen(ep) + 64;
	url = malloc(n);
	if (url)
		snprintf(url, n, "%s/%s/resolve/%s/%s", rf->src->endpoint,
			 rf->src->repo, rf->commit, ep);
	free(ep);
	return url;
}

int repo_files_fetch(struct repo_files *rf, struct repo_file *f,
		     struct err *err)
{
	char path[4096], tmp[4200], sha[65];
	char *url = NULL;
	double t0 = now_s();
	int fd = -1, rc = 0;

	if (f->local)
		return 0;
	if (!f->lfs)
		return err_set(err, ERR_INVALID,
			       "'%s' is not an LFS file; weights are read from LFS objects",
			       f->path);
	if (rf->src->store) {
		if (blob_path(rf->src->store->blobs, f->sha256, path, sizeof(path)) < 0)
			return err_set(err, ERR_CORRUPT, "bad LFS oid for '%s'", f->path);
		if (access(path, R_OK) < 0)
			return err_set(err, ERR_CORRUPT,
				       "LFS object %s of '%s' is missing from the blob store",
				       f->sha256, f->path);
		f->local = strdup(path);
		return f->local ? 0 : err_set(err, ERR_FAIL, "out of memory");
	}
	snprintf(path, sizeof(path), "%s/%s", rf->src->cache, f->sha256);
	snprintf(tmp, sizeof(tmp), "%s.%d.incomplete", path, (int)getpid());
	url = resolve_url(rf, f);
	if (!url)
		return err_set(err, ERR_FAIL, "out of memory");
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = err_set(err, ERR_FAIL, "cannot create '%s': %s", tmp,
			     strerror(errno));
		goto out;
	}
	if (f->size && (rc = download(rf->src, url, fd, f->size, sha, err)) < 0)
		goto out;
	if (!f->size)
		sha256_hex(sha, "", 0);
	if (strcmp(sha, f->sha256)) {
		rc = err_set(err, ERR_CORRUPT,
			     "'%s': sha256 of the bytes served is %s, the registry lists %s",
			     f->path, sha, f->sha256);
		goto out;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		fd = -1;
		rc = err_set(err, ERR_FAIL, "cannot store '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	fd = -1;
	f->local = strdup(path);
	f->hashed = true;
	f->fetch_seconds = now_s() - t0;
	if (!f->local)
		rc = err_set(err, ERR_FAIL, "out of memory");
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	free(url);
	return rc;
}

int repo_files_read_small(struct repo_files *rf, const struct repo_file *f,
			  char **out, size_t *len, size_t max, struct err *err)
{
	*out = NULL;
	if (f->size > max)
		return err_set(err, ERR_TOOBIG, "'%s' is %llu bytes (limit %zu)",
			       f->path, (unsigned long long)f->size, max);
	if (rf->src->git && !f->lfs) {
		git_oid oid;
		git_blob *blob = NULL;
		if (git_oid_fromstr(&oid, f->sha256) < 0 ||
		    git_blob_lookup(&blob, rf->src->git, &oid) < 0)
			return err_set(err, ERR_CORRUPT, "cannot read '%s' from git",
				       f->path);
		*len = (size_t)git_blob_rawsize(blob);
		*out = malloc(*len + 1);
		if (*out) {
			memcpy(*out, git_blob_rawcontent(blob), *len);
			(*out)[*len] = '\0';
		}
		git_blob_free(blob);
		return *out ? 0 : err_set(err, ERR_FAIL, "out of memory");
	}
	if (rf->src->git || f->local) {
		int rc;
		if ((rc = repo_files_fetch(rf, (struct repo_file *)f, err)) < 0)
			return rc;
		if (file_read_all(out, len, f->local, max) < 0)
			return err_set(err, ERR_FAIL, "cannot read '%s'", f->local);
		return 0;
	}
	{
		struct membuf b = { .max = max };
		char *url = resolve_url(rf, f);
		int rc;
		if (!url)
			return err_set(err, ERR_FAIL, "out of memory");
		rc = http_get(rf->src, url, &b, err);
		free(url);
		if (rc < 0) {
			free(b.p);
			return rc;
		}
		if (!b.p && !(b.p = calloc(1, 1)))
			return err_set(err, ERR_FAIL, "out of memory");
		*out = b.p;
		*len = b.len;
		return 0;
	}
}
