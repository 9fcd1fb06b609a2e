/*
 * test_store.c: the data directory and its repositories (storage/store.h),
 * revision lookup (gitrepo.h), LFS pointers (lfs_pointer.h), commit
 * listings (listing.h), and fsck and gc (fsck.h).
 *
 * Each test that needs a store opens one in its own scratch folder and
 * removes the folder at the end. libgit2 is initialised once in main.
 */
#include "common/compat.h"

#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "storage/fsck.h"
#include "storage/gitrepo.h"
#include "storage/lfs_pointer.h"
#include "storage/listing.h"
#include "storage/store.h"
#include "tests/unit/test.h"
#include "tests/unit/test_tmp.h"

static const char abc_sha[] =
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/* Makes a scratch folder in dir and opens a new store in it. */
static int scratch_store(struct store **out, char dir[SCRATCH_LEN])
{
	if (scratch_dir(dir, "store") < 0)
		return -1;
	return store_open(out, dir, true, NULL);
}

/* Creates model "alice/model" and opens its git directory. */
static int scratch_repo(struct store **store, git_repository **repo,
			struct repo_record *rec, char dir[SCRATCH_LEN])
{
	int rc;

	if ((rc = scratch_store(store, dir)) < 0 ||
	    (rc = repo_create(*store, "model", "alice/model", rec, NULL)) < 0)
		return rc;
	return repo_open_git(repo, *store, rec, NULL);
}

static int test_store_repo_name_valid(void)
{
	static const char *const valid[] = {
		"a/b", "Org-1/model_x.v2", "a.b/c-d", "A_/_B",
	};
	static const char *const invalid[] = {
		"", "a", "a/b/c", "-a/b", "a/b-", "a--b/c", "a/b..c",
		"a/b.git", "a/b.GIT", "a/b c", "a/", "/b", "/", "a/\xc3\xa9",
		".a/b", "a/b.", "a/b\n",
	};
	char long_name[128];
	int rc = -1;

	for (size_t i = 0; i < ARRAY_SIZE(valid); i++) {
		if (!repo_name_valid(valid[i]))
			fprintf(stderr, "  refused '%s'\n", valid[i]);
		CHECK(repo_name_valid(valid[i]));
	}
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
		if (repo_name_valid(invalid[i]))
			fprintf(stderr, "  accepted '%s'\n", invalid[i]);
		CHECK(!repo_name_valid(invalid[i]));
	}
	/* The name part may have 96 characters, not 97. */
	memset(long_name, 'x', sizeof(long_name));
	long_name[0] = 'a';
	long_name[1] = '/';
	long_name[2 + 96] = '\0';
	CHECK(repo_name_valid(long_name));
	long_name[2 + 96] = 'x';
	long_name[2 + 97] = '\0';
	CHECK(!repo_name_valid(long_name));
	rc = 0;
out:
	return rc;
}

/* Reads a blob's text into a malloc'd string. */
static char *blob_text(git_repository *repo, const git_oid *oid)
{
	git_blob *blob = NULL;
	char *text = NULL;
	size_t len;

	if (git_blob_lookup(&blob, repo, oid) < 0)
		return NULL;
	len = (size_t)git_blob_rawsize(blob);
	if ((text = malloc(len + 1))) {
		memcpy(text, git_blob_rawcontent(blob), len);
		text[len] = '\0';
	}
	git_blob_free(blob);
	return text;
}

static int test_store_repo_create_initial_commit(void)
{
	struct store *store = NULL;
	git_repository *repo = NULL;
	git_reference *head = NULL;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	struct repo_record rec, found;
	char dir[SCRATCH_LEN] = "", *attrs = NULL;
	const git_tree_entry *te;
	git_oid oid;
	int rc = -1;

	CHECK(scratch_repo(&store, &repo, &rec, dir) == 0);
	CHECK(is_hex(rec.id, REPO_ID_LEN));
	CHECK(!strcmp(rec.type, "model") && !strcmp(rec.name, "alice/model"));
	CHECK(rec.created > 0);
	CHECK(git_repository_is_bare(repo));
	CHECK(git_repository_head(&head, repo) == 0);
	CHECK(!strcmp(git_reference_name(head), "refs/heads/main"));
	CHECK(git_reference_name_to_id(&oid, repo, "refs/heads/main") == 0);
	CHECK(git_commit_lookup(&commit, repo, &oid) == 0);
	CHECK(!strcmp(git_commit_author(commit)->name, "system"));
	CHECK(!strcmp(git_commit_summary(commit), "initial commit"));
	CHECK(git_commit_parentcount(commit) == 0);
	CHECK(git_commit_tree(&tree, commit) == 0);
	CHECK(git_tree_entrycount(tree) == 1);
	te = git_tree_entry_byindex(tree, 0);
	CHECK(!strcmp(git_tree_entry_name(te), ".gitattributes"));
	CHECK(git_tree_entry_filemode(te) == GIT_FILEMODE_BLOB);
	CHECK((attrs = blob_text(repo, git_tree_entry_id(te))) != NULL);
	CHECK(strstr(attrs, "*.safetensors filter=lfs") != NULL);
	CHECK(!strcmp(attrs, repo_default_gitattributes("model")));
	CHECK(repo_lookup(store, "model", "Alice/MODEL", &found, NULL) == 0);
	CHECK(!strcmp(found.id, rec.id));
	CHECK(repo_lookup(store, "dataset", "alice/model", &found, NULL) ==
	      ERR_NOREPO);
	rc = 0;
out:
	free(attrs);
	git_tree_free(tree);
	git_commit_free(commit);
	git_reference_free(head);
	git_repository_free(repo);
	store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_store_repo_create_refuses(void)
{
	struct store *store = NULL;
	struct repo_record rec;
	char dir[SCRATCH_LEN] = "";
	struct err e = { 0 };
	int rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	CHECK(repo_create(store, "dataset", "Alice/Data", &rec, NULL) == 0);
	CHECK(repo_create(store, "dataset", "Alice/Data", &rec, &e) ==
	      ERR_EXISTS);
	CHECK(e.code == ERR_EXISTS);
	CHECK(repo_create(store, "dataset", "alice/data", &rec, NULL) ==
	      ERR_EXISTS);
	CHECK(repo_create(store, "models", "alice/x", &rec, &e) == ERR_INVALID);
	CHECK(repo_create(store, "Model", "alice/x", &rec, NULL) ==
	      ERR_INVALID);
	CHECK(repo_create(store, "model", "alice", &rec, &e) == ERR_INVALID);
	CHECK(repo_create(store, "model", "a/b.git", &rec, NULL) ==
	      ERR_INVALID);
	/* The same name under another type is another repository. */
	CHECK(repo_create(store, "space", "alice/data", &rec, NULL) == 0);
	rc = 0;
out:
	store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_store_open_missing_without_create(void)
{
	struct store *store = NULL;
	char dir[SCRATCH_LEN] = "", missing[SCRATCH_LEN + 16];
	int rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	store_free(store);
	store = NULL;
	snprintf(missing, sizeof(missing), "%s/nope", dir);
	CHECK(store_open(&store, missing, false, NULL) == ERR_NOTFOUND);
	CHECK(store_open(&store, dir, false, NULL) == 0);
	rc = 0;
out:
	store_free(store);
	rm_rf(dir);
	return rc;
}

/* Resolves rev and checks the commit and ref name it gives. */
static int resolves_to(git_repository *repo, const char *rev,
		       const git_oid *want, const char *want_ref)
{
	char ref[256] = "unset";
	git_oid got;

	if (gitrepo_resolve(repo, rev, &got, ref, sizeof(ref), NULL) < 0)
		return 0;
	return git_oid_equal(&got, want) && !strcmp(ref, want_ref);
}

static int test_store_resolve_revisions(void)
{
	struct store *store = NULL;
	git_repository *repo = NULL;
	struct repo_record rec;
	char dir[SCRATCH_LEN] = "", hex[GIT_HEX_LEN + 1], short_hex[8];
	struct err e = { 0 };
	git_oid main_oid, got;
	int rc = -1;

	CHECK(scratch_repo(&store, &repo, &rec, dir) == 0);
	CHECK(git_reference_name_to_id(&main_oid, repo, "refs/heads/main") ==
	      0);
	gitrepo_oid_hex(hex, &main_oid);
	str_copy(short_hex, hex, sizeof(short_hex));
	CHECK(strlen(short_hex) == 7);

	CHECK(resolves_to(repo, "main", &main_oid, "refs/heads/main"));
	CHECK(resolves_to(repo, "HEAD", &main_oid, "refs/heads/main"));
	CHECK(resolves_to(repo, "refs/heads/main", &main_oid,
			  "refs/heads/main"));
	CHECK(resolves_to(repo, hex, &main_oid, ""));
	CHECK(resolves_to(repo, short_hex, &main_oid, ""));

	CHECK(gitrepo_ref_create(repo, "refs/tags/v1", &main_oid, NULL) == 0);
	CHECK(gitrepo_ref_create(repo, "refs/tags/v1", &main_oid, &e) ==
	      ERR_EXISTS);
	CHECK(resolves_to(repo, "v1", &main_oid, "refs/tags/v1"));
	CHECK(resolves_to(repo, "refs/tags/v1", &main_oid, "refs/tags/v1"));

	memset(&e, 0, sizeof(e));
	CHECK(gitrepo_resolve(repo, "nope", &got, NULL, 0, &e) == ERR_NOREV);
	CHECK(e.code == ERR_NOREV && strstr(e.msg, "Invalid rev id") != NULL);
	CHECK(gitrepo_resolve(repo, "", &got, NULL, 0, NULL) == ERR_NOREV);
	CHECK(gitrepo_resolve(repo, "refs/heads/nope", &got, NULL, 0, NULL) ==
	      ERR_NOREV);
	CHECK(gitrepo_resolve(repo, "000000000000", &got, NULL, 0, NULL) ==
	      ERR_NOREV);
	/* Fewer than 7 digits is not a commit id. */
	short_hex[6] = '\0';
	CHECK(gitrepo_resolve(repo, short_hex, &got, NULL, 0, NULL) ==
	      ERR_NOREV);
	rc = 0;
out:
	git_repository_free(repo);
	store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_store_lfs_pointer_roundtrip(void)
{
	static const char want[] =
		"version https://git-lfs.github.com/spec/v1\n"
		"oid sha256:ba7816bf8f01cfea414140de5dae2223"
		"b00361a396177a9cb410ff61f20015ad\n"
		"size 12345\n";
	char text[LFS_POINTER_MAX], sha[SHA256_HEX_LEN + 1];
	uint64_t size = 0;
	size_t len;
	int rc = -1;

	len = lfs_pointer_format(text, sizeof(text), abc_sha, 12345);
	CHECK(len == strlen(want) && !strcmp(text, want));
	CHECK(lfs_pointer_parse(text, len, sha, &size));
	CHECK(!strcmp(sha, abc_sha) && size == 12345);
	len = lfs_pointer_format(text, sizeof(text), abc_sha,
				 UINT64_C(1) << 40);
	CHECK(lfs_pointer_parse(text, len, sha, &size));
	CHECK(size == UINT64_C(1) << 40);
	rc = 0;
out:
	return rc;
}

static int test_store_lfs_pointer_rejects(void)
{
	static const char *const bad[] = {
		/* wrong version line */
		"version https://git-lfs.github.com/spec/v2\n"
		"oid sha256:ba7816bf8f01cfea414140de5dae2223"
		"b00361a396177a9cb410ff61f20015ad\n"
		"size 3\n",
		/* upper-case hex */
		"version https://git-lfs.github.com/spec/v1\n"
		"oid sha256:BA7816BF8F01CFEA414140DE5DAE2223"
		"B00361A396177A9CB410FF61F20015AD\n"
		"size 3\n",
		/* missing size */
		"version https://git-lfs.github.com/spec/v1\n"
		"oid sha256:ba7816bf8f01cfea414140de5dae2223"
		"b00361a396177a9cb410ff61f20015ad\n",
		/* short oid */
		"version https://git-lfs.github.com/spec/v1\n"
		"oid sha256:ba7816bf\n"
		"size 3\n",
		/* negative size */
		"version https://git-lfs.github.com/spec/v1\n"
		"oid sha256:ba7816bf8f01cfea414140de5dae2223"
		"b00361a396177a9cb410ff61f20015ad\n"
		"size -3\n",
		/* not a pointer */
		"",
		"hello world\n",
	};
	char big[LFS_POINTER_MAX + 64], sha[SHA256_HEX_LEN + 1];
	uint64_t size;
	size_t len;
	int rc = -1;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(!lfs_pointer_parse(bad[i], strlen(bad[i]), sha, &size));
	/* A valid pointer followed by padding up to 1024 bytes and more. */
	memset(big, '\n', sizeof(big));
	len = lfs_pointer_format(big, sizeof(big), abc_sha, 3);
	big[len] = '\n';
	CHECK(lfs_pointer_parse(big, len, sha, &size));
	CHECK(!lfs_pointer_parse(big, LFS_POINTER_MAX, sha, &size));
	CHECK(!lfs_pointer_parse(big, sizeof(big), sha, &size));
	rc = 0;
out:
	return rc;
}

static int test_store_listing_of_initial_commit(void)
{
	struct store *store = NULL;
	git_repository *repo = NULL;
	struct listing *l = NULL, *again = NULL;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	struct repo_record rec;
	const struct listing_entry *e;
	char dir[SCRATCH_LEN] = "", hex[GIT_HEX_LEN + 1];
	char oid_hex[GIT_HEX_LEN + 1];
	git_oid oid;
	int rc = -1;

	CHECK(scratch_repo(&store, &repo, &rec, dir) == 0);
	CHECK(git_reference_name_to_id(&oid, repo, "refs/heads/main") == 0);
	CHECK(git_commit_lookup(&commit, repo, &oid) == 0);
	CHECK(git_commit_tree(&tree, commit) == 0);
	gitrepo_oid_hex(hex, &oid);
	gitrepo_oid_hex(oid_hex,
			git_tree_entry_id(git_tree_entry_byindex(tree, 0)));

	CHECK(listing_load(&l, store->meta, repo, &oid, NULL) == 0);
	CHECK(!strcmp(l->commit, hex));
	CHECK(l->count == 1);
	e = &l->entries[0];
	CHECK(!strcmp(e->path, ".gitattributes") && !e->is_dir && !e->lfs);
	CHECK(!strcmp(e->oid, oid_hex));
	CHECK(e->size == strlen(repo_default_gitattributes("model")));
	CHECK(listing_find(l, ".gitattributes") == e);
	CHECK(listing_find(l, "missing") == NULL);

	/* The second load comes from the LMDB cache and says the same. */
	CHECK(listing_load(&again, store->meta, repo, &oid, NULL) == 0);
	CHECK(again->count == 1);
	CHECK(!strcmp(again->entries[0].path, ".gitattributes"));
	CHECK(!strcmp(again->entries[0].oid, oid_hex));
	CHECK(again->entries[0].size == e->size && !again->entries[0].lfs);
	rc = 0;
out:
	listing_free(again);
	listing_free(l);
	git_tree_free(tree);
	git_commit_free(commit);
	git_repository_free(repo);
	store_free(store);
	rm_rf(dir);
	return rc;
}

/* Writes data to a file under dir and stores it as a blob. */
static int put_blob(struct store *store, const char *dir, const char *name,
		    const char *data, char sha[SHA256_HEX_LEN + 1])
{
	char path[SCRATCH_LEN + 64];
	FILE *f;
	uint64_t size;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "w")))
		return -1;
	fputs(data, f);
	if (fclose(f) != 0)
		return -1;
	rc = blob_put_file(store->blobs, path, sha, &size, NULL);
	unlink(path);
	return rc;
}

/* Commits a tree of .gitattributes plus one LFS pointer to main. */
static int commit_pointer(git_repository *repo, const char *sha,
			  uint64_t size)
{
	struct gitrepo_file files[2] = {
		{ ".gitattributes", 0100644, { { 0 } } },
		{ "model.safetensors", 0100644, { { 0 } } },
	};
	struct gitrepo_commit_spec spec = {
		.ref = "refs/heads/main", .files = files, .nfiles = 2,
		.author = "tester", .message = "add model",
	};
	const char *attrs = repo_default_gitattributes("model");
	char ptr[LFS_POINTER_MAX];
	size_t len = lfs_pointer_format(ptr, sizeof(ptr), sha, size);
	git_oid main_oid, out;
	bool unchanged = true;

	if (git_reference_name_to_id(&main_oid, repo, "refs/heads/main") < 0 ||
	    git_blob_create_from_buffer(&files[0].blob, repo, attrs,
					strlen(attrs)) < 0 ||
	    git_blob_create_from_buffer(&files[1].blob, repo, ptr, len) < 0)
		return -1;
	spec.parent = &main_oid;
	spec.ref_old = &main_oid;
	if (gitrepo_commit_tree(repo, &spec, &out, &unchanged, NULL) < 0)
		return -1;
	return unchanged ? -1 : 0;
}

static int test_store_fsck_healthy_store(void)
{
	struct store *store = NULL;
	git_repository *repo = NULL;
	struct repo_record rec;
	struct fsck_report rep;
	char dir[SCRATCH_LEN] = "", sha[SHA256_HEX_LEN + 1], *text = NULL;
	size_t text_len = 0;
	FILE *out = NULL;
	int rc = -1;

	CHECK(scratch_repo(&store, &repo, &rec, dir) == 0);
	CHECK(put_blob(store, dir, "in", "abc", sha) == 0);
	CHECK(commit_pointer(repo, sha, 3) == 0);
	CHECK((out = open_memstream(&text, &text_len)) != NULL);
	CHECK(fsck_run(store, true, out, &rep, NULL) == 0);
	fflush(out);
	if (rep.problems)
		fprintf(stderr, "%s", text);
	CHECK(rep.problems == 0 && rep.warnings == 0);
	CHECK(rep.repos == 1 && rep.refs == 1);
	CHECK(rep.lfs_refs == 1 && rep.blobs_checked == 1);
	rc = 0;
out:
	if (out)
		fclose(out);
	free(text);
	git_repository_free(repo);
	store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_store_fsck_finds_missing_blob(void)
{
	struct store *store = NULL;
	git_repository *repo = NULL;
	struct repo_record rec;
	struct fsck_report rep;
	char dir[SCRATCH_LEN] = "", *text = NULL;
	size_t text_len = 0;
	FILE *out = NULL;
	int rc = -1;

	CHECK(scratch_repo(&store, &repo, &rec, dir) == 0);
	CHECK(commit_pointer(repo, abc_sha, 3) == 0);
	CHECK((out = open_memstream(&text, &text_len)) != NULL);
	CHECK(fsck_run(store, false, out, &rep, NULL) == 0);
	fflush(out);
	CHECK(rep.problems == 1);
	CHECK(strstr(text, abc_sha) != NULL);
	rc = 0;
out:
	if (out)
		fclose(out);
	free(text);
	git_repository_free(repo);
	store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_store_gc_removes_unreferenced_blob(void)
{
	struct store *store = NULL;
	git_repository *repo = NULL;
	struct repo_record rec;
	struct gc_report rep;
	char dir[SCRATCH_LEN] = "", used[SHA256_HEX_LEN + 1];
	char stray[SHA256_HEX_LEN + 1];
	FILE *out = NULL;
	int rc = -1;

	CHECK(scratch_repo(&store, &repo, &rec, dir) == 0);
	CHECK(put_blob(store, dir, "in", "referenced", used) == 0);
	CHECK(commit_pointer(repo, used, strlen("referenced")) == 0);
	CHECK(put_blob(store, dir, "in", "stray", stray) == 0);
	CHECK((out = fopen("/dev/null", "w")) != NULL);

	/* Within the grace period, even an unreferenced blob stays. */
	CHECK(gc_run(store, 3600, false, out, &rep, NULL) == 0);
	CHECK(rep.blobs_removed == 0 && rep.blobs_kept == 2);
	CHECK(blob_exists(store->blobs, stray));

	/* A dry run reports without removing. */
	CHECK(gc_run(store, 0, true, out, &rep, NULL) == 0);
	CHECK(rep.blobs_removed == 1);
	CHECK(blob_exists(store->blobs, stray));

	CHECK(gc_run(store, 0, false, out, &rep, NULL) == 0);
	CHECK(rep.blobs_removed == 1 && rep.blobs_kept == 1);
	CHECK(rep.bytes_removed == strlen("stray"));
	CHECK(!blob_exists(store->blobs, stray));
	CHECK(blob_exists(store->blobs, used));
	rc = 0;
out:
	if (out)
		fclose(out);
	git_repository_free(repo);
	store_free(store);
	rm_rf(dir);
	return rc;
}

int main(void)
{
	int rc;

	gitrepo_global_init();
	RUN(test_store_repo_name_valid);
	RUN(test_store_repo_create_initial_commit);
	RUN(test_store_repo_create_refuses);
	RUN(test_store_open_missing_without_create);
	RUN(test_store_resolve_revisions);
	RUN(test_store_lfs_pointer_roundtrip);
	RUN(test_store_lfs_pointer_rejects);
	RUN(test_store_listing_of_initial_commit);
	RUN(test_store_fsck_healthy_store);
	RUN(test_store_fsck_finds_missing_blob);
	RUN(test_store_gc_removes_unreferenced_blob);
	rc = TEST_REPORT();
	gitrepo_global_shutdown();
	return rc;
}
