/*
 * routes.h: the handlers, one file per API family:
 *   route_repo.c     repo info and listings
 *   route_tree.c     tree and paths-info
 *   route_history.c  refs and commits
 *   route_file.c     resolve and raw downloads
 *   route_account.c  whoami, repo settings, gated access requests
 *   route_write.c    repo create/delete/move, branches, tags, preupload,
 *                    commit, validate-yaml, discussions
 *   route_lfs.c      the LFS batch API and its signed transfer URLs
 *   route_git.c      git smart HTTP (clone, fetch, push)
 *   route_likes.c    likes, likers and the likes of a user
 */
#ifndef HAVEN_ROUTES_H
#define HAVEN_ROUTES_H

#include "server/router.h"

void route_repo_list(struct hub_call *call);
void route_repo_info(struct hub_call *call);
void route_tree(struct hub_call *call);
void route_paths_info(struct hub_call *call);
void route_refs(struct hub_call *call);
void route_lineage(struct hub_call *call);
void route_commits(struct hub_call *call);
void route_resolve(struct hub_call *call);
void route_raw(struct hub_call *call);

void route_whoami(struct hub_call *call);
void route_repo_settings(struct hub_call *call);
void route_access_requests(struct hub_call *call);

void route_repo_create(struct hub_call *call);
void route_repo_delete(struct hub_call *call);
void route_repo_move(struct hub_call *call);
void route_branch(struct hub_call *call);
void route_tag(struct hub_call *call);
void route_preupload(struct hub_call *call);
void route_commit(struct hub_call *call);
void route_validate_yaml(struct hub_call *call);
void route_discussions(struct hub_call *call);

void route_lfs_batch(struct hub_call *call);
void route_lfs_locks(struct hub_call *call);
void route_lfs_transfer(struct hub_call *call);

void route_like(struct hub_call *call);
void route_likers(struct hub_call *call);
void route_user_likes(struct hub_call *call);

void route_git_info_refs(struct hub_call *call);
void route_git_service(struct hub_call *call);

#endif
