/*
 * mirror_state.h: where a mirrored or pulled-through repository came from
 * and how its last sync went, one record per repository id in LMDB
 * (META_DB_MIRRORS, layout in meta_keys.h).
 */
#ifndef HAVEN_MIRROR_STATE_H
#define HAVEN_MIRROR_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/meta.h"

#define MIRROR_MAX_GLOBS 16
#define MIRROR_MAX_REVS 16

enum mirror_mode { MIRROR_MODE_MIRROR, MIRROR_MODE_PULL_THROUGH };

struct mirror_state {
	char repo_id[REPO_ID_LEN + 1];
	char type[8];
	char name[REPO_NAME_MAX];
	char upstream[512];		/* base URL */
	enum mirror_mode mode;
	bool upstream_private;		/* upstream needs the client's token */
	char upstream_gated[8];		/* "", "auto" or "manual" */
	char revisions[MIRROR_MAX_REVS][256];	/* empty: all refs */
	size_t nrevisions;
	char include[MIRROR_MAX_GLOBS][256];
	size_t ninclude;
	char exclude[MIRROR_MAX_GLOBS][256];
	size_t nexclude;
	int64_t last_attempt;		/* unix seconds, 0: never */
	int64_t last_success;
	char status[16];		/* "ok", "running", "failed" */
	char error[256];		/* the last failure, "" when none */
	uint64_t bytes_total;		/* bytes fetched over all syncs */
};

/* ERR_NOTFOUND when the repository is not mirrored. */
int mirror_state_get(struct meta *meta, const char *repo_id,
		     struct mirror_state *out, struct err *err);
int mirror_state_put(struct meta *meta, const struct mirror_state *st,
		     struct err *err);
int mirror_state_del(struct meta *meta, const char *repo_id,
		     struct err *err);

typedef int (*mirror_state_fn)(const struct mirror_state *st, void *arg);
int mirror_state_foreach(struct meta *meta, mirror_state_fn fn, void *arg,
			 struct err *err);

#endif
