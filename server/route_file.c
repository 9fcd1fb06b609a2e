/*
 * route_file.c: HEAD and GET of /{prefix}{repo}/resolve/{rev}/{path} and
 * /raw/. resolve serves a file's content (an LFS object from the blob
 * store, with sendfile), raw serves the git blob (the pointer for LFS
 * files). The headers follow hub-api.md section 3: X-Repo-Commit, quoted
 * ETag (git sha1, or sha256 for LFS), X-Linked-Etag and X-Linked-Size for
 * LFS, the real Content-Length on HEAD, single byte ranges, no encoding.
 */
#include "common/compat.h"

#include <inttypes.h>
#include <unistd.h>
#include <event2/buffer.h>

#include "common/log.h"
#include "server/blob_send.h"
#include "server/download_count.h"
#include "server/hub_error.h"
#include "server/hub_repo.h"
#include "server/pull_through.h"
#include "server/routes.h"

struct byte_range {
	uint64_t start, end;	/* inclusive */
};

enum range_kind { RANGE_NONE, RANGE_OK, RANGE_UNSATISFIABLE };

static bool parse_u64(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;	/* absurd: treat the header as invalid */
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return true;
}

/* RFC 9110 single range: "bytes=a-b", "bytes=a-", "bytes=-n". Anything we
 * cannot parse (or several ranges) is ignored and the whole file sent. */
static enum range_kind parse_range(const char *h, uint64_t size,
				   struct byte_range *r)
{
	const char *p;
	uint64_t a, b;

	if (!h || strncmp(h, "bytes=", 6) || strchr(h, ','))
		return RANGE_NONE;
	p = h + 6;
	while (*p == ' ')
		p++;
	if (*p == '-') {
		p++;
		if (!parse_u64(&p, &b) || *p)
			return RANGE_NONE;
		if (b == 0 || size == 0)
			return RANGE_UNSATISFIABLE;
		r->start = b >= size ? 0 : size - b;
		r->end = size - 1;
		return RANGE_OK;
	}
	if (!parse_u64(&p, &a) || *p++ != '-')
		return RANGE_NONE;
	if (!*p) {
		b = UINT64_MAX;
	} else if (!parse_u64(&p, &b) || *p || b < a) {
		return RANGE_NONE;
	}
	if (a >= size)
		return RANGE_UNSATISFIABLE;
	r->start = a;
	r->end = b >= size ? size - 1 : b;
	return RANGE_OK;
}

static const char *content_type(const char *path)
{
	static const char *const types[][2] = {
		{ ".json", "application/json" }, { ".md", "text/markdown; charset=utf-8" },
		{ ".txt", "text/plain; charset=utf-8" }, { ".py", "text/x-python; charset=utf-8" },
		{ ".yaml", "text/yaml; charset=utf-8" }, { ".yml", "text/yaml; charset=utf-8" },
		{ ".jinja", "text/plain; charset=utf-8" }, { ".csv", "text/csv; charset=utf-8" },
		{ ".gitattributes", "text/plain; charset=utf-8" },
	};
	size_t plen = strlen(path);

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		size_t n = strlen(types[i][0]);
		if (plen >= n && !strcmp(path + plen - n, types[i][0]))
			return types[i][1];
	}
	return "application/octet-stream";
}

/* Content-Disposition with the last path part, quoted safely. */
static void add_disposition(struct http_request *req, const char *path)
{
	const char *name = strrchr(path, '/');
	char safe[512], value[700];
	size_t o = 0;

	name = name ? name + 1 : path;
	for (; *name && o + 1 < sizeof(safe); name++) {
		unsigned char c = (unsigned char)*name;
		safe[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '_';
	}
	safe[o] = '\0';
	snprintf(value, sizeof(value), "inline; filename=\"%s\";", safe);
	http_response_header(req, "Content-Disposition", value);
}

static void add_file_headers(struct http_request *req, const struct hub_repo *r,
			     const struct listing_entry *e, bool raw)
{
	char etag[80], size[32];

	hub_common_headers(req);
	http_response_header(req, "X-Repo-Commit", r->commit_hex);
	http_response_header(req, "Accept-Ranges", "bytes");
	http_response_header(req, "Content-Type", content_type(e->path));
	http_response_header(req, "Vary", "Origin");
	add_disposition(req, e->path);
	if (e->lfs && !raw) {
		snprintf(etag, sizeof(etag), "\"%s\"", e->sha256);
		snprintf(size, sizeof(size), "%" PRIu64, e->size);
		http_response_header(req, "X-Linked-Etag", etag);
		http_response_header(req, "X-Linked-Size", size);
	} else {
		snprintf(etag, sizeof(etag), "\"%s\"", e->oid);
	}
	http_response_header(req, "ETag", etag);
}

/* Picks status and slice from the Range header; false when it answered
 * 416 itself. */
static bool apply_range(struct http_request *req, uint64_t size,
			uint64_t *off, uint64_t *len, int *status)
{
	struct byte_range r;
	char cr[96];

	*off = 0;
	*len = size;
	*status = 200;
	switch (parse_range(http_request_header(req, "Range"), size, &r)) {
	case RANGE_NONE:
		return true;
	case RANGE_UNSATISFIABLE:
		snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
		http_response_header(req, "Content-Range", cr);
		if (size == 0) {
			/* JS probes every file with bytes=0-0; for an empty
			 * file the whole (empty) answer keeps it working. */
			return true;
		}
		hub_error_replyf(req, ERR_RANGE, "range not satisfiable: the "
				 "file has %" PRIu64 " bytes", size);
		return false;
	case RANGE_OK:
		break;
	}
	snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
		 r.start, r.end, size);
	http_response_header(req, "Content-Range", cr);
	*off = r.start;
	*len = r.end - r.start + 1;
	*status = 206;
	return true;
}

/* A successful (200 or 206) /resolve answer, GET or HEAD, may count as a
 * download; /raw never does. Called once the status is known. */
static void note_download(struct hub_call *call, const struct hub_repo *r,
			  const struct listing_entry *e, bool raw)
{
	bool diffusers;

	if (raw)
		return;
	diffusers = listing_find(r->listing, "model_index.json") != NULL;
	download_count_hit(call->app->downloads, &r->rec, e->path, diffusers,
			   http_request_peer(call->req));
}

/* Presigned URLs outlive a download and the client's resume retries
 * (hub-api.md 3.3). */
#define REDIRECT_TTL_S (24L * 3600)
/* Ranges up to this size are answered here even in redirect mode: they
 * are probes (JS fileDownloadInfo asks bytes=0-0 and follows redirects,
 * so a redirect would give it the object store's ETag, not the sha256),
 * and a redirect costs more than the bytes. */
#define REDIRECT_MIN_RANGE ((uint64_t)64 << 10)

/* An LFS object in the S3 store: a redirect to it, or streamed from it.
 * The pointer's size stands for the object's: the store has no HEAD on
 * the loop, and a missing object is an error before the first byte. */
static bool small_range(struct http_request *req, uint64_t size)
{
	struct byte_range br;

	return http_request_method(req) == HTTP_GET &&
	       parse_range(http_request_header(req, "Range"), size, &br) ==
	       RANGE_OK && br.end - br.start < REDIRECT_MIN_RANGE;
}

static void send_lfs_remote(struct hub_call *call, const struct hub_repo *r,
			    const struct listing_entry *e)
{
	struct err err = { 0 };
	uint64_t off, len;
	char *url = NULL;
	int status;

	if (call->app->blob_redirect && !small_range(call->req, e->size)) {
		if (blob_presign(call->app->store->blobs, e->sha256,
				 REDIRECT_TTL_S, &url, &err) < 0) {
			hub_error_reply(call->req, &err, r->commit_hex);
			return;
		}
		http_response_header(call->req, "Location", url);
		free(url);
		note_download(call, r, e, false);
		http_response_send(call->req, 302, NULL);
		return;
	}
	if (!apply_range(call->req, e->size, &off, &len, &status))
		return;
	note_download(call, r, e, false);
	if (http_request_method(call->req) == HTTP_HEAD) {
		http_response_begin(call->req, status, (int64_t)len);
		http_response_end(call->req);
		return;
	}
	blob_send_range(call->app->blob_send, call->req, e->sha256, status,
			off, len, r->commit_hex);
}

static void send_lfs_object(struct hub_call *call, const struct hub_repo *r,
			    const struct listing_entry *e)
{
	struct err err = { 0 };
	uint64_t size, off, len;
	int fd = -1, status;

	if (!blob_is_local(call->app->store->blobs)) {
		if (call->app->pull && !strcmp(call->who.pt_repo_id, r->rec.id) &&
		    !blob_exists(call->app->store->blobs, e->sha256)) {
			if (!apply_range(call->req, e->size, &off, &len, &status))
				return;
			note_download(call, r, e, false);
			pull_through_serve_lfs(call, r, e, status, off, len);
			return;
		}
		send_lfs_remote(call, r, e);
		return;
	}

	if (blob_open(call->app->store->blobs, e->sha256, &fd, &size, &err) < 0 &&
	    err.code == ERR_NOTFOUND && call->app->pull &&
	    !strcmp(call->who.pt_repo_id, r->rec.id)) {
		/* Not here yet: a pulled-through file comes from upstream. */
		if (!apply_range(call->req, e->size, &off, &len, &status))
			return;
		note_download(call, r, e, false);
		pull_through_serve_lfs(call, r, e, status, off, len);
		return;
	}
	if (fd < 0) {
		log_msg(LOG_ERROR, "event=missing_blob repo=%s path=%s sha256=%s",
			r->rec.name, e->path, e->sha256);
		err_set(&err, ERR_CORRUPT, "the stored object of '%s' is "
			"unavailable; the operator should run haven fsck", e->path);
		hub_error_reply(call->req, &err, r->commit_hex);
		return;
	}
	if (!apply_range(call->req, size, &off, &len, &status)) {
		close(fd);
		return;
	}
	note_download(call, r, e, false);
	http_response_send_file(call->req, status, fd, (off_t)off, (off_t)len);
}

/* HEAD needs the size, which the listing has: no need to read the blob. */
static void send_git_blob_head(struct hub_call *call, const struct hub_repo *r,
			       const struct listing_entry *e, bool raw)
{
	uint64_t size = e->lfs ? e->pointer_size : e->size, off, len;
	int status;

	if (!apply_range(call->req, size, &off, &len, &status))
		return;
	note_download(call, r, e, raw);
	http_response_begin(call->req, status, (int64_t)len);
	http_response_end(call->req);
}

static void send_git_blob(struct hub_call *call, const struct hub_repo *r,
			  const struct listing_entry *e, bool raw)
{
	struct evbuffer *body = NULL;
	git_blob *blob = NULL;
	git_oid oid;
	uint64_t size, off, len;
	int status;

	if (http_request_method(call->req) == HTTP_HEAD) {
		send_git_blob_head(call, r, e, raw);
		return;
	}
	if (git_oid_fromstr(&oid, e->oid) < 0 ||
	    git_blob_lookup(&blob, r->git, &oid) < 0) {
		hub_error_replyf(call->req, ERR_CORRUPT, "cannot read '%s'", e->path);
		return;
	}
	size = (uint64_t)git_blob_rawsize(blob);
	if (apply_range(call->req, size, &off, &len, &status)) {
		note_download(call, r, e, raw);
		body = evbuffer_new();
		evbuffer_add(body, (const char *)git_blob_rawcontent(blob) + off, len);
		http_response_send(call->req, status, body);
		evbuffer_free(body);
	}
	git_blob_free(blob);
}

static void serve_file(struct hub_call *call, bool raw)
{
	const struct listing_entry *e;
	struct hub_repo r;
	struct err err = { 0 };

	if (hub_repo_open(&r, call, call->rev, &err) < 0 ||
	    auth_check_files(call->app, &call->who, &r.rec, &err) < 0 ||
	    hub_repo_listing(&r, call, &err) < 0) {
		hub_error_reply(call->req, &err, r.commit_hex[0] ? r.commit_hex : NULL);
		goto out;
	}
	e = call->path[0] ? listing_find(r.listing, call->path) : NULL;
	if (!e || e->is_dir) {
		err_set(&err, ERR_NOENTRY, "Entry not found: '%.200s' does not "
			"exist at revision %s", call->path, r.commit_hex);
		hub_error_reply(call->req, &err, r.commit_hex);
		goto out;
	}
	add_file_headers(call->req, &r, e, raw);
	if (e->lfs && !raw)
		send_lfs_object(call, &r, e);
	else
		send_git_blob(call, &r, e, raw);
out:
	hub_repo_close(&r);
}

void route_resolve(struct hub_call *call)
{
	serve_file(call, false);
}

void route_raw(struct hub_call *call)
{
	serve_file(call, true);
}
