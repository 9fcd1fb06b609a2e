/* route_write.c: not written yet. */
#include "common/compat.h"

#include "server/hub_error.h"
#include "server/routes.h"

void route_repo_create(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_repo_delete(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_repo_move(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_branch(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_tag(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_preupload(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_commit(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_validate_yaml(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_discussions(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}
