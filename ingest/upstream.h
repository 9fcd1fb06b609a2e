/*
 * upstream.h: the client for an upstream Hub (huggingface.co or any
 * Hub-compatible server, another Haven included), on libcurl.
 *
 * One struct upstream per thread: it owns a curl handle whose connections
 * are reused between calls. Every call takes the token to send; NULL means
 * the configured deployment token (which may itself be NULL, for anonymous
 * access). Proxies come from the environment (HTTPS_PROXY, NO_PROXY) as
 * libcurl reads them. Failures that may pass (connection errors, 429, 5xx)
 * are retried with exponential backoff that honours Retry-After and the
 * Hub's RateLimit header; the final failure maps onto err codes:
 *   401        -> ERR_AUTH        403 gated -> ERR_GATED, else ERR_FORBIDDEN
 *   404 repo   -> ERR_NOREPO      404 revision/file -> ERR_NOREV / ERR_NOENTRY
 *   other 4xx  -> ERR_UPSTREAM    5xx, 429 after retries -> ERR_UPSTREAM
 *   unreachable or too slow        -> ERR_TIMEOUT
 */
#ifndef HAVEN_UPSTREAM_H
#define HAVEN_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "common/err.h"

#define UPSTREAM_DEFAULT_URL "https://huggingface.co"

struct upstream_config {
	const char *url;	/* base URL, no trailing slash needed */
	const char *token;	/* deployment token; NULL for none */
	const char *ca_bundle;	/* PEM file for TLS; NULL for the system's */
	int max_retries;	/* 0 means the default (5), < 0 none */
	long connect_timeout_s;	/* 0 means the default (15 s) */
	long stall_timeout_s;	/* a transfer slower than 1 KiB/s this long fails; 0: 60 s */
	uint64_t max_rate;	/* bytes per second per transfer; 0: no limit */
};

struct upstream;

int upstream_new(struct upstream **out, const struct upstream_config *cfg,
		 struct err *err);
void upstream_free(struct upstream *up);
const char *upstream_base_url(const struct upstream *up);
/* The retries this client makes (git fetches use the same number). */
int upstream_max_retries(const struct upstream *up);

/* What a response said, for the headers the Hub's clients read. */
struct upstream_reply {
	long status;
	uint64_t size;		/* whole file size (Content-Range or X-Linked-Size) */
	char commit[41];	/* X-Repo-Commit, "" when absent */
	char etag[80];		/* X-Linked-Etag or ETag, unquoted */
	char error_code[32];	/* X-Error-Code, e.g. "GatedRepo" */
	char link_next[1024];	/* Link: <…>; rel="next" as a path, "" if none */
};

/* GET path (e.g. "/api/models/ns/name/revision/main") and parse the JSON
 * body into *out (caller decrefs). */
int upstream_get_json(struct upstream *up, const char *path,
		      const char *token, json_t **out,
		      struct upstream_reply *reply, struct err *err);

/* HEAD path without following redirects' bodies: fills reply (status,
 * size, commit, etag) the way huggingface_hub's file metadata call does. */
int upstream_head(struct upstream *up, const char *path, const char *token,
		  struct upstream_reply *reply, struct err *err);

/* Receives body bytes in order. A non-zero return aborts the transfer
 * (the call then fails with the err the sink set, or ERR_FAIL). */
typedef int (*upstream_sink_fn)(const void *data, size_t len, void *arg);

/* GET path following redirects, bytes [offset, offset+length) (length 0:
 * to the end), into sink. Retries resume from the last byte received, so
 * the sink sees every byte exactly once. */
int upstream_download(struct upstream *up, const char *path,
		      const char *token, uint64_t offset, uint64_t length,
		      upstream_sink_fn sink, void *arg,
		      struct upstream_reply *reply, struct err *err);

/* URL-encodes a repo path for use in a request path ("/" kept). */
int upstream_path_escape(const char *in, char *out, size_t size);

#endif
