/*
 * s3_client.c: the S3 client (s3_client.h) on libcurl's easy interface.
 *
 * Every operation builds one struct call: method, bucket, key, query,
 * a few headers, and either a body in memory or nothing to send. call_run
 * signs it (SigV4, always with x-amz-content-sha256, which RGW requires),
 * sends it on the client's curl handle (so the connection is reused),
 * streams a 2xx body into the caller's sink, and turns anything else into
 * an err code with S3's <Code> and <Message> in the text. The small XML
 * answers (uploads, listings, errors) are read with a few string searches:
 * S3's XML is flat and regular, and a full parser would add a dependency
 * for nothing.
 */
#include "common/compat.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>

#include <curl/curl.h>

#include "common/util.h"
#include "storage/hash.h"
#include "storage/s3_client.h"
#include "storage/s3_sigv4.h"

#define MAX_ERROR_BODY (64u << 10)  /* an error's XML kept for its message */
#define MAX_XML_BODY (16u << 20)    /* a listing page or an upload answer */
#define MAX_PARTS 10000		    /* S3's limit */

struct s3_client {
	char *endpoint;		/* "http://host:port", no trailing '/' */
	char *host;		/* "host:port" as sent in Host */
	char *access_key;
	char *secret_key;
	char *region;
	size_t part_size;
	unsigned list_page;
	long stall_timeout_s;
	CURL *curl;
	char curl_error[CURL_ERROR_SIZE];
	time_t list_mtime;	/* LastModified of the entry being listed */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* --- Client ------------------------------------------------------------------ */

static const char *setting(const char *value, const char *env)
{
	const char *v = value ? value : getenv(env);

	return v && v[0] ? v : NULL;
}

/* Splits "http[s]://host[:port][/]" into the client's endpoint and host. */
static int parse_endpoint(struct s3_client *c, const char *url, struct err *err)
{
	const char *host;
	size_t n;

	if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return err_set(err, ERR_INVALID,
			       "S3 endpoint '%s' is not an http:// or https:// URL", url);
	n = strcspn(host, "/?#");
	if (n == 0 || (host[n] && strcmp(host + n, "/") != 0) ||
	    memchr(host, '@', n) || strcspn(host, " \t\r\n") < n)
		return err_set(err, ERR_INVALID,
			       "S3 endpoint '%s' must be scheme://host[:port] "
			       "(buckets are addressed path-style)", url);
	c->host = strndup(host, n);
	c->endpoint = strndup(url, (size_t)(host - url) + n);
	if (!c->host || !c->endpoint)
		return err_set(err, ERR_FAIL, "out of memory");
	return 0;
}

int s3_client_new(struct s3_client **out, const struct s3_config *cfg,
		  struct err *err)
{
	const struct s3_config none = { 0 };
	struct s3_client *c = NULL;
	const char *endpoint, *ak, *sk, *region;
	int error = ERR_FAIL;

	*out = NULL;
	if (!cfg)
		cfg = &none;
	endpoint = setting(cfg->endpoint, "HAVEN_S3_ENDPOINT");
	ak = setting(cfg->access_key, "AWS_ACCESS_KEY_ID");
	sk = setting(cfg->secret_key, "AWS_SECRET_ACCESS_KEY");
	region = setting(cfg->region, "AWS_REGION");
	if (!region)
		region = "us-east-1";
	if (!endpoint)
		return err_set(err, ERR_INVALID,
			       "no S3 endpoint (set it in the config or HAVEN_S3_ENDPOINT)");
	if (!ak || !sk)
		return err_set(err, ERR_AUTH, "no S3 keys (set them in the config or "
			       "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
	if (cfg->part_size && (cfg->part_size < S3_PART_SIZE_MIN ||
			       cfg->part_size > S3_PART_SIZE_MAX))
		return err_set(err, ERR_INVALID,
			       "S3 part size %zu is not within %u to %u bytes",
			       cfg->part_size, S3_PART_SIZE_MIN, S3_PART_SIZE_MAX);
	pthread_once(&curl_once, curl_init_once);
	c = calloc(1, sizeof(*c));
	if (!c) {
		error = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	if ((error = parse_endpoint(c, endpoint, err)) < 0)
		goto out;
	c->access_key = strdup(ak);
	c->secret_key = strdup(sk);
	c->region = strdup(region);
	c->curl = curl_easy_init();
	if (!c->access_key || !c->secret_key || !c->region || !c->curl) {
		error = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	c->part_size = cfg->part_size ? cfg->part_size : S3_PART_SIZE_DEFAULT;
	c->list_page = cfg->list_page ? cfg->list_page : 1000;
	c->stall_timeout_s = cfg->stall_timeout_s > 0 ? cfg->stall_timeout_s : 60;
	*out = c;
	c = NULL;
	error = 0;
out:
	s3_client_free(c);
	return error;
}

void s3_client_free(struct s3_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	if (c->secret_key)
		memset(c->secret_key, 0, strlen(c->secret_key));
	free(c->endpoint);
	free(c->host);
	free(c->access_key);
	free(c->secret_key);
	free(c->region);
	free(c);
}

/* --- Small XML answers -------------------------------------------------------- */

/* Finds <tag>value</tag> in [p, end); sets *v and *vlen, returns a pointer
 * past the closing tag, or NULL. */
static const char *xml_find(const char *p, const char *end, const char *tag,
			    const char **v, size_t *vlen)
{
	char open[64], close[64];
	const char *s, *e;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	s = memmem(p, (size_t)(end - p), open, strlen(open));
	if (!s)
		return NULL;
	s += strlen(open);
	e = memmem(s, (size_t)(end - s), close, strlen(close));
	if (!e)
		return NULL;
	*v = s;
	*vlen = (size_t)(e - s);
	return e + strlen(close);
}

/* A copy of v with XML's five entities and numeric ASCII references
 * decoded; NULL when out of memory. */
static char *xml_text(const char *v, size_t n)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	char *out = malloc(n + 1), *o = out;
	size_t i, k;

	if (!out)
		return NULL;
	for (i = 0; i < n;) {
		int done = 0;

		if (v[i] == '&') {
			for (k = 0; k < ARRAY_SIZE(ents); k++) {
				size_t l = strlen(ents[k].ent);

				if (n - i >= l && memcmp(v + i, ents[k].ent, l) == 0) {
					*o++ = ents[k].c;
					i += l;
					done = 1;
					break;
				}
			}
			if (!done && n - i > 3 && v[i + 1] == '#') {
				const char *semi = memchr(v + i, ';', n - i);
				long code = semi ? strtol(v + i + 2, NULL, 10) : 0;

				if (code > 0 && code < 128) {
					*o++ = (char)code;
					i = (size_t)(semi - v) + 1;
					done = 1;
				}
			}
		}
		if (!done)
			*o++ = v[i++];
	}
	*o = '\0';
	return out;
}

/* --- One request ------------------------------------------------------------------ */

struct call {
	/* in */
	const char *method;
	const char *bucket;
	const char *key;		/* NULL: the bucket itself */
	struct s3_pair query[6];
	size_t nquery;
	const char *range;		/* "bytes=A-B" or NULL */
	const char *content_type;
	const char *body;		/* sent when body_len > 0 or put */
	size_t body_len;
	int send_body;			/* PUT/POST with a body (maybe empty) */
	const char *payload_hash;	/* NULL: sha256 of the body */
	int head;			/* HEAD: no body expected */
	s3_write_fn sink;		/* 2xx body; NULL: kept in xml */
	void *sink_arg;
	size_t xml_max;
	/* out */
	long status;
	struct s3_str xml;		/* error body, or 2xx body without sink */
	uint64_t content_length;
	int has_length;
	uint64_t total_size;		/* from Content-Range */
	int has_total;
	char etag[80];
	size_t sent;
	uint64_t received;
	int sink_error;			/* the sink's code; its message in serr */
	struct err serr;
};

static void call_release(struct call *k)
{
	s3_str_release(&k->xml);
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct call *k = arg;
	size_t n = size * nitems, left = k->body_len - k->sent;

	if (n > left)
		n = left;
	memcpy(buf, k->body + k->sent, n);
	k->sent += n;
	return n;
}

static int is_2xx(long status)
{
	return status >= 200 && status < 300;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct call *k = arg;
	size_t n = size * nmemb;

	k->received += n;
	if (is_2xx(k->status) && k->sink) {
		int rc = k->sink(k->sink_arg, data, n, &k->serr);

		if (rc < 0) {
			k->sink_error = rc;
			return 0; /* CURLE_WRITE_ERROR */
		}
		return n;
	}
	if (k->xml.len + n > (is_2xx(k->status) ? k->xml_max : MAX_ERROR_BODY)) {
		if (is_2xx(k->status)) {
			k->sink_error = err_set(&k->serr, ERR_TOOBIG,
						"S3 answer larger than %zu bytes", k->xml_max);
			return 0;
		}
		return n; /* the start of an error is enough */
	}
	s3_str_add(&k->xml, data, n);
	return k->xml.failed ? 0 : n;
}

static int header_is(const char *line, size_t n, const char *name,
		     const char **value, size_t *vlen)
{
	size_t l = strlen(name);

	if (n <= l || strncasecmp(line, name, l) != 0 || line[l] != ':')
		return 0;
	line += l + 1;
	n -= l + 1;
	while (n && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
		n--;
	*value = line;
	*vlen = n;
	return 1;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *arg)
{
	struct call *k = arg;
	size_t n = size * nitems, vlen;
	const char *v;
	char num[32];

	if (n > 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue): status and fields anew */
		const char *sp = memchr(line, ' ', n);

		k->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		k->has_length = k->has_total = 0;
		k->etag[0] = '\0';
		return n;
	}
	if (header_is(line, n, "ETag", &v, &vlen)) {
		if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
			v++;
			vlen -= 2;
		}
		if (vlen < sizeof(k->etag)) {
			memcpy(k->etag, v, vlen);
			k->etag[vlen] = '\0';
		}
	} else if (header_is(line, n, "Content-Length", &v, &vlen) &&
		   vlen < sizeof(num)) {
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		k->content_length = strtoull(num, NULL, 10);
		k->has_length = 1;
	} else if (header_is(line, n, "Content-Range", &v, &vlen)) {
		/* "bytes A-B/TOTAL" */
		const char *slash = memchr(v, '/', vlen);

		if (slash && (size_t)(v + vlen - slash - 1) < sizeof(num) &&
		    v + vlen - slash > 1) {
			memcpy(num, slash + 1, (size_t)(v + vlen - slash - 1));
			num[v + vlen - slash - 1] = '\0';
			if (num[0] != '*') {
				k->total_size = strtoull(num, NULL, 10);
				k->has_total = 1;
			}
		}
	}
	return n;
}

/* The err code for an S3 error answer. */
static int status_code(long status, const char *code)
{
	if (strcmp(code, "SignatureDoesNotMatch") == 0 ||
	    strcmp(code, "InvalidAccessKeyId") == 0 ||
	    strcmp(code, "RequestTimeTooSkewed") == 0 ||
	    strcmp(code, "AuthorizationHeaderMalformed") == 0)
		return ERR_AUTH;
	if (strcmp(code, "BucketAlreadyExists") == 0)
		return ERR_EXISTS;
	switch (status) {
	case 400:
		return ERR_INVALID;
	case 401:
		return ERR_AUTH;
	case 403:
		return ERR_FORBIDDEN;
	case 404:
		return ERR_NOTFOUND;
	case 409:
	case 412:
		return ERR_CONFLICT;
	case 413:
		return ERR_TOOBIG;
	case 416:
		return ERR_RANGE;
	case 500:
	case 502:
	case 503:
	case 504:
		return ERR_UNAVAILABLE;
	default:
		return ERR_FAIL;
	}
}

/* "/bucket/key" for messages and signing. */
static void add_path(struct s3_str *s, const struct call *k, int encode)
{
	s3_str_add(s, "/", 1);
	if (encode)
		s3_str_add_uri(s, k->bucket, 0);
	else
		s3_str_adds(s, k->bucket);
	if (k->key) {
		s3_str_add(s, "/", 1);
		if (encode)
			s3_str_add_uri(s, k->key, 1);
		else
			s3_str_adds(s, k->key);
	}
}

/* Sets err from an answer that is not 2xx. */
static int answer_error(struct call *k, struct err *err)
{
	const char *end = s3_str_get(&k->xml) + k->xml.len, *v;
	char *code = NULL, *msg = NULL;
	struct s3_str path = S3_STR_INIT;
	size_t n;
	int rc;

	if (xml_find(s3_str_get(&k->xml), end, "Code", &v, &n))
		code = xml_text(v, n < 64 ? n : 64);
	if (xml_find(s3_str_get(&k->xml), end, "Message", &v, &n))
		msg = xml_text(v, n < 160 ? n : 160);
	add_path(&path, k, 0);
	rc = status_code(k->status, code ? code : "");
	if (!code && k->status == 404)
		code = strdup("NotFound"); /* HEAD answers carry no body */
	err_set(err, rc, "S3 %s %s: %ld %s%s%s", k->method, s3_str_get(&path),
		k->status, code ? code : "(no code)", msg && msg[0] ? ": " : "",
		msg ? msg : "");
	free(code);
	free(msg);
	s3_str_release(&path);
	return rc;
}

static int transport_error(struct s3_client *c, struct call *k, CURLcode rc,
			   struct err *err)
{
	struct s3_str path = S3_STR_INIT;
	int code;

	if (rc == CURLE_WRITE_ERROR && k->sink_error) {
		if (err) {
			err->code = k->serr.code;
			memcpy(err->msg, k->serr.msg, sizeof(err->msg));
		}
		return k->sink_error;
	}
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		code = ERR_TIMEOUT;
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		code = ERR_UNAVAILABLE;
		break;
	default:
		code = ERR_FAIL;
	}
	add_path(&path, k, 0);
	err_set(err, code, "S3 %s %s at %s: %s", k->method, s3_str_get(&path),
		c->endpoint, c->curl_error[0] ? c->curl_error : curl_easy_strerror(rc));
	s3_str_release(&path);
	return code;
}

/* Signs and sends k; 0 for a 2xx answer. */
static int call_run(struct s3_client *c, struct call *k, struct err *err)
{
	struct s3_sigv4_key key = { c->access_key, c->secret_key, c->region, "s3" };
	struct s3_pair sh[4];
	struct s3_sigv4_request req;
	struct s3_str path = S3_STR_INIT, url = S3_STR_INIT, hv = S3_STR_INIT;
	struct curl_slist *hdrs = NULL, *h;
	char date[S3_AMZ_DATE_LEN], body_hash[SHA256_HEX_LEN + 1];
	char *auth = NULL;
	const char *payload;
	size_t i, nsh = 0;
	CURL *cu = c->curl;
	CURLcode crc;
	int error = ERR_FAIL;

	if (!k->xml_max)
		k->xml_max = MAX_XML_BODY;
	if (k->payload_hash) {
		payload = k->payload_hash;
	} else {
		sha256_hex(body_hash, k->body ? k->body : "", k->body_len);
		payload = body_hash;
	}
	s3_amz_date(date, time(NULL));
	add_path(&path, k, 0);
	sh[nsh++] = (struct s3_pair){ "host", c->host };
	sh[nsh++] = (struct s3_pair){ "x-amz-content-sha256", payload };
	sh[nsh++] = (struct s3_pair){ "x-amz-date", date };
	if (k->range)
		sh[nsh++] = (struct s3_pair){ "range", k->range };
	req = (struct s3_sigv4_request){ k->method, s3_str_get(&path), k->query,
					 k->nquery, sh, nsh, payload };
	if ((error = s3_sigv4_authorization(&auth, NULL, &key, date, &req, err)) < 0)
		goto out;

	/* The URL carries what was signed: the same encoding of path and
	 * query, so that what the server canonicalises matches. */
	s3_str_adds(&url, c->endpoint);
	add_path(&url, k, 1);
	for (i = 0; i < k->nquery; i++) {
		s3_str_add(&url, i ? "&" : "?", 1);
		s3_str_add_uri(&url, k->query[i].name, 0);
		if (k->query[i].value && k->query[i].value[0]) {
			s3_str_add(&url, "=", 1);
			s3_str_add_uri(&url, k->query[i].value, 0);
		}
	}
	for (i = 0; i < nsh; i++) {
		s3_str_release(&hv);
		s3_str_addf(&hv, "%s: %s", sh[i].name, sh[i].value);
		if (hv.failed || !(h = curl_slist_append(hdrs, hv.ptr)))
			goto oom;
		hdrs = h;
	}
	s3_str_release(&hv);
	s3_str_addf(&hv, "Authorization: %s", auth);
	if (hv.failed || !(h = curl_slist_append(hdrs, hv.ptr)))
		goto oom;
	hdrs = h;
	/* No "Expect: 100-continue" wait before each part. */
	if (!(h = curl_slist_append(hdrs, "Expect:")))
		goto oom;
	hdrs = h;
	if (k->content_type) {
		s3_str_release(&hv);
		s3_str_addf(&hv, "Content-Type: %s", k->content_type);
		if (hv.failed || !(h = curl_slist_append(hdrs, hv.ptr)))
			goto oom;
		hdrs = h;
	}
	if (url.failed)
		goto oom;

	curl_easy_reset(cu);
	c->curl_error[0] = '\0';
	curl_easy_setopt(cu, CURLOPT_URL, url.ptr);
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, c->curl_error);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(cu, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(cu, CURLOPT_LOW_SPEED_TIME, c->stall_timeout_s);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(cu, CURLOPT_HEADERDATA, k);
	curl_easy_setopt(cu, CURLOPT_BUFFERSIZE, 256L << 10);
	if (k->head) {
		curl_easy_setopt(cu, CURLOPT_NOBODY, 1L);
	} else if (k->send_body) {
		curl_easy_setopt(cu, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(cu, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(cu, CURLOPT_READDATA, k);
		curl_easy_setopt(cu, CURLOPT_INFILESIZE_LARGE, (curl_off_t)k->body_len);
		if (strcmp(k->method, "PUT") != 0)
			curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, k->method);
	} else if (strcmp(k->method, "GET") != 0) {
		curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, k->method);
	}
	crc = curl_easy_perform(cu);
	if (crc != CURLE_OK) {
		error = transport_error(c, k, crc, err);
		goto out;
	}
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &k->status);
	if (!is_2xx(k->status)) {
		error = answer_error(k, err);
		goto out;
	}
	if (!k->head && k->has_length && k->received != k->content_length) {
		error = err_set(err, ERR_CORRUPT,
				"S3 %s %s: got %" PRIu64 " of %" PRIu64 " bytes",
				k->method, s3_str_get(&path), k->received,
				k->content_length);
		goto out;
	}
	error = 0;
	goto out;
oom:
	error = err_set(err, ERR_FAIL, "out of memory");
out:
	if (auth)
		memset(auth, 0, strlen(auth));
	free(auth);
	curl_slist_free_all(hdrs);
	s3_str_release(&path);
	s3_str_release(&url);
	s3_str_release(&hv);
	return error;
}

/* --- Buckets and objects ------------------------------------------------------------ */

static int check_names(const char *bucket, const char *key, struct err *err)
{
	size_t n = bucket ? strlen(bucket) : 0;

	if (n < 3 || n > 63 || strspn(bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n)
		return err_set(err, ERR_INVALID, "invalid S3 bucket name '%s'",
			       bucket ? bucket : "");
	if (key && (!key[0] || strlen(key) > 1024))
		return err_set(err, ERR_INVALID, "invalid S3 key (empty or over 1024 bytes)");
	return 0;
}

int s3_bucket_create(struct s3_client *c, const char *bucket, struct err *err)
{
	struct call k = { .method = "PUT", .bucket = bucket, .send_body = 1 };
	int error;

	if ((error = check_names(bucket, NULL, err)) < 0)
		return error;
	error = call_run(c, &k, err);
	if (error == ERR_CONFLICT && strstr(s3_str_get(&k.xml), "BucketAlreadyOwnedByYou")) {
		err_clear(err);
		error = 0;
	}
	call_release(&k);
	return error;
}

int s3_bucket_delete(struct s3_client *c, const char *bucket, struct err *err)
{
	struct call k = { .method = "DELETE", .bucket = bucket };
	int error;

	if ((error = check_names(bucket, NULL, err)) < 0)
		return error;
	error = call_run(c, &k, err);
	call_release(&k);
	return error;
}

int s3_object_head(struct s3_client *c, const char *bucket, const char *key,
		   struct s3_object_info *info, struct err *err)
{
	struct call k = { .method = "HEAD", .bucket = bucket, .key = key, .head = 1 };
	int error;

	if ((error = check_names(bucket, key, err)) < 0)
		return error;
	if ((error = call_run(c, &k, err)) < 0)
		goto out;
	if (!k.has_length) {
		error = err_set(err, ERR_FAIL, "S3 HEAD /%s/%s: no Content-Length",
				bucket, key);
		goto out;
	}
	if (info) {
		info->size = k.content_length;
		str_copy(info->etag, k.etag, sizeof(info->etag));
	}
out:
	call_release(&k);
	return error;
}

int s3_object_get(struct s3_client *c, const char *bucket, const char *key,
		  uint64_t offset, uint64_t len, s3_write_fn write, void *arg,
		  struct s3_object_info *info, struct err *err)
{
	struct call k = { .method = "GET", .bucket = bucket, .key = key,
			  .sink = write, .sink_arg = arg };
	char range[64];
	int error;

	if ((error = check_names(bucket, key, err)) < 0)
		return error;
	if (len && offset > UINT64_MAX - len)
		return err_set(err, ERR_RANGE, "byte range past 2^64");
	if (offset || len) {
		if (len)
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64,
				 offset, offset + len - 1);
		else
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", offset);
		k.range = range;
	}
	if ((error = call_run(c, &k, err)) < 0)
		goto out;
	/* A server that ignored the range sent the whole object: the sink
	 * got the wrong bytes. */
	if (k.range && k.status != 206) {
		error = err_set(err, ERR_FAIL, "S3 GET /%s/%s: %s answered %ld, not 206",
				bucket, key, range, k.status);
		goto out;
	}
	if (info) {
		info->size = k.range ? (k.has_total ? k.total_size : 0) : k.received;
		str_copy(info->etag, k.etag, sizeof(info->etag));
	}
out:
	call_release(&k);
	return error;
}

int s3_object_delete(struct s3_client *c, const char *bucket,
		     const char *key, struct err *err)
{
	struct call k = { .method = "DELETE", .bucket = bucket, .key = key };
	int error;

	if ((error = check_names(bucket, key, err)) < 0)
		return error;
	error = call_run(c, &k, err);
	if (error == ERR_NOTFOUND && strstr(err ? err->msg : "", "NoSuchKey")) {
		err_clear(err);
		error = 0;
	}
	call_release(&k);
	return error;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard
 * Hinnant's days_from_civil): timegm() without the process's TZ. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* "2026-11-26T17:38:28.000Z" to seconds since the epoch; 0 when
 * malformed. */
static time_t parse_iso8601(const char *s)
{
	int y, mo, d, h, mi, sec;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6 ||
	    mo < 1 || mo > 12 || d < 1 || d > 31)
		return 0;
	return (time_t)(days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
			h * 3600 + mi * 60 + sec);
}

time_t s3_object_list_mtime(const struct s3_client *c)
{
	return c->list_mtime;
}

/* One ListObjectsV2 page: each <Contents> to each(); *next gets the
 * continuation token (malloc'd) or NULL at the end. */
static int list_page(struct s3_client *c, const char *bucket,
		     const char *prefix, const char *token, s3_list_fn each,
		     void *arg, char **next, struct err *err)
{
	struct call k = { .method = "GET", .bucket = bucket };
	const char *p, *end, *v, *item, *item_end;
	char page[16];
	char *key = NULL, *etag = NULL, *num = NULL;
	size_t n, ilen;
	int error;

	*next = NULL;
	snprintf(page, sizeof(page), "%u", c->list_page);
	k.query[k.nquery++] = (struct s3_pair){ "list-type", "2" };
	k.query[k.nquery++] = (struct s3_pair){ "max-keys", page };
	k.query[k.nquery++] = (struct s3_pair){ "encoding-type", "url" };
	if (prefix && prefix[0])
		k.query[k.nquery++] = (struct s3_pair){ "prefix", prefix };
	if (token)
		k.query[k.nquery++] = (struct s3_pair){ "continuation-token", token };
	if ((error = call_run(c, &k, err)) < 0)
		goto out;
	p = s3_str_get(&k.xml);
	end = p + k.xml.len;
	while ((p = xml_find(p, end, "Contents", &item, &ilen))) {
		uint64_t size = 0;
		long dl;

		item_end = item + ilen;
		free(key);
		free(etag);
		key = etag = NULL;
		if (!xml_find(item, item_end, "Key", &v, &n) || !(key = xml_text(v, n))) {
			error = err_set(err, ERR_CORRUPT, "S3 listing of '%s': an entry without Key",
					bucket);
			goto out;
		}
		/* encoding-type=url: keys come percent-encoded */
		dl = url_decode(key, key, strlen(key));
		if (dl < 0) {
			error = err_set(err, ERR_CORRUPT, "S3 listing of '%s': malformed key", bucket);
			goto out;
		}
		key[dl] = '\0';
		if (xml_find(item, item_end, "Size", &v, &n) && (num = xml_text(v, n))) {
			size = strtoull(num, NULL, 10);
			free(num);
			num = NULL;
		}
		if (xml_find(item, item_end, "ETag", &v, &n) && (etag = xml_text(v, n))) {
			size_t l = strlen(etag);

			if (l >= 2 && etag[0] == '"' && etag[l - 1] == '"') {
				memmove(etag, etag + 1, l - 2);
				etag[l - 2] = '\0';
			}
		}
		c->list_mtime = 0;
		if (xml_find(item, item_end, "LastModified", &v, &n) && (num = xml_text(v, n))) {
			c->list_mtime = parse_iso8601(num);
			free(num);
			num = NULL;
		}
		if ((error = each(arg, key, size, etag ? etag : "", err)) < 0)
			goto out;
	}
	p = s3_str_get(&k.xml);
	if (xml_find(p, end, "IsTruncated", &v, &n) && n == 4 && memcmp(v, "true", 4) == 0) {
		if (!xml_find(p, end, "NextContinuationToken", &v, &n) ||
		    !(*next = xml_text(v, n))) {
			error = err_set(err, ERR_CORRUPT,
					"S3 listing of '%s' is truncated but has no continuation token",
					bucket);
			goto out;
		}
	}
	error = 0;
out:
	free(key);
	free(etag);
	call_release(&k);
	return error;
}

int s3_object_list(struct s3_client *c, const char *bucket,
		   const char *prefix, s3_list_fn each, void *arg,
		   struct err *err)
{
	char *token = NULL, *next = NULL;
	int error;

	if ((error = check_names(bucket, NULL, err)) < 0)
		return error;
	do {
		error = list_page(c, bucket, prefix, token, each, arg, &next, err);
		free(token);
		token = next;
		next = NULL;
	} while (error == 0 && token);
	free(token);
	return error;
}

int s3_presign_get(struct s3_client *c, const char *bucket, const char *key,
		   long expires_s, char **url, struct err *err)
{
	struct s3_sigv4_key skey = { c->access_key, c->secret_key, c->region, "s3" };
	struct call k = { .bucket = bucket, .key = key };
	struct s3_pair h[] = { { "host", c->host } };
	struct s3_sigv4_request req;
	struct s3_str path = S3_STR_INIT, out = S3_STR_INIT;
	char date[S3_AMZ_DATE_LEN];
	char *query = NULL;
	int error;

	*url = NULL;
	if ((error = check_names(bucket, key, err)) < 0)
		return error;
	s3_amz_date(date, time(NULL));
	add_path(&path, &k, 0);
	req = (struct s3_sigv4_request){ "GET", s3_str_get(&path), NULL, 0, h, 1,
					 S3_UNSIGNED_PAYLOAD };
	if ((error = s3_sigv4_presign(&query, &skey, date, expires_s, &req, err)) < 0)
		goto out;
	s3_str_adds(&out, c->endpoint);
	add_path(&out, &k, 1);
	s3_str_addf(&out, "?%s", query);
	if (out.failed) {
		error = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	*url = out.ptr;
	out.ptr = NULL;
out:
	free(query);
	s3_str_release(&path);
	s3_str_release(&out);
	return error;
}

/* --- Multipart uploads ----------------------------------------------------------------- */

int s3_multipart_begin(struct s3_client *c, const char *bucket,
		       const char *key, char **upload_id, struct err *err)
{
	struct call k = { .method = "POST", .bucket = bucket, .key = key,
			  .send_body = 1 };
	const char *v;
	size_t n;
	int error;

	*upload_id = NULL;
	if ((error = check_names(bucket, key, err)) < 0)
		return error;
	k.query[k.nquery++] = (struct s3_pair){ "uploads", "" };
	if ((error = call_run(c, &k, err)) < 0)
		goto out;
	if (!xml_find(s3_str_get(&k.xml), s3_str_get(&k.xml) + k.xml.len, "UploadId", &v, &n) ||
	    n == 0 || !(*upload_id = xml_text(v, n))) {
		error = err_set(err, ERR_FAIL, "S3 POST /%s/%s?uploads: no UploadId in the answer",
				bucket, key);
		goto out;
	}
out:
	call_release(&k);
	return error;
}

int s3_multipart_part_put(struct s3_client *c, const char *bucket,
			  const char *key, const char *upload_id, unsigned n,
			  const void *data, size_t len, const char *sha256,
			  char etag[80], struct err *err)
{
	struct call k = { .method = "PUT", .bucket = bucket, .key = key,
			  .body = data, .body_len = len, .send_body = 1,
			  .payload_hash = sha256 };
	char num[16];
	int error;

	etag[0] = '\0';
	if ((error = check_names(bucket, key, err)) < 0)
		return error;
	if (n < 1 || n > MAX_PARTS)
		return err_set(err, ERR_INVALID, "S3 part number %u is not within 1 to %d",
			       n, MAX_PARTS);
	snprintf(num, sizeof(num), "%u", n);
	k.query[k.nquery++] = (struct s3_pair){ "partNumber", num };
	k.query[k.nquery++] = (struct s3_pair){ "uploadId", upload_id };
	if ((error = call_run(c, &k, err)) < 0)
		goto out;
	if (!k.etag[0]) {
		error = err_set(err, ERR_FAIL, "S3 PUT /%s/%s part %u: no ETag in the answer",
				bucket, key, n);
		goto out;
	}
	str_copy(etag, k.etag, 80);
out:
	call_release(&k);
	return error;
}

int s3_multipart_complete(struct s3_client *c, const char *bucket,
			  const char *key, const char *upload_id,
			  char (*etags)[80], unsigned nparts, struct err *err)
{
	struct call k = { .method = "POST", .bucket = bucket, .key = key,
			  .send_body = 1, .content_type = "application/xml" };
	struct s3_str body = S3_STR_INIT;
	const char *v;
	size_t n;
	unsigned i;
	int error;

	if ((error = check_names(bucket, key, err)) < 0)
		return error;
	s3_str_adds(&body, "<CompleteMultipartUpload>");
	for (i = 0; i < nparts; i++)
		s3_str_addf(&body, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>",
			    i + 1, etags[i]);
	s3_str_adds(&body, "</CompleteMultipartUpload>");
	if (body.failed) {
		error = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	k.body = body.ptr;
	k.body_len = body.len;
	k.query[k.nquery++] = (struct s3_pair){ "uploadId", upload_id };
	if ((error = call_run(c, &k, err)) < 0)
		goto out;
	/* S3 may answer 200 and still fail, with an <Error> body. */
	if (xml_find(s3_str_get(&k.xml), s3_str_get(&k.xml) + k.xml.len, "Code", &v, &n)) {
		k.status = 500;
		error = answer_error(&k, err);
	}
out:
	call_release(&k);
	s3_str_release(&body);
	return error;
}

int s3_multipart_abort(struct s3_client *c, const char *bucket,
		       const char *key, const char *upload_id,
		       struct err *err)
{
	struct call k = { .method = "DELETE", .bucket = bucket, .key = key };
	int error;

	if ((error = check_names(bucket, key, err)) < 0)
		return error;
	k.query[k.nquery++] = (struct s3_pair){ "uploadId", upload_id };
	error = call_run(c, &k, err);
	call_release(&k);
	return error;
}

/* Fills buf from read() until len bytes or the end; *got gets the count. */
static int fill(s3_read_fn read, void *arg, char *buf, size_t len, size_t *got,
		struct err *err)
{
	ssize_t n;

	*got = 0;
	while (*got < len) {
		n = read(arg, buf + *got, len - *got, err);
		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

int s3_object_put(struct s3_client *c, const char *bucket, const char *key,
		  s3_read_fn read, void *arg, struct s3_put_result *res,
		  struct err *err)
{
	struct s3_put_result r = { 0 };
	struct sha256_ctx *whole = NULL;
	char (*etags)[80] = NULL;
	char *buf = NULL, *upload_id = NULL;
	char part_hash[SHA256_HEX_LEN + 1];
	size_t got, cap = 0;
	uint64_t total = 0;
	unsigned nparts = 0;
	int completed = 0;
	struct err aerr;
	int error;

	if ((error = check_names(bucket, key, err)) < 0)
		return error;
	buf = malloc(c->part_size);
	whole = sha256_new();
	if (!buf || !whole) {
		error = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	for (;;) {
		if ((error = fill(read, arg, buf, c->part_size, &got, err)) < 0)
			goto out;
		if (nparts == 0 && got < c->part_size) {
			/* all of it fits in one part: a single PUT */
			struct call k = { .method = "PUT", .bucket = bucket, .key = key,
					  .body = buf, .body_len = got, .send_body = 1,
					  .content_type = "application/octet-stream" };

			sha256_update(whole, buf, got);
			total = got;
			error = call_run(c, &k, err);
			call_release(&k);
			if (error < 0)
				goto out;
			completed = 1;
			break;
		}
		if (got == 0)
			break;
		if (!upload_id &&
		    (error = s3_multipart_begin(c, bucket, key, &upload_id, err)) < 0)
			goto out;
		if (nparts == MAX_PARTS) {
			error = err_set(err, ERR_TOOBIG,
					"S3 upload of '%s' needs more than %d parts of %zu bytes",
					key, MAX_PARTS, c->part_size);
			goto out;
		}
		if (nparts == cap) {
			char (*p)[80];

			cap = cap ? cap * 2 : 64;
			p = realloc(etags, cap * sizeof(*etags));
			if (!p) {
				error = err_set(err, ERR_FAIL, "out of memory");
				goto out;
			}
			etags = p;
		}
		sha256_update(whole, buf, got);
		sha256_hex(part_hash, buf, got);
		if ((error = s3_multipart_part_put(c, bucket, key, upload_id, nparts + 1,
						   buf, got, part_hash, etags[nparts],
						   err)) < 0)
			goto out;
		nparts++;
		total += got;
		if (got < c->part_size)
			break;
	}
	if (upload_id &&
	    (error = s3_multipart_complete(c, bucket, key, upload_id, etags, nparts,
					   err)) < 0)
		goto out;
	completed = 1;
	if ((error = s3_object_head(c, bucket, key, &r.info, err)) < 0)
		goto out;
	if (r.info.size != total) {
		error = err_set(err, ERR_CORRUPT,
				"S3 object /%s/%s holds %" PRIu64 " bytes after an upload of %" PRIu64,
				bucket, key, r.info.size, total);
		goto out;
	}
	r.parts = nparts;
	sha256_final_hex(whole, r.sha256);
	whole = NULL;
	if (res)
		*res = r;
out:
	/* Leave nothing half-written: no pending parts, no object that
	 * failed its check. */
	if (error < 0 && upload_id && !completed)
		s3_multipart_abort(c, bucket, key, upload_id, &aerr);
	if (error == ERR_CORRUPT && completed)
		s3_object_delete(c, bucket, key, &aerr);
	sha256_free(whole);
	free(etags);
	free(buf);
	free(upload_id);
	return error;
}
