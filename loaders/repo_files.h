/*
 * repo_files.h: the files of one revision of a model repository in a Haven
 * registry, and a local path to read each one from. Two ways to get there:
 *
 *   --data DIR      the registry's own data folder on this host: the
 *                   listing comes from storage/ and LFS files are read
 *                   straight from the blob store;
 *   --endpoint URL  any Haven (or Hub-compatible) server: the listing comes
 *                   from /api/models/{repo}/tree/{commit}, and LFS files are
 *                   downloaded into a cache folder with parallel ranged GETs
 *                   whose pieces are hashed in order as they arrive, so the
 *                   sha256 is checked with no second pass over the bytes.
 */
#ifndef HAVEN_REPO_FILES_H
#define HAVEN_REPO_FILES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

struct repo_file {
	char *path;		/* repo-relative */
	uint64_t size;
	bool lfs;
	char sha256[65];	/* the LFS oid, when lfs */
	char *local;		/* readable file, once repo_files_fetch ran */
	bool hashed;		/* the fetch already checked sha256 */
	double fetch_seconds;
};

struct repo_files {
	char commit[41];
	struct repo_file *v;
	size_t count;
	struct repo_files_src *src;	/* private */
};

int repo_files_open_data(struct repo_files **out, const char *data_dir,
			 const char *repo, const char *rev, struct err *err);
/* token may be NULL; cache_dir is created when missing. */
int repo_files_open_http(struct repo_files **out, const char *endpoint,
			 const char *token, const char *repo, const char *rev,
			 const char *cache_dir, int parallel, struct err *err);
void repo_files_free(struct repo_files *rf);

/* The entry for path, or NULL. */
struct repo_file *repo_files_find(struct repo_files *rf, const char *path);

/* Makes f->local readable. For --data that is the blob's own path (read
 * and hashed later by the load pass); over HTTP the file is downloaded and
 * hashed now, and a mismatch is ERR_CORRUPT with both digests. */
int repo_files_fetch(struct repo_files *rf, struct repo_file *f,
		     struct err *err);

/* A small file's bytes (configs, index JSON), at most max bytes. */
int repo_files_read_small(struct repo_files *rf, const struct repo_file *f,
			  char **out, size_t *len, size_t max,
			  struct err *err);

#endif
