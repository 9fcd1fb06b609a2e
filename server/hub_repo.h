/*
 * hub_repo.h: the steps every repository route starts with: find the
 * repository, open its git directory, resolve the revision, load the
 * commit's listing; each failure is already the Hub's error.
 *
 * Git handles and listings come from a small per-thread cache (a listing
 * is immutable once built, a git handle re-reads refs on every lookup),
 * so a hot HEAD /resolve costs one LMDB read and one ref lookup. What
 * hub_repo hands out is borrowed until hub_repo_close() or the next
 * hub_repo_open() on the same thread.
 */
#ifndef HAVEN_HUB_REPO_H
#define HAVEN_HUB_REPO_H

#include <git2.h>

#include "server/router.h"
#include "storage/gitrepo.h"
#include "storage/listing.h"

struct hub_repo {
	struct repo_record rec;
	git_repository *git;	/* borrowed from the thread cache */
	git_oid commit;
	char commit_hex[GIT_HEX_LEN + 1];
	char ref[256];		/* full ref name the revision named, or "" */
	struct listing *listing;	/* borrowed; NULL until loaded */
};

/* Finds call->repo of call->type, checks that the caller may see it
 * (RepoNotFound otherwise, as for a missing one) and opens git. With rev
 * not NULL, also resolves it ("" means the default branch). */
int hub_repo_open(struct hub_repo *r, struct hub_call *call, const char *rev,
		  struct err *err);

/* Loads the listing of r->commit. */
int hub_repo_listing(struct hub_repo *r, struct hub_call *call,
		     struct err *err);

void hub_repo_close(struct hub_repo *r);

/* Frees this thread's cache (also done at thread exit). */
void hub_repo_cache_flush(void);

#endif
