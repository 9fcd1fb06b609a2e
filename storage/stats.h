/*
 * stats.h: download counters and likes kept in LMDB (layout in
 * meta_keys.h), and the rule that decides which file requests are
 * downloads. Counters are per repository per UTC day plus an all-time
 * total; the server adds to them in batches (server/download_count.h).
 */
#ifndef HAVEN_STATS_H
#define HAVEN_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"
#include "storage/meta.h"

#define STATS_DAY_LEN 10	/* "YYYY-MM-DD" */

/* True when a successful /resolve of path in a repository of type
 * ("model", "dataset", "space") counts as a download, as the Hub counts:
 * models only through their "query files" (config.json, config.yaml,
 * hyperparams.yaml, params.json, meta.yaml at the top), every *.gguf, and
 * for diffusers repositories (diffusers: model_index.json present)
 * model_index.json, modular_model_index.json and top-level
 * *.safetensors, *.ckpt and *.bin; datasets every file (the server then keeps
 * one per client and five minutes); spaces nothing. */
bool stats_counts_download(const char *type, const char *path, bool diffusers);

/* The UTC day of t as "YYYY-MM-DD". */
void stats_day(char out[STATS_DAY_LEN + 1], time_t t);

/* Adds n to the day's counter and to the all-time total of a repo. */
int stats_add(struct meta_txn *txn, const char *repo_id, const char *day,
	      uint64_t n, struct err *err);

/* Downloads of the last `days` days up to and including now's day, and
 * all time. Absent counters read as 0. */
int stats_downloads(struct meta_txn *txn, const char *repo_id, time_t now,
		    int days, uint64_t *recent, uint64_t *all_time,
		    struct err *err);

/* Visits every per-day counter (not the totals), by repo id then day. */
typedef int (*stats_day_fn)(const char *repo_id, const char *day, uint64_t n,
			    void *arg);
int stats_foreach_day(struct meta_txn *txn, stats_day_fn fn, void *arg,
		      struct err *err);

/* Records (on) or removes (!on) the like of user on a repo. Idempotent. */
int stats_like_set(struct meta_txn *txn, const char *repo_id,
		   const char *user, bool on, struct err *err);
/* The repositories user liked, as fn(repo id, time of the like), in
 * repo id order; fn's non-zero return stops the walk and is returned. */
typedef int (*stats_user_like_fn)(const char *repo_id, time_t when,
				  void *arg);
int stats_user_likes(struct meta_txn *txn, const char *user,
		     stats_user_like_fn fn, void *arg, struct err *err);

/* Removes every download counter and like of a repository (on delete:
 * a repository created later under the same name starts from zero). */
int stats_remove(struct meta_txn *txn, const char *repo_id, struct err *err);

/* The number of likes of a repo; those since `since` in *recent (may be
 * NULL). */
int stats_likes(struct meta_txn *txn, const char *repo_id, time_t since,
		uint64_t *count, uint64_t *recent, struct err *err);

/* What repo info and listings show of a repository. trending is
 * downloads of the last STATS_TRENDING_DAYS days plus
 * STATS_TRENDING_LIKE_WEIGHT for each like given in that time. */
#define STATS_RECENT_DAYS 30
#define STATS_TRENDING_DAYS 7
#define STATS_TRENDING_LIKE_WEIGHT 10
struct stats_counts {
	uint64_t downloads;	/* last STATS_RECENT_DAYS days */
	uint64_t downloads_all_time;
	uint64_t likes;
	uint64_t trending;
};
/* Reads them in one read transaction of its own. */
int stats_counts_get(struct meta *meta, const char *repo_id, time_t now,
		     struct stats_counts *out, struct err *err);

#endif
