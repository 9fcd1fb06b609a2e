/*
 * bundle_import.c: reads a bundle into the store (see bundle.h,
 * docs/bundles.md).
 *
 * Two phases. The first writes nothing the store shows: a tar bundle is
 * unpacked into <data>/tmp (only the names a bundle may hold, only
 * regular files, never through a link), the signature is checked against
 * the trusted keys, every object's size and sha256 against the manifest,
 * each pack is indexed in <data>/tmp, and every ref is checked against an
 * object database made of that pack and the repository's own objects
 * (the target exists and is a commit, the move is new or a fast-forward,
 * the commits and root trees are all there, every LFS object the commits
 * name is in the bundle or in the blob store). Only then the second
 * phase writes, in the order of the durability rule: blobs, claims, the
 * pack (renamed into objects/pack), refs by compare-and-swap, the
 * repository record, and the lineage.
 */
#include "common/compat.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <git2/sys/odb_backend.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "common/util.h"
#include "ingest/bundle.h"
#include "ingest/bundle_key.h"
#include "ingest/bundle_manifest.h"
#include "ingest/card_lineage.h"
#include "storage/lfs_claims.h"
#include "storage/repo_refs.h"

enum ref_action { REF_SAME, REF_CREATE, REF_FORWARD, REF_FORCE };

struct irepo {
	const struct bundle_repo *br;
	struct repo_record rec;
	bool exists;
	char pack_dir[4300];		/* where the pack was indexed */
	char pack_name[GIT_HEX_LEN * 2 + 8];	/* "pack-<hash>" */
	git_odb *odb;			/* the pack plus the repository's objects */
	git_repository *check;		/* a repository over odb, for checks */
	git_oid *old;			/* per ref: its current target */
	enum ref_action *action;
};

struct ictx {
	struct store *store;
	const struct bundle_import_options *opt;
	struct bundle_result *res;
	char tmp[4200];
	int tmp_lock;
	char dir[4300];			/* the bundle folder */
	int dirfd;
	char *text;			/* manifest bytes */
	size_t len;
	struct bundle_manifest *m;
	struct irepo *repos;
};

/* --- reading files of the bundle, never through a link ------------------- */

/* Opens path (one of the names a bundle may hold) below the bundle
 * folder: each component with O_NOFOLLOW, so no link leads elsewhere. */
static int open_in_bundle(struct ictx *ic, const char *path, int *fd)
{
	const char *slash = strchr(path, '/');
	char sub[16];
	int dfd;

	if (!slash) {
		*fd = openat(ic->dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		return *fd < 0 ? -1 : 0;
	}
	if ((size_t)(slash - path) >= sizeof(sub))
		return -1;
	memcpy(sub, path, (size_t)(slash - path));
	sub[slash - path] = '\0';
	dfd = openat(ic->dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	*fd = openat(dfd, slash + 1, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(dfd);
	return *fd < 0 ? -1 : 0;
}

/* Opens a regular file of the bundle and returns its size. */
static int open_object(struct ictx *ic, const char *path, int *fd,
		       uint64_t *size, struct err *err)
{
	struct stat st;

	if (open_in_bundle(ic, path, fd) < 0)
		return err_set(err, ERR_INVALID, "'%s' is missing from bundle "
			       "'%s'%s", path, ic->opt->path,
			       errno == ELOOP ? " (a link, not a file)" : "");
	if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(*fd);
		*fd = -1;
		return err_set(err, ERR_INVALID, "'%s' in bundle '%s' is not a "
			       "regular file", path, ic->opt->path);
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int read_small(struct ictx *ic, const char *path, size_t max,
		      char **out, size_t *len, struct err *err)
{
	uint64_t size;
	size_t got = 0;
	char *buf;
	int fd, rc;

	if ((rc = open_object(ic, path, &fd, &size, err)) < 0)
		return rc;
	if (size > max) {
		close(fd);
		return err_set(err, ERR_INVALID, "'%s' in bundle '%s' is too large",
			       path, ic->opt->path);
	}
	if (!(buf = malloc((size_t)size + 1))) {
		close(fd);
		return err_set(err, ERR_FAIL, "out of memory");
	}
	while (got < size) {
		ssize_t n = read(fd, buf + got, (size_t)size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != size) {
		free(buf);
		return err_set(err, ERR_FAIL, "cannot read '%s' in bundle '%s'",
			       path, ic->opt->path);
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

/* --- unpacking a tar bundle ------------------------------------------------ */

static bool allowed_name(const char *name)
{
	return !strcmp(name, BUNDLE_MANIFEST) || !strcmp(name, BUNDLE_SIGNATURE) ||
	       bundle_object_path_valid(name);
}

static bool allowed_dir(const char *name)
{
	return !strcmp(name, "") || !strcmp(name, ".") || !strcmp(name, "git") ||
	       !strcmp(name, "git/") || !strcmp(name, "lfs") ||
	       !strcmp(name, "lfs/");
}

static int extract_entry(struct ictx *ic, struct archive *a,
			 struct archive_entry *e, struct err *err)
{
	const char *name = archive_entry_pathname(e);
	const void *buf;
	size_t len;
	la_int64_t off;
	int fd, r, rc = 0;

	if (!name)
		return err_set(err, ERR_INVALID, "bundle '%s' has an entry "
			       "without a name", ic->opt->path);
	while (!strncmp(name, "./", 2))
		name += 2;
	if (archive_entry_filetype(e) == AE_IFDIR && allowed_dir(name))
		return 0;
	if (!allowed_name(name))
		return err_set(err, ERR_INVALID, "bundle '%s' holds an entry a "
			       "bundle may not hold: '%.120s'", ic->opt->path, name);
	if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
		return err_set(err, ERR_INVALID, "'%s' in bundle '%s' is not a "
			       "regular file", name, ic->opt->path);
	fd = openat(ic->dirfd, name,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, errno == EEXIST ? ERR_INVALID : ERR_FAIL,
			       "cannot unpack '%s' of bundle '%s': %s", name,
			       ic->opt->path, errno == EEXIST ? "listed twice"
							      : strerror(errno));
	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		if (lseek(fd, off, SEEK_SET) < 0 || write_full(fd, buf, len) < 0) {
			rc = err_set(err, ERR_FAIL, "cannot unpack '%s': %s", name,
				     strerror(errno));
			break;
		}
	}
	if (rc == 0 && r != ARCHIVE_EOF)
		rc = err_set(err, ERR_INVALID, "cannot read bundle '%s': %s in "
			     "'%s' (a truncated or damaged file)", ic->opt->path,
			     archive_error_string(a), name);
	close(fd);
	return rc;
}

static int extract_tar(struct ictx *ic, struct err *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char sub[4400];
	int r, rc = 0;

	snprintf(ic->dir, sizeof(ic->dir), "%s/bundle", ic->tmp);
	if (!a)
		return err_set(err, ERR_FAIL, "out of memory");
	if (mkdir(ic->dir, 0700) < 0 ||
	    (snprintf(sub, sizeof(sub), "%s/git", ic->dir), mkdir(sub, 0700)) < 0 ||
	    (snprintf(sub, sizeof(sub), "%s/lfs", ic->dir), mkdir(sub, 0700)) < 0 ||
	    (ic->dirfd = open(ic->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = err_set(err, ERR_FAIL, "cannot create '%s': %s", ic->dir,
			     strerror(errno));
		goto out;
	}
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, ic->opt->path, 1 << 16) != ARCHIVE_OK) {
		rc = err_set(err, ERR_INVALID, "cannot read bundle '%s': %s",
			     ic->opt->path, archive_error_string(a));
		goto out;
	}
	while (rc == 0 && ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK ||
			   r == ARCHIVE_WARN))
		rc = extract_entry(ic, a, e, err);
	if (rc == 0 && r != ARCHIVE_EOF)
		rc = err_set(err, ERR_INVALID, "cannot read bundle '%s': %s "
			     "(a truncated or damaged file)", ic->opt->path,
			     archive_error_string(a));
out:
	archive_read_free(a);
	return rc;
}

static int open_bundle(struct ictx *ic, struct err *err)
{
	struct stat st;

	if (stat(ic->opt->path, &st) < 0)
		return err_set(err, ERR_NOTFOUND, "cannot read bundle '%s': %s",
			       ic->opt->path, strerror(errno));
	if (S_ISREG(st.st_mode))
		return extract_tar(ic, err);
	if (!S_ISDIR(st.st_mode))
		return err_set(err, ERR_INVALID, "'%s' is not a bundle folder or "
			       "tar file", ic->opt->path);
	str_copy(ic->dir, ic->opt->path, sizeof(ic->dir));
	if ((ic->dirfd = open(ic->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return err_set(err, ERR_FAIL, "cannot read bundle '%s': %s",
			       ic->opt->path, strerror(errno));
	return 0;
}

/* --- signature and objects ------------------------------------------------- */

static int check_signature(struct ictx *ic, struct err *err)
{
	struct bundle_manifest *claimed = NULL;
	char *sig = NULL;
	size_t sig_len;
	bool ok = false;
	int rc;

	if ((rc = read_small(ic, BUNDLE_MANIFEST, BUNDLE_MANIFEST_MAX, &ic->text,
			     &ic->len, err)) < 0 ||
	    (rc = read_small(ic, BUNDLE_SIGNATURE, 4096, &sig, &sig_len, err)) < 0)
		return rc;
	for (size_t i = 0; !ok && i < ic->opt->ntrust; i++) {
		struct bundle_key *key = NULL;
		if ((rc = bundle_key_load_public(&key, ic->opt->trust[i], err)) < 0) {
			free(sig);
			return rc;
		}
		ok = bundle_key_verify(key, ic->text, ic->len,
				       (unsigned char *)sig, sig_len);
		if (ok)
			str_copy(ic->res->key, bundle_key_fingerprint(key),
				 sizeof(ic->res->key));
		bundle_key_free(key);
	}
	free(sig);
	if (ok)
		return 0;
	/* Only for the message: which key the (untrusted) manifest names. */
	if (bundle_manifest_parse(&claimed, ic->text, ic->len, NULL) < 0)
		return err_set(err, ERR_AUTH, "bundle '%s' refused: its signature "
			       "does not verify with any trusted key (the "
			       "manifest or the signature was altered)",
			       ic->opt->path);
	rc = err_set(err, ERR_AUTH, "bundle '%s' refused: its signature does "
		     "not verify with any trusted key (it names key %s; an "
		     "untrusted key, or an altered manifest or signature)",
		     ic->opt->path, claimed->key);
	bundle_manifest_free(claimed);
	return rc;
}

static int check_objects(struct ictx *ic, struct err *err)
{
	for (size_t i = 0; i < ic->m->nobjects; i++) {
		const struct bundle_object *o = &ic->m->objects[i];
		char sha[SHA256_HEX_LEN + 1];
		uint64_t size, hashed;
		int fd, rc;

		struct err oerr = { 0 };

		if ((rc = open_object(ic, o->path, &fd, &size, &oerr)) < 0)
			return err_set(err, rc, "bundle refused: %s", oerr.msg);
		if (size != o->size) {
			close(fd);
			return err_set(err, ERR_CORRUPT, "bundle refused: '%s' is "
				       "%llu bytes, the manifest says %llu "
				       "(truncated or altered)", o->path,
				       (unsigned long long)size,
				       (unsigned long long)o->size);
		}
		rc = bundle_copy_hash(fd, -1, &hashed, sha, err);
		close(fd);
		if (rc < 0)
			return rc;
		if (hashed != o->size || strcmp(sha, o->sha256))
			return err_set(err, ERR_CORRUPT, "bundle refused: '%s' does "
				       "not match its sha256 in the manifest "
				       "(altered)", o->path);
		ic->res->bytes += o->size;
		if (!strncmp(o->path, "lfs/", 4))
			ic->res->lfs_objects++;
	}
	return 0;
}

/* --- checking each repository ---------------------------------------------- */

static int index_pack(struct ictx *ic, struct irepo *ir, size_t idx,
		      struct err *err)
{
	git_indexer_options opts;
	git_indexer_progress stats = { 0 };
	git_indexer *ixr = NULL;
	char buf[1 << 16], idx_path[4400];
	uint64_t size;
	int fd, rc = 0;

	git_indexer_options_init(&opts, GIT_INDEXER_OPTIONS_VERSION);
	snprintf(ir->pack_dir, sizeof(ir->pack_dir), "%s/pack-%zu", ic->tmp, idx);
	if (mkdir(ir->pack_dir, 0700) < 0)
		return err_set(err, ERR_FAIL, "cannot create '%s': %s",
			       ir->pack_dir, strerror(errno));
	if ((rc = open_object(ic, ir->br->pack, &fd, &size, err)) < 0)
		return rc;
	if (git_indexer_new(&ixr, ir->pack_dir, 0, ir->odb, &opts) < 0) {
		rc = gitrepo_fail(err, ERR_FAIL, "cannot index pack");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (git_indexer_append(ixr, buf, (size_t)n, &stats) < 0) {
			rc = -1;
			break;
		}
	}
	if (rc < 0 || git_indexer_commit(ixr, &stats) < 0) {
		rc = err_set(err, ERR_CORRUPT, "bundle refused: the pack of '%s' is "
			"damaged: %s", ir->br->name, git_error_last() ?
			git_error_last()->message : "unknown error");
		goto out;
	}
	snprintf(ir->pack_name, sizeof(ir->pack_name), "pack-%s",
		 git_indexer_name(ixr));
	ic->res->git_objects += stats.total_objects;
	snprintf(idx_path, sizeof(idx_path), "%s/%s.idx", ir->pack_dir,
		 ir->pack_name);
	{
		git_odb_backend *be = NULL;
		if (git_odb_backend_one_pack(&be, idx_path) < 0 ||
		    git_odb_add_backend(ir->odb, be, 2) < 0) {
			if (be)
				be->free(be);
			rc = gitrepo_fail(err, ERR_FAIL, "cannot read the indexed pack");
		}
	}
out:
	git_indexer_free(ixr);
	close(fd);
	return rc;
}

/* The repository as it would be: the bundle's pack over its objects. */
static int open_check(struct ictx *ic, struct irepo *ir, size_t idx,
		      struct err *err)
{
	char objects[4400];
	int rc;

	if (git_odb_new(&ir->odb) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot open objects");
	if (ir->exists) {
		repo_git_path(ic->store, &ir->rec, objects, sizeof(objects));
		str_copy(objects + strlen(objects), "/objects",
			 sizeof(objects) - strlen(objects));
		if (git_odb_add_disk_alternate(ir->odb, objects) < 0)
			return gitrepo_fail(err, ERR_FAIL, "cannot open objects");
	}
	if (ir->br->pack[0] && (rc = index_pack(ic, ir, idx, err)) < 0)
		return rc;
	if (git_repository_wrap_odb(&ir->check, ir->odb) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot open objects");
	return 0;
}

static int check_requires(struct irepo *ir, struct err *err)
{
	for (size_t i = 0; i < ir->br->nrequires; i++) {
		git_oid oid;
		if (!ir->exists)
			return err_set(err, ERR_CONFLICT, "incremental bundle "
				       "refused: %s '%s' does not exist here; "
				       "import the bundle it builds on first",
				       ir->br->type, ir->br->name);
		if (git_oid_fromstr(&oid, ir->br->requires[i]) < 0 ||
		    !git_odb_exists(ir->odb, &oid))
			return err_set(err, ERR_CONFLICT, "incremental bundle "
				       "refused: '%s' lacks commit %s that the "
				       "bundle builds on; import the earlier "
				       "bundle first", ir->br->name,
				       ir->br->requires[i]);
	}
	return 0;
}

static int peel(git_repository *repo, const git_oid *oid, git_oid *out)
{
	git_object *obj = NULL, *peeled = NULL;
	int rc = -1;

	if (git_object_lookup(&obj, repo, oid, GIT_OBJECT_ANY) == 0 &&
	    git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) == 0) {
		git_oid_cpy(out, git_object_id(peeled));
		rc = 0;
	}
	git_object_free(peeled);
	git_object_free(obj);
	return rc;
}

/* Decides what happens to each ref; refuses moves that are not
 * fast-forwards unless forced. */
static int plan_refs(struct ictx *ic, struct irepo *ir, git_repository *real,
		     struct err *err)
{
	const struct bundle_repo *br = ir->br;

	if (!(ir->old = calloc(br->nrefs, sizeof(*ir->old))) ||
	    !(ir->action = calloc(br->nrefs, sizeof(*ir->action))))
		return err_set(err, ERR_FAIL, "out of memory");
	for (size_t i = 0; i < br->nrefs; i++) {
		git_oid target, commit, old_commit;

		if (git_oid_fromstr(&target, br->refs[i].oid) < 0 ||
		    peel(ir->check, &target, &commit) < 0)
			return err_set(err, ERR_CORRUPT, "bundle refused: ref '%s' "
				       "of '%s' names %s, which is not a commit "
				       "the bundle or this Haven holds",
				       br->refs[i].name, br->name, br->refs[i].oid);
		if (!real || git_reference_name_to_id(&ir->old[i], real,
						      br->refs[i].name) < 0) {
			ir->action[i] = REF_CREATE;
			continue;
		}
		if (git_oid_equal(&ir->old[i], &target)) {
			ir->action[i] = REF_SAME;
			continue;
		}
		if (peel(ir->check, &ir->old[i], &old_commit) == 0 &&
		    git_graph_descendant_of(ir->check, &commit, &old_commit) == 1) {
			ir->action[i] = REF_FORWARD;
			continue;
		}
		if (!ic->opt->force) {
			char old_hex[GIT_HEX_LEN + 1];
			gitrepo_oid_hex(old_hex, &ir->old[i]);
			return err_set(err, ERR_CONFLICT, "bundle refused: ref '%s' "
				       "of '%s' would move from %.12s to %.12s, "
				       "which is not a fast-forward (--force "
				       "moves it)", br->refs[i].name, br->name,
				       old_hex, br->refs[i].oid);
		}
		ir->action[i] = REF_FORCE;
	}
	return 0;
}

/* Every commit the refs bring, and its root tree, is present. */
static int check_history(struct irepo *ir, git_repository *real,
			 struct err *err)
{
	git_reference_iterator *it = NULL;
	git_revwalk *walk = NULL;
	git_reference *ref;
	git_oid oid, commit;
	int rc = 0, r;

	if (git_revwalk_new(&walk, ir->check) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot walk history");
	for (size_t i = 0; i < ir->br->nrefs; i++) {
		if (git_oid_fromstr(&oid, ir->br->refs[i].oid) == 0 &&
		    peel(ir->check, &oid, &commit) == 0)
			git_revwalk_push(walk, &commit);
	}
	if (real && git_reference_iterator_new(&it, real) == 0) {
		while (git_reference_next(&ref, it) == 0) {
			if (git_reference_type(ref) == GIT_REFERENCE_DIRECT &&
			    peel(ir->check, git_reference_target(ref), &commit) == 0)
				git_revwalk_hide(walk, &commit);
			git_reference_free(ref);
		}
		git_reference_iterator_free(it);
	}
	while (rc == 0 && (r = git_revwalk_next(&oid, walk)) == 0) {
		git_commit *c = NULL;
		git_tree *t = NULL;
		char hex[GIT_HEX_LEN + 1];
		if (git_commit_lookup(&c, ir->check, &oid) < 0 ||
		    git_commit_tree(&t, c) < 0) {
			gitrepo_oid_hex(hex, &oid);
			rc = err_set(err, ERR_CORRUPT, "bundle refused: it lacks "
				     "git objects of '%s' (commit %s)",
				     ir->br->name, hex);
		}
		git_tree_free(t);
		git_commit_free(c);
	}
	if (rc == 0 && r != GIT_ITEROVER)
		rc = err_set(err, ERR_CORRUPT, "bundle refused: the history of "
			     "'%s' is incomplete (%s)", ir->br->name,
			     git_error_last() ? git_error_last()->message : "");
	git_revwalk_free(walk);
	return rc;
}

static int check_lfs(struct ictx *ic, struct irepo *ir, struct err *err)
{
	for (size_t i = 0; i < ir->br->nlfs; i++) {
		char path[BUNDLE_PATH_MAX];
		snprintf(path, sizeof(path), "lfs/%s", ir->br->lfs[i]);
		if (!bundle_manifest_object(ic->m, path) &&
		    !blob_exists(ic->store->blobs, ir->br->lfs[i]))
			return err_set(err, ERR_CONFLICT, "bundle refused: '%s' "
				       "needs LFS object %s, which neither the "
				       "bundle nor this Haven holds; import the "
				       "earlier bundle first", ir->br->name,
				       ir->br->lfs[i]);
	}
	return 0;
}

static int check_repo(struct ictx *ic, size_t idx, struct err *err)
{
	struct irepo *ir = &ic->repos[idx];
	git_repository *real = NULL;
	int rc;

	ir->br = &ic->m->repos[idx];
	rc = repo_lookup(ic->store, ir->br->type, ir->br->name, &ir->rec, err);
	if (rc < 0 && rc != ERR_NOREPO)
		return rc;
	ir->exists = rc == 0;
	if (ir->exists && (rc = repo_open_git(&real, ic->store, &ir->rec, err)) < 0)
		return rc;
	if ((rc = open_check(ic, ir, idx, err)) < 0 ||
	    (rc = check_requires(ir, err)) < 0 ||
	    (rc = plan_refs(ic, ir, real, err)) < 0 ||
	    (rc = check_history(ir, real, err)) < 0 ||
	    (rc = check_lfs(ic, ir, err)) < 0)
		goto out;
	ic->res->repos++;
	ic->res->refs += ir->br->nrefs;
out:
	git_repository_free(real);
	return rc;
}

/* --- writing ------------------------------------------------------------------- */

static int store_lfs(struct ictx *ic, struct err *err)
{
	for (size_t i = 0; i < ic->m->nobjects; i++) {
		const struct bundle_object *o = &ic->m->objects[i];
		struct blob_writer *w = NULL;
		char sha[SHA256_HEX_LEN + 1], buf[1 << 16];
		uint64_t size;
		int fd, rc;

		if (strncmp(o->path, "lfs/", 4))
			continue;
		if (blob_exists(ic->store->blobs, o->sha256)) {
			ic->res->lfs_present++;
			continue;
		}
		if ((rc = open_object(ic, o->path, &fd, &size, err)) < 0)
			return rc;
		if ((rc = blob_writer_begin_sha(&w, ic->store->blobs,
						o->sha256, err)) < 0) {
			close(fd);
			return rc;
		}
		for (;;) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || (rc = blob_writer_write(w, buf, (size_t)n,
							      err)) < 0)
				break;
		}
		close(fd);
		if (rc < 0) {
			blob_writer_abort(w);
			return rc;
		}
		/* The bundle's file changed since it was checked: refuse. */
		if ((rc = blob_writer_commit(w, o->sha256, sha, &size, err)) < 0)
			return err_set(err, ERR_CORRUPT, "'%s' changed during the "
				       "import", o->path);
		ic->res->lfs_stored++;
	}
	return 0;
}

static int move_pack(struct ictx *ic, struct irepo *ir, const char *git_dir,
		     struct err *err)
{
	static const char *const exts[] = { ".pack", ".idx" };
	char pack_dir[4400];
	bool moved = false;

	if (!ir->pack_name[0])
		return 0;
	snprintf(pack_dir, sizeof(pack_dir), "%s/objects/pack", git_dir);
	if (mkdir_p(pack_dir) < 0)
		return err_set(err, ERR_FAIL, "cannot create '%s': %s", pack_dir,
			       strerror(errno));
	/* The .pack first: git reads a pack only through its .idx. */
	for (size_t i = 0; i < ARRAY_SIZE(exts); i++) {
		char from[4500], to[4500];
		snprintf(from, sizeof(from), "%s/%s%s", ir->pack_dir,
			 ir->pack_name, exts[i]);
		snprintf(to, sizeof(to), "%s/%s%s", pack_dir, ir->pack_name,
			 exts[i]);
		if (access(to, F_OK) == 0)
			continue;	/* an earlier, interrupted run moved it */
		if (rename(from, to) < 0)
			return err_set(err, ERR_FAIL, "cannot move pack to '%s': %s",
				       to, strerror(errno));
		if (fsync_dir(pack_dir) < 0)
			return err_set(err, ERR_FAIL, "cannot sync '%s'", pack_dir);
		moved = true;
	}
	ic->res->packs += moved;
	return 0;
}

static int move_refs(struct irepo *ir, git_repository *git, bool *head_moved,
		     const char *head, struct err *err)
{
	for (size_t i = 0; i < ir->br->nrefs; i++) {
		const struct bundle_ref *r = &ir->br->refs[i];
		git_reference *out = NULL;
		git_oid target;
		int e;

		if (ir->action[i] == REF_SAME)
			continue;
		git_oid_fromstr(&target, r->oid);
		if (ir->action[i] == REF_CREATE)
			e = git_reference_create(&out, git, r->name, &target, 0,
						 "bundle import");
		else
			e = git_reference_create_matching(&out, git, r->name,
							  &target, 1, &ir->old[i],
							  "bundle import");
		git_reference_free(out);
		if (e < 0)
			return gitrepo_fail(err, e == GIT_EEXISTS ||
					    e == GIT_EMODIFIED ? ERR_CONFLICT
							       : ERR_FAIL,
					    "cannot move ref (it changed during "
					    "the import?)");
		if (!strcmp(r->name, head))
			*head_moved = true;
	}
	return 0;
}

static void new_record(struct repo_record *rec, const struct bundle_repo *br)
{
	unsigned char raw[REPO_ID_LEN / 2];

	memset(rec, 0, sizeof(*rec));
	RAND_bytes(raw, sizeof(raw));
	hex_encode(rec->id, raw, sizeof(raw));
	str_copy(rec->type, br->type, sizeof(rec->type));
	str_copy(rec->name, br->name, sizeof(rec->name));
	rec->created = time(NULL);
	rec->private = br->private;
	str_copy(rec->gated, br->gated, sizeof(rec->gated));
}

/* A new repository's default branch: the exporter's, or, when the bundle
 * does not carry that branch, its first branch. */
static int set_new_head(const struct bundle_repo *br, git_repository *git,
			struct err *err)
{
	const char *head = NULL;

	for (size_t i = 0; i < br->nrefs; i++) {
		if (!strcmp(br->refs[i].name, br->head))
			head = br->head;
		else if (!head && !strncmp(br->refs[i].name, "refs/heads/", 11))
			head = br->refs[i].name;
	}
	if (head && git_repository_set_head(git, head) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot set HEAD");
	return 0;
}

static void current_head(git_repository *git, char *out, size_t size)
{
	git_reference *head = NULL;

	str_copy(out, "refs/heads/main", size);
	if (git_reference_lookup(&head, git, "HEAD") == 0 &&
	    git_reference_type(head) == GIT_REFERENCE_SYMBOLIC)
		str_copy(out, git_reference_symbolic_target(head), size);
	git_reference_free(head);
}

static int insert_record(struct store *store, const struct repo_record *rec,
			 struct err *err)
{
	struct meta_txn *txn = NULL;
	int rc;

	if ((rc = meta_txn_begin(&txn, store->meta, true, err)) < 0)
		return rc;
	if ((rc = meta_repo_insert(txn, rec, err)) < 0) {
		meta_txn_abort(txn);
		return rc;
	}
	return meta_txn_commit(txn, err);
}

static int apply_repo(struct ictx *ic, struct irepo *ir, struct err *err)
{
	git_repository *git = NULL;
	char git_dir[4300], head[BUNDLE_REF_MAX];
	bool head_moved = false;
	struct err lerr = { 0 };
	int rc;

	if (!ir->exists)
		new_record(&ir->rec, ir->br);
	repo_git_path(ic->store, &ir->rec, git_dir, sizeof(git_dir));
	if (!ir->exists) {
		if ((rc = gitrepo_init_bare(&git, git_dir, err)) < 0)
			return rc;
		git_repository_free(git);
		git = NULL;
	}
	for (size_t i = 0; i < ir->br->nlfs; i++) {
		if ((rc = lfs_claim_add(ic->store->meta, ir->rec.id,
					ir->br->lfs[i], err)) < 0)
			return rc;
	}
	if ((rc = move_pack(ic, ir, git_dir, err)) < 0 ||
	    (rc = gitrepo_open(&git, git_dir, err)) < 0)
		return rc;
	if (!ir->exists && (rc = set_new_head(ir->br, git, err)) < 0)
		goto out;
	current_head(git, head, sizeof(head));
	if ((rc = move_refs(ir, git, &head_moved, head, err)) < 0)
		goto out;
	for (size_t i = 0; i < ir->br->nrefs; i++)
		ic->res->refs_updated += ir->action[i] != REF_SAME;
	if (!ir->exists) {
		if ((rc = insert_record(ic->store, &ir->rec, err)) < 0)
			goto out;
		ic->res->repos_created++;
	}
	if ((rc = repo_refs_record(ic->store, &ir->rec, err)) < 0)
		goto out;
	/* The refs have landed; a lineage failure does not undo them. */
	if (head_moved && card_lineage_sync(ic->store, &ir->rec, &lerr) < 0)
		log_msg(LOG_WARN, "event=lineage_sync_failed repo=%s error=\"%s\"",
			ir->rec.name, lerr.msg);
out:
	git_repository_free(git);
	return rc;
}

static void ictx_release(struct ictx *ic)
{
	for (size_t i = 0; ic->repos && ic->m && i < ic->m->nrepos; i++) {
		git_repository_free(ic->repos[i].check);
		git_odb_free(ic->repos[i].odb);
		free(ic->repos[i].old);
		free(ic->repos[i].action);
	}
	free(ic->repos);
	if (ic->dirfd >= 0)
		close(ic->dirfd);
	if (ic->tmp[0])
		bundle_remove_tree(ic->tmp);
	if (ic->tmp_lock >= 0)
		close(ic->tmp_lock);
	bundle_manifest_free(ic->m);
	free(ic->text);
}

int bundle_import(struct store *store, const struct bundle_import_options *opt,
		  struct bundle_result *res, struct err *err)
{
	struct ictx ic = { .store = store, .opt = opt, .res = res, .dirfd = -1,
			   .tmp_lock = -1 };
	int rc;

	memset(res, 0, sizeof(*res));
	if (!opt->path || opt->ntrust == 0)
		return err_set(err, ERR_INVALID,
			       "import needs a bundle and at least one --trust key");
	if ((rc = bundle_tmpdir(ic.tmp, sizeof(ic.tmp), &ic.tmp_lock, store,
				"import", err)) < 0 ||
	    (rc = open_bundle(&ic, err)) < 0 ||
	    (rc = check_signature(&ic, err)) < 0)
		goto out;
	if ((rc = bundle_manifest_parse(&ic.m, ic.text, ic.len, err)) < 0 ||
	    (rc = check_objects(&ic, err)) < 0)
		goto out;
	if (ic.m->nrepos &&
	    !(ic.repos = calloc(ic.m->nrepos, sizeof(*ic.repos)))) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < ic.m->nrepos; i++)
		rc = check_repo(&ic, i, err);
	/* Everything is checked; from here on the store changes. */
	if (rc == 0)
		rc = store_lfs(&ic, err);
	for (size_t i = 0; rc == 0 && i < ic.m->nrepos; i++) {
		git_repository_free(ic.repos[i].check);
		ic.repos[i].check = NULL;
		rc = apply_repo(&ic, &ic.repos[i], err);
	}
out:
	ictx_release(&ic);
	return rc;
}
