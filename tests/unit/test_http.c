/*
 * test_http.c: unit tests of the HTTP connection layer (server/http.h).
 *
 * One server runs in-process on 127.0.0.1, port 0, with two worker threads
 * in a pthread of its own and short timeouts (header and idle 1 s, I/O
 * 2 s). test_handler() routes a few paths that exercise the API; the tests
 * talk to it over raw sockets so that they control every byte, including
 * malformed, pipelined, trickled and abandoned requests. The last test
 * stops and frees the server with connections and requests in flight, for
 * the sanitizer build to check.
 *
 * A second server speaks HTTPS with a self-signed certificate made here.
 * The same tests run again against it (the client then speaks TLS,
 * verifying the certificate, and otherwise sends the same bytes), so every
 * behaviour above holds over TLS too; a few tests only make sense there:
 * bad certificate files, clients that never finish a handshake, plain
 * HTTP sent to the HTTPS port.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "server/http.h"
#include "tests/unit/test.h"

#define FILE_LEN (5 * 1024 * 1024)
#define STREAM_LEN (1024 * 1024)
#define BIG_BODY (10 * 1024 * 1024)

static struct http_server *server;
static pthread_t server_thread;
static int server_port;
static char file_path[64] = "/tmp/test_http.XXXXXX";
static unsigned char *file_data;

/* The HTTPS server; the client speaks TLS to it while use_tls is set. */
static struct http_server *tls_server;
static pthread_t tls_thread;
static int tls_port;
static bool use_tls;
static SSL_CTX *client_ctx;
static char cert_path[64] = "/tmp/test_http_cert.XXXXXX";
static char key_path[64] = "/tmp/test_http_key.XXXXXX";
static char key2_path[64] = "/tmp/test_http_key2.XXXXXX";

/* --- the handler --- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

static unsigned char stream_byte(int64_t off)
{
	return (unsigned char)(off % 251);
}

static void reply(struct http_request *req, int status, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, text, strlen(text));
	http_response_send(req, status, b);
	evbuffer_free(b);
}

struct echo {
	uint64_t len, sum, fail_after;
};

static int echo_data(struct http_request *req, const char *data, size_t len,
		     void *arg)
{
	struct echo *e = arg;

	e->len += len;
	e->sum = fnv1a(e->sum, data, len);
	if (e->fail_after && e->len > e->fail_after)
		return ERR_TOOBIG;
	return 0;
}

static void echo_done(struct http_request *req, int rc, void *arg)
{
	struct echo *e = arg;
	char text[128];

	snprintf(text, sizeof(text), "len=%" PRIu64 " sum=%016" PRIx64,
		 e->len, e->sum);
	free(e);
	reply(req, rc == 0 ? 200 : rc == ERR_TOOBIG ? 413 : 400,
	      rc == 0 ? text : "failed");
}

static void buffered_done(struct http_request *req, struct evbuffer *body,
			  int rc, void *arg)
{
	if (rc == 0)
		http_response_send(req, 200, body);
	else
		reply(req, rc == ERR_TOOBIG ? 413 : 400, "no");
}

struct stream {
	int64_t off, total;
};

static void stream_more(struct http_request *req, void *arg)
{
	struct stream *s = arg;
	unsigned char buf[65536];

	while (s->off < s->total) {
		size_t n = sizeof(buf), queued;

		if ((int64_t)n > s->total - s->off)
			n = (size_t)(s->total - s->off);
		for (size_t i = 0; i < n; i++)
			buf[i] = stream_byte(s->off + (int64_t)i);
		queued = http_response_write(req, buf, n);
		s->off += (int64_t)n;
		if (queued > 256 * 1024) {
			http_response_on_drain(req, 32 * 1024, stream_more, s);
			return;
		}
	}
	free(s);
	http_response_end(req);
}

static void late_cb(evutil_socket_t fd, short what, void *arg)
{
	reply(arg, 200, "late");
}

static void info_reply(struct http_request *req)
{
	const char *q = http_request_query(req), *h;
	char text[512];

	h = http_request_header(req, "x-foo");
	snprintf(text, sizeof(text), "m=%s p=%s q=%s h=%s peer=%s",
		 http_request_method_name(req), http_request_path(req),
		 q ? q : "(none)", h ? h : "(none)", http_request_peer(req));
	reply(req, 200, text);
}

static void send_file(struct http_request *req, off_t off, off_t len)
{
	int fd = open(file_path, O_RDONLY);

	if (fd < 0)
		reply(req, 500, "open");
	else
		http_response_send_file(req, 200, fd, off, len);
}

static void test_handler(struct http_request *req, void *app)
{
	const char *path = http_request_path(req);
	struct timeval later = { 0, 50000 };

	if (http_request_method(req) == HTTP_OTHER) {
		reply(req, 405, "method");
	} else if (!strcmp(path, "/hello")) {
		http_response_header(req, "X-Test", "yes");
		reply(req, 200, "hello\n");
	} else if (!strcmp(path, "/head")) {
		reply(req, 200, "0123456789");
	} else if (!strcmp(path, "/head-length")) {
		/* A HEAD answered with a length and no body, as /resolve does. */
		http_response_begin(req, 200, 10);
		if (http_request_method(req) != HTTP_HEAD)
			http_response_write(req, "0123456789", 10);
		http_response_end(req);
	} else if (!strcmp(path, "/echo") || !strcmp(path, "/fail")) {
		struct echo *e = calloc(1, sizeof(*e));

		e->sum = FNV_INIT;
		e->fail_after = path[1] == 'f' ? 100 * 1024 : 0;
		http_request_read_body(req, echo_data, echo_done, e);
	} else if (!strcmp(path, "/buffer")) {
		http_request_buffer_body(req, 1000, buffered_done, NULL);
	} else if (!strcmp(path, "/file")) {
		send_file(req, 0, FILE_LEN);
	} else if (!strcmp(path, "/range")) {
		send_file(req, 10, 100);
	} else if (!strcmp(path, "/short")) {
		send_file(req, FILE_LEN - 1000, 5000); /* past the end */
	} else if (!strcmp(path, "/stream")) {
		struct stream *s = calloc(1, sizeof(*s));

		s->total = STREAM_LEN;
		http_response_begin(req, 200, -1);
		stream_more(req, s);
	} else if (!strcmp(path, "/late")) {
		event_base_once(http_request_base(req), -1, EV_TIMEOUT, late_cb,
				req, &later);
	} else if (!strcmp(path, "/noread")) {
		reply(req, 200, "noread");
	} else if (!strncmp(path, "/info", 5)) {
		info_reply(req);
	} else {
		reply(req, 404, "not found");
	}
}

/* --- a raw HTTP client --- */

struct client {
	int fd;
	SSL *ssl;
	char *buf;
	size_t len, cap;
};

struct resp {
	int status;
	char head[8192];
	char *body;
	size_t body_len;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tcp_connect(int port)
{
	struct sockaddr_in sin = { 0 };
	int fd;

	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The TLS handshake, blocking, checking the certificate for 127.0.0.1;
 * the socket is non-blocking afterwards (see client_fill). */
static int client_tls_start(struct client *cl)
{
	struct timeval tv = { 3, 0 };

	setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!(cl->ssl = SSL_new(client_ctx)) ||
	    !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(cl->ssl),
					   "127.0.0.1") ||
	    !SSL_set_fd(cl->ssl, cl->fd) || SSL_connect(cl->ssl) != 1 ||
	    SSL_get_verify_result(cl->ssl) != X509_V_OK) {
		ERR_clear_error();
		return -1;
	}
	return fcntl(cl->fd, F_SETFL, O_NONBLOCK) < 0 ? -1 : 0;
}

static int client_open(struct client *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->cap = 131072;
	cl->buf = malloc(cl->cap);
	cl->fd = tcp_connect(use_tls ? tls_port : server_port);
	if (cl->fd < 0)
		return -1;
	return use_tls ? client_tls_start(cl) : 0;
}

static void client_close(struct client *cl)
{
	SSL_free(cl->ssl);
	cl->ssl = NULL;
	if (cl->fd >= 0)
		close(cl->fd);
	cl->fd = -1;
	free(cl->buf);
	cl->buf = NULL;
}

/* Waits until an SSL call that wants the socket can go on. */
static int tls_wait(struct client *cl, int n, int timeout_ms)
{
	int e = SSL_get_error(cl->ssl, n);
	struct pollfd pfd = { cl->fd, POLLIN, 0 };

	ERR_clear_error();
	if (e == SSL_ERROR_WANT_WRITE)
		pfd.events = POLLOUT;
	else if (e != SSL_ERROR_WANT_READ)
		return -1;
	return poll(&pfd, 1, timeout_ms) == 1 ? 0 : -1;
}

static int tls_send(struct client *cl, const char *p, size_t len)
{
	while (len > 0) {
		int chunk = len > 65536 ? 65536 : (int)len;
		int n = SSL_write(cl->ssl, p, chunk);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (tls_wait(cl, n, 3000) < 0) {
			return -1;
		}
	}
	return 0;
}

static int client_send(struct client *cl, const void *data, size_t len)
{
	const char *p = data;

	if (cl->ssl)
		return tls_send(cl, p, len);
	while (len > 0) {
		ssize_t n = send(cl->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int client_sends(struct client *cl, const char *s)
{
	return client_send(cl, s, strlen(s));
}

/* client_fill() over TLS. A readable socket may hold only part of a
 * record, or a record with no data for us (a session ticket), so it waits
 * again until bytes come out or the time is up. close_notify, a reset or
 * a close without close_notify count as EOF. */
static int tls_fill(struct client *cl, int timeout_ms)
{
	double end = now_s() + timeout_ms / 1000.0;

	for (;;) {
		int n = SSL_read(cl->ssl, cl->buf + cl->len,
				 (int)(cl->cap - cl->len));
		int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(cl->ssl, n);
		int left = (int)((end - now_s()) * 1000);

		if (n > 0) {
			cl->len += (size_t)n;
			return n;
		}
		if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) {
			ERR_clear_error();
			return 0;
		}
		if (left <= 0 || tls_wait(cl, n, left) < 0)
			return -1;
	}
}

/* Reads more into the buffer: bytes read, 0 at EOF, -1 on error or
 * timeout. */
static int client_fill(struct client *cl, int timeout_ms)
{
	struct pollfd pfd = { cl->fd, POLLIN, 0 };
	ssize_t n;

	if (cl->cap - cl->len < 65536) {
		cl->cap *= 2;
		cl->buf = realloc(cl->buf, cl->cap);
	}
	if (cl->ssl)
		return tls_fill(cl, timeout_ms);
	if (poll(&pfd, 1, timeout_ms) != 1)
		return -1;
	n = recv(cl->fd, cl->buf + cl->len, cl->cap - cl->len, 0);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -1;
	cl->len += (size_t)n;
	return (int)n;
}

static void client_consume(struct client *cl, size_t n)
{
	if (n == 0)
		return;
	memmove(cl->buf, cl->buf + n, cl->len - n);
	cl->len -= n;
}

static bool resp_header(const struct resp *r, const char *name, char *out,
			size_t size)
{
	const char *p = strstr(r->head, "\r\n");
	size_t nlen = strlen(name);

	while (p && p[2] != '\r') {
		p += 2;
		if (!strncasecmp(p, name, nlen) && p[nlen] == ':') {
			const char *v = p + nlen + 1, *e = strstr(v, "\r\n");

			while (*v == ' ')
				v++;
			snprintf(out, size, "%.*s", (int)(e - v), v);
			return true;
		}
		p = strstr(p, "\r\n");
	}
	return false;
}

/* Waits until the buffer holds n bytes. */
static int client_need(struct client *cl, size_t n)
{
	while (cl->len < n)
		if (client_fill(cl, 3000) <= 0)
			return -1;
	return 0;
}

static int body_take(struct client *cl, struct resp *r, size_t n)
{
	if (client_need(cl, n) < 0)
		return -1;
	r->body = realloc(r->body, r->body_len + n + 1);
	if (n > 0)
		memcpy(r->body + r->body_len, cl->buf, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	client_consume(cl, n);
	return 0;
}

static int body_read_chunked(struct client *cl, struct resp *r)
{
	for (;;) {
		char *eol;
		unsigned long size;

		while (!(eol = memmem(cl->buf, cl->len, "\r\n", 2)))
			if (client_fill(cl, 3000) <= 0)
				return -1;
		size = strtoul(cl->buf, NULL, 16);
		client_consume(cl, (size_t)(eol - cl->buf) + 2);
		if (size > 0 && body_take(cl, r, size) < 0)
			return -1;
		if (client_need(cl, 2) < 0)
			return -1;
		client_consume(cl, 2);
		if (size == 0)
			return 0;
	}
}

static int body_read_to_eof(struct client *cl, struct resp *r)
{
	int n;

	while ((n = client_fill(cl, 3000)) > 0)
		;
	if (n < 0)
		return -1;
	return body_take(cl, r, cl->len);
}

/* Reads one response; no body after a HEAD request. */
static int client_response(struct client *cl, struct resp *r, bool head)
{
	char *end, v[64];
	size_t hlen;

	free(r->body);
	memset(r, 0, sizeof(*r));
	while (!(end = memmem(cl->buf, cl->len, "\r\n\r\n", 4)))
		if (client_fill(cl, 3000) <= 0)
			return -1;
	hlen = (size_t)(end - cl->buf) + 4;
	if (hlen >= sizeof(r->head))
		return -1;
	memcpy(r->head, cl->buf, hlen);
	r->head[hlen] = '\0';
	client_consume(cl, hlen);
	if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
		return -1;
	r->body = calloc(1, 1);
	if (head || r->status == 100 || r->status == 204 || r->status == 304)
		return 0;
	if (resp_header(r, "Content-Length", v, sizeof(v)))
		return body_take(cl, r, strtoul(v, NULL, 10));
	if (resp_header(r, "Transfer-Encoding", v, sizeof(v)))
		return body_read_chunked(cl, r);
	return body_read_to_eof(cl, r);
}

/* True once the server closed the connection (within timeout_ms). */
static bool client_sees_eof(struct client *cl, int timeout_ms)
{
	int n;

	while ((n = client_fill(cl, timeout_ms)) > 0)
		;
	return n == 0;
}

static int request(struct client *cl, struct resp *r, const char *text)
{
	if (client_sends(cl, text) < 0)
		return -1;
	return client_response(cl, r, !strncmp(text, "HEAD ", 5));
}

static bool header_is(const struct resp *r, const char *name,
		      const char *want)
{
	char v[128];

	return resp_header(r, name, v, sizeof(v)) && !strcasecmp(v, want);
}

/* --- server lifetime --- */

static void *server_main(void *arg)
{
	struct err err;

	if (http_server_run(server, &err) < 0)
		fprintf(stderr, "run: %s\n", err.msg);
	return NULL;
}

static void *tls_main(void *arg)
{
	struct err err;

	if (http_server_run(tls_server, &err) < 0)
		fprintf(stderr, "run: %s\n", err.msg);
	return NULL;
}

/* Writes a fresh P-256 key to path (a mkstemp template); NULL on error. */
static EVP_PKEY *key_write(char *path)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	bool ok = key && f &&
		  PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);

	if (f && fclose(f) != 0)
		ok = false;
	if (!ok) {
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

/* A self-signed certificate for IP 127.0.0.1, valid for an hour. */
static X509 *cert_make(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	bool ok;

	if (!x)
		return NULL;
	name = X509_get_subject_name(x);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ok = X509_set_version(x, 2) &&
	     ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), 3600) &&
	     X509_set_pubkey(x, key) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"127.0.0.1",
					-1, -1, 0) &&
	     X509_set_issuer_name(x, name) &&
	     (ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
					"IP:127.0.0.1")) &&
	     X509_add_ext(x, ext, -1) && X509_sign(x, key, EVP_sha256());
	X509_EXTENSION_free(ext);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* The certificate and two keys (the second one matches nothing), the
 * HTTPS server, and a client context that trusts that certificate only. */
static int tls_start(void)
{
	struct http_server_config cfg = {
		.host = "127.0.0.1",
		.threads = 2,
		.header_timeout_s = 1,
		.idle_timeout_s = 1,
		.io_timeout_s = 2,
		.tls_cert = cert_path,
		.tls_key = key_path,
	};
	EVP_PKEY *key = key_write(key_path), *key2 = key_write(key2_path);
	X509 *cert = key ? cert_make(key) : NULL;
	int fd = cert ? mkstemp(cert_path) : -1;
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	struct err err;
	int rc = -1;

	if (!f || !key2 || !PEM_write_X509(f, cert))
		goto out;
	if (fclose(f) != 0 || !(client_ctx = SSL_CTX_new(TLS_client_method())))
		goto out;
	f = NULL;
	SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_options(client_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (!X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx), cert))
		goto out;
	if (http_server_new(&tls_server, &cfg, test_handler, NULL, &err) < 0) {
		fprintf(stderr, "tls server: %s\n", err.msg);
		goto out;
	}
	tls_port = http_server_port(tls_server);
	rc = pthread_create(&tls_thread, NULL, tls_main, NULL) ? -1 : 0;
out:
	if (f)
		fclose(f);
	X509_free(cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(key2);
	return rc;
}

static int server_start(void)
{
	struct http_server_config cfg = {
		.host = "127.0.0.1",
		.port = 0,
		.threads = 2,
		.header_timeout_s = 1,
		.idle_timeout_s = 1,
		.io_timeout_s = 2,
	};
	struct err err;
	int fd;

	if ((fd = mkstemp(file_path)) < 0)
		return -1;
	file_data = malloc(FILE_LEN);
	for (size_t i = 0; i < FILE_LEN; i++)
		file_data[i] = (unsigned char)((i * 2654435761u) >> 13);
	if (write_full(fd, file_data, FILE_LEN) < 0)
		return -1;
	close(fd);
	if (http_server_new(&server, &cfg, test_handler, NULL, &err) < 0) {
		fprintf(stderr, "server: %s\n", err.msg);
		return -1;
	}
	server_port = http_server_port(server);
	if (pthread_create(&server_thread, NULL, server_main, NULL))
		return -1;
	return tls_start();
}

/* --- tests --- */

static int test_http_get(void)
{
	struct client cl;
	struct resp r = { 0 };
	char id[64];
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(request(&cl, &r, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CHECK(r.status == 200);
	CHECK(header_is(&r, "Content-Length", "6"));
	CHECK(header_is(&r, "X-Test", "yes"));
	CHECK(resp_header(&r, "Date", id, sizeof(id)));
	CHECK(resp_header(&r, "X-Request-Id", id, sizeof(id)));
	CHECK(strlen(id) == 32 && is_hex(id, 32));
	CHECK(!resp_header(&r, "Connection", id, sizeof(id)));
	CHECK(!strcmp(r.body, "hello\n"));
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_head(void)
{
	struct client cl;
	struct resp r = { 0 };
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(request(&cl, &r, "HEAD /head HTTP/1.1\r\nHost: x\r\n"
			      "Connection: close\r\n\r\n") == 0);
	CHECK(r.status == 200);
	CHECK(header_is(&r, "Content-Length", "10"));
	CHECK(header_is(&r, "Connection", "close"));
	CHECK(client_sees_eof(&cl, 3000));
	CHECK(cl.len == 0);
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

/* A streamed HEAD answer declares a length it never sends: that is not a
 * short body, and the connection stays open for the next request. */
static int test_http_head_streamed_keeps_alive(void)
{
	struct client cl;
	struct resp r = { 0 };
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(request(&cl, &r, "HEAD /head-length HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CHECK(r.status == 200 && header_is(&r, "Content-Length", "10"));
	CHECK(!resp_header(&r, "Connection", NULL, 0));
	CHECK(request(&cl, &r, "GET /head-length HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CHECK(r.status == 200 && !strcmp(r.body, "0123456789"));
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_keepalive(void)
{
	struct client cl;
	struct resp r = { 0 };
	char id1[64], id2[64];
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(request(&cl, &r, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CHECK(r.status == 200 && resp_header(&r, "X-Request-Id", id1, 64));
	CHECK(request(&cl, &r, "GET /head HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CHECK(r.status == 200 && !strcmp(r.body, "0123456789"));
	CHECK(resp_header(&r, "X-Request-Id", id2, 64) && strcmp(id1, id2));
	/* HTTP/1.0 keeps the connection only when asked to. */
	CHECK(request(&cl, &r, "GET /hello HTTP/1.0\r\n"
			      "Connection: keep-alive\r\n\r\n") == 0);
	CHECK(r.status == 200 && header_is(&r, "Connection", "keep-alive"));
	CHECK(request(&cl, &r, "GET /hello HTTP/1.0\r\n\r\n") == 0);
	CHECK(r.status == 200 && header_is(&r, "Connection", "close"));
	CHECK(client_sees_eof(&cl, 3000));
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_pipeline(void)
{
	struct client cl;
	struct resp r = { 0 };
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(client_sends(&cl, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n"
				"GET /info?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
				"POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
				"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CHECK(client_response(&cl, &r, false) == 0);
	CHECK(r.status == 200 && !strcmp(r.body, "late"));
	CHECK(client_response(&cl, &r, false) == 0);
	CHECK(r.status == 200 && strstr(r.body, "p=/info q=x=1"));
	CHECK(client_response(&cl, &r, false) == 0);
	CHECK(r.status == 200 && !strncmp(r.body, "len=3 ", 6));
	CHECK(client_response(&cl, &r, false) == 0);
	CHECK(r.status == 200 && !strcmp(r.body, "hello\n"));
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_chunked_body(void)
{
	struct client cl;
	struct resp r = { 0 };
	char want[64];
	int rc = -1;

	snprintf(want, sizeof(want), "len=11 sum=%016" PRIx64,
		 fnv1a(FNV_INIT, "hello world", 11));
	CHECK(client_open(&cl) == 0);
	CHECK(request(&cl, &r, "POST /echo HTTP/1.1\r\nHost: x\r\n"
			      "Transfer-Encoding: chunked\r\n\r\n"
			      "5\r\nhello\r\n6\r\n world\r\n0\r\n"
			      "X-Trailer: t\r\n\r\n") == 0);
	CHECK(r.status == 200 && !strcmp(r.body, want));
	CHECK(request(&cl, &r, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.status == 200);
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_big_body(void)
{
	struct client cl;
	struct resp r = { 0 };
	char head[128], want[64];
	char *body = malloc(BIG_BODY);
	int rc = -1;

	for (size_t i = 0; i < BIG_BODY; i++)
		body[i] = (char)(i * 31 + (i >> 11));
	snprintf(want, sizeof(want), "len=%d sum=%016" PRIx64, BIG_BODY,
		 fnv1a(FNV_INIT, body, BIG_BODY));
	snprintf(head, sizeof(head), "PUT /echo HTTP/1.1\r\n"
		 "Content-Length: %d\r\n\r\n", BIG_BODY);
	CHECK(client_open(&cl) == 0);
	CHECK(client_sends(&cl, head) == 0);
	CHECK(client_send(&cl, body, BIG_BODY) == 0);
	CHECK(client_response(&cl, &r, false) == 0);
	CHECK(r.status == 200 && !strcmp(r.body, want));
	rc = 0;
out:
	free(body);
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_expect_continue(void)
{
	struct client cl;
	struct resp r = { 0 };
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(request(&cl, &r, "POST /echo HTTP/1.1\r\nHost: x\r\n"
			      "Expect: 100-continue\r\n"
			      "Content-Length: 5\r\n\r\n") == 0);
	CHECK(r.status == 100);
	CHECK(request(&cl, &r, "hello") == 0);
	CHECK(r.status == 200 && !strncmp(r.body, "len=5 ", 6));
	/* Refused up front: no 100, and the connection closes because the
	 * client may never send the body. */
	CHECK(request(&cl, &r, "POST /buffer HTTP/1.1\r\nHost: x\r\n"
			      "Expect: 100-continue\r\n"
			      "Content-Length: 5000\r\n\r\n") == 0);
	CHECK(r.status == 413 && header_is(&r, "Connection", "close"));
	CHECK(client_sees_eof(&cl, 3000));
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

/* Sends text and expects an error status, then the connection closed. */
static int expect_refusal(const char *text, size_t len, int status)
{
	struct client cl;
	struct resp r = { 0 };
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(client_send(&cl, text, len) == 0);
	CHECK(client_response(&cl, &r, false) == 0);
	CHECK(r.status == status);
	CHECK(header_is(&r, "Connection", "close"));
	CHECK(client_sees_eof(&cl, 3000));
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_malformed(void)
{
	static const char *const bad[] = {
		"GARBAGE\r\n\r\n",
		"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
		"GET * HTTP/1.1\r\n\r\n",
		"GET / HTTP/2.0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nContent-Length: 1\r\n"
		"Transfer-Encoding: chunked\r\n\r\n",
	};
	int rc = -1;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(expect_refusal(bad[i], strlen(bad[i]), 400) == 0);
	rc = 0;
out:
	return rc;
}

static int test_http_header_limits(void)
{
	size_t big = 100 * 1024, len = 0;
	char *text = malloc(big + 256);
	int rc = -1;

	len += (size_t)snprintf(text, 64, "GET / HTTP/1.1\r\nX-Big: ");
	memset(text + len, 'a', big);
	len += big;
	memcpy(text + len, "\r\n\r\n", 4);
	CHECK(expect_refusal(text, len + 4, 431) == 0);
	free(text);
	text = malloc(200 * 32 + 64);
	len = (size_t)snprintf(text, 64, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 200; i++)
		len += (size_t)snprintf(text + len, 32, "X-H%d: v\r\n", i);
	len += (size_t)snprintf(text + len, 8, "\r\n");
	CHECK(expect_refusal(text, len, 431) == 0);
	rc = 0;
out:
	free(text);
	return rc;
}

static int test_http_slowloris(void)
{
	struct client cl;
	double t0 = now_s(), dt;
	int rc = -1, n = 0;

	CHECK(client_open(&cl) == 0);
	CHECK(client_sends(&cl, "GET /hello HTTP/1.1\r\n") == 0);
	/* One header line every 200 ms: progress, but never a whole head. */
	while (n == 0 && now_s() - t0 < 5) {
		if (client_sends(&cl, "X-A: b\r\n") < 0)
			break;
		n = client_fill(&cl, 200) == 0;
	}
	dt = now_s() - t0;
	CHECK(n == 1 || client_sees_eof(&cl, 1000));
	CHECK(dt > 0.8 && dt < 3.0);
	rc = 0;
out:
	client_close(&cl);
	return rc;
}

static int test_http_idle_timeout(void)
{
	struct client cl;
	struct resp r = { 0 };
	double t0, dt;
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(request(&cl, &r, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.status == 200);
	t0 = now_s();
	CHECK(client_sees_eof(&cl, 4000));
	dt = now_s() - t0;
	CHECK(dt > 0.7 && dt < 3.0);
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_disconnects(void)
{
	struct client cl;
	struct resp r = { 0 };
	char junk[1000] = { 0 };
	int rc = -1;

	/* Mid-body: the reader is told, the handler answers an orphan. */
	CHECK(client_open(&cl) == 0);
	CHECK(client_sends(&cl, "POST /echo HTTP/1.1\r\n"
				"Content-Length: 1000000\r\n\r\n") == 0);
	CHECK(client_send(&cl, junk, sizeof(junk)) == 0);
	client_close(&cl);
	/* While the handler waits on a timer. */
	CHECK(client_open(&cl) == 0);
	CHECK(client_sends(&cl, "GET /late HTTP/1.1\r\n\r\n") == 0);
	client_close(&cl);
	/* Mid-stream, with the producer waiting for a drain. */
	CHECK(client_open(&cl) == 0);
	CHECK(client_sends(&cl, "GET /stream HTTP/1.1\r\n\r\n") == 0);
	CHECK(client_fill(&cl, 3000) > 0);
	client_close(&cl);
	usleep(150 * 1000);
	CHECK(client_open(&cl) == 0);
	CHECK(request(&cl, &r, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.status == 200);
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_send_file(void)
{
	struct client cl;
	struct resp r = { 0 };
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(request(&cl, &r, "GET /file HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.status == 200 && r.body_len == FILE_LEN);
	CHECK(!memcmp(r.body, file_data, FILE_LEN));
	CHECK(request(&cl, &r, "HEAD /file HTTP/1.1\r\n\r\n") == 0);
	CHECK(header_is(&r, "Content-Length", "5242880"));
	CHECK(request(&cl, &r, "GET /range HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.body_len == 100 && !memcmp(r.body, file_data + 10, 100));
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static bool stream_ok(const struct resp *r)
{
	if (r->body_len != STREAM_LEN)
		return false;
	for (size_t i = 0; i < STREAM_LEN; i++)
		if ((unsigned char)r->body[i] != stream_byte((int64_t)i))
			return false;
	return true;
}

static int test_http_stream(void)
{
	struct client cl;
	struct resp r = { 0 };
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(request(&cl, &r, "GET /stream HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.status == 200 && header_is(&r, "Transfer-Encoding", "chunked"));
	CHECK(stream_ok(&r));
	CHECK(request(&cl, &r, "HEAD /stream HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.status == 200);
	/* HTTP/1.0 has no chunked encoding: the body ends at close. */
	CHECK(request(&cl, &r, "GET /stream HTTP/1.0\r\n"
			      "Connection: keep-alive\r\n\r\n") == 0);
	CHECK(header_is(&r, "Connection", "close") && stream_ok(&r));
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_unread_body(void)
{
	struct client cl;
	struct resp r = { 0 };
	char junk[65536] = { 0 };
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	/* Small: read through and dropped, the connection stays. */
	CHECK(client_sends(&cl, "POST /noread HTTP/1.1\r\n"
				"Content-Length: 1000\r\n\r\n") == 0);
	CHECK(client_send(&cl, junk, 1000) == 0);
	CHECK(client_response(&cl, &r, false) == 0);
	CHECK(r.status == 200 && !header_is(&r, "Connection", "close"));
	CHECK(request(&cl, &r, "POST /buffer HTTP/1.1\r\n"
			      "Content-Length: 3\r\n\r\nxyz") == 0);
	CHECK(r.status == 200 && !strcmp(r.body, "xyz"));
	CHECK(request(&cl, &r, "POST /buffer HTTP/1.1\r\n"
			      "Content-Length: 2000\r\n\r\n") == 0);
	CHECK(r.status == 413 && !header_is(&r, "Connection", "close"));
	CHECK(client_send(&cl, junk, 2000) == 0);
	CHECK(request(&cl, &r, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.status == 200);
	/* Large: answered with Connection: close. */
	CHECK(client_sends(&cl, "POST /noread HTTP/1.1\r\n"
				"Content-Length: 10000000\r\n\r\n") == 0);
	CHECK(client_send(&cl, junk, sizeof(junk)) == 0);
	CHECK(client_response(&cl, &r, false) == 0);
	CHECK(r.status == 200 && header_is(&r, "Connection", "close"));
	CHECK(client_sees_eof(&cl, 3000));
	client_close(&cl);
	/* An error mid-upload: same rule. */
	CHECK(client_open(&cl) == 0);
	CHECK(client_sends(&cl, "POST /fail HTTP/1.1\r\n"
				"Content-Length: 1000000\r\n\r\n") == 0);
	for (int i = 0; i < 4; i++)
		CHECK(client_send(&cl, junk, sizeof(junk)) == 0);
	CHECK(client_response(&cl, &r, false) == 0);
	CHECK(r.status == 413 && header_is(&r, "Connection", "close"));
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_request_fields(void)
{
	struct client cl;
	struct resp r = { 0 };
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(request(&cl, &r, "GET /info/a%20b?x=1&y HTTP/1.1\r\n"
			      "X-Foo:   bar  \r\n\r\n") == 0);
	CHECK(!strcmp(r.body, "m=GET p=/info/a%20b q=x=1&y h=bar "
			      "peer=127.0.0.1"));
	CHECK(request(&cl, &r, "DELETE http://example.com/info HTTP/1.1\r\n"
			      "\r\n") == 0);
	CHECK(!strcmp(r.body, "m=DELETE p=/info q=(none) h=(none) "
			      "peer=127.0.0.1"));
	CHECK(request(&cl, &r, "PATCH /hello HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.status == 405);
	CHECK(request(&cl, &r, "GET /nowhere HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.status == 404 && !strcmp(r.body, "not found"));
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

static int test_http_status_text(void)
{
	int rc = -1;

	CHECK(!strcmp(http_status_text(404), "Not Found"));
	CHECK(!strcmp(http_status_text(431),
		      "Request Header Fields Too Large"));
	CHECK(!strcmp(http_status_text(206), "Partial Content"));
	CHECK(!strcmp(http_status_text(799), "Unknown"));
	rc = 0;
out:
	return rc;
}

static int test_http_port_busy(void)
{
	struct http_server_config cfg = { .host = "127.0.0.1", .threads = 1 };
	struct http_server *s2 = NULL;
	struct sockaddr_in sin = { 0 };
	socklen_t len = sizeof(sin);
	struct err err;
	char want[96];
	int fd, rc = -1;

	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(listen(fd, 1) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	cfg.port = ntohs(sin.sin_port);
	CHECK(http_server_new(&s2, &cfg, test_handler, NULL, &err) < 0);
	CHECK(s2 == NULL);
	snprintf(want, sizeof(want),
		 "cannot listen on 127.0.0.1:%d: Address already in use",
		 cfg.port);
	CHECK(!strcmp(err.msg, want));
	rc = 0;
out:
	http_server_free(s2);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Stops and frees the server with every kind of request in flight. */
static int test_http_stop_with_clients(void)
{
	struct client a, b, c, d;
	char junk[1000] = { 0 };
	int rc = -1;

	CHECK(client_open(&a) == 0 && client_open(&b) == 0);
	CHECK(client_open(&c) == 0 && client_open(&d) == 0);
	CHECK(client_sends(&a, "GET /hello HTTP/1.1\r\nHost:") == 0);
	CHECK(client_sends(&b, "GET /late HTTP/1.1\r\n\r\n") == 0);
	CHECK(client_sends(&c, "POST /echo HTTP/1.1\r\n"
			       "Content-Length: 100000\r\n\r\n") == 0);
	CHECK(client_send(&c, junk, sizeof(junk)) == 0);
	CHECK(client_sends(&d, "GET /stream HTTP/1.1\r\n\r\n") == 0);
	CHECK(client_fill(&d, 3000) > 0);
	usleep(20 * 1000);
	if (use_tls) {
		http_server_stop(tls_server);
		pthread_join(tls_thread, NULL);
		http_server_free(tls_server);
		tls_server = NULL;
	} else {
		http_server_stop(server);
		pthread_join(server_thread, NULL);
		http_server_free(server);
		server = NULL;
	}
	CHECK(client_sees_eof(&a, 1000) && client_sees_eof(&b, 1000));
	rc = 0;
out:
	client_close(&a);
	client_close(&b);
	client_close(&c);
	client_close(&d);
	return rc;
}

/* --- HTTPS only --- */

/* http_server_new() refuses bad files with a line that names them. */
static int test_tls_bad_files(void)
{
	struct http_server_config cfg = {
		.host = "127.0.0.1", .threads = 1,
		.tls_cert = cert_path, .tls_key = "/nonexistent/key.pem",
	};
	struct http_server *s2 = NULL;
	struct err err;
	int rc = -1;

	CHECK(http_server_new(&s2, &cfg, test_handler, NULL, &err) < 0);
	CHECK(s2 == NULL && strstr(err.msg, "/nonexistent/key.pem") &&
	      strstr(err.msg, "No such file"));
	cfg.tls_key = key2_path;
	CHECK(http_server_new(&s2, &cfg, test_handler, NULL, &err) < 0);
	CHECK(strstr(err.msg, "does not match"));
	cfg.tls_cert = key_path; /* a key where the certificate belongs */
	cfg.tls_key = key_path;
	CHECK(http_server_new(&s2, &cfg, test_handler, NULL, &err) < 0);
	CHECK(strstr(err.msg, "certificate") && strstr(err.msg, key_path));
	cfg.tls_cert = cert_path;
	cfg.tls_key = NULL;
	CHECK(http_server_new(&s2, &cfg, test_handler, NULL, &err) < 0);
	CHECK(strstr(err.msg, "both"));
	cfg.tls_key = "";
	CHECK(http_server_new(&s2, &cfg, test_handler, NULL, &err) < 0);
	rc = 0;
out:
	http_server_free(s2);
	return rc;
}

/* Plain HTTP, garbage and silence on the HTTPS port: each connection is
 * closed (silence within the 1 s header timeout, the rest at once) with
 * no HTTP answer, and a TLS client is served meanwhile. */
static int test_tls_not_tls(void)
{
	struct client plain = { .fd = -1 }, junk = { .fd = -1 },
		      quiet = { .fd = -1 }, ok = { .fd = -1 };
	struct resp r = { 0 };
	char bytes[4096];
	double t0 = now_s(), dt;
	int rc = -1, saved_port = server_port;

	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (char)(i * 7);
	use_tls = false;
	server_port = tls_port; /* plain clients to the TLS port */
	CHECK(client_open(&plain) == 0 && client_open(&junk) == 0 &&
	      client_open(&quiet) == 0);
	CHECK(client_sends(&plain, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	CHECK(client_send(&junk, bytes, sizeof(bytes)) == 0);
	use_tls = true;
	CHECK(client_open(&ok) == 0);
	CHECK(request(&ok, &r, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.status == 200);
	CHECK(client_sees_eof(&plain, 1000) && client_sees_eof(&junk, 1000));
	CHECK(!memmem(plain.buf, plain.len, "HTTP/1.1", 8));
	CHECK(client_sees_eof(&quiet, 3000));
	dt = now_s() - t0;
	CHECK(dt > 0.8 && dt < 2.5);
	/* A new connection: the first one idled out meanwhile. */
	client_close(&ok);
	CHECK(client_open(&ok) == 0);
	CHECK(request(&ok, &r, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	CHECK(r.status == 200);
	rc = 0;
out:
	server_port = saved_port;
	use_tls = true;
	free(r.body);
	client_close(&plain);
	client_close(&junk);
	client_close(&quiet);
	client_close(&ok);
	return rc;
}

/* A handshake begun and left: cut by the header timeout. */
static int test_tls_stalled_handshake(void)
{
	static const unsigned char hello_start[] = {
		0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03,
	};
	struct client cl = { .fd = -1 };
	double t0 = now_s(), dt;
	int rc = -1, saved_port = server_port;

	use_tls = false;
	server_port = tls_port;
	CHECK(client_open(&cl) == 0);
	CHECK(client_send(&cl, hello_start, sizeof(hello_start)) == 0);
	CHECK(client_sees_eof(&cl, 3000));
	dt = now_s() - t0;
	CHECK(dt > 0.8 && dt < 2.5);
	rc = 0;
out:
	server_port = saved_port;
	use_tls = true;
	client_close(&cl);
	return rc;
}

/* A file that is shorter than the answer announced: what there is, then
 * the connection closes, since the body cannot be completed. */
static int test_tls_short_file(void)
{
	struct client cl;
	struct resp r = { 0 };
	int rc = -1;

	CHECK(client_open(&cl) == 0);
	CHECK(client_sends(&cl, "GET /short HTTP/1.1\r\n\r\n") == 0);
	CHECK(client_response(&cl, &r, false) < 0);
	CHECK(strstr(r.head, " 200 ") && header_is(&r, "Content-Length", "5000"));
	CHECK(client_sees_eof(&cl, 3000));
	CHECK(cl.len == 1000 &&
	      !memcmp(cl.buf, file_data + FILE_LEN - 1000, 1000));
	rc = 0;
out:
	free(r.body);
	client_close(&cl);
	return rc;
}

/* RUN() for the second pass, against the HTTPS server. */
#define RUN_TLS(fn) do { \
	use_tls = true; \
	if (fn() == 0) { \
		test_passed++; \
		printf("ok - %s over TLS\n", #fn); \
	} else { \
		test_failed++; \
		printf("not ok - %s over TLS\n", #fn); \
	} \
	fflush(stdout); \
} while (0)

int main(void)
{
	int rc;

	log_threshold = LOG_WARN;
	if (server_start() < 0) {
		fprintf(stderr, "cannot start the test server\n");
		unlink(file_path);
		return 99;
	}
	RUN(test_http_status_text);
	RUN(test_http_get);
	RUN(test_http_head);
	RUN(test_http_keepalive);
	RUN(test_http_head_streamed_keeps_alive);
	RUN(test_http_pipeline);
	RUN(test_http_chunked_body);
	RUN(test_http_big_body);
	RUN(test_http_expect_continue);
	RUN(test_http_malformed);
	RUN(test_http_header_limits);
	RUN(test_http_slowloris);
	RUN(test_http_idle_timeout);
	RUN(test_http_disconnects);
	RUN(test_http_send_file);
	RUN(test_http_stream);
	RUN(test_http_unread_body);
	RUN(test_http_request_fields);
	RUN(test_http_port_busy);
	RUN(test_http_stop_with_clients);
	RUN_TLS(test_tls_bad_files);
	RUN_TLS(test_http_get);
	RUN_TLS(test_http_head);
	RUN_TLS(test_http_keepalive);
	RUN_TLS(test_http_head_streamed_keeps_alive);
	RUN_TLS(test_http_pipeline);
	RUN_TLS(test_http_chunked_body);
	RUN_TLS(test_http_big_body);
	RUN_TLS(test_http_expect_continue);
	RUN_TLS(test_http_malformed);
	RUN_TLS(test_http_header_limits);
	RUN_TLS(test_http_slowloris);
	RUN_TLS(test_http_idle_timeout);
	RUN_TLS(test_http_disconnects);
	RUN_TLS(test_http_send_file);
	RUN_TLS(test_tls_short_file);
	RUN_TLS(test_http_stream);
	RUN_TLS(test_http_unread_body);
	RUN_TLS(test_http_request_fields);
	RUN_TLS(test_tls_not_tls);
	RUN_TLS(test_tls_stalled_handshake);
	RUN_TLS(test_http_stop_with_clients);
	rc = TEST_REPORT();
	unlink(file_path);
	unlink(cert_path);
	unlink(key_path);
	unlink(key2_path);
	SSL_CTX_free(client_ctx);
	free(file_data);
	return rc;
}
