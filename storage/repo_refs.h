/*
 * repo_refs.h: every branch and tag of a repository, recorded in LMDB
 * ("git_refs", meta_keys.h) after they moved. Git stays the source of
 * truth for serving; the record is what puts a ref move into the change
 * log, so that a read replica knows which repository to fetch and where
 * its refs should end up.
 */
#ifndef HAVEN_REPO_REFS_H
#define HAVEN_REPO_REFS_H

#include <git2.h>
#include <jansson.h>

#include "common/err.h"
#include "storage/meta.h"
#include "storage/store.h"

/* Records git's refs of repo_id in txn, when they differ from the record. */
int repo_refs_put(struct meta_txn *txn, const char *repo_id,
		  git_repository *git, struct err *err);

/* The same in a transaction of its own, for code that moved refs of rec
 * (a push, a commit, a mirror or bundle import). A repository deleted
 * meanwhile is left alone. */
int repo_refs_record(struct store *store, const struct repo_record *rec,
		     struct err *err);

/* git's refs of a repository as the record holds them: an object of
 * ref name -> 40-hex. */
json_t *repo_refs_of_git(git_repository *git);

#endif
