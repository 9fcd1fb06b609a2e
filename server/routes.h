/*
 * routes.h: the handlers, one file per API family:
 *   route_repo.c     repo info and listings
 *   route_tree.c     tree and paths-info
 *   route_history.c  refs and commits
 *   route_file.c     resolve and raw downloads
 */
#ifndef HAVEN_ROUTES_H
#define HAVEN_ROUTES_H

#include "server/router.h"

void route_repo_list(struct hub_call *call);
void route_repo_info(struct hub_call *call);
void route_tree(struct hub_call *call);
void route_paths_info(struct hub_call *call);
void route_refs(struct hub_call *call);
void route_commits(struct hub_call *call);
void route_resolve(struct hub_call *call);
void route_raw(struct hub_call *call);

#endif
