/*
 * blob_send.c: streams blobs of the S3 backend to HTTP clients; see
 * blob_send.h.
 *
 * Objects and their owners:
 *   struct blob_send  the pool: threads, the queue of fetches, the list
 *                     of every stream (for shutdown).
 *   struct bstream    one answer, owned by its request's worker thread;
 *                     a pool thread only appends to its ready buffer and
 *                     wakes it (event_active).
 * bs->lock guards the queue, the list, and each stream's ready buffer,
 * fetching, failed, err and dead fields. A stream is freed by its worker
 * thread once it is dead (answered) and no fetch of it is running.
 */
#include "common/compat.h"

#include <assert.h>
#include <pthread.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "common/log.h"
#include "common/util.h"
#include "server/blob_send.h"
#include "server/http.h"
#include "server/hub_error.h"

#define STREAM_MAGIC 0x42736e64u	/* "Bsnd" */
#define WAKE_STEP ((size_t)1 << 20)	/* bytes gathered per wake-up */
#define SEND_HIGH ((size_t)8 << 20)	/* queued bytes that pause fetching */
#define SEND_LOW ((size_t)2 << 20)

struct bstream {
	unsigned magic;
	struct blob_send *bs;
	struct http_request *req;
	struct event *wake;
	char sha[SHA256_HEX_LEN + 1];
	char commit[64];
	int status;
	uint64_t total, sent;		/* the answer's bytes */
	uint64_t fetch_off, end;	/* next byte to fetch, past the last */
	bool begun, draining;
	struct evbuffer *out;		/* the worker's, taken from ready */
	/* under bs->lock */
	struct evbuffer *ready;
	uint64_t job_off, job_len, job_got;
	bool fetching, failed, dead;
	struct err err;
	STAILQ_ENTRY(bstream) in_queue;
	LIST_ENTRY(bstream) in_all;
};

struct blob_send {
	struct blob_store *blobs;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t *threads;
	int nthreads, started;
	bool stopping;
	STAILQ_HEAD(, bstream) queue;
	LIST_HEAD(, bstream) all;
};

/* --- the pool --- */

static int fetch_sink(void *arg, const void *data, size_t len, struct err *err)
{
	struct bstream *s = arg;
	struct blob_send *bs = s->bs;
	int rc = 0;

	pthread_mutex_lock(&bs->lock);
	if (s->dead || bs->stopping) {
		rc = err_set(err, ERR_FAIL, "the answer was abandoned");
	} else if (len > s->job_len - s->job_got) {
		rc = err_set(err, ERR_CORRUPT, "the object store sent more "
			     "bytes than asked for");
	} else {
		evbuffer_add(s->ready, data, len);
		s->job_got += len;
		if (evbuffer_get_length(s->ready) >= WAKE_STEP)
			event_active(s->wake, 0, 0);
	}
	pthread_mutex_unlock(&bs->lock);
	return rc;
}

static void fetch_run(struct blob_send *bs, struct bstream *s)
{
	struct err err = { 0 };
	uint64_t off, len;
	bool dead;
	int rc = 0;

	pthread_mutex_lock(&bs->lock);
	off = s->job_off;
	len = s->job_len;
	dead = s->dead;
	pthread_mutex_unlock(&bs->lock);
	if (!dead)
		rc = blob_read(bs->blobs, s->sha, off, len, fetch_sink, s, &err);
	pthread_mutex_lock(&bs->lock);
	if (rc == 0 && !dead && s->job_got != len)
		rc = err_set(&err, ERR_CORRUPT, "the object store sent %llu "
			     "of %llu bytes of blob %s",
			     (unsigned long long)s->job_got,
			     (unsigned long long)len, s->sha);
	if (rc < 0 && !s->failed) {
		s->failed = true;
		s->err = err;
	}
	s->fetching = false;
	/* Under the lock: once it is released the worker may free s. */
	event_active(s->wake, 0, 0);
	pthread_mutex_unlock(&bs->lock);
}

static void *pool_main(void *arg)
{
	struct blob_send *bs = arg;
	struct bstream *s;

	for (;;) {
		pthread_mutex_lock(&bs->lock);
		while (!bs->stopping && STAILQ_EMPTY(&bs->queue))
			pthread_cond_wait(&bs->cond, &bs->lock);
		if (bs->stopping) {
			pthread_mutex_unlock(&bs->lock);
			return NULL;
		}
		s = STAILQ_FIRST(&bs->queue);
		STAILQ_REMOVE_HEAD(&bs->queue, in_queue);
		pthread_mutex_unlock(&bs->lock);
		fetch_run(bs, s);
	}
}

int blob_send_new(struct blob_send **out, struct blob_store *blobs,
		  int threads, struct err *err)
{
	struct blob_send *bs = calloc(1, sizeof(*bs));

	if (!bs || threads < 1 ||
	    !(bs->threads = calloc((size_t)threads, sizeof(*bs->threads)))) {
		free(bs);
		return err_set(err, ERR_FAIL, "out of memory");
	}
	bs->blobs = blobs;
	bs->nthreads = threads;
	pthread_mutex_init(&bs->lock, NULL);
	pthread_cond_init(&bs->cond, NULL);
	STAILQ_INIT(&bs->queue);
	LIST_INIT(&bs->all);
	for (; bs->started < threads; bs->started++) {
		if (pthread_create(&bs->threads[bs->started], NULL, pool_main,
				   bs) != 0) {
			blob_send_stop(bs);
			blob_send_free(bs);
			return err_set(err, ERR_FAIL, "cannot start the blob "
				       "reader threads");
		}
	}
	*out = bs;
	return 0;
}

void blob_send_stop(struct blob_send *bs)
{
	struct bstream *s;

	if (!bs)
		return;
	pthread_mutex_lock(&bs->lock);
	bs->stopping = true;
	pthread_cond_broadcast(&bs->cond);
	pthread_mutex_unlock(&bs->lock);
	for (int i = 0; i < bs->started; i++)
		pthread_join(bs->threads[i], NULL);
	bs->started = 0;
	while ((s = STAILQ_FIRST(&bs->queue))) {
		STAILQ_REMOVE_HEAD(&bs->queue, in_queue);
		s->fetching = false;
	}
}

static void stream_destroy(struct bstream *s)
{
	LIST_REMOVE(s, in_all);
	event_free(s->wake);
	evbuffer_free(s->ready);
	evbuffer_free(s->out);
	s->magic = 0;
	free(s);
}

void blob_send_free(struct blob_send *bs)
{
	if (!bs)
		return;
	assert(bs->started == 0);
	/* What is left belongs to requests the HTTP layer orphaned when its
	 * loops stopped; it frees those itself. */
	while (!LIST_EMPTY(&bs->all))
		stream_destroy(LIST_FIRST(&bs->all));
	pthread_cond_destroy(&bs->cond);
	pthread_mutex_destroy(&bs->lock);
	free(bs->threads);
	free(bs);
}

/* --- one answer, on its worker thread --- */

/* The answer is made: the stream goes once no fetch of it runs. */
static void stream_finish(struct bstream *s)
{
	struct blob_send *bs = s->bs;
	bool fetching;

	pthread_mutex_lock(&bs->lock);
	s->dead = true;
	s->req = NULL;
	fetching = s->fetching;
	if (!fetching)
		LIST_REMOVE(s, in_all);
	pthread_mutex_unlock(&bs->lock);
	if (fetching)
		return;	/* the fetch's end wakes it again */
	event_free(s->wake);
	evbuffer_free(s->ready);
	evbuffer_free(s->out);
	s->magic = 0;
	free(s);
}

/* Queues the next chunk when none is on its way and the rest is wanted. */
static void stream_fetch_next(struct bstream *s)
{
	struct blob_send *bs = s->bs;
	uint64_t n;

	if (s->fetch_off >= s->end)
		return;
	pthread_mutex_lock(&bs->lock);
	if (!s->fetching && !s->failed && !bs->stopping) {
		n = s->end - s->fetch_off;
		if (n > BLOB_SEND_CHUNK)
			n = BLOB_SEND_CHUNK;
		s->job_off = s->fetch_off;
		s->job_len = n;
		s->job_got = 0;
		s->fetch_off += n;
		s->fetching = true;
		STAILQ_INSERT_TAIL(&bs->queue, s, in_queue);
		pthread_cond_signal(&bs->cond);
	}
	pthread_mutex_unlock(&bs->lock);
}

static void stream_drained(struct http_request *req, void *arg);

static void stream_pump(struct bstream *s)
{
	struct blob_send *bs = s->bs;
	size_t queued = 0;
	bool failed, broken = false;
	struct err err;

	pthread_mutex_lock(&bs->lock);
	evbuffer_add_buffer(s->out, s->ready);
	failed = s->failed;
	err = s->err;
	pthread_mutex_unlock(&bs->lock);
	if (!s->begun) {
		if (failed && evbuffer_get_length(s->out) == 0) {
			if (err.code == ERR_NOTFOUND || err.code == ERR_RANGE) {
				log_msg(LOG_ERROR, "event=missing_blob sha256=%s "
					"reason=\"%s\"", s->sha, err.msg);
				err_set(&err, ERR_CORRUPT, "the stored object "
					"%s is unavailable; the operator should "
					"run haven fsck", s->sha);
			} else {
				log_msg(LOG_ERROR, "event=blob_read_failed "
					"sha256=%s reason=\"%s\"", s->sha, err.msg);
			}
			hub_error_reply(s->req, &err, s->commit[0] ? s->commit :
					NULL);
			stream_finish(s);
			return;
		}
		if (evbuffer_get_length(s->out) == 0 && s->total) {
			stream_fetch_next(s);
			return;
		}
		http_response_begin(s->req, s->status, (int64_t)s->total);
		s->begun = true;
	}
	if (evbuffer_get_length(s->out)) {
		/* Moved, not copied: the chains go to the socket's queue. */
		s->sent += evbuffer_get_length(s->out);
		queued = http_response_write_buffer(s->req, s->out);
		broken = queued == 0;	/* the client went away */
	}
	if (broken || s->sent >= s->total || (failed && !s->draining)) {
		if (failed && s->sent < s->total)
			log_msg(LOG_ERROR, "event=blob_read_failed sha256=%s "
				"sent=%llu reason=\"%s\"", s->sha,
				(unsigned long long)s->sent, err.msg);
		/* Short when cut: the client sees the body end early. */
		http_response_end(s->req);
		stream_finish(s);
		return;
	}
	if (queued >= SEND_HIGH) {
		s->draining = true;
		http_response_on_drain(s->req, SEND_LOW, stream_drained, s);
		return;
	}
	stream_fetch_next(s);
}

static void stream_drained(struct http_request *req, void *arg)
{
	struct bstream *s = arg;

	(void)req;
	assert(s && s->magic == STREAM_MAGIC);
	s->draining = false;
	stream_pump(s);
}

static void stream_wake(evutil_socket_t fd, short what, void *arg)
{
	struct bstream *s = arg;
	bool dead, fetching;

	(void)fd;
	(void)what;
	assert(s && s->magic == STREAM_MAGIC);
	pthread_mutex_lock(&s->bs->lock);
	dead = s->dead;
	fetching = s->fetching;
	pthread_mutex_unlock(&s->bs->lock);
	if (dead) {
		if (!fetching)
			stream_finish(s);
		return;
	}
	if (!s->draining)
		stream_pump(s);
}

void blob_send_range(struct blob_send *bs, struct http_request *req,
		     const char *sha, int status, uint64_t off, uint64_t len,
		     const char *commit)
{
	struct bstream *s = calloc(1, sizeof(*s));
	struct err err = { 0 };

	if (!s || !(s->ready = evbuffer_new()) || !(s->out = evbuffer_new()) ||
	    !(s->wake = event_new(http_request_base(req), -1, 0, stream_wake,
				  s))) {
		if (s) {
			if (s->ready)
				evbuffer_free(s->ready);
			if (s->out)
				evbuffer_free(s->out);
		}
		free(s);
		err_set(&err, ERR_FAIL, "out of memory");
		hub_error_reply(req, &err, commit);
		return;
	}
	s->magic = STREAM_MAGIC;
	s->bs = bs;
	s->req = req;
	str_copy(s->sha, sha, sizeof(s->sha));
	if (commit)
		str_copy(s->commit, commit, sizeof(s->commit));
	s->status = status;
	s->total = len;
	s->fetch_off = off;
	s->end = off + len;
	pthread_mutex_lock(&bs->lock);
	LIST_INSERT_HEAD(&bs->all, s, in_all);
	pthread_mutex_unlock(&bs->lock);
	stream_pump(s);
}
