/*
 * test_commit_builder.c: new commits made of changes to a parent's tree
 * (storage/commit_builder.h): adds, deletes of files and folders, the
 * path rules of hub-api.md 8.1, and the compare-and-swap on the ref.
 *
 * Each test works in its own bare repository under a scratch folder.
 */
#include "common/compat.h"

#include <unistd.h>

#include "common/err.h"
#include "storage/commit_builder.h"
#include "storage/gitrepo.h"
#include "tests/unit/test.h"
#include "tests/unit/test_tmp.h"

static int scratch_git(git_repository **repo, char dir[SCRATCH_LEN])
{
	char path[SCRATCH_LEN + 16];

	if (scratch_dir(dir, "cb") < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/r.git", dir);
	return gitrepo_init_bare(repo, path, NULL);
}

static int blob(git_repository *repo, const char *text, git_oid *out)
{
	return git_blob_create_from_buffer(out, repo, text, strlen(text));
}

/* True when path in commit holds text. */
static bool has_file(git_repository *repo, const git_oid *commit,
		     const char *path, const char *text)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	git_tree_entry *e = NULL;
	git_blob *b = NULL;
	bool ok = false;

	if (git_commit_lookup(&c, repo, commit) == 0 &&
	    git_commit_tree(&t, c) == 0 &&
	    git_tree_entry_bypath(&e, t, path) == 0 &&
	    git_blob_lookup(&b, repo, git_tree_entry_id(e)) == 0)
		ok = (size_t)git_blob_rawsize(b) == strlen(text) &&
		     !memcmp(git_blob_rawcontent(b), text, strlen(text));
	git_blob_free(b);
	git_tree_entry_free(e);
	git_tree_free(t);
	git_commit_free(c);
	return ok;
}

static bool has_path(git_repository *repo, const git_oid *commit,
		     const char *path)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	git_tree_entry *e = NULL;
	bool ok = git_commit_lookup(&c, repo, commit) == 0 &&
		  git_commit_tree(&t, c) == 0 &&
		  git_tree_entry_bypath(&e, t, path) == 0;

	git_tree_entry_free(e);
	git_tree_free(t);
	git_commit_free(c);
	return ok;
}

/* Makes main with a.txt, dir/b.txt, dir/sub/c.txt; *out its commit. */
static int first_commit(git_repository *repo, git_oid *out)
{
	struct commit_builder_info info = { "alice", "first" };
	struct commit_builder *b = NULL;
	git_oid x;
	int rc;

	if ((rc = commit_builder_new(&b, repo, NULL, NULL)) < 0)
		return rc;
	if ((rc = blob(repo, "A", &x)) < 0 ||
	    (rc = commit_builder_add(b, "a.txt", 0100644, &x, NULL)) < 0 ||
	    (rc = blob(repo, "B", &x)) < 0 ||
	    (rc = commit_builder_add(b, "dir/b.txt", 0100644, &x, NULL)) < 0 ||
	    (rc = blob(repo, "C", &x)) < 0 ||
	    (rc = commit_builder_add(b, "dir/sub/c.txt", 0100755, &x, NULL)) < 0)
		goto out;
	rc = commit_builder_commit(b, "refs/heads/main", NULL, &info, out, NULL);
out:
	commit_builder_free(b);
	return rc;
}

static int test_commit_builder_paths(void)
{
	int rc = -1;
	char longp[COMMIT_PATH_MAX + 2];

	CHECK(commit_path_valid("a.txt"));
	CHECK(commit_path_valid("dir/sub/c.txt"));
	CHECK(commit_path_valid(".gitattributes"));
	CHECK(commit_path_valid("folder/..\\..\\file"));
	CHECK(commit_path_valid("a/.github/x"));
	CHECK(!commit_path_valid(""));
	CHECK(!commit_path_valid("/abs"));
	CHECK(!commit_path_valid("a//b"));
	CHECK(!commit_path_valid("a/"));
	CHECK(!commit_path_valid("./a"));
	CHECK(!commit_path_valid("a/./b"));
	CHECK(!commit_path_valid("../a"));
	CHECK(!commit_path_valid("a/../b"));
	CHECK(!commit_path_valid("..\\ddd"));
	CHECK(!commit_path_valid(".git/config"));
	CHECK(!commit_path_valid("a/.git/hooks/x"));
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	CHECK(!commit_path_valid(longp));
	longp[COMMIT_PATH_MAX] = '\0';
	CHECK(commit_path_valid(longp));
	rc = 0;
out:
	return rc;
}

static int test_commit_builder_add_and_remove(void)
{
	char dir[SCRATCH_LEN] = "";
	git_repository *repo = NULL;
	struct commit_builder *b = NULL;
	struct commit_builder_info info = { "bob", "second\n\nbody\n" };
	git_oid first, second, x;
	git_commit *c = NULL;
	unsigned mode = 0;
	struct err e = { 0 };
	int rc = -1;

	CHECK(scratch_git(&repo, dir) == 0);
	CHECK(first_commit(repo, &first) == 0);
	CHECK(has_file(repo, &first, "dir/sub/c.txt", "C"));
	CHECK(commit_builder_new(&b, repo, &first, NULL) == 0);
	CHECK(commit_builder_get(b, "dir/sub/c.txt", &x, &mode) && mode == 0100755);
	CHECK(!commit_builder_get(b, "dir", NULL, NULL));
	CHECK(blob(repo, "A2", &x) == 0);
	CHECK(commit_builder_add(b, "a.txt", 0100644, &x, NULL) == 0);
	CHECK(commit_builder_add(b, "new/deep/n.txt", 0100644, &x, NULL) == 0);
	/* Files and folders cannot take each other's place. */
	CHECK(commit_builder_add(b, "a.txt/x", 0100644, &x, &e) == ERR_INVALID);
	CHECK(commit_builder_add(b, "dir", 0100644, &x, &e) == ERR_INVALID);
	CHECK(commit_builder_add(b, "../x", 0100644, &x, &e) == ERR_INVALID);
	CHECK(commit_builder_add(b, "x", 0120000, &x, &e) == ERR_INVALID);
	/* Missing entries are EntryNotFound. */
	CHECK(commit_builder_remove(b, "nope.txt", true, &e) == ERR_NOENTRY);
	CHECK(strstr(e.msg, "A file with this name doesn't exist"));
	CHECK(commit_builder_remove_folder(b, "nope/", &e) == ERR_NOENTRY);
	CHECK(commit_builder_remove(b, "dir", false, &e) == ERR_NOENTRY);
	/* deletedFile also takes a folder; deletedFolder a trailing '/'. */
	CHECK(commit_builder_remove(b, "dir/sub", true, NULL) == 0);
	CHECK(commit_builder_remove_folder(b, "new/", NULL) == 0);
	CHECK(commit_builder_remove(b, "dir/b.txt", false, NULL) == 0);
	CHECK(commit_builder_commit(b, "refs/heads/main", &first, &info, &second,
				    NULL) == 0);
	CHECK(has_file(repo, &second, "a.txt", "A2"));
	CHECK(!has_path(repo, &second, "dir"));
	CHECK(!has_path(repo, &second, "new"));
	CHECK(git_commit_lookup(&c, repo, &second) == 0);
	CHECK(git_commit_parentcount(c) == 1 &&
	      git_oid_equal(git_commit_parent_id(c, 0), &first));
	CHECK(!strcmp(git_commit_author(c)->name, "bob"));
	CHECK(!strcmp(git_commit_author(c)->email, "bob@users.noreply.haven"));
	CHECK(!strcmp(git_commit_message(c), "second\n\nbody\n"));
	CHECK(gitrepo_resolve(repo, "main", &x, NULL, 0, NULL) == 0 &&
	      git_oid_equal(&x, &second));
	rc = 0;
out:
	git_commit_free(c);
	commit_builder_free(b);
	git_repository_free(repo);
	rm_rf(dir);
	return rc;
}

/* Two builders from the same head: the second to commit loses. */
static int test_commit_builder_race(void)
{
	char dir[SCRATCH_LEN] = "";
	git_repository *repo = NULL;
	struct commit_builder *b1 = NULL, *b2 = NULL, *b3 = NULL;
	struct commit_builder_info info = { "carol", "race" };
	git_oid first, c1, c2, x, head;
	struct err e = { 0 };
	int rc = -1;

	CHECK(scratch_git(&repo, dir) == 0);
	CHECK(first_commit(repo, &first) == 0);
	CHECK(commit_builder_new(&b1, repo, &first, NULL) == 0);
	CHECK(commit_builder_new(&b2, repo, &first, NULL) == 0);
	CHECK(blob(repo, "one", &x) == 0);
	CHECK(commit_builder_add(b1, "one.txt", 0100644, &x, NULL) == 0);
	CHECK(blob(repo, "two", &x) == 0);
	CHECK(commit_builder_add(b2, "two.txt", 0100644, &x, NULL) == 0);
	CHECK(commit_builder_commit(b1, "refs/heads/main", &first, &info, &c1,
				    NULL) == 0);
	CHECK(commit_builder_commit(b2, "refs/heads/main", &first, &info, &c2,
				    &e) == ERR_CONFLICT);
	CHECK(gitrepo_resolve(repo, "main", &head, NULL, 0, NULL) == 0 &&
	      git_oid_equal(&head, &c1));
	/* A new ref (a pull request) must not exist yet. */
	CHECK(commit_builder_new(&b3, repo, &first, NULL) == 0);
	CHECK(commit_builder_commit(b3, "refs/pr/1", NULL, &info, &c2, NULL) == 0);
	CHECK(commit_builder_commit(b3, "refs/pr/1", NULL, &info, &c2, &e) ==
	      ERR_EXISTS);
	CHECK(gitrepo_resolve(repo, "refs/pr/1", &head, NULL, 0, NULL) == 0);
	/* A ref that vanished meanwhile is a conflict too. */
	CHECK(commit_builder_commit(b3, "refs/heads/gone", &first, &info, &c2,
				    &e) == ERR_CONFLICT);
	rc = 0;
out:
	commit_builder_free(b1);
	commit_builder_free(b2);
	commit_builder_free(b3);
	git_repository_free(repo);
	rm_rf(dir);
	return rc;
}

int main(void)
{
	int rc;

	gitrepo_global_init();
	RUN(test_commit_builder_paths);
	RUN(test_commit_builder_add_and_remove);
	RUN(test_commit_builder_race);
	rc = TEST_REPORT();
	gitrepo_global_shutdown();
	return rc;
}
