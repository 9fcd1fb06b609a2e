/*
 * bundle_export.c: writes a bundle (see bundle.h, docs/bundles.md).
 *
 * For each repository: the refs to carry (the named revisions, or every
 * branch and tag), one pack of the commits they reach minus those an
 * earlier manifest's refs reach (libgit2's packbuilder over a revwalk),
 * and the LFS objects the trees of those commits name. The packs are
 * built in <data>/tmp first, so that the manifest, which must list every
 * object's size and sha256, can be written and signed before the
 * objects; a tar bundle then reads front to back: manifest, signature,
 * packs, LFS objects. The bundle appears at its path only when complete
 * (written as PATH.partial-XXXXXX and renamed).
 */
#include "common/compat.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ingest/bundle.h"
#include "ingest/bundle_key.h"
#include "ingest/bundle_manifest.h"
#include "storage/lfs_pointer.h"
#include "storage/oidset.h"

/* --- growing lists ------------------------------------------------------ */

static int grow(void **items, size_t *cap, size_t count, size_t size)
{
	size_t ncap;
	void *p;

	if (count < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	if (!(p = realloc(*items, ncap * size)))
		return -1;
	*items = p;
	*cap = ncap;
	return 0;
}

/* --- the output: a folder or a tar file ---------------------------------- */

struct sink {
	bool tar;
	char final[4096];
	char partial[4200];
	int fd;				/* tar: the partial file */
	struct archive *a;
	int file;			/* folder: the file being written */
};

static int sink_open(struct sink *s, const char *to, struct err *err)
{
	size_t n = strlen(to);
	struct stat st;

	memset(s, 0, sizeof(*s));
	s->fd = s->file = -1;
	s->tar = n > 4 && !strcmp(to + n - 4, ".tar");
	if (str_copy(s->final, to, sizeof(s->final)) >= sizeof(s->final))
		return err_set(err, ERR_INVALID, "bundle path too long");
	if (lstat(to, &st) == 0)
		return err_set(err, ERR_EXISTS, "'%s' already exists", to);
	snprintf(s->partial, sizeof(s->partial), "%s.partial-XXXXXX", to);
	if (!s->tar) {
		char sub[4300];
		if (!mkdtemp(s->partial))
			goto fail;
		snprintf(sub, sizeof(sub), "%s/git", s->partial);
		if (mkdir(sub, 0755) < 0)
			goto fail;
		snprintf(sub, sizeof(sub), "%s/lfs", s->partial);
		if (mkdir(sub, 0755) < 0)
			goto fail;
		return 0;
	}
	if ((s->fd = mkstemp(s->partial)) < 0)
		goto fail;
	fchmod(s->fd, 0644);
	if (!(s->a = archive_write_new()) ||
	    archive_write_set_format_pax_restricted(s->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(s->a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(s->a, s->fd) != ARCHIVE_OK)
		return err_set(err, ERR_FAIL, "cannot write '%s': %s", to,
			       s->a ? archive_error_string(s->a) : "out of memory");
	return 0;
fail:
	return err_set(err, ERR_FAIL, "cannot create '%s': %s", s->partial,
		       strerror(errno));
}

static int sink_begin(struct sink *s, const char *name, uint64_t size,
		      struct err *err)
{
	struct archive_entry *e;
	char path[4400];
	int rc = 0;

	if (!s->tar) {
		snprintf(path, sizeof(path), "%s/%s", s->partial, name);
		s->file = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (s->file < 0)
			return err_set(err, ERR_FAIL, "cannot create '%s': %s",
				       path, strerror(errno));
		return 0;
	}
	if (!(e = archive_entry_new()))
		return err_set(err, ERR_FAIL, "out of memory");
	archive_entry_set_pathname(e, name);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_mtime(e, time(NULL), 0);
	if (archive_write_header(s->a, e) != ARCHIVE_OK)
		rc = err_set(err, ERR_FAIL, "cannot write '%s': %s", s->final,
			     archive_error_string(s->a));
	archive_entry_free(e);
	return rc;
}

static int sink_write(struct sink *s, const void *buf, size_t len,
		      struct err *err)
{
	if (!s->tar) {
		if (write_full(s->file, buf, len) < 0)
			return err_set(err, ERR_FAIL, "cannot write '%s': %s",
				       s->partial, strerror(errno));
		return 0;
	}
	if (archive_write_data(s->a, buf, len) != (la_ssize_t)len)
		return err_set(err, ERR_FAIL, "cannot write '%s': %s", s->final,
			       archive_error_string(s->a));
	return 0;
}

static int sink_end(struct sink *s, struct err *err)
{
	int rc = 0;

	if (s->tar)
		return 0;
	if (fsync(s->file) < 0)
		rc = err_set(err, ERR_FAIL, "cannot write '%s': %s", s->partial,
			     strerror(errno));
	close(s->file);
	s->file = -1;
	return rc;
}

static int sink_add_buf(struct sink *s, const char *name, const void *buf,
			size_t len, struct err *err)
{
	int rc;

	if ((rc = sink_begin(s, name, len, err)) < 0 ||
	    (rc = sink_write(s, buf, len, err)) < 0)
		return rc;
	return sink_end(s, err);
}

/* Copies a file into the bundle, checking that its bytes still match what
 * the manifest says (a blob store object damaged on disk is caught here,
 * not on the other side of the air gap). */
static int sink_add_file(struct sink *s, const struct bundle_object *o,
			 const char *src, struct err *err)
{
	struct sha256_ctx *ctx = NULL;
	size_t cap = 1 << 20;
	char *buf = NULL, sha[SHA256_HEX_LEN + 1];
	uint64_t total = 0;
	int fd, rc;

	if ((fd = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return err_set(err, ERR_FAIL, "cannot read '%s': %s", src,
			       strerror(errno));
	if ((rc = sink_begin(s, o->path, o->size, err)) < 0)
		goto out;
	if (!(ctx = sha256_new()) || !(buf = malloc(cap))) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	while (total < o->size) {
		size_t want = o->size - total < cap ? (size_t)(o->size - total) : cap;
		ssize_t n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = err_set(err, ERR_CORRUPT, "'%s' is shorter than %llu "
				     "bytes", src, (unsigned long long)o->size);
			goto out;
		}
		sha256_update(ctx, buf, (size_t)n);
		total += (uint64_t)n;
		if ((rc = sink_write(s, buf, (size_t)n, err)) < 0)
			goto out;
	}
	sha256_final_hex(ctx, sha);
	ctx = NULL;
	if (strcmp(sha, o->sha256)) {
		rc = err_set(err, ERR_CORRUPT, "'%s' does not match its sha256 "
			     "(run haven fsck --deep)", src);
		goto out;
	}
	rc = sink_end(s, err);
out:
	sha256_free(ctx);
	free(buf);
	close(fd);
	return rc;
}

static int sink_finish(struct sink *s, struct err *err)
{
	char sub[4300];

	if (!s->tar) {
		snprintf(sub, sizeof(sub), "%s/git", s->partial);
		fsync_dir(sub);
		snprintf(sub, sizeof(sub), "%s/lfs", s->partial);
		fsync_dir(sub);
		fsync_dir(s->partial);
		if (rename(s->partial, s->final) < 0)
			return err_set(err, ERR_FAIL, "cannot rename '%s': %s",
				       s->partial, strerror(errno));
		s->partial[0] = '\0';
		return 0;
	}
	if (archive_write_close(s->a) != ARCHIVE_OK)
		return err_set(err, ERR_FAIL, "cannot write '%s': %s", s->final,
			       archive_error_string(s->a));
	if (fsync(s->fd) < 0)
		return err_set(err, ERR_FAIL, "cannot write '%s': %s", s->final,
			       strerror(errno));
	/* link, not rename: never replace a file that appeared meanwhile. */
	if (link(s->partial, s->final) < 0)
		return err_set(err, ERR_FAIL, "cannot create '%s': %s", s->final,
			       strerror(errno));
	unlink(s->partial);
	s->partial[0] = '\0';
	return 0;
}

static void sink_close(struct sink *s)
{
	if (s->file >= 0)
		close(s->file);
	if (s->a)
		archive_write_free(s->a);
	if (s->fd >= 0)
		close(s->fd);
	if (s->partial[0]) {
		if (s->tar)
			unlink(s->partial);
		else
			bundle_remove_tree(s->partial);
	}
}

/* --- what to export -------------------------------------------------------- */

struct xrepo {
	struct repo_record rec;
	git_repository *git;
	const char **revs;		/* borrowed from the options */
	size_t nrevs, revs_cap;
	size_t refs_cap, requires_cap, lfs_cap;
	const struct bundle_repo *since;	/* its entry in the earlier manifest */
};

struct xctx {
	struct store *store;
	const struct bundle_export_options *opt;
	struct bundle_manifest *m;	/* being built */
	size_t objects_cap;
	struct bundle_manifest *since;
	struct xrepo *repos;
	char tmp[4200];
	int tmp_lock;
	struct bundle_result *res;
	struct err *err;
};

static int add_object(struct xctx *x, const char *path, uint64_t size,
		      const char *sha)
{
	struct bundle_object *o;

	if (grow((void **)&x->m->objects, &x->objects_cap, x->m->nobjects,
		 sizeof(*o)) < 0)
		return err_set(x->err, ERR_FAIL, "out of memory");
	o = &x->m->objects[x->m->nobjects++];
	str_copy(o->path, path, sizeof(o->path));
	o->size = size;
	str_copy(o->sha256, sha, sizeof(o->sha256));
	x->res->bytes += size;
	return 0;
}

/* Groups the NS/NAME[@REV] arguments by repository. */
static int group_args(struct xctx *x, struct err *err)
{
	const char *type = x->opt->type ? x->opt->type : "model";

	if (!(x->repos = calloc(x->opt->nrepos, sizeof(*x->repos))) ||
	    !(x->m->repos = calloc(x->opt->nrepos, sizeof(*x->m->repos))))
		return err_set(err, ERR_FAIL, "out of memory");
	for (size_t i = 0; i < x->opt->nrepos; i++) {
		const char *arg = x->opt->repos[i], *at = strchr(arg, '@');
		char name[REPO_NAME_MAX];
		struct repo_record rec;
		size_t k, n = at ? (size_t)(at - arg) : strlen(arg);
		int rc;

		if (n >= sizeof(name) || (at && !at[1]))
			return err_set(err, ERR_INVALID, "bad repository '%s'", arg);
		memcpy(name, arg, n);
		name[n] = '\0';
		if ((rc = repo_lookup(x->store, type, name, &rec, NULL)) < 0)
			return err_set(err, ERR_NOREPO, "no %s repository '%s'",
				       type, name);
		for (k = 0; k < x->m->nrepos; k++) {
			if (!strcmp(x->repos[k].rec.id, rec.id))
				break;
		}
		if (k == x->m->nrepos) {
			x->repos[k].rec = rec;
			x->m->nrepos++;
		}
		if (!at)
			continue;
		if (grow((void **)&x->repos[k].revs, &x->repos[k].revs_cap,
			 x->repos[k].nrevs, sizeof(char *)) < 0)
			return err_set(err, ERR_FAIL, "out of memory");
		x->repos[k].revs[x->repos[k].nrevs++] = at + 1;
	}
	return 0;
}

static int add_ref(struct xrepo *xr, struct bundle_repo *br, const char *name,
		   const git_oid *target, struct err *err)
{
	struct bundle_ref *ref;

	for (size_t i = 0; i < br->nrefs; i++) {
		if (!strcmp(br->refs[i].name, name))
			return 0;
	}
	if (strlen(name) >= sizeof(ref->name))
		return err_set(err, ERR_INVALID, "ref name too long: '%.100s'", name);
	if (grow((void **)&br->refs, &xr->refs_cap, br->nrefs, sizeof(*ref)) < 0)
		return err_set(err, ERR_FAIL, "out of memory");
	ref = &br->refs[br->nrefs++];
	str_copy(ref->name, name, sizeof(ref->name));
	gitrepo_oid_hex(ref->oid, target);
	return 0;
}

/* The ref's own target: an annotated tag stays a tag object, so the
 * other side gets the same tag. */
static int ref_target(git_repository *git, const char *name, git_oid *out,
		      struct err *err)
{
	git_reference *ref = NULL, *res = NULL;
	int rc = 0;

	if (git_reference_lookup(&ref, git, name) < 0 ||
	    git_reference_resolve(&res, ref) < 0)
		rc = gitrepo_fail(err, ERR_NOREV, "cannot read ref");
	else
		git_oid_cpy(out, git_reference_target(res));
	git_reference_free(res);
	git_reference_free(ref);
	return rc;
}

static int collect_refs(struct xrepo *xr, struct bundle_repo *br,
			struct err *err)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	char name[BUNDLE_REF_MAX];
	git_oid oid;
	int rc = 0;

	for (size_t i = 0; i < xr->nrevs; i++) {
		if (gitrepo_resolve(xr->git, xr->revs[i], &oid, name, sizeof(name),
				    NULL) < 0)
			return err_set(err, ERR_NOREV, "'%s' has no revision '%s'",
				       xr->rec.name, xr->revs[i]);
		if (strncmp(name, "refs/heads/", 11) &&
		    strncmp(name, "refs/tags/", 10))
			return err_set(err, ERR_INVALID,
				       "'%s@%s': a bundle carries branches and "
				       "tags, not commit ids", xr->rec.name,
				       xr->revs[i]);
		if ((rc = ref_target(xr->git, name, &oid, err)) < 0 ||
		    (rc = add_ref(xr, br, name, &oid, err)) < 0)
			return rc;
	}
	if (xr->nrevs)
		return 0;
	if (git_reference_iterator_glob_new(&it, xr->git, "refs/*") < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot list refs");
	while (rc == 0 && git_reference_next(&ref, it) == 0) {
		const char *n = git_reference_name(ref);
		if (!strncmp(n, "refs/heads/", 11) || !strncmp(n, "refs/tags/", 10)) {
			rc = ref_target(xr->git, n, &oid, err);
			if (rc == 0)
				rc = add_ref(xr, br, n, &oid, err);
		}
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	if (rc == 0 && br->nrefs == 0)
		rc = err_set(err, ERR_NOREV, "'%s' has no branch or tag",
			     xr->rec.name);
	return rc;
}

static void read_head(struct xrepo *xr, struct bundle_repo *br)
{
	git_reference *head = NULL;

	str_copy(br->head, "refs/heads/main", sizeof(br->head));
	if (git_reference_lookup(&head, xr->git, "HEAD") == 0 &&
	    git_reference_type(head) == GIT_REFERENCE_SYMBOLIC &&
	    !strncmp(git_reference_symbolic_target(head), "refs/heads/", 11))
		str_copy(br->head, git_reference_symbolic_target(head),
			 sizeof(br->head));
	git_reference_free(head);
}

/* Peels an object id to the commit it names; false when the object is
 * missing here or names no commit. */
static bool peel_commit(git_repository *git, const char *hex, git_oid *out)
{
	git_object *obj = NULL, *peeled = NULL;
	git_oid oid;
	bool ok;

	if (git_oid_fromstr(&oid, hex) < 0 ||
	    git_object_lookup(&obj, git, &oid, GIT_OBJECT_ANY) < 0)
		return false;
	ok = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) == 0;
	if (ok)
		git_oid_cpy(out, git_object_id(peeled));
	git_object_free(peeled);
	git_object_free(obj);
	return ok;
}

static int add_require(struct xrepo *xr, struct bundle_repo *br,
		       const git_oid *oid, struct err *err)
{
	char hex[GIT_HEX_LEN + 1];

	gitrepo_oid_hex(hex, oid);
	for (size_t i = 0; i < br->nrequires; i++) {
		if (!strcmp(br->requires[i], hex))
			return 0;
	}
	if (grow((void **)&br->requires, &xr->requires_cap, br->nrequires,
		 sizeof(*br->requires)) < 0)
		return err_set(err, ERR_FAIL, "out of memory");
	memcpy(br->requires[br->nrequires++], hex, sizeof(hex));
	return 0;
}

/* A revwalk over the commits this bundle carries: reachable from the
 * refs, not from the earlier manifest's refs. Records those as the
 * commits the other side must already hold. */
static int make_walk(git_revwalk **out, struct xrepo *xr,
		     struct bundle_repo *br, bool record, struct err *err)
{
	git_revwalk *walk = NULL;
	git_oid oid;
	int rc = 0;

	if (git_revwalk_new(&walk, xr->git) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot walk history");
	for (size_t i = 0; rc == 0 && i < br->nrefs; i++) {
		if (!peel_commit(xr->git, br->refs[i].oid, &oid) ||
		    git_revwalk_push(walk, &oid) < 0)
			rc = err_set(err, ERR_CORRUPT, "ref '%s' of '%s' does not "
				     "reach a commit", br->refs[i].name,
				     xr->rec.name);
	}
	for (size_t i = 0; rc == 0 && xr->since && i < xr->since->nrefs; i++) {
		/* A commit the earlier bundle carried but this Haven no
		 * longer holds cannot be hidden; its objects then travel
		 * again, which is harmless. */
		if (!peel_commit(xr->git, xr->since->refs[i].oid, &oid))
			continue;
		if (git_revwalk_hide(walk, &oid) < 0)
			rc = gitrepo_fail(err, ERR_FAIL, "cannot walk history");
		else if (record)
			rc = add_require(xr, br, &oid, err);
	}
	if (rc < 0) {
		git_revwalk_free(walk);
		return rc;
	}
	*out = walk;
	return 0;
}

struct pack_out {
	int fd;
	struct sha256_ctx *sha;
	uint64_t size;
	int rc;
};

static int pack_chunk(void *buf, size_t size, void *arg)
{
	struct pack_out *p = arg;

	sha256_update(p->sha, buf, size);
	p->size += size;
	if (write_full(p->fd, buf, size) < 0)
		return p->rc = -1;
	return 0;
}

static bool since_has_target(const struct xrepo *xr, const char *hex)
{
	for (size_t i = 0; xr->since && i < xr->since->nrefs; i++) {
		if (!strcmp(xr->since->refs[i].oid, hex))
			return true;
	}
	return false;
}

static int write_pack(struct xctx *x, struct xrepo *xr, struct bundle_repo *br,
		      size_t idx, struct err *err)
{
	struct pack_out p = { .fd = -1 };
	git_packbuilder *pb = NULL;
	git_odb *odb = NULL;
	git_revwalk *walk = NULL;
	char path[BUNDLE_PATH_MAX], file[4400], sha[SHA256_HEX_LEN + 1];
	int rc;

	if ((rc = make_walk(&walk, xr, br, true, err)) < 0)
		return rc;
	if (git_packbuilder_new(&pb, xr->git) < 0 ||
	    git_packbuilder_insert_walk(pb, walk) < 0) {
		rc = gitrepo_fail(err, ERR_FAIL, "cannot build pack");
		goto out;
	}
	if (git_repository_odb(&odb, xr->git) < 0) {
		rc = gitrepo_fail(err, ERR_FAIL, "cannot open objects");
		goto out;
	}
	for (size_t i = 0; i < br->nrefs; i++) {
		git_object_t type;
		git_oid oid;
		size_t len;
		/* Annotated tags: the tag object itself (the walk has the
		 * commit), unless the earlier bundle carried it. */
		if (since_has_target(xr, br->refs[i].oid) ||
		    git_oid_fromstr(&oid, br->refs[i].oid) < 0)
			continue;
		if (git_odb_read_header(&len, &type, odb, &oid) == 0 &&
		    type == GIT_OBJECT_TAG &&
		    git_packbuilder_insert(pb, &oid, NULL) < 0) {
			rc = gitrepo_fail(err, ERR_FAIL, "cannot build pack");
			goto out;
		}
	}
	x->res->git_objects += git_packbuilder_object_count(pb);
	if (git_packbuilder_object_count(pb) == 0)
		goto out;	/* nothing new: no pack */
	snprintf(path, sizeof(path), "git/%zu.pack", idx);
	snprintf(file, sizeof(file), "%s/%zu.pack", x->tmp, idx);
	if ((p.fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
	    !(p.sha = sha256_new())) {
		rc = err_set(err, ERR_FAIL, "cannot create '%s': %s", file,
			     strerror(errno));
		goto out;
	}
	if (git_packbuilder_foreach(pb, pack_chunk, &p) < 0 || p.rc < 0) {
		rc = p.rc < 0 ? err_set(err, ERR_FAIL, "cannot write '%s': %s",
					file, strerror(errno))
			      : gitrepo_fail(err, ERR_FAIL, "cannot build pack");
		goto out;
	}
	sha256_final_hex(p.sha, sha);
	p.sha = NULL;
	str_copy(br->pack, path, sizeof(br->pack));
	x->res->packs++;
	rc = add_object(x, path, p.size, sha);
out:
	if (p.fd >= 0)
		close(p.fd);
	sha256_free(p.sha);
	git_odb_free(odb);
	git_packbuilder_free(pb);
	git_revwalk_free(walk);
	return rc;
}

/* --- LFS objects -------------------------------------------------------------- */

struct lfs_walk {
	struct xrepo *xr;
	struct bundle_repo *br;
	git_odb *odb;
	struct oidset trees;
	struct err *err;
};

static int add_lfs(struct lfs_walk *w, const char *sha)
{
	struct bundle_repo *br = w->br;

	for (size_t i = 0; i < br->nlfs; i++) {
		if (!strcmp(br->lfs[i], sha))
			return 0;
	}
	if (grow((void **)&br->lfs, &w->xr->lfs_cap, br->nlfs,
		 sizeof(*br->lfs)) < 0)
		return err_set(w->err, ERR_FAIL, "out of memory");
	str_copy(br->lfs[br->nlfs++], sha, SHA256_HEX_LEN + 1);
	return 0;
}

static int lfs_blob(struct lfs_walk *w, const git_oid *oid)
{
	char sha[SHA256_HEX_LEN + 1];
	git_odb_object *obj = NULL;
	git_object_t type;
	uint64_t size;
	size_t len;
	int rc = 0;

	if (git_odb_read_header(&len, &type, w->odb, oid) < 0)
		return gitrepo_fail(w->err, ERR_CORRUPT, "missing git blob");
	if (len >= LFS_POINTER_MAX)
		return 0;
	if (git_odb_read(&obj, w->odb, oid) < 0)
		return gitrepo_fail(w->err, ERR_CORRUPT, "unreadable git blob");
	if (lfs_pointer_parse(git_odb_object_data(obj), len, sha, &size))
		rc = add_lfs(w, sha);
	git_odb_object_free(obj);
	return rc;
}

static int lfs_tree(struct lfs_walk *w, const git_oid *oid)
{
	git_tree *tree = NULL;
	int rc = oidset_add(&w->trees, oid);

	if (rc <= 0)
		return rc < 0 ? err_set(w->err, ERR_FAIL, "out of memory") : 0;
	if (git_tree_lookup(&tree, w->xr->git, oid) < 0)
		return gitrepo_fail(w->err, ERR_CORRUPT, "missing git tree");
	rc = 0;
	for (size_t i = 0; rc == 0 && i < git_tree_entrycount(tree); i++) {
		const git_tree_entry *te = git_tree_entry_byindex(tree, i);
		if (git_tree_entry_type(te) == GIT_OBJECT_BLOB)
			rc = lfs_blob(w, git_tree_entry_id(te));
		else if (git_tree_entry_type(te) == GIT_OBJECT_TREE)
			rc = lfs_tree(w, git_tree_entry_id(te));
	}
	git_tree_free(tree);
	return rc;
}

static int collect_lfs(struct xrepo *xr, struct bundle_repo *br,
		       struct err *err)
{
	struct lfs_walk w = { .xr = xr, .br = br, .err = err };
	git_revwalk *walk = NULL;
	git_oid oid;
	int rc, r;

	if ((rc = make_walk(&walk, xr, br, false, err)) < 0)
		return rc;
	if (git_repository_odb(&w.odb, xr->git) < 0) {
		rc = gitrepo_fail(err, ERR_FAIL, "cannot open objects");
		goto out;
	}
	while (rc == 0 && (r = git_revwalk_next(&oid, walk)) == 0) {
		git_commit *c = NULL;
		if (git_commit_lookup(&c, xr->git, &oid) < 0) {
			rc = gitrepo_fail(err, ERR_CORRUPT, "missing git commit");
			break;
		}
		rc = lfs_tree(&w, git_commit_tree_id(c));
		git_commit_free(c);
	}
out:
	oidset_release(&w.trees);
	git_odb_free(w.odb);
	git_revwalk_free(walk);
	return rc;
}

static bool since_lists(const struct bundle_manifest *since, const char *path)
{
	return since && bundle_manifest_object(since, path);
}

/* Lists the repository's LFS objects as bundle objects, unless an earlier
 * repository of this bundle or the earlier manifest has them. */
static int add_lfs_objects(struct xctx *x, struct xrepo *xr,
			   struct bundle_repo *br, struct err *err)
{
	for (size_t i = 0; i < br->nlfs; i++) {
		char path[BUNDLE_PATH_MAX], file[4200];
		struct stat st;
		int rc;

		snprintf(path, sizeof(path), "lfs/%s", br->lfs[i]);
		if (since_lists(x->since, path) || bundle_manifest_object(x->m, path))
			continue;
		if (blob_path(x->store->blobs, br->lfs[i], file, sizeof(file)) < 0 ||
		    stat(file, &st) < 0)
			return err_set(err, ERR_NOTFOUND,
				       "LFS object %s of '%s' is not in the blob "
				       "store (run haven fsck)", br->lfs[i],
				       xr->rec.name);
		if ((rc = add_object(x, path, (uint64_t)st.st_size, br->lfs[i])) < 0)
			return rc;
		x->res->lfs_objects++;
	}
	return 0;
}

static const struct bundle_repo *since_repo(const struct bundle_manifest *since,
					    const struct repo_record *rec)
{
	for (size_t i = 0; since && i < since->nrepos; i++) {
		if (!strcmp(since->repos[i].type, rec->type) &&
		    !strcasecmp(since->repos[i].name, rec->name))
			return &since->repos[i];
	}
	return NULL;
}

static int export_repo(struct xctx *x, size_t idx, struct err *err)
{
	struct xrepo *xr = &x->repos[idx];
	struct bundle_repo *br = &x->m->repos[idx];
	int rc;

	str_copy(br->type, xr->rec.type, sizeof(br->type));
	str_copy(br->name, xr->rec.name, sizeof(br->name));
	br->private = xr->rec.private;
	str_copy(br->gated, xr->rec.gated, sizeof(br->gated));
	xr->since = since_repo(x->since, &xr->rec);
	if ((rc = repo_open_git(&xr->git, x->store, &xr->rec, err)) < 0 ||
	    (rc = collect_refs(xr, br, err)) < 0)
		return rc;
	read_head(xr, br);
	if ((rc = write_pack(x, xr, br, idx, err)) < 0 ||
	    (rc = collect_lfs(xr, br, err)) < 0 ||
	    (rc = add_lfs_objects(x, xr, br, err)) < 0)
		return rc;
	x->res->refs += br->nrefs;
	x->res->repos++;
	return 0;
}

static int read_since(struct xctx *x, struct err *err)
{
	struct err perr = { 0 };
	char *text = NULL;
	size_t len;
	int rc;

	if (!x->opt->since)
		return 0;
	if (file_read_all(&text, &len, x->opt->since, BUNDLE_MANIFEST_MAX) < 0)
		return err_set(err, ERR_NOTFOUND, "cannot read manifest '%s': %s",
			       x->opt->since, strerror(errno));
	if ((rc = bundle_manifest_parse(&x->since, text, len, &perr)) == 0)
		sha256_hex(x->m->since, text, len);
	else
		rc = err_set(err, rc, "--since '%s': %s", x->opt->since, perr.msg);
	free(text);
	return rc;
}

static int write_bundle(struct xctx *x, const struct bundle_key *key,
			struct err *err)
{
	unsigned char sig[BUNDLE_SIG_LEN];
	struct sink s;
	char *text = NULL, file[4400];
	size_t len;
	int rc;

	if ((rc = bundle_manifest_format(&text, &len, x->m, err)) < 0 ||
	    (rc = bundle_key_sign(key, text, len, sig, err)) < 0)
		goto out;
	if ((rc = sink_open(&s, x->opt->to, err)) < 0) {
		sink_close(&s);
		goto out;
	}
	rc = sink_add_buf(&s, BUNDLE_MANIFEST, text, len, err);
	if (rc == 0)
		rc = sink_add_buf(&s, BUNDLE_SIGNATURE, sig, sizeof(sig), err);
	for (size_t i = 0; rc == 0 && i < x->m->nobjects; i++) {
		const struct bundle_object *o = &x->m->objects[i];
		if (!strncmp(o->path, "git/", 4))
			snprintf(file, sizeof(file), "%s/%s", x->tmp, o->path + 4);
		else
			blob_path(x->store->blobs, o->path + 4, file, sizeof(file));
		rc = sink_add_file(&s, o, file, err);
	}
	if (rc == 0)
		rc = sink_finish(&s, err);
	sink_close(&s);
out:
	free(text);
	return rc;
}

int bundle_export(struct store *store, const struct bundle_export_options *opt,
		  struct bundle_result *res, struct err *err)
{
	struct xctx x = { .store = store, .opt = opt, .res = res, .err = err,
			  .tmp_lock = -1 };
	struct bundle_key *key = NULL;
	struct stat st;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!opt->nrepos || !opt->to || !opt->key)
		return err_set(err, ERR_INVALID,
			       "export needs repositories, --to and --key");
	if (lstat(opt->to, &st) == 0)
		return err_set(err, ERR_EXISTS, "'%s' already exists", opt->to);
	if (!(x.m = calloc(1, sizeof(*x.m))))
		return err_set(err, ERR_FAIL, "out of memory");
	if ((rc = bundle_key_load_private(&key, opt->key, err)) < 0 ||
	    (rc = read_since(&x, err)) < 0 ||
	    (rc = group_args(&x, err)) < 0 ||
	    (rc = bundle_tmpdir(x.tmp, sizeof(x.tmp), &x.tmp_lock, store,
				"export", err)) < 0)
		goto out;
	x.m->version = BUNDLE_VERSION;
	time_iso8601(x.m->created, time(NULL));
	str_copy(x.m->key, bundle_key_fingerprint(key), sizeof(x.m->key));
	str_copy(res->key, x.m->key, sizeof(res->key));
	for (size_t i = 0; rc == 0 && i < x.m->nrepos; i++)
		rc = export_repo(&x, i, err);
	if (rc == 0)
		rc = write_bundle(&x, key, err);
out:
	if (x.tmp[0])
		bundle_remove_tree(x.tmp);
	if (x.tmp_lock >= 0)
		close(x.tmp_lock);
	for (size_t i = 0; x.repos && i < opt->nrepos; i++) {
		git_repository_free(x.repos[i].git);
		free(x.repos[i].revs);
	}
	free(x.repos);
	bundle_manifest_free(x.m);
	bundle_manifest_free(x.since);
	bundle_key_free(key);
	return rc;
}
