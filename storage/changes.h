/*
 * changes.h: the change log that read replicas follow. Every write
 * transaction on the metadata (every database but the per-commit
 * listings, which a node rebuilds from git) appends one entry, numbered
 * by seq, inside that same transaction. A replica reads the entries after
 * the last one it applied, applies each in one transaction of its own and
 * records the seq there; one that fell out of the kept window, or follows
 * a primary whose log it does not know, starts again from a snapshot.
 * The wire form is documented in docs/replication.md.
 */
#ifndef HAVEN_CHANGES_H
#define HAVEN_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/meta.h"

/* Entries kept: at most this many, none older than CHANGES_KEEP_MS (the
 * download counters alone add one every 2 s, and may be large); a
 * replica further behind loads a snapshot. */
#define CHANGES_KEEP 100000
#define CHANGES_KEEP_MS (3600 * 1000)
#define CHANGES_LOG_ID_LEN 32

/* The newest seq (0 before the first change) and the log's id. */
int changes_head(struct meta *meta, uint64_t *seq,
		 char log_id[CHANGES_LOG_ID_LEN + 1], struct err *err);

/* One frame of the feed: a seq and its entry's bytes. */
typedef int (*changes_frame_fn)(uint64_t seq, const void *entry, size_t len,
				void *arg);
/* Hands fn the entries after since, oldest first, until about max_bytes
 * went out; *last gets the seq of the last one (since when none) and
 * *head the newest. ERR_RANGE when since is before the oldest entry kept
 * or after the newest (a primary restored from an older copy): the reader
 * needs a snapshot. */
int changes_read(struct meta *meta, uint64_t since, size_t max_bytes,
		 changes_frame_fn fn, void *arg, uint64_t *last,
		 uint64_t *head, struct err *err);

/* Writes a snapshot to fd: frames (as changes_read's) of puts of every
 * replicated record, all with the seq the snapshot is at (*seq), read in
 * one transaction. */
int changes_snapshot(struct meta *meta, int fd, uint64_t *seq,
		     struct err *err);

/* Sees each operation changes_apply makes: the database, the key and for
 * a put the value (both with their version byte). */
typedef void (*changes_op_fn)(const char *db, const void *key, size_t klen,
			      const void *val, size_t vlen, bool put,
			      void *arg);
/* Applies one entry in txn (which should be unlogged); fn may be NULL.
 * ERR_CORRUPT for a malformed entry. */
int changes_apply(struct meta_txn *txn, const void *entry, size_t len,
		  changes_op_fn fn, void *arg, struct err *err);
/* Empties every replicated database, before a snapshot is loaded. */
int changes_clear(struct meta_txn *txn, struct err *err);

/* A replica's place in its primary's log. get: ERR_NOTFOUND when none. */
int changes_applied_get(struct meta_txn *txn,
			char primary_log_id[CHANGES_LOG_ID_LEN + 1],
			uint64_t *seq, struct err *err);
int changes_applied_set(struct meta_txn *txn, const char *primary_log_id,
			uint64_t seq, struct err *err);

/* The replicas a primary knows, kept across its restarts so that its
 * writes wait for them again at once (server/replication.c): when each
 * was last seen, in wall-clock ms. */
int changes_replica_seen(struct meta *meta, const char *id, int64_t wall_ms,
			 struct err *err);
int changes_replica_forget(struct meta *meta, const char *id,
			   struct err *err);
typedef void (*changes_replica_fn)(const char *id, int64_t wall_ms,
				   void *arg);
int changes_replicas(struct meta *meta, changes_replica_fn fn, void *arg,
		     struct err *err);

#endif
