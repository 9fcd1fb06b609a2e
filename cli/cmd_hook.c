/*
 * cmd_hook.c: `haven hook pre-receive --data DIR --repo-id ID`, the check
 * git receive-pack runs before a push over HTTP updates any ref (the
 * server writes <data>/hooks/pre-receive to call it). git passes the
 * updates on stdin as "<old> <new> <ref>" lines and shows what the hook
 * prints on stderr to the pusher as "remote: ..."; exit status 1 refuses
 * the whole push, and nothing of it lands.
 *
 * Refused:
 *   - refs outside refs/heads/ and refs/tags/ (pull request refs under
 *     refs/pr/ and conversions under refs/convert/ are written by the
 *     API only);
 *   - deleting the default branch (where HEAD points);
 *   - LFS pointers whose object is not in the blob store, or is there
 *     with another size.
 *
 * The objects a push brings sit in git's quarantine directory
 * (GIT_QUARANTINE_PATH) until every hook agrees. Checking each blob there
 * that parses as an LFS pointer covers every pointer the new commits add:
 * git sends only objects the server lacks, and a pointer the server
 * already had was checked when it arrived. This costs one pass over the
 * new objects instead of a walk of every new commit's tree.
 *
 * `haven hook post-receive` runs once the refs have moved (git is the
 * source of truth, so only then is the result known): it rebuilds the
 * model's lineage edges from its default branch. Its exit status cannot
 * undo the push; a failure is reported to the pusher and the edges are
 * rebuilt by the next change of the branch.
 */
#include "common/compat.h"

#include <getopt.h>
#include <unistd.h>
#include <git2.h>

#include "cli/cli.h"
#include "common/util.h"
#include "ingest/card_lineage.h"
#include "storage/blob.h"
#include "storage/lfs_claims.h"
#include "storage/lfs_pointer.h"
#include "storage/meta.h"
#include "storage/store.h"

#define REPORT_MAX 20	/* missing objects listed before "and N more" */

struct lfs_scan {
	git_odb *read;		/* the repository's objects and the quarantine */
	struct blob_store *blobs;
	struct meta *meta;	/* for the repository's LFS claims */
	const char *repo_id;
	size_t missing;
	int failed;
};

static bool is_zero_oid(const char *hex)
{
	return strspn(hex, "0") == strlen(hex);
}

/* The ref HEAD names (the default branch), or "" when unknown. */
static void default_branch(git_repository *repo, char *out, size_t size)
{
	git_reference *head = NULL;
	const char *target;

	out[0] = '\0';
	if (git_reference_lookup(&head, repo, "HEAD") == 0 &&
	    (target = git_reference_symbolic_target(head)))
		str_copy(out, target, size);
	git_reference_free(head);
}

/* Checks one "<old> <new> <ref>" line; 1 when it must be refused.
 * *writes is set when the line creates or moves the ref. */
static int check_update(const char *line, const char *head_ref, bool *writes)
{
	char old[GIT_OID_HEXSZ + 1], new[GIT_OID_HEXSZ + 1], ref[1024];

	if (sscanf(line, "%40s %40s %1023s", old, new, ref) != 3) {
		fprintf(stderr, "haven: malformed ref update '%s'\n", line);
		return 1;
	}
	if (strncmp(ref, "refs/heads/", 11) && strncmp(ref, "refs/tags/", 10)) {
		fprintf(stderr, "haven: refusing %s: only branches (refs/heads/) "
			"and tags (refs/tags/) can be pushed; pull requests are "
			"made through the API\n", ref);
		return 1;
	}
	if (is_zero_oid(new) && head_ref[0] && !strcmp(ref, head_ref)) {
		fprintf(stderr, "haven: refusing to delete %s: it is the "
			"repository's default branch\n", ref);
		return 1;
	}
	if (!is_zero_oid(new))
		*writes = true;
	return 0;
}

/* 1 when an update is refused; *writes tells whether any ref gets a new
 * value (a push that only deletes brings no objects). */
static int read_updates(git_repository *repo, bool *writes)
{
	char head_ref[1024], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int refused = 0;

	default_branch(repo, head_ref, sizeof(head_ref));
	while ((n = getline(&line, &cap, stdin)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n)
			refused |= check_update(line, head_ref, writes);
	}
	free(line);
	return refused;
}

static void check_pointer(struct lfs_scan *s, const git_oid *id,
			  const char *sha, uint64_t size)
{
	struct err err = { 0 };
	struct blob_info have = { 0, 0 };
	char hex[GIT_OID_HEXSZ + 1];

	/* The object must be stored and belong to this repository: one
	 * uploaded for another repository is not reachable by naming it. */
	if (lfs_claim_has(s->meta, s->repo_id, sha) &&
	    blob_stat(s->blobs, sha, &have, &err) == 0) {
		if (have.size == size)
			return;
	}
	if (s->missing++ >= REPORT_MAX)
		return;
	git_oid_tostr(hex, sizeof(hex), id);
	fprintf(stderr, "haven: LFS object sha256:%s (%llu bytes, pointer %.12s) "
		"was not uploaded to this repository\n", sha, (unsigned long long)size, hex);
}

/* Visits one new object: a small blob may be an LFS pointer. */
static int scan_object(const git_oid *id, void *arg)
{
	struct lfs_scan *s = arg;
	git_odb_object *obj = NULL;
	git_object_t type;
	size_t len;
	char sha[SHA256_HEX_LEN + 1];
	uint64_t size;

	if (git_odb_read_header(&len, &type, s->read, id) < 0) {
		s->failed = 1;
		return 1;
	}
	if (type != GIT_OBJECT_BLOB || len >= LFS_POINTER_MAX)
		return 0;
	if (git_odb_read(&obj, s->read, id) < 0) {
		s->failed = 1;
		return 1;
	}
	if (lfs_pointer_parse(git_odb_object_data(obj), git_odb_object_size(obj),
			      sha, &size))
		check_pointer(s, id, sha, size);
	git_odb_object_free(obj);
	return 0;
}

/* 1 when a pushed pointer names an object the blob store lacks. */
static int scan_quarantine(git_repository *repo, struct blob_store *blobs,
			   struct meta *meta, const char *repo_id)
{
	const char *q = getenv("GIT_QUARANTINE_PATH");
	struct lfs_scan s = { NULL, blobs, meta, repo_id, 0, 0 };
	git_odb *incoming = NULL;
	int rc = 1;

	if (!q || !q[0]) {
		/* git quarantines every push that brings a pack (2.11+). */
		fprintf(stderr, "haven: cannot see the pushed objects "
			"(GIT_QUARANTINE_PATH is not set; git 2.11 or later is "
			"needed on the server)\n");
		return 1;
	}
	if (git_repository_odb(&s.read, repo) < 0 ||
	    git_odb_add_disk_alternate(s.read, q) < 0 ||
	    git_odb_open(&incoming, q) < 0) {
		fprintf(stderr, "haven: cannot read the pushed objects: %s\n",
			git_error_last() ? git_error_last()->message : "unknown");
		goto out;
	}
	if (git_odb_foreach(incoming, scan_object, &s) < 0 && !s.failed)
		s.failed = 1;
	if (s.failed) {
		fprintf(stderr, "haven: cannot read the pushed objects: %s\n",
			git_error_last() ? git_error_last()->message : "unknown");
		goto out;
	}
	if (s.missing > REPORT_MAX)
		fprintf(stderr, "haven: ... and %zu more\n",
			s.missing - REPORT_MAX);
	if (s.missing) {
		fprintf(stderr, "haven: push refused: upload the LFS objects first "
			"(git lfs push --all origin), or check that git-lfs is "
			"installed and `git lfs install` has run\n");
		goto out;
	}
	rc = 0;
out:
	git_odb_free(incoming);
	git_odb_free(s.read);
	return rc;
}

static int pre_receive(const char *data, const char *repo_id)
{
	struct blob_store *blobs = NULL;
	git_repository *repo = NULL;
	struct meta *meta = NULL;
	struct err err = { 0 };
	char path[4200];
	bool writes = false;
	int rc = 1;

	if (!repo_id || !is_hex(repo_id, REPO_ID_LEN)) {
		fprintf(stderr, "haven: hook: --repo-id must be a repository id "
			"(32 hex digits)\n");
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "%s/git/%s.git", data, repo_id);
	if (git_repository_open_bare(&repo, path) < 0) {
		fprintf(stderr, "haven: cannot open the repository: %s\n",
			git_error_last() ? git_error_last()->message : path);
		goto out;
	}
	if (blob_store_open(&blobs, data, &err) < 0 ||
	    meta_open(&meta, data, STORE_DEFAULT_MAP_SIZE, &err) < 0) {
		cli_fail(&err);
		goto out;
	}
	/* Every line is read, so that git never writes into a closed pipe. */
	if (read_updates(repo, &writes) ||
	    (writes && scan_quarantine(repo, blobs, meta, repo_id)))
		goto out;
	rc = 0;
out:
	meta_free(meta);
	blob_store_free(blobs);
	git_repository_free(repo);
	return rc;
}

/* Reads the updates (so git never writes into a closed pipe) and syncs
 * the lineage edges when one of them touches a branch. */
static int post_receive(const char *data, const char *repo_id)
{
	struct store *store = NULL;
	struct repo_record rec;
	struct meta_txn *txn = NULL;
	struct err err = { 0 };
	char line[1024];
	bool branch = false;
	int rc = 0;

	while (fgets(line, sizeof(line), stdin))
		branch |= strstr(line, " refs/heads/") != NULL;
	if (!branch)
		return 0;
	if (!repo_id || !is_hex(repo_id, REPO_ID_LEN)) {
		fprintf(stderr, "haven: hook: --repo-id must be a repository id "
			"(32 hex digits)\n");
		return EXIT_USAGE;
	}
	if (store_open(&store, data, false, &err) < 0 ||
	    meta_txn_begin(&txn, store->meta, false, &err) < 0 ||
	    meta_repo_get_by_id(txn, repo_id, &rec, &err) < 0) {
		meta_txn_abort(txn);
		goto fail;
	}
	meta_txn_abort(txn);
	if (card_lineage_sync(store, &rec, &err) < 0)
		goto fail;
	goto out;
fail:
	fprintf(stderr, "haven: lineage not updated: %s\n", err.msg);
	rc = 1;
out:
	store_free(store);
	return rc;
}

int cmd_hook(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "repo-id", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data = NULL, *repo_id = NULL;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'r': repo_id = optarg; break;
		case 'h':
			printf("usage: haven hook pre-receive --data DIR "
			       "--repo-id ID\n\nRun by git receive-pack during a "
			       "push over HTTP (the server\ninstalls "
			       "DIR/hooks/pre-receive); not meant to be run by "
			       "hand.\nRefuses refs outside refs/heads/ and "
			       "refs/tags/, deleting the default\nbranch, and LFS "
			       "pointers whose objects the server does not hold.\n");
			return 0;
		default: return EXIT_USAGE;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "post-receive"))
		return post_receive(cli_data_dir(data), repo_id);
	if (optind >= argc || strcmp(argv[optind], "pre-receive")) {
		fprintf(stderr, "haven: hook: the hooks are pre-receive and "
			"post-receive\n");
		return EXIT_USAGE;
	}
	return pre_receive(cli_data_dir(data), repo_id);
}
