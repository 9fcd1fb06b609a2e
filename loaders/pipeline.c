/*
 * pipeline.c: the reader threads, the staging ring and the in-order hasher
 * of pipeline.h. Slot s holds chunk i when i % nslots == s; a reader may
 * fill it once the hasher has released chunk i - nslots.
 */
#include "common/compat.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loaders/checksum.h"
#include "loaders/cuda_driver.h"
#include "loaders/pipeline.h"
#include "storage/hash.h"

struct ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd;
	uint64_t size, nchunks, next;	/* next chunk to claim */
	size_t chunk;
	int nslots;
	unsigned char **buf;
	int64_t *ready;		/* chunk a slot holds, ready to hash; -1 */
	int64_t *free_for;	/* the chunk a slot takes next */
	struct tensor_desc *t;
	size_t count;
	const struct pipeline_dest *dest;
	const struct pipeline_opts *opts;
	bool failed;
	struct err err;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(struct ring *r, const struct err *e)
{
	pthread_mutex_lock(&r->mu);
	if (!r->failed) {
		r->failed = true;
		r->err = *e;
	}
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* First tensor whose bytes end after off. */
static size_t first_after(const struct ring *r, uint64_t off)
{
	size_t lo = 0, hi = r->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->t[mid].offset + r->t[mid].nbytes <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Checksums, device copies and host copies of the tensor pieces in one
 * chunk. */
static int scatter(struct ring *r, uint64_t ci, const unsigned char *buf,
		   size_t len, int slot, struct err *err)
{
	uint64_t start = ci * r->chunk, end = start + len;
	int stream = (int)(ci % (uint64_t)(r->opts->streams > 0 ? r->opts->streams : 1));
	bool copied = false;
	int rc;

	for (size_t i = first_after(r, start); i < r->count; i++) {
		struct tensor_desc *t = &r->t[i];
		uint64_t a = t->offset > start ? t->offset : start;
		uint64_t b = t->offset + t->nbytes < end ? t->offset + t->nbytes : end;
		if (t->offset >= end)
			break;
		if (a >= b)
			continue;
		__atomic_fetch_add(&t->host_sum,
				   checksum_piece(buf + (a - start), (size_t)(b - a),
						  a - t->offset), __ATOMIC_RELAXED);
		if (r->dest && r->dest->dev && r->dest->dev[i]) {
			if ((rc = cuda_copy_htod(r->opts->cuda,
						 r->dest->dev[i] + (a - t->offset),
						 buf + (a - start), (size_t)(b - a),
						 stream, err)) < 0)
				return rc;
			copied = true;
		}
		if (r->dest && r->dest->host && r->dest->host[i])
			memcpy(r->dest->host[i] + (a - t->offset), buf + (a - start),
			       (size_t)(b - a));
	}
	if (copied || r->opts->cuda)
		return cuda_event_record(r->opts->cuda, slot, stream, err);
	return 0;
}

static void *reader(void *arg)
{
	struct ring *r = arg;
	struct err e = { 0 };

	for (;;) {
		uint64_t ci;
		int slot;
		size_t len, done = 0;

		pthread_mutex_lock(&r->mu);
		if (r->failed || r->next >= r->nchunks) {
			pthread_mutex_unlock(&r->mu);
			return NULL;
		}
		ci = r->next++;
		slot = (int)(ci % (uint64_t)r->nslots);
		while (!r->failed && r->free_for[slot] != (int64_t)ci)
			pthread_cond_wait(&r->cv, &r->mu);
		pthread_mutex_unlock(&r->mu);
		if (r->failed)
			return NULL;
		len = (size_t)(ci + 1 < r->nchunks ? r->chunk :
			       r->size - ci * r->chunk);
		while (done < len) {
			ssize_t n = pread(r->fd, r->buf[slot] + done, len - done,
					  (off_t)(ci * r->chunk + done));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				err_set(&e, n < 0 ? ERR_FAIL : ERR_CORRUPT,
					"read at %llu: %s",
					(unsigned long long)(ci * r->chunk + done),
					n < 0 ? strerror(errno) : "file is shorter than listed");
				fail(r, &e);
				return NULL;
			}
			done += (size_t)n;
		}
		if (scatter(r, ci, r->buf[slot], len, slot, &e) < 0) {
			fail(r, &e);
			return NULL;
		}
		pthread_mutex_lock(&r->mu);
		r->ready[slot] = (int64_t)ci;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
}

int pipeline_run(struct pipeline_stats *st, int fd, uint64_t size,
		 struct tensor_desc *tensors, size_t count,
		 const struct pipeline_dest *dest,
		 const struct pipeline_opts *opts, struct err *err)
{
	struct ring r = { .fd = fd, .size = size, .t = tensors, .count = count,
			  .dest = dest, .opts = opts };
	int nthreads = opts->readers < 1 ? 1 : opts->readers > 32 ? 32 : opts->readers;
	pthread_t th[32];
	int started = 0, rc = 0;
	struct sha256_ctx *ctx = NULL;
	double t0 = now_s();

	memset(st, 0, sizeof(*st));
	r.chunk = opts->chunk ? opts->chunk : (size_t)16 << 20;
	r.nslots = opts->slots < nthreads ? nthreads : opts->slots;
	if (r.nslots > 64)
		r.nslots = 64;
	r.nchunks = (size + r.chunk - 1) / r.chunk;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	r.buf = calloc((size_t)r.nslots, sizeof(*r.buf));
	r.ready = calloc((size_t)r.nslots, sizeof(*r.ready));
	r.free_for = calloc((size_t)r.nslots, sizeof(*r.free_for));
	if (!r.buf || !r.ready || !r.free_for) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	for (int s = 0; s < r.nslots; s++) {
		r.ready[s] = -1;
		r.free_for[s] = s;
		if (opts->cuda)
			rc = cuda_host_alloc(opts->cuda, (void **)&r.buf[s], r.chunk, err);
		else if (!(r.buf[s] = malloc(r.chunk)))
			rc = err_set(err, ERR_FAIL, "out of memory");
		if (rc < 0)
			goto out;
	}
	if (opts->sha && !(ctx = sha256_new())) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	for (; started < nthreads && (uint64_t)started < r.nchunks; started++)
		if (pthread_create(&th[started], NULL, reader, &r)) {
			struct err e;
			err_set(&e, ERR_FAIL, "cannot start a reader thread");
			fail(&r, &e);
			break;
		}
	for (uint64_t ci = 0; ci < r.nchunks; ci++) {
		int slot = (int)(ci % (uint64_t)r.nslots);
		size_t len = (size_t)(ci + 1 < r.nchunks ? r.chunk : size - ci * r.chunk);

		pthread_mutex_lock(&r.mu);
		while (!r.failed && r.ready[slot] != (int64_t)ci)
			pthread_cond_wait(&r.cv, &r.mu);
		pthread_mutex_unlock(&r.mu);
		if (r.failed)
			break;
		if (ctx)
			sha256_update(ctx, r.buf[slot], len);
		if (opts->cuda) {
			struct err e = { 0 };
			if (cuda_event_wait(opts->cuda, slot, &e) < 0) {
				fail(&r, &e);
				break;
			}
		}
		pthread_mutex_lock(&r.mu);
		r.ready[slot] = -1;
		r.free_for[slot] = (int64_t)ci + r.nslots;
		pthread_cond_broadcast(&r.cv);
		pthread_mutex_unlock(&r.mu);
		st->bytes += len;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (r.failed) {
		rc = err_set(err, r.err.code ? r.err.code : ERR_FAIL, "%s", r.err.msg);
		goto out;
	}
	if (opts->cuda && (rc = cuda_sync(opts->cuda, err)) < 0)
		goto out;
	if (ctx) {
		sha256_final_hex(ctx, st->sha256);
		ctx = NULL;
	}
	st->seconds = now_s() - t0;
out:
	if (ctx)
		sha256_free(ctx);
	for (int s = 0; r.buf && s < r.nslots; s++) {
		if (opts->cuda)
			cuda_host_free(opts->cuda, r.buf[s]);
		else
			free(r.buf[s]);
	}
	free(r.buf);
	free(r.ready);
	free(r.free_for);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	return rc;
}
