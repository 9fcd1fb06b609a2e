/*
 * upstream_fill.c: the pull-through fill engine; see upstream_fill.h.
 *
 * Objects and their owners:
 *   struct fill         one transfer of one LFS object into a spool file
 *                       of the blob store's tmp/; counted references: the
 *                       table (while listed), the transfer task (until it
 *                       ends) and each client stream.
 *   struct fill_stream  one client fed from a fill, owned by its worker
 *                       thread; the fill only wakes it (event_active).
 * eng->lock guards the task queue, the table, every fill's published
 * length, state and stream list, and the list of all streams.
 *
 * Bytes are released to clients in SPOOL_BUF steps as they reach the
 * spool file, except the last step, which waits for the size and sha256
 * check: a client never receives the end of a wrong object.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "common/util.h"
#include "server/http.h"
#include "server/hub_error.h"
#include "server/upstream_fill.h"
#include "storage/hash.h"
#include "storage/lfs_claims.h"

#define FILL_MAGIC 0x46696c6cu	 /* "Fill" */
#define STREAM_MAGIC 0x4673746du /* "Fstm" */
#define SPOOL_BUF ((size_t)1 << 20)	/* gathered per write and wake-up */
#define SEND_CHUNK ((size_t)1 << 20)
#define SEND_HIGH ((size_t)4 << 20)	/* queued bytes that pause a client */
#define SEND_LOW ((size_t)1 << 20)
#define FLUSH_MIN ((size_t)64 << 10)	/* partial buffers worth a write */
#define FLUSH_MS 100

static atomic_uint_fast64_t n_transfers, n_bytes, n_failures;

struct task {
	upstream_task_fn run, cancel;
	void *arg;
	STAILQ_ENTRY(task) next;
};

enum fill_state { FILL_RUNNING, FILL_DONE, FILL_FAILED };

struct fill_stream;

struct fill {
	unsigned magic;
	struct upstream_fill *eng;
	char sha[SHA256_HEX_LEN + 1];
	uint64_t size;
	char *path, *token;
	char repo_id[REPO_ID_LEN + 1];
	char tmp_path[4200];
	int fd;
	bool adopted;		/* the spool file is the stored blob now */
	/* under eng->lock */
	int refs;
	bool listed;
	uint64_t published;
	enum fill_state state;
	struct err err;
	LIST_HEAD(, fill_stream) streams;
	LIST_ENTRY(fill) link;
	/* the transfer thread's own */
	struct err sink_err;	/* why the sink stopped the transfer */
	struct timespec flushed;	/* when bytes were last released */
	struct sha256_ctx *hash;
	char *buf;
	size_t buffered;
	uint64_t received, written;
};

struct fill_stream {
	unsigned magic;
	struct upstream_fill *eng;
	struct fill *fill;
	struct http_request *req;
	struct event *wake;
	int status;
	uint64_t off, end;
	bool begun, draining;
	void (*done)(void *);
	void *arg;
	bool *finished_now;	/* set while upstream_fill_serve runs */
	LIST_ENTRY(fill_stream) in_fill;
	LIST_ENTRY(fill_stream) in_all;
};

struct upstream_fill {
	struct store *store;
	struct upstream_config cfg;
	char url[512], token[512], ca_bundle[4096];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	STAILQ_HEAD(, task) tasks;
	bool stopping;
	atomic_bool cancel;
	int nthreads, started;
	pthread_t *threads;
	struct upstream **clients;
	LIST_HEAD(, fill) fills;
	LIST_HEAD(, fill_stream) streams;
};

struct worker_arg {
	struct upstream_fill *eng;
	int index;
};

uint64_t upstream_fill_transfers(void)
{
	return atomic_load(&n_transfers);
}

uint64_t upstream_fill_bytes(void)
{
	return atomic_load(&n_bytes);
}

uint64_t upstream_fill_failures(void)
{
	return atomic_load(&n_failures);
}

/* --- the pool --- */

static void *pool_main(void *arg)
{
	struct upstream_fill *eng = ((struct worker_arg *)arg)->eng;
	struct upstream *up = eng->clients[((struct worker_arg *)arg)->index];
	struct task *t;

	free(arg);
	for (;;) {
		pthread_mutex_lock(&eng->lock);
		while (!eng->stopping && STAILQ_EMPTY(&eng->tasks))
			pthread_cond_wait(&eng->cond, &eng->lock);
		if (eng->stopping) {
			pthread_mutex_unlock(&eng->lock);
			break;
		}
		t = STAILQ_FIRST(&eng->tasks);
		STAILQ_REMOVE_HEAD(&eng->tasks, next);
		pthread_mutex_unlock(&eng->lock);
		t->run(up, t->arg);
		free(t);
	}
	return NULL;
}

/* Queues a task; eng->lock held. */
static int submit_locked(struct upstream_fill *eng, upstream_task_fn run,
			 upstream_task_fn cancel, void *arg, struct err *err)
{
	struct task *t;

	if (eng->stopping)
		return err_set(err, ERR_UNAVAILABLE, "the server is stopping");
	if (!(t = calloc(1, sizeof(*t))))
		return err_set(err, ERR_FAIL, "out of memory");
	t->run = run;
	t->cancel = cancel;
	t->arg = arg;
	STAILQ_INSERT_TAIL(&eng->tasks, t, next);
	pthread_cond_signal(&eng->cond);
	return 0;
}

int upstream_fill_submit(struct upstream_fill *f, upstream_task_fn run,
			 upstream_task_fn cancel, void *arg, struct err *err)
{
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = submit_locked(f, run, cancel, arg, err);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static void copy_config(struct upstream_fill *eng,
			const struct upstream_config *cfg)
{
	eng->cfg = *cfg;
	str_copy(eng->url, cfg->url ? cfg->url : UPSTREAM_DEFAULT_URL,
		 sizeof(eng->url));
	eng->cfg.url = eng->url;
	eng->cfg.token = NULL;
	if (cfg->token && cfg->token[0]) {
		str_copy(eng->token, cfg->token, sizeof(eng->token));
		eng->cfg.token = eng->token;
	}
	eng->cfg.ca_bundle = NULL;
	if (cfg->ca_bundle && cfg->ca_bundle[0]) {
		str_copy(eng->ca_bundle, cfg->ca_bundle, sizeof(eng->ca_bundle));
		eng->cfg.ca_bundle = eng->ca_bundle;
	}
}

int upstream_fill_new(struct upstream_fill **out, struct store *store,
		      const struct upstream_config *cfg, int threads,
		      struct err *err)
{
	struct upstream_fill *eng = calloc(1, sizeof(*eng));
	int rc = ERR_FAIL;

	if (!eng)
		return err_set(err, ERR_FAIL, "out of memory");
	eng->store = store;
	copy_config(eng, cfg);
	pthread_mutex_init(&eng->lock, NULL);
	pthread_cond_init(&eng->cond, NULL);
	STAILQ_INIT(&eng->tasks);
	LIST_INIT(&eng->fills);
	LIST_INIT(&eng->streams);
	eng->nthreads = threads > 0 ? threads : 1;
	eng->threads = calloc((size_t)eng->nthreads, sizeof(*eng->threads));
	eng->clients = calloc((size_t)eng->nthreads, sizeof(*eng->clients));
	if (!eng->threads || !eng->clients) {
		err_set(err, ERR_FAIL, "out of memory");
		goto fail;
	}
	/* Pool clients are anonymous: every call names its token, so the
	 * deployment token goes only where the caller allows it. */
	{
		struct upstream_config anon = eng->cfg;
		anon.token = NULL;
		for (int i = 0; i < eng->nthreads; i++)
			if ((rc = upstream_new(&eng->clients[i], &anon, err)) < 0)
				goto fail;
	}
	for (; eng->started < eng->nthreads; eng->started++) {
		struct worker_arg *wa = malloc(sizeof(*wa));
		if (wa) {
			wa->eng = eng;
			wa->index = eng->started;
		}
		if (!wa || pthread_create(&eng->threads[eng->started], NULL,
					  pool_main, wa) != 0) {
			free(wa);
			rc = err_set(err, ERR_FAIL, "cannot start upstream threads");
			goto fail;
		}
	}
	*out = eng;
	return 0;
fail:
	upstream_fill_stop(eng);
	upstream_fill_free(eng);
	return rc;
}

const struct upstream_config *upstream_fill_config(const struct upstream_fill *f)
{
	return &f->cfg;
}

/* --- fills --- */

static void fill_unref_locked(struct fill *fl)
{
	if (--fl->refs > 0)
		return;
	assert(LIST_EMPTY(&fl->streams) && !fl->listed);
	if (fl->fd >= 0)
		close(fl->fd);
	if (!fl->adopted && fl->tmp_path[0])
		unlink(fl->tmp_path);
	if (fl->token) {
		OPENSSL_cleanse(fl->token, strlen(fl->token));
		free(fl->token);
	}
	sha256_free(fl->hash);
	free(fl->buf);
	free(fl->path);
	free(fl);
}

static void fill_wake_locked(struct fill *fl)
{
	struct fill_stream *s;

	LIST_FOREACH(s, &fl->streams, in_fill)
		event_active(s->wake, EV_TIMEOUT, 1);
}

/* Ends the fill for everyone; eng->lock held. */
static void fill_end_locked(struct fill *fl, enum fill_state state,
			    const struct err *err)
{
	fl->state = state;
	if (state == FILL_DONE)
		fl->published = fl->size;
	else if (err)
		fl->err = *err;
	if (fl->listed) {
		LIST_REMOVE(fl, link);
		fl->listed = false;
		fl->refs--;	/* the table's; the caller still holds one */
	}
	fill_wake_locked(fl);
}

static void fill_publish(struct fill *fl, uint64_t upto)
{
	pthread_mutex_lock(&fl->eng->lock);
	fl->published = upto;
	fill_wake_locked(fl);
	pthread_mutex_unlock(&fl->eng->lock);
}

static int fill_flush(struct fill *fl, struct err *err)
{
	if (fl->buffered && write_full(fl->fd, fl->buf, fl->buffered) < 0)
		return err_set(err, ERR_FAIL, "cannot write '%s': %s",
			       fl->tmp_path, strerror(errno));
	fl->written += fl->buffered;
	fl->buffered = 0;
	clock_gettime(CLOCK_MONOTONIC, &fl->flushed);
	/* The last step waits for the check in fill_finish. */
	if (fl->written < fl->size)
		fill_publish(fl, fl->written);
	return 0;
}

/* A slow upstream still gets bytes to clients promptly: a partial
 * buffer goes out after FLUSH_MS. */
static bool flush_due(struct fill *fl)
{
	struct timespec now;
	int64_t ms;

	if (fl->buffered < FLUSH_MIN)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (int64_t)(now.tv_sec - fl->flushed.tv_sec) * 1000 +
	     (now.tv_nsec - fl->flushed.tv_nsec) / 1000000;
	return ms >= FLUSH_MS;
}

static int fill_sink(const void *data, size_t len, void *arg)
{
	struct fill *fl = arg;

	if (atomic_load(&fl->eng->cancel))
		return err_set(&fl->sink_err, ERR_UNAVAILABLE,
			       "the server is stopping");
	if (fl->received + len > fl->size)
		return err_set(&fl->sink_err, ERR_UPSTREAM, "the upstream sent "
			       "more than the %" PRIu64 " bytes of object %s",
			       fl->size, fl->sha);
	atomic_fetch_add(&n_bytes, len);
	sha256_update(fl->hash, data, len);
	fl->received += len;
	while (len > 0) {
		size_t n = SPOOL_BUF - fl->buffered;
		if (n > len)
			n = len;
		memcpy(fl->buf + fl->buffered, data, n);
		fl->buffered += n;
		data = (const char *)data + n;
		len -= n;
		if ((fl->buffered == SPOOL_BUF || flush_due(fl)) &&
		    fill_flush(fl, &fl->sink_err) < 0)
			return -1;
	}
	return 0;
}

/* Checks what arrived, releases the last bytes and keeps the blob. */
static int fill_finish(struct fill *fl, struct err *err)
{
	char sha[SHA256_HEX_LEN + 1];
	int rc;

	if ((rc = fill_flush(fl, err)) < 0)
		return rc;
	sha256_final_hex(fl->hash, sha);
	fl->hash = NULL;
	if (fl->received != fl->size)
		return err_set(err, ERR_UPSTREAM, "the upstream sent %" PRIu64
			       " bytes of object %s, its pointer says %" PRIu64,
			       fl->received, fl->sha, fl->size);
	if (strcmp(sha, fl->sha))
		return err_set(err, ERR_UPSTREAM, "the upstream's object %s "
			       "hashes to %s: refused", fl->sha, sha);
	pthread_mutex_lock(&fl->eng->lock);
	fl->state = FILL_DONE;
	fl->published = fl->size;
	fill_wake_locked(fl);
	pthread_mutex_unlock(&fl->eng->lock);
	/* Clients have their bytes; now make them durable. The table keeps
	 * the fill until the rename, so no second transfer starts. */
	if (blob_adopt(fl->eng->store->blobs, fl->tmp_path, fl->sha, err) < 0)
		log_msg(LOG_WARN, "event=pull_through_keep_fail sha256=%s "
			"error=\"%s\"", fl->sha, err->msg);
	else
		fl->adopted = true;
	/* The repository's own history names it: it may serve it. */
	if (fl->adopted && fl->repo_id[0] &&
	    lfs_claim_add(fl->eng->store->meta, fl->repo_id, fl->sha, err) < 0)
		log_msg(LOG_WARN, "event=pull_through_claim_fail sha256=%s "
			"error=\"%s\"", fl->sha, err->msg);
	return 0;
}

static void fill_run(struct upstream *up, void *arg)
{
	struct fill *fl = arg;
	struct upstream_fill *eng = fl->eng;
	struct upstream_reply reply;
	struct err err = { 0 };
	int rc;

	atomic_fetch_add(&n_transfers, 1);
	log_msg(LOG_INFO, "event=pull_through_fill sha256=%s size=%" PRIu64
		" path=%s", fl->sha, fl->size, fl->path);
	memset(&reply, 0, sizeof(reply));
	clock_gettime(CLOCK_MONOTONIC, &fl->flushed);
	rc = upstream_download(up, fl->path, fl->token, 0, 0, fill_sink, fl,
			       &reply, &err);
	if (rc < 0 && fl->sink_err.code < 0)
		err = fl->sink_err;	/* the sink's reason is the better one */
	if (rc == 0)
		rc = fill_finish(fl, &err);
	pthread_mutex_lock(&eng->lock);
	if (rc < 0 && err.code == 0)
		err_set(&err, ERR_UPSTREAM, "the upstream transfer of %s failed",
			fl->sha);
	if (rc < 0) {
		atomic_fetch_add(&n_failures, 1);
		log_msg(LOG_WARN, "event=pull_through_fill_fail sha256=%s "
			"error=\"%s\"", fl->sha, err.msg);
		fill_end_locked(fl, FILL_FAILED, &err);
	} else {
		fill_end_locked(fl, FILL_DONE, NULL);
	}
	fill_unref_locked(fl);
	pthread_mutex_unlock(&eng->lock);
}

static void fill_cancel(struct upstream *up, void *arg)
{
	struct fill *fl = arg;
	struct upstream_fill *eng = fl->eng;
	struct err err = { 0 };

	(void)up;
	err_set(&err, ERR_UNAVAILABLE, "the server is stopping");
	pthread_mutex_lock(&eng->lock);
	fill_end_locked(fl, FILL_FAILED, &err);
	fill_unref_locked(fl);
	pthread_mutex_unlock(&eng->lock);
}

static struct fill *fill_find_locked(struct upstream_fill *eng,
				     const char *sha)
{
	struct fill *fl;

	LIST_FOREACH(fl, &eng->fills, link)
		if (!strcmp(fl->sha, sha))
			return fl;
	return NULL;
}

/* A new fill, listed and queued; eng->lock held. The caller gets one
 * reference besides the table's and the task's. */
static struct fill *fill_start_locked(struct upstream_fill *eng,
				      const struct fill_want *w,
				      struct err *err)
{
	struct fill *fl = calloc(1, sizeof(*fl));

	if (!fl) {
		err_set(err, ERR_FAIL, "out of memory");
		return NULL;
	}
	fl->magic = FILL_MAGIC;
	fl->eng = eng;
	fl->fd = -1;
	fl->refs = 1;
	LIST_INIT(&fl->streams);
	str_copy(fl->sha, w->sha256, sizeof(fl->sha));
	fl->size = w->size;
	if (w->repo_id)
		str_copy(fl->repo_id, w->repo_id, sizeof(fl->repo_id));
	snprintf(fl->tmp_path, sizeof(fl->tmp_path), "%s/pull-XXXXXX",
		 blob_tmp_dir(eng->store->blobs));
	fl->path = strdup(w->path);
	fl->token = w->token ? strdup(w->token) : NULL;
	fl->hash = sha256_new();
	fl->buf = malloc(SPOOL_BUF);
	if (!fl->path || (w->token && !fl->token) || !fl->hash || !fl->buf) {
		err_set(err, ERR_FAIL, "out of memory");
		goto fail;
	}
	if ((fl->fd = mkostemp(fl->tmp_path, O_CLOEXEC)) < 0) {
		err_set(err, ERR_FAIL, "cannot create '%s': %s", fl->tmp_path,
			strerror(errno));
		fl->tmp_path[0] = '\0';
		goto fail;
	}
	if (submit_locked(eng, fill_run, fill_cancel, fl, err) < 0)
		goto fail;
	fl->refs = 3;	/* the caller, the table, the task */
	fl->listed = true;
	LIST_INSERT_HEAD(&eng->fills, fl, link);
	return fl;
fail:
	fill_unref_locked(fl);
	return NULL;
}

/* --- client streams --- */

static void stream_finish(struct fill_stream *s)
{
	struct upstream_fill *eng = s->eng;

	pthread_mutex_lock(&eng->lock);
	LIST_REMOVE(s, in_fill);
	LIST_REMOVE(s, in_all);
	fill_unref_locked(s->fill);
	pthread_mutex_unlock(&eng->lock);
	event_free(s->wake);
	s->magic = 0;
	if (s->finished_now)
		*s->finished_now = true;	/* the caller still owns it all */
	else if (s->done)
		s->done(s->arg);
	free(s);
}

static void stream_drained(struct http_request *req, void *arg);

/* Sends what is there; false when it must wait for the fill or the
 * client. */
static bool stream_send(struct fill_stream *s, uint64_t avail, bool *broken)
{
	uint64_t upto = avail < s->end ? avail : s->end;

	while (s->off < upto) {
		uint64_t left = upto - s->off;
		size_t n = left < SEND_CHUNK ? (size_t)left : SEND_CHUNK;
		size_t q = http_response_write_file(s->req, s->fill->fd,
						    (off_t)s->off, n);
		if (q == SIZE_MAX || q == 0) {
			/* Unreadable spool, or the client went away. */
			*broken = true;
			return true;
		}
		s->off += n;
		if (q >= SEND_HIGH) {
			s->draining = true;
			http_response_on_drain(s->req, SEND_LOW, stream_drained, s);
			return false;
		}
	}
	return s->off == s->end;
}

static void stream_pump(struct fill_stream *s)
{
	struct fill *fl = s->fill;
	enum fill_state state;
	uint64_t avail;
	struct err err;
	bool broken = false;

	pthread_mutex_lock(&s->eng->lock);
	avail = fl->published;
	state = fl->state;
	err = fl->err;
	pthread_mutex_unlock(&s->eng->lock);
	if (!s->begun) {
		if (state == FILL_FAILED) {
			hub_error_reply(s->req, &err, NULL);
			stream_finish(s);
			return;
		}
		if (s->end > s->off && avail <= s->off)
			return;
		http_response_begin(s->req, s->status,
				    (int64_t)(s->end - s->off));
		s->begun = true;
	}
	if (!stream_send(s, avail, &broken) && !broken) {
		if (s->draining || state != FILL_FAILED)
			return;
	}
	/* Whole, cut short by a failed fill, or the client is gone: a short
	 * body closes the connection, which is how the client learns. */
	http_response_end(s->req);
	stream_finish(s);
}

static void stream_drained(struct http_request *req, void *arg)
{
	struct fill_stream *s = arg;

	(void)req;
	assert(s && s->magic == STREAM_MAGIC);
	s->draining = false;
	stream_pump(s);
}

static void stream_wake(evutil_socket_t fd, short what, void *arg)
{
	struct fill_stream *s = arg;

	(void)fd;
	(void)what;
	assert(s && s->magic == STREAM_MAGIC);
	if (!s->draining)
		stream_pump(s);
}

/* The object is stored: plain sendfile. */
static bool serve_stored(struct upstream_fill *eng, struct http_request *req,
			 const struct fill_want *w)
{
	uint64_t size;
	int fd;

	if (!blob_is_local(eng->store->blobs))
		return false;	/* route_file streams what S3 holds */
	if (blob_open(eng->store->blobs, w->sha256, &fd, &size, NULL) < 0)
		return false;
	if (size != w->size) {
		close(fd);
		return false;
	}
	http_response_send_file(req, w->status, fd, (off_t)w->offset,
				(off_t)w->length);
	return true;
}

static struct fill_stream *stream_new(struct upstream_fill *eng,
				      struct http_request *req,
				      const struct fill_want *w)
{
	struct fill_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->magic = STREAM_MAGIC;
	s->eng = eng;
	s->req = req;
	s->status = w->status;
	s->off = w->offset;
	s->end = w->offset + w->length;
	s->wake = event_new(http_request_base(req), -1, 0, stream_wake, s);
	if (!s->wake) {
		free(s);
		return NULL;
	}
	return s;
}

/* Joins or starts the fill for w under the lock; false with err set, or
 * with *stored set when the object reached the store meanwhile. */
static bool stream_attach(struct fill_stream *s, const struct fill_want *w,
			  bool *stored, struct err *err)
{
	struct upstream_fill *eng = s->eng;
	struct fill *fl;

	pthread_mutex_lock(&eng->lock);
	/* Checked under the lock: a fill leaves the table only after its
	 * rename, so either the blob is there or its fill still is. */
	*stored = blob_exists(eng->store->blobs, w->sha256);
	fl = *stored ? NULL : fill_find_locked(eng, w->sha256);
	if (fl)
		fl->refs++;
	else if (!*stored)
		fl = fill_start_locked(eng, w, err);
	if (fl) {
		s->fill = fl;
		LIST_INSERT_HEAD(&fl->streams, s, in_fill);
		LIST_INSERT_HEAD(&eng->streams, s, in_all);
	}
	pthread_mutex_unlock(&eng->lock);
	return fl != NULL;
}

bool upstream_fill_serve(struct upstream_fill *f, struct http_request *req,
			 const struct fill_want *w, void (*done)(void *),
			 void *arg)
{
	struct fill_stream *s = NULL;
	struct err err = { 0 };
	bool stored = false, finished = false;

	if (serve_stored(f, req, w))
		return true;
	if (!(s = stream_new(f, req, w))) {
		hub_error_replyf(req, ERR_FAIL, "out of memory");
		return true;
	}
	if (!stream_attach(s, w, &stored, &err)) {
		event_free(s->wake);
		free(s);
		if (stored && serve_stored(f, req, w))
			return true;
		if (err.code == 0)
			err_set(&err, ERR_CORRUPT, "the stored object %s does not "
				"have the size its pointer says", w->sha256);
		hub_error_reply(req, &err, NULL);
		return true;
	}
	s->done = done;
	s->arg = arg;
	s->finished_now = &finished;
	stream_pump(s);
	if (finished)
		return true;	/* s is gone */
	s->finished_now = NULL;
	return false;
}

/* --- shutdown --- */

void upstream_fill_stop(struct upstream_fill *f)
{
	struct task *t;

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = true;
	atomic_store(&f->cancel, true);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	for (int i = 0; i < f->started; i++)
		pthread_join(f->threads[i], NULL);
	f->started = 0;
	while ((t = STAILQ_FIRST(&f->tasks))) {
		STAILQ_REMOVE_HEAD(&f->tasks, next);
		if (t->cancel)
			t->cancel(NULL, t->arg);
		free(t);
	}
}

void upstream_fill_free(struct upstream_fill *f)
{
	struct fill_stream *s;

	if (!f)
		return;
	assert(f->started == 0);
	/* Streams left belong to requests the HTTP layer orphaned when its
	 * loops stopped; it frees those requests itself. */
	while ((s = LIST_FIRST(&f->streams)))
		stream_finish(s);
	assert(LIST_EMPTY(&f->fills));
	for (int i = 0; f->clients && i < f->nthreads; i++)
		upstream_free(f->clients[i]);
	free(f->clients);
	free(f->threads);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	OPENSSL_cleanse(f->token, sizeof(f->token));
	free(f);
}
