/* route_lfs.c: not written yet. */
#include "common/compat.h"

#include "server/hub_error.h"
#include "server/routes.h"

void route_lfs_batch(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_lfs_locks(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}

void route_lfs_transfer(struct hub_call *call)
{
	hub_error_replyf(call->req, ERR_NOTFOUND, "not implemented");
}
