/*
 * gitrepo.c: libgit2 wrapper; see gitrepo.h.
 */
#include "common/compat.h"

#include "common/util.h"
#include "storage/gitrepo.h"

void gitrepo_global_init(void)
{
	git_libgit2_init();
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
}

void gitrepo_global_shutdown(void)
{
	git_libgit2_shutdown();
}

int gitrepo_fail(struct err *err, int code, const char *what)
{
	const git_error *e = git_error_last();

	return err_set(err, code, "%s: %s", what, e ? e->message : "unknown");
}

void gitrepo_oid_hex(char out[GIT_HEX_LEN + 1], const git_oid *oid)
{
	git_oid_tostr(out, GIT_HEX_LEN + 1, oid);
}

int gitrepo_init_bare(git_repository **out, const char *path, struct err *err)
{
	git_repository_init_options opts;

	git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
		     GIT_REPOSITORY_INIT_NO_REINIT;
	opts.initial_head = "main";
	if (git_repository_init_ext(out, path, &opts) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot create git repository");
	return 0;
}

int gitrepo_open(git_repository **out, const char *path, struct err *err)
{
	if (git_repository_open_bare(out, path) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot open git repository");
	return 0;
}

/* Looks up a full ref name and peels it to a commit. */
static int lookup_ref(git_repository *repo, const char *name, git_oid *out)
{
	git_reference *ref = NULL;
	git_object *obj = NULL;
	int rc = -1;

	if (git_reference_lookup(&ref, repo, name) == 0 &&
	    git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) == 0) {
		git_oid_cpy(out, git_object_id(obj));
		rc = 0;
	}
	git_object_free(obj);
	git_reference_free(ref);
	return rc;
}

static int lookup_commit_prefix(git_repository *repo, const char *hex,
				git_oid *out)
{
	git_oid prefix;
	git_commit *commit = NULL;
	size_t len = strlen(hex);

	if (git_oid_fromstrn(&prefix, hex, len) < 0 ||
	    git_commit_lookup_prefix(&commit, repo, &prefix, len) < 0)
		return -1;
	git_oid_cpy(out, git_commit_id(commit));
	git_commit_free(commit);
	return 0;
}

static bool rev_is_hex(const char *rev)
{
	size_t n = strlen(rev);

	return n >= 7 && n <= GIT_HEX_LEN && is_hex(rev, n);
}

int gitrepo_resolve(git_repository *repo, const char *rev, git_oid *out,
		    char *ref_out, size_t ref_size, struct err *err)
{
	static const char *const prefixes[] = { "refs/heads/", "refs/tags/" };
	const char *asked = rev;
	char name[1024];

	if (!rev[0] || strlen(rev) > 512)
		goto notfound;
	if (!strcmp(rev, "HEAD"))
		rev = "main";
	if (!strncmp(rev, "refs/", 5) && lookup_ref(repo, rev, out) == 0) {
		if (ref_out)
			str_copy(ref_out, rev, ref_size);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		snprintf(name, sizeof(name), "%s%s", prefixes[i], rev);
		if (lookup_ref(repo, name, out) == 0) {
			if (ref_out)
				str_copy(ref_out, name, ref_size);
			return 0;
		}
	}
	if (rev_is_hex(rev) && lookup_commit_prefix(repo, rev, out) == 0) {
		if (ref_out)
			str_copy(ref_out, "", ref_size);
		return 0;
	}
notfound:
	git_error_clear();
	return err_set(err, ERR_NOREV, "Invalid rev id: %.200s", asked);
}

static int build_tree(git_repository *repo, const struct gitrepo_file *files,
		      size_t nfiles, git_oid *tree_oid, struct err *err)
{
	git_index *index = NULL;
	int rc = 0;

	if (git_index_new(&index) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot create index");
	for (size_t i = 0; i < nfiles && rc == 0; i++) {
		git_index_entry e;
		memset(&e, 0, sizeof(e));
		e.path = files[i].path;
		e.mode = files[i].mode;
		git_oid_cpy(&e.id, &files[i].blob);
		if (git_index_add(index, &e) < 0)
			rc = gitrepo_fail(err, ERR_INVALID, "cannot add file");
	}
	if (rc == 0 && git_index_write_tree_to(tree_oid, index, repo) < 0)
		rc = gitrepo_fail(err, ERR_FAIL, "cannot write tree");
	git_index_free(index);
	return rc;
}

static int move_ref(git_repository *repo, const char *ref,
		    const git_oid *parent, const git_oid *commit,
		    struct err *err)
{
	git_reference *r = NULL;
	int rc;

	if (parent)
		rc = git_reference_create_matching(&r, repo, ref, commit, 1,
						   parent, "commit");
	else
		rc = git_reference_create(&r, repo, ref, commit, 0, "commit");
	git_reference_free(r);
	if (rc == GIT_EMODIFIED || rc == GIT_EEXISTS)
		return gitrepo_fail(err, ERR_CONFLICT,
				    "the branch was updated meanwhile");
	if (rc < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot update ref");
	return 0;
}

static bool tree_unchanged(git_repository *repo, const git_oid *parent,
			   const git_oid *tree)
{
	git_commit *c = NULL;
	bool same = false;

	if (parent && git_commit_lookup(&c, repo, parent) == 0)
		same = git_oid_equal(git_commit_tree_id(c), tree);
	git_commit_free(c);
	return same;
}

static int write_commit(git_repository *repo,
			const struct gitrepo_commit_spec *spec,
			const git_oid *tree_oid, git_oid *out, struct err *err)
{
	git_signature *sig = NULL;
	git_tree *tree = NULL;
	git_commit *parent = NULL;
	char email[256];
	int rc = ERR_FAIL;

	snprintf(email, sizeof(email), "%s@users.noreply.haven", spec->author);
	if (git_signature_now(&sig, spec->author, email) < 0 ||
	    git_tree_lookup(&tree, repo, tree_oid) < 0 ||
	    (spec->parent && git_commit_lookup(&parent, repo, spec->parent) < 0)) {
		gitrepo_fail(err, ERR_FAIL, "cannot prepare commit");
		goto out;
	}
	if (git_commit_create(out, repo, NULL, sig, sig, "UTF-8", spec->message,
			      tree, parent ? 1 : 0,
			      (const git_commit **)&parent) < 0) {
		gitrepo_fail(err, ERR_FAIL, "cannot write commit");
		goto out;
	}
	rc = 0;
out:
	git_commit_free(parent);
	git_tree_free(tree);
	git_signature_free(sig);
	return rc;
}

int gitrepo_commit_tree(git_repository *repo,
			const struct gitrepo_commit_spec *spec, git_oid *out,
			bool *unchanged, struct err *err)
{
	git_oid tree_oid;
	int rc;

	if (unchanged)
		*unchanged = false;
	if ((rc = build_tree(repo, spec->files, spec->nfiles, &tree_oid, err)) < 0)
		return rc;
	if (tree_unchanged(repo, spec->parent, &tree_oid)) {
		if (unchanged)
			*unchanged = true;
		git_oid_cpy(out, spec->parent);
		if (spec->ref_old)
			return 0;
		return move_ref(repo, spec->ref, NULL, out, err);
	}
	if ((rc = write_commit(repo, spec, &tree_oid, out, err)) < 0)
		return rc;
	return move_ref(repo, spec->ref, spec->ref_old, out, err);
}

int gitrepo_ref_create(git_repository *repo, const char *ref,
		       const git_oid *target, struct err *err)
{
	git_reference *r = NULL;
	int rc = git_reference_create(&r, repo, ref, target, 0, "create");

	git_reference_free(r);
	if (rc == GIT_EEXISTS)
		return err_set(err, ERR_EXISTS, "Reference %s already exists",
			       ref);
	if (rc < 0)
		return gitrepo_fail(err, ERR_INVALID, "cannot create reference");
	return 0;
}

bool gitrepo_ref_name_valid(const char *kind, const char *name)
{
	char full[1024];
	int valid = 0;

	/* HEAD names the default branch in every revision position. */
	if (!name[0] || strlen(name) > 256 || !strncmp(name, "refs/", 5) ||
	    !strcmp(name, "HEAD"))
		return false;
	snprintf(full, sizeof(full), "refs/%s/%s", kind, name);
	return git_reference_name_is_valid(&valid, full) == 0 && valid;
}
