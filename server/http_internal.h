/*
 * http_internal.h: private declarations shared by http_server.c (listeners,
 * worker threads, shutdown) and http_conn.c (connections and requests).
 * Nothing outside server/http_*.c includes this header.
 */
#ifndef HAVEN_HTTP_INTERNAL_H
#define HAVEN_HTTP_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/util.h>

/*
 * http_parser.h declares its own "enum http_method" with HTTP_GET,
 * HTTP_HEAD, ... which collide with ours in http.h. Rename its copies
 * while it is included; http_conn.c only uses http_method_str() on the
 * parser's numeric method, never those names.
 */
#define http_method hp_method
#define HTTP_DELETE HP_DELETE
#define HTTP_GET HP_GET
#define HTTP_HEAD HP_HEAD
#define HTTP_POST HP_POST
#define HTTP_PUT HP_PUT
#define HTTP_OPTIONS HP_OPTIONS
#include <http_parser.h>
#undef http_method
#undef HTTP_DELETE
#undef HTTP_GET
#undef HTTP_HEAD
#undef HTTP_POST
#undef HTTP_PUT
#undef HTTP_OPTIONS

#include "server/http.h"

struct event_base;
struct event;
struct evconnlistener;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

#define HTTP_SERVER_MAGIC 0x48737276u  /* "Hsrv" */
#define HTTP_WORKER_MAGIC 0x48777272u  /* "Hwrk" */
#define HTTP_CONN_MAGIC 0x48636f6eu    /* "Hcon" */
#define HTTP_REQUEST_MAGIC 0x48726571u /* "Hreq" */

/* Checks an object that came back through a libevent void * argument. */
#define HTTP_CHECK_OBJ(obj, m) assert((obj) != NULL && (obj)->magic == (m))

struct http_conn;
struct http_request;
LIST_HEAD(http_conn_list, http_conn);
LIST_HEAD(http_request_list, http_request);

/*
 * One worker thread: its event_base, its listening socket and everything
 * it accepted. Only the worker's thread touches these fields while
 * http_server_run() runs; stop_ev is the one way in from other threads.
 */
struct http_worker {
	unsigned magic;
	struct http_server *srv;
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *stop_ev;   /* made active by http_server_stop() */
	struct event *resume_ev; /* re-enables accept() after EMFILE */
	pthread_t thread;
	bool thread_started;
	struct http_conn_list conns;
	/* Requests whose connection went away while a handler still owned
	 * them; freed when the handler answers or by http_server_free(). */
	struct http_request_list orphans;
};

struct http_server {
	unsigned magic;
	struct http_server_config cfg; /* defaults filled in; host is ours */
	char host[256];
	/* HTTPS when set: shared by every worker (OpenSSL 3 makes the
	 * context safe to use from several threads once configured). */
	struct ssl_ctx_st *tls;
	http_handler_fn handler;
	void *app;
	int port;
	int nworkers;
	struct http_worker *workers;
};

/* Takes over an accepted socket fd (closed on failure). */
void http_conn_new(struct http_worker *w, evutil_socket_t fd,
		   const struct sockaddr *sa);

/* Closes every connection of the worker. Requests a handler still owns
 * become orphans: a pending body reader is told ERR_FAIL and a pending
 * drain callback fires, both from the worker's loop. */
void http_conn_close_all(struct http_worker *w);

/* Frees the orphaned requests left when the loop stopped. No callbacks
 * run; a handler's own state for them is the handler's business. */
void http_request_free_orphans(struct http_worker *w);

#endif
