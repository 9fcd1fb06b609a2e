/*
 * http_conn.c: one HTTP/1.1 connection and the request it is serving.
 *
 * A connection owns a socket bufferevent, an http_parser fed from the
 * bufferevent's input evbuffer, one timer and one "pump" event. It serves
 * one request at a time:
 *
 *   CONN_HEAD    receiving a request head. The timer is the header
 *                deadline (header_timeout_s from accept, or from the first
 *                byte of a keep-alive request): a client trickling bytes is
 *                cut after that total time.
 *   CONN_ACTIVE  the head is parsed and the request is with its handler.
 *                Input is read only while somebody wants body bytes (a body
 *                reader, or the server discarding an unread body), so
 *                pipelined requests stay in the kernel and in the input
 *                buffer. The bufferevent's read and write timeouts
 *                (io_timeout_s) cut a client that stops making progress.
 *   CONN_IDLE    between keep-alive requests; the timer is idle_timeout_s.
 *   CONN_LINGER  the last answer is out and the write side shut down; input
 *                is read and dropped for a moment so that closing with
 *                unread bytes does not reset the connection before the
 *                client has read the answer.
 *
 * The parser is paused at on_headers_complete and on_message_complete, so
 * one http_parser_execute() never runs past the current request; bytes it
 * did not consume stay in the input evbuffer for later.
 *
 * Every state change goes through conn_pump(), which runs conn_step()
 * until nothing more can be done, then sets up reading and timeouts for the
 * new state. conn_pump() runs only from libevent callbacks (read, write,
 * event, timer and the pump event), never from the API functions that
 * handlers call: those change the request and make the pump event active.
 * Handler callbacks therefore never re-enter the parser, and a connection
 * is freed only at the top of a libevent callback.
 *
 * A request stays valid until its handler answers, even if its connection
 * closes first: it then becomes an orphan of the worker, its answer is
 * dropped and answering frees it (http_server_free() frees orphans that
 * were never answered).
 *
 * HTTPS: the bufferevent is libevent's OpenSSL one, doing the handshake
 * itself; everything above sees plain bytes in the same evbuffers. The
 * handshake counts against the header deadline, and a failed one (plain
 * HTTP or garbage sent to the TLS port) ends only that connection. Files
 * cannot go out with sendfile, and libevent would map a whole file into
 * memory instead, so the server reads FILE_CHUNK bytes at a time with
 * pread whenever the queued output falls to FILE_LOW: a download of any
 * size holds a few hundred KiB.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/log.h"
#include "common/util.h"
#include "server/http_internal.h"

/* Unread request body that the server still reads through to keep the
 * connection; beyond this it closes the connection instead. */
#define DISCARD_MAX (64 * 1024)
/* How long a closing connection drops input before it is closed. */
#define LINGER_S 2
/* Bytes read from the socket per read callback. */
#define READ_CHUNK (64 * 1024)
/* A file sent over TLS: bytes read per step, and the queued output at or
 * below which the next step runs. */
#define FILE_CHUNK (256 * 1024)
#define FILE_LOW (128 * 1024)

enum conn_state { CONN_HEAD, CONN_ACTIVE, CONN_IDLE, CONN_LINGER };

enum step { STEP_AGAIN, STEP_WAIT, STEP_CLOSE };

enum parse_result { PARSE_EMPTY, PARSE_PAUSED, PARSE_ERROR };

enum head_piece { PIECE_NONE, PIECE_URL, PIECE_FIELD, PIECE_VALUE };

enum reader_mode { READER_NONE, READER_STREAM, READER_BUFFER };

#define NO_VALUE UINT32_MAX

struct http_header {
	uint32_t name;  /* offsets into the request's arena */
	uint32_t value; /* NO_VALUE for an empty value */
};

struct http_request {
	unsigned magic;
	struct http_conn *conn; /* NULL once orphaned */
	struct http_worker *worker;
	LIST_ENTRY(http_request) orphan_link;
	bool orphan;
	bool handed;            /* the handler was called */

	/* The head, as NUL-terminated pieces in one arena. */
	char *arena;
	size_t arena_len, arena_cap;
	struct http_header *hdrs;
	int nhdrs, hdrs_cap;
	enum head_piece last_piece;
	uint32_t url;
	const char *path, *query;
	enum http_method method;
	const char *method_name;
	unsigned short major, minor;
	int64_t content_length;
	bool chunked, keep_alive, expect_continue, head_done;
	char id[33];
	char peer[INET6_ADDRSTRLEN];
	struct timespec started; /* first byte, for the observer */

	/* Body. */
	bool body_done;         /* the parser saw the end of the message */
	bool body_broken;       /* malformed body: cannot be read through */
	uint64_t body_seen;
	size_t discarded;
	enum reader_mode reader;
	bool reader_finished;
	int reader_rc;
	http_body_data_fn data_fn;
	http_body_done_fn done_fn;
	http_body_buffered_fn buffered_fn;
	void *reader_arg;
	struct evbuffer *body;  /* http_request_buffer_body() */
	size_t body_max;
	bool continue_sent;

	/* Response. */
	struct evbuffer *resp_headers;
	bool answered, resp_done, resp_chunked, resp_nobody;
	int64_t resp_length;
	uint64_t resp_written;
	http_drain_fn drain_fn;
	void *drain_arg;
	size_t drain_low;
	struct event *notify_ev; /* callbacks owed to an orphan */
	/* http_request_hold_answer(): the answer is queued but not sent
	 * until released; hold_fn hears when it is complete. */
	http_hold_fn hold_fn;
	void *hold_arg;
	bool held, hold_fired;
	struct event *hold_ev;
	/* A file still to be read into the output (TLS only; -1 = none). */
	int file_fd;
	off_t file_off;
	uint64_t file_left;
};

struct http_conn {
	unsigned magic;
	struct http_worker *worker;
	LIST_ENTRY(http_conn) link;
	struct bufferevent *bev;
	struct event *timer;
	struct event *pump_ev;
	http_parser parser;
	enum conn_state state;
	struct http_request *req;
	size_t head_bytes;
	int head_error;          /* status for a head the callbacks refused */
	bool close_after;        /* close once the current answer is out */
	bool eof;
	bool read_timeout_on;
	bool tls;
	char peer[INET6_ADDRSTRLEN];
};

static void conn_pump(struct http_conn *c);
static void conn_free(struct http_conn *c);
static void req_free(struct http_request *req);

static const struct http_server_config *conn_cfg(const struct http_conn *c)
{
	return &c->worker->srv->cfg;
}

static struct evbuffer *conn_out(const struct http_conn *c)
{
	return bufferevent_get_output(c->bev);
}

/* Lets the pump run from the loop; the way API calls wake a connection. */
static void conn_schedule(struct http_conn *c)
{
	event_active(c->pump_ev, EV_TIMEOUT, 1);
}

static void conn_timer_arm(struct http_conn *c, int seconds)
{
	struct timeval tv = { seconds, 0 };

	evtimer_add(c->timer, &tv);
}

/* --- request objects --- */

static void request_id_make(char out[33])
{
	unsigned char raw[16];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		evutil_secure_rng_get_bytes(raw, sizeof(raw));
	hex_encode(out, raw, sizeof(raw));
}

static struct http_request *req_new(struct http_conn *c)
{
	struct http_request *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	req->magic = HTTP_REQUEST_MAGIC;
	req->conn = c;
	req->worker = c->worker;
	req->method = HTTP_OTHER;
	req->method_name = "";
	req->major = 1;
	req->minor = 1;
	req->content_length = -1;
	req->resp_length = -1;
	req->file_fd = -1;
	str_copy(req->peer, c->peer, sizeof(req->peer));
	request_id_make(req->id);
	clock_gettime(CLOCK_MONOTONIC, &req->started);
	return req;
}

static void req_free(struct http_request *req)
{
	if (!req)
		return;
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	if (req->orphan)
		LIST_REMOVE(req, orphan_link);
	if (req->notify_ev)
		event_free(req->notify_ev);
	if (req->hold_ev)
		event_free(req->hold_ev);
	if (req->body)
		evbuffer_free(req->body);
	if (req->resp_headers)
		evbuffer_free(req->resp_headers);
	if (req->file_fd >= 0)
		close(req->file_fd);
	free(req->arena);
	free(req->hdrs);
	req->magic = 0;
	free(req);
}

static bool req_has_body(const struct http_request *req)
{
	return req->chunked || req->content_length > 0;
}

static bool req_reader_pending(const struct http_request *req)
{
	return req->reader != READER_NONE && !req->reader_finished &&
	       !req->answered;
}

/* Ends a body reader with rc; the request may be gone afterwards if it was
 * an orphan and the callback answered. */
static void req_finish_reader(struct http_request *req, int rc)
{
	req->reader_finished = true;
	if (req->reader == READER_STREAM) {
		if (req->done_fn)
			req->done_fn(req, rc, req->reader_arg);
	} else {
		req->buffered_fn(req, req->body, rc, req->reader_arg);
	}
}

static void req_fire_drain(struct http_request *req)
{
	http_drain_fn fn = req->drain_fn;

	/* One-shot: a producer registers again after writing more. */
	req->drain_fn = NULL;
	fn(req, req->drain_arg);
}

/* Delivers what an orphan is still owed: the end of its body reader (as a
 * failure) and its drain callback, so that its handler gets to answer. */
static void req_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_request *req = arg;

	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	if (req_reader_pending(req)) {
		if (req->drain_fn)
			event_active(req->notify_ev, EV_TIMEOUT, 1);
		req_finish_reader(req, ERR_FAIL);
		return;
	}
	if (req->drain_fn && req->answered && !req->resp_done)
		req_fire_drain(req);
}

static void req_notify(struct http_request *req)
{
	if (!req->notify_ev)
		req->notify_ev = event_new(req->worker->base, -1, 0,
					   req_notify_cb, req);
	if (req->notify_ev)
		event_active(req->notify_ev, EV_TIMEOUT, 1);
}

/* The connection is going away: free the request, or leave it to the
 * handler that still owns it. */
static void req_detach(struct http_request *req)
{
	req->conn = NULL;
	if (!req->handed || (req->resp_done && !req->held)) {
		req_free(req);
		return;
	}
	req->orphan = true;
	LIST_INSERT_HEAD(&req->worker->orphans, req, orphan_link);
	if (req_reader_pending(req) || req->drain_fn)
		req_notify(req);
}

/* --- request head: parser callbacks --- */

static int arena_add(struct http_conn *c, const char *data, size_t len)
{
	struct http_request *req = c->req;
	size_t limit = conn_cfg(c)->max_header_bytes + 64;
	size_t need = req->arena_len + len + 1;
	char *p;

	if (need > limit)
		return ERR_TOOBIG;
	if (need > req->arena_cap) {
		size_t cap = req->arena_cap ? req->arena_cap : 512;

		while (cap < need)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		if (!(p = realloc(req->arena, cap)))
			return ERR_FAIL;
		req->arena = p;
		req->arena_cap = cap;
	}
	memcpy(req->arena + req->arena_len, data, len);
	req->arena_len += len;
	return 0;
}

static int header_start(struct http_conn *c)
{
	struct http_request *req = c->req;
	struct http_header *h;

	if (req->nhdrs >= conn_cfg(c)->max_headers) {
		c->head_error = 431;
		return ERR_TOOBIG;
	}
	if (req->nhdrs == req->hdrs_cap) {
		int cap = req->hdrs_cap ? req->hdrs_cap * 2 : 16;

		if (!(h = realloc(req->hdrs, (size_t)cap * sizeof(*h))))
			return ERR_FAIL;
		req->hdrs = h;
		req->hdrs_cap = cap;
	}
	req->hdrs[req->nhdrs].name = (uint32_t)req->arena_len;
	req->hdrs[req->nhdrs].value = NO_VALUE;
	req->nhdrs++;
	return 0;
}

/* Appends a piece of the URL, a header name or a header value. The parser
 * may hand one piece over in several calls; a change of kind starts a new
 * NUL-terminated string. */
static int head_piece_add(http_parser *p, enum head_piece kind,
			  const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct http_request *req = c->req;

	HTTP_CHECK_OBJ(c, HTTP_CONN_MAGIC);
	if (req->head_done)
		return 0; /* trailers of a chunked body: ignored */
	if (kind != req->last_piece) {
		if (req->last_piece != PIECE_NONE && arena_add(c, "", 1) < 0)
			goto toobig;
		if (kind == PIECE_FIELD && header_start(c) < 0)
			return 1;
		if (kind == PIECE_VALUE)
			req->hdrs[req->nhdrs - 1].value =
				(uint32_t)req->arena_len;
		if (kind == PIECE_URL)
			req->url = (uint32_t)req->arena_len;
		req->last_piece = kind;
	}
	if (arena_add(c, at, len) == 0)
		return 0;
toobig:
	c->head_error = kind == PIECE_URL ? 414 : 431;
	return 1;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	return head_piece_add(p, PIECE_URL, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	return head_piece_add(p, PIECE_FIELD, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	return head_piece_add(p, PIECE_VALUE, at, len);
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *c = p->data;

	HTTP_CHECK_OBJ(c, HTTP_CONN_MAGIC);
	if (arena_add(c, "", 1) < 0) {
		c->head_error = 431;
		return -1;
	}
	c->req->head_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static int body_deliver(struct http_request *req, const char *at, size_t len)
{
	int rc;

	if (req->reader == READER_STREAM) {
		rc = req->data_fn(req, at, len, req->reader_arg);
		return rc < 0 ? rc : 0;
	}
	if (evbuffer_get_length(req->body) + len > req->body_max)
		return ERR_TOOBIG;
	return evbuffer_add(req->body, at, len) < 0 ? ERR_FAIL : 0;
}

/* Body bytes go to the reader, or are dropped once the handler answered.
 * Pausing stops the parser at once when that changes mid-buffer. */
static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct http_request *req = c->req;
	int rc;

	HTTP_CHECK_OBJ(c, HTTP_CONN_MAGIC);
	req->body_seen += len;
	if (req_reader_pending(req) && req->reader_rc == 0) {
		if ((rc = body_deliver(req, at, len)) < 0) {
			req->reader_rc = rc;
			http_parser_pause(p, 1);
		} else if (req->answered) {
			http_parser_pause(p, 1);
		}
		return 0;
	}
	req->discarded += len;
	if (req->discarded > DISCARD_MAX) {
		c->close_after = true;
		http_parser_pause(p, 1);
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = p->data;

	HTTP_CHECK_OBJ(c, HTTP_CONN_MAGIC);
	c->req->body_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* Feeds buffered input to the parser until it pauses, fails or runs out;
 * *consumed counts the bytes it took (and that left the input buffer). */
static enum parse_result conn_parse(struct http_conn *c, size_t *consumed)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec v;
	size_t n;

	*consumed = 0;
	while (evbuffer_get_length(in) > 0) {
		evbuffer_peek(in, -1, NULL, &v, 1);
		n = http_parser_execute(&c->parser, &parser_settings,
					v.iov_base, v.iov_len);
		evbuffer_drain(in, n);
		*consumed += n;
		switch (HTTP_PARSER_ERRNO(&c->parser)) {
		case HPE_OK:
			break;
		case HPE_PAUSED:
			http_parser_pause(&c->parser, 0);
			return PARSE_PAUSED;
		default:
			return PARSE_ERROR;
		}
		if (n < v.iov_len) {
			/* An upgrade: what follows is not HTTP to us. */
			c->close_after = true;
			return PARSE_PAUSED;
		}
	}
	return PARSE_EMPTY;
}

/* --- request head: validation --- */

static const char *req_header_at(const struct http_request *req, int i,
				 const char **value)
{
	const struct http_header *h = &req->hdrs[i];

	*value = h->value == NO_VALUE ? "" : req->arena + h->value;
	return req->arena + h->name;
}

static void header_values_trim(struct http_request *req)
{
	for (int i = 0; i < req->nhdrs; i++) {
		char *v, *end;

		if (req->hdrs[i].value == NO_VALUE)
			continue;
		v = req->arena + req->hdrs[i].value;
		end = v + strlen(v);
		while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
	}
}

/* Splits the request target in place into path and query. Origin form
 * ("/p?q") is the norm; absolute form ("http://host/p?q") is reduced to
 * its path. Anything else ("*", authority form) is refused. */
static int target_split(struct http_request *req)
{
	char *url = req->arena + req->url;
	struct http_parser_url u;
	char *q;

	if (req->last_piece == PIECE_NONE)
		return ERR_INVALID;
	if (url[0] != '/') {
		http_parser_url_init(&u);
		if (http_parser_parse_url(url, strlen(url), 0, &u) != 0 ||
		    !(u.field_set & (1 << UF_SCHEMA)) ||
		    !(u.field_set & (1 << UF_HOST)))
			return ERR_INVALID;
		if (!(u.field_set & (1 << UF_PATH))) {
			req->path = "/";
			req->query = (u.field_set & (1 << UF_QUERY)) ?
				url + u.field_data[UF_QUERY].off : NULL;
			if (req->query)
				url[u.field_data[UF_QUERY].off +
				    u.field_data[UF_QUERY].len] = '\0';
			return 0;
		}
		url += u.field_data[UF_PATH].off;
	}
	if ((q = strchr(url, '#')))
		*q = '\0';
	req->path = url;
	req->query = NULL;
	if ((q = strchr(url, '?'))) {
		*q = '\0';
		req->query = q + 1;
	}
	return 0;
}

static enum http_method method_from_name(const char *name)
{
	static const struct {
		const char *name;
		enum http_method method;
	} methods[] = {
		{ "GET", HTTP_GET },	 { "HEAD", HTTP_HEAD },
		{ "POST", HTTP_POST },	 { "PUT", HTTP_PUT },
		{ "DELETE", HTTP_DELETE }, { "OPTIONS", HTTP_OPTIONS },
	};

	for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
		if (!strcmp(name, methods[i].name))
			return methods[i].method;
	return HTTP_OTHER;
}

/* Called once the parser paused at the end of the head. */
static int req_finish_head(struct http_request *req, const http_parser *p)
{
	const char *expect;

	header_values_trim(req);
	req->method_name = http_method_str((enum hp_method)p->method);
	req->method = method_from_name(req->method_name);
	req->major = p->http_major;
	req->minor = p->http_minor;
	req->chunked = (p->flags & F_CHUNKED) != 0;
	if (!req->chunked && (p->flags & F_CONTENTLENGTH))
		req->content_length = (int64_t)p->content_length;
	req->keep_alive = http_should_keep_alive(p) != 0;
	expect = http_request_header(req, "Expect");
	req->expect_continue = expect && !strcasecmp(expect, "100-continue") &&
			       req->major == 1 && req->minor >= 1;
	if (req->major != 1)
		return ERR_INVALID;
	return target_split(req);
}

/* --- responses --- */

static void http_date(char out[40], time_t t)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed",
					 "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr",
					    "May", "Jun", "Jul", "Aug",
					    "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Whether the connection must close after this answer. length is the
 * body length the answer announces, -1 for unknown. */
static bool req_must_close(const struct http_request *req, int64_t length)
{
	const struct http_conn *c = req->conn;

	if (c->close_after || !req->keep_alive)
		return true;
	if (length < 0 && req->minor == 0)
		return true; /* HTTP/1.0 has no chunked: close-delimited */
	if (req->body_done || !req_has_body(req))
		return false;
	/* The handler did not read the whole body. A client waiting for
	 * "100 Continue" may never send it, and a large rest is cheaper to
	 * cut than to read through. */
	if (req->expect_continue && !req->continue_sent)
		return true;
	if (req->body_broken)
		return true;
	return !req->chunked &&
	       (uint64_t)req->content_length - req->body_seen > DISCARD_MAX;
}

static atomic_long active_conns;

long http_connections_active(void)
{
	return atomic_load(&active_conns);
}

static void observe_answer(struct http_request *req, int status,
			   int64_t length)
{
	const struct http_server *srv = req->worker->srv;
	struct timespec now;

	if (!srv->cfg.observe)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	srv->cfg.observe(req, status, length,
			 (double)(now.tv_sec - req->started.tv_sec) +
			 (double)(now.tv_nsec - req->started.tv_nsec) / 1e9,
			 srv->app);
}

static void req_hold_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_request *req = arg;

	(void)fd;
	(void)what;
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	req->hold_fn(req, req->hold_arg);
}

/* The whole answer is queued: a held one tells its holder, from the loop
 * (never from inside the handler's own answering call). */
static void req_answer_complete(struct http_request *req)
{
	if (!req->held || req->hold_fired)
		return;
	req->hold_fired = true;
	if (!req->hold_ev)
		req->hold_ev = event_new(req->worker->base, -1, 0, req_hold_cb,
					 req);
	if (req->hold_ev)
		event_active(req->hold_ev, EV_TIMEOUT, 1);
	else
		http_request_release_answer(req);
}

/* Queues the status line and headers; decides keep-alive. */
static void req_begin_answer(struct http_request *req, int status,
			     int64_t length)
{
	struct http_conn *c = req->conn;
	struct evbuffer *out = conn_out(c);
	bool no_length = status == 204 || status == 304;
	char date[40];

	assert(status >= 200 && status <= 599);
	req->answered = true;
	if (req->hold_fn) {
		bufferevent_disable(c->bev, EV_WRITE);
		req->held = true;
	}
	c->close_after = req_must_close(req, length);
	req->resp_nobody = no_length || req->method == HTTP_HEAD;
	req->resp_length = length;
	req->resp_chunked = length < 0 && !no_length && !c->close_after;
	/* The access log: the path only, since a query may carry a signed
	 * token, and never a header. */
	log_msg(LOG_INFO, "event=request id=%s peer=%s method=%s path=%s "
		"status=%d length=%" PRId64, req->id, c->peer,
		req->method_name ? req->method_name : "-",
		req->path ? req->path : "-", status, length);
	observe_answer(req, status, req->resp_nobody ? 0 : length);
	http_date(date, time(NULL));
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
			    http_status_text(status), date);
	if (no_length)
		;
	else if (length >= 0)
		evbuffer_add_printf(out, "Content-Length: %" PRId64 "\r\n",
				    length);
	else if (req->resp_chunked)
		evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
	evbuffer_add_printf(out, "X-Request-Id: %s\r\n", req->id);
	if (c->close_after)
		evbuffer_add_printf(out, "Connection: close\r\n");
	else if (req->minor == 0)
		evbuffer_add_printf(out, "Connection: keep-alive\r\n");
	if (req->resp_headers)
		evbuffer_add_buffer(out, req->resp_headers);
	evbuffer_add(out, "\r\n", 2);
}

static void req_answer(struct http_request *req, int status,
		       struct evbuffer *body)
{
	size_t len = body ? evbuffer_get_length(body) : 0;

	req_begin_answer(req, status, (int64_t)len);
	if (body && req->resp_nobody)
		evbuffer_drain(body, len);
	else if (body)
		evbuffer_add_buffer(conn_out(req->conn), body);
	req->resp_done = true;
	req_answer_complete(req);
	conn_schedule(req->conn);
}

/* --- the connection state machine --- */

/* Answers a request the server refused before any handler saw it. */
static enum step conn_reject(struct http_conn *c, int status)
{
	struct http_request *req = c->req;
	struct evbuffer *body = evbuffer_new();

	log_msg(LOG_DEBUG, "event=http_reject peer=%s status=%d parser=%s",
		c->peer, status,
		http_errno_name(HTTP_PARSER_ERRNO(&c->parser)));
	evtimer_del(c->timer);
	c->state = CONN_ACTIVE;
	c->close_after = true;
	req->body_done = true;
	if (body)
		evbuffer_add_printf(body, "%d %s\n", status,
				    http_status_text(status));
	req_answer(req, status, body);
	if (body)
		evbuffer_free(body);
	return STEP_AGAIN;
}

static int head_error_status(const struct http_conn *c)
{
	if (c->head_error)
		return c->head_error;
	if (HTTP_PARSER_ERRNO(&c->parser) == HPE_HEADER_OVERFLOW)
		return 431;
	return 400;
}

/* The head is parsed: validate it and call the handler. */
/* A client that writes a POST as its head and then its body, without
 * TCP_NODELAY (libgit2's smart-HTTP client does), holds the body back
 * until the head is acknowledged; on a connection that already carried
 * an answer the kernel delays that ACK by 40 ms. Acknowledge at once. */
static void conn_ack_head(struct http_conn *c)
{
	int one = 1;
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static enum step conn_start_request(struct http_conn *c)
{
	struct http_request *req = c->req;
	struct http_server *srv = c->worker->srv;
	size_t n;

	evtimer_del(c->timer);
	if (req_finish_head(req, &c->parser) < 0)
		return conn_reject(c, 400);
	c->state = CONN_ACTIVE;
	/* A bodyless request still owes the parser the last byte of its
	 * head; taking it now ends the message before the handler runs. */
	if (!req_has_body(req) && conn_parse(c, &n) == PARSE_ERROR)
		return conn_reject(c, 400);
	if (req_has_body(req))
		conn_ack_head(c);
	req->handed = true;
	srv->handler(req, srv->app);
	return STEP_AGAIN;
}

static enum step conn_step_head(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	enum parse_result r;
	size_t n;

	if (evbuffer_get_length(in) == 0)
		return STEP_WAIT;
	if (!c->req && !(c->req = req_new(c)))
		return STEP_CLOSE;
	if (c->state == CONN_IDLE) {
		c->state = CONN_HEAD;
		conn_timer_arm(c, conn_cfg(c)->header_timeout_s);
	}
	r = conn_parse(c, &n);
	c->head_bytes += n;
	if (r == PARSE_ERROR)
		return conn_reject(c, head_error_status(c));
	if (c->head_bytes > conn_cfg(c)->max_header_bytes)
		return conn_reject(c, 431);
	if (c->req->head_done)
		return conn_start_request(c);
	return STEP_WAIT;
}

/* Whether the parser should take body bytes now. */
static bool conn_wants_body(const struct http_conn *c)
{
	const struct http_request *req = c->req;

	if (req->body_done || req->body_broken || c->eof)
		return false;
	if (req->answered)
		return !c->close_after;
	return req_reader_pending(req) && req->reader_rc == 0;
}

static enum step conn_read_body(struct http_conn *c)
{
	struct http_request *req = c->req;
	size_t n;

	if (conn_parse(c, &n) == PARSE_ERROR) {
		log_msg(LOG_DEBUG, "event=http_bad_body peer=%s parser=%s",
			c->peer,
			http_errno_name(HTTP_PARSER_ERRNO(&c->parser)));
		req->body_broken = true;
		c->close_after = true;
		if (req->reader_rc == 0)
			req->reader_rc = ERR_INVALID;
		return STEP_AGAIN;
	}
	return n > 0 ? STEP_AGAIN : STEP_WAIT;
}

/* Shuts the write side and drops input for a moment before closing. */
static enum step conn_linger(struct http_conn *c)
{
	req_free(c->req);
	c->req = NULL;
	if (c->eof)
		return STEP_CLOSE;
	/* TLS says "that was all" with close_notify, so that a client
	 * reading to the end does not take the close for a truncation. The
	 * output is empty: the alert goes out after the answer. */
	if (c->tls) {
		SSL_shutdown(bufferevent_openssl_get_ssl(c->bev));
		ERR_clear_error();
	}
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	c->state = CONN_LINGER;
	conn_timer_arm(c, LINGER_S);
	return STEP_AGAIN;
}

static enum step conn_next_request(struct http_conn *c)
{
	req_free(c->req);
	c->req = NULL;
	c->head_bytes = 0;
	c->head_error = 0;
	c->state = CONN_IDLE;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	conn_timer_arm(c, conn_cfg(c)->idle_timeout_s);
	return STEP_AGAIN;
}

/* Reads the next piece of a file being sent over TLS into the output. A
 * read error or a file that got shorter cuts the answer: the connection
 * closes, which is how the client learns that the body is incomplete. */
static enum step conn_fill_file(struct http_conn *c)
{
	struct http_request *req = c->req;
	size_t want = req->file_left < FILE_CHUNK ? (size_t)req->file_left :
						    FILE_CHUNK;
	struct evbuffer_iovec v;
	ssize_t n = -1;

	errno = ENOMEM;
	if (evbuffer_reserve_space(conn_out(c), (ev_ssize_t)want, &v, 1) == 1) {
		do
			n = pread(req->file_fd, v.iov_base, want,
				  req->file_off);
		while (n < 0 && errno == EINTR);
	}
	if (n <= 0) {
		log_msg(LOG_WARN, "event=http_send_file_fail id=%s error=\"%s\"",
			req->id, n == 0 ? "file shorter than announced" :
					  strerror(errno));
		req->file_left = 0;
		c->close_after = true;
	} else {
		v.iov_len = (size_t)n;
		evbuffer_commit_space(conn_out(c), &v, 1);
		req->file_off += n;
		req->file_left -= (uint64_t)n;
	}
	if (req->file_left == 0) {
		close(req->file_fd);
		req->file_fd = -1;
	}
	return STEP_AGAIN;
}

static enum step conn_step_active(struct http_conn *c)
{
	struct http_request *req = c->req;
	size_t queued = evbuffer_get_length(conn_out(c));
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if (conn_wants_body(c) && evbuffer_get_length(in) > 0 &&
	    conn_read_body(c) == STEP_AGAIN)
		return STEP_AGAIN;
	if (req_reader_pending(req) && (req->reader_rc < 0 || req->body_done)) {
		req_finish_reader(req, req->reader_rc);
		return STEP_AGAIN;
	}
	if (req->drain_fn && req->answered && !req->resp_done &&
	    queued <= req->drain_low) {
		req_fire_drain(req);
		return STEP_AGAIN;
	}
	if (req->file_left > 0)
		return queued <= FILE_LOW ? conn_fill_file(c) : STEP_WAIT;
	if (!req->resp_done || queued > 0)
		return STEP_WAIT;
	if (c->close_after)
		return conn_linger(c);
	if (req->body_done)
		return conn_next_request(c);
	return STEP_WAIT;
}

static enum step conn_step(struct http_conn *c)
{
	switch (c->state) {
	case CONN_IDLE:
	case CONN_HEAD:
		return conn_step_head(c);
	case CONN_ACTIVE:
		return conn_step_active(c);
	case CONN_LINGER:
		evbuffer_drain(bufferevent_get_input(c->bev),
			       evbuffer_get_length(bufferevent_get_input(c->bev)));
		return STEP_WAIT;
	}
	return STEP_CLOSE;
}

/* Reading is on only while input is wanted; the read timeout guards body
 * reads, the connection timer guards heads, idle time and lingering. */
static void conn_update_io(struct http_conn *c)
{
	struct timeval io = { conn_cfg(c)->io_timeout_s, 0 };
	bool active = c->state == CONN_ACTIVE;
	bool want = active ? conn_wants_body(c) : true;

	if (want && !c->eof)
		bufferevent_enable(c->bev, EV_READ);
	else
		bufferevent_disable(c->bev, EV_READ);
	if (active != c->read_timeout_on) {
		bufferevent_set_timeouts(c->bev, active ? &io : NULL, &io);
		c->read_timeout_on = active;
	}
}

static void conn_pump(struct http_conn *c)
{
	enum step s;

	while ((s = conn_step(c)) == STEP_AGAIN)
		;
	if (s == STEP_CLOSE)
		conn_free(c);
	else
		conn_update_io(c);
}

/* --- libevent callbacks --- */

/* libevent 2.1 reads at most 4 KiB per readable event, which makes a
 * large upload cost four system calls per 4 KiB. While a plain socket is
 * delivering a body, read what the kernel has in large pieces ourselves;
 * the bytes land in the same input buffer, in order, on the same thread.
 * The bufferevent keeps its input's end frozen between its own reads, so
 * it is thawed around ours, exactly as libevent does around its reads. */
#define BULK_READ (256 << 10)
#define BULK_READ_ROUNDS 4

static void conn_read_bulk(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	struct evbuffer_iovec vec;

	if (c->worker->srv->tls || fd < 0 || !c->req || !conn_wants_body(c) ||
	    evbuffer_get_length(in) >= BULK_READ)
		return;
	evbuffer_unfreeze(in, 0);
	for (int i = 0; i < BULK_READ_ROUNDS; i++) {
		ssize_t n;
		if (evbuffer_reserve_space(in, BULK_READ, &vec, 1) < 1)
			break;
		n = read(fd, vec.iov_base, vec.iov_len);
		/* EOF and errors are left for libevent to see and report. */
		vec.iov_len = n > 0 ? (size_t)n : 0;
		evbuffer_commit_space(in, &vec, 1);
		if (n < (ssize_t)BULK_READ)
			break;
	}
	evbuffer_freeze(in, 0);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	HTTP_CHECK_OBJ(c, HTTP_CONN_MAGIC);
	conn_read_bulk(c);
	conn_pump(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	HTTP_CHECK_OBJ(c, HTTP_CONN_MAGIC);
	conn_pump(c);
}

static void conn_pump_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	HTTP_CHECK_OBJ(c, HTTP_CONN_MAGIC);
	conn_pump(c);
}

/* The first OpenSSL error libevent kept for the connection, if any (a
 * failed handshake says why here); the rest are dropped. */
static const char *conn_tls_error(struct http_conn *c)
{
	const char *reason = NULL;
	unsigned long e;

	if (!c->tls)
		return "";
	while ((e = bufferevent_get_openssl_error(c->bev)))
		if (!reason)
			reason = ERR_reason_error_string(e);
	return reason ? reason : "";
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;

	HTTP_CHECK_OBJ(c, HTTP_CONN_MAGIC);
	/* The TLS handshake is done: nothing to do until bytes arrive. */
	if (what == BEV_EVENT_CONNECTED)
		return;
	/* A client that half-closes after a complete request still gets its
	 * answer; any other end, error or timeout closes the connection. */
	if ((what & BEV_EVENT_EOF) && c->state == CONN_ACTIVE &&
	    !conn_wants_body(c)) {
		c->eof = true;
		c->close_after = true;
		conn_pump(c);
		return;
	}
	log_msg(LOG_DEBUG, "event=http_conn_end peer=%s what=0x%x errno=%d "
		"tls_error=\"%s\"", c->peer, (unsigned)what,
		EVUTIL_SOCKET_ERROR(), conn_tls_error(c));
	conn_free(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	HTTP_CHECK_OBJ(c, HTTP_CONN_MAGIC);
	log_msg(LOG_DEBUG, "event=http_timeout peer=%s state=%d", c->peer,
		(int)c->state);
	conn_free(c);
}

/* --- connection lifetime --- */

static void peer_format(char *out, size_t size, const struct sockaddr *sa)
{
	const void *addr = NULL;

	if (sa->sa_family == AF_INET)
		addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		addr = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (!addr || !inet_ntop(sa->sa_family, addr, out, (socklen_t)size))
		str_copy(out, "unknown", size);
}

/* A plain socket bufferevent, or a TLS one that starts with the server
 * side of the handshake. NULL on failure, with fd still open. */
static struct bufferevent *conn_bev_new(struct http_conn *c,
					evutil_socket_t fd)
{
	struct http_worker *w = c->worker;
	struct bufferevent *bev;
	SSL *ssl;

	if (!w->srv->tls)
		return bufferevent_socket_new(w->base, fd,
					      BEV_OPT_CLOSE_ON_FREE);
	if (!(ssl = SSL_new(w->srv->tls)))
		return NULL;
	/* On failure libevent frees ssl (BEV_OPT_CLOSE_ON_FREE) but leaves
	 * fd open. Deferred callbacks keep ours out of the middle of
	 * libevent's own handshake and record loops. */
	bev = bufferevent_openssl_socket_new(w->base, fd, ssl,
					     BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE |
					     BEV_OPT_DEFER_CALLBACKS);
	if (!bev)
		return NULL;
	/* A client that closes without close_notify has still said all it
	 * had to say: EOF, not an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->tls = true;
	return bev;
}

void http_conn_new(struct http_worker *w, evutil_socket_t fd,
		   const struct sockaddr *sa)
{
	struct http_conn *c = NULL;
	int one = 1;

	HTTP_CHECK_OBJ(w, HTTP_WORKER_MAGIC);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!(c = calloc(1, sizeof(*c))))
		goto fail;
	c->magic = HTTP_CONN_MAGIC;
	c->worker = w;
	peer_format(c->peer, sizeof(c->peer), sa);
	if (!(c->bev = conn_bev_new(c, fd)))
		goto fail;
	c->timer = evtimer_new(w->base, conn_timer_cb, c);
	c->pump_ev = event_new(w->base, -1, 0, conn_pump_cb, c);
	if (!c->timer || !c->pump_ev)
		goto fail;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	bufferevent_set_max_single_read(c->bev, READ_CHUNK);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
			  c);
	LIST_INSERT_HEAD(&w->conns, c, link);
	atomic_fetch_add(&active_conns, 1);
	c->state = CONN_HEAD;
	conn_timer_arm(c, w->srv->cfg.header_timeout_s);
	conn_update_io(c);
	return;
fail:
	log_msg(LOG_WARN, "event=http_accept_fail errno=%d", errno);
	if (c && c->bev)
		bufferevent_free(c->bev);
	else
		evutil_closesocket(fd);
	if (c && c->timer)
		event_free(c->timer);
	if (c && c->pump_ev)
		event_free(c->pump_ev);
	free(c);
}

static void conn_free(struct http_conn *c)
{
	HTTP_CHECK_OBJ(c, HTTP_CONN_MAGIC);
	LIST_REMOVE(c, link);
	atomic_fetch_sub(&active_conns, 1);
	if (c->req)
		req_detach(c->req);
	bufferevent_free(c->bev);
	event_free(c->timer);
	event_free(c->pump_ev);
	c->magic = 0;
	free(c);
}

void http_conn_close_all(struct http_worker *w)
{
	HTTP_CHECK_OBJ(w, HTTP_WORKER_MAGIC);
	while (!LIST_EMPTY(&w->conns))
		conn_free(LIST_FIRST(&w->conns));
}

void http_request_free_orphans(struct http_worker *w)
{
	HTTP_CHECK_OBJ(w, HTTP_WORKER_MAGIC);
	while (!LIST_EMPTY(&w->orphans))
		req_free(LIST_FIRST(&w->orphans));
}

/* --- request accessors --- */

enum http_method http_request_method(const struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	return req->method;
}

const char *http_request_method_name(const struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	return req->method_name;
}

const char *http_request_path(const struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	return req->path;
}

const char *http_request_query(const struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	return req->query;
}

const char *http_request_header(const struct http_request *req,
				const char *name)
{
	const char *value;

	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	for (int i = 0; i < req->nhdrs; i++)
		if (!strcasecmp(req_header_at(req, i, &value), name))
			return value;
	return NULL;
}

int http_request_header_count(const struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	return req->nhdrs;
}

const char *http_request_header_at(const struct http_request *req, int i,
				   const char **value)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(i >= 0 && i < req->nhdrs);
	return req_header_at(req, i, value);
}

bool http_request_tls(const struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	return req->conn && req->conn->tls;
}

const char *http_request_id(const struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	return req->id;
}

const char *http_request_peer(const struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	return req->peer;
}

int64_t http_request_content_length(const struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	return req->content_length;
}

struct event_base *http_request_base(const struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	return req->worker->base;
}

/* --- request body --- */

static void req_start_reader(struct http_request *req)
{
	struct http_conn *c = req->conn;

	if (req->orphan) {
		req_notify(req);
		return;
	}
	if (!req->body_done && req->reader_rc == 0 && req->expect_continue &&
	    !req->continue_sent) {
		evbuffer_add_printf(conn_out(c), "HTTP/1.1 100 Continue\r\n\r\n");
		req->continue_sent = true;
	}
	conn_schedule(c);
}

void http_request_read_body(struct http_request *req, http_body_data_fn data,
			    http_body_done_fn done, void *arg)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(data != NULL);
	assert(req->reader == READER_NONE && !req->answered);
	req->reader = READER_STREAM;
	req->data_fn = data;
	req->done_fn = done;
	req->reader_arg = arg;
	req_start_reader(req);
}

void http_request_buffer_body(struct http_request *req, size_t max,
			      http_body_buffered_fn done, void *arg)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(done != NULL);
	assert(req->reader == READER_NONE && !req->answered);
	req->reader = READER_BUFFER;
	req->buffered_fn = done;
	req->reader_arg = arg;
	req->body_max = max;
	if (!(req->body = evbuffer_new()))
		req->reader_rc = ERR_FAIL;
	/* A declared length past max fails before the client sends it. */
	if (req->content_length > 0 && (uint64_t)req->content_length > max)
		req->reader_rc = ERR_TOOBIG;
	req_start_reader(req);
}

/* --- response --- */

static bool header_reserved(const char *name)
{
	static const char *const reserved[] = {
		"Content-Length", "Date", "Connection", "X-Request-Id",
		"Transfer-Encoding",
	};

	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++)
		if (!strcasecmp(name, reserved[i]))
			return true;
	return false;
}

void http_response_header(struct http_request *req, const char *name,
			  const char *value)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(name && value && !req->answered);
	assert(!header_reserved(name));
	/* Values may carry client data; a line break would forge headers. */
	if (!*name || strpbrk(name, "\r\n: \t") || strpbrk(value, "\r\n")) {
		log_msg(LOG_WARN, "event=http_bad_header name=\"%s\"", name);
		return;
	}
	if (!req->resp_headers && !(req->resp_headers = evbuffer_new()))
		return;
	evbuffer_add_printf(req->resp_headers, "%s: %s\r\n", name, value);
}

void http_response_send(struct http_request *req, int status,
			struct evbuffer *body)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(!req->answered);
	if (req->orphan) {
		if (body)
			evbuffer_drain(body, evbuffer_get_length(body));
		req_free(req);
		return;
	}
	req_answer(req, status, body);
}

/* evbuffer_add_file() as it should be: on a socket bufferevent's output
 * the segment goes out with sendfile. libevent 2.1's own evbuffer_add_file
 * leaves the fd open (and leaks the segment) when adding fails; dropping
 * our reference unconditionally closes it on every failure path. */
static int out_add_file(struct evbuffer *out, int fd, off_t offset,
			off_t length)
{
	struct evbuffer_file_segment *seg;
	int rc;

	seg = evbuffer_file_segment_new(fd, offset, length,
					EVBUF_FS_CLOSE_ON_FREE);
	if (!seg) {
		close(fd);
		return ERR_FAIL;
	}
	rc = evbuffer_add_file_segment(out, seg, 0, length);
	evbuffer_file_segment_free(seg);
	return rc < 0 ? ERR_FAIL : 0;
}

void http_response_send_file(struct http_request *req, int status, int fd,
			     off_t offset, off_t length)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(!req->answered && fd >= 0 && offset >= 0 && length >= 0);
	if (req->orphan) {
		close(fd);
		req_free(req);
		return;
	}
	req_begin_answer(req, status, (int64_t)length);
	if (req->resp_nobody || length == 0) {
		close(fd);
	} else if (req->conn->tls) {
		/* conn_fill_file() reads it as the client takes it. */
		req->file_fd = fd;
		req->file_off = offset;
		req->file_left = (uint64_t)length;
		bufferevent_setwatermark(req->conn->bev, EV_WRITE, FILE_LOW, 0);
	} else if (out_add_file(conn_out(req->conn), fd, offset, length) < 0) {
		/* The head promised a body that cannot follow. */
		log_msg(LOG_WARN, "event=http_send_file_fail id=%s", req->id);
		req->conn->close_after = true;
	}
	req->resp_done = true;
	req_answer_complete(req);
	conn_schedule(req->conn);
}

void http_response_begin(struct http_request *req, int status,
			 int64_t length)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(!req->answered);
	if (req->orphan) {
		req->answered = true;
		return;
	}
	req_begin_answer(req, status, length);
}

size_t http_response_write(struct http_request *req, const void *data,
			   size_t len)
{
	struct evbuffer *out;

	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(req->answered && !req->resp_done);
	if (req->orphan)
		return 0;
	out = conn_out(req->conn);
	assert(req->resp_length < 0 ||
	       req->resp_written + len <= (uint64_t)req->resp_length);
	req->resp_written += len;
	if (len == 0 || req->resp_nobody)
		return evbuffer_get_length(out);
	if (req->resp_chunked)
		evbuffer_add_printf(out, "%zx\r\n", len);
	evbuffer_add(out, data, len);
	if (req->resp_chunked)
		evbuffer_add(out, "\r\n", 2);
	return evbuffer_get_length(out);
}

size_t http_response_write_buffer(struct http_request *req,
				  struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	struct evbuffer *out;

	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(req->answered && !req->resp_done);
	if (req->orphan || req->resp_nobody || req->resp_chunked) {
		struct evbuffer_iovec v;
		size_t q = 0;
		if (req->orphan) {
			evbuffer_drain(buf, len);
			return 0;
		}
		while (evbuffer_peek(buf, -1, NULL, &v, 1) == 1 &&
		       v.iov_len) {
			q = http_response_write(req, v.iov_base, v.iov_len);
			evbuffer_drain(buf, v.iov_len);
		}
		return q;
	}
	out = conn_out(req->conn);
	assert(req->resp_length < 0 ||
	       req->resp_written + len <= (uint64_t)req->resp_length);
	req->resp_written += len;
	evbuffer_add_buffer(out, buf);
	return evbuffer_get_length(out);
}

/* Over TLS the bytes must pass through OpenSSL: read them now. */
static int out_copy_file(struct evbuffer *out, int fd, off_t offset,
			 size_t length)
{
	while (length > 0) {
		size_t want = length < FILE_CHUNK ? length : FILE_CHUNK;
		struct evbuffer_iovec v;
		ssize_t n = -1;

		if (evbuffer_reserve_space(out, (ev_ssize_t)want, &v, 1) != 1)
			return ERR_FAIL;
		do
			n = pread(fd, v.iov_base, want, offset);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return ERR_FAIL;
		v.iov_len = (size_t)n;
		evbuffer_commit_space(out, &v, 1);
		offset += n;
		length -= (size_t)n;
	}
	return 0;
}

size_t http_response_write_file(struct http_request *req, int fd,
				off_t offset, size_t length)
{
	struct evbuffer *out;
	int copy, rc;

	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(req->answered && !req->resp_done && !req->resp_chunked);
	assert(req->resp_length >= 0 &&
	       req->resp_written + length <= (uint64_t)req->resp_length);
	if (req->orphan)
		return 0;
	out = conn_out(req->conn);
	if (length == 0 || req->resp_nobody)
		return evbuffer_get_length(out);
	if (req->conn->tls) {
		rc = out_copy_file(out, fd, offset, length);
	} else if ((copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		rc = ERR_FAIL;
	} else {
		rc = out_add_file(out, copy, offset, (off_t)length);
	}
	if (rc < 0)
		return SIZE_MAX;
	req->resp_written += length;
	return evbuffer_get_length(out);
}

void http_response_end(struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(req->answered && !req->resp_done);
	req->resp_done = true;
	req->drain_fn = NULL;
	if (req->orphan) {
		req_free(req);
		return;
	}
	if (req->resp_chunked && !req->resp_nobody)
		evbuffer_add(conn_out(req->conn), "0\r\n\r\n", 5);
	/* A producer that gave up early leaves a short body: only closing
	 * the connection tells the client. A HEAD answer has no body. */
	if (!req->resp_nobody && req->resp_length >= 0 &&
	    req->resp_written < (uint64_t)req->resp_length)
		req->conn->close_after = true;
	req_answer_complete(req);
	conn_schedule(req->conn);
}

void http_request_hold_answer(struct http_request *req, http_hold_fn fn,
			      void *arg)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(!req->answered && fn);
	req->hold_fn = fn;
	req->hold_arg = arg;
}

void http_request_release_answer(struct http_request *req)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	if (!req->held)
		return;
	req->held = false;
	if (req->orphan) {
		req_free(req);
		return;
	}
	bufferevent_enable(req->conn->bev, EV_WRITE);
	conn_schedule(req->conn);
}

void http_response_on_drain(struct http_request *req, size_t low_water,
			    http_drain_fn fn, void *arg)
{
	HTTP_CHECK_OBJ(req, HTTP_REQUEST_MAGIC);
	assert(fn != NULL && req->answered && !req->resp_done);
	req->drain_fn = fn;
	req->drain_arg = arg;
	req->drain_low = low_water;
	if (req->orphan) {
		req_notify(req);
		return;
	}
	/* The write callback runs whenever a write leaves at most low_water
	 * bytes queued. */
	bufferevent_setwatermark(req->conn->bev, EV_WRITE, low_water, 0);
	conn_schedule(req->conn);
}

const char *http_status_text(int status)
{
	static const struct {
		int status;
		const char *text;
	} texts[] = {
		{ 100, "Continue" },
		{ 200, "OK" },
		{ 201, "Created" },
		{ 204, "No Content" },
		{ 206, "Partial Content" },
		{ 301, "Moved Permanently" },
		{ 302, "Found" },
		{ 304, "Not Modified" },
		{ 307, "Temporary Redirect" },
		{ 308, "Permanent Redirect" },
		{ 400, "Bad Request" },
		{ 401, "Unauthorized" },
		{ 403, "Forbidden" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 408, "Request Timeout" },
		{ 409, "Conflict" },
		{ 411, "Length Required" },
		{ 412, "Precondition Failed" },
		{ 413, "Content Too Large" },
		{ 414, "URI Too Long" },
		{ 416, "Range Not Satisfiable" },
		{ 417, "Expectation Failed" },
		{ 422, "Unprocessable Content" },
		{ 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 502, "Bad Gateway" },
		{ 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(texts); i++)
		if (texts[i].status == status)
			return texts[i].text;
	return "Unknown";
}
