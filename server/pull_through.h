/*
 * pull_through.h: `haven serve --upstream URL`. A request for a
 * repository or revision Haven does not hold is fetched from the upstream
 * Hub once (git history and refs with the upstream's commit ids, through
 * mirror_repo with history_only) and kept; LFS objects come on first
 * download through the fill engine (upstream_fill.h), streamed to every
 * waiting client while they fill.
 *
 * Access to pulled-through repositories follows the upstream, not
 * Haven's accounts: a private or gated upstream repository is served only
 * to clients whose own token the upstream accepts for it (asked once and
 * remembered briefly per token hash and repository). A client token
 * Haven does not know is taken for an upstream token for these
 * repositories; Haven's own tokens never leave Haven. The deployment
 * token is used only for repositories the upstream shows to anyone.
 *
 * Everything that waits on the upstream runs on the engine's threads;
 * the request is parked (call->async) and resumed on its worker thread.
 */
#ifndef HAVEN_PULL_THROUGH_H
#define HAVEN_PULL_THROUGH_H

#include <stdint.h>

#include "common/err.h"
#include "server/router.h"
#include "storage/listing.h"

struct hub_repo;
struct pull_through;

struct pull_through_config {
	const char *url;	/* the upstream Hub */
	const char *token;	/* deployment token, NULL for none */
	const char *ca_bundle;	/* NULL: the system's */
	int threads;		/* upstream transfers at once; 0: 8 */
	long refresh_s;		/* seconds between history refreshes */
};

int pull_through_new(struct pull_through **out, struct store *store,
		     const struct pull_through_config *cfg, struct err *err);
/* Cuts transfers and joins the threads (the HTTP workers have stopped). */
void pull_through_stop(struct pull_through *pt);
/* Frees what is left, parked requests included. NULL is a no-op. */
void pull_through_free(struct pull_through *pt);

typedef void (*pull_through_handler_fn)(struct hub_call *call);

/* Runs handler for call once what it needs is here: an unknown repository
 * fetched, an unknown revision refreshed (at most once per refresh_s per
 * repository), the upstream's word on the
 * caller's token. Answers errors itself. Without an upstream (app->pull
 * NULL) or for routes without a repository it calls handler at once.
 * May park the call (call->async); it is then freed after the handler. */
void pull_through_dispatch(struct hub_call *call,
			   pull_through_handler_fn handler);

/* For route_file: answers the LFS file e of r whose object is not in the
 * blob store, for status/offset/length chosen from the request (headers
 * already added). False when r is not a pull-through repository (the
 * caller then answers as it would have); true when the call was answered
 * or taken over (call->async). */
bool pull_through_serve_lfs(struct hub_call *call, const struct hub_repo *r,
			    const struct listing_entry *e, int status,
			    uint64_t offset, uint64_t length);

#endif
