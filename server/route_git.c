/* route_git.c: not written yet. */
#include "common/compat.h"

#include "server/hub_error.h"
#include "server/routes.h"

void route_git_info_refs(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_git_service(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}
