/*
 * forward.h: hands one HTTP request to another Haven node (the primary of
 * a replica) and brings its answer back, for the writes a read replica
 * cannot make itself.
 *
 * The request body is spooled to a file first (memory stays bounded for
 * bodies of any size, chunked ones too), then a pool of threads sends the
 * request with libcurl; the answer returns to the request's own worker
 * thread with event_active(). Worker threads never wait on the primary.
 *
 * What goes to the primary: the same method, raw path and query; the
 * client's headers minus the hop-by-hop ones (Connection and those it
 * names, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade),
 * minus Expect and the client's Content-Length (the spooled length is
 * sent instead); the client's Host is kept; X-Forwarded-For gets the
 * client's address appended; X-Forwarded-Proto and X-Forwarded-Host are
 * set when absent. Redirects are passed back, not followed.
 *
 * Timeouts: 3 s to connect; no total limit on a forwarded request (a git
 * push may carry gigabytes), but one fails when no byte moved either way
 * for 60 s, or, once the whole body is sent, when the answer has not
 * begun within 10 minutes (the primary may work a while on a big push).
 *
 * Shutdown: forward_free() after the HTTP workers stopped (their loops
 * returned) and before http_server_free(): it aborts transfers in flight
 * and joins the threads, then calls done, on its own thread, for every
 * request still waiting (status 0, ERR_UNAVAILABLE "the server is
 * stopping"): their clients are gone by then (http_server_stop() orphaned
 * them), and answering frees them. So done is called exactly once for
 * every forward_request(), whatever happens.
 */
#ifndef HAVEN_FORWARD_H
#define HAVEN_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct evbuffer;
struct http_request;
struct forward;

/* The largest answer body brought back; a longer one fails (status 0,
 * ERR_UPSTREAM). */
#define FORWARD_BODY_MAX ((size_t)64 << 20)

/* primary: base URL ("http://host:port", no trailing slash); ca_bundle:
 * NULL or "" for the system's CAs, or a PEM file for an https primary;
 * spool_dir: where request bodies are spooled (<data>/tmp); threads:
 * libcurl workers (< 1 means 1). The caller owns *out. */
int forward_new(struct forward **out, const char *primary,
		const char *ca_bundle, const char *spool_dir, int threads,
		struct err *err);
/* Aborts transfers in flight and joins the threads; see Shutdown above.
 * NULL is a no-op. */
void forward_free(struct forward *f);

struct forward_answer {
	int status;              /* the primary's; 0 when it could not be
				  * reached or the exchange failed mid-way */
	struct err err;          /* why, when status is 0: ERR_UNAVAILABLE
				  * for connect failures, timeouts and cut
				  * connections, ERR_UPSTREAM for a body past
				  * FORWARD_BODY_MAX, ERR_FAIL when the
				  * client's body could not be read or
				  * spooled */
	size_t nheaders;
	/* The answer's headers in order, minus hop-by-hop ones and those
	 * http_response_header() refuses (Content-Length, Date, Connection,
	 * Transfer-Encoding, X-Request-Id). */
	char **names, **values;
	int64_t content_length;  /* the primary's Content-Length, -1 if none
				  * (a HEAD answer's length, for one) */
	struct evbuffer *body;   /* never NULL */
};

typedef void (*forward_done_fn)(struct http_request *req,
				struct forward_answer *ans, void *arg);

/*
 * Reads req's whole body into a spool file under spool_dir, then sends
 * the request to the primary on a forward thread and collects the answer.
 * done is called exactly once, on req's own worker thread (or, at
 * shutdown, from forward_free()), also when the client went away meanwhile (then answering frees the orphaned request)
 * and when the body could not be read (nothing is sent to the primary
 * then: a half body is never forwarded). done owns ans (free it with
 * forward_answer_free) and must answer req, e.g. with forward_reply().
 * The spool file is removed in every case. Call from req's handler or a
 * later callback on its worker, before anything read the body.
 */
void forward_request(struct forward *f, struct http_request *req,
		     forward_done_fn done, void *arg);

/* Answers req with ans: status, headers and body (the body is drained
 * from ans). A HEAD answer declares the primary's Content-Length. With
 * status 0 the answer is the Hub's error for ans->err (503 with
 * X-Error-Message for ERR_UNAVAILABLE). ans stays the caller's. */
void forward_reply(struct http_request *req, struct forward_answer *ans);

/* Frees ans and everything in it; NULL is a no-op. */
void forward_answer_free(struct forward_answer *ans);

/*
 * A short blocking GET on the primary (e.g. "/api/replication/head"),
 * with one extra header (hdr_name and hdr_value may be NULL), that fails
 * after timeout_ms in all. For a replica's own thread, never a worker
 * thread; calls are serialized (they share one connection). Returns the
 * status, with the body in *body (malloc'd, NUL-terminated, at most
 * FORWARD_BODY_MAX bytes; the caller frees it); or 0 with *body NULL and
 * err set when the primary could not be reached or answered too much.
 */
int forward_get(struct forward *f, const char *path_and_query,
		const char *hdr_name, const char *hdr_value, long timeout_ms,
		char **body, struct err *err);

#endif
