/*
 * router.h: the route table. A request path is split on '/', each segment
 * percent-decoded on its own (so "%2F" stays inside its segment, as the
 * Hub's clients expect for revisions), and matched against patterns:
 *
 *   {types}   models | datasets | spaces (sets call->type)
 *   {prefix}  an optional "datasets" or "spaces" segment (non-API URLs)
 *   {repo}    two segments: namespace/name
 *   {rev}     one segment, or the raw forms refs/pr/N and refs/convert/X
 *   {rev*}    all remaining segments joined with '/'
 *   {path*}   all remaining segments joined with '/', possibly empty
 *   {gitrepo} like {repo}, with an optional ".git" after the name
 *
 * A handler owns nothing but may keep the call past its return by setting
 * call->async; it must then call hub_call_free() after it has answered.
 */
#ifndef HAVEN_ROUTER_H
#define HAVEN_ROUTER_H

#include <stdbool.h>

#include "server/app.h"
#include "server/auth.h"
#include "server/http.h"
#include "server/query.h"
#include "storage/meta.h"

#define CALL_REV_MAX 1024
#define CALL_PATH_MAX 4096

struct hub_call {
	unsigned int magic;
	struct http_request *req;
	struct app *app;
	struct query query;
	char type[8];	/* "model", "dataset", "space" */
	char repo[REPO_NAME_MAX];
	char rev[CALL_REV_MAX];	/* "" when the route has none */
	char path[CALL_PATH_MAX];
	struct principal who;	/* identified before the handler runs */
	bool async;
};
#define HUB_CALL_MAGIC 0x48554243u

/* The HTTP layer's handler: routes one request. app is a struct app. */
void router_handle(struct http_request *req, void *app);

void hub_call_free(struct hub_call *call);

/* True when the caller sent no credentials (changes 404 into 401). */
bool hub_call_anonymous(const struct hub_call *call);

#endif
