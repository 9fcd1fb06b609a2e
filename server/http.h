/*
 * http.h: Haven's HTTP/1.1 connection layer, on libevent bufferevents and
 * the http-parser library. It streams request bodies (an upload of any size
 * goes to its consumer in chunks, with bounded memory) and sends files with
 * sendfile on plain TCP. With a certificate and key it speaks HTTPS only
 * (OpenSSL, TLS 1.2 and later); files then go out in bounded chunks read
 * as the connection drains, since sendfile cannot encrypt.
 *
 * Threads: http_server_new() binds one listening socket per worker thread
 * on the same port (SO_REUSEPORT); each worker runs its own event_base.
 * A request and everything hanging off it belong to the worker thread that
 * accepted it; handlers run on that thread.
 *
 * Request lifecycle (the contract every handler keeps):
 *   1. After the request head is parsed, the server calls the handler.
 *   2. The handler may read the body (http_request_read_body or
 *      http_request_buffer_body), now or from a later callback.
 *   3. The handler answers exactly once, with http_response_send,
 *      http_response_send_file or http_response_begin .. _end. After that the
 *      request is owned by the server again and may be freed at any time.
 *   A handler that never reads the body still answers; the server then
 *   discards the rest of the body (or closes the connection if it is large).
 *   If the client goes away, the answer is discarded but must still be made.
 *
 * HEAD: the handler answers as for GET; the server sends the same headers,
 * including the real Content-Length, and no body.
 *
 * Answering while a body reader is still running ends that reader: neither
 * its data nor its done callback is called afterwards. The unread rest of
 * the body is read and dropped when it is at most 64 KiB (or chunked, up to
 * 64 KiB more) so the connection stays usable; otherwise, or when the
 * client waits for "100 Continue" that was never sent, the answer carries
 * "Connection: close".
 *
 * Methods: http-parser rejects unknown method tokens (400). Known methods
 * outside enum http_method (PATCH, ...) reach the handler as HTTP_OTHER;
 * the handler answers 405 or 501 as it sees fit.
 *
 * Shutdown: http_server_stop() closes every connection; requests still
 * with their handler become orphans (a running body reader is told
 * ERR_FAIL) and http_server_free() frees those that were never answered.
 */
#ifndef HAVEN_HTTP_H
#define HAVEN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

struct evbuffer;
struct http_server;
struct http_request;

enum http_method {
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_OPTIONS,
	HTTP_OTHER,
};

typedef void (*http_handler_fn)(struct http_request *req, void *app);

/* Sees every answer once, on its worker thread, as its head is queued:
 * the status, the body bytes it declares (0 for HEAD, 204 and 304; -1
 * when chunked) and the seconds since the request's first byte. For
 * metrics; it must be quick and must not answer. */
typedef void (*http_observe_fn)(struct http_request *req, int status,
				int64_t body_length, double seconds,
				void *app);

struct http_server_config {
	const char *host;            /* listen address, e.g. "127.0.0.1" */
	int port;                    /* 0 picks a free port */
	int threads;                 /* worker threads, >= 1 */
	size_t max_header_bytes;     /* request line + headers; 0 = 64 KiB */
	int max_headers;             /* 0 = 100 */
	int header_timeout_s;        /* time to send a whole head; 0 = 10 */
	int idle_timeout_s;          /* keep-alive idle; 0 = 60 */
	int io_timeout_s;            /* no progress reading or writing; 0 = 60 */
	/* HTTPS: a PEM certificate chain (leaf first) and its PEM private
	 * key. Both NULL or "" = plain HTTP; one without the other is an
	 * error. */
	const char *tls_cert;
	const char *tls_key;
	http_observe_fn observe;     /* optional; gets the handler's app */
};

/* Client connections open now, over every server of the process. */
long http_connections_active(void);

/* Binds the listening sockets and loads the TLS certificate and key, if
 * any. A taken port, a bad address, an unreadable certificate or key, or a
 * key that does not match the certificate fails here with a one-line
 * message in err. The caller owns *out. */
int http_server_new(struct http_server **out,
		    const struct http_server_config *cfg,
		    http_handler_fn handler, void *app, struct err *err);

/* The bound port (useful after asking for port 0). */
int http_server_port(const struct http_server *srv);

/* Runs the worker threads and blocks until http_server_stop(). */
int http_server_run(struct http_server *srv, struct err *err);

/* Asks every worker to stop: in-flight requests are cut, connections
 * closed. Safe to call from any thread (not from a signal handler). */
void http_server_stop(struct http_server *srv);

/* Frees everything; the server must not be running. NULL is a no-op. */
void http_server_free(struct http_server *srv);

/* --- request accessors; returned strings live as long as the request --- */

enum http_method http_request_method(const struct http_request *req);
const char *http_request_method_name(const struct http_request *req);
/* Raw (still percent-encoded) path, without the query string. */
const char *http_request_path(const struct http_request *req);
/* Raw query string after '?', or NULL when there is none. */
const char *http_request_query(const struct http_request *req);
/* First header of that name (case-insensitive), or NULL. */
const char *http_request_header(const struct http_request *req,
				const char *name);
/* The number of request headers, and the i-th one (0 <= i < count) as
 * received, with its value in *value; for code that passes them on. */
int http_request_header_count(const struct http_request *req);
const char *http_request_header_at(const struct http_request *req, int i,
				   const char **value);
/* Whether the request came over TLS (false once its client went away). */
bool http_request_tls(const struct http_request *req);
/* A random id for this request, sent back as X-Request-Id. */
const char *http_request_id(const struct http_request *req);
/* The peer's address as text. */
const char *http_request_peer(const struct http_request *req);
/* Content-Length of the body, or -1 if chunked or absent. */
int64_t http_request_content_length(const struct http_request *req);
/* The worker's event_base, for handlers that schedule later work. */
struct event_base *http_request_base(const struct http_request *req);

/* --- request body --- */

/* Called for each chunk of body bytes; return 0 to go on, or a negative
 * err code to stop reading (the done callback then gets that code). */
typedef int (*http_body_data_fn)(struct http_request *req, const char *data,
				 size_t len, void *arg);
/* Called once: rc 0 when the whole body arrived, else a negative code
 * (ERR_FAIL if the client went away or timed out). */
typedef void (*http_body_done_fn)(struct http_request *req, int rc, void *arg);

/* Streams the body to data_fn. Sends "100 Continue" if the client asked. */
void http_request_read_body(struct http_request *req, http_body_data_fn data,
			    http_body_done_fn done, void *arg);

typedef void (*http_body_buffered_fn)(struct http_request *req,
				      struct evbuffer *body, int rc, void *arg);
/* Collects up to max bytes into an evbuffer (owned by the request) and
 * calls done with rc 0, or ERR_TOOBIG past max, or ERR_FAIL. */
void http_request_buffer_body(struct http_request *req, size_t max,
			      http_body_buffered_fn done, void *arg);

/* --- response --- */

/* Adds a response header (copied). Content-Length, Date, Connection,
 * Transfer-Encoding and X-Request-Id are added by the server; adding one
 * of them is a programming error. A header with a line break in it is
 * dropped (and logged). */
void http_response_header(struct http_request *req, const char *name,
			  const char *value);

/* Sends status and the body (drained from body; NULL means empty). */
void http_response_send(struct http_request *req, int status,
			struct evbuffer *body);

/* Sends status and length bytes of fd from offset, with sendfile where the
 * connection allows; over TLS, in bounded chunks read as the client takes
 * them. Takes ownership of fd (closed by the server). */
void http_response_send_file(struct http_request *req, int status, int fd,
			     off_t offset, off_t length);

/* Streamed answer: begin with the length (-1 = unknown: chunked), write
 * pieces, then end. http_response_write returns the bytes still queued for
 * the client, so a producer can pause while that is large. */
void http_response_begin(struct http_request *req, int status,
			 int64_t length);
size_t http_response_write(struct http_request *req, const void *data,
			   size_t len);
void http_response_end(struct http_request *req);
/* http_response_write of all of buf, moved rather than copied (buf is
 * left empty). */
size_t http_response_write_buffer(struct http_request *req,
				  struct evbuffer *buf);

/* Like http_response_write for length bytes of fd from offset (a fixed
 * length answer only): with sendfile on plain TCP, copied over TLS. fd
 * stays the caller's; the bytes are read before the call returns (TLS)
 * or from a duplicate of fd (TCP), so the caller may close it at once.
 * Returns the bytes still queued, or 0 when the client went away (as
 * http_response_write does); SIZE_MAX when fd cannot be read. */
size_t http_response_write_file(struct http_request *req, int fd,
				off_t offset, size_t length);

/* Tells a streaming producer (between http_response_begin and _end) when
 * the bytes queued for the client fall to low_water or below. fn is called
 * once, from the worker's loop (never from inside this call); register
 * again after writing more. If the client went away, fn is still called
 * so that the producer gets to http_response_end. */
typedef void (*http_drain_fn)(struct http_request *req, void *arg);
void http_response_on_drain(struct http_request *req, size_t low_water,
			    http_drain_fn fn, void *arg);

/* Holds the answer back: the handler answers as usual, but nothing goes
 * out until http_request_release_answer(). Once the whole answer is
 * queued, fn is called once from the worker's loop, and the holder
 * releases it from that thread, then or later, exactly once (a primary
 * holds a write's answer until its read replicas have applied it). A
 * client that goes away after that still gets fn, and releasing then
 * frees the request; one gone before the answer was complete is handled
 * as without a hold, with no fn. Call before answering. */
typedef void (*http_hold_fn)(struct http_request *req, void *arg);
void http_request_hold_answer(struct http_request *req, http_hold_fn fn,
			      void *arg);
void http_request_release_answer(struct http_request *req);

/* Status line text for a code ("Not Found"). */
const char *http_status_text(int status);

#endif
