/*
 * meta_internal.h: the LMDB handles behind struct meta and struct
 * meta_txn, shared by meta.c (the records) and changes.c (the change log
 * that read replicas follow). Nothing outside storage/ includes it.
 */
#ifndef HAVEN_META_INTERNAL_H
#define HAVEN_META_INTERNAL_H

#include <lmdb.h>

#include "storage/meta.h"

struct meta {
	MDB_env *env;
	MDB_dbi repos;
	MDB_dbi repo_ids;
	MDB_dbi listings;
	MDB_dbi redirects;	/* old repo key -> id, left by a move */
	MDB_dbi kv[META_KV_COUNT];	/* account databases, by enum meta_kv */
	MDB_dbi changes;	/* seq -> one write transaction's changes */
	MDB_dbi replication;	/* this node's own state; never logged */
};

/* The changes a write transaction made, in the order it made them,
 * encoded as changes.c writes them to the log. */
struct change_ops {
	unsigned char *data;
	size_t len, cap;
	uint32_t count;
	bool failed;		/* out of memory: the commit fails */
};

struct meta_txn {
	struct meta *meta;
	MDB_txn *txn;
	bool write;
	bool unlogged;		/* a replica applying the primary's changes */
	struct change_ops ops;
};

int meta_mdb_fail(struct err *err, int rc, const char *what);

/* The name a database is opened under; NULL for one that is not
 * replicated (listings are rebuilt from git; the log and the node's own
 * state belong to the node). */
const char *meta_db_name(const struct meta *meta, MDB_dbi dbi);
/* The handle of a replicated database by name; -1 when unknown. */
int meta_db_by_name(const struct meta *meta, const char *name, size_t len,
		    MDB_dbi *out);
/* Every replicated database, for snapshots. */
size_t meta_db_all(const struct meta *meta, MDB_dbi *out, size_t max);

/* changes.c: records one put or delete of the transaction... */
void changes_note(struct meta_txn *txn, MDB_dbi dbi, char kind,
		  const MDB_val *key, const void *val, size_t vlen);
/* ... and appends them as one log entry just before the commit. */
int changes_append(struct meta_txn *txn, struct err *err);
/* Opens the log's databases and gives the node its log id. */
int changes_open(struct meta *meta, MDB_txn *txn, struct err *err);

#endif
