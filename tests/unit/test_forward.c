/*
 * test_forward.c: unit tests of request forwarding (server/forward.h).
 *
 * Two HTTP servers run in-process on 127.0.0.1: a "primary" whose handler
 * streams the request body through SHA-256 and answers with what it saw
 * (method, path, query, selected headers, body length and digest), and a
 * "front" whose handler forwards every request to the primary with
 * forward_request() and answers with forward_reply(). The tests talk to
 * the front with libcurl (and a raw socket for a client that gives up
 * mid-body), as a Hub client would, and compare what the primary saw and
 * what the client got back. The last tests stop the primary. A third
 * server speaks HTTPS with a certificate made here, for an https primary
 * trusted through a CA bundle file.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "server/forward.h"
#include "server/http.h"
#include "tests/unit/test.h"

#define BIG_BODY ((uint64_t)300 << 20)

static struct http_server *primary, *front;
static pthread_t primary_thread, front_thread;
static int primary_port, front_port;
static struct forward *fwd;
static char spool_dir[64] = "/tmp/test_forward.XXXXXX";
static atomic_int forwarded, done_calls;
static atomic_bool hang_seen;	/* the primary holds a /hang request */

#ifdef __SANITIZE_ADDRESS__
/* ASan holds freed memory in a quarantine (256 MiB by default) that counts
 * as resident: keep it small so that the RSS check still means something. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=8";
}
#endif

/* --- the primary --- */

struct seen {
	EVP_MD_CTX *md;
	uint64_t len;
};

static const char *hdr(struct http_request *req, const char *name)
{
	const char *v = http_request_header(req, name);

	return v ? v : "(none)";
}

static void primary_reply(struct http_request *req, int status,
			  const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, text, strlen(text));
	http_response_send(req, status, b);
	evbuffer_free(b);
}

static int seen_data(struct http_request *req, const char *data, size_t len,
		     void *arg)
{
	struct seen *s = arg;

	s->len += len;
	EVP_DigestUpdate(s->md, data, len);
	return 0;
}

static void seen_done(struct http_request *req, int rc, void *arg)
{
	struct seen *s = arg;
	unsigned char md[32];
	char hex[65], text[2048];
	const char *q = http_request_query(req);

	EVP_DigestFinal_ex(s->md, md, NULL);
	EVP_MD_CTX_free(s->md);
	hex_encode(hex, md, sizeof(md));
	snprintf(text, sizeof(text),
		 "method=%s\npath=%s\nquery=%s\nhost=%s\nxff=%s\nxfp=%s\n"
		 "xfh=%s\nexpect=%s\nte=%s\ncl=%s\nxkeep=%s\nxdrop=%s\n"
		 "keepalive=%s\nauth=%s\nlen=%" PRIu64 "\nsha=%s\n",
		 http_request_method_name(req), http_request_path(req),
		 q ? q : "(none)", hdr(req, "Host"),
		 hdr(req, "X-Forwarded-For"), hdr(req, "X-Forwarded-Proto"),
		 hdr(req, "X-Forwarded-Host"), hdr(req, "Expect"),
		 hdr(req, "Transfer-Encoding"), hdr(req, "Content-Length"),
		 hdr(req, "X-Keep"), hdr(req, "X-Drop"), hdr(req, "Keep-Alive"),
		 hdr(req, "Authorization"), s->len, hex);
	free(s);
	if (rc < 0) {
		primary_reply(req, 400, "body failed\n");
		return;
	}
	http_response_header(req, "X-Primary", "yes");
	primary_reply(req, 200, text);
}

static void primary_handler(struct http_request *req, void *app)
{
	const char *path = http_request_path(req);
	struct seen *s;

	if (!strcmp(path, "/created")) {
		http_response_header(req, "X-Repo-Commit", "0123abcd");
		http_response_header(req, "ETag", "\"e1\"");
		http_response_header(req, "X-Error-Code", "None");
		primary_reply(req, 201, "made\n");
	} else if (!strcmp(path, "/redirect")) {
		http_response_header(req, "Location", "/elsewhere");
		primary_reply(req, 302, "");
	} else if (!strcmp(path, "/hang")) {
		/* Never answered: the server's stop orphans and frees it. */
		atomic_store(&hang_seen, true);
	} else if (!strcmp(path, "/huge")) {
		struct evbuffer *b = evbuffer_new();
		size_t n = FORWARD_BODY_MAX + 1;
		struct evbuffer_iovec v;

		evbuffer_reserve_space(b, (ev_ssize_t)n, &v, 1);
		memset(v.iov_base, 'h', n);
		v.iov_len = n;
		evbuffer_commit_space(b, &v, 1);
		http_response_send(req, 200, b);
		evbuffer_free(b);
	} else {
		s = calloc(1, sizeof(*s));
		s->md = EVP_MD_CTX_new();
		EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
		http_request_read_body(req, seen_data, seen_done, s);
	}
}

/* --- the front --- */

static void front_done(struct http_request *req, struct forward_answer *ans,
		       void *arg)
{
	atomic_fetch_add(&done_calls, 1);
	forward_reply(req, ans);
	forward_answer_free(ans);
}

static void front_handler(struct http_request *req, void *app)
{
	atomic_fetch_add(&forwarded, 1);
	forward_request(fwd, req, front_done, NULL);
}

/* --- the client --- */

static unsigned char body_byte(uint64_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

struct call {
	/* in */
	const char *method;
	const char *path;
	const char *headers[12];
	uint64_t body_len;
	bool send_body, chunked;
	bool cut;			/* the connection is expected to drop */
	/* state */
	uint64_t sent;
	EVP_MD_CTX *md;
	/* out */
	long status;
	char sha[65];
	char head[8192];
	size_t head_len;
	char *body;
	size_t body_len_got;
	double seconds;
};

static size_t call_read(char *out, size_t size, size_t n, void *arg)
{
	struct call *c = arg;
	size_t want = size * n;

	if (want > c->body_len - c->sent)
		want = (size_t)(c->body_len - c->sent);
	for (size_t i = 0; i < want; i++)
		out[i] = (char)body_byte(c->sent + i);
	EVP_DigestUpdate(c->md, out, want);
	c->sent += want;
	return want;
}

static size_t call_header(char *data, size_t size, size_t n, void *arg)
{
	struct call *c = arg;
	size_t len = size * n;

	if (c->head_len + len < sizeof(c->head)) {
		memcpy(c->head + c->head_len, data, len);
		c->head_len += len;
		c->head[c->head_len] = '\0';
	}
	return len;
}

static size_t call_body(char *data, size_t size, size_t n, void *arg)
{
	struct call *c = arg;
	size_t len = size * n;
	char *p = realloc(c->body, c->body_len_got + len + 1);

	if (!p)
		return 0;
	c->body = p;
	memcpy(c->body + c->body_len_got, data, len);
	c->body_len_got += len;
	c->body[c->body_len_got] = '\0';
	return len;
}

/* Sends the call to the front; 0 when an answer came. */
static int call_run(struct call *c)
{
	CURL *h = curl_easy_init();
	struct curl_slist *list = NULL;
	char url[512];
	unsigned char md[32];
	struct timespec t0, t1;
	CURLcode rc;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", front_port,
		 c->path);
	for (int i = 0; i < 12 && c->headers[i]; i++)
		list = curl_slist_append(list, c->headers[i]);
	if (c->chunked)
		list = curl_slist_append(list, "Transfer-Encoding: chunked");
	c->md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c->md, EVP_sha256(), NULL);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, call_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, call_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (!strcmp(c->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (c->send_body) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, call_read);
		curl_easy_setopt(h, CURLOPT_READDATA, c);
		curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 256L << 10);
		if (!c->chunked)
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
					 (curl_off_t)c->body_len);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
	} else if (strcmp(c->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = curl_easy_perform(h);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	c->seconds = (double)(t1.tv_sec - t0.tv_sec) +
		     (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
	EVP_DigestFinal_ex(c->md, md, NULL);
	EVP_MD_CTX_free(c->md);
	hex_encode(c->sha, md, sizeof(md));
	curl_slist_free_all(list);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK && !c->cut)
		fprintf(stderr, "  curl: %s\n", curl_easy_strerror(rc));
	return rc == CURLE_OK ? 0 : -1;
}

static void *call_main(void *arg)
{
	call_run(arg);
	return NULL;
}

static void call_release(struct call *c)
{
	free(c->body);
	c->body = NULL;
}

/* The value of "key=" on its own line of the primary's echo, or "". */
static const char *echo_get(const struct call *c, const char *key,
			    char *out, size_t size)
{
	size_t klen = strlen(key);
	const char *p = c->body;

	out[0] = '\0';
	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		if (len > klen && !strncmp(p, key, klen) && p[klen] == '=') {
			size_t n = len - klen - 1;

			if (n >= size)
				n = size - 1;
			memcpy(out, p + klen + 1, n);
			out[n] = '\0';
			break;
		}
		p = eol ? eol + 1 : NULL;
	}
	return out;
}

static bool echo_is(const struct call *c, const char *key, const char *want)
{
	char v[512];

	echo_get(c, key, v, sizeof(v));
	if (strcmp(v, want)) {
		fprintf(stderr, "  %s: got \"%s\", want \"%s\"\n", key, v, want);
		return false;
	}
	return true;
}

/* Whether the answer's head has the line "name: value". */
static bool head_has(const struct call *c, const char *line)
{
	const char *p = c->head;
	size_t len = strlen(line);

	while ((p = strcasestr(p, line))) {
		if ((p == c->head || p[-1] == '\n') &&
		    (p[len] == '\r' || p[len] == '\n'))
			return true;
		p += len;
	}
	return false;
}

static int spool_files(void)
{
	DIR *d = opendir(spool_dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static long maxrss_mib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

/* --- tests --- */

static int test_forward_small_post(void)
{
	struct call c = {
		.method = "POST",
		.path = "/api/repos/create?a=1&b=%2Fx",
		.headers = { "Content-Type: application/json",
			     "Authorization: Bearer hf_test",
			     "X-Keep: 1",
			     "Connection: keep-alive, X-Drop",
			     "X-Drop: gone",
			     "Keep-Alive: timeout=5",
			     "X-Forwarded-For: 10.1.2.3",
			     "X-Forwarded-For: 10.4.5.6" },
		.send_body = true,
		.body_len = 37,
	};
	char host[64];
	int rc = -1;

	snprintf(host, sizeof(host), "127.0.0.1:%d", front_port);
	CHECK(call_run(&c) == 0);
	CHECK(c.status == 200);
	CHECK(head_has(&c, "X-Primary: yes"));
	CHECK(echo_is(&c, "method", "POST"));
	CHECK(echo_is(&c, "path", "/api/repos/create"));
	CHECK(echo_is(&c, "query", "a=1&b=%2Fx"));
	CHECK(echo_is(&c, "host", host));
	CHECK(echo_is(&c, "xfh", host));
	CHECK(echo_is(&c, "xfp", "http"));
	CHECK(echo_is(&c, "xff", "10.1.2.3, 10.4.5.6, 127.0.0.1"));
	CHECK(echo_is(&c, "auth", "Bearer hf_test"));
	CHECK(echo_is(&c, "xkeep", "1"));
	CHECK(echo_is(&c, "xdrop", "(none)"));
	CHECK(echo_is(&c, "keepalive", "(none)"));
	CHECK(echo_is(&c, "cl", "37"));
	CHECK(echo_is(&c, "len", "37"));
	CHECK(echo_is(&c, "sha", c.sha));
	rc = 0;
out:
	call_release(&c);
	return rc;
}

/* 300 MiB chunked: spooled to disk, not held in memory, and the client's
 * "Expect: 100-continue" stays on this side. */
static int test_forward_big_chunked_post(void)
{
	struct call c = {
		.method = "POST",
		.path = "/upload/big.git/git-receive-pack",
		.send_body = true,
		.chunked = true,
		.body_len = BIG_BODY,
		.headers = { "Expect: 100-continue" },
	};
	char len[32];
	long before = maxrss_mib(), after;
	int rc = -1;

	snprintf(len, sizeof(len), "%" PRIu64, BIG_BODY);
	CHECK(call_run(&c) == 0);
	after = maxrss_mib();
	printf("# %" PRIu64 " MiB chunked POST through the front: %.2f s, "
	       "peak RSS %ld MiB before, %ld MiB after\n", BIG_BODY >> 20,
	       c.seconds, before, after);
	CHECK(c.status == 200);
	CHECK(echo_is(&c, "len", len));
	CHECK(echo_is(&c, "cl", len));
	CHECK(echo_is(&c, "te", "(none)"));
	CHECK(echo_is(&c, "expect", "(none)"));
	CHECK(echo_is(&c, "sha", c.sha));
	/* Far below the body: only buffers grew. */
	CHECK(after - before < 64);
	CHECK(spool_files() == 0);
	rc = 0;
out:
	call_release(&c);
	return rc;
}

static int test_forward_put_length(void)
{
	struct call c = {
		.method = "PUT",
		.path = "/lfs/objects/abc",
		.send_body = true,
		.body_len = 5u << 20,
	};
	int rc = -1;

	CHECK(call_run(&c) == 0);
	CHECK(c.status == 200);
	CHECK(echo_is(&c, "method", "PUT"));
	CHECK(echo_is(&c, "cl", "5242880"));
	CHECK(echo_is(&c, "te", "(none)"));
	CHECK(echo_is(&c, "sha", c.sha));
	rc = 0;
out:
	call_release(&c);
	return rc;
}

static int test_forward_delete(void)
{
	struct call c = { .method = "DELETE", .path = "/api/repos/delete" };
	int rc = -1;

	CHECK(call_run(&c) == 0);
	CHECK(c.status == 200);
	CHECK(echo_is(&c, "method", "DELETE"));
	CHECK(echo_is(&c, "len", "0"));
	CHECK(echo_is(&c, "cl", "(none)"));
	rc = 0;
out:
	call_release(&c);
	return rc;
}

static int test_forward_empty_post(void)
{
	struct call c = { .method = "POST", .path = "/api/x",
			  .send_body = true };
	int rc = -1;

	CHECK(call_run(&c) == 0);
	CHECK(c.status == 200);
	CHECK(echo_is(&c, "cl", "0"));
	CHECK(echo_is(&c, "len", "0"));
	rc = 0;
out:
	call_release(&c);
	return rc;
}

/* HEAD declares the primary's length and sends no body. */
static int test_forward_head(void)
{
	struct call get = { .method = "GET", .path = "/api/models/a/b" };
	struct call head = { .method = "HEAD", .path = "/api/models/a/b" };
	char line[64];
	int rc = -1;

	CHECK(call_run(&get) == 0 && get.status == 200);
	CHECK(call_run(&head) == 0 && head.status == 200);
	CHECK(head.body_len_got == 0);
	/* The echo names the method, so HEAD's body is one byte longer. */
	snprintf(line, sizeof(line), "Content-Length: %zu",
		 get.body_len_got + 1);
	CHECK(head_has(&head, line));
	CHECK(head_has(&head, "X-Primary: yes"));
	rc = 0;
out:
	call_release(&get);
	call_release(&head);
	return rc;
}

static int test_forward_status_headers(void)
{
	struct call c = { .method = "POST", .path = "/created",
			  .send_body = true, .body_len = 10 };
	struct call r = { .method = "GET", .path = "/redirect" };
	int rc = -1;

	CHECK(call_run(&c) == 0);
	CHECK(c.status == 201);
	CHECK(head_has(&c, "X-Repo-Commit: 0123abcd"));
	CHECK(head_has(&c, "ETag: \"e1\""));
	CHECK(head_has(&c, "X-Error-Code: None"));
	CHECK(head_has(&c, "Content-Length: 5"));
	CHECK(c.body && !strcmp(c.body, "made\n"));
	/* One X-Request-Id and one Date: the front's own. */
	CHECK(strcasestr(c.head, "X-Request-Id:") ==
	      strcasestr(c.head, "\nX-Request-Id:") + 1);
	CHECK(!strcasestr(strcasestr(c.head, "X-Request-Id:") + 1,
			  "X-Request-Id:"));
	CHECK(!strcasestr(strcasestr(c.head, "Date:") + 1, "\nDate:"));
	/* Redirects come back to the client, not followed. */
	CHECK(call_run(&r) == 0);
	CHECK(r.status == 302);
	CHECK(head_has(&r, "Location: /elsewhere"));
	rc = 0;
out:
	call_release(&c);
	call_release(&r);
	return rc;
}

static int test_forward_huge_answer(void)
{
	struct call c = { .method = "GET", .path = "/huge" };
	int rc = -1;

	CHECK(call_run(&c) == 0);
	CHECK(c.status == 502);
	CHECK(strcasestr(c.head, "X-Error-Message: the primary's answer is "
			 "larger than 64 MiB"));
	rc = 0;
out:
	call_release(&c);
	return rc;
}

/* A client that sends part of its body and goes away: done is still
 * called, nothing reaches the primary, and the spool file goes. */
static int test_forward_client_gone(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char head[256], chunk[65536];
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1;
	int calls = atomic_load(&done_calls);
	int n;

	sa.sin_port = htons((uint16_t)front_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	n = snprintf(head, sizeof(head), "POST /gone HTTP/1.1\r\nHost: x\r\n"
		     "Content-Length: 10000000\r\n\r\n");
	CHECK(write_full(fd, head, (size_t)n) == 0);
	memset(chunk, 'g', sizeof(chunk));
	for (int i = 0; i < 16; i++)
		CHECK(write_full(fd, chunk, sizeof(chunk)) == 0);
	usleep(200000);
	close(fd);
	fd = -1;
	for (int i = 0; i < 100 && atomic_load(&done_calls) == calls; i++)
		usleep(20000);
	CHECK(atomic_load(&done_calls) == calls + 1);
	CHECK(spool_files() == 0);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int test_forward_get(void)
{
	struct err err = { 0 };
	char *body = NULL;
	int rc = -1;

	CHECK(forward_get(fwd, "/api/replication/head?x=1", "Authorization",
			  "Bearer hf_get", 5000, &body, &err) == 200);
	CHECK(body && strstr(body, "method=GET\n"));
	CHECK(strstr(body, "path=/api/replication/head\n"));
	CHECK(strstr(body, "query=x=1\n"));
	CHECK(strstr(body, "auth=Bearer hf_get\n"));
	free(body);
	body = NULL;
	CHECK(forward_get(fwd, "/created", NULL, NULL, 5000, &body,
			  &err) == 201);
	CHECK(body && !strcmp(body, "made\n"));
	rc = 0;
out:
	free(body);
	return rc;
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

/* A self-signed certificate for IP 127.0.0.1, written to path (a mkstemp
 * template); 0 on success. */
static int cert_write(char *path, EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	FILE *f = NULL;
	int fd, rc = -1;

	if (!x)
		return -1;
	name = X509_get_subject_name(x);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (!X509_set_version(x, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 3600) ||
	    !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"127.0.0.1",
					-1, -1, 0) ||
	    !X509_set_issuer_name(x, name) ||
	    !(ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
					"IP:127.0.0.1")) ||
	    !X509_add_ext(x, ext, -1) || !X509_sign(x, key, EVP_sha256()))
		goto out;
	if ((fd = mkstemp(path)) < 0 || !(f = fdopen(fd, "w")))
		goto out;
	if (PEM_write_X509(f, x))
		rc = 0;
	if (fclose(f) != 0)
		rc = -1;
out:
	X509_EXTENSION_free(ext);
	X509_free(x);
	return rc;
}

static struct http_server *tls_primary;

static void *tls_main(void *arg)
{
	struct err err;

	if (http_server_run(tls_primary, &err) < 0)
		fprintf(stderr, "tls primary: %s\n", err.msg);
	return NULL;
}

/* An https primary: trusted through the CA bundle given, refused with
 * the system's CAs (status 0, ERR_UNAVAILABLE). */
static int test_forward_https_primary(void)
{
	char cert_path[64] = "/tmp/test_forward_cert.XXXXXX";
	char key_path[64] = "/tmp/test_forward_key.XXXXXX";
	struct http_server_config cfg = {
		.host = "127.0.0.1",
		.threads = 1,
		.tls_cert = cert_path,
		.tls_key = key_path,
	};
	struct forward *trusting = NULL, *plain = NULL;
	EVP_PKEY *key = key_write(key_path);
	struct err err = { 0 };
	char url[64], *body = NULL;
	pthread_t t;
	bool started = false;
	int rc = -1;

	CHECK(key && cert_write(cert_path, key) == 0);
	CHECK(http_server_new(&tls_primary, &cfg, primary_handler, NULL,
			      &err) == 0);
	CHECK(pthread_create(&t, NULL, tls_main, NULL) == 0);
	started = true;
	snprintf(url, sizeof(url), "https://127.0.0.1:%d",
		 http_server_port(tls_primary));
	CHECK(forward_new(&trusting, url, cert_path, spool_dir, 1, &err) == 0);
	CHECK(forward_new(&plain, url, "", spool_dir, 1, &err) == 0);
	CHECK(forward_get(trusting, "/created", NULL, NULL, 5000, &body,
			  &err) == 201);
	CHECK(body && !strcmp(body, "made\n"));
	free(body);
	body = NULL;
	CHECK(forward_get(plain, "/created", NULL, NULL, 5000, &body,
			  &err) == 0);
	CHECK(body == NULL && err.code == ERR_UNAVAILABLE);
	rc = 0;
out:
	free(body);
	forward_free(trusting);
	forward_free(plain);
	if (tls_primary) {
		http_server_stop(tls_primary);
		if (started)
			pthread_join(t, NULL);
		http_server_free(tls_primary);
		tls_primary = NULL;
	}
	EVP_PKEY_free(key);
	/* A template never made into a file names nothing. */
	unlink(cert_path);
	unlink(key_path);
	return rc;
}

/* The primary stops while it holds a request (the client gets a 503),
 * then stays down: a clear 503 at once, and forward_get() fails. */
static int test_forward_primary_down(void)
{
	struct call c = { .method = "POST", .path = "/api/repos/create",
			  .send_body = true, .body_len = 100 };
	struct call h = { .method = "POST", .path = "/hang",
			  .send_body = true, .body_len = 1000 };
	struct err err = { 0 };
	char *body = (char *)"x";
	pthread_t t;
	bool started = false;
	int rc = -1;

	atomic_store(&hang_seen, false);
	CHECK(pthread_create(&t, NULL, call_main, &h) == 0);
	started = true;
	for (int i = 0; i < 250 && !atomic_load(&hang_seen); i++)
		usleep(20000);
	CHECK(atomic_load(&hang_seen));
	http_server_stop(primary);
	pthread_join(primary_thread, NULL);
	http_server_free(primary);
	primary = NULL;
	pthread_join(t, NULL);
	started = false;
	CHECK(h.status == 503);
	CHECK(h.seconds < 5);
	CHECK(strcasestr(h.head, "X-Error-Message: the primary "));
	CHECK(call_run(&c) == 0);
	CHECK(c.status == 503);
	CHECK(c.seconds < 5);
	CHECK(strcasestr(c.head, "X-Error-Message: the primary "));
	CHECK(forward_get(fwd, "/api/replication/head", NULL, NULL, 2000,
			  &body, &err) == 0);
	CHECK(body == NULL && err.code == ERR_UNAVAILABLE);
	CHECK(spool_files() == 0);
	rc = 0;
out:
	if (started)
		pthread_join(t, NULL);
	call_release(&h);
	call_release(&c);
	return rc;
}

/* The front stops while a forward waits on a primary that never answers
 * (a socket that listens and never accepts): forward_free() cuts the
 * transfer at once, calls done for it (answering frees the orphaned
 * request) and frees everything, for the sanitizers to check. */
static int test_forward_stop_in_flight(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct call c = { .method = "PUT", .path = "/stuck",
			  .send_body = true, .body_len = 1000, .cut = true };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, rc = -1;
	int calls = atomic_load(&done_calls);
	struct pollfd p = { .events = POLLIN };
	struct timespec t0, t1;
	pthread_t t;
	bool started = false;

	sa.sin_port = htons((uint16_t)primary_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(fd, 8) == 0);
	CHECK(pthread_create(&t, NULL, call_main, &c) == 0);
	started = true;
	p.fd = fd;
	CHECK(poll(&p, 1, 5000) == 1);
	usleep(300000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	http_server_stop(front);
	pthread_join(front_thread, NULL);
	forward_free(fwd);
	fwd = NULL;
	http_server_free(front);
	front = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(t1.tv_sec - t0.tv_sec < 3);
	CHECK(atomic_load(&done_calls) == calls + 1);
	pthread_join(t, NULL);
	started = false;
	/* No final answer: the connection was closed (after a 100). */
	CHECK(c.status < 200);
	CHECK(spool_files() == 0);
	rc = 0;
out:
	if (started)
		pthread_join(t, NULL);
	if (fd >= 0)
		close(fd);
	call_release(&c);
	return rc;
}

static int test_forward_new_errors(void)
{
	struct forward *f = NULL;
	struct err err = { 0 };
	int rc = -1;

	CHECK(forward_new(&f, "ftp://x", "", spool_dir, 1, &err) ==
	      ERR_INVALID && f == NULL);
	CHECK(forward_new(&f, "http://127.0.0.1:1", "", "", 1, &err) ==
	      ERR_INVALID);
	CHECK(forward_new(&f, "http://127.0.0.1:1/", NULL, spool_dir, 0,
			  &err) == 0);
	forward_free(f);
	forward_free(NULL);
	rc = 0;
out:
	return rc;
}

/* --- servers --- */

static void *primary_main(void *arg)
{
	struct err err;

	if (http_server_run(primary, &err) < 0)
		fprintf(stderr, "primary: %s\n", err.msg);
	return NULL;
}

static void *front_main(void *arg)
{
	struct err err;

	if (http_server_run(front, &err) < 0)
		fprintf(stderr, "front: %s\n", err.msg);
	return NULL;
}

static int servers_start(void)
{
	struct http_server_config cfg = {
		.host = "127.0.0.1",
		.threads = 2,
	};
	struct err err;
	char url[64];

	if (!mkdtemp(spool_dir))
		return -1;
	if (http_server_new(&primary, &cfg, primary_handler, NULL, &err) < 0 ||
	    http_server_new(&front, &cfg, front_handler, NULL, &err) < 0) {
		fprintf(stderr, "server: %s\n", err.msg);
		return -1;
	}
	primary_port = http_server_port(primary);
	front_port = http_server_port(front);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", primary_port);
	if (forward_new(&fwd, url, "", spool_dir, 2, &err) < 0) {
		fprintf(stderr, "forward: %s\n", err.msg);
		return -1;
	}
	if (pthread_create(&primary_thread, NULL, primary_main, NULL) ||
	    pthread_create(&front_thread, NULL, front_main, NULL))
		return -1;
	return 0;
}

int main(void)
{
	int rc;

	log_threshold = LOG_ERROR;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (servers_start() < 0) {
		fprintf(stderr, "cannot start the test servers\n");
		return 99;
	}
	RUN(test_forward_new_errors);
	RUN(test_forward_small_post);
	RUN(test_forward_big_chunked_post);
	RUN(test_forward_put_length);
	RUN(test_forward_delete);
	RUN(test_forward_empty_post);
	RUN(test_forward_head);
	RUN(test_forward_status_headers);
	RUN(test_forward_huge_answer);
	RUN(test_forward_client_gone);
	RUN(test_forward_get);
	RUN(test_forward_https_primary);
	RUN(test_forward_primary_down);
	RUN(test_forward_stop_in_flight);
	/* done was called once for every request, the one cut by the stop
	 * included. */
	printf("# %d requests forwarded, done called %d times\n",
	       atomic_load(&forwarded), atomic_load(&done_calls));
	if (atomic_load(&forwarded) == atomic_load(&done_calls)) {
		test_passed++;
		printf("ok - done called once per forwarded request\n");
	} else {
		test_failed++;
		printf("not ok - done called once per forwarded request\n");
	}
	if (front) {
		http_server_stop(front);
		pthread_join(front_thread, NULL);
		forward_free(fwd);
		http_server_free(front);
	}
	rc = TEST_REPORT();
	rmdir(spool_dir);
	curl_global_cleanup();
	return rc;
}
