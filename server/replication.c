/*
 * replication.c: the primary's side of read replicas; see replication.h
 * and docs/replication.md.
 *
 * Threads: feed requests and held answers live on the worker that took
 * them. The table of replicas and the list of held answers are shared by
 * every worker under one mutex; an acknowledgement (a replica asking for
 * the changes after seq N has applied N) wakes the held answers it
 * satisfies with event_active on their own worker's base.
 */
#include "common/compat.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "common/util.h"
#include "server/download_count.h"
#include "server/hub_error.h"
#include "server/replication.h"
#include "storage/changes.h"
#include "storage/repo_refs.h"

#define MAX_REPLICAS 64
#define REPLICA_ID_MAX 64
/* A replica that has not asked for changes this long is gone: writes no
 * longer wait for it. Longer than the longest feed wait. */
#define REPLICA_GONE_MS 40000
#define FEED_WAIT_MAX_S 20
#define FEED_BYTES (4u << 20)
/* A parked feed request looks at the log this often. The writers may be
 * other processes (a push's hook, the CLI), so the log is looked at,
 * not signalled. */
#define FEED_POLL_MS 10
/* How often a replica's last visit is written down (for restarts). */
#define REPLICA_KEEP_MS 10000

struct replica_state {
	char id[REPLICA_ID_MAX + 1];
	uint64_t acked;		/* everything up to here is applied there */
	int64_t seen_ms;
	int64_t kept_ms;	/* when seen_ms was last written to LMDB */
	bool slow;		/* not waited for until it caught up */
};

struct held_write {
	LIST_ENTRY(held_write) link;
	struct replication *r;
	struct http_request *req;
	struct event *ev;
	uint64_t target;
	int64_t deadline_ms;
	char type[8];
	char repo[REPO_NAME_MAX];
};

struct parked_feed {
	LIST_ENTRY(parked_feed) link;
	struct replication *r;
	struct hub_call *call;
	struct event *ev;
	uint64_t since;
	int64_t deadline_ms;
};

struct replication {
	struct store *store;
	char token[512];
	pthread_mutex_t lock;
	struct replica_state replicas[MAX_REPLICAS];
	size_t nreplicas;
	LIST_HEAD(, held_write) held;
	LIST_HEAD(, parked_feed) parked;
	uint64_t waits_timed_out;
};

static int64_t clock_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

static struct replica_state *replica_find(struct replication *r,
					  const char *id);

/* A replica seen shortly before a restart is waited for as if it had
 * applied nothing, until it asks again (or the wait marks it slow). */
static void replica_recall(const char *id, int64_t wall_ms, void *arg)
{
	struct replication *r = arg;
	struct replica_state *s;

	if (clock_ms(CLOCK_REALTIME) - wall_ms >= REPLICA_GONE_MS ||
	    !(s = replica_find(r, id)))
		return;
	s->seen_ms = now_ms();
	s->kept_ms = s->seen_ms;
}

int replication_new(struct replication **out, struct store *store,
		    const char *token, struct err *err)
{
	struct replication *r;

	if (strlen(token) < 16)
		return err_set(err, ERR_INVALID, "replication_token must be at "
			       "least 16 characters");
	if (!(r = calloc(1, sizeof(*r))))
		return err_set(err, ERR_FAIL, "out of memory");
	r->store = store;
	str_copy(r->token, token, sizeof(r->token));
	pthread_mutex_init(&r->lock, NULL);
	LIST_INIT(&r->held);
	LIST_INIT(&r->parked);
	changes_replicas(store->meta, replica_recall, r, NULL);
	*out = r;
	return 0;
}

void replication_free(struct replication *r)
{
	if (!r)
		return;
	/* The requests themselves belong to the HTTP server, which frees
	 * them with their connections. */
	while (!LIST_EMPTY(&r->held)) {
		struct held_write *w = LIST_FIRST(&r->held);
		LIST_REMOVE(w, link);
		event_free(w->ev);
		free(w);
	}
	while (!LIST_EMPTY(&r->parked)) {
		struct parked_feed *p = LIST_FIRST(&r->parked);
		LIST_REMOVE(p, link);
		event_free(p->ev);
		hub_call_free(p->call);
		free(p);
	}
	pthread_mutex_destroy(&r->lock);
	OPENSSL_cleanse(r->token, sizeof(r->token));
	free(r);
}

bool replication_token_is(const struct replication *r, const char *token)
{
	size_t n = strlen(r->token);

	return strlen(token) == n && CRYPTO_memcmp(token, r->token, n) == 0;
}

/* --- who has applied what --- */

/* True when every replica that keeps up has applied target. Locked. */
static bool replicas_have(const struct replication *r, uint64_t target,
			  int64_t now)
{
	for (size_t i = 0; i < r->nreplicas; i++) {
		const struct replica_state *s = &r->replicas[i];
		if (!s->slow && now - s->seen_ms < REPLICA_GONE_MS &&
		    s->acked < target)
			return false;
	}
	return true;
}

static struct replica_state *replica_find(struct replication *r,
					  const char *id)
{
	for (size_t i = 0; i < r->nreplicas; i++)
		if (!strcmp(r->replicas[i].id, id))
			return &r->replicas[i];
	if (r->nreplicas == MAX_REPLICAS)
		return NULL;
	str_copy(r->replicas[r->nreplicas].id, id, REPLICA_ID_MAX + 1);
	return &r->replicas[r->nreplicas++];
}

/* A replica asked for the changes after seq: it has applied seq. */
static void replica_ack(struct replication *r, const char *id, uint64_t seq,
			uint64_t head)
{
	int64_t now = now_ms();
	struct replica_state *s;
	struct held_write *w;
	bool keep = false;

	pthread_mutex_lock(&r->lock);
	if ((s = replica_find(r, id))) {
		keep = now - s->kept_ms >= REPLICA_KEEP_MS;
		if (keep)
			s->kept_ms = now;
		s->acked = seq;
		s->seen_ms = now;
		if (s->slow && seq >= head) {
			s->slow = false;
			log_msg(LOG_INFO, "event=replica_caught_up replica=%s "
				"seq=%" PRIu64, id, seq);
		}
	}
	LIST_FOREACH(w, &r->held, link)
		if (replicas_have(r, w->target, now))
			event_active(w->ev, EV_TIMEOUT, 1);
	pthread_mutex_unlock(&r->lock);
	if (keep)
		changes_replica_seen(r->store->meta, id,
				     clock_ms(CLOCK_REALTIME), NULL);
}

/* A replica that stops says so: writes stop waiting for it at once. */
static void replica_leave(struct replication *r, const char *id)
{
	int64_t now = now_ms();
	struct held_write *w;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->nreplicas; i++) {
		if (strcmp(r->replicas[i].id, id))
			continue;
		r->replicas[i] = r->replicas[--r->nreplicas];
		break;
	}
	LIST_FOREACH(w, &r->held, link)
		if (replicas_have(r, w->target, now))
			event_active(w->ev, EV_TIMEOUT, 1);
	pthread_mutex_unlock(&r->lock);
	changes_replica_forget(r->store->meta, id, NULL);
	log_msg(LOG_INFO, "event=replica_left replica=%s", id);
}

/* --- held write answers --- */

static void held_release(struct held_write *w)
{
	http_request_release_answer(w->req);
	if (w->ev)
		event_free(w->ev);
	free(w);
}

static void held_arm(struct held_write *w, int64_t now)
{
	int64_t left = w->deadline_ms - now;
	struct timeval tv = { left / 1000, (left % 1000) * 1000 };

	event_add(w->ev, &tv);
}

static void held_cb(evutil_socket_t fd, short what, void *arg)
{
	struct held_write *w = arg;
	struct replication *r = w->r;
	int64_t now = now_ms();
	bool have;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&r->lock);
	have = replicas_have(r, w->target, now);
	if (!have && now < w->deadline_ms) {
		held_arm(w, now);
		pthread_mutex_unlock(&r->lock);
		return;
	}
	if (!have) {
		/* Stop waiting for the ones behind until they catch up. */
		for (size_t i = 0; i < r->nreplicas; i++) {
			struct replica_state *s = &r->replicas[i];
			if (!s->slow && now - s->seen_ms < REPLICA_GONE_MS &&
			    s->acked < w->target) {
				s->slow = true;
				log_msg(LOG_WARN, "event=replica_behind replica=%s "
					"applied=%" PRIu64 " wanted=%" PRIu64,
					s->id, s->acked, w->target);
			}
		}
		r->waits_timed_out++;
	}
	LIST_REMOVE(w, link);
	pthread_mutex_unlock(&r->lock);
	held_release(w);
}

/* Git moved first; its refs join the log before anyone hears of the
 * write. A repository the write removed or renamed has nothing to add. */
static void record_refs(struct held_write *w)
{
	struct repo_record rec;
	struct err err = { 0 };

	if (!w->repo[0] ||
	    repo_lookup(w->r->store, w->type, w->repo, &rec, NULL) < 0)
		return;
	if (repo_refs_record(w->r->store, &rec, &err) < 0)
		log_msg(LOG_ERROR, "event=refs_record_failed repo=%s error=\"%s\"",
			w->repo, err.msg);
}

static void on_write_answered(struct http_request *req, void *arg)
{
	struct held_write *w = arg;
	struct replication *r = w->r;
	struct err err = { 0 };
	int64_t now;

	record_refs(w);
	if (changes_head(r->store->meta, &w->target, NULL, &err) < 0) {
		log_msg(LOG_ERROR, "event=change_log_failed error=\"%s\"",
			err.msg);
		held_release(w);
		return;
	}
	if (!(w->ev = event_new(http_request_base(req), -1, 0, held_cb, w))) {
		held_release(w);
		return;
	}
	now = now_ms();
	w->deadline_ms = now + REPLICATION_WAIT_MS;
	pthread_mutex_lock(&r->lock);
	if (replicas_have(r, w->target, now)) {
		pthread_mutex_unlock(&r->lock);
		held_release(w);
		return;
	}
	LIST_INSERT_HEAD(&r->held, w, link);
	held_arm(w, now);
	pthread_mutex_unlock(&r->lock);
}

void replication_hold_write(struct hub_call *call)
{
	struct held_write *w = calloc(1, sizeof(*w));

	if (!w)
		return;	/* answered unheld: replicas catch up by themselves */
	w->r = call->app->replication;
	w->req = call->req;
	str_copy(w->type, call->type, sizeof(w->type));
	str_copy(w->repo, call->repo, sizeof(w->repo));
	http_request_hold_answer(call->req, on_write_answered, w);
}

/* --- the feed --- */

/* The feed answers the replication token only, Bearer or Basic. */
static bool authorised(struct hub_call *call)
{
	char token[600];
	bool ok;

	if (!call->app->replication) {
		hub_error_replyf(call->req, ERR_NOTFOUND, "this server has no "
				 "replication feed: it is a replica, or "
				 "replication_token is not set");
		return false;
	}
	ok = auth_request_token(call->req, token, sizeof(token), NULL) == 0 &&
	     replication_token_is(call->app->replication, token);
	OPENSSL_cleanse(token, sizeof(token));
	if (!ok)
		hub_error_replyf(call->req, ERR_AUTH, "the replication feed "
				 "needs the replication token");
	return ok;
}

static int frame_add(uint64_t seq, const void *entry, size_t len, void *arg)
{
	unsigned char head[12];

	for (int i = 0; i < 8; i++)
		head[i] = (unsigned char)(seq >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		head[8 + i] = (unsigned char)((uint64_t)len >> (24 - 8 * i));
	return evbuffer_add(arg, head, sizeof(head)) == 0 &&
	       evbuffer_add(arg, entry, len) == 0 ? 0 : -1;
}

static void log_headers(struct http_request *req, const char *log_id,
			uint64_t head)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRIu64, head);
	http_response_header(req, "X-Haven-Log-Id", log_id);
	http_response_header(req, "X-Haven-Head-Seq", num);
	http_response_header(req, "Content-Type", "application/octet-stream");
	http_response_header(req, "Cache-Control", "no-store");
}

/* Answers a feed request with the entries after since (maybe none). */
static void feed_answer(struct hub_call *call, uint64_t since)
{
	struct replication *r = call->app->replication;
	char log_id[CHANGES_LOG_ID_LEN + 1];
	struct evbuffer *body = evbuffer_new();
	struct err err = { 0 };
	uint64_t last, head;
	int rc;

	if (!body) {
		hub_error_replyf(call->req, ERR_FAIL, "out of memory");
		return;
	}
	rc = changes_head(r->store->meta, &head, log_id, &err);
	if (rc == 0)
		rc = changes_read(r->store->meta, since, FEED_BYTES, frame_add,
				  body, &last, &head, &err);
	if (rc == ERR_RANGE) {
		/* 410: this log no longer has what the replica needs. */
		hub_common_headers(call->req);
		log_headers(call->req, log_id, head);
		http_response_header(call->req, "X-Error-Message", err.msg);
		evbuffer_drain(body, evbuffer_get_length(body));
		evbuffer_add_printf(body, "{\"error\": \"%s: load a snapshot\"}",
				    "the replica is outside the change log");
		http_response_send(call->req, 410, body);
	} else if (rc < 0) {
		hub_error_reply(call->req, &err, NULL);
	} else {
		hub_common_headers(call->req);
		log_headers(call->req, log_id, head);
		http_response_send(call->req, 200, body);
	}
	evbuffer_free(body);
}

static void parked_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parked_feed *p = arg;
	struct replication *r = p->r;
	struct timeval tick = { 0, FEED_POLL_MS * 1000 };
	uint64_t head = 0;

	(void)fd;
	(void)what;
	if (changes_head(r->store->meta, &head, NULL, NULL) == 0 &&
	    head == p->since && now_ms() < p->deadline_ms) {
		event_add(p->ev, &tick);
		return;
	}
	pthread_mutex_lock(&r->lock);
	LIST_REMOVE(p, link);
	pthread_mutex_unlock(&r->lock);
	feed_answer(p->call, p->since);
	event_free(p->ev);
	hub_call_free(p->call);
	free(p);
}

/* Waits for the log to move past since, or for wait_s. */
static void feed_park(struct hub_call *call, uint64_t since, long wait_s)
{
	struct replication *r = call->app->replication;
	struct timeval tick = { 0, FEED_POLL_MS * 1000 };
	struct parked_feed *p = calloc(1, sizeof(*p));

	if (!p || !(p->ev = event_new(http_request_base(call->req), -1, 0,
				      parked_cb, p))) {
		free(p);
		feed_answer(call, since);
		return;
	}
	p->r = r;
	p->call = call;
	p->since = since;
	p->deadline_ms = now_ms() + wait_s * 1000;
	call->async = true;
	pthread_mutex_lock(&r->lock);
	LIST_INSERT_HEAD(&r->parked, p, link);
	pthread_mutex_unlock(&r->lock);
	event_add(p->ev, &tick);
}

/* The replica's name for itself, short and safe in a metrics label;
 * false when the request names none (a reader of the feed that is not a
 * replica: writes do not wait for it). */
static bool replica_id_of(struct http_request *req,
			  char out[REPLICA_ID_MAX + 1])
{
	const char *id = http_request_header(req, "X-Haven-Replica");
	size_t n = 0;

	for (; id && id[n] && n < REPLICA_ID_MAX; n++)
		out[n] = (isalnum((unsigned char)id[n]) ||
			  strchr("._:-", id[n])) ? id[n] : '_';
	out[n] = '\0';
	return n > 0;
}

void route_replication_changes(struct hub_call *call)
{
	struct replication *r = call->app->replication;
	const char *since_s = query_get(&call->query, "since");
	const char *wait_s = query_get(&call->query, "wait");
	char id[REPLICA_ID_MAX + 1], *end;
	uint64_t since, head = 0;
	long wait = 0;

	if (!authorised(call))
		return;
	errno = 0;
	since = since_s ? strtoull(since_s, &end, 10) : 0;
	if (!since_s || !*since_s || *end || errno) {
		hub_error_replyf(call->req, ERR_INVALID, "since must be a seq "
				 "(a non-negative integer)");
		return;
	}
	if (wait_s && (wait = strtol(wait_s, &end, 10), *end || wait < 0)) {
		hub_error_replyf(call->req, ERR_INVALID, "wait must be seconds");
		return;
	}
	if (wait > FEED_WAIT_MAX_S)
		wait = FEED_WAIT_MAX_S;
	changes_head(r->store->meta, &head, NULL, NULL);
	if (replica_id_of(call->req, id))
		replica_ack(r, id, since, head);
	if (wait > 0 && head == since)
		feed_park(call, since, wait);
	else
		feed_answer(call, since);
}

void route_replication_leave(struct hub_call *call)
{
	char id[REPLICA_ID_MAX + 1];

	if (!authorised(call))
		return;
	if (replica_id_of(call->req, id))
		replica_leave(call->app->replication, id);
	hub_common_headers(call->req);
	http_response_send(call->req, 204, NULL);
}

static void downloads_taken(struct http_request *req, struct evbuffer *body,
			    int rc, void *arg)
{
	struct hub_call *call = arg;
	struct err err = { 0 };
	size_t len = body ? evbuffer_get_length(body) : 0;

	if (rc < 0)
		hub_error_replyf(req, rc, "the download counts did not arrive "
				 "whole");
	else if (download_count_apply(call->app->store->meta,
				      len ? (char *)evbuffer_pullup(body, -1) :
				      "", len, &err) < 0)
		hub_error_reply(req, &err, NULL);
	else {
		hub_common_headers(req);
		http_response_send(req, 204, NULL);
	}
	hub_call_free(call);
}

/* A replica's download counts join the primary's (download_count.h). */
void route_replication_downloads(struct hub_call *call)
{
	if (!authorised(call))
		return;
	call->async = true;
	http_request_buffer_body(call->req, 8 << 20, downloads_taken, call);
}

void route_replication_snapshot(struct hub_call *call)
{
	struct replication *r = call->app->replication;
	char path[4200], log_id[CHANGES_LOG_ID_LEN + 1];
	struct err err = { 0 };
	struct stat st;
	uint64_t seq;
	int fd;

	if (!authorised(call))
		return;
	snprintf(path, sizeof(path), "%s/tmp/snapshot-XXXXXX",
		 r->store->data_dir);
	if ((fd = mkstemp(path)) < 0) {
		hub_error_replyf(call->req, ERR_FAIL, "cannot write a snapshot: "
				 "%s", strerror(errno));
		return;
	}
	unlink(path);	/* the open file is all the answer needs */
	if (changes_head(r->store->meta, &seq, log_id, &err) < 0 ||
	    changes_snapshot(r->store->meta, fd, &seq, &err) < 0 ||
	    fstat(fd, &st) < 0) {
		close(fd);
		if (!err.code)
			err_set(&err, ERR_FAIL, "cannot write a snapshot");
		hub_error_reply(call->req, &err, NULL);
		return;
	}
	log_msg(LOG_INFO, "event=replication_snapshot seq=%" PRIu64
		" bytes=%lld", seq, (long long)st.st_size);
	hub_common_headers(call->req);
	log_headers(call->req, log_id, seq);
	http_response_send_file(call->req, 200, fd, 0, st.st_size);
}

void route_replication_secret(struct hub_call *call)
{
	char hex[2 * APP_SECRET_LEN + 1];
	struct evbuffer *body;

	if (!authorised(call))
		return;
	if (!(body = evbuffer_new())) {
		hub_error_replyf(call->req, ERR_FAIL, "out of memory");
		return;
	}
	hex_encode(hex, call->app->secret, APP_SECRET_LEN);
	evbuffer_add(body, hex, strlen(hex));
	OPENSSL_cleanse(hex, sizeof(hex));
	hub_common_headers(call->req);
	http_response_header(call->req, "Content-Type", "text/plain");
	http_response_header(call->req, "Cache-Control", "no-store");
	http_response_send(call->req, 200, body);
	evbuffer_free(body);
}

void replication_metrics(struct replication *r, struct evbuffer *out)
{
	int64_t now = now_ms();
	uint64_t head = 0;

	changes_head(r->store->meta, &head, NULL, NULL);
	evbuffer_add_printf(out, "# HELP haven_replication_head_seq The newest "
			    "entry of the change log.\n"
			    "# TYPE haven_replication_head_seq gauge\n"
			    "haven_replication_head_seq %" PRIu64 "\n", head);
	evbuffer_add_printf(out, "# HELP haven_replica_applied_seq What each "
			    "replica has applied, as it last said.\n"
			    "# TYPE haven_replica_applied_seq gauge\n");
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->nreplicas; i++) {
		const struct replica_state *s = &r->replicas[i];
		if (now - s->seen_ms < REPLICA_GONE_MS)
			evbuffer_add_printf(out, "haven_replica_applied_seq"
					    "{replica=\"%s\"} %" PRIu64 "\n",
					    s->id, s->acked);
	}
	evbuffer_add_printf(out, "# HELP haven_replication_waits_timed_out_total "
			    "Write answers sent before every replica had "
			    "applied them.\n"
			    "# TYPE haven_replication_waits_timed_out_total "
			    "counter\n"
			    "haven_replication_waits_timed_out_total %" PRIu64
			    "\n", r->waits_timed_out);
	pthread_mutex_unlock(&r->lock);
}
