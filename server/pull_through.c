/*
 * pull_through.c: see pull_through.h.
 *
 * pull_through_dispatch() is a small state machine run on the request's
 * worker thread; each step that needs the upstream parks the call on a
 * "flight" and resumes it when the flight lands:
 *   1. unknown repository          -> fetch its history      (FLIGHT_GIT)
 *   2. private upstream repository -> ask about the token    (FLIGHT_AUTH)
 *      gated, and file content     -> probe a file with it   (FLIGHT_AUTH)
 *   3. unknown revision            -> refresh the history    (FLIGHT_GIT)
 *   4. the route's handler.
 * Flights are single-flight by key (one history fetch per repository, one
 * token question per token hash, repository and kind), run on the fill
 * engine's threads, and wake their parked calls with event_active() on
 * each call's own event_base. Each stage runs at most once per request,
 * so a resumed call always moves on.
 *
 * The token verdicts are kept VERDICT_OK_S (granted) or VERDICT_NO_S
 * (refused) per (sha256 of the token, repository, kind): one user's
 * answer never serves another token, and a revoked upstream token stops
 * working within a minute.
 */
#include "common/compat.h"

#include <assert.h>
#include <pthread.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "common/util.h"
#include "ingest/mirror.h"
#include "server/app.h"
#include "server/hub_error.h"
#include "server/hub_repo.h"
#include "server/metrics.h"
#include "server/pull_through.h"
#include "server/upstream_fill.h"
#include "storage/hash.h"
#include "storage/mirror_state.h"

#define WAIT_MAGIC 0x50547774u	/* "PTwt" */
#define PT_TOKEN_MAX 512
#define VERDICTS 512
#define VERDICT_OK_S 60
#define VERDICT_NO_S 10
#define DEFAULT_THREADS 8
/* A branch or tag Haven has is served as it is, and its history asked
 * for again in the background once it is this old. */
#define STALE_S 300

enum flight_kind { FLIGHT_GIT, FLIGHT_AUTH };
enum need { NEED_READ, NEED_FILES };

/* Stages a call has been through (pt_wait.stage). */
enum {
	STAGE_FETCHED = 1,
	STAGE_REFRESHED = 2,
	STAGE_READ_KNOWN = 4,
	STAGE_READ_OK = 8,
	STAGE_FILES_KNOWN = 16,
	STAGE_FILES_OK = 32,
};

struct pt_wait;

struct pt_flight {
	struct pull_through *pt;
	enum flight_kind kind;
	enum need need;
	char key[400];
	char type[8];
	char name[REPO_NAME_MAX];
	char token[PT_TOKEN_MAX];	/* the client's upstream token, "" for none */
	char probe[CALL_PATH_MAX + CALL_REV_MAX + 300];
	bool granted;		/* FLIGHT_AUTH's answer */
	LIST_HEAD(, pt_wait) waits;
	LIST_ENTRY(pt_flight) link;
};

struct pt_wait {
	unsigned magic;
	struct pull_through *pt;
	struct hub_call *call;
	pull_through_handler_fn handler;
	unsigned stage;
	struct event *ev;
	struct err result;
	LIST_ENTRY(pt_wait) in_flight;
	LIST_ENTRY(pt_wait) in_all;
};

#define VERDICT_KEY 300

struct verdict {
	char key[VERDICT_KEY];
	bool granted;
	time_t expires;
};

struct pull_through {
	struct store *store;
	struct upstream_fill *eng;
	char deploy_token[PT_TOKEN_MAX];	/* "" for none */
	long refresh_s;
	pthread_mutex_t lock;	/* flights, waits, verdicts */
	LIST_HEAD(, pt_flight) flights;
	LIST_HEAD(, pt_wait) waits;
	struct verdict verdicts[VERDICTS];
	size_t verdict_next;
};

/* --- small helpers --- */

static const char *api_kind(const char *type)
{
	return !strcmp(type, "dataset") ? "datasets" :
	       !strcmp(type, "space") ? "spaces" : "models";
}

static const char *url_prefix(const char *type)
{
	return !strcmp(type, "dataset") ? "datasets/" :
	       !strcmp(type, "space") ? "spaces/" : "";
}

/* The request path of a file on the upstream. */
static int resolve_path(char *out, size_t size, const char *type,
			const char *name, const char *rev, const char *path)
{
	char erev[CALL_REV_MAX * 3], epath[CALL_PATH_MAX * 3];

	if (upstream_path_escape(rev, erev, sizeof(erev)) < 0 ||
	    upstream_path_escape(path, epath, sizeof(epath)) < 0)
		return -1;
	if ((size_t)snprintf(out, size, "/%s%s/resolve/%s/%s", url_prefix(type),
			     name, erev, epath) >= size)
		return -1;
	return 0;
}

/* The client's upstream token: only one Haven does not know; Haven's own
 * tokens never leave Haven. */
static bool client_token(struct hub_call *call, char out[PT_TOKEN_MAX])
{
	out[0] = '\0';
	if (!call->who.upstream_token)
		return false;
	return auth_request_token(call->req, out, PT_TOKEN_MAX, NULL) == 0 &&
	       out[0];
}

/* Keyed by the token's hash: the token itself is never kept. */
static void verdict_key(char out[VERDICT_KEY], const char *token,
			const char *type, const char *name, enum need need)
{
	char hash[SHA256_HEX_LEN + 1];

	sha256_hex(hash, token, strlen(token));
	snprintf(out, VERDICT_KEY, "%d:%s:%s/%s", (int)need, hash, type, name);
}

/* 1 granted, 0 refused, -1 unknown or expired. */
static int verdict_get(struct pull_through *pt, const char *token,
		       const char *type, const char *name, enum need need)
{
	char key[VERDICT_KEY];
	time_t now = time(NULL);
	int v = -1;

	verdict_key(key, token, type, name, need);
	pthread_mutex_lock(&pt->lock);
	for (size_t i = 0; i < VERDICTS; i++) {
		const struct verdict *e = &pt->verdicts[i];
		if (e->expires > now && !strcmp(e->key, key)) {
			v = e->granted;
			break;
		}
	}
	pthread_mutex_unlock(&pt->lock);
	return v;
}

static void verdict_put_locked(struct pull_through *pt, const char *token,
			       const char *type, const char *name,
			       enum need need, bool granted)
{
	struct verdict *e = NULL;
	char key[VERDICT_KEY];

	verdict_key(key, token, type, name, need);
	for (size_t i = 0; i < VERDICTS && !e; i++)
		if (!strcmp(pt->verdicts[i].key, key))
			e = &pt->verdicts[i];
	if (!e)
		e = &pt->verdicts[pt->verdict_next++ % VERDICTS];
	str_copy(e->key, key, sizeof(e->key));
	e->granted = granted;
	e->expires = time(NULL) + (granted ? VERDICT_OK_S : VERDICT_NO_S);
}

/* Methods that only read: what may start a fetch. */
static bool reads(struct hub_call *call)
{
	const char *path = http_request_path(call->req);
	enum http_method m = http_request_method(call->req);

	if (m == HTTP_GET || m == HTTP_HEAD)
		return true;
	return m == HTTP_POST && (strstr(path, "/paths-info/") ||
				  strstr(path, "/git-upload-pack") ||
				  strstr(path, "/info/lfs/objects/batch"));
}

/* Routes that hand out file content (what gating guards). */
static bool wants_files(struct hub_call *call)
{
	const char *family = metrics_family(http_request_path(call->req));

	return !strcmp(family, "resolve") || !strcmp(family, "raw") ||
	       !strcmp(family, "git") || !strcmp(family, "lfs");
}

/* --- flights (on the engine's threads) --- */

/* Upstream answers that mean "not for this token". */
static bool refused(int code)
{
	return code == ERR_AUTH || code == ERR_FORBIDDEN || code == ERR_GATED ||
	       code == ERR_NOREPO || code == ERR_NOTFOUND;
}

/* An anonymous client may only have what the upstream shows to anyone. */
static int check_public(struct upstream *up, struct pt_flight *fl,
			struct err *err)
{
	char path[400];
	json_t *info = NULL;
	int rc;

	snprintf(path, sizeof(path), "/api/%s/%s", api_kind(fl->type), fl->name);
	rc = upstream_get_json(up, path, NULL, &info, NULL, err);
	if (rc == 0 && json_is_true(json_object_get(info, "private")))
		rc = ERR_NOREPO;
	json_decref(info);
	if (rc < 0 && refused(rc))
		return err_set(err, ERR_NOREPO, "Repository not found");
	return rc;
}

static int flight_git(struct upstream *up, struct pt_flight *fl,
		      struct err *err)
{
	struct pull_through *pt = fl->pt;
	struct mirror_options opt = { 0 };
	struct mirror_result res = { 0 };
	int rc;

	if (!fl->token[0] && (rc = check_public(up, fl, err)) < 0)
		return rc;
	opt.type = fl->type;
	opt.name = fl->name;
	opt.token = fl->token[0] ? fl->token :
		    pt->deploy_token[0] ? pt->deploy_token : NULL;
	opt.history_only = true;
	rc = mirror_repo(pt->store, upstream_fill_config(pt->eng), &opt, &res,
			 err);
	log_msg(rc < 0 ? LOG_WARN : LOG_INFO, "event=pull_through_history "
		"repo=%s/%s refs=%" PRIu64 " rc=%d error=\"%s\"", fl->type,
		fl->name, res.refs_updated, rc, rc < 0 ? err->msg : "");
	if (rc < 0 && refused(rc))
		return err_set(err, ERR_NOREPO, "Repository not found");
	if (rc == 0 && fl->token[0]) {
		pthread_mutex_lock(&pt->lock);
		verdict_put_locked(pt, fl->token, fl->type, fl->name,
				   NEED_READ, true);
		pthread_mutex_unlock(&pt->lock);
	}
	return rc;
}

static int flight_auth(struct upstream *up, struct pt_flight *fl,
		       struct err *err)
{
	struct upstream_reply reply;
	json_t *info = NULL;
	char path[400];
	int rc;

	memset(&reply, 0, sizeof(reply));
	if (fl->need == NEED_READ) {
		snprintf(path, sizeof(path), "/api/%s/%s", api_kind(fl->type),
			 fl->name);
		rc = upstream_get_json(up, path, fl->token, &info, &reply, err);
		json_decref(info);
	} else {
		rc = upstream_head(up, fl->probe, fl->token, &reply, err);
		if (rc == 0 && reply.status >= 400)
			rc = reply.status == 404 ? ERR_NOENTRY : ERR_FORBIDDEN;
		/* Past the gate, a missing file is still a pass. */
		if (rc == ERR_NOENTRY || rc == ERR_NOREV)
			rc = 0;
	}
	fl->granted = rc == 0;
	if (rc < 0 && !refused(rc))
		return rc;	/* the upstream failed: 502/504 */
	pthread_mutex_lock(&fl->pt->lock);
	verdict_put_locked(fl->pt, fl->token, fl->type, fl->name, fl->need,
			   fl->granted);
	pthread_mutex_unlock(&fl->pt->lock);
	memset(err, 0, sizeof(*err));
	return 0;
}

/* Wakes the flight's calls with its result and frees it. */
static void flight_land(struct pt_flight *fl, const struct err *err)
{
	struct pull_through *pt = fl->pt;
	struct pt_wait *w;
	unsigned bits = 0;

	if (fl->kind == FLIGHT_AUTH && err->code == 0) {
		bits = fl->need == NEED_READ ? STAGE_READ_KNOWN : STAGE_FILES_KNOWN;
		if (fl->granted)
			bits |= fl->need == NEED_READ ? STAGE_READ_OK :
							STAGE_FILES_OK;
	}
	pthread_mutex_lock(&pt->lock);
	LIST_REMOVE(fl, link);
	while ((w = LIST_FIRST(&fl->waits))) {
		LIST_REMOVE(w, in_flight);
		w->result = *err;
		w->stage |= bits;
		event_active(w->ev, EV_TIMEOUT, 1);
	}
	pthread_mutex_unlock(&pt->lock);
	OPENSSL_cleanse(fl->token, sizeof(fl->token));
	free(fl);
}

static void flight_run(struct upstream *up, void *arg)
{
	struct pt_flight *fl = arg;
	struct err err = { 0 };

	if (fl->kind == FLIGHT_GIT)
		flight_git(up, fl, &err);
	else
		flight_auth(up, fl, &err);
	flight_land(fl, &err);
}

static void flight_cancel(struct upstream *up, void *arg)
{
	struct err err = { 0 };

	(void)up;
	err_set(&err, ERR_UNAVAILABLE, "the server is stopping");
	flight_land(arg, &err);
}

/* --- parking calls (worker threads) --- */

static void gate(struct hub_call *call, pull_through_handler_fn handler,
		 unsigned stage);

static void wait_wake(evutil_socket_t fd, short what, void *arg)
{
	struct pt_wait *w = arg;
	struct hub_call *call;

	(void)fd;
	(void)what;
	assert(w && w->magic == WAIT_MAGIC);
	pthread_mutex_lock(&w->pt->lock);
	LIST_REMOVE(w, in_all);
	pthread_mutex_unlock(&w->pt->lock);
	call = w->call;
	event_free(w->ev);
	if (w->result.code < 0 && w->result.code != ERR_NOREPO) {
		hub_error_reply(call->req, &w->result, NULL);
		hub_call_free(call);
	} else {
		/* A repository the upstream does not have (or not for this
		 * caller) is answered by the handler, the usual way. */
		call->async = false;
		gate(call, w->handler, w->stage);
		if (!call->async)
			hub_call_free(call);
	}
	w->magic = 0;
	free(w);
}

/* The flight for key, joined or started; pt->lock held. */
static struct pt_flight *flight_join_locked(struct pull_through *pt,
					    const struct pt_flight *spec,
					    struct err *err)
{
	struct pt_flight *fl;

	LIST_FOREACH(fl, &pt->flights, link)
		if (!strcmp(fl->key, spec->key))
			return fl;
	if (!(fl = malloc(sizeof(*fl)))) {
		err_set(err, ERR_FAIL, "out of memory");
		return NULL;
	}
	*fl = *spec;
	LIST_INIT(&fl->waits);
	if (upstream_fill_submit(pt->eng, flight_run, flight_cancel, fl,
				 err) < 0) {
		free(fl);
		return NULL;
	}
	LIST_INSERT_HEAD(&pt->flights, fl, link);
	return fl;
}

/* Parks call on the flight spec describes (or answers an error). */
static void park(struct hub_call *call, pull_through_handler_fn handler,
		 unsigned stage, const struct pt_flight *spec)
{
	struct pull_through *pt = call->app->pull;
	struct pt_flight *fl;
	struct pt_wait *w = calloc(1, sizeof(*w));
	struct err err = { 0 };

	if (!w || !(w->ev = event_new(http_request_base(call->req), -1, 0,
				      wait_wake, w))) {
		free(w);
		hub_error_replyf(call->req, ERR_FAIL, "out of memory");
		return;
	}
	w->magic = WAIT_MAGIC;
	w->pt = pt;
	w->call = call;
	w->handler = handler;
	w->stage = stage;
	pthread_mutex_lock(&pt->lock);
	if ((fl = flight_join_locked(pt, spec, &err))) {
		LIST_INSERT_HEAD(&fl->waits, w, in_flight);
		LIST_INSERT_HEAD(&pt->waits, w, in_all);
	}
	pthread_mutex_unlock(&pt->lock);
	if (!fl) {
		event_free(w->ev);
		free(w);
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	call->async = true;
}

/* A history refresh nobody waits for (a branch that may have moved). */
static void refresh_background(struct pull_through *pt,
			       const struct pt_flight *spec)
{
	struct err err = { 0 };

	pthread_mutex_lock(&pt->lock);
	flight_join_locked(pt, spec, &err);
	pthread_mutex_unlock(&pt->lock);
}

static void spec_init(struct pt_flight *spec, struct hub_call *call,
		      enum flight_kind kind, enum need need,
		      const char *token)
{
	char hash[SHA256_HEX_LEN + 1] = "";

	memset(spec, 0, sizeof(*spec));
	spec->pt = call->app->pull;
	spec->kind = kind;
	spec->need = need;
	str_copy(spec->type, call->type, sizeof(spec->type));
	str_copy(spec->name, call->repo, sizeof(spec->name));
	str_copy(spec->token, token, sizeof(spec->token));
	if (kind == FLIGHT_GIT) {
		snprintf(spec->key, sizeof(spec->key), "git:%s/%s", call->type,
			 call->repo);
		return;
	}
	sha256_hex(hash, token, strlen(token));
	snprintf(spec->key, sizeof(spec->key), "auth:%d:%s/%s:%s", (int)need,
		 call->type, call->repo, hash);
	if (need == NEED_FILES &&
	    ((strcmp(metrics_family(http_request_path(call->req)), "resolve") &&
	      strcmp(metrics_family(http_request_path(call->req)), "raw")) ||
	     !call->path[0] ||
	     resolve_path(spec->probe, sizeof(spec->probe), call->type,
			  call->repo, call->rev[0] ? call->rev : "main",
			  call->path) < 0))
		resolve_path(spec->probe, sizeof(spec->probe), call->type,
			     call->repo, "main", ".gitattributes");
}

/* --- the state machine --- */

/* Stage 2: what the upstream lets this caller have; false when parked. */
static bool settle_access(struct hub_call *call, pull_through_handler_fn handler,
			  unsigned stage, const struct mirror_state *st,
			  const char *token)
{
	struct pull_through *pt = call->app->pull;
	struct principal *who = &call->who;
	struct pt_flight spec;
	bool gated = st->upstream_gated[0] != '\0';
	int v;

	who->pt_read = !st->upstream_private;
	if (!who->pt_read && token[0]) {
		v = (stage & STAGE_READ_KNOWN) ? !!(stage & STAGE_READ_OK) :
		    verdict_get(pt, token, call->type, call->repo, NEED_READ);
		if (v < 0) {
			spec_init(&spec, call, FLIGHT_AUTH, NEED_READ, token);
			park(call, handler, stage, &spec);
			return false;
		}
		who->pt_read = v == 1;
	}
	who->pt_files = who->pt_read && !gated;
	if (who->pt_read && gated && token[0] && wants_files(call)) {
		v = (stage & STAGE_FILES_KNOWN) ? !!(stage & STAGE_FILES_OK) :
		    verdict_get(pt, token, call->type, call->repo, NEED_FILES);
		if (v < 0) {
			spec_init(&spec, call, FLIGHT_AUTH, NEED_FILES, token);
			park(call, handler, stage, &spec);
			return false;
		}
		who->pt_files = v == 1;
	}
	return true;
}

static bool is_commit_id(const char *rev)
{
	return strlen(rev) == 40 && is_hex(rev, 40);
}

/* Stage 3: a revision Haven lacks may be new upstream; false when
 * parked. A branch or tag that Haven has is served as it is, and
 * refreshed in the background once STALE_S old. */
static bool settle_revision(struct hub_call *call,
			    pull_through_handler_fn handler, unsigned stage,
			    const struct mirror_state *st, const char *token)
{
	struct hub_repo r;
	struct pt_flight spec;
	struct err err = { 0 };
	time_t now = time(NULL);
	bool due = now - st->last_attempt >= call->app->pull->refresh_s;
	int rc;

	if (!call->rev[0] || (stage & STAGE_REFRESHED) || !call->who.pt_read ||
	    !reads(call))
		return true;
	rc = hub_repo_open(&r, call, call->rev, &err);
	hub_repo_close(&r);
	if (rc == 0) {
		if (now - st->last_attempt >= STALE_S &&
		    now - st->last_attempt >= call->app->pull->refresh_s &&
		    !is_commit_id(call->rev)) {
			spec_init(&spec, call, FLIGHT_GIT, NEED_READ, token);
			refresh_background(call->app->pull, &spec);
		}
		return true;
	}
	if (rc != ERR_NOREV || !due)
		return true;
	spec_init(&spec, call, FLIGHT_GIT, NEED_READ, token);
	park(call, handler, stage | STAGE_REFRESHED, &spec);
	return false;
}

/* A repository whose first history fetch failed (the upstream knew it,
 * its git did not come) has no refs yet: fetch again once refresh_s have
 * passed, else say why it is not there. False when parked or answered. */
static bool settle_history(struct hub_call *call,
			   pull_through_handler_fn handler, unsigned stage,
			   const struct mirror_state *st, const char *token)
{
	struct pt_flight spec;

	if (st->last_success || !call->who.pt_read)
		return true;
	if (!(stage & STAGE_FETCHED) && reads(call) &&
	    time(NULL) - st->last_attempt >= call->app->pull->refresh_s) {
		spec_init(&spec, call, FLIGHT_GIT, NEED_READ, token);
		park(call, handler, stage | STAGE_FETCHED, &spec);
		return false;
	}
	hub_error_replyf(call->req, ERR_UPSTREAM, "the history of %s could not "
			 "be fetched from the upstream yet: %s", call->repo,
			 st->error[0] ? st->error : "unknown error");
	return false;
}

static void gate(struct hub_call *call, pull_through_handler_fn handler,
		 unsigned stage)
{
	struct store *store = call->app->store;
	struct repo_record rec;
	struct mirror_state st;
	struct pt_flight spec;
	char token[PT_TOKEN_MAX];
	int rc;

	client_token(call, token);
	rc = repo_lookup(store, call->type, call->repo, &rec, NULL);
	if (rc == ERR_NOREPO && !(stage & STAGE_FETCHED) && reads(call) &&
	    repo_type_valid(call->type) && repo_name_valid(call->repo)) {
		spec_init(&spec, call, FLIGHT_GIT, NEED_READ, token);
		park(call, handler, stage | STAGE_FETCHED, &spec);
		goto out;
	}
	if (rc < 0 || mirror_state_get(store->meta, rec.id, &st, NULL) < 0 ||
	    st.mode != MIRROR_MODE_PULL_THROUGH) {
		handler(call);	/* Haven's own rules */
		goto out;
	}
	str_copy(call->who.pt_repo_id, rec.id, sizeof(call->who.pt_repo_id));
	if (!settle_access(call, handler, stage, &st, token) ||
	    !settle_history(call, handler, stage, &st, token))
		goto out;
	if (settle_revision(call, handler, stage, &st, token))
		handler(call);
out:
	OPENSSL_cleanse(token, sizeof(token));
}

void pull_through_dispatch(struct hub_call *call,
			   pull_through_handler_fn handler)
{
	if (!call->app->pull) {
		handler(call);
		return;
	}
	if (!call->repo[0]) {
		/* Only pulled-through repositories take upstream tokens. */
		if (call->who.upstream_token)
			hub_error_replyf(call->req, ERR_AUTH, "Invalid "
					 "credentials in Authorization header");
		else
			handler(call);
		return;
	}
	gate(call, handler, 0);
}

/* --- LFS objects --- */

static void call_done(void *arg)
{
	hub_call_free(arg);
}

bool pull_through_serve_lfs(struct hub_call *call, const struct hub_repo *r,
			    const struct listing_entry *e, int status,
			    uint64_t offset, uint64_t length)
{
	struct pull_through *pt = call->app->pull;
	struct fill_want want = { 0 };
	struct mirror_state st;
	char token[PT_TOKEN_MAX], path[CALL_PATH_MAX * 3 + 400];
	bool public;

	if (!pt || strcmp(call->who.pt_repo_id, r->rec.id))
		return false;
	if (mirror_state_get(call->app->store->meta, r->rec.id, &st, NULL) < 0) {
		hub_error_replyf(call->req, ERR_UNAVAILABLE, "cannot read the "
				 "state of %s, try again", r->rec.name);
		return true;
	}
	if (http_request_method(call->req) == HTTP_HEAD) {
		/* The pointer knows the size: no transfer for a HEAD. */
		http_response_begin(call->req, status, (int64_t)length);
		http_response_end(call->req);
		return true;
	}
	if (resolve_path(path, sizeof(path), r->rec.type, r->rec.name,
			 r->commit_hex, e->path) < 0) {
		hub_error_replyf(call->req, ERR_INVALID, "path too long");
		return true;
	}
	public = !st.upstream_private && !st.upstream_gated[0];
	client_token(call, token);
	want.sha256 = e->sha256;
	want.size = e->size;
	want.repo_id = r->rec.id;
	want.path = path;
	want.token = token[0] ? token :
		     public && pt->deploy_token[0] ? pt->deploy_token : NULL;
	want.status = status;
	want.offset = offset;
	want.length = length;
	call->async = !upstream_fill_serve(pt->eng, call->req, &want,
					   call_done, call);
	OPENSSL_cleanse(token, sizeof(token));
	return true;
}

/* --- lifecycle --- */

int pull_through_new(struct pull_through **out, struct store *store,
		     const struct pull_through_config *cfg, struct err *err)
{
	struct pull_through *pt = calloc(1, sizeof(*pt));
	struct upstream_config uc = { 0 };
	int rc;

	if (!pt)
		return err_set(err, ERR_FAIL, "out of memory");
	pt->store = store;
	pt->refresh_s = cfg->refresh_s;
	pthread_mutex_init(&pt->lock, NULL);
	LIST_INIT(&pt->flights);
	LIST_INIT(&pt->waits);
	if (cfg->token && cfg->token[0] &&
	    str_copy(pt->deploy_token, cfg->token, sizeof(pt->deploy_token)) >=
		    sizeof(pt->deploy_token)) {
		pull_through_free(pt);
		return err_set(err, ERR_INVALID, "the upstream token is too long");
	}
	uc.url = cfg->url;
	uc.ca_bundle = cfg->ca_bundle;
	/* A client waits on these: fail fast rather than retry for minutes. */
	uc.max_retries = 2;
	uc.connect_timeout_s = 10;
	if ((rc = upstream_fill_new(&pt->eng, store, &uc, cfg->threads > 0 ?
				    cfg->threads : DEFAULT_THREADS, err)) < 0) {
		pull_through_free(pt);
		return rc;
	}
	*out = pt;
	return 0;
}

void pull_through_stop(struct pull_through *pt)
{
	if (pt)
		upstream_fill_stop(pt->eng);
}

void pull_through_free(struct pull_through *pt)
{
	struct pt_wait *w;

	if (!pt)
		return;
	upstream_fill_stop(pt->eng);
	/* Calls still parked belong to requests the HTTP layer orphaned. */
	while ((w = LIST_FIRST(&pt->waits))) {
		LIST_REMOVE(w, in_all);
		event_free(w->ev);
		hub_call_free(w->call);
		free(w);
	}
	assert(LIST_EMPTY(&pt->flights));
	upstream_fill_free(pt->eng);
	OPENSSL_cleanse(pt->deploy_token, sizeof(pt->deploy_token));
	OPENSSL_cleanse(pt->verdicts, sizeof(pt->verdicts));
	pthread_mutex_destroy(&pt->lock);
	free(pt);
}
