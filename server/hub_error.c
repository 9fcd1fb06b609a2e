/*
 * hub_error.c: error code -> HTTP status table and the Hub's error shape.
 */
#include "common/compat.h"

#include <stdarg.h>
#include <stdbool.h>
#include <event2/buffer.h>
#include <jansson.h>

#include "server/http.h"
#include "server/hub_error.h"

static const struct {
	int code;
	int status;
	const char *hub_code;	/* X-Error-Code, or NULL */
} error_table[] = {
	{ ERR_NOREPO, 404, "RepoNotFound" },
	{ ERR_NOREV, 404, "RevisionNotFound" },
	{ ERR_NOENTRY, 404, "EntryNotFound" },
	{ ERR_NOTFOUND, 404, NULL },
	{ ERR_EXISTS, 409, NULL },
	{ ERR_INVALID, 400, NULL },
	{ ERR_TOOBIG, 413, NULL },
	{ ERR_CONFLICT, 412, NULL },
	{ ERR_AUTH, 401, NULL },
	{ ERR_FORBIDDEN, 403, NULL },
	{ ERR_RANGE, 416, NULL },
	{ ERR_GATED, 403, "GatedRepo" },
	{ ERR_UNAVAILABLE, 503, NULL },
	/* The Location header is set by whoever found the move. */
	{ ERR_MOVED, 307, NULL },
	{ ERR_UPSTREAM, 502, NULL },
	{ ERR_TIMEOUT, 504, NULL },
	{ ERR_CORRUPT, 500, NULL },
	{ ERR_FAIL, 500, NULL },
};

static size_t find_code(int code)
{
	for (size_t i = 0; i < ARRAY_SIZE(error_table); i++) {
		if (error_table[i].code == code)
			return i;
	}
	return ARRAY_SIZE(error_table) - 1;
}

int hub_error_status(int code, bool anonymous)
{
	/* The Hub never tells an anonymous client whether a repository
	 * exists, and asks it to log in for a gated one. */
	if ((code == ERR_NOREPO || code == ERR_GATED) && anonymous)
		return 401;
	return error_table[find_code(code)].status;
}

void hub_common_headers(struct http_request *req)
{
	http_response_header(req, "Access-Control-Allow-Origin", "*");
	http_response_header(req, "Access-Control-Expose-Headers",
			     "X-Repo-Commit,X-Request-Id,X-Error-Code,"
			     "X-Error-Message,X-Total-Count,ETag,Link,"
			     "Accept-Ranges,Content-Range,X-Linked-Size,"
			     "X-Linked-ETag");
}

/* Header values must be one line of printable ASCII. */
static void header_safe(char *out, size_t size, const char *msg)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)msg;
	     *p && o + 1 < size; p++)
		out[o++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : ' ';
	out[o] = '\0';
}

void hub_error_reply(struct http_request *req, const struct err *err,
		     const char *commit)
{
	size_t i = find_code(err->code);
	bool anonymous = !http_request_header(req, "Authorization");
	struct evbuffer *body = evbuffer_new();
	char safe[ERR_MSG_LEN];
	json_t *doc;
	char *text;

	header_safe(safe, sizeof(safe), err->msg[0] ? err->msg : "error");
	hub_common_headers(req);
	if (error_table[i].hub_code)
		http_response_header(req, "X-Error-Code", error_table[i].hub_code);
	http_response_header(req, "X-Error-Message", safe);
	if (commit)
		http_response_header(req, "X-Repo-Commit", commit);
	http_response_header(req, "Content-Type", "application/json; charset=utf-8");
	if (hub_error_status(err->code, anonymous) == 401) {
		/* git asks its credential helper, git-lfs its own, on these. */
		http_response_header(req, "WWW-Authenticate", "Basic realm=\"Haven\"");
		http_response_header(req, "LFS-Authenticate", "Basic realm=\"Haven\"");
	}
	doc = json_pack("{s:s}", "error", err->msg[0] ? err->msg : "error");
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (body && text)
		evbuffer_add(body, text, strlen(text));
	free(text);
	json_decref(doc);
	http_response_send(req, hub_error_status(err->code, anonymous), body);
	evbuffer_free(body);
}

void hub_error_replyf(struct http_request *req, int code, const char *fmt, ...)
{
	struct err e;
	va_list ap;

	e.code = code;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	hub_error_reply(req, &e, NULL);
}
