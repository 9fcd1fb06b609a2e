/*
 * test_import.c: importing a local folder as a commit (ingest/import.h).
 *
 * Each test makes a scratch folder holding a data directory (data/) and
 * the folder to import (src/), imports, and then reads the result back
 * through libgit2 and the blob store rather than through the importer.
 * The two large files are just over and exactly at the LFS threshold, so
 * that the size rule is exercised without slowing the suite.
 */
#include "common/compat.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "ingest/import.h"
#include "storage/hash.h"
#include "storage/lfs_pointer.h"
#include "storage/store.h"
#include "tests/unit/test.h"
#include "tests/unit/test_tmp.h"

#define PATH_LEN (SCRATCH_LEN + 128)

static const char config_json[] = "{\"architectures\": [\"Tiny\"]}\n";
static const char safetensors[] = "not really safetensors";
static const char nested_txt[] = "nested\n";
static const char run_sh[] = "#!/bin/sh\necho hello\n";
static const char big_line[] =
	"big.dat filter=lfs diff=lfs merge=lfs -text\n";
static const char spaced_line[] =
	"big[[:space:]]file.dat filter=lfs diff=lfs merge=lfs -text\n";

struct scratch {
	char root[SCRATCH_LEN];
	char data[PATH_LEN];
	char src[PATH_LEN];
	struct store *store;
};

/* Makes root/, root/src/ and a new store in root/data/. */
static int scratch_open(struct scratch *s)
{
	memset(s, 0, sizeof(*s));
	if (scratch_dir(s->root, "import") < 0)
		return -1;
	snprintf(s->data, sizeof(s->data), "%s/data", s->root);
	snprintf(s->src, sizeof(s->src), "%s/src", s->root);
	if (mkdir(s->src, 0755) < 0)
		return -1;
	return store_open(&s->store, s->data, true, NULL);
}

static void scratch_close(struct scratch *s)
{
	store_free(s->store);
	s->store = NULL;
	rm_rf(s->root);
}

static int write_file(const char *dir, const char *name, const void *data,
		      size_t len, mode_t mode)
{
	char path[PATH_LEN + 64];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)) < 0)
		return -1;
	rc = write_full(fd, data, len);
	if (fchmod(fd, mode) < 0)
		rc = -1;
	close(fd);
	return rc;
}

/* Writes size bytes of a pattern that depends on seed. */
static int write_big(const char *dir, const char *name, size_t size,
		     unsigned seed)
{
	char path[PATH_LEN + 64];
	static char buf[1 << 20];
	int fd, rc = 0;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 31 + seed);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		return -1;
	while (rc == 0 && size) {
		size_t n = size < sizeof(buf) ? size : sizeof(buf);
		rc = write_full(fd, buf, n);
		size -= n;
	}
	close(fd);
	return rc;
}

/* The small files every test imports: a config, a small file that an
 * LFS pattern covers, an empty file of an LFS type, a nested folder
 * and an executable script. */
static int make_small_folder(const char *src)
{
	char sub[PATH_LEN + 16];

	snprintf(sub, sizeof(sub), "%s/sub/deeper", src);
	if (mkdir_p(sub) < 0)
		return -1;
	return write_file(src, "config.json", config_json,
			  strlen(config_json), 0644) ||
	       write_file(src, "model.safetensors", safetensors,
			  strlen(safetensors), 0644) ||
	       write_file(src, "empty.bin", "", 0, 0644) ||
	       write_file(src, "sub/deeper/nested.txt", nested_txt,
			  strlen(nested_txt), 0644) ||
	       write_file(src, "run.sh", run_sh, strlen(run_sh), 0755) ? -1 : 0;
}

/* Adds the large files that no pattern covers: big.dat, one byte over
 * the threshold, and "big file.dat", exactly at it. */
static int add_big_files(const char *src, bool spaced)
{
	if (write_big(src, "big.dat", IMPORT_LFS_THRESHOLD + 1, 1) < 0)
		return -1;
	if (spaced &&
	    write_big(src, "big file.dat", IMPORT_LFS_THRESHOLD, 2) < 0)
		return -1;
	return 0;
}

static int sha256_of_file(const char *dir, const char *name,
			  char hex[SHA256_HEX_LEN + 1], uint64_t *size)
{
	char path[PATH_LEN + 64], buf[1 << 16];
	struct sha256_ctx *ctx = sha256_new();
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!ctx || (fd = open(path, O_RDONLY)) < 0) {
		sha256_free(ctx);
		return -1;
	}
	*size = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		sha256_update(ctx, buf, (size_t)n);
		*size += (uint64_t)n;
	}
	close(fd);
	sha256_final_hex(ctx, hex);
	return n < 0 ? -1 : 0;
}

static int count_one(const char *sha, const struct blob_info *path,
		     void *arg)
{
	(void)sha;
	(void)path;
	++*(size_t *)arg;
	return 0;
}

static size_t blob_count(struct store *store)
{
	size_t n = 0;

	blob_foreach(store->blobs, count_one, &n, NULL);
	return n;
}

static int open_repo(git_repository **repo, struct store *store,
		     const char *type, const char *name)
{
	struct repo_record rec;

	if (repo_lookup(store, type, name, &rec, NULL) < 0)
		return -1;
	return repo_open_git(repo, store, &rec, NULL);
}

/* Reads path in commit_hex: its text (malloc'd) and its file mode. */
static int read_path(git_repository *repo, const char *commit_hex,
		     const char *path, char **text, size_t *len,
		     git_filemode_t *mode)
{
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	git_tree_entry *te = NULL;
	git_blob *blob = NULL;
	git_oid oid;
	int rc = -1;

	*text = NULL;
	if (git_oid_fromstr(&oid, commit_hex) < 0 ||
	    git_commit_lookup(&commit, repo, &oid) < 0 ||
	    git_commit_tree(&tree, commit) < 0 ||
	    git_tree_entry_bypath(&te, tree, path) < 0 ||
	    git_blob_lookup(&blob, repo, git_tree_entry_id(te)) < 0)
		goto out;
	*len = (size_t)git_blob_rawsize(blob);
	if (!(*text = malloc(*len + 1)))
		goto out;
	memcpy(*text, git_blob_rawcontent(blob), *len);
	(*text)[*len] = '\0';
	*mode = git_tree_entry_filemode(te);
	rc = 0;
out:
	git_blob_free(blob);
	git_tree_entry_free(te);
	git_tree_free(tree);
	git_commit_free(commit);
	return rc;
}

/* Checks that path in the commit is exactly text, with mode. */
static bool has_content(git_repository *repo, const char *commit_hex,
			const char *path, const char *want,
			git_filemode_t want_mode)
{
	git_filemode_t mode = 0;
	char *text = NULL;
	size_t len = 0;
	bool ok;

	ok = read_path(repo, commit_hex, path, &text, &len, &mode) == 0 &&
	     len == strlen(want) && !memcmp(text, want, len) &&
	     mode == want_mode;
	if (!ok)
		fprintf(stderr, "  '%s' in %s: mode %o, content '%.200s'\n",
			path, commit_hex, (unsigned)mode,
			text ? text : "(missing)");
	free(text);
	return ok;
}

/* Checks that path is an LFS pointer to the file's bytes, and that the
 * blob store holds those bytes. */
static bool is_lfs_of(git_repository *repo, struct store *store,
		      const char *commit_hex, const char *src,
		      const char *path)
{
	char sha[SHA256_HEX_LEN + 1], ptr[LFS_POINTER_MAX];
	uint64_t size = 0, stored = 0;
	int fd = -1;
	bool ok;

	if (sha256_of_file(src, path, sha, &size) < 0)
		return false;
	lfs_pointer_format(ptr, sizeof(ptr), sha, size);
	ok = has_content(repo, commit_hex, path, ptr, GIT_FILEMODE_BLOB) &&
	     blob_open(store->blobs, sha, &fd, &stored, NULL) == 0 &&
	     stored == size && blob_verify(store->blobs, sha, NULL) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* The commit's parent, as hex; "" for a root commit. */
static int parent_of(git_repository *repo, const char *commit_hex,
		     char out[GIT_HEX_LEN + 1])
{
	git_commit *commit = NULL;
	git_oid oid;

	out[0] = '\0';
	if (git_oid_fromstr(&oid, commit_hex) < 0 ||
	    git_commit_lookup(&commit, repo, &oid) < 0)
		return -1;
	if (git_commit_parentcount(commit) == 1)
		gitrepo_oid_hex(out, git_commit_parent_id(commit, 0));
	git_commit_free(commit);
	return 0;
}

static bool ref_is(git_repository *repo, const char *ref, const char *hex)
{
	char got[GIT_HEX_LEN + 1];
	git_oid oid;

	if (git_reference_name_to_id(&oid, repo, ref) < 0)
		return false;
	gitrepo_oid_hex(got, &oid);
	return !strcmp(got, hex);
}

static int test_import_creates_repo_and_tree(void)
{
	struct import_options opt = { .repo = "alice/tiny" };
	struct import_result res;
	struct scratch s = { .root = "" };
	git_repository *repo = NULL;
	char *attrs = NULL, parent[GIT_HEX_LEN + 1];
	git_filemode_t mode;
	size_t len;
	int rc = -1;

	CHECK(scratch_open(&s) == 0);
	CHECK(make_small_folder(s.src) == 0 && add_big_files(s.src, true) == 0);
	CHECK(import_folder(s.store, s.src, &opt, &res, NULL) == 0);
	CHECK(res.created_repo && res.changed);
	CHECK(res.files == 7 && res.lfs_files == 3);
	CHECK(res.bytes == strlen(config_json) + strlen(safetensors) +
			   strlen(nested_txt) + strlen(run_sh) +
			   2 * IMPORT_LFS_THRESHOLD + 1);
	CHECK(open_repo(&repo, s.store, "model", "alice/tiny") == 0);
	CHECK(ref_is(repo, "refs/heads/main", res.commit));
	/* The import sits on top of the repository's initial commit. */
	CHECK(parent_of(repo, res.commit, parent) == 0 && parent[0]);

	CHECK(has_content(repo, res.commit, "config.json", config_json,
			  GIT_FILEMODE_BLOB));
	CHECK(has_content(repo, res.commit, "empty.bin", "",
			  GIT_FILEMODE_BLOB));
	CHECK(has_content(repo, res.commit, "sub/deeper/nested.txt",
			  nested_txt, GIT_FILEMODE_BLOB));
	CHECK(has_content(repo, res.commit, "run.sh", run_sh,
			  GIT_FILEMODE_BLOB_EXECUTABLE));
	CHECK(is_lfs_of(repo, s.store, res.commit, s.src, "model.safetensors"));
	CHECK(is_lfs_of(repo, s.store, res.commit, s.src, "big.dat"));
	CHECK(is_lfs_of(repo, s.store, res.commit, s.src, "big file.dat"));
	CHECK(blob_count(s.store) == 3);

	/* The default attributes, plus one line per uncovered large file. */
	CHECK(read_path(repo, res.commit, ".gitattributes", &attrs, &len,
			&mode) == 0);
	CHECK(!strncmp(attrs, repo_default_gitattributes("model"),
		       strlen(repo_default_gitattributes("model"))));
	CHECK(strstr(attrs, big_line) && strstr(attrs, big_line)[-1] == '\n');
	CHECK(strstr(attrs, spaced_line) &&
	      strstr(attrs, spaced_line)[-1] == '\n');
	CHECK(!strstr(attrs, "model.safetensors"));
	rc = 0;
out:
	free(attrs);
	git_repository_free(repo);
	scratch_close(&s);
	return rc;
}

/* Imports the folder twice and checks that the second import changed
 * nothing: same commit, same blobs. */
static int import_twice_unchanged(bool spaced)
{
	struct import_options opt = { .repo = "alice/tiny" };
	struct import_result first, again;
	struct scratch s = { .root = "" };
	size_t blobs;
	int rc = -1;

	CHECK(scratch_open(&s) == 0);
	CHECK(make_small_folder(s.src) == 0);
	CHECK(add_big_files(s.src, spaced) == 0);
	CHECK(import_folder(s.store, s.src, &opt, &first, NULL) == 0);
	blobs = blob_count(s.store);
	CHECK(import_folder(s.store, s.src, &opt, &again, NULL) == 0);
	CHECK(!again.created_repo);
	CHECK(again.files == first.files && again.lfs_files == first.lfs_files);
	if (again.changed)
		fprintf(stderr, "  second import made commit %s after %s\n",
			again.commit, first.commit);
	CHECK(!again.changed);
	CHECK(!strcmp(again.commit, first.commit));
	CHECK(blob_count(s.store) == blobs);
	rc = 0;
out:
	scratch_close(&s);
	return rc;
}

static int test_import_again_is_unchanged(void)
{
	return import_twice_unchanged(false);
}

/* The same, with a large file whose tracking line uses [[:space:]]. */
static int test_import_again_with_spaced_name_is_unchanged(void)
{
	return import_twice_unchanged(true);
}

static int test_import_modified_file_makes_child_commit(void)
{
	static const char changed[] = "{\"architectures\": [\"Bigger\"]}\n";
	struct import_options opt = { .repo = "alice/tiny" };
	struct import_result first, second;
	struct scratch s = { .root = "" };
	git_repository *repo = NULL;
	char parent[GIT_HEX_LEN + 1];
	int rc = -1;

	CHECK(scratch_open(&s) == 0);
	CHECK(make_small_folder(s.src) == 0);
	CHECK(import_folder(s.store, s.src, &opt, &first, NULL) == 0);
	CHECK(write_file(s.src, "config.json", changed, strlen(changed),
			 0644) == 0);
	CHECK(import_folder(s.store, s.src, &opt, &second, NULL) == 0);
	CHECK(second.changed && strcmp(second.commit, first.commit));
	CHECK(open_repo(&repo, s.store, "model", "alice/tiny") == 0);
	CHECK(parent_of(repo, second.commit, parent) == 0);
	CHECK(!strcmp(parent, first.commit));
	CHECK(ref_is(repo, "refs/heads/main", second.commit));
	CHECK(has_content(repo, second.commit, "config.json", changed,
			  GIT_FILEMODE_BLOB));
	CHECK(has_content(repo, first.commit, "config.json", config_json,
			  GIT_FILEMODE_BLOB));
	rc = 0;
out:
	git_repository_free(repo);
	scratch_close(&s);
	return rc;
}

static int test_import_revision_creates_branch_from_main(void)
{
	static const char extra[] = "only on dev\n";
	struct import_options opt = { .repo = "alice/tiny" };
	struct import_result on_main, on_dev, same;
	struct scratch s = { .root = "" };
	git_repository *repo = NULL;
	char parent[GIT_HEX_LEN + 1];
	int rc = -1;

	CHECK(scratch_open(&s) == 0);
	CHECK(make_small_folder(s.src) == 0);
	CHECK(import_folder(s.store, s.src, &opt, &on_main, NULL) == 0);

	/* The same tree on a new branch: no commit, the branch at main. */
	opt.branch = "same";
	CHECK(import_folder(s.store, s.src, &opt, &same, NULL) == 0);
	CHECK(!same.changed && !strcmp(same.commit, on_main.commit));

	CHECK(write_file(s.src, "extra.txt", extra, strlen(extra), 0644) == 0);
	opt.branch = "dev";
	CHECK(import_folder(s.store, s.src, &opt, &on_dev, NULL) == 0);
	CHECK(on_dev.changed && !on_dev.created_repo);
	CHECK(open_repo(&repo, s.store, "model", "alice/tiny") == 0);
	CHECK(ref_is(repo, "refs/heads/dev", on_dev.commit));
	CHECK(ref_is(repo, "refs/heads/main", on_main.commit));
	CHECK(ref_is(repo, "refs/heads/same", on_main.commit));
	CHECK(parent_of(repo, on_dev.commit, parent) == 0);
	CHECK(!strcmp(parent, on_main.commit));
	CHECK(has_content(repo, on_dev.commit, "extra.txt", extra,
			  GIT_FILEMODE_BLOB));
	rc = 0;
out:
	git_repository_free(repo);
	scratch_close(&s);
	return rc;
}

static int test_import_invalid_branch_is_refused(void)
{
	static const char *const bad[] = {
		"bad..name", "a b", "refs/heads/x", "", "x.lock", "-dash/..",
	};
	struct import_options opt = { .repo = "alice/tiny" };
	struct import_result res;
	struct scratch s = { .root = "" };
	struct repo_record rec;
	struct err e = { 0 };
	int rc = -1;

	CHECK(scratch_open(&s) == 0);
	CHECK(make_small_folder(s.src) == 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		opt.branch = bad[i];
		CHECK(import_folder(s.store, s.src, &opt, &res, &e) ==
		      ERR_INVALID);
		CHECK(e.code == ERR_INVALID);
	}
	/* Refused before anything was written. */
	CHECK(repo_lookup(s.store, "model", "alice/tiny", &rec, NULL) ==
	      ERR_NOREPO);
	CHECK(blob_count(s.store) == 0);
	rc = 0;
out:
	scratch_close(&s);
	return rc;
}

static int test_import_into_new_dataset(void)
{
	static const char png[] = "\x89PNG not really";
	struct import_options opt = { .type = "dataset", .repo = "org/pics",
				      .message = "first pictures",
				      .author = "tester" };
	struct import_result res;
	struct scratch s = { .root = "" };
	struct repo_record rec;
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	char *attrs = NULL;
	git_filemode_t mode;
	git_oid oid;
	size_t len;
	int rc = -1;

	CHECK(scratch_open(&s) == 0);
	CHECK(write_file(s.src, "cat.png", png, strlen(png), 0644) == 0);
	CHECK(write_file(s.src, "README.md", "# pics\n", 7, 0644) == 0);
	CHECK(import_folder(s.store, s.src, &opt, &res, NULL) == 0);
	CHECK(res.created_repo && res.changed);
	CHECK(res.files == 2 && res.lfs_files == 1);
	CHECK(open_repo(&repo, s.store, "dataset", "org/pics") == 0);
	CHECK(repo_lookup(s.store, "model", "org/pics", &rec, NULL) ==
	      ERR_NOREPO);
	/* A dataset's default attributes make .png an LFS type. */
	CHECK(is_lfs_of(repo, s.store, res.commit, s.src, "cat.png"));
	CHECK(has_content(repo, res.commit, "README.md", "# pics\n",
			  GIT_FILEMODE_BLOB));
	CHECK(read_path(repo, res.commit, ".gitattributes", &attrs, &len,
			&mode) == 0);
	CHECK(!strcmp(attrs, repo_default_gitattributes("dataset")));
	CHECK(git_oid_fromstr(&oid, res.commit) == 0);
	CHECK(git_commit_lookup(&commit, repo, &oid) == 0);
	CHECK(!strcmp(git_commit_summary(commit), "first pictures"));
	CHECK(!strcmp(git_commit_author(commit)->name, "tester"));
	rc = 0;
out:
	git_commit_free(commit);
	free(attrs);
	git_repository_free(repo);
	scratch_close(&s);
	return rc;
}

int main(void)
{
	int rc;

	gitrepo_global_init();
	RUN(test_import_creates_repo_and_tree);
	RUN(test_import_again_is_unchanged);
	RUN(test_import_again_with_spaced_name_is_unchanged);
	RUN(test_import_modified_file_makes_child_commit);
	RUN(test_import_revision_creates_branch_from_main);
	RUN(test_import_invalid_branch_is_refused);
	RUN(test_import_into_new_dataset);
	rc = TEST_REPORT();
	gitrepo_global_shutdown();
	return rc;
}
