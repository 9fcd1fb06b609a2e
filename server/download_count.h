/*
 * download_count.h: counts downloads in memory and writes them to LMDB
 * (storage/stats.h) in one write transaction every few seconds, from a
 * small thread of its own, and once more when stopped. A request costs a
 * short mutex hold, never a write transaction; a crash loses at most the
 * last flush interval.
 */
#ifndef HAVEN_DOWNLOAD_COUNT_H
#define HAVEN_DOWNLOAD_COUNT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/meta.h"

#define DOWNLOAD_FLUSH_S 2
#define DOWNLOAD_DATASET_WINDOW_S 300

struct download_count;

/* Starts the flush thread; call with the server's signals blocked. */
int download_count_start(struct download_count **out, struct meta *meta,
			 struct err *err);
/* Flushes what is pending, stops the thread and frees. NULL is a no-op. */
void download_count_stop(struct download_count *dc);

/* Records a successful /resolve of path in rec from peer (an address as
 * text) when stats_counts_download() says it counts; datasets count once
 * per peer and repository per DOWNLOAD_DATASET_WINDOW_S. dc may be NULL. */
void download_count_hit(struct download_count *dc,
			const struct repo_record *rec, const char *path,
			bool diffusers, const char *peer);

/* Downloads counted since start (for /metrics). */
uint64_t download_count_counted(struct download_count *dc);

/* Writes what is pending now. */
int download_count_flush(struct download_count *dc, struct err *err);

/* Where flushed counts go instead of this node's LMDB: a read replica
 * sends them to its primary (server/replica.c). text is lines of
 * "<repo id> <day> <n>\n"; fn returns 0 once they are taken, else the
 * counts are kept for the next flush. Set before the first hit. */
typedef int (*download_sink_fn)(const char *text, size_t len, void *arg,
				struct err *err);
void download_count_send_to(struct download_count *dc, download_sink_fn fn,
			    void *arg);

/* Adds counts in that text form to meta (a primary taking a replica's);
 * ERR_INVALID for a malformed line, with nothing written. */
int download_count_apply(struct meta *meta, const char *text, size_t len,
			 struct err *err);

#endif
