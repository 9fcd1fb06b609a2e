/*
 * hub_error.h: the one place where Haven's error codes become HTTP
 * answers, with the Hub's headers (X-Error-Code, X-Error-Message) and a
 * JSON body {"error": "..."}; X-Request-Id is added by the HTTP layer.
 */
#ifndef HAVEN_HUB_ERROR_H
#define HAVEN_HUB_ERROR_H

#include <stdbool.h>

#include "common/err.h"

struct http_request;

/* Status code for an error code. anonymous changes RepoNotFound to 401,
 * as the Hub answers requests without a token. */
int hub_error_status(int code, bool anonymous);

/* Answers the request with the error in err. commit, when not NULL, is
 * sent as X-Repo-Commit (EntryNotFound needs it for clients' caches). */
void hub_error_reply(struct http_request *req, const struct err *err,
		     const char *commit);

/* Shorthand: answers with code and a formatted message. */
void hub_error_replyf(struct http_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Headers every answer carries (CORS), for use by the router. */
void hub_common_headers(struct http_request *req);

#endif
