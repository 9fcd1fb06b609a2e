/*
 * replica.h: a read replica (`haven serve --replica-of URL`,
 * docs/replication.md). One thread follows the primary's change log:
 * it applies each batch of entries to this node's LMDB in one
 * transaction that also records how far it got, fetches the git
 * repositories whose refs moved, and only then asks for more, which
 * tells the primary what it has applied. A replica that is new, follows
 * another primary, or fell out of the log's window loads a snapshot
 * first. Reads are served here; writes go to the primary (server/
 * forward.h), and are refused with 503 while it cannot be reached.
 */
#ifndef HAVEN_REPLICA_H
#define HAVEN_REPLICA_H

#include "common/err.h"
#include "server/app.h"
#include "server/config.h"
#include "server/router.h"

struct evbuffer;
struct replica;

/* Takes the primary's URL-signing secret into <data>/secret, so that
 * signed URLs verify on every node. A primary that cannot be reached
 * leaves the secret this node had; a refused token fails. */
int replica_take_secret(const struct serve_config *cfg, struct err *err);

/* Starts following the primary; app->store must be open. */
int replica_start(struct replica **out, struct app *app,
		  const struct serve_config *cfg, struct err *err);
/* Stops the thread (before the HTTP server is freed: forwarded requests
 * hold events on its workers). NULL ok. */
void replica_stop(struct replica *r);
void replica_free(struct replica *r);

/* Sends call's request to the primary and its answer back (router.c,
 * for writes). Sets call->async. */
void replica_forward(struct hub_call *call);

/* Prometheus lines: lag in seconds and in changes, the primary's state. */
void replica_metrics(struct replica *r, struct evbuffer *out);

#endif
