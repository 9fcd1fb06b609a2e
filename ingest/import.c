/*
 * import.c: see import.h. The walk collects files first, then stores them,
 * then writes one commit.
 */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "ingest/card_lineage.h"
#include "ingest/gitattributes.h"
#include "ingest/import.h"
#include "storage/lfs_claims.h"
#include "storage/lfs_pointer.h"
#include "storage/repo_refs.h"
#include "storage/listing.h"

struct file_list {
	char **paths;	/* repo-relative */
	size_t count, cap;
};

static int list_add(struct file_list *fl, const char *path)
{
	if (fl->count == fl->cap) {
		size_t cap = fl->cap ? fl->cap * 2 : 64;
		char **p = realloc(fl->paths, cap * sizeof(*p));
		if (!p)
			return ERR_FAIL;
		fl->paths = p;
		fl->cap = cap;
	}
	if (!(fl->paths[fl->count] = strdup(path)))
		return ERR_FAIL;
	fl->count++;
	return 0;
}

static void list_release(struct file_list *fl)
{
	for (size_t i = 0; i < fl->count; i++)
		free(fl->paths[i]);
	free(fl->paths);
}

/* Skips what never belongs in a repository: git's own folder and the
 * huggingface_hub download metadata of a local_dir. */
static bool skip_name(const char *rel, const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..") ||
	       !strcmp(name, ".git") || !strcmp(rel, ".cache/huggingface");
}

static int walk(struct file_list *fl, const char *root, const char *rel,
		struct err *err)
{
	char dir[8192];
	struct dirent *e;
	DIR *d;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s%s%s", root, *rel ? "/" : "", rel);
	if (!(d = opendir(dir)))
		return err_set(err, ERR_FAIL, "cannot read folder '%s': %s", dir,
			       strerror(errno));
	while (rc == 0 && (e = readdir(d))) {
		char child[4096], full[8192];
		struct stat st;
		snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "",
			 e->d_name);
		if (skip_name(child, e->d_name))
			continue;
		snprintf(full, sizeof(full), "%s/%s", root, child);
		if (stat(full, &st) < 0)
			rc = err_set(err, ERR_FAIL, "cannot read '%s': %s", full,
				     strerror(errno));
		else if (S_ISDIR(st.st_mode))
			rc = walk(fl, root, child, err);
		else if (S_ISREG(st.st_mode) && list_add(fl, child) < 0)
			rc = err_set(err, ERR_FAIL, "out of memory");
	}
	closedir(d);
	return rc;
}

/* Reads the .gitattributes of the folder, else of the parent commit. */
static char *current_attributes(git_repository *repo, const git_oid *parent,
				const char *dir, size_t *len)
{
	char path[4200], *text = NULL;
	git_commit *c = NULL;
	git_tree *tree = NULL;
	git_tree_entry *te = NULL;
	git_blob *blob = NULL;

	snprintf(path, sizeof(path), "%s/.gitattributes", dir);
	if (file_read_all(&text, len, path, 1 << 20) == 0)
		return text;
	if (parent && git_commit_lookup(&c, repo, parent) == 0 &&
	    git_commit_tree(&tree, c) == 0 &&
	    git_tree_entry_bypath(&te, tree, ".gitattributes") == 0 &&
	    git_blob_lookup(&blob, repo, git_tree_entry_id(te)) == 0) {
		*len = (size_t)git_blob_rawsize(blob);
		if ((text = malloc(*len + 1))) {
			memcpy(text, git_blob_rawcontent(blob), *len);
			text[*len] = '\0';
		}
	}
	git_blob_free(blob);
	git_tree_entry_free(te);
	git_tree_free(tree);
	git_commit_free(c);
	return text;
}

struct import_ctx {
	struct store *store;
	const char *repo_id;
	git_repository *repo;
	const char *dir;
	struct gitattributes *attrs;
	char *attr_text;	/* .gitattributes content, grown with new lines */
	size_t attr_len;
	bool attrs_from_folder;
	struct import_result *res;
};

/* Appends an LFS line for a path no pattern covers. */
static int track_path(struct import_ctx *ic, const char *path)
{
	return gitattributes_track(&ic->attr_text, &ic->attr_len, path);
}

static int store_file(struct import_ctx *ic, const char *rel,
		      struct gitrepo_file *gf, struct err *err)
{
	char full[8192], ptr[LFS_POINTER_MAX], sha[SHA256_HEX_LEN + 1];
	struct stat st;
	uint64_t size;
	bool lfs;
	int rc;

	snprintf(full, sizeof(full), "%s/%s", ic->dir, rel);
	if (stat(full, &st) < 0)
		return err_set(err, ERR_FAIL, "cannot read '%s': %s", full,
			       strerror(errno));
	gf->path = rel;
	gf->mode = (st.st_mode & 0111) ? 0100755 : 0100644;
	lfs = st.st_size > 0 && (gitattributes_is_lfs(ic->attrs, rel) ||
				 (uint64_t)st.st_size >= IMPORT_LFS_THRESHOLD);
	ic->res->files++;
	ic->res->bytes += (uint64_t)st.st_size;
	if (!lfs) {
		if (git_blob_create_from_disk(&gf->blob, ic->repo, full) < 0)
			return gitrepo_fail(err, ERR_FAIL, "cannot store file");
		return 0;
	}
	if ((rc = blob_put_file(ic->store->blobs, full, sha, &size, err)) < 0 ||
	    (rc = lfs_claim_add(ic->store->meta, ic->repo_id, sha, err)) < 0)
		return rc;
	lfs_pointer_format(ptr, sizeof(ptr), sha, size);
	if (git_blob_create_from_buffer(&gf->blob, ic->repo, ptr, strlen(ptr)) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot store LFS pointer");
	ic->res->lfs_files++;
	if (!gitattributes_is_lfs(ic->attrs, rel) && track_path(ic, rel) < 0)
		return err_set(err, ERR_FAIL, "out of memory");
	return 0;
}

static int add_attributes_file(struct import_ctx *ic, struct gitrepo_file *gf,
			       struct err *err)
{
	gf->path = ".gitattributes";
	gf->mode = 0100644;
	if (git_blob_create_from_buffer(&gf->blob, ic->repo, ic->attr_text,
					ic->attr_len) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot store .gitattributes");
	return 0;
}

/* Finds where the branch is now, or where a new branch starts (main). */
static int branch_parent(git_repository *repo, const char *branch,
			 git_oid *parent, bool *exists, struct err *err)
{
	char ref[1024];

	snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
	*exists = gitrepo_resolve(repo, ref, parent, NULL, 0, NULL) == 0;
	if (*exists)
		return 0;
	return gitrepo_resolve(repo, "refs/heads/main", parent, NULL, 0, err);
}

static int write_commit(struct import_ctx *ic, struct file_list *fl,
			const struct import_options *opt, const git_oid *parent,
			bool branch_existed, struct err *err)
{
	struct gitrepo_file *files = calloc(fl->count + 1, sizeof(*files));
	struct gitrepo_commit_spec spec = {
		.ref_old = branch_existed ? parent : NULL, .parent = parent,
		.author = opt->author, .message = opt->message,
	};
	char ref[1024];
	git_oid commit;
	bool unchanged;
	size_t n = 0;
	int rc = 0;

	if (!files)
		return err_set(err, ERR_FAIL, "out of memory");
	for (size_t i = 0; i < fl->count && rc == 0; i++) {
		if (!strcmp(fl->paths[i], ".gitattributes"))
			continue;
		rc = store_file(ic, fl->paths[i], &files[n++], err);
	}
	if (rc == 0 && ic->attr_len)
		rc = add_attributes_file(ic, &files[n++], err);
	snprintf(ref, sizeof(ref), "refs/heads/%s", opt->branch);
	spec.ref = ref;
	spec.files = files;
	spec.nfiles = n;
	if (rc == 0)
		rc = gitrepo_commit_tree(ic->repo, &spec, &commit, &unchanged, err);
	if (rc == 0) {
		ic->res->changed = !unchanged;
		gitrepo_oid_hex(ic->res->commit, &commit);
	}
	free(files);
	return rc;
}

static int ensure_repo(struct store *store, const struct import_options *opt,
		       struct repo_record *rec, struct import_result *res,
		       struct err *err)
{
	int rc = repo_lookup(store, opt->type, opt->repo, rec, NULL);

	if (rc == 0)
		return 0;
	if ((rc = repo_create(store, opt->type, opt->repo, rec, err)) < 0)
		return rc;
	res->created_repo = true;
	return 0;
}

int import_folder(struct store *store, const char *dir,
		  const struct import_options *in, struct import_result *res,
		  struct err *err)
{
	struct import_options opt = *in;
	struct import_ctx ic = { .store = store, .dir = dir, .res = res };
	struct file_list fl = { 0 };
	struct repo_record rec;
	struct err lerr = { 0 };
	char message[512];
	git_oid parent;
	bool branch_existed;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!opt.type)
		opt.type = "model";
	if (!opt.branch)
		opt.branch = "main";
	if (!opt.author)
		opt.author = "haven";
	if (!opt.message) {
		snprintf(message, sizeof(message), "Import %s", dir);
		opt.message = message;
	}
	if (!gitrepo_ref_name_valid("heads", opt.branch))
		return err_set(err, ERR_INVALID, "invalid branch name '%s'",
			       opt.branch);
	if ((rc = walk(&fl, dir, "", err)) < 0 ||
	    (rc = ensure_repo(store, &opt, &rec, res, err)) < 0 ||
	    (rc = repo_open_git(&ic.repo, store, &rec, err)) < 0 ||
	    (rc = branch_parent(ic.repo, opt.branch, &parent, &branch_existed,
				err)) < 0)
		goto out;
	ic.repo_id = rec.id;
	ic.attr_text = current_attributes(ic.repo, &parent, dir, &ic.attr_len);
	ic.attrs = gitattributes_parse(ic.attr_text, ic.attr_len);
	if (!ic.attrs) {
		rc = err_set(err, ERR_FAIL, "cannot read .gitattributes");
		goto out;
	}
	rc = write_commit(&ic, &fl, &opt, &parent, branch_existed, err);
	if (rc == 0)
		rc = repo_refs_record(store, &rec, err);
	/* The commit has landed; the lineage edges follow the default
	 * branch, and a failure to update them does not undo the import. */
	if (rc == 0 && card_lineage_sync(store, &rec, &lerr) < 0)
		log_msg(LOG_WARN, "event=lineage_sync_failed repo=%s error=\"%s\"",
			rec.name, lerr.msg);
out:
	gitattributes_free(ic.attrs);
	free(ic.attr_text);
	git_repository_free(ic.repo);
	list_release(&fl);
	return rc;
}
