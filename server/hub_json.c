/*
 * hub_json.c: see hub_json.h.
 */
#include "common/compat.h"

#include <event2/buffer.h>

#include "common/util.h"
#include "server/hub_error.h"
#include "server/hub_json.h"

json_t *hub_json_tree_entry(const struct listing_entry *e,
			    const struct commit_summary *last)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "type",
			      e->is_dir ? "directory" : "file", "oid", e->oid,
			      "size", (json_int_t)e->size, "path", e->path);

	if (o && e->lfs)
		json_object_set_new(o, "lfs", json_pack("{s:s, s:I, s:i}", "oid",
							e->sha256, "size",
							(json_int_t)e->size,
							"pointerSize",
							(int)e->pointer_size));
	if (o && last)
		json_object_set_new(o, "lastCommit",
				    json_pack("{s:s, s:s, s:s}", "id", last->id,
					      "title", last->title, "date",
					      last->date));
	return o;
}

json_t *hub_json_sibling(const struct listing_entry *e, bool blobs)
{
	json_t *o = json_pack("{s:s}", "rfilename", e->path);

	if (!o || !blobs)
		return o;
	json_object_set_new(o, "size", json_integer((json_int_t)e->size));
	json_object_set_new(o, "blobId", json_string(e->oid));
	if (e->lfs)
		json_object_set_new(o, "lfs", json_pack("{s:s, s:I, s:i}",
							"sha256", e->sha256,
							"size", (json_int_t)e->size,
							"pointerSize",
							(int)e->pointer_size));
	return o;
}

static int dump_to_evbuffer(const char *buffer, size_t size, void *data)
{
	return evbuffer_add(data, buffer, size);
}

void hub_reply_json(struct http_request *req, int status, json_t *doc)
{
	hub_reply_json_as(req, status, doc, "application/json; charset=utf-8");
}

void hub_reply_json_as(struct http_request *req, int status, json_t *doc,
		       const char *content_type)
{
	struct evbuffer *body = evbuffer_new();

	if (!doc || !body ||
	    json_dump_callback(doc, dump_to_evbuffer, body, JSON_COMPACT) < 0) {
		evbuffer_free(body);
		json_decref(doc);
		hub_error_replyf(req, ERR_FAIL, "cannot build the answer");
		return;
	}
	json_decref(doc);
	hub_common_headers(req);
	http_response_header(req, "Content-Type", content_type);
	http_response_send(req, status, body);
	evbuffer_free(body);
}

/* Appends s percent-encoded (everything but unreserved characters). */
static void add_encoded(struct evbuffer *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
		    c == '~')
			evbuffer_add(b, s, 1);
		else
			evbuffer_add_printf(b, "%%%02X", c);
	}
}

void hub_link_next(struct http_request *req, const char *public_url,
		   const char *cursor)
{
	struct evbuffer *b = evbuffer_new();
	const char *q = http_request_query(req);
	char *link;
	size_t len;
	bool first = true;

	evbuffer_add_printf(b, "<%s%s?", public_url, http_request_path(req));
	while (q && *q) {
		size_t n = strcspn(q, "&");
		if (n && strncmp(q, "cursor=", 7)) {
			evbuffer_add_printf(b, "%s%.*s", first ? "" : "&", (int)n, q);
			first = false;
		}
		q += n + (q[n] == '&');
	}
	evbuffer_add_printf(b, "%scursor=", first ? "" : "&");
	add_encoded(b, cursor);
	evbuffer_add(b, ">; rel=\"next\"", 13);
	len = evbuffer_get_length(b);
	link = malloc(len + 1);
	if (link) {
		evbuffer_remove(b, link, len);
		link[len] = '\0';
		http_response_header(req, "Link", link);
		free(link);
	}
	evbuffer_free(b);
}

void hub_commit_summary(struct commit_summary *out, const git_commit *c)
{
	const char *msg = git_commit_message(c);
	size_t n = strcspn(msg, "\n");

	gitrepo_oid_hex(out->id, git_commit_id(c));
	if (n >= sizeof(out->title))
		n = sizeof(out->title) - 1;
	memcpy(out->title, msg, n);
	out->title[n] = '\0';
	time_iso8601(out->date, (time_t)git_commit_time(c));
}
