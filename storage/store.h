/*
 * store.h: one deployment's data directory and the repositories in it.
 *
 *   <data>/meta/               LMDB (meta.h, meta_keys.h)
 *   <data>/git/<id>.git        bare git repositories, named by stable id
 *   <data>/blobs/sha256/...    LFS objects (blob.h)
 *   <data>/tmp/                write-then-rename, same filesystem
 *
 * The store handle is shared by all threads; git handles are opened per
 * use with store_repo_git() and stay in the thread that opened them.
 */
#ifndef HAVEN_STORE_H
#define HAVEN_STORE_H

#include <stdbool.h>
#include <git2.h>

#include "common/err.h"
#include "storage/blob.h"
#include "storage/meta.h"

struct store {
	char data_dir[4096];
	struct meta *meta;
	struct blob_store *blobs;
};

#define STORE_DEFAULT_MAP_SIZE ((size_t)4 << 30)

/* Opens the data directory, creating its layout when create is true.
 * ERR_NOTFOUND when it does not exist and create is false. */
int store_open(struct store **out, const char *data_dir, bool create,
	       struct err *err);
void store_free(struct store *store);

/* True for "model", "dataset" and "space". */
bool repo_type_valid(const char *type);

/* Checks "namespace/name" the way the Hub and its clients do: two parts of
 * ASCII letters, digits, '-', '_' and '.', not starting or ending with '-'
 * or '.', no "--" or "..", not ending in ".git", name at most 96 chars. */
bool repo_name_valid(const char *name);

/* Finds a repository (case-insensitive); ERR_NOREPO when absent. */
int repo_lookup(struct store *store, const char *type, const char *name,
		struct repo_record *out, struct err *err);

/* Creates a repository the way the Hub does: a bare git repository whose
 * main branch holds one commit by "system" titled "initial commit" that
 * adds the default .gitattributes. ERR_EXISTS if it exists, ERR_INVALID
 * for a bad type or name. */
int repo_create(struct store *store, const char *type, const char *name,
		struct repo_record *out, struct err *err);

/* Deletes a repository: its record (and redirects) first, then its git
 * directory, renamed into tmp/ and removed. LFS objects stay for gc.
 * ERR_NOREPO when absent. */
int repo_delete(struct store *store, const char *type, const char *name,
		struct err *err);

/* Renames a repository within its type. It keeps its id and git
 * directory; the old name redirects to it (repo_lookup_moved).
 * ERR_NOREPO when from is absent, ERR_INVALID for a bad new name,
 * ERR_EXISTS ("A model repository called X already exists") when to is
 * taken. out (may be NULL) gets the moved record. */
int repo_move(struct store *store, const char *type, const char *from,
	      const char *to, struct repo_record *out, struct err *err);

/* The repository an old name was moved to; ERR_NOREPO when none. */
int repo_lookup_moved(struct store *store, const char *type, const char *name,
		      struct repo_record *out, struct err *err);

/* repo_create, private from the start when private is set. */
int repo_create_ex(struct store *store, const char *type, const char *name,
		   bool private, struct repo_record *out, struct err *err);

/* A repository with no commit at all, for content that arrives with its
 * own history (a mirror keeps the upstream's commit ids). */
int repo_create_empty(struct store *store, const char *type, const char *name,
		      bool private, struct repo_record *out, struct err *err);

/* Path of a repository's bare git directory. */
void repo_git_path(const struct store *store, const struct repo_record *rec,
		   char *out, size_t size);

/* Takes a repository's git directory out of sight (one rename into tmp/)
 * and removes it; for a record that is already gone. */
void repo_remove_git_dir(struct store *store, const struct repo_record *rec);

/* Opens a repository's git directory. */
int repo_open_git(git_repository **out, const struct store *store,
		  const struct repo_record *rec, struct err *err);

/* The default .gitattributes of a new repository of that type. */
const char *repo_default_gitattributes(const char *type);

#endif
