/*
 * hub_json.h: JSON shapes shared by several routes (tree entries, repo
 * siblings) and the helper that sends a JSON answer.
 */
#ifndef HAVEN_HUB_JSON_H
#define HAVEN_HUB_JSON_H

#include <jansson.h>

#include "server/http.h"
#include "storage/listing.h"

struct commit_summary {
	char id[GIT_HEX_LEN + 1];
	char title[512];
	char date[32];
};

/* A tree / paths-info entry (hub-api.md 2.4); last may be NULL. */
json_t *hub_json_tree_entry(const struct listing_entry *e,
			    const struct commit_summary *last);

/* A repo-info sibling; with blobs, also size, blobId and lfs. */
json_t *hub_json_sibling(const struct listing_entry *e, bool blobs);

/* Sends doc (stolen: the reference is released) with status. */
void hub_reply_json(struct http_request *req, int status, json_t *doc);

/* The same with another JSON media type (the LFS API's). */
void hub_reply_json_as(struct http_request *req, int status, json_t *doc,
		       const char *content_type);

/* The Link header of the next page: the public URL of this request with
 * its cursor parameter replaced by cursor. */
void hub_link_next(struct http_request *req, const char *public_url,
		   const char *cursor);

/* Summarises a commit (title = first line of the message). */
void hub_commit_summary(struct commit_summary *out, const git_commit *c);

#endif
