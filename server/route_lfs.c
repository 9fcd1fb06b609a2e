/*
 * route_lfs.c: the LFS batch API (git-lfs docs/api/batch.md with the Hub's
 * multipart extension, hub-api.md 2.12) and the signed transfer URLs it
 * hands out.
 *
 * The batch endpoint authorises the caller once (write access for
 * uploads, file access for downloads) and answers with URLs that carry
 * their own authority (lfs_sign.h), because clients send no token on the
 * PUTs that follow. Objects live in the shared blob store:
 *
 *   basic upload   PUT /api/lfs/upload/...    body streamed into a blob
 *                  writer; size and sha256 checked before the blob is
 *                  committed, so a wrong or cut body stores nothing.
 *   multipart      PUT /api/lfs/part/.../<n>  each part streamed to
 *                  <data>/tmp/lfs-<oid>-<size>-<n> (temporary, renamed
 *                  into place when complete); answered with an ETag.
 *                  POST /api/lfs/complete/... joins the parts in order
 *                  into a blob writer, checks size and sha256, commits.
 *   verify         POST /api/lfs/verify/...   200 when the blob is stored.
 *   download       GET|HEAD /api/lfs/download/...  the whole object.
 *
 * Multipart is offered only to clients that list it and only for objects
 * larger than LFS_CHUNK_SIZE; one batch answer then uses it for every
 * object it asks to upload, because git-lfs's custom "multipart" agent
 * expects a chunk_size in every object it is handed. Bodies never sit in
 * memory: a PUT of any size holds one network buffer at a time.
 *
 * Concurrent uploads of one object are harmless: each writes its own
 * temporary file and the rename into the content-addressed store is
 * atomic, so the object is stored once.
 */
#include "common/compat.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "server/blob_send.h"
#include "server/hub_error.h"
#include "server/hub_json.h"
#include "server/hub_repo.h"
#include "server/lfs_sign.h"
#include "storage/lfs_claims.h"
#include "server/routes.h"

#define LFS_MEDIA_TYPE "application/vnd.git-lfs+json"

/* Parts of a multipart upload are this large (the last one smaller). */
#define LFS_CHUNK_SIZE ((uint64_t)64 << 20)
/* S3's part limit, which the Hub's clients are built around; it also
 * bounds an object at 625 GiB. */
#define LFS_PARTS_MAX 10000u
#define LFS_OBJECT_MAX (LFS_CHUNK_SIZE * LFS_PARTS_MAX)
/* Signed part URLs in one batch answer (keeps the answer a few MB). */
#define LFS_BATCH_PARTS_MAX 100000u
#define LFS_BATCH_OBJECTS_MAX 1000
#define LFS_BATCH_BODY_MAX ((size_t)1 << 20)
#define LFS_COMPLETE_BODY_MAX ((size_t)4 << 20)
#define LFS_VERIFY_BODY_MAX ((size_t)64 << 10)
/* URLs live an hour, plus a second per MiB so a slow link can finish a
 * big object, up to a week. */
#define LFS_URL_TTL 3600
#define LFS_URL_TTL_MAX (7 * 24 * 3600)
#define LFS_COPY_BUF ((size_t)1 << 20)

#define LFS_PUT_MAGIC 0x4c465350u

/* --- answers ------------------------------------------------------------ */

/* Sends doc (stolen) as the LFS media type. */
static void lfs_reply_json(struct http_request *req, int status, json_t *doc)
{
	hub_reply_json_as(req, status, doc, LFS_MEDIA_TYPE);
}

/* An error the way both clients read it: git-lfs prints "message", the
 * Hub's clients read X-Error-Message and "error". The status comes from
 * the one table in hub_error.c. */
static void lfs_reply_error(struct http_request *req, const struct err *err)
{
	const char *msg = err->msg[0] ? err->msg : "error";
	bool anonymous = !http_request_header(req, "Authorization");
	int status = hub_error_status(err->code, anonymous);
	struct evbuffer *body = evbuffer_new();
	char safe[ERR_MSG_LEN];
	json_t *doc;
	char *text;
	size_t i;

	for (i = 0; msg[i] && i + 1 < sizeof(safe); i++)
		safe[i] = (msg[i] >= 0x20 && msg[i] < 0x7f) ? msg[i] : ' ';
	safe[i] = '\0';
	hub_common_headers(req);
	http_response_header(req, "X-Error-Message", safe);
	http_response_header(req, "Content-Type", "application/json; charset=utf-8");
	if (status == 401)
		http_response_header(req, "LFS-Authenticate", "Basic realm=\"Haven\"");
	doc = json_pack("{s:s, s:s, s:s}", "message", msg, "error", msg,
			"request_id", http_request_id(req));
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (body && text)
		evbuffer_add(body, text, strlen(text));
	free(text);
	json_decref(doc);
	http_response_send(req, status, body);
	evbuffer_free(body);
}

static void lfs_reply_errorf(struct http_request *req, int code,
			     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void lfs_reply_errorf(struct http_request *req, int code,
			     const char *fmt, ...)
{
	struct err e;
	va_list ap;

	e.code = code;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	lfs_reply_error(req, &e);
}

static json_t *parse_json_body(struct evbuffer *body, json_error_t *jerr)
{
	size_t len = evbuffer_get_length(body);
	const char *data = len ? (const char *)evbuffer_pullup(body, -1) : "";

	return json_loadb(data, len, JSON_REJECT_DUPLICATES, jerr);
}

/* The buffered body of an LFS request as JSON; NULL once the error has
 * been answered in the LFS shape. what names the request in messages. */
static json_t *lfs_body_json(struct http_request *req, struct evbuffer *body,
			     int rc, const char *what)
{
	json_error_t jerr;
	json_t *doc;

	if (rc < 0) {
		lfs_reply_errorf(req, rc, rc == ERR_TOOBIG ? "%s too large" :
				 "%s body incomplete", what);
		return NULL;
	}
	if (!(doc = parse_json_body(body, &jerr)))
		lfs_reply_errorf(req, ERR_INVALID, "malformed JSON in the %s: %s",
				 what, jerr.text);
	return doc;
}

/* --- multipart geometry ----------------------------------------------------- */

static uint32_t part_count(uint64_t size)
{
	return (uint32_t)((size + LFS_CHUNK_SIZE - 1) / LFS_CHUNK_SIZE);
}

/* Bytes of part n (1-based) of an object of size bytes. */
static uint64_t part_length(uint64_t size, uint32_t n)
{
	uint32_t count = part_count(size);

	return n < count ? LFS_CHUNK_SIZE : size - (uint64_t)(count - 1) * LFS_CHUNK_SIZE;
}

static void part_path(char *out, size_t size, const struct app *app,
		      const struct lfs_grant *g, uint32_t n)
{
	snprintf(out, size, "%s/tmp/lfs-%s-%" PRIu64 "-%" PRIu32,
		 app->store->data_dir, g->oid, g->size, n);
}

/* The ETag of a stored part: it names the part, its length and object;
 * the sha256 of the whole object is what proves the content. */
static void part_etag(char *out, size_t size, const struct lfs_grant *g,
		      uint32_t n, uint64_t len)
{
	snprintf(out, size, "\"%.16s-%" PRIu32 "-%" PRIu64 "\"", g->oid, n, len);
}

static void remove_parts(const struct app *app, const struct lfs_grant *g)
{
	char path[4400];

	for (uint32_t n = 1; n <= part_count(g->size); n++) {
		part_path(path, sizeof(path), app, g, n);
		unlink(path);
	}
}

/* --- the batch endpoint ------------------------------------------------------ */

struct batch {
	struct hub_call *call;
	const struct repo_record *rec;
	bool upload;
	bool multipart;
	int64_t now;
	uint32_t parts;		/* signed part URLs so far */
};

static int64_t url_ttl(uint64_t size)
{
	uint64_t ttl = LFS_URL_TTL + size / ((uint64_t)1 << 20);

	return ttl > LFS_URL_TTL_MAX ? LFS_URL_TTL_MAX : (int64_t)ttl;
}

/* A signed absolute URL for one operation on one object. */
static json_t *signed_href(struct batch *b, enum lfs_op op, const char *oid,
			   uint64_t size, uint32_t part)
{
	struct lfs_grant g;
	char path[512], url[2048];

	memset(&g, 0, sizeof(g));
	g.op = op;
	str_copy(g.repo_id, b->rec->id, sizeof(g.repo_id));
	str_copy(g.oid, oid, sizeof(g.oid));
	g.size = size;
	g.part = part;
	g.expires = b->now + url_ttl(size);
	if (lfs_sign_url(path, sizeof(path), b->call->app->secret, &g, NULL) < 0)
		return NULL;
	snprintf(url, sizeof(url), "%s%s", b->call->app->public_url, path);
	return json_string(url);
}

static json_t *action(json_t *href, json_t *header, uint64_t size)
{
	return json_pack("{s:o, s:o, s:I}", "href", href,
			 "header", header ? header : json_object(),
			 "expires_in", (json_int_t)url_ttl(size));
}

static json_t *object_error(json_t *obj, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static json_t *object_error(json_t *obj, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_set_new(obj, "error", json_pack("{s:i, s:s}", "code", code,
						    "message", msg));
	return obj;
}

static json_t *upload_actions(struct batch *b, const char *oid, uint64_t size)
{
	json_t *header, *href;
	char key[16], chunk[32];

	if (!b->multipart)
		return json_pack("{s:o, s:o}",
				 "upload", action(signed_href(b, LFS_OP_UPLOAD, oid, size, 0),
						  NULL, size),
				 "verify", action(signed_href(b, LFS_OP_VERIFY, oid, size, 0),
						  NULL, size));
	header = json_object();
	snprintf(chunk, sizeof(chunk), "%" PRIu64, LFS_CHUNK_SIZE);
	json_object_set_new(header, "chunk_size", json_string(chunk));
	/* Zero-padded keys in ascending order: Python sorts them, JS and the
	 * git-lfs agent take them in the order they come. */
	for (uint32_t n = 1; n <= part_count(size); n++) {
		snprintf(key, sizeof(key), "%05" PRIu32, n);
		json_object_set_new(header, key, signed_href(b, LFS_OP_PART, oid,
							     size, n));
	}
	href = signed_href(b, LFS_OP_COMPLETE, oid, size, 0);
	return json_pack("{s:o, s:o}", "upload", action(href, header, size),
			 "verify", action(signed_href(b, LFS_OP_VERIFY, oid, size, 0),
					  NULL, size));
}

/* Size of the stored blob, or -1 when there is none. */
static int64_t stored_size(struct store *store, const char *oid)
{
	struct blob_info info;

	if (blob_stat(store->blobs, oid, &info, NULL) < 0)
		return -1;
	return (int64_t)info.size;
}

/* Checks one requested object; fills *oid_out and *size_out. Returns the
 * answer object with an error set, or NULL when the request is sound. */
static json_t *object_check(json_t *req, const char **oid_out,
			    uint64_t *size_out, bool upload)
{
	json_t *oid = json_object_get(req, "oid");
	json_t *size = json_object_get(req, "size");
	const char *o = json_is_string(oid) ? json_string_value(oid) : "";
	json_int_t s = json_is_integer(size) ? json_integer_value(size) : 0;
	json_t *obj = json_pack("{s:s, s:I}", "oid", o, "size", s);

	if (!json_is_object(req))
		return object_error(obj, 422, "each object must be a JSON object "
				    "with \"oid\" and \"size\"");
	if (!is_hex(o, SHA256_HEX_LEN))
		return object_error(obj, 422, "invalid oid '%.80s': expected 64 "
				    "lower-case hex digits of a sha256", o);
	if (!json_is_integer(size) || s < 0)
		return object_error(obj, 422, "invalid size for object %s: "
				    "expected a non-negative integer", o);
	if (upload && (uint64_t)s > LFS_OBJECT_MAX)
		return object_error(obj, 422, "object %s is too large: %" PRIu64
				    " bytes, the limit is %" PRIu64, o,
				    (uint64_t)s, LFS_OBJECT_MAX);
	json_decref(obj);
	*oid_out = o;
	*size_out = (uint64_t)s;
	return NULL;
}

static json_t *batch_object(struct batch *b, json_t *req)
{
	struct store *store = b->call->app->store;
	const char *oid = NULL;
	uint64_t size = 0;
	int64_t have;
	json_t *obj;

	if ((obj = object_check(req, &oid, &size, b->upload)))
		return obj;
	obj = json_pack("{s:s, s:I}", "oid", oid, "size", (json_int_t)size);
	have = stored_size(store, oid);
	/* The blob store is shared by every repository: only objects this
	 * one may name count as present (lfs_claims.h). Another repository's
	 * object must be uploaded again, which proves the client holds it. */
	if (have >= 0 && !lfs_claim_has(store->meta, b->rec->id, oid))
		have = b->upload ? -1 : -2;
	if (have >= 0 && (uint64_t)have != size)
		return object_error(obj, 422, "object %s has %" PRId64 " bytes, "
				    "not %" PRIu64, oid, have, size);
	if (!b->upload) {
		if (have < 0)
			return object_error(obj, 404, "object %s does not exist "
					    "in this repository", oid);
		json_object_set_new(obj, "authenticated", json_true());
		json_object_set_new(obj, "actions", json_pack("{s:o}", "download",
			action(signed_href(b, LFS_OP_DOWNLOAD, oid, size, 0),
			       NULL, size)));
		return obj;
	}
	if (have >= 0) {
		/* No actions: the client skips the upload. Refresh the mtime
		 * so gc's grace period covers the commit that follows. */
		blob_touch(store->blobs, oid, NULL);
		return obj;
	}
	if (b->multipart) {
		if (b->parts + part_count(size) > LFS_BATCH_PARTS_MAX)
			return object_error(obj, 413, "too many parts in one batch "
					    "answer: ask for fewer objects at a time");
		b->parts += part_count(size);
	}
	json_object_set_new(obj, "authenticated", json_true());
	json_object_set_new(obj, "actions", upload_actions(b, oid, size));
	return obj;
}

static bool offers(json_t *transfers, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(transfers, i, v) {
		if (json_is_string(v) && !strcmp(json_string_value(v), name))
			return true;
	}
	return false;
}

/* Multipart when the client offers it and an object to upload needs it. */
static bool want_multipart(struct store *store, json_t *transfers,
			   json_t *objects)
{
	json_t *o;
	size_t i;

	if (!json_is_array(transfers) || !offers(transfers, "multipart"))
		return false;
	json_array_foreach(objects, i, o) {
		json_t *oid = json_object_get(o, "oid"), *size = json_object_get(o, "size");
		if (json_is_string(oid) && json_is_integer(size) &&
		    json_integer_value(size) > (json_int_t)LFS_CHUNK_SIZE &&
		    (uint64_t)json_integer_value(size) <= LFS_OBJECT_MAX &&
		    is_hex(json_string_value(oid), SHA256_HEX_LEN) &&
		    stored_size(store, json_string_value(oid)) < 0)
			return true;
	}
	return false;
}

/* Validates the request; on failure err says why. */
static int batch_parse(json_t *doc, bool *upload, json_t **objects,
		       json_t **transfers, struct err *err)
{
	json_t *op = json_object_get(doc, "operation");
	json_t *algo = json_object_get(doc, "hash_algo");

	if (!json_is_object(doc))
		return err_set(err, ERR_INVALID, "the batch request must be a "
			       "JSON object");
	if (!json_is_string(op) || (strcmp(json_string_value(op), "upload") &&
				    strcmp(json_string_value(op), "download")))
		return err_set(err, ERR_INVALID, "\"operation\" must be "
			       "\"upload\" or \"download\"");
	*upload = !strcmp(json_string_value(op), "upload");
	if (algo && (!json_is_string(algo) ||
		     (strcmp(json_string_value(algo), "sha256") &&
		      strcmp(json_string_value(algo), "sha_256"))))
		return err_set(err, ERR_INVALID, "unsupported hash_algo: this "
			       "server stores objects by sha256");
	*transfers = json_object_get(doc, "transfers");
	if (*transfers && !json_is_array(*transfers))
		return err_set(err, ERR_INVALID, "\"transfers\" must be a list");
	*objects = json_object_get(doc, "objects");
	if (!json_is_array(*objects))
		return err_set(err, ERR_INVALID, "\"objects\" must be a list");
	if (json_array_size(*objects) > LFS_BATCH_OBJECTS_MAX)
		return err_set(err, ERR_TOOBIG, "too many objects in one batch "
			       "request: %zu, the limit is %d",
			       json_array_size(*objects), LFS_BATCH_OBJECTS_MAX);
	return 0;
}

/* The caller's right to upload or download; anonymous callers who would
 * be refused get 401 so that git-lfs asks for credentials. */
static int batch_authorise(struct hub_call *call, const struct hub_repo *r,
			   bool upload, struct err *err)
{
	int rc = upload ? auth_check_write(call->app, &call->who, &r->rec, err)
			: auth_check_files(call->app, &call->who, &r->rec, err);

	if (rc == ERR_FORBIDDEN && hub_call_anonymous(call))
		rc = err_set(err, ERR_AUTH, "authentication required to upload "
			     "to '%s': send a token with write access",
			     r->rec.name);
	return rc;
}

static void batch_body(struct http_request *req, struct evbuffer *body,
		       int rc, void *arg)
{
	struct hub_call *call = arg;
	struct batch b = { .call = call, .now = (int64_t)time(NULL) };
	struct err err = { 0 };
	json_t *doc = NULL, *objects = NULL, *transfers = NULL, *out, *o;
	struct hub_repo r;
	bool opened = false;
	size_t i;

	if (!(doc = lfs_body_json(req, body, rc, "batch request")))
		goto out;
	if (batch_parse(doc, &b.upload, &objects, &transfers, &err) < 0) {
		lfs_reply_error(req, &err);
		goto out;
	}
	opened = true;
	if (hub_repo_open(&r, call, NULL, &err) < 0 ||
	    batch_authorise(call, &r, b.upload, &err) < 0) {
		hub_error_reply(req, &err, NULL);
		goto out;
	}
	b.rec = &r.rec;
	b.multipart = b.upload && want_multipart(call->app->store, transfers,
						 objects);
	out = json_array();
	json_array_foreach(objects, i, o)
		json_array_append_new(out, batch_object(&b, o));
	lfs_reply_json(req, 200, json_pack("{s:s, s:o, s:s}", "transfer",
					   b.multipart ? "multipart" : "basic",
					   "objects", out, "hash_algo", "sha256"));
out:
	if (opened)
		hub_repo_close(&r);
	json_decref(doc);
	hub_call_free(call);
}

void route_lfs_batch(struct hub_call *call)
{
	call->async = true;
	http_request_buffer_body(call->req, LFS_BATCH_BODY_MAX, batch_body, call);
}

/* git-lfs asks for locks before a push; 404 tells it the server has none
 * and it goes on (git-lfs docs/api/locking.md). */
void route_lfs_locks(struct hub_call *call)
{
	struct evbuffer *body = evbuffer_new();

	hub_common_headers(call->req);
	http_response_header(call->req, "Content-Type", LFS_MEDIA_TYPE);
	if (body)
		evbuffer_add_printf(body, "{\"message\":\"locking is not supported\"}");
	http_response_send(call->req, 404, body);
	evbuffer_free(body);
}

/* A hash mismatch from blob_writer_commit, said so that the client
 * knows nothing was kept. */
static int refused(struct err *err)
{
	char why[ERR_MSG_LEN];

	str_copy(why, err->msg, sizeof(why));
	return err_set(err, ERR_INVALID, "nothing was stored: the uploaded %s",
		       why);
}

/* --- PUT of an object or a part ------------------------------------------- */

struct lfs_put {
	unsigned int magic;
	struct hub_call *call;
	struct lfs_grant g;
	uint64_t expect;	/* bytes this body must carry */
	uint64_t got;
	struct blob_writer *w;	/* a whole object */
	int fd;			/* a part: its temporary file */
	char tmp[4400];
	struct err err;
};

static int put_data(struct http_request *req, const char *data, size_t len,
		    void *arg)
{
	struct lfs_put *p = arg;

	assert(p != NULL && p->magic == LFS_PUT_MAGIC);
	if (len > p->expect - p->got)
		return err_set(&p->err, ERR_INVALID, "the body is longer than "
			       "the %" PRIu64 " bytes this URL was signed for",
			       p->expect);
	if (p->w) {
		if (blob_writer_write(p->w, data, len, &p->err) < 0)
			return p->err.code;
	} else if (write_full(p->fd, data, len) < 0) {
		return err_set(&p->err, ERR_FAIL, "cannot write '%s': %s",
			       p->tmp, strerror(errno));
	}
	p->got += len;
	return 0;
}

/* Closes the part's temporary file and renames it into place. */
static int put_part_finish(struct lfs_put *p)
{
	char final[4400];
	int fd = p->fd;

	p->fd = -1;
	if (close(fd) < 0)
		return err_set(&p->err, ERR_FAIL, "cannot write '%s': %s",
			       p->tmp, strerror(errno));
	part_path(final, sizeof(final), p->call->app, &p->g, p->g.part);
	if (rename(p->tmp, final) < 0)
		return err_set(&p->err, ERR_FAIL, "cannot store part %" PRIu32
			       ": %s", p->g.part, strerror(errno));
	p->tmp[0] = '\0';
	return 0;
}

static int put_finish(struct lfs_put *p, int rc)
{
	char sha[SHA256_HEX_LEN + 1];
	uint64_t size = 0;
	int ret;

	if (rc < 0) {
		if (p->err.code)
			return p->err.code;
		return err_set(&p->err, ERR_INVALID, "the upload was cut after "
			       "%" PRIu64 " of %" PRIu64 " bytes", p->got,
			       p->expect);
	}
	if (p->got != p->expect)
		return err_set(&p->err, ERR_INVALID, "truncated upload: got %"
			       PRIu64 " of %" PRIu64 " bytes", p->got, p->expect);
	if (!p->w)
		return put_part_finish(p);
	ret = blob_writer_commit(p->w, p->g.oid, sha, &size, &p->err);
	p->w = NULL;
	if (ret == ERR_INVALID)
		return refused(&p->err);
	if (ret == 0)
		ret = lfs_claim_add(p->call->app->store->meta, p->g.repo_id,
				    p->g.oid, &p->err);
	return ret;
}

static void put_done(struct http_request *req, int rc, void *arg)
{
	struct lfs_put *p = arg;
	char etag[128];

	assert(p != NULL && p->magic == LFS_PUT_MAGIC);
	if (put_finish(p, rc) < 0) {
		log_msg(LOG_INFO, "event=lfs_upload_refused oid=%s part=%" PRIu32
			" got=%" PRIu64 " reason=\"%s\"", p->g.oid, p->g.part,
			p->got, p->err.msg);
		lfs_reply_error(req, &p->err);
	} else {
		if (p->g.op == LFS_OP_PART) {
			part_etag(etag, sizeof(etag), &p->g, p->g.part, p->got);
			http_response_header(req, "ETag", etag);
		}
		hub_common_headers(req);
		http_response_send(req, 200, NULL);
	}
	blob_writer_abort(p->w);
	if (p->fd >= 0)
		close(p->fd);
	if (p->tmp[0])
		unlink(p->tmp);
	hub_call_free(p->call);
	p->magic = 0;
	free(p);
}

static int put_open(struct lfs_put *p, struct err *err)
{
	const struct app *app = p->call->app;

	if (p->g.op == LFS_OP_UPLOAD)
		return blob_writer_begin_sha(&p->w, app->store->blobs,
					     p->g.oid, err);
	snprintf(p->tmp, sizeof(p->tmp), "%s/tmp/lfs-%s-%" PRIu32 ".XXXXXX",
		 app->store->data_dir, p->g.oid, p->g.part);
	if ((p->fd = mkostemp(p->tmp, O_CLOEXEC)) < 0) {
		err_set(err, ERR_FAIL, "cannot create a temporary file: %s",
			strerror(errno));
		p->tmp[0] = '\0';
		return ERR_FAIL;
	}
	return 0;
}

static void transfer_put(struct hub_call *call, const struct lfs_grant *g)
{
	int64_t declared = http_request_content_length(call->req);
	struct lfs_put *p = NULL;
	struct err err = { 0 };
	uint64_t expect = g->size;

	if (g->op == LFS_OP_PART) {
		if (g->part > part_count(g->size)) {
			lfs_reply_errorf(call->req, ERR_INVALID, "part %" PRIu32
					 " is past the end of the object", g->part);
			return;
		}
		expect = part_length(g->size, g->part);
	}
	if (declared >= 0 && (uint64_t)declared != expect) {
		lfs_reply_errorf(call->req, ERR_INVALID, "Content-Length is %"
				 PRId64 " but this URL is for %" PRIu64 " bytes",
				 declared, expect);
		return;
	}
	if (!(p = calloc(1, sizeof(*p)))) {
		lfs_reply_errorf(call->req, ERR_FAIL, "out of memory");
		return;
	}
	p->magic = LFS_PUT_MAGIC;
	p->call = call;
	p->g = *g;
	p->expect = expect;
	p->fd = -1;
	if (put_open(p, &err) < 0) {
		lfs_reply_error(call->req, &err);
		free(p);
		return;
	}
	call->async = true;
	http_request_read_body(call->req, put_data, put_done, p);
}

/* --- multipart completion ------------------------------------------------------ */

/* Appends one part file to the writer. */
static int append_part(struct blob_writer *w, const struct app *app,
		       const struct lfs_grant *g, uint32_t n, char *buf,
		       struct err *err)
{
	char path[4400];
	uint64_t want = part_length(g->size, n), done = 0;
	struct stat st;
	int fd, rc = 0;

	part_path(path, sizeof(path), app, g, n);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return err_set(err, errno == ENOENT ? ERR_INVALID : ERR_FAIL,
			       "part %" PRIu32 " of object %s was not uploaded",
			       n, g->oid);
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != want) {
		rc = err_set(err, ERR_INVALID, "part %" PRIu32 " has the wrong "
			     "size: upload it again", n);
		goto out;
	}
	while (done < want) {
		ssize_t got = read(fd, buf, LFS_COPY_BUF);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = err_set(err, ERR_FAIL, "cannot read part %" PRIu32
				     ": %s", n, got < 0 ? strerror(errno) :
				     "file shrank");
			goto out;
		}
		if ((rc = blob_writer_write(w, buf, (size_t)got, err)) < 0)
			goto out;
		done += (uint64_t)got;
	}
out:
	close(fd);
	return rc;
}

/* Joins the parts into the blob store. The object is checked before it
 * is committed; parts whose join does not hash to the oid are removed so
 * that a retry starts clean. */
static int assemble(const struct app *app, const struct lfs_grant *g,
		    struct err *err)
{
	struct blob_writer *w = NULL;
	char sha[SHA256_HEX_LEN + 1];
	uint64_t size = 0;
	char *buf = NULL;
	int rc;

	if (stored_size(app->store, g->oid) == (int64_t)g->size &&
	    lfs_claim_has(app->store->meta, g->repo_id, g->oid)) {
		/* Someone else completed it; the parts are not needed. */
		remove_parts(app, g);
		return 0;
	}
	if (!(buf = malloc(LFS_COPY_BUF)))
		return err_set(err, ERR_FAIL, "out of memory");
	if ((rc = blob_writer_begin_sha(&w, app->store->blobs, g->oid,
					err)) < 0)
		goto out;
	for (uint32_t n = 1; n <= part_count(g->size); n++) {
		if ((rc = append_part(w, app, g, n, buf, err)) < 0)
			goto out;
	}
	rc = blob_writer_commit(w, g->oid, sha, &size, err);
	w = NULL;
	if (rc == 0)
		rc = lfs_claim_add(app->store->meta, g->repo_id, g->oid, err);
	if (rc == ERR_INVALID)
		refused(err);
	if (rc == 0 || rc == ERR_INVALID)
		remove_parts(app, g);
out:
	blob_writer_abort(w);
	free(buf);
	return rc;
}

/* Checks the completion body: this object, every part once, and ETags
 * (when given) that match what the part PUTs answered. */
static int complete_check(json_t *doc, const struct lfs_grant *g,
			  struct err *err)
{
	uint32_t count = part_count(g->size);
	json_t *oid = json_object_get(doc, "oid");
	json_t *parts = json_object_get(doc, "parts"), *v;
	bool *seen = NULL;
	char etag[128];
	size_t i;
	int rc = 0;

	if (!json_is_object(doc) || !json_is_array(parts))
		return err_set(err, ERR_INVALID, "expected {\"oid\": ..., "
			       "\"parts\": [{\"partNumber\": n, \"etag\": ...}]}");
	if (oid && (!json_is_string(oid) || strcmp(json_string_value(oid), g->oid)))
		return err_set(err, ERR_INVALID, "\"oid\" does not match the "
			       "object of this URL");
	if (json_array_size(parts) != count)
		return err_set(err, ERR_INVALID, "expected %" PRIu32 " parts, "
			       "got %zu", count, json_array_size(parts));
	if (!(seen = calloc(count + 1, sizeof(*seen))))
		return err_set(err, ERR_FAIL, "out of memory");
	json_array_foreach(parts, i, v) {
		json_t *num = json_object_get(v, "partNumber");
		json_t *tag = json_object_get(v, "etag");
		json_int_t n = json_is_integer(num) ? json_integer_value(num) : 0;
		if (n < 1 || n > (json_int_t)count || seen[n]) {
			rc = err_set(err, ERR_INVALID, "part list entry %zu: "
				     "\"partNumber\" must be 1 to %" PRIu32
				     ", each once", i + 1, count);
			break;
		}
		seen[n] = true;
		part_etag(etag, sizeof(etag), g, (uint32_t)n,
			  part_length(g->size, (uint32_t)n));
		if (json_is_string(tag) && json_string_value(tag)[0] &&
		    strcmp(json_string_value(tag), etag)) {
			rc = err_set(err, ERR_INVALID, "part %" PRIu32 ": the etag "
				     "does not match the stored part",
				     (uint32_t)n);
			break;
		}
	}
	free(seen);
	return rc;
}

struct lfs_post {
	struct hub_call *call;
	struct lfs_grant g;
};

static void complete_body(struct http_request *req, struct evbuffer *body,
			  int rc, void *arg)
{
	struct lfs_post *p = arg;
	struct err err = { 0 };
	json_t *doc;

	if (!(doc = lfs_body_json(req, body, rc, "completion request")))
		goto out;
	if (complete_check(doc, &p->g, &err) < 0 ||
	    assemble(p->call->app, &p->g, &err) < 0) {
		log_msg(LOG_INFO, "event=lfs_complete_refused oid=%s reason=\"%s\"",
			p->g.oid, err.msg);
		lfs_reply_error(req, &err);
		goto out;
	}
	lfs_reply_json(req, 200, json_pack("{s:s, s:I}", "oid", p->g.oid,
					   "size", (json_int_t)p->g.size));
out:
	json_decref(doc);
	hub_call_free(p->call);
	free(p);
}

/* --- verify and download ------------------------------------------------------ */

static void verify_body(struct http_request *req, struct evbuffer *body,
			int rc, void *arg)
{
	struct lfs_post *p = arg;
	json_t *doc = NULL, *oid, *size;
	json_error_t jerr;

	if (rc < 0) {
		lfs_reply_errorf(req, rc, "verify request too large or incomplete");
		goto out;
	}
	/* The URL says what to verify; a body that names something else
	 * is a client mix-up worth reporting. */
	doc = evbuffer_get_length(body) ? parse_json_body(body, &jerr) : NULL;
	oid = json_object_get(doc, "oid");
	size = json_object_get(doc, "size");
	if ((oid && (!json_is_string(oid) || strcmp(json_string_value(oid), p->g.oid))) ||
	    (size && (!json_is_integer(size) ||
		      json_integer_value(size) != (json_int_t)p->g.size))) {
		lfs_reply_errorf(req, ERR_INVALID, "the verify request names "
				 "another object than its URL");
		goto out;
	}
	if (stored_size(p->call->app->store, p->g.oid) != (int64_t)p->g.size ||
	    !lfs_claim_has(p->call->app->store->meta, p->g.repo_id, p->g.oid)) {
		lfs_reply_errorf(req, ERR_NOTFOUND, "object %s (%" PRIu64
				 " bytes) was not uploaded", p->g.oid, p->g.size);
		goto out;
	}
	lfs_reply_json(req, 200, json_pack("{s:s, s:I}", "oid", p->g.oid,
					   "size", (json_int_t)p->g.size));
out:
	json_decref(doc);
	hub_call_free(p->call);
	free(p);
}

static void transfer_post(struct hub_call *call, const struct lfs_grant *g)
{
	struct lfs_post *p = calloc(1, sizeof(*p));

	if (!p) {
		lfs_reply_errorf(call->req, ERR_FAIL, "out of memory");
		return;
	}
	p->call = call;
	p->g = *g;
	call->async = true;
	if (g->op == LFS_OP_COMPLETE)
		http_request_buffer_body(call->req, LFS_COMPLETE_BODY_MAX,
					 complete_body, p);
	else
		http_request_buffer_body(call->req, LFS_VERIFY_BODY_MAX,
					 verify_body, p);
}

/* From the S3 store: streamed, its size from the grant (the batch
 * answer checked it against the store). */
static void transfer_download_remote(struct hub_call *call,
				     const struct lfs_grant *g)
{
	char etag[SHA256_HEX_LEN + 3];

	snprintf(etag, sizeof(etag), "\"%s\"", g->oid);
	hub_common_headers(call->req);
	http_response_header(call->req, "Content-Type", "application/octet-stream");
	http_response_header(call->req, "ETag", etag);
	if (http_request_method(call->req) == HTTP_HEAD) {
		http_response_begin(call->req, 200, (int64_t)g->size);
		http_response_end(call->req);
		return;
	}
	blob_send_range(call->app->blob_send, call->req, g->oid, 200, 0,
			g->size, NULL);
}

static void transfer_download(struct hub_call *call, const struct lfs_grant *g)
{
	struct err err = { 0 };
	char etag[SHA256_HEX_LEN + 3];
	uint64_t size;
	int fd = -1;

	if (!lfs_claim_has(call->app->store->meta, g->repo_id, g->oid))
		err_set(&err, ERR_NOTFOUND, "object %s is not in this repository",
			g->oid);
	else if (!blob_is_local(call->app->store->blobs)) {
		transfer_download_remote(call, g);
		return;
	} else if (blob_open(call->app->store->blobs, g->oid, &fd, &size, &err) == 0)
		err.code = 0;
	if (err.code) {
		if (err.code == ERR_NOTFOUND)
			err_set(&err, ERR_NOTFOUND, "object %s is not stored on "
				"this server", g->oid);
		lfs_reply_error(call->req, &err);
		return;
	}
	snprintf(etag, sizeof(etag), "\"%s\"", g->oid);
	hub_common_headers(call->req);
	http_response_header(call->req, "Content-Type", "application/octet-stream");
	http_response_header(call->req, "ETag", etag);
	http_response_send_file(call->req, 200, fd, 0, (off_t)size);
}

void route_lfs_transfer(struct hub_call *call)
{
	static const enum http_method wanted[] = {
		[LFS_OP_UPLOAD] = HTTP_PUT, [LFS_OP_PART] = HTTP_PUT,
		[LFS_OP_COMPLETE] = HTTP_POST, [LFS_OP_VERIFY] = HTTP_POST,
		[LFS_OP_DOWNLOAD] = HTTP_GET,
	};
	enum http_method m = http_request_method(call->req);
	struct lfs_grant g;
	struct err err = { 0 };

	if (lfs_sign_verify(&g, call->app->secret, call->path,
			    query_get(&call->query, "exp"),
			    query_get(&call->query, "sig"),
			    (int64_t)time(NULL), &err) < 0) {
		lfs_reply_error(call->req, &err);
		return;
	}
	if (m != wanted[g.op] && !(g.op == LFS_OP_DOWNLOAD && m == HTTP_HEAD)) {
		lfs_reply_errorf(call->req, ERR_INVALID, "method %s not allowed "
				 "on an LFS %s URL", http_request_method_name(call->req),
				 lfs_op_name(g.op));
		return;
	}
	switch (g.op) {
	case LFS_OP_UPLOAD:
	case LFS_OP_PART:
		transfer_put(call, &g);
		break;
	case LFS_OP_COMPLETE:
	case LFS_OP_VERIFY:
		transfer_post(call, &g);
		break;
	case LFS_OP_DOWNLOAD:
		transfer_download(call, &g);
		break;
	}
}
