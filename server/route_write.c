/*
 * route_write.c: the write API (hub-api.md 2.8 to 2.11, 2.13, 2.14):
 * repo create, delete and move; branches and tags; preupload; the NDJSON
 * commit; README validation; and the minimal pull-request discussions.
 *
 * Every handler that takes a body buffers it (bounded), parses it, then
 * works synchronously on the worker thread and answers once. Changes to
 * git follow one rule: objects first, the ref last, with a
 * compare-and-swap on its old value (storage/commit_builder.h), so a
 * refused or racing request leaves nothing visible. A stale parentCommit
 * and a lost race both answer 412, as the Hub does.
 *
 * Pull requests are refs/pr/N, numbered from 1; a discussion's title and
 * author are those of the oldest commit on it that main does not hold.
 */
#include "common/compat.h"

#include <ctype.h>
#include <strings.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "ingest/card_lineage.h"
#include "ingest/gitattributes.h"
#include "ingest/gitignore.h"
#include "ingest/modelcard.h"
#include "server/hub_error.h"
#include "server/hub_json.h"
#include "server/hub_repo.h"
#include "server/routes.h"
#include "storage/commit_builder.h"
#include "storage/lfs_claims.h"
#include "storage/lfs_pointer.h"

#define JSON_BODY_MAX ((size_t)1 << 20)
#define PREUPLOAD_BODY_MAX ((size_t)64 << 20)
#define PREUPLOAD_FILES_MAX 10000
#define COMMIT_BODY_MAX ((size_t)512 << 20)
#define LFS_SIZE_THRESHOLD ((json_int_t)10 << 20)
#define REPO_FILE_TEXT_MAX ((size_t)1 << 20)
#define URL_MAX 2048
#define PR_CREATE_TRIES 8

static const char stale_parent_msg[] =
	"The branch was updated since you opened this page. Please refresh "
	"and try again.";

/* --- shared helpers ------------------------------------------------ */

typedef void (*json_route_fn)(struct hub_call *call, json_t *body);

struct json_route {
	struct hub_call *call;
	json_route_fn fn;
};

static void json_body_done(struct http_request *req, struct evbuffer *body,
			   int rc, void *arg)
{
	struct json_route *jr = arg;
	json_error_t jerr;
	json_t *doc = NULL;
	size_t len = evbuffer_get_length(body);

	if (rc < 0) {
		hub_error_replyf(req, rc, rc == ERR_TOOBIG ? "request body too "
				 "large" : "request body incomplete");
		goto out;
	}
	if (len == 0)
		doc = json_object();
	else
		doc = json_loadb((const char *)evbuffer_pullup(body, -1), len, 0,
				 &jerr);
	if (!doc || !json_is_object(doc)) {
		hub_error_replyf(req, ERR_INVALID, "malformed JSON body: %s",
				 doc ? "expected an object" : jerr.text);
		goto out;
	}
	jr->fn(jr->call, doc);
out:
	json_decref(doc);
	hub_call_free(jr->call);
	free(jr);
}

/* Buffers a JSON object body (an empty body is {}) and calls fn with it;
 * fn answers. */
static void with_json_body(struct hub_call *call, size_t max, json_route_fn fn)
{
	struct json_route *jr = calloc(1, sizeof(*jr));

	if (!jr) {
		hub_error_replyf(call->req, ERR_FAIL, "out of memory");
		return;
	}
	jr->call = call;
	jr->fn = fn;
	call->async = true;
	http_request_buffer_body(call->req, max, json_body_done, jr);
}

/* A string member, "" when absent or null; false when of another type. */
static bool member_str(const json_t *obj, const char *key, const char **out)
{
	const json_t *v = json_object_get(obj, key);

	*out = "";
	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v))
		return false;
	*out = json_string_value(v);
	return true;
}

static void repo_url(char *out, size_t size, const struct app *app,
		     const char *type, const char *name)
{
	const char *prefix = !strcmp(type, "dataset") ? "datasets/" :
			     !strcmp(type, "space") ? "spaces/" : "";

	snprintf(out, size, "%s/%s%s", app->public_url, prefix, name);
}

static void reply_ok(struct http_request *req)
{
	hub_reply_json(req, 200, json_object());
}

/* Opens call->repo for writing: RepoNotFound when the caller cannot see
 * it, 403 when it may only read it. */
static int open_writable(struct hub_repo *r, struct hub_call *call,
			 struct err *err)
{
	int rc;

	if ((rc = hub_repo_open(r, call, NULL, err)) < 0)
		return rc;
	return auth_check_write(call->app, &call->who, &r->rec, err);
}

/* Resolves rev (a branch, tag, ref or commit id) on an open repo. */
static int resolve(struct hub_repo *r, const char *rev, struct err *err)
{
	int rc = gitrepo_resolve(r->git, rev[0] ? rev : "HEAD", &r->commit,
				 r->ref, sizeof(r->ref), err);

	if (rc == 0)
		gitrepo_oid_hex(r->commit_hex, &r->commit);
	return rc;
}

static void reply_err(struct http_request *req, const struct err *err)
{
	hub_error_reply(req, err, NULL);
}

/* --- base64 ------------------------------------------------------------ */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	return c == '/' ? 63 : -1;
}

/* Decodes standard base64 (padding optional) into a malloc'd buffer;
 * -1 for anything else. */
static int b64_decode(const char *in, size_t len, unsigned char **out,
		      size_t *out_len)
{
	unsigned char *buf;
	size_t o = 0, i;
	unsigned acc = 0;
	int bits = 0;

	while (len && in[len - 1] == '=')
		len--;
	if (len % 4 == 1 || !(buf = malloc(len / 4 * 3 + 3)))
		return -1;
	for (i = 0; i < len; i++) {
		int v = b64_value((unsigned char)in[i]);
		if (v < 0) {
			free(buf);
			return -1;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*out = buf;
	*out_len = o;
	return 0;
}

/* --- repo create, delete, move ---------------------------------------- */

static const char *type_word(const char *type)
{
	return !strcmp(type, "dataset") ? "dataset" :
	       !strcmp(type, "space") ? "space" : "model";
}

/* The type member of a body: "model" when absent; NULL when invalid. */
static const char *body_type(const json_t *body)
{
	const char *t;

	if (!member_str(body, "type", &t))
		return NULL;
	if (!t[0])
		return "model";
	return repo_type_valid(t) ? t : NULL;
}

/* private/visibility of a create body: 0 public, 1 private, -1 invalid. */
static int body_private(const json_t *body)
{
	const json_t *p = json_object_get(body, "private");
	const char *vis;

	if (!member_str(body, "visibility", &vis))
		return -1;
	if (vis[0])
		return !strcmp(vis, "private") ? 1 :
		       (!strcmp(vis, "public") || !strcmp(vis, "protected")) ? 0 : -1;
	if (!p || json_is_null(p))
		return 0;
	return json_is_boolean(p) ? json_is_true(p) : -1;
}

/* "ns/name" from a body's name and organization (the caller's own
 * namespace when there is none); false when it does not fit. */
static bool body_repo_id(char *out, size_t size, const char *name,
			 const char *org, const struct principal *who)
{
	int n;

	if (!org[0] && strchr(name, '/'))
		n = snprintf(out, size, "%s", name);
	else
		n = snprintf(out, size, "%s/%s", org[0] ? org : who->user, name);
	return n > 0 && (size_t)n < size;
}

static void reply_exists(struct http_request *req, const char *msg,
			 const char *url)
{
	http_response_header(req, "X-Error-Message", msg);
	hub_reply_json(req, 409, json_pack("{s:s, s:s}", "error", msg, "url", url));
}

static void repo_create_body(struct hub_call *call, json_t *body)
{
	const char *name, *org, *type = body_type(body);
	char id[REPO_NAME_MAX], url[URL_MAX], ns[REPO_NAME_MAX], msg[128];
	int priv = body_private(body);
	struct repo_record rec;
	struct err err = { 0 };

	if (!member_str(body, "name", &name) || !name[0] ||
	    !member_str(body, "organization", &org) || !type || priv < 0) {
		hub_error_replyf(call->req, ERR_INVALID, "expected {\"name\": "
				 "string, \"organization\": string|null, "
				 "\"type\": model|dataset|space, \"private\": bool}");
		return;
	}
	if (!call->who.authenticated) {
		hub_error_replyf(call->req, ERR_AUTH, "You must be authenticated "
				 "to create a repository");
		return;
	}
	if (!body_repo_id(id, sizeof(id), name, org, &call->who) ||
	    !repo_name_valid(id)) {
		hub_error_replyf(call->req, ERR_INVALID, "Invalid repo name "
				 "'%.200s': letters, digits, '-', '_' and '.', "
				 "at most 96 characters", name);
		return;
	}
	str_copy(ns, id, sizeof(ns));
	*strchr(ns, '/') = '\0';
	if (auth_check_namespace_write(call->app, &call->who, ns, &err) < 0) {
		reply_err(call->req, &err);
		return;
	}
	if (repo_create_ex(call->app->store, type, id, priv == 1, &rec, &err) < 0) {
		if (err.code != ERR_EXISTS) {
			reply_err(call->req, &err);
			return;
		}
		repo_lookup(call->app->store, type, id, &rec, NULL);
		repo_url(url, sizeof(url), call->app, type, rec.name[0] ? rec.name : id);
		snprintf(msg, sizeof(msg), "You already created this %s repo",
			 type_word(type));
		reply_exists(call->req, msg, url);
		return;
	}
	repo_url(url, sizeof(url), call->app, type, rec.name);
	hub_reply_json(call->req, 200, json_pack("{s:s, s:s, s:s}", "url", url,
						 "name", rec.name, "id", rec.id));
}

void route_repo_create(struct hub_call *call)
{
	with_json_body(call, JSON_BODY_MAX, repo_create_body);
}

static void repo_delete_body(struct hub_call *call, json_t *body)
{
	const char *name, *org, *type = body_type(body);
	struct err err = { 0 };
	struct hub_repo r;

	if (!member_str(body, "name", &name) || !name[0] ||
	    !member_str(body, "organization", &org) || !type) {
		hub_error_replyf(call->req, ERR_INVALID, "expected {\"name\": "
				 "string, \"organization\": string, \"type\": "
				 "model|dataset|space}");
		return;
	}
	str_copy(call->type, type, sizeof(call->type));
	if (!body_repo_id(call->repo, sizeof(call->repo), name, org, &call->who)) {
		hub_error_replyf(call->req, ERR_NOREPO, "Repository not found");
		return;
	}
	if (open_writable(&r, call, &err) < 0 ||
	    repo_delete(call->app->store, r.rec.type, r.rec.name, &err) < 0) {
		reply_err(call->req, &err);
		return;
	}
	hub_repo_close(&r);
	reply_ok(call->req);
}

void route_repo_delete(struct hub_call *call)
{
	with_json_body(call, JSON_BODY_MAX, repo_delete_body);
}

static void repo_move_body(struct hub_call *call, json_t *body)
{
	const char *from, *to, *type = body_type(body);
	struct err err = { 0 };
	struct hub_repo r;
	char ns[REPO_NAME_MAX];

	if (!member_str(body, "fromRepo", &from) || !from[0] ||
	    !member_str(body, "toRepo", &to) || !to[0] || !type) {
		hub_error_replyf(call->req, ERR_INVALID, "expected {\"fromRepo\": "
				 "\"ns/name\", \"toRepo\": \"ns/name\", \"type\": "
				 "model|dataset|space}");
		return;
	}
	if (!repo_name_valid(to)) {
		hub_error_replyf(call->req, ERR_INVALID, "Invalid repo name "
				 "'%.200s'", to);
		return;
	}
	str_copy(call->type, type, sizeof(call->type));
	str_copy(call->repo, from, sizeof(call->repo));
	str_copy(ns, to, sizeof(ns));
	*strchr(ns, '/') = '\0';
	if (open_writable(&r, call, &err) < 0 ||
	    auth_check_namespace_write(call->app, &call->who, ns, &err) < 0 ||
	    repo_move(call->app->store, r.rec.type, r.rec.name, to, NULL,
		      &err) < 0) {
		reply_err(call->req, &err);
		return;
	}
	hub_repo_close(&r);
	reply_ok(call->req);
}

void route_repo_move(struct hub_call *call)
{
	with_json_body(call, JSON_BODY_MAX, repo_move_body);
}

/* --- branches and tags ------------------------------------------------ */

/* Looks up a full ref name for deletion; RevisionNotFound when absent. */
static int delete_ref(git_repository *git, const char *full, const char *name,
		      struct err *err)
{
	git_reference *ref = NULL;
	int rc = 0;

	if (git_reference_lookup(&ref, git, full) < 0) {
		git_error_clear();
		return err_set(err, ERR_NOREV, "Invalid rev id: %.200s", name);
	}
	if (git_reference_delete(ref) < 0)
		rc = gitrepo_fail(err, ERR_FAIL, "cannot delete reference");
	git_reference_free(ref);
	return rc;
}

static int branch_delete(struct hub_call *call, struct err *err)
{
	char full[CALL_REV_MAX + 16];
	struct hub_repo r;
	int rc;

	if ((rc = open_writable(&r, call, err)) < 0)
		return rc;
	if (!strcmp(call->rev, "main"))
		return err_set(err, ERR_INVALID, "Cannot delete refs/heads/main");
	snprintf(full, sizeof(full), "refs/heads/%s", call->rev);
	rc = delete_ref(r.git, full, call->rev, err);
	hub_repo_close(&r);
	return rc;
}

/* A branch with no history: a root commit with an empty tree. */
static int branch_empty(struct hub_repo *r, struct hub_call *call,
			const char *full, bool overwrite, struct err *err)
{
	struct commit_builder_info info = { call->who.user, "initial commit" };
	struct commit_builder *b = NULL;
	git_oid old, out;
	bool exists = overwrite &&
		      gitrepo_resolve(r->git, full, &old, NULL, 0, NULL) == 0;
	int rc;

	if ((rc = commit_builder_new(&b, r->git, NULL, err)) == 0)
		rc = commit_builder_commit(b, full, exists ? &old : NULL, &info,
					   &out, err);
	commit_builder_free(b);
	return rc;
}

static int branch_create(struct hub_call *call, json_t *body, struct err *err)
{
	const char *start;
	char full[CALL_REV_MAX + 16];
	bool empty = json_is_true(json_object_get(body, "emptyBranch"));
	bool overwrite = json_is_true(json_object_get(body, "overwrite"));
	git_reference *ref = NULL;
	struct hub_repo r;
	int rc;

	if (!member_str(body, "startingPoint", &start))
		return err_set(err, ERR_INVALID, "startingPoint must be a string");
	if (!strncmp(call->rev, "refs/", 5) ||
	    !gitrepo_ref_name_valid("heads", call->rev))
		return err_set(err, ERR_INVALID, "Invalid reference for a branch: "
			       "%.200s", call->rev);
	if ((rc = open_writable(&r, call, err)) < 0)
		return rc;
	snprintf(full, sizeof(full), "refs/heads/%s", call->rev);
	if (empty)
		return branch_empty(&r, call, full, overwrite, err);
	if ((rc = resolve(&r, start, err)) < 0)
		return rc;
	if (!overwrite)
		return gitrepo_ref_create(r.git, full, &r.commit, err);
	rc = git_reference_create(&ref, r.git, full, &r.commit, 1, "branch");
	git_reference_free(ref);
	return rc < 0 ? gitrepo_fail(err, ERR_INVALID, "cannot create branch") : 0;
}

static void branch_body(struct hub_call *call, json_t *body)
{
	struct err err = { 0 };
	int rc;

	if (http_request_method(call->req) == HTTP_DELETE)
		rc = branch_delete(call, &err);
	else
		rc = branch_create(call, body, &err);
	if (rc < 0)
		reply_err(call->req, &err);
	else
		reply_ok(call->req);
}

void route_branch(struct hub_call *call)
{
	with_json_body(call, JSON_BODY_MAX, branch_body);
}

static int tag_annotated(struct hub_repo *r, const char *tag,
			 const char *message, const char *user,
			 struct err *err)
{
	git_object *target = NULL;
	git_signature *sig = NULL;
	char email[256];
	git_oid oid;
	int rc = 0, grc;

	snprintf(email, sizeof(email), "%s@users.noreply.haven",
		 user[0] ? user : "anonymous");
	if (git_object_lookup(&target, r->git, &r->commit, GIT_OBJECT_COMMIT) < 0 ||
	    git_signature_now(&sig, user[0] ? user : "anonymous", email) < 0) {
		rc = gitrepo_fail(err, ERR_FAIL, "cannot prepare tag");
		goto out;
	}
	grc = git_tag_create(&oid, r->git, tag, target, sig, message, 0);
	if (grc == GIT_EEXISTS)
		rc = err_set(err, ERR_EXISTS, "Reference refs/tags/%s already "
			     "exists", tag);
	else if (grc < 0)
		rc = gitrepo_fail(err, ERR_INVALID, "cannot create tag");
out:
	git_signature_free(sig);
	git_object_free(target);
	return rc;
}

static int tag_create(struct hub_call *call, json_t *body, struct err *err)
{
	const char *tag, *message;
	char full[1024];
	struct hub_repo r;
	int rc;

	if (!member_str(body, "tag", &tag) || !member_str(body, "message", &message))
		return err_set(err, ERR_INVALID, "expected {\"tag\": string, "
			       "\"message\": string}");
	if (!gitrepo_ref_name_valid("tags", tag))
		return err_set(err, ERR_INVALID, "Invalid tag name: '%.200s'", tag);
	if ((rc = open_writable(&r, call, err)) < 0 ||
	    (rc = resolve(&r, call->rev, err)) < 0)
		return rc;
	if (message[0])
		return tag_annotated(&r, tag, message, call->who.user, err);
	snprintf(full, sizeof(full), "refs/tags/%s", tag);
	return gitrepo_ref_create(r.git, full, &r.commit, err);
}

static void tag_body(struct hub_call *call, json_t *body)
{
	char full[CALL_REV_MAX + 16];
	struct err err = { 0 };
	struct hub_repo r;
	int rc;

	if (http_request_method(call->req) == HTTP_DELETE) {
		snprintf(full, sizeof(full), "refs/tags/%s", call->rev);
		if ((rc = open_writable(&r, call, &err)) == 0)
			rc = delete_ref(r.git, full, call->rev, &err);
	} else {
		rc = tag_create(call, body, &err);
	}
	if (rc < 0)
		reply_err(call->req, &err);
	else
		reply_ok(call->req);
}

void route_tag(struct hub_call *call)
{
	with_json_body(call, JSON_BODY_MAX, tag_body);
}

/* --- preupload ---------------------------------------------------------- */

/* The text of a regular file of the revision (NULL when absent, LFS or
 * too large). Caller frees. */
static char *revision_text(struct hub_repo *r, const char *path, size_t *len)
{
	const struct listing_entry *e = listing_find(r->listing, path);
	git_blob *blob = NULL;
	git_oid oid;
	char *out = NULL;

	if (!e || e->is_dir || e->lfs || git_oid_fromstr(&oid, e->oid) < 0 ||
	    git_blob_lookup(&blob, r->git, &oid) < 0) {
		git_error_clear();
		return NULL;
	}
	*len = (size_t)git_blob_rawsize(blob);
	if (*len <= REPO_FILE_TEXT_MAX && (out = malloc(*len + 1))) {
		memcpy(out, git_blob_rawcontent(blob), *len);
		out[*len] = '\0';
	}
	git_blob_free(blob);
	return out;
}

/* Rules from the request's member key, else from the revision's file. */
static char *rules_text(struct hub_repo *r, const json_t *body,
			const char *key, const char *file, size_t *len)
{
	const json_t *v = json_object_get(body, key);

	if (json_is_string(v)) {
		*len = json_string_length(v);
		return strdup(json_string_value(v));
	}
	return revision_text(r, file, len);
}

/* True when the base64 sample of a file's first bytes holds a NUL. */
static bool sample_binary(const char *sample)
{
	unsigned char *buf;
	size_t len;
	bool nul;

	if (!sample[0] || b64_decode(sample, strlen(sample), &buf, &len) < 0)
		return false;
	nul = memchr(buf, 0, len) != NULL;
	free(buf);
	return nul;
}

static json_t *preupload_entry(struct hub_repo *r, const json_t *f,
			       const struct gitattributes *ga,
			       const struct gitignore *gi)
{
	const char *path, *sample;
	const json_t *size = json_object_get(f, "size");
	const struct listing_entry *e;
	bool lfs;

	if (!json_is_object(f) || !member_str(f, "path", &path) || !path[0] ||
	    !member_str(f, "sample", &sample) || (size && !json_is_integer(size)))
		return NULL;
	lfs = gitattributes_is_lfs(ga, path) ||
	      json_integer_value(size) >= LFS_SIZE_THRESHOLD ||
	      sample_binary(sample);
	e = listing_find(r->listing, path);
	if (e && e->is_dir)
		e = NULL;
	return json_pack("{s:s, s:s, s:b, s:o}", "path", path, "uploadMode",
			 lfs ? "lfs" : "regular", "shouldIgnore",
			 gitignore_ignored(gi, path), "oid",
			 e ? json_string(e->lfs ? e->sha256 : e->oid) : json_null());
}

static int preupload_answer(struct hub_repo *r, const json_t *body,
			    json_t **out, struct err *err)
{
	const json_t *files = json_object_get(body, "files");
	struct gitattributes *ga = NULL;
	struct gitignore *gi = NULL;
	char *attrs = NULL, *ignore = NULL;
	size_t alen = 0, ilen = 0, i;
	json_t *arr = json_array(), *f;
	int rc = 0;

	if (!json_is_array(files) || json_array_size(files) > PREUPLOAD_FILES_MAX) {
		rc = err_set(err, ERR_INVALID, "expected {\"files\": [{\"path\", "
			     "\"sample\", \"size\"}, ...]} (at most %d)",
			     PREUPLOAD_FILES_MAX);
		goto out;
	}
	attrs = rules_text(r, body, "gitAttributes", ".gitattributes", &alen);
	ignore = rules_text(r, body, "gitIgnore", ".gitignore", &ilen);
	ga = gitattributes_parse(attrs, attrs ? alen : 0);
	gi = gitignore_parse(ignore, ignore ? ilen : 0);
	if (!arr || !ga || !gi) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	json_array_foreach(files, i, f) {
		json_t *entry = preupload_entry(r, f, ga, gi);
		if (!entry) {
			rc = err_set(err, ERR_INVALID, "files[%zu]: expected "
				     "{\"path\": string, \"sample\": base64, "
				     "\"size\": integer}", i);
			goto out;
		}
		json_array_append_new(arr, entry);
	}
	*out = json_pack("{s:o}", "files", arr);
	arr = NULL;
out:
	json_decref(arr);
	gitattributes_free(ga);
	gitignore_free(gi);
	free(attrs);
	free(ignore);
	return rc;
}

static void preupload_body(struct http_request *req, struct evbuffer *body,
			   int rc, void *arg)
{
	struct hub_call *call = arg;
	struct err err = { 0 };
	json_error_t jerr;
	json_t *doc = NULL, *answer = NULL;
	struct hub_repo r;

	if (rc < 0) {
		hub_error_replyf(req, rc, rc == ERR_TOOBIG ? "request body too "
				 "large" : "request body incomplete");
		goto out;
	}
	if (open_writable(&r, call, &err) < 0 ||
	    resolve(&r, call->rev, &err) < 0 ||
	    hub_repo_listing(&r, call, &err) < 0) {
		reply_err(req, &err);
		goto out;
	}
	doc = json_loadb((const char *)evbuffer_pullup(body, -1),
			 evbuffer_get_length(body), 0, &jerr);
	if (!json_is_object(doc)) {
		hub_error_replyf(req, ERR_INVALID, "malformed JSON body: %s",
				 doc ? "expected an object" : jerr.text);
		goto out;
	}
	if (preupload_answer(&r, doc, &answer, &err) < 0)
		reply_err(req, &err);
	else
		hub_reply_json(req, 200, answer);
	hub_repo_close(&r);
out:
	json_decref(doc);
	hub_call_free(call);
}

void route_preupload(struct hub_call *call)
{
	call->async = true;
	http_request_buffer_body(call->req, PREUPLOAD_BODY_MAX, preupload_body,
				 call);
}

/* --- commit ------------------------------------------------------------- */

struct commit_job {
	struct hub_call *call;
	struct hub_repo r;
	struct commit_builder *b;
	char target[256];	/* the ref that moves */
	bool target_new;	/* a pull request ref, created */
	unsigned pr_num;
	char **lfs_paths;	/* LFS files added, for .gitattributes */
	size_t nlfs;
	char *message;
	size_t line;
};

/* Takes the next non-empty line off body into a malloc'd string (the
 * last one may lack its newline); NULL at the end. */
static char *next_line(struct evbuffer *body, size_t *len)
{
	char *line;

	for (;;) {
		line = evbuffer_readln(body, len, EVBUFFER_EOL_LF);
		if (!line) {
			size_t rest = evbuffer_get_length(body);
			if (!rest || !(line = malloc(rest + 1)))
				return NULL;
			evbuffer_remove(body, line, rest);
			line[rest] = '\0';
			*len = rest;
		}
		while (*len && (line[*len - 1] == '\r' || line[*len - 1] == ' '))
			line[--*len] = '\0';
		if (*len)
			return line;
		free(line);
	}
}

/* Parses line into {key, value}; ERR_INVALID naming the line. */
static int parse_op(struct commit_job *j, const char *line, size_t len,
		    json_t **doc, const char **key, json_t **value,
		    struct err *err)
{
	json_error_t jerr;

	*doc = json_loadb(line, len, 0, &jerr);
	if (!*doc)
		return err_set(err, ERR_INVALID, "line %zu: malformed JSON: %s",
			       j->line, jerr.text);
	*key = json_string_value(json_object_get(*doc, "key"));
	*value = json_object_get(*doc, "value");
	if (!*key || !json_is_object(*value))
		return err_set(err, ERR_INVALID, "line %zu: expected {\"key\": "
			       "string, \"value\": object}", j->line);
	return 0;
}

static int op_path(struct commit_job *j, const json_t *value,
		   const char **path, struct err *err)
{
	if (!member_str(value, "path", path) || !(*path)[0])
		return err_set(err, ERR_INVALID, "line %zu: missing path", j->line);
	return 0;
}

static int op_file(struct commit_job *j, const json_t *value, struct err *err)
{
	const char *path, *content, *enc;
	unsigned char *data = NULL;
	size_t len;
	unsigned mode = 0100644;
	git_oid blob;
	int rc;

	if ((rc = op_path(j, value, &path, err)) < 0)
		return rc;
	if (!member_str(value, "content", &content) ||
	    !member_str(value, "encoding", &enc))
		return err_set(err, ERR_INVALID, "line %zu: content and encoding "
			       "must be strings", j->line);
	if (!strcmp(enc, "utf-8") || !strcmp(enc, "utf8")) {
		len = json_string_length(json_object_get(value, "content"));
		rc = git_blob_create_from_buffer(&blob, j->r.git, content, len);
	} else if (!enc[0] || !strcmp(enc, "base64")) {
		if (b64_decode(content, strlen(content), &data, &len) < 0)
			return err_set(err, ERR_INVALID, "line %zu: invalid base64 "
				       "content for '%.200s'", j->line, path);
		rc = git_blob_create_from_buffer(&blob, j->r.git, data, len);
		free(data);
	} else {
		return err_set(err, ERR_INVALID, "line %zu: unknown encoding "
			       "'%.50s'", j->line, enc);
	}
	if (rc < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot store file");
	commit_builder_get(j->b, path, NULL, &mode);
	return commit_builder_add(j->b, path, mode == 0100755 ? mode : 0100644,
				  &blob, err);
}

static int remember_lfs(struct commit_job *j, const char *path)
{
	char **grown = realloc(j->lfs_paths, (j->nlfs + 1) * sizeof(*grown));

	if (!grown)
		return ERR_FAIL;
	j->lfs_paths = grown;
	if (!(j->lfs_paths[j->nlfs] = strdup(path)))
		return ERR_FAIL;
	j->nlfs++;
	return 0;
}

/* The size of an uploaded LFS object; ERR_INVALID when it is missing. */
static int lfs_object_size(struct commit_job *j, const char *oid,
			   uint64_t *size, struct err *err)
{
	struct store *store = j->call->app->store;
	struct blob_info info;

	/* The blob store is shared: an object stored for another repository
	 * does not count until its bytes were uploaded through this one. */
	if (!lfs_claim_has(store->meta, j->r.rec.id, oid) ||
	    blob_stat(store->blobs, oid, &info, NULL) < 0)
		return err_set(err, ERR_INVALID, "line %zu: LFS object %s was not "
			       "uploaded", j->line, oid);
	*size = info.size;
	return 0;
}

static int op_lfs_file(struct commit_job *j, const json_t *value,
		       struct err *err)
{
	const char *path, *algo, *oid;
	const json_t *size = json_object_get(value, "size");
	char ptr[LFS_POINTER_MAX];
	uint64_t stored = 0;
	git_oid blob;
	size_t len;
	int rc;

	if ((rc = op_path(j, value, &path, err)) < 0)
		return rc;
	if (!member_str(value, "algo", &algo) || (algo[0] && strcmp(algo, "sha256")) ||
	    !member_str(value, "oid", &oid) || !is_hex(oid, SHA256_HEX_LEN) ||
	    (size && !json_is_null(size) && !json_is_integer(size)))
		return err_set(err, ERR_INVALID, "line %zu: expected {\"path\", "
			       "\"algo\": \"sha256\", \"oid\": 64 lower-case hex, "
			       "\"size\": integer}", j->line);
	if ((rc = lfs_object_size(j, oid, &stored, err)) < 0)
		return rc;
	if (json_is_integer(size) && (json_integer_value(size) < 0 ||
				      (uint64_t)json_integer_value(size) != stored))
		return err_set(err, ERR_INVALID, "line %zu: LFS object %s has "
			       "%llu bytes, not %lld", j->line, oid,
			       (unsigned long long)stored,
			       (long long)json_integer_value(size));
	len = lfs_pointer_format(ptr, sizeof(ptr), oid, stored);
	if (git_blob_create_from_buffer(&blob, j->r.git, ptr, len) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot store LFS pointer");
	if ((rc = commit_builder_add(j->b, path, 0100644, &blob, err)) < 0)
		return rc;
	return remember_lfs(j, path) < 0 ? err_set(err, ERR_FAIL, "out of memory")
					 : 0;
}

static int apply_op(struct commit_job *j, const char *key, const json_t *value,
		    struct err *err)
{
	const char *path;
	int rc;

	if (!strcmp(key, "file"))
		return op_file(j, value, err);
	if (!strcmp(key, "lfsFile"))
		return op_lfs_file(j, value, err);
	if (strcmp(key, "deletedFile") && strcmp(key, "deletedFolder"))
		return err_set(err, ERR_INVALID, "line %zu: unknown operation "
			       "'%.50s'", j->line, key);
	if ((rc = op_path(j, value, &path, err)) < 0)
		return rc;
	if (!strcmp(key, "deletedFolder"))
		return commit_builder_remove_folder(j->b, path, err);
	return commit_builder_remove(j->b, path, true, err);
}

/* Adds a .gitattributes line for every LFS file no pattern covers. */
static int track_lfs_paths(struct commit_job *j, struct err *err)
{
	struct gitattributes *ga = NULL;
	char *text = NULL;
	size_t len = 0;
	unsigned mode = 0100644;
	bool changed = false;
	git_blob *blob = NULL;
	git_oid oid;
	int rc = 0;

	if (commit_builder_get(j->b, ".gitattributes", &oid, &mode) &&
	    git_blob_lookup(&blob, j->r.git, &oid) == 0 &&
	    (len = (size_t)git_blob_rawsize(blob)) > 0 && (text = malloc(len)))
		memcpy(text, git_blob_rawcontent(blob), len);
	git_blob_free(blob);
	if (!text)
		len = 0;
	for (size_t i = 0; i < j->nlfs && rc == 0; i++) {
		if (!ga && !(ga = gitattributes_parse(text, len)))
			rc = ERR_FAIL;
		else if (!gitattributes_is_lfs(ga, j->lfs_paths[i])) {
			rc = gitattributes_track(&text, &len, j->lfs_paths[i]);
			gitattributes_free(ga);
			ga = NULL;
			changed = true;
		}
	}
	gitattributes_free(ga);
	if (rc < 0)
		rc = err_set(err, ERR_FAIL, "out of memory");
	else if (changed && git_blob_create_from_buffer(&oid, j->r.git, text, len) < 0)
		rc = gitrepo_fail(err, ERR_FAIL, "cannot store .gitattributes");
	else if (changed)
		rc = commit_builder_add(j->b, ".gitattributes",
					mode == 0100755 ? mode : 0100644, &oid, err);
	free(text);
	return rc;
}

/* The commit message from the header: summary, a blank line, description. */
static int header_message(struct commit_job *j, const json_t *value,
			  const char **parent, struct err *err)
{
	const char *summary, *desc;
	size_t n;

	if (!member_str(value, "summary", &summary) ||
	    !member_str(value, "description", &desc) ||
	    !member_str(value, "parentCommit", parent))
		return err_set(err, ERR_INVALID, "line 1: summary, description and "
			       "parentCommit must be strings");
	n = strlen(summary) + strlen(desc) + 4;
	if (!(j->message = malloc(n)))
		return err_set(err, ERR_FAIL, "out of memory");
	snprintf(j->message, n, desc[0] ? "%s\n\n%s\n" : "%s\n", summary, desc);
	return 0;
}

/* Checks a parentCommit (5 to 40 hex digits) against the branch head. */
static int check_parent(struct commit_job *j, const char *parent,
			struct err *err)
{
	size_t n = strlen(parent);

	if (!n)
		return 0;
	if (n < 5 || n > GIT_HEX_LEN)
		return err_set(err, ERR_INVALID, "invalid parentCommit '%.50s'",
			       parent);
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)parent[i]))
			return err_set(err, ERR_INVALID, "invalid parentCommit "
				       "'%.50s'", parent);
	}
	if (strncasecmp(j->r.commit_hex, parent, n))
		return err_set(err, ERR_CONFLICT, "%s", stale_parent_msg);
	return 0;
}

static int pr_collect(const char *name, void *arg)
{
	unsigned *max = arg;
	const char *num = name + strlen("refs/pr/");
	char *end;
	unsigned long v = strtoul(num, &end, 10);

	if (*num && !*end && v > *max && v < 1000000000ul)
		*max = (unsigned)v;
	return 0;
}

/* The next pull request number: one more than the largest refs/pr/N. */
static unsigned pr_next(git_repository *git)
{
	unsigned max = 0;

	git_reference_foreach_glob(git, "refs/pr/*", pr_collect, &max);
	return max + 1;
}

/* Where the commit goes: the branch (or PR) named by the revision, or a
 * new refs/pr/N with create_pr. */
static int commit_target(struct commit_job *j, struct err *err)
{
	struct hub_call *call = j->call;
	int rc;

	if ((rc = resolve(&j->r, call->rev, err)) < 0)
		return rc;
	if (query_bool(&call->query, "create_pr", false)) {
		j->target_new = true;
		j->pr_num = pr_next(j->r.git);
		snprintf(j->target, sizeof(j->target), "refs/pr/%u", j->pr_num);
		return 0;
	}
	if (strncmp(j->r.ref, "refs/heads/", 11) && strncmp(j->r.ref, "refs/pr/", 8))
		return err_set(err, ERR_INVALID, "cannot commit to '%.200s': not a "
			       "branch", call->rev);
	str_copy(j->target, j->r.ref, sizeof(j->target));
	return 0;
}

/* Reads the header line, finds the target and starts the builder. */
static int commit_start(struct commit_job *j, struct evbuffer *body,
			struct err *err)
{
	const char *key, *parent;
	json_t *doc = NULL, *value;
	size_t len;
	char *line = next_line(body, &len);
	int rc;

	j->line = 1;
	if (!line)
		return err_set(err, ERR_INVALID, "empty commit: expected a header "
			       "line {\"key\": \"header\", \"value\": {...}}");
	rc = parse_op(j, line, len, &doc, &key, &value, err);
	free(line);
	if (rc == 0 && strcmp(key, "header"))
		rc = err_set(err, ERR_INVALID, "line 1: the first line must be the "
			     "header, not '%.50s'", key);
	if (rc == 0)
		rc = header_message(j, value, &parent, err);
	if (rc == 0)
		rc = commit_target(j, err);
	if (rc == 0)
		rc = check_parent(j, parent, err);
	if (rc == 0)
		rc = commit_builder_new(&j->b, j->r.git, &j->r.commit, err);
	json_decref(doc);
	return rc;
}

static int commit_ops(struct commit_job *j, struct evbuffer *body,
		      struct err *err)
{
	const char *key;
	json_t *doc, *value;
	size_t len;
	char *line;
	int rc = 0;

	while (rc == 0 && (line = next_line(body, &len))) {
		j->line++;
		doc = NULL;
		rc = parse_op(j, line, len, &doc, &key, &value, err);
		free(line);
		if (rc == 0)
			rc = apply_op(j, key, value, err);
		json_decref(doc);
	}
	if (rc == 0 && j->nlfs)
		rc = track_lfs_paths(j, err);
	return rc;
}

/* Writes the commit and moves the target; a new PR ref that another
 * request took meanwhile moves to the next number. */
static int commit_finish(struct commit_job *j, git_oid *out, struct err *err)
{
	struct commit_builder_info info = { j->call->who.user, j->message };
	int rc;

	for (int tries = 0;; tries++) {
		rc = commit_builder_commit(j->b, j->target,
					   j->target_new ? NULL : &j->r.commit,
					   &info, out, err);
		if (rc != ERR_EXISTS || !j->target_new || tries >= PR_CREATE_TRIES)
			break;
		j->pr_num++;
		snprintf(j->target, sizeof(j->target), "refs/pr/%u", j->pr_num);
	}
	if (rc == ERR_CONFLICT)
		err_set(err, ERR_CONFLICT, "%s", stale_parent_msg);
	return rc;
}

static json_t *commit_answer(struct commit_job *j, const git_oid *commit)
{
	char hex[GIT_HEX_LEN + 1], base[URL_MAX], url[URL_MAX + 64];
	json_t *doc;

	gitrepo_oid_hex(hex, commit);
	repo_url(base, sizeof(base), j->call->app, j->r.rec.type, j->r.rec.name);
	snprintf(url, sizeof(url), "%s/commit/%s", base, hex);
	doc = json_pack("{s:s, s:s}", "commitUrl", url, "commitOid", hex);
	if (doc && j->target_new) {
		snprintf(url, sizeof(url), "%s/discussions/%u", base, j->pr_num);
		json_object_set_new(doc, "pullRequestUrl", json_string(url));
	}
	return doc;
}

static void commit_job_free(struct commit_job *j)
{
	commit_builder_free(j->b);
	for (size_t i = 0; i < j->nlfs; i++)
		free(j->lfs_paths[i]);
	free(j->lfs_paths);
	free(j->message);
	hub_repo_close(&j->r);
}

static void commit_body(struct http_request *req, struct evbuffer *body,
			int rc, void *arg)
{
	struct commit_job j = { .call = arg };
	struct err err = { 0 };
	git_oid commit;

	if (rc < 0) {
		if (rc == ERR_TOOBIG)
			hub_error_replyf(req, rc, "commit larger than %zu MiB: "
					 "upload large files with LFS",
					 COMMIT_BODY_MAX >> 20);
		else
			hub_error_replyf(req, rc, "request body incomplete");
		goto out;
	}
	if (open_writable(&j.r, j.call, &err) < 0 ||
	    commit_start(&j, body, &err) < 0 || commit_ops(&j, body, &err) < 0 ||
	    commit_finish(&j, &commit, &err) < 0) {
		reply_err(req, &err);
		goto out;
	}
	/* The branch has moved; the lineage edges follow it. A failure is
	 * logged, never the commit's (the edges are rebuilt at the next one). */
	if (!strncmp(j.target, "refs/heads/", 11) &&
	    card_lineage_sync(j.call->app->store, &j.r.rec, &err) < 0)
		log_msg(LOG_WARN, "event=lineage_sync_failed repo=%s error=\"%s\"",
			j.r.rec.name, err.msg);
	hub_reply_json(req, 200, commit_answer(&j, &commit));
out:
	commit_job_free(&j);
	hub_call_free(j.call);
}

void route_commit(struct hub_call *call)
{
	struct err err = { 0 };
	struct hub_repo r;

	/* Refuse before reading what may be hundreds of megabytes. */
	if (open_writable(&r, call, &err) < 0) {
		reply_err(call->req, &err);
		return;
	}
	hub_repo_close(&r);
	call->async = true;
	http_request_buffer_body(call->req, COMMIT_BODY_MAX, commit_body, call);
}

/* --- validate-yaml ------------------------------------------------------ */

static void reply_yaml_error(struct http_request *req, const char *msg)
{
	http_response_header(req, "X-Error-Message", msg);
	hub_reply_json(req, 400, json_pack("{s:s, s:[{s:s}], s:[]}", "error", msg,
					   "errors", "message", msg, "warnings"));
}

static void validate_yaml_body(struct hub_call *call, json_t *body)
{
	const char *content;
	const json_t *mi;
	struct err err = { 0 };
	json_t *card = NULL;

	if (!member_str(body, "content", &content)) {
		reply_yaml_error(call->req, "content must be a string");
		return;
	}
	if (modelcard_parse(&card, content,
			    json_string_length(json_object_get(body, "content")),
			    &err) < 0) {
		reply_yaml_error(call->req, err.msg);
		return;
	}
	mi = json_object_get(card, "model-index");
	if (mi && !json_is_array(mi))
		reply_yaml_error(call->req, "\"model-index\" must be an array");
	else if (!card)
		hub_reply_json(call->req, 200, json_pack("{s:[], s:[{s:s}]}",
			       "errors", "warnings", "message",
			       "Empty or missing yaml metadata in repo card"));
	else
		hub_reply_json(call->req, 200,
			       json_pack("{s:[], s:[]}", "errors", "warnings"));
	json_decref(card);
}

void route_validate_yaml(struct hub_call *call)
{
	with_json_body(call, JSON_BODY_MAX, validate_yaml_body);
}

/* --- discussions (pull requests only) ------------------------------------- */

struct pr_info {
	unsigned num;
	char title[512];
	char author[128];
	char date[32];
};

/* Title, author and date of the oldest commit of refs/pr/N that main
 * does not hold; of its head when there is none. */
static int pr_load(git_repository *git, unsigned num, struct pr_info *out)
{
	char ref[64];
	git_oid head, main, id, pick;
	git_revwalk *walk = NULL;
	git_commit *c = NULL;
	struct commit_summary s;
	bool own = false;

	snprintf(ref, sizeof(ref), "refs/pr/%u", num);
	if (gitrepo_resolve(git, ref, &head, NULL, 0, NULL) < 0)
		return ERR_NOTFOUND;
	git_oid_cpy(&pick, &head);
	if (git_revwalk_new(&walk, git) == 0 && git_revwalk_push(walk, &head) == 0) {
		git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL);
		if (gitrepo_resolve(git, "refs/heads/main", &main, NULL, 0, NULL) == 0)
			git_revwalk_hide(walk, &main);
		while (git_revwalk_next(&id, walk) == 0) {
			git_oid_cpy(&pick, &id);
			own = true;
		}
	}
	git_revwalk_free(walk);
	git_error_clear();
	memset(out, 0, sizeof(*out));
	out->num = num;
	if (git_commit_lookup(&c, git, &pick) < 0)
		return ERR_FAIL;
	hub_commit_summary(&s, c);
	str_copy(out->date, s.date, sizeof(out->date));
	str_copy(out->author, git_commit_author(c)->name, sizeof(out->author));
	if (own)
		str_copy(out->title, s.title, sizeof(out->title));
	else
		snprintf(out->title, sizeof(out->title), "Pull request #%u", num);
	git_commit_free(c);
	return 0;
}

static json_t *pr_json(const struct hub_repo *r, const struct pr_info *p,
		       bool details)
{
	json_t *doc = json_pack("{s:I, s:s, s:s, s:b, s:s, s:{s:s}, s:{s:s, s:s}, "
				"s:b, s:b, s:b}", "num", (json_int_t)p->num,
				"title", p->title, "status", "open",
				"isPullRequest", 1, "createdAt", p->date,
				"author", "name", p->author, "repo", "name",
				r->rec.name, "type", r->rec.type, "pinned", 0,
				"locked", 0, "isReport", 0);

	if (doc && details) {
		json_object_set_new(doc, "events", json_array());
		json_object_set_new(doc, "changes",
				    json_pack("{s:s}", "base", "refs/heads/main"));
		json_object_set_new(doc, "filesWithConflicts", json_array());
		json_object_set_new(doc, "diff", json_string(""));
	}
	return doc;
}

struct pr_list {
	git_repository *git;
	unsigned nums[1024];
	size_t count;
};

static int pr_list_add(const char *name, void *arg)
{
	struct pr_list *l = arg;
	unsigned max = 0;

	pr_collect(name, &max);
	if (max && l->count < ARRAY_SIZE(l->nums))
		l->nums[l->count++] = max;
	return 0;
}

static int cmp_desc(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* GET .../discussions: every pull request, newest first, one page. */
static json_t *discussions_list(struct hub_call *call, struct hub_repo *r)
{
	const char *type = query_get(&call->query, "type");
	const char *status = query_get(&call->query, "status");
	const char *author = query_get(&call->query, "author");
	struct pr_list *l = calloc(1, sizeof(*l));
	json_t *arr = json_array();
	struct pr_info p;

	if (!l || !arr) {
		free(l);
		json_decref(arr);
		return NULL;
	}
	/* Only open pull requests exist here. */
	if ((!type || !strcmp(type, "all") || !strcmp(type, "pull_request")) &&
	    (!status || !strcmp(status, "all") || !strcmp(status, "open")))
		git_reference_foreach_glob(r->git, "refs/pr/*", pr_list_add, l);
	qsort(l->nums, l->count, sizeof(l->nums[0]), cmp_desc);
	for (size_t i = 0; i < l->count; i++) {
		if (pr_load(r->git, l->nums[i], &p) == 0 &&
		    (!author || !strcasecmp(author, p.author)))
			json_array_append_new(arr, pr_json(r, &p, false));
	}
	free(l);
	return json_pack("{s:o, s:I, s:i}", "discussions", arr, "count",
			 (json_int_t)json_array_size(arr), "start", 0);
}

/* POST .../discussions {title, description, pullRequest: true}: a new
 * refs/pr/N at main's head. */
static int discussion_create(struct hub_call *call, struct hub_repo *r,
			     const json_t *body, struct pr_info *p,
			     struct err *err)
{
	const char *title;
	int rc;

	if (!member_str(body, "title", &title) || !title[0])
		return err_set(err, ERR_INVALID, "a title is required");
	if (!json_is_true(json_object_get(body, "pullRequest")))
		return err_set(err, ERR_INVALID, "only pull requests are "
			       "supported: send \"pullRequest\": true");
	if ((rc = auth_check_write(call->app, &call->who, &r->rec, err)) < 0 ||
	    (rc = resolve(r, "HEAD", err)) < 0)
		return rc;
	memset(p, 0, sizeof(*p));
	for (int tries = 0; tries < PR_CREATE_TRIES; tries++) {
		char ref[64];
		p->num = pr_next(r->git);
		snprintf(ref, sizeof(ref), "refs/pr/%u", p->num);
		rc = gitrepo_ref_create(r->git, ref, &r->commit, err);
		if (rc != ERR_EXISTS)
			break;
	}
	if (rc < 0)
		return rc;
	str_copy(p->title, title, sizeof(p->title));
	str_copy(p->author, call->who.user, sizeof(p->author));
	time_iso8601(p->date, time(NULL));
	return 0;
}

static void discussions_body(struct hub_call *call, json_t *body)
{
	struct err err = { 0 };
	struct hub_repo r;
	struct pr_info p;
	char *end;
	unsigned long num;

	if (hub_repo_open(&r, call, NULL, &err) < 0) {
		reply_err(call->req, &err);
		return;
	}
	if (http_request_method(call->req) == HTTP_POST) {
		if (discussion_create(call, &r, body, &p, &err) < 0)
			reply_err(call->req, &err);
		else
			hub_reply_json(call->req, 200, pr_json(&r, &p, false));
	} else if (!call->rev[0]) {
		hub_reply_json(call->req, 200, discussions_list(call, &r));
	} else {
		num = strtoul(call->rev, &end, 10);
		if (*end || !call->rev[0] || !isdigit((unsigned char)call->rev[0]) ||
		    num == 0 || num >= 1000000000ul ||
		    pr_load(r.git, (unsigned)num, &p) < 0)
			hub_error_replyf(call->req, ERR_NOTFOUND, "Discussion "
					 "#%.20s not found", call->rev);
		else
			hub_reply_json(call->req, 200, pr_json(&r, &p, true));
	}
	hub_repo_close(&r);
}

void route_discussions(struct hub_call *call)
{
	with_json_body(call, JSON_BODY_MAX, discussions_body);
}
