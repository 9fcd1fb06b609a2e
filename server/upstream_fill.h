/*
 * upstream_fill.h: the pull-through fill engine. A small pool of threads
 * does everything that waits on the upstream Hub (each thread owns one
 * upstream client), and a table keyed by sha256 makes sure an LFS object
 * is transferred once however many clients ask for it at the same time.
 *
 * A transfer writes into a temporary file of the blob store, hashing as
 * it goes; clients are answered from that file while it fills (the head
 * at once, each byte as soon as it is on disk, ranges included). At the
 * end the size and sha256 are checked before the last bytes are released
 * to anyone; then the file is adopted into the blob store (fsync, rename,
 * directory fsync). A short or wrong transfer closes every waiting
 * client's connection and nothing is cached.
 *
 * Threads: the table is shared by all worker threads under one mutex.
 * A transfer wakes the clients it feeds with event_active() on their own
 * worker's event_base (safe across threads: evthread_use_pthreads is on),
 * so no one polls.
 *
 * Shutdown: upstream_fill_stop() cuts transfers and joins the pool; after
 * the HTTP workers have stopped, upstream_fill_free() frees the clients
 * still waiting (their requests are the HTTP layer's orphans by then).
 */
#ifndef HAVEN_UPSTREAM_FILL_H
#define HAVEN_UPSTREAM_FILL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "ingest/upstream.h"
#include "storage/store.h"

struct http_request;
struct upstream_fill;

/* Starts threads pool threads; each makes its own client from cfg (which
 * is copied, strings included). */
int upstream_fill_new(struct upstream_fill **out, struct store *store,
		      const struct upstream_config *cfg, int threads,
		      struct err *err);
/* The config the pool's clients use (borrowed from f). */
const struct upstream_config *upstream_fill_config(const struct upstream_fill *f);
/* Cuts transfers and joins the pool; queued tasks are dropped after their
 * cancel function runs. */
void upstream_fill_stop(struct upstream_fill *f);
void upstream_fill_free(struct upstream_fill *f);

/* A task for the pool: run gets the thread's upstream client; cancel (may
 * be NULL) runs instead when the pool stops before the task started. */
typedef void (*upstream_task_fn)(struct upstream *up, void *arg);
int upstream_fill_submit(struct upstream_fill *f, upstream_task_fn run,
			 upstream_task_fn cancel, void *arg, struct err *err);

/* One client's share of an object. */
struct fill_want {
	const char *sha256;	/* the LFS object, as the pointer names it */
	uint64_t size;		/* its size, from the pointer */
	const char *path;	/* upstream request path that returns it */
	const char *token;	/* for the upstream; NULL: anonymous */
	const char *repo_id;	/* claims the object once kept (lfs_claims.h) */
	int status;		/* 200 or 206, headers already added */
	uint64_t offset, length;	/* the slice this client gets */
};

/* Answers req with the slice, transferring the object from the upstream
 * unless a transfer for it is running (then it shares it) or it is in the
 * store by now (then it is sent from there). The answer's head goes out
 * when the first wanted byte is there; an upstream failure before that
 * is answered as an error (502/504), after it by closing the connection.
 * True when req was answered before the call returned (done is then not
 * called); false when the answer comes later: done(arg) then runs on
 * req's worker thread once req is answered (or, at shutdown, from
 * upstream_fill_free). */
bool upstream_fill_serve(struct upstream_fill *f, struct http_request *req,
			 const struct fill_want *want, void (*done)(void *),
			 void *arg);

/* Process-wide counters for /metrics: transfers begun, body bytes
 * received from the upstream for them, transfers that failed. */
uint64_t upstream_fill_transfers(void);
uint64_t upstream_fill_bytes(void);
uint64_t upstream_fill_failures(void);

#endif
