/*
 * app.h: what every request handler shares: the store and the settings
 * the server was started with. Read-only after start, so every worker
 * thread may use it without locks.
 */
#ifndef HAVEN_APP_H
#define HAVEN_APP_H

#include <stdbool.h>

#include "storage/store.h"

struct download_count;
struct pull_through;
struct blob_send;
struct replication;
struct replica;

#define APP_SECRET_LEN 32

struct app {
	struct store *store;
	char public_url[1024];	/* no trailing slash */
	bool require_auth;	/* refuse anonymous requests */
	/* Signs self-authorising URLs (LFS uploads); kept in the data dir. */
	unsigned char secret[APP_SECRET_LEN];
	/* Download counters; thread-safe, NULL outside the server. */
	struct download_count *downloads;
	/* The upstream Hub for pull-through; NULL when not configured. */
	struct pull_through *pull;
	/* Streams S3 blobs; NULL when blobs are local files. */
	struct blob_send *blob_send;
	bool blob_redirect;	/* S3: /resolve of LFS files answers 302 */
	/* A primary's change feed for read replicas (server/replication.h);
	 * NULL without a replication token, and on a replica. */
	struct replication *replication;
	/* Set on a read replica (server/replica.h): writes are forwarded. */
	struct replica *replica;
};

#endif
