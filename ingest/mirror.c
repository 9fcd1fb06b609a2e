/*
 * mirror.c: copies a repository from an upstream Hub (see mirror.h).
 *
 * The order keeps the durability rule: git objects are fetched into a
 * staging namespace (refs/haven-mirror/), the LFS objects of the wanted
 * revisions are downloaded and verified into the blob store, and only then
 * do the visible refs move. A run that is killed leaves staging refs and
 * partial downloads (tmp/mirror-<sha>.part, with the finished 64 MiB pieces
 * listed in tmp/mirror-<sha>.pieces) that the next run picks up.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ingest/card_lineage.h"
#include "ingest/git_fetch.h"
#include "ingest/mirror.h"
#include "storage/gitrepo.h"
#include "storage/hash.h"
#include "storage/lfs_claims.h"
#include "storage/lfs_pointer.h"
#include "storage/mirror_state.h"
#include "storage/repo_refs.h"

#define STAGING_PREFIX "refs/haven-mirror/"
#define PIECE_SIZE ((uint64_t)64 << 20)
#define WHOLE_OBJECT UINT64_MAX
#define DEFAULT_PARALLEL 4
#define MAX_PARALLEL 32
#define PATH_LEN 4096

/* ---- what the upstream says about the repository ---- */

static const char *api_kind(const char *type)
{
	if (!strcmp(type, "dataset"))
		return "datasets";
	if (!strcmp(type, "space"))
		return "spaces";
	return "models";
}

static int read_upstream_info(struct upstream *up,
			      const struct mirror_options *opt,
			      struct mirror_result *res, struct err *err)
{
	char path[1024];
	json_t *info = NULL, *gated;
	int rc;

	snprintf(path, sizeof(path), "/api/%s/%s", api_kind(opt->type),
		 opt->name);
	if ((rc = upstream_get_json(up, path, opt->token, &info, NULL, err)) < 0)
		return rc;
	res->upstream_private = json_is_true(json_object_get(info, "private"));
	gated = json_object_get(info, "gated");
	str_copy(res->gated, json_is_string(gated) ? json_string_value(gated) :
		 "", sizeof(res->gated));
	json_decref(info);
	return 0;
}

/* ---- the local repository ---- */

static int open_local(struct store *store, const struct mirror_options *opt,
		      struct mirror_result *res, struct repo_record *rec,
		      struct err *err)
{
	struct mirror_state st;
	int rc;

	rc = repo_lookup(store, opt->type, opt->name, rec, err);
	if (rc == ERR_NOREPO) {
		res->created_repo = true;
		return repo_create_empty(store, opt->type, opt->name,
					 res->upstream_private, rec, err);
	}
	if (rc < 0)
		return rc;
	if (mirror_state_get(store->meta, rec->id, &st, NULL) < 0)
		return err_set(err, ERR_EXISTS,
			       "%s '%s' exists here and is not a mirror; delete "
			       "it or mirror under another name", opt->type,
			       opt->name);
	return 0;
}

/* The local settings follow the upstream's: a private or gated upstream
 * repository stays private or gated here. */
static int follow_settings(struct store *store, struct repo_record *rec,
			   const struct mirror_result *res, struct err *err)
{
	struct meta_txn *txn = NULL;
	int rc;

	if (rec->private == res->upstream_private &&
	    !strcmp(rec->gated, res->gated))
		return 0;
	rec->private = res->upstream_private;
	str_copy(rec->gated, res->gated, sizeof(rec->gated));
	if ((rc = meta_txn_begin(&txn, store->meta, true, err)) < 0)
		return rc;
	if ((rc = meta_repo_update(txn, rec, err)) < 0) {
		meta_txn_abort(txn);
		return rc;
	}
	return meta_txn_commit(txn, err);
}

/* ---- git ---- */

static int fetch_history(git_repository *repo, const char *base,
			 const char *ca_bundle, int max_retries,
			 const struct mirror_options *opt, const char *token,
			 struct err *err)
{
	static char *specs[] = {
		"+refs/heads/*:" STAGING_PREFIX "heads/*",
		"+refs/tags/*:" STAGING_PREFIX "tags/*",
	};
	struct git_fetch_options fo = { token, ca_bundle, max_retries, true };
	char url[1024];

	snprintf(url, sizeof(url), "%s/%s%s", base,
		 git_fetch_url_prefix(opt->type), opt->name);
	return git_fetch_refs(repo, url, specs, 2, &fo, err);
}

/* One visible ref and the staged commit it should point at. */
struct wanted_ref {
	char name[300];		/* refs/heads/X or refs/tags/X */
	git_oid target;
};

struct wanted {
	struct wanted_ref *refs;
	size_t n, cap;
	git_oid *extra;		/* pinned commit ids (not ref tips) */
	size_t nextra;
	bool all;		/* every upstream ref is wanted */
};

static int wanted_add(struct wanted *w, const char *name, const git_oid *oid)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct wanted_ref *p = realloc(w->refs, cap * sizeof(*p));
		if (!p)
			return ERR_FAIL;
		w->refs = p;
		w->cap = cap;
	}
	str_copy(w->refs[w->n].name, name, sizeof(w->refs[w->n].name));
	w->refs[w->n++].target = *oid;
	return 0;
}

/* The commit an object names, peeling annotated tags. */
static int peel_commit(git_repository *repo, const git_oid *id, git_oid *out)
{
	git_object *obj = NULL;
	int rc = git_object_lookup(&obj, repo, id, GIT_OBJECT_ANY);
	git_object *peeled = NULL;

	if (rc == 0 && (rc = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT)) == 0)
		git_oid_cpy(out, git_object_id(peeled));
	git_object_free(peeled);
	git_object_free(obj);
	return rc;
}

static int collect_all_staged(git_repository *repo, struct wanted *w,
			      struct err *err)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	int rc = 0;

	if (git_reference_iterator_glob_new(&it, repo, STAGING_PREFIX "*") < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot list fetched refs");
	while (rc == 0 && git_reference_next(&ref, it) == 0) {
		const char *name = git_reference_name(ref);
		char visible[300];
		git_oid oid;

		if (!git_reference_target(ref)) {	/* symbolic: skip */
			git_reference_free(ref);
			continue;
		}
		snprintf(visible, sizeof(visible), "refs/%s",
			 name + strlen(STAGING_PREFIX));
		/* a tag's ref keeps pointing at the tag object itself */
		git_oid_cpy(&oid, git_reference_target(ref));
		rc = wanted_add(w, visible, &oid);
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	return rc < 0 ? err_set(err, ERR_FAIL, "out of memory") : 0;
}

/* Maps --revision values onto staged refs (a branch, a tag, or a full
 * commit id that the fetched history contains). */
static int collect_revisions(git_repository *repo,
			     const struct mirror_options *opt,
			     struct wanted *w, struct err *err)
{
	static const char *const kinds[] = { "heads", "tags" };

	for (size_t i = 0; i < opt->nrevisions; i++) {
		const char *rev = opt->revisions[i];
		bool found = false;
		git_oid oid;

		for (size_t k = 0; k < 2 && !found; k++) {
			char staged[300], visible[300];
			git_reference *ref = NULL;
			snprintf(staged, sizeof(staged), STAGING_PREFIX "%s/%s",
				 kinds[k], rev);
			if (git_reference_lookup(&ref, repo, staged) < 0)
				continue;
			snprintf(visible, sizeof(visible), "refs/%s/%s", kinds[k],
				 rev);
			if (git_reference_target(ref) &&
			    wanted_add(w, visible, git_reference_target(ref)) < 0) {
				git_reference_free(ref);
				return err_set(err, ERR_FAIL, "out of memory");
			}
			git_reference_free(ref);
			found = true;
		}
		if (!found && strlen(rev) == GIT_HEX_LEN &&
		    git_oid_fromstr(&oid, rev) == 0) {
			git_commit *c = NULL;
			if (git_commit_lookup(&c, repo, &oid) == 0) {
				git_oid *p = realloc(w->extra, (w->nextra + 1) *
						     sizeof(*p));
				git_commit_free(c);
				if (!p)
					return err_set(err, ERR_FAIL, "out of memory");
				w->extra = p;
				w->extra[w->nextra++] = oid;
				found = true;
			}
		}
		if (!found)
			return err_set(err, ERR_NOREV,
				       "revision '%s' not found upstream in %s",
				       rev, opt->name);
	}
	return 0;
}

/* ---- LFS objects the wanted revisions name ---- */

struct lfs_object {
	char sha[SHA256_HEX_LEN + 1];
	uint64_t size;
	char commit[GIT_HEX_LEN + 1];
	char path[1024];
	/* download state, guarded by the pool's lock */
	int fd;
	uint64_t pieces, pieces_done;
	bool *piece_done;
	bool failed;
	char part[PATH_LEN], list[PATH_LEN];
};

struct lfs_list {
	struct lfs_object *v;
	size_t n, cap;
};

static bool path_wanted(const struct mirror_options *opt, const char *path)
{
	bool in = opt->ninclude == 0;

	for (size_t i = 0; i < opt->ninclude && !in; i++)
		in = fnmatch(opt->include[i], path, 0) == 0;
	for (size_t i = 0; i < opt->nexclude && in; i++)
		in = fnmatch(opt->exclude[i], path, 0) != 0;
	return in;
}

static bool lfs_list_has(const struct lfs_list *l, const char *sha)
{
	for (size_t i = 0; i < l->n; i++) {
		if (!strcmp(l->v[i].sha, sha))
			return true;
	}
	return false;
}

struct walk_ctx {
	git_repository *repo;
	const struct mirror_options *opt;
	struct lfs_list *list;
	const char *commit;
	int rc;
};

static int visit_entry(const char *root, const git_tree_entry *e, void *arg)
{
	struct walk_ctx *ctx = arg;
	char path[1024], sha[SHA256_HEX_LEN + 1];
	git_blob *blob = NULL;
	uint64_t size;

	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		return 0;
	snprintf(path, sizeof(path), "%s%s", root, git_tree_entry_name(e));
	if (!path_wanted(ctx->opt, path) ||
	    git_blob_lookup(&blob, ctx->repo, git_tree_entry_id(e)) < 0)
		return 0;
	if (lfs_pointer_parse(git_blob_rawcontent(blob),
			      (size_t)git_blob_rawsize(blob), sha, &size) &&
	    !lfs_list_has(ctx->list, sha)) {
		struct lfs_list *l = ctx->list;
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			struct lfs_object *p = realloc(l->v, cap * sizeof(*p));
			if (!p) {
				ctx->rc = ERR_FAIL;
				git_blob_free(blob);
				return -1;
			}
			l->v = p;
			l->cap = cap;
		}
		memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
		str_copy(l->v[l->n].sha, sha, sizeof(l->v[l->n].sha));
		l->v[l->n].size = size;
		l->v[l->n].fd = -1;
		str_copy(l->v[l->n].commit, ctx->commit, sizeof(l->v[l->n].commit));
		str_copy(l->v[l->n].path, path, sizeof(l->v[l->n].path));
		l->n++;
	}
	git_blob_free(blob);
	return 0;
}

static int collect_lfs(git_repository *repo, const struct mirror_options *opt,
		       const git_oid *commit_id, struct lfs_list *list,
		       struct err *err)
{
	struct walk_ctx ctx = { repo, opt, list, NULL, 0 };
	char hex[GIT_HEX_LEN + 1];
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	int rc = 0;

	gitrepo_oid_hex(hex, commit_id);
	ctx.commit = hex;
	if (git_commit_lookup(&commit, repo, commit_id) < 0) {
		/* a tag of something other than a commit names no files */
		return 0;
	}
	if (git_commit_tree(&tree, commit) < 0 ||
	    git_tree_walk(tree, GIT_TREEWALK_PRE, visit_entry, &ctx) < 0 ||
	    ctx.rc < 0)
		rc = gitrepo_fail(err, ERR_FAIL, "cannot read a fetched tree");
	git_tree_free(tree);
	git_commit_free(commit);
	return rc;
}

/* ---- downloading ---- */

struct pool {
	struct store *store;
	const struct upstream_config *cfg;
	const struct mirror_options *opt;
	struct lfs_object **todo;	/* objects to fetch */
	size_t ntodo;
	size_t next_obj, next_piece;	/* the next job */
	pthread_mutex_t lock;
	struct mirror_progress progress;
	uint64_t bytes_fetched;
	/* With at least one object per worker, each worker streams whole
	 * objects: one request each, hashed as the bytes pass, and no two
	 * writers in one file. Fewer, larger objects are split into pieces
	 * so that every worker has work. */
	bool whole_objects;
	int rc;
	struct err err;
};

static void pool_fail(struct pool *p, const struct err *e)
{
	pthread_mutex_lock(&p->lock);
	if (p->rc == 0) {
		p->rc = e->code ? e->code : ERR_FAIL;
		p->err = *e;
	}
	pthread_mutex_unlock(&p->lock);
}

static void report(struct pool *p)
{
	if (p->opt->progress)
		p->opt->progress(&p->progress, p->opt->progress_arg);
}

/* Reopens the pieces a killed run finished, or starts a new part file. */
static int object_prepare(struct blob_store *blobs, struct lfs_object *o,
			  struct err *err)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;

	o->pieces = o->size ? (o->size + PIECE_SIZE - 1) / PIECE_SIZE : 1;
	o->piece_done = calloc(o->pieces, sizeof(bool));
	if (!o->piece_done)
		return err_set(err, ERR_FAIL, "out of memory");
	snprintf(o->part, sizeof(o->part), "%s/mirror-%s.part",
		 blob_tmp_dir(blobs), o->sha);
	snprintf(o->list, sizeof(o->list), "%s/mirror-%s.pieces",
		 blob_tmp_dir(blobs), o->sha);
	if (o->pieces > 1 && stat(o->part, &st) == 0 &&
	    (uint64_t)st.st_size == o->size &&
	    file_read_all(&text, &len, o->list, 1 << 20) == 0) {
		for (char *line = text; line && *line;) {
			unsigned long long i = strtoull(line, &line, 10);
			if (i < o->pieces && !o->piece_done[i]) {
				o->piece_done[i] = true;
				o->pieces_done++;
			}
			while (*line == '\n')
				line++;
		}
		free(text);
		o->fd = open(o->part, O_RDWR | O_CLOEXEC);
	} else {
		unlink(o->list);
		o->fd = open(o->part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0644);
		if (o->fd >= 0 && ftruncate(o->fd, (off_t)o->size) < 0) {
			close(o->fd);
			o->fd = -1;
		}
	}
	if (o->fd < 0)
		return err_set(err, ERR_FAIL, "cannot create '%s': %s", o->part,
			       strerror(errno));
	return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, off_t at)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		at += n;
	}
	return 0;
}

/* Records a finished piece so a later run skips it. */
static void piece_record(struct lfs_object *o, uint64_t piece)
{
	char line[32];
	int fd;

	if (fdatasync(o->fd) < 0)
		return;
	fd = open(o->list, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	snprintf(line, sizeof(line), "%llu\n", (unsigned long long)piece);
	if (write_full(fd, line, strlen(line)) == 0)
		fdatasync(fd);
	close(fd);
}

static uint64_t piece_end(const struct lfs_object *o, uint64_t piece)
{
	uint64_t end = (piece + 1) * PIECE_SIZE;

	return end < o->size ? end : o->size;
}

struct piece_sink {
	struct pool *pool;
	struct lfs_object *obj;
	uint64_t at;
	struct sha256_ctx *hash;	/* whole-object hash, when streamed */
	uint64_t since_report;
	bool record;			/* note each piece as it completes */
	uint64_t next_piece;		/* the piece being written */
};

static int piece_write(const void *data, size_t len, void *arg)
{
	struct piece_sink *s = arg;

	if (s->pool->opt->cancel && atomic_load(s->pool->opt->cancel))
		return -1;

	if (pwrite_full(s->obj->fd, data, len, (off_t)s->at) < 0)
		return -1;
	if (s->hash)
		sha256_update(s->hash, data, len);
	s->at += len;
	s->since_report += len;
	while (s->record && s->next_piece < s->obj->pieces &&
	       s->at >= piece_end(s->obj, s->next_piece))
		piece_record(s->obj, s->next_piece++);
	if (s->since_report >= (4 << 20)) {
		pthread_mutex_lock(&s->pool->lock);
		s->pool->progress.bytes_done += s->since_report;
		s->pool->bytes_fetched += s->since_report;
		report(s->pool);
		pthread_mutex_unlock(&s->pool->lock);
		s->since_report = 0;
	}
	return 0;
}

/* Feeds bytes [0, end) of the part file into h. */
static int hash_range(struct lfs_object *o, struct sha256_ctx *h, uint64_t end)
{
	size_t bufsize = 4 << 20;
	char *buf = malloc(bufsize);
	uint64_t at = 0;
	int rc = buf ? 0 : -1;

	while (rc == 0 && at < end) {
		size_t want = end - at < bufsize ? (size_t)(end - at) : bufsize;
		ssize_t n = pread(o->fd, buf, want, (off_t)at);
		if (n <= 0) {
			rc = -1;
			break;
		}
		sha256_update(h, buf, (size_t)n);
		at += (uint64_t)n;
	}
	free(buf);
	return rc;
}

/* Hashes a multi-piece object once all its pieces are on disk. */
static int hash_part(struct lfs_object *o, char out[SHA256_HEX_LEN + 1])
{
	struct sha256_ctx *h = sha256_new();
	int rc = h ? hash_range(o, h, o->size) : -1;

	if (h)
		sha256_final_hex(h, out);
	return rc;
}

static int object_finish(struct pool *p, struct lfs_object *o,
			 const char *sha_inline, struct err *err)
{
	char sha[SHA256_HEX_LEN + 1];
	int rc;

	if (sha_inline)
		str_copy(sha, sha_inline, sizeof(sha));
	else if (hash_part(o, sha) < 0)
		return err_set(err, ERR_FAIL, "cannot read '%s'", o->part);
	close(o->fd);
	o->fd = -1;
	if (strcmp(sha, o->sha)) {
		unlink(o->part);
		unlink(o->list);
		return err_set(err, ERR_CORRUPT,
			       "%s: upstream bytes hash to %s, the pointer says %s",
			       o->path, sha, o->sha);
	}
	rc = blob_adopt(p->store->blobs, o->part, o->sha, err);
	unlink(o->list);
	return rc;
}

/* The upstream URL path of an object's file at its commit. */
static int resolve_path(const struct pool *p, const struct lfs_object *o,
			char *out, size_t size, struct err *err)
{
	char escaped[3072];

	if (upstream_path_escape(o->path, escaped, sizeof(escaped)) < 0)
		return err_set(err, ERR_TOOBIG, "path too long: %s", o->path);
	snprintf(out, size, "/%s%s/resolve/%s/%s",
		 git_fetch_url_prefix(p->opt->type),
		 p->opt->name, o->commit, escaped);
	return 0;
}

static int object_done(struct pool *p, struct lfs_object *o, const char *sha,
		       struct err *err)
{
	int rc = object_finish(p, o, sha, err);

	pthread_mutex_lock(&p->lock);
	p->progress.files_done++;
	report(p);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int fetch_piece(struct pool *p, struct upstream *up,
		       struct lfs_object *o, uint64_t piece, struct err *err)
{
	char path[4096], sha[SHA256_HEX_LEN + 1];
	uint64_t from = piece * PIECE_SIZE;
	uint64_t len = piece_end(o, piece) - from;
	struct piece_sink sink = { .pool = p, .obj = o, .at = from };
	bool last;
	int rc;

	if ((rc = resolve_path(p, o, path, sizeof(path), err)) < 0)
		return rc;
	if (o->pieces == 1)
		sink.hash = sha256_new();
	rc = o->size ? upstream_download(up, path, p->opt->token, from, len,
					 piece_write, &sink, NULL, err) : 0;
	if (sink.hash && rc < 0)
		sha256_free(sink.hash);
	if (rc < 0)
		return rc;
	if (sink.hash)
		sha256_final_hex(sink.hash, sha);
	pthread_mutex_lock(&p->lock);
	p->progress.bytes_done += sink.since_report;
	p->bytes_fetched += sink.since_report;
	o->piece_done[piece] = true;
	last = ++o->pieces_done == o->pieces;
	pthread_mutex_unlock(&p->lock);
	if (o->pieces > 1)
		piece_record(o, piece);
	if (!last)
		return 0;
	return object_done(p, o, o->pieces == 1 ? sha : NULL, err);
}

/* The first piece not on disk, or o->pieces; *prefix tells whether the
 * finished pieces are exactly the ones before it. */
static uint64_t first_missing(const struct lfs_object *o, bool *prefix)
{
	uint64_t k = 0;

	while (k < o->pieces && o->piece_done[k])
		k++;
	*prefix = true;
	for (uint64_t i = k; i < o->pieces; i++) {
		if (o->piece_done[i])
			*prefix = false;
	}
	return k;
}

/* Streams an object in one request from its first missing piece, hashing
 * as the bytes pass (the finished prefix is hashed from disk once). A run
 * that split this object into pieces is finished piece by piece. */
static int fetch_whole(struct pool *p, struct upstream *up,
		       struct lfs_object *o, struct err *err)
{
	struct piece_sink sink = { .pool = p, .obj = o, .record = o->pieces > 1 };
	char path[4096], sha[SHA256_HEX_LEN + 1];
	bool prefix;
	uint64_t k = first_missing(o, &prefix), from = k * PIECE_SIZE;
	int rc = 0;

	if (!prefix) {
		for (uint64_t i = k; i < o->pieces && rc == 0; i++) {
			if (!o->piece_done[i])
				rc = fetch_piece(p, up, o, i, err);
		}
		return rc;
	}
	if ((rc = resolve_path(p, o, path, sizeof(path), err)) < 0)
		return rc;
	if (!(sink.hash = sha256_new()) || hash_range(o, sink.hash, from) < 0) {
		sha256_free(sink.hash);
		return err_set(err, ERR_FAIL, "cannot read '%s'", o->part);
	}
	sink.at = from;
	sink.next_piece = k;
	if (from < o->size)
		rc = upstream_download(up, path, p->opt->token, from,
				       o->size - from, piece_write, &sink, NULL,
				       err);
	if (rc < 0) {
		sha256_free(sink.hash);
		return rc;
	}
	sha256_final_hex(sink.hash, sha);
	pthread_mutex_lock(&p->lock);
	p->progress.bytes_done += sink.since_report;
	p->bytes_fetched += sink.since_report;
	o->pieces_done = o->pieces;
	pthread_mutex_unlock(&p->lock);
	return object_done(p, o, sha, err);
}

/* Hands out (object, piece) jobs in order, skipping finished pieces, or
 * whole objects (piece WHOLE_OBJECT). */
static bool next_job(struct pool *p, struct lfs_object **obj, uint64_t *piece)
{
	bool found = false;

	pthread_mutex_lock(&p->lock);
	if (p->opt->cancel && atomic_load(p->opt->cancel) && p->rc == 0)
		p->rc = err_set(&p->err, ERR_UNAVAILABLE, "mirror of %s cancelled",
				p->opt->name);
	if (p->whole_objects) {
		while (p->rc == 0 && p->next_obj < p->ntodo && !found) {
			struct lfs_object *o = p->todo[p->next_obj++];
			if (o->pieces_done == o->pieces)
				continue;	/* finished by finish_complete */
			*obj = o;
			*piece = WHOLE_OBJECT;
			found = true;
		}
		pthread_mutex_unlock(&p->lock);
		return found;
	}
	while (p->rc == 0 && p->next_obj < p->ntodo) {
		struct lfs_object *o = p->todo[p->next_obj];
		if (p->next_piece >= o->pieces) {
			p->next_obj++;
			p->next_piece = 0;
			continue;
		}
		if (!o->piece_done[p->next_piece]) {
			*obj = o;
			*piece = p->next_piece++;
			found = true;
			break;
		}
		p->next_piece++;
	}
	pthread_mutex_unlock(&p->lock);
	return found;
}

static void *download_worker(void *arg)
{
	struct pool *p = arg;
	struct upstream *up = NULL;
	struct err err = { 0 };
	struct lfs_object *o;
	uint64_t piece;

	if (upstream_new(&up, p->cfg, &err) < 0) {
		pool_fail(p, &err);
		return NULL;
	}
	while (next_job(p, &o, &piece)) {
		int rc = piece == WHOLE_OBJECT ? fetch_whole(p, up, o, &err) :
			 fetch_piece(p, up, o, piece, &err);
		if (rc < 0) {
			pool_fail(p, &err);
			break;
		}
	}
	upstream_free(up);
	return NULL;
}

/* Objects that a killed run had finished except for the final hash. */
static int finish_complete(struct pool *p, struct err *err)
{
	for (size_t i = 0; i < p->ntodo; i++) {
		struct lfs_object *o = p->todo[i];
		if (o->pieces_done == o->pieces && o->fd >= 0) {
			int rc = object_finish(p, o, NULL, err);
			if (rc < 0)
				return rc;
			p->progress.files_done++;
		}
	}
	return 0;
}

static int download_objects(struct store *store,
			    const struct upstream_config *cfg,
			    const struct mirror_options *opt,
			    struct lfs_list *list, struct mirror_result *res,
			    struct err *err)
{
	struct pool p = { .store = store, .cfg = cfg, .opt = opt };
	pthread_t threads[MAX_PARALLEL];
	int nthreads = opt->parallel > 0 ? opt->parallel : DEFAULT_PARALLEL;
	int started = 0, rc = 0;

	if (nthreads > MAX_PARALLEL)
		nthreads = MAX_PARALLEL;
	p.todo = calloc(list->n ? list->n : 1, sizeof(*p.todo));
	if (!p.todo)
		return err_set(err, ERR_FAIL, "out of memory");
	pthread_mutex_init(&p.lock, NULL);
	p.progress.repo = opt->name;
	for (size_t i = 0; i < list->n; i++) {
		struct lfs_object *o = &list->v[i];
		p.progress.files_total++;
		p.progress.bytes_total += o->size;
		if (blob_exists(store->blobs, o->sha)) {
			res->lfs_present++;
			p.progress.files_done++;
			p.progress.bytes_done += o->size;
			continue;
		}
		if ((rc = object_prepare(store->blobs, o, err)) < 0)
			goto out;
		p.progress.bytes_done += o->pieces_done * PIECE_SIZE > o->size ?
					 o->size : o->pieces_done * PIECE_SIZE;
		p.todo[p.ntodo++] = o;
	}
	report(&p);
	if ((rc = finish_complete(&p, err)) < 0)
		goto out;
	p.whole_objects = p.ntodo >= (size_t)nthreads;
	for (; started < nthreads; started++) {
		if (pthread_create(&threads[started], NULL, download_worker, &p))
			break;
	}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (started == 0)
		p.rc = err_set(&p.err, ERR_FAIL, "cannot start download threads");
	if ((rc = p.rc) < 0)
		*err = p.err;
	res->lfs_fetched = p.ntodo;
	res->bytes_fetched = p.bytes_fetched;
out:
	for (size_t i = 0; i < p.ntodo; i++) {
		if (p.todo[i]->fd >= 0)
			close(p.todo[i]->fd);
		p.todo[i]->fd = -1;
	}
	pthread_mutex_destroy(&p.lock);
	free(p.todo);
	return rc;
}

/* ---- publishing ---- */

static int claim_objects(struct store *store, const struct repo_record *rec,
			 const struct lfs_list *list, struct err *err)
{
	for (size_t i = 0; i < list->n; i++) {
		int rc = lfs_claim_add(store->meta, rec->id, list->v[i].sha, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static bool ref_wanted(const struct wanted *w, const char *name)
{
	for (size_t i = 0; i < w->n; i++) {
		if (!strcmp(w->refs[i].name, name))
			return true;
	}
	return false;
}

/* Removes visible branches and tags the upstream no longer has. */
static int prune_refs(git_repository *repo, const struct wanted *w,
		      struct err *err)
{
	static const char *const globs[] = { "refs/heads/*", "refs/tags/*" };

	for (size_t g = 0; g < 2; g++) {
		git_reference_iterator *it = NULL;
		git_reference *ref;
		if (git_reference_iterator_glob_new(&it, repo, globs[g]) < 0)
			return gitrepo_fail(err, ERR_FAIL, "cannot list refs");
		while (git_reference_next(&ref, it) == 0) {
			if (!ref_wanted(w, git_reference_name(ref)))
				git_reference_delete(ref);
			git_reference_free(ref);
		}
		git_reference_iterator_free(it);
	}
	return 0;
}

static int publish_refs(git_repository *repo, const struct wanted *w,
			struct mirror_result *res, struct err *err)
{
	for (size_t i = 0; i < w->n; i++) {
		git_reference *ref = NULL;
		const git_oid *now = NULL;
		int same;

		if (git_reference_lookup(&ref, repo, w->refs[i].name) == 0)
			now = git_reference_target(ref);
		same = now && git_oid_equal(now, &w->refs[i].target);
		git_reference_free(ref);
		if (same)
			continue;
		if (git_reference_create(&ref, repo, w->refs[i].name,
					 &w->refs[i].target, 1,
					 "haven mirror") < 0)
			return gitrepo_fail(err, ERR_FAIL, "cannot move a ref");
		git_reference_free(ref);
		res->refs_updated++;
	}
	return w->all ? prune_refs(repo, w, err) : 0;
}

static void drop_staging(git_repository *repo)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;

	if (git_reference_iterator_glob_new(&it, repo, STAGING_PREFIX "*") < 0)
		return;
	while (git_reference_next(&ref, it) == 0) {
		git_reference_delete(ref);
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
}

static void state_fill(struct mirror_state *st, const struct repo_record *rec,
		       const struct upstream_config *cfg,
		       const struct mirror_options *opt)
{
	str_copy(st->repo_id, rec->id, sizeof(st->repo_id));
	str_copy(st->type, rec->type, sizeof(st->type));
	str_copy(st->name, rec->name, sizeof(st->name));
	str_copy(st->upstream, cfg && cfg->url && cfg->url[0] ? cfg->url :
		 UPSTREAM_DEFAULT_URL, sizeof(st->upstream));
	st->mode = opt->history_only ? MIRROR_MODE_PULL_THROUGH :
				       MIRROR_MODE_MIRROR;
	st->nrevisions = st->ninclude = st->nexclude = 0;
	for (size_t i = 0; i < opt->nrevisions && i < MIRROR_MAX_REVS; i++)
		str_copy(st->revisions[st->nrevisions++], opt->revisions[i], 256);
	for (size_t i = 0; i < opt->ninclude && i < MIRROR_MAX_GLOBS; i++)
		str_copy(st->include[st->ninclude++], opt->include[i], 256);
	for (size_t i = 0; i < opt->nexclude && i < MIRROR_MAX_GLOBS; i++)
		str_copy(st->exclude[st->nexclude++], opt->exclude[i], 256);
}

static void state_load(struct store *store, const struct repo_record *rec,
		       const struct upstream_config *cfg,
		       const struct mirror_options *opt, struct mirror_state *st)
{
	if (mirror_state_get(store->meta, rec->id, st, NULL) < 0)
		memset(st, 0, sizeof(*st));
	/* a pull-through repo that someone mirrors becomes a mirror; a
	 * mirror stays one when pull-through refreshes it */
	if (!(opt->history_only && st->repo_id[0] &&
	      st->mode == MIRROR_MODE_MIRROR))
		state_fill(st, rec, cfg, opt);
}

/* Marks the repository as a mirror before anything is fetched, so that a
 * run killed halfway is resumed by the next one. */
static int state_begin(struct store *store, const struct repo_record *rec,
		       const struct upstream_config *cfg,
		       const struct mirror_options *opt, struct err *err)
{
	struct mirror_state st;

	state_load(store, rec, cfg, opt, &st);
	st.last_attempt = time(NULL);
	str_copy(st.status, "running", sizeof(st.status));
	return mirror_state_put(store->meta, &st, err);
}

static void state_record(struct store *store, const struct repo_record *rec,
			 const struct upstream_config *cfg,
			 const struct mirror_options *opt,
			 const struct mirror_result *res, int rc,
			 const struct err *err)
{
	struct mirror_state st;

	state_load(store, rec, cfg, opt, &st);
	st.last_attempt = time(NULL);
	st.upstream_private = res->upstream_private;
	str_copy(st.upstream_gated, res->gated, sizeof(st.upstream_gated));
	st.bytes_total += res->bytes_fetched;
	if (rc == 0) {
		st.last_success = st.last_attempt;
		str_copy(st.status, "ok", sizeof(st.status));
		st.error[0] = '\0';
	} else {
		str_copy(st.status, "failed", sizeof(st.status));
		str_copy(st.error, err->msg, sizeof(st.error));
	}
	mirror_state_put(store->meta, &st, NULL);
}

static int mirror_git_and_files(struct store *store, struct upstream *up,
				const struct upstream_config *cfg,
				const struct mirror_options *opt,
				const struct repo_record *rec,
				struct mirror_result *res, struct err *err)
{
	struct wanted w = { 0 };
	struct lfs_list list = { 0 };
	git_repository *repo = NULL;
	int rc;

	if ((rc = repo_open_git(&repo, store, rec, err)) < 0)
		return rc;
	if ((rc = fetch_history(repo, upstream_base_url(up), cfg->ca_bundle,
				upstream_max_retries(up), opt,
				opt->token ? opt->token : cfg->token, err)) < 0)
		goto out;
	w.all = opt->nrevisions == 0;
	rc = w.all ? collect_all_staged(repo, &w, err) :
		     collect_revisions(repo, opt, &w, err);
	if (rc < 0)
		goto out;
	if (!opt->history_only) {
		for (size_t i = 0; i < w.n && rc == 0; i++) {
			git_oid commit;
			if (peel_commit(repo, &w.refs[i].target, &commit) == 0)
				rc = collect_lfs(repo, opt, &commit, &list, err);
		}
		for (size_t i = 0; i < w.nextra && rc == 0; i++)
			rc = collect_lfs(repo, opt, &w.extra[i], &list, err);
		if (rc == 0)
			rc = download_objects(store, cfg, opt, &list, res, err);
		if (rc == 0)
			rc = claim_objects(store, rec, &list, err);
		if (rc < 0)
			goto out;
	}
	if ((rc = publish_refs(repo, &w, res, err)) == 0)
		drop_staging(repo);
out:
	for (size_t i = 0; i < list.n; i++)
		free(list.v[i].piece_done);
	free(list.v);
	free(w.refs);
	free(w.extra);
	git_repository_free(repo);
	return rc;
}

int mirror_repo(struct store *store, const struct upstream_config *cfg,
		const struct mirror_options *in, struct mirror_result *res,
		struct err *err)
{
	static const struct upstream_config defaults;
	struct mirror_options opt = *in;
	struct upstream *up = NULL;
	struct repo_record rec;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!cfg)
		cfg = &defaults;
	if (!opt.type || !opt.type[0])
		opt.type = "model";
	if (!repo_type_valid(opt.type))
		return err_set(err, ERR_INVALID, "invalid repository type '%s'",
			       opt.type);
	if (!repo_name_valid(opt.name))
		return err_set(err, ERR_INVALID,
			       "invalid repository id '%.200s': expected namespace/name",
			       opt.name);
	if ((rc = upstream_new(&up, cfg, err)) < 0)
		return rc;
	if ((rc = read_upstream_info(up, &opt, res, err)) < 0 ||
	    (rc = open_local(store, &opt, res, &rec, err)) < 0 ||
	    (rc = state_begin(store, &rec, cfg, &opt, err)) < 0)
		goto out;
	rc = mirror_git_and_files(store, up, cfg, &opt, &rec, res, err);
	if (rc == 0)
		rc = follow_settings(store, &rec, res, err);
	if (rc == 0)
		rc = repo_refs_record(store, &rec, err);
	if (rc == 0 && card_lineage_sync(store, &rec, NULL) < 0)
		log_msg(LOG_WARN, "%s: lineage not updated", rec.name);
	state_record(store, &rec, cfg, &opt, res, rc, err);
out:
	upstream_free(up);
	return rc;
}
