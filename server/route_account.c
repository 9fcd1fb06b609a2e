/* route_account.c: not written yet. */
#include "common/compat.h"

#include "server/hub_error.h"
#include "server/routes.h"

void route_whoami(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_repo_settings(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_access_requests(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}
