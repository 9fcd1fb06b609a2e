/*
 * meta.h: the LMDB metadata environment. The key layout is in
 * meta_keys.h. Transactions are short and one per thread at a time;
 * values returned through MDB are copied before the transaction ends.
 */
#ifndef HAVEN_META_H
#define HAVEN_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct meta;
struct meta_txn;

#define REPO_ID_LEN 32
#define REPO_NAME_MAX 200

/* A repository's record. name is "namespace/name" in its original case. */
struct repo_record {
	char id[REPO_ID_LEN + 1];
	char type[8];	/* "model", "dataset" or "space" */
	char name[REPO_NAME_MAX];
	int64_t created;	/* unix seconds */
	bool private;
	char gated[8];	/* "" (not gated), "auto" or "manual" */
};

/* Opens or creates <data>/meta with the given map size in bytes. */
int meta_open(struct meta **out, const char *data_dir, size_t map_size,
	      struct err *err);
void meta_free(struct meta *meta);

int meta_txn_begin(struct meta_txn **out, struct meta *meta, bool write,
		   struct err *err);
/* Commits and ends the transaction (also on failure). */
int meta_txn_commit(struct meta_txn *txn, struct err *err);
/* Ends the transaction without a change. NULL is a no-op. */
void meta_txn_abort(struct meta_txn *txn);
/* Keeps a write transaction out of the change log (storage/changes.h):
 * for a replica applying its primary's changes. */
void meta_txn_unlogged(struct meta_txn *txn);

/* ERR_NOREPO when absent. name is compared case-insensitively; type is
 * one of the lower-case type names. */
int meta_repo_get(struct meta_txn *txn, const char *type, const char *name,
		  struct repo_record *out, struct err *err);
/* ERR_NOREPO when absent. */
int meta_repo_get_by_id(struct meta_txn *txn, const char *id,
			struct repo_record *out, struct err *err);
/* Inserts a new record; ERR_EXISTS if one of that name exists. */
int meta_repo_insert(struct meta_txn *txn, const struct repo_record *rec,
		     struct err *err);

/* Rewrites an existing record (settings: private, gated); ERR_NOREPO when
 * there is none under its type and name. */
int meta_repo_update(struct meta_txn *txn, const struct repo_record *rec,
		     struct err *err);

/* Deletes a record, its id entry and the redirects that lead to it. */
int meta_repo_delete(struct meta_txn *txn, const struct repo_record *rec,
		     struct err *err);
/* Renames a record (same id, so the same git directory) and leaves a
 * redirect from the old name; ERR_EXISTS when new_name is taken. */
int meta_repo_rename(struct meta_txn *txn, const struct repo_record *rec,
		     const char *new_name, struct err *err);
/* The record an old name was moved to; ERR_NOREPO when none. */
int meta_redirect_get(struct meta_txn *txn, const char *type,
		      const char *name, struct repo_record *out,
		      struct err *err);

/* Visits repos of one type (all types when type is NULL) in key order.
 * fn returning non-zero stops the walk and is returned. */
typedef int (*meta_repo_fn)(const struct repo_record *rec, void *arg);
int meta_repo_foreach(struct meta_txn *txn, const char *type,
		      meta_repo_fn fn, void *arg, struct err *err);

/* Cached per-commit listings (see meta_keys.h). get returns a malloc'd
 * copy of the JSON text or ERR_NOTFOUND. */
int meta_listing_get(struct meta_txn *txn, const char *commit_hex,
		     char **json_out, struct err *err);
int meta_listing_put(struct meta_txn *txn, const char *commit_hex,
		     const char *json, struct err *err);

/* The account and claim databases (layout in meta_keys.h), reached through plain
 * key/value calls so that storage/accounts.c needs no LMDB. Keys are text
 * (the version byte is added here), values JSON text. */
enum meta_kv { META_KV_ACCOUNTS, META_KV_MEMBERS, META_KV_TOKENS,
	       META_KV_ACCESS, META_KV_LFS_CLAIMS,
	       META_KV_DOWNLOADS, META_KV_LIKES, META_KV_LINEAGE_UP,
	       META_KV_LINEAGE_DOWN, META_KV_CARD_ERRORS, META_KV_USER_LIKES,
	       META_KV_MIRRORS, META_KV_GIT_REFS,
	       META_KV_COUNT };
/* *json_out is a malloc'd copy; ERR_NOTFOUND when absent. */
int meta_kv_get(struct meta_txn *txn, enum meta_kv db, const char *key,
		char **json_out, struct err *err);
/* ERR_EXISTS when create_only is set and the key is taken. */
int meta_kv_put(struct meta_txn *txn, enum meta_kv db, const char *key,
		const char *json, bool create_only, struct err *err);
/* Deletes a record; absent is not an error. */
int meta_kv_del(struct meta_txn *txn, enum meta_kv db, const char *key,
		struct err *err);
/* Visits the records whose key starts with prefix, in key order; fn's
 * non-zero return stops the walk and is returned. */
typedef int (*meta_kv_fn)(const char *key, const char *json, void *arg);
int meta_kv_foreach(struct meta_txn *txn, enum meta_kv db, const char *prefix,
		    meta_kv_fn fn, void *arg, struct err *err);

/* Environment statistics for fsck and metrics. */
int meta_stat(struct meta *meta, size_t *map_size, size_t *used_bytes,
	      struct err *err);

#endif
