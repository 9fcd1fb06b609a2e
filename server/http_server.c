/*
 * http_server.c: listening sockets, worker threads and shutdown.
 *
 * http_server_new() makes one worker per configured thread, each with its
 * own event_base and its own listening socket on the same address and
 * port (SO_REUSEPORT; the kernel spreads new connections over them). The
 * first worker binds the configured port, possibly 0; the others bind the
 * port it got. A connection lives on the worker that accepted it.
 *
 * Calling sequence: http_server_new, http_server_run (blocks in the
 * caller's thread while the workers run), http_server_stop from any other
 * thread, then http_server_free once run returned.
 *
 * Stopping makes each worker's stop event active (event_active is
 * thread-safe once evthread_use_pthreads() ran before the bases were
 * made). On its own thread the worker then closes its listener and every
 * connection, and leaves its loop after the callbacks that this made
 * active (orphaned body readers told ERR_FAIL) have run. Requests whose
 * handler never answered are freed by http_server_free() without any
 * callback; a handler with work still scheduled on the loop loses it.
 *
 * SO_REUSEPORT would also let a second server of the same user bind a
 * port that is already serving, so a fixed port is first probed with a
 * plain bind (SO_REUSEADDR only), which any listener on it refuses.
 *
 * HTTPS: one SSL_CTX, made here before any socket is bound, holds the
 * certificate chain and key; each accepted connection gets its own SSL
 * from it (http_conn.c). A missing file, a file that is not PEM, an
 * encrypted key (no one is there to type a passphrase) or a key that does
 * not belong to the certificate is reported as one line naming the file.
 */
#include "common/compat.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "common/log.h"
#include "common/util.h"
#include "server/http_internal.h"

#define LISTEN_BACKLOG 1024

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;

static void evthread_setup(void)
{
	evthread_use_pthreads();
}

static void config_defaults(struct http_server_config *cfg)
{
	if (!cfg->max_header_bytes)
		cfg->max_header_bytes = 64 * 1024;
	if (!cfg->max_headers)
		cfg->max_headers = 100;
	if (!cfg->header_timeout_s)
		cfg->header_timeout_s = 10;
	if (!cfg->idle_timeout_s)
		cfg->idle_timeout_s = 60;
	if (!cfg->io_timeout_s)
		cfg->io_timeout_s = 60;
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct http_worker *w = arg;

	HTTP_CHECK_OBJ(w, HTTP_WORKER_MAGIC);
	http_conn_new(w, fd, sa);
}

/* Out of descriptors (or similar): pause accepting for a second rather
 * than spin on a listener that stays readable. */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct http_worker *w = arg;
	struct timeval tv = { 1, 0 };

	HTTP_CHECK_OBJ(w, HTTP_WORKER_MAGIC);
	log_msg(LOG_WARN, "event=http_accept_error error=\"%s\"",
		evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	evconnlistener_disable(lev);
	evtimer_add(w->resume_ev, &tv);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_worker *w = arg;

	HTTP_CHECK_OBJ(w, HTTP_WORKER_MAGIC);
	if (w->listener)
		evconnlistener_enable(w->listener);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_worker *w = arg;

	HTTP_CHECK_OBJ(w, HTTP_WORKER_MAGIC);
	if (w->listener) {
		evconnlistener_free(w->listener);
		w->listener = NULL;
	}
	evtimer_del(w->resume_ev);
	http_conn_close_all(w);
	event_base_loopexit(w->base, NULL);
}

/* --- TLS --- */

/* The reason of the first error in OpenSSL's queue (the root cause;
 * later ones say which layer gave up), and the queue cleared. */
static const char *tls_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "unknown error";
}

/* Never asks for a passphrase: an encrypted key fails to load. */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

/* Only HTTP/1.1 is spoken; saying so spares clients a guess. */
static int tls_alpn_select(SSL *ssl, const unsigned char **out,
			   unsigned char *outlen, const unsigned char *in,
			   unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x08http/1.1";
	unsigned char *sel = NULL;

	if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static int tls_file_check(const char *what, const char *path,
			  struct err *err)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return err_set(err, ERR_INVALID, "cannot read TLS %s '%s': %s",
			       what, path, strerror(errno));
	fclose(f);
	return 0;
}

static int tls_key_load(SSL_CTX *ctx, const char *cert, const char *key,
			struct err *err)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio;
	int rc = 0;

	if (!(bio = BIO_new_file(key, "r")) ||
	    !(pkey = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase,
					     NULL)))
		rc = err_set(err, ERR_INVALID,
			     "TLS key '%s' is not an unencrypted PEM private "
			     "key: %s", key, tls_reason());
	else if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
		 SSL_CTX_check_private_key(ctx) != 1)
		rc = err_set(err, ERR_INVALID,
			     "TLS key '%s' does not match certificate '%s'",
			     key, cert);
	ERR_clear_error();
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return rc;
}

static int tls_setup(struct http_server *srv,
		     const struct http_server_config *cfg, struct err *err)
{
	const char *cert = cfg->tls_cert, *key = cfg->tls_key;
	SSL_CTX *ctx;
	int rc;

	if (!cert || !*cert || !key || !*key)
		return err_set(err, ERR_INVALID,
			       "TLS needs both a certificate and a key "
			       "(tls_cert and tls_key)");
	if ((rc = tls_file_check("certificate", cert, err)) < 0 ||
	    (rc = tls_file_check("key", key, err)) < 0)
		return rc;
	if (!(ctx = SSL_CTX_new(TLS_server_method())))
		return err_set(err, ERR_FAIL, "cannot create TLS context: %s",
			       tls_reason());
	srv->tls = ctx;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* No client-started renegotiation (a cheap way to burn server CPU);
	 * the server's cipher order wins. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle keep-alive connections give their record buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return err_set(err, ERR_INVALID,
			       "TLS certificate '%s' is not a PEM certificate "
			       "chain: %s", cert, tls_reason());
	return tls_key_load(ctx, cert, key, err);
}

static bool tls_wanted(const struct http_server_config *cfg)
{
	return (cfg->tls_cert && *cfg->tls_cert) ||
	       (cfg->tls_key && *cfg->tls_key);
}

/* --- listening --- */

static void addr_format(char *out, size_t size, const char *host, int port)
{
	if (strchr(host, ':'))
		snprintf(out, size, "[%s]:%d", host, port);
	else
		snprintf(out, size, "%s:%d", host, port);
}

static int addr_resolve(struct sockaddr_storage *ss, socklen_t *len,
			const struct http_server *srv, struct err *err)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	char port[16];
	int rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", srv->cfg.port);
	rc = getaddrinfo(srv->host[0] ? srv->host : NULL, port, &hints, &ai);
	if (rc != 0)
		return err_set(err, ERR_INVALID,
			       "cannot resolve listen address '%s': %s",
			       srv->host, gai_strerror(rc));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void addr_set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static int addr_get_port(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

static int worker_init(struct http_worker *w, struct http_server *srv,
		       struct err *err)
{
	w->magic = HTTP_WORKER_MAGIC;
	w->srv = srv;
	LIST_INIT(&w->conns);
	LIST_INIT(&w->orphans);
	if (!(w->base = event_base_new()) ||
	    !(w->stop_ev = event_new(w->base, -1, 0, stop_cb, w)) ||
	    !(w->resume_ev = evtimer_new(w->base, resume_cb, w)))
		return err_set(err, ERR_FAIL, "cannot create event loop");
	return 0;
}

/* Refuses a port another socket already listens on; see the top. */
static int port_probe(struct http_server *srv, struct sockaddr_storage *ss,
		      socklen_t len, struct err *err)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	char where[300];
	int rc = 0;

	if (fd < 0)
		return 0;	/* the real bind will report it */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)ss, len) < 0 && errno == EADDRINUSE) {
		addr_format(where, sizeof(where), srv->host, srv->cfg.port);
		rc = err_set(err, ERR_FAIL, "cannot listen on %s: %s", where,
			     strerror(EADDRINUSE));
	}
	close(fd);
	return rc;
}

static int worker_listen(struct http_worker *w, struct sockaddr_storage *ss,
			 socklen_t len, struct err *err)
{
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
			 LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT;
	struct http_server *srv = w->srv;
	char where[300];

	w->listener = evconnlistener_new_bind(w->base, accept_cb, w, flags,
					      LISTEN_BACKLOG,
					      (struct sockaddr *)ss, (int)len);
	if (!w->listener) {
		addr_format(where, sizeof(where), srv->host,
			    srv->port ? srv->port : srv->cfg.port);
		return err_set(err, ERR_FAIL, "cannot listen on %s: %s", where,
			       strerror(errno));
	}
	evconnlistener_set_error_cb(w->listener, accept_error_cb);
	if (!srv->port) {
		srv->port = addr_get_port(evconnlistener_get_fd(w->listener));
		addr_set_port(ss, srv->port);
	}
	return 0;
}

int http_server_new(struct http_server **out,
		    const struct http_server_config *cfg,
		    http_handler_fn handler, void *app, struct err *err)
{
	struct http_server *srv = NULL;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int error = 0;

	assert(out && cfg && handler);
	pthread_once(&evthread_once, evthread_setup);
	signal(SIGPIPE, SIG_IGN);
	*out = NULL;
	if (cfg->threads < 1 || cfg->port < 0 || cfg->port > 65535)
		return err_set(err, ERR_INVALID,
			       "bad listen settings: threads %d, port %d",
			       cfg->threads, cfg->port);
	if (!(srv = calloc(1, sizeof(*srv))) ||
	    !(srv->workers = calloc((size_t)cfg->threads,
				    sizeof(*srv->workers)))) {
		error = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	srv->magic = HTTP_SERVER_MAGIC;
	srv->cfg = *cfg;
	config_defaults(&srv->cfg);
	str_copy(srv->host, cfg->host ? cfg->host : "", sizeof(srv->host));
	srv->cfg.host = srv->host;
	srv->handler = handler;
	srv->app = app;
	srv->port = cfg->port;
	/* The paths are the caller's: the context holds what was read. */
	srv->cfg.tls_cert = srv->cfg.tls_key = NULL;
	if ((tls_wanted(cfg) && (error = tls_setup(srv, cfg, err)) < 0) ||
	    (error = addr_resolve(&ss, &len, srv, err)) < 0 ||
	    (srv->port && (error = port_probe(srv, &ss, len, err)) < 0))
		goto out;
	for (int i = 0; i < cfg->threads; i++) {
		srv->nworkers++;
		if ((error = worker_init(&srv->workers[i], srv, err)) < 0 ||
		    (error = worker_listen(&srv->workers[i], &ss, len, err)) < 0)
			goto out;
	}
	log_msg(LOG_INFO, "event=http_listen host=%s port=%d threads=%d tls=%s",
		srv->host, srv->port, srv->nworkers, srv->tls ? "yes" : "no");
out:
	if (error < 0)
		http_server_free(srv);
	else
		*out = srv;
	return error;
}

int http_server_port(const struct http_server *srv)
{
	HTTP_CHECK_OBJ(srv, HTTP_SERVER_MAGIC);
	return srv->port;
}

static void *worker_main(void *arg)
{
	struct http_worker *w = arg;

	HTTP_CHECK_OBJ(w, HTTP_WORKER_MAGIC);
	if (event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0)
		log_msg(LOG_ERROR, "event=http_loop_fail");
	return NULL;
}

int http_server_run(struct http_server *srv, struct err *err)
{
	int error = 0, rc;

	HTTP_CHECK_OBJ(srv, HTTP_SERVER_MAGIC);
	for (int i = 0; i < srv->nworkers; i++) {
		struct http_worker *w = &srv->workers[i];

		if ((rc = pthread_create(&w->thread, NULL, worker_main, w))) {
			error = err_set(err, ERR_FAIL,
					"cannot start worker thread: %s",
					strerror(rc));
			http_server_stop(srv);
			break;
		}
		w->thread_started = true;
	}
	for (int i = 0; i < srv->nworkers; i++) {
		struct http_worker *w = &srv->workers[i];

		if (w->thread_started)
			pthread_join(w->thread, NULL);
		w->thread_started = false;
	}
	return error;
}

void http_server_stop(struct http_server *srv)
{
	if (!srv)
		return;
	HTTP_CHECK_OBJ(srv, HTTP_SERVER_MAGIC);
	for (int i = 0; i < srv->nworkers; i++)
		if (srv->workers[i].stop_ev)
			event_active(srv->workers[i].stop_ev, EV_TIMEOUT, 1);
}

static void worker_release(struct http_worker *w)
{
	if (w->magic != HTTP_WORKER_MAGIC)
		return;
	assert(!w->thread_started);
	if (w->listener)
		evconnlistener_free(w->listener);
	http_conn_close_all(w);
	http_request_free_orphans(w);
	if (w->stop_ev)
		event_free(w->stop_ev);
	if (w->resume_ev)
		event_free(w->resume_ev);
	if (w->base)
		event_base_free(w->base);
	w->magic = 0;
}

void http_server_free(struct http_server *srv)
{
	if (!srv)
		return;
	HTTP_CHECK_OBJ(srv, HTTP_SERVER_MAGIC);
	for (int i = 0; i < srv->nworkers; i++)
		worker_release(&srv->workers[i]);
	free(srv->workers);
	SSL_CTX_free(srv->tls);
	srv->magic = 0;
	free(srv);
}
