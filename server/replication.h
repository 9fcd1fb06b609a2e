/*
 * replication.h: the primary's side of read replicas (docs/replication.md).
 * With a replication token set, the primary serves its change log
 * (storage/changes.h) to replicas that present that token, and holds the
 * answer of every write until each replica that is keeping up has applied
 * it (bounded: a replica that falls behind is not waited for until it
 * has caught up). A client that wrote through any node therefore reads
 * its write on every node.
 */
#ifndef HAVEN_REPLICATION_H
#define HAVEN_REPLICATION_H

#include <stdbool.h>

#include "common/err.h"
#include "server/router.h"

struct evbuffer;
struct replication;

/* How long a write's answer waits for replicas, at most. */
#define REPLICATION_WAIT_MS 2000

int replication_new(struct replication **out, struct store *store,
		    const char *token, struct err *err);
/* Drops parked feed requests and held answers' bookkeeping; call after
 * the workers stopped and before the HTTP server is freed. NULL ok. */
void replication_free(struct replication *r);

/* True when token is the replication token (compared in constant time). */
bool replication_token_is(const struct replication *r, const char *token);

/* Holds the answer of the write that call is about to make (router.c):
 * once it is complete, the repository's refs are recorded and the answer
 * waits for the replicas. */
void replication_hold_write(struct hub_call *call);

/* GET /api/replication/changes?since=N&wait=S, .../snapshot and
 * .../secret, and POST .../leave and .../downloads (SELF_AUTH: the
 * replication token). */
void route_replication_changes(struct hub_call *call);
void route_replication_snapshot(struct hub_call *call);
void route_replication_secret(struct hub_call *call);
void route_replication_leave(struct hub_call *call);
void route_replication_downloads(struct hub_call *call);

/* Prometheus lines: the log's head and each replica's place. */
void replication_metrics(struct replication *r, struct evbuffer *out);

#endif
