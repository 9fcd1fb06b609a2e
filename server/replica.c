/*
 * replica.c: a read replica following its primary; see replica.h and
 * docs/replication.md.
 *
 * Crash safety: a batch of entries is applied in one LMDB transaction
 * together with its last seq. The git fetches follow the commit; if the
 * process dies between the two, the next start compares every recorded
 * set of refs with git's and fetches what differs. The primary hears
 * that a batch is applied only from the next feed request, which is made
 * after the fetches.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "common/util.h"
#include "ingest/git_fetch.h"
#include "server/download_count.h"
#include "server/forward.h"
#include "server/hub_error.h"
#include "server/lfs_sign.h"
#include "server/replica.h"
#include "storage/changes.h"
#include "storage/gitrepo.h"
#include "storage/repo_refs.h"

#define FEED_WAIT_S 20
#define FEED_BODY_MAX ((size_t)512 << 20)
#define FORWARD_THREADS 4

struct replica {
	struct app *app;
	struct store *store;
	char primary[512];
	char token[512];
	char ca_bundle[4096];
	char id[CHANGES_LOG_ID_LEN + 1];	/* this node's own log id */
	struct forward *fwd;
	pthread_t thread;
	bool started;
	bool secret_checked;	/* the primary's secret is this node's */
	atomic_bool stopping;

	/* Where it stands; under lock, read by metrics. */
	pthread_mutex_t lock;
	uint64_t applied, head;
	bool primary_up;
	int64_t in_step_ms;	/* wall clock when it last had everything */
};

/* Repository ids whose git side must follow a batch. */
struct touched {
	char (*ids)[REPO_ID_LEN + 1];
	size_t n, cap;
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t be_get(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* --- talking to the primary --- */

struct primary_answer {
	unsigned char *data;
	size_t len, cap;
	int fd;			/* >= 0: the body goes to this file */
	bool too_big;
	char log_id[CHANGES_LOG_ID_LEN + 1];
	uint64_t head;
	atomic_bool *stopping;
};

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct primary_answer *a = arg;
	size_t len = size * n;
	char line[256];

	if (len >= sizeof(line))
		return len;
	memcpy(line, buf, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (!strncasecmp(line, "X-Haven-Log-Id: ", 16))
		str_copy(a->log_id, line + 16, sizeof(a->log_id));
	else if (!strncasecmp(line, "X-Haven-Head-Seq: ", 18))
		a->head = strtoull(line + 18, NULL, 10);
	return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
	struct primary_answer *a = arg;
	size_t len = size * n;

	if (a->fd >= 0)
		return write_full(a->fd, buf, len) < 0 ? 0 : len;
	if (a->len + len > FEED_BODY_MAX) {
		a->too_big = true;
		return 0;
	}
	if (a->len + len > a->cap) {
		size_t cap = a->cap ? a->cap : 65536;
		unsigned char *grown;
		while (cap < a->len + len)
			cap *= 2;
		if (!(grown = realloc(a->data, cap)))
			return 0;
		a->data = grown;
		a->cap = cap;
	}
	memcpy(a->data + a->len, buf, len);
	a->len += len;
	return len;
}

/* Ends a long feed request at once when the server stops. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn,
		       curl_off_t ut, curl_off_t un)
{
	struct primary_answer *a = arg;

	(void)dt, (void)dn, (void)ut, (void)un;
	return atomic_load(a->stopping) ? 1 : 0;
}

/* One request to the primary: a GET, or a POST of body when it is not
 * NULL. The status, or 0 with err set when it could not be reached. A
 * stopping server ends it at once (on_progress). */
static int primary_request(struct replica *r, const char *path,
			   const char *body, size_t len, long timeout_s,
			   struct primary_answer *a, struct err *err)
{
	struct curl_slist *hdrs = NULL;
	char url[1200], auth[600], id[80];
	long status = 0;
	CURLcode cc;
	CURL *curl;

	if (!(curl = curl_easy_init()))
		return err_set(err, ERR_FAIL, "cannot start libcurl");
	snprintf(url, sizeof(url), "%s%s", r->primary, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->token);
	snprintf(id, sizeof(id), "X-Haven-Replica: %s", r->id);
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, id);
	OPENSSL_cleanse(auth, sizeof(auth));	/* the list has a copy */
	if (body) {
		hdrs = curl_slist_append(hdrs, "Content-Type: text/plain");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
	}
	a->stopping = &r->stopping;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 3L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, a);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	if (r->ca_bundle[0])
		curl_easy_setopt(curl, CURLOPT_CAINFO, r->ca_bundle);
	cc = curl_easy_perform(curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	else
		err_set(err, a->too_big ? ERR_TOOBIG : ERR_UNAVAILABLE,
			"the primary %s: %s", r->primary,
			a->too_big ? "sent too much" : curl_easy_strerror(cc));
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	return (int)status;
}

static int primary_get(struct replica *r, const char *path, long timeout_s,
		       struct primary_answer *a, struct err *err)
{
	return primary_request(r, path, NULL, 0, timeout_s, a, err);
}

static void answer_release(struct primary_answer *a)
{
	free(a->data);
	memset(a, 0, sizeof(*a));
	a->fd = -1;
}

/* POSTs body to the primary (what it answers is dropped). */
static int primary_post(struct replica *r, const char *path,
			const char *body, size_t len, struct err *err)
{
	struct primary_answer a = { .fd = -1 };
	int status = primary_request(r, path, body, len, 10, &a, err);

	answer_release(&a);
	return status;
}

/* The download counts this node took go to the primary's statistics. */
static int send_downloads(const char *text, size_t len, void *arg,
			  struct err *err)
{
	int status = primary_post(arg, "/api/replication/downloads", text, len,
				  err);

	if (status == 204)
		return 0;
	return status ? err_set(err, ERR_UPSTREAM, "the primary took no "
				"download counts (HTTP %d)", status) :
			ERR_UNAVAILABLE;
}

/* The primary's URL-signing secret: ERR_UNAVAILABLE when it cannot be
 * reached, ERR_AUTH when it refuses the token. */
static int fetch_secret(struct replica *r, unsigned char out[LFS_SECRET_LEN],
			struct err *err)
{
	struct primary_answer a = { .fd = -1 };
	int status, rc = 0;

	status = primary_get(r, "/api/replication/secret", 10, &a, err);
	if (status == 0)
		rc = ERR_UNAVAILABLE;
	else if (status == 401 || status == 403 || status == 404)
		rc = err_set(err, ERR_AUTH, "the primary %s refused the "
			     "replication token (HTTP %d): set the same "
			     "replication_token on both", r->primary, status);
	else if (status != 200 || a.len != 2 * LFS_SECRET_LEN ||
		 hex_decode(out, (const char *)a.data, a.len) < 0)
		rc = err_set(err, ERR_UPSTREAM, "the primary %s answered the "
			     "secret with HTTP %d", r->primary, status);
	if (a.data)
		OPENSSL_cleanse(a.data, a.len);
	answer_release(&a);
	return rc;
}

int replica_take_secret(const struct serve_config *cfg, struct err *err)
{
	struct replica r = { 0 };
	unsigned char secret[LFS_SECRET_LEN];
	int rc;

	str_copy(r.primary, cfg->replica_of, sizeof(r.primary));
	str_copy(r.token, cfg->replication_token, sizeof(r.token));
	str_copy(r.ca_bundle, cfg->replica_ca_bundle, sizeof(r.ca_bundle));
	str_copy(r.id, "starting", sizeof(r.id));
	rc = fetch_secret(&r, secret, err);
	if (rc == 0) {
		rc = lfs_secret_store(cfg->data, secret, err);
	} else if (rc != ERR_AUTH) {
		/* Only a refused token is a reason not to start; otherwise this
		 * node serves with its own secret until the primary answers
		 * (replica_loop takes it then). */
		log_msg(LOG_WARN, "event=replica_secret_unavailable error=\"%s\"",
			err->msg);
		rc = 0;
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(r.token, sizeof(r.token));
	return rc;
}

/* A replica that started while its primary was down takes the secret
 * once it answers. The copy in app is replaced in place: a signed URL
 * checked during those few bytes fails once and is retried. */
static void adopt_secret(struct replica *r)
{
	unsigned char secret[LFS_SECRET_LEN];
	struct err err = { 0 };

	if (fetch_secret(r, secret, &err) < 0) {
		log_msg(LOG_WARN, "event=replica_secret_failed error=\"%s\"",
			err.msg);
	} else if (CRYPTO_memcmp(secret, r->app->secret, LFS_SECRET_LEN)) {
		if (lfs_secret_store(r->store->data_dir, secret, &err) < 0)
			log_msg(LOG_WARN, "event=replica_secret_failed "
				"error=\"%s\"", err.msg);
		memcpy(r->app->secret, secret, LFS_SECRET_LEN);
		log_msg(LOG_INFO, "event=replica_secret_taken");
	}
	r->secret_checked = true;
	OPENSSL_cleanse(secret, sizeof(secret));
}

/* --- git --- */

static void touched_add(struct touched *t, const char *id)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->ids[i], id))
			return;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		void *grown = realloc(t->ids, cap * sizeof(*t->ids));
		if (!grown)
			return;	/* the next start's reconcile fetches it */
		t->ids = grown;
		t->cap = cap;
	}
	str_copy(t->ids[t->n++], id, REPO_ID_LEN + 1);
}

/* The repositories a change names: by refs record or by id entry. */
static void on_op(const char *db, const void *key, size_t klen,
		  const void *val, size_t vlen, bool put, void *arg)
{
	char id[REPO_ID_LEN + 1];

	(void)val, (void)vlen, (void)put;
	if ((strcmp(db, "git_refs") && strcmp(db, "repo_ids")) ||
	    klen != REPO_ID_LEN + 1)
		return;
	memcpy(id, (const char *)key + 1, REPO_ID_LEN);
	id[REPO_ID_LEN] = '\0';
	if (is_hex(id, REPO_ID_LEN))
		touched_add(arg, id);
}

static bool git_dir_exists(struct store *store, const struct repo_record *rec)
{
	char path[4200];
	struct stat st;

	repo_git_path(store, rec, path, sizeof(path));
	return stat(path, &st) == 0;
}

/* A new repository gets its (empty) git directory in the transaction
 * that brings its record, so a reader never finds a record without one. */
static int prepare_git_dirs(struct replica *r, struct meta_txn *txn,
			    const struct touched *t, struct err *err)
{
	for (size_t i = 0; i < t->n; i++) {
		struct repo_record rec;
		git_repository *git = NULL;
		char path[4200];
		if (meta_repo_get_by_id(txn, t->ids[i], &rec, NULL) < 0 ||
		    git_dir_exists(r->store, &rec))
			continue;
		repo_git_path(r->store, &rec, path, sizeof(path));
		if (gitrepo_init_bare(&git, path, err) < 0)
			return ERR_FAIL;
		git_repository_free(git);
	}
	return 0;
}

/* Brings one repository's git directory to the primary's refs, or
 * removes it when the record is gone. */
static int git_follow(struct replica *r, const char *id, struct err *err)
{
	static char *specs[] = { "+refs/heads/*:refs/heads/*",
				 "+refs/tags/*:refs/tags/*",
				 "+refs/pr/*:refs/pr/*" };
	struct git_fetch_options fo = { r->token, r->ca_bundle, 1, true };
	struct meta_txn *txn = NULL;
	git_repository *git = NULL;
	struct repo_record rec;
	char url[1024], path[4200];
	int rc;

	if ((rc = meta_txn_begin(&txn, r->store->meta, false, err)) < 0)
		return rc;
	rc = meta_repo_get_by_id(txn, id, &rec, NULL);
	meta_txn_abort(txn);
	if (rc < 0) {
		memset(&rec, 0, sizeof(rec));
		str_copy(rec.id, id, sizeof(rec.id));
		if (git_dir_exists(r->store, &rec))
			repo_remove_git_dir(r->store, &rec);
		return 0;
	}
	repo_git_path(r->store, &rec, path, sizeof(path));
	if ((git_dir_exists(r->store, &rec) ?
	     gitrepo_open(&git, path, err) :
	     gitrepo_init_bare(&git, path, err)) < 0)
		return ERR_FAIL;
	snprintf(url, sizeof(url), "%s/%s%s", r->primary,
		 git_fetch_url_prefix(rec.type), rec.name);
	rc = git_fetch_refs(git, url, specs, ARRAY_SIZE(specs), &fo, err);
	git_repository_free(git);
	return rc;
}

static void git_follow_all(struct replica *r, const struct touched *t)
{
	for (size_t i = 0; i < t->n && !atomic_load(&r->stopping); i++) {
		struct err err = { 0 };
		if (git_follow(r, t->ids[i], &err) < 0)
			log_msg(LOG_WARN, "event=replica_git_failed repo_id=%s "
				"error=\"%s\"", t->ids[i], err.msg);
	}
}

struct reconcile {
	struct replica *r;
	struct touched *t;
};

/* A refs record that git does not match yet. */
static int reconcile_one(const char *key, const char *json, void *arg)
{
	struct reconcile *rc = arg;
	struct repo_record rec = { 0 };
	git_repository *git = NULL;
	json_t *want = json_loads(json, 0, NULL), *have = NULL;
	char path[4200];

	str_copy(rec.id, key, sizeof(rec.id));
	repo_git_path(rc->r->store, &rec, path, sizeof(path));
	if (gitrepo_open(&git, path, NULL) == 0)
		have = repo_refs_of_git(git);
	if (!want || !have || !json_equal(want, have))
		touched_add(rc->t, key);
	json_decref(want);
	json_decref(have);
	git_repository_free(git);
	return 0;
}

/* After a start or a snapshot: every repository whose git is not where
 * its record says. */
static void reconcile_all(struct replica *r)
{
	struct touched t = { 0 };
	struct reconcile rc = { r, &t };
	struct meta_txn *txn = NULL;

	if (meta_txn_begin(&txn, r->store->meta, false, NULL) < 0)
		return;
	meta_kv_foreach(txn, META_KV_GIT_REFS, "", reconcile_one, &rc, NULL);
	meta_txn_abort(txn);
	if (t.n)
		log_msg(LOG_INFO, "event=replica_reconcile repos=%zu", t.n);
	git_follow_all(r, &t);
	free(t.ids);
}

/* --- applying --- */

typedef int (*frame_fn)(uint64_t seq, const unsigned char *entry,
			size_t len, void *arg);

static int frames_each(const unsigned char *p, size_t len, frame_fn fn,
		       void *arg, struct err *err)
{
	const unsigned char *end = p + len;
	int rc;

	while (p < end) {
		uint64_t seq, n;
		if (end - p < 12)
			return err_set(err, ERR_CORRUPT, "truncated change frame");
		seq = be_get(p, 8);
		n = be_get(p + 8, 4);
		p += 12;
		if ((uint64_t)(end - p) < n)
			return err_set(err, ERR_CORRUPT, "truncated change frame");
		if ((rc = fn(seq, p, (size_t)n, arg)) < 0)
			return rc;
		p += n;
	}
	return 0;
}

struct batch {
	struct meta_txn *txn;
	struct touched touched;
	uint64_t last;
	struct err *err;
};

static int apply_frame(uint64_t seq, const unsigned char *entry, size_t len,
		       void *arg)
{
	struct batch *b = arg;

	if (b->last && seq != b->last + 1 && seq != b->last)
		return err_set(b->err, ERR_CORRUPT, "the change log skipped "
			       "from %" PRIu64 " to %" PRIu64, b->last, seq);
	b->last = seq;
	return changes_apply(b->txn, entry, len, on_op, &b->touched, b->err);
}

/* Applies frames (a feed answer, or a whole snapshot when clear) in one
 * transaction that records log_id and seq, then follows git. */
static int apply_frames(struct replica *r, const unsigned char *data,
			size_t len, bool clear, const char *log_id,
			uint64_t seq, struct err *err)
{
	struct batch b = { .err = err };
	int rc;

	if ((rc = meta_txn_begin(&b.txn, r->store->meta, true, err)) < 0)
		return rc;
	meta_txn_unlogged(b.txn);
	/* A feed's frames continue from seq; a snapshot's all carry it. */
	b.last = clear ? 0 : seq;
	if ((clear && (rc = changes_clear(b.txn, err)) < 0) ||
	    (rc = frames_each(data, len, apply_frame, &b, err)) < 0 ||
	    (rc = changes_applied_set(b.txn, log_id, clear ? seq : b.last,
				      err)) < 0 ||
	    (rc = prepare_git_dirs(r, b.txn, &b.touched, err)) < 0) {
		meta_txn_abort(b.txn);
		free(b.touched.ids);
		return rc;
	}
	if ((rc = meta_txn_commit(b.txn, err)) < 0) {
		free(b.touched.ids);
		return rc;
	}
	pthread_mutex_lock(&r->lock);
	r->applied = clear ? seq : b.last;
	pthread_mutex_unlock(&r->lock);
	if (clear)
		reconcile_all(r);
	else
		git_follow_all(r, &b.touched);
	free(b.touched.ids);
	return 0;
}

static void set_status(struct replica *r, bool up, uint64_t head);

static int load_snapshot(struct replica *r, struct err *err)
{
	struct primary_answer a = { .fd = -1 };
	char path[4200];
	struct stat st;
	void *map = MAP_FAILED;
	int status, rc;

	snprintf(path, sizeof(path), "%s/tmp/replica-snapshot-XXXXXX",
		 r->store->data_dir);
	if ((a.fd = mkstemp(path)) < 0)
		return err_set(err, ERR_FAIL, "cannot create '%s': %s", path,
			       strerror(errno));
	unlink(path);
	status = primary_get(r, "/api/replication/snapshot", 3600, &a, err);
	if (status != 200) {
		rc = status ? err_set(err, ERR_UPSTREAM, "the primary answered "
				      "the snapshot with HTTP %d", status) :
			      ERR_UNAVAILABLE;
		goto out;
	}
	if (fstat(a.fd, &st) < 0 || !a.log_id[0]) {
		rc = err_set(err, ERR_UPSTREAM, "the primary sent a snapshot "
			     "without its log id");
		goto out;
	}
	if (st.st_size > 0 &&
	    (map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
			a.fd, 0)) == MAP_FAILED) {
		rc = err_set(err, ERR_FAIL, "cannot read the snapshot: %s",
			     strerror(errno));
		goto out;
	}
	rc = apply_frames(r, map == MAP_FAILED ? NULL : map,
			  (size_t)st.st_size, true, a.log_id, a.head, err);
	if (rc == 0)
		set_status(r, true, a.head);
	if (rc == 0)
		log_msg(LOG_INFO, "event=replica_snapshot_loaded seq=%" PRIu64
			" bytes=%lld", a.head, (long long)st.st_size);
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	close(a.fd);
	return rc;
}

/* --- the loop --- */

static void set_status(struct replica *r, bool up, uint64_t head)
{
	pthread_mutex_lock(&r->lock);
	r->primary_up = up;
	if (up)
		r->head = head;
	if (up && r->applied >= r->head)
		r->in_step_ms = wall_ms();
	pthread_mutex_unlock(&r->lock);
}

static void pause_s(struct replica *r, int seconds)
{
	for (int i = 0; i < seconds * 10 && !atomic_load(&r->stopping); i++)
		usleep(100000);
}

/* Where this node stands in its primary's log; false when it has no
 * place yet (a snapshot is due). */
static bool applied_get(struct replica *r, char log_id[CHANGES_LOG_ID_LEN + 1],
			uint64_t *seq)
{
	struct meta_txn *txn = NULL;
	bool ok;

	if (meta_txn_begin(&txn, r->store->meta, false, NULL) < 0)
		return false;
	ok = changes_applied_get(txn, log_id, seq, NULL) == 0;
	meta_txn_abort(txn);
	return ok;
}

/* One feed request and what it brought. 1: a snapshot is due. */
static int follow_once(struct replica *r, struct err *err)
{
	struct primary_answer a = { .fd = -1 };
	char log_id[CHANGES_LOG_ID_LEN + 1], path[128];
	uint64_t since;
	int status, rc;

	if (!applied_get(r, log_id, &since))
		return 1;
	snprintf(path, sizeof(path), "/api/replication/changes?since=%" PRIu64
		 "&wait=%d", since, FEED_WAIT_S);
	status = primary_get(r, path, FEED_WAIT_S + 15, &a, err);
	if (status == 0) {
		rc = ERR_UNAVAILABLE;
	} else if (status == 410 || (status == 200 && strcmp(a.log_id, log_id))) {
		log_msg(LOG_WARN, "event=replica_resync reason=%s",
			status == 410 ? "outside_the_log" : "another_log");
		rc = 1;
	} else if (status != 200) {
		rc = err_set(err, ERR_UPSTREAM, "the primary answered the feed "
			     "with HTTP %d", status);
	} else {
		rc = apply_frames(r, a.data, a.len, false, log_id, since, err);
		if (rc == 0)
			set_status(r, true, a.head);
	}
	if (rc == ERR_UNAVAILABLE)
		set_status(r, false, 0);
	answer_release(&a);
	return rc;
}

static void *replica_loop(void *arg)
{
	struct replica *r = arg;
	char last[ERR_MSG_LEN] = "";
	int backoff = 1;

	reconcile_all(r);
	while (!atomic_load(&r->stopping)) {
		struct err err = { 0 };
		int rc = follow_once(r, &err);
		if (rc == 1)
			rc = load_snapshot(r, &err);
		if (rc >= 0) {
			backoff = 1;
			last[0] = '\0';
			if (!r->secret_checked)
				adopt_secret(r);
			continue;
		}
		if (atomic_load(&r->stopping))
			break;
		if (strcmp(last, err.msg))	/* once per kind of failure */
			log_msg(LOG_WARN, "event=replica_follow_failed "
				"error=\"%s\"", err.msg);
		str_copy(last, err.msg, sizeof(last));
		/* Short: a primary back from a restart waits for its
		 * replicas' next request before answering writes. */
		pause_s(r, backoff);
		backoff = 2;
	}
	return NULL;
}

int replica_start(struct replica **out, struct app *app,
		  const struct serve_config *cfg, struct err *err)
{
	struct replica *r;
	char tmp[4200];
	uint64_t head;
	int rc;

	if (strncmp(cfg->replica_of, "http://", 7) &&
	    strncmp(cfg->replica_of, "https://", 8))
		return err_set(err, ERR_INVALID, "invalid replica_of '%.200s': "
			       "expected the primary's http:// or https:// URL",
			       cfg->replica_of);
	if (!(r = calloc(1, sizeof(*r))))
		return err_set(err, ERR_FAIL, "out of memory");
	r->app = app;
	r->store = app->store;
	str_copy(r->primary, cfg->replica_of, sizeof(r->primary));
	for (size_t n = strlen(r->primary); n && r->primary[n - 1] == '/';)
		r->primary[--n] = '\0';
	str_copy(r->token, cfg->replication_token, sizeof(r->token));
	str_copy(r->ca_bundle, cfg->replica_ca_bundle, sizeof(r->ca_bundle));
	pthread_mutex_init(&r->lock, NULL);
	applied_get(r, tmp, &r->applied);
	snprintf(tmp, sizeof(tmp), "%s/tmp", cfg->data);
	if ((rc = changes_head(app->store->meta, &head, r->id, err)) < 0 ||
	    (rc = forward_new(&r->fwd, r->primary, r->ca_bundle, tmp,
			      FORWARD_THREADS, err)) < 0)
		goto fail;
	if (pthread_create(&r->thread, NULL, replica_loop, r) != 0) {
		rc = err_set(err, ERR_FAIL, "cannot start the replica thread");
		goto fail;
	}
	r->started = true;
	download_count_send_to(app->downloads, send_downloads, r);
	log_msg(LOG_INFO, "event=replica primary=%s applied=%" PRIu64,
		r->primary, r->applied);
	*out = r;
	return 0;
fail:
	replica_free(r);
	return rc;
}

void replica_stop(struct replica *r)
{
	if (!r || !r->started)
		return;
	atomic_store(&r->stopping, true);
	pthread_join(r->thread, NULL);
	r->started = false;
	/* The thread is gone; what follows (this goodbye, the last download
	 * counts) must still go out. */
	atomic_store(&r->stopping, false);
	/* Tells the primary not to wait for this node any more. */
	primary_post(r, "/api/replication/leave", "", 0, NULL);
}

void replica_free(struct replica *r)
{
	if (!r)
		return;
	replica_stop(r);
	forward_free(r->fwd);
	pthread_mutex_destroy(&r->lock);
	OPENSSL_cleanse(r->token, sizeof(r->token));
	free(r);
}

/* --- writes --- */

static void on_forwarded(struct http_request *req, struct forward_answer *ans,
			 void *arg)
{
	struct hub_call *call = arg;

	if (ans->status == 0 && ans->err.code == ERR_UNAVAILABLE)
		hub_error_replyf(req, ERR_UNAVAILABLE, "this is a read replica "
				 "and its primary cannot be reached: writes are "
				 "refused until it is back; reads go on");
	else
		forward_reply(req, ans);
	forward_answer_free(ans);
	hub_call_free(call);
}

void replica_forward(struct hub_call *call)
{
	call->async = true;
	forward_request(call->app->replica->fwd, call->req, on_forwarded, call);
}

void replica_metrics(struct replica *r, struct evbuffer *out)
{
	uint64_t applied, head;
	int64_t lag_ms;
	bool up;

	pthread_mutex_lock(&r->lock);
	applied = r->applied;
	head = r->head > applied ? r->head : applied;
	up = r->primary_up;
	lag_ms = up && applied >= head ? 0 :
		 r->in_step_ms ? wall_ms() - r->in_step_ms : -1;
	pthread_mutex_unlock(&r->lock);
	evbuffer_add_printf(out, "# HELP haven_replica_applied_seq The last "
			    "entry of the primary's change log applied here.\n"
			    "# TYPE haven_replica_applied_seq gauge\n"
			    "haven_replica_applied_seq %" PRIu64 "\n", applied);
	evbuffer_add_printf(out, "# HELP haven_replica_lag_changes Entries the "
			    "primary has that this replica has not applied.\n"
			    "# TYPE haven_replica_lag_changes gauge\n"
			    "haven_replica_lag_changes %" PRIu64 "\n",
			    head - applied);
	evbuffer_add_printf(out, "# HELP haven_replica_lag_seconds Seconds since "
			    "this replica last had everything the primary had "
			    "(0 while in step; -1 before it ever was).\n"
			    "# TYPE haven_replica_lag_seconds gauge\n"
			    "haven_replica_lag_seconds %.3f\n",
			    lag_ms < 0 ? -1.0 : (double)lag_ms / 1000.0);
	evbuffer_add_printf(out, "# HELP haven_replica_primary_up 1 when the "
			    "last feed request reached the primary.\n"
			    "# TYPE haven_replica_primary_up gauge\n"
			    "haven_replica_primary_up %d\n", up ? 1 : 0);
}
