/*
 * git_fetch.h: a smart-HTTP git fetch from another Hub or Haven through
 * libgit2, for mirrors and read replicas: the token as the password of
 * Basic credentials (as the Hub takes it), a CA bundle, proxies from the
 * environment, and retries of failures that may pass.
 */
#ifndef HAVEN_GIT_FETCH_H
#define HAVEN_GIT_FETCH_H

#include <git2.h>

#include "common/err.h"

struct git_fetch_options {
	const char *token;	/* NULL: anonymous */
	const char *ca_bundle;	/* NULL or "": the system's */
	int max_retries;
	bool prune;		/* drop local refs the remote no longer has */
};

/* Fetches url into repo with the given refspecs; ERR_UPSTREAM with git's
 * message when it fails. */
int git_fetch_refs(git_repository *repo, const char *url,
		   char *const *refspecs, size_t nspecs,
		   const struct git_fetch_options *opt, struct err *err);

/* "" for models, "datasets/" and "spaces/" otherwise: the Hub's URL
 * prefix for git and resolve. */
const char *git_fetch_url_prefix(const char *type);

#endif
