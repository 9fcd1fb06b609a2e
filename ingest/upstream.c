/*
 * upstream.c: the client for an upstream Hub, on libcurl (see upstream.h).
 *
 * libcurl rather than our own HTTP client: it already does TLS with the
 * system's or a given CA bundle, proxies from the environment, redirects
 * across hosts (the Hub sends file downloads to its CDN) without carrying
 * the Authorization header there, and connection reuse.
 */
#include "common/compat.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "ingest/upstream.h"

#define DEFAULT_RETRIES 5
#define DEFAULT_CONNECT_TIMEOUT 15
#define DEFAULT_STALL_TIMEOUT 60
#define MAX_BACKOFF_S 60
#define JSON_BODY_MAX ((size_t)256 << 20)
#define DOWNLOAD_BUFFER (512L << 10)

struct upstream {
	CURL *curl;
	char base[512];
	char token[512];
	char ca_bundle[4096];
	int max_retries;
	long connect_timeout_s;
	long stall_timeout_s;
	uint64_t max_rate;
};

/* One transfer's state, shared by the header and body callbacks. */
struct transfer {
	struct upstream_reply *reply;
	long retry_after_s;		/* from Retry-After or RateLimit */
	/* body into a buffer (JSON calls) */
	char *body;
	size_t body_len, body_cap;
	/* or body into a sink (downloads) */
	upstream_sink_fn sink;
	void *sink_arg;
	uint64_t delivered;		/* body bytes handed to the sink */
	uint64_t range_from;		/* the Range this attempt asked for */
	uint64_t skip;			/* bytes to drop: a 200 ignored our Range */
	uint64_t want;			/* bytes wanted in all, 0: to the end */
	bool sink_failed;
	bool in_error;			/* status >= 400: keep the body out of the sink */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int upstream_new(struct upstream **out, const struct upstream_config *cfg,
		 struct err *err)
{
	struct upstream *up;
	const char *url = cfg && cfg->url && cfg->url[0] ? cfg->url :
			  UPSTREAM_DEFAULT_URL;
	size_t n;

	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return err_set(err, ERR_INVALID,
			       "upstream '%s' is not an http:// or https:// URL",
			       url);
	pthread_once(&curl_once, curl_init_once);
	up = calloc(1, sizeof(*up));
	if (!up || !(up->curl = curl_easy_init())) {
		free(up);
		return err_set(err, ERR_FAIL, "cannot start the HTTP client");
	}
	str_copy(up->base, url, sizeof(up->base));
	n = strlen(up->base);
	while (n && up->base[n - 1] == '/')
		up->base[--n] = '\0';
	if (cfg && cfg->token)
		str_copy(up->token, cfg->token, sizeof(up->token));
	if (cfg && cfg->ca_bundle)
		str_copy(up->ca_bundle, cfg->ca_bundle, sizeof(up->ca_bundle));
	up->max_retries = !cfg || !cfg->max_retries ? DEFAULT_RETRIES :
			  cfg->max_retries < 0 ? 0 : cfg->max_retries;
	up->connect_timeout_s = cfg && cfg->connect_timeout_s > 0 ?
				cfg->connect_timeout_s : DEFAULT_CONNECT_TIMEOUT;
	up->stall_timeout_s = cfg && cfg->stall_timeout_s > 0 ?
			      cfg->stall_timeout_s : DEFAULT_STALL_TIMEOUT;
	up->max_rate = cfg ? cfg->max_rate : 0;
	*out = up;
	return 0;
}

void upstream_free(struct upstream *up)
{
	if (!up)
		return;
	curl_easy_cleanup(up->curl);
	free(up);
}

const char *upstream_base_url(const struct upstream *up)
{
	return up->base;
}

int upstream_max_retries(const struct upstream *up)
{
	return up->max_retries;
}

int upstream_path_escape(const char *in, char *out, size_t size)
{
	static const char keep[] = "-._~/";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (isalnum(*p) || strchr(keep, *p)) {
			if (o + 1 >= size)
				return ERR_TOOBIG;
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= size)
				return ERR_TOOBIG;
			snprintf(out + o, 4, "%%%02X", *p);
			o += 3;
		}
	}
	if (o >= size)
		return ERR_TOOBIG;
	out[o] = '\0';
	return 0;
}

/* ---- response headers ---- */

static bool header_is(const char *line, size_t len, const char *name,
		      const char **value, size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) || line[n] != ':')
		return false;
	line += n + 1;
	len -= n + 1;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' ||
		       line[len - 1] == ' '))
		len--;
	*value = line;
	*vlen = len;
	return true;
}

static void copy_value(char *dst, size_t size, const char *v, size_t n)
{
	if (n && v[0] == '"' && v[n - 1] == '"' && n >= 2)
		v++, n -= 2;
	if (n >= 2 && !strncmp(v, "W/", 2))
		v += 2, n -= 2;
	if (n >= size)
		n = size - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* The "next" target of a Link header, kept as a path on the upstream. */
static void parse_link_next(struct transfer *t, const char *v, size_t n)
{
	char buf[2048];
	const char *lt, *gt, *slash;

	copy_value(buf, sizeof(buf), v, n);
	if (!strstr(buf, "rel=\"next\"") || !(lt = strchr(buf, '<')) ||
	    !(gt = strchr(lt, '>')))
		return;
	lt++;
	/* drop scheme://host so the path goes to our base URL */
	if ((slash = strstr(lt, "://")) && slash < gt)
		lt = strchr(slash + 3, '/');
	if (!lt || lt > gt)
		return;
	copy_value(t->reply->link_next, sizeof(t->reply->link_next), lt,
		   (size_t)(gt - lt));
}

/* RateLimit: "api";r=0;t=55 — r is the quota left, t the number of
 * seconds to the reset. The Hub sends it on every answer, so t is a wait
 * only when nothing is left (r=0); otherwise 0, and the usual backoff. */
static long parse_ratelimit_reset(const char *v, size_t n)
{
	char buf[256];
	const char *r, *t;

	copy_value(buf, sizeof(buf), v, n);
	if (!(r = strstr(buf, ";r=")) || strtol(r + 3, NULL, 10) != 0 ||
	    !(t = strstr(buf, ";t=")))
		return 0;
	return strtol(t + 3, NULL, 10);
}

/* Retry-After and RateLimit may both come: the longer wait wins. */
static void wait_at_least(struct transfer *t, long s)
{
	if (s > t->retry_after_s)
		t->retry_after_s = s;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *arg)
{
	struct transfer *t = arg;
	struct upstream_reply *r = t->reply;
	size_t len = size * nitems;
	const char *v;
	size_t n;

	if (len > 5 && !strncmp(line, "HTTP/", 5)) {
		/* a new response (after a redirect): start over */
		const char *sp = memchr(line, ' ', len);
		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		r->error_code[0] = '\0';
		t->in_error = r->status >= 400;
		t->skip = r->status == 200 ? t->range_from : 0;
		return len;
	}
	if (header_is(line, len, "X-Repo-Commit", &v, &n))
		copy_value(r->commit, sizeof(r->commit), v, n);
	else if (header_is(line, len, "X-Linked-Etag", &v, &n))
		copy_value(r->etag, sizeof(r->etag), v, n);
	else if (header_is(line, len, "ETag", &v, &n) && !r->etag[0])
		copy_value(r->etag, sizeof(r->etag), v, n);
	else if (header_is(line, len, "X-Linked-Size", &v, &n))
		r->size = strtoull(v, NULL, 10);
	else if (header_is(line, len, "Content-Range", &v, &n)) {
		const char *slash = memchr(v, '/', n);
		if (slash && slash[1] != '*')
			r->size = strtoull(slash + 1, NULL, 10);
	} else if (header_is(line, len, "Content-Length", &v, &n) &&
		   !r->size && r->status == 200)
		r->size = strtoull(v, NULL, 10);
	else if (header_is(line, len, "X-Error-Code", &v, &n))
		copy_value(r->error_code, sizeof(r->error_code), v, n);
	else if (header_is(line, len, "Retry-After", &v, &n))
		wait_at_least(t, strtol(v, NULL, 10));
	else if (header_is(line, len, "RateLimit", &v, &n))
		wait_at_least(t, parse_ratelimit_reset(v, n));
	else if (header_is(line, len, "Link", &v, &n))
		parse_link_next(t, v, n);
	return len;
}

/* ---- bodies ---- */

static size_t on_body(char *data, size_t size, size_t nitems, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * nitems;

	if (t->sink && !t->in_error) {
		size_t drop = t->skip < len ? (size_t)t->skip : len;
		size_t n = len - drop;

		t->skip -= drop;
		if (t->want && t->delivered + n > t->want)
			n = (size_t)(t->want - t->delivered);
		if (!n)
			return len;
		if (t->sink(data + drop, n, t->sink_arg)) {
			t->sink_failed = true;
			return 0;	/* aborts the transfer */
		}
		t->delivered += n;
		return len;
	}
	/* JSON bodies and error bodies are kept (bounded) */
	if (t->body_len + len + 1 > t->body_cap) {
		size_t cap = t->body_cap ? t->body_cap : 8192;
		char *p;
		while (cap < t->body_len + len + 1)
			cap *= 2;
		if (cap > JSON_BODY_MAX || !(p = realloc(t->body, cap)))
			return 0;
		t->body = p;
		t->body_cap = cap;
	}
	memcpy(t->body + t->body_len, data, len);
	t->body_len += len;
	t->body[t->body_len] = '\0';
	return len;
}

/* ---- one request, with retries ---- */

enum method { METHOD_GET, METHOD_HEAD };

static void setup_request(struct upstream *up, const char *url,
			  struct curl_slist *headers, struct transfer *t,
			  enum method method, bool follow)
{
	CURL *c = up->curl;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "haven/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, up->connect_timeout_s);
	/* a stalled transfer fails rather than hanging forever */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, up->stall_timeout_s);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	/* compression saves bandwidth on API listings; file bodies stay
	 * identity-encoded so that byte ranges mean file offsets */
	if (!t->sink)
		curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	/* file bodies in large reads: with libcurl's default of 16 KiB a
	 * 1 GiB file costs 65,536 each of poll, recv and pwrite */
	else
		curl_easy_setopt(c, CURLOPT_BUFFERSIZE, DOWNLOAD_BUFFER);
	if (up->ca_bundle[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, up->ca_bundle);
	if (up->max_rate)
		curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE,
				 (curl_off_t)up->max_rate);
	if (method == METHOD_HEAD)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
}

static struct curl_slist *make_headers(struct upstream *up, const char *token,
				       uint64_t offset, uint64_t length)
{
	struct curl_slist *h = NULL;
	char line[640];

	if (!token)
		token = up->token[0] ? up->token : NULL;
	if (token && token[0]) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, line);
	}
	if (offset || length) {
		if (length)
			snprintf(line, sizeof(line), "Range: bytes=%llu-%llu",
				 (unsigned long long)offset,
				 (unsigned long long)(offset + length - 1));
		else
			snprintf(line, sizeof(line), "Range: bytes=%llu-",
				 (unsigned long long)offset);
		h = curl_slist_append(h, line);
	}
	return h;
}

static bool status_retryable(long status)
{
	return status == 429 || status == 500 || status == 502 ||
	       status == 503 || status == 504;
}

static int status_to_err(const struct upstream_reply *r, const char *url,
			 struct err *err)
{
	const char *code = r->error_code;

	switch (r->status) {
	case 401:
		if (!strcmp(code, "RepoNotFound"))
			return err_set(err, ERR_NOREPO,
				       "upstream: repository not found (%s)", url);
		return err_set(err, ERR_AUTH,
			       "upstream refused the credentials (401, %s)", url);
	case 403:
		if (!strcmp(code, "GatedRepo"))
			return err_set(err, ERR_GATED,
				       "upstream: gated repository, access not granted (%s)",
				       url);
		return err_set(err, ERR_FORBIDDEN, "upstream: forbidden (403, %s)",
			       url);
	case 404:
		if (!strcmp(code, "RevisionNotFound"))
			return err_set(err, ERR_NOREV,
				       "upstream: revision not found (%s)", url);
		if (!strcmp(code, "EntryNotFound"))
			return err_set(err, ERR_NOENTRY,
				       "upstream: file not found (%s)", url);
		return err_set(err, ERR_NOREPO, "upstream: not found (404, %s)", url);
	case 416:
		return err_set(err, ERR_RANGE, "upstream: range not satisfiable (%s)",
			       url);
	default:
		return err_set(err, ERR_UPSTREAM, "upstream answered %ld for %s",
			       r->status, url);
	}
}

static void backoff_sleep(int attempt, long retry_after_s)
{
	long s = retry_after_s > 0 ? retry_after_s : 1L << (attempt < 6 ? attempt : 6);
	struct timespec ts;

	if (s > MAX_BACKOFF_S)
		s = MAX_BACKOFF_S;
	ts.tv_sec = s;
	ts.tv_nsec = 0;
	nanosleep(&ts, NULL);
}

/* Runs one request to completion, retrying what may pass. Downloads
 * resume after the bytes already delivered. */
static int perform(struct upstream *up, const char *path, const char *token,
		   enum method method, uint64_t offset, uint64_t length,
		   struct transfer *t, struct err *err)
{
	char url[4096];
	int attempt = 0;

	if (snprintf(url, sizeof(url), "%s%s", up->base, path) >= (int)sizeof(url))
		return err_set(err, ERR_TOOBIG, "upstream URL too long");
	for (;;) {
		uint64_t at = offset + t->delivered;
		uint64_t left = length ? length - t->delivered : 0;
		struct curl_slist *h = make_headers(up, token, t->sink ? at : 0,
						    t->sink ? left : 0);
		char curl_msg[CURL_ERROR_SIZE] = "";
		CURLcode cc;

		memset(t->reply, 0, sizeof(*t->reply));
		t->retry_after_s = 0;
		t->range_from = t->sink ? at : 0;
		t->body_len = 0;
		setup_request(up, url, h, t, method,
			      method == METHOD_GET);
		curl_easy_setopt(up->curl, CURLOPT_ERRORBUFFER, curl_msg);
		cc = curl_easy_perform(up->curl);
		curl_slist_free_all(h);
		if (t->sink_failed)
			return err->code ? err->code :
			       err_set(err, ERR_FAIL, "download of %s aborted", url);
		if (cc == CURLE_OK && !status_retryable(t->reply->status)) {
			if (t->reply->status >= 400)
				return status_to_err(t->reply, url, err);
			return 0;
		}
		if (++attempt > up->max_retries) {
			if (cc != CURLE_OK)
				return err_set(err, ERR_TIMEOUT,
					       "upstream %s unreachable: %s", url,
					       curl_msg[0] ? curl_msg :
					       curl_easy_strerror(cc));
			return status_to_err(t->reply, url, err);
		}
		log_msg(LOG_WARN, "upstream %s: %s; retry %d of %d", url,
			cc != CURLE_OK ? curl_easy_strerror(cc) : "busy",
			attempt, up->max_retries);
		backoff_sleep(attempt - 1, t->retry_after_s);
	}
}

int upstream_get_json(struct upstream *up, const char *path,
		      const char *token, json_t **out,
		      struct upstream_reply *reply, struct err *err)
{
	struct upstream_reply local;
	struct transfer t = { .reply = reply ? reply : &local };
	json_error_t jerr;
	int rc;

	rc = perform(up, path, token, METHOD_GET, 0, 0, &t, err);
	if (rc == 0) {
		*out = json_loadb(t.body ? t.body : "", t.body_len, 0, &jerr);
		if (!*out)
			rc = err_set(err, ERR_UPSTREAM,
				     "upstream %s: answer is not JSON (%s)",
				     path, jerr.text);
	}
	free(t.body);
	return rc;
}

int upstream_head(struct upstream *up, const char *path, const char *token,
		  struct upstream_reply *reply, struct err *err)
{
	struct transfer t = { .reply = reply };
	int rc = perform(up, path, token, METHOD_HEAD, 0, 0, &t, err);

	free(t.body);
	/* a redirect to the CDN is the answer for LFS files, as on the Hub */
	return rc;
}

int upstream_download(struct upstream *up, const char *path,
		      const char *token, uint64_t offset, uint64_t length,
		      upstream_sink_fn sink, void *arg,
		      struct upstream_reply *reply, struct err *err)
{
	struct upstream_reply local;
	struct transfer t = { .reply = reply ? reply : &local, .sink = sink,
			      .sink_arg = arg, .want = length };
	int rc = perform(up, path, token, METHOD_GET, offset, length, &t, err);

	free(t.body);
	if (rc == 0 && length && t.delivered != length)
		rc = err_set(err, ERR_UPSTREAM,
			     "upstream sent %llu of %llu bytes for %s",
			     (unsigned long long)t.delivered,
			     (unsigned long long)length, path);
	return rc;
}
