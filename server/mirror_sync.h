/*
 * mirror_sync.h: keeps mirrored repositories current while the server runs
 * (`haven serve --sync-interval DURATION`). One background thread runs
 * `haven mirror` for every repository whose mirror record says "mirror",
 * with the revisions and globs it was first mirrored with, soon after the
 * start and then once per interval.
 */
#ifndef HAVEN_MIRROR_SYNC_H
#define HAVEN_MIRROR_SYNC_H

#include "common/err.h"
#include "ingest/upstream.h"
#include "storage/store.h"

struct mirror_sync;

/* base gives the token and CA bundle; each record names its upstream. */
int mirror_sync_start(struct mirror_sync **out, struct store *store,
		      long interval_s, const struct upstream_config *base,
		      struct err *err);

/* Stops the thread (waiting for the repository being synced, if any). */
void mirror_sync_stop(struct mirror_sync *ms);

#endif
