/*
 * forward.c: passes HTTP requests on to the primary; see forward.h.
 *
 * Objects and their owners:
 *   struct forward  the pool: threads (each with its own curl handle, so
 *                   connections to the primary are reused), the queue of
 *                   jobs ready to send, and the list of every job (for
 *                   shutdown); one more curl handle for forward_get().
 *   struct fjob     one forwarded request. The worker thread owns it while
 *                   the body is spooled and again once the transfer ended;
 *                   in between a forward thread owns it. The only hand-over
 *                   back is event_active() on the job's wake event, the
 *                   thread's last touch of the job.
 * f->lock guards the queue, the list and f->stopping's changes.
 */
#include "common/compat.h"

#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "common/log.h"
#include "common/util.h"
#include "server/forward.h"
#include "server/http.h"
#include "server/hub_error.h"

#define JOB_MAGIC 0x46776a62u		/* "Fwjb" */
#define CONNECT_TIMEOUT_MS 3000L
/* No total limit (a git push may take long); instead a transfer is cut
 * when no byte moved for STALL_S seconds, or, once the whole body is
 * sent, no answer byte came for ANSWER_WAIT_S (the primary may work a
 * while on a large push before it answers). */
#define STALL_S 60
#define ANSWER_WAIT_S 600
#define UPLOAD_BUFFER (512L << 10)

struct fjob {
	unsigned magic;
	struct forward *f;
	struct http_request *req;
	forward_done_fn done;
	void *arg;
	struct event *wake;
	/* the request to send, made on the worker */
	char *method, *url;
	struct curl_slist *headers;
	bool head, upload;
	/* the spooled body */
	int fd;
	char spool[4200];
	uint64_t body_len;
	struct err spool_err;
	struct forward_answer *ans;
	STAILQ_ENTRY(fjob) in_queue;
	LIST_ENTRY(fjob) in_all;
};

struct forward {
	char primary[1024];
	char ca_bundle[4096];
	char spool_dir[4096];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool stopping;
	STAILQ_HEAD(, fjob) queue;
	LIST_HEAD(, fjob) all;
	int nthreads, started;
	pthread_t *threads;
	pthread_mutex_t get_lock;	/* serializes forward_get() */
	CURL *get_curl;
};

/* Request headers never passed on: hop-by-hop ones (RFC 9110 7.6.1), the
 * ones rebuilt here, and Expect (the body is already in hand). */
static const char *const request_drop[] = {
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding",
	"Upgrade", "Content-Length", "Expect", "X-Forwarded-For",
};

/* Answer headers never passed back: hop-by-hop ones, and the ones the
 * HTTP layer writes itself (http_response_header refuses them). */
static const char *const answer_drop[] = {
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding",
	"Upgrade", "Content-Length", "Date", "X-Request-Id",
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool name_in(const char *name, size_t len, const char *const *list,
		    size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == len && !strncasecmp(name, list[i], len))
			return true;
	return false;
}

/* Whether the Connection header value lists name as a token. */
static bool connection_names(const char *connection, const char *name)
{
	size_t len = strlen(name);
	const char *p = connection;

	while (p && *p) {
		size_t n;

		p += strspn(p, " \t,");
		n = strcspn(p, " \t,");
		if (n == len && n && !strncasecmp(p, name, n))
			return true;
		p += n;
	}
	return false;
}

/* --- answers --- */

static struct forward_answer *answer_new(void)
{
	struct forward_answer *ans = calloc(1, sizeof(*ans));

	if (!ans)
		return NULL;
	ans->content_length = -1;
	if (!(ans->body = evbuffer_new())) {
		free(ans);
		return NULL;
	}
	return ans;
}

static void answer_clear_headers(struct forward_answer *ans)
{
	for (size_t i = 0; i < ans->nheaders; i++) {
		free(ans->names[i]);
		free(ans->values[i]);
	}
	free(ans->names);
	free(ans->values);
	ans->names = ans->values = NULL;
	ans->nheaders = 0;
	ans->content_length = -1;
}

void forward_answer_free(struct forward_answer *ans)
{
	if (!ans)
		return;
	answer_clear_headers(ans);
	evbuffer_free(ans->body);
	free(ans);
}

/* The exchange failed: no status, no headers, no body, and why. */
static void answer_fail(struct forward_answer *ans, const struct err *why)
{
	answer_clear_headers(ans);
	evbuffer_drain(ans->body, evbuffer_get_length(ans->body));
	ans->status = 0;
	ans->err = *why;
}

static int answer_add_header(struct forward_answer *ans, const char *name,
			     size_t nlen, const char *value, size_t vlen)
{
	char **names, **values;
	size_t n = ans->nheaders + 1;

	names = realloc(ans->names, n * sizeof(*names));
	if (names)
		ans->names = names;
	values = realloc(ans->values, n * sizeof(*values));
	if (values)
		ans->values = values;
	if (!names || !values)
		return -1;
	if (!(names[n - 1] = strndup(name, nlen)))
		return -1;
	if (!(values[n - 1] = strndup(value, vlen))) {
		free(names[n - 1]);
		return -1;
	}
	ans->nheaders = n;
	return 0;
}

void forward_reply(struct http_request *req, struct forward_answer *ans)
{
	if (ans->status == 0) {
		hub_error_reply(req, &ans->err, NULL);
		return;
	}
	if (ans->status < 200 || ans->status > 599) {
		hub_error_replyf(req, ERR_UPSTREAM, "the primary answered "
				 "with status %d", ans->status);
		return;
	}
	for (size_t i = 0; i < ans->nheaders; i++)
		http_response_header(req, ans->names[i], ans->values[i]);
	if (http_request_method(req) == HTTP_HEAD && ans->content_length >= 0) {
		http_response_begin(req, ans->status, ans->content_length);
		http_response_end(req);
		return;
	}
	http_response_send(req, ans->status, ans->body);
}

/* --- one transfer, on a forward thread --- */

struct xfer {
	struct forward *f;
	struct fjob *job;		/* NULL for forward_get() */
	struct forward_answer *ans;
	bool too_big, stalled;
	uint64_t read_off;
	curl_off_t last_moved;		/* bytes up and down at last_time */
	struct timespec last_time;
	/* forward_get()'s body */
	char *buf;
	size_t len, cap;
};

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n, nlen, vlen;
	const char *colon, *value;

	if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
		/* A new status line (after 100 Continue): start over. */
		answer_clear_headers(x->ans);
		return len;
	}
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	if (len == 0 || data[0] == ' ' || data[0] == '\t')
		return size * n;	/* the end, or an obsolete folded line */
	if (!(colon = memchr(data, ':', len)))
		return size * n;
	nlen = (size_t)(colon - data);
	while (nlen > 0 && isspace((unsigned char)data[nlen - 1]))
		nlen--;
	value = colon + 1;
	vlen = len - (size_t)(value - data);
	while (vlen > 0 && isspace((unsigned char)*value)) {
		value++;
		vlen--;
	}
	while (vlen > 0 && isspace((unsigned char)value[vlen - 1]))
		vlen--;
	if (nlen == 14 && !strncasecmp(data, "Content-Length", 14)) {
		char tmp[32];
		char *end;
		long long cl;

		if (vlen < sizeof(tmp)) {
			memcpy(tmp, value, vlen);
			tmp[vlen] = '\0';
			errno = 0;
			cl = strtoll(tmp, &end, 10);
			if (!errno && end != tmp && !*end && cl >= 0)
				x->ans->content_length = cl;
		}
	}
	if (nlen == 0 || name_in(data, nlen, answer_drop,
				 ARRAY_SIZE(answer_drop)))
		return size * n;
	if (answer_add_header(x->ans, data, nlen, value, vlen) < 0)
		return 0;	/* out of memory: abort */
	return size * n;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	if (evbuffer_get_length(x->ans->body) + len > FORWARD_BODY_MAX) {
		x->too_big = true;
		return 0;
	}
	return evbuffer_add(x->ans->body, data, len) < 0 ? 0 : len;
}

static size_t on_read(char *out, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	struct fjob *job = x->job;
	uint64_t left = job->body_len - x->read_off;
	size_t want = size * n;
	ssize_t got;

	if (left == 0)
		return 0;
	if (want > left)
		want = (size_t)left;
	do
		got = pread(job->fd, out, want, (off_t)x->read_off);
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		err_set(&job->spool_err, ERR_FAIL, "cannot read the spooled "
			"body '%s': %s", job->spool,
			got < 0 ? strerror(errno) : "short file");
		return CURL_READFUNC_ABORT;
	}
	x->read_off += (uint64_t)got;
	return (size_t)got;
}

/* libcurl rewinds the body when it must send it again. */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || offset < 0 ||
	    (uint64_t)offset > x->job->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->read_off = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* Stops transfers in flight when the server stops, and stalled ones. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct xfer *x = arg;
	struct timespec now;
	bool waiting;

	if (atomic_load(&x->f->stopping))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (x->last_time.tv_sec == 0 || dlnow + ulnow != x->last_moved) {
		x->last_moved = dlnow + ulnow;
		x->last_time = now;
		return 0;
	}
	waiting = x->job && dlnow == 0 &&
		  (uint64_t)ulnow >= x->job->body_len;
	if (now.tv_sec - x->last_time.tv_sec >=
	    (waiting ? ANSWER_WAIT_S : STALL_S)) {
		x->stalled = true;
		return 1;
	}
	return 0;
}

static void setup_common(struct forward *f, CURL *c, const char *url,
			 struct xfer *x, char *errbuf)
{
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	/* The raw path goes as the client sent it: no "/../" squashing. */
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	if (f->ca_bundle[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, f->ca_bundle);
}

/* Turns the outcome of curl_easy_perform into ans (status or err). */
static void transfer_result(struct forward *f, CURL *c, CURLcode rc,
			    struct xfer *x, const char *errbuf)
{
	struct err why = { 0 };
	long status = 0;

	if (x->too_big)
		err_set(&why, ERR_UPSTREAM, "the primary's answer is larger "
			"than %zu MiB", FORWARD_BODY_MAX >> 20);
	else if (rc == CURLE_ABORTED_BY_CALLBACK && x->stalled)
		err_set(&why, ERR_UNAVAILABLE, "the primary '%s' stopped "
			"answering", f->primary);
	else if (rc == CURLE_ABORTED_BY_CALLBACK)
		err_set(&why, ERR_UNAVAILABLE, "the server is stopping");
	else if (rc == CURLE_READ_ERROR && x->job &&
		 x->job->spool_err.code)
		why = x->job->spool_err;
	else if (rc != CURLE_OK)
		err_set(&why, ERR_UNAVAILABLE, "the primary '%s' is "
			"unavailable: %s", f->primary,
			errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) !=
		 CURLE_OK || status < 100 || status > 999)
		err_set(&why, ERR_UNAVAILABLE, "the primary '%s' sent no "
			"usable answer", f->primary);
	if (why.code) {
		answer_fail(x->ans, &why);
		return;
	}
	x->ans->status = (int)status;
}

static void job_transfer(struct forward *f, CURL *c, struct fjob *job)
{
	struct xfer x = { .f = f, .job = job, .ans = job->ans };
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;

	setup_common(f, c, job->url, &x, errbuf);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, job->headers);
	if (job->head) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (job->upload) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)job->body_len);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, &x);
		curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, UPLOAD_BUFFER);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, job->method);
	} else if (strcmp(job->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, job->method);
	}
	rc = curl_easy_perform(c);
	transfer_result(f, c, rc, &x, errbuf);
	/* Drop references to this job's memory from the reused handle. */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	/* The path only: a query may carry a signed token. */
	if (job->ans->status == 0)
		log_msg(LOG_WARN, "event=forward_fail method=%s url=%.*s "
			"error=\"%s\"", job->method,
			(int)strcspn(job->url, "?"), job->url,
			job->ans->err.msg);
}

static void spool_remove(struct fjob *job)
{
	if (job->fd < 0)
		return;
	close(job->fd);
	job->fd = -1;
	if (unlink(job->spool) < 0 && errno != ENOENT)
		log_msg(LOG_WARN, "event=forward_spool_unlink path=%s "
			"errno=%d", job->spool, errno);
}

/* The job's answer is made: back to its worker. Nothing of the job may be
 * touched after event_active(), since the worker frees it. */
static void job_hand_back(struct fjob *job)
{
	event_active(job->wake, EV_TIMEOUT, 1);
}

static void *pool_main(void *arg)
{
	struct forward *f = arg;
	CURL *c = curl_easy_init();
	struct fjob *job;

	for (;;) {
		pthread_mutex_lock(&f->lock);
		while (!atomic_load(&f->stopping) && STAILQ_EMPTY(&f->queue))
			pthread_cond_wait(&f->cond, &f->lock);
		if (atomic_load(&f->stopping)) {
			pthread_mutex_unlock(&f->lock);
			break;
		}
		job = STAILQ_FIRST(&f->queue);
		STAILQ_REMOVE_HEAD(&f->queue, in_queue);
		pthread_mutex_unlock(&f->lock);
		if (c) {
			job_transfer(f, c, job);
		} else {
			struct err why;

			err_set(&why, ERR_FAIL, "cannot start the HTTP client");
			answer_fail(job->ans, &why);
		}
		spool_remove(job);
		job_hand_back(job);
	}
	curl_easy_cleanup(c);
	return NULL;
}

/* --- one forwarded request, on its worker thread --- */

static void job_free(struct fjob *job)
{
	spool_remove(job);
	if (job->wake)
		event_free(job->wake);
	curl_slist_free_all(job->headers);
	forward_answer_free(job->ans);
	free(job->method);
	free(job->url);
	job->magic = 0;
	free(job);
}

/* Calls done with the answer and frees the job. */
static void job_finish(struct fjob *job)
{
	struct forward *f = job->f;
	struct forward_answer *ans = job->ans;
	forward_done_fn done = job->done;
	struct http_request *req = job->req;
	void *arg = job->arg;

	pthread_mutex_lock(&f->lock);
	LIST_REMOVE(job, in_all);
	pthread_mutex_unlock(&f->lock);
	job->ans = NULL;
	job_free(job);
	done(req, ans, arg);
}

static void job_fail(struct fjob *job, const struct err *why)
{
	answer_fail(job->ans, why);
	job_finish(job);
}

static void job_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fjob *job = arg;

	assert(job && job->magic == JOB_MAGIC);
	job_finish(job);
}

static int spool_data(struct http_request *req, const char *data,
		      size_t len, void *arg)
{
	struct fjob *job = arg;

	if (job->fd < 0) {
		snprintf(job->spool, sizeof(job->spool), "%s/forward-XXXXXX",
			 job->f->spool_dir);
		if ((job->fd = mkstemp(job->spool)) < 0)
			return err_set(&job->spool_err, ERR_FAIL, "cannot "
				       "create a spool file in '%s': %s",
				       job->f->spool_dir, strerror(errno));
	}
	if (write_full(job->fd, data, len) < 0)
		return err_set(&job->spool_err, ERR_FAIL, "cannot write the "
			       "spool file '%s': %s", job->spool,
			       strerror(errno));
	job->body_len += len;
	return 0;
}

static void spool_done(struct http_request *req, int rc, void *arg)
{
	struct fjob *job = arg;
	struct forward *f = job->f;
	struct err why;

	if (rc < 0) {
		if (job->spool_err.code)
			why = job->spool_err;
		else
			err_set(&why, ERR_FAIL, "the request body could not "
				"be read");
		job_fail(job, &why);
		return;
	}
	pthread_mutex_lock(&f->lock);
	if (!atomic_load(&f->stopping)) {
		STAILQ_INSERT_TAIL(&f->queue, job, in_queue);
		pthread_cond_signal(&f->cond);
		pthread_mutex_unlock(&f->lock);
		return;
	}
	pthread_mutex_unlock(&f->lock);
	err_set(&why, ERR_UNAVAILABLE, "the server is stopping");
	job_fail(job, &why);
}

static int headers_add(struct curl_slist **list, const char *name,
		       const char *value)
{
	struct curl_slist *l;
	size_t n = strlen(name) + strlen(value) + 3;
	char *line = malloc(n);

	if (!line)
		return -1;
	/* "Name;" is how libcurl sends a header with an empty value. */
	if (value[0])
		snprintf(line, n, "%s: %s", name, value);
	else
		snprintf(line, n, "%s;", name);
	l = curl_slist_append(*list, line);
	free(line);
	if (!l)
		return -1;
	*list = l;
	return 0;
}

/* X-Forwarded-For: every value the client sent, in order, then the
 * client's own address. */
static int forwarded_for_add(struct fjob *job, struct http_request *req)
{
	struct evbuffer *b = evbuffer_new();
	int count = http_request_header_count(req), rc = -1;
	char *line = NULL;
	size_t len;

	if (!b)
		return -1;
	for (int i = 0; i < count; i++) {
		const char *value, *name = http_request_header_at(req, i,
								  &value);

		if (!strcasecmp(name, "X-Forwarded-For") && value[0])
			evbuffer_add_printf(b, "%s, ", value);
	}
	evbuffer_add_printf(b, "%s", http_request_peer(req));
	len = evbuffer_get_length(b);
	if ((line = malloc(len + 1))) {
		evbuffer_remove(b, line, len);
		line[len] = '\0';
		rc = headers_add(&job->headers, "X-Forwarded-For", line);
	}
	free(line);
	evbuffer_free(b);
	return rc;
}

/* The client's headers as the primary should see them; see forward.h. */
static int headers_build(struct fjob *job, struct http_request *req)
{
	const char *connection = http_request_header(req, "Connection");
	const char *host = http_request_header(req, "Host");
	int count = http_request_header_count(req);
	int rc = 0;

	for (int i = 0; i < count && rc == 0; i++) {
		const char *value, *name = http_request_header_at(req, i,
								  &value);

		if (name_in(name, strlen(name), request_drop,
			    ARRAY_SIZE(request_drop)) ||
		    connection_names(connection, name))
			continue;
		rc = headers_add(&job->headers, name, value);
	}
	if (rc == 0)
		rc = forwarded_for_add(job, req);
	if (rc == 0 && !http_request_header(req, "X-Forwarded-Proto"))
		rc = headers_add(&job->headers, "X-Forwarded-Proto",
				 http_request_tls(req) ? "https" : "http");
	if (rc == 0 && host && !http_request_header(req, "X-Forwarded-Host"))
		rc = headers_add(&job->headers, "X-Forwarded-Host", host);
	/* Keep libcurl's own Expect and Accept out: "Name:" removes one. */
	if (rc == 0)
		rc = curl_slist_append(job->headers, "Expect:") ? 0 : -1;
	if (rc == 0 && !http_request_header(req, "Accept"))
		rc = curl_slist_append(job->headers, "Accept:") ? 0 : -1;
	return rc;
}

static int job_prepare(struct fjob *job, struct http_request *req)
{
	const char *query = http_request_query(req);
	const char *path = http_request_path(req);
	enum http_method m = http_request_method(req);
	size_t n = strlen(job->f->primary) + strlen(path) +
		   (query ? strlen(query) + 1 : 0) + 1;

	job->head = m == HTTP_HEAD;
	/* A POST or PUT always sends its (maybe empty) body with a length;
	 * other methods only when the client sent one. */
	job->upload = m == HTTP_POST || m == HTTP_PUT ||
		      http_request_content_length(req) > 0 ||
		      http_request_header(req, "Transfer-Encoding") != NULL;
	if (!(job->method = strdup(http_request_method_name(req))) ||
	    !(job->url = malloc(n)))
		return -1;
	snprintf(job->url, n, "%s%s%s%s", job->f->primary, path,
		 query ? "?" : "", query ? query : "");
	return headers_build(job, req);
}

void forward_request(struct forward *f, struct http_request *req,
		     forward_done_fn done, void *arg)
{
	struct fjob *job = calloc(1, sizeof(*job));
	struct err why;

	assert(f && req && done);
	if (!job || !(job->ans = answer_new())) {
		/* Nothing to hand done: the one case it is not called. */
		free(job);
		log_msg(LOG_ERROR, "event=forward_oom id=%s",
			http_request_id(req));
		hub_error_replyf(req, ERR_FAIL, "out of memory");
		return;
	}
	job->magic = JOB_MAGIC;
	job->f = f;
	job->req = req;
	job->done = done;
	job->arg = arg;
	job->fd = -1;
	pthread_mutex_lock(&f->lock);
	LIST_INSERT_HEAD(&f->all, job, in_all);
	pthread_mutex_unlock(&f->lock);
	job->wake = event_new(http_request_base(req), -1, 0, job_wake_cb, job);
	if (!job->wake || job_prepare(job, req) < 0) {
		err_set(&why, ERR_FAIL, "out of memory");
		job_fail(job, &why);
		return;
	}
	http_request_read_body(req, spool_data, spool_done, job);
}

/* --- the pool --- */

int forward_new(struct forward **out, const char *primary,
		const char *ca_bundle, const char *spool_dir, int threads,
		struct err *err)
{
	struct forward *f;
	size_t len;

	*out = NULL;
	if (!primary || (strncmp(primary, "http://", 7) &&
			 strncmp(primary, "https://", 8)))
		return err_set(err, ERR_INVALID, "primary '%s' is not an "
			       "http:// or https:// URL",
			       primary ? primary : "");
	if (!spool_dir || !spool_dir[0])
		return err_set(err, ERR_INVALID, "no spool folder given");
	pthread_once(&curl_once, curl_init_once);
	if (!(f = calloc(1, sizeof(*f))))
		return err_set(err, ERR_FAIL, "out of memory");
	if (str_copy(f->primary, primary, sizeof(f->primary)) >=
	    sizeof(f->primary) ||
	    str_copy(f->ca_bundle, ca_bundle ? ca_bundle : "",
		     sizeof(f->ca_bundle)) >= sizeof(f->ca_bundle) ||
	    str_copy(f->spool_dir, spool_dir, sizeof(f->spool_dir)) >=
	    sizeof(f->spool_dir)) {
		free(f);
		return err_set(err, ERR_INVALID, "primary URL, CA bundle or "
			       "spool folder name too long");
	}
	len = strlen(f->primary);
	while (len > 0 && f->primary[len - 1] == '/')
		f->primary[--len] = '\0';
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	pthread_mutex_init(&f->get_lock, NULL);
	atomic_init(&f->stopping, false);
	STAILQ_INIT(&f->queue);
	LIST_INIT(&f->all);
	f->nthreads = threads > 0 ? threads : 1;
	if (!(f->threads = calloc((size_t)f->nthreads, sizeof(*f->threads))) ||
	    !(f->get_curl = curl_easy_init())) {
		forward_free(f);
		return err_set(err, ERR_FAIL, "cannot start the HTTP client");
	}
	for (; f->started < f->nthreads; f->started++)
		if (pthread_create(&f->threads[f->started], NULL, pool_main,
				   f)) {
			forward_free(f);
			return err_set(err, ERR_FAIL, "cannot start the "
				       "forward threads");
		}
	*out = f;
	return 0;
}

void forward_free(struct forward *f)
{
	struct fjob *job;

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	atomic_store(&f->stopping, true);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	for (int i = 0; i < f->started; i++)
		pthread_join(f->threads[i], NULL);
	/* What is left belongs to requests the HTTP layer orphaned when its
	 * loops stopped (see forward.h): no thread runs them any more, so
	 * done is called from here, and answering frees each of them. A
	 * transfer that ended before the stop keeps its answer. */
	while ((job = LIST_FIRST(&f->all))) {
		if (job->ans->status == 0 && job->ans->err.code == 0) {
			struct err why;

			err_set(&why, ERR_UNAVAILABLE, "the server is stopping");
			answer_fail(job->ans, &why);
		}
		job_finish(job);
	}
	if (f->get_curl)
		curl_easy_cleanup(f->get_curl);
	pthread_mutex_destroy(&f->get_lock);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f->threads);
	free(f);
}

/* --- forward_get --- */

static size_t get_on_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	char *p;

	if (x->len + len + 1 > FORWARD_BODY_MAX) {
		x->too_big = true;
		return 0;
	}
	if (x->len + len + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 4096;

		while (cap < x->len + len + 1)
			cap *= 2;
		if (!(p = realloc(x->buf, cap)))
			return 0;
		x->buf = p;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, data, len);
	x->len += len;
	x->buf[x->len] = '\0';
	return len;
}

int forward_get(struct forward *f, const char *path_and_query,
		const char *hdr_name, const char *hdr_value, long timeout_ms,
		char **body, struct err *err)
{
	struct forward_answer *ans = answer_new();
	struct xfer x = { .f = f, .ans = ans };
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	size_t n = strlen(f->primary) + strlen(path_and_query) + 1;
	char *url = malloc(n);
	int status = 0;
	CURLcode rc;

	*body = NULL;
	if (!ans || !url ||
	    (hdr_name && headers_add(&headers, hdr_name,
				     hdr_value ? hdr_value : "") < 0)) {
		err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	snprintf(url, n, "%s%s", f->primary, path_and_query);
	pthread_mutex_lock(&f->get_lock);
	setup_common(f, f->get_curl, url, &x, errbuf);
	curl_easy_setopt(f->get_curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(f->get_curl, CURLOPT_WRITEFUNCTION, get_on_body);
	curl_easy_setopt(f->get_curl, CURLOPT_TIMEOUT_MS,
			 timeout_ms > 0 ? timeout_ms : 10000L);
	if (timeout_ms > 0 && timeout_ms < CONNECT_TIMEOUT_MS)
		curl_easy_setopt(f->get_curl, CURLOPT_CONNECTTIMEOUT_MS,
				 timeout_ms);
	rc = curl_easy_perform(f->get_curl);
	transfer_result(f, f->get_curl, rc, &x, errbuf);
	curl_easy_setopt(f->get_curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(f->get_curl, CURLOPT_ERRORBUFFER, NULL);
	pthread_mutex_unlock(&f->get_lock);
	if (ans->status == 0) {
		if (err)
			*err = ans->err;
		goto out;
	}
	status = ans->status;
	if (!x.buf && !(x.buf = calloc(1, 1))) {
		status = 0;
		err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	*body = x.buf;
	x.buf = NULL;
out:
	free(x.buf);
	free(url);
	curl_slist_free_all(headers);
	forward_answer_free(ans);
	return status;
}
